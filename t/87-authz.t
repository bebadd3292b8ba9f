# Authorization at the edge: rank gates, explicit-role gates, permissions
# (any/all), attribute conditions, method rules, custom roles and catalog
# changes live, group mappings from SAML attributes, parent/child
# inheritance, suspension, a demotion seen by a second nginx within a
# second, and break-glass access (request, approve, use, revoke, expire).
# Sessions come from SAML logins (xmlsec1-signed, IdP-initiated).
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
my $idp = saml_keypair($dir, 'idp');
my $IDP = 'https://idp.example.org/saml';

pg_sql("INSERT INTO ent.tenants (code, display_name) VALUES ('corp', 'Corp')");
pg_sql("INSERT INTO ent.tenants (code, display_name, parent_id, inherit_roles) "
       . "SELECT 'sub', 'Sub', id, true FROM ent.tenants WHERE code = 'corp'");
pg_sql("INSERT INTO ent.tenants (code, display_name, parent_id, inherit_roles) "
       . "SELECT 'other', 'Other', id, false FROM ent.tenants WHERE code = 'corp'");

my $locations = <<"CONF";
ent_tenant on;
ent_tenant_base_domain example.com;
location / {
    ent_sso required;
    proxy_pass http://127.0.0.1:$echo;
}
location /admin/ {
    ent_sso required;
    ent_authz_roles owner admin;
    proxy_pass http://127.0.0.1:$echo;
}
location /managers/ {
    ent_sso required;
    ent_authz_role_min manager;
    proxy_pass http://127.0.0.1:$echo;
}
location /opt/ {
    ent_sso optional;
    ent_authz_role_min manager;
    proxy_pass http://127.0.0.1:$echo;
}
location /opt-open/ {
    ent_sso optional;
    proxy_pass http://127.0.0.1:$echo;
}
location = /opt-redirect {
    ent_sso optional;
    try_files /nothing/here /opt/x;
}
location /noauthz/ {
    ent_sso required;
    ent_authz off;
    proxy_pass http://127.0.0.1:$echo;
}
location /billing/ {
    ent_sso required;
    ent_authz_permission billing:write;
    proxy_pass http://127.0.0.1:$echo;
}
location /reports/ {
    ent_sso required;
    ent_authz_permission all reports:read reports:export;
    proxy_pass http://127.0.0.1:$echo;
}
location /eng/ {
    ent_sso required;
    ent_authz_attr department = engineering;
    ent_authz_attr email ~ "\@corp\\.example\\.com\$";
    proxy_pass http://127.0.0.1:$echo;
}
location /finance/ {
    ent_sso required;
    ent_authz_attr groups contains finance;
    proxy_pass http://127.0.0.1:$echo;
}
location /via/ {
    ent_sso required;
    try_files /nothing/here \@adminonly;
}
location \@adminonly {
    ent_sso required;
    ent_authz_roles owner admin;
    proxy_pass http://127.0.0.1:$echo;
}
location /repo/ {
    ent_sso required;
    ent_authz_permission repositories:read methods=read;
    ent_authz_permission repositories:write methods=write;
    add_header X-Perms \$ent_permissions always;
    add_header X-Roles \$ent_roles always;
    proxy_pass http://127.0.0.1:$echo;
}
CONF
my $http = <<"CONF";
ent_postgres "\$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:\$TEST_REDIS_PORT;
ent_sso_secret_key $keyfile;
CONF
my $n = nginx_start(http_config => $http, config => $locations);
my $n2 = nginx_start(http_config => $http, config => $locations);
my $port = nginx_port($n);
my $port2 = nginx_port($n2);

for my $t (qw(corp sub other)) {
    my $out = `$entctl sso saml $t --entity-id $IDP --sso-url https://idp.example.org/sso --cert-file $idp->{crt} --unsolicited on --domains corp.example.com,sub.example.com,other.example.com --attr-map department=department 2>&1`;
    die "entctl: $out" if $?;
    for my $d (qw(corp sub other)) {
        system("$entctl sso domain add $t $d.example.com --verified >/dev/null") == 0 or die;
    }
}
sleep 1.2;

sub browser {
    return EntOP::Browser->new(
        resolve => { map { ("$_.example.com:$port" => "127.0.0.1:$port",
                            "$_.example.com:$port2" => "127.0.0.1:$port2") }
                     qw(corp sub other) },
        headers => ['Accept' => 'application/json']);
}

# a SAML login of $user into tenant $t: the browser
sub login {
    my ($t, $user, %o) = @_;
    my $base = "http://$t.example.com:$port";
    my $b = browser();
    my $email = "$user\@$t.example.com";
    $email = $o{email} if $o{email};
    my $r = saml_post($b, "$base/_ent/saml/acs", saml_response(
        idp => $idp, issuer => $IDP, acs => "$base/_ent/saml/acs",
        audience => "$base/_ent/saml/metadata", rid => undef,
        name_id => $email,
        attrs => [ email => [$email], name => [ucfirst $user],
                   groups => $o{groups} || [],
                   department => [$o{department} || 'sales'] ]), '/');
    die "login $user\@$t: $r->{status} $r->{body}" unless $r->{status} == 302;
    return $b;
}

sub get {
    my ($b, $t, $path, %o) = @_;
    my $p = $o{port} || $port;
    return $b->request($o{method} || 'GET', "http://$t.example.com:$p$path",
                       [], $o{method} && $o{method} ne 'GET' ? '' : undef);
}

sub status { return get(@_)->{status} }

sub uid { return pg_sql("SELECT id FROM ent.users WHERE email = '$_[0]'") }

sub role {
    my ($t, $email, $role, $status) = @_;
    pg_sql("UPDATE ent.memberships SET role = '$role'"
           . ($status ? ", status = '$status'" : '')
           . " WHERE user_id = (SELECT id FROM ent.users WHERE email = '$email')"
           . " AND tenant_id = (SELECT id FROM ent.tenants WHERE code = '$t')");
}

sub events { return pg_sql("SELECT count(*) FROM ent.events WHERE kind = '$_[0]' AND outcome = '$_[1]'") }

# --- rank gates, live role changes

my $alice = login('corp', 'alice', department => 'engineering');
my $r = get($alice, 'corp', '/x');
is($r->{status}, 200, 'a JIT member: signed in');
is(json_decode($r->{body})->{identity}{'x-ent-roles'}, 'member', '... X-Ent-Roles: member');
like(json_decode($r->{body})->{identity}{'x-ent-permissions'}, qr/^members:read,projects:read,projects:write,reports:read,repositories:read,repositories:write$/,
     '... X-Ent-Permissions: the member set');
my $before = events('authz', 'failure');
$r = get($alice, 'corp', '/managers/');
is($r->{status}, 403, 'rank gate: a member at a manager gate: 403');
is(json_decode($r->{body})->{missing}, 'the role manager', '... naming what is missing');
ok(wait_until(sub { events('authz', 'failure') == $before + 1 }, 3),
   '... an audit event of the denial');
is(pg_sql("SELECT count(*) FROM ent.events WHERE kind = 'authz' AND "
          . "outcome = 'failure' AND reason LIKE '%the role manager%'") >= 1
   ? 1 : 0, 1, '... naming what was missing');
is(status($alice, 'corp', '/via/x'), 403,
   "an internal redirect (try_files) to a location of other rules: its rules apply");
role('corp', 'alice@corp.example.com', 'manager');
ok(wait_until(sub { status($alice, 'corp', '/managers/') == 200 }, 3),
   '... promoted to manager: 200 on the next request, no new login');
is(status($alice, 'corp', '/admin/'), 403, 'explicit gate owner/admin: a manager: 403');
role('corp', 'alice@corp.example.com', 'admin');
ok(wait_until(sub { status($alice, 'corp', '/admin/') == 200 }, 3), '... an admin: 200');
is(status($alice, 'corp', '/via/x'), 200, '... and through the internal redirect');

# --- a custom role of rank 70: passes rank gates, not an owner/admin gate

pg_sql("INSERT INTO ent.roles (tenant_id, name, rank, description) "
       . "SELECT id, 'billing_admin', 70, 'Billing Admin' FROM ent.tenants WHERE code = 'corp'");
my $carol = login('corp', 'carol');
role('corp', 'carol@corp.example.com', 'billing_admin');
ok(wait_until(sub { status($carol, 'corp', '/managers/') == 200 }, 3),
   'custom role, rank 70: passes the manager rank gate');
is(status($carol, 'corp', '/admin/'), 403, '... but not the owner/admin gate');
is(status($carol, 'corp', '/billing/'), 403, '... nor billing:write before it has it');
pg_sql("INSERT INTO ent.role_permissions (tenant_id, role, permission) "
       . "SELECT id, 'billing_admin', 'billing:*' FROM ent.tenants WHERE code = 'corp'");
ok(wait_until(sub { status($carol, 'corp', '/billing/') == 200 }, 3),
   'billing:* granted to the custom role: 200, live');
$r = get($carol, 'corp', '/reports/x');
is($r->{status}, 403, 'permission all: not both of two: 403');
is(json_decode($r->{body})->{missing}, 'all of the permissions reports:read, reports:export',
   '... naming them');
pg_sql("INSERT INTO ent.permissions (name, description) VALUES ('invoices:approve', 'Approve invoices')");
pg_sql("INSERT INTO ent.role_permissions (tenant_id, role, permission) "
       . "SELECT id, 'billing_admin', 'reports:*' FROM ent.tenants WHERE code = 'corp'");
ok(wait_until(sub { status($carol, 'corp', '/reports/x') == 200 }, 3),
   '... both, once granted: 200');
ok(wait_until(sub { (json_decode(get($carol, 'corp', '/x')->{body})->{identity}{'x-ent-permissions'} // '') =~ /billing:write/ }, 3),
   'the catalog and role changes show in X-Ent-Permissions');
is(json_decode(get($alice, 'corp', '/x')->{body})->{identity}{'x-ent-permissions'} =~ /invoices:approve/ ? 1 : 0,
   0, '... a new catalog permission is not an admin\'s (admin has explicit areas)');
pg_sql("UPDATE ent.roles SET rank = 20 WHERE name = 'billing_admin'");
ok(wait_until(sub { status($carol, 'corp', '/managers/') == 403 }, 3),
   'the custom role\'s rank lowered: the manager gate closes, live');

# --- attributes

is(status($alice, 'corp', '/eng/'), 200, 'attribute: department = engineering, email ~ regex: 200');
is(status($carol, 'corp', '/eng/'), 403, '... department sales: 403');
is(json_decode(get($carol, 'corp', '/eng/')->{body})->{missing}, 'the attribute department',
   '... naming the attribute');
my $fin = login('corp', 'frank', groups => ['staff', 'finance']);
is(status($fin, 'corp', '/finance/'), 200, 'groups contains finance: 200');
is(status($alice, 'corp', '/finance/'), 403, '... without it: 403');

# --- method rules

my $vic = login('corp', 'vic');
role('corp', 'vic@corp.example.com', 'viewer');
ok(wait_until(sub { status($vic, 'corp', '/repo/') == 200 }, 3), 'a viewer: GET /repo/: 200');
is(status($vic, 'corp', '/repo/', method => 'POST'), 403, '... POST /repo/: 403 (repositories:write)');
is(status($alice, 'corp', '/repo/', method => 'POST'), 200, 'an admin: POST /repo/: 200');
for my $m (qw(MOVE PROPPATCH FROB)) {
    is(status($vic, 'corp', '/repo/', method => $m), 403,
       "... $m /repo/ (a method neither read nor named): 403, a write");
}
like(get($vic, 'corp', '/repo/')->{headers}{'x-perms'}[0] // '', qr/repositories:read/,
     '$ent_permissions');
is(get($vic, 'corp', '/repo/')->{headers}{'x-roles'}[0], 'viewer',
   '$ent_roles: the role now (vic signed in a member, is a viewer)');

# --- group mappings from SAML attributes

pg_sql("INSERT INTO ent.group_role_mappings (tenant_id, idp_group, role) "
       . "SELECT id, 'ops-admins', 'admin' FROM ent.tenants WHERE code = 'corp'");
my $ops = login('corp', 'olga', groups => ['ops-admins']);
is(status($ops, 'corp', '/admin/'), 200, 'a group mapping (SAML groups attribute) grants admin');
pg_sql("DELETE FROM ent.group_role_mappings WHERE idp_group = 'ops-admins'");
ok(wait_until(sub { status($ops, 'corp', '/admin/') == 403 }, 3), '... unmapped: 403, live');

# --- parent and children

# the corporate admin's identity, linked into the subsidiaries (as an
# admin or SCIM would): one user across the tenants
for my $t (qw(sub other)) {
    pg_sql("INSERT INTO ent.user_identities (issuer, subject, user_id, tenant_id) "
           . "SELECT '$IDP', 'alice\@corp.example.com', u.id, t.id FROM ent.users u, ent.tenants t "
           . "WHERE u.email = 'alice\@corp.example.com' AND t.code = '$t'");
}
my $alice_sub = login('sub', 'alice', email => 'alice@corp.example.com');
is(status($alice_sub, 'sub', '/admin/'), 200,
   'a corp admin in "sub", which inherits roles: 200');
is(json_decode(get($alice_sub, 'sub', '/x')->{body})->{identity}{'x-ent-roles'}, 'admin,member',
   '... the inherited role among hers');
my $alice_other = login('other', 'alice', email => 'alice@corp.example.com');
is(status($alice_other, 'other', '/admin/'), 403,
   '... in "other", which does not inherit: 403');
my $bob = login('sub', 'bob');
role('sub', 'bob@sub.example.com', 'admin');
ok(wait_until(sub { status($bob, 'sub', '/admin/') == 200 }, 3), 'bob, admin of "sub": 200 there');
my $bob_corp = login('corp', 'bob', email => 'bob@sub.example.com');
is(status($bob_corp, 'corp', '/admin/'), 403, '... a child admin in the parent: 403');

# --- "ent_sso optional" with rules: no anonymous request through them
is(http($n, '/opt-open/', host => 'corp.example.com')->{status}, 200,
   'optional, no rules: anonymous passes');
$r = http($n, '/opt/', host => 'corp.example.com',
          headers => ['Accept: application/json']);
is($r->{status}, 401, 'optional with a rule: anonymous is asked to sign in');
is(status($alice, 'corp', '/opt/'), 200, '... alice, signed in, an admin: 200');
$r = http($n, '/opt-redirect', host => 'corp.example.com',
          headers => ['Accept: application/json']);
is($r->{status}, 401, '... anonymous in an optional location without rules, '
                      . 'redirected (try_files) to one with: asked to sign in');

# --- suspension, and a demotion seen by the second nginx

is(status($alice, 'corp', '/admin/', port => $port2), 200,
   'the second nginx: the same session, admin: 200');
role('corp', 'alice@corp.example.com', 'member');
ok(wait_until(sub { status($alice, 'corp', '/admin/', port => $port2) == 403 },
              $ENV{ENT_SANITIZE} ? 3 : 1 * $EntTest::SLOW),
   '... demoted: the second nginx refuses within a second');
role('corp', 'carol@corp.example.com', 'billing_admin', 'suspended');
ok(wait_until(sub { status($carol, 'corp', '/x') == 403 }, 3),
   'a suspended membership: 403 everywhere');
is(json_decode(get($carol, 'corp', '/x')->{body})->{error}, 'suspended', '... saying so');

# a change the nodes were not told of (no NOTIFY: triggers off), then the
# listener's connection cut, as in a failover: the standings the workers
# keep in memory go with the zone's entries once it is back
is(status($alice, 'corp', '/x'), 200, 'alice, a member: 200');
pg_sql("BEGIN; ALTER TABLE ent.memberships DISABLE TRIGGER USER; "
       . "UPDATE ent.memberships SET status = 'suspended' WHERE user_id = "
       . "(SELECT id FROM ent.users WHERE email = 'alice\@corp.example.com') "
       . "AND tenant_id = (SELECT id FROM ent.tenants WHERE code = 'corp'); "
       . "ALTER TABLE ent.memberships ENABLE TRIGGER USER; COMMIT");
select(undef, undef, undef, 0.3);
is(status($alice, 'corp', '/x'), 200,
   '... suspended without a notification: still 200 (nothing says so)');
pg_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
       . "WHERE query LIKE 'LISTEN%'", 'postgres');
ok(wait_until(sub { status($alice, 'corp', '/x') == 403
                    && status($alice, 'corp', '/x', port => $port2) == 403 }, 3),
   '... the listeners reconnect: 403 on both nginx, the kept standings gone');
role('corp', 'alice@corp.example.com', 'member', 'active');
ok(wait_until(sub { status($alice, 'corp', '/x') == 200 }, 3), '... active again: 200');

# --- break-glass

{
    system("$entctl platform-admin add pat\@platform.example --name Pat >/dev/null") == 0 or die;
    system("$entctl platform-admin add quinn\@platform.example --name Quinn >/dev/null") == 0 or die;
    my $grant = `$entctl breakglass request corp --admin pat\@platform.example --reason 'ticket 42' --justification 'customer outage' --role admin --minutes 30 2>&1`;
    chomp $grant;
    like($grant, qr/^[0-9a-f-]{36}$/, 'break-glass: requested');
    my $out = `$entctl breakglass approve $grant --admin pat\@platform.example 2>&1`;
    isnt($?, 0, '... self-approval refused');
    $out = `$entctl breakglass link $grant --admin pat\@platform.example --key-file $keyfile --host corp.example.com:$port 2>&1`;
    isnt($?, 0, '... no link before approval');
    $out = `$entctl breakglass approve $grant --admin quinn\@platform.example 2>&1`;
    is($?, 0, '... approved by another admin') or diag $out;
    # the grant id as someone may type it: in capitals
    my $link = `$entctl breakglass link @{[uc $grant]} --admin pat\@platform.example --key-file $keyfile --host corp.example.com:$port 2>&1`;
    chomp $link;
    like($link, qr{^https://corp\.example\.com:\d+/_ent/breakglass\?token=[\w-]+$}, '... a one-time link');
    $link =~ s{^https://}{http://};
    my $pat = browser();
    $r = $pat->get($link);
    is($r->{status}, 302, '... the link signs the admin in');
    $r = get($pat, 'corp', '/admin/');
    is($r->{status}, 200, '... with the granted role');
    my $id = json_decode($r->{body})->{identity};
    is($id->{'x-ent-break-glass'}, $grant, '... X-Ent-Break-Glass: the grant');
    is($id->{'x-ent-user-email'}, 'pat@platform.example', '... as the platform admin');
    ok(wait_until(sub { pg_sql("SELECT count(*) FROM ent.events WHERE kind = 'breakglass' AND reason LIKE 'grant $grant: GET %'") >= 1 }, 3),
       '... every request recorded with the grant id');
    is(browser()->get($link)->{status}, 403, '... the link works once');
    is(status($pat, 'corp', '/noauthz/'), 200,
       '... a location with "ent_authz off": 200');
    system("$entctl breakglass revoke $grant --admin quinn\@platform.example >/dev/null") == 0 or die;
    ok(wait_until(sub { status($pat, 'corp', '/admin/') == 403 }, 3), '... revoked: 403 at once');
    is(status($pat, 'corp', '/noauthz/'), 403,
       '... revoked: 403 also where "ent_authz off" (the grant is checked '
       . 'wherever the session goes)');

    # expiry, to the second
    my $g2 = `$entctl breakglass request corp --admin quinn\@platform.example --reason r --justification j --minutes 5 2>&1`;
    chomp $g2;
    system("$entctl breakglass approve $g2 --admin pat\@platform.example >/dev/null") == 0 or die;
    my $l2 = `$entctl breakglass link $g2 --admin quinn\@platform.example --key-file $keyfile --host corp.example.com:$port 2>&1`;
    chomp $l2;
    $l2 =~ s{^https://}{http://};
    my $q = browser();
    $q->get($l2);
    is(status($q, 'corp', '/admin/'), 200, 'a second grant in use');
    pg_sql("UPDATE ent.breakglass_grants SET expires_at = now() + interval '2 seconds' WHERE id = '$g2'");
    sleep 2.2;
    is(status($q, 'corp', '/admin/'), 403, '... past its end: 403');
}

# what flushes the nodes' "authz" zones: every change that can change a
# cached standing, and not provisioning (a user made in the same
# transaction has none cached)

{
    my $corp = pg_sql("SELECT id FROM ent.tenants WHERE code = 'corp'");
    my $body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
        . '"userName":"fresh@corp.example"}';
    is_deeply(EntTest::pg_notifications('ent_invalidate',
                  "SELECT status FROM ent.scim_user_create('$corp', NULL, "
                  . "'$body'::jsonb, NULL)"), [],
              'a SCIM creation flushes no authz zone');
    my $fresh = pg_sql("SELECT id FROM ent.users WHERE email = 'fresh\@corp.example'");
    is_deeply(EntTest::pg_notifications('ent_invalidate',
                  "UPDATE ent.memberships SET status = 'suspended' "
                  . "WHERE user_id = '$fresh'"), ['authz:*'],
              'a membership changed: flushed');
    is_deeply(EntTest::pg_notifications('ent_invalidate',
                  "UPDATE ent.memberships SET role = 'admin' WHERE false"), [],
              'an update that changes no row: nothing');
    is_deeply(EntTest::pg_notifications('ent_invalidate',
                  "UPDATE ent.users SET last_login_at = now(), name = 'F' "
                  . "WHERE id = '$fresh'"), [],
              'a login stamp or a new name: nothing');
    my $iss = pg_sql("SELECT issuer || '|' || subject || '|' || tenant_id "
                     . "FROM ent.user_identities LIMIT 1");
    my ($i, $sub, $tid) = split /\|/, $iss;
    is_deeply(EntTest::pg_notifications('ent_invalidate',
                  "INSERT INTO ent.user_identities (issuer, subject, user_id, "
                  . "tenant_id) SELECT issuer, subject, user_id, tenant_id "
                  . "FROM ent.user_identities WHERE subject = '$sub' "
                  . "AND tenant_id = '$tid' ON CONFLICT DO NOTHING"), [],
              'a login of a known identity (nothing inserted): nothing');
    is_deeply(EntTest::pg_notifications('ent_invalidate',
                  "INSERT INTO ent.user_identities (issuer, subject, user_id, "
                  . "tenant_id) VALUES ('https://idp.example', 'new-sub', "
                  . "'$fresh', '$corp')"), ['authz:*'],
              'a new identity linked to a user: flushed');
    is_deeply(EntTest::pg_notifications('ent_invalidate',
                  "UPDATE ent.users SET status = 'suspended' "
                  . "WHERE id = '$fresh'"), ['authz:*'],
              'a user suspended: flushed');
    pg_sql("UPDATE ent.users SET status = 'active' WHERE id = '$fresh'");
    my $other = pg_sql("SELECT id FROM ent.tenants WHERE code <> 'corp' LIMIT 1");
    is_deeply(EntTest::pg_notifications('ent_invalidate',
                  "INSERT INTO ent.memberships (tenant_id, user_id, source) "
                  . "VALUES ('$other', '$fresh', 'admin')"), ['authz:*'],
              'a membership for an existing user: flushed');
}

# ent.authz() itself: a bearer token's subject is an identity of its issuer,
# never one of our user ids, whatever its form; an area grant ("area:*")
# covers that area's permissions only ("_" is no wildcard)
{
    my $corp = pg_sql("SELECT id FROM ent.tenants WHERE code = 'corp'");
    my $aid = uid('alice@corp.example.com');
    is(pg_sql("SELECT status FROM ent.authz('$corp', '$aid', NULL, '')"),
       'active', "a session's user id: alice's standing");
    is(pg_sql("SELECT status || '|' || roles FROM ent.authz('$corp', '$aid', "
              . "'https://idp.other.example', '')"), 'none|',
       "a bearer token whose subject is alice's user id: no standing");
    pg_sql("INSERT INTO ent.permissions (name) VALUES ('audit_logs:read'), "
           . "('audit-logs:read'), ('auditxlogs:read') ON CONFLICT DO NOTHING; "
           . "INSERT INTO ent.role_permissions (tenant_id, role, permission) "
           . "VALUES ('$corp', 'member', 'audit_logs:*')");
    my $perms = pg_sql("SELECT permissions FROM ent.authz('$corp', '$aid', "
                       . "NULL, '')");
    like($perms, qr/(^|,)audit_logs:read(,|$)/, 'an area grant: its permission');
    unlike($perms, qr/audit-logs|auditxlogs/, '... and no other area\'s');
    pg_sql("DELETE FROM ent.role_permissions WHERE tenant_id = '$corp' "
           . "AND permission = 'audit_logs:*'");
}

check_log($n, 'authz');
check_log($n2, 'authz 2');

done_testing;
