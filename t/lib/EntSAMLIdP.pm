package EntSAMLIdP;

# A real SAML 2.0 IdP for the tests: Debian's SimpleSAMLphp (1.19), served
# by PHP's built-in server on loopback, behind TLS that the nginx under test
# terminates (a server block from saml_idp_tls()).  Users come from the
# exampleauth:UserPass source; the IdP signs assertions with a key made per
# run.
#
#   my $idp = saml_idp_start(sp => "http://acme.example.com:$port",
#                            tls_port => $p, users => {...});
#   nginx http_config gets saml_idp_tls($idp);
#   $idp->{entity_id}, $idp->{sso_url}, $idp->{cert}

use strict;
use warnings;

use Exporter qw(import);
use File::Path qw(make_path);
use POSIX qw(:sys_wait_h);

use EntTest ();
use EntOP ();

our @EXPORT = qw(saml_idp_start saml_idp_stop saml_idp_tls saml_idp_login
                 saml_idp_follow);

our $SSP = '/usr/share/simplesamlphp';
my @IDPS;

END { saml_idp_stop($_) for grep { $_->{pid} } @IDPS }

sub php_str {
    my ($s) = @_;
    $s =~ s/(['\\])/\\$1/g;
    return "'$s'";
}

sub saml_idp_start {
    my (%o) = @_;
    die "SimpleSAMLphp is not installed\n" unless -d "$SSP/www";
    my $ca = EntOP::test_ca();
    my $idp = {
        port => EntTest::free_port(),
        tls_port => $o{tls_port},
        dir => EntTest::tmpdir() . '/ssp' . scalar(@IDPS),
        ca => $ca,
    };
    my $d = $idp->{dir};
    make_path("$d/config", "$d/metadata", "$d/cert", "$d/tmp", "$d/data",
              "$d/log");
    my $base = "https://127.0.0.1:$o{tls_port}/";
    $idp->{entity_id} = "${base}saml2/idp/metadata.php";
    $idp->{sso_url} = "${base}saml2/idp/SSOService.php";
    $idp->{slo_url} = "${base}saml2/idp/SingleLogoutService.php";
    $idp->{init_slo_url} = "${base}saml2/idp/SingleLogoutService.php";

    system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $d/cert/idp.key "
           . "-out $d/cert/idp.crt -days 30 -subj /CN=ssp-idp >/dev/null 2>&1")
        == 0 or die "openssl failed\n";
    $idp->{cert} = "$d/cert/idp.crt";

    # the distribution's configuration, with ours on top
    my $conf = EntOP::slurp('/etc/simplesamlphp/config.php');
    $conf =~ s/\?>\s*\z//;
    $conf .= <<"PHP";

\$config['baseurlpath'] = @{[ php_str($base) ]};
\$config['certdir'] = @{[ php_str("$d/cert/") ]};
\$config['metadatadir'] = @{[ php_str("$d/metadata/") ]};
\$config['metadata.sources'] = [['type' => 'flatfile', 'directory' => @{[ php_str("$d/metadata/") ]}]];
\$config['datadir'] = @{[ php_str("$d/data/") ]};
\$config['tempdir'] = @{[ php_str("$d/tmp") ]};
\$config['loggingdir'] = @{[ php_str("$d/log/") ]};
\$config['logging.handler'] = 'file';
\$config['logging.level'] = SimpleSAML\\Logger::INFO;
\$config['secretsalt'] = 'ent-test-salt-0123456789';
\$config['auth.adminpassword'] = 'ent-test-admin';
\$config['enable.saml20-idp'] = true;
\$config['module.enable'] = ['exampleauth' => true, 'core' => true, 'saml' => true, 'admin' => false];
\$config['store.type'] = 'phpsession';
\$config['session.cookie.secure'] = true;
\$config['session.phpsession.savepath'] = @{[ php_str("$d/tmp") ]};
\$config['trusted.url.domains'] = [@{[ php_str($o{sp} =~ s{^https?://}{}r) ]}];
\$config['timezone'] = 'UTC';
PHP
    EntOP::spew("$d/config/config.php", $conf);

    my $users = $o{users} || {};
    my $auth = "<?php\n\$config = [\n  'admin' => ['core:AdminPassword'],\n"
        . "  'example-userpass' => [\n    'exampleauth:UserPass',\n";
    for my $u (sort keys %$users) {
        my $a = $users->{$u};
        $auth .= "    " . php_str("$u:$a->{password}") . " => [\n";
        for my $k (sort grep { $_ ne 'password' } keys %$a) {
            my @v = ref $a->{$k} ? @{ $a->{$k} } : ($a->{$k});
            $auth .= "      " . php_str($k) . " => ["
                . join(', ', map { php_str($_) } @v) . "],\n";
        }
        $auth .= "    ],\n";
    }
    $auth .= "  ],\n];\n";
    EntOP::spew("$d/config/authsources.php", $auth);

    my $sp = $o{sp};
    EntOP::spew("$d/metadata/saml20-idp-hosted.php", <<"PHP");
<?php
\$metadata['__DYNAMIC:1__'] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'example-userpass',
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    'simplesaml.nameidattribute' => 'email',
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
];
PHP
    EntOP::spew("$d/metadata/saml20-sp-remote.php", <<"PHP");
<?php
\$metadata[@{[ php_str("$sp/_ent/saml/metadata") ]}] = [
    'AssertionConsumerService' => @{[ php_str("$sp/_ent/saml/acs") ]},
    'SingleLogoutService' => @{[ php_str("$sp/_ent/saml/slo") ]},
    'sign.logout' => true,
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    'simplesaml.nameidattribute' => 'email',
    'saml20.sign.assertion' => true,
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
];
PHP

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $ENV{SIMPLESAMLPHP_CONFIG_DIR} = "$d/config";
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$d/php.log";
        open STDERR, '>&', \*STDOUT;
        { exec 'php', '-S', "127.0.0.1:$idp->{port}", '-t', "$SSP/www" }
        POSIX::_exit(127);
    }
    $idp->{pid} = $pid;
    push @IDPS, $idp;
    EntTest::wait_until(sub { EntTest::port_open($idp->{port}) }, 10)
        or die "SimpleSAMLphp did not start\n";
    return $idp;
}

sub saml_idp_stop {
    my ($idp) = @_;
    return unless $idp->{pid};
    kill 'TERM', $idp->{pid};
    waitpid $idp->{pid}, 0;
    delete $idp->{pid};
}

# the TLS front for the IdP, a server block for the nginx under test
sub saml_idp_tls {
    my ($idp) = @_;
    return <<"CONF";
server {
    listen 127.0.0.1:$idp->{tls_port} ssl;
    ssl_certificate $idp->{ca}{cert};
    ssl_certificate_key $idp->{ca}{key};
    location / {
        proxy_pass http://127.0.0.1:$idp->{port};
        proxy_set_header Host \$http_host;
        proxy_set_header X-Forwarded-Proto https;
    }
}
CONF
}

# Follows redirects from $res while they stay away from the SP's ACS form:
# the last response, and every URL visited
sub saml_idp_follow {
    my ($b, $res, $stop) = @_;
    my @seen;
    for (1 .. 12) {
        last unless $res->{location} && $res->{status} =~ /^30[12378]$/;
        push @seen, $res->{location};
        last if $stop && $res->{location} =~ $stop;
        $res = $b->follow($res);
    }
    return ($res, @seen);
}

# From the IdP's first URL: logs in with the form and returns the
# response whose form the browser would POST to the SP (the ACS form).
sub saml_idp_login {
    my ($b, $url, $user, $password) = @_;
    my $res = $b->get($url);
    for (1 .. 10) {
        if ($res->{location} && $res->{status} =~ /^30[12378]$/) {
            $res = $b->follow($res);
            next;
        }
        my @forms = $b->forms($res);
        my ($login) = grep {
            my %f = @{ $_->{fields} || [] };
            exists $f{username};
        } @forms;
        if ($login) {
            $res = $b->submit_form($res, $login, { username => $user,
                                                   password => $password });
            next;
        }
        return $res;
    }
    die "saml_idp_login: too many steps\n";
}

1;
