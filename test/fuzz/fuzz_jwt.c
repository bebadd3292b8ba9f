/*
 * libFuzzer target: JWK sets and compact JWS tokens, everything an identity
 * provider or a client can hand the SSO module.
 *
 * The input is a JWK set and a token separated by the first NUL byte;
 * without a NUL, the whole input is a token, verified against the fixed set
 * below.  The valid seeds in corpus/jwt/ were signed with that set's private
 * halves (its P-256 and Ed25519 keys are the published test keys of RFC 7515
 * A.3 and RFC 8037 A.1), so that mutations of valid tokens get as far as
 * the signature and claim checks.
 *
 * Whatever decodes is also signed again (with the RFC 8037 key) and must
 * verify, with the same claims; whatever is valid base64url must encode
 * back to the same bytes.  A token part that is a bare JSON object goes to
 * the claim checks and the signing round trip directly, so that mutations
 * reach them without having to keep base64url intact.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_jwt.h"


#define FUZZ_ALGS  0x01ff
#define FUZZ_NOW   1700000000


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_init(void);
static void fuzz_check_set(const ent_jwks_t *set);
static void fuzz_b64url(const uint8_t *data, size_t size);
static void fuzz_token(const uint8_t *data, size_t size,
    const ent_jwks_t *set);
static void fuzz_expect(ent_jwt_expect_t *expect);
static void fuzz_claims(const uint8_t *data, size_t size);
static void fuzz_resign(json_t *claims);


static const char  fuzz_jwks[] =
    "{\"keys\":["
    "{\"kty\":\"RSA\",\"kid\":\"rsa\",\"use\":\"sig\",\"e\":\"AQAB\","
    "\"n\":\"uW0DxCVt5nxw57IIKj4lqVpMAcJ3LRGo8pfv-NCLN88ssWmBCTGSSp7kq46fNW"
    "tP2ZYD-ouqQIquYjWGcp-3sePy37WBWZFyBFJvPzzSLhveoZz5zUTYUFTkN5M8oXGnyIFz"
    "-MNIxR6zdsYjnm6cXLEIcBLtUeVmq62HSMA2DPNQWEJeORcM64Y7m5gAJXzXaowcjQhdL1"
    "wPHF3uabtAAXHSBsa9mCTPVIixA6DrCgpTqyzvnUkXhvON0QyPtQjTdc-y0fFoy_uwKbbv"
    "uQUJo-vzz-fn42OHHCnjaTbljBnsuV8pOWXeaLowvdI43lg3dfQJ5YiC-McmeOg6XuxjBQ"
    "\"},"
    "{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
    "{\"kty\":\"EC\",\"kid\":\"ec384\",\"crv\":\"P-384\","
    "\"x\":\"kfyMfGXFLybPIexpfxIVG4dXIuhU3inwUukCl0sombc_"
    "b2N5brE3-iZIR2nqVPBs\","
    "\"y\":\"JKYpVC7nVQVG3fTUvh7mt5Q5swFDnCHWg4t2IM9nJj78Z"
    "aBbFoRmkukTE6yOwjkc\"},"
    "{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}"
    "]}";

static const char  fuzz_ed_jwks[] =
    "{\"keys\":[{\"kty\":\"OKP\",\"kid\":\"fz\",\"crv\":\"Ed25519\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";

/* RFC 8037 A.1: a published test key, no secret */
static const char  fuzz_ed_d[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";


/* parsed once: libFuzzer calls the target in one process */
static int          fuzz_ready;
static ent_jwks_t   fuzz_set, fuzz_ed_set;
static EVP_PKEY    *fuzz_ed_key;


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char            err[128];
    size_t          n;
    uint8_t        *copy;
    ent_jwks_t      set;
    const uint8_t  *nul;

    fuzz_init();

    fuzz_b64url(data, size);

    nul = memchr(data, '\0', size);

    if (nul == NULL) {
        fuzz_token(data, size, &fuzz_set);
        return 0;
    }

    /* an exact-size heap copy, so that ASan sees every overread */

    n = nul - data;
    copy = malloc(n ? n : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, n);
    memset(err, 'x', sizeof(err));

    if (ent_jwks_parse(copy, n, &set, err, sizeof(err)) == 0) {
        fuzz_check_set(&set);

    } else if (set.nkeys != 0 || memchr(err, '\0', sizeof(err)) == NULL) {
        abort();
    }

    free(copy);

    fuzz_token(nul + 1, size - n - 1, &set);

    ent_jwks_free(&set);

    return 0;
}


static void
fuzz_init(void)
{
    size_t          n;
    unsigned char   d[32];

    if (fuzz_ready) {
        return;
    }

    if (ent_jwks_parse((const unsigned char *) fuzz_jwks,
                       sizeof(fuzz_jwks) - 1, &fuzz_set, NULL, 0) != 0
        || fuzz_set.nkeys != 4
        || ent_jwks_parse((const unsigned char *) fuzz_ed_jwks,
                          sizeof(fuzz_ed_jwks) - 1, &fuzz_ed_set, NULL, 0)
           != 0
        || fuzz_ed_set.nkeys != 1
        || ent_b64url_decode(d, &n, (const unsigned char *) fuzz_ed_d,
                             sizeof(fuzz_ed_d) - 1) != 0
        || n != sizeof(d))
    {
        abort();
    }

    fuzz_ed_key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d,
                                               sizeof(d));
    if (fuzz_ed_key == NULL) {
        abort();
    }

    fuzz_ready = 1;
}


static void
fuzz_check_set(const ent_jwks_t *set)
{
    size_t  i;

    if (set->nkeys > ENT_JWKS_MAX_KEYS) {
        abort();
    }

    for (i = 0; i < set->nkeys; i++) {
        if (set->keys[i].pkey == NULL || set->keys[i].algs == 0
            || (set->keys[i].algs & ~FUZZ_ALGS) != 0
            || memchr(set->keys[i].kid, '\0', ENT_JWT_KID_LEN) == NULL)
        {
            abort();
        }
    }
}


static void
fuzz_b64url(const uint8_t *data, size_t size)
{
    size_t          n, m;
    unsigned char  *dec, *enc;

    if (size > ENT_JWT_MAX_LEN) {
        return;
    }

    dec = malloc(size / 4 * 3 + 2);
    enc = malloc(size + 1);

    if (dec == NULL || enc == NULL) {
        free(dec);
        free(enc);
        return;
    }

    if (ent_b64url_decode(dec, &n, data, size) == 0) {
        /* strict: one encoding per byte string */

        if (n > size / 4 * 3 + 2 || ent_b64url_encoded_len(n) != size) {
            abort();
        }

        m = ent_b64url_encode(enc, dec, n);

        if (m != size || memcmp(enc, data, size) != 0) {
            abort();
        }
    }

    free(dec);
    free(enc);
}


static void
fuzz_token(const uint8_t *data, size_t size, const ent_jwks_t *set)
{
    int               rc, vrc, crc;
    char              err[128];
    uint8_t          *tok;
    ent_jwt_t         jwt;
    ent_jwt_expect_t  expect;

    tok = malloc(size ? size : 1);
    if (tok == NULL) {
        return;
    }

    memcpy(tok, data, size);

    fuzz_expect(&expect);
    fuzz_claims(tok, size);

    rc = ent_jwt_decode(tok, size, &jwt, err, sizeof(err));

    if (rc == ENT_JWT_OK) {
        if (!json_is_object(jwt.header) || !json_is_object(jwt.claims)
            || memchr(jwt.kid, '\0', ENT_JWT_KID_LEN) == NULL
            || (jwt.alg & ~FUZZ_ALGS) != 0)
        {
            abort();
        }

        crc = ent_jwt_check(jwt.claims, &expect, err, sizeof(err));

        if (crc != ENT_JWT_OK && crc != ENT_JWT_CLAIMS) {
            abort();
        }

        fuzz_resign(jwt.claims);

    } else if (rc != ENT_JWT_MALFORMED && rc != ENT_JWT_INTERNAL) {
        abort();
    }

    ent_jwt_free(&jwt);

    vrc = ent_jwt_verify(tok, size, set, FUZZ_ALGS, &jwt, err, sizeof(err));

    /* verify decodes exactly as decode does, then only adds checks */

    if ((rc != ENT_JWT_OK && vrc != rc)
        || (rc == ENT_JWT_OK && vrc == ENT_JWT_MALFORMED)
        || vrc < ENT_JWT_OK || vrc > ENT_JWT_INTERNAL
        || (vrc != ENT_JWT_OK && memchr(err, '\0', sizeof(err)) == NULL))
    {
        abort();
    }

    if (vrc == ENT_JWT_OK) {
        if (!json_is_object(jwt.claims) || ent_jwa_name(jwt.alg) == NULL) {
            abort();
        }

        (void) ent_jwt_check(jwt.claims, &expect, err, sizeof(err));
    }

    ent_jwt_free(&jwt);
    free(tok);
}


static void
fuzz_expect(ent_jwt_expect_t *expect)
{
    memset(expect, 0, sizeof(ent_jwt_expect_t));

    expect->iss = "https://idp.example";
    expect->aud = "client";
    expect->azp = "client";
    expect->nonce = "n0";
    expect->now = FUZZ_NOW;
    expect->skew = 60;
    expect->max_age = 86400;
    expect->require_exp = 1;
}


static void
fuzz_claims(const uint8_t *data, size_t size)
{
    int               rc;
    char              err[128];
    json_t           *claims;
    ent_jwt_expect_t  expect;

    if (size == 0 || data[0] != '{' || size > ENT_JWT_MAX_LEN) {
        return;
    }

    claims = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                        NULL);

    if (json_is_object(claims)) {
        fuzz_expect(&expect);

        rc = ent_jwt_check(claims, &expect, err, sizeof(err));

        if (rc != ENT_JWT_OK && rc != ENT_JWT_CLAIMS) {
            abort();
        }

        expect.azp = NULL;
        expect.nonce = NULL;
        expect.max_age = 0;
        expect.skew = 0;
        expect.require_exp = 0;
        expect.require_iat = 1;

        (void) ent_jwt_check(claims, &expect, err, sizeof(err));

        fuzz_resign(claims);
    }

    json_decref(claims);
}


static void
fuzz_resign(json_t *claims)
{
    int         rc;
    char       *out;
    size_t      n;
    ent_jwt_t   jwt;

    if (ent_jwt_sign(fuzz_ed_key, ENT_JWA_EDDSA, "fz", claims, &out, &n)
        != 0)
    {
        abort();
    }

    if (n != strlen(out)) {
        abort();
    }

    if (n <= ENT_JWT_MAX_LEN) {
        rc = ent_jwt_verify((unsigned char *) out, n, &fuzz_ed_set,
                            ENT_JWA_EDDSA, &jwt, NULL, 0);

        if (rc != ENT_JWT_OK || !json_equal(jwt.claims, claims)) {
            abort();
        }

        ent_jwt_free(&jwt);
    }

    free(out);
}
