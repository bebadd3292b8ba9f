#!/usr/bin/perl
# For bench/run: a real OpenID Provider (oidc-provider, as in the tests)
# for tenant "acme", one browser login through the nginx under test, and a
# JWT access token; prints "COOKIE=<session cookie>" and "TOKEN=<jwt>".
# The nginx under test keeps the OP's keys in its cache, so the OP may stop
# when this script ends.
#
#   bench/sso-setup.pl PORT DSN KEYFILE CAFILE
#
# CAFILE receives the test CA first (nginx needs it to start); the login
# waits until nginx answers on PORT.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use EntTest ();
use EntOP;

my ($port, $dsn, $keyfile, $cafile) = @ARGV;
die "usage: sso-setup.pl PORT DSN KEYFILE CAFILE\n" unless $cafile;

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

print "COOKIE=$cookie\nTOKEN=$jwt\n";
