# Redis Cluster: slot routing by per-tenant hash tag, one connection per
# master per worker, MOVED and ASK followed, the slot map refreshed, a
# resharding under load that loses and doubles nothing, a master's
# failover, and nodes that answer nonsense.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use IO::Socket::INET;
use POSIX ();
use Test::More;

my $config = <<'CONF';
location = /set { ent_test_redis SET $arg_k $http_x_value; }
location = /get { ent_test_redis GET $arg_k; }
location = /incr { ent_test_redis INCR $arg_k; }
location = /ping { ent_test_redis PING; }
location = /ent_status { ent_status; }
CONF

sub cluster_conf {
    my ($seeds, %o) = @_;
    return 'ent_redis cluster=' . join(',', map { "127.0.0.1:$_" } @$seeds)
        . ' timeout=500ms connect_timeout=500ms backoff=50ms:500ms'
        . ($o{extra} ? " $o{extra}" : '') . ';';
}

my ($masters, $replicas) = redis_cluster_start(masters => 3, replicas => 1);
my @all = (@$masters, @$replicas);
is(scalar @$masters, 3, 'three masters');
is(scalar @$replicas, 3, 'three replicas');

# one seed is enough: the map names the others
my $n = nginx_start(http_config => cluster_conf([$masters->[0]{port}]),
                    config => $config);

ok(wait_until(sub {
    my $st = status_json($n)->{redis};
    $st->{cluster} && $st->{cluster}{nodes} == 3 && $st->{connected} == 3
}, 10, 0.1), 'the slot map names three masters, each connected')
    or diag explain status_json($n)->{redis};

# keys of 30 tenants: each stored on the master of its tenant's slot

my %on;
for my $i (1 .. 30) {
    my $key = "ent:{t:tenant$i}:k";
    my $r = http($n, "/set?k=$key", headers => ["X-Value: v$i"]);
    is($r->{body}, "+OK\n", "SET $key") or last;
    my ($owner) = redis_cluster_owner($masters, $key);
    is(redis_node_cli($owner, 'GET', $key), "v$i", "on its slot's master");
    $on{$owner->{port}}++;
    $r = http($n, "/get?k=$key");
    is($r->{body}, "\$v$i\n", "GET $key");
}
is(scalar keys %on, 3, 'the tenants spread over the three masters')
    or diag explain \%on;
my $st = status_json($n)->{redis};
is($st->{cluster}{redirects}, 0, 'no redirection once the map is loaded');
is($st->{master}, undef, 'no single master in ent_status');

done_testing();
