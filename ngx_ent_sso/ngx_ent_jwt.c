/*
 * ngx_ent SSO: I/O-free JOSE (see ngx_ent_jwt.h).
 *
 * Everything an attacker sends is bounded before it is looked at: a token
 * by ENT_JWT_MAX_LEN, a JWK set by ENT_JWKS_MAX_LEN, JSON nesting by
 * jansson's own depth limit, key sizes by the buffers below.  Error texts
 * are fixed strings: nothing from a token or a key ever reaches a log.
 */


#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "ngx_ent_jwt.h"


#define ENT_JWA_RSA          (ENT_JWA_RS256|ENT_JWA_RS384|ENT_JWA_RS512      \
                              |ENT_JWA_PS256|ENT_JWA_PS384|ENT_JWA_PS512)
#define ENT_JWA_PSS          (ENT_JWA_PS256|ENT_JWA_PS384|ENT_JWA_PS512)

#define ENT_JWT_JSON_FLAGS   JSON_REJECT_DUPLICATES

#define ENT_RSA_MIN_BITS     2048
#define ENT_RSA_MAX_BYTES    1024      /* 8192-bit moduli at most */
#define ENT_RSA_MAX_E_BYTES  8
#define ENT_EC_MAX_BYTES     48        /* P-384 */
#define ENT_ED25519_BYTES    32
#define ENT_ED25519_SIG_LEN  64


typedef struct {
    unsigned             alg;
    const char          *name;       /* the JWS "alg" */
    const char          *md;         /* the digest, NULL for EdDSA */
    size_t               eclen;      /* ES*: bytes of r and of s */
} ent_jwa_t;


static void ent_jwt_error(char *err, size_t errlen, const char *msg);
static const ent_jwa_t *ent_jwa_find(unsigned alg);
static int ent_json_str_eq(json_t *v, const char *s);
static int ent_b64url_value(unsigned char c);
static int ent_jwt_parse(const unsigned char *tok, size_t len, ent_jwt_t *jwt,
    unsigned char **sig, size_t *siglen, size_t *signed_len, char *err,
    size_t errlen);
static json_t *ent_jwt_segment(const unsigned char *seg, size_t len,
    unsigned char *buf, int *rc);
static int ent_jwt_header(ent_jwt_t *jwt, char *err, size_t errlen);
static int ent_jwt_key(const ent_jwks_t *jwks, const ent_jwt_t *jwt,
    EVP_PKEY **pkey, char *err, size_t errlen);
static int ent_jws_verify(const ent_jwa_t *jwa, EVP_PKEY *pkey,
    const unsigned char *data, size_t len, const unsigned char *sig,
    size_t siglen);
static unsigned char *ent_ecdsa_der(const unsigned char *raw, size_t n,
    size_t *derlen);
static int ent_jws_sign(const ent_jwa_t *jwa, EVP_PKEY *key,
    const unsigned char *data, size_t len, unsigned char *sig,
    size_t *siglen);
static unsigned ent_jwt_sign_alg(EVP_PKEY *key, unsigned alg);
static int ent_jwk_parse(json_t *o, ent_jwk_t *key);
static int ent_jwk_bytes(json_t *o, const char *name, unsigned char *buf,
    size_t size, size_t *len);
static EVP_PKEY *ent_jwk_rsa(json_t *o);
static EVP_PKEY *ent_jwk_ec(json_t *o, const char *group, size_t n);
static EVP_PKEY *ent_jwk_okp(json_t *o);
static EVP_PKEY *ent_pkey_fromdata(const char *type, OSSL_PARAM *params);
static int ent_jwt_claim_time(json_t *claims, const char *name, double *t);


static const ent_jwa_t  ent_jwas[] = {
    { ENT_JWA_RS256, "RS256", "SHA256", 0 },
    { ENT_JWA_RS384, "RS384", "SHA384", 0 },
    { ENT_JWA_RS512, "RS512", "SHA512", 0 },
    { ENT_JWA_PS256, "PS256", "SHA256", 0 },
    { ENT_JWA_PS384, "PS384", "SHA384", 0 },
    { ENT_JWA_PS512, "PS512", "SHA512", 0 },
    { ENT_JWA_ES256, "ES256", "SHA256", 32 },
    { ENT_JWA_ES384, "ES384", "SHA384", 48 },
    { ENT_JWA_EDDSA, "EdDSA", NULL, 0 }
};


/* header members that would make the token choose its own key or rules */
static const char  *ent_jwt_forbidden[] = {
    "crit", "jku", "jwk", "x5u", "x5c"
};


/* JWK members that only a private or a symmetric key has */
static const char  *ent_jwk_private[] = {
    "d", "p", "q", "dp", "dq", "qi", "oth", "k"
};


static const char  ent_b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


/* base64url values: 0 to 63, 255 for a character outside the alphabet */

static const unsigned char  ent_b64url_values[256] = {
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255,  62, 255, 255,
     52,  53,  54,  55,  56,  57,  58,  59,  60,  61, 255, 255,
    255, 255, 255, 255, 255,   0,   1,   2,   3,   4,   5,   6,
      7,   8,   9,  10,  11,  12,  13,  14,  15,  16,  17,  18,
     19,  20,  21,  22,  23,  24,  25, 255, 255, 255, 255,  63,
    255,  26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,
     37,  38,  39,  40,  41,  42,  43,  44,  45,  46,  47,  48,
     49,  50,  51, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255
};


int
ent_jwks_parse(const unsigned char *json, size_t len, ent_jwks_t *jwks,
    char *err, size_t errlen)
{
    size_t        i;
    json_t       *root, *keys;
    json_error_t  jerr;

    memset(jwks, 0, sizeof(ent_jwks_t));

    if (json == NULL || len == 0) {
        ent_jwt_error(err, errlen, "empty JWK set");
        return -1;
    }

    if (len > ENT_JWKS_MAX_LEN) {
        ent_jwt_error(err, errlen, "JWK set too large");
        return -1;
    }

    root = json_loadb((const char *) json, len, ENT_JWT_JSON_FLAGS, &jerr);
    if (root == NULL) {
        ent_jwt_error(err, errlen, "JWK set is not valid JSON");
        return -1;
    }

    keys = json_object_get(root, "keys");

    if (!json_is_object(root) || !json_is_array(keys)) {
        json_decref(root);
        ent_jwt_error(err, errlen, "not a JWK set");
        return -1;
    }

    ERR_set_mark();

    for (i = 0; i < json_array_size(keys); i++) {

        if (jwks->nkeys == ENT_JWKS_MAX_KEYS) {
            /* the rest is ignored: an issuer publishes a handful */
            break;
        }

        if (ent_jwk_parse(json_array_get(keys, i), &jwks->keys[jwks->nkeys])
            == 1)
        {
            jwks->nkeys++;
        }
    }

    ERR_pop_to_mark();

    json_decref(root);

    return 0;
}


void
ent_jwks_free(ent_jwks_t *jwks)
{
    size_t  i;

    if (jwks == NULL) {
        return;
    }

    /* all slots: a key may sit past nkeys in a partly filled set */

    for (i = 0; i < ENT_JWKS_MAX_KEYS; i++) {
        EVP_PKEY_free(jwks->keys[i].pkey);
    }

    memset(jwks, 0, sizeof(ent_jwks_t));
}


int
ent_jwt_decode(const unsigned char *tok, size_t len, ent_jwt_t *jwt,
    char *err, size_t errlen)
{
    int             rc;
    size_t          siglen, signed_len;
    unsigned char  *sig;

    rc = ent_jwt_parse(tok, len, jwt, &sig, &siglen, &signed_len, err,
                       errlen);

    free(sig);

    return rc;
}


int
ent_jwt_verify(const unsigned char *tok, size_t len,
    const ent_jwks_t *jwks, unsigned allowed, ent_jwt_t *jwt,
    char *err, size_t errlen)
{
    int               rc;
    size_t            siglen, signed_len;
    EVP_PKEY         *pkey;
    unsigned char    *sig;
    const ent_jwa_t  *jwa;

    rc = ent_jwt_parse(tok, len, jwt, &sig, &siglen, &signed_len, err,
                       errlen);
    if (rc != ENT_JWT_OK) {
        free(sig);
        return rc;
    }

    jwa = ent_jwa_find(jwt->alg);

    if (jwa == NULL || (jwt->alg & allowed) == 0) {
        free(sig);
        ent_jwt_error(err, errlen, "algorithm not allowed");
        return ENT_JWT_ALG;
    }

    rc = ent_jwt_key(jwks, jwt, &pkey, err, errlen);
    if (rc != ENT_JWT_OK) {
        free(sig);
        return rc;
    }

    ERR_set_mark();

    rc = ent_jws_verify(jwa, pkey, tok, signed_len, sig, siglen);

    ERR_pop_to_mark();

    free(sig);

    if (rc == ENT_JWT_SIGNATURE) {
        ent_jwt_error(err, errlen, "bad signature");

    } else if (rc == ENT_JWT_INTERNAL) {
        ent_jwt_error(err, errlen, "signature check failed");
    }

    return rc;
}


int
ent_jwt_check(json_t *claims, const ent_jwt_expect_t *expect, char *err,
    size_t errlen)
{
    int      rc, found;
    long     skew;
    double   now, t;
    size_t   i, naud;
    json_t  *v, *aud;

    if (!json_is_object(claims)) {
        ent_jwt_error(err, errlen, "claims are not a JSON object");
        return ENT_JWT_CLAIMS;
    }

    if (expect == NULL || expect->iss == NULL || expect->aud == NULL) {
        ent_jwt_error(err, errlen, "no issuer or audience to expect");
        return ENT_JWT_INTERNAL;
    }

    /* iss */

    v = json_object_get(claims, "iss");

    if (v == NULL) {
        ent_jwt_error(err, errlen, "no issuer");
        return ENT_JWT_CLAIMS;
    }

    if (!ent_json_str_eq(v, expect->iss)) {
        ent_jwt_error(err, errlen, "wrong issuer");
        return ENT_JWT_CLAIMS;
    }

    /* aud: a string or an array of strings */

    aud = json_object_get(claims, "aud");

    if (aud == NULL) {
        ent_jwt_error(err, errlen, "no audience");
        return ENT_JWT_CLAIMS;
    }

    if (json_is_string(aud)) {
        naud = 1;
        found = ent_json_str_eq(aud, expect->aud);

    } else if (json_is_array(aud) && json_array_size(aud) > 0) {
        naud = json_array_size(aud);
        found = 0;

        for (i = 0; i < naud; i++) {
            v = json_array_get(aud, i);

            if (!json_is_string(v)) {
                ent_jwt_error(err, errlen, "malformed audience");
                return ENT_JWT_CLAIMS;
            }

            if (ent_json_str_eq(v, expect->aud)) {
                found = 1;
            }
        }

    } else {
        ent_jwt_error(err, errlen, "malformed audience");
        return ENT_JWT_CLAIMS;
    }

    if (!found) {
        ent_jwt_error(err, errlen, "wrong audience");
        return ENT_JWT_CLAIMS;
    }

    /* azp */

    v = json_object_get(claims, "azp");

    if (expect->azp) {
        if (v == NULL && naud > 1) {
            ent_jwt_error(err, errlen, "no azp with several audiences");
            return ENT_JWT_CLAIMS;
        }

        if (v && !ent_json_str_eq(v, expect->azp)) {
            ent_jwt_error(err, errlen, "wrong azp");
            return ENT_JWT_CLAIMS;
        }
    }

    /* exp, nbf, iat: whole seconds are exact in a double up to 2^53 */

    now = (double) expect->now;
    skew = expect->skew > 0 ? expect->skew : 0;

    rc = ent_jwt_claim_time(claims, "exp", &t);

    if (rc == -1) {
        ent_jwt_error(err, errlen, "exp is not a number");
        return ENT_JWT_CLAIMS;
    }

    if (rc == 0 && expect->require_exp) {
        ent_jwt_error(err, errlen, "no exp");
        return ENT_JWT_CLAIMS;
    }

    if (rc == 1 && !(now - (double) skew < t)) {
        ent_jwt_error(err, errlen, "token expired");
        return ENT_JWT_CLAIMS;
    }

    rc = ent_jwt_claim_time(claims, "nbf", &t);

    if (rc == -1) {
        ent_jwt_error(err, errlen, "nbf is not a number");
        return ENT_JWT_CLAIMS;
    }

    if (rc == 1 && !(now + (double) skew >= t)) {
        ent_jwt_error(err, errlen, "token not yet valid");
        return ENT_JWT_CLAIMS;
    }

    rc = ent_jwt_claim_time(claims, "iat", &t);

    if (rc == -1) {
        ent_jwt_error(err, errlen, "iat is not a number");
        return ENT_JWT_CLAIMS;
    }

    if (rc == 0 && (expect->require_iat || expect->max_age > 0)) {
        ent_jwt_error(err, errlen, "no iat");
        return ENT_JWT_CLAIMS;
    }

    if (rc == 1) {
        if (!(t <= now + (double) skew)) {
            ent_jwt_error(err, errlen, "token issued in the future");
            return ENT_JWT_CLAIMS;
        }

        if (expect->max_age > 0
            && !(t + (double) expect->max_age + (double) skew >= now))
        {
            ent_jwt_error(err, errlen, "token too old");
            return ENT_JWT_CLAIMS;
        }
    }

    /* nonce */

    if (expect->nonce) {
        v = json_object_get(claims, "nonce");

        if (!json_is_string(v)
            || json_string_length(v) != strlen(expect->nonce)
            || CRYPTO_memcmp(json_string_value(v), expect->nonce,
                             json_string_length(v)) != 0)
        {
            ent_jwt_error(err, errlen, "wrong nonce");
            return ENT_JWT_CLAIMS;
        }
    }

    return ENT_JWT_OK;
}


void
ent_jwt_free(ent_jwt_t *jwt)
{
    if (jwt == NULL) {
        return;
    }

    json_decref(jwt->header);
    json_decref(jwt->claims);

    memset(jwt, 0, sizeof(ent_jwt_t));
}


int
ent_jwt_sign(EVP_PKEY *key, unsigned alg, const char *kid,
    json_t *claims, char **out, size_t *outlen)
{
    int               rc;
    char             *hs, *ps;
    size_t            hlen, plen, siglen, size;
    json_t           *header;
    unsigned char    *buf, *p, *sig;
    const ent_jwa_t  *jwa;

    if (out == NULL) {
        return -1;
    }

    *out = NULL;

    if (key == NULL || !json_is_object(claims)) {
        return -1;
    }

    alg = ent_jwt_sign_alg(key, alg);
    jwa = ent_jwa_find(alg);

    if (jwa == NULL) {
        return -1;
    }

    header = json_pack("{s:s, s:s}", "alg", jwa->name, "typ", "JWT");
    if (header == NULL) {
        return -1;
    }

    if (kid && kid[0] != '\0'
        && json_object_set_new(header, "kid", json_string(kid)) != 0)
    {
        json_decref(header);
        return -1;
    }

    hs = json_dumps(header, JSON_COMPACT);
    ps = json_dumps(claims, JSON_COMPACT);

    json_decref(header);

    rc = -1;
    buf = NULL;
    sig = NULL;

    if (hs == NULL || ps == NULL || EVP_PKEY_get_size(key) <= 0) {
        goto done;
    }

    hlen = strlen(hs);
    plen = strlen(ps);
    size = (size_t) EVP_PKEY_get_size(key);

    sig = malloc(size);
    buf = malloc(ent_b64url_encoded_len(hlen) + ent_b64url_encoded_len(plen)
                 + ent_b64url_encoded_len(size) + 3);

    if (sig == NULL || buf == NULL) {
        goto done;
    }

    p = buf;
    p += ent_b64url_encode(p, (unsigned char *) hs, hlen);
    *p++ = '.';
    p += ent_b64url_encode(p, (unsigned char *) ps, plen);

    ERR_set_mark();

    siglen = size;
    rc = ent_jws_sign(jwa, key, buf, p - buf, sig, &siglen);

    ERR_pop_to_mark();

    if (rc != 0) {
        goto done;
    }

    *p++ = '.';
    p += ent_b64url_encode(p, sig, siglen);
    *p = '\0';

    *out = (char *) buf;
    if (outlen) {
        *outlen = p - buf;
    }

    buf = NULL;

done:

    free(hs);
    free(ps);
    free(sig);
    free(buf);

    return rc;
}


unsigned
ent_jwa_from_name(const char *name)
{
    size_t  i;

    if (name == NULL) {
        return 0;
    }

    for (i = 0; i < sizeof(ent_jwas) / sizeof(ent_jwas[0]); i++) {
        if (strcmp(name, ent_jwas[i].name) == 0) {
            return ent_jwas[i].alg;
        }
    }

    return 0;
}


const char *
ent_jwa_name(unsigned alg)
{
    const ent_jwa_t  *jwa;

    jwa = ent_jwa_find(alg);

    return jwa ? jwa->name : NULL;
}


size_t
ent_b64url_encode(unsigned char *dst, const unsigned char *src, size_t len)
{
    unsigned char  *d;

    d = dst;

    while (len >= 3) {
        *d++ = ent_b64url_alphabet[src[0] >> 2];
        *d++ = ent_b64url_alphabet[((src[0] & 0x03) << 4) | (src[1] >> 4)];
        *d++ = ent_b64url_alphabet[((src[1] & 0x0f) << 2) | (src[2] >> 6)];
        *d++ = ent_b64url_alphabet[src[2] & 0x3f];

        src += 3;
        len -= 3;
    }

    if (len == 2) {
        *d++ = ent_b64url_alphabet[src[0] >> 2];
        *d++ = ent_b64url_alphabet[((src[0] & 0x03) << 4) | (src[1] >> 4)];
        *d++ = ent_b64url_alphabet[(src[1] & 0x0f) << 2];

    } else if (len == 1) {
        *d++ = ent_b64url_alphabet[src[0] >> 2];
        *d++ = ent_b64url_alphabet[(src[0] & 0x03) << 4];
    }

    return d - dst;
}


int
ent_b64url_decode(unsigned char *dst, size_t *dstlen,
    const unsigned char *src, size_t len)
{
    int       v;
    size_t    i, n;
    unsigned  acc, bits, q0, q1, q2, q3;

    if (len % 4 == 1) {
        /* six bits cannot make a byte */
        return -1;
    }

    n = 0;
    acc = 0;
    bits = 0;

    /* four characters, three bytes at a time; then the rest bit by bit */

    for (i = 0; i + 4 <= len; i += 4) {
        q0 = ent_b64url_values[src[i]];
        q1 = ent_b64url_values[src[i + 1]];
        q2 = ent_b64url_values[src[i + 2]];
        q3 = ent_b64url_values[src[i + 3]];

        if ((q0 | q1 | q2 | q3) & 0xc0) {
            return -1;
        }

        dst[n++] = (unsigned char) ((q0 << 2) | (q1 >> 4));
        dst[n++] = (unsigned char) ((q1 << 4) | (q2 >> 2));
        dst[n++] = (unsigned char) ((q2 << 6) | q3);
    }

    for ( /* void */ ; i < len; i++) {
        v = ent_b64url_value(src[i]);
        if (v < 0) {
            return -1;
        }

        acc = (acc << 6) | (unsigned) v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            dst[n++] = (unsigned char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }

    if (acc != 0) {
        /* the unused bits of the last character must be zero: one string
         * per byte sequence, so a signature cannot be re-encoded */
        return -1;
    }

    *dstlen = n;

    return 0;
}


static void
ent_jwt_error(char *err, size_t errlen, const char *msg)
{
    size_t  n;

    if (err == NULL || errlen == 0) {
        return;
    }

    n = strlen(msg);
    if (n >= errlen) {
        n = errlen - 1;
    }

    memcpy(err, msg, n);
    err[n] = '\0';
}


static const ent_jwa_t *
ent_jwa_find(unsigned alg)
{
    size_t  i;

    for (i = 0; i < sizeof(ent_jwas) / sizeof(ent_jwas[0]); i++) {
        if (ent_jwas[i].alg == alg) {
            return &ent_jwas[i];
        }
    }

    return NULL;
}


static int
ent_json_str_eq(json_t *v, const char *s)
{
    size_t  n;

    if (!json_is_string(v)) {
        return 0;
    }

    n = strlen(s);

    return json_string_length(v) == n
           && memcmp(json_string_value(v), s, n) == 0;
}


static int
ent_b64url_value(unsigned char c)
{
    return ent_b64url_values[c] == 255 ? -1 : ent_b64url_values[c];
}


/*
 * The compact serialization: three non-empty strict base64url segments.
 * On return *sig is malloc()ed or NULL, whatever the result.
 */

static int
ent_jwt_parse(const unsigned char *tok, size_t len, ent_jwt_t *jwt,
    unsigned char **sig, size_t *siglen, size_t *signed_len, char *err,
    size_t errlen)
{
    int                   rc;
    size_t                hlen, plen, slen;
    unsigned char        *buf;
    const unsigned char  *dot1, *dot2, *payload, *signature;

    memset(jwt, 0, sizeof(ent_jwt_t));
    *sig = NULL;
    *siglen = 0;
    *signed_len = 0;

    if (tok == NULL || len == 0) {
        ent_jwt_error(err, errlen, "empty token");
        return ENT_JWT_MALFORMED;
    }

    if (len > ENT_JWT_MAX_LEN) {
        ent_jwt_error(err, errlen, "token too long");
        return ENT_JWT_MALFORMED;
    }

    dot1 = memchr(tok, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', tok + len - dot1 - 1) : NULL;

    if (dot2 == NULL || memchr(dot2 + 1, '.', tok + len - dot2 - 1) != NULL) {
        ent_jwt_error(err, errlen, "not a compact JWS");
        return ENT_JWT_MALFORMED;
    }

    payload = dot1 + 1;
    signature = dot2 + 1;

    hlen = dot1 - tok;
    plen = dot2 - payload;
    slen = tok + len - signature;

    if (hlen == 0 || plen == 0 || slen == 0) {
        ent_jwt_error(err, errlen, "empty segment");
        return ENT_JWT_MALFORMED;
    }

    /* one buffer for each segment in turn: large enough for any of them */

    buf = malloc(len / 4 * 3 + 3);
    if (buf == NULL) {
        ent_jwt_error(err, errlen, "out of memory");
        return ENT_JWT_INTERNAL;
    }

    jwt->header = ent_jwt_segment(tok, hlen, buf, &rc);

    if (jwt->header == NULL) {
        free(buf);
        ent_jwt_error(err, errlen, rc == ENT_JWT_INTERNAL
                                   ? "out of memory"
                                   : "header is not a base64url JSON object");
        return rc;
    }

    rc = ent_jwt_header(jwt, err, errlen);
    if (rc != ENT_JWT_OK) {
        free(buf);
        return rc;
    }

    jwt->claims = ent_jwt_segment(payload, plen, buf, &rc);

    if (jwt->claims == NULL) {
        free(buf);
        ent_jwt_error(err, errlen, rc == ENT_JWT_INTERNAL
                                   ? "out of memory"
                                   : "payload is not a base64url JSON object");
        return rc;
    }

    if (ent_b64url_decode(buf, siglen, signature, slen) != 0) {
        free(buf);
        ent_jwt_error(err, errlen, "bad base64url in signature");
        return ENT_JWT_MALFORMED;
    }

    *sig = buf;
    *signed_len = dot2 - tok;

    return ENT_JWT_OK;
}


static json_t *
ent_jwt_segment(const unsigned char *seg, size_t len, unsigned char *buf,
    int *rc)
{
    size_t        n;
    json_t       *v;
    json_error_t  jerr;

    *rc = ENT_JWT_MALFORMED;

    if (ent_b64url_decode(buf, &n, seg, len) != 0) {
        return NULL;
    }

    v = json_loadb((const char *) buf, n, ENT_JWT_JSON_FLAGS, &jerr);
    if (v == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            *rc = ENT_JWT_INTERNAL;
        }

        return NULL;
    }

    if (!json_is_object(v)) {
        json_decref(v);
        return NULL;
    }

    *rc = ENT_JWT_OK;

    return v;
}


static int
ent_jwt_header(ent_jwt_t *jwt, char *err, size_t errlen)
{
    size_t   i, n;
    json_t  *v;

    for (i = 0; i < sizeof(ent_jwt_forbidden) / sizeof(char *); i++) {
        if (json_object_get(jwt->header, ent_jwt_forbidden[i]) != NULL) {
            ent_jwt_error(err, errlen, "forbidden member in header");
            return ENT_JWT_MALFORMED;
        }
    }

    v = json_object_get(jwt->header, "alg");

    if (!json_is_string(v)) {
        ent_jwt_error(err, errlen, "no alg in header");
        return ENT_JWT_MALFORMED;
    }

    /* 0 for "none", HMAC and anything else unknown: refused by verify */
    jwt->alg = ent_jwa_from_name(json_string_value(v));

    v = json_object_get(jwt->header, "typ");

    if (v != NULL && !json_is_string(v)) {
        ent_jwt_error(err, errlen, "typ is not a string");
        return ENT_JWT_MALFORMED;
    }

    v = json_object_get(jwt->header, "kid");

    if (v != NULL) {
        if (!json_is_string(v)) {
            ent_jwt_error(err, errlen, "kid is not a string");
            return ENT_JWT_MALFORMED;
        }

        n = json_string_length(v);

        if (n >= ENT_JWT_KID_LEN) {
            ent_jwt_error(err, errlen, "kid too long");
            return ENT_JWT_MALFORMED;
        }

        /* jansson refuses "\u0000", so the copy is one C string */
        memcpy(jwt->kid, json_string_value(v), n);
        jwt->kid[n] = '\0';
    }

    return ENT_JWT_OK;
}


/*
 * A key with the token's kid that may verify the token's algorithm; with
 * no kid (or an empty one), the only key of a one-key set.
 */

static int
ent_jwt_key(const ent_jwks_t *jwks, const ent_jwt_t *jwt, EVP_PKEY **pkey,
    char *err, size_t errlen)
{
    int               found;
    size_t            i, nkeys;
    const ent_jwk_t  *key;

    nkeys = jwks ? jwks->nkeys : 0;
    if (nkeys > ENT_JWKS_MAX_KEYS) {
        nkeys = ENT_JWKS_MAX_KEYS;
    }

    if (jwt->kid[0] == '\0') {
        if (nkeys != 1) {
            ent_jwt_error(err, errlen, "no kid, and not exactly one key");
            return ENT_JWT_NO_KEY;
        }

        key = &jwks->keys[0];

        if ((key->algs & jwt->alg) == 0 || key->pkey == NULL) {
            ent_jwt_error(err, errlen, "algorithm does not fit the key");
            return ENT_JWT_ALG;
        }

        *pkey = key->pkey;
        return ENT_JWT_OK;
    }

    found = 0;

    for (i = 0; i < nkeys; i++) {
        key = &jwks->keys[i];

        if (strncmp(key->kid, jwt->kid, ENT_JWT_KID_LEN) != 0) {
            continue;
        }

        if ((key->algs & jwt->alg) && key->pkey) {
            *pkey = key->pkey;
            return ENT_JWT_OK;
        }

        found = 1;
    }

    if (found) {
        ent_jwt_error(err, errlen, "algorithm does not fit the key");
        return ENT_JWT_ALG;
    }

    ent_jwt_error(err, errlen, "unknown kid");

    return ENT_JWT_NO_KEY;
}


static int
ent_jws_verify(const ent_jwa_t *jwa, EVP_PKEY *pkey,
    const unsigned char *data, size_t len, const unsigned char *sig,
    size_t siglen)
{
    int             rc;
    size_t          derlen;
    EVP_MD_CTX     *mctx;
    EVP_PKEY_CTX   *pctx;
    unsigned char  *der;

    der = NULL;

    if (jwa->eclen) {
        /* JWS has r || s, each exactly the size of the group order */

        if (siglen != 2 * jwa->eclen) {
            return ENT_JWT_SIGNATURE;
        }

        der = ent_ecdsa_der(sig, jwa->eclen, &derlen);
        if (der == NULL) {
            return ENT_JWT_INTERNAL;
        }

        sig = der;
        siglen = derlen;

    } else if (jwa->alg == ENT_JWA_EDDSA) {
        if (siglen != ENT_ED25519_SIG_LEN) {
            return ENT_JWT_SIGNATURE;
        }

    } else if (EVP_PKEY_get_size(pkey) <= 0
               || siglen != (size_t) EVP_PKEY_get_size(pkey))
    {
        return ENT_JWT_SIGNATURE;
    }

    mctx = EVP_MD_CTX_new();
    if (mctx == NULL) {
        OPENSSL_free(der);
        return ENT_JWT_INTERNAL;
    }

    rc = ENT_JWT_INTERNAL;
    pctx = NULL;

    if (EVP_DigestVerifyInit_ex(mctx, &pctx, jwa->md, NULL, NULL, pkey, NULL)
        != 1)
    {
        goto done;
    }

    if (jwa->alg & ENT_JWA_PSS) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
               <= 0
            || EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, jwa->md, NULL) <= 0)
        {
            goto done;
        }

    } else if (jwa->alg & ENT_JWA_RSA) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
            goto done;
        }
    }

    rc = (EVP_DigestVerify(mctx, sig, siglen, data, len) == 1)
         ? ENT_JWT_OK : ENT_JWT_SIGNATURE;

done:

    EVP_MD_CTX_free(mctx);
    OPENSSL_free(der);

    return rc;
}


static unsigned char *
ent_ecdsa_der(const unsigned char *raw, size_t n, size_t *derlen)
{
    int             len;
    BIGNUM         *r, *s;
    ECDSA_SIG      *es;
    unsigned char  *der;

    es = ECDSA_SIG_new();
    r = BN_bin2bn(raw, (int) n, NULL);
    s = BN_bin2bn(raw + n, (int) n, NULL);

    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1)
    {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(s);
        return NULL;
    }

    der = NULL;
    len = i2d_ECDSA_SIG(es, &der);

    ECDSA_SIG_free(es);

    if (len <= 0) {
        OPENSSL_free(der);
        return NULL;
    }

    *derlen = (size_t) len;

    return der;
}


static int
ent_jws_sign(const ent_jwa_t *jwa, EVP_PKEY *key, const unsigned char *data,
    size_t len, unsigned char *sig, size_t *siglen)
{
    int                   rc;
    size_t                n;
    ECDSA_SIG            *es;
    EVP_MD_CTX           *mctx;
    const BIGNUM         *r, *s;
    EVP_PKEY_CTX         *pctx;
    const unsigned char  *p;

    mctx = EVP_MD_CTX_new();
    if (mctx == NULL) {
        return -1;
    }

    rc = -1;
    pctx = NULL;

    if (EVP_DigestSignInit_ex(mctx, &pctx, jwa->md, NULL, NULL, key, NULL)
        != 1)
    {
        goto done;
    }

    if (jwa->alg & ENT_JWA_PSS) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
               <= 0
            || EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, jwa->md, NULL) <= 0)
        {
            goto done;
        }

    } else if (jwa->alg & ENT_JWA_RSA) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
            goto done;
        }
    }

    n = *siglen;

    if (EVP_DigestSign(mctx, sig, &n, data, len) != 1) {
        goto done;
    }

    if (jwa->eclen == 0) {
        *siglen = n;
        rc = 0;
        goto done;
    }

    /* DER to r || s, each left-padded to the size of the group order */

    if (*siglen < 2 * jwa->eclen) {
        goto done;
    }

    p = sig;
    es = d2i_ECDSA_SIG(NULL, &p, (long) n);
    if (es == NULL) {
        goto done;
    }

    ECDSA_SIG_get0(es, &r, &s);

    if (BN_bn2binpad(r, sig, (int) jwa->eclen) == (int) jwa->eclen
        && BN_bn2binpad(s, sig + jwa->eclen, (int) jwa->eclen)
           == (int) jwa->eclen)
    {
        *siglen = 2 * jwa->eclen;
        rc = 0;
    }

    ECDSA_SIG_free(es);

done:

    EVP_MD_CTX_free(mctx);

    return rc;
}


/* the algorithm to sign with: the one asked for if the key fits it */

static unsigned
ent_jwt_sign_alg(EVP_PKEY *key, unsigned alg)
{
    char      group[64];
    unsigned  want;

    if (EVP_PKEY_is_a(key, "RSA")) {
        if (EVP_PKEY_get_bits(key) < ENT_RSA_MIN_BITS) {
            return 0;
        }

        if (alg == 0) {
            return ENT_JWA_RS256;
        }

        return (alg == ENT_JWA_RS256 || alg == ENT_JWA_PS256) ? alg : 0;
    }

    if (EVP_PKEY_is_a(key, "EC")) {
        if (EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) != 1) {
            return 0;
        }

        if (strcmp(group, "prime256v1") == 0) {
            want = ENT_JWA_ES256;

        } else if (strcmp(group, "secp384r1") == 0) {
            want = ENT_JWA_ES384;

        } else {
            return 0;
        }

        return (alg == 0 || alg == want) ? want : 0;
    }

    if (EVP_PKEY_is_a(key, "ED25519")) {
        return (alg == 0 || alg == ENT_JWA_EDDSA) ? ENT_JWA_EDDSA : 0;
    }

    return 0;
}


/* 1: a key that can verify signatures, in *key; 0: skipped */

static int
ent_jwk_parse(json_t *o, ent_jwk_t *key)
{
    size_t       i, n;
    json_t      *kty, *crv, *v;
    unsigned     algs, narrow;
    EVP_PKEY    *pkey;
    const char  *group;

    if (!json_is_object(o)) {
        return 0;
    }

    kty = json_object_get(o, "kty");
    if (!json_is_string(kty)) {
        return 0;
    }

    for (i = 0; i < sizeof(ent_jwk_private) / sizeof(char *); i++) {
        if (json_object_get(o, ent_jwk_private[i]) != NULL) {
            return 0;
        }
    }

    v = json_object_get(o, "use");
    if (v != NULL && !ent_json_str_eq(v, "sig")) {
        return 0;
    }

    v = json_object_get(o, "key_ops");

    if (v != NULL) {
        if (!json_is_array(v)) {
            return 0;
        }

        for (i = 0; i < json_array_size(v); i++) {
            if (ent_json_str_eq(json_array_get(v, i), "verify")) {
                break;
            }
        }

        if (i == json_array_size(v)) {
            return 0;
        }
    }

    narrow = ENT_JWA_RSA|ENT_JWA_ES256|ENT_JWA_ES384|ENT_JWA_EDDSA;

    v = json_object_get(o, "alg");

    if (v != NULL) {
        narrow = json_is_string(v) ? ent_jwa_from_name(json_string_value(v))
                                   : 0;
        if (narrow == 0) {
            return 0;
        }
    }

    crv = json_object_get(o, "crv");
    group = NULL;
    n = 0;

    if (ent_json_str_eq(kty, "RSA")) {
        algs = ENT_JWA_RSA;

    } else if (ent_json_str_eq(kty, "EC") && ent_json_str_eq(crv, "P-256")) {
        algs = ENT_JWA_ES256;
        group = "prime256v1";
        n = 32;

    } else if (ent_json_str_eq(kty, "EC") && ent_json_str_eq(crv, "P-384")) {
        algs = ENT_JWA_ES384;
        group = "secp384r1";
        n = 48;

    } else if (ent_json_str_eq(kty, "OKP") && ent_json_str_eq(crv, "Ed25519"))
    {
        algs = ENT_JWA_EDDSA;

    } else {
        return 0;
    }

    algs &= narrow;

    if (algs == 0) {
        return 0;
    }

    v = json_object_get(o, "kid");

    if (v != NULL) {
        if (!json_is_string(v) || json_string_length(v) >= ENT_JWT_KID_LEN) {
            return 0;
        }
    }

    if (algs & ENT_JWA_RSA) {
        pkey = ent_jwk_rsa(o);

    } else if (group) {
        pkey = ent_jwk_ec(o, group, n);

    } else {
        pkey = ent_jwk_okp(o);
    }

    if (pkey == NULL) {
        return 0;
    }

    memset(key, 0, sizeof(ent_jwk_t));

    if (v != NULL) {
        memcpy(key->kid, json_string_value(v), json_string_length(v));
    }

    key->algs = algs;
    key->pkey = pkey;

    return 1;
}


/* a base64url member decoded into buf, at most size bytes */

static int
ent_jwk_bytes(json_t *o, const char *name, unsigned char *buf, size_t size,
    size_t *len)
{
    json_t  *v;

    v = json_object_get(o, name);

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > ent_b64url_encoded_len(size))
    {
        return -1;
    }

    return ent_b64url_decode(buf, len,
                             (const unsigned char *) json_string_value(v),
                             json_string_length(v));
}


static EVP_PKEY *
ent_jwk_rsa(json_t *o)
{
    size_t           nlen, elen;
    BIGNUM          *n, *e;
    EVP_PKEY        *pkey;
    OSSL_PARAM      *params;
    unsigned char    nb[ENT_RSA_MAX_BYTES], eb[ENT_RSA_MAX_E_BYTES];
    OSSL_PARAM_BLD  *bld;

    if (ent_jwk_bytes(o, "n", nb, sizeof(nb), &nlen) != 0
        || ent_jwk_bytes(o, "e", eb, sizeof(eb), &elen) != 0)
    {
        return NULL;
    }

    pkey = NULL;
    params = NULL;
    bld = NULL;

    n = BN_bin2bn(nb, (int) nlen, NULL);
    e = BN_bin2bn(eb, (int) elen, NULL);

    if (n == NULL || e == NULL) {
        goto done;
    }

    /*
     * an odd modulus of 2048 bits at least; an odd exponent above 1 (with
     * e = 1 the "signature" is the padded digest itself)
     */

    if (BN_num_bits(n) < ENT_RSA_MIN_BITS || !BN_is_odd(n)
        || !BN_is_odd(e) || BN_is_one(e))
    {
        goto done;
    }

    bld = OSSL_PARAM_BLD_new();

    if (bld == NULL
        || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1
        || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
    {
        goto done;
    }

    params = OSSL_PARAM_BLD_to_param(bld);
    if (params == NULL) {
        goto done;
    }

    pkey = ent_pkey_fromdata("RSA", params);

    if (pkey && EVP_PKEY_get_bits(pkey) < ENT_RSA_MIN_BITS) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }

done:

    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);

    return pkey;
}


static EVP_PKEY *
ent_jwk_ec(json_t *o, const char *group, size_t n)
{
    size_t          xlen, ylen;
    EVP_PKEY       *pkey;
    OSSL_PARAM      params[3];
    EVP_PKEY_CTX   *ctx;
    unsigned char   point[1 + 2 * ENT_EC_MAX_BYTES];

    /* the coordinates are exactly the size of the field (RFC 7518 6.2.1) */

    if (ent_jwk_bytes(o, "x", point + 1, n, &xlen) != 0 || xlen != n
        || ent_jwk_bytes(o, "y", point + 1 + n, n, &ylen) != 0 || ylen != n)
    {
        return NULL;
    }

    point[0] = POINT_CONVERSION_UNCOMPRESSED;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *) group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  point, 1 + 2 * n);
    params[2] = OSSL_PARAM_construct_end();

    pkey = ent_pkey_fromdata("EC", params);
    if (pkey == NULL) {
        return NULL;
    }

    /* on the curve, in range, of the group's order */

    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

    if (ctx == NULL || EVP_PKEY_public_check(ctx) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }

    EVP_PKEY_CTX_free(ctx);

    return pkey;
}


static EVP_PKEY *
ent_jwk_okp(json_t *o)
{
    size_t          xlen;
    OSSL_PARAM      params[2];
    unsigned char   x[ENT_ED25519_BYTES];

    if (ent_jwk_bytes(o, "x", x, sizeof(x), &xlen) != 0
        || xlen != ENT_ED25519_BYTES)
    {
        return NULL;
    }

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  x, sizeof(x));
    params[1] = OSSL_PARAM_construct_end();

    return ent_pkey_fromdata("ED25519", params);
}


static EVP_PKEY *
ent_pkey_fromdata(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY      *pkey;
    EVP_PKEY_CTX  *ctx;

    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx == NULL) {
        return NULL;
    }

    pkey = NULL;

    if (EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }

    EVP_PKEY_CTX_free(ctx);

    return pkey;
}


/* 1 and *t: a number; 0: absent; -1: present but not a number */

static int
ent_jwt_claim_time(json_t *claims, const char *name, double *t)
{
    json_t  *v;

    v = json_object_get(claims, name);

    if (v == NULL) {
        return 0;
    }

    if (!json_is_number(v)) {
        return -1;
    }

    *t = json_number_value(v);

    return 1;
}
