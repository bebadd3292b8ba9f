package EntOP;

# A real OpenID Provider for the tests (oidc-provider under node, started
# from t/lib/op/op.js on loopback over TLS), a test CA, and a small
# browser-like HTTP client with a cookie jar.  Core Perl and
# IO::Socket::SSL.
#
#   my $ca = test_ca();                    # {ca, cert, key, ca_key, dir}
#   my $op = op_start(clients => [{ client_id => 'acme', client_secret => 's',
#                redirect_uris => ["http://acme.example.com:$port/cb"] }]);
#   my $b  = EntOP::Browser->new(ca => $ca->{ca},
#                resolve => { "acme.example.com:$port" => "127.0.0.1:$port" });
#   my $res = $b->get("http://acme.example.com:$port/app");    # 302 to the OP
#   $res = op_login($b, $res->{location}, 'alice');             # 303 back
#   $res = $b->follow($res);                                    # the callback
#
# op_start(%o): name, port (default a free one), clients (client metadata
# as oidc-provider takes it; grant_types, response_types,
# token_endpoint_auth_method default to code + refresh + client
# credentials, client_secret_basic), accounts ({sub => {claims}}; default
# alice and bob; JSON booleans as JSON::PP::true/false), ttl ({AccessToken
# => s, IdToken, Session, ...}), resources ({indicator => {scope, ttl,
# alg, audience}}; default https://api.example.com with api:read
# api:write), access_token_claims (account claims copied into JWT access
# tokens; default email, groups), claims ({scope => [claims]}), jwks_path
# (reuse another OP's keys: $other->{jwks_path}), cookie_keys, host (the
# address it listens on and names in its issuer, default 127.0.0.1; the
# test CA must name it: test_ca(ips => [host]) first).
# Returns { name, issuer, port, pid, dir, log, config, jwks_path,
# discovery, ca }.  Stopped at exit (or op_stop); op_restart keeps port
# and keys.  The OP stops by itself when the test process is gone.

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(sha256);
use Exporter qw(import);
use Fcntl qw(:flock);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use IO::Socket::SSL;
use JSON::PP ();
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

use EntTest ();

our @EXPORT = qw(
    test_ca op_start op_stop op_restart
    op_sign op_stats op_stats_reset op_rotate op_clients op_accounts
    op_fault op_discovery op_token
    op_login op_logout op_fetch_location
    pkce_pair jwt_decode jwk_to_pem jws_verify
    b64url_encode b64url_decode json_encode json_decode random_string
);

our $OPDIR = abs_path(dirname(__FILE__) . '/op');
our $NODE = $ENV{ENT_NODE} || 'node';

my $JSON = JSON::PP->new->utf8->canonical;
my $OWNER = $$;
my (@OPS, %CA);

END {
    my $rc = $?;
    if ($$ == $OWNER) {
        op_stop($_) for grep { $_->{pid} } @OPS;
    }
    $? = $rc;
}


# small things

sub json_encode { return $JSON->encode($_[0]) }

sub json_decode {
    my ($text) = @_;
    return undef unless defined $text && length $text;
    return eval { $JSON->decode($text) };
}

sub b64url_encode {
    my $s = encode_base64($_[0], '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+\z//;
    return $s;
}

sub b64url_decode {
    my $s = $_[0];
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_base64($s);
}

sub random_bytes {
    my ($n) = @_;
    open my $f, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
    read($f, my $buf, $n) == $n or die "short read from /dev/urandom\n";
    close $f;
    return $buf;
}

sub random_string { return b64url_encode(random_bytes($_[0] || 16)) }

# (verifier, S256 challenge)
sub pkce_pair {
    my $verifier = random_string(32);
    return ($verifier, b64url_encode(sha256($verifier)));
}

# (header, payload, signature bytes) of a compact JWS; undef parts that
# do not decode
sub jwt_decode {
    my ($jwt) = @_;
    my ($h, $p, $s) = split /\./, (defined $jwt ? $jwt : ''), -1;
    return (json_decode(b64url_decode($h // '')),
            json_decode(b64url_decode($p // '')),
            defined $s ? b64url_decode($s) : undef);
}


# DER, enough for public keys and ECDSA signatures
sub der_len {
    my ($n) = @_;
    return chr $n if $n < 128;
    my $b = '';
    while ($n) { $b = chr($n & 0xff) . $b; $n >>= 8 }
    return chr(0x80 | length $b) . $b;
}

sub der { return chr($_[0]) . der_len(length $_[1]) . $_[1] }

sub der_int {
    my ($b) = @_;
    $b =~ s/^\0+//;
    $b = "\0$b" if $b eq '' || ord($b) & 0x80;
    return der(0x02, $b);
}

# the SubjectPublicKeyInfo PEM of a public RSA, EC P-256 or Ed25519 JWK
# (the PEM node writes, to the byte)
sub jwk_to_pem {
    my ($k) = @_;
    my $d = sub { b64url_decode($k->{$_[0]}) };
    my $spki;
    if ($k->{kty} eq 'RSA') {
        $spki = der(0x30, der(0x30, der(0x06, "\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01")
                                    . "\x05\x00")
                        . der(0x03, "\0" . der(0x30, der_int($d->('n'))
                                                      . der_int($d->('e')))));
    } elsif ($k->{kty} eq 'EC' && $k->{crv} eq 'P-256') {
        $spki = der(0x30, der(0x30, der(0x06, "\x2a\x86\x48\xce\x3d\x02\x01")
                                    . der(0x06, "\x2a\x86\x48\xce\x3d\x03\x01\x07"))
                        . der(0x03, "\0\x04" . $d->('x') . $d->('y')));
    } elsif ($k->{kty} eq 'OKP' && $k->{crv} eq 'Ed25519') {
        $spki = der(0x30, der(0x30, der(0x06, "\x2b\x65\x70"))
                        . der(0x03, "\0" . $d->('x')));
    } else {
        die "jwk_to_pem: unsupported key $k->{kty} " . ($k->{crv} || '') . "\n";
    }
    my $b64 = encode_base64($spki, '');
    return "-----BEGIN PUBLIC KEY-----\n"
        . join('', map { "$_\n" } unpack '(A64)*', $b64)
        . "-----END PUBLIC KEY-----\n";
}

# verifies a compact JWS with the openssl CLI: against the key of its kid
# in a JWKS (hash ref with keys), or against one JWK.  True when it holds.
my $VERIFY_N = 0;
sub jws_verify {
    my ($jwt, $keys) = @_;
    my ($h, $p, $s) = split /\./, $jwt, -1;
    my ($header) = jwt_decode($jwt);
    return 0 unless $header && defined $s && length $s;
    my $jwk = $keys->{keys}
        ? (grep { defined $header->{kid} && $_->{kid} eq $header->{kid} }
           @{ $keys->{keys} })[0]
        : $keys;
    return 0 unless $jwk;
    my $alg = $header->{alg} || '';
    my $sig = b64url_decode($s);
    my $dir = EntTest::tmpdir() . '/jws';
    make_path($dir);
    my $n = ++$VERIFY_N;
    my ($pem, $data, $sigf) = map { "$dir/$n.$_" } qw(pem data sig);
    spew($pem, jwk_to_pem($jwk));
    spew($data, "$h.$p");
    my $cmd;
    if ($alg =~ /^(RS|PS|ES)(256|384|512)$/) {
        my ($fam, $bits) = ($1, $2);
        return 0 if $fam eq 'ES' && $jwk->{kty} ne 'EC'
            || $fam ne 'ES' && $jwk->{kty} ne 'RSA';
        if ($fam eq 'ES') {
            my $half = length($sig) / 2;
            $sig = der(0x30, der_int(substr $sig, 0, $half)
                             . der_int(substr $sig, $half));
        }
        $cmd = "openssl dgst -sha$bits -verify $pem -signature $sigf"
            . ($fam eq 'PS' ? ' -sigopt rsa_padding_mode:pss'
                              . ' -sigopt rsa_pss_saltlen:-1' : '')
            . " $data";
    } elsif ($alg eq 'EdDSA' && $jwk->{kty} eq 'OKP') {
        $cmd = "openssl pkeyutl -verify -pubin -inkey $pem -rawin -in $data "
            . "-sigfile $sigf";
    } else {
        return 0;
    }
    spew($sigf, $sig);
    my $out = `$cmd 2>&1`;
    unlink $pem, $data, $sigf;
    return $? == 0 && $out =~ /Verified OK|Signature Verified Successfully/;
}


# the test CA: a CA and a server certificate for 127.0.0.1, localhost,
# example.com and *.example.com; made once per test file and name.
# ips => [ADDR, ...]: more IP addresses in the certificate (an OP on
# another address: op_start(host => ADDR)), for the first call of a name

sub test_ca {
    my (%o) = @_;
    my $name = $o{name} || 'ca';
    return $CA{$name} if $CA{$name};
    my $dir = EntTest::tmpdir() . "/$name";
    make_path($dir);
    my %p = (dir => $dir, ca => "$dir/ca.pem", ca_key => "$dir/ca.key",
             cert => "$dir/server.pem", key => "$dir/server.key");
    my $ec = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';
    run("openssl req -x509 $ec -keyout $p{ca_key} -out $p{ca} -days 30 "
        . "-subj '/CN=ngx_ent test CA $name' "
        . "-addext basicConstraints=critical,CA:TRUE "
        . "-addext keyUsage=critical,keyCertSign,cRLSign");
    open my $ext, '>', "$dir/server.ext" or die "$dir/server.ext: $!";
    print $ext "basicConstraints=CA:FALSE\n"
        . "keyUsage=critical,digitalSignature,keyEncipherment\n"
        . "extendedKeyUsage=serverAuth,clientAuth\n"
        . "subjectAltName=IP:127.0.0.1,"
        . join('', map { "IP:$_," } @{ $o{ips} || [] })
        . "DNS:localhost,DNS:example.com,DNS:*.example.com\n";
    close $ext;
    run("openssl req -new $ec -keyout $p{key} -out $dir/server.csr "
        . "-subj /CN=127.0.0.1");
    run("openssl x509 -req -in $dir/server.csr -CA $p{ca} -CAkey $p{ca_key} "
        . "-CAcreateserial -days 30 -extfile $dir/server.ext -out $p{cert}");
    chmod 0644, $p{key};    # nginx workers may read it
    return $CA{$name} = \%p;
}

sub run {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    die "command failed: $cmd\n$out" if $?;
    return $out;
}


# the OP

sub node_modules {
    my $want = json_decode(slurp("$OPDIR/package.json"))
        ->{dependencies}{'oidc-provider'};
    my $have = sub {
        my $p = json_decode(slurp(
            "$OPDIR/node_modules/oidc-provider/package.json"));
        return $p && $p->{version} eq $want;
    };
    return if $have->();
    # prove -j: one test file installs, the others wait for it
    my $lock = ($ENV{TMPDIR} || '/tmp') . "/ngx-ent-op-npm-$>.lock";
    open my $l, '>>', $lock or die "$lock: $!";
    flock $l, LOCK_EX;
    if (!$have->()) {
        my $out = `cd $OPDIR && npm ci --omit=dev --no-audit --no-fund \\
                   --loglevel=error 2>&1`;
        die "npm ci in $OPDIR failed:\n$out" if $? || !$have->();
    }
    close $l;
}

sub slurp {
    my ($path) = @_;
    open my $f, '<', $path or return undef;
    local $/;
    my $t = <$f>;
    return $t;
}

sub spew {
    my ($path, $text) = @_;
    open my $f, '>:raw', $path or die "$path: $!";
    print $f $text;
    close $f or die "$path: $!";
}

my $DEFAULT_ACCOUNTS = {
    alice => { email => 'alice@acme.example.com', email_verified => JSON::PP::true,
               name => 'Alice Admin', groups => ['admins', 'staff'] },
    bob   => { email => 'bob@acme.example.com', email_verified => JSON::PP::false,
               name => 'Bob Builder', groups => ['staff'] },
};

sub client_defaults {
    my ($c) = @_;
    my %c = %$c;
    $c{grant_types} ||= ['authorization_code', 'refresh_token',
                         'client_credentials'];
    $c{response_types} ||= ['code'];
    $c{token_endpoint_auth_method} ||= 'client_secret_basic';
    $c{redirect_uris} ||= [];
    return \%c;
}

sub op_start {
    my (%o) = @_;
    node_modules();
    my $ca = test_ca();
    my $n = scalar @OPS;
    my $op = {
        name => $o{name} || 'op' . ($n + 1),
        port => $o{port} || EntTest::free_port(),
        host => $o{host} || '127.0.0.1',
        ca => $ca->{ca},
    };
    $op->{dir} = EntTest::tmpdir() . "/op-$op->{name}-$n";
    make_path($op->{dir});
    $op->{jwks_path} = $o{jwks_path} || "$op->{dir}/jwks.json";
    $op->{config} = "$op->{dir}/config.json";
    $op->{log} = "$op->{dir}/op.log";

    my %conf = (
        name => $op->{name},
        tls => { cert => $ca->{cert}, key => $ca->{key} },
        ca => $ca->{ca},
        jwks_path => $op->{jwks_path},
        cookie_keys => $o{cookie_keys} || [random_string(24)],
        clients => [map { client_defaults($_) } @{ $o{clients} || [] }],
        accounts => $o{accounts} || $DEFAULT_ACCOUNTS,
    );
    for my $k (qw(ttl resources access_token_claims claims)) {
        $conf{$k} = $o{$k} if $o{$k};
    }
    $op->{conf} = \%conf;
    push @OPS, $op;
    for my $try (1 .. 3) {
        my $err = op_launch($op);
        return $op unless $err;
        # a free port taken by someone else meanwhile (prove -j)
        die $err if $o{port} || $try == 3 || $err !~ /EADDRINUSE/;
        $op->{port} = EntTest::free_port();
    }
}

# starts node on $op->{port}; '' once discovery answers, or why not
sub op_launch {
    my ($op) = @_;
    $op->{issuer} = "https://$op->{host}:$op->{port}";
    spew($op->{config}, json_encode({ %{ $op->{conf} },
        issuer => $op->{issuer}, port => $op->{port} + 0,
        host => $op->{host} }));
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $op->{log};
        open STDERR, '>&', \*STDOUT;
        chdir $OPDIR;
        { exec $NODE, "$OPDIR/op.js", $op->{config} }
        print STDERR "exec $NODE: $!\n";
        POSIX::_exit(127);
    }
    $op->{pid} = $pid;
    my $ua = EntOP::Browser->new(ca => $op->{ca}, timeout => 5);
    my ($disc, $dead);
    EntTest::wait_until(sub {
        return $dead = 1 if waitpid($pid, WNOHANG) == $pid;
        my $r = $ua->get("$op->{issuer}/.well-known/openid-configuration");
        $disc = json_decode($r->{body}) if $r->{status} == 200;
        return $disc;
    }, 30, 0.1);
    if (!$disc) {
        delete $op->{pid} if $dead;
        op_stop($op);
        return "OP $op->{name} did not start on port $op->{port}; its log:\n"
            . (slurp($op->{log}) // '');
    }
    $op->{discovery} = $disc;
    op_stats_reset($op);    # the discovery requests of the wait above
    return '';
}

sub op_stop {
    my ($op) = @_;
    return unless $op->{pid};
    kill 'TERM', $op->{pid};
    my $gone = EntTest::wait_until(
        sub { waitpid($op->{pid}, WNOHANG) != 0 }, 5);
    if (!$gone) {
        kill 'KILL', $op->{pid};
        waitpid $op->{pid}, 0;
    }
    delete $op->{pid};
}

# the same OP again, on the same port, with the same keys and clients;
# what it had in memory (sessions, grants, codes) is gone
sub op_restart {
    my ($op) = @_;
    op_stop($op);
    my $err = op_launch($op);
    die $err if $err;
    return $op;
}

sub op_ua { return EntOP::Browser->new(ca => $_[0]->{ca}, timeout => 10) }

# POST JSON to a /test/ endpoint; the decoded answer
sub op_test {
    my ($op, $path, $data) = @_;
    my $res = op_ua($op)->request('POST', "$op->{issuer}$path",
        ['Content-Type' => 'application/json'], json_encode($data || {}));
    my $json = json_decode($res->{body});
    die "OP $path: $res->{status} $res->{body}\n"
        unless $res->{status} == 200 && $json;
    return $json;
}

# a compact JWS from the OP's own key: key => rsa|ec|ed|none|hs-pub;
# header entries override the defaults (alg, typ, kid), undef deletes one
sub op_sign {
    my ($op, %o) = @_;
    my $r = op_test($op, '/test/sign', {
        key => $o{key} || 'rsa',
        header => $o{header} || {},
        claims => $o{claims} || {},
    });
    return $r->{token};
}

sub op_stats {
    my ($op) = @_;
    my $res = op_ua($op)->get("$op->{issuer}/test/stats");
    return json_decode($res->{body}) || die "OP stats: $res->{status}\n";
}

sub op_stats_reset { op_test($_[0], '/test/stats/reset') }

# a new RSA key signs from now on; retire => 1 drops the old RSA keys from
# the JWKS.  Returns the new kid.
sub op_rotate {
    my ($op, %o) = @_;
    return op_test($op, '/test/rotate',
                   { retire => $o{retire} ? JSON::PP::true : JSON::PP::false })
        ->{kid};
}

# replace the OP's clients (e.g. once nginx's port is known)
sub op_clients {
    my ($op, @clients) = @_;
    @clients = @{ $clients[0] } if @clients == 1 && ref $clients[0] eq 'ARRAY';
    return op_test($op, '/test/clients',
                   { clients => [map { client_defaults($_) } @clients] });
}

# add or replace accounts; sub => undef deletes one
sub op_accounts {
    my ($op, %accounts) = @_;
    return op_test($op, '/test/accounts', \%accounts);
}

# path => '/jwks', status => 503, body => '...', content_type => ...,
# delay_ms => 0, times => N; only path: clears it; nothing: clears all
sub op_fault {
    my ($op, %o) = @_;
    return op_test($op, '/test/fault', \%o);
}

sub op_discovery { return $_[0]->{discovery} }

# a token endpoint request: client_id, client_secret, auth => 'basic'
# (default) or 'post', the other pairs are form fields.  The response with
# json => its decoded body.
sub op_token {
    my ($op, %o) = @_;
    my $id = delete $o{client_id};
    my $secret = delete $o{client_secret};
    my $auth = delete $o{auth} || 'basic';
    my @h;
    if ($auth eq 'basic') {
        push @h, Authorization => 'Basic '
            . encode_base64(form_escape($id) . ':' . form_escape($secret), '');
    } else {
        $o{client_id} = $id;
        $o{client_secret} = $secret if defined $secret;
    }
    my $res = op_ua($op)->post_form($op->{discovery}{token_endpoint}, \%o, @h);
    $res->{json} = json_decode($res->{body});
    return $res;
}

sub form_escape {
    my ($s) = @_;
    $s = '' unless defined $s;
    utf8::encode($s) if utf8::is_utf8($s);
    $s =~ s/([^A-Za-z0-9\-._~ ])/sprintf('%%%02X', ord $1)/ge;
    $s =~ tr/ /+/;
    return $s;
}

sub origin {
    my ($url) = @_;
    my ($scheme, $host, $port) = EntOP::Browser::parse_url($url);
    return defined $scheme ? "$scheme://$host:$port" : '';
}

# From a Location on the OP (the authorization request or an interaction):
# follows the OP's redirects, signs $sub in at the interaction (which
# consents too), and returns the first response that leaves the OP: the
# redirect to the client's redirect_uri with code, state and iss.  A
# response that is neither a redirect nor the sign-in page (an error page)
# is returned as it is.
sub op_login {
    my ($b, $location, $sub) = @_;
    my $op = origin($location);
    my $res = $b->get($location);
    my %posted;
    for (1 .. 20) {
        if ($res->{location} && $res->{status} =~ /^30[12378]$/) {
            return $res unless origin($res->{location}) eq $op;
            $res = $b->follow($res);
        } elsif ($res->{status} == 200
                 && $res->{url} =~ m{^(.*/interaction/[^/?#]+)$}
                 && !$posted{$1}++) {
            $res = $b->post_form("$1/login", { login => $sub });
        } else {
            return $res;
        }
    }
    die "op_login: too many steps at $res->{url}\n";
}

# The location the SSO module sends its outbound HTTP through (discovery,
# keys, tokens), trusting the test CA: a block for a server{}
sub op_fetch_location {
    my ($ca) = @_;
    return <<"CONF";
location = /_ent/fetch {
    internal;
    proxy_pass \$ent_sso_fetch_url;
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate $ca->{ca};
    proxy_ssl_name localhost;
    subrequest_output_buffer_size 64k;
}
CONF
}

# From the end_session URL (the RP's redirect to the OP): confirms the
# logout as a browser with script would, and returns the first response
# that leaves the OP (to the post_logout_redirect_uri), or the OP's final
# page (200 "Signed out") when there is no post_logout_redirect_uri.
sub op_logout {
    my ($b, $url) = @_;
    my $op = origin($url);
    my $res = $b->get($url);
    my $submitted = 0;
    for (1 .. 20) {
        if ($res->{location} && $res->{status} =~ /^30[12378]$/) {
            return $res unless origin($res->{location}) eq $op;
            $res = $b->follow($res);
            next;
        }
        my ($form) = grep { $_->{action} =~ m{/session/end/confirm$} }
            $b->forms($res);
        return $res if !$form || $submitted++;
        $res = $b->submit_form($res, $form);
    }
    die "op_logout: too many steps at $res->{url}\n";
}


package EntOP::Browser;

# A browser without script: one connection per request (Connection:
# close), http and https (verified against ca, or the system's CAs), a
# cookie jar, redirects followed only when asked (follow).
#
#   resolve => { 'host:port' => 'addr:port', 'host' => 'addr' }
#   ca => PEM file, insecure => 1 (no verification), timeout => seconds
#   strict_prefixes => 0: Secure, __Secure- and __Host- cookies are set and
#       sent over plain http too (nginx under test listens on http);
#       1: as a browser does on a non-local origin
#   headers => [Name => value, ...] sent with every request
#
# A response: { status, reason, headers => { lc name => [values] },
#   body, url, method, location (absolute), error (no response) }

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use IO::Socket::SSL;
use Time::HiRes qw(time);
use Time::Local qw(timegm);

sub new {
    my ($class, %o) = @_;
    return bless {
        resolve => $o{resolve} || {},
        ca => $o{ca},
        insecure => $o{insecure},
        timeout => $o{timeout} || 10,
        strict_prefixes => $o{strict_prefixes} || 0,
        headers => $o{headers} || [],
        jar => [],
        seq => 0,
    }, $class;
}

# (scheme, host, port, path+query) of an absolute URL
sub parse_url {
    my ($url) = @_;
    return unless defined $url
        && $url =~ m{^(https?)://(\[[^\]]+\]|[^/?#:]+)(?::(\d+))?([^#]*)}i;
    my ($scheme, $host, $port, $path) = (lc $1, lc $2, $3, $4);
    $port ||= $scheme eq 'https' ? 443 : 80;
    $path = "/$path" unless $path =~ m{^/};
    return ($scheme, $host, $port, $path);
}

# a Location (or action) against the URL it came from
sub absolute {
    my ($base, $ref) = @_;
    return $ref if $ref =~ m{^[a-z][a-z0-9+.-]*:}i;
    my ($scheme, $host, $port, $path) = parse_url($base);
    my $origin = "$scheme://$host"
        . (($scheme eq 'https' ? 443 : 80) == $port ? '' : ":$port");
    return "$scheme:$ref" if $ref =~ m{^//};
    return "$origin$ref" if $ref =~ m{^/};
    (my $p = $path) =~ s/[?#].*//s;
    return "$origin$p$ref" if $ref =~ /^[?#]/ || $ref eq '';
    $p =~ s{[^/]*$}{};
    return "$origin$p$ref";
}

sub get {
    my ($self, $url, @h) = @_;
    return $self->request('GET', $url, \@h);
}

# fields: a hash ref, or an array ref of name => value pairs (in order)
sub post_form {
    my ($self, $url, $fields, @h) = @_;
    my @pairs = ref $fields eq 'HASH'
        ? map { ($_, $fields->{$_}) } sort keys %$fields
        : @{ $fields || [] };
    my @kv;
    while (my ($k, $v) = splice @pairs, 0, 2) {
        push @kv, EntOP::form_escape($k) . '=' . EntOP::form_escape($v);
    }
    return $self->request('POST', $url,
        ['Content-Type' => 'application/x-www-form-urlencoded', @h],
        join('&', @kv));
}

sub header_pairs {
    my ($h) = @_;
    return () unless $h;
    return map { ($_, $h->{$_}) } sort keys %$h if ref $h eq 'HASH';
    return @$h;
}

# headers: an array ref of name => value pairs, or a hash ref.  A Cookie
# or Host header given here replaces the jar's or the URL's.
sub request {
    my ($self, $method, $url, $headers, $body) = @_;
    my ($scheme, $host, $port, $path) = parse_url($url)
        or die "not an absolute http(s) URL: $url\n";
    my @h = (header_pairs($self->{headers}), header_pairs($headers));
    my %given = map { lc $_ => 1 } @h[grep { !($_ % 2) } 0 .. $#h];

    my $default = $scheme eq 'https' ? 443 : 80;
    my $req = "$method $path HTTP/1.1\r\n";
    $req .= "Host: $host" . ($port == $default ? '' : ":$port") . "\r\n"
        unless $given{host};
    $req .= "Connection: close\r\nUser-Agent: ent-test-browser\r\n";
    if (!$given{cookie}) {
        my $c = $self->cookie_header($url);
        $req .= "Cookie: $c\r\n" if length $c;
    }
    while (my ($k, $v) = splice @h, 0, 2) {
        $req .= "$k: $v\r\n";
    }
    if (defined $body || $method eq 'POST' || $method eq 'PUT') {
        $body = '' unless defined $body;
        utf8::encode($body) if utf8::is_utf8($body);
        $req .= 'Content-Length: ' . length($body) . "\r\n";
    }
    $req .= "\r\n" . (defined $body ? $body : '');

    my $res = { status => 0, reason => '', headers => {}, body => '',
                url => $url, method => $method, request_body => $body };
    my $to = $self->{resolve}{"$host:$port"}
        || ($self->{resolve}{$host} ? "$self->{resolve}{$host}:$port"
                                    : "$host:$port");
    my ($addr, $aport) = $to =~ /^\[?(.*?)\]?:(\d+)$/;
    my $s;
    if ($scheme eq 'https') {
        my $name = $host =~ s/^\[|\]$//gr;
        my $ip = $name =~ /^[\d.]+$/ || $name =~ /:/;
        $s = IO::Socket::SSL->new(
            PeerHost => $addr, PeerPort => $aport, Timeout => $self->{timeout},
            SSL_verify_mode => $self->{insecure} ? SSL_VERIFY_NONE
                                                 : SSL_VERIFY_PEER,
            ($self->{ca} ? (SSL_ca_file => $self->{ca}) : ()),
            SSL_verifycn_scheme => 'http',
            SSL_verifycn_name => $name,
            ($ip ? () : (SSL_hostname => $name)),
        );
        if (!$s) {
            $res->{error} = "TLS connect to $to: "
                . ($SSL_ERROR || $! || 'failed');
            return $res;
        }
    } else {
        $s = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $aport,
                                   Proto => 'tcp', Timeout => $self->{timeout});
        if (!$s) {
            $res->{error} = "connect to $to: $!";
            return $res;
        }
    }
    $s->autoflush(1);
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite $s, $req, length($req) - $off, $off;
        if (!defined $n) {
            $res->{error} = "write: $!";
            return $res;
        }
        $off += $n;
    }

    my $raw = $self->read_response($s, $method);
    close $s;
    $self->parse($res, $raw);
    return $res;
}

# until the server closes, or the message is complete
sub read_response {
    my ($self, $s, $method) = @_;
    my $sel = IO::Select->new($s);
    my $end = time + $self->{timeout};
    my $buf = '';
    my $ssl = $s->isa('IO::Socket::SSL');
    while (1) {
        if (!($ssl && $s->pending)) {
            my $left = $end - time;
            last if $left <= 0 || !$sel->can_read($left);
        }
        my $n = sysread $s, my $chunk, 65536;
        if (!defined $n) {
            next if $ssl && ($SSL_ERROR == SSL_WANT_READ
                             || $SSL_ERROR == SSL_WANT_WRITE);
            last;
        }
        last if $n == 0;
        $buf .= $chunk;
        last if complete($buf, $method);
    }
    return $buf;
}

sub complete {
    my ($buf, $method) = @_;
    my $i = index $buf, "\r\n\r\n";
    return 0 if $i < 0;
    my $head = substr $buf, 0, $i;
    my $blen = length($buf) - $i - 4;
    return 1 if $method eq 'HEAD' || $head =~ m{^HTTP/\S+ (1\d\d|204|304)};
    return $blen >= $1 if $head =~ /\r\nContent-Length:\s*(\d+)/i;
    return substr($buf, -5) eq "0\r\n\r\n"
        if $head =~ /\r\nTransfer-Encoding:\s*chunked/i;
    return 0;
}

sub parse {
    my ($self, $res, $raw) = @_;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    if (!defined $head || $head !~ m{^HTTP/\d\.\d (\d+) ?([^\r]*)}) {
        $res->{error} = 'no HTTP response' . (length $raw ? ": $raw" : '');
        return;
    }
    @$res{qw(status reason)} = ($1, $2);
    my @lines = split /\r\n/, $head;
    shift @lines;
    for my $line (@lines) {
        next unless $line =~ /^([^:]+):[ \t]*(.*?)[ \t]*$/;
        push @{ $res->{headers}{lc $1} }, $2;
    }
    $body = '' unless defined $body;
    if (($res->{headers}{'transfer-encoding'}[0] || '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r]*\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($body, 0, $len);
            substr($body, 0, $len + 2) = '';
        }
        $body = $out;
    } elsif (defined(my $cl = $res->{headers}{'content-length'})) {
        $body = substr($body, 0, $cl->[0]) if length $body > $cl->[0];
    }
    $res->{body} = $body;
    $res->{location} = absolute($res->{url}, $res->{headers}{location}[0])
        if $res->{headers}{location};
    $self->store_cookie($res->{url}, $_)
        for @{ $res->{headers}{'set-cookie'} || [] };
}

# one redirect: 303 (and 301/302 after POST) become GET, 307/308 repeat
# the request
sub follow {
    my ($self, $res, @h) = @_;
    die "follow: no Location in a $res->{status} response from $res->{url}\n"
        unless $res->{location};
    if ($res->{status} =~ /^30[78]$/) {
        return $self->request($res->{method}, $res->{location}, \@h,
                              $res->{request_body});
    }
    return $self->request($res->{method} eq 'HEAD' ? 'HEAD' : 'GET',
                          $res->{location}, \@h);
}

sub header {
    my ($res, $name) = @_;
    my $v = $res->{headers}{lc $name};
    return $v ? $v->[0] : undef;
}


# forms: [ { id, name, action (absolute), method, fields => [n => v, ...] } ]

sub unescape_html {
    my ($s) = @_;
    $s =~ s/&#x([0-9a-f]+);/chr hex $1/gei;
    $s =~ s/&#(\d+);/chr $1/ge;
    my %e = (amp => '&', lt => '<', gt => '>', quot => '"', apos => "'");
    $s =~ s/&(amp|lt|gt|quot|apos);/$e{$1}/g;
    return $s;
}

sub attrs {
    my ($tag) = @_;
    my %a;
    while ($tag =~ /([\w:.-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?/g) {
        my $v = defined $2 ? $2 : defined $3 ? $3 : defined $4 ? $4 : '';
        $a{lc $1} = unescape_html($v);
    }
    return \%a;
}

sub forms {
    my ($self, $res) = @_;
    my @forms;
    while ($res->{body} =~ m{<form\b([^>]*)>(.*?)</form\s*>}gis) {
        my ($fa, $inner) = (attrs($1), $2);
        my @fields;
        while ($inner =~ m{<(input|button|textarea)\b([^>]*)>}gi) {
            my ($tag, $a) = (lc $1, attrs($2));
            next unless defined $a->{name};
            next if $tag ne 'input' || ($a->{type} || '') =~ /^(submit|button|image|reset)$/i;
            next if ($a->{type} || '') =~ /^(checkbox|radio)$/i
                && !exists $a->{checked};
            push @fields, $a->{name}, defined $a->{value} ? $a->{value} : '';
        }
        push @forms, { id => $fa->{id}, name => $fa->{name},
                       method => uc($fa->{method} || 'GET'),
                       action => absolute($res->{url},
                                          defined $fa->{action} ? $fa->{action} : ''),
                       fields => \@fields };
    }
    return @forms;
}

# submit a form of the response: the first, or one given by index, id or
# the form itself; set => { name => value } replaces or adds fields
sub submit_form {
    my ($self, $res, $which, $set) = @_;
    my @forms = $self->forms($res);
    my $form = ref $which ? $which
        : !defined $which ? $forms[0]
        : $which =~ /^\d+$/ ? $forms[$which]
        : (grep { defined $_->{id} && $_->{id} eq $which } @forms)[0];
    die "submit_form: no such form in $res->{url}\n" unless $form;
    my @f = @{ $form->{fields} };
    my %set = %{ $set || {} };
    for (my $i = 0; $i < @f; $i += 2) {
        $f[$i + 1] = delete $set{$f[$i]} if exists $set{$f[$i]};
    }
    push @f, map { ($_, $set{$_}) } sort keys %set;
    if ($form->{method} eq 'POST') {
        return $self->post_form($form->{action}, \@f);
    }
    my @kv;
    while (my ($k, $v) = splice @f, 0, 2) {
        push @kv, EntOP::form_escape($k) . '=' . EntOP::form_escape($v);
    }
    (my $action = $form->{action}) =~ s/\?.*//s;
    return $self->get($action . '?' . join('&', @kv));
}


# cookies: { name, value, host, path, domain (attribute, or undef: host
# only), secure, httponly, samesite, expires (epoch, or undef: session) }

my %MON = (jan => 0, feb => 1, mar => 2, apr => 3, may => 4, jun => 5,
           jul => 6, aug => 7, sep => 8, oct => 9, nov => 10, dec => 11);

sub http_date {
    my ($s) = @_;
    return undef unless $s =~ /(\d{1,2})[ -]([a-z]{3})[ -](\d{2,4})\s+(\d{1,2}):(\d{2}):(\d{2})/i;
    my ($d, $m, $y, $H, $M, $S) = ($1, $MON{lc $2}, $3, $4, $5, $6);
    return undef unless defined $m;
    $y += $y < 70 ? 2000 : 1900 if $y < 100;
    return eval { timegm($S, $M, $H, $d, $m, $y) };
}

sub path_match {
    my ($req, $cpath) = @_;
    return 1 if $req eq $cpath;
    return 0 unless index($req, $cpath) == 0;
    return substr($cpath, -1) eq '/' || substr($req, length $cpath, 1) eq '/';
}

sub domain_match {
    my ($host, $c) = @_;
    return $host eq $c->{host} unless defined $c->{domain};
    return $host eq $c->{domain}
        || ($host =~ /\Q.$c->{domain}\E$/ && $host !~ /^[\d.]+$/);
}

sub store_cookie {
    my ($self, $url, $line) = @_;
    my ($scheme, $host, undef, $path) = parse_url($url);
    my ($pair, @attrs) = split /;/, $line;
    return unless defined $pair && $pair =~ /^\s*([^=]*?)\s*=\s*(.*?)\s*$/;
    my $c = { name => $1, value => $2, host => $host, raw => $line };
    return unless length $c->{name};
    my %a;
    for (@attrs) {
        next unless /^\s*([^=]+?)\s*(?:=\s*(.*?))?\s*$/;
        $a{lc $1} = defined $2 ? $2 : '';
    }
    $c->{secure} = exists $a{secure} ? 1 : 0;
    $c->{httponly} = exists $a{httponly} ? 1 : 0;
    $c->{samesite} = $a{samesite};
    $c->{path} = defined $a{path} && $a{path} =~ m{^/} ? $a{path} : do {
        (my $p = $path) =~ s/\?.*//s;
        $p =~ s{/[^/]*$}{};
        length $p ? $p : '/';
    };
    if (defined $a{domain} && length $a{domain}) {
        (my $d = lc $a{domain}) =~ s/^\.//;
        return unless $host eq $d
            || ($host =~ /\Q.$d\E$/ && $host !~ /^[\d.]+$/);
        $c->{domain} = $d;
    }
    if ($self->{strict_prefixes}) {
        return if $c->{secure} && $scheme ne 'https';
        return if $c->{name} =~ /^__Secure-/ && !$c->{secure};
        return if $c->{name} =~ /^__Host-/
            && (!$c->{secure} || defined $c->{domain} || $c->{path} ne '/'
                || !defined $a{path});
    }
    my $now = time;
    if (defined $a{'max-age'} && $a{'max-age'} =~ /^-?\d+$/) {
        $c->{expires} = $now + $a{'max-age'};
        $c->{max_age} = $a{'max-age'} + 0;
    } elsif (defined $a{expires}) {
        $c->{expires} = http_date($a{expires});
    }
    my $key = sub {
        my ($x) = @_;
        join "\0", $x->{name}, $x->{path},
            defined $x->{domain} ? ".$x->{domain}" : $x->{host};
    };
    my $k = $key->($c);
    my ($old) = grep { $key->($_) eq $k } @{ $self->{jar} };
    @{ $self->{jar} } = grep { $key->($_) ne $k } @{ $self->{jar} };
    return if defined $c->{expires} && $c->{expires} <= $now;
    $c->{seq} = $old ? $old->{seq} : ++$self->{seq};
    push @{ $self->{jar} }, $c;
}

sub live {
    my ($self) = @_;
    my $now = time;
    @{ $self->{jar} } = grep { !defined $_->{expires} || $_->{expires} > $now }
        @{ $self->{jar} };
    return @{ $self->{jar} };
}

# what a request to $url sends
sub cookie_header {
    my ($self, $url) = @_;
    my ($scheme, $host, undef, $path) = parse_url($url);
    $path =~ s/\?.*//s;
    my @c = grep {
        domain_match($host, $_) && path_match($path, $_->{path})
            && (!$_->{secure} || $scheme eq 'https' || !$self->{strict_prefixes})
    } $self->live;
    @c = sort { length($b->{path}) <=> length($a->{path})
                    || $a->{seq} <=> $b->{seq} } @c;
    return join '; ', map { "$_->{name}=$_->{value}" } @c;
}

# the jar itself (an array ref of cookie hashes), or those matching
# name, host, path
sub jar { return $_[0]->{jar} }

sub cookies {
    my ($self, %o) = @_;
    return grep {
        (!defined $o{name} || $_->{name} eq $o{name})
            && (!defined $o{host} || domain_match(lc $o{host}, $_))
            && (!defined $o{path} || $_->{path} eq $o{path})
    } $self->live;
}

# the value of a cookie (the most specific path first)
sub cookie {
    my ($self, $name, %o) = @_;
    my @c = sort { length($b->{path}) <=> length($a->{path}) }
        $self->cookies(%o, name => $name);
    return @c ? $c[0]{value} : undef;
}

# set a cookie's value: the existing ones of that name (and host, path if
# given) keep their attributes; a new one needs host (path defaults to /)
sub set_cookie {
    my ($self, $name, $value, %o) = @_;
    my @c = $self->cookies(name => $name,
                           map { defined $o{$_} ? ($_ => $o{$_}) : () }
                           qw(host path));
    if (@c) {
        $_->{value} = $value for @c;
        return scalar @c;
    }
    die "set_cookie: $name is new, give its host\n" unless $o{host};
    push @{ $self->{jar} }, {
        name => $name, value => $value, host => lc $o{host},
        path => $o{path} || '/', domain => $o{domain},
        secure => $o{secure} ? 1 : 0, httponly => $o{httponly} ? 1 : 0,
        samesite => $o{samesite}, expires => $o{expires},
        seq => ++$self->{seq},
    };
    return 1;
}

# delete the cookies of that name (and host, path if given); how many
sub delete_cookie {
    my ($self, $name, %o) = @_;
    my %gone = map { $_ => 1 } $self->cookies(%o, name => $name);
    @{ $self->{jar} } = grep { !$gone{$_} } @{ $self->{jar} };
    return scalar keys %gone;
}

sub clear_cookies { @{ $_[0]->{jar} } = () }

1;
