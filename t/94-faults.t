# Fault injection under a mixed load, and reloads under that load.
#
# Four kinds of clients run for the whole test (ENT_FAULT_SECONDS, 180 by
# default): OpenID Connect logins against a real OP, requests of a
# signed-in user, SCIM user creations and rate-limited API calls.  Redis
# and PostgreSQL are killed, paused (SIGSTOP) and slowed, one after the
# other, in rounds; between the rounds nginx is reloaded three times.
#
# Checked: every request is answered (no hang) with a status its kind may
# have, never a 500 or 502; no [alert] and no worker lost to a signal;
# every SCIM creation that was answered 201 is in PostgreSQL with its
# audit row; every login that was answered with a session has its audit
# row (through the journal, whatever the outages); after the faults every
# kind succeeds again without a reload; and during the reloads no request
# failed and the shared memory (metrics, tenant cache) was kept.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use EntOP;
use POSIX ();
use Time::HiRes qw(time sleep);
use Test::More;

# a load test with time bounds: not under valgrind, whose pace it would
# measure (memcheck sees the same code paths in t/31, t/81, t/89 and t/91)
plan skip_all => 'a timed load test: not under valgrind'
    if $ENV{ENT_VALGRIND};

my $seconds = $ENV{ENT_FAULT_SECONDS} || 180;

pg_start(durable => 1);
redis_start();
my $echo = echo_start();
my $ca = test_ca();
my $dir = tmpdir();
my $dsn = EntTest::pg_dsn();
my $entctl = "$EntTest::TOP/bin/entctl --dsn '$dsn'";

my $keyfile = "$dir/sso.key";
system("openssl rand -base64 32 > $keyfile") == 0 or die;

my $op = op_start(name => 'faults-op', accounts => {
    alice => { email => 'alice@acme.example.com',
               email_verified => JSON::PP::true, name => 'Alice',
               groups => ['staff'] },
});

# the status and metrics on a port of their own: the test's server wants
# a tenant in every Host
my $admin = EntTest::free_port();
my $n = nginx_start(workers => 2, http_config => <<"CONF", config => <<"CONF");
server {
    listen 127.0.0.1:$admin;
    location = /ent_status { ent_status; }
    location = /_ent/metrics { ent_metrics; }
}
ent_postgres "\$TEST_PG_DSN" pool=4 query_timeout=2s backoff=50ms:500ms;
ent_redis 127.0.0.1:\$TEST_REDIS_PORT timeout=500ms backoff=50ms:500ms;
ent_cache_zone tenants:1m ttl=1s negative_ttl=1s stale=1h;
ent_sso_secret_key $keyfile;
ent_sso_session_timeout 1h 12h;
ent_metrics_zone 1m;
ent_audit_journal $dir/journal flush=50ms;
ent_ratelimit_policy api per=minute limit=1000000;
ent_ratelimit_policy tight per=second limit=20;
ent_scim_rate 1000000;
CONF
ent_tenant on;
ent_tenant_base_domain example.com;
add_header X-Request-Id \$request_id always;
@{[ op_fetch_location($ca) ]}
location /scim/v2/ { ent_scim on; }
location /api/tight/ {
    ent_ratelimit tight;
    proxy_pass http://127.0.0.1:$echo;
}
location /api/ {
    ent_ratelimit api;
    proxy_pass http://127.0.0.1:$echo;
}
location / {
    ent_sso required;
    proxy_pass http://127.0.0.1:$echo;
}
CONF
my $port = nginx_port($n);
my $acme = "http://acme.example.com:$port";

op_clients($op, {
    client_id => 'acme-web', client_secret => 'acme-secret-1',
    redirect_uris => ["$acme/_ent/oidc/callback"],
});

sub ctl {
    my ($args) = @_;
    my $out = `$entctl $args 2>&1`;
    die "entctl $args: $out" if $?;
    $out =~ s/\s+\z//;
    return $out;
}

ctl("tenant create acme --name Acme --tier business");
$ENV{ACME_SECRET} = 'acme-secret-1';
ctl("sso oidc acme --issuer $op->{issuer} --client-id acme-web "
    . "--key-file $keyfile --client-secret-env ACME_SECRET "
    . "--ca-file $ca->{ca} --domains acme.example.com");
ctl("sso domain add acme acme.example.com --verified");
my ($token) = ctl("scim-token create acme --name faults") =~ /(\S+)\z/;
my $tenant = pg_sql("SELECT id FROM ent.tenants WHERE code = 'acme'");

sub browser {
    return EntOP::Browser->new(ca => $ca->{ca}, timeout => 15,
        resolve => { "acme.example.com:$port" => "127.0.0.1:$port" },
        headers => ['Accept' => 'text/html']);
}

# one login: "callback:302:1" when it ended with a session
sub login {
    my ($b) = @_;
    my $r = $b->get("$acme/app/start");
    return "start:$r->{status}" unless $r->{status} == 302;
    $r = op_login($b, $r->{location}, 'alice');
    return "op:$r->{status}"
        unless ($r->{location} // '') =~ m{/_ent/oidc/callback\?};
    $r = $b->follow($r);
    my $sc = join "\n", @{ $r->{headers}{'set-cookie'} || [] };
    return ("callback:$r->{status}:"
        . ($r->{status} == 302 && $sc =~ /__Host-ent_session=[^;]/ ? 1 : 0),
        $r->{headers}{'x-request-id'}[0] // '-');
}

# The clients: each writes "start end client outcome [detail]" lines to
# its own file until the end; an outcome is one word ("get:200").

my $deadline = time + $seconds + 8;
my @kids;

sub client {
    my ($kind, $body) = @_;
    my $file = "$dir/load-$kind";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open my $out, '>', $file or die;
        $out->autoflush(1);
        my $i = 0;
        while (time < $deadline) {
            my $t = time;
            my @r = eval { $body->($i++) };
            @r = ('error:0', $@ =~ s/\s+/ /gr) if $@;
            printf $out "%.3f %.3f %s %s\n", $t, time, $kind,
                join ' ', map { $_ // '-' } @r;
        }
        POSIX::_exit(0);    # not the harness's END: it would stop the stack
    }
    push @kids, $pid;
    return $file;
}

my $b_user = browser();
my @first = login($b_user);
is($first[0], 'callback:302:1', 'signed in before the load');

my %file;
$file{login} = client('login', sub { login(browser()) });
$file{session} = client('session', sub {
    my $r = $b_user->request('GET', "$acme/app/data",
                             ['Accept' => 'application/json']);
    # Redis lost the sessions (killed): sign in again
    if ($r->{status} == 401) {
        my ($what, $id) = login($b_user);
        return ("relogin:$what", $id);
    }
    return "get:$r->{status}";
});
$file{scim} = client('scim', sub {
    my ($i) = @_;
    my $name = "u$i-$$\@acme.example.com";
    my $body = qq({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],)
        . qq("userName":"$name","name":{"givenName":"U","familyName":"$i"}});
    my $r = http($n, 'POST /scim/v2/Users', host => 'acme.example.com',
                 timeout => 15, body => $body,
                 headers => ["Authorization: Bearer $token",
                             'Content-Type: application/scim+json']);
    my ($id) = (EntTest::header($r, 'Location') // '') =~ m{/Users/([0-9a-f-]{36})$};
    return ("create:$r->{status}", $r->{status} == 201 ? "$id $name" : ());
});
$file{api} = client('api', sub {
    my ($i) = @_;
    my $path = $i % 2 ? '/api/x' : '/api/tight/x';
    my $r = http($n, $path, host => 'acme.example.com', timeout => 15);
    return ($i % 2 ? 'api' : 'tight') . ":$r->{status}:"
        . ($r->{body} =~ /"x-ent-tenant-code":"acme"/ ? 'acme' : '-');
});

# the faults

sub pause {
    my ($pids, $stop, $run, $for) = @_;
    my $end = time + $for;
    while (time < $end) {
        kill 'STOP', @$pids;
        sleep $stop;
        kill 'CONT', @$pids;
        sleep $run;
    }
}

my @faults = (
    ['redis killed'   => sub { redis_stop(signal => 'KILL'); sleep 5;
                               redis_start() }],
    ['redis paused'   => sub { pause([EntTest::redis_pid()], 6, 0, 6) }],
    ['redis slowed'   => sub {
        my $end = time + 6;
        while (time < $end) {
            system("redis-cli -p " . EntTest::redis_port()
                   . " DEBUG SLEEP 0.3 >/dev/null 2>&1");
            sleep 0.1;
        }
    }],
    ['postgres killed' => sub { EntTest::pg_kill(); sleep 5; pg_start(durable => 1) }],
    ['postgres paused' => sub { pause([EntTest::pg_pids()], 6, 0, 6) }],
    ['postgres slowed' => sub { pause([EntTest::pg_pids()], 0.3, 0.1, 6) }],
    ['both down'      => sub { redis_stop(signal => 'KILL');
                               EntTest::pg_stop(mode => 'immediate');
                               sleep 5; pg_start(durable => 1); redis_start() }],
);

sub metric_sum {
    my ($name) = @_;
    my $t = http($admin, '/_ent/metrics')->{body};
    my $sum = 0;
    $sum += $1 while $t =~ /^\Q$name\E\{tenant="acme"[^}]*\} (\d+)$/mg;
    return $sum;
}

my (@windows, @reloads, %shm);
my $start = time;
my $round = 0;
sleep 4;
while (time < $start + $seconds - 20) {
    for my $f (@faults) {
        last if time >= $start + $seconds - 20;
        my $t0 = time;
        $f->[1]->();
        push @windows, [$f->[0], $t0, time];
        sleep 4;
    }
    # three reloads while the clients run and nothing else is wrong
    sleep 4;
    my $before = metric_sum('ent_requests_total');
    my $t0 = time;
    nginx_reload($n) for 1 .. 3;
    my $after = metric_sum('ent_requests_total');
    push @reloads, [$t0, time];
    sleep 4;
    $shm{"round $round: requests counted before the reloads kept"}
        = $after >= $before ? 1 : "$before then $after";
    $round++;
}
note(sprintf "%d fault rounds in %.0f s", $round, time - $start);

# the end: every kind recovers (no reload in between)
sleep 1 while time < $deadline;
waitpid $_, 0 for @kids;

is_deeply(\%shm, { map { ($_ => 1) } keys %shm },
          'reloads under load: the shared-memory counters kept');

# what each client may see: a login or a signed-in request may get 503
# while Redis or PostgreSQL is away, nothing else fails
my $login_ok = qr/(start:302|op:\d+|callback:302:[01])/;
my $login_out = qr/(start:503|callback:503:0)/;
my %allowed = (
    login   => qr/^($login_ok|$login_out)$/,
    session => qr/^(get:200|get:503|relogin:($login_ok|$login_out))$/,
    scim    => qr/^create:(201|429|503)$/,     # 429: SCIM's 60 a minute
    api     => qr/^(api:(200|503):acme|tight:(200|429|503):(acme|-))$/,
);
my $success = qr/^(callback:302:1|get:200|relogin:callback:302:1|create:(201|429)|api:200:acme|tight:(200:acme|429:-)|op:\d+|start:302)$/;

my (%count, @bad, @created, %logins, @in_reload_bad, %last_ok, @failed);
$logins{$first[1]} = 1;
for my $kind (sort keys %file) {
    open my $f, '<', $file{$kind} or die;
    while (my $line = <$f>) {
        chomp $line;
        my ($t, $end, $k, $what, @extra) = split ' ', $line;
        $count{$what =~ s/:.*//r}++;
        push @bad, $line unless $what =~ $allowed{$k};
        push @created, [@extra] if $what eq 'create:201';
        $logins{$extra[0]} = 1 if $what =~ /callback:302:1$/;
        for my $w (@reloads) {
            push @in_reload_bad, $line
                if $end >= $w->[0] && $t <= $w->[1] && $what !~ $success;
        }
        $last_ok{$k} = $t if $what =~ $success && $what !~ /^(op|start)/;
        push @failed, $t if $what !~ $success;
    }
}
note(join ', ', map { "$_ $count{$_}" } sort keys %count);
# how long each fault lasted, and how long after it requests still failed
# (the next fault starts 4 s after the end of one)
note("faults (lasted, failures after): " . join('; ', map {
    my $w = $_;
    my ($last) = sort { $b <=> $a }
        grep { $_ >= $w->[1] && $_ < $w->[2] + 3.9 } @failed;
    sprintf '%s %.1f s, %s', $w->[0], $w->[2] - $w->[1],
        defined $last ? sprintf('%.1f s', $last - $w->[2]) : 'none';
} @windows));

ok(($count{$_} // 0) > 20, "the $_ requests ran")
    for qw(callback get create api tight);
note("e.g. $bad[0]") if @bad;
ok(!@bad, 'every request answered with a status its kind may have '
          . '(no hang, no 500, no 502)')
    or diag(join "\n", @bad[0 .. ($#bad > 15 ? 15 : $#bad)]);
ok(@reloads >= 1, 'reloads happened under load');
ok(!@in_reload_bad, 'no failed request during the reloads')
    or diag(join "\n", @in_reload_bad[0 .. ($#in_reload_bad > 15 ? 15 : $#in_reload_bad)]);
for my $kind (sort keys %file) {
    ok(($last_ok{$kind} // 0) > $deadline - 6,
       "$kind: served again after the faults, without a reload");
}

# nothing acknowledged is lost

my %db = map { split /\|/ } split /\n/,
    pg_sql("SELECT id || '|' || user_name FROM ent.scim_users "
           . "WHERE tenant_id = '$tenant'");
my @missing = grep { ($db{$_->[0]} // '') ne $_->[1] } @created;
ok(@created > 20, scalar(@created) . ' users created with 201');
ok(!@missing, 'every user answered 201 is in PostgreSQL')
    or diag(scalar(@missing) . ' missing, e.g. ' . join ' ', @{ $missing[0] });
my %audited = map { $_ => 1 } split /\n/,
    pg_sql("SELECT target_id FROM ent.audit WHERE action = 'scim.user.create' "
           . "AND tenant_id = '$tenant'");
my @unaudited = grep { !$audited{$_->[0]} } @created;
ok(!@unaudited, 'and has its audit row') or diag(scalar @unaudited);

my $logins = keys %logins;
ok($logins > 5, "$logins logins with a session");
my $sql = "SELECT request_id FROM ent.audit WHERE action = 'login' "
        . "AND result = 'success' AND tenant_id = '$tenant'";
my @unlogged;
wait_until(sub {
    my %rows = map { $_ => 1 } split /\n/, pg_sql($sql);
    @unlogged = grep { !$rows{$_} } sort keys %logins;
    !@unlogged }, 30);
ok(!@unlogged, 'every login with a session has its audit row (the journal drained)')
    or diag(scalar(@unlogged) . " missing: @unlogged[0 .. ($#unlogged > 5 ? 5 : $#unlogged)]");

my $log = check_log($n, 'faults');
unlike($log, qr/exited on signal/, 'no worker died on a signal');
my $st = EntTest::decode_json_min(http($admin, '/ent_status')->{body});
is($st->{ops}, 0, 'no operation left behind');

nginx_stop($n);
done_testing;
