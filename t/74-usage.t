# Quota usage rolled up to PostgreSQL per tenant and period (the billing
# system reads ent.usage), consolidated over a parent's children, nothing
# counted twice, nothing lost while PostgreSQL is down.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();
redis_start();

pg_sql("INSERT INTO ent.tenants (code, display_name, plan_id) "
       . "VALUES ('grp', 'Group', 'enterprise')");
pg_sql("INSERT INTO ent.tenants (code, display_name, parent_id) "
       . "SELECT c, c, id FROM ent.tenants, unnest(ARRAY['grp-a', 'grp-b']) c "
       . "WHERE code = 'grp'");
my $grp_a = pg_sql("SELECT id FROM ent.tenants WHERE code = 'grp-a'");

my $up = nginx_start(modules => ['core'],
                     config => 'location / { return 200 "ok\n"; }')->{port};

my $n = nginx_start(
    http_config => 'ent_postgres "$TEST_PG_DSN" pool=2 backoff=20ms:200ms; '
                 . 'ent_redis 127.0.0.1:$TEST_REDIS_PORT; '
                 . 'ent_ratelimit_budget 2s; ent_ratelimit_rollup 200ms; '
                 . 'ent_cache_zone tenants:1m ttl=1h stale=1h; '
                 . 'ent_ratelimit_policy q per=month limit=1000;',
    config => "ent_tenant on; ent_tenant_base_domain example.com;\n"
            . "location / { ent_ratelimit q; proxy_pass http://127.0.0.1:$up; }");

sub hit {
    my ($code, $times) = @_;
    http($n, '/', host => "$code.example.com") for 1 .. $times;
}

sub usage {
    my ($code, $view) = @_;
    $view ||= 'ent.usage';
    return pg_sql("SELECT coalesce(sum(u.used), 0) FROM $view u "
                  . "JOIN ent.tenants t ON t.id = u.tenant_id "
                  . "WHERE t.code = '$code' AND u.policy = 'q' AND "
                  . "u.period_start = date_trunc('month', now() AT TIME ZONE "
                  . "'UTC') AT TIME ZONE 'UTC'");
}

hit('grp-a', 5);
hit('grp-b', 3);
hit('grp', 2);

ok(wait_until(sub { usage('grp-a') == 5 && usage('grp-b') == 3
                    && usage('grp') == 2 }, 5),
   'usage per tenant and period, in ent.usage');
is(usage('grp', 'ent.usage_consolidated'), 10,
   'a parent\'s consolidated usage sums its children');
is(usage('grp-a', 'ent.usage_consolidated'), 5, 'a child\'s is its own');

sleep 0.6;
is(usage('grp-a'), 5, 'written again and again, counted once');

hit('grp-a', 2);
ok(wait_until(sub { usage('grp-a') == 7 }, 5), 'and it grows as used');

# PostgreSQL away: tenants come from the cache, counting goes on in Redis,
# and the usage is written when it is back
EntTest::pg_stop(mode => 'immediate');
hit('grp-a', 3);
is(redis_cli('GET', (grep { /\{t:$grp_a\}:q:/ }
                     split /\n/, redis_cli('--scan', '--pattern', 'rl:*'))[0]),
   10, 'Redis counted on');
pg_start();
ok(wait_until(sub { usage('grp-a') == 10 }, 10),
   'the usage reaches PostgreSQL once it is back: nothing lost');

nginx_stop($n);
check_log($n, 'usage');

done_testing;
