#!/usr/bin/perl
# ./dev login: signs a user in to a demo tenant through its IdP as a
# browser would (the OpenID Provider's or SimpleSAMLphp's form), and prints
# the session cookie, for curl -b.
#
#   perl demo/login.pl CODE NGINX_PORT CA_FILE USER [PASSWORD]
use strict;
use warnings;
use File::Basename qw(dirname);
use Cwd qw(abs_path);
use lib abs_path(dirname(__FILE__) . '/../t/lib');
use EntOP;
use EntSAMLIdP;

my ($code, $port, $ca, $user, $password) = @ARGV;
die "usage: $0 CODE NGINX_PORT CA_FILE USER [PASSWORD]\n" unless $user;

my $host = "$code.localhost:$port";
my $b = EntOP::Browser->new(ca => $ca, headers => ['Accept' => 'text/html'],
                            resolve => { $host => "127.0.0.1:$port" });

my $r = $b->get("http://$host/app/");
die "http://$host/app/: $r->{status}, not a redirect to the IdP\n"
    unless $r->{status} == 302 && $r->{location};

if ($r->{location} =~ /SAMLRequest=/) {
    $r = saml_idp_login($b, $r->{location}, $user, $password // $user);
    my ($form) = grep { $_->{action} =~ m{/_ent/saml/acs$} } $b->forms($r);
    die "the IdP did not sign $user in (wrong password?)\n" unless $form;
    $r = $b->submit_form($r, $form);
} else {
    $r = op_login($b, $r->{location}, $user);
    die "the OpenID Provider did not sign $user in\n"
        unless ($r->{location} // '') =~ m{/_ent/oidc/callback\?};
    $r = $b->follow($r);
}

my ($cookie) = grep { /^__Host-ent_session=/ }
    @{ $r->{headers}{'set-cookie'} || [] };
die "no session: $r->{status} $r->{body}\n" unless $cookie;
$cookie =~ s/;.*//s;
print "$cookie\n";
