# SCIM 2.0 Users at /scim/v2: tokens (entctl scim-token), every auth
# failure, discovery, create/get/list/replace/delete, filters (and what
# they refuse), pagination edges, ETags, uniqueness differing only in case,
# tenant isolation, hostile bodies, and a deprovisioned user's SSO session
# refused by a second nginx within a second.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use EntOP;
use EntSAML;
use Test::More;
use POSIX ();

pg_start();
redis_start();
my $echo = echo_start();
my $dir = tmpdir();
my $dsn = EntTest::pg_dsn();
my $entctl = "$EntTest::TOP/bin/entctl --dsn '$dsn'";
my $keyfile = "$dir/sso.key";
system("openssl rand -base64 32 > $keyfile") == 0 or die;

pg_sql("INSERT INTO ent.tenants (code, display_name) VALUES "
       . "('acme', 'Acme'), ('globex', 'Globex')");

my $conf = <<"CONF";
ent_tenant on;
ent_tenant_base_domain example.com;
location /scim/v2/ {
    ent_scim on;
}
location / {
    ent_sso required;
    proxy_pass http://127.0.0.1:$echo;
}
CONF
my $http = <<"CONF";
ent_postgres "\$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:\$TEST_REDIS_PORT;
ent_sso_secret_key $keyfile;
ent_scim_max_count 50;
ent_scim_rate 100000;
CONF
my $n = nginx_start(http_config => $http, config => $conf);
my $n2 = nginx_start(http_config => $http, config => $conf);
my $port = nginx_port($n);
my $port2 = nginx_port($n2);

sub token {
    my ($t) = @_;
    my $tok = `$entctl scim-token create $t --name okta 2>/dev/null`;
    chomp $tok;
    return $tok;
}

my $tok = token('acme');
like($tok, qr/^ent_scim_[\w-]{43}$/, 'entctl scim-token create: a token, shown once');
is(pg_sql("SELECT count(*) FROM ent.scim_tokens WHERE encode(token_sha256, 'hex') = encode(sha256('$tok'), 'hex')"),
   1, '... stored as its SHA-256');
my $gtok = token('globex');

sub scim {
    my ($method, $path, %o) = @_;
    my $t = $o{tenant} || 'acme';
    my $p = $o{port} || $port;
    my @h = ("Host: $t.example.com:$p");
    push @h, 'Authorization: Bearer ' . ($o{token} // $tok) unless $o{no_auth};
    push @h, 'Content-Type: application/scim+json' if defined $o{body};
    my @extra = @{ $o{headers} || [] };
    while (my ($k, $v) = splice @extra, 0, 2) {
        push @h, "$k: $v";
    }
    my $body = ref $o{body} ? json_encode($o{body}) : $o{body};
    my $r = http($p, "$method $path", headers => \@h, body => $body);
    $r->{json} = eval { json_decode($r->{body}) } if length($r->{body} // '');
    return $r;
}

sub envelope_ok {
    my ($r, $status, $type, $name) = @_;
    is($r->{status}, $status, "$name: $status");
    is_deeply($r->{json}{schemas}, ['urn:ietf:params:scim:api:messages:2.0:Error'],
              "... $name: the error envelope");
    is($r->{json}{status}, "$status", "... $name: status as a string");
    is($r->{json}{scimType}, $type, "... $name: scimType " . ($type // 'none')) if defined $type;
    like(EntTest::header($r, 'content-type') // '', qr{^application/scim\+json}, "... $name: SCIM media type");
}

# --- authentication

envelope_ok(scim('GET', '/scim/v2/Users', no_auth => 1), 401, undef, 'no token');
envelope_ok(scim('GET', '/scim/v2/Users', token => 'ent_scim_' . ('A' x 43)), 401, undef, 'an unknown token');
envelope_ok(scim('GET', '/scim/v2/Users', token => $gtok), 401, undef, "another tenant's token");
envelope_ok(scim('GET', '/scim/v2/Users', token => 'short'), 401, undef, 'a malformed token');
my $old = token('acme');
my ($old_id) = pg_sql("SELECT id FROM ent.scim_tokens ORDER BY created_at DESC LIMIT 1");
is(scim('GET', '/scim/v2/Users', token => $old)->{status}, 200, 'a second token works');
system("$entctl scim-token revoke acme $old_id >/dev/null") == 0 or die;
ok(wait_until(sub { scim('GET', '/scim/v2/Users', token => $old)->{status} == 401 }, 3),
   '... revoked: 401 at once');
pg_sql("UPDATE ent.scim_tokens SET expires_at = now() - interval '1 second' WHERE id = '$old_id'");
envelope_ok(scim('GET', '/scim/v2/Users', token => $old), 401, undef, 'an expired, revoked token');
ok(wait_until(sub { pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'scim_token.revoked_use' AND actor_type = 'token' AND actor = '$old_id' AND target_id = '$old_id' AND result = 'failure' AND reason = 'a revoked token used'") >= 1 }, 3),
   '... the revoked token\'s use recorded (scim_token.revoked_use), with its id');
# a token that expires while its answer is cached: refused the second it
# expires, not when the cached "active" ages out (60 s)
my $soon = token('acme');
my ($soon_id) = pg_sql("SELECT id FROM ent.scim_tokens ORDER BY created_at DESC LIMIT 1");
pg_sql("UPDATE ent.scim_tokens SET expires_at = now() + interval '2 seconds' WHERE id = '$soon_id'");
my ($soon_at) = pg_sql("SELECT extract(epoch FROM expires_at) FROM ent.scim_tokens WHERE id = '$soon_id'");
ok(wait_until(sub { scim('GET', '/scim/v2/Users', token => $soon)->{status} == 200 }, 3),
   'a token expiring in 2 s works (and its answer is cached)');
sleep($soon_at + 1.1 - time) if $soon_at + 1.1 > time;
envelope_ok(scim('GET', '/scim/v2/Users', token => $soon), 401, undef, '... expired meanwhile');
ok(wait_until(sub { pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'scim_token.expired_use' AND actor = '$soon_id' AND reason = 'an expired token used'") >= 1 }, 3),
   '... its use recorded as scim_token.expired_use');

# --- discovery

my $r = scim('GET', '/scim/v2/ServiceProviderConfig');
is($r->{status}, 200, 'ServiceProviderConfig: 200');
is($r->{json}{filter}{maxResults}, 50, '... maxResults is ent_scim_max_count');
is($r->{json}{etag}{supported}, JSON::PP::true, '... ETags supported');
$r = scim('GET', '/scim/v2/ResourceTypes');
is($r->{json}{Resources}[0]{endpoint}, '/Users', 'ResourceTypes: Users');
$r = scim('GET', '/scim/v2/Schemas');
is($r->{json}{Resources}[0]{id}, 'urn:ietf:params:scim:schemas:core:2.0:User', 'Schemas: the core User');
# Groups too (RFC 7644 4), and each resource type and schema by its id
$r = scim('GET', '/scim/v2/ResourceTypes');
is(join(',', $r->{json}{totalResults}, map { "$_->{id}:$_->{endpoint}:$_->{schema}" } @{ $r->{json}{Resources} }),
   '2,User:/Users:urn:ietf:params:scim:schemas:core:2.0:User,'
   . 'Group:/Groups:urn:ietf:params:scim:schemas:core:2.0:Group', 'ResourceTypes: User and Group');
$r = scim('GET', '/scim/v2/Schemas');
is(join(',', $r->{json}{totalResults}, map { $_->{id} } @{ $r->{json}{Resources} }),
   '3,urn:ietf:params:scim:schemas:core:2.0:User,'
   . 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,'
   . 'urn:ietf:params:scim:schemas:core:2.0:Group', 'Schemas: User, EnterpriseUser, Group');
my ($gs) = grep { $_->{name} eq 'Group' } @{ $r->{json}{Resources} };
is(join(',', map { $_->{name} } @{ $gs->{attributes} }), 'displayName,externalId,members',
   '... the Group schema\'s attributes');
$r = scim('GET', '/scim/v2/ResourceTypes/Group');
is($r->{status} . '|' . $r->{json}{endpoint}, '200|/Groups', 'ResourceTypes/Group');
$r = scim('GET', '/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group');
is($r->{status} . '|' . $r->{json}{name} . '|' . ($r->{json}{meta}{location} =~ s{^https?://[^/]+}{}r),
   '200|Group|/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group',
   'Schemas/<the Group URN>');
envelope_ok(scim('GET', '/scim/v2/Schemas/urn:nope'), 404, undef, 'an unknown schema');
envelope_ok(scim('GET', '/scim/v2/ResourceTypes/Nope'), 404, undef, 'an unknown resource type');
envelope_ok(scim('GET', '/scim/v2/ServiceProviderConfig/x'), 404, undef, 'ServiceProviderConfig/x');
envelope_ok(scim('GET', '/scim/v2/Nope'), 404, undef, 'an unknown resource');
envelope_ok(scim('POST', '/scim/v2/Bulk', body => {}), 501, undef, 'Bulk');

# --- create

my $U = 'urn:ietf:params:scim:schemas:core:2.0:User';
my $E = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
sub user {
    my ($name, %o) = @_;
    return { schemas => [$U], userName => $name, externalId => $o{ext} // "ext-$name",
             name => { givenName => ucfirst((split /\@/, $name)[0]), familyName => 'Doe' },
             emails => [{ value => $name, type => 'work', primary => JSON::PP::true }],
             active => $o{active} // JSON::PP::true, %{ $o{more} || {} } };
}

$r = scim('POST', '/scim/v2/Users', body => user('alice@acme.example.com',
          more => { $E => { department => 'Engineering', employeeNumber => '42' } }));
is($r->{status}, 201, 'POST /Users: 201');
my $alice = $r->{json};
like($alice->{id}, qr/^[0-9a-f-]{36}$/, '... an id');
is($alice->{meta}{resourceType}, 'User', '... meta.resourceType');
is(EntTest::header($r, 'location'), "http://acme.example.com:$port/scim/v2/Users/$alice->{id}",
   '... Location');
is(EntTest::header($r, 'etag'), 'W/"1"', '... ETag');
is($alice->{meta}{location}, EntTest::header($r, 'location'), '... meta.location');
is($alice->{$E}{department}, 'Engineering', '... the enterprise extension');
is(pg_sql("SELECT m.role || ':' || m.status || ':' || m.source FROM ent.memberships m JOIN ent.users u ON u.id = m.user_id WHERE u.email = 'alice\@acme.example.com'"),
   'member:active:scim', '... a membership of the tenant');

$r = scim('POST', '/scim/v2/Users', body => user('ALICE@acme.example.com'));
envelope_ok($r, 409, 'uniqueness', 'a userName differing only in case');
$r = scim('POST', '/scim/v2/Users', body => '{"schemas":');
envelope_ok($r, 400, 'invalidSyntax', 'malformed JSON');
$r = scim('POST', '/scim/v2/Users', body => "{\"schemas\":[\"$U\"],\"userName\":\"\xff\xfe\"}");
envelope_ok($r, 400, 'invalidSyntax', 'not UTF-8');
$r = scim('POST', '/scim/v2/Users', body => { userName => 'x@acme.example.com' });
envelope_ok($r, 400, 'invalidValue', 'no schemas');
$r = scim('POST', '/scim/v2/Users', body => { schemas => [$U] });
envelope_ok($r, 400, 'invalidValue', 'no userName');
$r = scim('POST', '/scim/v2/Users', body => { schemas => [$U], userName => 'y', active => 'maybe' });
envelope_ok($r, 400, 'invalidValue', 'active not a boolean');
$r = scim('POST', '/scim/v2/Users', body => '{"schemas":["' . $U . '"],"userName":"a","userName":"b"}');
envelope_ok($r, 400, 'invalidSyntax', 'a duplicated key');
$r = scim('POST', '/scim/v2/Users', body => '{"x":"' . ('a' x (1100 * 1024)) . '"}');
is($r->{status}, 413, 'a body over 1 MiB: 413');
$r = scim('POST', '/scim/v2/Users', body => user('bob@acme.example.com', active => 'False'));
is($r->{status}, 201, '"False" as a string (what some IdPs send): created');
is($r->{json}{active}, JSON::PP::false, '... inactive');
my $bob = $r->{json};
for my $i (1 .. 12) {
    scim('POST', '/scim/v2/Users', body => user(sprintf('user%02d@acme.example.com', $i)));
}

# --- get, tenant isolation

$r = scim('GET', "/scim/v2/Users/$alice->{id}");
is($r->{status}, 200, 'GET /Users/{id}: 200');
is($r->{json}{userName}, 'alice@acme.example.com', '... the user');
$r = scim('GET', "/scim/v2/Users/$alice->{id}", headers => ['If-None-Match' => 'W/"1"']);
is($r->{status}, 304, '... If-None-Match of the current version: 304');
envelope_ok(scim('GET', "/scim/v2/Users/$alice->{id}", tenant => 'globex', token => $gtok),
            404, undef, "another tenant's id with its own token");
envelope_ok(scim('GET', '/scim/v2/Users/not-a-uuid'), 404, undef, 'a malformed id');

# --- attributes, excludedAttributes

$r = scim('GET', "/scim/v2/Users/$alice->{id}?attributes=userName,name.givenName");
is_deeply([sort keys %{ $r->{json} }], [qw(id name schemas userName)],
          'attributes=userName,name.givenName: those, and id and schemas');
is_deeply($r->{json}{name}, { givenName => 'Alice' }, '... only the named sub-attribute');
$r = scim('GET', "/scim/v2/Users/$alice->{id}?excludedAttributes=emails,meta,name.familyName,id");
ok(!exists $r->{json}{emails} && !exists $r->{json}{meta}, 'excludedAttributes: dropped');
is($r->{json}{id}, $alice->{id}, '... but never id');
ok(exists $r->{json}{name}{givenName} && !exists $r->{json}{name}{familyName}, '... a sub-attribute');
$r = scim('GET', "/scim/v2/Users/$alice->{id}?attributes=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department");
is_deeply($r->{json}{$E}, { department => 'Engineering' }, '... an extension attribute by its URN');
$r = scim('GET', '/scim/v2/Users?attributes=userName&count=2');
is_deeply([sort keys %{ $r->{json}{Resources}[0] }], [qw(id schemas userName)], '... on every resource of a list');
$r = scim('POST', '/scim/v2/Users?attributes=userName', body => user('carol@acme.example.com'));
is_deeply([sort keys %{ $r->{json} }], [qw(id schemas userName)], '... on a POST response');

# --- filters

sub names {
    my ($filter, %o) = @_;
    my $q = '/scim/v2/Users?filter=' . EntSAML::pct_escape($filter);
    $q .= "&$o{args}" if $o{args};
    my $res = scim('GET', $q);
    return ($res, join ',', map { $_->{userName} } @{ $res->{json}{Resources} || [] });
}

my ($res, $got) = names('userName eq "ALICE@acme.example.com"');
is($got, 'alice@acme.example.com', 'filter userName eq: case-insensitive');
is($res->{json}{totalResults}, 1, '... totalResults');
(undef, $got) = names('externalId eq "EXT-alice@acme.example.com"');
is($got, '', 'externalId eq: case-exact');
(undef, $got) = names('userName sw "user0" and active eq true', args => 'sortBy=userName');
is($got, join(',', map { sprintf 'user%02d@acme.example.com', $_ } 1 .. 9), 'sw, and, sortBy');
(undef, $got) = names('emails[type eq "work" and value co "bob@"]');
is($got, 'bob@acme.example.com', 'a complex filter on emails');
(undef, $got) = names('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "engineering"');
is($got, 'alice@acme.example.com', 'a URN-qualified extension attribute');
(undef, $got) = names('active eq false');
is($got, 'bob@acme.example.com', 'a boolean');
(undef, $got) = names('not (userName co "user") and not (userName sw "bob") and not (userName sw "carol")');
is($got, 'alice@acme.example.com', 'not, grouping');
(undef, $got) = names('userName co "%"');
is($got, '', 'a LIKE wildcard in a value matches itself only');
for my $bad ('userName eq', 'userName xx "a"', 'password eq "x"', 'userName eq "a" or',
             '(userName eq "a"', 'userName eq "x\" or 1=1 --"extra', 'active eq "true"',
             'userName eq "a\'); DROP TABLE ent.users; --"x', ('(' x 40) . 'userName pr' . (')' x 40)) {
    my ($b) = names($bad);
    is($b->{status}, 400, "filter '" . substr($bad, 0, 40) . "': 400");
    is($b->{json}{scimType}, 'invalidFilter', '... invalidFilter');
}
ok(pg_sql("SELECT count(*) FROM ent.users") > 10, 'the users table is still there');
# a filter that is there is compiled or refused, never dropped for all rows
my $SR = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
for my $q ('filter=', 'filter', 'filter=+',
           'filter=' . EntSAML::pct_escape('userName eq "bob@acme.example.com"') . '&filter=userName%20pr') {
    envelope_ok(scim('GET', "/scim/v2/Users?$q"), 400, 'invalidFilter', "GET /Users?$q");
}
for my $f ('', 5, [], { a => 1 }) {
    envelope_ok(scim('POST', '/scim/v2/Users/.search', body => { schemas => [$SR], filter => $f }),
                400, 'invalidFilter', '.search with a filter of ' . json_encode([$f]));
}
envelope_ok(scim('POST', '/scim/v2/Users/.search', body => { schemas => [$SR], filter => 'userName pr',
                                                            Filter => 'userName pr' }),
            400, 'invalidFilter', '.search with "filter" and "Filter"');
$r = scim('POST', '/scim/v2/Users/.search', body => { schemas => [$SR], Filter => 'userName eq "bob@acme.example.com"',
                                                     COUNT => 5 });
is(join(',', $r->{status}, map { $_->{userName} } @{ $r->{json}{Resources} || [] }),
   '200,bob@acme.example.com', '.search with "Filter": the filter read (names are case-insensitive)');

# --- pagination

($res) = names('userName sw "user"', args => 'sortBy=userName&startIndex=3&count=4');
is($res->{json}{startIndex}, 3, 'startIndex=3');
is($res->{json}{itemsPerPage}, 4, '... itemsPerPage: what the page holds');
is($res->{json}{totalResults}, 12, '... totalResults');
is($res->{json}{Resources}[0]{userName}, 'user03@acme.example.com', '... the third first');
($res) = names('userName sw "user"', args => 'count=0');
is($res->{json}{itemsPerPage}, 0, 'count=0: no resources');
is($res->{json}{totalResults}, 12, '... but the total');
($res) = names('userName sw "user"', args => 'count=-5&startIndex=0');
is($res->{json}{startIndex}, 1, 'startIndex 0 is 1');
is($res->{json}{itemsPerPage}, 0, 'a negative count is 0');
($res) = names('userName sw "user"', args => 'startIndex=100');
is($res->{json}{itemsPerPage}, 0, 'past the end: an empty page');
($res) = names('userName sw "user"', args => 'startIndex=3000000000');
is($res->{status} . ' ' . $res->{json}{itemsPerPage}, '200 0',
   'a startIndex past 32 bits: an empty page, not an error');
$r = scim('POST', '/scim/v2/Users/.search', body => {
    schemas => ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
    filter => 'userName sw "user"', startIndex => 1000000000000000 });
is($r->{status} . ' ' . $r->{json}{itemsPerPage}, '200 0',
   '... in a .search too');
$r = scim('POST', '/scim/v2/Users/.search', body => {
    schemas => ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
    filter => 'userName sw "user"', sortBy => 'userName',
    sortOrder => 'descending', count => 2 });
is(join(',', map { $_->{userName} } @{ $r->{json}{Resources} || [] }),
   'user12@acme.example.com,user11@acme.example.com',
   'a .search with a filter and sortBy: sorted by it');
($res) = names('userName pr', args => 'count=100000');
is($res->{json}{itemsPerPage}, 15, 'a huge count: capped, here all 15');
$r = scim('GET', '/scim/v2/Users?count=abc');
is($r->{status}, 400, 'count not a number: 400');
$r = scim('POST', '/scim/v2/Users/.search', body => { schemas => ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
                                                     filter => 'userName eq "bob@acme.example.com"' });
is(join(',', map { $_->{userName} } @{ $r->{json}{Resources} || [] }), 'bob@acme.example.com', 'POST /Users/.search');

# --- replace, ETags

my $put = user('alice@acme.example.com', more => { displayName => 'Alice A.' });
$r = scim('PUT', "/scim/v2/Users/$alice->{id}", body => $put, headers => ['If-Match' => 'W/"7"']);
envelope_ok($r, 412, undef, 'PUT with a stale If-Match');
$r = scim('PUT', "/scim/v2/Users/$alice->{id}", body => $put, headers => ['If-Match' => 'W/"1"']);
is($r->{status}, 200, 'PUT with the current If-Match: 200');
is($r->{json}{displayName}, 'Alice A.', '... replaced');
is(EntTest::header($r, 'etag'), 'W/"2"', '... a new version');
$r = scim('PUT', "/scim/v2/Users/$alice->{id}", body => { %$put, id => $bob->{id} });
envelope_ok($r, 400, 'mutability', 'PUT with another id in the body');
$r = scim('PUT', "/scim/v2/Users/$alice->{id}", body => user('bob@acme.example.com'));
envelope_ok($r, 409, 'uniqueness', "PUT taking another user's userName");
# --- PATCH, as IdPs send it

my $PO = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
$r = scim('PATCH', "/scim/v2/Users/$alice->{id}", body => { schemas => [$PO], Operations => [
    { op => 'Replace', path => 'displayName', value => 'Alice B.' },
    { op => 'Add', path => 'emails[type eq "home"].value', value => 'alice@home.example' },
    { op => 'replace', path => 'name.familyName', value => 'Doe-Smith' } ] });
is($r->{status}, 200, 'PATCH (Entra-style ops): 200') or diag $r->{body};
is($r->{json}{displayName}, 'Alice B.', '... replaced');
is($r->{json}{name}{familyName}, 'Doe-Smith', '... a sub-attribute');
ok((grep { ($_->{type} // '') eq 'home' && $_->{value} eq 'alice@home.example' } @{ $r->{json}{emails} }),
   '... a filtered path created the element');
is(EntTest::header($r, 'etag'), 'W/"3"', '... a new version');
$r = scim('PATCH', "/scim/v2/Users/$alice->{id}", body => { schemas => [$PO], Operations => [
    { op => 'replace', value => { displayName => 'Alice C.' } } ] });
is($r->{json}{displayName}, 'Alice C.', 'PATCH without a path (Okta)');
$r = scim('PATCH', "/scim/v2/Users/$alice->{id}", body => { schemas => [$PO], Operations => [
    { op => 'replace', path => 'displayName', value => 'Alice D.' },
    { op => 'replace', path => 'id', value => 'x' } ] });
is($r->{status}, 400, 'PATCH of a read-only attribute: 400');
is($r->{json}{scimType}, 'mutability', '... mutability');
is(scim('GET', "/scim/v2/Users/$alice->{id}")->{json}{displayName}, 'Alice C.', '... nothing of it applied');
$r = scim('PATCH', "/scim/v2/Users/$alice->{id}", body => { schemas => [$PO], Operations => [
    { op => 'replace', path => 'userName', value => 'bob@acme.example.com' } ] });
is($r->{status}, 409, "PATCH taking another user's userName: 409");
$r = scim('PATCH', "/scim/v2/Users/$alice->{id}", body => { schemas => [$PO], Operations => [
    { op => 'replace', path => 'displayName', value => 'x' } ] }, headers => ['If-Match' => 'W/"1"']);
is($r->{status}, 412, 'PATCH with a stale If-Match: 412');
$r = scim('PATCH', "/scim/v2/Users/$alice->{id}", body => '{"Operations":');
is($r->{status}, 400, 'PATCH with malformed JSON: 400');
is($r->{json}{scimType}, 'invalidSyntax', '... invalidSyntax');
envelope_ok(scim('PATCH', '/scim/v2/Users/' . ('0' x 8) . '-0000-0000-0000-' . ('0' x 12),
                 body => { schemas => [$PO], Operations => [{ op => 'remove', path => 'displayName' }] }),
            404, undef, 'PATCH of an unknown user');

# --- deprovisioning revokes access on every node within a second

my $idp = saml_keypair($dir, 'idp');
system("$entctl sso saml acme --entity-id https://idp.example.org/saml --sso-url https://idp.example.org/sso --cert-file $idp->{crt} --unsolicited on --domains acme.example.com >/dev/null") == 0 or die;
system("$entctl sso domain add acme acme.example.com --verified >/dev/null") == 0 or die;
sleep 1.2;
my $b = EntOP::Browser->new(resolve => { "acme.example.com:$port" => "127.0.0.1:$port",
                                         "acme.example.com:$port2" => "127.0.0.1:$port2" });
my $base = "http://acme.example.com:$port";
$r = saml_post($b, "$base/_ent/saml/acs", saml_response(
    idp => $idp, issuer => 'https://idp.example.org/saml', acs => "$base/_ent/saml/acs",
    audience => "$base/_ent/saml/metadata", rid => undef, name_id => 'alice@acme.example.com',
    attrs => [ email => ['alice@acme.example.com'] ]), '/');
is($r->{status}, 302, 'the SCIM user signs in with SSO');
is(json_decode($b->get("$base/x")->{body})->{identity}{'x-ent-user-id'}, $alice->{id},
   '... as the same user (linked by email)');
is($b->get("http://acme.example.com:$port2/x")->{status}, 200, '... on the second nginx too');
$r = scim('PATCH', "/scim/v2/Users/$alice->{id}", body => { schemas => [$PO], Operations => [
    { op => 'Replace', path => 'active', value => 'False' } ] });
is($r->{status}, 200, 'PATCH active "False" (Entra)');
is($r->{json}{active}, JSON::PP::false, '... inactive');
ok(wait_until(sub { $b->get("http://acme.example.com:$port2/x")->{status} == 403 }, 2),
   '... the second nginx refuses her session within a second');

# --- erasure: pseudonymized, and Gone for SCIM

pg_sql("UPDATE ent.scim_users SET extra = '{\"nickName\":\"Ally\"}' WHERE id = '$alice->{id}'");
my $out = `$entctl user erase acme alice\@acme.example.com 2>&1`;
like($out, qr/^user erase acme \Q$alice->{id}\E: erased$/m, 'entctl user erase: erased') or diag $out;
is(pg_sql("SELECT coalesce(email, '-') || ' ' || coalesce(name, '-') FROM ent.users WHERE id = '$alice->{id}'"),
   '- -', '... the person pseudonymized');
like(pg_sql("SELECT user_name FROM ent.scim_users WHERE id = '$alice->{id}'"), qr/^erased-/, '... the SCIM record too');
is(pg_sql("SELECT extra FROM ent.scim_users WHERE id = '$alice->{id}'"), '{}',
   '... with the attributes kept as the IdP sent them');
unlike(pg_sql("SELECT string_agg(coalesce(reason, '') || detail::text, ' ') FROM ent.events"),
       qr/alice\@acme/, '... no event holds the erased email');
envelope_ok(scim('GET', "/scim/v2/Users/$alice->{id}"), 410, undef, 'GET of the erased user');
envelope_ok(scim('PATCH', "/scim/v2/Users/$alice->{id}", body => { schemas => [$PO], Operations => [
    { op => 'replace', path => 'active', value => JSON::PP::true } ] }), 410, undef, 'PATCH reviving the erased user');
envelope_ok(scim('POST', '/scim/v2/Users', body => user('Alice@acme.example.com')), 410, undef,
            'POST of the same userName');
envelope_ok(scim('POST', '/scim/v2/Users', body => user('alice2@acme.example.com', ext => 'ext-alice@acme.example.com')),
            410, undef, 'POST with the same externalId');
like(`$entctl user erase acme alice\@acme.example.com 2>&1`, qr/erased already/, 'erasing again: said so');
isnt(system("$entctl user erase acme nobody\@acme.example.com >/dev/null 2>&1"), 0, 'an unknown user: an error');

# --- delete

$r = scim('DELETE', "/scim/v2/Users/$bob->{id}");
is($r->{status}, 204, 'DELETE: 204');
envelope_ok(scim('GET', "/scim/v2/Users/$bob->{id}"), 404, undef, '... then GET');
envelope_ok(scim('DELETE', "/scim/v2/Users/$bob->{id}"), 404, undef, '... DELETE twice');
is(pg_sql("SELECT count(*) FROM ent.scim_users WHERE id = '$bob->{id}' AND deleted_at IS NOT NULL"),
   1, '... the row stays, marked, for the audit trail');
is(pg_sql("SELECT count(*) FROM ent.memberships WHERE user_id = '$bob->{id}'"), 0,
   '... the membership is gone');
$r = scim('POST', '/scim/v2/Users', body => user('bob@acme.example.com'));
is($r->{status}, 201, 'the same userName again after a DELETE: created');
ok(pg_sql("SELECT count(*) FROM ent.events WHERE kind = 'scim'") >= 15, 'every change recorded (ent.events, kind scim)');
is(pg_sql("SELECT actor_type || '|' || (actor ~ '^[0-9a-f-]{36}\$')::text || '|' || category "
          . "|| '|' || target_type || '|' || result FROM ent.audit "
          . "WHERE action = 'scim.user.delete' AND target_id = '$bob->{id}'"),
   'token|true|provisioning|user|success',
   'scim.user.delete: the token as actor, the user as target');
my $del_actor = pg_sql("SELECT actor FROM ent.audit WHERE action = 'scim.user.delete' AND target_id = '$bob->{id}'");
is(pg_sql("SELECT count(*) FROM ent.scim_tokens WHERE id::text = '$del_actor'"), 1, '... a real token id');
ok(pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'scim.user.create'") >= 3
   && pg_sql("SELECT count(*) FROM ent.audit WHERE action IN ('scim.user.update', 'scim.user.deactivate')") >= 1,
   'creates, updates and deactivations each their own action');
my $tid = pg_sql("SELECT id FROM ent.tenants WHERE code = 'acme'");
my $stream = EntTest::redis_cli('XRANGE', "ent:{t:$tid}:scim", '-', '+');
like($stream, qr/operation\s+delete/s, 'the Redis Stream has the changes: a delete');
like($stream, qr/\Q$bob->{id}\E/, '... of that user');
like($stream, qr/operation\s+create.*operation\s+replace/s, '... after the creates and replaces');

# --- what Entra ID sends by default: the rest of the core User schema,
# kept and returned (never acted on: SCIM roles grant nothing)

$r = scim('POST', '/scim/v2/Users', body => user('erin@acme.example.com', more => {
    title => 'Engineer', preferredLanguage => 'de-DE', nickName => 'Eri', locale => 'de-DE',
    timezone => 'Europe/Berlin', userType => 'Employee', profileUrl => 'https://x.example/erin',
    name => { givenName => 'Erin', familyName => 'Doe', middleName => 'M', honorificPrefix => 'Dr.' },
    addresses => [{ type => 'work', formatted => 'Street 1, Berlin', streetAddress => 'Street 1',
                    locality => 'Berlin', postalCode => '10115', country => 'DE', primary => 'True' }],
    roles => [{ value => 'admin', primary => JSON::PP::false }] }));
is($r->{status}, 201, 'an Entra ID user with title, language, addresses, roles: 201');
my $erin = $r->{json};
is($erin->{title}, 'Engineer', '... title returned');
is($erin->{name}{middleName}, 'M', '... name.middleName');
is($erin->{addresses}[0]{locality}, 'Berlin', '... addresses');
is($erin->{roles}[0]{value}, 'admin', '... roles kept');
is(pg_sql("SELECT role FROM ent.memberships WHERE user_id = '$erin->{id}'"), 'member',
   '... but SCIM roles grant no role at the edge');
$r = scim('GET', "/scim/v2/Users/$erin->{id}");
is_deeply([@{ $r->{json} }{qw(title preferredLanguage locale timezone userType nickName profileUrl)}],
          ['Engineer', 'de-DE', 'de-DE', 'Europe/Berlin', 'Employee', 'Eri', 'https://x.example/erin'],
          'GET: every one of them');
$r = scim('PATCH', "/scim/v2/Users/$erin->{id}", body => { schemas => [$PO], Operations => [
    { op => 'Replace', path => 'title', value => 'Staff Engineer' },
    { op => 'Add', path => 'addresses[type eq "work"].locality', value => 'Hamburg' },
    { op => 'Add', path => 'addresses[type eq "home"].formatted', value => 'Home 2' },
    { op => 'Remove', path => 'nickName' } ] });
is($r->{status}, 200, 'PATCH as Entra ID sends it: 200');
is($r->{json}{title}, 'Staff Engineer', '... title replaced');
is(join(',', map { "$_->{type}:" . ($_->{locality} // $_->{formatted}) } @{ $r->{json}{addresses} }),
   'work:Hamburg,home:Home 2', '... the work address changed, a home address made by its filter');
ok(!exists $r->{json}{nickName}, '... nickName removed');
is(scim('GET', "/scim/v2/Users/$erin->{id}")->{json}{title}, 'Staff Engineer', '... and stored');
envelope_ok(scim('POST', '/scim/v2/Users', body => user('frank@acme.example.com', more => {
    addresses => [{ type => 'work', galaxy => 'Andromeda' }] })), 400, 'invalidValue',
    'an address with an unknown sub-attribute');
envelope_ok(scim('POST', '/scim/v2/Users', body => user('frank@acme.example.com', more => {
    title => { nested => 1 } })), 400, 'invalidValue', 'a title that is not a string');
envelope_ok(scim('PATCH', "/scim/v2/Users/$erin->{id}", body => { schemas => [$PO], Operations => [
    { op => 'add', path => 'favouriteColour', value => 'blue' } ] }), 400, 'invalidPath',
    'an attribute of no schema');
$r = scim('GET', '/scim/v2/Schemas');
ok((grep { $_->{name} eq 'addresses' } @{ $r->{json}{Resources}[0]{attributes} }),
   'Schemas lists them');

# attribute names in any case (RFC 7643 2.1): stored as if spelled right
$r = scim('POST', '/scim/v2/Users', body => { Schemas => [$U], UserName => 'casey@acme.example.com',
          Name => { GivenName => 'Casey', FAMILYNAME => 'Doe' },
          Emails => [{ Value => 'casey@acme.example.com', Primary => JSON::PP::true }],
          lc($E) => { Department => 'Ops' } });
is($r->{status}, 201, 'POST with "UserName", "Name", "Emails": 201');
my $casey = $r->{json};
is(join('|', $casey->{userName} // '', $casey->{name}{givenName} // '', $casey->{name}{familyName} // '',
        $casey->{emails}[0]{value} // '', $casey->{$E}{department} // ''),
   'casey@acme.example.com|Casey|Doe|casey@acme.example.com|Ops', '... every attribute stored');
$r = scim('PUT', "/scim/v2/Users/$casey->{id}", body => { schemas => [$U], userName => 'casey@acme.example.com',
          EMAILS => [{ value => 'casey2@acme.example.com' }] });
is(join('|', $r->{status}, map { $_->{value} } @{ $r->{json}{emails} || [] }),
   '200|casey2@acme.example.com', 'PUT with "EMAILS": replaced, not cleared');
envelope_ok(scim('PUT', "/scim/v2/Users/$casey->{id}", body => { schemas => [$U],
            userName => 'casey@acme.example.com', emails => [], Emails => [] }),
            400, 'invalidValue', 'PUT with "emails" and "Emails"');

# If-Match: "*" is any version of a resource that exists, and a list
# holds when one of its tags is current (RFC 7232 3.1)
my $im = scim('POST', '/scim/v2/Users', body => user('ifmatch@acme.example.com'))->{json};
$r = scim('PUT', "/scim/v2/Users/$im->{id}", body => user('ifmatch@acme.example.com'), headers => ['If-Match' => '*']);
is($r->{status} . ' ' . (EntTest::header($r, 'etag') // ''), '200 W/"2"', 'PUT with If-Match: *: 200');
$r = scim('PUT', "/scim/v2/Users/$im->{id}", body => user('ifmatch@acme.example.com'),
          headers => ['If-Match' => 'W/"1", W/"2"']);
is($r->{status} . ' ' . (EntTest::header($r, 'etag') // ''), '200 W/"3"', 'PUT with a list holding the current ETag: 200');
$r = scim('PUT', "/scim/v2/Users/$im->{id}", body => user('ifmatch@acme.example.com'),
          headers => ['If-Match' => 'W/"1", W/"2"']);
envelope_ok($r, 412, undef, 'PUT with a list without the current ETag');
envelope_ok(scim('PUT', "/scim/v2/Users/$im->{id}", body => user('ifmatch@acme.example.com'),
                 headers => ['If-Match' => '"abc", W/"x"']), 412, undef, 'PUT with If-Match of tags not ours');
$r = scim('PATCH', "/scim/v2/Users/$im->{id}", body => { schemas => [$PO], Operations => [
    { op => 'replace', path => 'displayName', value => 'If' } ] }, headers => ['If-Match' => '"abc",W/"3"']);
is($r->{status} . ' ' . (EntTest::header($r, 'etag') // ''), '200 W/"4"', 'PATCH with a list holding the current ETag: 200');
$r = scim('PATCH', "/scim/v2/Users/$im->{id}", body => { schemas => [$PO], Operations => [
    { op => 'replace', path => 'displayName', value => 'If2' } ] }, headers => ['If-Match' => 'W/"2", W/"3"']);
is($r->{status}, 412, 'PATCH with a list without it: 412');
is(scim('DELETE', "/scim/v2/Users/$im->{id}", headers => ['If-Match' => 'W/"5", W/"9"'])->{status}, 412,
   'DELETE with a list without it: 412');
is(scim('DELETE', "/scim/v2/Users/$im->{id}", headers => ['If-Match' => 'W/"9", W/"4"'])->{status}, 204,
   'DELETE with a list holding it: 204');
is(scim('PUT', "/scim/v2/Users/$im->{id}", body => user('ifmatch@acme.example.com'),
        headers => ['If-Match' => '*'])->{status}, 404, 'PUT with If-Match: * of a deleted User: 404');

# meta.created and meta.lastModified filter at the millisecond meta shows:
# eq of a value read matches it, gt of it is past it
my $w = scim('POST', '/scim/v2/Users', body => user('when@acme.example.com'))->{json};
(undef, $got) = names(qq{meta.lastModified eq "$w->{meta}{lastModified}" and userName sw "when"});
is($got, 'when@acme.example.com', 'meta.lastModified eq the value read: that User');
(undef, $got) = names(qq{meta.created eq "$w->{meta}{created}" and userName sw "when"});
is($got, 'when@acme.example.com', 'meta.created eq the value read: that User');
(undef, $got) = names(qq{meta.lastModified gt "$w->{meta}{lastModified}" and userName sw "when"});
is($got, '', 'meta.lastModified gt the value read: not that User');
(undef, $got) = names(qq{meta.lastModified ge "$w->{meta}{lastModified}" and userName sw "when"});
is($got, 'when@acme.example.com', '... ge: that User');

# the same userName made at once by another transaction, after the
# check: the check's 409, not a 503
my $racer = fork // die "fork: $!";
if ($racer == 0) {
    pg_sql("BEGIN; WITH u AS (INSERT INTO ent.users (email) VALUES ('racer\@x.example') RETURNING id) "
           . "INSERT INTO ent.scim_users (tenant_id, id, user_name) SELECT t.id, u.id, 'race\@acme.example.com' "
           . "FROM ent.tenants t, u WHERE t.code = 'acme'; SELECT pg_sleep(2); COMMIT;");
    # POSIX::_exit: no END block of the test may run here
    POSIX::_exit(0);
}
# the other transaction holds its row (it sleeps) before the request
ok(wait_until(sub { pg_sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'") > 0 }, 5, 0.05),
   '... the other transaction holds the name');
envelope_ok(scim('POST', '/scim/v2/Users', body => user('race@acme.example.com')), 409, 'uniqueness',
            'POST racing a transaction that makes the same userName');
waitpid($racer, 0);

# a migration that changes a function's result type: the connections'
# prepared statements are out of date (0A000); they are prepared again on
# new connections, and requests are answered again
is(scim('GET', "/scim/v2/Users/$casey->{id}")->{status}, 200, 'a user read (its statement prepared)');
pg_sql("ALTER FUNCTION ent.scim_user_get(uuid, text, text) RENAME TO scim_user_get_v1; "
       . "CREATE FUNCTION ent.scim_user_get(p_tenant uuid, p_id text, p_base text) "
       . "RETURNS TABLE (status bigint, body jsonb) LANGUAGE sql STABLE AS "
       . "\$\$ SELECT status::bigint, body FROM ent.scim_user_get_v1(p_tenant, p_id, p_base) \$\$");
ok(wait_until(sub { scim('GET', "/scim/v2/Users/$casey->{id}")->{status} == 200 }, 5, 0.1),
   "a function's result type changed: answered again, on new connections");
like(nginx_log($n), qr/prepared statements are out of date \(SQLSTATE 0A000\), reconnecting/,
     '... the reconnect logged');
pg_sql("DROP FUNCTION ent.scim_user_get(uuid, text, text); "
       . "ALTER FUNCTION ent.scim_user_get_v1(uuid, text, text) RENAME TO scim_user_get");

check_log($n, 'scim');
check_log($n2, 'scim 2');

done_testing;
