/*
 * Unit tests of the SSO module's JOSE code (ngx_ent_jwt.c), printing TAP.
 *
 * Keys are generated here; JWK sets are written as JSON text from their
 * public parts, and tokens are signed both by ent_jwt_sign() and by hand
 * (OpenSSL directly, with this file's own base64url), so that no side only
 * ever checks itself.  One published vector (RFC 7515 A.3) checks the
 * encoding against the rest of the world.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "ngx_ent_jwt.h"
#include "tap.h"


#define NOW        1700000000L
#define ISS        "https://idp.example"
#define ALL_ALGS   0x01ff
#define ARENA_MAX  8192


static void *keep(void *p);
static char *str(const char *fmt, ...);
static char *b64(const void *p, size_t n);
static char *b64s(const char *s);
static unsigned char *unb64(const char *s, size_t len, size_t *n);
static char *jwk(EVP_PKEY *k, const char *kid, const char *extra);
static void ec_coords(EVP_PKEY *k, unsigned char *x, unsigned char *y,
    size_t *n, const char **crv);
static unsigned char *sign_raw(EVP_PKEY *k, const char *alg,
    const char *input, int salt, size_t *siglen);
static char *hand_h(EVP_PKEY *k, const char *alg, const char *header,
    const char *payload);
static char *hand(EVP_PKEY *k, const char *alg, const char *kid,
    const char *payload);
static char *with_sig(const char *tok, const unsigned char *sig, size_t n);
static unsigned char *sig_of(const char *tok, size_t *n);
static char *with_payload(const char *tok, const char *payload);
static char *lib_sign(EVP_PKEY *k, unsigned alg, const char *kid,
    const char *payload);
static int vfy(const char *tok, const ent_jwks_t *set, unsigned allowed);
static int nkeys_of(const char *doc);
static char *claims(void);
static char *sized_token(size_t target);
static int chk(const char *json, const ent_jwt_expect_t *e);
static void test_b64url(void);
static void test_names(void);
static void test_jwks(void);
static void test_verify(void);
static void test_malformed(void);
static void test_sign(void);
static void test_many_keys(void);
static void test_check(void);
static void test_interop(void);


static EVP_PKEY    *rsa, *rsa_small, *ec256, *ec256b, *ec384, *ec521, *ed;
static ent_jwks_t   set;
static void        *arena[ARENA_MAX];
static size_t       narena;
static char         err[128];


static void *
keep(void *p)
{
    if (p == NULL || narena == ARENA_MAX) {
        fprintf(stderr, "test arena: out of memory\n");
        exit(2);
    }

    arena[narena++] = p;

    return p;
}


static char *
str(const char *fmt, ...)
{
    int      n;
    char    *s, one[1];
    va_list  ap;

    if (fmt == NULL) {
        /* never; but gcc's UBSan checks otherwise make a path for it */
        exit(2);
    }

    va_start(ap, fmt);
    n = vsnprintf(one, sizeof(one), fmt, ap);
    va_end(ap);

    s = keep(malloc(n + 1));

    va_start(ap, fmt);
    vsnprintf(s, n + 1, fmt, ap);
    va_end(ap);

    return s;
}


/* OpenSSL's base64, translated: independent of ent_b64url_encode() */

static char *
b64(const void *p, size_t n)
{
    int    len;
    char  *s, *c;

    s = keep(malloc(4 * ((n + 2) / 3) + 1));
    len = EVP_EncodeBlock((unsigned char *) s, p, (int) n);

    while (len > 0 && s[len - 1] == '=') {
        len--;
    }

    s[len] = '\0';

    for (c = s; *c; c++) {
        if (*c == '+') {
            *c = '-';

        } else if (*c == '/') {
            *c = '_';
        }
    }

    return s;
}


static char *
b64s(const char *s)
{
    return b64(s, strlen(s));
}


static unsigned char *
unb64(const char *s, size_t len, size_t *n)
{
    unsigned char  *d;

    d = keep(malloc(len + 1));

    if (ent_b64url_decode(d, n, (const unsigned char *) s, len) != 0) {
        return NULL;
    }

    return d;
}


static void
ec_coords(EVP_PKEY *k, unsigned char *x, unsigned char *y, size_t *n,
    const char **crv)
{
    char     group[64];
    BIGNUM  *bx, *by;

    bx = NULL;
    by = NULL;

    EVP_PKEY_get_group_name(k, group, sizeof(group), NULL);

    if (strcmp(group, "prime256v1") == 0) {
        *crv = "P-256";
        *n = 32;

    } else if (strcmp(group, "secp384r1") == 0) {
        *crv = "P-384";
        *n = 48;

    } else {
        *crv = "P-521";
        *n = 66;
    }

    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &bx);
    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &by);
    BN_bn2binpad(bx, x, (int) *n);
    BN_bn2binpad(by, y, (int) *n);
    BN_free(bx);
    BN_free(by);
}


/* the public JWK of k, as JSON text; extra is appended inside the object */

static char *
jwk(EVP_PKEY *k, const char *kid, const char *extra)
{
    char           *kidm;
    size_t          n, len;
    BIGNUM         *bn, *be;
    const char     *crv;
    unsigned char   x[66], y[66], nb[1024], eb[16];

    kidm = kid ? str("\"kid\":\"%s\",", kid) : "";

    if (EVP_PKEY_is_a(k, "RSA")) {
        bn = NULL;
        be = NULL;
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &bn);
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &be);
        n = BN_bn2bin(bn, nb);
        len = BN_bn2bin(be, eb);
        BN_free(bn);
        BN_free(be);

        return str("{\"kty\":\"RSA\",%s\"n\":\"%s\",\"e\":\"%s\"%s}", kidm,
                   b64(nb, n), b64(eb, len), extra);
    }

    if (EVP_PKEY_is_a(k, "EC")) {
        ec_coords(k, x, y, &n, &crv);

        return str("{\"kty\":\"EC\",%s\"crv\":\"%s\",\"x\":\"%s\","
                   "\"y\":\"%s\"%s}", kidm, crv, b64(x, n), b64(y, n), extra);
    }

    len = sizeof(x);
    EVP_PKEY_get_raw_public_key(k, x, &len);

    return str("{\"kty\":\"OKP\",%s\"crv\":\"Ed25519\",\"x\":\"%s\"%s}", kidm,
               b64(x, len), extra);
}


/*
 * A JWS signature made with OpenSSL directly: salt is the PSS salt length
 * (0: the digest's, as JWA wants).
 */

static unsigned char *
sign_raw(EVP_PKEY *k, const char *alg, const char *input, int salt,
    size_t *siglen)
{
    int                   n;
    size_t                len;
    ECDSA_SIG            *es;
    EVP_MD_CTX           *mctx;
    const EVP_MD         *md;
    const BIGNUM         *r, *s;
    EVP_PKEY_CTX         *pctx;
    unsigned char        *sig, *raw;
    const unsigned char  *p;

    md = NULL;

    if (strcmp(alg, "EdDSA") != 0) {
        md = strstr(alg, "256") ? EVP_sha256()
             : strstr(alg, "384") ? EVP_sha384() : EVP_sha512();
    }

    mctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(mctx, &pctx, md, NULL, k);

    if (alg[0] == 'P') {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
                                         salt ? salt : EVP_MD_get_size(md));
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md);
    }

    len = EVP_PKEY_get_size(k);
    sig = keep(malloc(len));

    if (EVP_DigestSign(mctx, sig, &len, (const unsigned char *) input,
                       strlen(input)) != 1)
    {
        fprintf(stderr, "signing with %s failed\n", alg);
        exit(2);
    }

    EVP_MD_CTX_free(mctx);

    if (alg[0] != 'E' || alg[1] != 'S') {
        *siglen = len;
        return sig;
    }

    n = strstr(alg, "256") ? 32 : 48;
    raw = keep(malloc(2 * n));

    p = sig;
    es = d2i_ECDSA_SIG(NULL, &p, (long) len);
    ECDSA_SIG_get0(es, &r, &s);
    BN_bn2binpad(r, raw, n);
    BN_bn2binpad(s, raw + n, n);
    ECDSA_SIG_free(es);

    *siglen = 2 * n;

    return raw;
}


static char *
hand_h(EVP_PKEY *k, const char *alg, const char *header, const char *payload)
{
    char           *input;
    size_t          n;
    unsigned char  *sig;

    input = str("%s.%s", b64s(header), b64s(payload));
    sig = sign_raw(k, alg, input, 0, &n);

    return str("%s.%s", input, b64(sig, n));
}


static char *
hand(EVP_PKEY *k, const char *alg, const char *kid, const char *payload)
{
    char  *h;

    h = kid ? str("{\"alg\":\"%s\",\"kid\":\"%s\"}", alg, kid)
            : str("{\"alg\":\"%s\"}", alg);

    return hand_h(k, alg, h, payload);
}


static char *
with_sig(const char *tok, const unsigned char *sig, size_t n)
{
    return str("%.*s.%s", (int) (strrchr(tok, '.') - tok), tok, b64(sig, n));
}


static unsigned char *
sig_of(const char *tok, size_t *n)
{
    const char  *s;

    s = strrchr(tok, '.') + 1;

    return unb64(s, strlen(s), n);
}


static char *
with_payload(const char *tok, const char *payload)
{
    const char  *d1, *d2;

    d1 = strchr(tok, '.');
    d2 = strrchr(tok, '.');

    return str("%.*s.%s%s", (int) (d1 - tok), tok, b64s(payload), d2);
}


static char *
lib_sign(EVP_PKEY *k, unsigned alg, const char *kid, const char *payload)
{
    char    *out;
    size_t   n;
    json_t  *c;

    c = json_loads(payload, 0, NULL);

    if (ent_jwt_sign(k, alg, kid, c, &out, &n) != 0) {
        json_decref(c);
        return NULL;
    }

    json_decref(c);

    if (strlen(out) != n) {
        free(out);
        return NULL;
    }

    return keep(out);
}


static int
vfy(const char *tok, const ent_jwks_t *s, unsigned allowed)
{
    int        rc;
    ent_jwt_t  jwt;

    err[0] = '\0';
    rc = ent_jwt_verify((const unsigned char *) tok, strlen(tok), s, allowed,
                        &jwt, err, sizeof(err));
    ent_jwt_free(&jwt);

    return rc;
}


static int
nkeys_of(const char *doc)
{
    int         n;
    ent_jwks_t  s;

    if (ent_jwks_parse((const unsigned char *) doc, strlen(doc), &s, err,
                       sizeof(err))
        != 0)
    {
        ent_jwks_free(&s);
        return -1;
    }

    n = (int) s.nkeys;
    ent_jwks_free(&s);

    return n;
}


static char *
claims(void)
{
    return str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"sub\":\"u1\","
               "\"exp\":%ld,\"iat\":%ld}", NOW + 300, NOW - 10);
}


/* an RS256 token, validly signed, of exactly target bytes (or NULL) */

static char *
sized_token(size_t target)
{
    char    *h, *p, *pad, *c;
    size_t   t, l, hl, pl;

    c = claims();

    for (t = 1; t <= 4; t++) {
        h = str("{\"alg\":\"RS256\",\"kid\":\"rsa\",\"typ\":\"%.*s\"}",
                (int) t, "JWTX");
        hl = ent_b64url_encoded_len(strlen(h));

        for (l = 0; l < ENT_JWT_MAX_LEN; l++) {
            /* {"pad":"<l bytes>", and the claims without their "{" */
            pl = ent_b64url_encoded_len(8 + l + 2 + strlen(c) - 1);

            if (hl + 1 + pl + 1 + 342 != target) {
                continue;
            }

            pad = keep(malloc(l + 1));
            memset(pad, 'x', l);
            pad[l] = '\0';

            p = str("{\"pad\":\"%s\",%s", pad, c + 1);

            return hand_h(rsa, "RS256", h, p);
        }
    }

    return NULL;
}


static int
chk(const char *json, const ent_jwt_expect_t *e)
{
    int      rc;
    json_t  *c;

    c = json_loads(json, 0, NULL);
    if (c == NULL) {
        return -1;
    }

    err[0] = '\0';
    rc = ent_jwt_check(c, e, err, sizeof(err));
    json_decref(c);

    return rc;
}


static void
test_b64url(void)
{
    size_t          n, m, i, len;
    unsigned char   out[400], back[400], in[256];
    static const char  *vec[][2] = {
        { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" }
    };

    for (i = 0; i < 6; i++) {
        n = ent_b64url_encode(out, (const unsigned char *) vec[i][0],
                              strlen(vec[i][0]));
        check(n == strlen(vec[i][1]) && memcmp(out, vec[i][1], n) == 0
              && n == ent_b64url_encoded_len(strlen(vec[i][0])),
              str("b64url encodes \"%s\" (RFC 4648)", vec[i][0]));
    }

    check(ent_b64url_encode(out, (const unsigned char *) "", 0) == 0,
          "b64url encodes nothing to nothing");

    n = ent_b64url_encode(out, (const unsigned char *) "\xfb\xff", 2);
    check(n == 3 && memcmp(out, "-_8", 3) == 0, "b64url alphabet: - and _");

    for (i = 0; i < sizeof(in); i++) {
        in[i] = (unsigned char) (i * 7 + 3);
    }

    for (len = 0; len <= sizeof(in); len++) {
        n = ent_b64url_encode(out, in, len);

        if (n != strlen(b64(in, len)) || memcmp(out, b64(in, len), n) != 0
            || ent_b64url_decode(back, &m, out, n) != 0 || m != len
            || memcmp(back, in, len) != 0)
        {
            break;
        }
    }

    check(len == sizeof(in) + 1,
          "b64url: 0..256 bytes agree with OpenSSL and round-trip");

    check(ent_b64url_decode(out, &n, (const unsigned char *) "", 0) == 0
          && n == 0, "b64url decodes nothing");
    check(ent_b64url_decode(out, &n, (const unsigned char *) "-_8", 3) == 0
          && n == 2 && out[0] == 0xfb && out[1] == 0xff, "b64url decodes -_");
    check(ent_b64url_decode(out, &n, (const unsigned char *) "Zg==", 4) == -1,
          "b64url refuses padding");
    check(ent_b64url_decode(out, &n, (const unsigned char *) "Zm9v YmFy", 9)
          == -1, "b64url refuses a space");
    check(ent_b64url_decode(out, &n, (const unsigned char *) "Zm+v", 4) == -1,
          "b64url refuses +");
    check(ent_b64url_decode(out, &n, (const unsigned char *) "Zm/v", 4) == -1,
          "b64url refuses /");
    check(ent_b64url_decode(out, &n, (const unsigned char *) "Zm9vY", 5) == -1
          && ent_b64url_decode(out, &n, (const unsigned char *) "Zm9vA", 5)
             == -1, "b64url refuses a length of 1 mod 4");
    check(ent_b64url_decode(out, &n, (const unsigned char *) "Zh", 2) == -1
          && ent_b64url_decode(out, &n, (const unsigned char *) "Zm9", 3)
             == -1, "b64url refuses non-zero unused bits");
    check(ent_b64url_decode(out, &n, (const unsigned char *) "Zm\0v", 4) == -1,
          "b64url refuses NUL");

    /* every byte, in a full quad and in a tail: the alphabet and no more */

    for (i = 0; i < 256; i++) {
        unsigned char  quad[8] = "AAAAAAw";
        int            ok, v;

        v = (i >= 'A' && i <= 'Z') ? (int) i - 'A'
            : (i >= 'a' && i <= 'z') ? (int) i - 'a' + 26
            : (i >= '0' && i <= '9') ? (int) i - '0' + 52
            : i == '-' ? 62 : i == '_' ? 63 : -1;
        ok = (v >= 0);

        quad[1] = (unsigned char) i;
        quad[4] = (unsigned char) i;

        if ((ent_b64url_decode(out, &n, quad, 4) == 0) != ok
            || (ent_b64url_decode(out, &n, quad + 3, 2) == 0)
               != (ok && (v & 0x0f) == 0))
        {
            break;
        }
    }

    check(i == 256, "b64url: each of the 256 bytes accepted exactly when "
          "in the alphabet");
}


static void
test_names(void)
{
    unsigned     bit, ok;
    const char  *name;

    ok = 1;

    for (bit = 1; bit <= ENT_JWA_EDDSA; bit <<= 1) {
        name = ent_jwa_name(bit);

        if (name == NULL || ent_jwa_from_name(name) != bit) {
            ok = 0;
        }
    }

    check(ok, "every algorithm's name maps back to its bit");
    check(ent_jwa_from_name("none") == 0 && ent_jwa_from_name("HS256") == 0
          && ent_jwa_from_name("rs256") == 0 && ent_jwa_from_name("") == 0
          && ent_jwa_from_name("ES512") == 0 && ent_jwa_name(0x200) == NULL,
          "none, HS256, rs256, ES512 have no bit");
}


static void
test_jwks(void)
{
    int             rc;
    char           *doc, *bad, *big, *k;
    size_t          n;
    const char     *crv;
    unsigned char   x[66], y[66], nb[1025];

    ec_coords(ec256, x, y, &n, &crv);
    y[n - 1] ^= 1;
    bad = str("{\"kty\":\"EC\",\"kid\":\"ec-bad\",\"crv\":\"P-256\","
              "\"x\":\"%s\",\"y\":\"%s\"}", b64(x, n), b64(y, n));

    doc = str("{\"keys\":[%s,%s,%s,%s,%s,"
              "{\"kty\":\"oct\",\"kid\":\"hmac\",\"k\":\"c2VjcmV0\"},"
              "%s,%s,%s,%s,42,%s]}",
              jwk(rsa, "rsa", ""), jwk(rsa_small, "rsa-small", ""),
              jwk(ec256, "ec256", ",\"use\":\"sig\""), jwk(ec384, "ec384", ""),
              jwk(ed, "ed", ",\"alg\":\"EdDSA\""),
              jwk(rsa, "rsa-enc", ",\"use\":\"enc\""),
              jwk(rsa, "rsa-priv", ",\"d\":\"AQAB\""), bad,
              jwk(rsa, "rsa-rs256", ",\"alg\":\"RS256\""),
              jwk(ec256b, "ec256b", ""));

    rc = ent_jwks_parse((const unsigned char *) doc, strlen(doc), &set, err,
                        sizeof(err));

    check(rc == 0 && set.nkeys == 6, "JWK set: 6 of 12 entries usable");
    check(set.nkeys == 6 && strcmp(set.keys[0].kid, "rsa") == 0
          && strcmp(set.keys[1].kid, "ec256") == 0
          && strcmp(set.keys[2].kid, "ec384") == 0
          && strcmp(set.keys[3].kid, "ed") == 0
          && strcmp(set.keys[4].kid, "rsa-rs256") == 0
          && strcmp(set.keys[5].kid, "ec256b") == 0,
          "JWK set: the usable keys, in order");
    check(set.nkeys == 6 && set.keys[0].algs == 0x3f
          && set.keys[1].algs == ENT_JWA_ES256
          && set.keys[2].algs == ENT_JWA_ES384
          && set.keys[3].algs == ENT_JWA_EDDSA
          && set.keys[4].algs == ENT_JWA_RS256,
          "JWK set: each key's algorithms (RSA narrowed by \"alg\")");

    /* each reason to skip a key, alone, against a control */

    check(nkeys_of(str("{\"keys\":[%s]}", jwk(rsa, "a", ""))) == 1,
          "control: a lone RSA key is kept");
    check(nkeys_of(str("{\"keys\":[%s]}", jwk(rsa_small, "a", ""))) == 0,
          "RSA 1024 skipped");
    check(nkeys_of("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}") == 0,
          "kty oct skipped");
    check(nkeys_of(str("{\"keys\":[%s]}",
                       jwk(rsa, "a", ",\"use\":\"enc\""))) == 0,
          "use enc skipped");
    check(nkeys_of(str("{\"keys\":[%s]}", jwk(rsa, "a", ",\"use\":1"))) == 0,
          "use non-string skipped");
    check(nkeys_of(str("{\"keys\":[%s]}",
                       jwk(rsa, "a", ",\"d\":\"AQAB\",\"p\":\"AQAB\""))) == 0,
          "RSA with private members skipped");
    check(nkeys_of(str("{\"keys\":[%s]}",
                       jwk(ec256, "a", ",\"d\":\"AQAB\""))) == 0,
          "EC with d skipped");
    check(nkeys_of(str("{\"keys\":[%s]}", jwk(ed, "a", ",\"d\":\"AQAB\"")))
          == 0, "OKP with d skipped");
    check(nkeys_of(str("{\"keys\":[%s]}", bad)) == 0,
          "EC point off the curve skipped");
    check(nkeys_of(str("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                       "\"x\":\"%s\",\"y\":\"%s\"}]}",
                       b64(x, n - 1), b64(y, n))) == 0,
          "EC coordinate of 31 bytes skipped");
    check(nkeys_of(str("{\"keys\":[%s]}", jwk(ec521, "a", ""))) == 0,
          "P-521 skipped");
    check(nkeys_of(str("{\"keys\":[%s]}",
                       jwk(ec256, "a", ",\"key_ops\":[\"encrypt\"]"))) == 0
          && nkeys_of(str("{\"keys\":[%s]}",
                          jwk(ec256, "a", ",\"key_ops\":[\"verify\"]"))) == 1,
          "key_ops without verify skipped, with verify kept");
    check(nkeys_of(str("{\"keys\":[%s]}",
                       jwk(rsa, "a", ",\"alg\":\"HS256\""))) == 0
          && nkeys_of(str("{\"keys\":[%s]}",
                          jwk(rsa, "a", ",\"alg\":\"ES256\""))) == 0,
          "RSA key with alg HS256 or ES256 skipped");
    check(nkeys_of("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\","
                   "\"e\":\"AQAB\"}]}") == 0, "tiny RSA modulus skipped");
    check(nkeys_of(str("{\"keys\":[%s]}",
                       jwk(ec256, "a", ",\"key_ops\":\"verify\""))) == 0,
          "key_ops not an array skipped");

    memset(nb, 0xc5, sizeof(nb));
    check(nkeys_of(str("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\","
                       "\"e\":\"AQAB\"}]}", b64(nb, 1024))) == 1
          && nkeys_of(str("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\","
                          "\"e\":\"AQAB\"}]}", b64(nb, 1025))) == 0,
          "RSA modulus of 8192 bits kept, of 8200 skipped");

    k = jwk(rsa, "a", "");
    check(nkeys_of(str("{\"keys\":[%.*s}]}",
                       (int) (strstr(k, ",\"e\":") - k), k)) == 0
          && nkeys_of(str("{\"keys\":[%.*s\"\"}]}",
                          (int) (strstr(k, "\"e\":") + 4 - k), k)) == 0
          && nkeys_of(str("{\"keys\":[%.*s\"AQAB=\"}]}",
                          (int) (strstr(k, "\"e\":") + 4 - k), k)) == 0,
          "RSA without e, with an empty e, with a padded e: skipped");

    k = jwk(rsa, "a", "");
    k = str("%.*s\"AQ\"}", (int) (strstr(k, "\"e\":") + 4 - k), k);
    check(nkeys_of(str("{\"keys\":[%s]}", k)) == 0, "RSA with e = 1 skipped");

    k = keep(malloc(ENT_JWT_KID_LEN + 1));
    memset(k, 'k', ENT_JWT_KID_LEN);
    k[ENT_JWT_KID_LEN] = '\0';
    check(nkeys_of(str("{\"keys\":[%s]}", jwk(ec256, k, ""))) == 0
          && nkeys_of(str("{\"keys\":[%s]}",
                          jwk(ec256, k + 1, ""))) == 1,
          "kid of 128 bytes skipped, of 127 kept");
    check(nkeys_of(str("{\"keys\":[%s]}",
                       jwk(ec256, NULL, ",\"kid\":7"))) == 0,
          "numeric kid skipped");
    check(nkeys_of("{\"keys\":[{\"kty\":\"XYZ\"},{\"kty\":1},{},[],null]}")
          == 0, "unknown kty and non-objects skipped");

    /* documents that are not JWK sets */

    check(nkeys_of("{\"keys\":[]}") == 0, "{\"keys\":[]}: 0 keys");
    check(nkeys_of("") == -1 && err[0] != '\0', "empty document: -1, err set");
    check(nkeys_of("not json") == -1, "garbage: -1");
    check(nkeys_of("[]") == -1 && nkeys_of("{}") == -1
          && nkeys_of("{\"keys\":{}}") == -1
          && nkeys_of("{\"keys\":\"x\"}") == -1, "no keys array: -1");
    check(nkeys_of("{\"keys\":[],\"keys\":[]}") == -1,
          "duplicate member: -1");
    check(nkeys_of(str("{\"keys\":[%s", jwk(rsa, "a", ""))) == -1,
          "truncated document: -1");
    check(nkeys_of("{\"keys\":[]} x") == -1, "trailing garbage: -1");

    big = keep(malloc(ENT_JWKS_MAX_LEN + 1));
    memset(big, ' ', ENT_JWKS_MAX_LEN);
    memcpy(big, "{\"keys\":[]}", 11);
    big[ENT_JWKS_MAX_LEN] = '\0';
    check(nkeys_of(big) == 0, "document of ENT_JWKS_MAX_LEN bytes parsed");
    big = str("%s ", big);
    check(nkeys_of(big) == -1 && strcmp(err, "JWK set too large") == 0,
          "one byte more: -1");
}


static void
test_verify(void)
{
    int             ok;
    char           *t, *pem, *p2, *m;
    size_t          n, len;
    BIO            *bio;
    EVP_PKEY       *key[4];
    ent_jwt_t       jwt;
    ent_jwks_t      one, two, none;
    unsigned char   mac[64], *sig;
    static const char  *algs[] = {
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"
    };
    static const char  *talg[] = { "RS256", "ES384", "EdDSA", "PS512" };
    static const char  *tkid[] = { "rsa", "ec384", "ed", "rsa" };

    /* hand-signed: every algorithm */

    ok = 1;
    for (n = 0; n < 6; n++) {
        t = hand(rsa, algs[n], "rsa", claims());
        if (vfy(t, &set, ALL_ALGS) != ENT_JWT_OK) {
            ok = 0;
        }
    }
    check(ok, "hand-signed RS256/384/512 and PS256/384/512 verify");

    check(vfy(hand(ec256, "ES256", "ec256", claims()), &set, ALL_ALGS)
          == ENT_JWT_OK, "hand-signed ES256 verifies");
    check(vfy(hand(ec384, "ES384", "ec384", claims()), &set, ALL_ALGS)
          == ENT_JWT_OK, "hand-signed ES384 verifies");
    check(vfy(hand(ed, "EdDSA", "ed", claims()), &set, ALL_ALGS)
          == ENT_JWT_OK, "hand-signed EdDSA verifies");
    check(vfy(hand(ec256b, "ES256", "ec256b", claims()), &set,
              ENT_JWA_DEFAULT) == ENT_JWT_OK,
          "second EC key chosen by kid");

    /* signed by ent_jwt_sign(), checked with the claims read back */

    t = lib_sign(rsa, ENT_JWA_RS256, "rsa", claims());
    ent_jwt_verify((const unsigned char *) t, strlen(t), &set, ALL_ALGS, &jwt,
                   err, sizeof(err));
    check(jwt.alg == ENT_JWA_RS256 && strcmp(jwt.kid, "rsa") == 0
          && strcmp(json_string_value(json_object_get(jwt.claims, "sub")),
                    "u1") == 0
          && vfy(t, &set, ALL_ALGS) == ENT_JWT_OK,
          "ent_jwt_sign RS256 verifies, claims read back");
    ent_jwt_free(&jwt);

    check(vfy(lib_sign(rsa, ENT_JWA_PS256, "rsa", claims()), &set, ALL_ALGS)
          == ENT_JWT_OK, "ent_jwt_sign PS256 verifies");
    check(vfy(lib_sign(ec256, ENT_JWA_ES256, "ec256", claims()), &set,
              ALL_ALGS) == ENT_JWT_OK, "ent_jwt_sign ES256 verifies");
    check(vfy(lib_sign(ec384, ENT_JWA_ES384, "ec384", claims()), &set,
              ALL_ALGS) == ENT_JWT_OK, "ent_jwt_sign ES384 verifies");
    check(vfy(lib_sign(ed, ENT_JWA_EDDSA, "ed", claims()), &set, ALL_ALGS)
          == ENT_JWT_OK, "ent_jwt_sign EdDSA verifies");

    /* the allowed set */

    check(vfy(hand(rsa, "PS384", "rsa", claims()), &set, ENT_JWA_DEFAULT)
          == ENT_JWT_ALG, "PS384 is not in the default set");
    check(vfy(hand(rsa, "RS256", "rsa", claims()), &set, ENT_JWA_ES256)
          == ENT_JWT_ALG, "RS256 refused when only ES256 is allowed");
    check(vfy(hand(rsa, "PS256", "rsa-rs256", claims()), &set, ALL_ALGS)
          == ENT_JWT_ALG, "PS256 with a key whose alg is RS256: ALG");

    /* alg none and HMAC, whatever the allowed set */

    t = str("%s.%s.%s", b64s("{\"alg\":\"none\"}"), b64s(claims()), "AAAA");
    check(vfy(t, &set, 0xffffffff) == ENT_JWT_ALG, "alg none: ALG");
    t = str("%s.%s.", b64s("{\"alg\":\"none\"}"), b64s(claims()));
    check(vfy(t, &set, 0xffffffff) == ENT_JWT_MALFORMED,
          "alg none, empty signature: MALFORMED");
    t = str("%s.%s.%s", b64s("{\"alg\":\"None\",\"kid\":\"rsa\"}"),
            b64s(claims()), "AAAA");
    check(vfy(t, &set, 0xffffffff) == ENT_JWT_ALG, "alg None: ALG");

    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, rsa);
    len = BIO_get_mem_data(bio, &m);
    pem = keep(malloc(len + 1));
    memcpy(pem, m, len);
    pem[len] = '\0';
    BIO_free(bio);

    t = str("%s.%s", b64s("{\"alg\":\"HS256\",\"kid\":\"rsa\"}"),
            b64s(claims()));
    EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pem, strlen(pem),
              (unsigned char *) t, strlen(t), mac, sizeof(mac), &n);
    check(vfy(str("%s.%s", t, b64(mac, n)), &set, 0xffffffff) == ENT_JWT_ALG,
          "HS256 keyed with the RSA public key PEM: ALG");

    p2 = jwk(rsa, NULL, "");
    p2 = strstr(p2, "\"n\":\"") + 5;
    *strchr(p2, '"') = '\0';
    EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, p2, strlen(p2),
              (unsigned char *) t, strlen(t), mac, sizeof(mac), &n);
    check(vfy(str("%s.%s", t, b64(mac, n)), &set, 0xffffffff) == ENT_JWT_ALG,
          "HS256 keyed with the JWK n: ALG");

    /* key choice */

    check(vfy(hand(rsa, "RS256", "ec256", claims()), &set, ALL_ALGS)
          == ENT_JWT_ALG, "RS256 header with an EC key's kid: ALG");
    check(vfy(hand(ec256, "ES256", "rsa", claims()), &set, ALL_ALGS)
          == ENT_JWT_ALG, "ES256 header with an RSA key's kid: ALG");
    check(vfy(hand(ec384, "ES384", "ec256", claims()), &set, ALL_ALGS)
          == ENT_JWT_ALG, "ES384 header with a P-256 key's kid: ALG");
    check(vfy(hand(ed, "EdDSA", "rsa", claims()), &set, ALL_ALGS)
          == ENT_JWT_ALG, "EdDSA header with an RSA key's kid: ALG");
    check(vfy(hand(rsa, "RS256", "nope", claims()), &set, ALL_ALGS)
          == ENT_JWT_NO_KEY && strcmp(err, "unknown kid") == 0,
          "unknown kid: NO_KEY");
    check(vfy(hand(rsa_small, "RS256", "rsa-small", claims()), &set, ALL_ALGS)
          == ENT_JWT_NO_KEY, "the skipped 1024-bit key's kid: NO_KEY");
    check(vfy(hand(rsa, "RS256", NULL, claims()), &set, ALL_ALGS)
          == ENT_JWT_NO_KEY, "no kid, six keys: NO_KEY");

    t = str("{\"keys\":[%s]}", jwk(rsa, "only", ""));
    ent_jwks_parse((const unsigned char *) t, strlen(t), &one, err,
                   sizeof(err));
    t = str("{\"keys\":[%s,%s]}", jwk(rsa, NULL, ""), jwk(ec256, NULL, ""));
    ent_jwks_parse((const unsigned char *) t, strlen(t), &two, err,
                   sizeof(err));
    ent_jwks_parse((const unsigned char *) "{\"keys\":[]}", 11, &none, err,
                   sizeof(err));

    check(vfy(hand(rsa, "RS256", NULL, claims()), &one, ALL_ALGS)
          == ENT_JWT_OK, "no kid, one key: OK");
    check(vfy(hand(ec256, "ES256", NULL, claims()), &one, ALL_ALGS)
          == ENT_JWT_ALG, "no kid, one key of another family: ALG");
    check(vfy(hand(rsa, "RS256", NULL, claims()), &two, ALL_ALGS)
          == ENT_JWT_NO_KEY, "no kid, two keys: NO_KEY");
    check(vfy(hand(rsa, "RS256", NULL, claims()), &none, ALL_ALGS)
          == ENT_JWT_NO_KEY
          && vfy(hand(rsa, "RS256", "rsa", claims()), &none, ALL_ALGS)
             == ENT_JWT_NO_KEY, "empty set: NO_KEY");
    check(vfy(hand(rsa, "RS256", "rsa", claims()), NULL, ALL_ALGS)
          == ENT_JWT_NO_KEY, "no set at all: NO_KEY");
    check(vfy(hand_h(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"\"}",
                     claims()), &one, ALL_ALGS) == ENT_JWT_OK,
          "empty kid is no kid");

    ent_jwks_free(&one);
    ent_jwks_free(&two);
    ent_jwks_free(&none);

    /* tampering */

    check(vfy(with_payload(hand(rsa, "RS256", "rsa", claims()),
                           "{\"iss\":\"" ISS "\",\"sub\":\"admin\"}"),
              &set, ALL_ALGS) == ENT_JWT_SIGNATURE,
          "RS256, payload replaced: SIGNATURE");
    check(vfy(with_payload(hand(rsa, "PS256", "rsa", claims()),
                           "{\"sub\":\"admin\"}"), &set, ALL_ALGS)
          == ENT_JWT_SIGNATURE, "PS256, payload replaced: SIGNATURE");
    check(vfy(with_payload(hand(ec256, "ES256", "ec256", claims()),
                           "{\"sub\":\"admin\"}"), &set, ALL_ALGS)
          == ENT_JWT_SIGNATURE, "ES256, payload replaced: SIGNATURE");
    check(vfy(with_payload(hand(ed, "EdDSA", "ed", claims()),
                           "{\"sub\":\"admin\"}"), &set, ALL_ALGS)
          == ENT_JWT_SIGNATURE, "EdDSA, payload replaced: SIGNATURE");

    key[0] = rsa;
    key[1] = ec384;
    key[2] = ed;
    key[3] = rsa;

    ok = 1;
    for (n = 0; n < 4; n++) {
        t = hand(key[n], talg[n], tkid[n], claims());
        sig = sig_of(t, &len);
        sig[len / 2] ^= 0x10;

        if (vfy(with_sig(t, sig, len), &set, ALL_ALGS) != ENT_JWT_SIGNATURE) {
            ok = 0;
        }
    }
    check(ok, "a bit flipped in RS256/ES384/EdDSA/PS512 signatures: "
          "SIGNATURE");

    t = hand(ec256, "ES256", "ec256", claims());
    sig = sig_of(t, &len);
    check(len == 64 && vfy(with_sig(t, sig, 63), &set, ALL_ALGS)
                       == ENT_JWT_SIGNATURE,
          "ES256 signature of 63 bytes: SIGNATURE");
    sig[64] = 0;    /* unb64() left room */
    check(vfy(with_sig(t, sig, 65), &set, ALL_ALGS) == ENT_JWT_SIGNATURE,
          "ES256 signature of 65 bytes: SIGNATURE");
    check(vfy(with_sig(t, sig, 48), &set, ALL_ALGS) == ENT_JWT_SIGNATURE
          && vfy(with_sig(hand(ec384, "ES384", "ec384", claims()), sig, 64),
                 &set, ALL_ALGS) == ENT_JWT_SIGNATURE,
          "ES256 of 48 bytes, ES384 of 64 bytes: SIGNATURE");

    memset(mac, 0, 64);
    check(vfy(with_sig(t, mac, 64), &set, ALL_ALGS) == ENT_JWT_SIGNATURE,
          "ES256 with r = s = 0: SIGNATURE");

    /* a DER signature where JWS wants r || s */
    {
        EVP_MD_CTX     *mctx;
        unsigned char   der[80];
        const char     *input;

        input = str("%.*s", (int) (strrchr(t, '.') - t), t);
        mctx = EVP_MD_CTX_new();
        EVP_DigestSignInit(mctx, NULL, EVP_sha256(), NULL, ec256);
        len = sizeof(der);
        EVP_DigestSign(mctx, der, &len, (const unsigned char *) input,
                       strlen(input));
        EVP_MD_CTX_free(mctx);

        check(vfy(with_sig(t, der, len), &set, ALL_ALGS)
              == ENT_JWT_SIGNATURE, "ES256 with a DER signature: SIGNATURE");
    }

    t = hand(ed, "EdDSA", "ed", claims());
    sig = sig_of(t, &len);
    check(len == 64 && vfy(with_sig(t, sig, 63), &set, ALL_ALGS)
                       == ENT_JWT_SIGNATURE
          && vfy(with_sig(t, sig, 65), &set, ALL_ALGS) == ENT_JWT_SIGNATURE,
          "EdDSA signature of 63 or 65 bytes: SIGNATURE");

    t = hand(rsa, "RS256", "rsa", claims());
    sig = sig_of(t, &len);
    check(vfy(with_sig(t, sig, len - 1), &set, ALL_ALGS) == ENT_JWT_SIGNATURE,
          "RS256 signature one byte short: SIGNATURE");

    {
        const char     *input;
        unsigned char  *s;

        t = hand(rsa, "PS256", "rsa", claims());
        input = str("%.*s", (int) (strrchr(t, '.') - t), t);
        s = sign_raw(rsa, "PS256", input, 20, &len);
        check(vfy(with_sig(t, s, len), &set, ALL_ALGS) == ENT_JWT_SIGNATURE,
              "PS256 with a 20-byte salt: SIGNATURE");
    }

    check(vfy(hand(rsa, "RS256", "rsa", claims()), &set, ALL_ALGS)
          == ENT_JWT_OK, "control: RS256 still verifies");

    /* what the caller gets on failure */

    t = with_payload(hand(rsa, "RS256", "rsa", claims()), "{\"sub\":\"x\"}");
    check(ent_jwt_verify((const unsigned char *) t, strlen(t), &set, ALL_ALGS,
                         &jwt, err, sizeof(err)) == ENT_JWT_SIGNATURE
          && jwt.claims != NULL && jwt.header != NULL
          && strcmp(err, "bad signature") == 0,
          "on SIGNATURE, header and claims are there to free");
    ent_jwt_free(&jwt);
    check(jwt.claims == NULL && jwt.header == NULL, "ent_jwt_free zeroes");
    ent_jwt_free(&jwt);
    ent_jwt_free(NULL);

    check(ent_jwt_verify((const unsigned char *) t, strlen(t), &set,
                         ALL_ALGS, &jwt, NULL, 0) == ENT_JWT_SIGNATURE,
          "no err buffer: fine");
    ent_jwt_free(&jwt);

    t = hand(rsa, "RS256", "nope", claims());
    check(ent_jwt_verify((const unsigned char *) t, strlen(t), &set,
                         ALL_ALGS, &jwt, err, 5) == ENT_JWT_NO_KEY
          && strcmp(err, "unkn") == 0, "err is truncated to its buffer");
    ent_jwt_free(&jwt);
}


static void
test_malformed(void)
{
    char        *t, *good, *h, *p, *s, *big;
    size_t       i;
    ent_jwt_t    jwt;
    static const char  *forbidden[] = { "crit", "jku", "jwk", "x5u", "x5c" };

    good = hand(rsa, "RS256", "rsa", claims());
    h = str("%.*s", (int) (strchr(good, '.') - good), good);
    p = str("%.*s", (int) (strrchr(good, '.') - strchr(good, '.') - 1),
            strchr(good, '.') + 1);
    s = strrchr(good, '.') + 1;

    check(vfy(str("%s.%s", h, p), &set, ALL_ALGS) == ENT_JWT_MALFORMED,
          "two segments");
    check(vfy(str("%s.%s.%s.%s", h, p, s, s), &set, ALL_ALGS)
          == ENT_JWT_MALFORMED && strcmp(err, "not a compact JWS") == 0,
          "four segments");
    check(vfy(str("%s.%s.%s.%s.%s", h, p, s, s, s), &set, ALL_ALGS)
          == ENT_JWT_MALFORMED, "five segments (JWE shape)");
    check(vfy(str(".%s.%s", p, s), &set, ALL_ALGS) == ENT_JWT_MALFORMED
          && vfy(str("%s..%s", h, s), &set, ALL_ALGS) == ENT_JWT_MALFORMED
          && vfy(str("%s.%s.", h, p), &set, ALL_ALGS) == ENT_JWT_MALFORMED
          && vfy("..", &set, ALL_ALGS) == ENT_JWT_MALFORMED,
          "empty segments");
    check(vfy("", &set, ALL_ALGS) == ENT_JWT_MALFORMED
          && ent_jwt_verify(NULL, 0, &set, ALL_ALGS, &jwt, err, sizeof(err))
             == ENT_JWT_MALFORMED, "empty token");
    ent_jwt_free(&jwt);

    check(vfy(str("%s=.%s.%s", h, p, s), &set, ALL_ALGS) == ENT_JWT_MALFORMED
          && vfy(str("%s.%s=.%s", h, p, s), &set, ALL_ALGS)
             == ENT_JWT_MALFORMED
          && vfy(str("%s.%s.%s==", h, p, s), &set, ALL_ALGS)
             == ENT_JWT_MALFORMED, "padding '=' in any segment");
    check(vfy(str("%s.%s+.%s", h, p, s), &set, ALL_ALGS) == ENT_JWT_MALFORMED
          && vfy(str("%s.%s.%s/", h, p, s), &set, ALL_ALGS)
             == ENT_JWT_MALFORMED, "standard base64 characters");
    check(vfy(str(" %s", good), &set, ALL_ALGS) == ENT_JWT_MALFORMED
          && vfy(str("%s\n", good), &set, ALL_ALGS) == ENT_JWT_MALFORMED
          && vfy(str("%s. %s.%s", h, p, s), &set, ALL_ALGS)
             == ENT_JWT_MALFORMED, "whitespace");
    check(vfy(str("%s.%s.%s", h, p, s), &set, ALL_ALGS) == ENT_JWT_OK,
          "control: the parts put back together verify");

    check(vfy(hand_h(rsa, "RS256", "[\"RS256\"]", claims()), &set, ALL_ALGS)
          == ENT_JWT_MALFORMED
          && vfy(hand_h(rsa, "RS256", "\"RS256\"", claims()), &set, ALL_ALGS)
             == ENT_JWT_MALFORMED
          && vfy(hand_h(rsa, "RS256", "1", claims()), &set, ALL_ALGS)
             == ENT_JWT_MALFORMED, "header not an object");
    check(vfy(hand(rsa, "RS256", "rsa", "[1,2]"), &set, ALL_ALGS)
          == ENT_JWT_MALFORMED
          && vfy(hand(rsa, "RS256", "rsa", "\"x\""), &set, ALL_ALGS)
             == ENT_JWT_MALFORMED
          && vfy(hand(rsa, "RS256", "rsa", "null"), &set, ALL_ALGS)
             == ENT_JWT_MALFORMED, "payload not an object");
    check(vfy(hand(rsa, "RS256", "rsa", "{\"sub\":\"u\"} x"), &set, ALL_ALGS)
          == ENT_JWT_MALFORMED
          && vfy(hand(rsa, "RS256", "rsa", "{\"sub\":"), &set, ALL_ALGS)
             == ENT_JWT_MALFORMED, "payload not JSON");
    check(vfy(hand_h(rsa, "RS256", "{\"alg\":256,\"kid\":\"rsa\"}", claims()),
              &set, ALL_ALGS) == ENT_JWT_MALFORMED
          && vfy(hand_h(rsa, "RS256", "{\"alg\":[\"RS256\"],\"kid\":\"rsa\"}",
                        claims()), &set, ALL_ALGS) == ENT_JWT_MALFORMED
          && vfy(hand_h(rsa, "RS256", "{\"kid\":\"rsa\"}", claims()), &set,
                 ALL_ALGS) == ENT_JWT_MALFORMED,
          "alg not a string, or absent");
    check(vfy(hand_h(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa\","
                     "\"typ\":1}", claims()), &set, ALL_ALGS)
          == ENT_JWT_MALFORMED
          && vfy(hand_h(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa\","
                        "\"typ\":\"at+jwt\"}", claims()), &set, ALL_ALGS)
             == ENT_JWT_OK, "typ a number refused, a string accepted");
    check(vfy(hand_h(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":1}", claims()),
              &set, ALL_ALGS) == ENT_JWT_MALFORMED, "kid not a string");
    check(vfy(hand_h(rsa, "RS256",
                     "{\"alg\":\"RS256\",\"alg\":\"none\",\"kid\":\"rsa\"}",
                     claims()), &set, ALL_ALGS) == ENT_JWT_MALFORMED,
          "duplicate alg in header");
    check(vfy(hand(rsa, "RS256", "rsa",
                   "{\"iss\":\"" ISS "\",\"sub\":\"u1\",\"sub\":\"admin\"}"),
              &set, ALL_ALGS) == ENT_JWT_MALFORMED,
          "duplicate sub in payload");
    check(vfy(hand(rsa, "RS256", "rsa", "{\"o\":{\"a\":1,\"a\":2}}"), &set,
              ALL_ALGS) == ENT_JWT_MALFORMED,
          "duplicate member in a nested object");
    check(vfy(hand_h(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"r\xffsa\"}",
                     claims()), &set, ALL_ALGS) == ENT_JWT_MALFORMED,
          "invalid UTF-8 in header");
    check(vfy(hand(rsa, "RS256", "rsa", "{\"sub\":\"a\\u0000b\"}"), &set,
              ALL_ALGS) == ENT_JWT_MALFORMED, "\\u0000 in payload");

    for (i = 0; i < 5; i++) {
        t = hand_h(rsa, "RS256",
                   str("{\"alg\":\"RS256\",\"kid\":\"rsa\",\"%s\":%s}",
                       forbidden[i], i == 0 ? "[\"exp\"]"
                                            : i == 2 ? "{}"
                                                     : "\"https://x/\""),
                   claims());
        check(vfy(t, &set, ALL_ALGS) == ENT_JWT_MALFORMED,
              str("header with \"%s\": MALFORMED", forbidden[i]));
    }

    big = keep(malloc(ENT_JWT_KID_LEN + 1));
    memset(big, 'k', ENT_JWT_KID_LEN);
    big[ENT_JWT_KID_LEN] = '\0';
    check(vfy(hand(rsa, "RS256", big, claims()), &set, ALL_ALGS)
          == ENT_JWT_MALFORMED
          && vfy(hand(rsa, "RS256", big + 1, claims()), &set, ALL_ALGS)
             == ENT_JWT_NO_KEY, "kid of 128 bytes: MALFORMED; 127: NO_KEY");

    t = sized_token(ENT_JWT_MAX_LEN);
    check(t && strlen(t) == ENT_JWT_MAX_LEN
          && vfy(t, &set, ALL_ALGS) == ENT_JWT_OK,
          "a token of ENT_JWT_MAX_LEN bytes verifies");
    t = sized_token(ENT_JWT_MAX_LEN + 1);
    if (t == NULL) {
        t = sized_token(ENT_JWT_MAX_LEN + 2);
    }
    check(t && strlen(t) > ENT_JWT_MAX_LEN
          && vfy(t, &set, ALL_ALGS) == ENT_JWT_MALFORMED
          && strcmp(err, "token too long") == 0,
          "a valid token one byte longer: MALFORMED");

    /* decode: no verification, for routing */

    t = str("%s.%s.%s", b64s("{\"alg\":\"none\",\"kid\":\"k1\"}"),
            b64s(claims()), "AAAA");
    check(ent_jwt_decode((const unsigned char *) t, strlen(t), &jwt, err,
                         sizeof(err)) == ENT_JWT_OK
          && jwt.alg == 0 && strcmp(jwt.kid, "k1") == 0
          && strcmp(json_string_value(json_object_get(jwt.claims, "iss")),
                    ISS) == 0, "decode reads kid and iss, whatever alg");
    ent_jwt_free(&jwt);

    t = str("%s.%s.AAAA", h, p);
    check(ent_jwt_decode((const unsigned char *) t, strlen(t), &jwt, err,
                         sizeof(err)) == ENT_JWT_OK
          && jwt.alg == ENT_JWA_RS256,
          "decode does not verify (a bogus signature)");
    ent_jwt_free(&jwt);

    t = str("%s.%s.%s", h, b64s("[]"), s);
    check(ent_jwt_decode((const unsigned char *) t, strlen(t), &jwt, err,
                         sizeof(err)) == ENT_JWT_MALFORMED
          && jwt.header != NULL && jwt.claims == NULL && err[0] != '\0',
          "decode fills as far as it got");
    ent_jwt_free(&jwt);
}


static void
test_sign(void)
{
    int             ok;
    char           *t;
    size_t          i, n;
    json_t         *c;
    EVP_PKEY       *k;
    ent_jwt_t       jwt;
    unsigned char  *sig;

    check(lib_sign(rsa, ENT_JWA_ES256, "k", claims()) == NULL
          && lib_sign(ec256, ENT_JWA_RS256, "k", claims()) == NULL
          && lib_sign(ec256, ENT_JWA_ES384, "k", claims()) == NULL
          && lib_sign(ed, ENT_JWA_ES256, "k", claims()) == NULL,
          "sign refuses an algorithm the key does not fit");
    check(lib_sign(rsa, ENT_JWA_RS512, "k", claims()) == NULL
          && lib_sign(rsa, 0x200, "k", claims()) == NULL,
          "sign refuses RS512 and unknown bits");
    check(lib_sign(rsa_small, ENT_JWA_RS256, "k", claims()) == NULL,
          "sign refuses RSA 1024");
    check(lib_sign(ec521, 0, "k", claims()) == NULL, "sign refuses P-521");

    k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    check(k && lib_sign(k, 0, "k", claims()) == NULL
          && lib_sign(k, ENT_JWA_EDDSA, "k", claims()) == NULL,
          "sign refuses an X25519 key");
    EVP_PKEY_free(k);
    check(ent_jwt_sign(NULL, 0, "k", NULL, &t, &n) == -1
          && ent_jwt_sign(ed, 0, "k", NULL, NULL, NULL) == -1,
          "sign refuses NULL key, claims, out");
    check(lib_sign(set.keys[0].pkey, ENT_JWA_RS256, "k", claims()) == NULL,
          "sign refuses a public key");

    c = json_array();
    check(ent_jwt_sign(rsa, ENT_JWA_RS256, "k", c, &t, &n) == -1 && t == NULL,
          "sign refuses claims that are not an object");
    json_decref(c);

    t = lib_sign(ec384, 0, NULL, claims());
    check(t && ent_jwt_decode((const unsigned char *) t, strlen(t), &jwt, err,
                              sizeof(err)) == ENT_JWT_OK
          && jwt.alg == ENT_JWA_ES384 && jwt.kid[0] == '\0'
          && json_object_get(jwt.header, "kid") == NULL
          && strcmp(json_string_value(json_object_get(jwt.header, "typ")),
                    "JWT") == 0, "alg 0 on P-384: ES384, no kid, typ JWT");
    ent_jwt_free(&jwt);

    check(lib_sign(rsa, 0, NULL, claims()) && lib_sign(ed, 0, NULL, claims()),
          "alg 0 on RSA and Ed25519");

    t = lib_sign(ed, ENT_JWA_EDDSA, "a\"b\\c", claims());
    check(t && ent_jwt_decode((const unsigned char *) t, strlen(t), &jwt, err,
                              sizeof(err)) == ENT_JWT_OK
          && strcmp(jwt.kid, "a\"b\\c") == 0, "kid is escaped in the header");
    ent_jwt_free(&jwt);

    /* r or s with a leading zero byte comes up about once in 128 */

    ok = 1;
    for (i = 0; i < 400 && ok; i++) {
        t = lib_sign(ec256, ENT_JWA_ES256, "ec256", claims());
        if (t == NULL) {
            ok = 0;
            break;
        }

        sig = sig_of(t, &n);

        if (n != 64 || vfy(t, &set, ENT_JWA_ES256) != ENT_JWT_OK) {
            ok = 0;
        }

        free(arena[--narena]);   /* sig_of */
        free(arena[--narena]);   /* the token */
        (void) sig;
    }
    check(ok, "400 ES256 signatures: 64 bytes each, all verify");

    t = lib_sign(rsa, ENT_JWA_PS256, "rsa", claims());
    sig = sig_of(t, &n);
    check(n == 256, "PS256 signature is 256 bytes");
}


static void
test_many_keys(void)
{
    int          rc;
    char        *doc, *t;
    size_t       i;
    ent_jwks_t   many;

    doc = str("{\"keys\":[%s", jwk(ec256, "k0", ""));
    for (i = 1; i < 40; i++) {
        doc = str("%s,%s", doc, jwk(ec256, str("k%zu", i), ""));
    }
    doc = str("%s]}", doc);

    rc = ent_jwks_parse((const unsigned char *) doc, strlen(doc), &many, err,
                        sizeof(err));
    check(rc == 0 && many.nkeys == ENT_JWKS_MAX_KEYS,
          "40 keys: the first ENT_JWKS_MAX_KEYS kept");

    t = hand(ec256, "ES256", "k0", claims());
    check(vfy(t, &many, ALL_ALGS) == ENT_JWT_OK, "first key verifies");
    t = hand(ec256, "ES256", "k31", claims());
    check(vfy(t, &many, ALL_ALGS) == ENT_JWT_OK, "32nd key verifies");
    t = hand(ec256, "ES256", "k32", claims());
    check(vfy(t, &many, ALL_ALGS) == ENT_JWT_NO_KEY, "33rd key: NO_KEY");

    ent_jwks_free(&many);
    check(many.nkeys == 0 && many.keys[0].pkey == NULL,
          "ent_jwks_free zeroes");
    ent_jwks_free(&many);
}


static void
test_check(void)
{
    char              *c;
    ent_jwt_expect_t   e, z;

    memset(&e, 0, sizeof(e));
    e.iss = ISS;
    e.aud = "client";
    e.now = NOW;
    e.skew = 60;
    e.require_exp = 1;

    c = str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
            "\"iat\":%ld,\"nbf\":%ld,\"sub\":\"u\"}", NOW + 300, NOW - 10,
            NOW - 10);
    check(chk(c, &e) == ENT_JWT_OK, "claims: the base case passes");

    check(chk(str("{\"iss\":\"https://evil\",\"aud\":\"client\",\"exp\":%ld}",
                  NOW + 300), &e) == ENT_JWT_CLAIMS
          && strcmp(err, "wrong issuer") == 0, "wrong iss");
    check(chk(str("{\"iss\":\"" ISS "/\",\"aud\":\"client\",\"exp\":%ld}",
                  NOW + 300), &e) == ENT_JWT_CLAIMS
          && chk(str("{\"iss\":\"https://idp.exampl\",\"aud\":\"client\","
                     "\"exp\":%ld}", NOW + 300), &e) == ENT_JWT_CLAIMS,
          "iss with a byte more or less");
    check(chk(str("{\"aud\":\"client\",\"exp\":%ld}", NOW + 300), &e)
          == ENT_JWT_CLAIMS
          && chk(str("{\"iss\":[\"" ISS "\"],\"aud\":\"client\",\"exp\":%ld}",
                     NOW + 300), &e) == ENT_JWT_CLAIMS,
          "iss absent or not a string");

    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"other\",\"exp\":%ld}",
                  NOW + 300), &e) == ENT_JWT_CLAIMS
          && strcmp(err, "wrong audience") == 0, "aud string, wrong");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":[\"client\"],\"exp\":%ld}",
                  NOW + 300), &e) == ENT_JWT_OK, "aud array of one");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":[\"a\",\"client\"],"
                  "\"exp\":%ld}", NOW + 300), &e) == ENT_JWT_OK,
          "aud array containing ours, azp not expected");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":[\"a\",\"b\"],\"exp\":%ld}",
                  NOW + 300), &e) == ENT_JWT_CLAIMS, "aud array without ours");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":[],\"exp\":%ld}", NOW + 300),
              &e) == ENT_JWT_CLAIMS
          && chk(str("{\"iss\":\"" ISS "\",\"aud\":7,\"exp\":%ld}",
                     NOW + 300), &e) == ENT_JWT_CLAIMS
          && chk(str("{\"iss\":\"" ISS "\",\"exp\":%ld}", NOW + 300), &e)
             == ENT_JWT_CLAIMS,
          "aud empty, a number or absent");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":[\"client\",1],"
                  "\"exp\":%ld}", NOW + 300), &e) == ENT_JWT_CLAIMS,
          "aud array with a non-string");

    z = e;
    z.azp = "client";
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":[\"a\",\"client\"],"
                  "\"exp\":%ld}", NOW + 300), &z) == ENT_JWT_CLAIMS,
          "several aud, no azp, azp expected");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":[\"a\",\"client\"],"
                  "\"azp\":\"client\",\"exp\":%ld}", NOW + 300), &z)
          == ENT_JWT_OK, "several aud, azp ours");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":[\"a\",\"client\"],"
                  "\"azp\":\"a\",\"exp\":%ld}", NOW + 300), &z)
          == ENT_JWT_CLAIMS
          && chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\","
                     "\"azp\":\"a\",\"exp\":%ld}", NOW + 300), &z)
             == ENT_JWT_CLAIMS, "azp not ours");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":[\"client\"],\"exp\":%ld}",
                  NOW + 300), &z) == ENT_JWT_OK,
          "one aud in an array, no azp: fine");

    /* exp: valid while now - skew < exp */

    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld}",
                  NOW - 60 + 1), &e) == ENT_JWT_OK,
          "exp = now - skew + 1: valid");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld}",
                  NOW - 60), &e) == ENT_JWT_CLAIMS
          && strcmp(err, "token expired") == 0,
          "exp = now - skew: expired");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld.5}",
                  NOW - 61), &e) == ENT_JWT_CLAIMS
          && chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld.5}",
                     NOW - 60), &e) == ENT_JWT_OK,
          "fractional exp on both sides of the edge");
    z = e;
    z.skew = 0;
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld}",
                  NOW), &z) == ENT_JWT_CLAIMS
          && chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld}",
                     NOW + 1), &z) == ENT_JWT_OK,
          "no skew: exp = now expired, now + 1 valid");
    z.skew = -100;
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld}",
                  NOW + 1), &z) == ENT_JWT_OK, "a negative skew counts as 0");

    check(chk("{\"iss\":\"" ISS "\",\"aud\":\"client\"}", &e)
          == ENT_JWT_CLAIMS && strcmp(err, "no exp") == 0,
          "exp required and absent");
    z = e;
    z.require_exp = 0;
    check(chk("{\"iss\":\"" ISS "\",\"aud\":\"client\"}", &z) == ENT_JWT_OK,
          "exp not required and absent");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":\"%ld\"}",
                  NOW + 300), &z) == ENT_JWT_CLAIMS
          && strcmp(err, "exp is not a number") == 0, "exp as a string");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                  "\"nbf\":true}", NOW + 300), &e) == ENT_JWT_CLAIMS
          && chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                     "\"iat\":null}", NOW + 300), &e) == ENT_JWT_CLAIMS,
          "nbf a boolean, iat null");

    /* nbf: valid once now + skew >= nbf */

    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                  "\"nbf\":%ld}", NOW + 300, NOW + 60), &e) == ENT_JWT_OK,
          "nbf = now + skew: valid");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                  "\"nbf\":%ld}", NOW + 300, NOW + 61), &e) == ENT_JWT_CLAIMS
          && strcmp(err, "token not yet valid") == 0,
          "nbf = now + skew + 1: not yet valid");

    /* iat */

    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                  "\"iat\":%ld}", NOW + 300, NOW + 60), &e) == ENT_JWT_OK,
          "iat = now + skew: valid");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                  "\"iat\":%ld}", NOW + 300, NOW + 61), &e) == ENT_JWT_CLAIMS
          && strcmp(err, "token issued in the future") == 0,
          "iat = now + skew + 1: in the future");

    z = e;
    z.max_age = 3600;
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                  "\"iat\":%ld}", NOW + 300, NOW - 3600 - 60), &z)
          == ENT_JWT_OK, "iat = now - max_age - skew: valid");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                  "\"iat\":%ld}", NOW + 300, NOW - 3600 - 61), &z)
          == ENT_JWT_CLAIMS && strcmp(err, "token too old") == 0,
          "iat one second older: too old");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld}",
                  NOW + 300), &z) == ENT_JWT_CLAIMS,
          "max_age and no iat");
    z = e;
    z.require_iat = 1;
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld}",
                  NOW + 300), &z) == ENT_JWT_CLAIMS
          && strcmp(err, "no iat") == 0, "iat required and absent");

    /* nonce */

    z = e;
    z.nonce = "n-123";
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                  "\"nonce\":\"n-123\"}", NOW + 300), &z) == ENT_JWT_OK,
          "nonce matches");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                  "\"nonce\":\"n-124\"}", NOW + 300), &z) == ENT_JWT_CLAIMS
          && strcmp(err, "wrong nonce") == 0, "wrong nonce");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                  "\"nonce\":\"n-1234\"}", NOW + 300), &z) == ENT_JWT_CLAIMS
          && chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld}",
                     NOW + 300), &z) == ENT_JWT_CLAIMS
          && chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                     "\"nonce\":1}", NOW + 300), &z) == ENT_JWT_CLAIMS,
          "nonce longer, absent or a number");
    check(chk(str("{\"iss\":\"" ISS "\",\"aud\":\"client\",\"exp\":%ld,"
                  "\"nonce\":\"x\"}", NOW + 300), &e) == ENT_JWT_OK,
          "a nonce nobody expects is ignored");

    /* misuse */

    check(chk("[1]", &e) == ENT_JWT_CLAIMS, "claims not an object");
    z = e;
    z.iss = NULL;
    check(chk(c, &z) == ENT_JWT_INTERNAL, "no issuer to expect: INTERNAL");
}


static void
test_interop(void)
{
    int             rc;
    char           *doc;
    size_t          n;
    EVP_PKEY       *k;
    ent_jwt_t       jwt;
    ent_jwks_t      s;
    unsigned char  *d, raw[32];

    /* RFC 7515, A.3: an ES256 JWS from the specification itself */

    static const char  tok[] =
        "eyJhbGciOiJFUzI1NiJ9"
        ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
        "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSA"
        "pmWQxfKTUJqPP3-Kg6NU1Q";

    doc = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
          "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
          "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";

    ent_jwks_parse((const unsigned char *) doc, strlen(doc), &s, err,
                   sizeof(err));

    rc = ent_jwt_verify((const unsigned char *) tok, strlen(tok), &s,
                        ENT_JWA_DEFAULT, &jwt, err, sizeof(err));
    check(rc == ENT_JWT_OK
          && strcmp(json_string_value(json_object_get(jwt.claims, "iss")),
                    "joe") == 0
          && json_integer_value(json_object_get(jwt.claims, "exp"))
             == 1300819380, "RFC 7515 A.3 ES256 example verifies");
    ent_jwt_free(&jwt);

    check(vfy(str("%.*sA", (int) strlen(tok) - 1, tok), &s, ENT_JWA_DEFAULT)
          == ENT_JWT_SIGNATURE,
          "RFC 7515 A.3, last character changed: SIGNATURE");
    ent_jwks_free(&s);

    /* RFC 8037, A.1 and A.2: the Ed25519 key pair */

    d = unb64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A", 43, &n);
    k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, n);
    n = sizeof(raw);
    EVP_PKEY_get_raw_public_key(k, raw, &n);
    check(strcmp(b64(raw, n), "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
          == 0, "RFC 8037 Ed25519 key: the published public half");

    doc = "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
          "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";

    ent_jwks_parse((const unsigned char *) doc, strlen(doc), &s, err,
                   sizeof(err));
    check(vfy(lib_sign(k, 0, NULL, claims()), &s, ENT_JWA_EDDSA)
          == ENT_JWT_OK, "RFC 8037 Ed25519 key: signs, and verifies");

    ent_jwks_free(&s);
    EVP_PKEY_free(k);
}


int
main(void)
{
    int     rc;
    size_t  i;

    rsa = EVP_RSA_gen(2048);
    rsa_small = EVP_RSA_gen(1024);
    ec256 = EVP_EC_gen("P-256");
    ec256b = EVP_EC_gen("P-256");
    ec384 = EVP_EC_gen("P-384");
    ec521 = EVP_EC_gen("P-521");
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

    if (!rsa || !rsa_small || !ec256 || !ec256b || !ec384 || !ec521 || !ed) {
        fprintf(stderr, "key generation failed\n");
        return 2;
    }

    test_b64url();
    test_names();
    test_jwks();
    test_verify();
    test_malformed();
    test_sign();
    test_many_keys();
    test_check();
    test_interop();

    ent_jwks_free(&set);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa_small);
    EVP_PKEY_free(ec256);
    EVP_PKEY_free(ec256b);
    EVP_PKEY_free(ec384);
    EVP_PKEY_free(ec521);
    EVP_PKEY_free(ed);

    rc = tap_done();

    for (i = 0; i < narena; i++) {
        free(arena[i]);
    }

    return rc;
}
