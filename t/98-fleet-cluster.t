# The fleet test (t/96-fleet.t) again with a Redis Cluster instead of
# Sentinel: three masters with a replica each; the master of the tenant's
# slot killed under the mixed load, then the slot moved under the load.
use strict;
use warnings;

$ENV{ENT_FLEET_REDIS} = 'cluster';
my $file = ($0 =~ s{[^/]*$}{}r) . '96-fleet.t';
do "./$file" // die($@ || "$file: $!");
