# Single sign-on under attack, against a real OpenID Provider: forged,
# missing and replayed state, a replayed code, ID tokens with a wrong
# nonce, issuer, audience, azp or lifetime, alg none, HS256 keyed with the
# public key, malformed JWTs, unknown-kid storms (throttled) and a key
# rotation, open redirects, a suspended user; bearer tokens; back-channel
# logout from the OP reaching a second nginx; revoke-all; session expiry;
# Redis down.  Each attack: a clear 4xx and no session.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use EntOP;
use Test::More;

pg_start();
redis_start();
my $echo = echo_start();
my $ca = test_ca();
my $dir = tmpdir();
my $dsn = EntTest::pg_dsn();
my $entctl = "$EntTest::TOP/bin/entctl --dsn '$dsn'";
my $keyfile = "$dir/sso.key";
system("openssl rand -base64 32 > $keyfile") == 0 or die;
my $BC = 'http://schemas.openid.net/event/backchannel-logout';

pg_sql("INSERT INTO ent.tenants (code, display_name) VALUES ('acme', 'Acme')");

my $op = op_start(name => 'op');

sub http_conf {
    my ($extra) = @_;
    return <<"CONF" . ($extra // '');
ent_postgres "\$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:\$TEST_REDIS_PORT timeout=300ms backoff=20ms:200ms;
ent_sso_secret_key $keyfile;
ent_sso_jwks_refetch_interval 60s;
CONF
}

my $config = <<"CONF";
ent_tenant on;
ent_tenant_base_domain example.com;
@{[ op_fetch_location($ca) ]}
location / {
    ent_sso required;
    proxy_pass http://127.0.0.1:$echo;
}
location /write/ {
    ent_sso required;
    ent_sso_bearer_scopes api:write;
    proxy_pass http://127.0.0.1:$echo;
}
CONF

my $n1 = nginx_start(http_config => http_conf(), config => $config);
my $n2 = nginx_start(http_config => http_conf(), config => $config);
my $n3 = nginx_start(http_config => http_conf("ent_sso_session_timeout 2s 4s;\n"),
                     config => $config);
my ($p1, $p2, $p3) = map { nginx_port($_) } $n1, $n2, $n3;
my $acme = "http://acme.example.com:$p1";

op_clients($op, {
    client_id => 'web', client_secret => 's3cret',
    redirect_uris => [map { "http://acme.example.com:$_/_ent/oidc/callback" }
                      $p1, $p2, $p3],
    post_logout_redirect_uris => ["$acme/"],
    backchannel_logout_uri => "$acme/_ent/oidc/backchannel",
    backchannel_logout_session_required => JSON::PP::true,
});

$ENV{SSO_SECRET} = 's3cret';
my $out = `$entctl sso oidc acme --issuer $op->{issuer} --client-id web --key-file $keyfile --client-secret-env SSO_SECRET --ca-file $ca->{ca} --domains acme.example.com --api-audience https://api.example.com 2>&1`;
is($?, 0, 'IdP configured') or diag $out;
system("$entctl sso domain add acme acme.example.com --verified >/dev/null") == 0
    or die;

my %resolve = map { ("acme.example.com:$_" => "127.0.0.1:$_") } $p1, $p2, $p3;

sub browser {
    return EntOP::Browser->new(ca => $ca->{ca}, resolve => \%resolve,
                               headers => ['Accept' => 'text/html']);
}

sub query {
    my ($url) = @_;
    my ($q) = $url =~ /\?([^#]*)/;
    my %q;
    for (split /&/, $q // '') {
        my ($k, $v) = map { s/\+/ /gr =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ger }
            split /=/, $_, 2;
        $q{$k} = $v // '';
    }
    return \%q;
}

# a login up to the OP's redirect back: (browser, callback URL, auth query)
sub to_callback {
    my (%o) = @_;
    my $b = $o{browser} || browser();
    my $port = $o{port} || $p1;
    my $r = $b->get("http://acme.example.com:$port" . ($o{path} || '/'));
    die "no redirect: $r->{status}\n" unless $r->{status} == 302;
    my $q = query($r->{location});
    $r = op_login($b, $r->{location}, $o{sub} || 'alice');
    return ($b, $r->{location}, $q);
}

sub login {
    my ($b, $cb) = to_callback(@_);
    my $r = $b->get($cb);
    return ($b, $r);
}

sub sessions { return scalar grep { /:s:/ } split /\n/, redis_cli('--scan', '--pattern', 'ent:*') }

my $now = time;

# a control: a normal login works

my ($b, $r) = login();
is($r->{status}, 302, 'control: a login');
my $base_sessions = sessions();
is($base_sessions, 1, 'one session');
# a nameless cookie (which a sibling domain can set) beside the session's
is($b->request('GET', "$acme/x", ['Cookie' => 'tossed; ' . $b->cookie_header("$acme/x"),
                                  'Accept' => 'application/json'])->{status},
   200, 'a nameless cookie beside the session: still signed in');

# state

$r = browser()->get("$acme/_ent/oidc/callback?code=abc&state=def&iss="
                    . EntOP::form_escape($op->{issuer}));
is($r->{status}, 400, 'a callback without the state cookie: 400');
like($r->{body}, qr/took too long or was started elsewhere/, '... says so');

my ($b1, $cb1) = to_callback();
(my $forged = $cb1) =~ s/state=[^&]+/state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/;
$r = $b1->get($forged);
is($r->{status}, 400, 'a forged state: 400');
like($r->{body}, qr/does not belong to this browser/, '... says so');

my $stolen = browser();
$r = $stolen->get($cb1);
is($r->{status}, 400, "another browser's callback (no state cookie): 400");

my $state_cookie = $b1->cookie('__Host-ent_oidc');
$r = $b1->get($cb1);
is($r->{status}, 302, 'the genuine callback: signed in');
$b1->set_cookie('__Host-ent_oidc', $state_cookie, host => 'acme.example.com');
$r = $b1->get($cb1);
is($r->{status}, 400, 'the same callback replayed with its state cookie: 400');
like($r->{body}, qr/used already/, '... the state is single-use');

# a replayed code under a fresh state

my ($b2, $cb2) = to_callback();
my $code2 = query($cb2)->{code};
is($b2->get($cb2)->{status}, 302, 'a login');
my ($b3, $cb3) = to_callback();
(my $replay = $cb3) =~ s/code=[^&]+/code=$code2/;
$r = $b3->get($replay);
is($r->{status}, 401, 'a used code under a new state: 401 (the OP refuses it)');

# Redis answers an error to the state's SET NX (here its ACL refuses that
# key): the state is not spent, so the sign-in fails closed with a 503,
# and the same callback signs in once Redis takes the write

my ($bR, $cbR) = to_callback();
my $sessions4 = sessions();
redis_cli('ACL', 'SETUSER', 'default', 'resetkeys', '%R~*',
          '%W~ent:{t:*}:s:*', '%W~ent:{t:*}:u:*');
$r = $bR->get($cbR);
redis_cli('ACL', 'SETUSER', 'default', 'resetkeys', '~*');
is($r->{status}, 503, 'Redis refuses to spend the state: 503');
like($r->{body}, qr/unavailable/, '... sign-in is unavailable');
is(sessions(), $sessions4, '... and no session was made');
$r = $bR->get($cbR);
is($r->{status}, 302, '... the same callback signs in once Redis takes it');
is(sessions(), $sessions4 + 1, '... with one session');

# the iss of the authorization response (RFC 9207)

my ($b4, $cb4) = to_callback();
(my $wrong_iss = $cb4) =~ s/iss=[^&]+/iss=https%3A%2F%2Fevil.example/;
is($b4->get($wrong_iss)->{status}, 400, 'a wrong iss in the response: 400');
my ($b5, $cb5) = to_callback();
(my $no_iss = $cb5) =~ s/&iss=[^&]+//;
is($b5->get($no_iss)->{status}, 400,
   'no iss although the OP announces it: 400');

# ID tokens the token endpoint could return

sub id_token_case {
    my ($name, $key, $header, $claims, $expect) = @_;
    my ($bb, $cb, $q) = to_callback();
    my %c = (iss => $op->{issuer}, aud => 'web', sub => 'mallory',
             iat => time, exp => time + 300, nonce => $q->{nonce},
             email => 'mallory@acme.example.com',
             email_verified => JSON::PP::true);
    for my $k (keys %$claims) {
        if (defined $claims->{$k}) { $c{$k} = $claims->{$k} } else { delete $c{$k} }
    }
    my $tok = ref $key eq 'SCALAR' ? $$key
            : op_sign($op, key => $key, header => $header, claims => \%c);
    op_fault($op, path => '/token', status => 200, times => 1,
             body => json_encode({ access_token => 'x', token_type => 'Bearer',
                                   id_token => $tok }));
    my $rr = $bb->get($cb);
    is($rr->{status}, $expect, "ID token, $name: $expect");
    is($bb->cookie('__Host-ent_session'), undef, "... no session")
        if $expect != 302;
    return $rr;
}

id_token_case('valid (control)', 'rsa', {}, {}, 302);
id_token_case('EC key (ES256)', 'ec', {}, {}, 302);
id_token_case('Ed25519 (EdDSA)', 'ed', {}, {}, 302);
id_token_case('wrong nonce', 'rsa', {}, { nonce => 'abc' }, 401);
id_token_case('no nonce', 'rsa', {}, { nonce => undef }, 401);
id_token_case('expired', 'rsa', {}, { exp => time - 300, iat => time - 900 }, 401);
id_token_case('not yet valid', 'rsa', {}, { nbf => time + 600 }, 401);
id_token_case('issued in the future', 'rsa', {}, { iat => time + 600 }, 401);
id_token_case('wrong iss', 'rsa', {}, { iss => 'https://evil.example' }, 401);
id_token_case('wrong aud', 'rsa', {}, { aud => 'other' }, 401);
id_token_case('two aud without azp', 'rsa', {}, { aud => ['web', 'other'] }, 401);
id_token_case('two aud, azp ours', 'rsa', {}, { aud => ['web', 'other'], azp => 'web' }, 302);
id_token_case('wrong azp', 'rsa', {}, { azp => 'other' }, 401);
id_token_case('alg none', 'none', {}, {}, 401);
id_token_case('HS256 keyed with the RSA public key', 'hs-pub', {}, {}, 401);
id_token_case('an RS256 header on the EC key', 'ec', { alg => 'RS256' }, {}, 401);
id_token_case('crit header', 'rsa', { crit => ['exp'] }, {}, 401);
id_token_case('malformed: two segments', \'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0', {}, {}, 401);
id_token_case('malformed: garbage', \'!!!.###.$$$', {}, {}, 401);
id_token_case('malformed: oversized', \('A' x 20000 . '.B.C'), {}, {}, 401);
id_token_case('an unverified email of an allowed domain', 'rsa', {},
              { email_verified => JSON::PP::false, sub => 'mallory2' }, 403);
id_token_case('another domain', 'rsa', {},
              { email => 'eve@evil.example', sub => 'eve' }, 403);
is(sessions(), $base_sessions + 7,
   'only the valid tokens (and the retried callback) made sessions');

# key rotation: an unknown kid refetches the JWK set once

my $stats0 = op_stats($op)->{'/jwks'} // 0;
my $kid = op_rotate($op);
($b, $r) = login();
is($r->{status}, 302, 'after the OP rotated its keys: a login still works');
is((op_stats($op)->{'/jwks'} // 0) - $stats0, 1, '... after one JWKS refetch');

# an unknown-kid storm: no more fetches within the throttle interval

for my $i (1 .. 5) {
    id_token_case("unknown kid $i", 'rsa', { kid => "nope-$i" }, {}, 401);
}
is((op_stats($op)->{'/jwks'} // 0) - $stats0, 1,
   'an unknown-kid storm: no further JWKS fetch (throttled)');

# open redirects: the target after login is a local path or "/"

for my $case (['//evil.example/x', '/'], ['/\\evil.example', '/'],
              ['/%2f%2fevil.example', '/'], ['https://evil.example/', '/'],
              ["/a\r\nSet-Cookie: x=1", '/'], ['/ok/path?a=1', '/ok/path?a=1']) {
    my ($bb, $rr) = login(path => '/_ent/login?return_to='
                          . EntOP::form_escape($case->[0]));
    is($rr->{location}, "$acme$case->[1]",
       "return_to \"" . ($case->[0] =~ s/\r\n/\\r\\n/r) . "\": back to $case->[1]");
}

# a suspended membership cannot log in

pg_sql("UPDATE ent.memberships SET status = 'suspended' WHERE user_id = "
       . "(SELECT id FROM ent.users WHERE email = 'alice\@acme.example.com')");
(undef, $r) = login();
is($r->{status}, 403, 'a suspended user: 403');
like($r->{body}, qr/suspended/, '... says so');
pg_sql("UPDATE ent.memberships SET status = 'active'");
ok(wait_until(sub {
    pg_sql("SELECT count(*) FROM ent.events WHERE outcome = 'failure' "
           . "AND reason LIKE '%suspended%'") >= 1 }, 3),
   'the failure is recorded with its reason');

# bearer tokens: a real JWT access token from the OP

my $at = op_token($op, client_id => 'web', client_secret => 's3cret',
                  grant_type => 'client_credentials',
                  resource => 'https://api.example.com', scope => 'api:read');
my $jwt = $at->{json}{access_token};
like($jwt // '', qr/^[\w-]+\.[\w-]+\.[\w-]+$/, 'the OP issued a JWT access token');
my $api = EntOP::Browser->new(resolve => \%resolve);
$r = $api->request('GET', "$acme/api/x", ['Authorization' => "Bearer $jwt"]);
is($r->{status}, 200, 'a valid bearer token: 200');
is(json_decode($r->{body})->{identity}{'x-ent-user-id'}, 'web',
   "the token's subject as the user");
is($api->cookie('__Host-ent_session'), undef, 'no session is created');
# the worker keeps a verified token (its slot chosen by the token's last
# 64 octets, the signature's): the same token again is served from there,
# another with the same signature never is
$r = $api->request('GET', "$acme/api/x", ['Authorization' => "Bearer $jwt"]);
is($r->{status}, 200, 'the same bearer token again: 200');
{
    my $sig = (split /\./, $jwt)[2];
    my $other = op_sign($op, key => 'rsa', claims => {
        iss => $op->{issuer}, aud => 'https://api.example.com',
        sub => 'mallory', scope => 'api:read', iat => time,
        exp => time + 60 });
    my ($h, $p) = split /\./, $other;
    $r = $api->request('GET', "$acme/api/x",
                       ['Authorization' => "Bearer $h.$p.$sig"]);
    is($r->{status}, 401,
       "another token's claims under the cached token's signature: 401");
    my $cut = substr($jwt, 1);
    $r = $api->request('GET', "$acme/api/x",
                       ['Authorization' => "Bearer $cut"]);
    is($r->{status}, 401, 'the cached token less its first octet: 401');
    # the same length, one octet of the claims changed: compared whole
    my ($h1, $p1) = split /\./, $jwt;
    my $i = int(length($p1) / 2);
    my $c = substr($p1, $i, 1) eq 'A' ? 'B' : 'A';
    my $tampered = $jwt;
    substr($tampered, length($h1) + 1 + $i, 1) = $c;
    is(length($tampered), length($jwt), '(the tampered token is as long)');
    $r = $api->request('GET', "$acme/api/x",
                       ['Authorization' => "Bearer $tampered"]);
    is($r->{status}, 401, 'the cached token with one octet of its claims '
       . 'changed: 401');
}
$r = $api->request('GET', "$acme/api/x", ['Authorization' => "Bearer $jwt"]);
is($r->{status}, 200, '... and the cached token still works');
$r = $api->request('GET', "$acme/write/x", ['Authorization' => "Bearer $jwt"]);
is($r->{status}, 401, 'a required scope missing: 401');
is($r->{headers}{'www-authenticate'}[0], 'Bearer error="invalid_token"',
   '... WWW-Authenticate: Bearer error="invalid_token"');
like($r->{body}, qr/^\{"error":"invalid_token"/, '... JSON');
for my $case (['wrong aud', { aud => 'https://other.example' }],
              ['expired', { exp => time - 100 }],
              ['wrong iss', { iss => 'https://evil.example' }]) {
    my %c = (iss => $op->{issuer}, aud => 'https://api.example.com',
             sub => 'x', iat => time, exp => time + 60, %{ $case->[1] });
    my $t = op_sign($op, key => 'rsa', claims => \%c);
    $r = $api->request('GET', "$acme/api/x", ['Authorization' => "Bearer $t"]);
    is($r->{status}, 401, "bearer, $case->[0]: 401");
}
# NumericDates past the range of a time_t (a cast of them is undefined
# behaviour, which the sanitizer build reports): valid, and cached
my $far = op_sign($op, key => 'rsa', claims => { iss => $op->{issuer},
    aud => 'https://api.example.com', sub => 'x', iat => time,
    exp => 1e300, nbf => -1e300 });
is(join(',', map { $api->request('GET', "$acme/api/x", ['Authorization' => "Bearer $far"])->{status} } 1 .. 2),
   '200,200', 'bearer, exp 1e300 and nbf -1e300: 200, then from the cache');
$r = $api->request('GET', "$acme/api/x", ['Authorization' => 'Bearer '
    . op_sign($op, key => 'none', claims => { iss => $op->{issuer},
        aud => 'https://api.example.com', sub => 'x', exp => time + 60 })]);
is($r->{status}, 401, 'bearer, alg none: 401');
$r = $api->request('GET', "$acme/api/x", ['Authorization' => 'Bearer abc.def']);
is($r->{status}, 401, 'bearer, malformed: 401');

# back-channel logout from the OP reaches every node

my ($bA, $rA) = login();
my $cookieA = $bA->cookie('__Host-ent_session');
my $on2 = EntOP::Browser->new(resolve => \%resolve);
$on2->set_cookie('__Host-ent_session', $cookieA, host => 'acme.example.com');
is($on2->request('GET', "http://acme.example.com:$p2/x",
                 ['Accept' => 'application/json'])->{status}, 200,
   'a session made on node 1 works on node 2');
# the OP's own logout (as if the user logged out at the IdP)
my $end = $op->{discovery}{end_session_endpoint};
$r = op_logout($bA, "$end?client_id=web");
my $stats = op_stats($op);
ok(($stats->{'event:backchannel.success'} // 0) >= 1,
   'the OP delivered a back-channel logout token');
is($on2->request('GET', "http://acme.example.com:$p2/x",
                 ['Accept' => 'application/json'])->{status}, 401,
   '... and the session is revoked on node 2 as well');

# crafted logout tokens

sub logout_token {
    my (%c) = @_;
    my %claims = (iss => $op->{issuer}, aud => 'web', iat => time,
                  jti => random_string(12), sub => 'alice',
                  events => { $BC => {} });
    for (keys %c) { if (defined $c{$_}) { $claims{$_} = $c{$_} } else { delete $claims{$_} } }
    return op_sign($op, key => 'rsa', header => { typ => 'logout+jwt' },
                   claims => \%claims);
}

sub backchannel {
    my ($tok, $port) = @_;
    return $api->request('POST', "http://acme.example.com:" . ($port || $p2)
        . "/_ent/oidc/backchannel",
        ['Content-Type' => 'application/x-www-form-urlencoded'],
        'logout_token=' . $tok);
}

my ($bB) = login();
my ($bC) = login();
my $tok = logout_token();
is(backchannel($tok)->{status}, 200, 'a logout token by sub: 200');
is($bB->get("$acme/x")->{status}, 302, "... alice's sessions are gone (1)");
is($bC->get("$acme/x")->{status}, 302, "... alice's sessions are gone (2)");
is(backchannel($tok)->{status}, 400, 'the same token again (jti): 400');

# a logout that fails after its jti was spent gives the jti back: the
# IdP's retry of the same token is not refused as a replay
my ($bK) = login();
$tok = logout_token();
redis_cli('ACL', 'SETUSER', 'default', '-smembers');
is(backchannel($tok)->{status}, 503, 'Redis refuses the listing: 503');
redis_cli('ACL', 'SETUSER', 'default', '+smembers');
is($bK->get("$acme/x")->{status}, 200, '... the session is still there');
is(backchannel($tok)->{status}, 200, "... the IdP's retry of the token: 200");
is($bK->get("$acme/x")->{status}, 302, '... the session is gone');
is(backchannel($tok)->{status}, 400, '... and a third time: 400 (replay)');
is(backchannel(logout_token(events => undef))->{status}, 400, 'no events claim: 400');
is(backchannel(logout_token(nonce => 'x'))->{status}, 400, 'a nonce: 400');
is(backchannel(logout_token(sub => undef))->{status}, 400, 'neither sid nor sub: 400');
is(backchannel(logout_token(aud => 'other'))->{status}, 400, 'wrong aud: 400');
is(backchannel(logout_token(iat => undef))->{status}, 400, 'no iat: 400');
is($api->request('GET', "http://acme.example.com:$p2/_ent/oidc/backchannel")->{status},
   400, 'a GET: 400');
is(backchannel('x' x 20000)->{status}, 400, 'an oversized token: 400');

# Redis refuses a logout's DEL (its ACL): 503, the cookie is kept and the
# session stays valid, so the user knows and can retry; once Redis takes
# it, the logout goes through.  The same for revoke-all's listing.

my ($bL) = login();
my ($bM) = login();
redis_cli('ACL', 'SETUSER', 'default', '-del');
$r = $bL->get("$acme/_ent/logout");
is($r->{status}, 503, "Redis refuses the logout's DEL: 503");
like($r->{body}, qr/unavailable/, '... signing out is unavailable');
is($bL->get("$acme/x")->{status}, 200, '... the session is still valid');
redis_cli('ACL', 'SETUSER', 'default', '+del', '-smembers');
is($bL->get("$acme/_ent/logout?all=1")->{status}, 503,
   "Redis refuses revoke-all's listing: 503");
is($bL->get("$acme/x")->{status}, 200, '... this session is kept');
is($bM->get("$acme/x")->{status}, 200, "... the user's other session too");
redis_cli('ACL', 'SETUSER', 'default', '+smembers');
is($bL->get("$acme/_ent/logout?all=1")->{status}, 302,
   'Redis takes it: the retry signs out everywhere');
is($bL->get("$acme/x")->{status}, 302, '... this session is gone');
is($bM->get("$acme/x")->{status}, 302, "... the user's other session too");

# revoke-all

my ($bD) = login();
my ($bE) = login();
$r = $bD->request('GET', "$acme/_ent/logout?all=1",
                  ['Sec-Fetch-Site' => 'cross-site', 'Accept' => 'application/json']);
is($r->{status}, 403, 'logout everywhere from a link on another site: 403');
is($bE->get("$acme/x")->{status}, 200, '... the sessions are kept');
# a sibling tenant's page is the same site, not the same origin
my @csrf = (['Sec-Fetch-Site' => 'same-site'],
            ['Origin' => 'https://evil.example.com'],
            ['Referer' => 'https://evil.example.com/page'],
            ['Referer' => 'javascript:x']);
for my $h (@csrf) {
    $r = $bD->request('GET', "$acme/_ent/logout?all=1", [@$h, 'Accept' => 'application/json']);
    is($r->{status}, 403, "... from a sibling tenant's page ($h->[0]: $h->[1]): 403");
}
is($bE->get("$acme/x")->{status}, 200, '... the sessions are kept');
(my $self = $acme) =~ s{^http://}{};
is($bD->request('GET', "$acme/_ent/logout?all=1",
                ['Referer' => "https://$self/account"])->{status},
   302, 'logout everywhere');
is($bE->get("$acme/x")->{status}, 302, "... the user's other session is gone too");

# session expiry on node 3: idle 2 s, absolute 4 s

my ($bF, $rF) = login(port => $p3);
is($rF->{status}, 302, 'a session on node 3');
my $u3 = "http://acme.example.com:$p3/x";
is($bF->get($u3)->{status}, 200, 'used at once: valid');
sleep 2.5;
is($bF->get($u3)->{status}, 302, 'idle for 2.5 s (idle timeout 2 s): expired');
($bF, $rF) = login(port => $p3);
my $t0 = time;
for (1 .. 2) { sleep 1.2; is($bF->get($u3)->{status}, 200, "kept alive ($_)") }
sleep($t0 + 4.3 - time) if $t0 + 4.3 > time;
is($bF->get($u3)->{status}, 302, 'past the absolute timeout (4 s): expired');

# Redis slower than its timeout (300 ms): 503, not "no session"

{
    my ($bS) = login();
    system("redis-cli -p " . EntTest::redis_port()
           . " DEBUG SLEEP 1 >/dev/null 2>&1 &");
    sleep 0.1;
    my $rs = $bS->get("$acme/x");
    is($rs->{status}, 503, 'Redis too slow for a session read: 503');
    sleep 1;
    ok(wait_until(sub { $bS->get("$acme/x")->{status} == 200 }, 3),
       '... and the session works again once Redis answers');
}

# Redis down: fail closed, never a 500, and back when it is

my ($bG) = login();
redis_stop();
$r = $bG->get("$acme/x");
is($r->{status}, 503, 'Redis down: a session cannot be checked, 503');
ok(defined $r->{headers}{'retry-after'}[0], '... with Retry-After');
$r = $api->request('GET', "$acme/_ent/session", ['Accept' => 'application/json']);
redis_start();
wait_until(sub { $bG->get("$acme/x")->{status} == 302 }, 5);
is($bG->get("$acme/x")->{status}, 302,
   'Redis back (empty): the session is gone, a new login is asked for');

# the tenant's IdP disabled: its sessions go on (they need no IdP), and
# logout still ends them, locally, without a redirect to the IdP

my ($bI) = login();
pg_sql("UPDATE ent.identity_providers SET enabled = false");
my $n0 = sessions();
ok(wait_until(sub { $api->request('GET', "$acme/_ent/oidc/callback")->{status} == 404 }, 5),
   'the IdP disabled: the callback is not configured any more');
is($bI->get("$acme/x")->{status}, 200, '... a session made before still works');
$r = $bI->get("$acme/_ent/logout");
is($r->{status}, 200, '... and logout ends it: 200');
is($r->{body}, "{\"signed_out\":true}\n", '... signed out, no redirect to the IdP');
is(sessions(), $n0 - 1, '... its session is gone from Redis');
is($bI->get("$acme/x")->{status}, 403, '... and the next request has none');
pg_sql("UPDATE ent.identity_providers SET enabled = true");

# an OpenID Provider's issuer over http (entctl refuses it; plain SQL can
# set it): no discovery in clear text, 503
pg_sql("UPDATE ent.identity_providers SET issuer = replace(issuer, 'https://', 'http://')");
ok(wait_until(sub { browser()->get("$acme/x")->{status} == 503 }, 5),
   'an http issuer: no discovery, 503');
like(nginx_log($n1), qr/the issuer "http:[^"]*" is not an https URL: no discovery/,
     '... and the error log says why');
pg_sql("UPDATE ent.identity_providers SET issuer = replace(issuer, 'http://', 'https://')");

# a discovery document bigger than the fetch location's
# subrequest_output_buffer_size: nginx fails the connection the fetch
# shares with the client's request (documented: size the buffer above the
# IdP's documents); the worker goes on serving
(my $small = $config) =~ s/subrequest_output_buffer_size 64k/subrequest_output_buffer_size 256/;
my $n4 = nginx_start(http_config => http_conf(), config => $small);
my $p4 = nginx_port($n4);
my $b4s = EntOP::Browser->new(resolve => { "acme.example.com:$p4" => "127.0.0.1:$p4" });
$r = $b4s->get("http://acme.example.com:$p4/x");
isnt($r->{status}, 200, 'a discovery document over the subrequest buffer: no sign-in');
like(nginx_log($n4), qr/too big subrequest response/, '... nginx says why');
is(http($n4, '/_ent/session', host => 'acme.example.com',
        headers => ['Accept: application/json'])->{status}, 401,
   '... and the worker goes on serving');
check_log($n4, 'small buffer');

check_log($_, "node $_->{id}") for $n1, $n2, $n3;

done_testing;
