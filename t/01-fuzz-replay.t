# Every libFuzzer target's corpus (and crash reproducers) replayed once,
# with the sanitizers when the suite runs under SANITIZE=1.
use strict;
use warnings;
use Test::More;

my $dir = $ENV{ENT_UNIT} || 'build/dist/unit';
my @targets = map { m{/replay_fuzz_(\w+)$} ? $1 : () } glob("$dir/replay_*");

ok(scalar @targets >= 2, 'fuzz targets are built') or diag "none in $dir";

for my $t (@targets) {
    my $corpus = "test/fuzz/corpus/$t";
    ok(-d $corpus, "$t: corpus exists");
    my $out = `$dir/replay_fuzz_$t $corpus 2>&1`;
    is($?, 0, "$t: corpus replays cleanly") or diag $out;
    like($out, qr/replayed [1-9]\d* inputs/, "$t: inputs replayed");
}

done_testing;
