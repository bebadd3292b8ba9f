#!/usr/bin/perl
# For bench/run: a real OpenID Provider (oidc-provider, as in the tests)
# for tenant "acme", one browser login through the nginx under test, and a
# JWT access token; prints "COOKIE=<session cookie>" and "TOKEN=<jwt>".
# The nginx under test keeps the OP's keys in its cache, so the OP may stop
# when this script ends.  Then a SAML IdP (xmlsec1-signed responses, RSA-2048)
# for tenant "globex", with IdP-initiated login on: one login
# ("SAML_COOKIE=<session cookie>"), and one more signed response written,
# form-encoded, to SAMLBODY for the ACS benchmark.
#
#   bench/sso-setup.pl PORT DSN KEYFILE CAFILE SAMLBODY
#
# CAFILE receives the test CA first (nginx needs it to start); the login
# waits until nginx answers on PORT.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use EntTest ();
use EntOP;
use EntSAML;
use MIME::Base64 qw(encode_base64);

my ($port, $dsn, $keyfile, $cafile, $samlbody) = @ARGV;
die "usage: sso-setup.pl PORT DSN KEYFILE CAFILE SAMLBODY\n" unless $samlbody;

my $ca = test_ca();
system('cp', $ca->{ca}, "$cafile.tmp") == 0 && rename("$cafile.tmp", $cafile)
    or die "cannot write $cafile\n";
EntTest::wait_until(sub { EntTest::port_open($port) }, 30)
    or die "nginx does not answer on $port\n";
my $op = op_start(name => 'bench', ttl => { ClientCredentials => 7200 });
my $host = "acme.example.com:$port";
op_clients($op, { client_id => 'bench', client_secret => 'bench-secret',
                  redirect_uris => ["http://$host/_ent/oidc/callback"] });

$ENV{BENCH_SECRET} = 'bench-secret';
my $out = `$EntTest::TOP/bin/entctl --dsn '$dsn' sso oidc acme --issuer $op->{issuer} --client-id bench --key-file $keyfile --client-secret-env BENCH_SECRET --ca-file $ca->{ca} --domains acme.example.com --api-audience https://api.example.com 2>&1`;
die "entctl: $out" if $?;
$out = `$EntTest::TOP/bin/entctl --dsn '$dsn' sso domain add acme acme.example.com --verified 2>&1`;
die "entctl: $out" if $?;
sleep 1;    # the IdP record reaches nginx's cache by NOTIFY

my $b = EntOP::Browser->new(ca => $ca->{ca},
                            resolve => { $host => "127.0.0.1:$port" },
                            headers => ['Accept' => 'text/html']);
my $r = $b->get("http://$host/sso");
die "no redirect to the OP: $r->{status} $r->{body}\n" unless $r->{status} == 302;
$r = $b->follow(op_login($b, $r->{location}, 'alice'));
die "login failed: $r->{status} $r->{body}\n" unless $r->{status} == 302;
my $cookie = $b->cookie('__Host-ent_session') or die "no session cookie\n";

my $t = op_token($op, client_id => 'bench', client_secret => 'bench-secret',
                 grant_type => 'client_credentials',
                 resource => 'https://api.example.com', scope => 'api:read');
my $jwt = $t->{json}{access_token} or die "no access token: $t->{body}\n";

# the JWK set into nginx's cache while the OP is up
$r = $b->request('GET', "http://$host/sso", ['Authorization' => "Bearer $jwt",
                                              'Cookie' => '']);
die "bearer refused: $r->{status}\n" unless $r->{status} == 200;
$r = $b->get("http://$host/sso");
die "session refused: $r->{status}\n" unless $r->{status} == 200;

# SAML: globex, its IdP's responses signed with RSA-2048 by xmlsec1

my $gh = "globex.example.com:$port";
my $idp = saml_keypair(EntTest::tmpdir(), 'benchidp');
my $issuer = 'https://idp.globex.example/saml';
$out = `$EntTest::TOP/bin/entctl --dsn '$dsn' sso saml globex --entity-id $issuer --sso-url https://idp.globex.example/sso --cert-file $idp->{crt} --unsolicited on --domains globex.example.com 2>&1`;
die "entctl: $out" if $?;
$out = `$EntTest::TOP/bin/entctl --dsn '$dsn' sso domain add globex globex.example.com --verified 2>&1`;
die "entctl: $out" if $?;
sleep 1;

my %resp = (idp => $idp, issuer => $issuer, acs => "http://$gh/_ent/saml/acs",
            audience => "http://$gh/_ent/saml/metadata", rid => undef,
            name_id => 'gina@globex.example.com', ttl => 7200,
            attrs => [ email => ['gina@globex.example.com'], name => ['Gina'] ]);
my $g = EntOP::Browser->new(resolve => { $gh => "127.0.0.1:$port" },
                            headers => ['Accept' => 'text/html']);
$r = saml_post($g, $resp{acs}, saml_response(%resp), '/sso');
die "SAML login failed: $r->{status} $r->{body}\n" unless $r->{status} == 302;
my $scookie = $g->cookie('__Host-ent_session') or die "no SAML session cookie\n";
$r = $g->get("http://$gh/sso");
die "SAML session refused: $r->{status}\n" unless $r->{status} == 200;

open my $f, '>', $samlbody or die "$samlbody: $!";
print $f 'SAMLResponse=' . pct_escape(encode_base64(saml_response(%resp), ''))
         . '&RelayState=%2Fsso';
close $f;

print "COOKIE=$cookie\nTOKEN=$jwt\nSAML_COOKIE=$scookie\n";
