# SAML 2.0 service provider, the whole of it: two tenants with two IdPs and
# keys (one configured from IdP metadata with entctl, with an SP key that
# signs AuthnRequests and decrypts assertions; one from options, ECDSA),
# unsolicited login and SHA-1 only when switched on, certificate rotation,
# encrypted assertions, single logout in both directions, and a hostile
# corpus: each message refused with a 4xx, no session, an event.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use EntOP;
use EntSAML;
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

my $idp1 = saml_keypair($dir, 'idp1');
my $idp1b = saml_keypair($dir, 'idp1b');            # acme's next key
my $idp2 = saml_keypair($dir, 'idp2', ec => 1);     # globex, ECDSA
my $evil = saml_keypair($dir, 'evil');
my $sp = saml_keypair($dir, 'sp');                  # acme's SP key
my $other_sp = saml_keypair($dir, 'othersp');

pg_sql("INSERT INTO ent.tenants (code, display_name) VALUES "
       . "('acme', 'Acme'), ('globex', 'Globex')");

my $n = nginx_start(http_config => <<"CONF", config => <<"CONF2");
ent_postgres "\$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:\$TEST_REDIS_PORT;
ent_sso_secret_key $keyfile;
CONF
ent_tenant on;
ent_tenant_base_domain example.com;
location / {
    ent_sso required;
    proxy_pass http://127.0.0.1:$echo;
}
CONF2
my $port = nginx_port($n);
my $acme = "http://acme.example.com:$port";
my $globex = "http://globex.example.com:$port";
my $IDP1 = 'https://idp1.example.org/saml';
my $IDP2 = 'https://idp2.example.org/saml';
my $NIF = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';

sub entctl {
    my ($args) = @_;
    my $out = `$entctl $args 2>&1`;
    return ($? >> 8, $out);
}

# --- entctl: metadata import, and what it refuses

EntSAML::spew("$dir/md1.xml", saml_idp_metadata(
    entity_id => $IDP1, sso => 'https://idp1.example.org/sso',
    slo => 'https://idp1.example.org/slo', certs => [$idp1]));
EntSAML::spew("$dir/bad.xml", "<md:EntityDescriptor");
EntSAML::spew("$dir/nocert.xml", saml_idp_metadata(
    entity_id => $IDP1, sso => 'https://idp1.example.org/sso', certs => []));
my $badcert = EntSAML::saml_idp_metadata(
    entity_id => $IDP1, sso => 'https://idp1.example.org/sso', certs => [$idp1]);
$badcert =~ s{(<ds:X509Certificate>)(.{20})}{$1!!!!$2}s;
EntSAML::spew("$dir/badcert.xml", $badcert);
EntSAML::spew("$dir/notcert.pem", EntSAML::slurp($idp1->{key}));

my ($rc, $out) = entctl("sso saml acme --metadata $dir/bad.xml");
isnt($rc, 0, 'entctl: malformed metadata refused');
like($out, qr/Where to find it/, '... saying where to find the right one');
($rc, $out) = entctl("sso saml acme --metadata $dir/nocert.xml");
isnt($rc, 0, 'entctl: metadata without a signing certificate refused');
like($out, qr/certificate/i, '... naming what is missing') or diag $out;
($rc, $out) = entctl("sso saml acme --metadata $dir/badcert.xml");
isnt($rc, 0, 'entctl: metadata with a malformed certificate refused');
($rc, $out) = entctl("sso saml acme --entity-id $IDP1 --sso-url https://idp1.example.org/sso --cert-file $dir/notcert.pem");
isnt($rc, 0, 'entctl: a private key given as the certificate refused');
like($out, qr/not a certificate/, '... said so');
($rc, $out) = entctl("sso saml acme --metadata $dir/md1.xml --attr-map Bad_Name=x");
isnt($rc, 0, 'entctl: an attribute name that cannot be a header refused');
($rc, $out) = entctl("sso saml acme --metadata http://idp1.example.org/md");
isnt($rc, 0, 'entctl: metadata over plain http refused');
($rc, $out) = entctl("sso saml acme --metadata $dir/md1.xml --sp-key-file $sp->{key} --sp-cert-file $other_sp->{crt} --key-file $keyfile");
isnt($rc, 0, 'entctl: an SP certificate that is not the key\'s refused');
is(pg_sql("SELECT count(*) FROM ent.identity_providers"), 0,
   '... nothing saved by any of them');

($rc, $out) = entctl("sso saml acme --metadata $dir/md1.xml --sp-key-file $sp->{key} --sp-cert-file $sp->{crt} --key-file $keyfile --name-id-format $NIF --domains acme.example.com --attr-map department=urn:oid:2.5.4.11 --attr-map roles=roles");
is($rc, 0, 'entctl: acme from its IdP metadata, with an SP key') or diag $out;
is(pg_sql("SELECT issuer || ' ' || saml_sso_url || ' ' || saml_slo_url FROM ent.identity_providers"),
   "$IDP1 https://idp1.example.org/sso https://idp1.example.org/slo",
   '... entity ID, SSO and SLO URLs from the metadata');
unlike(pg_sql("SELECT saml_sp_key_enc FROM ent.identity_providers"), qr/PRIVATE/,
       '... the SP key stored sealed');
($rc, $out) = entctl("sso saml globex --entity-id $IDP2 --sso-url https://idp2.example.org/sso --cert-file $idp2->{crt} --domains globex.example.com");
is($rc, 0, 'entctl: globex from options') or diag $out;
system("$entctl sso domain add acme acme.example.com --verified >/dev/null") == 0 or die;
system("$entctl sso domain add globex globex.example.com --verified >/dev/null") == 0 or die;

sub browser {
    return EntOP::Browser->new(
        resolve => { "acme.example.com:$port" => "127.0.0.1:$port",
                     "globex.example.com:$port" => "127.0.0.1:$port" },
        headers => ['Accept' => 'text/html']);
}

# start a login: the redirect, parsed
sub start {
    my ($b, $base, $path, $key) = @_;
    my $r = $b->get("$base$path");
    return (undef, $r) unless $r->{status} == 302;
    my $m = saml_redirect_parse($r->{location}, $key);
    ($m->{rid}) = ($m->{xml} // '') =~ /\bID="([^"]+)"/;
    return ($m, $r);
}

sub events { return pg_sql("SELECT count(*) FROM ent.events WHERE kind = '$_[0]' AND outcome = '$_[1]'") }

# --- acme: SP-initiated, signed AuthnRequest, RelayState

my $b = browser();
my ($m, $r) = start($b, $acme, '/app?x=1', $sp);
is($r->{status}, 302, 'acme: to its IdP');
like($r->{location}, qr{^https://idp1\.example\.org/sso\?SAMLRequest=}, '... its SSO URL');
is($m->{sigalg}, 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', '... a signed AuthnRequest (SigAlg)');
is($m->{verified}, 1, '... the signature verifies with the SP certificate (openssl)');
like($m->{relay} // '', qr/^_?[0-9a-f]{32}$/, '... an opaque RelayState');
like($m->{xml}, qr{<samlp:NameIDPolicy[^>]+Format="\Q$NIF\E"}, '... asking for the configured NameID format');

my %acme = (idp => $idp1, issuer => $IDP1, acs => "$acme/_ent/saml/acs",
            audience => "$acme/_ent/saml/metadata");
my %globex = (idp => $idp2, issuer => $IDP2, acs => "$globex/_ent/saml/acs",
              audience => "$globex/_ent/saml/metadata", alg => 'ecdsa-sha256',
              name_id => 'gina@globex.example.com',
              attrs => [ email => ['gina@globex.example.com'], name => ['Gina'] ]);

$r = saml_post($b, $acme{acs}, saml_response(%acme, rid => $m->{rid}), 'tampered');
is($r->{status}, 400, 'acme: a RelayState that is not ours: 400');
($m) = start($b, $acme, '/app?x=1');
$r = saml_post($b, $acme{acs}, saml_response(%acme, rid => $m->{rid},
    attrs => [ email => ['alice@acme.example.com'], name => ['Alice SAML'],
               'urn:oid:2.5.4.11' => ['Research'], roles => ['editor', 'viewer'] ]),
    $m->{relay});
is($r->{status}, 302, 'acme: signed in') or diag $r->{body};
is($r->{location}, "$acme/app?x=1", '... back where the user was');
my $id = json_decode($b->follow($r)->{body})->{identity};
is($id->{'x-ent-user-email'}, 'alice@acme.example.com', '... as alice');
is($id->{'x-ent-user-attr-department'}, 'Research', '... a mapped attribute (--attr-map)');
is($id->{'x-ent-user-attr-roles'}, 'editor,viewer', '... a multi-valued one, joined');

# --- globex: its own IdP and key; acme's IdP means nothing there

my $g = browser();
($m) = start($g, $globex, '/');
ok(!defined $m->{sigalg}, 'globex: no SP key, an unsigned AuthnRequest');
$r = saml_post($g, $globex{acs}, saml_response(%globex, idp => $idp1, alg => 'rsa-sha256', rid => $m->{rid}), $m->{relay});
is($r->{status}, 401, 'globex: a response signed by acme\'s IdP: 401');
$r = saml_post($g, $globex{acs}, saml_response(%globex, rid => $m->{rid}), $m->{relay});
is($r->{status}, 302, 'globex: its IdP\'s ECDSA-signed response answering the same request: signed in')
    or diag $r->{body};
is(json_decode($g->follow($r)->{body})->{identity}{'x-ent-user-email'},
   'gina@globex.example.com', '... as gina');

# --- the hostile corpus, on acme: each a 4xx, no session, an event

sub hostile {
    my ($name, $status, %o) = @_;
    my $hb = browser();
    my ($hm) = start($hb, $acme, '/');
    my $before = events('login', 'failure');
    my $xml = $o{xml} ? $o{xml}->($hm->{rid}) : saml_response(%acme, rid => $hm->{rid}, %{ $o{r} || {} });
    my $hr = saml_post($hb, $acme{acs}, $xml, $hm->{relay}, raw => $o{raw});
    is($hr->{status}, $status, "hostile: $name: $status") or diag $hr->{body};
    is($hb->cookie('__Host-ent_session'), undef, "... $name: no session");
    ok(wait_until(sub { events('login', 'failure') > $before }, 5),
       "... $name: a login failure event");
}

my $fresh = sub { my $x = saml_response(%acme, rid => $_[0]); $x };

hostile('unsigned', 401, r => { sign => 'none' });
hostile('signed by another key', 401, r => { idp => $evil });
hostile('another key, its certificate in KeyInfo', 401,
        r => { idp => $evil, keyinfo => $evil });
hostile('signed assertion moved into Extensions, an unsigned one in its place', 401, xml => sub {
    my $x = saml_response(%acme, rid => $_[0], name_id => 'alice@acme.example.com');
    my ($signed) = $x =~ m{(<saml:Assertion .*</saml:Assertion>)}s;
    (my $forged = $signed) =~ s{<ds:Signature.*</ds:Signature>}{}s;
    $forged =~ s/alice\@acme/mallory\@acme/g;
    $forged =~ s/ID="(_[0-9a-f]+)"/ID="${1}f"/;
    $x =~ s{\Q$signed\E}{<samlp:Extensions>$signed</samlp:Extensions>$forged};
    return $x;
});
hostile('a second, unsigned assertion', 401, xml => sub {
    my $x = saml_response(%acme, rid => $_[0]);
    my ($signed) = $x =~ m{(<saml:Assertion .*</saml:Assertion>)}s;
    (my $forged = $signed) =~ s{<ds:Signature.*</ds:Signature>}{}s;
    $forged =~ s/alice\@acme/mallory\@acme/g;
    $forged =~ s/ID="(_[0-9a-f]+)"/ID="${1}f"/;
    $x =~ s{</samlp:Response>}{$forged</samlp:Response>};
    return $x;
});
hostile('a cloned assertion (duplicate IDs)', 401, xml => sub {
    my $x = saml_response(%acme, rid => $_[0]);
    my ($signed) = $x =~ m{(<saml:Assertion .*</saml:Assertion>)}s;
    (my $forged = $signed) =~ s/alice\@acme/mallory\@acme/g;
    $x =~ s{\Q$signed\E}{$forged$signed};
    return $x;
});
hostile('the signed assertion wrapped in ds:Object', 401, xml => sub {
    my $x = saml_response(%acme, rid => $_[0]);
    my ($signed) = $x =~ m{(<saml:Assertion .*</saml:Assertion>)}s;
    (my $forged = $signed) =~ s/alice\@acme/mallory\@acme/g;
    $forged =~ s{</ds:SignatureValue>}{</ds:SignatureValue><ds:Object>$signed</ds:Object>};
    $x =~ s{\Q$signed\E}{$forged};
    return $x;
});
# the IdP vouches for "alice@acme.example.com.evil.example"; a comment
# added after signing leaves the signature valid (c14n drops comments): the
# value must still be read whole, an unknown user, not alice
hostile('a comment in the NameID and email after signing', 403, xml => sub {
    my $v = 'alice@acme.example.com.evil.example';
    my $x = saml_response(%acme, rid => $_[0], name_id => $v,
                          attrs => [ email => [$v], name => ['Mallory'] ]);
    $x =~ s{alice\@acme\.example\.com\.evil\.example<}{alice\@acme.example.com<!---->.evil.example<}g;
    return $x;
});
hostile('XXE', 401, xml => sub {
    return qq{<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>}
        . saml_response(%acme, rid => $_[0], name_id => '&x;', sign => 'none');
});
hostile('entity expansion', 401, xml => sub {
    my $d = '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">' . join('', map { my $p = $_ - 1; qq{<!ENTITY a$_ "&a$p;&a$p;&a$p;&a$p;&a$p;&a$p;&a$p;&a$p;&a$p;&a$p;">} } 1 .. 9) . ']>';
    $d =~ s/&a0;/&a;/g;
    return $d . saml_response(%acme, rid => $_[0], name_id => '&a9;', sign => 'none');
});
hostile('a huge document', 400, xml => sub { return '<a>' . ('x' x 400_000) . '</a>' });
hostile('deeply nested', 401, xml => sub { return ('<a>' x 5000) . ('</a>' x 5000) });
hostile('expired', 401, r => { now => time - 3600 });
hostile('from the future', 401, r => { not_before => time + 3600 });
hostile('wrong audience', 401, r => { audience => "$globex/_ent/saml/metadata" });
hostile('wrong recipient', 401, r => { recipient => "$globex/_ent/saml/acs" });
hostile('wrong destination', 401, r => { destination => "$globex/_ent/saml/acs" });
hostile('wrong issuer', 401, r => { issuer => $IDP2 });
hostile('unknown InResponseTo', 401, r => { rid => '_' . ('0' x 32) });
hostile('SHA-1 while not allowed', 401, r => { alg => 'rsa-sha1' });
hostile('malformed base64', 401, raw => '!!!notbase64***');
hostile('a status that is not Success', 401,
        r => { status => 'urn:oasis:names:tc:SAML:2.0:status:Responder' });

# replayed, reused request, unsolicited while off

{
    my $hb = browser();
    my ($hm) = start($hb, $acme, '/');
    my $x = saml_response(%acme, rid => $hm->{rid});
    is(saml_post($hb, $acme{acs}, $x, $hm->{relay})->{status}, 302, 'a response accepted');
    my $before = events('login', 'failure');
    my $hb2 = browser();
    my ($hm2) = start($hb2, $acme, '/');
    is(saml_post($hb2, $acme{acs}, $x, $hm2->{relay})->{status}, 401,
       'hostile: replayed in another browser: 401 (not its request)');
    is(saml_post($hb, $acme{acs}, $x, $hm->{relay})->{status}, 400,
       'hostile: replayed in the same browser: 400');
    is(saml_post($hb, $acme{acs}, saml_response(%acme, rid => $hm->{rid}), $hm->{relay})->{status},
       400, 'hostile: its request answered again: 400');
    my $u = browser();
    is(saml_post($u, $acme{acs}, saml_response(%acme, rid => undef), '/')->{status},
       400, 'hostile: unsolicited while not allowed: 400');
    is($u->cookie('__Host-ent_session'), undef, '... no session');
    ok(wait_until(sub { events('login', 'failure') >= $before + 4 }, 5),
       '... an event each');
}

# --- unsolicited and SHA-1, once switched on (live within a second)

($rc, $out) = entctl("sso saml acme --unsolicited on --allow-sha1 on");
is($rc, 0, 'entctl: unsolicited login and SHA-1 on for acme') or diag $out;
sleep 1.2;
my $u = browser();
$r = saml_post($u, $acme{acs}, saml_response(%acme, rid => undef), '/deep/link?a=1');
is($r->{status}, 302, 'unsolicited: signed in') or diag $r->{body};
is($r->{location}, "$acme/deep/link?a=1", '... to the RelayState path');
$r = saml_post($u, $acme{acs}, saml_response(%acme, rid => undef), "$acme/other?b=2");
is($r->{location}, "$acme/other?b=2", 'unsolicited: an absolute RelayState on this host is followed');
$r = saml_post($u, $acme{acs}, saml_response(%acme, rid => undef), '');
is($r->{location}, "$acme/", 'unsolicited: no RelayState, home');
for my $evil_rs ('https://evil.example/', '//evil.example/x', "$acme.evil.example/",
                 'javascript:alert(1)', '/\\evil.example') {
    my $before = events('login', 'failure');
    my $eb = browser();
    $r = saml_post($eb, $acme{acs}, saml_response(%acme, rid => undef), $evil_rs);
    is($r->{status}, 400, "hostile: unsolicited with the RelayState $evil_rs: 400");
    is($eb->cookie('__Host-ent_session'), undef, '... no session');
    ok(wait_until(sub { events('login', 'failure') > $before }, 5), '... an event');
}
$r = saml_post(browser(), $acme{acs}, saml_response(%acme, rid => undef, alg => 'rsa-sha1'), '/');
is($r->{status}, 302, 'SHA-1 allowed: signed in');
($rc) = entctl("sso saml acme --unsolicited off --allow-sha1 off");
sleep 1.2;
is(saml_post(browser(), $acme{acs}, saml_response(%acme, rid => undef), '/')->{status},
   400, 'unsolicited off again: 400');

# --- encrypted assertions, with the SP key

for my $c (['aes256-gcm', 'http://www.w3.org/2009/xmlenc11#aes256-gcm'],
           ['aes128-gcm', 'http://www.w3.org/2009/xmlenc11#aes128-gcm'],
           ['aes256-cbc', 'http://www.w3.org/2001/04/xmlenc#aes256-cbc'],
           ['aes128-cbc', 'http://www.w3.org/2001/04/xmlenc#aes128-cbc']) {
    my $eb = browser();
    my ($em) = start($eb, $acme, '/enc');
    $r = saml_post($eb, $acme{acs}, saml_response(%acme, rid => $em->{rid},
                   encrypt => $sp, enc_data => $c->[1]), $em->{relay});
    is($r->{status}, 302, "an EncryptedAssertion ($c->[0], RSA-OAEP): signed in")
        or diag $r->{body};
}
hostile('an assertion encrypted for another SP key', 401,
        r => { encrypt => $other_sp });
hostile('an assertion encrypted with RSA PKCS#1 v1.5', 401,
        r => { encrypt => $sp, enc_key => 'http://www.w3.org/2001/04/xmlenc#rsa-1_5' });

# --- rotation: both certificates, then only the new one

($rc, $out) = entctl("sso saml acme --cert-file $idp1->{crt} --cert-file $idp1b->{crt}");
is($rc, 0, 'entctl: acme trusts the old and the new certificate') or diag $out;
sleep 1.2;
for my $k ([old => $idp1], [new => $idp1b]) {
    my $rb = browser();
    my ($rm) = start($rb, $acme, '/');
    is(saml_post($rb, $acme{acs}, saml_response(%acme, idp => $k->[1], rid => $rm->{rid}), $rm->{relay})->{status},
       302, "rotation: signed by the $k->[0] key: signed in");
}
($rc) = entctl("sso saml acme --cert-file $idp1b->{crt}");
sleep 1.2;
hostile('rotation: signed by the removed key', 401, r => { idp => $idp1 });
%acme = (%acme, idp => $idp1b);

# --- single logout, SP-initiated

my $s = browser();
($m) = start($s, $acme, '/');
saml_post($s, $acme{acs}, saml_response(%acme, rid => $m->{rid}, session_index => '_sp1'), $m->{relay});
ok($s->cookie('__Host-ent_session'), 'SLO: signed in');
$r = $s->get("$acme/_ent/logout");
is($r->{status}, 302, 'SP-initiated logout: to the IdP');
like($r->{location}, qr{^https://idp1\.example\.org/slo\?SAMLRequest=}, '... its SLO URL');
my $lm = saml_redirect_parse($r->{location}, $sp);
is($lm->{verified}, 1, '... a signed LogoutRequest');
like($lm->{xml}, qr{<saml:NameID[^>]*>alice\@acme\.example\.com</saml:NameID>}, '... naming the NameID');
like($lm->{xml}, qr{<samlp:SessionIndex>_sp1</samlp:SessionIndex>}, '... and the SessionIndex');
my ($lrid) = $lm->{xml} =~ /\bID="([^"]+)"/;
is($s->get("$acme/_ent/session")->{status}, 401, '... the session is gone');
my $resp = saml_logout_response(issuer => $IDP1, destination => "$acme/_ent/saml/slo",
                                 in_response_to => $lrid);
$r = $s->get("$acme/_ent/saml/slo?" . saml_redirect(param => 'SAMLResponse', xml => $resp));
is($r->{status}, 401, 'the IdP\'s LogoutResponse unsigned: 401');
$r = $s->get("$acme/_ent/saml/slo?" . saml_redirect(param => 'SAMLResponse', xml => $resp, key => $evil));
is($r->{status}, 401, '... signed by another key: 401');
$r = $s->get("$acme/_ent/saml/slo?" . saml_redirect(param => 'SAMLResponse', xml => $resp, key => $idp1b));
is($r->{status}, 302, 'the IdP\'s signed LogoutResponse: done');
is($r->{location}, "$acme/", '... home');
$r = browser()->get("$acme/_ent/saml/slo?" . saml_redirect(param => 'SAMLResponse', xml => $resp, key => $idp1b));
is($r->{status}, 400, '... without our logout state: 400');

# --- single logout, IdP-initiated: the sessions of that SessionIndex go

my @b;
for my $si ('_s1', '_s1', '_s2') {
    my $x = browser();
    my ($xm) = start($x, $acme, '/');
    saml_post($x, $acme{acs}, saml_response(%acme, rid => $xm->{rid}, session_index => $si), $xm->{relay});
    push @b, $x;
}
is(scalar(grep { $_->get("$acme/")->{status} == 200 } @b), 3, 'IdP-initiated: three sessions');
my ($lreq, $lreq_id) = saml_logout_request(issuer => $IDP1, destination => "$acme/_ent/saml/slo",
                                           name_id => 'alice@acme.example.com', session_index => '_s1');
my $before = events('logout', 'failure');
$r = browser()->get("$acme/_ent/saml/slo?" . saml_redirect(param => 'SAMLRequest', xml => $lreq, relay => 'rs1'));
is($r->{status}, 401, 'an unsigned LogoutRequest: 401');
$r = browser()->get("$acme/_ent/saml/slo?" . saml_redirect(param => 'SAMLRequest', xml => $lreq, relay => 'rs1', key => $evil));
is($r->{status}, 401, 'a LogoutRequest signed by another key: 401');
$r = browser()->get("$acme/_ent/saml/slo?" . saml_redirect(param => 'SAMLRequest', raw => "\xff\xfe not deflate", key => $idp1b));
is($r->{status}, 400, 'a signed LogoutRequest that does not inflate: 400');
ok(wait_until(sub { events('logout', 'failure') >= $before + 3 }, 5), '... an event each');
is(scalar(grep { $_->get("$acme/")->{status} == 200 } @b), 3, '... the sessions are untouched');
$r = $b[0]->get("$acme/_ent/saml/slo?" . saml_redirect(param => 'SAMLRequest', xml => $lreq, relay => 'rs1', key => $idp1b));
is($r->{status}, 302, 'a signed LogoutRequest: answered');
my $lr = saml_redirect_parse($r->{location}, $sp);
like($r->{location}, qr{^https://idp1\.example\.org/slo\?SAMLResponse=}, '... with a LogoutResponse to the IdP');
is($lr->{verified}, 1, '... signed by the SP key');
is($lr->{relay}, 'rs1', '... its RelayState returned');
like($lr->{xml}, qr{InResponseTo="\Q$lreq_id\E"}, '... answering the request');
like($lr->{xml}, qr{status:Success}, '... Success');
is(join(',', map { $_->get("$acme/")->{status} } @b), '302,302,200',
   '... the sessions of that SessionIndex are gone, on every browser; the other stays');
$r = browser()->get("$acme/_ent/saml/slo?" . saml_redirect(param => 'SAMLRequest', xml => $lreq, relay => 'rs1', key => $idp1b));
is($r->{status}, 400, 'the same LogoutRequest again: 400');
($lreq) = saml_logout_request(issuer => $IDP1, destination => "$acme/_ent/saml/slo",
                              name_id => 'alice@acme.example.com');
$r = browser()->get("$acme/_ent/saml/slo?" . saml_redirect(param => 'SAMLRequest', xml => $lreq, key => $idp1b));
is($r->{status}, 302, 'a LogoutRequest for the NameID alone: answered');
is($b[2]->get("$acme/")->{status}, 302, '... the NameID\'s last session is gone');

# several SessionIndexes (each must end): every session of the NameID
my @c;
for my $si ('_s3', '_s4', '_s5') {
    my $x = browser();
    my ($xm) = start($x, $acme, '/');
    saml_post($x, $acme{acs}, saml_response(%acme, rid => $xm->{rid}, session_index => $si), $xm->{relay});
    push @c, $x;
}
is(join(',', map { $_->get("$acme/")->{status} } @c), '200,200,200', 'three more sessions');
($lreq) = saml_logout_request(issuer => $IDP1, destination => "$acme/_ent/saml/slo",
                              name_id => 'alice@acme.example.com', session_index => ['_s3', '_s4']);
$r = browser()->get("$acme/_ent/saml/slo?" . saml_redirect(param => 'SAMLRequest', xml => $lreq, key => $idp1b));
is($r->{status}, 302, 'a LogoutRequest with two SessionIndexes: answered');
is(join(',', map { $_->get("$acme/")->{status} } @c), '302,302,302',
   '... every session of the NameID is gone, not only the first index\'s');
# its ID is remembered a day: an older request is refused
($lreq) = saml_logout_request(issuer => $IDP1, destination => "$acme/_ent/saml/slo",
                              name_id => 'alice@acme.example.com', now => time - 90000);
$r = browser()->get("$acme/_ent/saml/slo?" . saml_redirect(param => 'SAMLRequest', xml => $lreq, key => $idp1b));
is($r->{status}, 400, 'a LogoutRequest issued more than a day ago: 400');
ok(wait_until(sub { pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'logout.idp' AND result = 'success' "
                           . "AND category = 'authentication' AND reason = 'saml: IdP-initiated' "
                           . "AND details->>'protocol' = 'saml'") >= 2 }, 5),
   'each IdP-initiated logout: logout.idp, with the protocol');
ok(pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'logout.user'") >= 1,
   'the SP-initiated one: logout.user');
ok(pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'login' AND result = 'success' "
          . "AND details->>'protocol' = 'saml' AND actor_type = 'user'") >= 1,
   'SAML logins: login, protocol saml, the user as actor');

# --- SP metadata

$r = browser()->get("$acme/_ent/saml/metadata");
is($r->{status}, 200, 'SP metadata: 200');
like($r->{body}, qr{AuthnRequestsSigned="true"}, '... AuthnRequests signed');
like($r->{body}, qr{<md:KeyDescriptor use="signing">}, '... a signing key');
like($r->{body}, qr{<md:KeyDescriptor use="encryption">}, '... an encryption key');
like($r->{body}, qr{SingleLogoutService[^>]+Location="\Q$acme\E/_ent/saml/slo"}, '... the SLO service');
$r = browser()->get("$globex/_ent/saml/metadata");
unlike($r->{body}, qr{KeyDescriptor}, 'globex metadata: no SP key, no KeyDescriptor');

# --- an EC SP key: it signs AuthnRequests, it cannot decrypt

my $ec_sp = saml_keypair($dir, 'ecsp', ec => 1);
($rc, $out) = entctl("sso saml globex --sp-key-file $ec_sp->{key} --sp-cert-file $ec_sp->{crt} --key-file $keyfile");
is($rc, 0, 'entctl: globex with an EC SP key') or diag $out;
sleep 1.2;
$g = browser();
($m) = start($g, $globex, '/ec', $ec_sp);
is($m->{sigalg}, 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
   'EC SP key: an ECDSA-signed AuthnRequest');
$r = saml_post($g, $globex{acs}, saml_response(%globex, rid => $m->{rid}), $m->{relay});
is($r->{status}, 302, '... a signed, unencrypted response: signed in')
    or diag $r->{body};
$g = browser();
($m) = start($g, $globex, '/ec', $ec_sp);
$r = saml_post($g, $globex{acs}, saml_response(%globex, rid => $m->{rid},
               encrypt => $sp), $m->{relay});
is($r->{status}, 401, '... an EncryptedAssertion: 401') or diag $r->{body};
like(nginx_log($n), qr/SP key is not an RSA key/, '... the log says why');
$r = browser()->get("$globex/_ent/saml/metadata");
like($r->{body}, qr{<md:KeyDescriptor use="signing">}, '... metadata: a signing key');
unlike($r->{body}, qr{use="encryption"}, '... and no encryption key');

check_log($n, 'saml sp');

done_testing;
