#!/usr/bin/perl
# The demo upstream: a tiny HTTP/1.1 server (core Perl only) that answers
# every request with what it received: method, path, and the identity
# headers (X-Ent-*) the edge set.  A legacy app behind ngx_ent sees exactly
# this.  Four pre-forked processes; Connection: close.  A query argument
# ent_delay=MS delays the answer (tests of slow upstreams).
#
#   demo/echo-app.pl PORT [--json]
use strict;
use warnings;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);

my $port = shift or die "usage: echo-app.pl PORT\n";
my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                   LocalPort => $port, Listen => 128,
                                   ReuseAddr => 1, Proto => 'tcp')
    or die "echo-app: cannot listen on 127.0.0.1:$port: $!\n";

$SIG{PIPE} = 'IGNORE';
my @kids;
for (1 .. 4) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) { serve(); exit 0 }
    push @kids, $pid;
}
$SIG{TERM} = $SIG{INT} = sub { kill 'TERM', @kids; exit 0 };
1 while wait != -1;

sub esc {
    my ($s) = @_;
    $s =~ s/([\\"])/\\$1/g;
    $s =~ s/([\x00-\x1f\x7f-\xff])/sprintf '\\u%04x', ord $1/ge;
    return $s;
}

sub serve {
    while (my $c = $listen->accept) {
        $c->autoflush(1);
        local $/ = "\r\n";
        my $line = <$c>;
        next unless defined $line;
        my ($method, $path) = split ' ', $line;
        my (@ent, $len, $host, @cookie);
        while (defined(my $h = <$c>)) {
            last if $h eq "\r\n";
            $h =~ s/\r\n$//;
            my ($k, $v) = split /:\s*/, $h, 2;
            next unless defined $v;
            push @ent, [$k, $v] if $k =~ /^x[-_]ent[-_]/i;
            $len = $v if lc $k eq 'content-length';
            $host = $v if lc $k eq 'host';
            push @cookie, $v if lc $k eq 'cookie';
        }
        read $c, my $body, $len if $len && $len < 1_000_000;
        # ?ent_delay=MS: a slow app, for the SLA and timeout tests
        select(undef, undef, undef, $1 / 1000)
            if ($path // '') =~ /[?&]ent_delay=(\d{1,5})\b/;
        my $json = sprintf '{"app":"demo","method":"%s","path":"%s",'
            . '"host":"%s","cookie":"%s","identity":{%s}}' . "\n",
            esc($method // ''), esc($path // ''), esc($host // ''),
            esc(join '; ', @cookie),
            join(',', map { sprintf '"%s":"%s"', esc(lc $_->[0]),
                            esc($_->[1]) } @ent);
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            . "Content-Length: " . length($json) . "\r\n"
            . "Connection: close\r\n\r\n$json";
        close $c;
    }
}
