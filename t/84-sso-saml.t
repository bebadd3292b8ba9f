# SAML 2.0 single sign-on at the edge, with assertions signed by xmlsec1
# (the reference implementation of XML signatures): the redirect with an
# AuthnRequest, the ACS accepting a signed response once, identity to the
# upstream, tampered, unsigned and replayed responses refused, metadata.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use EntOP;
use Compress::Zlib ();
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX qw(strftime);
use IO::Select;
use IO::Socket::INET;
use Test::More;

plan skip_all => 'xmlsec1 is not installed' unless -x '/usr/bin/xmlsec1';

pg_start();
redis_start();
my $echo = echo_start();
my $dir = tmpdir();
my $dsn = EntTest::pg_dsn();
my $entctl = "$EntTest::TOP/bin/entctl --dsn '$dsn'";
my $keyfile = "$dir/sso.key";
system("openssl rand -base64 32 > $keyfile") == 0 or die;
system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $dir/idp.key "
       . "-out $dir/idp.crt -days 30 -subj /CN=idp.example.org "
       . ">/dev/null 2>&1") == 0 or die;

pg_sql("INSERT INTO ent.tenants (code, display_name) VALUES ('acme', 'Acme')");

# a node of this test, with more server{} configuration if given
sub saml_node {
    my ($extra) = @_;
    return nginx_start(http_config => <<"CONF", config => <<"CONF2");
ent_postgres "\$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:\$TEST_REDIS_PORT;
ent_sso_secret_key $keyfile;
CONF
ent_tenant on;
ent_tenant_base_domain example.com;
@{[ $extra // '' ]}
location / {
    ent_sso required;
    proxy_pass http://127.0.0.1:$echo;
}
CONF2
}

my $n = saml_node();
my $port = nginx_port($n);
my $acme = "http://acme.example.com:$port";
my $IDP = 'https://idp.example.org/saml';

my $out = `$entctl sso saml acme --entity-id $IDP --sso-url https://idp.example.org/sso --cert-file $dir/idp.crt --domains acme.example.com 2>&1`;
is($?, 0, 'entctl sso saml: saved') or diag $out;
system("$entctl sso domain add acme acme.example.com --verified >/dev/null") == 0
    or die;

sub browser {
    return EntOP::Browser->new(resolve => { "acme.example.com:$port" => "127.0.0.1:$port" },
                               headers => ['Accept' => 'text/html']);
}

sub iso { return strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }

# a Response to request $rid, its assertion signed with the IdP's key
sub response {
    my (%o) = @_;
    my $now = time;
    my $aid = $o{aid} || '_a' . join('', map { sprintf '%02x', int rand 256 } 1 .. 16);
    my $sign = exists $o{sign} ? $o{sign} : 1;
    my $sig = $sign ? <<'SIG' : '';
<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#AID"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature>
SIG
    $sig =~ s/AID/$aid/;
    chomp $sig;
    my $name_id = $o{name_id} || 'alice@acme.example.com';
    my $xml = <<"XML";
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r$aid" Version="2.0" IssueInstant="@{[ iso($now) ]}" Destination="$acme/_ent/saml/acs" InResponseTo="$o{rid}"><saml:Issuer>$IDP</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><saml:Assertion ID="$aid" Version="2.0" IssueInstant="@{[ iso($now) ]}"><saml:Issuer>$IDP</saml:Issuer>$sig<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">$name_id</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="$o{rid}" Recipient="$acme/_ent/saml/acs" NotOnOrAfter="@{[ iso($now + 300) ]}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="@{[ iso($now - 60) ]}" NotOnOrAfter="@{[ iso($now + 300) ]}"><saml:AudienceRestriction><saml:Audience>$acme/_ent/saml/metadata</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="@{[ iso($now) ]}" SessionIndex="_s1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue>alice\@acme.example.com</saml:AttributeValue></saml:Attribute><saml:Attribute Name="name"><saml:AttributeValue>Alice SAML</saml:AttributeValue></saml:Attribute><saml:Attribute Name="groups"><saml:AttributeValue>staff</saml:AttributeValue><saml:AttributeValue>admins</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>
XML
    return $xml unless $sign;
    EntOP::spew("$dir/tmpl.xml", $xml);
    my $err = `xmlsec1 --sign --privkey-pem $dir/idp.key --id-attr:ID urn:oasis:names:tc:SAML:2.0:assertion:Assertion --output $dir/signed.xml $dir/tmpl.xml 2>&1`;
    die "xmlsec1: $err" if $?;
    my $signed = EntOP::slurp("$dir/signed.xml");
    $signed = $o{tamper}->($signed) if $o{tamper};
    return $signed;
}

# the RelayState each browser was given, brought back as the IdP does
my %relay;

sub post_response {
    my ($b, $xml) = @_;
    return $b->post_form("$acme/_ent/saml/acs",
                         { SAMLResponse => encode_base64($xml, ''),
                           RelayState => $relay{$b} // '' });
}

sub relay_of {
    my ($b, $location) = @_;
    my ($rs) = $location =~ /[?&]RelayState=([^&]+)/;
    $relay{$b} = $rs;
}

# to the IdP with an AuthnRequest

my $b = browser();
my $r = $b->get("$acme/app?x=1");
is($r->{status}, 302, 'no session: 302');
like($r->{location}, qr{^https://idp\.example\.org/sso\?SAMLRequest=}, 'to the IdP');
relay_of($b, $r->{location});
like($relay{$b} // '', qr/^[0-9a-f]{32}$/, 'with an opaque RelayState');
my ($sr) = $r->{location} =~ /SAMLRequest=([^&]+)/;
$sr =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
my ($inflated) = Compress::Zlib::inflateInit(-WindowBits => -15)->inflate(decode_base64($sr));
like($inflated // '', qr{<samlp:AuthnRequest[^>]+AssertionConsumerServiceURL="\Q$acme\E/_ent/saml/acs"},
     'an AuthnRequest naming our ACS');
my ($rid) = ($inflated // '') =~ /\bID="([^"]+)"/;
like($rid // '', qr/^_[0-9a-f]{32}$/, 'with a random ID');
like(join("\n", @{ $r->{headers}{'set-cookie'} }),
     qr/^__Host-ent_saml=[\w-]+; Path=\/; Secure; HttpOnly; SameSite=None; Max-Age=600$/m,
     'a sealed state cookie (SameSite=None: the IdP posts cross-site)');

# the signed response

my $good = response(rid => $rid);
$r = post_response($b, $good);
is($r->{status}, 302, 'a signed response: signed in') or diag $r->{body};
is($r->{location}, "$acme/app?x=1", 'back where the user was');
$r = $b->follow($r);
my $id = json_decode($r->{body})->{identity};
is($id->{'x-ent-user-email'}, 'alice@acme.example.com', 'the email attribute');
is($id->{'x-ent-user-name'}, 'Alice SAML', 'the name attribute');
is($id->{'x-ent-user-groups'}, 'staff,admins', 'the groups attribute');
is($id->{'x-ent-roles'}, 'member', 'provisioned with the lowest role');

# replayed, tampered, unsigned, wrong request

$r = post_response($b, $good);
is($r->{status}, 400, 'the same response again: 400');

# the assertion's ID is remembered as long as the assertion would be
# accepted: to its NotOnOrAfter (here in 300 s), plus the tenant's skew
sub sa_ttls {
    return map { redis_cli('TTL', $_) }
        grep { /:sa:/ } split /\n/, redis_cli('--scan', '--pattern', 'ent:*');
}
my @ttl = sa_ttls();
ok(@ttl == 1 && $ttl[0] >= 350 && $ttl[0] <= 362,
   "the assertion's ID kept for NotOnOrAfter and the 60 s skew (@ttl s)");
is(system("$entctl sso saml acme --skew 600 >/dev/null"), 0,
   'the tenant allows a skew of 600 s');
ok(wait_until(sub {
    my $bs = browser();
    my $rs = $bs->get("$acme/app");
    return 0 unless ($rs->{location} // '') =~ /SAMLRequest=([^&]+)/;
    relay_of($bs, $rs->{location});
    (my $q = $1) =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    my ($x) = (Compress::Zlib::inflateInit(-WindowBits => -15)
               ->inflate(decode_base64($q)))[0] =~ /\bID="([^"]+)"/;
    redis_cli('DEL', grep { /:sa:/ } split /\n/,
              redis_cli('--scan', '--pattern', 'ent:*'));
    return post_response($bs, response(rid => $x))->{status} == 302
        && (sa_ttls())[0] > 800;
}, 5, 0.5), "... then the assertion's ID is kept for 300 + 600 s");
is(system("$entctl sso saml acme --skew none >/dev/null"), 0,
   '... and back to the default skew');
$r = post_response($b, response(rid => $rid));
is($r->{status}, 400, 'another assertion answering the same request: 400');
my $b2 = browser();
$r = $b2->get("$acme/app");
relay_of($b2, $r->{location});
my ($sr2) = $r->{location} =~ /SAMLRequest=([^&]+)/;
$sr2 =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
my ($rid2) = (Compress::Zlib::inflateInit(-WindowBits => -15)->inflate(decode_base64($sr2)))[0] =~ /\bID="([^"]+)"/;
$r = post_response($b2, response(rid => $rid2,
    tamper => sub { $_[0] =~ s/alice\@acme\.example\.com</mallory\@acme.example.com</r }));
is($r->{status}, 401, 'a NameID changed after signing: 401');
$r = post_response($b2, response(rid => $rid2, sign => 0));
is($r->{status}, 401, 'an unsigned response: 401');
$r = post_response($b2, response(rid => '_' . ('0' x 32)));
is($r->{status}, 401, 'a response to another request: 401');
$r = post_response(browser(), response(rid => $rid2));
is($r->{status}, 400, 'a response without the state cookie: 400');
is($b2->cookie('__Host-ent_session'), undef, '... no session');

# metadata

$r = browser()->get("$acme/_ent/saml/metadata");
is($r->{status}, 200, 'SP metadata: 200');
like($r->{body}, qr{AssertionConsumerService[^>]+Location="\Q$acme\E/_ent/saml/acs"},
     '... naming the ACS');

# the ACS's body fails while it is read (bad chunking, after a pause) in a
# server with error_page 400: that page, at once, not a request left hanging
{
    my $ep = saml_node("error_page 400 /bad-body;\n"
        . "location = /bad-body { internal; ent_sso optional; "
        . "proxy_pass http://127.0.0.1:$echo; }");
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . nginx_port($ep))
        or die $!;
    print $s "POST /_ent/saml/acs HTTP/1.1\r\nHost: acme.example.com\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . "Transfer-Encoding: chunked\r\n\r\n5\r\nSAMLR\r\n";
    sleep 0.3;
    print $s "zz\r\n";
    my $got = '';
    my $sel = IO::Select->new($s);
    while ($sel->can_read(3)) {
        my $n = sysread($s, my $buf, 4096) or last;
        $got .= $buf;
    }
    like($got, qr{^HTTP/1\.1 400 .*/bad-body}s,
         'a body that fails while it is read: the error_page, at once');
    check_log($ep, 'acs body');
}

check_log($n, 'saml');

done_testing;
