# Redis Sentinel: the core finds the master through the sentinels, follows
# a failover without a reload, waits for sentinels that are down, and
# survives sentinels that answer nonsense.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use IO::Socket::INET;
use POSIX ();
use Test::More;

my $config = <<'CONF';
location = /set { ent_test_redis SET $arg_k $http_x_value; }
location = /get { ent_test_redis GET $arg_k; }
location = /ping { ent_test_redis PING; }
location = /ent_status { ent_status; }
CONF

sub redis_conf {
    my ($sentinels, %o) = @_;
    return 'ent_redis sentinel='
        . join(',', map { "127.0.0.1:$_" } @$sentinels)
        . ' master=' . ($o{master} || 'mymaster')
        . ' pool=' . ($o{pool} || 2)
        . ' timeout=500ms connect_timeout=500ms backoff=50ms:500ms'
        . ($o{extra} ? " $o{extra}" : '') . ';';
}


# a master, its replica, three sentinels (quorum 2)

my $master = redis_node_start();
my $replica = redis_node_start(replicaof => $master->{port});
my @sentinels = map {
    sentinel_start(master => $master->{port}, quorum => 2)
} 1 .. 3;

ok(wait_until(sub {
    redis_node_cli($replica, 'INFO', 'replication')
        =~ /master_link_status:up/
}, 20), 'the replica is in sync');

# failover needs each sentinel to know the replica and the two others
ok(wait_until(sub {
    !grep {
        my $m = redis_node_cli($_, 'SENTINEL', 'master', 'mymaster');
        !($m =~ /num-other-sentinels\n(\d+)/ && $1 == 2
          && $m =~ /num-slaves\n(\d+)/ && $1 == 1)
    } @sentinels
}, 30, 0.2), 'the sentinels know each other and the replica');


# the master through the sentinels

my $n = nginx_start(http_config => redis_conf([map { $_->{port} } @sentinels]),
                    config => $config);

my $r = http($n, '/set?k=before', headers => ['X-Value: written before']);
is($r->{body}, "+OK\n", 'SET through the master the sentinels named');
is(redis_node_cli($master, 'GET', 'before'), 'written before',
   'stored on the master');
my $st = status_json($n)->{redis};
is($st->{master}, "127.0.0.1:$master->{port}", 'ent_status: the master');
is($st->{failovers}, 0, 'ent_status: no failover yet');
is(redis_node_cli($master, 'WAIT', 1, 1000), 1, 'the replica has the key');

my @pids = EntTest::worker_pids($n);
is(scalar @pids, 1, 'one worker');
my $log = EntTest::nginx_log_new($n);
like($log, qr/redis master "mymaster" is at 127\.0\.0\.1:$master->{port}/,
     'the discovery is logged');


# kill -9 the master: 503s while the sentinels fail over, then the
# promoted replica answers, in the same worker

redis_node_stop($master, signal => 'KILL');
my $killed = time;
my (%codes, $first_error, $last_error, $ok);

# (60 s: on a loaded machine, under a sanitizer, the sentinels' first
# election may fail; they try again after twice the failover timeout)
while (time < $killed + 60) {
    $r = http($n, '/get?k=before');
    $codes{$r->{status}}++;
    if ($r->{status} == 200) {
        if (defined $first_error && $r->{body} eq "\$written before\n") {
            $ok = time;
            last;
        }
    } else {
        $first_error //= time;
        $last_error = time;
    }
    sleep 0.05;
}

ok($ok, 'requests succeed again after the failover');
ok(!grep({ $_ != 200 && $_ != 503 } keys %codes),
   'in between, 503s only') or diag explain \%codes;
my $window = defined $ok && defined $first_error ? $ok - $first_error : -1;
note(sprintf 'failover error window: %.2f s (%d requests refused, '
     . 'first success %.2f s after kill -9)', $window, $codes{503} || 0,
     defined $ok ? $ok - $killed : -1);
ok($window > 0 && $window < 45, sprintf 'error window %.1f s', $window);

$r = http($n, '/set?k=after', headers => ['X-Value: written after']);
is($r->{body}, "+OK\n", 'a write goes to the new master');
is(redis_node_cli($replica, 'GET', 'after'), 'written after',
   'the promoted replica has it');
is(redis_node_cli($replica, 'ROLE') =~ /^master/ ? 1 : 0, 1,
   'the replica was promoted');
is_deeply([EntTest::worker_pids($n)], \@pids, 'the same worker, no reload');
$st = status_json($n)->{redis};
is($st->{master}, "127.0.0.1:$replica->{port}", 'ent_status: the new master');
is($st->{failovers}, 1, 'ent_status: one failover');
is($st->{connected}, 2, 'both connections up again');

nginx_stop($n);
$log = check_log($n, 'failover');
my $moved = "redis master \"mymaster\" moved from 127.0.0.1:$master->{port}"
    . " to 127.0.0.1:$replica->{port}";
like($log, qr/\Q$moved\E/, 'the move is logged');


# no sentinel up at start: 503s and a clear log line, then recovery when
# one comes up (on a port nginx already knows)

my @late = map { EntTest::free_port() } 1 .. 2;
$n = nginx_start(http_config => redis_conf(\@late, master => 'late'),
                 config => $config);
$r = http($n, '/ping');
is($r->{status}, 503, 'no sentinel: 503');
is(status_json($n)->{redis}{master}, undef, 'ent_status: no master known');
sleep 0.3;
$log = EntTest::nginx_log_new($n);
like($log, qr/no redis sentinel answered for master "late", asking again/,
     'logged clearly');
sentinel_start(port => $late[1], name => 'late', master => $replica->{port},
               quorum => 1);
ok(wait_until(sub { http($n, '/ping')->{body} eq "+PONG\n" }, 10),
   'served once a sentinel is up');
is(status_json($n)->{redis}{master}, "127.0.0.1:$replica->{port}",
   'ent_status: the master it named');
nginx_stop($n);
check_log($n, 'sentinels down at start');


# sentinels that answer nonsense: a fake one, its reply from a file

my $fake_dir = tmpdir() . '/fake-sentinel';
mkdir $fake_dir;
my $fake = fake_sentinel("$fake_dir/reply");

sub fake_sentinel {
    my ($file) = @_;
    my $srv = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                    LocalPort => 0, Proto => 'tcp',
                                    ReuseAddr => 1) or die "listen: $!";
    my $port = $srv->sockport;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # POSIX::_exit: no END block of the test may run in these
        $SIG{CHLD} = 'IGNORE';
        while (my $c = $srv->accept) {
            next if fork;
            my $buf = '';
            while ($buf !~ /get-master-addr-by-name.*\r\n.*\r\n/s) {
                my $n = sysread $c, $buf, 4096, length $buf;
                POSIX::_exit(0) unless $n;
            }
            open my $f, '<', $file or POSIX::_exit(0);
            binmode $f;
            local $/;
            my $reply = <$f>;
            syswrite $c, $reply unless $reply eq 'HANG';
            1 while sysread $c, $buf, 4096;
            POSIX::_exit(0);
        }
        POSIX::_exit(0);
    }
    close $srv;
    return { port => $port, pid => $pid };
}

END { kill 'KILL', $fake->{pid} if $fake && $fake->{pid} }

sub bulk { my ($s) = @_; return '$' . length($s) . "\r\n$s\r\n" }

my @cases = (
    [ 'a hostname', "*2\r\n" . bulk('localhost') . bulk('6379'),
      qr/reported "localhost" port "6379": not an IP address and port/ ],
    [ 'a bad port', "*2\r\n" . bulk('127.0.0.1') . bulk('99999'),
      qr/reported "127\.0\.0\.1" port "99999": not an IP address/ ],
    [ 'an unknown master', "*-1\r\n", qr/does not know the master/ ],
    [ 'an error', "-ERR no such thing\r\n", qr/error: ERR no such thing/ ],
    [ 'three elements', "*3\r\n" . bulk('127.0.0.1') . bulk('1') . bulk('2'),
      qr/unexpected reply to SENTINEL get-master-addr-by-name/ ],
    [ 'an integer', ":42\r\n", qr/unexpected reply/ ],
    [ 'nested arrays', "*2\r\n*1\r\n" . bulk('x') . bulk('1'),
      qr/unexpected reply/ ],
    [ 'garbage', "!!!garbage\r\n", qr/protocol error/ ],
    [ 'no answer', 'HANG', qr/no answer within 500ms/ ],
);

for my $case (@cases) {
    my ($name, $reply, $expect) = @$case;
    open my $f, '>', "$fake_dir/reply" or die $!;
    binmode $f;
    print $f $reply;
    close $f;
    $n = nginx_start(http_config => redis_conf([$fake->{port}]),
                     config => $config, settle => 0.8);
    $r = http($n, '/ping');
    is($r->{status}, 503, "fake sentinel, $name: 503");
    nginx_stop($n);
    $log = check_log($n, "fake sentinel, $name");
    like($log, $expect, "fake sentinel, $name: logged");
}

# a nonsense sentinel first, a real one next: the next one is asked

open my $f, '>', "$fake_dir/reply" or die $!;
print $f "*2\r\n" . bulk('localhost') . bulk('6379');
close $f;
$n = nginx_start(http_config => redis_conf([$fake->{port},
                                            map { $_->{port} } @sentinels]),
                 config => $config);
$r = http($n, '/get?k=after');
is($r->{body}, "\$written after\n", 'the next sentinel is asked');
nginx_stop($n);
check_log($n, 'next sentinel');


# a "master" that is a replica: ROLE says so, the connection is dropped

my $second = redis_node_start(replicaof => $replica->{port});
open $f, '>', "$fake_dir/reply" or die $!;
print $f "*2\r\n" . bulk('127.0.0.1') . bulk($second->{port});
close $f;
$n = nginx_start(http_config => redis_conf([$fake->{port}]),
                 config => $config, settle => 0.8);
$r = http($n, '/set?k=x', headers => ['X-Value: y']);
is($r->{status}, 503, 'a replica named as master: 503');
nginx_stop($n);
$log = check_log($n, 'role');
my $role = "redis 127.0.0.1:$second->{port} is not the master of"
    . " \"mymaster\" (ROLE)";
like($log, qr/\Q$role\E/, 'ROLE mismatch logged');
is(redis_node_cli($second, 'EXISTS', 'x'), 0, 'nothing written there');


# a master demoted under a live connection: -READONLY fails the command
# with a 503 and the sentinels are asked again

my $third = redis_node_start();
open $f, '>', "$fake_dir/reply" or die $!;
print $f "*2\r\n" . bulk('127.0.0.1') . bulk($third->{port});
close $f;
$n = nginx_start(http_config => redis_conf([$fake->{port}], pool => 1),
                 config => $config);
# (the master is found after the start, asynchronously: on a loaded
# machine the first request may come before)
ok(wait_until(sub {
    http($n, '/set?k=x', headers => ['X-Value: y'])->{body} eq "+OK\n"
}, 5), 'the named master takes writes');
redis_node_cli($third, 'REPLICAOF', '127.0.0.1', $replica->{port});
$r = http($n, '/set?k=x', headers => ['X-Value: z']);
is($r->{status}, 503, 'demoted: 503');
redis_node_cli($third, 'REPLICAOF', 'NO', 'ONE');
ok(wait_until(sub {
    http($n, '/set?k=x', headers => ['X-Value: w'])->{body} eq "+OK\n"
}, 10), 'a master again: served');
nginx_stop($n);
$log = check_log($n, 'readonly');
like($log, qr/redis 127\.0\.0\.1:\d+ answered "READONLY[^"]*", asking the /,
     '-READONLY logged');

done_testing;
