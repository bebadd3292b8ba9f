# Monthly quotas: the period runs from the tenant's billing anchor day to
# the same day next month (not 30 days); soft thresholds at 80% and 95%;
# the limiter's clock injected with ent_ratelimit_time_offset.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();
redis_start();

pg_sql("INSERT INTO ent.tenants (code, display_name, plan_id) VALUES "
       . "('bill', 'Bill', 'team'), ('first', 'First', 'team')");
my $entctl = "$EntTest::TOP/bin/entctl --dsn '" . EntTest::pg_dsn() . "'";
is(system("$entctl tenant update bill --billing-day 15"), 0,
   'entctl sets the billing day');
isnt(system("$entctl tenant update bill --billing-day 31 2>/dev/null"), 0,
     'and refuses a day past the 28th');
pg_sql("INSERT INTO ent.tenants (code, display_name, parent_id) "
       . "SELECT 'billkid', 'Kid', id FROM ent.tenants WHERE code = 'bill'");

my $up = nginx_start(modules => ['core'],
                     config => 'location / { return 200 "ok\n"; }')->{port};

sub node_at {
    my ($when) = @_;
    my $offset = $when - int(time);
    return nginx_start(
        http_config => 'ent_postgres "$TEST_PG_DSN" pool=2; '
                     . 'ent_redis 127.0.0.1:$TEST_REDIS_PORT; '
                     . 'ent_ratelimit_budget 2s; '
                     . "ent_ratelimit_time_offset $offset; "
                     . 'ent_ratelimit_policy aiq per=month free=5 team=10 '
                     . 'status=402;',
        config => "ent_tenant on; ent_tenant_base_domain example.com;\n"
                . "location = /anchor { "
                . "return 200 \"\$ent_tenant_billing_anchor\\n\"; }\n"
                . "location / { ent_ratelimit aiq; "
                . "proxy_pass http://127.0.0.1:$up; }");
}

# 2026-03-14 23:59:00 UTC: the period began 2026-02-15, ends 2026-03-15
my $n = node_at(1773532740);

is(http($n, '/anchor', host => 'billkid.example.com')->{body}, "15\n",
   '$ent_tenant_billing_anchor, inherited');

my @r = map { http($n, '/', host => 'bill.example.com',
                 headers => ['Accept: application/json']) } 1 .. 11;

is($r[0]{headers}{'ratelimit-policy'}[0], '"aiq";q=10;w=2419200',
   'a 28-day period: February 15 to March 15');
# the clock runs on while the requests are made (slowly under valgrind)
my $reset = $EntTest::SLOW > 1 ? qr/[1-6]\d/ : qr/59|60|61/;
like($r[0]{headers}{ratelimit}[0], qr/^"aiq";r=9;t=($reset)$/,
     'resetting at midnight on the 15th');
is(scalar(grep { $_->{headers}{'ent-quota-warning'} } @r[0 .. 6]), 0,
   'no warning below 80%');
is($r[7]{headers}{'ent-quota-warning'}[0],
   '"aiq";threshold=80;used=8;q=10', 'at 80%: a warning header');
is($r[9]{headers}{'ent-quota-warning'}[0],
   '"aiq";threshold=95;used=10;q=10', 'at 95%: another');
is($r[10]{status}, 402, 'over the quota: 402, as configured');
like($r[10]{body}, qr/"policy":"aiq","limit":10,"window":2419200,"retry_after":($reset)\}/,
     'saying which quota and when it resets');

is(http($n, '/', host => 'billkid.example.com')->{headers}{'ratelimit-policy'}[0],
   '"aiq";q=10;w=2419200', 'a child shares its parent\'s billing day');
is(http($n, '/', host => 'first.example.com')->{headers}{'ratelimit-policy'}[0],
   '"aiq";q=10;w=2678400', 'no anchor day: the 1st (March 1 to April 1)');

# the audit trail is written in the background: its rows, before the stop
wait_until(sub { pg_sql("SELECT count(*) FROM ent.events WHERE kind = "
                        . "'quota_threshold'") >= 2 }, 5);
nginx_stop($n);
my $log = check_log($n, 'before');
is(scalar(() = $log =~ /reached 80% of "aiq"/g), 1, 'crossing 80% logged once');
is(scalar(() = $log =~ /reached 95% of "aiq"/g), 1, 'crossing 95% logged once');
# (events are written in the background on two connections: their ids
# need not follow the order the thresholds were crossed in)
is(pg_sql("SELECT string_agg(reason || ' ' || (detail->>'used') || '/' "
          . "|| (detail->>'limit'), ',' ORDER BY (detail->>'used')::int) "
          . "FROM ent.events "
          . "WHERE kind = 'quota_threshold' AND tenant_id = "
          . "(SELECT id FROM ent.tenants WHERE code = 'bill')"),
   'aiq reached 80% 8/10,aiq reached 95% 10/10',
   'each threshold crossed is an event for the audit trail, once');

# 2026-03-15 00:00:30 UTC: a new period, a fresh quota

$n = node_at(1773532830);
my $r = http($n, '/', host => 'bill.example.com');
is($r->{status}, 200, 'on the anchor day the quota starts afresh');
is($r->{headers}{'ratelimit-policy'}[0], '"aiq";q=10;w=2678400',
   'a 31-day period: March 15 to April 15');
like($r->{headers}{ratelimit}[0], qr/^"aiq";r=9;t=267\d{4}$/,
     'with nine left');
nginx_stop($n);
check_log($n, 'after');

# the request that reaches a threshold, rejected by another policy, gives
# its count back: the next request reaches it again, and only the one
# admitted is the event (one per tenant, quota, threshold and period)

$n = nginx_start(
    http_config => 'ent_postgres "$TEST_PG_DSN" pool=2; '
                 . 'ent_redis 127.0.0.1:$TEST_REDIS_PORT; '
                 . 'ent_ratelimit_budget 2s; '
                 . 'ent_ratelimit_policy mq per=month limit=5; '
                 . 'ent_ratelimit_policy gate per=day limit=1 '
                 . 'key=$http_x_gate;',
    config => "ent_tenant on; ent_tenant_base_domain example.com;\n"
            . "location / { ent_ratelimit mq gate; "
            . "proxy_pass http://127.0.0.1:$up; }");
my @g = map { http($n, '/', host => 'first.example.com',
                   headers => ["X-Gate: $_"])->{status} } qw(g1 g2 g3 g1 g4);
is(join(',', @g), '200,200,200,429,200',
   'the 4th request (80% of mq) rejected by gate, the 5th admitted');
nginx_stop($n);
$log = check_log($n, 'gate');
is(scalar(() = $log =~ /reached 80% of "mq"/g), 1,
   'crossing 80% logged once, for the request admitted');

done_testing;
