# C unit tests of the I/O-free code: every test/unit/test_*.c binary.
use strict;
use warnings;
use Test::More;

my $dir = $ENV{ENT_UNIT} || 'build/dist/unit';
my @bins = sort glob("$dir/test_*");

ok(scalar @bins >= 2, 'unit test binaries are built') or diag "none in $dir";

for my $bin (@bins) {
    my $out = `$bin 2>&1`;
    my $rc = $?;
    my ($plan) = $out =~ /^1\.\.(\d+)$/m;
    my @bad = grep { /^not ok/ } split /\n/, $out;
    ok($rc == 0 && $plan && !@bad, "$bin: $plan checks pass")
        or diag($out);
}

done_testing;
