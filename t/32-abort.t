# A client that goes away while its query or command is in flight: the
# reply arrives later and is dropped; nothing crashes, nothing leaks (the
# live operation count returns to zero; ASan watches under SANITIZE=1).
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Socket qw(SOL_SOCKET SO_LINGER);
use Test::More;

pg_start();
redis_start();

my $n = nginx_start(
    http_config => 'ent_postgres "$TEST_PG_DSN" pool=1 queue=16; '
                 . 'ent_redis 127.0.0.1:$TEST_REDIS_PORT; '
                 . 'ent_cache_zone slow:1m;',
    config => <<'CONF');
location = /pg { ent_test_pg "SELECT pg_sleep(0.5), 'late'"; }
location = /redis { ent_test_redis DEBUG SLEEP 0.5; }
location = /gate { ent_test_access_redis DEBUG SLEEP 0.3; return 200 "in\n"; }
location = /cache {
    ent_test_cache slow "SELECT pg_sleep(0.5), $1::text" $arg_k $arg_k;
}
location = /ok { ent_test_pg "SELECT 'fine'"; }
location = /ent_status { ent_status; }
CONF

my $pid = status_json($n)->{pid};

sub abort_all {
    my ($rst, @paths) = @_;
    for my $p (@paths) {
        my $h = http_start($n, $p);
        setsockopt($h->{sock}, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0))
            if $rst;
        close $h->{sock};
    }
}

# a query in flight, queued queries, a command, an access-phase wait and
# coalesced cache waiters: every client leaves at once
abort_all(0, ('/pg') x 3, '/redis', '/gate', ('/cache?k=a') x 5);
sleep 0.1;
abort_all(1, ('/pg') x 3, '/gate', ('/cache?k=b') x 5);

ok(wait_until(sub { status_json($n)->{ops} == 0 }, 10),
   'every operation is freed once its reply arrives');

my $st = status_json($n);
is($st->{pid}, $pid, 'the worker survived');
is($st->{postgres}{queued}, 0, 'nothing left in the queue');
is(http($n, '/ok')->{body}, "fine\n", 'the pool still serves');
is(http($n, '/cache?k=a')->{status}, 200,
   'the fill a departed client started still filled the cache');
is(http($n, '/cache?k=a')->{headers}{'x-cache'}[0], 'HIT', 'as a hit');

nginx_stop($n);
check_log($n, 'client abort');

done_testing;
