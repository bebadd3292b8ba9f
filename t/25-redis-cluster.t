# Redis Cluster: slot routing by per-tenant hash tag, one connection per
# master per worker, MOVED and ASK followed, the slot map refreshed, a
# resharding under load that loses and doubles nothing, a master's
# failover, and nodes that answer nonsense.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Test::More;

my $config = <<'CONF';
location = /set { ent_test_redis SET $arg_k $http_x_value; }
location = /get { ent_test_redis GET $arg_k; }
location = /incr { ent_test_redis INCR $arg_k; }
location = /ping { ent_test_redis PING; }
location = /huge { ent_test_redis HUGE; }
location = /ent_status { ent_status; }
CONF

sub cluster_conf {
    my ($seeds, %o) = @_;
    return 'ent_redis cluster=' . join(',', map { "127.0.0.1:$_" } @$seeds)
        . ' timeout=500ms connect_timeout=500ms backoff=50ms:500ms'
        . ($o{extra} ? " $o{extra}" : '') . ';';
}

my ($masters, $replicas) = redis_cluster_start(masters => 3, replicas => 1);
my @all = (@$masters, @$replicas);
is(scalar @$masters, 3, 'three masters');
is(scalar @$replicas, 3, 'three replicas');

# one seed is enough: the map names the others
my $n = nginx_start(http_config => cluster_conf([$masters->[0]{port}]),
                    config => $config);

ok(wait_until(sub {
    my $st = status_json($n)->{redis};
    $st->{cluster} && $st->{cluster}{nodes} == 3 && $st->{connected} == 3
}, 10, 0.1), 'the slot map names three masters, each connected')
    or diag explain status_json($n)->{redis};

# keys of 30 tenants: each stored on the master of its tenant's slot

my %on;
for my $i (1 .. 30) {
    my $key = "ent:{t:tenant$i}:k";
    my $r = http($n, "/set?k=$key", headers => ["X-Value: v$i"]);
    is($r->{body}, "+OK\n", "SET $key") or last;
    my ($owner) = redis_cluster_owner($masters, $key);
    is(redis_node_cli($owner, 'GET', $key), "v$i", "on its slot's master");
    $on{$owner->{port}}++;
    $r = http($n, "/get?k=$key");
    is($r->{body}, "\$v$i\n", "GET $key");
}
is(scalar keys %on, 3, 'the tenants spread over the three masters')
    or diag explain \%on;
my $r;
my $st = status_json($n)->{redis};
is($st->{cluster}{redirects}, 0, 'no redirection once the map is loaded');
is($st->{master}, undef, 'no single master in ent_status');


# entctl's platform-wide maintenance switch, given a node that does not
# hold the key: it follows the MOVED

pg_start();
my ($mowner) = redis_cluster_owner($masters, 'ent:maintenance');
my ($mother) = grep { $_ != $mowner } @$masters;
my $entctl = "$EntTest::TOP/bin/entctl --dsn '" . EntTest::pg_dsn()
    . "' --redis 127.0.0.1:$mother->{port}";
is(system("$entctl maintenance on --retry-after 7"), 0,
   'entctl maintenance on, through a node that redirects');
is(redis_node_cli($mowner, 'GET', 'ent:maintenance'), '7',
   'the flag is on the node that holds it');
is(system("$entctl maintenance off"), 0, 'and off');
is(redis_node_cli($mowner, 'EXISTS', 'ent:maintenance'), '0', 'gone');
EntTest::pg_stop();

# helpers: a key's slot, its owner, moving a slot by hand (EntTest)

sub crc16 {
    my $crc = 0;
    for my $c (unpack 'C*', $_[0]) {
        $crc ^= $c << 8;
        $crc = $crc & 0x8000 ? (($crc << 1) ^ 0x1021) & 0xffff
                             : ($crc << 1) & 0xffff for 1 .. 8;
    }
    return $crc;
}
sub tenant_slot { return crc16("t:$_[0]") & 16383 }
sub owner { return (redis_cluster_owner($masters, "{t:$_[0]}"))[0] }

sub migrate_begin { redis_cluster_migrate_begin(@_) }
sub migrate_keys { redis_cluster_migrate_keys(@_) }
sub migrate_end { redis_cluster_migrate_end($masters, @_) }
sub other_master { my ($node) = @_; return (grep { $_ != $node } @$masters)[0] }


# MOVED: a slot moved behind nginx's back; the next call is redirected,
# the map corrected, and the call after goes straight to the new owner

my $tenant = 'tenant1';
my $key = "ent:{t:$tenant}:k";
my $from = owner($tenant);
my $to = other_master($from);
my $slot = tenant_slot($tenant);
is(redis_node_cli($from, 'CLUSTER', 'KEYSLOT', $key), $slot,
   "the test's CRC16 agrees with Redis: slot $slot");

migrate_begin($slot, $from, $to);
migrate_end($slot, $from, $to);
is(owner($tenant)->{port}, $to->{port}, "slot $slot moved by hand");

$r = http($n, "/get?k=$key");
is($r->{body}, "\$v1\n", 'GET after the move: MOVED followed');
$st = status_json($n)->{redis};
is($st->{cluster}{redirects}, 1, 'one redirection');
ok(wait_until(sub { status_json($n)->{redis}{cluster}{maps} >= 2 }, 5, 0.05),
   'the whole map reloaded after the MOVED');
$r = http($n, "/set?k=$key", headers => ['X-Value: v1 moved']);
is($r->{body}, "+OK\n", 'SET after the move');
is(redis_node_cli($to, 'GET', $key), 'v1 moved', 'stored on the new owner');
is(status_json($n)->{redis}{cluster}{redirects}, 1,
   'no redirection once the map is corrected');


# ASK: a slot half migrated; a key already on the target is read there
# after ASKING, a key still on the source from the source, a new key
# written on the target; the map stays

$tenant = 'tenant2';
my $moved = "ent:{t:$tenant}:moved";
my $stays = "ent:{t:$tenant}:stays";
$from = owner($tenant);
$to = other_master($from);
$slot = tenant_slot($tenant);
redis_node_cli($from, 'SET', $moved, 'on the target');
redis_node_cli($from, 'SET', $stays, 'on the source');

migrate_begin($slot, $from, $to);
is(migrate_keys($slot, $from, $to, $moved), 'OK', 'one key migrated');
my $redirects = status_json($n)->{redis}{cluster}{redirects};
my $maps = status_json($n)->{redis}{cluster}{maps};

$r = http($n, "/get?k=$moved");
is($r->{body}, "\$on the target\n", 'a migrated key: ASK followed');
$r = http($n, "/get?k=$stays");
is($r->{body}, "\$on the source\n", 'a key not migrated: from the source');
$r = http($n, "/set?k=ent:{t:$tenant}:new", headers => ['X-Value: new']);
is($r->{body}, "+OK\n", 'a new key during the migration');
is(EntTest::capture('sh', '-c', "printf 'ASKING\\nGET ent:{t:$tenant}:new\\n' "
           . "| redis-cli -p $to->{port}"), "OK\nnew",
   'written on the importing node');
$st = status_json($n)->{redis}{cluster};
is($st->{redirects}, $redirects + 2, 'two ASK redirections');
is($st->{maps}, $maps, 'an ASK leaves the map alone');
$r = http($n, "/get?k=$moved");
is($r->{body}, "\$on the target\n", 'ASK again: one at a time');

migrate_end($slot, $from, $to);
$r = http($n, "/get?k=$stays");
is($r->{body}, "\$on the source\n", 'the migration ends: MOVED followed');
is(redis_node_cli($to, 'GET', $stays), 'on the source',
   'the key on the new owner');


# resharding under load: two clients INCR the counters of twelve tenants
# while the tenants' slots move between masters and back; every request
# succeeds, and every counter holds exactly the increments answered

my @tenants = map { "load$_" } 1 .. 12;
my $stop = "${\ EntTest::tmpdir()}/stop-load";
unlink $stop;
my @kids;
for my $k (1 .. 2) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my (%ok, %bad);
        my $i = $k;
        until (-e $stop) {
            my $t = $tenants[$i++ % @tenants];
            my $res = http($n, "/incr?k=ent:{t:$t}:n");
            if ($res->{status} == 200 && $res->{body} =~ /^:\d+\n\z/) {
                $ok{$t}++;
            } else {
                $bad{"$res->{status} $res->{body}"}++;
            }
        }
        open my $f, '>', "${\ EntTest::tmpdir()}/load-$k" or die $!;
        print $f "ok $_ $ok{$_}\n" for keys %ok;
        print $f "bad $_\t$bad{$_}\n" for keys %bad;
        close $f;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}

$redirects = status_json($n)->{redis}{cluster}{redirects};
my $moves = 0;
my $began = time;
for my $round (1 .. 3) {
    for my $t (@tenants[0 .. 5]) {
        my $s = tenant_slot($t);
        my $a = owner($t);
        my $b = $masters->[($round + $s) % 3] == $a
            ? other_master($a) : $masters->[($round + $s) % 3];
        migrate_begin($s, $a, $b);
        select undef, undef, undef, 0.05;      # ASKs under way
        migrate_end($s, $a, $b);
        $moves++;
        select undef, undef, undef, 0.05;      # MOVEDs under way
    }
}
my $took = time - $began;
open my $f, '>', $stop or die $!;
close $f;
waitpid $_, 0 for @kids;

my (%ok, %bad);
for my $k (1 .. 2) {
    open my $in, '<', "${\ EntTest::tmpdir()}/load-$k" or die $!;
    while (<$in>) {
        chomp;
        if (/^ok (\S+) (\d+)$/) { $ok{$1} += $2 }
        elsif (/^bad (.*)\t(\d+)$/) { $bad{$1} += $2 }
    }
}
my $total = 0;
$total += $_ for values %ok;
is_deeply(\%bad, {}, "every request answered 200 during $moves slot moves")
    or diag explain \%bad;
for my $t (@tenants) {
    my $got = http($n, "/get?k=ent:{t:$t}:n")->{body};
    is($got, "\$" . ($ok{$t} // 0) . "\n",
       "$t: the counter holds exactly the increments answered");
}
$st = status_json($n)->{redis}{cluster};
ok($st->{redirects} > $redirects, 'the load went through redirections');
note(sprintf '%d slot moves in %.1f s under %d requests; %d redirections',
     $moves, $took, $total, $st->{redirects} - $redirects);


# rate limits through the cluster: exact across two nginx nodes, each
# key's counter on its own slot's master

my $up = nginx_start(modules => ['core'],
                     config => 'location / { return 200 "ok\n"; }')->{port};
my $rl_http = cluster_conf([$masters->[1]{port}]) . "\n"
    . 'ent_ratelimit_policy exact per=day limit=25 key=$http_x_key;'
    # the decision waits for Redis (no local fallback) even under valgrind
    . 'ent_ratelimit_budget 2s;';
my $rl_config = "location = /rl { ent_ratelimit exact; "
    . "proxy_pass http://127.0.0.1:$up/; }\n"
    . "location = /ent_status { ent_status; }";
my @rl = map { nginx_start(http_config => $rl_http, config => $rl_config) }
    1 .. 2;
for my $node (@rl) {
    wait_until(sub { status_json($node)->{redis}{cluster}{nodes} == 3 },
               10, 0.1);
}
my %rl;
for my $key (qw(alpha beta)) {
    my @h = map {
        http_start($rl[$_ % 2], '/rl', headers => ["X-Key: $key"])
    } 1 .. 60;
    $rl{$key}{ http_finish($_)->{status} }++ for @h;
}
is_deeply(\%rl, { alpha => { 200 => 25, 429 => 35 },
                   beta => { 200 => 25, 429 => 35 } },
          'limit 25 of 60 requests over two nodes, per key, exactly')
    or diag explain \%rl;
nginx_stop($_) for @rl;


# a master fails: its replica takes over its slots; the other masters'
# tenants never notice, the failed master's tenants get 503s until the
# map names the promoted replica, then their data (replicated) is there

my $victim = owner('tenant3');
my ($spared_tenant) = grep { owner($_) != $victim } map { "tenant$_" } 4 .. 30;
is(redis_node_cli($victim, 'WAIT', 1, 2000), 1, 'the replica has it all');
my @pids = EntTest::worker_pids($n);

redis_node_stop($victim, signal => 'KILL');
my $killed = time;
my (%codes, %spared, $first_error, $back);
while (time < $killed + 30) {
    my $res = http($n, '/get?k=ent:{t:tenant3}:k');
    $codes{$res->{status}}++;
    if ($res->{status} == 200) {
        if ($res->{body} eq "\$v3\n") {
            $back = time;
            last if defined $first_error;
        }
    } else {
        $first_error //= time;
    }
    $res = http($n, "/get?k=ent:{t:$spared_tenant}:k");
    $spared{$res->{status}}++;
    select undef, undef, undef, 0.02;
}
ok(defined $first_error, 'the failed master\'s tenant is refused for a while');
ok($back && $back > $first_error, 'then served again, its data intact');
ok(!grep({ $_ != 200 && $_ != 503 } keys %codes), 'in between, 503s only')
    or diag explain \%codes;
is_deeply([keys %spared], [200], 'the other masters\' tenants: all 200')
    or diag explain \%spared;
note(sprintf 'cluster failover error window: %.2f s (%d refused)',
     ($back // 0) - ($first_error // 0), $codes{503} || 0);
is_deeply([EntTest::worker_pids($n)], \@pids, 'the same worker, no reload');
$st = status_json($n)->{redis};
is($st->{cluster}{nodes}, 3, 'three masters in the map again');
is($st->{connected}, 3, 'one connection to each');

nginx_stop($n);
my $log = check_log($n, 'cluster');
like($log, qr/redis cluster slot map from 127\.0\.0\.1:\d+: \d+ ranges on 3 masters/,
     'a new slot map is logged');


# seeds: a dead one first, then a live one; the map comes from the live

my $dead = EntTest::free_port();
my $live = (grep { $_->{pid} } @$masters)[0];
$n = nginx_start(http_config => cluster_conf([$dead, $live->{port}]),
                 config => $config);
ok(wait_until(sub { status_json($n)->{redis}{cluster}{nodes} == 3 }, 10, 0.1),
   'a dead first seed: the map from the second');
$r = http($n, '/get?k=ent:{t:tenant1}:k');
is($r->{body}, "\$v1 moved\n", 'and the data');
nginx_stop($n);


# a node that answers nonsense: a malformed slot map is refused, a
# redirection to a hostname or out of range is handed back as the error
# it is; nothing crashes

my $fake_port = EntTest::free_port();
my $fake = fork // die "fork: $!";
if ($fake == 0) {
    my $l = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                  LocalPort => $fake_port, ReuseAddr => 1)
        or POSIX::_exit(1);
    my $sel = IO::Select->new($l);
    my %buf;
    for (;;) {
        for my $s ($sel->can_read(1)) {
            if ($s == $l) { $sel->add($l->accept); next }
            my $n = sysread $s, my $chunk, 65536;
            if (!$n) { $sel->remove($s); close $s; next }
            $buf{$s} .= $chunk;
            while ($buf{$s} =~ s/^\*(\d+)\r\n((?:\$\d+\r\n[^\r]*\r\n)+)//) {
                my @a = $2 =~ /\$\d+\r\n([^\r]*)\r\n/g;
                my $c = uc $a[0];
                my $out =
                    $c eq 'CLUSTER' ? "*1\r\n*3\r\n:5\r\n:1\r\n*2\r\n"
                                      . "\$9\r\n127.0.0.1\r\n:6379\r\n"
                  : $c eq 'GET' ? "-MOVED 12 redis.example:6379\r\n"
                  : $c eq 'SET' ? "-MOVED 99999 127.0.0.1:1\r\n"
                  : $c eq 'INCR' ? "-ASK 5 127.0.0.1:0\r\n"
                  : $c eq 'HUGE' ? "*2000000000\r\n"
                  : "+PONG\r\n";
                syswrite $s, $out;
            }
        }
    }
}
EntTest::wait_until(sub { EntTest::port_open($fake_port) }, 5);
$n = nginx_start(http_config => cluster_conf([$fake_port]), config => $config);
ok(wait_until(sub {
    EntTest::nginx_log($n) =~ /malformed CLUSTER SLOTS reply/ }, 5, 0.05),
   'a malformed slot map is refused');
$r = http($n, '/get?k=x');
is($r->{status}, 502, 'MOVED to a hostname: the error as it is');
is($r->{body}, "-MOVED 12 redis.example:6379\n", 'its text');
$r = http($n, '/set?k=x', headers => ['X-Value: y']);
is($r->{body}, "-MOVED 99999 127.0.0.1:1\n", 'MOVED to slot 99999: as it is');
$r = http($n, '/incr?k=x');
is($r->{body}, "-ASK 5 127.0.0.1:0\n", 'ASK to port 0: as it is');
$r = http($n, '/huge');
is($r->{status}, 503, 'an array of two billion elements: refused, 503');
ok(wait_until(sub { http($n, '/ping')->{body} eq "+PONG\n" }, 5, 0.05),
   'the connection is made again, the node still serves');
is(status_json($n)->{redis}{cluster}{redirects}, 0, 'nothing followed');
sleep 2;
my $refusals = () = EntTest::nginx_log($n) =~ /malformed CLUSTER SLOTS reply/g;
ok($refusals >= 2 && $refusals <= 8, "a refused map is asked for again, "
   . "less and less often ($refusals times in about 2.5 s)");
nginx_stop($n);
$log = check_log($n, 'nonsense');
like($log, qr/redirects to an address that is no IP literal: "MOVED 12 redis\.example:6379"/,
     'the hostname is logged');
like($log, qr/redis protocol error/, 'the huge array is logged');
kill 'KILL', $fake;
waitpid $fake, 0;

done_testing();
