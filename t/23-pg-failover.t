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
$ENV{PGPASSWORD} = 'ent-secret';    # psql to the standby
my ($pport) = EntTest::pg_dsn() =~ /port=(\d+)/;
my $pdir = tmpdir() . '/pg';

pg_sql("CREATE TABLE ent.failover_t (id serial PRIMARY KEY, at timestamptz "
       . "NOT NULL DEFAULT now())");

# the standby: a base backup of the primary, streaming from it
my $sdir = tmpdir() . '/standby';
my $sport = EntTest::free_port();
mkdir $sdir;
EntTest::chown_pg($sdir);
EntTest::run_cmd(EntTest::as_pg(EntTest::pg_bin('pg_basebackup')
    . " -h $pdir -p $pport -U postgres -D $sdir/data -R -X stream -c fast"));
EntTest::run_cmd(EntTest::as_pg(EntTest::pg_bin('pg_ctl')
    . " -D $sdir/data -l $sdir/log -w -t 30 -o '-p $sport -k $sdir "
    . "-c listen_addresses=127.0.0.1 -c hot_standby=on -c max_connections=200' start"));
END {
    system(EntTest::as_pg(EntTest::pg_bin('pg_ctl')
        . " -D $sdir/data -m immediate -w stop >/dev/null 2>&1"))
        if $sdir && -f "$sdir/data/postmaster.pid";
}

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
ok(wait_until(sub {
        my ($n) = `psql -h 127.0.0.1 -p $sport -U ent -d ent -At -c 'SELECT count(*) FROM ent.failover_t' 2>/dev/null`;
        defined $n && $n == 20 }, 10),
   'and replicated to the standby');

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

EntTest::run_cmd(EntTest::as_pg(EntTest::pg_bin('pg_ctl')
    . " -D $sdir/data -w promote"));
my $ok = wait_until(sub { body('/write') =~ /^200 \d/ }, 20, 0.05);
my $window = time - $t0;
ok($ok, 'after the promotion, writes succeed again without a reload');
note(sprintf 'error window: %.1f s from the primary stopping '
     . '(promotion included)', $window);
like(body('/who'), qr/^200 \Q$sport\E\b/, 'on the promoted standby');
is(scalar(grep { /^200 \d/ } map { body('/write') } 1 .. 20), 20,
   'twenty more writes, all answered');
is(pg_count(), 41, 'the rows written before the failover are there');

sub pg_count {
    my ($c) = `psql -h 127.0.0.1 -p $sport -U ent -d ent -At -c 'SELECT count(*) FROM ent.failover_t' 2>/dev/null`;
    chomp $c if defined $c;
    return $c;
}

is_deeply([sort { $a <=> $b } EntTest::worker_pids($n)], \@pids,
          'the same workers throughout');
my $st = status_json($n);
is($st->{ops}, 0, 'no operation left behind');
nginx_stop($n);
check_log($n, 'pg failover');

done_testing;
