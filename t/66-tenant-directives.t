# The remaining tenant directives and variables, one block each.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();
echo_start();

pg_sql(<<'SQL');
INSERT INTO ent.tenants (code, display_name, upstream, csp_sources)
VALUES ('parent', 'Parent Co', 'dedicated_pool', 'https://cdn.parent.test');
INSERT INTO ent.tenants (code, display_name, parent_id)
SELECT 'kid', 'Kid & Co', id FROM ent.tenants WHERE code = 'parent';
SQL

my $kid = pg_sql("SELECT id || '|' || parent_id FROM ent.tenants "
                 . "WHERE code = 'kid'");

run_blocks(http_config => 'ent_postgres "$TEST_PG_DSN" pool=1; '
           . 'upstream app { server 127.0.0.1:$TEST_ECHO_PORT; }');

my $n = nginx_start(
    http_config => 'ent_postgres "$TEST_PG_DSN" pool=1;',
    config => 'ent_tenant on; ent_tenant_base_domain example.com; '
            . 'location / { return 200 "$ent_tenant_id|$ent_tenant_parent_id\n"; }');
is(http($n, '/', host => 'kid.example.com')->{body}, "$kid\n",
   '$ent_tenant_id and $ent_tenant_parent_id');
nginx_stop($n);
check_log($n, 'ids');

done_testing;

__DATA__

=== TEST 1: $ent_tenant_name, $ent_tenant_upstream, $ent_tenant_csp_sources (inherited)
--- config
ent_tenant on;
ent_tenant_base_domain example.com;
location / { return 200 "$ent_tenant_name|$ent_tenant_upstream|$ent_tenant_csp_sources\n"; }
--- request
GET /
--- more_headers
Host: kid.example.com
--- response_body
Kid & Co|dedicated_pool|https://cdn.parent.test

=== TEST 2: ent_tenant_json_prefix
--- config
ent_tenant on;
ent_tenant_base_domain example.com;
ent_tenant_json_prefix /v2/;
location / { return 200; }
--- request
GET /v2/things
--- more_headers
Host: nobody.example.com
--- error_code: 404
--- response_body
{"error":"unknown_tenant","message":"There is no organization at this address."}

=== TEST 3: ent_tenant_zone names the cache zone
--- http_config
ent_tenant_zone orgs;
ent_cache_zone orgs:1m;
--- config
ent_tenant on;
ent_tenant_base_domain example.com;
location = /s { ent_status; }
location / { return 200 "$ent_tenant_code\n"; }
--- request
GET /s
--- more_headers
Host: kid.example.com
--- response_body_like
"caches":\{"orgs":\{

=== TEST 4: ent_identity_strip off leaves client headers alone
--- http_config
ent_identity_strip off;
--- config
location / { proxy_pass http://app; }
--- request
GET /
--- more_headers
X-Ent-Note: kept
--- response_body_like
"identity":\{"x-ent-note":"kept"\}

=== TEST 5: the other security headers, set and switched off
--- config
ent_content_type_options off;
ent_cross_origin_opener_policy same-origin-allow-popups;
ent_cross_origin_resource_policy cross-origin;
ent_csp_report_only on;
ent_csp_report_uri https://csp.example.net/r;
location / { return 200 "ok\n"; }
--- request
GET /
--- response_headers
!X-Content-Type-Options
Cross-Origin-Opener-Policy: same-origin-allow-popups
Cross-Origin-Resource-Policy: cross-origin
!Content-Security-Policy
Content-Security-Policy-Report-Only: default-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'; form-action 'self'; report-uri https://csp.example.net/r
