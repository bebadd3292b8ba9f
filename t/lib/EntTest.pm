package EntTest;

# The ngx_ent test harness, in core Perl (Test::Nginx is not packaged for
# Debian and CPAN is out of reach).  It starts and stops real PostgreSQL,
# Redis and nginx processes on loopback, speaks HTTP/1.1 over plain
# sockets, and runs data-driven blocks in the Test::Nginx manner:
#
#   === TEST 1: what it shows
#   --- http_config        (inside http{}, before the server)
#   --- config             (inside the test server{})
#   --- request            METHOD /path, or a whole raw request
#   --- more_headers       extra request headers, one a line
#   --- error_code: 200
#   --- response_body      exact body
#   --- response_body_like regex
#   --- response_headers   Name: value (exact), one a line; "!Name" absent
#   --- error_log          lines that must be in the error log
#   --- no_error_log       lines that must not be
#   --- must_die           nginx -t must fail; error_log then matches stderr
#
# Every block also fails on [alert], [crit] or [emerg] in the error log
# and on any sanitizer report.

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Socket qw(SOL_SOCKET SO_LINGER);
use Test::More;
use Time::HiRes qw(time sleep);

our @EXPORT = qw(
    pg_start pg_stop pg_kill pg_sql pg_dsn
    redis_start redis_stop redis_cli echo_start
    redis_node_start redis_node_stop redis_cluster_start redis_cluster_owner
    redis_cluster_migrate_begin redis_cluster_migrate_keys
    redis_cluster_migrate_end redis_node_cli sentinel_start
    nginx_start nginx_stop nginx_reload nginx_test nginx_log nginx_port
    http http_start http_finish status_json
    run_blocks check_log wait_until tmpdir
    sleep time
);

our $TOP = $ENV{ENT_TOP} || abs_path(dirname(__FILE__) . '/../..');
our $NGINX = abs_path($ENV{ENT_NGINX} || '/usr/sbin/nginx');
our $MODULES = abs_path($ENV{ENT_MODULES} || "$TOP/modules");
our $ENTCTL = "$TOP/bin/entctl";
our $IS_ROOT = ($> == 0);

my $ROOT = tempdir('ent-test-XXXXXX', TMPDIR => 1, CLEANUP => 0);
chmod 0755, $ROOT;

my (%PG, %REDIS, @NGINX);

# ENT_VALGRIND=1: nginx runs under valgrind's memcheck (its reports, like
# the sanitizers', fail check_log); everything waits longer
our $VALGRIND = $ENV{ENT_VALGRIND}
    ? "valgrind -q --trace-children=yes --leak-check=no --num-callers=30 "
      . "--error-exitcode=0 --suppressions=$TOP/test/valgrind.supp "
      . "--log-file=$ROOT/valgrind.%p "
    : '';
our $SLOW = $ENV{ENT_VALGRIND} ? 20 : 1;
my %VG_SEEN;

END {
    my $rc = $?;
    nginx_stop($_) for grep { $_->{pid} } @NGINX;
    redis_stop() if $REDIS{pid};
    pg_stop() if $PG{dir};
    remove_tree($ROOT) unless $ENV{ENT_KEEP};
    $? = $rc;
}

$ENV{ASAN_OPTIONS} = 'detect_leaks=0:abort_on_error=0:detect_odr_violation=0:'
    . 'log_path=' . "$ROOT/asan";
$ENV{UBSAN_OPTIONS} = 'print_stacktrace=1:log_path=' . "$ROOT/ubsan"
    . ":suppressions=$TOP/test/ubsan.supp";


# a command's standard output, without its last newlines ($? as it ended)
sub capture {
    my (@cmd) = @_;
    open my $fh, '-|', @cmd or die "$cmd[0]: $!";
    local $/;
    my $out = <$fh>;
    close $fh;
    $out = '' unless defined $out;
    $out =~ s/\n+\z//;
    return $out;
}

sub run_cmd {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    die "command failed: $cmd\n$out" if $?;
    return $out;
}

sub tmpdir { return $ROOT }

sub free_port {
    for (1 .. 50) {
        my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                      LocalPort => 0, Proto => 'tcp',
                                      ReuseAddr => 0)
            or next;
        my $port = $s->sockport;
        close $s;
        return $port;
    }
    die "no free port\n";
}

# a port P such that P and P + 10000 (a Redis Cluster node's bus) are
# free, both below the kernel's ephemeral range
sub cluster_port {
    for (1 .. 200) {
        my $port = 12000 + int(rand(10000));
        my @s = map {
            IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => $_, Proto => 'tcp',
                                  ReuseAddr => 0)
        } $port, $port + 10000;
        next if grep { !$_ } @s;
        close $_ for @s;
        return $port;
    }
    die "no free port pair\n";
}

sub wait_until {
    my ($cond, $timeout, $step) = @_;
    $timeout ||= 5;
    $step ||= 0.02;
    my $end = time + $timeout;
    while (time < $end) {
        my $r = $cond->();
        return $r if $r;
        sleep $step;
    }
    return $cond->();
}

sub port_open {
    my ($port, $addr) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $addr || '127.0.0.1',
                                  PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    return 0 unless $s;
    close $s;
    return 1;
}


# PostgreSQL: initdb once into a template (as the postgres user: initdb
# refuses root), then copy it for each test file

sub pg_template {
    # outside the checkout: initdb runs as "postgres", which may not be able
    # to enter it (a checkout under /root)
    my $base = ($ENV{TMPDIR} || '/tmp') . "/ngx-ent-pg-template-$>";
    my $tmpl = "$base/data";
    return $tmpl if -f "$tmpl/PG_VERSION" && -f "$base/ok";
    make_path($base);
    chmod 0755, $base;
    open my $lock, '>', "$base/lock" or die "$base/lock: $!";
    flock $lock, 2;
    if (!-f "$base/ok") {
        remove_tree($tmpl);
        make_path($tmpl);
        chown_pg($tmpl);
        my $initdb = pg_bin('initdb');
        run_cmd(as_pg("$initdb -D $tmpl -U postgres --auth-local=trust "
                      . "--auth-host=scram-sha-256 -E UTF8 --locale=C -N"));
        open my $ok, '>', "$base/ok"; close $ok;
    }
    close $lock;
    return $tmpl;
}

sub pg_bin {
    my ($name) = @_;
    for my $d (glob('/usr/lib/postgresql/*/bin')) {
        return "$d/$name" if -x "$d/$name";
    }
    return $name;
}

sub as_pg {
    my ($cmd) = @_;
    return $IS_ROOT ? "runuser -u postgres -- $cmd" : $cmd;
}

sub chown_pg {
    my ($path) = @_;
    return unless $IS_ROOT;
    my (undef, undef, $uid, $gid) = getpwnam('postgres');
    system('chown', '-R', "$uid:$gid", $path);
}

# listen => ADDR: an address to listen on besides 127.0.0.1 (kept for the
# restarts); hba => [lines]: appended to pg_hba.conf when the cluster is
# made (e.g. "host all all 10.0.0.0/24 scram-sha-256")
sub pg_start {
    my (%o) = @_;
    if (!$PG{dir}) {
        my $tmpl = pg_template();
        $PG{dir} = "$ROOT/pg";
        make_path($PG{dir});
        system('cp', '-a', $tmpl, "$PG{dir}/data") == 0 or die "cp: $!";
        if ($o{hba}) {
            open my $h, '>>', "$PG{dir}/data/pg_hba.conf" or die $!;
            print $h map { "$_\n" } @{ $o{hba} };
            close $h;
        }
        chown_pg($PG{dir});
        $PG{port} = free_port();
    }
    $PG{listen} = $o{listen} if $o{listen};
    my $listen = join ',', '127.0.0.1', $PG{listen} // ();
    my $pgctl = pg_bin('pg_ctl');
    # durable => 1: a commit is on disk before it is answered (tests that
    # kill PostgreSQL and count what it acknowledged)
    my $opts = "-p $PG{port} -k $PG{dir} -c listen_addresses=$listen "
        . ($o{durable} ? ''
           : "-c fsync=off -c synchronous_commit=off -c full_page_writes=off ")
        . "-c max_connections=200 -c log_min_messages=warning";
    # count statements on the server's side: every execution is logged
    $opts .= " -c log_statement=all" if $o{log_statements};
    run_cmd(as_pg("$pgctl -D $PG{dir}/data -l $PG{dir}/log -w -t 30 "
                  . "-o '$opts' start"));
    if (!$PG{created}) {
        pg_sql("CREATE ROLE ent LOGIN PASSWORD 'ent-secret'", 'postgres');
        pg_sql("CREATE DATABASE ent OWNER ent", 'postgres');
        chmod 0755, $PG{dir};
        run_cmd("$ENTCTL --dsn '" . pg_dsn() . "' migrate");
        $PG{created} = 1;
    }
    return $PG{port};
}

sub pg_log {
    open my $f, '<', "$PG{dir}/log" or return '';
    local $/;
    my $log = <$f>;
    return defined $log ? $log : '';
}

sub pg_dsn {
    return "host=127.0.0.1 port=$PG{port} dbname=ent user=ent "
        . "password=ent-secret sslmode=disable";
}

sub pg_stop {
    my (%o) = @_;
    return unless $PG{dir} && -f "$PG{dir}/data/postmaster.pid";
    my $mode = $o{mode} || 'fast';
    system(as_pg(pg_bin('pg_ctl') . " -D $PG{dir}/data -m $mode -w -t 30 "
                 . "stop >/dev/null 2>&1"));
}

sub pg_kill {
    return unless $PG{dir} && -f "$PG{dir}/data/postmaster.pid";
    open my $f, '<', "$PG{dir}/data/postmaster.pid" or return;
    my $pid = <$f>;
    chomp $pid;
    kill 'KILL', $pid;
    wait_until(sub { !kill 0, $pid }, 10);
    unlink "$PG{dir}/data/postmaster.pid";
}

# A hot standby of the test's PostgreSQL (pg_basebackup, streaming
# replication), on a port of its own: { dir, port }.  Stopped at exit.
# listen => ADDR: an address to listen on besides 127.0.0.1.
my @STANDBYS;

sub pg_standby_start {
    my (%o) = @_;
    my $sb = { dir => "$ROOT/standby" . scalar(@STANDBYS),
               port => free_port(),
               listen => join(',', '127.0.0.1', $o{listen} // ()),
               opts => $o{log_statements} ? '-c log_statement=all' : '' };
    make_path($sb->{dir});
    chown_pg($sb->{dir});
    run_cmd(as_pg(pg_bin('pg_basebackup') . " -h $PG{dir} -p $PG{port} "
                  . "-U postgres -D $sb->{dir}/data -R -X stream -c fast"));
    push @STANDBYS, $sb;
    pg_standby_run($sb);
    return $sb;
}

sub pg_standby_run {
    my ($sb) = @_;
    run_cmd(as_pg(pg_bin('pg_ctl') . " -D $sb->{dir}/data -l $sb->{dir}/log "
        . "-w -t 30 -o '-p $sb->{port} -k $sb->{dir} "
        . "-c listen_addresses=$sb->{listen} -c hot_standby=on "
        . "-c max_connections=200 $sb->{opts}' start"));
}

sub pg_standby_stop {
    my ($sb, %o) = @_;
    return unless -f "$sb->{dir}/data/postmaster.pid";
    system(as_pg(pg_bin('pg_ctl') . " -D $sb->{dir}/data -m "
                 . ($o{mode} || 'fast') . " -w stop >/dev/null 2>&1"));
}

sub pg_standby_promote {
    my ($sb) = @_;
    run_cmd(as_pg(pg_bin('pg_ctl') . " -D $sb->{dir}/data -w promote"));
}

# SQL on a standby, as the superuser over its unix socket
sub pg_standby_sql {
    my ($sb, $sql) = @_;
    return capture(($IS_ROOT ? ('runuser', '-u', 'postgres', '--') : ()),
        'psql', '-h', $sb->{dir}, '-p', $sb->{port}, '-U', 'postgres',
        '-X', '-q', '-At', '-d', 'ent', '-c', $sql);
}

END { pg_standby_stop($_, mode => 'immediate') for @STANDBYS }

# the NOTIFY payloads on a channel that SQL (one or more statements, run as
# "ent") sent, in order
sub pg_notifications {
    my ($channel, $sql) = @_;
    my $file = "$ROOT/notify.sql";
    open my $f, '>', $file or die "$file: $!";
    print $f "LISTEN $channel;\n$sql;\n";
    close $f;
    local $ENV{PGPASSWORD} = 'ent-secret';
    my $out = `psql -h 127.0.0.1 -p $PG{port} -U ent -d ent -X -q -v ON_ERROR_STOP=1 -f $file 2>&1`;
    die "psql failed: $sql\n$out" if $?;
    return [$out =~ /notification "\Q$channel\E" with payload "([^"]*)"/g];
}

# as "ent" over TCP, or as the superuser over the unix socket
sub pg_sql {
    my ($sql, $db) = @_;
    $db ||= 'ent';
    local $ENV{PGPASSWORD} = 'ent-secret';
    my @cmd = $db eq 'postgres'
        ? (($IS_ROOT ? ('runuser', '-u', 'postgres', '--') : ()),
           'psql', '-h', $PG{dir}, '-U', 'postgres')
        : ('psql', '-h', '127.0.0.1', '-U', 'ent');
    my $out = capture(@cmd, '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1',
        '-p', $PG{port}, '-d', $db, '-c', $sql);
    die "psql failed: $sql\n" if $?;
    return $out;
}


# Redis

sub redis_start {
    if (!$REDIS{dir}) {
        $REDIS{dir} = "$ROOT/redis";
        make_path($REDIS{dir});
        $REDIS{port} = free_port();
    }
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', "$REDIS{dir}/stdout";
        open STDERR, '>&', \*STDOUT;
        exec 'redis-server', '--port', $REDIS{port}, '--bind', '127.0.0.1',
            '--save', '', '--appendonly', 'no', '--dir', $REDIS{dir},
            '--enable-debug-command', 'yes', '--daemonize', 'no',
            '--logfile', "$REDIS{dir}/log", '--loglevel', 'warning',
            '--unixsocket', "$REDIS{dir}/redis.sock", '--unixsocketperm',
            '777';
        exit 127;
    }
    $REDIS{pid} = $pid;
    wait_until(sub { port_open($REDIS{port}) }, 10)
        or die "redis did not start\n";
    return $REDIS{port};
}

sub redis_stop {
    my (%o) = @_;
    return unless $REDIS{pid};
    kill($o{signal} || 'TERM', $REDIS{pid});
    waitpid $REDIS{pid}, 0;
    delete $REDIS{pid};
}

sub redis_cli {
    my (@args) = @_;
    return capture('redis-cli', '-p', $REDIS{port}, @args);
}

# more Redis servers, each with its own port and directory: a master, a
# replica (replicaof => PORT), a sentinel (sentinel_start).  They are
# hashes { port, pid, dir }; the END block stops what is left.
# addr => ADDR: also listen on ADDR, and announce it (a replica to its
# master, a sentinel to the others); master_addr => ADDR: where the master
# (replicaof, sentinel monitor) is, default 127.0.0.1.

my @NODES;

sub redis_node_start {
    my (%o) = @_;
    my $node = { port => $o{port} || free_port(), kind => 'redis' };
    $node->{dir} = "$ROOT/redis-$node->{port}";
    make_path($node->{dir});
    my @args = ('--port', $node->{port},
                '--bind', '127.0.0.1', $o{addr} // (),
                '--save', '', '--appendonly', 'no', '--dir', $node->{dir},
                '--daemonize', 'no', '--logfile', "$node->{dir}/log",
                '--loglevel', 'notice');
    push @args, '--replicaof', $o{master_addr} || '127.0.0.1', $o{replicaof}
        if $o{replicaof};
    push @args, @{ $o{args} } if $o{args};
    # protected mode refuses clients off loopback when there is no password
    push @args, '--replica-announce-ip', $o{addr}, '--protected-mode', 'no'
        if $o{addr};
    _node_spawn($node, 'redis-server', @args);
    return $node;
}

# A Redis Cluster of MASTERS masters (default 3), each with REPLICAS
# replicas (default 0), on loopback (and on addr => ADDR, which they
# announce); node_timeout => ms (default 1000).
# Returns the masters and the replicas (array refs of nodes) once every
# node reports the cluster ok.
sub redis_cluster_start {
    my (%o) = @_;
    my $masters = $o{masters} || 3;
    my $replicas = $o{replicas} || 0;
    my @nodes = map {
        redis_node_start(port => cluster_port(), addr => $o{addr},
                         args => ['--cluster-enabled', 'yes',
                                  $o{addr} ? ('--cluster-announce-ip',
                                              $o{addr}) : (),
                                  '--cluster-config-file', 'nodes.conf',
                                  '--cluster-node-timeout',
                                  $o{node_timeout} || 1000,
                                  '--cluster-require-full-coverage', 'no'])
    } 1 .. $masters * (1 + $replicas);
    $_->{announce} = $o{addr} for @nodes;
    my $out = capture('redis-cli', '--cluster', 'create',
                      (map { ($o{addr} || '127.0.0.1') . ":$_->{port}" }
                       @nodes),
                      '--cluster-replicas', $replicas, '--cluster-yes');
    die "redis-cli --cluster create failed:\n$out\n"
        unless $out =~ /All 16384 slots covered/;
    wait_until(sub {
        !grep { redis_node_cli($_, 'CLUSTER', 'INFO') !~ /cluster_state:ok/ }
            @nodes
    }, 30, 0.1) or die "the redis cluster did not come up\n";
    my (@m, @r);
    for my $node (@nodes) {
        wait_until(sub { redis_node_cli($node, 'ROLE') =~ /^(master|slave)/ },
                   10, 0.1);
        if (redis_node_cli($node, 'ROLE') =~ /^master/) { push @m, $node }
        else { push @r, $node }
    }
    if ($replicas) {
        # every replica in sync, so that a failover loses nothing
        wait_until(sub {
            !grep { redis_node_cli($_, 'INFO', 'replication')
                        !~ /master_link_status:up/ } @r
        }, 30, 0.1) or die "the redis cluster replicas are not in sync\n";
    }
    return (\@m, \@r);
}

# the node of NODES that serves KEY's slot (CLUSTER NODES of the first),
# and the slot
sub redis_cluster_owner {
    my ($nodes, $key) = @_;
    my $slot = redis_node_cli($nodes->[0], 'CLUSTER', 'KEYSLOT', $key);
    for my $line (split /\n/, redis_node_cli($nodes->[0], 'CLUSTER', 'NODES')) {
        my ($id, $addr, $flags, undef, undef, undef, undef, undef, @ranges)
            = split / /, $line;
        next unless $flags =~ /master/ && $addr =~ /:(\d+)@/;
        my $port = $1;
        for (@ranges) {
            next unless /^(\d+)(?:-(\d+))?$/;
            next unless $slot >= $1 && $slot <= ($2 // $1);
            my ($owner) = grep { $_->{port} == $port } @$nodes;
            return ($owner, $slot);
        }
    }
    return (undef, $slot);
}

# Moving a slot by hand, the way redis-cli --cluster reshard does:
# redis_cluster_migrate_begin (IMPORTING, MIGRATING), then any keys
# (redis_cluster_migrate_keys, all of the slot's without KEYS), then
# redis_cluster_migrate_end (the rest of the keys, SETSLOT NODE on the
# target, the source and the other MASTERS).
sub redis_cluster_migrate_begin {
    my ($slot, $from, $to) = @_;
    redis_node_cli($to, 'CLUSTER', 'SETSLOT', $slot, 'IMPORTING',
                   redis_node_cli($from, 'CLUSTER', 'MYID'));
    redis_node_cli($from, 'CLUSTER', 'SETSLOT', $slot, 'MIGRATING',
                   redis_node_cli($to, 'CLUSTER', 'MYID'));
}

sub redis_cluster_migrate_keys {
    my ($slot, $from, $to, @keys) = @_;
    @keys = split /\n/, redis_node_cli($from, 'CLUSTER', 'GETKEYSINSLOT',
                                       $slot, 1000) unless @keys;
    return 'NOKEY' unless @keys;
    my $host = $to->{announce} || '127.0.0.1';
    return redis_node_cli($from, 'MIGRATE', $host, $to->{port}, '', 0, 5000,
                          'KEYS', @keys);
}

sub redis_cluster_migrate_end {
    my ($masters, $slot, $from, $to) = @_;
    1 while redis_cluster_migrate_keys($slot, $from, $to) eq 'OK';
    my $id = redis_node_cli($to, 'CLUSTER', 'MYID');
    redis_node_cli($_, 'CLUSTER', 'SETSLOT', $slot, 'NODE', $id)
        for $to, $from, grep { $_ != $to && $_ != $from && $_->{pid} }
            @$masters;
}

# a sentinel watching master NAME at 127.0.0.1:PORT with QUORUM
sub sentinel_start {
    my (%o) = @_;
    my $node = { port => $o{port} || free_port(), kind => 'sentinel' };
    $node->{dir} = "$ROOT/sentinel-$node->{port}";
    make_path($node->{dir});
    my $name = $o{name} || 'mymaster';
    open my $f, '>', "$node->{dir}/sentinel.conf" or die $!;
    print $f "port $node->{port}\n"
        . "bind 127.0.0.1" . ($o{addr} ? " $o{addr}" : '') . "\n"
        . ($o{addr} ? "sentinel announce-ip $o{addr}\nprotected-mode no\n"
           : '')
        . "daemonize no\n"
        . "dir $node->{dir}\n"
        . "logfile $node->{dir}/log\n"
        . "sentinel monitor $name " . ($o{master_addr} || '127.0.0.1')
        . " $o{master} "
        . ($o{quorum} || 2) . "\n"
        . "sentinel down-after-milliseconds $name "
        . ($o{down_after} || 1000) . "\n"
        . "sentinel failover-timeout $name "
        . ($o{failover_timeout} || 5000) . "\n"
        . "sentinel parallel-syncs $name 1\n";
    close $f;
    _node_spawn($node, 'redis-server', "$node->{dir}/sentinel.conf",
                '--sentinel');
    return $node;
}

sub _node_spawn {
    my ($node, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', "$node->{dir}/stdout";
        open STDERR, '>&', \*STDOUT;
        exec @cmd;
        exit 127;
    }
    $node->{pid} = $pid;
    push @NODES, $node;
    wait_until(sub { port_open($node->{port}) }, 10)
        or die "$node->{kind} on port $node->{port} did not start\n";
}

sub redis_node_stop {
    my ($node, %o) = @_;
    return unless $node->{pid};
    kill($o{signal} || 'TERM', $node->{pid});
    waitpid $node->{pid}, 0;
    delete $node->{pid};
}

sub redis_node_cli {
    my ($node, @args) = @_;
    my $port = ref $node ? $node->{port} : $node;
    return capture('redis-cli', '-p', $port, @args);
}

END {
    local $?;       # waitpid must not change the test's exit code
    redis_node_stop($_, signal => 'KILL') for grep { $_->{pid} } @NODES;
}

sub redis_socket { return "$REDIS{dir}/redis.sock" }

sub redis_port { return $REDIS{port} }

sub redis_pid { return $REDIS{pid} }

# the postmaster and its children (to pause them)
sub pg_pids {
    open my $f, '<', "$PG{dir}/data/postmaster.pid" or return;
    my $pm = <$f>;
    chomp $pm;
    my @pids = ($pm);
    for my $d (glob('/proc/[0-9]*')) {
        open my $s, '<', "$d/stat" or next;
        my $st = <$s>;
        push @pids, $1 if $st && $st =~ /^(\d+) \([^)]*\) \S+ (\d+)/
            && $2 == $pm;
    }
    return @pids;
}


# the demo app as the upstream: it answers with the X-Ent-* headers it got

my %ECHO;

sub echo_start {
    return $ECHO{port} if $ECHO{pid};
    $ECHO{port} = free_port();
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        exec $^X, "$TOP/demo/echo-app.pl", $ECHO{port};
        exit 127;
    }
    $ECHO{pid} = $pid;
    wait_until(sub { port_open($ECHO{port}) }, 10) or die "echo app down\n";
    return $ECHO{port};
}

END {
    if ($ECHO{pid}) {
        kill 'TERM', $ECHO{pid};
        waitpid $ECHO{pid}, 0;
    }
}


# nginx

sub expand {
    my ($text) = @_;
    return '' unless defined $text;
    $text =~ s/\$TEST_PG_DSN\b/pg_dsn()/ge;
    $text =~ s/\$TEST_PG_PORT\b/$PG{port}/g;
    $text =~ s/\$TEST_REDIS_PORT\b/$REDIS{port}/g;
    $text =~ s/\$TEST_REDIS_SOCKET\b/redis_socket()/ge;
    $text =~ s/\$TEST_MODULES\b/$MODULES/g;
    $text =~ s/\$TEST_TMP\b/$ROOT/g;
    $text =~ s/\$TEST_ECHO_PORT\b/$ECHO{port}/g if $ECHO{port};
    return $text;
}

sub nginx_conf {
    my ($n, %o) = @_;
    my @mods = $o{modules}
        ? @{ $o{modules} }
        : qw(core tenant ratelimit sso scim test);
    my $load = join '', map {
        "load_module $MODULES/ngx_http_ent_${_}_module.so;\n"
    } @mods;
    my $user = $IS_ROOT ? "user root root;\n" : '';
    my $workers = $o{workers} || 1;
    my $http = expand($o{http_config});
    my $server = expand($o{config});
    my $main = expand($o{main_config});
    return <<"CONF";
$load$user
worker_processes $workers;
daemon on;
master_process on;
pid $n->{prefix}/logs/nginx.pid;
error_log $n->{prefix}/logs/error.log @{[ $ENV{ENT_DEBUG} ? "debug" : "info" ]};
$main
events {
    worker_connections 4096;
    accept_mutex off;
}

http {
    access_log off;
    client_body_temp_path $n->{prefix}/tmp/body;
    proxy_temp_path $n->{prefix}/tmp/proxy;
    fastcgi_temp_path $n->{prefix}/tmp/fastcgi;
    uwsgi_temp_path $n->{prefix}/tmp/uwsgi;
    scgi_temp_path $n->{prefix}/tmp/scgi;

$http

    server {
        listen $n->{addr}:$n->{port};
        server_name localhost;

$server
    }
}
CONF
}

# An instance: { id, prefix, port, addr, wrap }.  nginx_start and
# nginx_test take, for a new instance: addr => ADDR (the test server
# listens there, 127.0.0.1 by default; http() connects there), port => N
# (default a free one), wrap => 'ip netns exec NS ' (a command prefix nginx
# runs under, e.g. in a network namespace).
sub nginx_new {
    my (%o) = @_;
    my $n = { id => scalar @NGINX };
    $n->{prefix} = "$ROOT/nginx$n->{id}";
    make_path("$n->{prefix}/logs", "$n->{prefix}/conf", "$n->{prefix}/tmp");
    $n->{port} = $o{port} || free_port();
    $n->{addr} = $o{addr} || '127.0.0.1';
    $n->{wrap} = $o{wrap} // '';
    $n->{log_pos} = 0;
    push @NGINX, $n;
    return $n;
}

sub write_conf {
    my ($n, %o) = @_;
    open my $f, '>', "$n->{prefix}/conf/nginx.conf" or die $!;
    print $f nginx_conf($n, %o);
    close $f;
}

# nginx -t: returns (exit code, output)
sub nginx_test {
    my (%o) = @_;
    my $n = $o{instance} || nginx_new(%o);
    write_conf($n, %o);
    my $out = `$n->{wrap}$NGINX -t -p $n->{prefix} -c $n->{prefix}/conf/nginx.conf 2>&1`;
    return ($? >> 8, $out);
}

sub nginx_start {
    my (%o) = @_;
    my $n = $o{instance} || nginx_new(%o);
    write_conf($n, %o);
    unlink "$n->{prefix}/logs/nginx.pid";
    my $out = `$n->{wrap}$VALGRIND$NGINX -p $n->{prefix} -c $n->{prefix}/conf/nginx.conf 2>&1`;
    die "nginx did not start: $out\n" if $?;
    wait_until(sub { -s "$n->{prefix}/logs/nginx.pid" }, 10 * $SLOW)
        or die "nginx wrote no pid\n";
    open my $f, '<', "$n->{prefix}/logs/nginx.pid";
    my $pid = <$f>;
    chomp $pid;
    $n->{pid} = $pid;
    wait_until(sub { port_open($n->{port}, $n->{addr}) }, 10 * $SLOW)
        or die "nginx not up\n";
    # workers are up once the listening socket answers; give them their
    # backend connections
    sleep(($o{settle} // 0.3) * ($VALGRIND ? 10 : 1));
    return $n;
}

sub nginx_stop {
    my ($n) = @_;
    return unless $n->{pid};
    kill 'QUIT', $n->{pid};
    wait_until(sub { !kill 0, $n->{pid} }, 15 * $SLOW)
        or kill 'KILL', $n->{pid};
    delete $n->{pid};
}

sub nginx_reload {
    my ($n, %o) = @_;
    write_conf($n, %o) if %o;
    my @before = worker_pids($n);
    kill 'HUP', $n->{pid};
    wait_until(sub {
        my @now = worker_pids($n);
        my %old = map { $_ => 1 } @before;
        @now && !grep { $old{$_} } @now;
    }, 15 * $SLOW) or die "reload did not replace the workers\n";
    sleep($VALGRIND ? 3 : 0.3);
}

sub worker_pids {
    my ($n) = @_;
    my @pids;
    for my $d (glob('/proc/[0-9]*')) {
        open my $f, '<', "$d/stat" or next;
        my $st = <$f>;
        close $f;
        next unless $st && $st =~ /^(\d+) \(([^)]*)\) \S+ (\d+)/;
        push @pids, $1 if $3 == $n->{pid};
    }
    return @pids;
}

sub nginx_port { return $_[0]->{port} }

sub nginx_log {
    my ($n) = @_;
    open my $f, '<', "$n->{prefix}/logs/error.log" or return '';
    local $/;
    my $log = <$f>;
    close $f;
    return defined $log ? $log : '';
}

# the part of the log written since the last call
sub nginx_log_new {
    my ($n) = @_;
    my $log = nginx_log($n);
    my $new = substr($log, $n->{log_pos});
    $n->{log_pos} = length $log;
    return $new;
}

sub sanitizer_reports {
    my @r;
    for my $f (glob("$ROOT/asan.*"), glob("$ROOT/ubsan.*")) {
        open my $h, '<', $f or next;
        local $/;
        my $t = <$h>;
        push @r, $t if $t;
        unlink $f;
    }
    # valgrind's files stay open in the processes: read what is new
    for my $f (glob("$ROOT/valgrind.*")) {
        open my $h, '<', $f or next;
        local $/;
        seek $h, $VG_SEEN{$f} // 0, 0;
        my $t = <$h>;
        next unless defined $t;
        $VG_SEEN{$f} = ($VG_SEEN{$f} // 0) + length $t;
        push @r, $t if $t =~ /\S/;
    }
    return @r;
}

# fails on alert/crit/emerg and sanitizer reports; returns the new log
sub check_log {
    my ($n, $name, %o) = @_;
    my $log = nginx_log_new($n);
    my @bad = grep { /\[(alert|crit|emerg)\]/ } split /\n/, $log;
    @bad = grep { !/$o{allow}/ } @bad if $o{allow};
    push @bad, grep { /AddressSanitizer|runtime error:|LeakSanitizer/ }
        split /\n/, $log;
    push @bad, sanitizer_reports();
    ok(!@bad, "$name: no alert, crit, emerg or sanitizer report")
        or diag(join "\n", @bad[0 .. ($#bad > 10 ? 10 : $#bad)]);
    return $log;
}


# HTTP client

sub build_request {
    my ($req, %o) = @_;
    return $req if $req =~ /\r\n\r\n/s;
    my ($method, $path) = split ' ', $req, 2;
    ($method, $path) = ('GET', $method) if !defined $path;
    my $host = $o{host} || 'localhost';
    my $headers = '';
    for my $h (@{ $o{headers} || [] }) {
        if ($h =~ /^Host:\s*(.*)$/i) {
            $host = $1;
            next;
        }
        $headers .= "$h\r\n";
    }
    my $body = defined $o{body} ? $o{body} : '';
    $headers .= "Content-Length: " . length($body) . "\r\n"
        if length $body;
    return "$method $path HTTP/1.1\r\nHost: $host\r\n"
        . "Connection: close\r\n$headers\r\n$body";
}

# addr => ADDR: where to connect (default the instance's address, or
# 127.0.0.1 for a port); connect_timeout => seconds (default 5)
sub http_start {
    my ($n, $req, %o) = @_;
    my $port = ref $n ? $n->{port} : $n;
    my $addr = $o{addr} || (ref $n ? $n->{addr} : undef) || '127.0.0.1';
    my $s = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port,
                                  Proto => 'tcp',
                                  Timeout => $o{connect_timeout} || 5)
        or die "connect to $port: $!\n";
    $s->autoflush(1);
    print $s build_request($req, %o);
    return { sock => $s, buf => '', start => time };
}

sub http_finish {
    my ($h, %o) = @_;
    my $s = $h->{sock};
    my $sel = IO::Select->new($s);
    my $end = time + ($o{timeout} || 10) * $SLOW;
    while (time < $end) {
        last unless $sel->can_read($end - time);
        my $n = sysread $s, my $chunk, 65536;
        last unless $n;
        $h->{buf} .= $chunk;
    }
    close $s;
    $h->{elapsed} = time - $h->{start};
    return parse_response($h->{buf}, $h);
}

sub http {
    my ($n, $req, %o) = @_;
    return http_finish(http_start($n, $req, %o), %o);
}

sub parse_response {
    my ($raw, $h) = @_;
    my $res = { raw => $raw, status => 0, headers => {}, body => '',
                elapsed => $h ? $h->{elapsed} : 0 };
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    return $res unless defined $head && $head =~ m{^HTTP/\d\.\d (\d+)};
    $res->{status} = $1;
    for my $line (split /\r\n/, $head) {
        next unless $line =~ /^([^:]+):\s*(.*)$/;
        push @{ $res->{headers}{lc $1} }, $2;
    }
    $body = '' unless defined $body;
    if (($res->{headers}{'transfer-encoding'}[0] || '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($body, 0, $len);
            substr($body, 0, $len + 2) = '';
        }
        $body = $out;
    }
    $res->{body} = $body;
    return $res;
}

sub header { my ($res, $name) = @_; my $v = $res->{headers}{lc $name};
             return $v ? $v->[0] : undef }

# ent_status as a hash (a tiny JSON reader, enough for our own output)
sub status_json {
    my ($n, $path) = @_;
    my $res = http($n, $path || '/ent_status');
    return decode_json_min($res->{body});
}

sub decode_json_min {
    my ($text) = @_;
    my $pos = 0;
    my $value;
    $value = sub {
        $text =~ /\G\s*/gc;
        if ($text =~ /\G\{/gc) {
            my %h;
            $text =~ /\G\s*/gc;
            return \%h if $text =~ /\G\}/gc;
            while (1) {
                $text =~ /\G\s*"((?:[^"\\]|\\.)*)"\s*:/gc or die "json key";
                my $k = $1;
                $h{$k} = $value->();
                $text =~ /\G\s*/gc;
                next if $text =~ /\G,/gc;
                last if $text =~ /\G\}/gc;
                die "json object";
            }
            return \%h;
        }
        if ($text =~ /\G\[/gc) {
            my @a;
            $text =~ /\G\s*/gc;
            return \@a if $text =~ /\G\]/gc;
            while (1) {
                push @a, $value->();
                $text =~ /\G\s*/gc;
                next if $text =~ /\G,/gc;
                last if $text =~ /\G\]/gc;
                die "json array";
            }
            return \@a;
        }
        return $1 if $text =~ /\G"((?:[^"\\]|\\.)*)"/gc;
        return $1 + 0 if $text =~ /\G(-?\d+(?:\.\d+)?)/gc;
        return undef if $text =~ /\Gnull/gc;
        return 1 if $text =~ /\Gtrue/gc;
        return 0 if $text =~ /\Gfalse/gc;
        die "json value at " . pos($text);
    };
    my $v = eval { $value->() };
    return $v;
}


# data-driven blocks

sub parse_blocks {
    my ($data) = @_;
    my @blocks;
    for my $chunk (split /^=== /m, $data) {
        next unless $chunk =~ /\S/;
        my ($name, $rest) = split /\n/, $chunk, 2;
        my $b = { name => $name };
        while ($rest =~ /^--- (\w+)(?::[ \t]*(.*))?\n((?:(?!--- \w).*\n)*)/mg) {
            my ($k, $inline, $body) = ($1, $2, $3);
            $body =~ s/\n\n+\z/\n/;      # the blank line between blocks
            $b->{$k} = defined $inline && length $inline ? $inline : $body;
        }
        push @blocks, $b;
    }
    return @blocks;
}

sub run_blocks {
    my (%common) = @_;
    my $data = do { no strict 'refs'; local $/; my $fh = \*{"main::DATA"};
                    <$fh> };
    for my $b (parse_blocks($data)) {
        run_block($b, %common);
    }
}

sub lines { my ($t) = @_; return grep { length } map { s/^\s+|\s+$//gr }
            split /\n/, (defined $t ? $t : '') }

sub run_block {
    my ($b, %common) = @_;
    my $name = $b->{name};
    my %conf = (%common,
                http_config => (defined $b->{http_config_only} ? ''
                                : ($common{http_config} || ''))
                    . ($b->{http_config} || ''),
                config => $b->{config},
                main_config => $b->{main_config});
    $conf{modules} = [split ' ', $b->{modules}] if $b->{modules};

    if (defined $b->{must_die}) {
        my ($rc, $out) = nginx_test(%conf);
        if ($b->{must_die} =~ /^no/) {
            is($rc, 0, "$name: nginx -t passes") or diag $out;
        } else {
            isnt($rc, 0, "$name: nginx -t fails");
        }
        like($out, qr/\Q$_\E/, "$name: nginx -t says \"$_\"")
            for lines($b->{error_log});
        return;
    }

    my $n = nginx_start(%conf);
    my @reqs = lines($b->{request});
    my $res;
    for my $req (@reqs) {
        my @h = lines($b->{more_headers});
        $res = http($n, $req, headers => \@h);
    }
    if (defined $b->{error_code}) {
        is($res->{status}, $b->{error_code} =~ s/\s+//gr,
           "$name: status");
    }
    if (defined $b->{response_body}) {
        is($res->{body}, $b->{response_body}, "$name: body");
    }
    if (defined $b->{response_body_like}) {
        my $re = $b->{response_body_like} =~ s/\s+$//r;
        like($res->{body}, qr/$re/s, "$name: body like");
    }
    for my $h (lines($b->{response_headers})) {
        if ($h =~ /^!(.+)$/) {
            ok(!defined header($res, $1), "$name: no $1 header");
        } elsif ($h =~ /^([^:]+):\s*(.*)$/) {
            is(header($res, $1), $2, "$name: header $1");
        }
    }
    sleep 0.05;
    nginx_stop($n);
    my $log = check_log($n, $name, allow => $b->{allow_log});
    for my $l (lines($b->{error_log})) {
        like($log, qr/\Q$l\E/, "$name: error log has \"$l\"");
    }
    for my $l (lines($b->{no_error_log})) {
        unlike($log, qr/\Q$l\E/, "$name: error log lacks \"$l\"");
    }
}

1;
