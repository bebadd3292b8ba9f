# C unit tests of the I/O-free core (TAP from the binary itself).
use strict;
use warnings;

my $dir = $ENV{ENT_UNIT} || 'build/dist/unit';
exec "$dir/test_rows" or die "cannot run $dir/test_rows: $!\n";
