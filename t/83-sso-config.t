# SSO directives: nginx -t refuses what is malformed or unsafe, naming the
# directive and the problem.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

my $d = tmpdir();
system("openssl rand -base64 32 > $d/sso.key; openssl rand 32 > $d/raw.key; "
       . "printf 'short' > $d/short.key; head -c 200 /dev/urandom | base64 -w0 > $d/long.key; "
       . "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out $d/rsa1024.pem 2>/dev/null; "
       . "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out $d/p521.pem 2>/dev/null; "
       . "openssl genpkey -algorithm ED25519 -out $d/ed.pem 2>/dev/null") == 0
    or die;

run_blocks();
done_testing;

__DATA__

=== TEST 1: a complete configuration parses
--- http_config
ent_postgres "host=127.0.0.1 dbname=ent user=ent";
ent_redis 127.0.0.1:6379;
ent_sso_secret_key $TEST_TMP/sso.key;
ent_sso_assertion_key $TEST_TMP/ed.pem kid=edge-1;
ent_sso_session_timeout 30m 8h;
ent_sso_session_cache 1s;
ent_sso_login_timeout 5m;
ent_sso_clock_skew 30s;
ent_sso_metadata_ttl 1h;
ent_sso_jwks_refetch_interval 10s;
ent_sso_algorithms RS256 PS256 ES256 EdDSA;
ent_sso_events off;
ent_sso_cookie __Host-app_session;
ent_sso_zone idp;
ent_sso_docs_zone docs;
ent_sso_clock_offset -30;
--- config
ent_tenant on;
ent_tenant_base_domain example.com;
ent_sso_enforce_path /login /signin;
location = /_ent/fetch { internal; proxy_pass $ent_sso_fetch_url; }
location / {
    ent_sso required;
    ent_sso_bearer_scopes api:read;
    ent_sso_assertion on;
    ent_sso_header email X-Ent-Email;
    ent_sso_header session off;
}
location /public/ { ent_sso optional; ent_sso_bearer off; }
--- must_die: no
--- error_log
syntax is ok

=== TEST 2: a raw 32-byte key file
--- http_config
ent_postgres "host=127.0.0.1 dbname=ent user=ent";
ent_redis 127.0.0.1:6379;
ent_sso_secret_key $TEST_TMP/raw.key;
--- config
location / { ent_sso required; }
--- must_die: no
--- error_log
syntax is ok

=== TEST 3: no secret key
--- http_config
ent_postgres "host=127.0.0.1 dbname=ent user=ent";
ent_redis 127.0.0.1:6379;
--- config
location / { ent_sso required; }
--- must_die
--- error_log
"ent_sso" needs "ent_sso_secret_key" in http{}

=== TEST 4: a key file too short
--- http_config
ent_sso_secret_key $TEST_TMP/short.key;
--- config
--- must_die
--- error_log
must hold 32 random bytes, raw or base64

=== TEST 5: a key file too long (never decoded past its buffer)
--- http_config
ent_sso_secret_key $TEST_TMP/long.key;
--- config
--- must_die
--- error_log
must hold 32 random bytes, raw or base64

=== TEST 6: a missing key file
--- http_config
ent_sso_secret_key $TEST_TMP/nope.key;
--- config
--- must_die
--- error_log
nope.key" failed

=== TEST 7: no Redis
--- http_config
ent_postgres "host=127.0.0.1 dbname=ent user=ent";
ent_sso_secret_key $TEST_TMP/sso.key;
--- config
location / { ent_sso required; }
--- must_die
--- error_log
"ent_sso" needs "ent_postgres" and "ent_redis" in http{}

=== TEST 8: an unknown mode
--- config
location / { ent_sso always; }
--- must_die
--- error_log
invalid value "always" in "ent_sso" directive: off, required or optional

=== TEST 9: an unknown algorithm
--- http_config
ent_sso_algorithms RS256 HS256;
--- config
--- must_die
--- error_log
invalid value "HS256" in "ent_sso_algorithms" directive

=== TEST 10: "none" is never an algorithm
--- http_config
ent_sso_algorithms none;
--- config
--- must_die
--- error_log
invalid value "none" in "ent_sso_algorithms" directive

=== TEST 11: an identity header outside the stripped prefix
--- config
location / { ent_sso_header user_id X-User; }
--- must_die
--- error_log
an identity header must start with "X-Ent-"

=== TEST 12: an identity header with a bad character
--- config
location / { ent_sso_header email "X-Ent-E mail"; }
--- must_die
--- error_log
invalid value "X-Ent-E mail" in "ent_sso_header" directive

=== TEST 13: an unknown identity field
--- config
location / { ent_sso_header password X-Ent-Password; }
--- must_die
--- error_log
invalid value "password" in "ent_sso_header" directive

=== TEST 14: idle longer than absolute
--- http_config
ent_sso_session_timeout 8h 1h;
--- config
--- must_die
--- error_log
absolute >= idle >= 1s

=== TEST 15: a micro-cache over 1 s (a revocation reaches every node within 1 s)
--- http_config
ent_sso_session_cache 1001ms;
--- config
--- must_die
--- error_log
"ent_sso_session_cache" is at most 1s

=== TEST 16: an assertion without a key
--- http_config
ent_postgres "host=127.0.0.1 dbname=ent user=ent";
ent_redis 127.0.0.1:6379;
ent_sso_secret_key $TEST_TMP/sso.key;
--- config
location / { ent_sso required; ent_sso_assertion on; }
--- must_die
--- error_log
"ent_sso_assertion on" needs "ent_sso_assertion_key" in http{}

=== TEST 17: a short RSA assertion key
--- http_config
ent_sso_assertion_key $TEST_TMP/rsa1024.pem;
--- config
--- must_die
--- error_log
an RSA key of 2048 bits or more is needed

=== TEST 18: an EC assertion key on P-521
--- http_config
ent_sso_assertion_key $TEST_TMP/p521.pem;
--- config
--- must_die
--- error_log
an EC key on P-256 or P-384 is needed

=== TEST 19: a cookie name with a bad character
--- http_config
ent_postgres "host=127.0.0.1 dbname=ent user=ent";
ent_redis 127.0.0.1:6379;
ent_sso_secret_key $TEST_TMP/sso.key;
ent_sso_cookie "a;b";
--- config
--- must_die
--- error_log
invalid "ent_sso_cookie" name "a;b"

=== TEST 20: a fetch location that is not a path
--- http_config
ent_sso_fetch_location fetch;
--- config
--- must_die
--- error_log
invalid value "fetch" in "ent_sso_fetch_location" directive: a path starting with "/"

=== TEST 21: the module without the core
--- main_config
--- modules: sso
--- config
--- must_die
--- error_log
ngx_http_ent_sso_module requires ngx_http_ent_core_module

=== TEST 22: a clock offset beyond 10 years
--- http_config
ent_sso_clock_offset -400000000;
--- config
--- must_die
--- error_log
invalid value "-400000000" in "ent_sso_clock_offset" directive, expected seconds within 10 years

=== TEST 23: every authorization rule parses
--- http_config
ent_postgres "host=127.0.0.1 dbname=ent user=ent";
ent_redis 127.0.0.1:6379;
ent_sso_secret_key $TEST_TMP/sso.key;
ent_authz_zone authz;
--- config
ent_tenant on;
ent_tenant_base_domain example.com;
ent_authz_role_min member;
location / {
    ent_sso required;
    ent_authz_role_min 70 methods=write;
    ent_authz_roles owner admin billing_admin;
    ent_authz_permission billing:read;
    ent_authz_permission all reports:read reports:export methods=GET,HEAD;
    ent_authz_permission any a:b c:d methods=read;
    ent_authz_attr department = engineering;
    ent_authz_attr department != sales;
    ent_authz_attr region in eu,us;
    ent_authz_attr email ~ "@acme\.com$";
    ent_authz_attr groups contains finance methods=POST,DELETE;
}
location /open/ { ent_sso required; ent_authz off; }
--- must_die: no
--- error_log
syntax is ok

=== TEST 24: a rank gate of an unknown role
--- config
location / { ent_authz_role_min superuser; }
--- must_die
--- error_log
invalid value "superuser" in "ent_authz_role_min" directive: a system role (owner, admin, manager, member, viewer) or a rank of 1 to 1000

=== TEST 25: a rank out of range
--- config
location / { ent_authz_role_min 5000; }
--- must_die
--- error_log
invalid value "5000" in "ent_authz_role_min" directive

=== TEST 26: an unknown method
--- config
location / { ent_authz_permission a:b methods=GET,BREW; }
--- must_die
--- error_log
invalid method "BREW"

=== TEST 27: an unknown operator
--- config
location / { ent_authz_attr department like eng; }
--- must_die
--- error_log
invalid value "like" in "ent_authz_attr" directive: =, !=, in, ~ or contains

=== TEST 28: a regex that does not compile
--- config
location / { ent_authz_attr email ~ "(unclosed"; }
--- must_die
--- error_log
ent_authz_attr

=== TEST 29: a permission with characters that cannot be one
--- config
location / { ent_authz_permission "billing write"; }
--- must_die
--- error_log
invalid value "billing write" in "ent_authz_permission" directive

=== TEST 30: rules where authorization is off
--- config
location / { ent_authz off; ent_authz_roles admin; }
--- must_die
--- error_log
"ent_authz off" and ent_authz_* rules in one location

=== TEST 31: too few arguments
--- config
location / { ent_authz_attr department =; }
--- must_die
--- error_log
invalid number of arguments in "ent_authz_attr" directive

=== TEST 32: "all" without permissions
--- config
location / { ent_authz_permission all; }
--- must_die
--- error_log
invalid number of arguments in "ent_authz_permission" directive
