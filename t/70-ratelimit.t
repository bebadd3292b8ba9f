# Fleet-wide rate limits: exact across three nginx instances, per tier,
# several policies per location (a rejection takes every count back), key
# types, dry run, IETF headers, and Redis failing each configured way.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();
redis_start();

pg_sql("INSERT INTO ent.tenants (code, display_name, plan_id) VALUES "
       . "('free1', 'F', 'free'), ('team1', 'T', 'team'), "
       . "('big1', 'B', 'business')");

# a day window: keep clear of midnight UTC
my $into = time % 86400;
sleep(86400 - $into + 1) if $into > 86400 - 30;

# the upstream: a plain nginx of its own
my $up = nginx_start(modules => ['core'],
                     config => 'location / { return 200 "ok\n"; }')->{port};

my $http = <<'CONF';
ent_postgres "$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:$TEST_REDIS_PORT timeout=300ms backoff=20ms:200ms;
ent_ratelimit_budget 2s;
ent_ratelimit_policy exact per=day limit=30 key=ip;
ent_ratelimit_policy ai per=hour free=3 team=5 business=unlimited;
ent_ratelimit_policy api per=minute limit=10;
ent_ratelimit_policy bykey per=day limit=2 key=$http_x_api_key;
ent_ratelimit_policy trial per=day limit=1 key=ip dry_run;
ent_ratelimit_policy paid per=day limit=1 key=ip status=402;
ent_ratelimit_policy open per=day limit=1 key=$http_x_open fail=open;
ent_ratelimit_policy closed per=day limit=1 key=$http_x_closed fail=closed;
ent_ratelimit_policy local per=day limit=4 nodes=2 key=$http_x_local fail=local;
ent_ratelimit_policy dryclosed per=day limit=1 key=$http_x_mixed fail=closed dry_run;
ent_ratelimit_policy tight per=day limit=1 key=$http_x_mixed fail=local;
ent_ratelimit_policy lopen per=day limit=1 key=$http_x_legacy fail=open;
ent_ratelimit_policy bursty per=hour limit=100 burst=2 key=$http_x_burst;
ent_ratelimit_policy llocal per=day limit=100 key=$http_x_legacy fail=local;
ent_ratelimit_policy leased per=day limit=30 key=$http_x_lease lease=10 nodes=3;
CONF

my $config = <<'CONF';
add_header X-RL "$ent_ratelimit_status" always;
location = /exact { ent_ratelimit exact; return 200 "ok\n"; }
location = /leased { ent_ratelimit leased; proxy_pass http://127.0.0.1:$server_port/ok; }
location = /ok { return 200 "ok\n"; }
location /t/ {
    ent_ratelimit ai api;
    ent_ratelimit_legacy_headers on;
    proxy_pass http://127.0.0.1:$server_port/ok;
}
location = /rlstatus { ent_ratelimit_status; }
location = /burst { ent_ratelimit bursty; proxy_pass http://127.0.0.1:$server_port/ok; }
location /scim/v2/ { ent_ratelimit ai; proxy_pass http://127.0.0.1:$server_port/ok; }
location = /key { ent_ratelimit bykey; proxy_pass http://127.0.0.1:$server_port/ok; }
location = /trial { ent_ratelimit trial; proxy_pass http://127.0.0.1:$server_port/ok; }
location = /paid { ent_ratelimit paid; proxy_pass http://127.0.0.1:$server_port/ok; }
location = /open { ent_ratelimit open; proxy_pass http://127.0.0.1:$server_port/ok; }
location = /closed { ent_ratelimit closed; proxy_pass http://127.0.0.1:$server_port/ok; }
location = /local { ent_ratelimit local; proxy_pass http://127.0.0.1:$server_port/ok; }
location = /mixed { ent_ratelimit dryclosed tight; proxy_pass http://127.0.0.1:$server_port/ok; }
location = /legacy {
    ent_ratelimit lopen llocal;
    ent_ratelimit_legacy_headers on;
    proxy_pass http://127.0.0.1:$server_port/ok;
}
CONF

# "return" runs before PREACCESS: proxy to a plain upstream instead
$config =~ s{proxy_pass http://127.0.0.1:\$server_port/ok;}{proxy_pass http://127.0.0.1:$up/ok;}g;
$config =~ s{location = /exact \{ ent_ratelimit exact; return 200 "ok\\n"; \}}{location = /exact { ent_ratelimit exact; proxy_pass http://127.0.0.1:$up/ok; }};

my @nodes = map { nginx_start(http_config => $http, config => $config) } 1 .. 3;
my $n = $nodes[0];

# exactness: 120 concurrent requests over three nodes, a limit of 30

my @h;
for my $i (0 .. 119) {
    push @h, http_start($nodes[$i % 3], '/exact');
}
my %by;
$by{ http_finish($_)->{status} }++ for @h;
is($by{200}, 30, 'exactly 30 admitted across three nodes');
is($by{429}, 90, 'the other 90 refused');
is(redis_cli('--scan', '--pattern', 'rl:{t:-}:exact:*') ne '', 1,
   'counted under a tenant hash tag');
my ($key) = grep { /exact/ } split /\n/, redis_cli('--scan', '--pattern', 'rl:*');
is(redis_cli('GET', $key), 30, 'and rejected requests consumed nothing');
ok(redis_cli('TTL', $key) > 86400, 'the key expires after its window');

# lease=10: each node takes counts ahead in Redis and admits from them
# without a round trip; still exactly the limit over the fleet.  A burst
# of 120 at once, then 60 one by one over the nodes (which use up any
# count a node still holds): 30 admitted in all, and Redis ends at 30

sub incrby_calls {
    my ($c) = redis_cli('INFO', 'commandstats') =~ /cmdstat_incrby:calls=(\d+)/;
    return $c // 0;
}
my $calls0 = incrby_calls();
my %lb;
@h = map { http_start($nodes[$_ % 3], '/leased', headers => ['X-Lease: b']) } 0 .. 119;
$lb{ http_finish($_)->{status} }++ for @h;
ok(($lb{200} // 0) <= 30, 'lease: a burst of 120 admits at most 30 ('
   . ($lb{200} // 0) . ')');
for my $i (0 .. 59) {
    $lb{ http($nodes[$i % 3], '/leased', headers => ['X-Lease: b'])->{status} }++;
}
is_deeply(\%lb, { 200 => 30, 429 => 150 },
          'lease: exactly 30 admitted over the fleet, 150 refused');
my ($lkey) = grep { /:leased:/ } split /\n/, redis_cli('--scan', '--pattern', 'rl:*');
ok(wait_until(sub { redis_cli('GET', $lkey) eq '30' }, 2),
   'lease: Redis counts 30, what went over the limit was given back');

# one by one, the leases do save round trips
$calls0 = incrby_calls();
%lb = ();
for my $i (0 .. 29) {
    $lb{ http($nodes[$i % 3], '/leased', headers => ['X-Lease: s'])->{status} }++;
}
my $calls = incrby_calls() - $calls0;
is_deeply(\%lb, { 200 => 30 }, 'lease: 30 one by one, all admitted');
ok($calls < 20, "lease: fewer Redis increments than requests ($calls for 30)");
is(http($n, '/leased', headers => ['X-Lease: s'])->{status}, 429,
   'lease: then the limit holds');

# tiers, headers

# API clients by default: a browser (Accept: text/html) gets a page
sub get {
    my ($host, $path, @h) = @_;
    push @h, 'Accept: application/json' unless grep { /^Accept:/i } @h;
    return http($n, $path, host => $host, headers => \@h);
}

# fixed windows: keep a few seconds clear of the next minute (and hour)
sub clear_of {
    my ($period, $margin) = @_;
    my $left = $period - time % $period;
    sleep($left + 0.05) if $left <= $margin;
}

my $ten = "ent_tenant on; ent_tenant_base_domain example.com;";
nginx_stop($_) for @nodes;
clear_of(60, 5);
$n = nginx_start(http_config => $http, config => "$ten\n$config");

my $r = get('free1.example.com', '/t/x');
is($r->{status}, 200, 'free tier: admitted');
is($r->{headers}{'ratelimit-policy'}[0], '"ai";q=3;w=3600, "api";q=10;w=60',
   'RateLimit-Policy names both policies');
my ($ai_r, $ai_t, $api_r, $api_t) = ($r->{headers}{ratelimit}[0] // '')
    =~ /^"ai";r=(\d+);t=(\d+), "api";r=(\d+);t=(\d+)$/;
is($ai_r, 2, 'RateLimit: remaining of ai');
is($api_r, 9, 'RateLimit: remaining of api');
ok($ai_t >= 1 && $ai_t <= 3600 && $api_t >= 1 && $api_t <= 60,
   'RateLimit: delta seconds to the resets');
is($r->{headers}{'x-ratelimit-remaining'}[0], 2,
   'legacy headers: the policy with the least left');
is($r->{headers}{'x-rl'}[0], 'PASSED', '$ent_ratelimit_status');

get('free1.example.com', '/t/x') for 1 .. 2;
$r = get('free1.example.com', '/t/x');
is($r->{status}, 429, 'the 4th request of a free tenant: 429');
is($r->{headers}{'content-type'}[0], 'application/problem+json',
   'a problem+json body');
like($r->{body}, qr/^\{"type":"quota-exceeded","title":"Too Many Requests","status":429,"policy":"ai","limit":3,"window":3600,"retry_after":(\d+)\}$/,
     'naming the policy, its limit and when it resets');
my ($retry) = $r->{body} =~ /"retry_after":(\d+)/;
is($r->{headers}{'retry-after'}[0], $retry, 'Retry-After agrees');
ok($retry >= $ai_t - 2, 'and is never earlier than t');
is($r->{headers}{'x-rl'}[0], 'REJECTED', 'status REJECTED');

like($r->{headers}{ratelimit}[0], qr/^"ai";r=0;t=\d+, "api";r=7;t=\d+$/,
     'a rejection did not consume api: 7 left after 3 admitted');

# a browser gets the tenant's page; SCIM clients the SCIM error envelope
$r = get('free1.example.com', '/t/x', 'Accept: text/html');
is($r->{status}, 429, 'a browser: 429 too');
is($r->{headers}{'content-type'}[0], 'text/html', 'as an HTML page');
like($r->{body}, qr{<title>F - Too many requests</title>.*The limit of the "ai" policy is reached\. Try again in \d+ seconds\.}s,
     "with the tenant's name and the policy");
ok(defined $r->{headers}{'retry-after'}[0], 'and Retry-After');
$r = get('free1.example.com', '/scim/v2/Users');
is($r->{status}, 429, 'under /scim/v2: 429');
is($r->{headers}{'content-type'}[0], 'application/scim+json',
   'application/scim+json');
like($r->{body}, qr/^\{"schemas":\["urn:ietf:params:scim:api:messages:2\.0:Error"\],"status":"429","detail":"Too many requests: policy ai, retry after \d+ s"\}$/,
     'the SCIM error envelope');

for (1 .. 5) { get('team1.example.com', '/t/x') }
is(get('team1.example.com', '/t/x')->{status}, 429, 'team: the 6th refused');
is(scalar(grep { get('big1.example.com', '/t/x')->{status} == 200 } 1 .. 8),
   8, 'business: unlimited for ai (api still counts)');

# burst=2: at most 2 of the hour's 100 within one second

{
    clear_of(3600, 5);                      # the hour's count is read below
    my $frac = time - int(time);
    sleep(1.02 - $frac) if $frac > 0.5;     # well inside one second
    my @b = map { get('free1.example.com', '/burst', 'X-Burst: b1') } 1 .. 3;
    is(join(',', map { $_->{status} } @b), '200,200,429',
       'burst=2: the third request within a second is refused');
    is($b[0]{headers}{'ratelimit-policy'}[0],
       '"bursty";q=100;w=3600, "bursty-burst";q=2;w=1',
       'RateLimit-Policy names the window and the burst');
    like($b[2]{body}, qr/"policy":"bursty-burst"/, 'the 429 names the burst');
    sleep 1.1;
    $frac = time - int(time);
    sleep(1.02 - $frac) if $frac > 0.5;     # the next two in one second
    is(get('free1.example.com', '/burst', 'X-Burst: b1')->{status}, 200,
       'the next second: admitted again');
    like(get('free1.example.com', '/burst', 'X-Burst: b1')->{headers}{ratelimit}[0],
         qr/^"bursty";r=96;t=\d+, "bursty-burst";r=0;t=1$/,
         'the hour counted every admitted request, not the refused one');
}

# key types: a variable, long values hashed, an empty value not limited

is(get('free1.example.com', '/key', 'X-Api-Key: k1')->{status}, 200, 'key 1');
is(get('free1.example.com', '/key', 'X-Api-Key: k1')->{status}, 200, 'key 1');
is(get('free1.example.com', '/key', 'X-Api-Key: k1')->{status}, 429,
   'key 1: the 3rd refused');
is(get('free1.example.com', '/key', 'X-Api-Key: k2')->{status}, 200,
   'another key counts apart');
is(get('free1.example.com', '/key')->{status}, 200,
   'no key: the policy does not apply');
get('free1.example.com', '/key', 'X-Api-Key: ' . ('z' x 500));
ok(scalar(grep { /:bykey:\d+:#[0-9a-f]{32}$/ }
          split /\n/, redis_cli('--scan', '--pattern', 'rl:*')),
   'a long key value is hashed');

# dry run and 402

is(get('free1.example.com', '/trial')->{status}, 200, 'dry run: first');
$r = get('free1.example.com', '/trial');
is($r->{status}, 200, 'dry run: over the limit, still admitted');
is($r->{headers}{'x-rl'}[0], 'DRY_RUN_REJECTED', 'and reported');
get('free1.example.com', '/paid');
is(get('free1.example.com', '/paid')->{status}, 402, 'status=402');

# Redis down: each policy as it says

redis_stop();
is(get('free1.example.com', '/open', 'X-Open: a')->{status}, 200,
   'fail=open admits');
is(get('free1.example.com', '/open', 'X-Open: a')->{status}, 200,
   'fail=open admits again');
$r = get('free1.example.com', '/closed', 'X-Closed: a');
is($r->{status}, 503, 'fail=closed refuses with 503');
like($r->{body}, qr/"title":"Rate limiter unavailable"/, 'saying why');
my @local = map { get('free1.example.com', '/local', 'X-Local: a')->{status} }
    1 .. 4;
is_deeply(\@local, [200, 200, 429, 429],
          'fail=local: limit / nodes on this node (4 / 2)');
is(get('free1.example.com', '/t/x')->{headers}{'x-rl'}[0], 'FALLBACK',
   'status FALLBACK');

# a dry-run policy failing closed never turns another policy's 429 into 503
is(get('free1.example.com', '/mixed', 'X-Mixed: a')->{status}, 200,
   'dry run + local: first admitted');
$r = get('free1.example.com', '/mixed', 'X-Mixed: a');
is($r->{status}, 429, 'second: 429 from the local policy, not 503');
like($r->{body}, qr/"policy":"tight"/, 'naming the policy that rejected');

# legacy headers from the known policy when the first one failed open
$r = get('free1.example.com', '/legacy', 'X-Legacy: a');
is($r->{headers}{'x-ratelimit-limit'}[0], '100',
   'legacy limit: the counted policy');
is($r->{headers}{'x-ratelimit-remaining'}[0], '99', 'legacy remaining');

my $rs = EntTest::decode_json_min(http($n, '/rlstatus', host => 'free1.example.com')->{body});
ok($rs->{fallbacks} >= 5, "ent_ratelimit_status counts the fallbacks ($rs->{fallbacks})");
ok($rs->{rejected} >= 3, "... and the rejections ($rs->{rejected})");

redis_start();
ok(wait_until(sub {
    get('free1.example.com', '/key', 'X-Api-Key: k9')->{headers}{'x-rl'}[0]
        eq 'PASSED' }, 5), 'Redis back: counting resumes through it');

# slower than the budget: fallback, then normal again

nginx_stop($n);
# an upstream that never answers: a request stays under way meanwhile
my $hang = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                 LocalPort => 0, ReuseAddr => 1) or die $!;
my $hport = $hang->sockport;
my $slow = nginx_start(http_config => (($http =~ s/ent_ratelimit_budget 2s;/ent_ratelimit_budget 50ms;/r)
                           =~ s/timeout=300ms/timeout=3s/r)
                           . 'ent_ratelimit_policy gs1 per=day limit=10 key=$http_x_gs; '
                           . 'ent_ratelimit_policy gs2 per=day limit=10 key=$http_x_gs;',
                       config => "$ten\n$config\n"
                           . "location /gs { ent_ratelimit gs1; "
                           . "try_files \$uri /gs2/run; }\n"
                           . "location /gs2/ { ent_ratelimit gs2; "
                           . "proxy_pass http://127.0.0.1:$up/ok; }\n"
                           . "location = /long { ent_ratelimit_budget 1s; "
                           . "ent_ratelimit local; proxy_pass http://127.0.0.1:$up/ok; }\n"
                           . "location = /leasedhang { ent_ratelimit leased; "
                           . "proxy_read_timeout 1500ms; "
                           . "proxy_pass http://127.0.0.1:$hport; }");
my $sleep = http_start($slow, '/ok');   # warm
http_finish($sleep);
system("redis-cli -p " . EntTest::redis_port() . " DEBUG SLEEP 0.5 >/dev/null &");
sleep 0.1;
# a request with a longer budget waits first: the shorter one behind it
# still falls back at its own budget
my $long = http_start($slow, '/long', host => 'free1.example.com',
                      headers => ['X-Local: long', 'Accept: application/json']);
select(undef, undef, undef, 0.05);
$r = http($slow, '/local', host => 'free1.example.com',
          headers => ['X-Local: slow']);
is($r->{headers}{'x-rl'}[0], 'FALLBACK', 'slower than the budget: fallback');
my $lr = http_finish($long);
is($lr->{status} . ' ' . $lr->{headers}{'x-rl'}[0], '200 PASSED',
   'a location with a longer budget waited for Redis');
is(EntTest::decode_json_min(http($slow, '/rlstatus', host => 'free1.example.com')->{body})->{budget_exceeded}, 1,
   'ent_ratelimit_status: one request over the budget');
ok($r->{elapsed} < 0.4, 'answered at the budget, not when Redis woke');
sleep 0.6;
is(http($slow, '/key', host => 'free1.example.com',
        headers => ['X-Api-Key: k10'])->{headers}{'x-rl'}[0], 'PASSED',
   'then Redis again');

# Redis too slow across an internal redirect: the first location's reply
# is still awaited, so the second location falls back at once (a second
# reply would be taken for the first); the late reply keeps its one count
system("redis-cli -p " . EntTest::redis_port() . " DEBUG SLEEP 0.3 >/dev/null &");
sleep 0.1;
$r = http($slow, '/gs', host => 'free1.example.com',
          headers => ['X-Gs: s1', 'Accept: application/json']);
is($r->{status} . ' ' . $r->{headers}{'x-rl'}[0], '200 FALLBACK',
   'slow Redis, then a redirect: both locations fall back');
is($r->{headers}{'ratelimit-policy'}[0], '"gs1";q=10;w=86400, "gs2";q=10;w=86400',
   '... under both policies');
my @gs;
ok(wait_until(sub {
       @gs = grep { /:gs[12]:/ } split /\n/, redis_cli('--scan', '--pattern', 'rl:*');
       @gs == 1 && redis_cli('GET', $gs[0]) eq '1' }, 2),
   'the late reply: gs1 keeps its one count, gs2 was never sent ('
   . join(', ', map { "$_=" . redis_cli('GET', $_) } @gs) . ')');

# a lease's INCRBY answered after the budget, the request still under way:
# the request keeps its one count, the rest of the lease goes back
my %before = map { $_ => 1 } split /\n/, redis_cli('--scan', '--pattern', 'rl:*');
http($slow, '/leased', host => 'free1.example.com',
     headers => ['X-Lease: late']);
my ($late_key) = grep { /:leased:/ && !$before{$_} } split /\n/,
    redis_cli('--scan', '--pattern', 'rl:*');
is(redis_cli('GET', $late_key), 1, 'a lease key, one count');
system("redis-cli -p " . EntTest::redis_port() . " DEBUG SLEEP 0.4 >/dev/null &");
sleep 0.1;
my $hung = http_start($slow, '/leasedhang', host => 'free1.example.com',
                      headers => ['X-Lease: late']);
ok(wait_until(sub { redis_cli('GET', $late_key) eq '2' }, 3),
   'Redis answered the lease after the budget: the admitted request '
   . 'counts one (' . redis_cli('GET', $late_key) . ')');
my $hr = http_finish($hung);
is($hr->{headers}{'x-rl'}[0], 'FALLBACK', '... it was decided by the fallback');
close $hang;

nginx_stop($slow);
my $log = check_log($slow, 'slow redis');
my @warn = $log =~ /falling back|fall back/g;
# three slow episodes above: at most a line each (once a second)
ok(@warn <= 3, 'fallbacks are logged at a sane rate (' . @warn . ')');
check_log($_, "node $_->{id}") for @nodes, $n;

# an internal redirect (try_files to a named location) counts once

my $once = nginx_start(http_config => $http
                           . 'ent_ratelimit_policy once per=day limit=100 '
                           . 'key=$http_x_once; '
                           . 'ent_ratelimit_policy gapi per=day limit=100 '
                           . 'key=$http_x_g; '
                           . 'ent_ratelimit_policy gai per=day limit=1 '
                           . 'key=$http_x_g;',
                       config => "ent_ratelimit once;\n"
                           . "add_header X-RL \$ent_ratelimit_status always;\n"
                           . "location / { try_files /nothing \@named; }\n"
                           . "location \@named { proxy_pass http://127.0.0.1:$up; }\n"
                           . "location /x { ent_ratelimit gapi; "
                           . "try_files \$uri /ai/run; }\n"
                           . "location /ai/ { ent_ratelimit gai gapi; "
                           . "proxy_pass http://127.0.0.1:$up; }");
http($once, '/', headers => ['X-Once: r1']) for 1 .. 3;
my ($ok) = grep { /:once:/ } split /\n/, redis_cli('--scan', '--pattern', 'rl:*');
is(redis_cli('GET', $ok), 3, 'three requests through try_files: counted 3');

# an internal redirect into a location with other policies: those count
# there, the ones counted before the redirect do not count again
my @g = map { http($once, '/x', headers => ['X-G: g1',
                                            'Accept: application/json']) }
    1 .. 2;
is(join(',', map { $_->{status} } @g), '200,429',
   'try_files into /ai/: its policy counts (limit 1, the second refused)');
like($g[1]{body}, qr/"policy":"gai"/, '... by the policy of /ai/');
my ($gapi) = grep { /:gapi:/ } split /\n/, redis_cli('--scan', '--pattern', 'rl:*');
is(redis_cli('GET', $gapi), 1,
   'gapi counted once for the admitted request, the refused one took its '
   . 'count back');

# a graceful stop lets a reply in flight complete

# (under the connection's 300 ms timeout)
system("redis-cli -p " . EntTest::redis_port() . " DEBUG SLEEP 0.25 >/dev/null &");
sleep 0.05;
my $inflight = http_start($once, '/', headers => ['X-Once: r2']);
sleep 0.05;
kill 'QUIT', $once->{pid};
$r = http_finish($inflight);
is($r->{status}, 200, 'a request waiting on Redis during a graceful stop');
is($r->{headers}{'x-rl'}[0], 'PASSED', 'got its reply, not a fallback');
wait_until(sub { !kill 0, $once->{pid} }, 10);
delete $once->{pid};
check_log($once, 'once');

done_testing;
