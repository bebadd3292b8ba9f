/*
 * ngx_ent SSO: I/O-free helpers (see ngx_ent_sso_util.h).
 *
 * Choices where the header leaves room:
 *
 *   - ent_cookie_find: SP and HTAB are optional whitespace around pairs,
 *     names and values; other bytes < 0x20 and 0x7f anywhere in the header
 *     make it malformed; empty segments (";;", a trailing ";") are skipped;
 *     a pair with an empty name is malformed like one without "=".  Values
 *     of other cookies are not judged (browsers send what sites set), but
 *     the value returned must be an RFC 6265 cookie-value: cookie-octets,
 *     perhaps wrapped in one pair of DQUOTEs; anything else is -1.
 *
 *   - ent_return_to_ok: every "%" must start a well-formed escape (two hex
 *     digits); "%" alone or "%zz" is refused, as decoders disagree on it.
 *     Escapes of other bytes ("%20", "%C3%A9", "%2E") are allowed.
 *
 *   - ent_random_token writes exactly (4 * nbytes + 2) / 3 bytes and no
 *     terminating NUL.
 *
 *   - ent_claim_*: at each level of the claims, the remaining path as a
 *     whole key is tried first, then the path split at each dot from left
 *     to right; the first value found is the answer, whatever its type.
 *     A string holding a NUL byte cannot be returned by ent_claim_string
 *     (-1).  Reals print with the fewest of 15, 16 or 17 significant
 *     digits that give the same double back.  ent_claim_list skips empty
 *     strings as well, and tries later elements after one that did not fit.
 *
 *   - ent_email_domain_in: the list is bare domains separated by "," and
 *     nothing else (" example.com" never matches); the comparison folds
 *     ASCII letters only.
 */


#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ngx_ent_sso_util.h"


#define ENT_AEAD_IV_LEN        12
#define ENT_AEAD_TAG_LEN       16
#define ENT_TOKEN_CHUNK        48       /* random bytes per round, 3 * n */


static int ent_sso_is_ows(unsigned char c);
static int ent_sso_hex(unsigned char c);
static size_t ent_sso_b64url(unsigned char *dst, const unsigned char *src,
    size_t len);
static json_t *ent_sso_claim_find(json_t *obj, const char *path, size_t len);
static int ent_sso_real_print(char *buf, size_t size, double d);


static const unsigned char  ent_sso_hexdigits[] = "0123456789ABCDEF";


static int
ent_sso_is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}


/*
 * Each octet's classes: in a Cookie header, a control character (all
 * below 0x20 but HTAB, and DEL) and not a cookie-octet of RFC 6265
 * (%x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E); in an identity header
 * value, escaped as %XX (controls, %, non-ASCII)
 */

#define ENT_SSO_CTL         1
#define ENT_SSO_NOT_COOKIE  2
#define ENT_SSO_ESCAPED     4

static const unsigned char  ent_sso_octet[256] = {
    7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 7, 7, 7, 7, 7,  /* 00 */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,  /* 10 */
    2, 0, 2, 0, 0, 4, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,  /* 20 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0,  /* 30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,  /* 50 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7,  /* 70 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,  /* 80 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,  /* 90 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,  /* a0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,  /* b0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,  /* c0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,  /* d0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,  /* e0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,  /* f0 */
};


int
ent_cookie_find(const unsigned char *hdr, size_t len,
    const unsigned char *name, size_t nlen,
    const unsigned char **val, size_t *vlen)
{
    int                   found;
    size_t                i, end, ns, ne, vs, ve, eq, fs, fe;
    unsigned char         bad;
    const unsigned char  *semi;

    if (len > ENT_COOKIE_MAX_LEN) {
        return -1;
    }

    /* no control character anywhere: one pass without a branch per byte */

    bad = 0;

    for (i = 0; i < len; i++) {
        bad |= ent_sso_octet[hdr[i]] & ENT_SSO_CTL;
    }

    if (bad) {
        return -1;
    }

    found = 0;
    fs = 0;
    fe = 0;

    for (i = 0; i < len; i = end + 1) {

        semi = memchr(hdr + i, ';', len - i);
        end = semi ? (size_t) (semi - hdr) : len;

        ns = i;
        ve = end;

        while (ns < ve && ent_sso_is_ows(hdr[ns])) {
            ns++;
        }

        while (ve > ns && ent_sso_is_ows(hdr[ve - 1])) {
            ve--;
        }

        if (ns == ve) {
            /* an empty segment: ";;" or a trailing ";" */
            continue;
        }

        for (eq = ns; eq < ve && hdr[eq] != '='; eq++) {
            /* void */
        }

        if (eq == ve) {
            /*
             * no "=": a nameless cookie (RFC 6265bis), which any page of
             * the site or a sibling domain can set; not ours, and no
             * reason to ignore the others
             */
            continue;
        }

        ne = eq;

        while (ne > ns && ent_sso_is_ows(hdr[ne - 1])) {
            ne--;
        }

        if (ne == ns) {
            /* an empty name: nameless too */
            continue;
        }

        vs = eq + 1;

        while (vs < ve && ent_sso_is_ows(hdr[vs])) {
            vs++;
        }

        if (ne - ns != nlen || memcmp(hdr + ns, name, nlen) != 0) {
            continue;
        }

        if (found) {
            /* the name twice */
            return -1;
        }

        found = 1;
        fs = vs;
        fe = ve;
    }

    if (!found) {
        return 1;
    }

    if (fe - fs >= 2 && hdr[fs] == '"' && hdr[fe - 1] == '"') {
        fs++;
        fe--;
    }

    bad = 0;

    for (i = fs; i < fe; i++) {
        bad |= ent_sso_octet[hdr[i]] & ENT_SSO_NOT_COOKIE;
    }

    if (bad) {
        return -1;
    }

    *val = hdr + fs;
    *vlen = fe - fs;

    return 0;
}


static int
ent_sso_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


int
ent_return_to_ok(const unsigned char *p, size_t len)
{
    int     hi, lo, d;
    size_t  i;

    if (len == 0 || len > ENT_RETURN_TO_MAX_LEN || p[0] != '/') {
        return 0;
    }

    /* "//host" and "/\host" are network-path references to browsers */

    if (len > 1 && (p[1] == '/' || p[1] == '\\')) {
        return 0;
    }

    for (i = 0; i < len; i++) {

        if (p[i] < 0x21 || p[i] >= 0x7f || p[i] == '\\') {
            return 0;
        }

        if (p[i] != '%') {
            continue;
        }

        if (len - i < 3) {
            return 0;
        }

        hi = ent_sso_hex(p[i + 1]);
        lo = ent_sso_hex(p[i + 2]);

        if (hi < 0 || lo < 0) {
            return 0;
        }

        d = (hi << 4) | lo;

        if (d == '/' || d == '\\' || d == '%' || d < 0x20 || d == 0x7f) {
            return 0;
        }

        i += 2;
    }

    return 1;
}


int
ent_aead_seal(const unsigned char *key, const unsigned char *aad,
    size_t aadlen, const unsigned char *pt, size_t len, unsigned char *out)
{
    int              n, total, rc;
    unsigned char   *ct;
    EVP_CIPHER_CTX  *ctx;

    if (len > (size_t) INT_MAX - ENT_AEAD_OVERHEAD || aadlen > INT_MAX) {
        return -1;
    }

    if (RAND_bytes(out, ENT_AEAD_IV_LEN) != 1) {
        return -1;
    }

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    rc = -1;
    total = 0;
    ct = out + ENT_AEAD_IV_LEN;

    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, out) != 1) {
        goto done;
    }

    if (aadlen
        && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int) aadlen) != 1)
    {
        goto done;
    }

    if (len) {
        if (EVP_EncryptUpdate(ctx, ct, &n, pt, (int) len) != 1) {
            goto done;
        }

        total = n;
    }

    if (EVP_EncryptFinal_ex(ctx, ct + total, &n) != 1) {
        goto done;
    }

    total += n;

    if ((size_t) total != len
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ENT_AEAD_TAG_LEN,
                               ct + total) != 1)
    {
        goto done;
    }

    rc = total + ENT_AEAD_OVERHEAD;

done:

    EVP_CIPHER_CTX_free(ctx);

    return rc;
}


int
ent_aead_open(const unsigned char *key, const unsigned char *aad,
    size_t aadlen, const unsigned char *in, size_t len, unsigned char *out)
{
    int              n, total, rc;
    size_t           ctlen;
    EVP_CIPHER_CTX  *ctx;

    if (len < ENT_AEAD_OVERHEAD
        || len - ENT_AEAD_OVERHEAD > INT_MAX || aadlen > INT_MAX)
    {
        return -1;
    }

    ctlen = len - ENT_AEAD_OVERHEAD;

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    rc = -1;
    total = 0;

    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, in) != 1) {
        goto done;
    }

    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ENT_AEAD_TAG_LEN,
                            (void *) (in + len - ENT_AEAD_TAG_LEN))
        != 1)
    {
        goto done;
    }

    if (aadlen
        && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int) aadlen) != 1)
    {
        goto done;
    }

    if (ctlen) {
        if (EVP_DecryptUpdate(ctx, out, &n, in + ENT_AEAD_IV_LEN, (int) ctlen)
            != 1)
        {
            goto done;
        }

        total = n;
    }

    if (EVP_DecryptFinal_ex(ctx, out + total, &n) != 1) {
        goto done;
    }

    total += n;

    if ((size_t) total == ctlen) {
        rc = total;
    }

done:

    if (rc == -1 && ctlen) {
        /* no unauthenticated plaintext is left behind */
        OPENSSL_cleanse(out, ctlen);
    }

    EVP_CIPHER_CTX_free(ctx);

    return rc;
}


static size_t
ent_sso_b64url(unsigned char *dst, const unsigned char *src, size_t len)
{
    size_t                        i;
    unsigned long                 v;
    unsigned char                *p;
    static const unsigned char    alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                               "abcdefghijklmnopqrstuvwxyz"
                                               "0123456789-_";

    p = dst;

    for (i = 0; i + 3 <= len; i += 3) {
        v = ((unsigned long) src[i] << 16) | (src[i + 1] << 8) | src[i + 2];

        *p++ = alphabet[(v >> 18) & 0x3f];
        *p++ = alphabet[(v >> 12) & 0x3f];
        *p++ = alphabet[(v >> 6) & 0x3f];
        *p++ = alphabet[v & 0x3f];
    }

    if (len - i == 1) {
        v = (unsigned long) src[i] << 16;

        *p++ = alphabet[(v >> 18) & 0x3f];
        *p++ = alphabet[(v >> 12) & 0x3f];

    } else if (len - i == 2) {
        v = ((unsigned long) src[i] << 16) | (src[i + 1] << 8);

        *p++ = alphabet[(v >> 18) & 0x3f];
        *p++ = alphabet[(v >> 12) & 0x3f];
        *p++ = alphabet[(v >> 6) & 0x3f];
    }

    return (size_t) (p - dst);
}


int
ent_random_token(unsigned char *dst, size_t nbytes)
{
    int            rc;
    size_t         n;
    unsigned char  buf[ENT_TOKEN_CHUNK];

    rc = 0;

    while (nbytes) {
        n = nbytes < ENT_TOKEN_CHUNK ? nbytes : ENT_TOKEN_CHUNK;

        if (RAND_bytes(buf, (int) n) != 1) {
            rc = -1;
            break;
        }

        /* whole chunks are multiples of 3: no padding in between */
        dst += ent_sso_b64url(dst, buf, n);
        nbytes -= n;
    }

    OPENSSL_cleanse(buf, sizeof(buf));

    return rc;
}


void
ent_pkce_s256(const unsigned char *verifier, size_t len, unsigned char *out)
{
    unsigned int   mdlen;
    unsigned char  md[EVP_MAX_MD_SIZE];

    if (EVP_Digest(verifier, len, md, &mdlen, EVP_sha256(), NULL) != 1
        || mdlen != 32)
    {
        /*
         * Cannot happen with a working libcrypto.  The caller cannot be
         * told, so it gets a challenge no verifier is known to match: the
         * login fails at the token endpoint.
         */
        memset(out, '-', ENT_PKCE_CHALLENGE_LEN);
        return;
    }

    ent_sso_b64url(out, md, 32);
}


int
ent_ct_equal(const unsigned char *a, size_t alen, const unsigned char *b,
    size_t blen)
{
    size_t    i, n;
    uint64_t  x, y, diff;

    n = alen < blen ? alen : blen;
    diff = 0;

    /*
     * The time depends on the lengths only, never on the contents: eight
     * octets a step, every step taken; the empty asm keeps the compiler
     * from knowing diff, and so from leaving the loop early.
     */

    for (i = 0; i + 8 <= n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        diff |= x ^ y;
        __asm__ volatile ("" : "+r" (diff));
    }

    for ( /* void */ ; i < n; i++) {
        diff |= (uint64_t) (a[i] ^ b[i]);
        __asm__ volatile ("" : "+r" (diff));
    }

    return (diff == 0) & (alen == blen);
}


/*
 * Whether any of eight octets is escaped: below 0x20, '%', DEL or 0x80 and
 * above.  hasless() and haszero() of the bit-twiddling folklore: exact as
 * to whether one octet matches, which is all that is asked.
 */

#define ENT_SSO_ONES  0x0101010101010101ULL
#define ENT_SSO_HIGH  0x8080808080808080ULL

static uint64_t
ent_sso_escaped8(uint64_t x)
{
    uint64_t  pct, del;

    pct = x ^ (ENT_SSO_ONES * '%');
    del = x ^ (ENT_SSO_ONES * 0x7f);

    return (x & ENT_SSO_HIGH)
           | ((x - ENT_SSO_ONES * 0x20) & ~x & ENT_SSO_HIGH)
           | ((pct - ENT_SSO_ONES) & ~pct & ENT_SSO_HIGH)
           | ((del - ENT_SSO_ONES) & ~del & ENT_SSO_HIGH);
}


size_t
ent_header_escape_len(const unsigned char *src, size_t len)
{
    size_t    i, j, n;
    uint64_t  x;

    /*
     * Values are mostly plain: eight octets a step are checked at once,
     * and only a step that holds an escaped octet is counted by octet
     * (the escaped add 2 each, without a branch per octet)
     */

    n = len;

    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&x, src + i, 8);

        if (ent_sso_escaped8(x) == 0) {
            continue;
        }

        for (j = i; j < i + 8; j++) {
            n += (ent_sso_octet[src[j]] & ENT_SSO_ESCAPED) >> 1;
        }
    }

    for ( /* void */ ; i < len; i++) {
        n += (ent_sso_octet[src[i]] & ENT_SSO_ESCAPED) >> 1;
    }

    return n;
}


size_t
ent_header_escape(unsigned char *dst, const unsigned char *src, size_t len)
{
    size_t          i;
    unsigned char  *p;

    p = dst;

    for (i = 0; i < len; i++) {
        if (ent_sso_octet[src[i]] & ENT_SSO_ESCAPED) {
            *p++ = '%';
            *p++ = ent_sso_hexdigits[src[i] >> 4];
            *p++ = ent_sso_hexdigits[src[i] & 0xf];

        } else {
            *p++ = src[i];
        }
    }

    return (size_t) (p - dst);
}


static json_t *
ent_sso_claim_find(json_t *obj, const char *path, size_t len)
{
    size_t   i;
    json_t  *v;

    /*
     * Claims parsed from a token are a tree, so each object is entered at
     * most once whatever the path: the work is bounded by the claims' size
     * times the path's length.
     */

    if (!json_is_object(obj)) {
        return NULL;
    }

    v = json_object_getn(obj, path, len);
    if (v != NULL) {
        return v;
    }

    for (i = 0; i < len; i++) {
        if (path[i] != '.') {
            continue;
        }

        v = json_object_getn(obj, path, i);
        if (v == NULL || !json_is_object(v)) {
            continue;
        }

        v = ent_sso_claim_find(v, path + i + 1, len - i - 1);
        if (v != NULL) {
            return v;
        }
    }

    return NULL;
}


static int
ent_sso_real_print(char *buf, size_t size, double d)
{
    int  n, prec;

    n = -1;

    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, size, "%.*g", prec, d);

        if (n < 0 || (size_t) n >= size) {
            return -1;
        }

        if (strtod(buf, NULL) == d) {
            break;
        }
    }

    return n;
}


int
ent_claim_string(json_t *claims, const char *path, char *out,
    size_t outlen)
{
    int          n;
    char         num[64];
    size_t       len;
    json_t      *v;
    const char  *s;

    if (outlen == 0) {
        return -1;
    }

    out[0] = '\0';

    if (claims == NULL || path == NULL) {
        return -1;
    }

    v = ent_sso_claim_find(claims, path, strlen(path));
    if (v == NULL) {
        return -1;
    }

    switch (json_typeof(v)) {

    case JSON_STRING:
        s = json_string_value(v);
        len = json_string_length(v);

        if (memchr(s, '\0', len) != NULL) {
            return -1;
        }

        break;

    case JSON_INTEGER:
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        if (n < 0 || (size_t) n >= sizeof(num)) {
            return -1;
        }

        s = num;
        len = (size_t) n;
        break;

    case JSON_REAL:
        n = ent_sso_real_print(num, sizeof(num), json_real_value(v));
        if (n < 0) {
            return -1;
        }

        s = num;
        len = (size_t) n;
        break;

    case JSON_TRUE:
        s = "true";
        len = 4;
        break;

    case JSON_FALSE:
        s = "false";
        len = 5;
        break;

    default:
        return -1;
    }

    if (len > outlen - 1) {
        return -1;
    }

    memcpy(out, s, len);
    out[len] = '\0';

    return 0;
}


int
ent_sso_list_ok(const char *s, size_t len)
{
    size_t  i;

    if (len == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (s[i] == ',' || (unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}


int
ent_claim_list(json_t *claims, const char *path, char *out, size_t outlen)
{
    int          count;
    size_t       i, n, len, pos;
    json_t      *v, *e;
    const char  *s;

    if (outlen == 0) {
        return -1;
    }

    out[0] = '\0';

    if (claims == NULL || path == NULL) {
        return -1;
    }

    v = ent_sso_claim_find(claims, path, strlen(path));
    if (v == NULL || !(json_is_string(v) || json_is_array(v))) {
        return -1;
    }

    count = 0;
    pos = 0;
    n = json_is_array(v) ? json_array_size(v) : 1;

    for (i = 0; i < n; i++) {
        e = json_is_array(v) ? json_array_get(v, i) : v;

        if (!json_is_string(e)) {
            continue;
        }

        s = json_string_value(e);
        len = json_string_length(e);

        if (!ent_sso_list_ok(s, len)) {
            continue;
        }

        if (len + (pos ? 1 : 0) > outlen - 1 - pos) {
            /* dropped whole; a shorter one later may still fit */
            continue;
        }

        if (pos) {
            out[pos++] = ',';
        }

        memcpy(out + pos, s, len);
        pos += len;
        count++;
    }

    out[pos] = '\0';

    return count;
}


int
ent_email_domain_in(const char *email, const char *list)
{
    size_t       i, dlen, n;
    const char  *at, *d, *p, *comma;
    char         a, b;

    if (email == NULL || list == NULL) {
        return 0;
    }

    at = strchr(email, '@');

    if (at == NULL || at == email || strchr(at + 1, '@') != NULL) {
        return 0;
    }

    d = at + 1;
    dlen = strlen(d);

    if (dlen == 0) {
        return 0;
    }

    for (p = list; ; p = comma + 1) {
        comma = strchr(p, ',');
        n = comma ? (size_t) (comma - p) : strlen(p);

        if (n == dlen) {
            for (i = 0; i < n; i++) {
                a = p[i];
                b = d[i];

                if (a >= 'A' && a <= 'Z') {
                    a |= 0x20;
                }

                if (b >= 'A' && b <= 'Z') {
                    b |= 0x20;
                }

                if (a != b) {
                    break;
                }
            }

            if (i == n) {
                return 1;
            }
        }

        if (comma == NULL) {
            return 0;
        }
    }
}
