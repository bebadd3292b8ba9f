# Tenants at the edge: resolution from the Host, statuses, maintenance,
# variables, identity headers (client copies stripped in every spelling),
# internal redirects, white-label pages.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();
redis_start();
echo_start();

pg_sql(<<'SQL');
INSERT INTO ent.tenants (code, display_name, plan_id, region, brand_color)
VALUES ('acme', 'Acme <Corp> & "Co"', 'enterprise', 'us', '#ff0000'),
       ('globex', 'Globex', 'team', 'eu', NULL),
       ('hooli', 'Hooli', 'business', 'us', NULL),
       ('initech', 'Initech', 'free', 'us', NULL),
       ('umbrella', 'Umbrella', 'team', 'eu', NULL);
UPDATE ent.tenants SET status = 'suspended' WHERE code = 'hooli';
UPDATE ent.tenants SET status = 'deactivated' WHERE code = 'initech';
UPDATE ent.tenants SET status = 'maintenance' WHERE code = 'umbrella';
INSERT INTO ent.tenant_domains (domain, tenant_id)
SELECT 'portal.acme.test', id FROM ent.tenants WHERE code = 'acme';
SQL

my $acme_id = pg_sql("SELECT id FROM ent.tenants WHERE code = 'acme'");

my $http = <<'CONF';
ent_postgres "$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:$TEST_REDIS_PORT;
ent_cache_zone tenants:1m ttl=1h;
ent_maintenance_poll 100ms;
underscores_in_headers on;
upstream app { server 127.0.0.1:$TEST_ECHO_PORT; }
CONF

# a second server with other base domains, sharing the tenants zone
my $port2 = EntTest::free_port();
$http .= <<"CONF";
server {
    listen 127.0.0.1:$port2;
    ent_tenant on;
    ent_tenant_base_domain apps.example.com;
    ent_tenant_unknown pass;
    location / { return 200 "[\$ent_tenant_code]"; }
}
CONF

my $config = <<'CONF';
ent_tenant on;
ent_tenant_base_domain example.com eu.example.com;
add_header X-Tenant "$ent_tenant_code|$ent_tenant_tier|$ent_tenant_region|$ent_tenant_status|$ent_tenant_custom_domain" always;
location / {
    proxy_pass http://app;
}
location = /named { error_page 404 = @named; return 404; }
location = /try { try_files /nothing/here @named; }
location @named { return 200 "named:$ent_tenant_code\n"; }
error_page 405 = /landing;
error_page 501 = @landing;
location = /landing { proxy_pass http://app; }
location @landing { proxy_pass http://app; }
location = /ent_status { ent_status; }
location = /name { return 200 "[$ent_tenant_name]"; }
CONF

my $n = nginx_start(http_config => $http, config => $config);

sub get {
    my ($host, $path, @h) = @_;
    return http($n, $path || '/', host => $host, headers => \@h);
}

# resolution

my $r = get('acme.example.com', '/x');
is($r->{status}, 200, 'a tenant subdomain is proxied');
is($r->{headers}{'x-tenant'}[0], 'acme|enterprise|us|active|0',
   'variables: code, tier, region, status, custom domain');
like($r->{body}, qr/"x-ent-tenant-code":"acme"/, 'X-Ent-Tenant-Code sent');
like($r->{body}, qr/"x-ent-tenant-id":"$acme_id"/, 'X-Ent-Tenant-Id sent');
like($r->{body}, qr/"x-ent-tenant-tier":"enterprise"/,
     'X-Ent-Tenant-Tier sent');

is(get("ACME.Example.COM.:$n->{port}")->{headers}{'x-tenant'}[0],
   'acme|enterprise|us|active|0', 'case, port and trailing dot normalized');

$r = get('portal.acme.test');
is($r->{headers}{'x-tenant'}[0], 'acme|enterprise|us|active|1',
   'a custom domain resolves, and says so');

is(get('globex.eu.example.com')->{headers}{'x-tenant'}[0],
   'globex|team|eu|active|0', 'the longest base domain wins');

$r = http($n, "GET http://acme.example.com/abs HTTP/1.1\r\n"
              . "Host: globex.example.com\r\nConnection: close\r\n\r\n");
like($r->{body}, qr/"path":"\/abs".*"x-ent-tenant-code":"acme"/,
     'an absolute URI in the request line wins over Host');

# a host is a tenant's subdomain in one server and nothing in another
# (other base domains, the same zone): neither answer is the other's
is(get('acme.example.com', '/x')->{status}, 200, 'acme, cached by the first server');
is(http($port2, '/', host => 'acme.example.com')->{body}, '[]',
   '... no tenant in the second, whose base domains give it no code');
is(http($port2, '/', host => 'initech2.example.com')->{body},
   '[]', 'the second server: initech2.example.com is no tenant there');
pg_sql("INSERT INTO ent.tenants (code, display_name) VALUES "
       . "('initech2', 'Initech 2')");
is(get('initech2.example.com', '/x')->{headers}{'x-tenant'}[0] =~ /^initech2\|/
   ? 1 : 0, 1, '... the first server: its tenant, not the other\'s cached no');
is(http($port2, '/', host => 'initech2.example.com')->{body},
   '[]', '... and the second still says none');

# identity headers: every client copy goes, in every spelling

$r = get('acme.example.com', '/', 'X-Ent-User: mallory',
         'x-ent-tenant-code: globex', 'X-ENT-ROLES: owner',
         'X_Ent_Admin: yes', 'x_ent-tenant_id: 1', 'X-Ent-: empty',
         'X-Entirely-Fine: kept');
my ($ident) = $r->{body} =~ /"identity":\{(.*)\}/;
my @names = sort map { /^"([^"]+)"/ ? $1 : () } split /,/, $ident;
is_deeply(\@names, [qw(x-ent-tenant-code x-ent-tenant-id x-ent-tenant-tier)],
          'only the trusted identity headers reach the upstream');
like($ident, qr/"x-ent-tenant-code":"acme"/, 'with the edge\'s values');

$r = get('unknown.example.com', '/', 'X-Ent-User: mallory');
is($r->{status}, 404, 'an unknown tenant: 404');

# requests nginx refuses before any phase, then sends through error_page:
# an internal redirect (TRACE: 405), a named location, which skips the
# server's rewrite phase (an unknown Transfer-Encoding: 501)

$r = http($n, "TRACE /x HTTP/1.1\r\nHost: acme.example.com\r\n"
              . "X-Ent-Tenant-Id: victim\r\nX_Ent_User_Id: mallory\r\n"
              . "Connection: close\r\n\r\n");
($ident) = $r->{body} =~ /"identity":\{(.*?)\}/;
is($r->{status}, 200, 'TRACE through error_page 405 reaches the upstream');
is($ident, '"x-ent-tenant-id":"' . $acme_id . '","x-ent-tenant-code":"acme",'
           . '"x-ent-tenant-tier":"enterprise"',
   'an internal redirect from before the phases: the client\'s identity '
   . 'headers removed, the trusted ones set');

$r = http($n, "GET /y HTTP/1.1\r\nHost: acme.example.com\r\n"
              . "Transfer-Encoding: gzip\r\nX-Ent-Tenant-Id: victim\r\n"
              . "x-ent-roles: owner\r\nConnection: close\r\n\r\n");
is($r->{status}, 200, 'an unknown Transfer-Encoding through error_page 501 '
                      . 'to a named location reaches the upstream');
unlike($r->{body}, qr/victim|owner/i,
       'a named location entered before the phases: the client\'s identity '
       . 'headers removed');
like($r->{body}, qr/"identity":\{\}/, 'and no identity header at all');

# unknown, malformed

$r = get('nobody.example.com', '/', 'Accept: application/json');
is($r->{status}, 404, 'unknown tenant');
is($r->{body}, '{"error":"unknown_tenant","message":"There is no '
               . "organization at this address.\"}\n", 'JSON body');

$r = get('nobody.example.com', '/');
like($r->{body}, qr{^<!DOCTYPE html>.*<h1[^>]*>Not found</h1>}s,
     'an HTML page for browsers');
is($r->{headers}{'content-type'}[0], 'text/html', 'as text/html');

is(get('example.com')->{status}, 404, 'the bare base domain is no tenant');
is(get('a.b.example.com')->{status}, 404, 'nor is a deeper name');

$r = get('127.0.0.1', '/api/x');
is($r->{status}, 400, 'an IP address as host: 400');
is($r->{body}, '{"error":"invalid_host","message":"Use the organization\'s '
               . "address, not an IP address.\"}\n", 'JSON under /api/');

is(get('bad_name.example.com')->{status}, 400, 'an underscore in the host');
is(get('x' x 64 . '.example.com')->{status}, 400, 'a label over 63 bytes');

$r = http($n, "GET / HTTP/1.0\r\n\r\n");
is($r->{status}, 400, 'HTTP/1.0 without Host: 400');

# statuses

$r = get('hooli.example.com', '/', 'Accept: application/json');
is($r->{status}, 403, 'suspended: 403');
is($r->{body}, '{"error":"tenant_suspended","message":"This organization\'s '
               . 'access is suspended. Contact its administrator.",'
               . "\"tenant\":\"hooli\"}\n", 'says so');

is(get('initech.example.com')->{status}, 404, 'deactivated: 404');

$r = get('umbrella.example.com');
is($r->{status}, 503, 'maintenance: 503');
is($r->{headers}{'retry-after'}[0], 300, 'with Retry-After');
like($r->{body}, qr/<h1[^>]*>Umbrella: Maintenance<\/h1>/,
     'on a page with the tenant\'s name');

$r = get('acme.example.com', '/', 'Accept: text/html');
is($r->{status}, 200, 'acme before the platform maintenance');

# white-label pages escape what they show

pg_sql("UPDATE ent.tenants SET status = 'suspended' WHERE code = 'acme'");
ok(wait_until(sub { get('acme.example.com')->{status} == 403 }, 1, 0.01),
   'a suspension takes effect within 1 s, without reload');
$r = get('acme.example.com');
like($r->{body},
     qr{<h1 style="color:#ff0000">Acme &lt;Corp&gt; &amp; &quot;Co&quot;: Suspended</h1>},
     'the page carries the escaped name and the brand colour');
unlike($r->{body}, qr/<Corp>/, 'nothing unescaped');

pg_sql("INSERT INTO ent.tenants (code, display_name, status) VALUES "
       . "('quotes', repeat('\"', 200), 'suspended')");
$r = get('quotes.example.com', '/', 'Accept: text/html');
is($r->{status}, 403, 'a 200-quote name: its page');
is(scalar(() = $r->{body} =~ /&quot;/g), 400,
   'the escaped name, whole, in the title and the heading');
pg_sql("UPDATE ent.tenants SET status = 'active' WHERE code = 'acme'");
ok(wait_until(sub { get('acme.example.com')->{status} == 200 }, 1, 0.01),
   'and its lifting too');

# a control byte in a cell (a name written by hand, CR LF in it) is not
# let into headers or variables: the cell is dropped
is(get('globex.example.com', '/name')->{body}, '[Globex]', '$ent_tenant_name');
pg_sql("INSERT INTO ent.tenants (code, display_name) VALUES "
       . "('crlf', E'Evil\\r\\nSet-Cookie: x=1')");
$r = get('crlf.example.com', '/name');
is($r->{status}, 200, 'a name with CR LF: the tenant still resolves');
is($r->{body}, '[]', '... without its name');
like(EntTest::nginx_log($n), qr/column 2 of the record of tenant "crlf" holds a control character/,
     '... which is logged');

# platform-wide maintenance through Redis, no reload

redis_cli('SET', 'ent:maintenance', '120');
ok(wait_until(sub { get('acme.example.com')->{status} == 503 }, 1, 0.01),
   'platform maintenance on within 1 s');
is(get('acme.example.com')->{headers}{'retry-after'}[0], 120,
   'with the Retry-After from Redis');
redis_cli('DEL', 'ent:maintenance');
ok(wait_until(sub { get('acme.example.com')->{status} == 200 }, 1, 0.01),
   'and off again');

# internal redirects keep the tenant

is(get('globex.example.com', '/named')->{body}, "named:globex\n",
   'error_page to a named location keeps the tenant');
is(get('globex.example.com', '/try')->{body}, "named:globex\n",
   'try_files to a named location too');

my $st = EntTest::decode_json_min(get('globex.example.com', '/ent_status')
                                   ->{body});
ok($st->{caches}{tenants}{hits} > $st->{caches}{tenants}{fills},
   "served from the cache ($st->{caches}{tenants}{hits} hits, "
   . "$st->{caches}{tenants}{fills} fills)");

nginx_stop($n);
check_log($n, 'tenant');

# a server's own page for a bad host (error_page 400): that page, not a 500
my $ep = nginx_start(http_config => $http, config => <<'CONF');
ent_tenant on;
ent_tenant_base_domain example.com;
error_page 400 /bad-host;
location = /bad-host { internal; return 400 "our own page: $ent_tenant_code.\n"; }
location / { return 200 "ok\n"; }
CONF
for my $h ('127.0.0.1', 'bad_name.example.com') {
    $r = http($ep, '/x', host => $h);
    is("$r->{status} $r->{body}", "400 our own page: .\n",
       "a bad host ($h) with error_page 400: the server's page");
}
check_log($ep, 'error_page');

done_testing;
