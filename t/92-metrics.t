# Per-tenant metrics at /_ent/metrics (Prometheus text): exact counts
# after a known sequence of requests over two workers, histograms whose
# buckets add up to their count, the cardinality cap (top N, the rest as
# "_other"), and the SLA: a violation that starts with an artificially
# slow upstream and ends when it is fast again, each an audit event.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();
redis_start();
echo_start();

pg_sql(<<'SQL');
INSERT INTO ent.tenants (code, display_name, plan_id)
VALUES ('ta', 'A', 'team'), ('tb', 'B', 'team'), ('tc', 'C', 'team'),
       ('td', 'D', 'team'), ('slow', 'Slow', 'enterprise'),
       ('steady', 'Steady', 'enterprise');
INSERT INTO ent.sla_targets (tenant_id, p99_ms, error_ratio, min_requests)
SELECT id, 100, 0.5, 3 FROM ent.tenants WHERE code = 'slow';
INSERT INTO ent.sla_targets (tenant_id, p99_ms, error_ratio, min_requests)
SELECT id, 400, 0.5, 3 FROM ent.tenants WHERE code = 'steady';
SQL

sub metrics_conf {
    my ($zone) = @_;
    my $mport = EntTest::free_port();
    return ($mport, <<"CONF");
ent_postgres "\$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:\$TEST_REDIS_PORT;
ent_cache_zone tenants:1m ttl=1h;
ent_metrics_zone $zone;
ent_ratelimit_policy tight per=minute limit=1;
ent_ratelimit_budget 2s;
server {
    listen 127.0.0.1:$mport;
    location = /_ent/metrics {
        allow 127.0.0.1;
        deny all;
        ent_metrics;
    }
}
CONF
}

my $config = <<'CONF';
ent_tenant on;
ent_tenant_base_domain example.com;
location / { proxy_pass http://127.0.0.1:$TEST_ECHO_PORT; }
location /missing { return 404; }
location /boom { return 500; }
location /scim/v2/ { ent_scim on; }
location /health {
    ent_metrics_log off;
    return 200;
}
location /limited/ {
    ent_ratelimit tight;
    proxy_pass http://127.0.0.1:$TEST_ECHO_PORT;
}
CONF

my ($mport, $http) = metrics_conf('1m top=2 window=3s');
my $n = nginx_start(workers => 2, http_config => $http, config => $config);

sub get { return http($n, $_[1], host => "$_[0].example.com")->{status} }

my @st;
push @st, get('ta', '/') for 1 .. 3;
push @st, get('ta', '/missing') for 1 .. 2;
push @st, get('tb', '/boom');
push @st, get('tc', '/') for 1 .. 2;
push @st, get('td', '/limited/') for 1 .. 3;
push @st, get('ta', '/health') for 1 .. 2;
is(join(',', @st), '200,200,200,404,404,500,200,200,200,429,429,200,200',
   'a known sequence of requests');

sub scrape {
    my $r = http($mport, '/_ent/metrics');
    return $r;
}

my $r = scrape();
is($r->{status}, 200, '/_ent/metrics: 200');
like($r->{headers}{'content-type'}[0], qr{^text/plain; version=0\.0\.4},
     '... the Prometheus text format');
my $t = $r->{body};

sub value {
    my ($line) = @_;
    return $t =~ /^\Q$line\E (\S+)$/m ? $1 : undef;
}

is(value('ent_requests_total{tenant="ta",class="2xx"}'), 3,
   'ta: 3 2xx (its health checks, ent_metrics_log off, not counted)');
is(value('ent_requests_total{tenant="ta",class="4xx"}'), 2, 'ta: 2 4xx');
is(value('ent_requests_total{tenant="td",class="2xx"}'), 1, 'td: 1 2xx');
is(value('ent_requests_total{tenant="td",class="4xx"}'), 2, 'td: 2 4xx (the 429s)');
is(value('ent_ratelimit_rejections_total{tenant="td"}'), 2, 'td: 2 rate-limit rejections');
is(value('ent_requests_total{tenant="_other",class="2xx"}'), 2,
   'top 2 named; tc (2) and tb (1) as "_other": 2 2xx');
is(value('ent_requests_total{tenant="_other",class="5xx"}'), 1, '... and 1 5xx');
unlike($t, qr/tenant="t[bc]"/, 'tb and tc not named');
is(value('ent_metrics_tenants'), 6, 'six tenants have a slot (four seen, two with SLA targets)');

for my $tn (qw(ta td _other)) {
    my @b = $t =~ /^ent_request_duration_seconds_bucket\{tenant="$tn",le="[^"]+"\} (\d+)$/mg;
    my $count = value(qq{ent_request_duration_seconds_count{tenant="$tn"}});
    is(scalar(@b), 12, "$tn: 12 latency buckets");
    my $mono = 1;
    $mono &&= $b[$_] >= $b[$_ - 1] for 1 .. $#b;
    ok($mono, "$tn: cumulative");
    is($b[-1], $count, "$tn: +Inf equals the count");
    is($count, { ta => 5, td => 3, _other => 3 }->{$tn}, "$tn: the count is the requests");
    like(value(qq{ent_request_duration_seconds_sum{tenant="$tn"}}), qr/^\d+\.\d{3}$/, "$tn: a sum");
}
is(value('ent_upstream_response_seconds_count{tenant="ta"}'), 3,
   'upstream time: only the 3 proxied requests of ta');
is(value('ent_upstream_response_seconds_count{tenant="td"}'), 1,
   '... and td\'s one');
ok(value('ent_sent_bytes_total{tenant="ta"}') > 5 * 100, 'bytes sent');
ok(value('ent_received_bytes_total{tenant="ta"}') > 5 * 30, 'bytes received');
is(value('ent_node_requests_total{class="2xx"}'), 6, 'the node: 6 2xx');
is(value('ent_node_request_duration_seconds_count'), 11, 'the node: 11 requests');
like(value('ent_request_duration_window_seconds{tenant="ta",quantile="0.99"}'),
     qr/^\d+\.\d{6}$/, 'p99 over the window');
like($t, qr/^ent_cache_hits_total\{zone="tenants"\} \d+$/m, 'cache hits');
like($t, qr/^ent_backend_errors_total\{backend="postgres"\} 0$/m, 'backend errors');
like($t, qr/^# TYPE ent_request_duration_seconds histogram$/m, 'TYPE lines');

# every line: a comment or a sample
my @bad = grep { !/^(# (HELP|TYPE) \S+ .+|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?\d+(\.\d+)?)$/ }
          split /\n/, $t;
ok(!@bad, 'every line parses') or diag(join "\n", @bad[0 .. 4]);

is(http($mport, 'POST /_ent/metrics')->{status}, 405, 'POST: 405');

# a reload keeps the counts; the new workers count on
nginx_reload($n, http_config => $http, config => $config, workers => 2);
get('ta', '/');
$t = scrape()->{body};
is(value('ent_requests_total{tenant="ta",class="2xx"}'), 4, 'after a reload: the counts kept, the new request counted');
nginx_reload($n, http_config => $http, config => $config, workers => 2);
get('ta', '/') for 1 .. 2;
$t = scrape()->{body};
is(value('ent_requests_total{tenant="ta",class="2xx"}'), 6, '... and after another');

# tc overtakes td: the named ones stay named, so that no counter goes back
# (td's counts moving to "_other" and tc's out of it would lower both)
get('tc', '/') for 1 .. 5;
$t = scrape()->{body};
is(join('|', map { value(qq{ent_requests_total{tenant="$_",class="2xx"}}) // 'none' } qw(td tc _other)),
   '1|none|7', 'a tenant past a named one stays in "_other", which only grows');
nginx_stop($n);
check_log($n, 'metrics');

# the SLA: p99 over 100 ms with a 300 ms upstream starts a violation; a
# fast upstream for longer than the window ends it

($mport, $http) = metrics_conf('1m top=10 window=3s');
$n = nginx_start(workers => 2, http_config => $http, config => $config);

sub sla_events {
    return pg_sql("SELECT string_agg(action, ',' ORDER BY seq) FROM ent.audit "
                  . "WHERE action LIKE 'sla.violation%'") // '';
}

# SCIM operations and errors, per tenant
my $entctl = "$EntTest::TOP/bin/entctl --dsn '" . EntTest::pg_dsn() . "'";
my $stok = `$entctl scim-token create tb --name t 2>/dev/null`;
chomp $stok;
my @sc = map { http($n, $_->[0], host => 'tb.example.com',
                    headers => ["Authorization: Bearer $stok", 'Content-Type: application/scim+json'],
                    body => $_->[1])->{status} }
    ['GET /scim/v2/Users'], ['GET /scim/v2/Users/00000000-0000-4000-8000-000000000009'],
    ['POST /scim/v2/Users', '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}'];
is(join(',', @sc), '200,404,400', 'three SCIM requests');
$t = scrape()->{body};
is(value('ent_scim_operations_total{tenant="tb"}'), 3, 'ent_scim_operations_total 3');
is(value('ent_scim_errors_total{tenant="tb"}'), 2, 'ent_scim_errors_total 2');

get('slow', '/?ent_delay=300') for 1 .. 4;
ok(wait_until(sub { sla_events() eq 'sla.violation_start' }, 10),
   'a slow upstream: sla.violation_start');
my $row = pg_sql("SELECT target_id || '|' || result || '|' || reason || '|' || "
                 . "(details->>'target_p99_ms') || '|' || (details->>'requests') "
                 . "|| '|' || ((details->>'p99_ms')::int >= 250)::text FROM ent.audit "
                 . "WHERE action = 'sla.violation_start'");
is($row, 'slow|failure|p99 latency over target|100|3|true',
   '... the tenant, why, the target, the window\'s requests (min_requests 3) and p99');
$t = scrape()->{body};
is(value('ent_sla_violation{tenant="slow"}'), 1, 'ent_sla_violation 1');
is(value('ent_sla_target_p99_seconds{tenant="slow"}'), '0.100', 'the target');
is(value('ent_sla_window_requests{tenant="slow"}'), 4, 'the window\'s requests');

my $end = time + 4.5;
get('slow', '/'), sleep(0.2) while time < $end;
ok(wait_until(sub { sla_events() eq 'sla.violation_start,sla.violation_end' }, 5),
   'fast again for a whole window: sla.violation_end, once');
$t = scrape()->{body};
is(value('ent_sla_violation{tenant="slow"}'), 0, 'ent_sla_violation 0');
sleep 1;
is(sla_events(), 'sla.violation_start,sla.violation_end', 'no more events');

# every request at 260 ms against a 400 ms target: within it.  (A p99
# read off the histogram falls in its 250-500 ms bucket, at 497 ms; the
# target is judged on the requests over it, counted exactly.)
get('steady', '/?ent_delay=260') for 1 .. 4;
sleep 1;
is(pg_sql("SELECT count(*) FROM ent.audit WHERE action LIKE 'sla.violation%' "
          . "AND target_id = 'steady'"), 0,
   'requests slower than a bucket bound but within the target: no violation');
$t = scrape()->{body};
is(value('ent_sla_violation{tenant="steady"}') . '|' . value('ent_sla_window_requests{tenant="steady"}'),
   '0|4', '... ent_sla_violation 0, over the 4 requests');
nginx_stop($n);
check_log($n, 'sla');

done_testing();
