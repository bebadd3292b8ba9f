package EntSAML;

# A SAML 2.0 identity provider for the tests, made of the reference tools:
# responses and assertions signed (and encrypted) by the xmlsec1 command
# line, Redirect-binding messages deflated here and signed by the openssl
# command line, keys and certificates made by openssl.  Nothing here
# shares code with the module under test.

use strict;
use warnings;
use Compress::Zlib ();
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX qw(strftime);
use Exporter 'import';

our @EXPORT = qw(saml_keypair saml_response saml_post saml_redirect
                 saml_redirect_parse saml_inflate saml_iso pct_escape
                 pct_unescape saml_logout_request saml_logout_response
                 saml_idp_metadata);

my $SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol';
my $SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
my $DS = 'http://www.w3.org/2000/09/xmldsig#';
my %SIGALG = (
    'rsa-sha256' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'rsa-sha1' => 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
    'ecdsa-sha256' => 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
);
my %DIGEST = (
    'rsa-sha256' => 'http://www.w3.org/2001/04/xmlenc#sha256',
    'rsa-sha1' => 'http://www.w3.org/2000/09/xmldsig#sha1',
    'ecdsa-sha256' => 'http://www.w3.org/2001/04/xmlenc#sha256',
);

sub slurp { open my $f, '<', $_[0] or die "$_[0]: $!"; local $/; my $d = <$f>; return $d }
sub spew { open my $f, '>', $_[0] or die "$_[0]: $!"; print $f $_[1]; close $f }

sub run {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    die "$cmd: $out" if $?;
    return $out;
}

sub saml_iso { return strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }

sub rnd_id { return '_' . join('', map { sprintf '%02x', int rand 256 } 1 .. 16) }

# a key and a self-signed certificate: { key, crt, pub } file names
sub saml_keypair {
    my ($dir, $name, %o) = @_;
    my $key = "$dir/$name.key";
    my $alg = $o{ec} ? '-newkey ec -pkeyopt ec_paramgen_curve:P-256'
                     : '-newkey rsa:2048';
    my $days = $o{days} // 30;
    run("openssl req -x509 $alg -nodes -keyout $key -out $dir/$name.crt "
        . "-days $days -subj /CN=$name.example.org");
    run("openssl x509 -in $dir/$name.crt -pubkey -noout > $dir/$name.pub");
    return { key => $key, crt => "$dir/$name.crt", pub => "$dir/$name.pub",
             dir => $dir, name => $name };
}

sub pct_escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

sub pct_unescape {
    my ($s) = @_;
    $s =~ tr/+/ /;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}

sub sig_template {
    my ($id, $alg, %o) = @_;
    $alg ||= 'rsa-sha256';
    my $ki = $o{keyinfo} ? '<ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        . $o{keyinfo} . '</ds:X509Certificate></ds:X509Data></ds:KeyInfo>' : '';
    return qq{<ds:Signature xmlns:ds="$DS"><ds:SignedInfo>}
        . q{<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>}
        . qq{<ds:SignatureMethod Algorithm="$SIGALG{$alg}"/>}
        . qq{<ds:Reference URI="#$id"><ds:Transforms>}
        . q{<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>}
        . q{<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>}
        . qq{</ds:Transforms><ds:DigestMethod Algorithm="$DIGEST{$alg}"/>}
        . q{<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>}
        . qq{<ds:SignatureValue></ds:SignatureValue>$ki</ds:Signature>};
}

sub cert_b64 {
    my ($crt) = @_;
    my $pem = slurp($crt);
    $pem =~ s/-----[^-]+-----//g;
    $pem =~ s/\s+//g;
    return $pem;
}

sub xmlsec_sign {
    my ($key, $xml, $id_attr) = @_;
    my $dir = $key->{dir};
    spew("$dir/tmpl.xml", $xml);
    run("xmlsec1 --sign --privkey-pem $key->{key} --id-attr:ID $id_attr "
        . "--output $dir/signed.xml $dir/tmpl.xml");
    my $signed = slurp("$dir/signed.xml");
    $signed =~ s/^<\?xml[^>]*\?>\s*//;
    return $signed;
}

# an assertion, standalone (its namespaces declared on it)
sub assertion {
    my (%o) = @_;
    my $now = $o{now} || time;
    my $aid = $o{aid};
    my $sig = $o{sign_assertion} ? sig_template($aid, $o{alg},
        keyinfo => $o{keyinfo} ? cert_b64($o{keyinfo}{crt}) : undef) : '';
    my $rid = defined $o{rid} ? qq{ InResponseTo="$o{rid}"} : '';
    my $nid = $o{name_id} // 'alice@acme.example.com';
    my $fmt = $o{name_id_format} // 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
    my $attrs = '';
    for my $a (@{ $o{attrs} || [ email => ['alice@acme.example.com'],
                                   name => ['Alice SAML'],
                                   groups => ['staff', 'admins'] ] }) {
        if (ref $a) {
            $attrs .= join '', map { "<saml:AttributeValue>$_</saml:AttributeValue>" } @$a;
            $attrs .= '</saml:Attribute>';
        } else {
            $attrs .= qq{<saml:Attribute Name="$a">};
        }
    }
    return qq{<saml:Assertion xmlns:saml="$SAML" ID="$aid" Version="2.0" IssueInstant="@{[ saml_iso($now) ]}">}
        . qq{<saml:Issuer>$o{issuer}</saml:Issuer>$sig<saml:Subject>}
        . qq{<saml:NameID Format="$fmt">$nid</saml:NameID>}
        . q{<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">}
        . qq{<saml:SubjectConfirmationData$rid Recipient="$o{recipient}" NotOnOrAfter="@{[ saml_iso($now + ($o{ttl} // 300)) ]}"/>}
        . q{</saml:SubjectConfirmation></saml:Subject>}
        . qq{<saml:Conditions NotBefore="@{[ saml_iso($o{not_before} // ($now - 60)) ]}" NotOnOrAfter="@{[ saml_iso($now + ($o{ttl} // 300)) ]}">}
        . qq{<saml:AudienceRestriction><saml:Audience>$o{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>}
        . qq{<saml:AuthnStatement AuthnInstant="@{[ saml_iso($now) ]}" SessionIndex="$o{session_index}">}
        . q{<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>}
        . qq{<saml:AttributeStatement>$attrs</saml:AttributeStatement></saml:Assertion>};
}

# a template for xmlsec1 --encrypt: the session key wrapped with RSA-OAEP
sub enc_template {
    my ($data_alg, $key_alg) = @_;
    $data_alg ||= 'http://www.w3.org/2009/xmlenc11#aes256-gcm';
    $key_alg ||= 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p';
    return q{<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">}
        . qq{<xenc:EncryptionMethod Algorithm="$data_alg"/>}
        . qq{<ds:KeyInfo xmlns:ds="$DS"><xenc:EncryptedKey>}
        . qq{<xenc:EncryptionMethod Algorithm="$key_alg"/>}
        . q{<xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>}
        . q{<xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>};
}

#
# A Response.  Options: idp (keypair that signs), issuer, acs, audience, rid
# (undef: unsolicited), aid, name_id, alg (rsa-sha256, rsa-sha1,
# ecdsa-sha256), sign => 'assertion' (default) | 'response' | 'none',
# keyinfo (a keypair whose certificate goes in KeyInfo), encrypt (the SP's
# keypair), enc_data/enc_key (algorithm URIs), session_index, ttl,
# not_before, now, destination, recipient, attrs, tamper (a code ref on
# the final XML), status.
#
sub saml_response {
    my (%o) = @_;
    my $now = $o{now} || time;
    my $aid = $o{aid} || rnd_id();
    my $sign = $o{sign} || 'assertion';
    my %a = (%o, aid => $aid, now => $now,
             recipient => $o{recipient} // $o{acs},
             session_index => $o{session_index} // '_s1',
             sign_assertion => $sign eq 'assertion');
    my $assertion = assertion(%a);
    $assertion = xmlsec_sign($o{idp}, $assertion, "$SAML:Assertion")
        if $sign eq 'assertion';
    if ($o{encrypt}) {
        my $dir = $o{encrypt}{dir};
        spew("$dir/plain.xml", $assertion);
        spew("$dir/etmpl.xml", enc_template($o{enc_data}, $o{enc_key}));
        my $session = ($o{enc_data} || '') =~ /aes128/ ? 'aes-128' : 'aes-256';
        run("xmlsec1 --encrypt --pubkey-cert-pem $o{encrypt}{crt} "
            . "--session-key $session --xml-data $dir/plain.xml "
            . "--output $dir/enc.xml $dir/etmpl.xml");
        my $enc = slurp("$dir/enc.xml");
        $enc =~ s/^<\?xml[^>]*\?>\s*//;
        $assertion = qq{<saml:EncryptedAssertion xmlns:saml="$SAML">$enc</saml:EncryptedAssertion>};
    }
    my $rsid = "_r$aid";
    my $rid = defined $o{rid} ? qq{ InResponseTo="$o{rid}"} : '';
    my $dest = $o{destination} // $o{acs};
    my $status = $o{status} || 'urn:oasis:names:tc:SAML:2.0:status:Success';
    my $rsig = $sign eq 'response' ? sig_template($rsid, $o{alg}) : '';
    my $xml = qq{<samlp:Response xmlns:samlp="$SAMLP" xmlns:saml="$SAML" ID="$rsid" Version="2.0" IssueInstant="@{[ saml_iso($now) ]}" Destination="$dest"$rid>}
        . qq{<saml:Issuer>$o{issuer}</saml:Issuer>$rsig<samlp:Status><samlp:StatusCode Value="$status"/></samlp:Status>}
        . qq{$assertion</samlp:Response>};
    $xml = xmlsec_sign($o{idp}, $xml, "$SAMLP:Response") if $sign eq 'response';
    $xml = $o{tamper}->($xml) if $o{tamper};
    return $xml;
}

# POST a response to the ACS with a browser
sub saml_post {
    my ($b, $acs, $xml, $relay, %o) = @_;
    my $b64 = defined $o{raw} ? $o{raw} : encode_base64($xml, '');
    return $b->post_form($acs, [ SAMLResponse => $b64,
                                 defined $relay ? (RelayState => $relay) : () ]);
}

sub saml_inflate {
    my ($b64) = @_;
    my ($x) = Compress::Zlib::inflateInit(-WindowBits => -15)
        ->inflate(decode_base64($b64));
    return $x;
}

#
# A Redirect-binding query: param => SAMLRequest|SAMLResponse, xml, relay,
# key (a keypair: signed with rsa-sha256, or alg), raw (the deflated bytes
# replaced)
#
sub saml_redirect {
    my (%o) = @_;
    my $data = $o{raw};
    unless (defined $data) {
        my $d = Compress::Zlib::deflateInit(-WindowBits => -15);
        my ($out) = $d->deflate($o{xml});
        my ($rest) = $d->flush;
        $data = $out . $rest;
    }
    my $q = "$o{param}=" . pct_escape(encode_base64($data, ''));
    $q .= '&RelayState=' . pct_escape($o{relay}) if defined $o{relay};
    return $q unless $o{key};
    my $alg = $o{alg} || 'rsa-sha256';
    $q .= '&SigAlg=' . pct_escape($SIGALG{$alg});
    my $dir = $o{key}{dir};
    spew("$dir/octets", $q);
    my $dgst = $alg =~ /sha1/ ? '-sha1' : '-sha256';
    run("openssl dgst $dgst -sign $o{key}{key} -out $dir/octets.sig $dir/octets");
    return $q . '&Signature=' . pct_escape(encode_base64(slurp("$dir/octets.sig"), ''));
}

# our Redirect-binding message: { param, xml, relay, sigalg, signature,
# verified (by the keypair given) }
sub saml_redirect_parse {
    my ($url, $key) = @_;
    my ($q) = $url =~ /\?(.*)$/;
    my (%v, %raw, @order);
    for my $p (split /&/, $q // '') {
        my ($k, $val) = split /=/, $p, 2;
        $raw{$k} = $val;
        $v{$k} = pct_unescape($val // '');
        push @order, $k;
    }
    my $param = exists $v{SAMLRequest} ? 'SAMLRequest' : 'SAMLResponse';
    my %m = (param => $param, xml => saml_inflate($v{$param}),
             relay => $v{RelayState}, sigalg => $v{SigAlg},
             signature => $v{Signature});
    if ($key && defined $v{Signature}) {
        my $dir = $key->{dir};
        my $octets = join '&', map { "$_=$raw{$_}" }
                               grep { exists $raw{$_} } ($param, 'RelayState', 'SigAlg');
        spew("$dir/v.octets", $octets);
        spew("$dir/v.sig", decode_base64($v{Signature}));
        my $out = `openssl dgst -sha256 -verify $key->{pub} -signature $dir/v.sig $dir/v.octets 2>&1`;
        $m{verified} = ($? == 0 && $out =~ /Verified OK/) ? 1 : 0;
    }
    return \%m;
}

sub saml_logout_request {
    my (%o) = @_;
    my $id = $o{id} || rnd_id();
    my $si = join '', map { "<samlp:SessionIndex>$_</samlp:SessionIndex>" }
        ref $o{session_index} ? @{ $o{session_index} }
        : defined $o{session_index} ? ($o{session_index}) : ();
    my $fmt = $o{name_id_format} // 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
    return (qq{<samlp:LogoutRequest xmlns:samlp="$SAMLP" xmlns:saml="$SAML" ID="$id" Version="2.0" IssueInstant="@{[ saml_iso($o{now} || time) ]}" Destination="$o{destination}">}
        . qq{<saml:Issuer>$o{issuer}</saml:Issuer><saml:NameID Format="$fmt">$o{name_id}</saml:NameID>$si</samlp:LogoutRequest>}, $id);
}

sub saml_logout_response {
    my (%o) = @_;
    my $id = $o{id} || rnd_id();
    my $st = $o{status} || 'urn:oasis:names:tc:SAML:2.0:status:Success';
    return qq{<samlp:LogoutResponse xmlns:samlp="$SAMLP" xmlns:saml="$SAML" ID="$id" Version="2.0" IssueInstant="@{[ saml_iso($o{now} || time) ]}" Destination="$o{destination}" InResponseTo="$o{in_response_to}">}
        . qq{<saml:Issuer>$o{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="$st"/></samlp:Status></samlp:LogoutResponse>};
}

# IdP metadata, as IdPs publish it
sub saml_idp_metadata {
    my (%o) = @_;
    my $kd = join '', map {
        qq{<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="$DS"><ds:X509Data><ds:X509Certificate>}
        . cert_b64($_->{crt}) . q{</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>}
    } @{ $o{certs} };
    my $slo = $o{slo} ? qq{<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="$o{slo}"/>} : '';
    return qq{<?xml version="1.0"?>\n<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="$o{entity_id}">}
        . q{<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">}
        . qq{$kd$slo<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>}
        . qq{<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="$o{sso}/post"/>}
        . qq{<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="$o{sso}"/>}
        . q{</md:IDPSSODescriptor></md:EntityDescriptor>};
}

1;
