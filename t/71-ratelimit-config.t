# Rate-limit directives: nginx -t refuses what is malformed, naming the
# directive and the problem.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

run_blocks();
done_testing;

__DATA__

=== TEST 1: the product's published tiers parse
--- http_config
ent_redis 127.0.0.1:6379;
ent_ratelimit_policy ai per=hour free=50 team=200 business=1000 enterprise=1000;
ent_ratelimit_policy api per=minute free=100 team=500 business=2000 enterprise=2000;
ent_ratelimit_policy login per=15m limit=20 key=ip fail=closed;
ent_ratelimit_zone rl:2m;
ent_ratelimit_budget 10ms;
ent_ratelimit_legacy_headers on;
--- config
location /api/ai/ { ent_ratelimit ai api; }
location /login { ent_ratelimit login; }
location /scim/v2/ { ent_ratelimit scim; }
--- must_die: no
--- error_log
syntax is ok

=== TEST 2: a policy without a window
--- http_config
ent_ratelimit_policy ai free=50;
--- config
--- must_die
--- error_log
policy "ai" has no window: add per=minute, per=hour, ...

=== TEST 3: a policy without a limit
--- http_config
ent_ratelimit_policy ai per=hour;
--- config
--- must_die
--- error_log
policy "ai" has no limit: add limit=N or <tier>=N

=== TEST 4: a bad window
--- http_config
ent_ratelimit_policy ai per=fortnight limit=1;
--- config
--- must_die
--- error_log
invalid window "per=fortnight" in "ent_ratelimit_policy" directive

=== TEST 5: a bad limit
--- http_config
ent_ratelimit_policy ai per=hour team=lots;
--- config
--- must_die
--- error_log
invalid parameter "team=lots" in "ent_ratelimit_policy" directive

=== TEST 6: a bad key
--- http_config
ent_ratelimit_policy ai per=hour limit=1 key=cookie;
--- config
--- must_die
--- error_log
invalid key "key=cookie" in "ent_ratelimit_policy" directive, expected tenant, ip, user or a $variable

=== TEST 7: a bad fallback
--- http_config
ent_ratelimit_policy ai per=hour limit=1 fail=maybe;
--- config
--- must_die
--- error_log
expected fail=local, fail=open or fail=closed

=== TEST 8: a bad status
--- http_config
ent_ratelimit_policy ai per=hour limit=1 status=500;
--- config
--- must_die
--- error_log
expected status=429 or status=402

=== TEST 9: a bad policy name
--- http_config
ent_ratelimit_policy "AI Policy" per=hour limit=1;
--- config
--- must_die
--- error_log
invalid policy name "AI Policy" in "ent_ratelimit_policy" directive

=== TEST 10: two policies of one name
--- http_config
ent_ratelimit_policy ai per=hour limit=1;
ent_ratelimit_policy ai per=day limit=2;
--- config
--- must_die
--- error_log
duplicate policy "ai" in "ent_ratelimit_policy" directive

=== TEST 11: an unknown policy in a location
--- config
location / { ent_ratelimit nosuch; }
--- must_die
--- error_log
unknown policy "nosuch" in "ent_ratelimit" directive

=== TEST 12: a zone that is too small
--- http_config
ent_ratelimit_zone rl:1k;
--- config
--- must_die
--- error_log
invalid zone "rl:1k" in "ent_ratelimit_zone" directive

=== TEST 13: presets can be redefined once
--- http_config
ent_redis 127.0.0.1:6379;
ent_ratelimit_policy login per=hour limit=5 key=ip;
--- config
location /login { ent_ratelimit login; }
--- must_die: no
--- error_log
syntax is ok

=== TEST 14: nodes must be a positive count
--- http_config
ent_ratelimit_policy ai per=hour limit=1 nodes=0;
--- config
--- must_die
--- error_log
invalid parameter "nodes=0" in "ent_ratelimit_policy" directive

=== TEST 15: a quota with thresholds parses
--- http_config
ent_redis 127.0.0.1:6379;
ent_ratelimit_policy ai_month per=month free=1000 team=20000 enterprise=unlimited warn=50,90 status=402;
ent_ratelimit_policy quiet per=month limit=5 warn=off;
--- config
location / { ent_ratelimit ai_month quiet; }
--- must_die: no
--- error_log
syntax is ok

=== TEST 16: thresholds must rise and stay under 100
--- http_config
ent_ratelimit_policy ai_month per=month limit=5 warn=95,80;
--- config
--- must_die
--- error_log
invalid parameter "warn=95,80" in "ent_ratelimit_policy" directive

=== TEST 17: a clock offset is whole seconds
--- http_config
ent_ratelimit_time_offset soon;
--- config
--- must_die
--- error_log
invalid value "soon" in "ent_ratelimit_time_offset" directive, expected seconds

=== TEST 18: but only once
--- http_config
ent_ratelimit_policy login per=hour limit=5 key=ip;
ent_ratelimit_policy login per=hour limit=6 key=ip;
--- config
--- must_die
--- error_log
duplicate policy "login" in "ent_ratelimit_policy" directive

=== TEST 19: burst parses and applies with its policy
--- http_config
ent_redis 127.0.0.1:6379;
ent_ratelimit_policy api per=minute limit=100 burst=10;
--- config
location /api/ { ent_ratelimit api; }
--- must_die: no
--- error_log
syntax is ok

=== TEST 20: burst of a per-second policy
--- http_config
ent_ratelimit_policy api per=second limit=100 burst=10;
--- config
--- must_die
--- error_log
policy "api": burst= needs a window of more than a second

=== TEST 21: burst not below the limit
--- http_config
ent_ratelimit_policy api per=minute limit=10 burst=10;
--- config
--- must_die
--- error_log
policy "api": burst=10 is not below its limit

=== TEST 22: a bad burst
--- http_config
ent_ratelimit_policy api per=minute limit=10 burst=0;
--- config
--- must_die
--- error_log
invalid parameter "burst=0" in "ent_ratelimit_policy" directive

=== TEST 23: a bad lease
--- http_config
ent_ratelimit_policy api per=minute limit=10 lease=0;
--- config
--- must_die
--- error_log
invalid parameter "lease=0" in "ent_ratelimit_policy" directive

=== TEST 24: a lease too large
--- http_config
ent_ratelimit_policy api per=minute limit=10 lease=1000001;
--- config
--- must_die
--- error_log
invalid parameter "lease=1000001" in "ent_ratelimit_policy" directive

=== TEST 25: no lease on a monthly quota (held counts would be billed)
--- http_config
ent_ratelimit_policy aiq per=month limit=1000 lease=10;
--- config
--- must_die
--- error_log
policy "aiq": lease= cannot be used with per=month: counts held in a worker's lease are billed, and lost at a reload or a Redis reconnect

=== TEST 26: whichever comes first
--- http_config
ent_ratelimit_policy aiq lease=10 team=5 per=month;
--- config
--- must_die
--- error_log
policy "aiq": lease= cannot be used with per=month

=== TEST 27: limit=unlimited alone: no tier is limited
--- http_config
ent_ratelimit_policy open per=hour limit=unlimited;
--- config
--- must_die: no
--- error_log
syntax is ok

=== TEST 28: a roll-up of no time
--- http_config
ent_ratelimit_rollup 0;
--- config
--- must_die
--- error_log
invalid value "0" in "ent_ratelimit_rollup" directive, expected a time of at least 100ms

=== TEST 29: a clock offset beyond ten years
--- http_config
ent_ratelimit_time_offset 9223372036854775807;
--- config
--- must_die
--- error_log
invalid value "9223372036854775807" in "ent_ratelimit_time_offset" directive, expected seconds, at most 315360000 either way

=== TEST 30: ten years back is still taken
--- http_config
ent_ratelimit_time_offset -315360000;
--- config
--- must_die: no
--- error_log
syntax is ok

=== TEST 31: a policy applied without Redis
--- http_config
ent_ratelimit_policy api per=minute limit=10;
--- config
location / { ent_ratelimit api; }
--- must_die
--- error_log
"ent_ratelimit" needs "ent_redis" in http{}
