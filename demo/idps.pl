#!/usr/bin/perl
# The demo's identity providers, for ./dev up: a local OpenID Provider
# (oidc-provider on node, the one the tests use) for acme, and a SAML IdP
# (Debian's SimpleSAMLphp) for globex.  Both sign users in with a form.
#
#   perl demo/idps.pl STATE_DIR NGINX_PORT OP_PORT SAML_TLS_PORT
#
# Writes STATE_DIR/idps.env (shell variables: where the OP and the IdP are,
# the CA that signed their TLS certificates, the IdP's signing
# certificate), then stays in the foreground until TERM: the providers
# stop with it.  The SAML IdP's TLS is nginx's: ./dev writes the server
# block (its certificate and key are in idps.env).
use strict;
use warnings;
use File::Basename qw(dirname);
use Cwd qw(abs_path);
use lib abs_path(dirname(__FILE__) . '/../t/lib');
use EntTest;
use EntOP;
use EntSAMLIdP;
use JSON::PP;
use Time::HiRes qw(sleep);

my ($state, $port, $op_port, $saml_port) = @ARGV;
die "usage: $0 STATE_DIR NGINX_PORT OP_PORT SAML_TLS_PORT\n"
    unless $saml_port;

my $acme = "http://acme.localhost:$port";
my $globex = "http://globex.localhost:$port";

my $op = op_start(name => 'demo', port => $op_port,
    clients => [{
        client_id => 'acme-demo', client_secret => 'acme-demo-secret',
        redirect_uris => ["$acme/_ent/oidc/callback"],
        post_logout_redirect_uris => ["$acme/"],
    }],
    accounts => {
        alice => { email => 'alice@acme.example', name => 'Alice Admin',
                   email_verified => JSON::PP::true,
                   groups => ['admins', 'staff'], department => 'R&D' },
        bob   => { email => 'bob@acme.example', name => 'Bob Builder',
                   email_verified => JSON::PP::true, groups => ['staff'],
                   department => 'Sales' },
        carol => { email => 'carol@acme.example', name => 'Carol Counts',
                   email_verified => JSON::PP::true,
                   groups => ['finance', 'staff'], department => 'Finance' },
    });

my $idp = saml_idp_start(sp => $globex, tls_port => $saml_port, users => {
    gina => { password => 'gina', email => 'gina@globex.example',
              name => 'Gina Globex', groups => ['admins'] },
    hank => { password => 'hank', email => 'hank@globex.example',
              name => 'Hank Scorpio', groups => ['staff'] },
});

my %env = (
    DEMO_OP_ISSUER => $op->{issuer},
    DEMO_OP_CLIENT_ID => 'acme-demo',
    DEMO_OP_CLIENT_SECRET => 'acme-demo-secret',
    DEMO_CA => $op->{ca},
    DEMO_TLS_CERT => $idp->{ca}{cert},
    DEMO_TLS_KEY => $idp->{ca}{key},
    DEMO_SAML_ENTITY_ID => $idp->{entity_id},
    DEMO_SAML_PHP_PORT => $idp->{port},
    DEMO_IDPS_PID => $$,
);
open my $f, '>', "$state/idps.env.tmp" or die "$state/idps.env: $!\n";
print $f map { "$_='$env{$_}'\n" } sort keys %env;
close $f;
rename "$state/idps.env.tmp", "$state/idps.env" or die "rename: $!\n";

my $stop = 0;
$SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
sleep 1 until $stop;
unlink "$state/idps.env";
exit 0;    # the harness's END stops the OP and SimpleSAMLphp
