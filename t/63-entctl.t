# entctl's tenant verbs: each change reaches two running nginx nodes within
# 1 s, without reload; bad input gets a clear error and changes nothing:
# an unknown option is exit 2 for every command, "tenant update" saves all
# of its options or none, "headers set" takes on|off|inherit exactly,
# "maintenance" says why it leaves a tenant as it is.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();
redis_start();

my $entctl = "$EntTest::TOP/bin/entctl --dsn '" . EntTest::pg_dsn()
    . "' --redis 127.0.0.1:" . EntTest::redis_port();

sub ctl {
    my ($args) = @_;
    my $out = `$entctl $args 2>&1`;
    return ($? >> 8, $out);
}

my %conf = (
    http_config => 'ent_postgres "$TEST_PG_DSN" pool=2; '
                 . 'ent_redis 127.0.0.1:$TEST_REDIS_PORT; '
                 . 'ent_maintenance_poll 100ms;',
    config => <<'CONF');
ent_tenant on;
ent_tenant_base_domain example.com;
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
add_header X-Tenant "$ent_tenant_code|$ent_tenant_tier|$ent_tenant_region|$ent_tenant_features" always;
location / { proxy_pass http://127.0.0.1:1; error_page 502 = @ok; }
location @ok { return 200 "ok\n"; }
location /ai/ {
    ent_require_feature api_ai;
    proxy_pass http://127.0.0.1:1;
    error_page 502 = @ok;
}
CONF

my @nodes = (nginx_start(%conf), nginx_start(%conf));

sub on_all {
    my ($host, $path, $want, @h) = @_;
    return wait_until(sub {
        !grep {
            my $r = http($_, $path, host => $host, headers => \@h);
            my $got = ref $want ? ($r->{headers}{'x-tenant'}[0] // '')
                                : $r->{status};
            ref $want ? $got ne $$want : $got != $want;
        } @nodes;
    }, 1, 0.01);
}

my ($rc, $out);

($rc, $out) = ctl('tenant create acme --name "Acme Inc" --tier team '
                  . '--region eu');
is($rc, 0, 'tenant create') or diag $out;
ok(on_all('acme.example.com', '/', \'acme|team|eu|api_ai,sso'),
   'created: visible on both nodes within 1 s');

($rc, $out) = ctl('tenant update acme --tier enterprise --region us');
is($rc, 0, 'tenant update') or diag $out;
ok(on_all('acme.example.com', '/',
          \'acme|enterprise|us|advanced_analytics,api_ai,audit_export,scim,sso'),
   'updated tier and region: live on both nodes');

($rc, $out) = ctl('tenant suspend acme');
ok(on_all('acme.example.com', '/', 403), 'suspend: 403 on both nodes');
ctl('tenant resume acme');
ok(on_all('acme.example.com', '/', 200), 'resume: 200 again');

($rc, $out) = ctl('domain add acme Portal.Acme.Test');
is($rc, 0, 'domain add (normalized)') or diag $out;
ok(on_all('portal.acme.test', '/', 200), 'the custom domain works');
ctl('domain remove portal.acme.test');
ok(on_all('portal.acme.test', '/', 404), 'removed: 404');

ctl('feature set acme api_ai off');
ok(on_all('acme.example.com', '/ai/', 403), 'feature set off: 403');
ctl('feature unset acme api_ai');
ok(on_all('acme.example.com', '/ai/', 200), 'unset: back to the plan');
ctl('feature platform api_ai --enabled off');
ok(on_all('acme.example.com', '/ai/', 403), 'platform kill switch: 403');
ctl('feature platform api_ai --enabled on --rollout 100');
ok(on_all('acme.example.com', '/ai/', 200), 'switched back on');

ctl('allow add acme 10.0.0.0/8');
ok(on_all('acme.example.com', '/', 403, 'X-Forwarded-For: 192.0.2.1'),
   'allow add: others refused');
ok(on_all('acme.example.com', '/', 200, 'X-Forwarded-For: 10.9.8.7'),
   'the listed network admitted');
ctl('allow clear acme');
ok(on_all('acme.example.com', '/', 200, 'X-Forwarded-For: 192.0.2.1'),
   'allow clear: everyone again');

($rc, $out) = ctl('maintenance on acme');
ok(on_all('acme.example.com', '/', 503), 'maintenance on for one tenant');
ctl('maintenance off acme');
ok(on_all('acme.example.com', '/', 200), 'and off');
($rc, $out) = ctl('maintenance on --retry-after 90');
is($rc, 0, 'platform maintenance through Redis') or diag $out;
ok(on_all('acme.example.com', '/', 503), 'platform maintenance on all nodes');
ctl('maintenance off');
ok(on_all('acme.example.com', '/', 200), 'platform maintenance off');

($rc, $out) = ctl('headers set acme --csp-sources "https://cdn.acme.test" '
                  . '--report-only on');
is($rc, 0, 'headers set') or diag $out;

($rc, $out) = ctl('tenant show acme');
like($out, qr/^code: acme$/m, 'tenant show');
like($out, qr/^effective: active enterprise /m, 'with the effective record');
($rc, $out) = ctl('tenant list');
like($out, qr/^acme\|Acme Inc\|active\|enterprise\|us\|$/m, 'tenant list');

# hierarchies through entctl

ctl("tenant create l$_ --name L$_" . ($_ > 1 ? ' --parent l' . ($_ - 1) : ''))
    for 1 .. 5;
($rc, $out) = ctl('tenant create l6 --name L6 --parent l5');
isnt($rc, 0, 'a 6th level is refused');
like($out, qr/more than 5 levels deep/, 'saying why');
($rc, $out) = ctl('tenant update l1 --parent l3');
isnt($rc, 0, 'a cycle is refused');
like($out, qr/cannot be its own ancestor/, 'saying why');
($rc, $out) = ctl('tenant delete l4');
like($out, qr/has child tenants/, 'a parent is not deleted under its children');
# a subtree moved under another tenant: its own levels count too
ctl('tenant create m1 --name M1');
ctl('tenant create m2 --name M2 --parent m1');
($rc, $out) = ctl('tenant update l2 --parent m2');
isnt($rc, 0, 'a 4-level subtree moved 2 levels down (6 in all) is refused');
like($out, qr/and the 3 level\(s\) under it would be more than 5 levels deep/,
     'saying why');
($rc, $out) = ctl('tenant update l4 --parent m2');
is($rc, 0, 'a 2-level subtree moved 2 levels down (4 in all) is taken') or diag $out;
ctl('tenant update l4 --parent l3');

# a tenant with SCIM users is deleted with them
ctl('tenant create gone --name Gone');
pg_sql("INSERT INTO ent.users (email) VALUES ('s\@gone.test')");
pg_sql("INSERT INTO ent.scim_users (tenant_id, id, user_name) SELECT t.id, u.id, 's\@gone.test' "
       . "FROM ent.tenants t, ent.users u WHERE t.code = 'gone' AND u.email = 's\@gone.test'");
($rc, $out) = ctl('tenant delete gone');
is($rc, 0, 'a tenant with a SCIM user: deleted') or diag $out;
is(pg_sql("SELECT count(*) FROM ent.scim_users s JOIN ent.users u ON u.id = s.id "
          . "WHERE u.email = 's\@gone.test'"), 0, '... its SCIM users with it');

# bad input: a clear error, nothing changed

for my $case (['tenant create Bad_Code --name X', qr/invalid tenant code/],
              ['tenant create ok --name X --tier platinum', qr/no tier/],
              ['tenant create ok2 --name X --status frozen',
               qr/invalid status/],
              ['tenant create ok3 --name X --parent ghost',
               qr/no tenant "ghost"/],
              ['tenant create ok4', qr/needs --name/],
              ['tenant show ghost', qr/no tenant "ghost"/],
              ['tenant update acme --colour red', qr/unknown option/],
              ['domain add acme 192.0.2.1', qr/invalid domain/],
              ['domain add acme https://x.test/', qr/invalid domain/],
              ['domain add acme "a b.test"', qr/invalid domain/],
              ['domain add acme localhost', qr/invalid domain/],
              ['allow add acme 10.0.0.0/33', qr/invalid CIDR/],
              ['allow add acme 300.1.1.1', qr/invalid CIDR/],
              ['allow add acme "2001:db8::/129"', qr/invalid CIDR/],
              ['feature set acme "drop table" on', qr/invalid feature/],
              ['feature set acme api_ai maybe', qr/"on" or "off"/],
              ['feature platform api_ai --rollout 150', qr/percentage/],
              ['maintenance sometimes', qr/usage/],
              ['tenant update acme --name "' . ('x' x 300) . '"',
               qr/violates check constraint/]) {
    my ($args, $re) = @$case;
    ($rc, $out) = ctl($args);
    isnt($rc, 0, "refused: $args");
    like($out, $re, "  with a clear message");
}

is(pg_sql("SELECT count(*) FROM ent.tenants WHERE code LIKE 'ok%'"), 0,
   'nothing created by refused commands');
is(pg_sql("SELECT display_name FROM ent.tenants WHERE code = 'acme'"),
   'Acme Inc', 'nothing changed by them');

# the whole command line is checked before anything is written: a usage
# error is exit 2 with "entctl: ..." and the command's synopsis, on stderr

sub ctl3 {
    my ($args) = @_;
    my $err = EntTest::tmpdir() . '/stderr';
    my $o = `$entctl $args 2>$err`;
    my $code = $? >> 8;
    open my $f, '<', $err or die;
    local $/;
    my $e = <$f> // '';
    return ($code, $o, $e);
}

# everything entctl's commands write, to show that a refusal wrote nothing
sub state {
    return join '|', map {
        pg_sql("SELECT md5(coalesce(string_agg(row_to_json(x)::text, ',' "
               . "ORDER BY row_to_json(x)::text), '')) FROM $_ x")
    } qw(ent.tenants ent.tenant_domains ent.features ent.ratelimit_overrides
         ent.scim_tokens ent.sla_targets ent.audit_retention
         ent.schema_migrations);
}

sub refused {
    my ($args, $want, $err_re, $name) = @_;
    my $before = state();
    my $maint = redis_cli('GET', 'ent:maintenance');
    my ($code, $o, $e) = ctl3($args);
    is($code, $want, "refused ($want): $name") or diag "$o$e";
    like($e, $err_re, "  $name: says why");
    is($o, '', "  $name: nothing on stdout");
    is(state(), $before, "  $name: nothing changed in PostgreSQL");
    is(redis_cli('GET', 'ent:maintenance'), $maint,
       "  $name: nor in Redis");
}

my ($e, $o);

# tenant update: all or nothing

pg_sql("UPDATE ent.tenants SET billing_anchor_day = 5 WHERE code = 'acme'");
my $acme_row = "SELECT display_name || '|' || plan_id || '|' || region || '|' "
    . "|| coalesce(brand_color, '-') || '|' || coalesce(logo_url, '-') || '|' "
    . "|| coalesce(billing_anchor_day::text, '-') || '|' || inherit_roles "
    . "|| '|' || jit_role FROM ent.tenants WHERE code = 'acme'";
my $acme_was = pg_sql($acme_row);
is($acme_was, 'Acme Inc|enterprise|us|-|-|5|false|member',
   'acme before the updates');

refused('tenant update acme --name Renamed --tier team --billing-day 40', 2,
        qr/\Aentctl: --billing-day takes 1 to 28, or "inherit"\n\z/,
        'tenant update with a bad --billing-day');
refused('tenant update acme --name Renamed --brand-color red', 2,
        qr/\Aentctl: --brand-color takes "#rrggbb" \(six hexadecimal digits\), or "none"\n\z/,
        'tenant update with a bad --brand-color');
refused('tenant update acme --name Renamed --inherit-roles yes', 2,
        qr/--inherit-roles takes "on" or "off"/,
        'tenant update with a bad --inherit-roles');
refused('tenant update acme --name Renamed --jit-role ghost', 1,
        qr/\Aentctl: no role "ghost" in tenant "acme"/,
        'tenant update with an unknown --jit-role');
refused('tenant update acme --name Renamed --region us --logo-url '
        . 'http://cdn.acme.test/logo.svg', 1,
        qr/violates check constraint "tenants_logo_url_check"/,
        'tenant update with a logo the schema refuses');
refused('tenant update acme --name Renamed --colour red', 2,
        qr/\Aentctl: unknown option "--colour"\nusage: entctl tenant update CODE \[--name N\] /,
        'tenant update with an unknown option');
refused('tenant update acme --name --tier team', 2,
        qr/\Aentctl: option "--name" needs a value\n/,
        'tenant update with a forgotten value');
refused('tenant update acme --name A --name B', 2,
        qr/\Aentctl: option "--name" given twice\n/, 'an option twice');
refused('tenant update acme extra --name A', 2,
        qr/\Aentctl: unexpected argument "extra"\n/, 'an extra argument');
refused('tenant update acme', 2,
        qr/\Aentctl: "tenant update acme" without an option changes nothing\n/,
        'tenant update without an option');
refused('tenant create ok5 --name X --brand-color "#000000"', 2,
        qr/\Aentctl: --brand-color is set with "tenant update" once the tenant exists\n\z/,
        'tenant create with an update-only option');
refused('tenant show acme --verbose', 2,
        qr/\Aentctl: unknown option "--verbose"\nusage: entctl tenant show CODE\n\z/,
        'tenant show with an option');
refused('tenant list --all', 2,
        qr/\Aentctl: unknown option "--all"\nusage: entctl tenant list\n\z/,
        'tenant list with an option');
refused('tenant suspend acme --now', 2, qr/unknown option "--now"/,
        'tenant suspend with an option');
is(pg_sql($acme_row), $acme_was, 'acme as it was after all of them');

($rc, $o, $e) = ctl3('tenant update acme --name "Acme Corp" --tier team '
                     . '--brand-color "#0b5fff" --logo-url '
                     . 'https://cdn.acme.test/logo.svg --billing-day 12 '
                     . '--inherit-roles on --jit-role viewer');
is("$rc|$o|$e", '0||', 'tenant update of every group at once');
is(pg_sql($acme_row), 'Acme Corp|team|us|#0b5fff|https://cdn.acme.test/logo.svg|'
   . '12|true|viewer', '  all saved');
($rc, $o, $e) = ctl3('tenant update acme --brand-color none --logo-url none '
                     . '--billing-day inherit --tier enterprise');
is("$rc|$o|$e", '0||', 'tenant update: none and inherit clear');
is(pg_sql($acme_row), 'Acme Corp|enterprise|us|-|-|-|true|viewer',
   '  cleared, the rest kept');
ctl('tenant update acme --name "Acme Inc" --inherit-roles off '
    . '--jit-role member');

# headers set: on|off|inherit exactly

my $hdr = "SELECT coalesce(csp_report_only::text, 'inherit') || '|' || "
    . "hsts_preload FROM ent.tenants WHERE code = 'acme'";
is(pg_sql($hdr), 'true|false', 'headers before');
refused('headers set acme --report-only yes', 2,
        qr/\Aentctl: --report-only takes "on", "off" or "inherit", not "yes"\n\z/,
        'headers --report-only yes');
refused('headers set acme --report-only OFF', 2,
        qr/--report-only takes "on", "off" or "inherit", not "OFF"/,
        'headers --report-only OFF');
refused('headers set acme --report-only off --hsts-preload true', 2,
        qr/\Aentctl: --hsts-preload takes "on" or "off", not "true"\n\z/,
        'headers --hsts-preload true');
refused('headers set acme --hsts-preload inherit', 2,
        qr/--hsts-preload takes "on" or "off", not "inherit"/,
        'headers --hsts-preload inherit');
refused('headers set acme --report-only off --csp-source x', 2,
        qr/\Aentctl: unknown option "--csp-source"\nusage: entctl headers set CODE /,
        'headers with an unknown option');
refused('headers set acme', 2, qr/without an option changes nothing/,
        'headers set without an option');
refused('headers set ghost --report-only on', 1,
        qr/\Aentctl: no tenant "ghost"\n\z/, 'headers of an unknown tenant');
is(pg_sql($hdr), 'true|false', 'headers unchanged');
($rc, $o, $e) = ctl3('headers set acme --report-only off --hsts-preload on');
is("$rc|$o|$e", '0||', 'headers off and on');
is(pg_sql($hdr), 'false|true', '  saved');
($rc) = ctl3('headers set acme --report-only inherit --hsts-preload off');
is(pg_sql($hdr), 'inherit|false', 'inherit and off');

# maintenance: a tenant it cannot change says why; --retry-after is for
# the platform

ctl('tenant suspend acme');
refused('maintenance on acme', 1,
        qr/\Aentctl: tenant "acme" is suspended, left as it is: "maintenance on\|off" changes an active tenant or one in maintenance \("entctl tenant resume acme" makes it active\)\n\z/,
        'maintenance on of a suspended tenant');
refused('maintenance off acme', 1, qr/tenant "acme" is suspended, left as it is/,
        'maintenance off of a suspended tenant');
is(pg_sql("SELECT status FROM ent.tenants WHERE code = 'acme'"),
   'suspended', '  still suspended');
pg_sql("UPDATE ent.tenants SET status = 'deactivated' WHERE code = 'l5'");
refused('maintenance on l5', 1, qr/tenant "l5" is deactivated, left as it is/,
        'maintenance on of a deactivated tenant');
ctl('tenant resume acme');
refused('maintenance on acme --retry-after 60', 2,
        qr/\Aentctl: --retry-after is for the whole platform; a tenant in maintenance answers with the Retry-After of the nginx directive ent_tenant_retry_after\n\z/,
        'maintenance of a tenant with --retry-after');
refused('maintenance on --retry-after 60 acme', 2,
        qr/\Aentctl: unexpected argument "acme" \(the arguments come first, then the options\)\nusage: entctl maintenance on\|off CODE/,
        'a tenant after --retry-after is not the platform');
refused('maintenance on --retry 60', 2,
        qr/\Aentctl: unknown option "--retry"\n/, 'maintenance --retry');
refused('maintenance on ghost', 1, qr/\Aentctl: no tenant "ghost"\n\z/,
        'maintenance of an unknown tenant');
is(pg_sql("SELECT status FROM ent.tenants WHERE code = 'acme'"), 'active',
   'acme active, not in maintenance');
is(redis_cli('EXISTS', 'ent:maintenance'), '0', 'no platform maintenance');
($rc, $o, $e) = ctl3('maintenance on acme');
is("$rc|$o|$e", '0||', 'maintenance on acme');
ok(on_all('acme.example.com', '/', 503), '  in maintenance on both nodes');
ctl('maintenance off acme');
ok(on_all('acme.example.com', '/', 200), '  and back');

# every other command refuses what it does not know, the same way

for my $case (
    ['domain add acme x.acme.test --force', 'domain add CODE DOMAIN'],
    ['domain remove x.acme.test --force', 'domain remove DOMAIN'],
    ['feature set acme api_ai on --force', 'feature set CODE FEATURE on|off'],
    ['feature unset acme api_ai --force', 'feature unset CODE FEATURE'],
    ['feature platform api_ai --enable off',
     'feature platform FEATURE [--enabled on|off] [--rollout PERCENT]'],
    ['allow add acme 10.0.0.0/8 --force', 'allow add CODE CIDR'],
    ['allow clear acme --force', 'allow clear CODE'],
    ['ratelimit set acme ai 5 --force', 'ratelimit set CODE POLICY N|unlimited'],
    ['ratelimit unset acme ai --force', 'ratelimit unset CODE POLICY'],
    ['ratelimit list acme --force', 'ratelimit list CODE'],
    ['scim-token create acme --name t --expires 5',
     'scim-token create CODE --name NAME [--expires-days N]'],
    ['scim-token list acme --force', 'scim-token list CODE'],
    ['user erase acme bob --force',
     'user erase CODE USER (its id, email or SCIM userName)'],
    ['audit prune --dryrun', 'audit prune [--dry-run]'],
    ['audit export acme --from 2020-01-01 --to 2030-01-01 --fmt json',
     'audit export CODE --from TIME --to TIME [--format csv|json]'],
    ['audit retention set acme admin "2 years" --force',
     'audit retention set CODE|default CATEGORY INTERVAL'],
    ['sla set acme --p99-ms 100 --p95-ms 50',
     'sla set CODE --p99-ms N [--error-ratio R] [--min-requests N]'],
    ['sla list --force', 'sla list'],
    ['migrate --dry-run', 'migrate'],
    ['status --force', 'status'],
    ['version --force', 'version'])
{
    my ($args, $usage) = @$case;
    my ($opt) = $args =~ /(--(?!from|to|name|p99)[a-z0-9-]+)/;
    refused($args, 2,
            qr/\Aentctl: unknown option "\Q$opt\E"\nusage: entctl \Q$usage\E\n\z/,
            $args);
}

refused('tenant create Bad_Code --name X --colour x', 2,
        qr/unknown option "--colour"/, 'usage before the tenant code');
is(pg_sql("SELECT count(*) FROM ent.tenants WHERE code LIKE 'ok%'"), 0,
   'no tenant created by the refused commands');

for my $n (@nodes) {
    nginx_stop($n);
    check_log($n, "node $n->{id}");
}

done_testing;
