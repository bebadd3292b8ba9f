# Per-tenant rate-limit overrides: set and removed with entctl, inherited by
# child tenants, live on the edge within 1 s without reload.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();
redis_start();

my $entctl = "$EntTest::TOP/bin/entctl --dsn '" . EntTest::pg_dsn() . "'";

sub ctl {
    my $out = `$entctl @_ 2>&1`;
    return ($? >> 8, $out);
}

ctl('tenant create corp --name Corp --tier team');
ctl('tenant create corp-eu --name "Corp EU" --parent corp');
ctl('tenant create other --name Other --tier team');

my $up = nginx_start(modules => ['core'],
                     config => 'location / { return 200 "ok\n"; }')->{port};

my $n = nginx_start(
    http_config => 'ent_postgres "$TEST_PG_DSN" pool=2; '
                 . 'ent_redis 127.0.0.1:$TEST_REDIS_PORT; '
                 . 'ent_ratelimit_budget 2s; '
                 . 'ent_ratelimit_policy ai per=day free=2 team=5;',
    config => <<"CONF");
ent_tenant on;
ent_tenant_base_domain example.com;
location / { ent_ratelimit ai; proxy_pass http://127.0.0.1:$up; }
location = /vars { return 200 "\$ent_tenant_ratelimits\\n"; }
CONF

sub policy_of {
    my ($code) = @_;
    return http($n, '/', host => "$code.example.com")
        ->{headers}{'ratelimit-policy'}[0] // 'none';
}

is(policy_of('corp'), '"ai";q=5;w=86400', 'the tier\'s limit');

my ($rc, $out) = ctl('ratelimit set corp ai 1000');
is($rc, 0, 'entctl ratelimit set') or diag $out;
ok(wait_until(sub { policy_of('corp') eq '"ai";q=1000;w=86400' }, 1, 0.01),
   'the contract\'s limit applies within 1 s');
is(policy_of('corp-eu'), '"ai";q=1000;w=86400', 'a child inherits it');
is(policy_of('other'), '"ai";q=5;w=86400', 'other tenants keep the tier\'s');
is(http($n, '/vars', host => 'corp.example.com')->{body}, "ai=1000\n",
   '$ent_tenant_ratelimits');

ctl('ratelimit set corp-eu ai 1');
ok(wait_until(sub { http($n, '/vars', host => 'corp-eu.example.com')->{body}
                        eq "ai=1\n" }, 1, 0.01),
   'a child\'s own override wins');
# the requests above were counted: start corp-eu's window afresh
my $corp_eu = pg_sql("SELECT id FROM ent.tenants WHERE code = 'corp-eu'");
redis_cli('DEL', $_) for grep { /\{t:$corp_eu\}:ai:/ }
    split /\n/, redis_cli('--scan', '--pattern', 'rl:*');
is(http($n, '/', host => 'corp-eu.example.com')->{status}, 200, 'one admitted');
is(http($n, '/', host => 'corp-eu.example.com')->{status}, 429,
   'and the next refused at the lowered limit');

ctl('ratelimit set corp ai unlimited');
ok(wait_until(sub { policy_of('corp') eq 'none' }, 1, 0.01),
   'unlimited: the policy no longer applies');

($rc, $out) = ctl('ratelimit list corp');
is($out, "ai|unlimited\n", 'entctl ratelimit list');

ctl('ratelimit unset corp ai');
ok(wait_until(sub { policy_of('corp') eq '"ai";q=5;w=86400' }, 1, 0.01),
   'unset: back to the tier');

for my $case (['ratelimit set corp ai lots', qr/a limit is a count/],
              ['ratelimit set corp "A I" 5', qr/invalid policy/],
              ['ratelimit set ghost ai 5', qr/no tenant "ghost"/]) {
    ($rc, $out) = ctl($case->[0]);
    isnt($rc, 0, "refused: $case->[0]");
    like($out, $case->[1], '  saying why');
}

nginx_stop($n);
check_log($n, 'overrides');

done_testing;
