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
#
# The peers (bench/run's Apache cases): with BENCH_OP_PORT the OP listens
# on that port (Apache's configuration names it); with BENCH_MELLON_DIR
# the SAML IdP's key and metadata for mod_auth_mellon are written there
# before CAFILE (Apache starts once CAFILE is there); with
# BENCH_APACHE_PORT one OIDC login through mod_auth_openidc on
# BENCH_APACHE_OIDC_PORT (default the same; "APACHE_OIDC_COOKIE=name=value")
# and one SP-initiated SAML login through mod_auth_mellon
# ("APACHE_MELLON_COOKIE=name=value"), the response to mellon's
# AuthnRequest signed by xmlsec1 as for ngx_ent.
#
# With BENCH_CLUSTER_PORT (bench/run's nginx under test against a Redis
# Cluster, on that port) a second OIDC login for "acme" goes through that
# nginx, so that its session is written through the cluster
# ("CLUSTER_COOKIE=<session cookie>").
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

my $aport = $ENV{BENCH_APACHE_PORT};
my $mdir = $ENV{BENCH_MELLON_DIR};
my $mellon_issuer = 'https://idp.bench.example/saml';
my $mellon_idp;
if ($mdir) {
    $mellon_idp = saml_keypair($mdir, 'idp');
    saml_keypair($mdir, 'sp');     # mellon's own key and certificate
    open my $f, '>', "$mdir/idp.xml" or die "$mdir/idp.xml: $!";
    print $f saml_idp_metadata(entity_id => $mellon_issuer,
                               certs => [$mellon_idp],
                               sso => 'https://idp.bench.example/sso');
    close $f;
    chmod 0644, glob("$mdir/*");
}

my $ca = test_ca();
system('cp', $ca->{ca}, "$cafile.tmp") == 0 && rename("$cafile.tmp", $cafile)
    or die "cannot write $cafile\n";
EntTest::wait_until(sub { EntTest::port_open($port) }, 30)
    or die "nginx does not answer on $port\n";
my $op = op_start(name => 'bench', ttl => { ClientCredentials => 7200 },
                  $ENV{BENCH_OP_PORT} ? (port => $ENV{BENCH_OP_PORT}) : ());
my $host = "acme.example.com:$port";
my $cport = $ENV{BENCH_CLUSTER_PORT};
my $chost = $cport ? "acme.example.com:$cport" : undef;
my $ahost = $aport ? "apache.example.com:$aport" : undef;
my $oport = $ENV{BENCH_APACHE_OIDC_PORT} || $aport;
my $ohost = $aport ? "apache.example.com:$oport" : undef;
op_clients($op, { client_id => 'bench', client_secret => 'bench-secret',
                  redirect_uris => ["http://$host/_ent/oidc/callback",
                                    $cport ? ("http://$chost/_ent/oidc/callback")
                                           : ()] },
           $aport ? { client_id => 'apache', client_secret => 'apache-secret',
                      redirect_uris => ["http://$ohost/oidc/redirect_uri"] }
                  : ());

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

# the same login through the nginx against the Redis Cluster
my $ccookie;
if ($cport) {
    EntTest::wait_until(sub { EntTest::port_open($cport) }, 30)
        or die "the cluster nginx does not answer on $cport\n";
    my $c = EntOP::Browser->new(ca => $ca->{ca},
                                resolve => { $chost => "127.0.0.1:$cport" },
                                headers => ['Accept' => 'text/html']);
    $r = $c->get("http://$chost/sso");
    die "cluster: no redirect to the OP: $r->{status} $r->{body}\n"
        unless $r->{status} == 302;
    $r = $c->follow(op_login($c, $r->{location}, 'alice'));
    die "cluster: login failed: $r->{status} $r->{body}\n"
        unless $r->{status} == 302;
    $ccookie = $c->cookie('__Host-ent_session')
        or die "cluster: no session cookie\n";
    $r = $c->get("http://$chost/sso");
    die "cluster: session refused: $r->{status}\n" unless $r->{status} == 200;
}

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
print "CLUSTER_COOKIE=$ccookie\n" if $ccookie;

exit 0 unless $aport;

# Apache + mod_auth_openidc: the same OP, a login through Apache's
# redirect URI; the session is in Redis (OIDCCacheType redis)

EntTest::wait_until(sub { EntTest::port_open($oport) }, 30)
    or die "Apache does not answer on $oport\n";
my $a = EntOP::Browser->new(ca => $ca->{ca},
                            resolve => { $ohost => "127.0.0.1:$oport" },
                            headers => ['Accept' => 'text/html']);
$r = $a->get("http://$ohost/oidc/");
die "Apache: no redirect to the OP: $r->{status} $r->{body}\n"
    unless $r->{status} == 302;
$r = $a->follow(op_login($a, $r->{location}, 'alice'));
die "Apache: login failed: $r->{status} $r->{body}\n"
    unless $r->{status} == 302;
my $ocookie = $a->cookie('mod_auth_openidc_session')
    or die "Apache: no mod_auth_openidc session cookie\n";
$r = $a->get("http://$ohost/oidc/");
die "Apache: the OIDC session is refused: $r->{status}\n"
    unless $r->{status} == 200;

# Apache + mod_auth_mellon: SP-initiated, mellon's AuthnRequest answered
# by a response signed with the IdP's key (RSA-2048)

my $m = EntOP::Browser->new(resolve => { $ahost => "127.0.0.1:$aport" },
                            headers => ['Accept' => 'text/html']);
$r = $m->get("http://$ahost/mellon/mellon/metadata");
die "mellon metadata: $r->{status}\n" unless $r->{status} == 200;
my ($entity) = $r->{body} =~ /entityID="([^"]+)"/;
my ($acs) = $r->{body}
    =~ /Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"\s+Location="([^"]+)"/;
die "mellon metadata: no entityID or ACS\n" unless $entity && $acs;
$r = $m->get("http://$ahost/mellon/");
$r = $m->follow($r)
    while $r->{status} =~ /^30[1237]$/ && $r->{location} =~ m{^http://\Q$ahost\E/};
die "mellon: no redirect to the IdP: $r->{status}\n"
    unless ($r->{location} // '') =~ m{^https://idp\.bench\.example/sso\?};
my $req = saml_redirect_parse($r->{location});
my ($rid) = $req->{xml} =~ /\sID="([^"]+)"/ or die "mellon: no request id\n";
$r = saml_post($m, $acs, saml_response(
        idp => $mellon_idp, issuer => $mellon_issuer, acs => $acs,
        audience => $entity, rid => $rid, ttl => 7200,
        name_id => 'alice@acme.example.com',
        attrs => [ email => ['alice@acme.example.com'],
                   name => ['Alice SAML'] ]),
    $req->{relay});
die "mellon: login failed: $r->{status} $r->{body}\n"
    unless $r->{status} =~ /^30[23]$/;
my $mcookie = $m->cookie('mellon-cookie')
    or die "mellon: no session cookie\n";
$r = $m->get("http://$ahost/mellon/");
die "mellon: the session is refused: $r->{status}\n" unless $r->{status} == 200;

print "APACHE_OIDC_COOKIE=mod_auth_openidc_session=$ocookie\n"
    . "APACHE_MELLON_COOKIE=mellon-cookie=$mcookie\n";
