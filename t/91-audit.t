# The audit trail: events from real flows with every field, entctl's
# changes through the triggers, rate-limit rejections merged into one row
# per tenant, policy and minute across workers, the outage test (PostgreSQL
# stopped, 1,000 events over two workers, one of them killed with -9 in
# the middle, PostgreSQL back: exactly 1,000 rows), a journal that fills
# up, retention prune, and export.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use JSON::PP;
use Test::More;

pg_start();
redis_start();
echo_start();

my $entctl = "$EntTest::TOP/bin/entctl --dsn '" . EntTest::pg_dsn() . "'";

sub ctl {
    my ($args) = @_;
    my $out = `$entctl $args 2>&1`;
    die "entctl $args: $out" if $?;
    return $out;
}

sub row {
    my ($where, $cols) = @_;
    return pg_sql("SELECT $cols FROM ent.audit WHERE $where ORDER BY seq DESC LIMIT 1");
}

ctl("tenant create walled --name Walled --tier business");
ctl("allow add walled 10.0.0.0/8");
ctl("tenant create acme --name Acme --tier team");

my $walled = pg_sql("SELECT id FROM ent.tenants WHERE code = 'walled'");
my $acme = pg_sql("SELECT id FROM ent.tenants WHERE code = 'acme'");
my $actor = 'entctl:' . ($ENV{SUDO_USER} || $ENV{USER} || getpwuid($<) || 'unknown');

# entctl's changes, recorded by the triggers

is(row("action = 'tenant.create' AND target_id = 'walled'",
       "tenant_id || '|' || actor || '|' || actor_type || '|' || category "
       . "|| '|' || target_type || '|' || result || '|' || "
       . "(details->'changed'->>'code')"),
   "$walled|$actor|platform_admin|admin|tenant|success|walled",
   'tenant.create: the tenant, who ran entctl, admin, the new values');
is(row("action = 'tenant.update' AND tenant_id = '$walled'",
       "details->'changed'->>'allow_cidrs'"), '["10.0.0.0/8"]',
   'tenant.update: what changed (the allow-list)');

my $token = ctl("scim-token create acme --name okta");
$token =~ s/\s+\z//;
my $tok_id = pg_sql("SELECT id FROM ent.scim_tokens WHERE name = 'okta'");
is(row("action = 'scim_token.create'",
       "target_id || '|' || (details->'changed'->>'token_sha256') || '|' || "
       . "(details->'changed'->>'name')"), "$tok_id|(changed)|okta",
   'scim_token.create: the token id; its digest only named, never shown');
ctl("scim-token revoke acme $tok_id");
is(row("action = 'scim_token.revoke'", "target_id || '|' || tenant_id"),
   "$tok_id|$acme", 'scim_token.revoke');
ctl("sla set acme --p99-ms 250 --error-ratio 0.01");
is(row("action = 'tenant.sla.create'",
       "(details->'changed'->>'p99_ms') || '|' || category"), '250|admin',
   'tenant.sla.create');
unlike(pg_sql("SELECT string_agg(details::text || coalesce(reason, ''), ' ') FROM ent.audit"),
       qr/\Q$token\E/, 'no SCIM token anywhere in the trail');

# nginx: two workers behind one reuseport listener, so that both take
# connections

my $port2 = EntTest::free_port();
my $http = <<"CONF";
ent_postgres "\$TEST_PG_DSN" pool=2 backoff=50ms:300ms;
ent_redis 127.0.0.1:\$TEST_REDIS_PORT;
ent_cache_zone tenants:1m ttl=1h stale=1h;
ent_ratelimit_policy tight per=minute limit=2;
# (Redis may be slower than the 5 ms default on a loaded machine: the
# local fallback would count apart; this test is about the audit rows)
ent_ratelimit_budget 2s;
server {
    listen 127.0.0.1:$port2 reuseport;
    ent_tenant on;
    ent_tenant_base_domain example.com;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    location / { proxy_pass http://127.0.0.1:\$TEST_ECHO_PORT; }
    location /limited/ {
        ent_ratelimit tight;
        proxy_pass http://127.0.0.1:\$TEST_ECHO_PORT;
    }
}
CONF
my $n = nginx_start(workers => 2, http_config => $http,
                    config => 'location / { return 204; }');

# (not UTF-8 either, though a lax decoder takes them: PostgreSQL would
# refuse the whole batch of events over one of them)
my $ua = "audit-test/1.0 \x01 caf\xc3\xa9 \xff\"quote \xc3\xc3 \xed\xa0\x80 "
    . "\xe0\xff\xbf \xc0\xaf \xf4\x90\x80\x80 \xf0\x9f\x98\x80";
my $r = http($port2, '/secret?x=1', host => 'walled.example.com',
             headers => ['X-Forwarded-For: 192.0.2.7', "User-Agent: $ua"]);
is($r->{status}, 403, 'an address off the allow-list: 403');
ok(wait_until(sub { pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'ip.denied'") == 1 }, 5),
   'ip.denied: written in the background');
is(row("action = 'ip.denied'",
       "tenant_id || '|' || actor || '|' || actor_type || '|' || category || '|' "
       . "|| result || '|' || target_type || '|' || target_id || '|' || client_ip "
       . "|| '|' || reason || '|' || (details->>'uri')"),
   "$walled|192.0.2.7|anonymous|authorization|failure|tenant|walled|192.0.2.7|"
   . "client address not on the allow-list|/secret",
   '... tenant, actor (the real client address), category, target, reason, details');
like(row("action = 'ip.denied'", 'request_id'), qr/^[0-9a-f]{32}$/, '... the request id');
is(row("action = 'ip.denied'", 'user_agent'),
   "audit-test/1.0 \x01 caf\xc3\xa9 ?\"quote ?? ??? ??? ?? ???? \xf0\x9f\x98\x80",
   '... the User-Agent as sent, but each byte that is not UTF-8 replaced');
like(row("action = 'ip.denied'", "to_char(at, 'YYYY')"), qr/^20\d\d$/, '... its time');

# rate-limit rejections: one row per tenant, policy and minute, whichever
# worker counted them

my $sec = (gmtime)[0];
sleep(61 - $sec) if $sec > 45;
my %st;
for (1 .. 12) {
    my $s = http($port2, '/limited/', host => 'acme.example.com')->{status};
    $st{$s}++;
}
is($st{429}, 10, 'ratelimit: 10 of 12 refused');
# the counts go out when their minute ends, or when the worker exits; the
# next workers send what the last ones left
nginx_stop($n);
my @left = glob("$n->{prefix}/tmp/ent_audit/*.jnl");
ok(@left >= 1, 'after the stop, a journal holds the counts') or diag(`ls -la $n->{prefix}/tmp/ent_audit`);
nginx_start(instance => $n, workers => 2, http_config => $http,
            config => 'location / { return 204; }');
ok(wait_until(sub { pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'ratelimit.rejected'") >= 1 }, 8),
   'the next workers adopt the journal');
wait_until(sub { (pg_sql("SELECT sum((details->>'count')::int) FROM ent.audit WHERE action = 'ratelimit.rejected'") || 0) >= 10 }, 8);
is(pg_sql("SELECT count(*) || '|' || sum((details->>'count')::int) || '|' || min(target_id) "
          . "|| '|' || min(tenant_id::text) || '|' || min(category) || '|' || "
          . "min(to_char(at, 'SS')) FROM ent.audit WHERE action = 'ratelimit.rejected'"),
   "1|10|tight|$acme|ratelimit|00",
   'one row for the tenant, policy and minute, counting every rejection');

# a minute's count is sent when the minute is over (or earlier, when a
# worker exits): each part goes to the row of the minute it counts
pg_sql(<<"SQL");
SELECT ent.audit_write('[
 {"id":"00000000-0000-4000-8000-0000000000e1","at":"2026-06-01T10:00:59.000Z","merge":true,"action":"ratelimit.rejected","result":"failure","tenant":"$acme","target_type":"policy","target_id":"late","details":{"policy":"late","count":2,"minute":1780308000}},
 {"id":"00000000-0000-4000-8000-0000000000e2","at":"2026-06-01T10:01:01.500Z","merge":true,"action":"ratelimit.rejected","result":"failure","tenant":"$acme","target_type":"policy","target_id":"late","details":{"policy":"late","count":3,"minute":1780308000}},
 {"id":"00000000-0000-4000-8000-0000000000e3","at":"2026-06-01T10:01:01.600Z","merge":true,"action":"ratelimit.rejected","result":"failure","tenant":"$acme","target_type":"policy","target_id":"late","details":{"policy":"late","count":4,"minute":1780308060}}
]'::jsonb);
SQL
is(pg_sql("SELECT string_agg(to_char(at AT TIME ZONE 'UTC', 'HH24:MI') || '=' || (details->>'count'), ',' ORDER BY at) "
          . "FROM ent.audit WHERE target_id = 'late'"),
   '10:00=5,10:01=4', '... whenever each part was sent: 10:00 counted 2 + 3, 10:01 counted 4');

# the outage: PostgreSQL stopped, 1,000 events over two workers, one
# worker killed with -9 in the middle, PostgreSQL back

my $before = pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'ip.denied'");
http($port2, '/', host => 'walled.example.com');     # the tenant cached
wait_until(sub { pg_sql("SELECT count(*) FROM ent.audit WHERE action = 'ip.denied'") == $before + 1 }, 5);
pg_stop();

my (%pid_seen, $killed);
for my $i (1 .. 1000) {
    my $res = http($port2, "/outage/$i", host => 'walled.example.com',
                   headers => ['X-Forwarded-For: 192.0.2.99']);
    die "request $i: $res->{status}\n" unless $res->{status} == 403;
    if ($i == 500) {
        my @w = EntTest::worker_pids($n);
        $killed = $w[0];
        kill 'KILL', $killed;
        wait_until(sub { !kill 0, $killed }, 5);
        wait_until(sub { EntTest::worker_pids($n) == 2 }, 5);
    }
}
my (%lines, $total);
for my $f (glob("$n->{prefix}/tmp/ent_audit/*.jnl")) {
    open my $fh, '<', $f or next;
    my $c = () = grep { /192\.0\.2\.99/ } <$fh>;
    $lines{$f} = $c;
    $total += $c;
}
is($total, 1000, 'PostgreSQL down: all 1,000 events in the journals on disk');
ok((grep { $_ > 0 } values %lines) >= 2, '... of more than one worker')
    or diag(explain \%lines);
# (named by its pid, time and a random number: a later worker with the
# same pid never takes it over)
my ($killed_jnl) = grep { m{/audit-$killed-[0-9a-f]+-[0-9a-f]{8}\.jnl$} } keys %lines;
ok($killed_jnl, '... the killed worker\'s journal left behind')
    or diag(join ' ', keys %lines);

pg_start();
ok(wait_until(sub { pg_sql("SELECT count(*) FROM ent.audit WHERE client_ip = '192.0.2.99'") >= 1000 }, 30),
   'PostgreSQL back: the events arrive');
sleep 3;
is(pg_sql("SELECT count(*) || '|' || count(DISTINCT details->>'uri') FROM ent.audit WHERE client_ip = '192.0.2.99'"),
   '1000|1000', 'exactly 1,000 rows: nothing lost, nothing twice');
ok(wait_until(sub { !-e $killed_jnl }, 5),
   'the killed worker\'s journal adopted and removed');
my $log = check_log($n, 'outage', allow => qr/exited on signal 9/);
like($log, qr/adopting "\Q$killed_jnl\E"/, '... the adoption logged');

# a journal that fills up: a clear error-log line, and nothing written
# twice or out of order when it drains

my $small = nginx_start(http_config => <<'CONF' . 'ent_audit_journal $TEST_TMP/small max_size=64k;',
ent_postgres "$TEST_PG_DSN" pool=1 backoff=50ms:300ms;
ent_cache_zone tenants:1m ttl=1h stale=1h;
CONF
    config => "ent_tenant on;\nent_tenant_base_domain example.com;\n"
              . "location / { proxy_pass http://127.0.0.1:\$TEST_ECHO_PORT; }");
http($small, '/', host => 'walled.example.com');
sleep 1;
pg_stop();
for my $i (1 .. 300) {
    http($small, "/full/$i", host => 'walled.example.com');
}
my ($jnl) = glob(EntTest::tmpdir() . "/small/*.jnl");
ok($jnl && -s $jnl <= 65536, 'the journal stops at max_size') or diag($jnl);
my $kept = 0;
if ($jnl && open my $fh, '<', $jnl) {
    $kept = () = <$fh>;
}
ok($kept > 50 && $kept < 300, "... holding $kept events");
$log = nginx_log($small);
is(scalar(() = $log =~ /ent audit: journal "[^"]+" is full/g), 1,
   '... and says so in the error log, once');
pg_start();
ok(wait_until(sub { pg_sql("SELECT count(*) FROM ent.audit WHERE details->>'uri' LIKE '/full/%'") == $kept }, 20),
   'PostgreSQL back: what was kept arrives');
is(pg_sql("SELECT min((substr(details->>'uri', 7))::int) || '|' || max((substr(details->>'uri', 7))::int) FROM ent.audit WHERE details->>'uri' LIKE '/full/%'"),
   "1|$kept", '... the first events, in order: the drop was at the end');
ok(wait_until(sub { nginx_log($small) =~ /drained, events are kept again/ }, 5),
   '... and the journal says it is drained');
nginx_stop($small);

# a steady flow with PostgreSQL up but each batch slow: events keep coming
# while every batch is in flight, so the journal is never all committed;
# it must neither fill up (what is committed does not count) nor grow
# without end (what is not moves to a new journal)

my $steady_dir = EntTest::tmpdir() . '/steady';
mkdir $steady_dir;
pg_sql(q{CREATE FUNCTION public.ent_test_slow() RETURNS trigger LANGUAGE plpgsql
         AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$});
pg_sql('CREATE TRIGGER ent_test_slow AFTER INSERT ON ent.audit '
       . 'FOR EACH STATEMENT EXECUTE FUNCTION public.ent_test_slow()');
my $steady = nginx_start(http_config => <<'CONF' . "ent_audit_journal $steady_dir max_size=512k flush=20ms;",
ent_postgres "$TEST_PG_DSN" pool=1 backoff=50ms:300ms;
ent_cache_zone tenants:1m ttl=1h stale=1h;
CONF
    config => "ent_tenant on;\nent_tenant_base_domain example.com;\n"
              . "location / { proxy_pass http://127.0.0.1:\$TEST_ECHO_PORT; }");
http($steady, '/', host => 'walled.example.com');
my ($first_jnl) = glob("$steady_dir/*.jnl");
my $steady_n = 1500;
for my $i (1 .. $steady_n) {
    http($steady, "/steady/$i", host => 'walled.example.com');
}
ok(wait_until(sub { pg_sql("SELECT count(*) FROM ent.audit WHERE details->>'uri' LIKE '/steady/%'") == $steady_n }, 30),
   "a steady flow, each batch slow: all $steady_n events in PostgreSQL")
    or diag(pg_sql("SELECT count(*) FROM ent.audit WHERE details->>'uri' LIKE '/steady/%'"));
unlike(nginx_log($steady), qr/is full/, '... the journal never full');
my @steady_jnl = glob("$steady_dir/*.jnl");
is(scalar @steady_jnl, 1, '... one journal');
ok($first_jnl && $steady_jnl[0] && $steady_jnl[0] ne $first_jnl && -s $steady_jnl[0] <= 524288,
   '... a new one: what was committed is gone from the disk')
    or diag(`ls -la $steady_dir`);
pg_sql('DROP TRIGGER ent_test_slow ON ent.audit');

# a batch PostgreSQL refuses as data: only the one event it refuses is set
# aside, the others are written

pg_sql(q{CREATE FUNCTION public.ent_test_refuse() RETURNS trigger LANGUAGE plpgsql
         AS $$ BEGIN
             IF NEW.details->>'uri' = '/refused/5' THEN
                 RAISE EXCEPTION 'refused' USING ERRCODE = '22023';
             END IF;
             RETURN NEW;
         END $$});
pg_sql('CREATE TRIGGER ent_test_refuse BEFORE INSERT ON ent.audit '
       . 'FOR EACH ROW EXECUTE FUNCTION public.ent_test_refuse()');
pg_stop();
for my $i (1 .. 10) {
    http($steady, "/refused/$i", host => 'walled.example.com');
}
pg_start();
ok(wait_until(sub { pg_sql("SELECT count(*) FROM ent.audit WHERE details->>'uri' LIKE '/refused/%'") == 9 }, 30),
   'a batch with one event PostgreSQL refuses: the 9 others written');
is(pg_sql("SELECT string_agg(substr(details->>'uri', 10), ',' ORDER BY (substr(details->>'uri', 10))::int) "
          . "FROM ent.audit WHERE details->>'uri' LIKE '/refused/%'"),
   '1,2,3,4,6,7,8,9,10', '... all but the refused one');
my ($rejected) = glob("$steady_dir/*.rejected");
my $set_aside = '';
if ($rejected && open my $fh, '<', $rejected) {
    local $/;
    $set_aside = <$fh>;
}
is(scalar(() = $set_aside =~ /\n/g) . '|' . ($set_aside =~ m{"uri":"/refused/5"} ? 'it' : 'not it'),
   '1|it', '... which alone is set aside beside the journal');
like(nginx_log($steady), qr/PostgreSQL refused an event \(SQLSTATE 22023\), set aside/,
     '... and logged');
pg_sql('DROP TRIGGER ent_test_refuse ON ent.audit');
nginx_stop($steady);

# a journal that cannot be created (a full or read-only disk; here a file
# where its directory was): the workers a reload starts serve on and drop
# the events (before, they exited at start, and the master gives up on a
# worker that fails to start), and keep them again once it can be

my $late_dir = EntTest::tmpdir() . '/late';
my $late_http = <<'CONF' . "ent_audit_journal $late_dir;";
ent_postgres "$TEST_PG_DSN" pool=1 backoff=50ms:300ms;
ent_cache_zone tenants:1m ttl=1h stale=1h;
CONF
my $late_conf = "ent_tenant on;\nent_tenant_base_domain example.com;\n"
    . "location / { proxy_pass http://127.0.0.1:\$TEST_ECHO_PORT; }";
my $late = nginx_start(http_config => $late_http, config => $late_conf);
system('rm', '-rf', $late_dir);
open my $blocker, '>', $late_dir or die "$late_dir: $!";
close $blocker;
my $reloaded = eval { nginx_reload($late); 1 };
ok($reloaded, 'no journal can be made: the reload still starts workers')
    or diag($@);
is(http($late, '/late/1', host => 'walled.example.com')->{status}, 403,
   '... which answer requests');
like(nginx_log($late), qr/\[alert\].*no journal: events are dropped/, '... an alert says why');
unlink $late_dir;
mkdir $late_dir;
ok(wait_until(sub { nginx_log($late) =~ /created, events are kept again/ }, 5),
   '... the journal made once it can be');
http($late, '/late/2', host => 'walled.example.com');
ok(wait_until(sub { pg_sql("SELECT count(*) FROM ent.audit WHERE details->>'uri' LIKE '/late/%'") == 1 }, 5),
   '... and events written again');
nginx_stop($late);

# retention: entctl audit prune

pg_sql(<<"SQL");
SELECT ent.audit_write('[
 {"id":"00000000-0000-4000-8000-000000000001","at":"2017-01-10T00:00:00Z","action":"login","result":"success","tenant":"$acme"},
 {"id":"00000000-0000-4000-8000-000000000002","at":"2024-01-10T00:00:00Z","action":"authz","result":"failure","tenant":"$acme"},
 {"id":"00000000-0000-4000-8000-000000000003","at":"2024-01-10T00:00:00Z","action":"login","result":"success","tenant":"$acme"},
 {"id":"00000000-0000-4000-8000-000000000004","at":"2024-01-10T00:00:00Z","action":"authz","result":"failure","tenant":"$walled"}
]'::jsonb);
SQL
ctl("audit retention set walled authorization '8 years'");
like(ctl("audit retention list"), qr/tenant=walled\ncategory=authorization\nkeep=8 years/,
     'retention list: the tenant\'s contract');
my $dry = ctl("audit prune --dry-run");
like($dry, qr/partition=audit_201701\nwhat=dropped\nrows=1/, 'dry run: the January 2017 month would go');
like($dry, qr/partition=audit_202401\nwhat=rows expired\nrows=1/, '... and one 2024 row');
is(pg_sql("SELECT count(*) FROM ent.audit WHERE at < '2025-01-01'"), 4, '... nothing done');
ctl("audit prune");
is(pg_sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM ent.audit WHERE at < '2025-01-01'"),
   '00000000-0000-4000-8000-000000000003,00000000-0000-4000-8000-000000000004',
   'prune: past the longest retention gone with its partition; authorization '
   . 'past 2 years gone, authentication kept 7, the tenant\'s contract kept 8');
is(pg_sql("SELECT to_regclass('ent.audit_201701') IS NULL"), 't', '... the partition dropped');
like(row("action = 'audit.prune'", "actor || '|' || (details->'pruned')::text"),
     qr/^\Q$actor\E\|\[\{"dropped": 1, "partition": "audit_201701"\}/,
     '... and the prune recorded, with who ran it');

# export

# cells a spreadsheet would run as formulas
pg_sql(<<"SQL");
SELECT ent.audit_write('[
 {"id":"00000000-0000-4000-8000-0000000000f1","at":"2026-06-01T00:00:00Z","action":"login","result":"failure","tenant":"$walled","ua":"=HYPERLINK(\\"http://evil.example/\\",\\"x\\")"},
 {"id":"00000000-0000-4000-8000-0000000000f2","at":"2026-06-01T00:00:01Z","action":"login","result":"failure","tenant":"$walled","ua":"\@SUM(A1)"}
]'::jsonb);
SQL
my $csv = ctl("audit export walled --from 2026-01-01 --to 2100-01-01 --format csv");
my @rows = split /\r\n/, $csv;
is($rows[0], 'at,id,tenant_id,actor,actor_type,action,category,target_type,'
   . 'target_id,result,reason,client_ip,user_agent,request_id,details',
   'export csv: a header');
is(scalar(@rows) - 1, pg_sql("SELECT count(*) FROM ent.audit WHERE tenant_id = '$walled' AND at >= '2026-01-01'"),
   '... a line per event');
like($csv, qr/,ip\.denied,authorization,tenant,walled,failure,client address not on the allow-list,192\.0\.2\.7,"audit-test/,
     '... quoted where it must be');
like($csv, qr/,"'=HYPERLINK\(""http:\/\/evil\.example\/"",""x""\)",/,
     '... a formula-like cell made text');
like($csv, qr/,'\@SUM\(A1\),/, '... also when not quoted');
my @json = split /\n/, ctl("audit export walled --from 2026-01-01 --to 2100-01-01 --format json");
my @obj = map { decode_json($_) } @json;
is(scalar(@obj), scalar(@rows) - 1, 'export json: one object per line');
my ($den) = grep { $_->{action} eq 'ip.denied' && $_->{client_ip} eq '192.0.2.7' } @obj;
is($den->{details}{uri}, '/secret', '... details as JSON');
is($den->{tenant_id}, $walled, '... every field');
my $none = ctl("audit export walled --from 2000-01-01 --to 2000-02-01 --format json");
is($none, '', 'an empty range: nothing');
like(`$entctl audit export walled --from 2026-01-01 2>&1`, qr/usage/, 'without --to: usage');

done_testing();
