# SAML 2.0 against a real IdP: Debian's SimpleSAMLphp (exampleauth users),
# behind TLS: entctl imports its metadata from its URL; the browser is sent
# to the IdP with our AuthnRequest, logs in with the IdP's form, and its
# auto-posting form brings the signed response to /_ent/saml/acs; then
# single logout, started by us and started by the IdP.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use EntOP;
use EntSAMLIdP;
use EntSAML ();
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

my $out = `$entctl sso saml acme --metadata $idp->{entity_id} --ca-file $ca->{ca} --domains acme.example.com 2>&1`;
is($?, 0, 'entctl sso saml --metadata URL: the IdP saved from its metadata') or diag $out;
is(pg_sql("SELECT issuer || ' ' || saml_sso_url || ' ' || saml_slo_url FROM ent.identity_providers"),
   "$idp->{entity_id} $idp->{sso_url} $idp->{slo_url}",
   '... entity ID, SSO and SLO services from the metadata');
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

# single logout, started here: to the IdP and back

$r = $b->get("$acme/_ent/logout");
is($r->{status}, 302, 'logout: to the IdP');
like($r->{location}, qr{^\Q$idp->{slo_url}\E\?SAMLRequest=}, "... its SingleLogoutService");
my @seen;
($r, @seen) = saml_idp_follow($b, $b->follow($r), qr{^\Q$acme\E/$});
ok((grep { m{^\Q$acme\E/_ent/saml/slo\?SAMLResponse=} } @seen),
   "the IdP's LogoutResponse came to /_ent/saml/slo") or diag explain \@seen;
is($seen[-1], "$acme/", '... which accepted it (signed) and sent the user home')
    or diag $r->{status}, $r->{body};
is($b->get("$acme/_ent/session")->{status}, 401, '... no session here');
$r = $b->get("$acme/reports");
like($r->{location} // '', qr{^\Q$idp->{sso_url}\E}, '... a new login goes to the IdP');
($r) = saml_idp_follow($b, $b->follow($r));
ok(scalar(grep { exists {@{ $_->{fields} || [] }}->{username} } $b->forms($r)),
   "... which asks for the password again: its session ended too")
    or diag $r->{status};

# single logout, started by the IdP: its LogoutRequest comes through the browser

my $b2 = EntOP::Browser->new(ca => $ca->{ca}, headers => ['Accept' => 'text/html'],
    resolve => { "acme.example.com:$port" => "127.0.0.1:$port" });
$r = $b2->get("$acme/reports");
$r = saml_idp_login($b2, $r->{location}, 'carol', 'carol-pw');
($form) = grep { $_->{action} eq "$acme/_ent/saml/acs" } $b2->forms($r);
$r = $b2->submit_form($r, $form);
is($r->{status}, 302, 'signed in again');
my $cookie = $b2->cookie('__Host-ent_session');
# the same session, from another device that holds the cookie
my $other = EntOP::Browser->new(resolve => { "acme.example.com:$port" => "127.0.0.1:$port" });
is($other->request('GET', "$acme/reports", ['Cookie' => "__Host-ent_session=$cookie"])->{status},
   200, '... the session works');
$r = $b2->get("$idp->{init_slo_url}?ReturnTo=" . EntSAML::pct_escape("$acme/bye"));
($r, @seen) = saml_idp_follow($b2, $r, qr{^\Q$acme\E/bye});
ok((grep { m{^\Q$acme\E/_ent/saml/slo\?SAMLRequest=} } @seen),
   "the IdP's LogoutRequest came to /_ent/saml/slo") or diag explain \@seen;
ok((grep { m{^\Q$idp->{slo_url}\E\?SAMLResponse=} } @seen),
   '... answered with a LogoutResponse to the IdP');
is($seen[-1], "$acme/bye", '... and the IdP finished its logout') or diag explain \@seen;
is($other->request('GET', "$acme/reports", ['Cookie' => "__Host-ent_session=$cookie"])->{status},
   302, '... the session is revoked everywhere');

check_log($n, 'saml idp');

done_testing;
