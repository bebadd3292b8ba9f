# The shared-memory cache: TTL, negative entries, eviction when full,
# coalescing (100 concurrent misses, one query counted by PostgreSQL
# itself), survival across a reload, stale answers while the backend is
# down.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();

pg_sql(<<'SQL');
CREATE TABLE kv (k text PRIMARY KEY, v text NOT NULL);
CREATE TABLE calls (n integer NOT NULL);
INSERT INTO calls VALUES (0);
INSERT INTO kv VALUES ('a', 'apple'), ('c', 'cherry'), ('r', 'rhubarb'),
                      ('s', 'sorrel');
CREATE FUNCTION lookup(key text, delay float8) RETURNS SETOF text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    UPDATE calls SET n = n + 1;
    PERFORM pg_sleep(delay);
    RETURN QUERY SELECT v FROM kv WHERE k = key;
END
$$;
SQL

sub calls { return pg_sql('SELECT n FROM calls') }

my $http = <<'CONF';
ent_postgres "$TEST_PG_DSN" pool=4 listen=off;
ent_cache_zone kv:1m ttl=1s negative_ttl=500ms;
ent_cache_zone small:32k ttl=60s;
ent_cache_zone long:1m ttl=60s;
ent_cache_zone st:1m ttl=300ms stale=1h error_ttl=100ms;
CONF

my $config = <<'CONF';
location = /kv { ent_test_cache kv "SELECT * FROM lookup($1, 0)" $arg_k $arg_k; }
location = /kvslow {
    ent_test_cache kv "SELECT * FROM lookup($1, 0.5)" $arg_k $arg_k;
}
location = /small {
    ent_test_cache small "SELECT repeat('x', 1000) || $1" $arg_k $arg_k;
}
location = /long { ent_test_cache long "SELECT * FROM lookup($1, 0)" $arg_k $arg_k; }
location = /st { ent_test_cache st "SELECT * FROM lookup($1, 0)" $arg_k $arg_k; }
location = /ent_status { ent_status; }
CONF

my $n = nginx_start(http_config => $http, config => $config);

sub get {
    my ($path) = @_;
    my $r = http($n, $path);
    return ($r->{status}, $r->{headers}{'x-cache'}[0] // '', $r->{body});
}

# miss, hit, expiry
my $c0 = calls();
is_deeply([get('/kv?k=a')], [200, 'MISS', "apple\n"], 'a miss asks PostgreSQL');
is_deeply([get('/kv?k=a')], [200, 'HIT', "apple\n"], 'then it is a hit');
is(calls() - $c0, 1, 'one query for the two');
sleep 1.1;
is_deeply([get('/kv?k=a')], [200, 'MISS', "apple\n"], 'expired after its TTL');
is(calls() - $c0, 2, 'and asked again');

# negative entries
is_deeply([get('/kv?k=n')], [404, 'MISS', "not found\n"], 'an absent key');
is_deeply([get('/kv?k=n')], [404, 'NEGATIVE', "not found\n"],
          'is cached as absent');
pg_sql("INSERT INTO kv VALUES ('n', 'nettle')");
is_deeply([get('/kv?k=n')], [404, 'NEGATIVE', "not found\n"],
          'until negative_ttl passes');
sleep 0.6;
is_deeply([get('/kv?k=n')], [200, 'MISS', "nettle\n"], 'then found');

# coalescing: 100 concurrent misses of one key, one query
$c0 = calls();
my @h = map { http_start($n, '/kvslow?k=c') } 1 .. 100;
my @res = map { http_finish($_) } @h;
is(scalar(grep { $_->{status} == 200 && $_->{body} eq "cherry\n" } @res), 100,
   '100 concurrent misses all answered');
is(calls() - $c0, 1, 'by exactly one query, counted by PostgreSQL');

# eviction: a 32k zone and 1k values
for my $i (1 .. 60) {
    get("/small?k=$i");
}
my $st = status_json($n)->{caches}{small};
ok($st->{evictions} > 0, "a full zone evicts ($st->{evictions} so far)");
ok($st->{entries} < 60, "and holds fewer entries ($st->{entries})");
is((get('/small?k=60'))[1], 'HIT', 'the newest entry is kept');
is((get('/small?k=1'))[1], 'MISS', 'the least recently used one went');

# survival across a reload
$c0 = calls();
is((get('/long?k=r'))[1], 'MISS', 'cached before the reload');
EntTest::nginx_reload($n);
is_deeply([get('/long?k=r')], [200, 'HIT', "rhubarb\n"],
          'still cached after it');
is(calls() - $c0, 1, 'without another query');

# stale answers while PostgreSQL is down (stale=1h), none without stale
is((get('/st?k=s'))[1], 'MISS', 'cached');
is((get('/kv?k=a'))[2], "apple\n", 'cached too, without stale');
EntTest::pg_stop();
sleep 1.1;
my @r = get('/st?k=s');
is_deeply([@r[0, 2]], [200, "sorrel\n"], 'expired, backend down: stale');
is((get('/kv?k=a'))[0], 503, 'without stale: 503');
pg_start();
ok(wait_until(sub { (get('/kv?k=a'))[0] == 200 }, 10),
   'answers again once PostgreSQL is back');

$st = status_json($n);
ok($st->{caches}{st}{stale} >= 1, 'stale answers are counted');
is($st->{ops}, 0, 'no operation left behind');

nginx_stop($n);
check_log($n, 'cache');

# coalescing across two workers: the second polls the first one's fill
$n = nginx_start(http_config => $http, config => $config, workers => 2);
$c0 = calls();
@h = map { http_start($n, '/kvslow?k=a') } 1 .. 100;
@res = map { http_finish($_) } @h;
is(scalar(grep { $_->{status} == 200 } @res), 100,
   'two workers: 100 concurrent misses answered');
# (under valgrind a poll may give up on a fill that slow and query itself)
if ($EntTest::SLOW > 1) {
    ok(calls() - $c0 <= 2, 'two workers: at most one query per worker');
} else {
    is(calls() - $c0, 1, 'two workers: one query');
}
nginx_stop($n);
check_log($n, 'two workers');

done_testing;
