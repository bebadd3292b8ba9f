# Never block a worker: while one request waits on a slow Redis command
# and another on a slow PostgreSQL query, the same single worker serves
# other requests.  Asserted as an order of events, not as a timing: the
# plain request is answered while both slow ones are still unanswered.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use IO::Select;
use Test::More;

pg_start();
redis_start();

my $n = nginx_start(
    http_config => 'ent_postgres "$TEST_PG_DSN" pool=2; '
                 . 'ent_redis 127.0.0.1:$TEST_REDIS_PORT timeout=5s;',
    config => <<'CONF');
location = /slowpg { ent_test_pg "SELECT pg_sleep(2), 'pg done'"; }
location = /slowredis { ent_test_redis DEBUG SLEEP 2; }
location = /fastpg { ent_test_pg "SELECT 'fast'"; }
location = /plain { return 200 "plain\n"; }
location = /ent_status { ent_status; }
CONF

my $pid = status_json($n)->{pid};

my $pg = http_start($n, '/slowpg');
my $redis = http_start($n, '/slowredis');
sleep 0.2;

my $plain = http($n, '/plain');
my $fast = http($n, '/fastpg');
my $sel = IO::Select->new($pg->{sock}, $redis->{sock});
my @ready = $sel->can_read(0);

is($plain->{status}, 200, 'a plain request is served');
is($fast->{body}, "fast\n", 'a query on the other pooled connection too');
is(scalar @ready, 0, 'while both slow requests are still waiting');

my $st = status_json($n);
is($st->{pid}, $pid, 'all on the same single worker');
is($st->{postgres}{busy}, 1, 'one query in flight');
is($st->{redis}{busy}, 1, 'one command in flight');

my $pgr = http_finish($pg);
my $rr = http_finish($redis);
is($pgr->{body}, "|pg done\n", 'the slow query completes');
is($rr->{body}, "+OK\n", 'the slow command completes');
diag(sprintf 'plain %.1f ms, fast query %.1f ms, slow ones %.0f/%.0f ms',
     $plain->{elapsed} * 1000, $fast->{elapsed} * 1000,
     $pgr->{elapsed} * 1000, $rr->{elapsed} * 1000);

nginx_stop($n);
check_log($n, 'non-blocking');

done_testing;
