# OpenID Connect single sign-on against a real OpenID Provider
# (oidc-provider): two tenants with two OPs, the browser flow with PKCE,
# sessions in Redis, identity to the upstream, JIT provisioning,
# /_ent/session, logout (local, RP-initiated, revoke-all), the client
# secret sealed at rest, and entctl sso.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use EntOP;
use IO::Select;
use MIME::Base64 qw(encode_base64);
use Test::More;

pg_start();
redis_start();
my $echo = echo_start();
my $ca = test_ca();
my $dir = tmpdir();
my $dsn = EntTest::pg_dsn();
my $entctl = "$EntTest::TOP/bin/entctl --dsn '$dsn'";

# the secret key of ent_sso_secret_key, as base64 text
my $keyfile = "$dir/sso.key";
system("openssl rand -base64 32 > $keyfile") == 0 or die;

pg_sql("INSERT INTO ent.tenants (code, display_name, plan_id, brand_color) "
       . "VALUES ('acme', 'Acme Corp', 'team', '#123456'), "
       . "('beta', 'Beta Ltd', 'free', NULL)");

my $op1 = op_start(name => 'acme-op', accounts => {
    alice => { email => 'alice@acme.example.com', email_verified => JSON::PP::true,
               name => 'Alice Admin', groups => ['admins', 'staff'],
               department => 'R&D', cost_center => 4711,
               locations => ['Berlin', 'Paris'], secret => "a\nb" },
    bob   => { email => 'bob@acme.example.com', email_verified => JSON::PP::false,
               name => 'Bob Builder', groups => ['staff'] },
});
my $op2 = op_start(name => 'beta-op', accounts => {
    carol => { email => 'carol@beta.example.org',
               email_verified => JSON::PP::true, name => 'Carol',
               groups => ['ops'] },
});

# the key that signs the identity assertion for apps that verify one
system("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
       . "-out $dir/assert.pem 2>/dev/null && openssl pkey -in $dir/assert.pem "
       . "-pubout -out $dir/assert.pub 2>/dev/null") == 0 or die;

my $http = <<"CONF";
ent_sso_assertion_key $dir/assert.pem kid=edge-1;
ent_postgres "\$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:\$TEST_REDIS_PORT;
ent_sso_secret_key $keyfile;
ent_sso_session_timeout 1h 12h;
ent_sso_session_cache 1s;
ent_ratelimit_policy peruser per=hour limit=2 key=user;
ent_ratelimit_budget 2s;
ent_metrics_zone 1m;
CONF

my $config = <<"CONF";
ent_tenant on;
ent_tenant_base_domain example.com;
location = /_ent/metrics { ent_metrics; }
@{[ op_fetch_location($ca) ]}
location / {
    ent_sso required;
    add_header X-SSO \$ent_sso_status always;
    proxy_pass http://127.0.0.1:$echo;
}
location /public/ {
    ent_sso optional;
    proxy_pass http://127.0.0.1:$echo;
}
location /open/ {
    proxy_pass http://127.0.0.1:$echo;
}
location /vars/ {
    ent_sso required;
    add_header X-Vars "\$ent_user_id|\$ent_user_email|\$ent_user_name|\$ent_user_groups|\$ent_roles|\$ent_user_sub" always;
    proxy_pass http://127.0.0.1:$echo;
}
location /attr/ {
    ent_sso required;
    add_header X-Attr "\$ent_user_attr_department|\$ent_user_attr_sites|\$ent_user_attr_absent" always;
    proxy_pass http://127.0.0.1:$echo;
}
location /asserted/ {
    ent_sso required;
    ent_sso_assertion on;
    proxy_pass http://127.0.0.1:$echo;
}
location /limited/ {
    ent_sso required;
    ent_ratelimit peruser;
    proxy_pass http://127.0.0.1:$echo;
}
location /mixed/ {
    ent_sso optional;
    try_files /nonexistent \@strict;
}
location \@strict {
    ent_sso required;
    proxy_pass http://127.0.0.1:$echo;
}
location /private/ {
    deny all;
    ent_sso required;
    proxy_pass http://127.0.0.1:$echo;
}
ent_sso_enforce_path /open/login;
CONF

my $n = nginx_start(http_config => $http, config => $config);
my $port = nginx_port($n);
my $acme = "http://acme.example.com:$port";
my $beta = "http://beta.example.com:$port";

op_clients($op1, {
    client_id => 'acme-web', client_secret => 'acme-secret-1',
    redirect_uris => ["$acme/_ent/oidc/callback"],
    post_logout_redirect_uris => ["$acme/"],
});
op_clients($op2, {
    client_id => 'beta-web', client_secret => 'beta-secret-2',
    token_endpoint_auth_method => 'client_secret_post',
    redirect_uris => ["$beta/_ent/oidc/callback"],
});

sub browser {
    return EntOP::Browser->new(ca => $ca->{ca}, resolve => {
        "acme.example.com:$port" => "127.0.0.1:$port",
        "beta.example.com:$port" => "127.0.0.1:$port",
    }, headers => ['Accept' => 'text/html']);
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

# entctl sso: the discovery document and keys checked before saving

my $out = `$entctl sso oidc acme --issuer $op1->{issuer} --client-id acme-web --key-file $keyfile --client-secret-env NOPE 2>&1`;
like($out, qr/no discovery document|holds no secret|TLS/,
     'entctl sso oidc: refuses without the CA / without a secret');
$ENV{ACME_SECRET} = 'acme-secret-1';
$out = `$entctl sso oidc acme --issuer $op1->{issuer}/x --client-id acme-web --key-file $keyfile --client-secret-env ACME_SECRET --ca-file $ca->{ca} 2>&1`;
isnt($?, 0, 'entctl sso oidc: a wrong issuer is refused');
$out = `$entctl sso oidc acme --issuer $op1->{issuer} --client-id acme-web --key-file $keyfile --client-secret-env ACME_SECRET --ca-file $ca->{ca} --domains acme.example.com --api-audience https://api.example.com --scopes 'openid email profile groups' --claim-map department=department --claim-map cost-center=cost_center --claim-map sites=locations --claim-map secret=secret --claim-map absent=nope 2>&1`;
is($?, 0, 'entctl sso oidc acme: saved') or diag $out;
like($out, qr/discovery and JWK set of \Q$op1->{issuer}\E: OK \(\d+ signing keys\)/,
     'after checking discovery and keys');
my ($stored) = pg_sql("SELECT client_secret_enc FROM ent.identity_providers");
unlike($stored, qr/acme-secret/, 'the client secret is stored sealed');
ok(length($stored) > 40, 'as base64url of IV, ciphertext and tag');
system("$entctl sso domain add acme acme.example.com --verified >/dev/null") == 0
    or die;
$ENV{BETA_SECRET} = 'beta-secret-2';
$out = `$entctl sso oidc beta --issuer $op2->{issuer} --client-id beta-web --key-file $keyfile --client-secret-env BETA_SECRET --auth post --ca-file $ca->{ca} --domains beta.example.org --scopes 'openid email profile groups' 2>&1`;
is($?, 0, 'entctl sso oidc beta: saved') or diag $out;
system("$entctl sso domain add beta beta.example.org --verified >/dev/null") == 0
    or die;
system("$entctl sso map-group acme admins admin >/dev/null") == 0 or die;

# not signed in: browsers are redirected, APIs get 401

my $b = browser();
my $r = $b->get("$acme/app/page?x=1");
is($r->{status}, 302, "a browser without a session: 302") or diag explain $r;
my $loc = $r->{location} // '';
like($loc, qr{^\Q$op1->{issuer}\E/}, "to the tenant's OP");
my $q = query($loc);
is($q->{response_type}, 'code', 'code flow');
is($q->{client_id}, 'acme-web', 'its client id');
is($q->{redirect_uri}, "$acme/_ent/oidc/callback",
   "the exact redirect_uri on the tenant's host");
is($q->{code_challenge_method}, 'S256', 'PKCE S256');
like($q->{code_challenge}, qr/^[A-Za-z0-9_-]{43}$/, 'a challenge');
like($q->{state}, qr/^[A-Za-z0-9_-]{43}$/, 'a state of 256 bits');
like($q->{nonce}, qr/^[A-Za-z0-9_-]{43}$/, 'a nonce of 256 bits');
is($q->{scope}, 'openid email profile groups', 'the scopes');
my $sc = join "\n", @{ $r->{headers}{'set-cookie'} || [] };
like($sc, qr/^__Host-ent_oidc=[A-Za-z0-9_-]+; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=600$/m,
     'a sealed, short-lived __Host- login state cookie');

my $api = EntOP::Browser->new(resolve => $b->{resolve});
$r = $api->request('GET', "$acme/app/data", ['Accept' => 'application/json']);
is($r->{status}, 401, 'an API call without a session: 401');
is($r->{headers}{'www-authenticate'}[0], 'Bearer', 'with WWW-Authenticate');
is($r->{body}, qq({"error":"unauthenticated","message":"Sign-in required."}\n),
   'and a short JSON body');
$r = $api->request('GET', "$acme/app/data",
                   ['Accept' => 'text/html', 'X-Requested-With' => 'XMLHttpRequest']);
is($r->{status}, 401, 'XHR: 401, not a redirect');
$r = $api->request('POST', "$acme/app/data", ['Accept' => 'text/html'], 'a=1');
is($r->{status}, 401, 'a POST: 401');

# the login

$r = op_login($b, $loc, 'alice');
like($r->{location} // '', qr{^\Q$acme\E/_ent/oidc/callback\?}, 'the OP sends the browser back');
$r = $b->follow($r);
is($r->{status}, 302, 'callback: 302') or diag explain $r;
is($r->{location}, "$acme/app/page?x=1", 'to where the user was going');
$sc = join "\n", @{ $r->{headers}{'set-cookie'} || [] };
like($sc, qr/^__Host-ent_session=[A-Za-z0-9_-]{64}; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=43200$/m,
     'a session cookie: __Host-, Secure, HttpOnly, SameSite=Lax');
like($sc, qr/^__Host-ent_oidc=; .*Max-Age=0$/m, 'the login state cookie cleared');
is($r->{headers}{'cache-control'}[0], 'no-store', 'never cached');
my $cookie = $b->cookie('__Host-ent_session');

$r = $b->follow($r);
is($r->{status}, 200, 'signed in: the app answers');
my $id = json_decode($r->{body});
my ($uid) = pg_sql("SELECT u.id FROM ent.users u WHERE email = 'alice\@acme.example.com'");
ok($uid, 'JIT: the user was created');
is($id->{identity}{'x-ent-user-id'}, $uid, 'X-Ent-User-Id: our user id');
is($id->{identity}{'x-ent-user-email'}, 'alice@acme.example.com', 'X-Ent-User-Email');
is($id->{identity}{'x-ent-user-name'}, 'Alice Admin', 'X-Ent-User-Name');
is($id->{identity}{'x-ent-user-groups'}, 'admins,staff', 'X-Ent-User-Groups');
is($id->{identity}{'x-ent-roles'}, 'admin,member',
   'X-Ent-Roles: the lowest role, plus what a group mapping grants');
is($id->{identity}{'x-ent-tenant-code'}, 'acme', 'X-Ent-Tenant-Code');
is($id->{identity}{'x-ent-user-attr-department'}, 'R&D', 'X-Ent-User-Attr-Department: a custom claim');
is($id->{identity}{'x-ent-user-attr-cost-center'}, '4711', '... a number, printed');
is($id->{identity}{'x-ent-user-attr-sites'}, 'Berlin,Paris', '... a list, joined');
ok(!exists $id->{identity}{'x-ent-user-attr-secret'}, '... a value with a newline: dropped');
ok(!exists $id->{identity}{'x-ent-user-attr-absent'}, '... an absent claim: no header');
like($id->{identity}{'x-ent-session'}, qr/^[A-Za-z0-9_-]{16}$/, 'X-Ent-Session: a digest');
unlike($r->{body}, qr/ent_session|ent_oidc/, 'our cookies never reach the upstream');
is(join(',', pg_sql("SELECT role || ':' || status || ':' || source FROM ent.memberships")),
   'member:active:jit', 'JIT: a membership with the lowest role');
my @ev;
wait_until(sub {
    @ev = split /\n/, pg_sql("SELECT kind || ':' || outcome FROM ent.events WHERE kind IN ('login', 'provision') ORDER BY id");
    @ev >= 2;
}, 3);
is(join(',', sort @ev), 'login:success,provision:success',
   'events: provision, login');
like(pg_sql("SELECT actor_type || '|' || (actor = user_id::text)::text || '|' || category "
            . "|| '|' || (details->>'protocol') || '|' || (details->>'issuer') || '|' "
            . "|| client_ip || '|' || (request_id ~ '^[0-9a-f]{32}\$')::text "
            . "FROM ent.audit WHERE action = 'login' AND result = 'success'"),
     qr{^user\|true\|authentication\|oidc\|https://127\.0\.0\.1:\d+/?\|127\.0\.0\.1\|true$},
     'login: the user as actor, the protocol and issuer, address, request id');

# the session in Redis is sealed: no identity in clear

my @keys = split /\n/, redis_cli('--scan', '--pattern', 'ent:*');
my ($skey) = grep { /:s:/ } @keys;
like($skey // '', qr/^ent:\{t:[0-9a-f-]{36}\}:s:[A-Za-z0-9_-]{22}$/,
     'a session key with the tenant hash tag');
my $blob = redis_cli('GET', $skey);
unlike($blob, qr/alice|acme|Admin/i, 'its value reveals nothing');
my $ttl = redis_cli('TTL', $skey);
ok($ttl > 3500 && $ttl <= 3600, 'the idle timeout as TTL');

# the micro-cache: a session removed from Redis by another node is refused
# here within the cache time (1 s)

{
    my ($bx) = browser();
    my $rx = $bx->get("$acme/m");
    $rx = $bx->follow(op_login($bx, $rx->{location}, 'alice'));
    is($bx->get("$acme/m")->{status}, 200, 'micro-cache: a second session works');
    my %before = map { $_ => 1 } @keys;
    my @now = grep { /:s:/ && !$before{$_} }
        split /\n/, redis_cli('--scan', '--pattern', 'ent:*');
    is(scalar @now, 1, '... its key');
    redis_cli('DEL', $now[0]);
    ok(wait_until(sub { $bx->get("$acme/m")->{status} == 302 }, 1.5, 0.1),
       '... deleted in Redis (another node revoked it): refused within 1 s');
}

# spoofed identity headers and our cookies are stripped

$r = $b->get("$acme/x", 'X-Ent-User-Id' => 'root', 'X_Ent_Roles' => 'owner',
             'Cookie' => "theme=dark; __Host-ent_session=$cookie; lang=en");
$id = json_decode($r->{body});
is($id->{cookie}, 'theme=dark; lang=en', "the app's own cookies pass, ours do not");
is($id->{identity}{'x-ent-user-id'}, $uid, 'a spoofed X-Ent-User-Id is replaced');
is($id->{identity}{'x-ent-roles'}, 'admin,member', 'a spoofed X-Ent-Roles too');

# /_ent/session

$r = $b->get("$acme/_ent/session");
is($r->{status}, 200, '/_ent/session: 200');
my $s = json_decode($r->{body});
is($s->{user}{email}, 'alice@acme.example.com', '... the user');
is_deeply($s->{roles}, ['admin', 'member'], '... the roles');
is_deeply($s->{user}{groups}, ['admins', 'staff'], '... the groups');
is_deeply($s->{user}{attributes}, { department => 'R&D', 'cost-center' => '4711',
                                    sites => 'Berlin,Paris' },
          '... the custom attributes');
$r = $b->get("$acme/attr/x");
is($r->{headers}{'x-attr'}[0], 'R&D|Berlin,Paris|', '$ent_user_attr_<name>');

# the OIDC groups claim's mapping is live: unmapped, the role goes on the
# next request, without a new login; mapped again, it comes back
system("$entctl sso unmap-group acme admins admin >/dev/null") == 0 or die;
ok(wait_until(sub { (json_decode($b->get("$acme/x")->{body})->{identity}{'x-ent-roles'} // '') eq 'member' }, 3),
   'group mapping removed: X-Ent-Roles is member on the next request');
system("$entctl sso map-group acme admins admin >/dev/null") == 0 or die;
ok(wait_until(sub { (json_decode($b->get("$acme/x")->{body})->{identity}{'x-ent-roles'} // '') eq 'admin,member' }, 3),
   '... mapped again: admin,member');
is($s->{tenant}{code}, 'acme', '... the tenant');
ok($s->{expires_at} - $s->{created_at} == 43200, '... the absolute end');
$r = $api->get("$acme/_ent/session");
is($r->{status}, 401, '/_ent/session without a session: 401');
is($r->{body}, qq({"authenticated":false}\n), '... authenticated false');

# a cookie of tenant A on tenant B

$api->set_cookie('__Host-ent_session', $cookie, host => 'beta.example.com');
$r = $api->request('GET', "$beta/x", ['Accept' => 'application/json']);
is($r->{status}, 401, "acme's session cookie on beta: 401");
ok(wait_until(sub { pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'cross_tenant.session' "
                           . "AND tenant_id = (SELECT id FROM ent.tenants WHERE code = 'beta') "
                           . "AND category = 'security' AND result = 'failure'") == 1 }, 3),
   '... recorded as cross_tenant.session on beta, the isolation breach signal');

# tampered and malformed cookies

my $t = $cookie;
substr($t, 30, 1) = substr($t, 30, 1) eq 'A' ? 'B' : 'A';
for my $case (['tampered key', $t],
              ['truncated', substr($cookie, 0, 40)],
              ['oversized', 'A' x 5000],
              ['bad base64', '!' x 64]) {
    my $x = EntOP::Browser->new(resolve => $b->{resolve});
    $x->set_cookie('__Host-ent_session', $case->[1], host => 'acme.example.com');
    $r = $x->request('GET', "$acme/x", ['Accept' => 'application/json']);
    is($r->{status}, 401, "a $case->[0] session cookie: 401");
}
$r = $api->request('GET', "$acme/x", ['Accept' => 'application/json',
    'Cookie' => "__Host-ent_session=$cookie; __Host-ent_session=$cookie"]);
is($r->{status}, 401, 'the session cookie twice: 401');

# where ent_sso is off, the session cookie (it holds its key) is removed too

$r = $b->get("$acme/open/x", 'Cookie' => "a=1; __Host-ent_session=$cookie");
is(json_decode($r->{body})->{cookie}, 'a=1', 'ent_sso off: our cookie is still removed');

# the other access checks decide before anyone is sent to an IdP

is($api->request('GET', "$acme/private/x", ['Accept' => 'text/html'])->{status},
   403, 'deny all + ent_sso required: 403, not a redirect');

# browser or API: Sec-Fetch-Mode decides, whatever the order of headers

$r = $api->request('GET', "$acme/a", ['Accept' => 'application/json',
                                      'Sec-Fetch-Mode' => 'navigate']);
is($r->{status}, 302, 'Sec-Fetch-Mode: navigate: a redirect');
$r = $api->request('GET', "$acme/a", ['Sec-Fetch-Mode' => 'cors',
                                      'Accept' => 'text/html']);
is($r->{status}, 401, 'Sec-Fetch-Mode: cors: 401');

# an anonymous pass in an "optional" location does not carry into a
# "required" one after an internal redirect

$r = $api->request('GET', "$acme/mixed/x", ['Accept' => 'application/json']);
is($r->{status}, 401, 'optional, then try_files into a required location: 401');
$r = $b->get("$acme/mixed/x");
is(json_decode($r->{body})->{identity}{'x-ent-user-id'}, $uid,
   '... with a session: through, with the identity');

# control characters in a claim never reach a header or a variable

op_accounts($op1, eve => { email => 'eve@acme.example.com',
                           email_verified => JSON::PP::true,
                           name => "Eve\r\nX-Ent-Roles: owner",
                           groups => ['staff'] });
{
    my $be = browser();
    my $re = $be->get("$acme/e");
    $re = $be->follow(op_login($be, $re->{location}, 'eve'));
    is($re->{status}, 302, 'a user whose name holds CR/LF signs in');
    my $ide = json_decode($be->follow($re)->{body})->{identity};
    is($ide->{'x-ent-user-name'}, undef, '... the name is not taken');
    is($ide->{'x-ent-roles'}, 'member', '... and injects nothing');
}

# optional and off

$r = $api->request('GET', "$acme/public/p", ['Accept' => 'text/html']);
is($r->{status}, 200, 'ent_sso optional without a session: through');
is(json_decode($r->{body})->{identity}{'x-ent-user-id'}, undef, '... anonymous');
$r = $b->get("$acme/public/p");
is(json_decode($r->{body})->{identity}{'x-ent-user-id'}, $uid,
   '... with a session: the identity');

# the second tenant, its own OP, client_secret_post; a user whose email is
# not verified is not provisioned

my $b2 = browser();
$r = $b2->get("$beta/home");
like($r->{location} // '', qr{^\Q$op2->{issuer}\E/}, "beta: to beta's OP");
$r = $b2->follow(op_login($b2, $r->{location}, 'carol'));
is($r->{status}, 302, 'beta: signed in') or diag $r->{body};
$r = $b2->follow($r);
is(json_decode($r->{body})->{identity}{'x-ent-user-email'}, 'carol@beta.example.org',
   'beta: carol');
is(json_decode($r->{body})->{identity}{'x-ent-roles'}, 'member', 'beta: member only');

my $b3 = browser();
$r = $b3->get("$acme/");
$r = $b3->follow(op_login($b3, $r->{location}, 'bob'));
is($r->{status}, 403, 'an unverified email: not provisioned, 403');
like($r->{body}, qr/Acme Corp.*no access/s, "on the tenant's page");

# an OP that sends no email_verified (Entra ID, OneLogin): its emails decide
# nothing unless the tenant trusts them (--trust-email), and then only in
# a domain the tenant verified; an explicit false is never overridden

op_accounts($op1,
    dana => { email => 'dana@acme.example.com', name => 'Dana',
              groups => ['staff'] },
    odd  => { email => 'odd@elsewhere.example', name => 'Odd',
              groups => ['staff'] });
sub login_as {
    my ($who) = @_;
    my $bx = browser();
    my $rx = $bx->get("$acme/t");
    return $bx->follow(op_login($bx, $rx->{location}, $who));
}
is(login_as('dana')->{status}, 403, 'no email_verified: not provisioned, 403');
system("$entctl sso oidc acme --trust-email on >/dev/null") == 0 or die;
is(pg_sql("SELECT trust_email FROM ent.identity_providers "
          . "WHERE protocol = 'oidc' AND issuer = '$op1->{issuer}'"), 't',
   'entctl sso oidc --trust-email on: saved');
ok(wait_until(sub { login_as('dana')->{status} == 302 }, 5),
   '... then signed in and provisioned');
is(pg_sql("SELECT count(*) FROM ent.users "
          . "WHERE email = 'dana\@acme.example.com'"), 1, '... the user exists');
is(login_as('odd')->{status}, 403,
   '... not for a domain the tenant has not verified');
is(login_as('bob')->{status}, 403,
   '... and never over an explicit email_verified false');
system("$entctl sso oidc acme --trust-email off >/dev/null") == 0 or die;

# the signed identity assertion

$r = $b->get("$acme/asserted/x");
my $assertion = json_decode($r->{body})->{identity}{'x-ent-identity'} // '';
my ($ah, $ap, $as) = split /\./, $assertion;
is_deeply(json_decode(b64url_decode($ah // '')),
          { alg => 'RS256', typ => 'JWT', kid => 'edge-1' },
          'X-Ent-Identity: a JWT, RS256, with the configured kid');
my $claims = json_decode(b64url_decode($ap // '')) || {};
is($claims->{sub}, $uid, '... sub: the user id');
is($claims->{aud}, 'acme', '... aud: the tenant');
is($claims->{roles}, 'admin,member', '... the roles');
is($claims->{exp} - $claims->{iat}, 60, '... valid for 60 s');
EntOP::spew("$dir/a.data", "$ah.$ap");
EntOP::spew("$dir/a.sig", b64url_decode($as // ''));
like(scalar `openssl dgst -sha256 -verify $dir/assert.pub -signature $dir/a.sig $dir/a.data 2>&1`,
     qr/Verified OK/, '... and its signature verifies with the public key');

# a bearer identity has no roles: the assertion is signed all the same

my $cc = op_token($op1, client_id => 'acme-web', client_secret => 'acme-secret-1',
                  grant_type => 'client_credentials',
                  resource => 'https://api.example.com', scope => 'api:read');
$r = $api->request('GET', "$acme/asserted/x",
                   ['Authorization' => "Bearer $cc->{json}{access_token}"]);
is($r->{status}, 200, 'a bearer token on an asserted location: 200');
like(json_decode($r->{body})->{identity}{'x-ent-identity'} // '',
     qr/^[\w-]+\.[\w-]+\.[\w-]+$/, '... with its assertion');

# acme's access token on beta: refused, and recorded as a credential of
# another tenant (a token naming an issuer no tenant has is not)

pg_sql("UPDATE ent.identity_providers SET api_audience = 'https://api.example.com' "
       . "WHERE tenant_id = (SELECT id FROM ent.tenants WHERE code = 'beta')");
my $junk = join '.', map { my $x = encode_base64($_, ''); $x =~ tr{+/}{-_}; $x =~ s/=+$//; $x }
    '{"alg":"RS256","kid":"k1"}', '{"iss":"https://evil.example/","aud":"https://api.example.com"}', 'sig';
ok(wait_until(sub {
    $api->request('GET', "$beta/x", ['Authorization' => "Bearer $junk"]);
    $api->request('GET', "$beta/x", ['Authorization' => "Bearer $cc->{json}{access_token}"])->{status} == 401
    && pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'cross_tenant.token'") >= 1 }, 5),
   "acme's bearer token on beta: 401, recorded as cross_tenant.token");
is(pg_sql("SELECT (details->>'issuer') || '|' || category || '|' || tenant_id FROM ent.audit "
          . "WHERE action = 'cross_tenant.token' LIMIT 1"),
   "$op1->{issuer}|security|" . pg_sql("SELECT id FROM ent.tenants WHERE code = 'beta'"),
   '... naming acme\'s issuer, on beta');
sleep 0.5;
is(pg_sql("SELECT count(*) FROM ent.audit WHERE details->>'issuer' = 'https://evil.example/'"), 0,
   '... an issuer of no tenant: nothing recorded');
pg_sql("UPDATE ent.identity_providers SET api_audience = NULL "
       . "WHERE tenant_id = (SELECT id FROM ent.tenants WHERE code = 'beta')");

# a per-user limit (key=user): counted after SSO, per user

{
    my @st = map { $b->get("$acme/limited/x", 'Accept' => 'application/json')->{status} } 1 .. 3;
    is(join(',', @st), '200,200,429', "key=user: alice's third request is refused");
    $r = $api->request('GET', "$acme/limited/x",
                       ['Authorization' => "Bearer $cc->{json}{access_token}"]);
    is($r->{status}, 200, '... another user (a bearer subject) counts apart');
    is($r->{headers}{'ratelimit-policy'}[0], '"peruser";q=2;w=3600',
       '... with its RateLimit-Policy');
    $r = $api->request('GET', "$acme/limited/x", ['Accept' => 'application/json']);
    is($r->{status}, 401, '... and without a user, SSO answers first');
}

# enforced SSO: the app's own password login, live within a second

$r = $api->request('GET', "$acme/open/login", ['Accept' => 'text/html']);
is($r->{status}, 200, 'the password login of a tenant that does not enforce SSO');
pg_sql("UPDATE ent.identity_providers SET enforce_sso = true "
       . "WHERE issuer = '$op1->{issuer}'");
ok(wait_until(sub {
    $api->request('GET', "$acme/open/login", ['Accept' => 'text/html'])
        ->{status} == 302 }, 1.5, 0.05),
   'enforce_sso on: the password login is redirected within 1 s');
$r = $api->request('GET', "$acme/open/login", ['Accept' => 'text/html']);
like($r->{location}, qr{^\Q$op1->{issuer}\E/}, '... to the IdP');
is($api->request('GET', "$acme/open/other", ['Accept' => 'text/html'])->{status},
   200, '... other paths of the location are untouched');
# (";jsessionid=1" and "..;" are path parameters to Tomcat and Jetty, which
# serve "/open/login" for them; nginx leaves them in the path)
for my $v ('/open/login/', '/open/LOGIN', '/open/login.json',
           '/open/login;jsessionid=1', '/open/a/..;/login', '/open/;x/login',
           '/open/x;/../login') {
    is($api->request('GET', "$acme$v", ['Accept' => 'text/html'])->{status},
       302, "... and $v too");
}
pg_sql("UPDATE ent.identity_providers SET enforce_sso = false");

# never block the worker: a slow token endpoint delays only its login

my $bs = browser();
$r = $bs->get("$acme/slow");
$r = op_login($bs, $r->{location}, 'alice');
my ($cbpath) = ($r->{location} // '') =~ m{^https?://[^/]+(/.*)$};
op_fault($op1, path => '/token', delay_ms => 1500, times => 1);
my $slow = EntTest::http_start($n, $cbpath, host => "acme.example.com:$port",
    headers => ['Accept: text/html',
                'Cookie: __Host-ent_oidc=' . $bs->cookie('__Host-ent_oidc')]);
sleep 0.3;
my $fast = EntTest::http($n, '/x', host => "acme.example.com:$port",
    headers => ['Accept: application/json',
                'Cookie: __Host-ent_session=' . $b->cookie('__Host-ent_session')]);
my @ready = IO::Select->new($slow->{sock})->can_read(0);
is($fast->{status}, 200, 'a request with a session is served');
is(scalar @ready, 0, '... while a login waits on a slow token endpoint');
is(EntTest::http_finish($slow)->{status}, 302, 'then the slow login completes');

# the identity variables, for logs and other modules

$r = $b->get("$acme/vars/x");
is($r->{headers}{'x-vars'}[0],
   "$uid|alice\@acme.example.com|Alice Admin|admins,staff|admin,member|alice",
   '$ent_user_id, _email, _name, _groups, $ent_roles, $ent_user_sub');

# a second node whose clock is 14 hours ahead (ent_sso_clock_offset), with
# its caches under other names: the session (absolute end 12 h) has ended
# there

{
    my $n2 = nginx_start(http_config => $http . "ent_sso_clock_offset 50400;\n"
                             . "ent_sso_zone idp2;\nent_sso_docs_zone docs2;\n",
                         config => $config);
    my $p2 = nginx_port($n2);
    my $x = EntOP::Browser->new(resolve => { "acme.example.com:$p2" => "127.0.0.1:$p2" });
    $x->set_cookie('__Host-ent_session', $b->cookie('__Host-ent_session'),
                   host => 'acme.example.com');
    is($x->request('GET', "http://acme.example.com:$p2/x",
                   ['Accept' => 'application/json'])->{status}, 401,
       'a node 14 h ahead: the session is past its absolute end');
    $r = $x->request('GET', "http://acme.example.com:$p2/x", ['Accept' => 'text/html']);
    like($r->{location} // '', qr{^\Q$op1->{issuer}\E/},
         '... and the IdP record comes through its own cache zone');
    nginx_stop($n2);
    check_log($n2, 'node ahead');
}

# logout: RP-initiated at the OP

$r = $b->get("$acme/_ent/logout");
is($r->{status}, 302, 'logout: 302');
like($r->{location}, qr{^\Q$op1->{discovery}{end_session_endpoint}\E\?id_token_hint=[^&]+&post_logout_redirect_uri=\Q@{[ $acme =~ s/:/%3A/gr =~ s{/}{%2F}gr ]}\E%2F&client_id=acme-web$},
     'to the end_session_endpoint with id_token_hint');
like(join("\n", @{ $r->{headers}{'set-cookie'} }), qr/^__Host-ent_session=; .*Max-Age=0$/m,
     'the session cookie cleared');
is(redis_cli('EXISTS', $skey), 0, 'the session is gone from Redis');
$api->set_cookie('__Host-ent_session', $cookie, host => 'acme.example.com');
$r = $api->request('GET', "$acme/x", ['Accept' => 'application/json']);
is($r->{status}, 401, 'the old cookie no longer works');

# the metrics count the same logins the audit trail has, per protocol

my $m = http($n, '/_ent/metrics', host => 'acme.example.com')->{body};
for my $res (qw(success failure)) {
    my ($got) = $m =~ /^ent_sso_logins_total\{tenant="acme",protocol="oidc",result="$res"\} (\d+)$/m;
    is($got, pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'login' AND result = '$res' "
                    . "AND tenant_id = (SELECT id FROM ent.tenants WHERE code = 'acme')"),
       "ent_sso_logins_total oidc $res: as many as the audit trail's");
}
like($m, qr/^ent_sso_logins_total\{tenant="acme",protocol="oidc",result="success"\} [1-9]/m,
     '... and there were some');

check_log($n, "sso");

done_testing;
