/*
 * Unit tests of the I/O-free helpers (ngx_ent_rows.c), printing TAP.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_rows.h"
#include "tap.h"




static size_t
build(unsigned char *buf, uint32_t nrows, uint32_t ncols, const char **cells)
{
    uint32_t        i;
    unsigned char  *p;

    p = ngx_ent_rows_put_header(buf, nrows, ncols);

    for (i = 0; i < nrows * ncols; i++) {
        p = ngx_ent_rows_put_cell(p, (const unsigned char *) cells[i],
                                  cells[i] ? strlen(cells[i]) : 0,
                                  cells[i] == NULL);
    }

    return (size_t) (p - buf);
}


static void
test_rows(void)
{
    size_t                len, n;
    unsigned char         buf[256];
    const unsigned char  *d;
    ngx_ent_rows_t        rows;
    const char           *cells[] = { "acme", NULL, "", "globex", "x", "7" };

    len = build(buf, 2, 3, cells);

    check(len == 8 + 6 * 4 + 4 + 6 + 1 + 1, "blob size");
    check(ngx_ent_rows_open(&rows, buf, len) == 0, "well-formed blob opens");
    check(rows.nrows == 2 && rows.ncols == 3, "rows and columns");

    check(ngx_ent_rows_next(&rows, &d, &n) == 1 && n == 4
          && memcmp(d, "acme", 4) == 0, "first cell");
    check(ngx_ent_rows_next(&rows, &d, &n) == 1 && d == NULL,
          "NULL cell is NULL");
    check(ngx_ent_rows_next(&rows, &d, &n) == 1 && d != NULL && n == 0,
          "empty cell is empty, not NULL");
    check(ngx_ent_rows_next(&rows, &d, &n) == 1 && n == 6, "second row");
    ngx_ent_rows_next(&rows, &d, &n);
    ngx_ent_rows_next(&rows, &d, &n);
    check(ngx_ent_rows_next(&rows, &d, &n) == 0, "end after six cells");

    check(ngx_ent_rows_cell(&rows, 1, 2, &d, &n) == 0 && n == 1 && d[0] == '7',
          "random access");
    check(ngx_ent_rows_cell(&rows, 2, 0, &d, &n) == -1, "row out of range");
    check(ngx_ent_rows_cell(&rows, 0, 3, &d, &n) == -1, "column out of range");

    check(ngx_ent_rows_open(&rows, buf, len - 1) == -1, "truncated blob");
    check(ngx_ent_rows_open(&rows, buf, len + 1) == -1, "trailing byte");
    check(ngx_ent_rows_open(&rows, buf, 7) == -1, "short header");
    check(ngx_ent_rows_open(&rows, NULL, 0) == -1, "no data");

    /* a cell length pointing past the end */
    len = build(buf, 1, 1, cells);
    buf[8] = 0xfe;
    check(ngx_ent_rows_open(&rows, buf, len) == -1, "cell past the end");

    /* absurd dimensions are refused before any walk */
    ngx_ent_rows_put_header(buf, 0xffffffffu, 0xffffffffu);
    check(ngx_ent_rows_open(&rows, buf, 8) == -1, "absurd dimensions");

    /* zero rows: a valid negative answer */
    len = build(buf, 0, 5, cells);
    check(ngx_ent_rows_open(&rows, buf, len) == 0 && rows.nrows == 0,
          "zero rows");
    check(ngx_ent_rows_next(&rows, &d, &n) == 0, "zero rows: no cells");
}


static void
test_notify(void)
{
    int                   what;
    size_t                zl, kl;
    const unsigned char  *z, *k;

#define P(s)  (const unsigned char *) s, sizeof(s) - 1

    check(ngx_ent_notify_parse(P("tenants:acme.example.com"), &what, &z, &zl,
                               &k, &kl) == 0
          && what == NGX_ENT_NOTIFY_KEY && zl == 7 && kl == 16
          && memcmp(k, "acme.example.com", 16) == 0, "zone and key");
    check(ngx_ent_notify_parse(P("tenants:a:b"), &what, &z, &zl, &k, &kl) == 0
          && kl == 3, "key may hold a colon");
    check(ngx_ent_notify_parse(P("tenants:*"), &what, &z, &zl, &k, &kl) == 0
          && what == NGX_ENT_NOTIFY_ZONE, "zone flush");
    check(ngx_ent_notify_parse(P("tenants:"), &what, &z, &zl, &k, &kl) == 0
          && what == NGX_ENT_NOTIFY_ZONE, "zone flush, empty key");
    check(ngx_ent_notify_parse(P("*"), &what, &z, &zl, &k, &kl) == 0
          && what == NGX_ENT_NOTIFY_ALL, "flush everything");
    check(ngx_ent_notify_parse(P(""), &what, &z, &zl, &k, &kl) == -1,
          "empty payload");
    check(ngx_ent_notify_parse(P(":key"), &what, &z, &zl, &k, &kl) == -1,
          "empty zone");
    check(ngx_ent_notify_parse(P("tenants"), &what, &z, &zl, &k, &kl) == -1,
          "no colon");
    check(ngx_ent_notify_parse(P("ten ants:k"), &what, &z, &zl, &k, &kl)
          == -1, "space in zone");
    check(ngx_ent_notify_parse(P("t\x01:k"), &what, &z, &zl, &k, &kl) == -1,
          "control byte in zone");
}


static void
test_backoff(void)
{
    check(ngx_ent_backoff_next(0, 50, 2000) == 50, "backoff starts at min");
    check(ngx_ent_backoff_next(50, 50, 2000) == 100, "backoff doubles");
    check(ngx_ent_backoff_next(1000, 50, 2000) == 2000, "backoff reaches max");
    check(ngx_ent_backoff_next(2000, 50, 2000) == 2000, "backoff stays at max");
    check(ngx_ent_backoff_next(1500, 50, 2000) == 2000, "backoff capped");
}


static void
test_redis_key(void)
{
    size_t          n;
    unsigned char   buf[64];

#define S(s)  (const unsigned char *) s, sizeof(s) - 1

    n = ngx_ent_redis_key(buf, sizeof(buf), S("rl:"), S("acme"), S("api"));
    check(n == 15 && memcmp(buf, "rl:{t:acme}:api", 15) == 0,
          "key with hash tag");
    check(ngx_ent_redis_key(buf, sizeof(buf), S("rl:"), S(""), S("x")) == 0,
          "empty tenant refused");
    check(ngx_ent_redis_key(buf, sizeof(buf), S("rl:"), S("a}b"), S("x")) == 0,
          "brace in tenant refused");
    check(ngx_ent_redis_key(buf, sizeof(buf), S("rl:"), S("a b"), S("x")) == 0,
          "space in tenant refused");
    check(ngx_ent_redis_key(buf, 10, S("rl:"), S("acme"), S("api")) == 0,
          "too small a buffer");
}


static void
test_resp(void)
{
    size_t                n, lens[3];
    unsigned char         buf[128], *end;
    const unsigned char  *args[3];
    const char           *want;

    args[0] = (const unsigned char *) "SET";
    args[1] = (const unsigned char *) "k";
    args[2] = (const unsigned char *) "hello world";
    lens[0] = 3;
    lens[1] = 1;
    lens[2] = 11;

    want = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$11\r\nhello world\r\n";
    n = ngx_ent_resp_size(3, lens);
    end = ngx_ent_resp_write(buf, 3, args, lens);

    check(n == strlen(want), "RESP size");
    check((size_t) (end - buf) == n && memcmp(buf, want, n) == 0,
          "RESP encoding");

    lens[1] = 0;
    end = ngx_ent_resp_write(buf, 2, args, lens);
    check(ngx_ent_resp_size(2, lens) == (size_t) (end - buf)
          && memcmp(buf, "*2\r\n$3\r\nSET\r\n$0\r\n\r\n", end - buf) == 0,
          "RESP empty argument");

    args[0] = (const unsigned char *) "a\r\nb";
    lens[0] = 4;
    end = ngx_ent_resp_write(buf, 1, args, lens);
    check(memcmp(buf, "*1\r\n$4\r\na\r\nb\r\n", end - buf) == 0,
          "RESP is binary safe: CR LF inside an argument stays data");
}


static void
test_siphash(void)
{
    size_t         i;
    uint64_t       k[2], a, b;
    unsigned char  m[64];

    /* the reference implementation's key and messages: 00 01 02 ... */

    for (i = 0; i < sizeof(m); i++) {
        m[i] = (unsigned char) i;
    }

    k[0] = 0x0706050403020100ULL;
    k[1] = 0x0f0e0d0c0b0a0908ULL;

    check(ngx_ent_siphash24(k, m, 0) == 0x726fdb47dd0e0e31ULL,
          "SipHash-2-4 reference vector, empty message");
    check(ngx_ent_siphash24(k, m, 1) == 0x74f839c593dc67fdULL,
          "SipHash-2-4 reference vector, 1 byte");
    check(ngx_ent_siphash24(k, m, 15) == 0xa129ca6149be45e5ULL,
          "SipHash-2-4 reference vector, 15 bytes (the paper's)");

    /* SipHash-1-3: the same code with fewer rounds */

    a = ngx_ent_siphash(k, m, 15);
    check(a != ngx_ent_siphash24(k, m, 15) && a == ngx_ent_siphash(k, m, 15),
          "SipHash-1-3 is its own function, deterministic");

    k[1] ^= 1;
    b = ngx_ent_siphash(k, m, 15);
    k[1] ^= 1;
    check(a != b, "SipHash-1-3 depends on the key");

    m[14] ^= 0x80;
    check(ngx_ent_siphash(k, m, 15) != a, "... and on every byte");
    m[14] ^= 0x80;

    check(ngx_ent_siphash(k, m, 14) != ngx_ent_siphash(k, m, 15)
          && ngx_ent_siphash(k, m, 16) != ngx_ent_siphash(k, m, 15),
          "... and on the length");
}


int
main(void)
{
    test_rows();
    test_notify();
    test_backoff();
    test_redis_key();
    test_resp();
    test_siphash();

    return tap_done();
}
