# The tenant module's directives: nginx -t refuses what is malformed, with
# a message that names the directive and the value; error_page overrides
# the module's pages.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();
pg_sql("INSERT INTO ent.tenants (code, display_name, status) "
       . "VALUES ('hooli', 'Hooli', 'suspended')");

run_blocks(http_config => 'ent_postgres "$TEST_PG_DSN" pool=1;');
done_testing;

__DATA__

=== TEST 1: ent_tenant without ent_postgres
--- http_config_only
--- config
ent_tenant on;
--- must_die
--- error_log
"ent_tenant on" needs "ent_postgres" in http{}

=== TEST 2: a base domain that is not a lowercase DNS name
--- config
ent_tenant on;
ent_tenant_base_domain Example.COM;
--- must_die
--- error_log
invalid domain "Example.COM" in "ent_tenant_base_domain" directive

=== TEST 3: an IP address as base domain
--- config
ent_tenant_base_domain 192.0.2.1;
--- must_die
--- error_log
invalid domain "192.0.2.1" in "ent_tenant_base_domain" directive

=== TEST 4: ent_tenant_unknown takes pass or a status
--- config
ent_tenant_unknown 302;
--- must_die
--- error_log
invalid value "302" in "ent_tenant_unknown" directive, it must be "pass", 400, 403, 404 or 410

=== TEST 5: ent_tenant_deactivated takes 404 or 410
--- config
ent_tenant_deactivated 403;
--- must_die
--- error_log
invalid value "403" in "ent_tenant_deactivated" directive, it must be "404" or "410"

=== TEST 6: Retry-After bounds
--- config
ent_tenant_retry_after 0;
--- must_die
--- error_log
invalid value "0" in "ent_tenant_retry_after" directive, it must be a number of seconds from 1 to 86400

=== TEST 7: an identity header without the identity prefix
--- http_config
ent_tenant_header id X-Org-Id;
--- config
--- must_die
--- error_log
the identity header "X-Org-Id" must start with the identity prefix "x-ent-", or clients could send their own

=== TEST 8: an unknown identity field
--- http_config
ent_tenant_header role X-Ent-Role;
--- config
--- must_die
--- error_log
invalid field "role" in "ent_tenant_header" directive, it must be "id", "code" or "tier"

=== TEST 9: a malformed feature name
--- config
location / { ent_require_feature "Drop Table"; }
--- must_die
--- error_log
invalid feature "Drop Table" in "ent_require_feature" directive

=== TEST 10: ent_security_headers_upstream takes override or keep
--- config
ent_security_headers_upstream merge;
--- must_die
--- error_log
invalid value "merge" in "ent_security_headers_upstream" directive, it must be "override" or "keep"

=== TEST 11: ent_tenant only in server{}
--- config
location / { ent_tenant on; }
--- must_die
--- error_log
"ent_tenant" directive is not allowed here

=== TEST 12: renamed identity headers pass
--- http_config
ent_identity_prefix X-Corp-;
ent_tenant_header id X-Corp-Org;
ent_tenant_header code X-Corp-Org-Code;
ent_tenant_header tier X-Corp-Plan;
--- config
ent_tenant on;
ent_tenant_base_domain example.com;
--- must_die: no
--- error_log
syntax is ok

=== TEST 13: error_page replaces the module's page
--- config
ent_tenant on;
ent_tenant_base_domain example.com;
error_page 403 /forbidden.html;
location = /forbidden.html { internal; return 200 "our own 403 page\n"; }
--- request
GET /
--- more_headers
Host: hooli.example.com
--- error_code: 403
--- response_body
our own 403 page
