# entctl's authorization commands: custom roles and their permissions,
# the permission catalog, memberships, a tenant's inherit/JIT settings,
# platform admins and break-glass grants (request, approval by another
# admin, revocation, the sealed sign-in link, the events); the sso
# commands' options and not-found errors.  Each error says what is wrong
# and changes nothing.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();

my $dir = EntTest::tmpdir();
my $entctl = "$EntTest::TOP/bin/entctl --dsn '" . EntTest::pg_dsn() . "'";

# the key of ent_sso_secret_key, as base64 text
my $keyfile = "$dir/sso.key";
system("openssl rand -base64 32 > $keyfile") == 0 or die;

# rc, stdout, stderr
sub ctl {
    my ($args) = @_;
    my $out = `$entctl $args 2>$dir/stderr`;
    my $rc = $? >> 8;
    open my $f, '<', "$dir/stderr" or die;
    local $/;
    my $err = <$f> // '';
    return ($rc, $out, $err);
}

# a command refused with exit status $want and a message matching $re
sub refused {
    my ($args, $want, $re, $name) = @_;
    my ($rc, $out, $err) = ctl($args);
    is($rc, $want, "refused ($want): $name") or diag "$out$err";
    like($err, $re, "  $name: says why");
    is($out, '', "  $name: nothing on stdout");
}

sub ok_cmd {
    my ($args, $re, $name) = @_;
    my ($rc, $out, $err) = ctl($args);
    is($rc, 0, $name) or diag "$out$err";
    like($out, $re, "  $name: confirmed");
    return $out;
}

my ($rc, $out, $err);

ok_cmd('tenant create acme --name Acme', qr/./, 'tenant acme');
ok_cmd('tenant create beta --name Beta', qr/./, 'tenant beta');
my $acme = pg_sql("SELECT id FROM ent.tenants WHERE code = 'acme'");
my $beta = pg_sql("SELECT id FROM ent.tenants WHERE code = 'beta'");

pg_sql("INSERT INTO ent.users (email, name) VALUES "
       . "('Alice\@Acme.test', 'Alice'), ('bob\@acme.test', 'Bob'), "
       . "('dup\@x.test', 'Dup 1'), ('dup\@x.test', 'Dup 2')");
my $alice = pg_sql("SELECT id FROM ent.users WHERE email = 'Alice\@Acme.test'");

# the permission catalog

($rc, $out) = ctl('permission list');
is($rc, 0, 'permission list');
like($out, qr/^PERMISSION\s+DESCRIPTION$/m, '  a header');
like($out, qr/^audit_logs:read\s+See the audit log$/m, '  the catalog');

ok_cmd('permission add reports:schedule --description "Schedule reports"',
       qr/^permission add reports:schedule: saved\n\z/, 'permission add');
is(pg_sql("SELECT description FROM ent.permissions "
          . "WHERE name = 'reports:schedule'"), 'Schedule reports',
   '  in the catalog');
ok_cmd('permission add reports:schedule --description "Plan reports"',
       qr/saved/, 'permission add again: the description changes');
is(pg_sql("SELECT description FROM ent.permissions "
          . "WHERE name = 'reports:schedule'"), 'Plan reports', '  changed');
ok_cmd('permission add tickets:close', qr/saved/, 'permission add, no text');

refused('permission add Reports:x', 2, qr/invalid permission "Reports:x"/,
        'an uppercase permission');
refused('permission add reports', 2, qr/"area:action"/,
        'a permission without an action');
refused('permission add "reports:*"', 2, qr/invalid permission/,
        'a pattern is not a catalog entry');
refused('permission add a:b --colour red', 2, qr/unknown option "--colour"/,
        'an unknown option');
refused('permission remove tickets:nope', 1, qr/no permission "tickets:nope"/,
        'removing an unknown permission');
refused('permission frobnicate', 2, qr/usage: entctl permission/,
        'an unknown verb');

# custom roles

ok_cmd('role create acme auditor --rank 20 --description "Reads the audit '
       . 'log"', qr/^role create acme auditor: saved\n\z/, 'role create');
is(pg_sql("SELECT rank || '|' || description FROM ent.roles "
          . "WHERE tenant_id = '$acme' AND name = 'auditor'"),
   '20|Reads the audit log', '  a custom role of acme');
ok_cmd('role create acme auditor --rank 25', qr/saved/,
       'role create again: the rank changes');
is(pg_sql("SELECT rank || '|' || description FROM ent.roles "
          . "WHERE tenant_id = '$acme' AND name = 'auditor'"),
   '25|Reads the audit log', '  one role, new rank, same description');

refused('role create ghost auditor --rank 20', 1, qr/no tenant "ghost"/,
        'an unknown tenant');
refused('role create acme admin --rank 20', 1,
        qr/"admin" is a system role: a custom role needs another name/,
        'a system role name');
refused('role create acme viewer --rank 3', 1, qr/"viewer" is a system role/,
        'a system role of 009');
refused('role create acme helper', 2, qr/--rank 1\.\.1000/, 'no --rank');
refused('role create acme helper --rank 0', 2, qr/--rank 1\.\.1000/,
        'rank 0');
refused('role create acme helper --rank 1001', 2, qr/--rank 1\.\.1000/,
        'rank 1001');
refused('role create acme helper --rank 5x', 2, qr/--rank 1\.\.1000/,
        'a rank that is no number');
refused('role create acme Helper! --rank 5', 2, qr/invalid role name/,
        'an invalid role name');
refused('role create acme helper --rank 5 --rank 6', 2, qr/given twice/,
        'an option twice');
refused('role create acme', 2, qr/usage: entctl role create/,
        'too few arguments');
is(pg_sql("SELECT count(*) FROM ent.roles WHERE tenant_id IS NOT NULL"), 1,
   'nothing made by the refused commands');

# permissions of roles

ok_cmd('role grant acme auditor audit_logs:read "reports:*" reports:schedule',
       qr/^role grant acme auditor: saved\n\z/, 'role grant');
is(pg_sql("SELECT string_agg(permission, ',' ORDER BY permission) "
          . "FROM ent.role_permissions WHERE tenant_id = '$acme' "
          . "AND role = 'auditor'"),
   'audit_logs:read,reports:*,reports:schedule', '  the tenant\'s rows');
ok_cmd('role grant acme auditor audit_logs:read', qr/saved/,
       'role grant again: no duplicate');
is(pg_sql("SELECT count(*) FROM ent.role_permissions "
          . "WHERE tenant_id = '$acme' AND role = 'auditor'"), 3,
   '  still three rows');
ok_cmd('role grant acme viewer settings:read', qr/saved/,
       'role grant to a system role, for one tenant');
is(pg_sql("SELECT count(*) FROM ent.role_permissions WHERE tenant_id = "
          . "'$acme' AND role = 'viewer' AND permission = 'settings:read'"),
   1, '  a tenant-level row');

($rc, $out, $err) = ctl('role grant acme auditor billing:read '
                        . 'audit_logs:shred');
is($rc, 1, 'a permission not in the catalog is refused');
like($err, qr/no permission "audit_logs:shred" in the catalog: add it with "entctl permission add audit_logs:shred/,
     '  saying how to add it');
like($err, qr/"audit_logs:\*" or "\*"/, '  or which pattern to grant');
is(pg_sql("SELECT count(*) FROM ent.role_permissions WHERE tenant_id = "
          . "'$acme' AND permission = 'billing:read'"), 0,
   '  all or nothing: billing:read was not granted either');
refused('role grant acme ghost audit_logs:read', 1,
        qr/no role "ghost" in tenant "acme"/, 'grant to an unknown role');
refused('role grant beta auditor audit_logs:read', 1,
        qr/no role "auditor" in tenant "beta"/,
        'another tenant\'s custom role is unknown here');
refused('role grant ghost admin audit_logs:read', 1, qr/no tenant "ghost"/,
        'grant in an unknown tenant');
refused('role grant acme auditor Audit', 2, qr/invalid permission "Audit"/,
        'an invalid permission');
refused('role grant acme auditor', 2, qr/usage: entctl role grant/,
        'grant without a permission');

ok_cmd('role revoke acme auditor "reports:*"',
       qr/^role revoke acme auditor: saved\n\z/, 'role revoke');
is(pg_sql("SELECT count(*) FROM ent.role_permissions WHERE tenant_id = "
          . "'$acme' AND role = 'auditor' AND permission = 'reports:*'"), 0,
   '  gone');
($rc, $out, $err) = ctl('role revoke acme auditor projects:read');
is($rc, 0, 'revoking what was not granted: done');
like($err, qr/warning: "projects:read" was not granted to "auditor"/,
     '  with a warning');
refused('role revoke acme admin "repositories:*"', 1,
        qr/given to "admin" by the platform, not by tenant "acme"/,
        'a platform grant cannot be revoked for a tenant');
is(pg_sql("SELECT count(*) FROM ent.role_permissions WHERE tenant_id "
          . "IS NULL AND role = 'admin' AND permission = 'repositories:*'"),
   1, '  and stays');

($rc, $out) = ctl('role list acme');
is($rc, 0, 'role list');
like($out, qr/^ROLE\s+KIND\s+RANK\s+PLATFORM\s+TENANT\s+DESCRIPTION$/m,
     '  a header');
like($out, qr/^owner\s+system\s+100\s+\*\s+-\s+Owns the organization$/m,
     '  a system role with the platform\'s permissions');
like($out, qr/^viewer\s+system\s+5\s+projects:read,reports:read,repositories:read\s+settings:read\s+Reads only$/m,
     '  and the tenant\'s additions');
like($out, qr/^auditor\s+custom\s+25\s+-\s+audit_logs:read,reports:schedule\s+Reads the audit log$/m,
     '  a custom role');
my @order = $out =~ /^(\w+)\s+(?:system|custom)/mg;
is("@order", 'owner admin manager auditor member viewer', '  by rank');
($rc, $out) = ctl('role list beta');
unlike($out, qr/auditor/, 'another tenant does not see it');
refused('role list ghost', 1, qr/no tenant "ghost"/, 'role list, unknown');

# memberships

ok_cmd('member set acme alice@acme.test auditor',
       qr/^member set acme alice\@acme\.test auditor: saved\n\z/,
       'member set (the email case-insensitive)');
is(pg_sql("SELECT role || '|' || status || '|' || source FROM "
          . "ent.memberships WHERE tenant_id = '$acme' AND user_id = "
          . "'$alice'"), 'auditor|active|admin', '  made by the admin');
is(pg_sql("SELECT status || ' ' || rank || ' ' || permissions FROM "
          . "ent.authz('$acme', '$alice', NULL, NULL)"),
   'active 25 audit_logs:read,reports:schedule',
   '  ent.authz() answers with the custom role');

ok_cmd('member set acme ALICE@ACME.TEST admin --status suspended',
       qr/saved/, 'member set again: role and status');
is(pg_sql("SELECT role || '|' || status FROM ent.memberships "
          . "WHERE tenant_id = '$acme' AND user_id = '$alice'"),
   'admin|suspended', '  changed');
is(pg_sql("SELECT status FROM ent.authz('$acme', '$alice', NULL, NULL)"),
   'suspended', '  ent.authz() denies');
ok_cmd('member activate acme alice@acme.test',
       qr/^member activate acme alice\@acme\.test: active\n\z/,
       'member activate');
ok_cmd('member suspend acme alice@acme.test',
       qr/^member suspend acme alice\@acme\.test: suspended\n\z/,
       'member suspend');
is(pg_sql("SELECT status FROM ent.memberships WHERE user_id = '$alice'"),
   'suspended', '  suspended');
ok_cmd('member activate acme alice@acme.test', qr/active/, 'active again');
ok_cmd('member set acme alice@acme.test auditor', qr/saved/,
       'member set keeps the status when --status is absent');
is(pg_sql("SELECT status FROM ent.memberships WHERE user_id = '$alice'"),
   'active', '  active');

refused('member set acme nobody@acme.test member', 1,
        qr/no user with the email "nobody\@acme\.test"/, 'an unknown user');
refused('member set acme alice@acme.test ghost', 1,
        qr/no role "ghost" in tenant "acme"/, 'an unknown role');
refused('member set beta alice@acme.test auditor', 1,
        qr/no role "auditor" in tenant "beta"/,
        'a custom role of another tenant');
refused('member set ghost alice@acme.test member', 1, qr/no tenant "ghost"/,
        'an unknown tenant');
refused('member set acme alice@acme.test member --status frozen', 2,
        qr/--status active\|suspended/, 'an invalid status');
refused('member set acme dup@x.test member', 1,
        qr/2 users have the email "dup\@x\.test"/, 'an ambiguous email');
refused('member suspend acme bob@acme.test', 1,
        qr/"bob\@acme\.test" is not a member of tenant "acme"/,
        'suspending a non-member');
refused('member remove beta alice@acme.test', 1, qr/not a member/,
        'removing a non-member');
refused('member suspend acme', 2, qr/usage: entctl member/, 'no email');

ok_cmd('member set acme bob@acme.test viewer --status suspended',
       qr/saved/, 'a second member');
($rc, $out) = ctl('member list acme');
is($rc, 0, 'member list');
like($out, qr/^EMAIL\s+ROLE\s+STATUS\s+SOURCE\s+NAME$/m, '  a header');
like($out, qr/^Alice\@Acme\.test\s+auditor\s+active\s+admin\s+Alice$/m,
     '  alice');
like($out, qr/^bob\@acme\.test\s+viewer\s+suspended\s+admin\s+Bob$/m,
     '  bob');
($rc, $out) = ctl('member list beta');
is($out, "EMAIL  ROLE  STATUS  SOURCE  NAME\n", 'an empty list: the header');

# a tenant's JIT role and role inheritance: options of "tenant update"

($rc, $out, $err) = ctl('tenant update acme --inherit-roles on '
                        . '--jit-role auditor');
is($rc, 0, 'tenant update --inherit-roles --jit-role') or diag $err;
is(pg_sql("SELECT inherit_roles || '|' || jit_role FROM ent.tenants "
          . "WHERE code = 'acme'"), 'true|auditor', '  saved');
($rc, $out) = ctl('tenant show acme');
like($out, qr/^jit_role: auditor$/m, '  tenant show: the JIT role');
like($out, qr/^inherit_roles: true$/m, '  and the inheritance');
refused('tenant update beta --jit-role auditor', 1,
        qr/no role "auditor" in tenant "beta"/, 'another tenant\'s role');
refused('tenant update acme --jit-role ghost', 1, qr/no role "ghost"/,
        'an unknown JIT role');
refused('tenant update acme --inherit-roles maybe', 2, qr/"on" or "off"/,
        'an invalid --inherit-roles');
refused('tenant create gamma --name G --jit-role viewer', 2,
        qr/with "tenant update"/, 'not at create');
is(pg_sql("SELECT count(*) FROM ent.tenants WHERE code = 'gamma'"), 0,
   '  no tenant made');
ok_cmd('tenant update beta --inherit-roles off --jit-role viewer', qr/^/,
       'a system role as the JIT role');
is(pg_sql("SELECT inherit_roles || '|' || jit_role FROM ent.tenants "
          . "WHERE code = 'beta'"), 'false|viewer', '  saved');

# deleting a role

refused('role delete acme auditor', 1,
        qr/role "auditor" is in use in tenant "acme" \(1 memberships, 0 group mappings, 0 break-glass grants, and the tenant's jit role\)/,
        'a role in use');
refused('role delete acme admin', 1,
        qr/"admin" is a system role: only custom roles are deleted/,
        'a system role');
refused('role delete acme ghost', 1, qr/no custom role "ghost"/,
        'an unknown role');
refused('role delete ghost auditor', 1, qr/no tenant "ghost"/,
        'an unknown tenant');
ok_cmd('member remove acme alice@acme.test',
       qr/^member remove acme alice\@acme\.test: removed\n\z/,
       'member remove');
is(pg_sql("SELECT count(*) FROM ent.memberships WHERE user_id = '$alice'"),
   0, '  gone');
ctl('tenant update acme --jit-role member');
ok_cmd('role delete acme auditor',
       qr/^role delete acme auditor: deleted\n\z/, 'role delete');
is(pg_sql("SELECT count(*) FROM ent.roles WHERE name = 'auditor'") . '|'
   . pg_sql("SELECT count(*) FROM ent.role_permissions "
            . "WHERE role = 'auditor'"), '0|0', '  with its permissions');

ok_cmd('role create acme auditor --rank 20', qr/saved/, 'again, for later');
ok_cmd('role grant acme auditor reports:schedule tickets:close', qr/saved/,
       '  with catalog permissions');
ok_cmd('permission remove reports:schedule',
       qr/^permission remove reports:schedule: removed \(and 1 grants of it\)\n\z/,
       'permission remove: its grants go too');
is(pg_sql("SELECT count(*) FROM ent.role_permissions "
          . "WHERE permission = 'reports:schedule'"), 0, '  gone');

# platform admins

ok_cmd('platform-admin add ops1@platform.test --name "Ops One"',
       qr/^platform-admin add ops1\@platform\.test: saved\n\z/,
       'platform-admin add: a new user');
is(pg_sql("SELECT u.name FROM ent.platform_admins p JOIN ent.users u "
          . "ON u.id = p.user_id WHERE u.email = 'ops1\@platform.test'"),
   'Ops One', '  the user and the admin');
ok_cmd('platform-admin add ops2@platform.test', qr/saved/,
       'a second one');
ok_cmd('platform-admin add bob@ACME.test', qr/saved/,
       'an existing user');
is(pg_sql("SELECT count(*) FROM ent.users WHERE lower(email) = "
          . "'bob\@acme.test'"), 1, '  no second user');
ok_cmd('platform-admin add ops1@platform.test',
       qr/ops1\@platform\.test: already a platform admin/,
       'adding again: already');
refused('platform-admin add not-an-email', 2, qr/invalid email/,
        'an invalid email');
refused('platform-admin add dup@x.test', 1, qr/2 users have the email/,
        'an ambiguous email');
($rc, $out) = ctl('platform-admin list');
is($rc, 0, 'platform-admin list');
like($out, qr/^EMAIL\s+USER_ID\s+STATUS\s+ADDED\s+NAME$/m, '  a header');
like($out, qr/^ops1\@platform\.test\s+[0-9a-f-]{36}\s+active\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+Ops One$/m,
     '  the admins');
ok_cmd('platform-admin remove bob@acme.test',
       qr/^platform-admin remove bob\@acme\.test: removed\n\z/,
       'platform-admin remove');
is(pg_sql("SELECT count(*) FROM ent.platform_admins"), 2, '  two left');
refused('platform-admin remove bob@acme.test', 1,
        qr/"bob\@acme\.test" is not a platform admin/, 'removing twice');
ok_cmd('platform-admin add ops3@platform.test', qr/saved/, 'a third one');

# break-glass: the maximum

ok_cmd('breakglass set-max 30',
       qr/^breakglass set-max 30: saved\n\z/, 'breakglass set-max');
is(pg_sql("SELECT value FROM ent.settings "
          . "WHERE name = 'breakglass_max_minutes'"), '30', '  the setting');
refused('breakglass set-max 0', 2, qr/1 to 1440/, 'set-max 0');
refused('breakglass set-max 1441', 2, qr/1 to 1440/, 'set-max 1441');
refused('breakglass set-max lots', 2, qr/1 to 1440/, 'set-max lots');

# requests

my $req = '--reason "INC-42 outage" --justification "Customer asked us to '
        . 'look at their SSO settings (ticket 4242)"';

($rc, $out, $err) = ctl("breakglass request acme --admin ops1\@platform.test "
                        . $req);
is($rc, 0, 'breakglass request') or diag $err;
like($out, qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n\z/,
     '  prints the grant id alone');
chomp(my $g1 = $out);
is(pg_sql("SELECT t.code || '|' || u.email || '|' || g.role || '|' || "
          . "g.minutes || '|' || (g.approved_at IS NULL) FROM "
          . "ent.breakglass_grants g JOIN ent.tenants t ON t.id = "
          . "g.tenant_id JOIN ent.users u ON u.id = g.admin_id "
          . "WHERE g.id = '$g1'"),
   'acme|ops1@platform.test|admin|30|true',
   '  role admin and the maximum minutes by default, not approved');
is(pg_sql("SELECT reason || '|' || outcome || '|' || (detail->>'grant') || "
          . "'|' || (detail->>'admin') || '|' || tenant_id FROM ent.events "
          . "WHERE kind = 'breakglass' AND detail->>'grant' = '$g1'"),
   "requested: INC-42 outage|info|$g1|ops1\@platform.test|$acme",
   '  an event');

($rc, $out, $err) = ctl("breakglass request acme --admin ops1\@platform.test "
                        . "$req --role auditor --minutes 30");
is($rc, 0, 'a request for a custom role, at the maximum') or diag $err;
chomp(my $g2 = $out);
($rc, $out, $err) = ctl("breakglass request beta --admin "
                        . "ops2\@platform.test $req --role viewer "
                        . "--minutes 5");
is($rc, 0, 'a request in beta') or diag $err;
chomp(my $g3 = $out);

refused("breakglass request acme --admin ops1\@platform.test $req "
        . "--minutes 31", 1,
        qr/--minutes 31 is more than the setting breakglass_max_minutes \(30\)/,
        'more than the maximum');
refused("breakglass request acme --admin ops1\@platform.test $req "
        . "--minutes 0", 2, qr/--minutes takes 1 to 1440/, 'zero minutes');
refused("breakglass request acme --admin alice\@acme.test $req", 1,
        qr/"alice\@acme\.test" is not a platform admin/,
        'a user who is not a platform admin');
refused("breakglass request acme --admin ghost\@platform.test $req", 1,
        qr/is not a platform admin/, 'an unknown user');
refused("breakglass request ghost --admin ops1\@platform.test $req", 1,
        qr/no tenant "ghost"/, 'an unknown tenant');
refused("breakglass request acme --admin ops1\@platform.test $req "
        . "--role ghost", 1, qr/no role "ghost" in tenant "acme"/,
        'an unknown role');
refused('breakglass request acme --admin ops1@platform.test '
        . '--justification J', 2, qr/needs --admin, --reason and --justification/,
        'no reason');
refused('breakglass request acme --admin ops1@platform.test --reason "" '
        . '--justification J', 2, qr/--reason: 1 to 256/, 'an empty reason');
is(pg_sql("SELECT count(*) FROM ent.breakglass_grants"), 3,
   'nothing made by the refused requests');

# approval

refused("breakglass link $g1 --admin ops1\@platform.test --key-file "
        . "$keyfile --host acme.example.com", 1,
        qr/grant $g1 is requested, not active: another platform admin must approve it first/,
        'no link before the approval');
refused("breakglass approve $g1 --admin ops1\@platform.test", 1,
        qr/a platform admin cannot approve their own request, another one must/,
        'self-approval');
is(pg_sql("SELECT approved_at IS NULL FROM ent.breakglass_grants "
          . "WHERE id = '$g1'"), 't', '  still requested');
{
    open my $saved, '>&', \*STDERR or die;
    open STDERR, '>', '/dev/null' or die;
    ok(!eval {
        pg_sql("UPDATE ent.breakglass_grants SET approved_by = admin_id, "
               . "approved_at = now(), expires_at = now() WHERE id = '$g1'");
        1;
    }, '  and the table refuses it too');
    open STDERR, '>&', $saved or die;
}
refused("breakglass approve $g1 --admin alice\@acme.test", 1,
        qr/not a platform admin/, 'approval by a non-admin');

($rc, $out, $err) = ctl("breakglass approve $g1 --admin OPS2\@Platform.TEST");
is($rc, 0, 'approval by another admin (the email case-insensitive)')
    or diag $err;
like($out, qr/^breakglass approve $g1: active until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n\z/,
     '  confirmed with the expiry');
is(pg_sql("SELECT u.email || '|' || (g.approved_at > now() - interval "
          . "'1 minute') || '|' || (abs(extract(epoch FROM g.expires_at - "
          . "now()) - 1800) < 60) FROM ent.breakglass_grants g JOIN "
          . "ent.users u ON u.id = g.approved_by WHERE g.id = '$g1'"),
   'ops2@platform.test|true|true', '  approved_by, approved_at, expires_at');
is(pg_sql("SELECT count(*) FROM ent.breakglass('$g1')"), 1,
   '  ent.breakglass() sees it');
is(pg_sql("SELECT reason || '|' || (detail->>'admin') || '|' || "
          . "(detail->>'approved_by') FROM ent.events WHERE kind = "
          . "'breakglass' AND reason = 'approved'"),
   'approved|ops1@platform.test|ops2@platform.test', '  an event');
refused("breakglass approve $g1 --admin ops3\@platform.test", 1,
        qr/grant $g1 is already approved \(by ops2\@platform\.test; active\)/,
        'approving twice');

# revocation

ok_cmd("breakglass revoke $g2 --admin ops3\@platform.test",
       qr/^breakglass revoke $g2: revoked\n\z/, 'revoking a request');
refused("breakglass approve $g2 --admin ops2\@platform.test", 1,
        qr/grant $g2 was revoked/, 'approving a revoked grant');
refused("breakglass revoke $g2 --admin ops2\@platform.test", 1,
        qr/was revoked/, 'revoking twice');
is(pg_sql("SELECT (detail->>'revoked_by') || '|' || user_id FROM ent.events "
          . "WHERE reason = 'revoked' AND detail->>'grant' = '$g2'"),
   'ops3@platform.test|' . pg_sql("SELECT id FROM ent.users WHERE email = "
                                  . "'ops3\@platform.test'"),
   '  an event, by the revoking admin');
refused('breakglass approve not-a-grant --admin ops2@platform.test', 2,
        qr/"not-a-grant" is not a grant id/, 'a grant id that is no uuid');
refused('breakglass approve 00000000-0000-0000-0000-000000000001 --admin '
        . 'ops2@platform.test', 1, qr/no break-glass grant/,
        'an unknown grant');
refused("breakglass approve $g3", 2, qr/needs --admin/, 'no --admin');

# an expired one

($rc, $out) = ctl("breakglass request beta --admin ops1\@platform.test $req");
chomp(my $g4 = $out);
ctl("breakglass approve $g4 --admin ops3\@platform.test");
pg_sql("UPDATE ent.breakglass_grants SET approved_at = now() - interval "
       . "'2 hours', expires_at = now() - interval '1 hour' "
       . "WHERE id = '$g4'");
refused("breakglass revoke $g4 --admin ops3\@platform.test", 1,
        qr/has expired: nothing to revoke/, 'revoking an expired grant');

# the list

($rc, $out) = ctl('breakglass list');
is($rc, 0, 'breakglass list');
like($out, qr/^ID\s+TENANT\s+ADMIN\s+APPROVED_BY\s+ROLE\s+STATE\s+EXPIRES_AT\s+REASON$/m,
     '  a header');
like($out, qr/^$g1\s+acme\s+ops1\@platform\.test\s+ops2\@platform\.test\s+admin\s+active\s+\d{4}-\d\d-\d\dT\S+Z\s+INC-42 outage$/m,
     '  active');
like($out, qr/^$g2\s+acme\s+ops1\@platform\.test\s+-\s+auditor\s+revoked\s+-\s+INC-42 outage$/m,
     '  revoked');
like($out, qr/^$g3\s+beta\s+ops2\@platform\.test\s+-\s+viewer\s+requested\s+-\s+INC-42 outage$/m,
     '  requested');
like($out, qr/^$g4\s+beta\s.*\sexpired\s/m, '  expired');
($rc, $out) = ctl('breakglass list acme');
is(scalar(() = $out =~ /^[0-9a-f]{8}-/mg), 2, 'breakglass list CODE: '
   . 'that tenant\'s');
unlike($out, qr/beta/, '  only');
refused('breakglass list ghost', 1, qr/no tenant "ghost"/,
        'list of an unknown tenant');

# the sign-in link

my $link = "--key-file $keyfile --host acme.example.com";

refused("breakglass link $g1 --admin ops2\@platform.test $link", 1,
        qr/only the admin who requested grant $g1 \(ops1\@platform\.test\) may get its sign-in link/,
        'a link for another admin');
refused("breakglass link $g2 --admin ops1\@platform.test $link", 1,
        qr/grant $g2 is revoked, not active/, 'a link for a revoked grant');
refused("breakglass link $g1 --admin ops1\@platform.test --key-file "
        . "$keyfile --host acme.example.com/evil", 2,
        qr/--host "acme\.example\.com\/evil": the tenant's host name/,
        'a host with a path');
refused("breakglass link $g1 --admin ops1\@platform.test --key-file "
        . "$keyfile --host https://acme.example.com", 2, qr/--host/,
        'a host with a scheme');
refused("breakglass link $g1 --admin ops1\@platform.test --key-file "
        . "$keyfile --host acme.example.com:99999", 2, qr/--host/,
        'a bad port');
refused("breakglass link $g1 --admin ops1\@platform.test --key-file "
        . "$dir/nope --host acme.example.com", 1, qr/nope/,
        'a missing key file');
refused("breakglass link $g1 --admin ops1\@platform.test --host "
        . "acme.example.com", 2, qr/needs --admin, --key-file and --host/,
        'no key file');

($rc, $out, $err) = ctl("breakglass link $g1 --admin ops1\@platform.test "
                        . "--key-file $keyfile --host acme.example.com:8443");
is($rc, 0, 'breakglass link') or diag $err;
like($out, qr{^https://acme\.example\.com:8443/_ent/breakglass\?token=[A-Za-z0-9_-]+\n\z},
     '  one URL on one line');
my ($token) = $out =~ /token=(\S+)/;
my ($rc2, $out2) = ctl("breakglass link $g1 --admin ops1\@platform.test "
                       . "$link");
my ($token2) = $out2 =~ /token=(\S+)/;
isnt($token2, $token, '  a new token each time');
is(pg_sql("SELECT count(*) || '|' || bool_and(detail->>'host' LIKE "
          . "'acme.example.com%') || '|' || bool_and(detail::text NOT LIKE "
          . "'%token%') FROM ent.events WHERE reason = 'link issued' AND "
          . "detail->>'grant' = '$g1'"), '2|true|true',
   '  each recorded, with the host, without the token');

# the token opens with the key and "breakglass:<tenant id>", only so

SKIP: {
    system('python3 -c "import cryptography" 2>/dev/null') == 0
        or skip 'no python3 cryptography to open the token', 7;

    my $open = sub {
        my ($tok, $aad) = @_;
        open my $py, '-|', 'python3', '-c', <<'PY', $keyfile, $tok, $aad
import base64, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
k = open(sys.argv[1], 'rb').read().strip()
key = base64.b64decode(k)
t = sys.argv[2]
raw = base64.urlsafe_b64decode(t + '=' * (-len(t) % 4))
try:
    sys.stdout.write(AESGCM(key).decrypt(raw[:12], raw[12:],
                                         sys.argv[3].encode()).decode())
except Exception:
    sys.stdout.write('FAIL')
PY
            or die;
        local $/;
        my $r = <$py>;
        close $py;
        return $r;
    };

    my $json = $open->($token, "breakglass:$acme");
    like($json, qr/^\{"g":"$g1","t":"$acme","e":(\d+),"n":"[A-Za-z0-9_-]{22}"\}\z/,
         'the token: {"g","t","e","n"}');
    my ($e) = $json =~ /"e":(\d+)/;
    ok($e && abs($e - time() - 300) < 30, '  e: now + 300');
    my ($n1) = $json =~ /"n":"([^"]+)"/;
    my ($n2) = $open->($token2, "breakglass:$acme") =~ /"n":"([^"]+)"/;
    ok($n1 && $n2 && $n1 ne $n2, '  a fresh nonce each time');
    is($open->($token, "breakglass:$beta"), 'FAIL',
       '  another tenant\'s AAD does not open it');
    is($open->($token, "client-secret:$acme"), 'FAIL',
       '  nor another purpose');
    my $bad = $token;
    substr($bad, 20, 1) = substr($bad, 20, 1) eq 'A' ? 'B' : 'A';
    is($open->($bad, "breakglass:$acme"), 'FAIL', '  a changed token fails');
    isnt($json, 'FAIL', '  (opened)');
}

# revoked: no more links

ok_cmd("breakglass revoke $g1 --admin ops1\@platform.test",
       qr/revoked/, 'the requester may revoke an active grant');
is(pg_sql("SELECT count(*) FROM ent.breakglass('$g1')"), 0,
   '  ent.breakglass() no longer sees it');
refused("breakglass link $g1 --admin ops1\@platform.test $link", 1,
        qr/is revoked, not active: request a new one/,
        'no link for a revoked grant');

# a platform admin with history stays (the grants reference it)

refused('platform-admin remove ops1@platform.test', 1,
        qr/has \d+ break-glass grants on record/,
        'an admin with break-glass history');

is(pg_sql("SELECT string_agg(DISTINCT outcome, ',') || '|' || count(*) "
          . "FROM ent.events WHERE kind = 'breakglass'"), 'info|11',
   'every break-glass action recorded (4 requests, 2 approvals, '
   . '2 revocations, 2 links, the maximum)');

# single sign-on commands: an unknown option is refused (exit 2, nothing
# saved); "sso oidc" keeps what it is not given, as "sso saml" does;
# "none" clears; acting on what is not there is "no ...", exit 1

# what the sso commands write, to show that a refusal wrote nothing
sub sso_state {
    return join '|', map {
        pg_sql("SELECT md5(coalesce(string_agg(row_to_json(x)::text, ',' "
               . "ORDER BY row_to_json(x)::text), '')) FROM $_ x")
    } qw(ent.identity_providers ent.email_domains ent.group_role_mappings);
}

sub sso_refused {
    my ($args, $want, $re, $name) = @_;
    my $before = sso_state();
    refused($args, $want, $re, $name);
    is(sso_state(), $before, "  $name: nothing changed");
}

my $oidc = "SELECT issuer || '|' || client_id || '|' || "
    . "(client_secret_enc IS NOT NULL) || '|' || token_auth || '|' || "
    . "scopes || '|' || claim_email || '|' || allowed_domains::text || '|' "
    . "|| enforce_sso || '|' || coalesce(api_audience, '-') || '|' || "
    . "coalesce(api_scopes, '-') || '|' || claim_attrs::text || '|' || "
    . "enabled FROM ent.identity_providers WHERE tenant_id = '$acme' "
    . "AND protocol = 'oidc'";
my $oidc_usage = qr/usage: entctl sso oidc CODE \[--issuer URL\] /;

$ENV{T_SECRET} = 'oidc-secret-1';
sso_refused('sso oidc acme --issuer https://idp.acme.test --client-id web '
            . "--key-file $keyfile --client-secret-env T_SECRET --no-check "
            . '--scope "openid email"', 2,
            qr/\Aentctl: unknown option "--scope"\n$oidc_usage/,
            'sso oidc with a mistyped option: nothing created');
sso_refused('sso oidc acme --client-id web --no-check', 2,
            qr/\Aentctl: a new OIDC IdP needs --issuer and --client-id\n$oidc_usage/,
            'a new OIDC record without --issuer');
sso_refused('sso oidc acme --issuer https://idp.acme.test --client-id web '
            . '--client-secret-env T_SECRET --no-check', 2,
            qr/\Aentctl: a client secret needs --key-file/,
            'a secret without --key-file');
sso_refused('sso oidc acme --issuer http://idp.acme.test --client-id web '
            . '--no-check', 2, qr/the issuer must be an https URL/,
            'an http issuer');
($rc, $out, $err) = ctl('sso oidc acme --issuer https://idp.acme.test '
                        . "--client-id web --key-file $keyfile "
                        . '--client-secret-env T_SECRET --no-check --auth '
                        . 'post --scopes "openid email groups" --claim-email '
                        . 'mail --domains acme.test,acme.example --enforce on '
                        . '--api-audience https://api.acme.test --api-scopes '
                        . 'api:read --claim-map dept=department');
is("$rc|$out|$err", "0|sso oidc acme: saved\n|", 'sso oidc: created');
my $oidc_full = 'https://idp.acme.test|web|true|client_secret_post|'
    . 'openid email groups|mail|{acme.test,acme.example}|true|'
    . 'https://api.acme.test|api:read|{"dept": "department"}|true';
is(pg_sql($oidc), $oidc_full, '  every option saved');

sso_refused('sso oidc acme --scope openid', 2,
            qr/\Aentctl: unknown option "--scope"\n$oidc_usage/,
            'sso oidc: a typo does not reset the scopes');
sso_refused('sso oidc acme --enforce off --claimemail email', 2,
            qr/\Aentctl: unknown option "--claimemail"\n/,
            'a typo among right options: none of them saved');
sso_refused('sso oidc acme --scopes --enforce off', 2,
            qr/\Aentctl: option "--scopes" needs a value\n/,
            'a forgotten value');
sso_refused('sso oidc acme --enforce off --enforce on', 2,
            qr/\Aentctl: option "--enforce" given twice\n/, 'an option twice');
sso_refused('sso oidc acme --auth digest', 2, qr/\Aentctl: --auth basic\|post\n\z/,
            'an unknown --auth');
sso_refused('sso oidc acme --no-client-secret --client-secret-env T_SECRET '
            . "--key-file $keyfile", 2,
            qr/\Aentctl: one of --client-secret-env, --client-secret-file and --no-client-secret\n\z/,
            'a secret and no secret');
sso_refused('sso oidc acme --domains Acme.Test', 2,
            qr/--domains: lowercase names separated by commas, or "none"/,
            'uppercase domains');
sso_refused('sso oidc acme extra --enforce off', 2,
            qr/\Aentctl: unexpected argument "extra"\n/, 'an extra argument');
sso_refused('sso oidc ghost --enforce off', 1, qr/\Aentctl: no tenant "ghost"\n\z/,
            'an unknown tenant');

ok_cmd('sso oidc acme --enforce off', qr/^sso oidc acme: saved\n\z/,
       'sso oidc: one option');
($out = $oidc_full) =~ s/\|true\|https:/|false|https:/;
is(pg_sql($oidc), $out, '  only enforce_sso changed, the secret kept');
ok_cmd('sso oidc acme --api-audience none --api-scopes none --domains none',
       qr/saved/, 'sso oidc: none clears');
is(pg_sql($oidc), 'https://idp.acme.test|web|true|client_secret_post|'
   . 'openid email groups|mail|{}|false|-|-|{"dept": "department"}|true',
   '  audience, scopes and domains cleared, the rest kept');
($rc, $out, $err) = ctl('sso oidc acme --client-id web2');
is("$rc|$out", "0|sso oidc acme: saved\n", 'a new client id, no secret');
like($err, qr/\Aentctl: warning: the client id changes and the stored client secret is kept/,
     '  warned: the old secret stays');
ok_cmd('sso oidc acme --no-client-secret --claim-map -', qr/saved/,
       'sso oidc --no-client-secret');
is(pg_sql($oidc), 'https://idp.acme.test|web2|false|client_secret_post|'
   . 'openid email groups|mail|{}|false|-|-|{}|true',
   '  a public client, no custom claims');

# sso saml: none removes the SLO URL, the SP key, the SP entity ID

system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $dir/idp.key "
       . "-out $dir/idp.crt -days 30 -subj /CN=idp 2>/dev/null && "
       . "openssl req -x509 -newkey rsa:2048 -nodes -keyout $dir/sp.key "
       . "-out $dir/sp.crt -days 30 -subj /CN=sp 2>/dev/null") == 0 or die;

my $saml = "SELECT coalesce(saml_slo_url, '-') || '|' || "
    . "coalesce(saml_sp_entity_id, '-') || '|' || "
    . "(saml_sp_key_enc IS NOT NULL) || '|' || (saml_sp_cert IS NOT NULL) "
    . "|| '|' || coalesce(saml_name_id_format, '-') || '|' || "
    . "coalesce(saml_skew::text, '-') || '|' || claim_email FROM "
    . "ent.identity_providers WHERE tenant_id = '$beta' AND protocol = 'saml'";
my $saml_new = "sso saml beta --entity-id https://idp.beta.test/saml "
    . "--sso-url https://idp.beta.test/sso --cert-file $dir/idp.crt "
    . "--slo-url https://idp.beta.test/slo --sp-entity-id "
    . "https://beta.example.com/sp --sp-key-file $dir/sp.key --sp-cert-file "
    . "$dir/sp.crt --key-file $keyfile --name-id-format "
    . "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress --skew 30";

sso_refused("$saml_new --attr-emial mail", 2,
            qr/\Aentctl: unknown option "--attr-emial"\nusage: entctl sso saml CODE /,
            'sso saml with a mistyped option: nothing created');
ok_cmd($saml_new, qr/^sso saml beta: saved\n\z/, 'sso saml: created');
is(pg_sql($saml), 'https://idp.beta.test/slo|https://beta.example.com/sp|'
   . 'true|true|urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress|30|'
   . 'email', '  with an SLO URL, an SP key and entity ID');

sso_refused('sso saml beta --attr-emial mail', 2,
            qr/\Aentctl: unknown option "--attr-emial"\n/,
            'sso saml: a typo changes nothing');
sso_refused("sso saml beta --sp-cert-file $dir/sp.crt", 2,
            qr/\Aentctl: --sp-cert-file and --key-file go with --sp-key-file PEM/,
            '--sp-cert-file alone');
sso_refused("sso saml beta --sp-key-file none --key-file $keyfile", 2,
            qr/--sp-cert-file and --key-file go with --sp-key-file PEM/,
            '--sp-key-file none with --key-file');
sso_refused("sso saml beta --sp-key-file $dir/sp.key", 2,
            qr/--sp-key-file needs --sp-cert-file .* and --key-file/,
            '--sp-key-file alone');
sso_refused("sso saml beta --ca-file $dir/idp.crt", 2,
            qr/\Aentctl: --idp-entity-id and --ca-file go with --metadata\n\z/,
            '--ca-file without --metadata');
sso_refused('sso saml beta --slo-url http://idp.beta.test/slo', 2,
            qr/SSO and SLO URLs must be https URLs/, 'an http SLO URL');
sso_refused('sso saml beta --skew 3601', 2,
            qr/\Aentctl: --skew: seconds, 0 to 3600, or "none"\n\z/,
            'a skew too big');

ok_cmd('sso saml beta --slo-url none --sp-entity-id none', qr/saved/,
       'sso saml --slo-url none --sp-entity-id none');
is(pg_sql($saml), '-|-|true|true|'
   . 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress|30|email',
   '  both removed, the SP key kept');
ok_cmd('sso saml beta --sp-key-file none --name-id-format none --skew none '
       . '--attr-email mail', qr/saved/, 'sso saml --sp-key-file none');
is(pg_sql($saml), '-|-|false|false|-|-|mail',
   '  the key, its certificate, the format and the skew removed');
($rc, $out) = ctl('sso show beta');
like($out, qr/^saml_slo_url=\nsaml_certs=1\nsaml_sp_entity_id=\nsaml_sp_key=f\n/m,
     '  sso show agrees');

# what is not there: "no ...", exit 1

ok_cmd('tenant create gamma --name Gamma', qr/./, 'a tenant without an IdP');
for my $verb (qw(show enable disable delete)) {
    sso_refused("sso $verb gamma", 1,
                qr/\Aentctl: no identity provider in tenant "gamma" \(see "entctl sso oidc" and "entctl sso saml"\)\n\z/,
                "sso $verb of a tenant without an IdP");
}
sso_refused('sso enable ghost', 1, qr/\Aentctl: no tenant "ghost"\n\z/,
            'sso enable of an unknown tenant');
sso_refused('sso enable acme --now', 2,
            qr/\Aentctl: unknown option "--now"\nusage: entctl sso enable CODE\n\z/,
            'sso enable with an option');

ok_cmd('sso disable acme', qr/\A\z/, 'sso disable');
is(pg_sql("SELECT string_agg(enabled::text, ',') FROM "
          . "ent.identity_providers WHERE tenant_id = '$acme'"), 'false',
   '  disabled');
ok_cmd('sso enable acme', qr/\A\z/, 'sso enable');

sso_refused('sso domain add acme acme.test --verify', 2,
            qr/\Aentctl: unknown option "--verify"\nusage: entctl sso domain add CODE DOMAIN \[--verified\]\n\z/,
            'sso domain add --verify (for --verified)');
sso_refused('sso domain verify acme acme.test', 1,
            qr/\Aentctl: no email domain "acme.test" in tenant "acme"\n\z/,
            'sso domain verify of a domain not added');
sso_refused('sso domain remove acme acme.test', 1,
            qr/\Aentctl: no email domain "acme.test" in tenant "acme"\n\z/,
            'sso domain remove of a domain not added');
sso_refused('sso domain verify acme acme.test --now', 2,
            qr/\Aentctl: unknown option "--now"\nusage: entctl sso domain verify CODE DOMAIN\n\z/,
            'sso domain verify with an option');
ok_cmd('sso domain add acme Acme.Test', qr/\A\z/, 'sso domain add');
ok_cmd('sso domain verify acme ACME.test', qr/\A\z/, 'sso domain verify');
is(pg_sql("SELECT domain || '|' || (verified_at IS NOT NULL) FROM "
          . "ent.email_domains WHERE tenant_id = '$acme'"), 'acme.test|true',
   '  verified');
ok_cmd('sso domain remove acme acme.test', qr/\A\z/, 'sso domain remove');
sso_refused('sso domain remove acme acme.test', 1, qr/no email domain/,
            'removing it again');

sso_refused('sso unmap-group acme admins admin', 1,
            qr/\Aentctl: no mapping of group "admins" to role "admin" in tenant "acme"\n\z/,
            'sso unmap-group of what is not mapped');
sso_refused('sso map-group acme admins admin --force', 2,
            qr/\Aentctl: unknown option "--force"\nusage: entctl sso map-group CODE GROUP ROLE\n\z/,
            'sso map-group with an option');
ok_cmd('sso map-group acme admins admin', qr/\A\z/, 'sso map-group');
ok_cmd('sso map-group acme admins admin', qr/\A\z/, 'mapping again: done');
ok_cmd('sso unmap-group acme admins admin', qr/\A\z/, 'sso unmap-group');
is(pg_sql("SELECT count(*) FROM ent.group_role_mappings"), 0, '  gone');

ok_cmd('sso delete beta', qr/\A\z/, 'sso delete');
sso_refused('sso delete beta', 1, qr/no identity provider in tenant "beta"/,
            'deleting again');

# usage

refused('role', 2, qr/usage: entctl role/, 'role alone');
refused('breakglass frob', 2, qr/usage: entctl breakglass/,
        'an unknown breakglass verb');
refused('platform-admin', 2, qr/usage: entctl platform-admin/,
        'platform-admin alone');
refused('member list', 2, qr/usage: entctl member list CODE/,
        'member list without a tenant');
($rc, $out) = ctl('--help');
like($out, qr/breakglass request CODE --admin EMAIL/, 'in --help');
like($out, qr/--inherit-roles on\|off\] \[--jit-role ROLE\]/,
     '  with the tenant options');

done_testing;
