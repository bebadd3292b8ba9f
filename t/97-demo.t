# The first five minutes: ./dev up (on ports and in a state directory of
# its own) starts the demo, says what to try, and what it says works: the
# seeded tenants, OpenID Connect and SAML logins through the local IdPs, a
# denied role, a custom role, rate limits, SCIM; a second ./dev up changes
# nothing; ./dev down stops it.  The stock-nginx run only (./dev uses the
# distribution's nginx).
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use Test::More;

plan skip_all => 'the demo runs the distribution\'s nginx: the stock run only'
    if $ENV{ENT_SANITIZE} || $ENV{ENT_VALGRIND}
       || $EntTest::NGINX ne '/usr/sbin/nginx';

my $dir = tmpdir();
my %port = map { $_ => EntTest::free_port() } qw(nginx app pg redis op saml);
$ENV{ENT_STATE} = "$dir/state";
$ENV{ENT_PG_DIR} = "$dir/demo-pg";
$ENV{ENT_PORT} = $port{nginx};
$ENV{ENT_APP_PORT} = $port{app};
$ENV{ENT_PG_PORT} = $port{pg};
$ENV{ENT_REDIS_PORT} = $port{redis};
$ENV{ENT_OP_PORT} = $port{op};
$ENV{ENT_SAML_PORT} = $port{saml};

my $dev = "$EntTest::TOP/dev";
END { system("$dev down >/dev/null 2>&1") if $dev }

my $out = `$dev up 2>&1`;
is($?, 0, './dev up') or diag($out);
like($out, qr{http://acme\.localhost:$port{nginx}/app/ .*OpenID Connect}, 'it says where to sign in');
like($out, qr{Stop: \./dev down}, 'and how to stop');

sub get {
    my ($host, $path, $cookie) = @_;
    return http($port{nginx}, $path, host => "$host.localhost",
                headers => [$cookie ? "Cookie: $cookie" : ()]);
}
sub login {
    my ($code, $user, $pw) = @_;
    my $c = `$dev login $code $user @{[ $pw // '' ]} 2>&1`;
    chomp $c;
    return $c;
}
sub identity {
    my ($r) = @_;
    my %id = $r->{body} =~ /"(x-ent-[a-z-]+)":"([^"]*)"/g;
    return \%id;
}

my $r = get('acme', '/hello', undef);
is($r->{status}, 200, 'acme: through to the demo app');
is(identity($r)->{'x-ent-tenant-tier'}, 'enterprise', '... an enterprise tenant');
is(identity(get('portal.acme', '/', undef))->{'x-ent-tenant-code'}, 'acme',
   'its custom domain');
is(get('hooli', '/', undef)->{status}, 403, 'hooli: suspended, 403');
is(get('sub-south', '/api/ai/x', undef)->{status}, 403,
   'a child tenant with a feature off: 403');

my $alice = login('acme', 'alice');
like($alice, qr/^__Host-ent_session=[A-Za-z0-9_-]+$/,
     './dev login acme alice: a session cookie');
my $id = identity(get('acme', '/app/', $alice));
is($id->{'x-ent-user-email'}, 'alice@acme.example', 'alice through OpenID Connect');
is($id->{'x-ent-roles'}, 'admin,member', '... an admin (her IdP group)');
is(get('acme', '/admin/', $alice)->{status}, 200, '... the admin page: 200');
my $bob = login('acme', 'bob');
is(get('acme', '/admin/', $bob)->{status}, 403, 'bob: the admin page, 403');
my $carol = login('acme', 'carol');
is(identity(get('acme', '/app/', $carol))->{'x-ent-roles'},
   'finance-analyst,member', 'carol: the custom role');
is(get('acme', '/billing/', $carol)->{status}, 200,
   '... which grants billing:read');
is(get('acme', '/billing/', $bob)->{status}, 403, '... bob has not');

my $gina = login('globex', 'gina', 'gina');
$id = identity(get('globex', '/app/', $gina));
is($id->{'x-ent-user-email'}, 'gina@globex.example', 'gina through SAML');
is($id->{'x-ent-tenant-tier'}, 'team', '... a team tenant');

my %codes;
$codes{ get('globex', '/api/limited/x', undef)->{status} }++ for 1 .. 6;
is_deeply(\%codes, { 200 => 5, 429 => 1 }, 'the demo rate limit: the sixth is 429');

open my $t, '<', "$dir/state/scim-token" or die;
my $token = <$t>;
chomp $token;
$r = http($port{nginx}, 'POST /scim/v2/Users', host => 'acme.localhost',
          body => '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
                . '"userName":"ada@acme.example"}',
          headers => ["Authorization: Bearer $token",
                      'Content-Type: application/scim+json']);
is($r->{status}, 201, 'SCIM with the printed token: a user created');

$out = `$dev up 2>&1`;
is($?, 0, 'a second ./dev up');
is(get('acme', '/app/', $alice)->{status}, 200,
   '... changes nothing: the session still valid');

$out = `$dev down 2>&1`;
is($?, 0, './dev down');
ok(wait_until(sub { !EntTest::port_open($port{nginx})
                    && !EntTest::port_open($port{op}) }, 10),
   '... nginx and the IdPs stopped');

done_testing;
