# Invalidation: a change in PostgreSQL reaches every node within a second,
# without a reload.  Two nginx instances (two nodes: separate shared
# memory) cache the same rows; an UPDATE's trigger NOTIFYs, each node's
# listener drops the entry.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();

pg_sql("INSERT INTO ent.tenants (code, display_name) VALUES "
       . "('acme', 'Acme'), ('globex', 'Globex')");

my %conf = (
    http_config => 'ent_postgres "$TEST_PG_DSN" pool=2 backoff=20ms:200ms; '
                 . 'ent_cache_zone tenants:1m ttl=1h negative_ttl=1h;',
    config => <<'CONF');
location = /t {
    ent_test_cache tenants
        "SELECT display_name FROM ent.tenants WHERE code = $1"
        $arg_code $arg_code;
}
location = /ent_status { ent_status; }
CONF

my @nodes = (nginx_start(%conf), nginx_start(%conf));

sub name_on {
    my ($n, $code) = @_;
    my $r = http($n, "/t?code=$code");
    return $r->{status} == 200 ? ($r->{body} =~ s/\n$//r) : $r->{status};
}

sub visible_within {
    my ($code, $want) = @_;
    my $t0 = time;
    my $ok = wait_until(sub {
        !grep { name_on($_, $code) ne $want } @nodes
    }, 1, 0.01);
    return ($ok, time - $t0);
}

for my $n (@nodes) {
    is(name_on($n, 'acme'), 'Acme', "node $n->{id}: cached");
    is(http($n, '/t?code=acme')->{headers}{'x-cache'}[0], 'HIT',
       "node $n->{id}: a hit");
    is(name_on($n, 'initech'), 404, "node $n->{id}: absent, cached so");
}

# an UPDATE: the trigger flushes the zone on both nodes
pg_sql("UPDATE ent.tenants SET display_name = 'Acme Corp' WHERE code = 'acme'");
my ($ok, $took) = visible_within('acme', 'Acme Corp');
ok($ok, 'an UPDATE is visible on both nodes within 1 s');
diag(sprintf 'visible after %.0f ms', $took * 1000);

# an INSERT replaces a negative entry (negative_ttl is an hour)
pg_sql("INSERT INTO ent.tenants (code, display_name) "
       . "VALUES ('initech', 'Initech')");
($ok) = visible_within('initech', 'Initech');
ok($ok, 'an INSERT replaces cached absence on both nodes within 1 s');

# one key, by hand: only that key goes
name_on($_, 'globex') for @nodes;
pg_sql("SELECT ent.invalidate('tenants', 'acme')");
ok(wait_until(sub {
    !grep { http($_, '/t?code=acme')->{headers}{'x-cache'}[0] ne 'MISS' }
        @nodes
}, 1, 0.01), 'ent.invalidate(zone, key) drops that key');
is(http($_, '/t?code=globex')->{headers}{'x-cache'}[0], 'HIT',
   "node $_->{id}: other keys stay") for @nodes;

# the listener connection is cut: what it missed meanwhile must not stay
# cached (a reconnect flushes)
pg_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
       . "WHERE query LIKE 'LISTEN%'", 'postgres');
pg_sql("UPDATE ent.tenants SET display_name = 'Globex Inc' "
       . "WHERE code = 'globex'");
($ok) = visible_within('globex', 'Globex Inc');
ok($ok, 'a change made while the listener was away is visible within 1 s');

# malformed payloads are ignored with a warning
pg_sql("SELECT pg_notify('ent_invalidate', 'no colon here')");
sleep 0.2;
is(name_on($nodes[0], 'acme'), 'Acme Corp', 'a malformed payload changes nothing');

for my $n (@nodes) {
    nginx_stop($n);
    check_log($n, "node $n->{id}");
}
like(EntTest::nginx_log($nodes[0]),
     qr/malformed invalidation "no colon here" ignored/,
     'and is logged');

done_testing;
