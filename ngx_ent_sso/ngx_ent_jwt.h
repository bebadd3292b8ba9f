/*
 * I/O-free JOSE for the SSO module: JWK sets, JWS (compact) verification
 * with a pinned algorithm set, claim checks, and signing (for the identity
 * assertion sent to upstreams).  No nginx headers: the unit tests and the
 * libFuzzer targets link this file directly.
 *
 * Rules, whatever the token says:
 *   - only the algorithms in the caller's set; never "none", never HMAC
 *     (a public key is never used as a MAC secret: there is no code path
 *     that could);
 *   - the key is chosen by "kid" and must be of the algorithm's family
 *     (RSA for RS* and PS*, EC on the algorithm's curve for ES*, Ed25519 for
 *     EdDSA); without a "kid", only a set with exactly one usable key;
 *   - a header with "crit", "jku", "jwk", "x5u" or "x5c" is rejected;
 *   - RSA keys under 2048 bits are ignored when the set is parsed.
 *
 * Memory is malloc()ed (jansson allocates that way); every *_free() accepts
 * a zeroed or partially filled structure.
 */

#ifndef _NGX_ENT_JWT_H_INCLUDED_
#define _NGX_ENT_JWT_H_INCLUDED_


#include <stddef.h>
#include <time.h>
#include <openssl/evp.h>
#include <jansson.h>


#define ENT_JWT_MAX_LEN       16384     /* a whole compact token */
#define ENT_JWKS_MAX_LEN      262144    /* a JWK set document */
#define ENT_JWKS_MAX_KEYS     32
#define ENT_JWT_KID_LEN       128


/* algorithms, a bit each */
#define ENT_JWA_RS256         0x0001
#define ENT_JWA_RS384         0x0002
#define ENT_JWA_RS512         0x0004
#define ENT_JWA_PS256         0x0008
#define ENT_JWA_PS384         0x0010
#define ENT_JWA_PS512         0x0020
#define ENT_JWA_ES256         0x0040
#define ENT_JWA_ES384         0x0080
#define ENT_JWA_EDDSA         0x0100

#define ENT_JWA_DEFAULT       (ENT_JWA_RS256|ENT_JWA_RS384|ENT_JWA_RS512     \
                               |ENT_JWA_PS256|ENT_JWA_ES256|ENT_JWA_ES384   \
                               |ENT_JWA_EDDSA)


/* results */
#define ENT_JWT_OK            0
#define ENT_JWT_MALFORMED     1     /* not a compact JWS, bad base64url/JSON */
#define ENT_JWT_ALG           2     /* algorithm not in the allowed set */
#define ENT_JWT_NO_KEY        3     /* no key with that kid: refetch the set */
#define ENT_JWT_SIGNATURE     4     /* signature does not verify */
#define ENT_JWT_CLAIMS        5     /* a claim check failed */
#define ENT_JWT_INTERNAL      6     /* allocation or library failure */


typedef struct {
    char                 kid[ENT_JWT_KID_LEN];   /* "" when absent */
    unsigned             algs;       /* the algorithms this key may verify:
                                        from kty/crv, narrowed by "alg" */
    EVP_PKEY            *pkey;
} ent_jwk_t;


typedef struct {
    size_t               nkeys;
    ent_jwk_t            keys[ENT_JWKS_MAX_KEYS];
} ent_jwks_t;


typedef struct {
    unsigned             alg;        /* one ENT_JWA_* bit */
    char                 kid[ENT_JWT_KID_LEN];
    json_t              *header;     /* owned */
    json_t              *claims;     /* owned; a JSON object */
} ent_jwt_t;


typedef struct {
    const char          *iss;        /* required, exact */
    const char          *aud;        /* required: equal to "aud" or one of
                                        its elements */
    const char          *azp;        /* when set: "azp", if present, must
                                        equal it, and must be present when
                                        "aud" has several values */
    const char          *nonce;      /* when set: "nonce" must equal it */
    time_t               now;
    long                 skew;       /* seconds allowed on exp/nbf/iat */
    long                 max_age;    /* when > 0: iat no older than this */
    unsigned             require_exp:1;
    unsigned             require_iat:1;
} ent_jwt_expect_t;


/*
 * Parses a JWK set ({"keys":[...]}).  Keys that cannot verify signatures
 * (kty "oct", "use" other than "sig", unknown kty/crv, short RSA, EC point
 * not on the curve, private parts present) are skipped, not errors.
 * Returns 0 (jwks->nkeys may be 0) or -1 with err set for a document that
 * is not a JWK set at all.
 */
int ent_jwks_parse(const unsigned char *json, size_t len, ent_jwks_t *jwks,
    char *err, size_t errlen);
void ent_jwks_free(ent_jwks_t *jwks);

/*
 * header and claims only, no verification (for "kid"/"iss" routing); like
 * ent_jwt_verify() and ent_jwks_parse(), it initialises *jwt itself
 */
int ent_jwt_decode(const unsigned char *tok, size_t len, ent_jwt_t *jwt,
    char *err, size_t errlen);

/*
 * Decodes and verifies; on ENT_JWT_OK, jwt holds the header and claims.
 * jwt is filled as far as decoding got on any result, and must be freed.
 */
int ent_jwt_verify(const unsigned char *tok, size_t len,
    const ent_jwks_t *jwks, unsigned allowed, ent_jwt_t *jwt,
    char *err, size_t errlen);

/* the registered-claim checks of OpenID Connect Core 3.1.3.7 / RFC 7519 */
int ent_jwt_check(json_t *claims, const ent_jwt_expect_t *expect,
    char *err, size_t errlen);

void ent_jwt_free(ent_jwt_t *jwt);

/*
 * Signs claims with a private key (RS256, PS256, ES256, ES384 or EdDSA, as
 * the key allows; alg 0 picks RS256, the curve's ES* or EdDSA from the
 * key); *out is malloc()ed and NUL-terminated.  0 or -1.
 */
int ent_jwt_sign(EVP_PKEY *key, unsigned alg, const char *kid,
    json_t *claims, char **out, size_t *outlen);

/* the ENT_JWA_* bit of a JWS "alg" name, 0 for any other */
unsigned ent_jwa_from_name(const char *name);
const char *ent_jwa_name(unsigned alg);

/*
 * base64url without padding; decode is strict (alphabet, no '=', length
 * not 1 mod 4, unused bits of the last character zero).  encode writes
 * ent_b64url_encoded_len(len) bytes, no NUL, and returns that length;
 * decode needs room for len / 4 * 3 + 2 bytes in dst, sets *dstlen and
 * returns 0, or -1 (dst may then hold a partial result).
 */
size_t ent_b64url_encode(unsigned char *dst, const unsigned char *src,
    size_t len);
#define ent_b64url_encoded_len(n)  (((n) * 4 + 2) / 3)
int ent_b64url_decode(unsigned char *dst, size_t *dstlen,
    const unsigned char *src, size_t len);


#endif /* _NGX_ENT_JWT_H_INCLUDED_ */
