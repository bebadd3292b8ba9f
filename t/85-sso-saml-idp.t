# SAML 2.0 against a real IdP: Debian's SimpleSAMLphp (exampleauth users),
# behind TLS: the browser is sent to the IdP with our AuthnRequest, logs in
# with the IdP's form, and its auto-posting form brings the signed response
# to /_ent/saml/acs.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use EntOP;
use EntSAMLIdP;
use Test::More;

plan skip_all => 'SimpleSAMLphp is not installed'
    unless -d "$EntSAMLIdP::SSP/www" && `which php 2>/dev/null`;

pg_start();
redis_start();
my $echo = echo_start();
my $ca = test_ca();
my $dir = tmpdir();
my $dsn = EntTest::pg_dsn();
my $entctl = "$EntTest::TOP/bin/entctl --dsn '$dsn'";
my $keyfile = "$dir/sso.key";
system("openssl rand -base64 32 > $keyfile") == 0 or die;

pg_sql("INSERT INTO ent.tenants (code, display_name) VALUES ('acme', 'Acme')");

my $port = EntTest::free_port();
my $tls = EntTest::free_port();
my $acme = "http://acme.example.com:$port";
my $idp = saml_idp_start(sp => $acme, tls_port => $tls, users => {
    carol => { password => 'carol-pw', email => 'carol@acme.example.com',
               name => 'Carol SSP', groups => ['staff', 'ops'] },
});

my $http = <<"CONF" . saml_idp_tls($idp);
ent_postgres "\$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:\$TEST_REDIS_PORT;
ent_sso_secret_key $keyfile;
CONF

# nginx's port is in the IdP's SP metadata: chosen first
my $n = EntTest::nginx_new();
$n->{port} = $port;
nginx_start(instance => $n, http_config => $http, config => <<"CONF");
ent_tenant on;
ent_tenant_base_domain example.com;
location / {
    ent_sso required;
    proxy_pass http://127.0.0.1:$echo;
}
CONF

my $out = `$entctl sso saml acme --entity-id $idp->{entity_id} --sso-url $idp->{sso_url} --cert-file $idp->{cert} --domains acme.example.com 2>&1`;
is($?, 0, 'entctl sso saml: the IdP saved') or diag $out;
system("$entctl sso domain add acme acme.example.com --verified >/dev/null") == 0
    or die;

my $b = EntOP::Browser->new(ca => $ca->{ca}, headers => ['Accept' => 'text/html'],
    resolve => { "acme.example.com:$port" => "127.0.0.1:$port" });

my $r = $b->get("$acme/reports?q=1");
is($r->{status}, 302, 'no session: 302');
like($r->{location}, qr{^\Q$idp->{sso_url}\E\?SAMLRequest=}, "to SimpleSAMLphp's SSO service");

$r = saml_idp_login($b, $r->{location}, 'carol', 'carol-pw');
my ($form) = grep { $_->{action} eq "$acme/_ent/saml/acs" } $b->forms($r);
ok($form, "the IdP's form posts to our ACS") or diag substr($r->{body} // '', 0, 2000);
my %f = @{ $form ? $form->{fields} : [] };
ok(length($f{SAMLResponse} // '') > 100, '... with a SAMLResponse');

$r = $b->submit_form($r, $form) if $form;
is($r->{status}, 302, 'the ACS accepts the signed response') or diag $r->{body};
is($r->{location}, "$acme/reports?q=1", 'back where the user was');
$r = $b->follow($r);
is($r->{status}, 200, 'signed in');
my $id = json_decode($r->{body})->{identity} || {};
is($id->{'x-ent-user-email'}, 'carol@acme.example.com', 'the email from the IdP');
is($id->{'x-ent-user-name'}, 'Carol SSP', 'the name');
is($id->{'x-ent-user-groups'}, 'staff,ops', 'the groups');
is($id->{'x-ent-roles'}, 'member', 'provisioned just in time');

# the same response again is refused
$r = $b->post_form("$acme/_ent/saml/acs", [SAMLResponse => $f{SAMLResponse},
                                           RelayState => $f{RelayState} // '']);
is($r->{status}, 400, 'the same response posted again: 400');

check_log($n, 'saml idp');

done_testing;
