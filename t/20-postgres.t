# The PostgreSQL pool: parameterized queries, results, errors, the queue,
# timeouts, and secrets kept out of the log.
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

pg_start();

my $http = <<'CONF';
ent_postgres "$TEST_PG_DSN" pool=2 queue=8 query_timeout=1500ms;
CONF

my $config = <<'CONF';
location = /echo { ent_test_pg "SELECT $1::text, length($1)" $arg_a; }
location = /null { ent_test_pg "SELECT NULL::text, '', 'x'"; }
location = /rows { ent_test_pg "SELECT g FROM generate_series(1, 3) g"; }
location = /none { ent_test_pg "SELECT 1 WHERE false"; }
location = /div0 { ent_test_pg "SELECT 1 / 0"; }
location = /update {
    ent_test_pg "UPDATE ent.plans SET name = name WHERE id = $1" $arg_id;
}
location = /header { ent_test_pg "SELECT $1::text" $http_x_value; }
location = /sleep { ent_test_pg "SELECT pg_sleep($1::float8), 'slept'" $arg_s; }
location = /plain { return 200 "plain\n"; }
location = /ent_status { ent_status; }
CONF

my $n = nginx_start(http_config => $http, config => $config);

my $r = http($n, '/echo?a=hello');
is($r->{status}, 200, 'a parameterized query answers');
is($r->{body}, "hello|5\n", 'with the parameter bound');

$r = http($n, '/null');
is($r->{body}, "\\N||x\n", 'NULL and the empty string stay apart');

$r = http($n, '/rows');
is($r->{body}, "1\n2\n3\n", 'several rows, in order');

# the connections to PostgreSQL probe a silent peer within a minute
# (keepalives every 30 s), not the kernel's two hours
my $pgport = EntTest::pg_dsn() =~ /port=(\d+)/ ? $1 : 0;
my $ss = `ss -tno state established '( dport = :$pgport )' 2>/dev/null`;
my @ka = $ss =~ /timer:\(keepalive,(\d+(?:\.\d+)?)(m?s)ec/g;
ok(@ka && !grep({ $_ > 30 } map { $ka[$_] / ($ka[$_ + 1] eq 'ms' ? 1000 : 1) }
                grep { !($_ % 2) } 0 .. $#ka),
   'keepalive probes on the connections to PostgreSQL, within 30 s')
    or diag($ss);

$r = http($n, '/none');
is($r->{status}, 200, 'no rows is an answer');
is($r->{body}, '', 'with nothing in it');

$r = http($n, '/update?id=team');
is($r->{body}, "affected 1\n", 'a command reports the rows it touched');

$r = http($n, '/div0');
is($r->{status}, 500, 'an SQL error is a 500');
is($r->{body}, "error 22012\n", 'carrying the SQLSTATE');

# hostile input is data, never SQL
$r = http($n, "/echo?a=x';DROP%20TABLE%20ent.plans;--");
is($r->{status}, 200, 'an injection attempt is just a value');
is($r->{body}, "x';DROP%20TABLE%20ent.plans;--|30\n", 'returned verbatim');
is(pg_sql("SELECT count(*) FROM ent.plans"), 5, 'and the table is there');

$r = http($n, '/header', headers => ["X-Value: caf\xe9"]);
is($r->{status}, 500, 'invalid UTF-8 is refused by the server');
is($r->{body}, "error 22021\n", 'as an encoding error');

$r = http($n, '/header', headers => ['X-Value: ' . ('a' x 8000)]);
is($r->{body}, ('a' x 8000) . "\n", 'a long parameter arrives whole');

# prepared once per connection, reused after
for (1 .. 20) {
    $r = http($n, "/echo?a=n$_");
    last unless $r->{body} eq "n$_|" . length("n$_") . "\n";
}
is($r->{body}, "n20|3\n", 'statements are reused across requests');

my $st = status_json($n);
is($st->{postgres}{errors}, 2, 'the two failed queries are counted');
is($st->{postgres}{connected}, 3, 'two pool connections and the listener');
is($st->{ops}, 0, 'no operation outlives its request');

# the queue: pool=2 queue=8, 12 slow queries at once
my @h = map { http_start($n, '/sleep?s=0.2') } 1 .. 12;
my @status = sort map { http_finish($_)->{status} } @h;
is(scalar(grep { $_ == 200 } @status), 10, 'two run, eight wait their turn');
is(scalar(grep { $_ == 503 } @status), 2, 'the rest get 503 at once');

# a query slower than query_timeout drops its connection, not the pool
$r = http($n, '/sleep?s=3');
is($r->{status}, 503, 'a query past query_timeout is a 503');
ok($r->{elapsed} < 2.9, 'answered at the timeout, not after the query');
$r = http($n, '/echo?a=after');
is($r->{body}, "after|5\n", 'the pool serves the next query');

nginx_stop($n);
my $log = check_log($n, 'pool');
like($log, qr/postgres query timed out after 1500ms/, 'the timeout is logged');
like($log, qr/postgres queue is full/, 'a full queue is logged');
like($log, qr/division by zero \(SQLSTATE 22012\)/, 'an SQL error is logged');

# queue_timeout: the second query waits for the only connection, then gives
# up
$n = nginx_start(http_config => 'ent_postgres "$TEST_PG_DSN" pool=1 '
                 . 'queue_timeout=300ms listen=off;',
                 config => $config);
my $slow = http_start($n, '/sleep?s=1');
sleep 0.1;
$r = http($n, '/echo?a=q');
is($r->{status}, 503, 'a query that waits past queue_timeout is a 503');
is(http_finish($slow)->{status}, 200, 'the running query completes');
nginx_stop($n);
like(check_log($n, 'queue timeout'), qr/no free connection within 300ms/,
     'the queue timeout is logged');

# a wrong password: a clean 503, and the password never reaches the log
(my $bad = EntTest::pg_dsn()) =~ s/password=\S+/password=Wr0ngSecret42/;
$n = nginx_start(http_config => "ent_postgres \"$bad\" backoff=50ms:200ms;",
                 config => $config);
$r = http($n, '/echo?a=x');
is($r->{status}, 503, 'no connection: 503');
nginx_stop($n);
$log = check_log($n, 'bad password');
like($log, qr/password authentication failed for user "ent"/,
     'the refusal is logged');
unlike($log, qr/Wr0ngSecret42/, 'the password is not');

done_testing;
