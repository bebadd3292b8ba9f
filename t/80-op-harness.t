#!/usr/bin/perl
# The OpenID Provider harness itself, without nginx: two real OPs
# (oidc-provider under node) over TLS with the test CA, an authorization
# code flow with PKCE through the test browser, the token endpoint,
# client credentials with a resource, the /test/ hooks (sign, stats,
# rotate), RP-initiated and back-channel logout.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(hmac_sha256);
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Test::More;

use EntTest;
use EntOP;

my $REDIRECT = 'http://acme.example.com:9/_ent/oidc/callback';
my $AFTER_LOGOUT = 'http://acme.example.com:9/signed-out';
my $API = 'https://api.example.com';
my $BC_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

sub query {
    my ($url) = @_;
    my ($q) = $url =~ /\?([^#]*)/;
    my %q;
    for (split /&/, defined $q ? $q : '') {
        my ($k, $v) = map { s/\+/ /gr =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ger }
            split /=/, $_, 2;
        $q{$k} = defined $v ? $v : '';
    }
    return \%q;
}

sub authorize_url {
    my ($op, %p) = @_;
    return $op->{discovery}{authorization_endpoint} . '?' . join '&',
        map { EntOP::form_escape($_) . '=' . EntOP::form_escape($p{$_}) }
        sort keys %p;
}


# the test CA

my $ca = test_ca();
ok(-s $ca->{$_}, "test CA: $_ written") for qw(ca cert key);
is(test_ca(), $ca, 'test CA: made once');
like(scalar `openssl verify -CAfile $ca->{ca} $ca->{cert} 2>&1`, qr/: OK$/m,
     'test CA: the server certificate verifies');
like(scalar `openssl x509 -in $ca->{cert} -noout -ext subjectAltName 2>&1`,
     qr/IP Address:127\.0\.0\.1.*DNS:\*\.example\.com/s,
     'test CA: 127.0.0.1 and *.example.com in the SAN');


# a back-channel logout receiver: a child that answers one POST and keeps
# its request

my $bc_port = EntTest::free_port();
my $bc_file = tmpdir() . '/backchannel.req';
my $bc_listen = IO::Socket::INET->new(Listen => 5, LocalAddr => '127.0.0.1',
                                      LocalPort => $bc_port, ReuseAddr => 1)
    or die "listen: $!";
my $bc_pid = fork // die "fork: $!";
if ($bc_pid == 0) {
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', '/dev/null';
    local $SIG{ALRM} = sub { POSIX::_exit(1) };
    alarm 60;
    my $c = $bc_listen->accept or POSIX::_exit(1);
    my $req = '';
    while (1) {
        my $n = sysread $c, my $buf, 65536;
        last unless $n;
        $req .= $buf;
        if ($req =~ /\r\n\r\n/ && $req =~ /Content-Length:\s*(\d+)/i) {
            last if length($req) - index($req, "\r\n\r\n") - 4 >= $1;
        }
    }
    open my $f, '>', "$bc_file.tmp";
    print $f $req;
    close $f;
    rename "$bc_file.tmp", $bc_file;
    print $c "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    close $c;
    POSIX::_exit(0);
}
close $bc_listen;
END { local $?; kill 'KILL', $bc_pid if $bc_pid && waitpid($bc_pid, WNOHANG) == 0 }


# two OPs

my %acme = (
    client_id => 'acme',
    client_secret => 'acme-secret-0123456789',
    redirect_uris => [$REDIRECT],
    post_logout_redirect_uris => [$AFTER_LOGOUT],
    token_endpoint_auth_method => 'client_secret_basic',
    backchannel_logout_uri =>
        "http://acme.example.com:$bc_port/_ent/oidc/backchannel",
    backchannel_logout_session_required => JSON::PP::true,
);
my %beta = (
    client_id => 'beta',
    client_secret => 'beta-secret-0123456789',
    redirect_uris => ['http://beta.example.com:9/_ent/oidc/callback'],
    token_endpoint_auth_method => 'client_secret_post',
);
my $accounts = {
    alice => { email => 'alice@acme.example.com',
               email_verified => JSON::PP::true, name => 'Alice Admin',
               groups => ['admins', 'staff'], department => 'R&D' },
    bob => { email => 'bob@acme.example.com',
             email_verified => JSON::PP::false, name => 'Bob Builder',
             groups => [] },
};

my $t0 = time;
my $op1 = op_start(name => 'one', clients => [\%acme, \%beta],
                   accounts => $accounts);
my $op2 = op_start(name => 'two', clients => [\%acme]);
diag(sprintf 'two OPs up in %.2fs', time - $t0);

isnt($op1->{port}, $op2->{port}, 'two OPs: two ports');
is($op1->{issuer}, "https://127.0.0.1:$op1->{port}", 'OP 1: its issuer');
ok($op1->{pid} && kill(0, $op1->{pid}), 'OP 1: running');


# discovery over TLS

my $ua = EntOP::Browser->new(ca => $ca->{ca});
my $res = $ua->get("$op1->{issuer}/.well-known/openid-configuration");
is($res->{status}, 200, 'discovery: 200 with the test CA');
like($res->{headers}{'content-type'}[0], qr{^application/json},
     'discovery: JSON');
my $disc = json_decode($res->{body});
is($disc->{issuer}, $op1->{issuer}, 'discovery: issuer');
is($disc->{authorization_endpoint}, "$op1->{issuer}/auth",
   'discovery: authorization_endpoint');
is($disc->{token_endpoint}, "$op1->{issuer}/token", 'discovery: token_endpoint');
is($disc->{jwks_uri}, "$op1->{issuer}/jwks", 'discovery: jwks_uri');
is($disc->{end_session_endpoint}, "$op1->{issuer}/session/end",
   'discovery: end_session_endpoint');
ok($disc->{backchannel_logout_supported}, 'discovery: back-channel logout');
ok($disc->{backchannel_logout_session_supported},
   'discovery: back-channel logout with sid');
is_deeply($disc->{code_challenge_methods_supported}, ['S256'],
          'discovery: S256 only');
ok($disc->{authorization_response_iss_parameter_supported},
   'discovery: RFC 9207 iss');
is_deeply([sort @{ $disc->{scopes_supported} }],
          [qw(email groups offline_access openid profile)],
          'discovery: scopes');
ok((grep { $_ eq 'client_credentials' } @{ $disc->{grant_types_supported} }),
   'discovery: client_credentials');
ok((grep { $_ eq 'groups' } @{ $disc->{claims_supported} }),
   'discovery: groups claim');
is_deeply($op1->{discovery}, $disc, 'op_start kept the discovery document');

$res = EntOP::Browser->new->get("$op1->{issuer}/.well-known/openid-configuration");
is($res->{status}, 0, 'discovery: no answer without the test CA');
like($res->{error}, qr/certificate verify failed/i,
     'discovery: certificate verification fails without the test CA');
$res = EntOP::Browser->new(ca => test_ca(name => 'other')->{ca})
    ->get("$op1->{issuer}/.well-known/openid-configuration");
like($res->{error}, qr/certificate verify failed/i,
     'discovery: fails with another CA');
$res = EntOP::Browser->new(ca => $ca->{ca},
                           resolve => { "op.example.com:$op1->{port}"
                                        => "127.0.0.1:$op1->{port}" })
    ->get("https://op.example.com:$op1->{port}/.well-known/openid-configuration");
is($res->{status}, 200, 'TLS: *.example.com is in the certificate');
$res = EntOP::Browser->new(ca => $ca->{ca},
                           resolve => { "op.example.net" => '127.0.0.1' })
    ->get("https://op.example.net:$op1->{port}/.well-known/openid-configuration");
like($res->{error}, qr/verify|hostname|name/i,
     'TLS: a name not in the certificate fails');


# the keys

my $jwks1 = json_decode($ua->get("$op1->{issuer}/jwks")->{body});
my $jwks2 = json_decode($ua->get("$op2->{issuer}/jwks")->{body});
is_deeply([map { "$_->{kty}/" . ($_->{crv} || '') . "/$_->{alg}" }
           @{ $jwks1->{keys} }],
          ['RSA//RS256', 'EC/P-256/ES256', 'OKP/Ed25519/EdDSA'],
          'JWKS: an RSA, an EC P-256 and an Ed25519 key');
ok(!(grep { exists $_->{d} || exists $_->{p} } @{ $jwks1->{keys} }),
   'JWKS: public keys only');
my %kid1 = map { $_->{kty} => $_->{kid} } @{ $jwks1->{keys} };
my %kid2 = map { $_->{kty} => $_->{kid} } @{ $jwks2->{keys} };
isnt($kid1{$_}, $kid2{$_}, "two OPs: different $_ keys") for qw(RSA EC OKP);
my ($rsa1) = grep { $_->{kty} eq 'RSA' } @{ $jwks1->{keys} };
like(jwk_to_pem($rsa1), qr/^-----BEGIN PUBLIC KEY-----\n/, 'jwk_to_pem');


# the authorization code flow with PKCE

my $b = EntOP::Browser->new(ca => $ca->{ca},
                            resolve => { 'acme.example.com:9' => '127.0.0.1:9' });
my %auth = (response_type => 'code', client_id => 'acme',
            redirect_uri => $REDIRECT, scope => 'openid email profile groups',
            state => 'st-' . random_string(), nonce => 'n-' . random_string());

$res = $b->get(authorize_url($op1, %auth));
is($res->{status}, 303, 'no PKCE: redirected');
like($res->{location}, qr/^\Q$REDIRECT\E\?/, 'no PKCE: back to the client');
my $q = query($res->{location});
is($q->{error}, 'invalid_request', 'no PKCE: invalid_request');
is($q->{state}, $auth{state}, 'no PKCE: state');
is($q->{iss}, $op1->{issuer}, 'no PKCE: iss');

my ($verifier, $challenge) = pkce_pair();
$auth{code_challenge} = $challenge;
$auth{code_challenge_method} = 'S256';
$auth{scope} .= ' offline_access';
$auth{prompt} = 'consent';

$res = $b->get(authorize_url($op1, %auth));
is($res->{status}, 303, 'authorization: redirected');
like($res->{location}, qr{^\Q$op1->{issuer}\E/interaction/[\w-]+$},
     'authorization: to the interaction');
my ($uid) = $res->{location} =~ m{/interaction/([\w-]+)$};
ok($b->cookie('_interaction', host => '127.0.0.1'),
   'authorization: the interaction cookie');
my $interaction = $res->{location};
$res = $b->get($interaction);
is($res->{status}, 200, 'interaction page: 200');
like($res->{body}, qr{<code id="uid">\Q$uid\E</code>},
     'interaction page: names the uid');
like($res->{body}, qr{<code id="prompt">login</code>},
     'interaction page: the login prompt');

$res = op_login($b, $interaction, 'alice');
is($res->{status}, 303, 'op_login: a redirect');
like($res->{location}, qr/^\Q$REDIRECT\E\?/, 'op_login: back to the client');
$q = query($res->{location});
like($q->{code}, qr/^[\w-]{20,}$/, 'op_login: a code');
is($q->{state}, $auth{state}, 'op_login: state');
is($q->{iss}, $op1->{issuer}, 'op_login: iss (RFC 9207)');
my ($session) = $b->cookies(name => '_session', host => '127.0.0.1');
ok($session, 'op_login: the OP session cookie');
is($session->{path}, '/', 'session cookie: Path=/');
ok($session->{httponly} && $session->{secure}, 'session cookie: HttpOnly Secure');
is(lc $session->{samesite}, 'none', 'session cookie: SameSite=None');

my %cred = (client_id => 'acme', client_secret => $acme{client_secret});
my %code = (grant_type => 'authorization_code', code => $q->{code},
            redirect_uri => $REDIRECT);
$res = op_token($op1, %cred, %code, code_verifier => 'x' x 43);
is($res->{status}, 400, 'token: a wrong code_verifier fails');
is($res->{json}{error}, 'invalid_grant', 'token: invalid_grant');
$res = op_token($op1, %code, client_id => 'acme', client_secret => 'nope',
                code_verifier => $verifier);
is($res->{status}, 401, 'token: a wrong secret fails');
is($res->{json}{error}, 'invalid_client', 'token: invalid_client');

# neither spent the code: client authentication comes first, and PKCE is
# checked before the code is consumed
$res = op_token($op1, %cred, %code, code_verifier => $verifier);
is($res->{status}, 200, 'token: 200 with client_secret_basic, after the failures')
    or diag $res->{body};
my $tok = $res->{json};
is($tok->{token_type}, 'Bearer', 'token: Bearer');
ok($tok->{access_token}, 'token: an access token');
ok($tok->{refresh_token}, 'token: a refresh token (offline_access)');
is($tok->{scope}, 'openid email profile groups offline_access', 'token: scope');

my ($h, $p) = jwt_decode($tok->{id_token});
is($h->{alg}, 'RS256', 'ID token: RS256');
is($h->{kid}, $kid1{RSA}, 'ID token: the RSA kid');
ok(jws_verify($tok->{id_token}, $jwks1), 'ID token: signature verifies');
ok(!jws_verify($tok->{id_token}, $jwks2), 'ID token: not with the other OP\'s keys');
is($p->{iss}, $op1->{issuer}, 'ID token: iss');
is($p->{aud}, 'acme', 'ID token: aud');
is($p->{sub}, 'alice', 'ID token: sub');
is($p->{nonce}, $auth{nonce}, 'ID token: nonce');
is($p->{email}, 'alice@acme.example.com', 'ID token: email');
ok($p->{email_verified} && JSON::PP::is_bool($p->{email_verified}),
   'ID token: email_verified true');
is($p->{name}, 'Alice Admin', 'ID token: name');
is($p->{department}, 'R&D', 'ID token: an extra claim under profile');
is_deeply($p->{groups}, ['admins', 'staff'], 'ID token: groups');
like($p->{sid}, qr/^[\w-]+$/, 'ID token: sid');
ok($p->{at_hash}, 'ID token: at_hash');
cmp_ok($p->{exp} - $p->{iat}, '==', 600, 'ID token: 600 s');
cmp_ok(abs($p->{iat} - time), '<', 30, 'ID token: iat now');
my $sid = $p->{sid};
my $id_token = $tok->{id_token};

$res = $b->get($disc->{userinfo_endpoint},
               Authorization => "Bearer $tok->{access_token}");
is($res->{status}, 200, 'userinfo: 200');
is_deeply([@{ json_decode($res->{body}) }{qw(sub email)}],
          ['alice', 'alice@acme.example.com'], 'userinfo: sub and email');

$res = op_token($op1, %cred, grant_type => 'refresh_token',
                refresh_token => $tok->{refresh_token});
is($res->{status}, 200, 'refresh: 200');
is((jwt_decode($res->{json}{id_token}))[1]{sub}, 'alice', 'refresh: an ID token');

# a code used twice: refused, and the grant is revoked with its tokens
$res = op_token($op1, %cred, %code, code_verifier => $verifier);
is($res->{status}, 400, 'token: a code works once');
is($res->{json}{error}, 'invalid_grant', 'token: reuse is invalid_grant');
$res = $b->get($disc->{userinfo_endpoint},
               Authorization => "Bearer $tok->{access_token}");
is($res->{status}, 401, 'code reuse: the access token is revoked');


# a second client: signed in already, consents at the interaction;
# client_secret_post

($verifier, $challenge) = pkce_pair();
$res = $b->get(authorize_url($op1, response_type => 'code', client_id => 'beta',
    redirect_uri => $beta{redirect_uris}[0], scope => 'openid groups',
    state => 'b1', nonce => 'bn', code_challenge => $challenge,
    code_challenge_method => 'S256'));
$res = $b->get($res->{location});
like($res->{body}, qr{<code id="prompt">consent</code>},
     'second client: a consent prompt for the signed-in user');
$res = op_login($b, $res->{url}, 'alice');
$q = query($res->{location});
is($q->{state}, 'b1', 'second client: back with its state');
$res = op_token($op1, auth => 'post', client_id => 'beta',
                client_secret => $beta{client_secret},
                grant_type => 'authorization_code', code => $q->{code},
                redirect_uri => $beta{redirect_uris}[0],
                code_verifier => $verifier);
is($res->{status}, 200, 'token: 200 with client_secret_post');
($h, $p) = jwt_decode($res->{json}{id_token});
is($p->{aud}, 'beta', 'second client: aud');
is_deeply($p->{groups}, ['admins', 'staff'], 'second client: groups');
ok(!exists $p->{email}, 'second client: no email without the scope');
ok(!exists $p->{sid}, 'second client: no sid (no back-channel logout)');


# /test/sign

for my $t ([rsa => 'RS256', 'RSA'], [ec => 'ES256', 'EC'], [ed => 'EdDSA', 'OKP']) {
    my ($key, $alg, $kty) = @$t;
    my $jwt = op_sign($op1, key => $key,
                      claims => { iss => $op1->{issuer}, sub => 'x', n => 1 });
    my ($hh, $pp) = jwt_decode($jwt);
    is_deeply($hh, { alg => $alg, typ => 'JWT', kid => $kid1{$kty} },
              "sign $key: header");
    is_deeply($pp, { iss => $op1->{issuer}, sub => 'x', n => 1 },
              "sign $key: claims");
    ok(jws_verify($jwt, $jwks1), "sign $key: verifies with the JWKS");
    ok(!jws_verify($jwt, $jwks2), "sign $key: not with the other OP's");
}
my $jwt = op_sign($op1, key => 'none', claims => { sub => 'x' });
my ($hh) = jwt_decode($jwt);
is_deeply($hh, { alg => 'none', typ => 'JWT' }, 'sign none: header');
like($jwt, qr/^[\w-]+\.[\w-]+\.$/, 'sign none: no signature');
$jwt = op_sign($op1, key => 'hs-pub', claims => { sub => 'x' });
($hh) = jwt_decode($jwt);
is_deeply($hh, { alg => 'HS256', typ => 'JWT', kid => $kid1{RSA} },
          'sign hs-pub: header');
my ($signed, $mac) = $jwt =~ /^(.*)\.([^.]*)$/;
is($mac, b64url_encode(hmac_sha256($signed, jwk_to_pem($rsa1))),
   'sign hs-pub: HMAC keyed with the RSA public key PEM');
$jwt = op_sign($op1, key => 'rsa', header => { kid => 'nope', typ => undef,
                                                crit => ['x'] });
($hh) = jwt_decode($jwt);
is_deeply($hh, { alg => 'RS256', kid => 'nope', crit => ['x'] },
          'sign: header overrides, undef deletes');
ok(jws_verify($jwt, $rsa1), 'sign: still signed with the RSA key');
$jwt = op_sign($op1, key => 'rsa', header => { alg => 'PS256' });
ok(jws_verify($jwt, $jwks1), 'sign: PS256 when asked');


# client credentials with a resource: a JWT access token

$res = op_token($op1, %cred, grant_type => 'client_credentials',
                resource => $API, scope => 'api:read');
is($res->{status}, 200, 'client credentials: 200');
my $at = $res->{json}{access_token};
($h, $p) = jwt_decode($at);
is($h->{typ}, 'at+jwt', 'JWT access token: typ at+jwt');
is($h->{alg}, 'RS256', 'JWT access token: RS256');
ok(jws_verify($at, $jwks1), 'JWT access token: verifies');
is($p->{aud}, $API, 'JWT access token: aud');
is($p->{iss}, $op1->{issuer}, 'JWT access token: iss');
is($p->{client_id}, 'acme', 'JWT access token: client_id');
is($p->{scope}, 'api:read', 'JWT access token: scope');
cmp_ok($p->{exp} - $p->{iat}, '==', 600, 'JWT access token: 600 s');
$res = op_token($op1, %cred, grant_type => 'client_credentials',
                resource => 'https://other.example.com', scope => 'api:read');
is($res->{json}{error}, 'invalid_target', 'client credentials: unknown resource');


# /test/stats

op_stats_reset($op1);
$ua->get("$op1->{issuer}/jwks") for 1 .. 2;
$ua->get("$op1->{issuer}/.well-known/openid-configuration");
op_token($op1, %cred, grant_type => 'client_credentials', resource => $API,
         scope => 'api:read');
is_deeply(op_stats($op1), { '/jwks' => 2, '/.well-known/openid-configuration' => 1,
                            '/token' => 1, 'event:grant.success' => 1 },
          'stats: requests per path');
is_deeply(op_stats($op2), { '/jwks' => 1 }, 'stats: per OP');
op_stats_reset($op1);
is_deeply(op_stats($op1), {}, 'stats: reset');


# rotation (OP 2)

my $old = $kid2{RSA};
my $new = op_rotate($op2);
isnt($new, $old, 'rotate: a new kid');
my $jwks2b = json_decode($ua->get("$op2->{issuer}/jwks")->{body});
is_deeply([map { $_->{kid} } @{ $jwks2b->{keys} }],
          [$new, $old, $kid2{EC}, $kid2{OKP}],
          'rotate: the new key first, the old one still published');
$jwt = op_sign($op2, key => 'rsa', claims => { a => 1 });
is((jwt_decode($jwt))[0]{kid}, $new, 'rotate: op_sign uses the new key');
ok(jws_verify($jwt, $jwks2b), 'rotate: verifies with the new JWKS');
ok(!jws_verify($jwt, $jwks2), 'rotate: unknown to the old JWKS');
$res = op_token($op2, %cred, grant_type => 'client_credentials',
                resource => $API, scope => 'api:read');
is((jwt_decode($res->{json}{access_token}))[0]{kid}, $new,
   'rotate: the provider signs with it');
my $newer = op_rotate($op2, retire => 1);
is_deeply([map { $_->{kid} } @{ json_decode($ua->get("$op2->{issuer}/jwks")->{body})->{keys} }],
          [$newer, $kid2{EC}, $kid2{OKP}], 'rotate retire: old RSA keys gone');

op_restart($op2);
is_deeply([map { $_->{kid} } @{ json_decode($ua->get("$op2->{issuer}/jwks")->{body})->{keys} }],
          [$newer, $kid2{EC}, $kid2{OKP}], 'restart: same port, same keys');


# faults, clients and accounts changed at run time (OP 2)

op_fault($op2, path => '/jwks', status => 503, body => 'down', times => 1);
$res = $ua->get("$op2->{issuer}/jwks");
is("$res->{status} $res->{body}", '503 down', 'fault: injected');
is($ua->get("$op2->{issuer}/jwks")->{status}, 200, 'fault: only once');

my $late = 'http://late.example.com:1234/_ent/oidc/callback';
op_clients($op2, { %acme, redirect_uris => [$late] });
op_accounts($op2, carol => { email => 'carol@acme.example.com',
                             groups => ['late'] });
my $b2 = EntOP::Browser->new(ca => $ca->{ca});
($verifier, $challenge) = pkce_pair();
$res = op_login($b2, authorize_url($op2, %auth, redirect_uri => $late,
                                   code_challenge => $challenge), 'carol');
like($res->{location}, qr/^\Q$late\E\?code=/, 'op_clients: a new redirect_uri');
$res = op_token($op2, %cred, %code, redirect_uri => $late,
                code => query($res->{location})->{code},
                code_verifier => $verifier);
is_deeply((jwt_decode($res->{json}{id_token}))[1]{groups}, ['late'],
          'op_accounts: a new account');
$res = $b2->get(authorize_url($op2, %auth, code_challenge => $challenge));
is($res->{status}, 400, 'op_clients: the old redirect_uri is refused');

# RP-initiated logout, with back-channel logout to acme

my $end = $disc->{end_session_endpoint} . '?' . join '&',
    'id_token_hint=' . $id_token,
    'post_logout_redirect_uri=' . EntOP::form_escape($AFTER_LOGOUT),
    'state=bye';
$res = $b->get($end);
is($res->{status}, 200, 'logout: a confirmation page');
my ($form) = $b->forms($res);
is($form->{action}, "$op1->{issuer}/session/end/confirm", 'logout: its form');
$res = op_logout($b, $end);
is($res->{status}, 303, 'op_logout: a redirect');
is($res->{location}, "$AFTER_LOGOUT?state=bye",
   'op_logout: to the post_logout_redirect_uri with state');
ok(!$b->cookie('_session', host => '127.0.0.1'),
   'op_logout: the OP session cookie is gone');

ok(wait_until(sub { -e $bc_file }, 10), 'back-channel logout: delivered');
my $bc = EntOP::slurp($bc_file) // '';
like($bc, qr{^POST /_ent/oidc/backchannel HTTP/1\.1\r\n}, 'back-channel: POST');
like($bc, qr{\r\nhost: acme\.example\.com:$bc_port\r\n}i, 'back-channel: Host');
my ($lt) = $bc =~ /logout_token=([\w.-]+)/;
($h, $p) = jwt_decode($lt);
is($h->{typ}, 'logout+jwt', 'logout token: typ');
ok(jws_verify($lt, $jwks1), 'logout token: verifies');
is($p->{iss}, $op1->{issuer}, 'logout token: iss');
is($p->{aud}, 'acme', 'logout token: aud');
is($p->{sub}, 'alice', 'logout token: sub');
is($p->{sid}, $sid, 'logout token: the sid of the ID token');
ok(exists $p->{events}{$BC_EVENT}, 'logout token: the back-channel event');
ok(wait_until(sub { waitpid($bc_pid, WNOHANG) == $bc_pid }, 10),
   'back-channel receiver done');
is(op_stats($op1)->{'event:backchannel.success'}, 1,
   'stats: one back-channel logout succeeded');

($verifier, $challenge) = pkce_pair();
$res = $b->get(authorize_url($op1, %auth, code_challenge => $challenge));
$res = $b->get($res->{location});
like($res->{body}, qr{<code id="prompt">login</code>},
     'after logout: signing in again');
my $again = $res->{url};
$res = op_login($b, $again, 'mallory');
is($res->{status}, 403, 'op_login: an unknown account is refused');
like($res->{body}, qr{<p id="error">unknown account</p>}, 'op_login: and told');
$res = $b->post_form("$again/abort", {});
is($res->{status}, 303, 'abort: a redirect');
like($res->{location}, qr{^\Q$op1->{issuer}\E/auth/}, 'abort: to resume');
$res = $b->follow($res);
is($res->{status}, 303, 'abort: then to the client');
$q = query($res->{location});
is_deeply([@$q{qw(error state iss)}],
          ['access_denied', $auth{state}, $op1->{issuer}],
          'abort: access_denied to the client');

# from the authorization request itself, with a resource: the access
# token is a JWT for the API, with the account's email and groups
($verifier, $challenge) = pkce_pair();
$res = op_login($b, authorize_url($op1, %auth, code_challenge => $challenge,
                                  scope => 'openid email api:read',
                                  resource => $API, prompt => 'login'),
                'bob');
$q = query($res->{location});
is($q->{state}, $auth{state}, 'op_login from the authorization request');
$res = op_token($op1, %cred, %code, code => $q->{code},
                code_verifier => $verifier);
is($res->{status}, 200, 'resource: token 200') or diag $res->{body};
($h, $p) = jwt_decode($res->{json}{access_token});
is($h->{typ}, 'at+jwt', 'resource: a JWT access token');
is_deeply([@$p{qw(aud sub scope email)}],
          [$API, 'bob', 'api:read', 'bob@acme.example.com'],
          'resource: aud, sub, scope, email');
is_deeply($p->{groups}, [], 'resource: groups');
($h, $p) = jwt_decode($res->{json}{id_token});
is($p->{sub}, 'bob', 'resource: an ID token too');
ok(JSON::PP::is_bool($p->{email_verified}) && !$p->{email_verified},
   'resource: email_verified false');


# the jar

my $j = EntOP::Browser->new;
my $u = 'http://acme.example.com/app/page';
$j->store_cookie($u, 'a=1; Path=/; HttpOnly');
$j->store_cookie($u, 'b=2');
$j->store_cookie($u, '__Host-s=3; Path=/; Secure');
$j->store_cookie($u, 'c=4; Max-Age=60; Path=/app');
is($j->cookie_header('http://acme.example.com/app/x'), 'b=2; c=4; a=1; __Host-s=3',
   'jar: longest path first, then in order; __Host- over http by default');
is($j->cookie_header('http://acme.example.com/other'), 'a=1; __Host-s=3',
   'jar: default path /app');
is($j->cookie_header('http://other.example.com/app/'), '', 'jar: host only');
$j->store_cookie($u, 'c=; Max-Age=0; Path=/app');
$j->store_cookie($u, 'b=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/app');
is($j->cookie_header($u), 'a=1; __Host-s=3', 'jar: Max-Age=0 and a past Expires delete');
$j->set_cookie('a', 'tampered');
is($j->cookie('a'), 'tampered', 'jar: set_cookie');
is($j->delete_cookie('__Host-s'), 1, 'jar: delete_cookie');
is($j->cookie_header($u), 'a=tampered', 'jar: after tampering');
my $strict = EntOP::Browser->new(strict_prefixes => 1);
$strict->store_cookie($u, '__Host-s=3; Path=/; Secure');
$strict->store_cookie($u, 'x=1; Secure');
$strict->store_cookie('https://acme.example.com/', '__Host-t=1; Path=/app; Secure');
$strict->store_cookie('https://acme.example.com/', '__Host-u=1; Path=/; Secure');
is(join(',', map { $_->{name} } @{ $strict->jar }), '__Host-u',
   'strict jar: the browser rules for Secure and __Host-');
is($strict->cookie_header('http://acme.example.com/'), '',
   'strict jar: no Secure cookie over http');


# stop

my $pid1 = $op1->{pid};
op_stop($op1);
ok(!kill(0, $pid1), 'op_stop: the OP is gone');
ok(!$op1->{pid}, 'op_stop: forgotten');
diag(sprintf 'done in %.2fs', time - $t0);

done_testing();
