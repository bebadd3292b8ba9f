# Feature gates, IP allow-lists (with realip), a 3-level hierarchy, and
# region routing (data residency).
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();
echo_start();

pg_sql(<<'SQL');
INSERT INTO ent.tenants (code, display_name, plan_id, region, allow_cidrs,
                         features, csp_sources)
VALUES ('holding', 'Holding', 'enterprise', 'eu',
        ARRAY['10.0.0.0/8', '2001:db8::/32']::cidr[], '{"beta": true}',
        'https://cdn.holding.test');
INSERT INTO ent.tenants (code, display_name, parent_id)
SELECT 'sub1', 'Sub One', id FROM ent.tenants WHERE code = 'holding';
INSERT INTO ent.tenants (code, display_name, parent_id, features)
SELECT 'sub2', 'Sub Two', id, '{"api_ai": false}' FROM ent.tenants
 WHERE code = 'sub1';
INSERT INTO ent.tenants (code, display_name, plan_id, region)
VALUES ('small', 'Small', 'team', 'us'),
       ('nowhere', 'Nowhere', 'team', 'apac');
SQL

my $http = <<'CONF';
ent_postgres "$TEST_PG_DSN" pool=2;
ent_cache_zone tenants:1m ttl=1h;
map $ent_tenant_region $region_backend {
    us      us_app;
    eu      eu_app;
    default no_region;
}
upstream us_app { server 127.0.0.1:$TEST_ECHO_PORT; }
upstream app { server 127.0.0.1:$TEST_ECHO_PORT; }
upstream eu_app { server 127.0.0.1:1; }
upstream no_region { server 127.0.0.1:1; }
CONF

my $config = <<'CONF';
ent_tenant on;
ent_tenant_base_domain example.com;
ent_tenant_unknown pass;
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
add_header X-Tenant "$ent_tenant_code|$ent_tenant_tier|$ent_tenant_region|$ent_tenant_features" always;
location / { return 200 "ok $ent_tenant_code\n"; }
location /gate/ { proxy_pass http://app; }
location /ai/ {
    ent_require_feature api_ai;
    proxy_pass http://app;
}
location /beta/ {
    ent_require_feature beta sso;
    proxy_pass http://app;
}
location /app/ {
    proxy_pass http://$region_backend;
    proxy_connect_timeout 1s;
    error_page 502 = @wrong_region;
}
location @wrong_region { return 503 "no backend for $ent_tenant_region\n"; }
location /any/ {
    satisfy any;
    allow all;
    error_page 403 /denied.txt;
    proxy_pass http://app;
}
location = /denied.txt { internal; return 403 "denied by the allow-list\n"; }
CONF

# an error_page served from a file passes the access phase again
mkdir tmpdir() . '/pages';
open my $page, '>', tmpdir() . '/pages/denied.html' or die $!;
print $page "denied: a static page\n";
close $page;
$config .= 'location /static/ { error_page 403 /pages/denied.html; '
           . "proxy_pass http://app; }\n"
           . 'location /pages/ { internal; root ' . tmpdir() . "; }\n";

my $n = nginx_start(http_config => $http, config => $config);

sub get {
    my ($host, $path, @h) = @_;
    my $r = http($n, $path || '/gate/', host => $host, headers => \@h);
    return $r;
}

my $r;

sub from {
    my ($ip, $host, $path) = @_;
    return get($host, $path, "X-Forwarded-For: $ip")->{status};
}

# the hierarchy: tier, region, features and allow-list inherited

is(get('sub2.example.com', '/gate/', 'X-Forwarded-For: 10.1.1.1')
   ->{headers}{'x-tenant'}[0],
   'sub2|enterprise|eu|advanced_analytics,audit_export,beta,scim,sso',
   'a grandchild inherits tier, region and features, and overrides api_ai');
is(get('sub1.example.com', '/gate/', 'X-Forwarded-For: 10.1.1.1')
   ->{headers}{'x-tenant'}[0],
   'sub1|enterprise|eu|advanced_analytics,api_ai,audit_export,beta,scim,sso',
   'a child inherits everything');

# allow-lists, IPv4 and IPv6, after realip

is(from('10.20.30.40', 'holding.example.com'), 200, 'IPv4 inside: allowed');
is(from('192.0.2.1', 'holding.example.com'), 403, 'IPv4 outside: 403');
is(from('2001:db8:1::5', 'holding.example.com'), 200, 'IPv6 inside: allowed');
is(from('2001:db9::5', 'holding.example.com'), 403, 'IPv6 outside: 403');
is(from('192.0.2.1', 'sub2.example.com'), 403,
   'the allow-list is inherited by a grandchild');
is(from('10.0.0.1', 'sub2.example.com'), 200, 'and lets its networks in');
is(from('192.0.2.1', 'small.example.com'), 200, 'no allow-list: all allowed');
$r = get('holding.example.com', '/any/x', 'X-Forwarded-For: 192.0.2.1');
is($r->{status}, 403, '"satisfy any" with "allow all" does not override '
                      . 'the tenant\'s allow-list');
is($r->{body}, "denied by the allow-list\n", 'and error_page still applies');
$r = get('holding.example.com', '/static/x', 'X-Forwarded-For: 192.0.2.1');
is($r->{status}, 403, 'an error_page from a file: 403');
is($r->{body}, "denied: a static page\n", 'with the file, not nginx\'s own page');

$r = get('holding.example.com', '/gate/', 'X-Forwarded-For: 192.0.2.1',
         'Accept: application/json');
is($r->{body}, '{"error":"ip_not_allowed","message":"This organization only '
               . 'allows access from its own networks.","tenant":"holding"}'
               . "\n", 'a JSON body that says why');

pg_sql("UPDATE ent.tenants SET allow_cidrs = '{192.0.2.0/24}' "
       . "WHERE code = 'sub1'");
ok(wait_until(sub { from('192.0.2.1', 'sub2.example.com') == 200 }, 1, 0.01),
   'a child\'s own list overrides its parent\'s, live within 1 s');
is(from('10.0.0.1', 'sub2.example.com'), 403, 'the parent\'s no longer');
pg_sql("UPDATE ent.tenants SET allow_cidrs = '{}' WHERE code = 'sub1'");
ok(wait_until(sub { from('198.51.100.1', 'sub2.example.com') == 200 }, 1,
              0.01), 'an empty list allows everyone');

# feature gates

is(get('small.example.com', '/ai/')->{status}, 200, 'a plan feature: allowed');
$r = get('sub2.example.com', '/ai/', 'Accept: application/json');
is($r->{status}, 403, 'a feature switched off for the tenant: 403');
is($r->{body}, '{"error":"feature_not_available","message":"This feature is '
               . "not part of the organization's plan.\",\"feature\":"
               . '"api_ai","tier":"enterprise","tenant":"sub2"}' . "\n",
   'naming the feature and the tier');
$r = get('sub2.example.com', '/ai/');
is($r->{headers}{'content-type'}[0], 'application/json',
   'JSON also to a client that did not ask for it');
like($r->{body}, qr/"feature":"api_ai","tier":"enterprise"/, '... naming both');
is(get('nobody.example.com', '/')->{status}, 200,
   'no tenant ("ent_tenant_unknown pass"): an ungated location serves');
is(get('127.0.0.1', '/')->{body}, "ok \n",
   '... an IP address as host too (a health check): no tenant, no 400');
is(http($n, "GET / HTTP/1.0\r\n\r\n")->{body}, "ok \n",
   '... and HTTP/1.0 without Host');
is(get('bad_name.example.com', '/')->{status}, 400,
   '... a malformed one is still 400');
$r = get('nobody.example.com', '/ai/');
is($r->{status}, 403, '... a gated one refuses: a feature is nobody\'s '
                      . 'without a tenant');
is($r->{body}, '{"error":"feature_not_available","message":"This feature is '
               . "not part of the organization's plan.\",\"feature\":"
               . '"api_ai","tier":""}' . "\n", '... saying which');
is(get('holding.example.com', '/beta/', 'X-Forwarded-For: 10.0.0.1')
   ->{status}, 200, 'an override grants a feature the plan lacks');
is(get('small.example.com', '/beta/')->{status}, 403,
   'every listed feature is required');

pg_sql("UPDATE ent.features SET enabled = false WHERE name = 'api_ai'");
ok(wait_until(sub { get('small.example.com', '/ai/')->{status} == 403 }, 1,
              0.01), 'the kill switch turns a feature off everywhere, live');
pg_sql("UPDATE ent.features SET enabled = true, rollout_percent = 0 "
       . "WHERE name = 'api_ai'");
ok(wait_until(sub { get('small.example.com', '/ai/')->{status} == 403 }, 1,
              0.01), 'a 0% rollout: off');

# a 50% rollout: stable per tenant, and about half of many tenants
pg_sql("INSERT INTO ent.tenants (code, display_name, plan_id) "
       . "SELECT 'r' || g, 'R' || g, 'team' FROM generate_series(1, 60) g");
pg_sql("UPDATE ent.features SET rollout_percent = 50 WHERE name = 'api_ai'");
sleep 0.3;
my %on;
for my $i (1 .. 60) {
    $on{$i} = get("r$i.example.com", '/ai/')->{status};
}
my $yes = grep { $on{$_} == 200 } keys %on;
ok($yes > 10 && $yes < 50, "50% rollout: $yes of 60 tenants have it");
is(scalar(grep { get("r$_.example.com", '/ai/')->{status} != $on{$_} }
          1 .. 60), 0, 'and each tenant keeps its answer');
pg_sql("UPDATE ent.features SET rollout_percent = 100 WHERE name = 'api_ai'");

# region routing: an eu tenant never reaches the us upstream

like(get('small.example.com', '/app/x')->{body}, qr/"path":"\/app\/x"/,
     'a us tenant reaches the us upstream');
$r = get('holding.example.com', '/app/x', 'X-Forwarded-For: 10.0.0.1');
is($r->{status}, 503, 'an eu tenant is never sent to the us upstream');
is($r->{body}, "no backend for eu\n", 'its own region\'s backend or nothing');
is(get('nowhere.example.com', '/app/x')->{body}, "no backend for apac\n",
   'a region without a backend is refused');

nginx_stop($n);
check_log($n, 'tenant access');

done_testing;
