# nginx -t: every malformed directive is refused with a message that names
# the directive and the problem; feature modules need the core.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

run_blocks();
done_testing;

__DATA__

=== TEST 1: a valid configuration passes
--- http_config
ent_postgres "host=127.0.0.1 port=5432 dbname=ent user=ent" pool=4 queue=16 connect_timeout=1s query_timeout=3s queue_timeout=500ms backoff=10ms:1s listen=off;
ent_redis 127.0.0.1:6379 pool=2 db=1 password=x timeout=100ms connect_timeout=1s backoff=10ms:500ms;
ent_cache_zone tenants:1m ttl=30s negative_ttl=5s error_ttl=500ms stale=1h;
--- config
location /s { ent_status; }
--- must_die: no
--- error_log
syntax is ok

=== TEST 2: a malformed connection string
--- http_config
ent_postgres "host=127.0.0.1 nonsense=1";
--- config
--- must_die
--- error_log
invalid connection string in "ent_postgres" directive

=== TEST 3: an unknown ent_postgres parameter
--- http_config
ent_postgres "host=127.0.0.1" poool=2;
--- config
--- must_die
--- error_log
invalid parameter "poool=2" in "ent_postgres" directive

=== TEST 4: a pool size out of range
--- http_config
ent_postgres "host=127.0.0.1" pool=0;
--- config
--- must_die
--- error_log
invalid value "pool=0" in "ent_postgres" directive, must be a number from 1 to 1024

=== TEST 5: a malformed timeout
--- http_config
ent_postgres "host=127.0.0.1" query_timeout=soon;
--- config
--- must_die
--- error_log
invalid time "query_timeout=soon" in "ent_postgres" directive

=== TEST 6: a backoff whose minimum exceeds its maximum
--- http_config
ent_postgres "host=127.0.0.1" backoff=5s:1s;
--- config
--- must_die
--- error_log
expected "backoff=min:max" with 0 < min <= max <= 60s

=== TEST 6b: listen takes on or off
--- http_config
ent_postgres "host=127.0.0.1" listen=maybe;
--- config
--- must_die
--- error_log
invalid value "listen=maybe" in "ent_postgres" directive, it must be "on" or "off"

=== TEST 7: two ent_postgres
--- http_config
ent_postgres "host=127.0.0.1";
ent_postgres "host=127.0.0.2";
--- config
--- must_die
--- error_log
"ent_postgres" directive is duplicate

=== TEST 8: a list of hosts with an unknown name
--- http_config
ent_postgres "host=127.0.0.1,no-such-host.invalid target_session_attrs=read-write";
--- config
--- must_die
--- error_log
host "no-such-host.invalid" of "ent_postgres" not found

=== TEST 9: an unknown host name is refused at configuration time
--- http_config
ent_postgres "host=no-such-host.invalid";
--- config
--- must_die
--- error_log
host "no-such-host.invalid" of "ent_postgres" not found

=== TEST 10: ent_postgres outside http{}
--- config
ent_postgres "host=127.0.0.1";
--- must_die
--- error_log
"ent_postgres" directive is not allowed here

=== TEST 11: a bad Redis port
--- http_config
ent_redis 127.0.0.1:99999;
--- config
--- must_die
--- error_log
invalid port in "127.0.0.1:99999" of the "ent_redis" directive

=== TEST 12: a bad Redis database
--- http_config
ent_redis 127.0.0.1 db=x;
--- config
--- must_die
--- error_log
invalid value "db=x" in "ent_redis" directive, must be a number from 0 to 65535

=== TEST 13: a Redis user without a password
--- http_config
ent_redis 127.0.0.1 user=app;
--- config
--- must_die
--- error_log
"ent_redis" directive has "user" without "password"

=== TEST 14: an empty Redis password
--- http_config
ent_redis 127.0.0.1 password=;
--- config
--- must_die
--- error_log
"ent_redis" directive has an empty "password"

=== TEST 15: a cache zone without a size
--- http_config
ent_cache_zone tenants;
--- config
--- must_die
--- error_log
invalid zone "tenants" in "ent_cache_zone" directive, expected "name:size"

=== TEST 16: a cache zone that is too small
--- http_config
ent_cache_zone tenants:4k;
--- config
--- must_die
--- error_log
zone "tenants" is too small in "ent_cache_zone" directive

=== TEST 17: a cache zone declared twice
--- http_config
ent_cache_zone tenants:1m;
ent_cache_zone tenants:2m;
--- config
--- must_die
--- error_log
duplicate zone "tenants" in "ent_cache_zone" directive

=== TEST 18: a zero ttl
--- http_config
ent_cache_zone tenants:1m ttl=0;
--- config
--- must_die
--- error_log
"ent_cache_zone" directive has a zero "ttl"

=== TEST 19: a cache zone with an unknown parameter
--- http_config
ent_cache_zone tenants:1m ttl=1s color=blue;
--- config
--- must_die
--- error_log
invalid parameter "color=blue" in "ent_cache_zone" directive

=== TEST 20: ent_status takes no arguments
--- config
location /s { ent_status on; }
--- must_die
--- error_log
invalid number of arguments in "ent_status" directive

=== TEST 21: a feature module loaded without the core
--- modules: tenant
--- config
--- must_die
--- error_log
ngx_http_ent_tenant_module requires ngx_http_ent_core_module: add "load_module modules/ngx_http_ent_core_module.so;" before the other ngx_ent modules

=== TEST 22: a feature module loaded before the core
--- modules: scim core
--- config
--- must_die
--- error_log
ngx_http_ent_scim_module requires ngx_http_ent_core_module

=== TEST 23: every feature module without the core
--- modules: ratelimit
--- config
--- must_die
--- error_log
ngx_http_ent_ratelimit_module requires ngx_http_ent_core_module

=== TEST 24: audit and metrics directives
--- http_config
ent_postgres "host=127.0.0.1 port=5432 dbname=ent user=ent";
ent_audit on;
ent_audit_journal $TEST_TMP/journal max_size=1m flush=50ms;
ent_metrics_zone 2m top=20 window=1m;
ent_metrics_log off;
--- config
location /m { ent_metrics; ent_metrics_log on; }
--- must_die: no
--- error_log
syntax is ok

=== TEST 25: a journal max_size too small
--- http_config
ent_audit_journal /tmp/j max_size=1k;
--- config
--- must_die
--- error_log
invalid "max_size=1k" in "ent_audit_journal": at least 64k

=== TEST 26: a journal flush out of range
--- http_config
ent_audit_journal /tmp/j flush=2m;
--- config
--- must_die
--- error_log
"flush=2m" in "ent_audit_journal" must be between 1ms and 60s

=== TEST 27: an unknown journal parameter
--- http_config
ent_audit_journal /tmp/j maxsize=1m;
--- config
--- must_die
--- error_log
invalid parameter "maxsize=1m" in "ent_audit_journal"

=== TEST 28: a duplicate journal
--- http_config
ent_audit_journal /tmp/j;
ent_audit_journal /tmp/k;
--- config
--- must_die
--- error_log
"ent_audit_journal" directive is duplicate

=== TEST 29: a metrics zone too small, or malformed
--- http_config
ent_metrics_zone 12k;
--- config
--- must_die
--- error_log
invalid size "12k" in "ent_metrics_zone"

=== TEST 30: top out of range
--- http_config
ent_metrics_zone 1m top=0;
--- config
--- must_die
--- error_log
invalid "top=0" in "ent_metrics_zone": 1 to 10000

=== TEST 31: a window out of range
--- http_config
ent_metrics_zone 1m window=1s;
--- config
--- must_die
--- error_log
"window=1s" in "ent_metrics_zone" must be between 3s and 1d

=== TEST 32: a duplicate metrics zone
--- http_config
ent_metrics_zone 1m;
ent_metrics_zone 1m;
--- config
--- must_die
--- error_log
"ent_metrics_zone" directive is duplicate

=== TEST 33: ent_metrics_log takes on or off
--- http_config
--- config
ent_metrics_log maybe;
--- must_die
--- error_log
invalid value "maybe" in "ent_metrics_log" directive, it must be "on" or "off"

=== TEST 34: ent_audit takes on or off
--- http_config
ent_audit yes;
--- config
--- must_die
--- error_log
invalid value "yes" in "ent_audit" directive, it must be "on" or "off"

=== TEST 35: Redis through sentinels
--- http_config
ent_redis sentinel=127.0.0.1:26379,127.0.0.1:26380,[::1]:26381 master=mymaster sentinel_password=s3 password=x db=2 pool=2 timeout=100ms;
--- config
location /s { ent_status; }
--- must_die: no
--- error_log
syntax is ok

=== TEST 36: the parameters in another order, the default sentinel port
--- http_config
ent_redis master=mymaster pool=1 sentinel=127.0.0.1;
--- config
--- must_die: no
--- error_log
syntax is ok

=== TEST 37: sentinels without a master name
--- http_config
ent_redis sentinel=127.0.0.1:26379;
--- config
--- must_die
--- error_log
"ent_redis" directive has "sentinel" without "master"

=== TEST 38: a master name without sentinels
--- http_config
ent_redis master=mymaster pool=2;
--- config
--- must_die
--- error_log
"ent_redis" directive has "master" without "sentinel"

=== TEST 39: an address and sentinels
--- http_config
ent_redis 127.0.0.1:6379 sentinel=127.0.0.1:26379 master=mymaster;
--- config
--- must_die
--- error_log
"ent_redis" directive has an address and "sentinel" parameters: use one or the other

=== TEST 40: an empty sentinel in the list
--- http_config
ent_redis sentinel=127.0.0.1:26379,,127.0.0.1:26380 master=mymaster;
--- config
--- must_die
--- error_log
empty address in "sentinel=127.0.0.1:26379,,127.0.0.1:26380" of the "ent_redis" directive

=== TEST 41: a bad sentinel port
--- http_config
ent_redis sentinel=127.0.0.1:26379,127.0.0.1:99999 master=mymaster;
--- config
--- must_die
--- error_log
invalid port in sentinel "127.0.0.1:99999" of the "ent_redis" directive

=== TEST 42: an empty sentinel list
--- http_config
ent_redis sentinel= master=mymaster;
--- config
--- must_die
--- error_log
"ent_redis" directive has an empty "sentinel"

=== TEST 43: an empty master name
--- http_config
ent_redis sentinel=127.0.0.1 master=;
--- config
--- must_die
--- error_log
"ent_redis" directive has an empty "master"

=== TEST 44: a master name with a space
--- http_config
ent_redis sentinel=127.0.0.1 "master=my master";
--- config
--- must_die
--- error_log
invalid master name "my master" in "ent_redis" directive

=== TEST 45: too many sentinels
--- http_config
ent_redis sentinel=127.0.0.1:26001,127.0.0.1:26002,127.0.0.1:26003,127.0.0.1:26004,127.0.0.1:26005,127.0.0.1:26006,127.0.0.1:26007,127.0.0.1:26008,127.0.0.1:26009,127.0.0.1:26010,127.0.0.1:26011,127.0.0.1:26012,127.0.0.1:26013,127.0.0.1:26014,127.0.0.1:26015,127.0.0.1:26016,127.0.0.1:26017 master=mymaster;
--- config
--- must_die
--- error_log
too many addresses in "sentinel=" of the "ent_redis" directive, at most 16

=== TEST 46: an empty sentinel password
--- http_config
ent_redis sentinel=127.0.0.1 master=mymaster sentinel_password=;
--- config
--- must_die
--- error_log
"ent_redis" directive has an empty "sentinel_password"

=== TEST 47: a cluster with an address
--- http_config
ent_redis 127.0.0.1:6379 cluster=127.0.0.1:7000;
--- config
--- must_die
--- error_log
"ent_redis" directive has an address and "cluster": use one or the other

=== TEST 48: a cluster and sentinels
--- http_config
ent_redis cluster=127.0.0.1:7000 sentinel=127.0.0.1:26379 master=m;
--- config
--- must_die
--- error_log
"ent_redis" directive has "cluster" and "sentinel" parameters: use one or the other

=== TEST 49: sentinels and a cluster
--- http_config
ent_redis sentinel=127.0.0.1:26379 master=m cluster=127.0.0.1:7000;
--- config
--- must_die
--- error_log
"ent_redis" directive has "sentinel" and "cluster": use one or the other

=== TEST 50: a cluster with a database
--- http_config
ent_redis cluster=127.0.0.1:7000 db=2;
--- config
--- must_die
--- error_log
"ent_redis" directive has "db" with "cluster": a Redis Cluster has database 0 only

=== TEST 51: a cluster with a pool size
--- http_config
ent_redis cluster=127.0.0.1:7000 pool=4;
--- config
--- must_die
--- error_log
"ent_redis" directive has "pool" with "cluster": a cluster takes one connection per node per worker

=== TEST 52: an empty node in the cluster list
--- http_config
ent_redis cluster=127.0.0.1:7000,,127.0.0.1:7001;
--- config
--- must_die
--- error_log
empty address in "cluster=127.0.0.1:7000,,127.0.0.1:7001" of the "ent_redis" directive

=== TEST 53: a bad cluster node port
--- http_config
ent_redis cluster=127.0.0.1:70000;
--- config
--- must_die
--- error_log
invalid port in cluster "127.0.0.1:70000" of the "ent_redis" directive

=== TEST 54: an empty cluster list
--- http_config
ent_redis cluster=;
--- config
--- must_die
--- error_log
"ent_redis" directive has an empty "cluster"

=== TEST 55: a cluster of seeds, a password and timeouts
--- http_config
ent_redis cluster=127.0.0.1:7000,127.0.0.1:7001,[::1]:7002 password=x timeout=200ms connect_timeout=100ms backoff=10ms:1s;
--- config
location = /t { return 200 "ok\n"; }
--- request
GET /t
--- status: 200
