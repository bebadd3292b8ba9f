# PostgreSQL failover: a primary and a hot standby (streaming replication,
# pg_basebackup), ent_postgres with a multi-host connection string and
# target_session_attrs=read-write.  The primary is stopped under traffic:
# clean 503s, no hang; the standby is promoted: the same workers write to
# it without a reload, and what was written before is there.  Prints the
# error window.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start(durable => 1);
my ($pport) = EntTest::pg_dsn() =~ /port=(\d+)/;

pg_sql("CREATE TABLE ent.failover_t (id serial PRIMARY KEY, at timestamptz "
       . "NOT NULL DEFAULT now())");

# the standby: a base backup of the primary, streaming from it
my $sb = EntTest::pg_standby_start();
my $sport = $sb->{port};

my $conninfo = "host=127.0.0.1,127.0.0.1 port=$pport,$sport dbname=ent "
    . "user=ent password=ent-secret sslmode=disable "
    . "target_session_attrs=read-write";

my $n = nginx_start(workers => 2,
    http_config => qq{ent_postgres "$conninfo" pool=2 connect_timeout=1s }
                 . qq{query_timeout=2s backoff=50ms:500ms;},
    config => <<'CONF');
location = /who { ent_test_pg "SELECT inet_server_port()::text"; }
location = /write {
    ent_test_pg "INSERT INTO ent.failover_t DEFAULT VALUES RETURNING id";
}
location = /ent_status { ent_status; }
CONF

my @pids = sort { $a <=> $b } EntTest::worker_pids($n);

sub body { my $r = http($n, $_[0], timeout => 10); "$r->{status} $r->{body}" }

like(body('/who'), qr/^200 \Q$pport\E\b/, 'the primary, of the two hosts');
my @written = grep { /^200 \d/ } map { body('/write') } 1 .. 20;
is(scalar @written, 20, 'twenty rows written');
ok(wait_until(sub { pg_count() == 20 }, 10), 'and replicated to the standby');

# the primary goes away under traffic

my $t0 = time;
EntTest::pg_stop(mode => 'immediate');
my %by;
for (1 .. 20) {
    my $r = http($n, '/write', timeout => 10);
    $by{$r->{status}}++;
}
is_deeply([sort keys %by], ['503'], 'primary down: every write a 503 '
          . '(the standby is read-only: never picked for read-write)');

# the standby is promoted: the workers reconnect to it by themselves

EntTest::pg_standby_promote($sb);
my $extra = 0;    # rows written while waiting
my $ok = wait_until(sub { my $w = body('/write') =~ /^200 \d/; $extra += $w;
                          $w }, 20, 0.05);
my $window = time - $t0;
ok($ok, 'after the promotion, writes succeed again without a reload');
note(sprintf 'error window: %.1f s from the primary stopping '
     . '(promotion included)', $window);
# the first write that succeeds shows one worker back; the other may still
# be in its backoff (seconds under valgrind): ten in a row show both
ok(wait_until(sub { my $g = grep { /^200 \d/ } map { body('/write') } 1 .. 10;
                    $extra += $g; $g == 10 }, 20, 0.05),
   'both workers write to the promoted standby');
like(body('/who'), qr/^200 \Q$sport\E\b/, 'on the promoted standby');
is(scalar(grep { /^200 \d/ } map { body('/write') } 1 .. 20), 20,
   'twenty more writes, all answered');
is(pg_count(), 40 + $extra,
   'the rows written before the failover are there, and every one since');

sub pg_count {
    return EntTest::pg_standby_sql($sb, 'SELECT count(*) FROM ent.failover_t');
}

is_deeply([sort { $a <=> $b } EntTest::worker_pids($n)], \@pids,
          'the same workers throughout');
my $st = status_json($n);
is($st->{ops}, 0, 'no operation left behind');
nginx_stop($n);
check_log($n, 'pg failover');

done_testing;
