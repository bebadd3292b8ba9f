# SCIM 2.0 Groups: create, get with and without members, list and filter,
# PATCH as Okta and Entra ID send it (members added, removed by filter and
# by value list, renamed with no path), PUT, DELETE, uniqueness, tenant
# isolation, and a group mapped to a role granting it on the next request.
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

my $n = nginx_start(http_config => <<"CONF", config => <<"CONF2");
ent_postgres "\$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:\$TEST_REDIS_PORT;
ent_sso_secret_key $keyfile;
ent_scim_rate 100000;
CONF
ent_tenant on;
ent_tenant_base_domain example.com;
location /scim/v2/ {
    ent_scim on;
}
location / {
    ent_sso required;
    proxy_pass http://127.0.0.1:$echo;
}
location /admin/ {
    ent_sso required;
    ent_authz_roles admin;
    proxy_pass http://127.0.0.1:$echo;
}
CONF2
my $port = nginx_port($n);

my $tok = `$entctl scim-token create acme --name entra 2>/dev/null`;
chomp $tok;
my $gtok = `$entctl scim-token create globex --name okta 2>/dev/null`;
chomp $gtok;

sub scim {
    my ($method, $path, %o) = @_;
    my $t = $o{tenant} || 'acme';
    my @h = ("Host: $t.example.com:$port", 'Authorization: Bearer ' . ($o{token} // $tok));
    push @h, 'Content-Type: application/scim+json' if defined $o{body};
    my @extra = @{ $o{headers} || [] };
    while (my ($k, $v) = splice @extra, 0, 2) {
        push @h, "$k: $v";
    }
    my $body = ref $o{body} ? json_encode($o{body}) : $o{body};
    my $r = http($port, "$method $path", headers => \@h, body => $body);
    $r->{json} = eval { json_decode($r->{body}) } if length($r->{body} // '');
    return $r;
}

my $U = 'urn:ietf:params:scim:schemas:core:2.0:User';
my $G = 'urn:ietf:params:scim:schemas:core:2.0:Group';
my $P = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
my %uid;
for my $u (qw(ann ben cid dot)) {
    my $r = scim('POST', '/scim/v2/Users', body => { schemas => [$U], userName => "$u\@acme.example.com",
                                                     emails => [{ value => "$u\@acme.example.com" }] });
    $uid{$u} = $r->{json}{id} or die "user $u: $r->{status} $r->{body}";
}
my $other = scim('POST', '/scim/v2/Users', tenant => 'globex', token => $gtok,
                 body => { schemas => [$U], userName => 'zed@globex.example.com' })->{json}{id};

# --- create, get

my $r = scim('POST', '/scim/v2/Groups', body => { schemas => [$G], displayName => 'Engineering',
                                                  externalId => 'eng-1',
                                                  members => [{ value => $uid{ann} }, { value => $uid{ben} }] });
is($r->{status}, 201, 'POST /Groups: 201');
my $g = $r->{json};
is($g->{meta}{resourceType}, 'Group', '... a Group');
is(EntTest::header($r, 'location'), "http://acme.example.com:$port/scim/v2/Groups/$g->{id}", '... Location');
is_deeply([sort map { $_->{value} } @{ $g->{members} }], [sort $uid{ann}, $uid{ben}], '... with its members');
is((grep { $_->{value} eq $uid{ann} } @{ $g->{members} })[0]{display}, 'ann@acme.example.com',
   '... each with its display');
$r = scim('POST', '/scim/v2/Groups', body => { schemas => [$G], displayName => 'ENGINEERING' });
is($r->{status}, 409, 'a displayName differing only in case: 409');
is($r->{json}{scimType}, 'uniqueness', '... uniqueness');
$r = scim('POST', '/scim/v2/Groups', body => { schemas => [$G], displayName => 'X', members => [{ value => $other }] });
is($r->{status}, 400, "another tenant's user as a member: 400");
is(scim('GET', '/scim/v2/Groups?filter=displayName%20eq%20%22X%22')->{json}{totalResults}, 0,
   '... and nothing of it stays');
$r = scim('GET', "/scim/v2/Groups/$g->{id}?excludedAttributes=members");
is($r->{status}, 200, 'GET excludedAttributes=members: 200');
ok(!exists $r->{json}{members}, '... no members');
$r = scim('GET', "/scim/v2/Groups/$g->{id}", tenant => 'globex', token => $gtok);
is($r->{status}, 404, "another tenant's group: 404");

$r = scim('GET', "/scim/v2/Users/$uid{ann}");
is_deeply([map { $_->{display} } @{ $r->{json}{groups} || [] }], ['Engineering'],
          "a User's groups (read-only)");
is($r->{json}{groups}[0]{value}, $g->{id}, '... with the group\'s id');

# attribute names in any case (RFC 7643 2.1): created with its members
$r = scim('POST', '/scim/v2/Groups', body => { Schemas => [$G], DisplayName => 'Cased',
                                               MEMBERS => [{ VALUE => $uid{ann} }] });
is($r->{status}, 201, 'POST with "DisplayName" and "MEMBERS": 201');
is_deeply([map { $_->{value} } @{ $r->{json}{members} || [] }], [$uid{ann}], '... with its member');
is(scim('DELETE', "/scim/v2/Groups/$r->{json}{id}")->{status}, 204, '... (deleted again)');

# --- list, filter

scim('POST', '/scim/v2/Groups', body => { schemas => [$G], displayName => 'Admins' });
$r = scim('GET', '/scim/v2/Groups?filter=' . EntSAML::pct_escape(qq{members[value eq "$uid{ann}"]}) . '&excludedAttributes=members');
is(join(',', map { $_->{displayName} } @{ $r->{json}{Resources} }), 'Engineering', 'filter by a member');
$r = scim('GET', '/scim/v2/Groups?sortBy=displayName&attributes=displayName');
is(join(',', map { $_->{displayName} } @{ $r->{json}{Resources} }), 'Admins,Engineering', 'list, sorted');

# a filter that is there is compiled or refused, never dropped for all rows
my $SR = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
for my $q ('filter=', 'filter=displayName%20pr&filter=displayName%20pr') {
    $r = scim('GET', "/scim/v2/Groups?$q");
    is($r->{status} . ' ' . ($r->{json}{scimType} // ''), '400 invalidFilter', "GET /Groups?$q: 400 invalidFilter");
}
$r = scim('POST', '/scim/v2/Groups/.search', body => { schemas => [$SR], filter => 5 });
is($r->{status} . ' ' . ($r->{json}{scimType} // ''), '400 invalidFilter', '.search with a filter of 5: 400 invalidFilter');
$r = scim('POST', '/scim/v2/Groups/.search', body => { schemas => [$SR], Filter => 'displayName eq "Admins"',
                                                      excludedAttributes => 'members' });
is(join(',', $r->{status}, map { $_->{displayName} } @{ $r->{json}{Resources} || [] }), '200,Admins',
   '.search with "Filter": the filter read');

# --- PATCH: Okta and Entra

my ($admins) = map { $_->{id} } grep { $_->{displayName} eq 'Admins' } @{ $r->{json}{Resources} };
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'add', path => 'members', value => [{ value => $uid{cid} }] } ] });
is($r->{status}, 200, 'PATCH add members (Okta): 200');
is(scalar @{ $r->{json}{members} }, 3, '... three members');
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'Add', path => 'members', value => { value => $uid{dot} } } ] });
is(scalar @{ $r->{json}{members} }, 4, 'PATCH "Add" of one member not in an array (Entra): four');
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'remove', path => qq{members[value eq "$uid{ann}"]} } ] });
is(scalar @{ $r->{json}{members} }, 3, 'PATCH remove by a filter path: three');
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'Remove', path => 'members', value => [{ value => $uid{ben} }, { value => $uid{cid} }] } ] });
is_deeply([map { $_->{value} } @{ $r->{json}{members} }], [$uid{dot}], 'PATCH remove by a value list (Entra): one left');
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'replace', value => { id => $g->{id}, displayName => 'Eng' } } ] });
is($r->{json}{displayName}, 'Eng', 'PATCH rename with no path and the same id (Okta)');
is(EntTest::header($r, 'etag'), 'W/"6"', '... each PATCH a new version');
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'replace', value => { id => $admins, displayName => 'Eng2' } } ] });
is($r->{status} . ' ' . ($r->{json}{scimType} // ''), '400 mutability',
   'PATCH with another id among the values: 400 mutability');
# names and the URN in any case, "path": null as no path, as for Users
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [lc $P], operations => [
    { OP => 'replace', path => undef, Value => { displayName => 'Eng3' } } ] });
is(join(' ', $r->{status}, $r->{json}{displayName} // ''), '200 Eng3',
   'PATCH with "operations", "OP", "path": null and a lower-case URN: 200');
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'replace', path => 'displayName', PATH => 'displayName', value => 'Eng' } ] });
is($r->{status} . ' ' . ($r->{json}{scimType} // ''), '400 invalidSyntax',
   'PATCH with "path" and "PATH": 400 invalidSyntax');
# operations apply in their order (RFC 7644 3.5.2)
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'add', path => 'members', value => [{ value => $uid{ann} }] },
    { op => 'remove', path => qq{members[value eq "$uid{ann}"]} } ] });
is_deeply([map { $_->{value} } @{ $r->{json}{members} }], [$uid{dot}], 'PATCH add then remove of one member: not a member');
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'remove', path => 'members', value => [{ value => $uid{dot} }] },
    { op => 'add', path => 'members', value => [{ value => $uid{dot} }] } ] });
is_deeply([map { $_->{value} } @{ $r->{json}{members} }], [$uid{dot}], 'PATCH remove then add: a member');
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'add', path => 'members', value => [{ value => $uid{ben} }] },
    { op => 'remove', path => 'members' },
    { op => 'add', path => 'members', value => [{ value => $uid{dot} }] } ] });
is_deeply([map { $_->{value} } @{ $r->{json}{members} }], [$uid{dot}], 'PATCH add, remove all, add: only the last');
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'add', path => 'members', value => [{ value => $uid{ann} }] },
    { op => 'add', path => 'members', value => [{ value => 'not-a-user' }] } ] });
is($r->{status}, 400, 'PATCH with a bad second operation: 400');
$r = scim('GET', "/scim/v2/Groups/$g->{id}");
is(scalar @{ $r->{json}{members} }, 1, '... and the first did not happen (atomic)');
for my $bad ([{ op => 'move', path => 'members' }, 'an unknown op'],
             [{ op => 'replace', path => 'members[', value => [] }, 'a malformed path'],
             [{ op => 'replace', path => 'owner', value => 'x' }, 'an unknown attribute'],
             [{ op => 'remove', path => 'displayName' }, 'removing the displayName'],
             [{ op => 'remove', path => 'members', value => [$uid{dot}] }, 'removing members by bare ids'],
             [{ op => 'remove', path => 'members', value => $uid{dot} }, 'removing a member by a string'],
             [{ op => 'add', path => 'members', value => [{ display => 'x' }] }, 'adding a member without a value']) {
    $r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [$bad->[0]] });
    is($r->{status}, 400, "PATCH $bad->[1]: 400");
}
$r = scim('GET', "/scim/v2/Groups/$g->{id}");
is_deeply([map { $_->{value} } @{ $r->{json}{members} }], [$uid{dot}],
          '... none of them changed the members');
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { Operations => [] });
is($r->{json}{scimType}, 'invalidSyntax', 'PATCH without the PatchOp schema: invalidSyntax');
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'add', path => 'members', value => [{ value => $uid{ann} }] } ] }, headers => ['If-Match' => 'W/"1"']);
is($r->{status}, 412, 'PATCH with a stale If-Match: 412');

# --- PUT, DELETE

$r = scim('PUT', "/scim/v2/Groups/$g->{id}", body => { schemas => [$G], displayName => 'Engineering',
                                                       members => [{ value => $uid{ann} }, { value => $uid{cid} }] });
is($r->{status}, 200, 'PUT: 200');
is_deeply([sort map { $_->{value} } @{ $r->{json}{members} }], [sort $uid{ann}, $uid{cid}], '... the members replaced');
# attribute names are case-insensitive (RFC 7643 2.1)
$r = scim('PUT', "/scim/v2/Groups/$g->{id}", body => { schemas => [$G], DisplayName => 'Engineering',
                                                       Members => [{ Value => $uid{ann} }, { value => $uid{cid} }] });
is($r->{status}, 200, 'PUT with "DisplayName" and "Members": 200');
is_deeply([sort map { $_->{value} } @{ $r->{json}{members} }], [sort $uid{ann}, $uid{cid}],
          '... the members as given, not wiped');
$r = scim('PUT', "/scim/v2/Groups/$g->{id}", body => { schemas => [$G], displayName => 'Engineering',
                                                       members => [], Members => [] });
is($r->{status} . ' ' . ($r->{json}{scimType} // ''), '400 invalidValue',
   'PUT with "members" and "Members": 400 invalidValue');
$r = scim('PUT', "/scim/v2/Groups/$g->{id}", body => { schemas => [$G], displayName => 'Engineering',
                                                       members => { value => $uid{ann} } });
is($r->{status}, 400, 'PUT with members not a list: 400');
is($r->{json}{scimType}, 'invalidValue', '... invalidValue');
$r = scim('GET', "/scim/v2/Groups/$g->{id}");
is(scalar @{ $r->{json}{members} }, 2, '... and the members are kept');
$r = scim('PUT', "/scim/v2/Groups/$g->{id}", body => { schemas => [$G], displayName => 'Admins' });
is($r->{status}, 409, "PUT taking another group's name: 409");

# If-Match: "*" and lists (RFC 7232 3.1)
my $v = EntTest::header(scim('GET', "/scim/v2/Groups/$g->{id}"), 'etag');
my ($vn) = $v =~ /(\d+)/;
$r = scim('PUT', "/scim/v2/Groups/$g->{id}", body => { schemas => [$G], displayName => 'Engineering',
                                                       members => [{ value => $uid{ann} }, { value => $uid{cid} }] },
          headers => ['If-Match' => '*']);
is($r->{status} . ' ' . (EntTest::header($r, 'etag') // ''), '200 W/"' . ($vn + 1) . '"', 'PUT with If-Match: *: 200');
$r = scim('PATCH', "/scim/v2/Groups/$g->{id}", body => { schemas => [$P], Operations => [
    { op => 'replace', path => 'externalId', value => 'eng-2' } ] },
          headers => ['If-Match' => 'W/"1", W/"' . ($vn + 1) . '"']);
is($r->{status}, 200, 'PATCH with a list holding the current ETag: 200');
$r = scim('PUT', "/scim/v2/Groups/$g->{id}", body => { schemas => [$G], displayName => 'Engineering',
                                                       members => [{ value => $uid{ann} }, { value => $uid{cid} }] },
          headers => ['If-Match' => 'W/"1", W/"' . ($vn + 1) . '"']);
is($r->{status}, 412, 'PUT with a list without it: 412');
is(scim('DELETE', "/scim/v2/Groups/$g->{id}", headers => ['If-Match' => 'W/"1",W/"2"'])->{status}, 412,
   'DELETE with a list without it: 412');
$r = scim('PUT', "/scim/v2/Groups/$g->{id}", body => { schemas => [$G], displayName => 'Engineering' },
          headers => ['If-Match' => '"abc"']);
is($r->{status} . ' ' . ($r->{json}{status} // ''), '412 412', 'PUT with If-Match of a tag not ours: one 412');

# --- a group mapped to a role: members hold it at once

pg_sql("INSERT INTO ent.group_role_mappings (tenant_id, idp_group, role) "
       . "SELECT id, 'Admins', 'admin' FROM ent.tenants WHERE code = 'acme'");
my $idp = saml_keypair($dir, 'idp');
system("$entctl sso saml acme --entity-id https://idp.example.org/saml --sso-url https://idp.example.org/sso --cert-file $idp->{crt} --unsolicited on --domains acme.example.com >/dev/null") == 0 or die;
system("$entctl sso domain add acme acme.example.com --verified >/dev/null") == 0 or die;
sleep 1.2;
my $b = EntOP::Browser->new(resolve => { "acme.example.com:$port" => "127.0.0.1:$port" });
my $base = "http://acme.example.com:$port";
$r = saml_post($b, "$base/_ent/saml/acs", saml_response(
    idp => $idp, issuer => 'https://idp.example.org/saml', acs => "$base/_ent/saml/acs",
    audience => "$base/_ent/saml/metadata", rid => undef, name_id => 'dot@acme.example.com',
    attrs => [ email => ['dot@acme.example.com'] ]), '/');
is($r->{status}, 302, 'dot signs in');
is($b->get("$base/admin/")->{status}, 403, '... not an admin');
$r = scim('PATCH', "/scim/v2/Groups/$admins", body => { schemas => [$P], Operations => [
    { op => 'add', path => 'members', value => [{ value => $uid{dot} }] } ] });
is($r->{status}, 200, 'dot added to the SCIM group Admins (mapped to admin)');
ok(wait_until(sub { $b->get("$base/admin/")->{status} == 200 }, 3), '... admin on the next request');
scim('PATCH', "/scim/v2/Groups/$admins", body => { schemas => [$P], Operations => [
    { op => 'remove', path => qq{members[value eq "$uid{dot}"]} } ] });
ok(wait_until(sub { $b->get("$base/admin/")->{status} == 403 }, 3), '... removed: not any more');

# a deleted User leaves its groups: not listed, not matched, and its roles
# do not come back when the person does (a JIT login)
scim('PATCH', "/scim/v2/Groups/$admins", body => { schemas => [$P], Operations => [
    { op => 'add', path => 'members', value => [{ value => $uid{dot} }] } ] });
ok(wait_until(sub { $b->get("$base/admin/")->{status} == 200 }, 3), 'dot in Admins again: admin');
my $etag = EntTest::header(scim('GET', "/scim/v2/Groups/$admins"), 'etag');
is(scim('DELETE', "/scim/v2/Users/$uid{dot}")->{status}, 204, 'dot deleted');
$r = scim('GET', "/scim/v2/Groups/$admins");
is_deeply($r->{json}{members}, [], '... Admins has no members');
isnt(EntTest::header($r, 'etag'), $etag, '... a new version of it');
is($r->{json}{meta}{version}, EntTest::header($r, 'etag'), '... its meta.version');
$r = scim('GET', '/scim/v2/Groups?filter=' . EntSAML::pct_escape(qq{members[value eq "$uid{dot}"]}));
is($r->{json}{totalResults}, 0, '... no group has dot as a member');
is(pg_sql("SELECT count(*) FROM ent.scim_group_members WHERE user_id = '$uid{dot}'"), 0,
   '... the membership rows are gone');
my $b2 = EntOP::Browser->new(resolve => { "acme.example.com:$port" => "127.0.0.1:$port" });
$r = saml_post($b2, "$base/_ent/saml/acs", saml_response(
    idp => $idp, issuer => 'https://idp.example.org/saml', acs => "$base/_ent/saml/acs",
    audience => "$base/_ent/saml/metadata", rid => undef, name_id => 'dot@acme.example.com',
    attrs => [ email => ['dot@acme.example.com'] ]), '/');
is($r->{status}, 302, 'dot signs in again (a JIT member)');
is($b2->get("$base/")->{status}, 200, '... a member');
is($b2->get("$base/admin/")->{status}, 403, '... not an admin: the old group is not theirs');

# the same displayName made at once by another transaction, after the
# check: the check's 409, not a 503
for my $case (['POST', '/scim/v2/Groups', { schemas => [$G], displayName => 'Race1' }, 'Race1'],
              ['PATCH', "/scim/v2/Groups/$admins", { schemas => [$P], Operations => [
                   { op => 'replace', path => 'displayName', value => 'Race2' } ] }, 'Race2']) {
    my $racer = fork // die "fork: $!";
    if ($racer == 0) {
        pg_sql("BEGIN; INSERT INTO ent.scim_groups (tenant_id, display_name) "
               . "SELECT id, '$case->[3]' FROM ent.tenants WHERE code = 'acme'; SELECT pg_sleep(2); COMMIT;");
        # POSIX::_exit: no END block of the test may run here
        POSIX::_exit(0);
    }
    # the other transaction holds its row (it sleeps) before the request
    ok(wait_until(sub { pg_sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'") > 0 }, 5, 0.05),
       '... the other transaction holds the name');
    $r = scim($case->[0], $case->[1], body => $case->[2]);
    is($r->{status} . ' ' . ($r->{json}{scimType} // ''), '409 uniqueness',
       "$case->[0] racing a transaction that makes the same displayName: 409 uniqueness");
    waitpid($racer, 0);
}

$r = scim('DELETE', "/scim/v2/Groups/$g->{id}");
is($r->{status}, 204, 'DELETE: 204');
is(scim('GET', "/scim/v2/Groups/$g->{id}")->{status}, 404, '... then 404');
is(scim('DELETE', "/scim/v2/Groups/$g->{id}")->{status}, 404, '... DELETE twice: 404');

# --- the per-token rate, fleet-wide in Redis

my $n3 = nginx_start(http_config => <<"CONF", config => <<'CONF2');
ent_postgres "\$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:\$TEST_REDIS_PORT;
ent_scim_rate 3;
ent_scim_tokens_zone scimtok;
CONF
ent_tenant on;
ent_tenant_base_domain example.com;
location /scim/v2/ { ent_scim on; }
location = /ent_status { ent_status; }
CONF2
my $p3 = nginx_port($n3);
my $rtok = `$entctl scim-token create acme --name rate 2>/dev/null`;
chomp $rtok;
my @st;
for (1 .. 5) {
    my $x = http($p3, 'GET /scim/v2/ServiceProviderConfig',
                 headers => ["Host: acme.example.com:$p3", "Authorization: Bearer $rtok"]);
    push @st, $x->{status};
    if ($x->{status} == 429) {
        like(EntTest::header($x, 'retry-after') // '', qr/^\d+$/, '429 with Retry-After');
        like($x->{body}, qr/urn:ietf:params:scim:api:messages:2.0:Error/, '... in the SCIM envelope');
        last;
    }
}
is(join(',', @st), '200,200,200,429', 'ent_scim_rate 3: the fourth request in a minute is refused')
    unless time % 60 > 57;

check_log($n, 'scim groups');
check_log($n3, 'scim rate');
like(http($p3, '/ent_status', headers => ["Host: acme.example.com:$p3"])->{body} // '', qr/"scimtok"/,
     'ent_scim_tokens_zone: the tokens are cached in the zone named');

done_testing;
