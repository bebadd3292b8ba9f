# entctl's tenant verbs: each change reaches two running nginx nodes within
# 1 s, without reload; bad input gets a clear error and changes nothing.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();
redis_start();

my $entctl = "$EntTest::TOP/bin/entctl --dsn '" . EntTest::pg_dsn()
    . "' --redis 127.0.0.1:" . EntTest::redis_port();

sub ctl {
    my ($args) = @_;
    my $out = `$entctl $args 2>&1`;
    return ($? >> 8, $out);
}

my %conf = (
    http_config => 'ent_postgres "$TEST_PG_DSN" pool=2; '
                 . 'ent_redis 127.0.0.1:$TEST_REDIS_PORT; '
                 . 'ent_maintenance_poll 100ms;',
    config => <<'CONF');
ent_tenant on;
ent_tenant_base_domain example.com;
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
add_header X-Tenant "$ent_tenant_code|$ent_tenant_tier|$ent_tenant_region|$ent_tenant_features" always;
location / { proxy_pass http://127.0.0.1:1; error_page 502 = @ok; }
location @ok { return 200 "ok\n"; }
location /ai/ {
    ent_require_feature api_ai;
    proxy_pass http://127.0.0.1:1;
    error_page 502 = @ok;
}
CONF

my @nodes = (nginx_start(%conf), nginx_start(%conf));

sub on_all {
    my ($host, $path, $want, @h) = @_;
    return wait_until(sub {
        !grep {
            my $r = http($_, $path, host => $host, headers => \@h);
            my $got = ref $want ? ($r->{headers}{'x-tenant'}[0] // '')
                                : $r->{status};
            ref $want ? $got ne $$want : $got != $want;
        } @nodes;
    }, 1, 0.01);
}

my ($rc, $out);

($rc, $out) = ctl('tenant create acme --name "Acme Inc" --tier team '
                  . '--region eu');
is($rc, 0, 'tenant create') or diag $out;
ok(on_all('acme.example.com', '/', \'acme|team|eu|api_ai,sso'),
   'created: visible on both nodes within 1 s');

($rc, $out) = ctl('tenant update acme --tier enterprise --region us');
is($rc, 0, 'tenant update') or diag $out;
ok(on_all('acme.example.com', '/',
          \'acme|enterprise|us|advanced_analytics,api_ai,audit_export,scim,sso'),
   'updated tier and region: live on both nodes');

($rc, $out) = ctl('tenant suspend acme');
ok(on_all('acme.example.com', '/', 403), 'suspend: 403 on both nodes');
ctl('tenant resume acme');
ok(on_all('acme.example.com', '/', 200), 'resume: 200 again');

($rc, $out) = ctl('domain add acme Portal.Acme.Test');
is($rc, 0, 'domain add (normalized)') or diag $out;
ok(on_all('portal.acme.test', '/', 200), 'the custom domain works');
ctl('domain remove portal.acme.test');
ok(on_all('portal.acme.test', '/', 404), 'removed: 404');

ctl('feature set acme api_ai off');
ok(on_all('acme.example.com', '/ai/', 403), 'feature set off: 403');
ctl('feature unset acme api_ai');
ok(on_all('acme.example.com', '/ai/', 200), 'unset: back to the plan');
ctl('feature platform api_ai --enabled off');
ok(on_all('acme.example.com', '/ai/', 403), 'platform kill switch: 403');
ctl('feature platform api_ai --enabled on --rollout 100');
ok(on_all('acme.example.com', '/ai/', 200), 'switched back on');

ctl('allow add acme 10.0.0.0/8');
ok(on_all('acme.example.com', '/', 403, 'X-Forwarded-For: 192.0.2.1'),
   'allow add: others refused');
ok(on_all('acme.example.com', '/', 200, 'X-Forwarded-For: 10.9.8.7'),
   'the listed network admitted');
ctl('allow clear acme');
ok(on_all('acme.example.com', '/', 200, 'X-Forwarded-For: 192.0.2.1'),
   'allow clear: everyone again');

($rc, $out) = ctl('maintenance on acme');
ok(on_all('acme.example.com', '/', 503), 'maintenance on for one tenant');
ctl('maintenance off acme');
ok(on_all('acme.example.com', '/', 200), 'and off');
($rc, $out) = ctl('maintenance on --retry-after 90');
is($rc, 0, 'platform maintenance through Redis') or diag $out;
ok(on_all('acme.example.com', '/', 503), 'platform maintenance on all nodes');
ctl('maintenance off');
ok(on_all('acme.example.com', '/', 200), 'platform maintenance off');

($rc, $out) = ctl('headers set acme --csp-sources "https://cdn.acme.test" '
                  . '--report-only on');
is($rc, 0, 'headers set') or diag $out;

($rc, $out) = ctl('tenant show acme');
like($out, qr/^code: acme$/m, 'tenant show');
like($out, qr/^effective: active enterprise /m, 'with the effective record');
($rc, $out) = ctl('tenant list');
like($out, qr/^acme\|Acme Inc\|active\|enterprise\|us\|$/m, 'tenant list');

# hierarchies through entctl

ctl("tenant create l$_ --name L$_" . ($_ > 1 ? ' --parent l' . ($_ - 1) : ''))
    for 1 .. 5;
($rc, $out) = ctl('tenant create l6 --name L6 --parent l5');
isnt($rc, 0, 'a 6th level is refused');
like($out, qr/more than 5 levels deep/, 'saying why');
($rc, $out) = ctl('tenant update l1 --parent l3');
isnt($rc, 0, 'a cycle is refused');
like($out, qr/cannot be its own ancestor/, 'saying why');
($rc, $out) = ctl('tenant delete l4');
like($out, qr/has child tenants/, 'a parent is not deleted under its children');

# bad input: a clear error, nothing changed

for my $case (['tenant create Bad_Code --name X', qr/invalid tenant code/],
              ['tenant create ok --name X --tier platinum', qr/no tier/],
              ['tenant create ok2 --name X --status frozen',
               qr/invalid status/],
              ['tenant create ok3 --name X --parent ghost',
               qr/no tenant "ghost"/],
              ['tenant create ok4', qr/needs --name/],
              ['tenant show ghost', qr/no tenant "ghost"/],
              ['tenant update acme --colour red', qr/unknown option/],
              ['domain add acme 192.0.2.1', qr/invalid domain/],
              ['domain add acme https://x.test/', qr/invalid domain/],
              ['domain add acme "a b.test"', qr/invalid domain/],
              ['domain add acme localhost', qr/invalid domain/],
              ['allow add acme 10.0.0.0/33', qr/invalid CIDR/],
              ['allow add acme 300.1.1.1', qr/invalid CIDR/],
              ['allow add acme "2001:db8::/129"', qr/invalid CIDR/],
              ['feature set acme "drop table" on', qr/invalid feature/],
              ['feature set acme api_ai maybe', qr/"on" or "off"/],
              ['feature platform api_ai --rollout 150', qr/percentage/],
              ['maintenance sometimes', qr/usage/],
              ['tenant update acme --name "' . ('x' x 300) . '"',
               qr/violates check constraint/]) {
    my ($args, $re) = @$case;
    ($rc, $out) = ctl($args);
    isnt($rc, 0, "refused: $args");
    like($out, $re, "  with a clear message");
}

is(pg_sql("SELECT count(*) FROM ent.tenants WHERE code LIKE 'ok%'"), 0,
   'nothing created by refused commands');
is(pg_sql("SELECT display_name FROM ent.tenants WHERE code = 'acme'"),
   'Acme Inc', 'nothing changed by them');

for my $n (@nodes) {
    nginx_stop($n);
    check_log($n, "node $n->{id}");
}

done_testing;
