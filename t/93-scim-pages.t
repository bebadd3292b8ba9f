# Deep SCIM list pages start from anchors (every 1,000th user, per order,
# per version of the tenant's users): pages through the API are exactly
# those of a plain OFFSET walk, by userName and in the default (creation)
# order, at and across anchors, past the end, and again after users are
# created, renamed and deleted (stale anchors are never used).
use strict;
use warnings;
use lib 't/lib';
use EntTest;
use JSON::PP;
use Test::More;

pg_start();

pg_sql(<<'SQL');
INSERT INTO ent.tenants (code, display_name) VALUES ('big', 'Big');
INSERT INTO ent.users (id, email, name)
SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
       'u' || g || '@big.example.com', 'U ' || g
  FROM generate_series(1, 2600) g;
-- names whose case and order differ from their numbers; creation times
-- with ties, so that the id breaks them
INSERT INTO ent.scim_users (tenant_id, id, user_name, created_at)
SELECT t.id, ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
       CASE WHEN g % 3 = 0 THEN 'User' ELSE 'user' END
       || md5(g::text) || '@big.example.com',
       timestamptz '2026-01-01' + ((g / 3) || ' seconds')::interval
  FROM ent.tenants t, generate_series(1, 2600) g WHERE t.code = 'big';
SQL
my $tid = pg_sql("SELECT id FROM ent.tenants WHERE code = 'big'");

my $entctl = "$EntTest::TOP/bin/entctl --dsn '" . EntTest::pg_dsn() . "'";
my $tok = `$entctl scim-token create big --name t 2>/dev/null`;
chomp $tok;

my $n = nginx_start(http_config => qq{ent_postgres "\$TEST_PG_DSN" pool=2;\n}
                                   . "ent_scim_rate 0;\n",
                    config => "ent_tenant on;\nent_tenant_base_domain example.com;\n"
                              . "location /scim/v2/ { ent_scim on; }");

sub page {
    my ($q) = @_;
    my $r = http($n, "/scim/v2/Users?$q&attributes=userName",
                 host => 'big.example.com',
                 headers => ["Authorization: Bearer $tok"]);
    die "status $r->{status}: $r->{body}" unless $r->{status} == 200;
    my $j = decode_json($r->{body});
    return join ',', map { $_->{id} } @{ $j->{Resources} };
}

sub walk {
    my ($order, $offset, $count) = @_;
    return join ',', split /\n/, pg_sql(
        "SELECT id FROM ent.scim_users u WHERE tenant_id = '$tid' AND deleted_at IS NULL "
        . "ORDER BY $order, id OFFSET $offset LIMIT $count");
}

sub check {
    my ($what) = @_;
    for my $s (1, 999, 1000, 1001, 1002, 1999, 2000, 2001, 2550, 2601, 5000) {
        is(page("sortBy=userName&startIndex=$s&count=60"),
           walk('lower(user_name)', $s - 1, 60), "$what: by userName from $s");
        is(page("startIndex=$s&count=60"),
           walk('created_at', $s - 1, 60), "$what: by creation from $s");
    }
    is(page('sortBy=userName&sortOrder=descending&startIndex=1500&count=20'),
       walk('lower(user_name) DESC', 1499, 20),
       "$what: descending (no anchors) still right");
}

check('first');
is(pg_sql("SELECT sort || ':' || cardinality(keys) FROM ent.scim_anchors ORDER BY sort"),
   "created:3\nusername:3", 'anchors taken: every 1,000th user, per order');

# changes: a new user (first in both orders), a rename, a delete

my $r = http($n, 'POST /scim/v2/Users', host => 'big.example.com',
             headers => ["Authorization: Bearer $tok", 'Content-Type: application/scim+json'],
             body => encode_json({ schemas => ['urn:ietf:params:scim:schemas:core:2.0:User'],
                                   userName => '000first@big.example.com' }));
is($r->{status}, 201, 'a user created');
pg_sql("UPDATE ent.scim_users SET created_at = '2025-01-01' WHERE user_name = '000first\@big.example.com'");
pg_sql("UPDATE ent.scim_users SET user_name = 'aaa-renamed\@big.example.com' "
       . "WHERE id = '00000000-0000-4000-8000-000000001500'");
$r = http($n, 'DELETE /scim/v2/Users/00000000-0000-4000-8000-000000000700',
          host => 'big.example.com', headers => ["Authorization: Bearer $tok"]);
is($r->{status}, 204, 'a user deleted');
check('after changes');
is(pg_sql("SELECT count(*) FROM ent.scim_anchors a JOIN ent.scim_counts c USING (tenant_id) "
          . "WHERE a.version = c.version"), 2, 'the anchors were taken again');
nginx_stop($n);
check_log($n, 'pages');

done_testing();
