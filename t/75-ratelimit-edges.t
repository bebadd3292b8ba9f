# Rate limits at their edges: Retry-After of several exhausted policies,
# an error_page for 429 under a server-level policy, limit=unlimited for
# the tiers not listed, a counter Redis holds below one, and an error_page
# after an admitted request.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();
redis_start();

pg_sql("INSERT INTO ent.tenants (code, display_name, plan_id) VALUES "
       . "('free1', 'F', 'free'), ('team1', 'T', 'team')");

my $up = nginx_start(modules => ['core'],
                     config => 'location / { return 200 "ok\n"; }')->{port};

my $root = EntTest::tmpdir() . '/html';
mkdir $root;
open my $f, '>', "$root/429.html" or die $!;
print $f "the operator's own page\n";
close $f;

my $http = <<'CONF';
ent_postgres "$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:$TEST_REDIS_PORT;
ent_ratelimit_budget 2s;
ent_ratelimit_policy bmin per=minute limit=1 key=$http_x_b;
ent_ratelimit_policy bhour per=hour limit=1 key=$http_x_b;
ent_ratelimit_policy cpol per=hour limit=1 key=$http_x_c;
ent_ratelimit_policy dpol per=hour free=1 limit=unlimited;
ent_ratelimit_policy epol per=day limit=5 key=$http_x_e warn=20,40;
ent_ratelimit_policy fpol per=day limit=5 key=$http_x_f;
CONF

my $config = <<"CONF";
ent_tenant on;
ent_tenant_base_domain example.com;
add_header X-RL \$ent_ratelimit_status always;
ent_ratelimit cpol;
error_page 429 /429.html;
location = /429.html { root $root; }
location = /rlstatus { ent_ratelimit_status; }
location /b/ { ent_ratelimit bmin bhour; proxy_pass http://127.0.0.1:$up; }
location /c/ { proxy_pass http://127.0.0.1:$up; }
location /d/ { ent_ratelimit dpol; proxy_pass http://127.0.0.1:$up; }
location /e/ { ent_ratelimit epol; proxy_pass http://127.0.0.1:$up; }
location /f/ { ent_ratelimit fpol; root $root; error_page 404 /429.html; }
CONF

my $n = nginx_start(http_config => $http, config => $config);

sub get {
    my ($host, $path, @h) = @_;
    push @h, 'Accept: application/json' unless grep { /^Accept:/i } @h;
    return http($n, $path, host => $host, headers => \@h);
}

# B: two policies exhausted: Retry-After is the later of their resets
# (both requests in one minute)

my $sec = (gmtime)[0];
sleep(61 - $sec) if $sec > 56;
get('free1.example.com', '/b/', 'X-B: b1');
my $r = get('free1.example.com', '/b/', 'X-B: b1');
is($r->{status}, 429, 'both policies exhausted: 429');
my %t = ($r->{headers}{ratelimit}[0] // '') =~ /"(\w+)";r=0;t=(\d+)/g;
is(scalar(keys %t), 2, 'RateLimit: both at r=0');
my $retry = $r->{headers}{'retry-after'}[0] // 0;
ok(!grep({ $retry < $_ } values %t),
   "Retry-After ($retry) is no earlier than any exhausted policy's t ("
   . join(', ', map { "$_=$t{$_}" } sort keys %t) . ')');
# (in an hour's last minute the two reset together: either is the last)
my ($named) = $r->{body} =~ /"policy":"(\w+)"/;
my $last = (sort { $b <=> $a } values %t)[0] // -1;
ok($named && defined $t{$named} && $t{$named} == $last
   && $r->{body} =~ /"retry_after":$retry\}/,
   'the body names the policy that resets last')
    or diag($r->{body});

# C: a server-level policy and error_page 429: the error page's request is
# not rejected again

my $before = EntTest::decode_json_min(http($n, '/rlstatus', host => 'free1.example.com')->{body});
is(get('free1.example.com', '/c/', 'X-C: c1', 'Accept: text/html')
       ->{status}, 200, 'server-level policy: first admitted');
$r = get('free1.example.com', '/c/', 'X-C: c1', 'Accept: text/html');
is($r->{status}, 429, 'second: 429');
is($r->{body}, "the operator's own page\n", "error_page: the operator's page");
is(scalar @{ $r->{headers}{'retry-after'} // [] }, 1,
   'exactly one Retry-After');
my $after = EntTest::decode_json_min(http($n, '/rlstatus', host => 'free1.example.com')->{body});
is($after->{rejected} - $before->{rejected}, 1,
   'ent_ratelimit_status: the rejection counted once');

# D: limit=unlimited: tiers not listed are not limited

is(join(',', map { get('team1.example.com', '/d/')->{status} } 1 .. 3),
   '200,200,200', 'limit=unlimited: a tier not listed is not limited');
is(join(',', map { get('free1.example.com', '/d/')->{status} } 1 .. 2),
   '200,429', 'a listed tier keeps its limit');

# E: a counter below one (a give-back on a key Redis had lost): the
# policy's fallback decides, no bogus numbers

$r = get('free1.example.com', '/e/', 'X-E: e1');
is($r->{headers}{'x-rl'}[0], 'PASSED', 'counted through Redis');
my ($ekey) = grep { /:epol:/ } split /\n/,
    redis_cli('--scan', '--pattern', 'rl:*');
redis_cli('SET', $ekey, '-5');
$r = get('free1.example.com', '/e/', 'X-E: e1');
is($r->{status}, 200, 'INCR answered -4: admitted');
is($r->{headers}{'x-rl'}[0], 'FALLBACK', 'by the fallback (fail=local)');
like($r->{headers}{ratelimit}[0] // '', qr/^"epol";r=4;t=\d+$/,
     'RateLimit: the local count');
ok(!defined $r->{headers}{'ent-quota-warning'}, 'no Ent-Quota-Warning');

# an error_page for an admitted request is not counted under the policies
# of its location (here the server's)

$r = get('free1.example.com', '/f/nothing', 'X-F: f1', 'X-C: f1');
is($r->{status} . ' ' . $r->{body}, "404 the operator's own page\n",
   'admitted, then a 404 and its error_page');
is(join(',', sort map { /:(\w+):\d+:f1$/ ? $1 : () } split /\n/,
            redis_cli('--scan', '--pattern', 'rl:*')),
   'fpol', 'counted under fpol only, not under the error page\'s cpol');

nginx_stop($n);
check_log($n, 'edges');

done_testing;
