/*
 * libFuzzer target: the Cookie header parser gets every byte a client can
 * send, looked up under a few fixed names and one taken from the input;
 * the header escaper and the constant-time comparison ride along.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_sso_util.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_cookie_find(const uint8_t *hdr, size_t len,
    const uint8_t *name, size_t nlen);
static void fuzz_escape(const uint8_t *s, size_t len);


static void
fuzz_cookie_find(const uint8_t *hdr, size_t len, const uint8_t *name,
    size_t nlen)
{
    int                   rc;
    size_t                i, p, vlen;
    const unsigned char  *val;

    val = NULL;
    vlen = 0;

    rc = ent_cookie_find(hdr, len, name, nlen, &val, &vlen);

    if (rc != 0 && rc != 1 && rc != -1) {
        abort();
    }

    if (len > ENT_COOKIE_MAX_LEN && rc != -1) {
        abort();
    }

    if (rc != 0) {
        return;
    }

    if (val == NULL || val < hdr || val + vlen > hdr + len) {
        abort();
    }

    /* the value found is RFC 6265 cookie-octets, quotes removed */

    for (i = 0; i < vlen; i++) {
        if (val[i] < 0x21 || val[i] > 0x7e || val[i] == '"' || val[i] == ','
            || val[i] == ';' || val[i] == '\\')
        {
            abort();
        }
    }

    /*
     * and right before it: perhaps a quote, optional whitespace, "=",
     * optional whitespace, the name, and the header's start, whitespace
     * or ";"
     */

    if (nlen == 0) {
        abort();
    }

    p = (size_t) (val - hdr);

    if (p > 0 && hdr[p - 1] == '"') {
        p--;
    }

    while (p > 0 && (hdr[p - 1] == ' ' || hdr[p - 1] == '\t')) {
        p--;
    }

    if (p == 0 || hdr[p - 1] != '=') {
        abort();
    }

    p--;

    while (p > 0 && (hdr[p - 1] == ' ' || hdr[p - 1] == '\t')) {
        p--;
    }

    if (p < nlen || memcmp(hdr + p - nlen, name, nlen) != 0) {
        abort();
    }

    p -= nlen;

    if (p > 0 && hdr[p - 1] != ' ' && hdr[p - 1] != '\t'
        && hdr[p - 1] != ';')
    {
        abort();
    }
}


static void
fuzz_escape(const uint8_t *s, size_t len)
{
    int       hi, lo;
    size_t    i, j, n, m;
    uint8_t  *out;

    n = ent_header_escape_len(s, len);

    out = malloc(n ? n : 1);
    if (out == NULL) {
        return;
    }

    m = ent_header_escape(out, s, len);

    if (m != n) {
        abort();
    }

    /* nothing that could split a header, and it decodes back exactly */

    for (i = 0, j = 0; i < m; i++, j++) {
        if (out[i] < 0x20 || out[i] >= 0x7f) {
            abort();
        }

        if (out[i] != '%') {
            if (j >= len || s[j] != out[i]) {
                abort();
            }

            continue;
        }

        if (m - i < 3) {
            abort();
        }

        hi = out[i + 1] <= '9' ? out[i + 1] - '0' : out[i + 1] - 'A' + 10;
        lo = out[i + 2] <= '9' ? out[i + 2] - '0' : out[i + 2] - 'A' + 10;

        if (j >= len || s[j] != ((hi << 4) | lo)) {
            abort();
        }

        i += 2;
    }

    if (j != len) {
        abort();
    }

    free(out);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t    nlen, h;
    uint8_t  *copy;

    /* an exact-size heap copy, so that ASan sees every overread */

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    fuzz_cookie_find(copy, size, (const uint8_t *) "sid", 3);
    fuzz_cookie_find(copy, size, (const uint8_t *) "a", 1);
    fuzz_cookie_find(copy, size, (const uint8_t *) "ent_session", 11);
    fuzz_cookie_find(copy, size, (const uint8_t *) "", 0);

    /* a name from the input: its length in the first byte */

    if (size > 0) {
        nlen = copy[0] % 16;

        if (nlen < size) {
            fuzz_cookie_find(copy + 1 + nlen, size - 1 - nlen, copy + 1, nlen);
        }
    }

    fuzz_escape(copy, size);

    h = size / 2;

    if (ent_ct_equal(copy, h, copy + h, size - h)
        != (h == size - h && memcmp(copy, copy + h, h) == 0))
    {
        abort();
    }

    free(copy);

    return 0;
}
