# Security headers on every response (proxied, redirects, nginx's own
# errors, the module's pages), merged per header across levels, per tenant
# (CSP sources, report-only, report-uri), HSTS over HTTPS only, preload
# never on a custom domain unless the tenant asks, upstream copies kept or
# replaced, never duplicated.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use IO::Socket::INET;
use Test::More;

pg_start();
echo_start();

pg_sql(<<'SQL');
INSERT INTO ent.tenants (code, display_name, csp_sources, csp_report_only,
                         csp_report_uri, hsts_preload)
VALUES ('acme', 'Acme', 'https://cdn.acme.test', false, NULL, false),
       ('beta', 'Beta', NULL, true, 'https://csp.beta.test/r', false),
       ('white', 'White', NULL, NULL, NULL, true);
INSERT INTO ent.tenant_domains (domain, tenant_id)
SELECT 'www.acme.test', id FROM ent.tenants WHERE code = 'acme';
INSERT INTO ent.tenant_domains (domain, tenant_id)
SELECT 'www.white.test', id FROM ent.tenants WHERE code = 'white';
SQL

# a self-signed certificate for the HTTPS server
my $dir = EntTest::tmpdir();
system("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost "
       . "-keyout $dir/key.pem -out $dir/cert.pem -days 2 >/dev/null 2>&1")
    == 0 or die "openssl failed\n";
my $tls_port = EntTest::free_port();
my $up_port = EntTest::free_port();

my $http = <<"CONF";
ent_postgres "\$TEST_PG_DSN" pool=2;
ent_hsts_preload on;
upstream app { server 127.0.0.1:\$TEST_ECHO_PORT; }
upstream framing { server 127.0.0.1:$up_port; }
server {
    listen 127.0.0.1:$up_port;
    ent_security_headers off;
    location / {
        add_header X-Frame-Options DENY;
        add_header Referrer-Policy no-referrer;
        return 200 "framed\\n";
    }
}
server {
    listen 127.0.0.1:$tls_port ssl;
    ssl_certificate $dir/cert.pem;
    ssl_certificate_key $dir/key.pem;
    ent_tenant on;
    ent_tenant_base_domain example.com;
    location / { return 200 "tls\\n"; }
}
CONF

my $config = <<'CONF';
ent_tenant on;
ent_tenant_base_domain example.com;
ent_referrer_policy no-referrer;
location / { proxy_pass http://app; }
location = /redirect { return 302 /elsewhere; }
location = /missing { return 404; }
location = /limited { return 429; }
location = /framed { proxy_pass http://framing; }
location = /framed-keep {
    ent_security_headers_upstream keep;
    proxy_pass http://framing;
}
location = /custom {
    ent_csp "default-src 'none'";
    ent_frame_options DENY;
    ent_permissions_policy off;
    proxy_pass http://app;
}
location = /none { ent_security_headers off; proxy_pass http://app; }
location /tree/ {
    ent_csp "script-src 'self' $ent_tenant_code.cdn.test";
    location /tree/inner { proxy_pass http://app; }
}
CONF

my $n = nginx_start(http_config => $http, config => $config);

sub hdrs {
    my ($r, $name) = @_;
    return $r->{headers}{lc $name} || [];
}

my $base_csp = "default-src 'self' https://cdn.acme.test; object-src 'none'; "
    . "base-uri 'self'; frame-ancestors 'self'; form-action 'self'";

for my $case (['/', 200, 'a proxied response'],
              ['/redirect', 302, 'a redirect'],
              ['/missing', 404, 'nginx\'s own error page'],
              ['/limited', 429, 'a 429']) {
    my ($path, $status, $what) = @$case;
    my $r = http($n, $path, host => 'acme.example.com');
    is($r->{status}, $status, "$what: $status");
    is_deeply(hdrs($r, 'Content-Security-Policy'), [$base_csp],
              "$what: CSP with the tenant's sources");
    is_deeply(hdrs($r, 'X-Content-Type-Options'), ['nosniff'],
              "$what: nosniff");
    is_deeply(hdrs($r, 'X-Frame-Options'), ['SAMEORIGIN'],
              "$what: X-Frame-Options");
    is_deeply(hdrs($r, 'Referrer-Policy'), ['no-referrer'],
              "$what: Referrer-Policy from the server level");
    like(hdrs($r, 'Permissions-Policy')->[0] // '', qr/^accelerometer=\(\),/,
         "$what: Permissions-Policy");
    is_deeply(hdrs($r, 'Cross-Origin-Opener-Policy'), ['same-origin'],
              "$what: COOP");
    is_deeply(hdrs($r, 'Strict-Transport-Security'), [],
              "$what: no HSTS over plain HTTP");
}

my $r = http($n, '/', host => 'nobody.example.com');
is($r->{status}, 404, 'the module\'s own page');
is_deeply(hdrs($r, 'Content-Security-Policy'),
          ["default-src 'none'; img-src https:; style-src 'unsafe-inline'; "
           . "frame-ancestors 'none'"], 'gets a strict CSP of its own');
is_deeply(hdrs($r, 'X-Content-Type-Options'), ['nosniff'], 'and the rest');

# per-level merging: a location changes one header, keeps the others

$r = http($n, '/custom', host => 'acme.example.com');
is_deeply(hdrs($r, 'Content-Security-Policy'), ["default-src 'none'"],
          'a location overrides the CSP');
is_deeply(hdrs($r, 'X-Frame-Options'), ['DENY'], 'and frame options');
is_deeply(hdrs($r, 'Permissions-Policy'), [], 'and switches one off');
is_deeply(hdrs($r, 'Referrer-Policy'), ['no-referrer'],
          'while inheriting the others (no add_header all-or-nothing)');

is_deeply(hdrs(http($n, '/none', host => 'acme.example.com'),
               'X-Content-Type-Options'), [], 'ent_security_headers off');

$r = http($n, '/tree/inner', host => 'acme.example.com');
is_deeply(hdrs($r, 'Content-Security-Policy'),
          ["script-src 'self' acme.cdn.test"],
          'an inner location inherits its parent\'s own CSP, variables '
          . 'rendered (not the default)');

# upstream copies: replaced by default, or kept; never duplicated

$r = http($n, '/framed', host => 'acme.example.com');
is_deeply(hdrs($r, 'X-Frame-Options'), ['SAMEORIGIN'],
          'the upstream\'s header is replaced, once');
$r = http($n, '/framed-keep', host => 'acme.example.com');
is_deeply(hdrs($r, 'X-Frame-Options'), ['DENY'],
          'or kept, once, with "keep"');
is_deeply(hdrs($r, 'Referrer-Policy'), ['no-referrer'], 'no duplicates');

# per tenant: report-only with a report-uri

$r = http($n, '/', host => 'beta.example.com');
is_deeply(hdrs($r, 'Content-Security-Policy'), [],
          'a report-only tenant gets no enforcing CSP');
is_deeply(hdrs($r, 'Content-Security-Policy-Report-Only'),
          ["default-src 'self'; object-src 'none'; base-uri 'self'; "
           . "frame-ancestors 'self'; form-action 'self'; "
           . "report-uri https://csp.beta.test/r"],
          'but the report-only one, reporting where it asked');

# HSTS over HTTPS; preload not on custom domains unless the tenant asks

sub tls_headers {
    my ($host) = @_;
    my $out = `printf 'GET / HTTP/1.1\\r\\nHost: $host\\r\\nConnection: close\\r\\n\\r\\n' | openssl s_client -quiet -connect 127.0.0.1:$tls_port -servername $host 2>/dev/null`;
    my ($hsts) = $out =~ /^Strict-Transport-Security: ([^\r\n]*)/mi;
    return $hsts;
}

is(tls_headers('acme.example.com'),
   'max-age=31536000; includeSubDomains; preload',
   'HTTPS: HSTS with preload on a platform subdomain');
is(tls_headers('www.acme.test'), 'max-age=31536000; includeSubDomains',
   'no preload on a custom domain');
is(tls_headers('www.white.test'),
   'max-age=31536000; includeSubDomains; preload',
   'unless its tenant asks for it');
is(tls_headers('nobody.example.com'),
   'max-age=31536000; includeSubDomains; preload',
   'no tenant under the platform\'s domain (404): preload');
is(tls_headers('www.unknown.test'), 'max-age=31536000; includeSubDomains',
   'no tenant for a host outside it, which may be a custom domain (404): '
   . 'no preload');

nginx_stop($n);
check_log($n, 'security headers');

done_testing;
