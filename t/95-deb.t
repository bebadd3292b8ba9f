# Packaging (issue 10): "make deb", the packages installed on this machine
# with apt, the files and the modules-enabled links dh_nginx's scripts make
# (in load order), entctl from /usr/bin, "nginx -t" with the system nginx,
# a private nginx running the installed modules against the harness's
# PostgreSQL and Redis (migrated and given a tenant by the installed
# entctl), an admin's disabled module kept disabled by a reinstall, a
# removed module's link parked and restored; then everything purged,
# leaving the machine as it was found.
#
# Root only, and only in the stock-nginx run of the suite (not under ASan,
# not against an upstream tree).  One instance at a time (a lock); the
# system's nginx service is never started or reloaded (policy-rc.d).
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;
use Fcntl qw(:flock);

plan skip_all => 'installs packages: root only' unless $> == 0;
plan skip_all => 'packaging is tested in the stock-nginx run only'
    if $ENV{ENT_SANITIZE} || $ENV{ENT_VALGRIND};
plan skip_all => 'packaging is tested against /usr/sbin/nginx only'
    unless $EntTest::NGINX eq '/usr/sbin/nginx';
plan skip_all => "Debian's nginx-dev is not installed"
    unless -f '/usr/share/nginx/src/debian/libnginx-mod.abisubstvars';

my $TOP = $EntTest::TOP;
my @MODS = qw(core tenant ratelimit sso scim);      # the load order
my %PRIO = (core => 10, tenant => 20, ratelimit => 30, sso => 40,
            scim => 50);
my $ENABLED = '/etc/nginx/modules-enabled';
my $AVAILABLE = '/usr/share/nginx/modules-available';
my $MODDIR = '/usr/lib/nginx/modules';
my $POLICY = '/usr/sbin/policy-rc.d';
my @APT = ('apt-get', '-y', '-q', '--no-install-recommends',
           '-o', 'DPkg::Lock::Timeout=600');

# one instance on this machine at a time: packages are machine-wide
my $lockdir = -d '/run/lock' ? '/run/lock' : '/tmp';
open my $lock, '>', "$lockdir/ngx-ent-95-deb.lock" or die "lock: $!";
flock $lock, LOCK_EX or die "flock: $!";

# the packages debian/control declares
my @PKGS = do {
    open my $c, '<', "$TOP/debian/control" or die "debian/control: $!";
    map { /^Package:\s*(\S+)/ ? $1 : () } <$c>;
};

# dpkg's status of a package, '' when it is not on the machine at all
sub installed {
    my ($pkg) = @_;
    my $st = `dpkg-query -W -f='\${Status}' $pkg 2>/dev/null`;
    return $st =~ / (?:installed|config-files|unpacked|half-\w+|triggers-\w+)$/
        ? $st : '';
}

sub ent_links {
    opendir my $d, $ENABLED or return ();
    return sort grep { /mod-http-ent-/ } readdir $d;
}

sub slurp {
    my ($file) = @_;
    open my $f, '<', $file or return undef;
    local $/;
    return scalar <$f>;
}

# a command's exit code and output (stdout and stderr)
sub run {
    my (@cmd) = @_;
    local $ENV{DEBIAN_FRONTEND} = 'noninteractive';
    my $pid = open my $fh, '-|';
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        exec @cmd or exit 127;
    }
    local $/;
    my $out = <$fh>;
    close $fh;
    return ($? >> 8, defined $out ? $out : '');
}

if (my @there = grep { installed($_) } @PKGS) {
    plan skip_all => "@there already installed: not touching them";
}
if (my @links = ent_links()) {
    plan skip_all => "$ENABLED already has @links: not touching them";
}

# the machine as found
my ($sys_rc) = run('/usr/sbin/nginx', '-t', '-q');
my %enabled_before = map { $_ => 1 } do {
    opendir my $d, $ENABLED or die "$ENABLED: $!";
    grep { !/^\.\.?$/ } readdir $d;
};
# the system service's pid file (absent, or left by a past run: either
# way, the same after this test when nothing started the service)
sub pid_file { my @st = stat '/run/nginx.pid'; return @st ? "@st[1, 7, 9]"
                                                          : 'none' }
my $pid_before = pid_file();

is(scalar @PKGS, 6, 'debian/control: five modules and the tools')
    or diag "@PKGS";


# build

my ($rc, $out) = run('make', '-C', $TOP, '-s', 'deb',
                     'JOBS=' . ($ENV{JOBS} || 2));
is($rc, 0, 'make deb') or diag $out;
my %deb;
for my $p (@PKGS) {
    my @f = glob("$TOP/build/deb/${p}_*.deb");
    is(scalar @f, 1, "build/deb has $p") or diag "@f";
    $deb{$p} = $f[0];
}
if (grep { !$deb{$_} } @PKGS) {
    done_testing;
    exit 1;
}
my $version = `dpkg-deb -f $deb{'ngx-ent-tools'} Version`;
chomp $version;

# the ABI the installed nginx-dev builds for, which Debian's nginx provides
my ($abi) = (slurp('/usr/share/nginx/src/debian/libnginx-mod.abisubstvars')
             // '') =~ /^nginx:abi=(\S+)$/m;
like(`dpkg-query -W -f='\${Provides}' nginx`, qr/(?:^|[ ,])\Q$abi\E\b/,
     "the installed nginx provides $abi");
for my $m (@MODS) {
    my $dep = `dpkg-deb -f $deb{"libnginx-mod-http-ent-$m"} Depends`;
    like($dep, qr/(?:^|[ ,])\Q$abi\E(?:,|$)/m, "$m: depends on $abi");
    like($dep, qr/libnginx-mod-http-ent-core \(= \Q$version\E\)/,
         "$m: on the core of its own version") unless $m eq 'core';
}


# install, with the system's nginx service kept down

my ($made_policy, $installing);

END {
    my $rc = $?;
    if ($installing) {
        diag 'purging the packages after a failure';
        run(@APT, 'purge', @PKGS);
    }
    unlink $POLICY if $made_policy;
    $? = $rc;
}

if (!-e $POLICY) {
    open my $p, '>', $POLICY or die "$POLICY: $!";
    print $p "#!/bin/sh\nexit 101\n";
    close $p;
    chmod 0755, $POLICY;
    $made_policy = 1;
}

$installing = 1;
($rc, $out) = run(@APT, 'install', map { $deb{$_} } @PKGS);
is($rc, 0, 'apt-get install ./build/deb/*.deb') or diag $out;
is(installed($_), 'install ok installed', "$_ installed") for @PKGS;
is(pid_file(), $pid_before, 'the system nginx was not started');

# the files, and the links in load order

for my $m (@MODS) {
    my $so = "$MODDIR/ngx_http_ent_${m}_module.so";
    ok(-f $so, "$so installed");
    my $conf = "$AVAILABLE/mod-http-ent-$m.conf";
    is(slurp($conf), "load_module modules/ngx_http_ent_${m}_module.so;\n",
       "$conf loads it");
    my $link = "$ENABLED/$PRIO{$m}-mod-http-ent-$m.conf";
    is(readlink($link), $conf, "$link enabled by the postinst");
}
is_deeply([ent_links()],
          [map { "$PRIO{$_}-mod-http-ent-$_.conf" } @MODS],
          'modules-enabled sorts core, tenant, ratelimit, sso, scim');

ok(-x '/usr/bin/entctl', '/usr/bin/entctl installed');
my @sql = map { s{.*/}{}r } glob("$TOP/sql/*.sql");
is_deeply([map { s{.*/}{}r } glob('/usr/share/ngx-ent/sql/*.sql')], \@sql,
          '/usr/share/ngx-ent/sql has every migration');
is_deeply([map { slurp("/usr/share/ngx-ent/sql/$_") } @sql],
          [map { slurp("$TOP/sql/$_") } @sql], 'as they are in sql/');
ok(-f '/usr/share/doc/ngx-ent-tools/README.md'
   && -f '/usr/share/doc/ngx-ent-tools/docs/packaging.md',
   'the documentation in /usr/share/doc/ngx-ent-tools');

($rc, $out) = run('/usr/bin/entctl', 'version');
my ($entver) = $out =~ /^entctl (\S+)$/m;
is($rc, 0, '/usr/bin/entctl version') or diag $out;
ok($entver && $version =~ /^\Q$entver\E(?:$|[+~-])/,
   "it is the packaged version ($version)") or diag $out;


# nginx -t with the installed modules

# the enabled snippets, in their order, resolved as the system nginx does
# (modules/ under the prefix: /usr/share/nginx/modules -> /usr/lib/nginx)
my $http = <<'CONF';
ent_postgres "$TEST_PG_DSN" pool=2;
ent_redis 127.0.0.1:$TEST_REDIS_PORT;
ent_cache_zone tenants:1m ttl=1h;
ent_maintenance_poll 100ms;
upstream app { server 127.0.0.1:$TEST_ECHO_PORT; }
CONF

my $config = <<'CONF';
ent_tenant on;
ent_tenant_base_domain example.com;
add_header X-Tenant "$ent_tenant_code|$ent_tenant_tier|$ent_tenant_region" always;
location / { proxy_pass http://app; }
CONF

# the harness's PostgreSQL is migrated by the installed entctl, and its
# nginx loads the installed modules
{
    no warnings 'once';
    $EntTest::ENTCTL = '/usr/bin/entctl';
    $EntTest::MODULES = $MODDIR;
}
pg_start();
redis_start();
echo_start();

my $t = EntTest::nginx_new();
symlink $MODDIR, "$t->{prefix}/modules" or die "symlink: $!";
($rc, $out) = nginx_test(instance => $t, modules => [],
    main_config => "include $ENABLED/*-mod-http-ent-*.conf;",
    http_config => $http, config => $config);
is($rc, 0, 'nginx -t: the modules-enabled snippets in their order')
    or diag $out;

($rc, $out) = nginx_test(modules => ['tenant'], http_config => '',
                         config => '');
isnt($rc, 0, 'nginx -t: a feature module without the core fails');
like($out, qr/requires ngx_http_ent_core_module/, 'and says why');

SKIP: {
    skip 'the system configuration failed nginx -t before the install', 1
        if $sys_rc;
    ($rc, $out) = run('/usr/sbin/nginx', '-t', '-q');
    is($rc, 0, 'nginx -t: the system configuration loads them') or diag $out;
}


# the installed modules at work, with the installed entctl

my $entctl = "/usr/bin/entctl --dsn '" . pg_dsn() . "' --redis 127.0.0.1:"
    . EntTest::redis_port();
$out = `$entctl status 2>&1`;
is($? >> 8, 0, 'entctl status');
is(scalar(() = $out =~ /^\d{3}_\S+\s+applied /mg), scalar @sql,
   'the installed entctl applied every migration') or diag $out;
$out = `$entctl tenant create acme --name "Acme Inc" --tier team --region eu 2>&1`;
is($? >> 8, 0, 'the installed entctl creates a tenant') or diag $out;
my $acme_id = pg_sql("SELECT id FROM ent.tenants WHERE code = 'acme'");

my $n = nginx_start(modules => [@MODS], http_config => $http,
                    config => $config);
my $r = http($n, '/hello', host => 'acme.example.com');
is($r->{status}, 200, 'a tenant request through the installed modules');
is($r->{headers}{'x-tenant'}[0], 'acme|team|eu', 'the tenant variables');
like($r->{body}, qr/"x-ent-tenant-code":"acme"/,
     'X-Ent-Tenant-Code reaches the upstream');
like($r->{body}, qr/"x-ent-tenant-id":"$acme_id"/, 'and X-Ent-Tenant-Id');
is(http($n, '/', host => 'nobody.example.com')->{status}, 404,
   'an unknown tenant: 404');
`$entctl tenant suspend acme 2>&1`;
ok(wait_until(sub {
       http($n, '/', host => 'acme.example.com')->{status} == 403 }, 2),
   'suspended by the installed entctl: 403, live');
nginx_stop($n);
check_log($n, 'the installed modules');


# an upgrade (here a reinstall) keeps what the admin disabled; a removal
# is undone by an installation

my $scim = "$ENABLED/$PRIO{scim}-mod-http-ent-scim.conf";
unlink $scim;
($rc, $out) = run(@APT, 'install', '--reinstall',
                  $deb{'libnginx-mod-http-ent-scim'});
is($rc, 0, 'reinstall of the SCIM module') or diag $out;
ok(!-e $scim && !-l $scim, 'the module the admin disabled stays disabled');
ok(-l "$ENABLED/$PRIO{core}-mod-http-ent-core.conf", 'the others stay on');

# remove, then install again: the link is parked, then restored
my $sso = "$ENABLED/$PRIO{sso}-mod-http-ent-sso.conf";
($rc, $out) = run(@APT, 'remove', 'libnginx-mod-http-ent-sso');
is($rc, 0, 'remove of the SSO module') or diag $out;
ok(!-e $sso && -l "$sso.removed", "its link parked as $sso.removed");
ok(!-e "$MODDIR/ngx_http_ent_sso_module.so", 'its module gone');
($rc, $out) = run(@APT, 'install', $deb{'libnginx-mod-http-ent-sso'});
is($rc, 0, 'the SSO module installed again') or diag $out;
is(readlink($sso), "$AVAILABLE/mod-http-ent-sso.conf", 'its link restored');
ok(!-l "$sso.removed", 'the parked one gone');


# purge: the machine as found

($rc, $out) = run(@APT, 'purge', @PKGS);
is($rc, 0, 'apt-get purge') or diag $out;
$installing = 0;
is(installed($_), '', "$_ purged") for @PKGS;
is_deeply([ent_links()], [], 'no ngx_ent links left in modules-enabled');
is_deeply([glob("$MODDIR/ngx_http_ent_*"), glob("$AVAILABLE/mod-http-ent-*"),
           grep { -e } '/usr/bin/entctl', '/usr/share/ngx-ent',
           '/usr/share/doc/ngx-ent-tools'],
          [], 'no ngx_ent files left');
my %enabled_after = map { $_ => 1 } do {
    opendir my $d, $ENABLED or die "$ENABLED: $!";
    grep { !/^\.\.?$/ } readdir $d;
};
is_deeply(\%enabled_after, \%enabled_before, 'modules-enabled as found');
($rc) = run('/usr/sbin/nginx', '-t', '-q');
is($rc, $sys_rc, 'the system configuration tests as before');
is(pid_file(), $pid_before, 'the system nginx was never started');

done_testing;
