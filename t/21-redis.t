# The Redis client: replies of every type, pipelining, AUTH, SELECT, unix
# sockets, timeouts.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

redis_start();

my $config = <<'CONF';
location = /set { ent_test_redis SET $arg_k $http_x_value; }
location = /get { ent_test_redis GET $arg_k; }
location = /incr { ent_test_redis INCR $arg_k; }
location = /mget { ent_test_redis MGET $arg_a $arg_b; }
location = /bad { ent_test_redis NOSUCHCOMMAND x; }
location = /sleep { ent_test_redis DEBUG SLEEP $arg_s; }
location = /ping { ent_test_redis PING; }
location = /gate { ent_test_access_redis PING; return 200 "passed\n"; }
location = /counted {
    ent_test_access_redis INCR counted;
    proxy_pass http://127.0.0.1:$server_port/upstream;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
}
location = /upstream { return 200 "upstream\n"; }
location = /ent_status { ent_status; }
CONF

my $n = nginx_start(http_config => 'ent_redis 127.0.0.1:$TEST_REDIS_PORT '
                    . 'pool=2 timeout=500ms;',
                    config => $config);

my $r = http($n, '/set?k=greeting', headers => ['X-Value: hello world']);
is($r->{body}, "+OK\n", 'SET: a status reply');
$r = http($n, '/get?k=greeting');
is($r->{body}, "\$hello world\n", 'GET: a bulk string, spaces intact');
is(redis_cli('GET', 'greeting'), 'hello world', 'really stored in Redis');
$r = http($n, '/get?k=nothing');
is($r->{body}, "(nil)\n", 'a missing key is nil');
$r = http($n, '/incr?k=counter');
is($r->{body}, ":1\n", 'INCR: an integer');
$r = http($n, '/mget?a=greeting&b=nothing');
is($r->{body}, "*2\n\$hello world\n(nil)\n", 'MGET: an array');
$r = http($n, '/bad');
is($r->{status}, 502, 'an error reply');
like($r->{body}, qr/^-ERR unknown command/, 'carries the error');
$r = http($n, '/counted');
is($r->{body}, "upstream\n", 'an access-phase check waits for its reply');
is(redis_cli('GET', 'counted'), 1, 'one command for one request');

# keep-alive load: a write event on the client connection while the check
# waits must not run the check again
redis_cli('SET', 'counted', 0);
my $wrk = `wrk -t1 -c16 -d1s http://127.0.0.1:$n->{port}/counted 2>&1`;
my ($done) = $wrk =~ /(\d+) requests in/;
my $count = redis_cli('GET', 'counted');
ok($done > 100 && $count >= $done && $count <= $done + 16,
   "one command per request under load ($count for $done)")
    or diag $wrk;

# pipelining: 200 requests at once over two connections
my @h = map { http_start($n, '/incr?k=piped') } 1 .. 200;
my @res = map { http_finish($_) } @h;
is(scalar(grep { $_->{status} == 200 } @res), 200, '200 pipelined commands');
my %seen = map { $_->{body} => 1 } @res;
is(scalar(keys %seen), 200, 'each got its own reply');
is(redis_cli('GET', 'piped'), 200, 'and Redis counted 200');

# a command slower than the timeout drops the connection
$r = http($n, '/sleep?s=1');
is($r->{status}, 503, 'a command past the timeout is a 503');
sleep 1;
$r = http($n, '/ping');
is($r->{body}, "+PONG\n", 'a new connection serves the next command');
is(status_json($n)->{ops}, 0, 'no operation left behind');
nginx_stop($n);
like(check_log($n, 'timeout'), qr/did not answer within 500ms/,
     'the timeout is logged');

# SELECT and the unix socket
$n = nginx_start(http_config => 'ent_redis unix:$TEST_REDIS_SOCKET db=3;',
                 config => $config);
$r = http($n, '/set?k=indb3', headers => ['X-Value: three']);
is($r->{body}, "+OK\n", 'over the unix socket');
is(redis_cli('-n', 3, 'GET', 'indb3'), 'three', 'into database 3');
is(redis_cli('-n', 0, 'EXISTS', 'indb3'), 0, 'not into database 0');
nginx_stop($n);
check_log($n, 'unix socket');

# AUTH
redis_cli('CONFIG', 'SET', 'requirepass', 'S3cretPass');
$n = nginx_start(http_config => 'ent_redis 127.0.0.1:$TEST_REDIS_PORT '
                 . 'password=S3cretPass;', config => $config);
$r = http($n, '/ping');
is($r->{body}, "+PONG\n", 'AUTH with the right password');
nginx_stop($n);
check_log($n, 'auth');

sub connections {
    my ($c) = redis_cli('-a', 'S3cretPass', '--no-auth-warning', 'INFO',
                        'stats') =~ /total_connections_received:(\d+)/;
    return $c;
}
$n = nginx_start(http_config => 'ent_redis 127.0.0.1:$TEST_REDIS_PORT '
                 . 'password=WrongPass77 pool=1 backoff=50ms:400ms '
                 . 'timeout=3s;',
                 config => $config);
$r = http($n, '/ping');
is($r->{status}, 503, 'a refused AUTH: 503');
# (counted from now: a start under valgrind takes seconds)
sleep 1;
my $c0 = connections();
sleep 2;
my $tries = connections() - $c0;
# (at most every 400 ms once doubled: about 5 in 2 s; every 50 ms: 40)
ok($tries <= 10, "a refused AUTH backs off, doubling ($tries connections in 2 s)");
nginx_stop($n);
my $log = check_log($n, 'bad auth');
like($log, qr/refused AUTH or SELECT: WRONGPASS/, 'the refusal is logged');
unlike($log, qr/WrongPass77/, 'the password is not');
redis_cli('-a', 'S3cretPass', '--no-auth-warning', 'CONFIG', 'SET',
          'requirepass', '');

done_testing;
