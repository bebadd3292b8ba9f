/*
 * ngx_ent SSO: the SAML 2.0 HTTP-Redirect binding, I/O-free (see
 * ngx_ent_saml_redirect.h).
 *
 * The decoder's order: the bounds; the parameters, found by their names
 * without decoding anything; the signature, over the values exactly as
 * received, so that an unsigned or badly signed message is refused before
 * a byte of it is inflated; the RelayState; and last the message itself,
 * percent-decoded, base64-decoded and inflated into one buffer of the
 * bounded size.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ngx_ent_saml_redirect.h"


/* the parameters, by index */
#define ENT_SRD_REQUEST      0
#define ENT_SRD_RESPONSE     1
#define ENT_SRD_RELAY        2
#define ENT_SRD_SIGALG       3
#define ENT_SRD_SIGNATURE    4
#define ENT_SRD_NPARAMS      5

#define ENT_SRD_MAX_SIG      1024    /* a decoded signature: RSA-8192 */
#define ENT_SRD_MAX_SIG_B64  (ENT_SRD_MAX_SIG / 3 * 4 + 4)
/* a Signature as received: each character percent-encoded, some wrapping */
#define ENT_SRD_MAX_SIG_RAW  (3 * ENT_SRD_MAX_SIG_B64 + 256)
#define ENT_SRD_MAX_SIGALG   128     /* a decoded SigAlg */
#define ENT_SRD_RSA_MIN      2048
#define ENT_SRD_RSA_MAX      8192


struct ent_saml_rkey_s {
    size_t                    nkeys;
    EVP_PKEY                 *keys[ENT_SAML_REDIRECT_MAX_CERTS];
    unsigned                  private:1;
};


typedef struct {
    const char               *uri;
    const EVP_MD           *(*md)(void);
    int                       type;       /* EVP_PKEY_RSA or EVP_PKEY_EC */
    unsigned                  sha1:1;     /* only when allowed */
} ent_saml_redirect_alg_t;


typedef struct {
    const char               *value;      /* as received */
    size_t                    len;
    unsigned                  found:1;
} ent_saml_redirect_param_t;


typedef struct {
    char                     *data;
    size_t                    len;
    size_t                    size;
    unsigned                  failed:1;
} ent_saml_redirect_buf_t;


static void ent_saml_redirect_error(char *err, size_t errlen,
    const char *fmt, ...);
static int ent_saml_redirect_no_passphrase(char *buf, int size, int rwflag,
    void *data);
static int ent_saml_redirect_key_ok(EVP_PKEY *pkey);
static const ent_saml_redirect_alg_t *ent_saml_redirect_sign_alg(
    EVP_PKEY *pkey);
static const ent_saml_redirect_alg_t *ent_saml_redirect_find_alg(
    const char *uri, size_t len);
static int ent_saml_redirect_sign(const ent_saml_redirect_alg_t *alg,
    EVP_PKEY *pkey, const char *data, size_t len, unsigned char *sig,
    size_t *siglen);
static int ent_saml_redirect_verify(const ent_saml_redirect_alg_t *alg,
    EVP_PKEY *pkey, const char *data, size_t len, const unsigned char *sig,
    size_t siglen);
static int ent_saml_redirect_verify_raw(const EVP_MD *md, EVP_PKEY *pkey,
    const char *data, size_t len, const unsigned char *sig, size_t siglen);
static int ent_saml_redirect_ecdsa_der(const unsigned char *raw, size_t n,
    unsigned char **der, size_t *derlen);
static int ent_saml_redirect_ecdsa_raw(const unsigned char *der,
    size_t derlen, size_t n, unsigned char *raw);
static void ent_saml_redirect_buf_add(ent_saml_redirect_buf_t *b,
    const char *s, size_t n);
static void ent_saml_redirect_buf_pct(ent_saml_redirect_buf_t *b,
    const unsigned char *s, size_t n);
static void ent_saml_redirect_buf_b64(ent_saml_redirect_buf_t *b,
    const unsigned char *s, size_t n);
static int ent_saml_redirect_deflate(const char *xml, size_t len,
    unsigned char **out, size_t *outlen);
static size_t ent_saml_redirect_bound(size_t zlen);
static int ent_saml_redirect_hex(unsigned char c);
static int ent_saml_redirect_pct_decode(const char *src, size_t len,
    unsigned char *dst, size_t *dstlen);
static int ent_saml_redirect_b64_value(unsigned char c);
static int ent_saml_redirect_b64_decode(const unsigned char *src, size_t len,
    unsigned char *dst, size_t *dstlen);
static int ent_saml_redirect_relay_ok(const unsigned char *s, size_t len);
static int ent_saml_redirect_params(const char *query, size_t len,
    ent_saml_redirect_param_t *params, char *err, size_t errlen);
static int ent_saml_redirect_check_sig(ent_saml_redirect_param_t *params,
    int body, const ent_saml_rkey_t *certs, int allow_sha1, char *err,
    size_t errlen);
static int ent_saml_redirect_relay(const ent_saml_redirect_param_t *param,
    char **out, char *err, size_t errlen);
static int ent_saml_redirect_message(const ent_saml_redirect_param_t *param,
    char **xml, size_t *xml_len, char *err, size_t errlen);
static int ent_saml_redirect_inflate(const unsigned char *z, size_t zlen,
    char **xml, size_t *xml_len, char *err, size_t errlen);


static const char  *const ent_saml_redirect_names[ENT_SRD_NPARAMS] = {
    "SAMLRequest",
    "SAMLResponse",
    "RelayState",
    "SigAlg",
    "Signature"
};


static const ent_saml_redirect_alg_t  ent_saml_redirect_algs[] = {
    { ENT_SAML_ALG_RSA_SHA256, EVP_sha256, EVP_PKEY_RSA, 0 },
    { ENT_SAML_ALG_RSA_SHA384, EVP_sha384, EVP_PKEY_RSA, 0 },
    { ENT_SAML_ALG_RSA_SHA512, EVP_sha512, EVP_PKEY_RSA, 0 },
    { ENT_SAML_ALG_ECDSA_SHA256, EVP_sha256, EVP_PKEY_EC, 0 },
    { ENT_SAML_ALG_ECDSA_SHA384, EVP_sha384, EVP_PKEY_EC, 0 },
    { ENT_SAML_ALG_RSA_SHA1, EVP_sha1, EVP_PKEY_RSA, 1 },
    { NULL, NULL, 0, 0 }
};


static const char  ent_saml_redirect_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static const char  ent_saml_redirect_hex_digits[] = "0123456789ABCDEF";


static void
ent_saml_redirect_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  args;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);
}


/* an encrypted key is refused: never a prompt on the terminal */

static int
ent_saml_redirect_no_passphrase(char *buf, int size, int rwflag, void *data)
{
    return -1;
}


/* RSA of 2048 to 8192 bits, or EC on P-256 or P-384 */

static int
ent_saml_redirect_key_ok(EVP_PKEY *pkey)
{
    int   bits;
    char  group[64];

    bits = EVP_PKEY_get_bits(pkey);

    switch (EVP_PKEY_get_base_id(pkey)) {

    case EVP_PKEY_RSA:
        return bits >= ENT_SRD_RSA_MIN && bits <= ENT_SRD_RSA_MAX;

    case EVP_PKEY_EC:
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), NULL)
            != 1)
        {
            return 0;
        }

        return strcmp(group, SN_X9_62_prime256v1) == 0
               || strcmp(group, SN_secp384r1) == 0;

    default:
        return 0;
    }
}


ent_saml_rkey_t *
ent_saml_rkey_load_private(const char *pem, size_t len, char *err,
    size_t errlen)
{
    BIO              *bio;
    EVP_PKEY         *pkey;
    ent_saml_rkey_t  *rkey;

    if (pem == NULL) {
        ent_saml_redirect_error(err, errlen, "no private key");
        return NULL;
    }

    if (len == 0) {
        len = strlen(pem);
    }

    if (len == 0 || len > ENT_SAML_REDIRECT_MAX_PEM) {
        ent_saml_redirect_error(err, errlen, "private key PEM empty or "
                                "too large");
        return NULL;
    }

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        ERR_clear_error();
        ent_saml_redirect_error(err, errlen, "out of memory");
        return NULL;
    }

    pkey = PEM_read_bio_PrivateKey(bio, NULL, ent_saml_redirect_no_passphrase,
                                   NULL);
    BIO_free(bio);
    ERR_clear_error();

    if (pkey == NULL) {
        ent_saml_redirect_error(err, errlen, "no usable PEM private key "
                                "(an encrypted key is not supported)");
        return NULL;
    }

    if (!ent_saml_redirect_key_ok(pkey)) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        ent_saml_redirect_error(err, errlen, "private key is not RSA of "
                                "2048 to 8192 bits or EC on P-256 or P-384");
        return NULL;
    }

    rkey = calloc(1, sizeof(ent_saml_rkey_t));
    if (rkey == NULL) {
        EVP_PKEY_free(pkey);
        ent_saml_redirect_error(err, errlen, "out of memory");
        return NULL;
    }

    rkey->keys[0] = pkey;
    rkey->nkeys = 1;
    rkey->private = 1;

    return rkey;
}


ent_saml_rkey_t *
ent_saml_rkey_load_certs(const char *pem, size_t len, char *err,
    size_t errlen)
{
    BIO              *bio;
    X509             *x509;
    EVP_PKEY         *pkey;
    unsigned long     e;
    ent_saml_rkey_t  *rkey;

    if (pem == NULL) {
        ent_saml_redirect_error(err, errlen, "no certificate");
        return NULL;
    }

    if (len == 0) {
        len = strlen(pem);
    }

    if (len == 0 || len > ENT_SAML_REDIRECT_MAX_PEM) {
        ent_saml_redirect_error(err, errlen, "certificate PEM empty or "
                                "too large");
        return NULL;
    }

    rkey = calloc(1, sizeof(ent_saml_rkey_t));
    if (rkey == NULL) {
        ent_saml_redirect_error(err, errlen, "out of memory");
        return NULL;
    }

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        ERR_clear_error();
        ent_saml_redirect_error(err, errlen, "out of memory");
        goto failed;
    }

    ERR_clear_error();

    for ( ;; ) {
        x509 = PEM_read_bio_X509(bio, NULL, ent_saml_redirect_no_passphrase,
                                 NULL);
        if (x509 == NULL) {
            break;
        }

        if (rkey->nkeys == ENT_SAML_REDIRECT_MAX_CERTS) {
            X509_free(x509);
            ent_saml_redirect_error(err, errlen, "too many certificates");
            goto failed;
        }

        pkey = X509_get_pubkey(x509);
        X509_free(x509);

        if (pkey == NULL) {
            ent_saml_redirect_error(err, errlen, "a certificate's public key "
                                    "cannot be read");
            goto failed;
        }

        rkey->keys[rkey->nkeys++] = pkey;

        if (!ent_saml_redirect_key_ok(pkey)) {
            ent_saml_redirect_error(err, errlen, "a certificate's key is not "
                                    "RSA of 2048 to 8192 bits or EC on "
                                    "P-256 or P-384");
            goto failed;
        }
    }

    /* the end of the text, or a broken certificate */

    e = ERR_peek_last_error();

    if (rkey->nkeys == 0
        || ERR_GET_LIB(e) != ERR_LIB_PEM
        || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
    {
        ent_saml_redirect_error(err, errlen, "not a list of PEM "
                                "certificates");
        goto failed;
    }

    BIO_free(bio);
    ERR_clear_error();

    return rkey;

failed:

    BIO_free(bio);
    ERR_clear_error();
    ent_saml_rkey_free(rkey);

    return NULL;
}


void
ent_saml_rkey_free(ent_saml_rkey_t *rkey)
{
    size_t  i;

    if (rkey == NULL) {
        return;
    }

    for (i = 0; i < rkey->nkeys; i++) {
        EVP_PKEY_free(rkey->keys[i]);
    }

    free(rkey);
}


static const ent_saml_redirect_alg_t *
ent_saml_redirect_sign_alg(EVP_PKEY *pkey)
{
    const char  *uri;

    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
        uri = ENT_SAML_ALG_RSA_SHA256;

    } else if (EVP_PKEY_get_bits(pkey) == 256) {
        uri = ENT_SAML_ALG_ECDSA_SHA256;

    } else {
        uri = ENT_SAML_ALG_ECDSA_SHA384;
    }

    return ent_saml_redirect_find_alg(uri, strlen(uri));
}


static const ent_saml_redirect_alg_t *
ent_saml_redirect_find_alg(const char *uri, size_t len)
{
    const ent_saml_redirect_alg_t  *alg;

    for (alg = ent_saml_redirect_algs; alg->uri; alg++) {
        if (strlen(alg->uri) == len && memcmp(alg->uri, uri, len) == 0) {
            return alg;
        }
    }

    return NULL;
}


/*
 * sig needs EVP_PKEY_get_size() bytes (an ECDSA signature, r || s, is
 * shorter than its DER form); ENT_SAML_OK or ENT_SAML_INTERNAL
 */

static int
ent_saml_redirect_sign(const ent_saml_redirect_alg_t *alg, EVP_PKEY *pkey,
    const char *data, size_t len, unsigned char *sig, size_t *siglen)
{
    int             rc;
    size_t          n;
    EVP_MD_CTX     *ctx;
    unsigned char   der[ENT_SRD_MAX_SIG];

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return ENT_SAML_INTERNAL;
    }

    rc = ENT_SAML_INTERNAL;
    n = sizeof(der);

    if (EVP_DigestSignInit(ctx, NULL, alg->md(), NULL, pkey) != 1
        || EVP_DigestSign(ctx, NULL, &n, (const unsigned char *) data, len)
           != 1
        || n > sizeof(der)
        || EVP_DigestSign(ctx, der, &n, (const unsigned char *) data, len)
           != 1)
    {
        goto done;
    }

    if (alg->type == EVP_PKEY_RSA) {
        memcpy(sig, der, n);
        *siglen = n;
        rc = ENT_SAML_OK;
        goto done;
    }

    *siglen = ((size_t) EVP_PKEY_get_bits(pkey) + 7) / 8 * 2;

    if (ent_saml_redirect_ecdsa_raw(der, n, *siglen / 2, sig) == 0) {
        rc = ENT_SAML_OK;
    }

done:

    EVP_MD_CTX_free(ctx);
    ERR_clear_error();

    return rc;
}


/* 1: verifies, 0: does not, -1: out of memory */

static int
ent_saml_redirect_verify(const ent_saml_redirect_alg_t *alg, EVP_PKEY *pkey,
    const char *data, size_t len, const unsigned char *sig, size_t siglen)
{
    int             rc;
    size_t          n, derlen;
    unsigned char  *der;

    if (alg->type == EVP_PKEY_RSA) {
        if (siglen != (size_t) EVP_PKEY_get_size(pkey)) {
            return 0;
        }

        return ent_saml_redirect_verify_raw(alg->md(), pkey, data, len, sig,
                                            siglen);
    }

    /* ECDSA: r || s of the order's size each, else DER */

    n = ((size_t) EVP_PKEY_get_bits(pkey) + 7) / 8;

    if (siglen == 2 * n) {
        rc = ent_saml_redirect_ecdsa_der(sig, n, &der, &derlen);
        if (rc != 0) {
            return -1;
        }

        rc = ent_saml_redirect_verify_raw(alg->md(), pkey, data, len, der,
                                          derlen);
        OPENSSL_free(der);

        if (rc != 0) {
            return rc;
        }
    }

    if (siglen < 8 || sig[0] != 0x30) {
        return 0;
    }

    return ent_saml_redirect_verify_raw(alg->md(), pkey, data, len, sig,
                                        siglen);
}


static int
ent_saml_redirect_verify_raw(const EVP_MD *md, EVP_PKEY *pkey,
    const char *data, size_t len, const unsigned char *sig, size_t siglen)
{
    int          rc;
    EVP_MD_CTX  *ctx;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    rc = 0;

    if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) == 1
        && EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *) data,
                            len)
           == 1)
    {
        rc = 1;
    }

    EVP_MD_CTX_free(ctx);
    ERR_clear_error();

    return rc;
}


/* r || s, n bytes each, to DER; *der is OPENSSL_free()d by the caller */

static int
ent_saml_redirect_ecdsa_der(const unsigned char *raw, size_t n,
    unsigned char **der, size_t *derlen)
{
    int         len;
    BIGNUM     *r, *s;
    ECDSA_SIG  *es;

    *der = NULL;

    es = ECDSA_SIG_new();
    r = BN_bin2bn(raw, (int) n, NULL);
    s = BN_bin2bn(raw + n, (int) n, NULL);

    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1)
    {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(s);
        ERR_clear_error();
        return -1;
    }

    len = i2d_ECDSA_SIG(es, der);
    ECDSA_SIG_free(es);

    if (len <= 0) {
        ERR_clear_error();
        return -1;
    }

    *derlen = (size_t) len;

    return 0;
}


/* DER to r || s, n bytes each */

static int
ent_saml_redirect_ecdsa_raw(const unsigned char *der, size_t derlen,
    size_t n, unsigned char *raw)
{
    int                   rc;
    const BIGNUM         *r, *s;
    ECDSA_SIG            *es;
    const unsigned char  *p;

    p = der;

    es = d2i_ECDSA_SIG(NULL, &p, (long) derlen);
    if (es == NULL) {
        return -1;
    }

    ECDSA_SIG_get0(es, &r, &s);

    rc = (BN_bn2binpad(r, raw, (int) n) == (int) n
          && BN_bn2binpad(s, raw + n, (int) n) == (int) n) ? 0 : -1;

    ECDSA_SIG_free(es);

    return rc;
}


int
ent_saml_redirect_encode(const char *param, const char *xml,
    size_t xml_len, const char *relay_state, const char *key_pem,
    size_t key_len, char **out, size_t *outlen)
{
    int               rc;
    ent_saml_rkey_t  *key;

    *out = NULL;
    *outlen = 0;

    if (key_pem == NULL) {
        return ent_saml_redirect_encode_rkey(param, xml, xml_len,
                                             relay_state, NULL, out, outlen);
    }

    key = ent_saml_rkey_load_private(key_pem, key_len, NULL, 0);
    if (key == NULL) {
        return ENT_SAML_SIGNATURE;
    }

    rc = ent_saml_redirect_encode_rkey(param, xml, xml_len, relay_state, key,
                                       out, outlen);

    ent_saml_rkey_free(key);

    return rc;
}


int
ent_saml_redirect_encode_rkey(const char *param, const char *xml,
    size_t xml_len, const char *relay_state, const ent_saml_rkey_t *key,
    char **out, size_t *outlen)
{
    int                             rc;
    size_t                          zlen, rlen, siglen;
    unsigned char                  *z, sig[ENT_SRD_MAX_SIG];
    ent_saml_redirect_buf_t         b;
    const ent_saml_redirect_alg_t  *alg;

    *out = NULL;
    *outlen = 0;

    if (param == NULL
        || (strcmp(param, ent_saml_redirect_names[ENT_SRD_REQUEST]) != 0
            && strcmp(param, ent_saml_redirect_names[ENT_SRD_RESPONSE]) != 0))
    {
        return ENT_SAML_MALFORMED;
    }

    if (xml == NULL || xml_len == 0 || xml_len > ENT_SAML_REDIRECT_MAX_XML
        || memchr(xml, '\0', xml_len) != NULL)
    {
        return ENT_SAML_MALFORMED;
    }

    rlen = 0;

    if (relay_state != NULL) {
        rlen = strnlen(relay_state, ENT_SAML_REDIRECT_MAX_RELAY + 1);

        if (!ent_saml_redirect_relay_ok((const unsigned char *) relay_state,
                                        rlen))
        {
            return ENT_SAML_MALFORMED;
        }
    }

    alg = NULL;

    if (key != NULL) {
        if (!key->private || key->nkeys != 1) {
            return ENT_SAML_SIGNATURE;
        }

        alg = ent_saml_redirect_sign_alg(key->keys[0]);
        if (alg == NULL) {
            return ENT_SAML_INTERNAL;
        }
    }

    rc = ent_saml_redirect_deflate(xml, xml_len, &z, &zlen);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    /* what the decoder's ratio guard would refuse is not sent */

    if (xml_len > ent_saml_redirect_bound(zlen)) {
        free(z);
        return ENT_SAML_MALFORMED;
    }

    memset(&b, 0, sizeof(ent_saml_redirect_buf_t));

    ent_saml_redirect_buf_add(&b, param, strlen(param));
    ent_saml_redirect_buf_add(&b, "=", 1);
    ent_saml_redirect_buf_b64(&b, z, zlen);

    free(z);

    if (relay_state != NULL) {
        ent_saml_redirect_buf_add(&b, "&RelayState=",
                                  sizeof("&RelayState=") - 1);
        ent_saml_redirect_buf_pct(&b, (const unsigned char *) relay_state,
                                  rlen);
    }

    if (alg != NULL) {
        ent_saml_redirect_buf_add(&b, "&SigAlg=", sizeof("&SigAlg=") - 1);
        ent_saml_redirect_buf_pct(&b, (const unsigned char *) alg->uri,
                                  strlen(alg->uri));

        if (b.failed) {
            free(b.data);
            return ENT_SAML_INTERNAL;
        }

        if (b.len > ENT_SAML_REDIRECT_MAX_QUERY) {
            free(b.data);
            return ENT_SAML_MALFORMED;
        }

        rc = ent_saml_redirect_sign(alg, key->keys[0], b.data, b.len, sig,
                                    &siglen);
        if (rc != ENT_SAML_OK) {
            free(b.data);
            return rc;
        }

        ent_saml_redirect_buf_add(&b, "&Signature=",
                                  sizeof("&Signature=") - 1);
        ent_saml_redirect_buf_b64(&b, sig, siglen);
    }

    if (b.failed) {
        free(b.data);
        return ENT_SAML_INTERNAL;
    }

    if (b.len > ENT_SAML_REDIRECT_MAX_QUERY) {
        free(b.data);
        return ENT_SAML_MALFORMED;
    }

    *out = b.data;
    *outlen = b.len;

    return ENT_SAML_OK;
}


/* the buffer stays NUL-terminated; a failure is remembered, not returned */

static void
ent_saml_redirect_buf_add(ent_saml_redirect_buf_t *b, const char *s,
    size_t n)
{
    char    *p;
    size_t   size;

    if (b->failed) {
        return;
    }

    if (b->len + n + 1 > b->size) {
        size = b->size ? b->size : 1024;

        while (size < b->len + n + 1) {
            size *= 2;
        }

        p = realloc(b->data, size);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->data = p;
        b->size = size;
    }

    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}


/* RFC 3986 unreserved characters as they are, any other byte as %XX */

static void
ent_saml_redirect_buf_pct(ent_saml_redirect_buf_t *b, const unsigned char *s,
    size_t n)
{
    char    hex[3];
    size_t  i;

    for (i = 0; i < n; i++) {
        if ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')
            || (s[i] >= '0' && s[i] <= '9')
            || s[i] == '-' || s[i] == '.' || s[i] == '_' || s[i] == '~')
        {
            ent_saml_redirect_buf_add(b, (const char *) &s[i], 1);
            continue;
        }

        hex[0] = '%';
        hex[1] = ent_saml_redirect_hex_digits[s[i] >> 4];
        hex[2] = ent_saml_redirect_hex_digits[s[i] & 0x0f];

        ent_saml_redirect_buf_add(b, hex, 3);
    }
}


/* standard base64 with padding, then percent-encoded */

static void
ent_saml_redirect_buf_b64(ent_saml_redirect_buf_t *b, const unsigned char *s,
    size_t n)
{
    size_t         i, k;
    unsigned char  q[4];
    unsigned long  acc;

    for (i = 0; i < n; i += 3) {
        k = n - i < 3 ? n - i : 3;

        acc = (unsigned long) s[i] << 16;

        if (k > 1) {
            acc |= (unsigned long) s[i + 1] << 8;
        }

        if (k > 2) {
            acc |= s[i + 2];
        }

        q[0] = ent_saml_redirect_b64_alphabet[(acc >> 18) & 0x3f];
        q[1] = ent_saml_redirect_b64_alphabet[(acc >> 12) & 0x3f];
        q[2] = k > 1 ? ent_saml_redirect_b64_alphabet[(acc >> 6) & 0x3f] : '=';
        q[3] = k > 2 ? ent_saml_redirect_b64_alphabet[acc & 0x3f] : '=';

        ent_saml_redirect_buf_pct(b, q, 4);
    }
}


/* raw DEFLATE (RFC 1951), best compression; *out is malloc()ed */

static int
ent_saml_redirect_deflate(const char *xml, size_t len, unsigned char **out,
    size_t *outlen)
{
    int             rc;
    size_t          size;
    z_stream        zs;
    unsigned char  *z;

    *out = NULL;

    memset(&zs, 0, sizeof(z_stream));

    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY)
        != Z_OK)
    {
        return ENT_SAML_INTERNAL;
    }

    size = deflateBound(&zs, (uLong) len);

    z = malloc(size);
    if (z == NULL) {
        deflateEnd(&zs);
        return ENT_SAML_INTERNAL;
    }

    zs.next_in = (Bytef *) xml;
    zs.avail_in = (uInt) len;
    zs.next_out = z;
    zs.avail_out = (uInt) size;

    rc = deflate(&zs, Z_FINISH);
    size = zs.total_out;
    deflateEnd(&zs);

    if (rc != Z_STREAM_END) {
        free(z);
        return ENT_SAML_INTERNAL;
    }

    *out = z;
    *outlen = size;

    return ENT_SAML_OK;
}


/* the most a DEFLATE stream of zlen bytes may inflate to */

static size_t
ent_saml_redirect_bound(size_t zlen)
{
    if (zlen >= (ENT_SAML_REDIRECT_MAX_XML - ENT_SAML_REDIRECT_RATIO_FLOOR)
                / ENT_SAML_REDIRECT_MAX_RATIO)
    {
        return ENT_SAML_REDIRECT_MAX_XML;
    }

    return ENT_SAML_REDIRECT_RATIO_FLOOR + zlen * ENT_SAML_REDIRECT_MAX_RATIO;
}


static int
ent_saml_redirect_hex(unsigned char c)
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


/*
 * application/x-www-form-urlencoded: "%XX" (either case), "+" is a space,
 * any other byte as it is; dst has room for len bytes
 */

static int
ent_saml_redirect_pct_decode(const char *src, size_t len, unsigned char *dst,
    size_t *dstlen)
{
    int            hi, lo;
    size_t         i, o;
    unsigned char  c;

    o = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) src[i];

        if (c == '+') {
            dst[o++] = ' ';
            continue;
        }

        if (c != '%') {
            dst[o++] = c;
            continue;
        }

        if (len - i < 3) {
            return -1;
        }

        hi = ent_saml_redirect_hex((unsigned char) src[i + 1]);
        lo = ent_saml_redirect_hex((unsigned char) src[i + 2]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        dst[o++] = (unsigned char) (hi << 4 | lo);
        i += 2;
    }

    *dstlen = o;

    return 0;
}


static int
ent_saml_redirect_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '+') {
        return 62;
    }

    if (c == '/') {
        return 63;
    }

    return -1;
}


/*
 * strict standard base64: padding to a multiple of four, "=" only in the
 * last quantum, unused bits zero, at least one byte; CR, LF, TAB and space
 * are skipped anywhere.  dst has room for len / 4 * 3 bytes.
 */

static int
ent_saml_redirect_b64_decode(const unsigned char *src, size_t len,
    unsigned char *dst, size_t *dstlen)
{
    int            v, done;
    size_t         i, n, pad, o;
    unsigned long  acc;

    n = 0;
    pad = 0;
    o = 0;
    acc = 0;
    done = 0;

    for (i = 0; i < len; i++) {
        if (src[i] == '\r' || src[i] == '\n' || src[i] == '\t'
            || src[i] == ' ')
        {
            continue;
        }

        if (done) {
            return -1;
        }

        if (src[i] == '=') {
            if (n < 2) {
                return -1;
            }

            pad++;
            v = 0;

        } else {
            if (pad) {
                return -1;
            }

            v = ent_saml_redirect_b64_value(src[i]);
            if (v < 0) {
                return -1;
            }
        }

        acc = (acc << 6) | (unsigned long) v;

        if (++n < 4) {
            continue;
        }

        if ((pad == 2 && (acc & 0xffff) != 0)
            || (pad == 1 && (acc & 0xff) != 0))
        {
            return -1;
        }

        dst[o++] = (unsigned char) (acc >> 16);

        if (pad < 2) {
            dst[o++] = (unsigned char) (acc >> 8);
        }

        if (pad < 1) {
            dst[o++] = (unsigned char) acc;
        }

        done = pad > 0;
        n = 0;
        acc = 0;
    }

    if (n != 0 || o == 0) {
        return -1;
    }

    *dstlen = o;

    return 0;
}


/* a RelayState: 1 to ENT_SAML_REDIRECT_MAX_RELAY bytes, no control byte */

static int
ent_saml_redirect_relay_ok(const unsigned char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > ENT_SAML_REDIRECT_MAX_RELAY) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}


int
ent_saml_redirect_decode(const char *query, size_t len,
    const ent_saml_rkey_t *idp_certs, int require_signature, int allow_sha1,
    ent_saml_redirect_t *out, char *err, size_t errlen)
{
    int                        rc, body, is_signed;
    char                      *relay, *xml;
    size_t                     xml_len;
    ent_saml_redirect_param_t  params[ENT_SRD_NPARAMS];

    memset(out, 0, sizeof(ent_saml_redirect_t));

    if (query == NULL || len == 0) {
        ent_saml_redirect_error(err, errlen, "empty query string");
        return ENT_SAML_MALFORMED;
    }

    if (len > ENT_SAML_REDIRECT_MAX_QUERY) {
        ent_saml_redirect_error(err, errlen, "query string too long");
        return ENT_SAML_MALFORMED;
    }

    rc = ent_saml_redirect_params(query, len, params, err, errlen);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    if (params[ENT_SRD_REQUEST].found && params[ENT_SRD_RESPONSE].found) {
        ent_saml_redirect_error(err, errlen, "both SAMLRequest and "
                                "SAMLResponse in the query");
        return ENT_SAML_MALFORMED;
    }

    if (!params[ENT_SRD_REQUEST].found && !params[ENT_SRD_RESPONSE].found) {
        ent_saml_redirect_error(err, errlen, "no SAMLRequest or "
                                "SAMLResponse in the query");
        return ENT_SAML_MALFORMED;
    }

    body = params[ENT_SRD_REQUEST].found ? ENT_SRD_REQUEST : ENT_SRD_RESPONSE;

    if (params[ENT_SRD_SIGALG].found && !params[ENT_SRD_SIGNATURE].found) {
        ent_saml_redirect_error(err, errlen, "SigAlg without Signature");
        return ENT_SAML_SIGNATURE;
    }

    if (params[ENT_SRD_SIGNATURE].found && !params[ENT_SRD_SIGALG].found) {
        ent_saml_redirect_error(err, errlen, "Signature without SigAlg");
        return ENT_SAML_SIGNATURE;
    }

    if (require_signature && !params[ENT_SRD_SIGNATURE].found) {
        ent_saml_redirect_error(err, errlen, "the message is not signed");
        return ENT_SAML_SIGNATURE;
    }

    if (require_signature && idp_certs == NULL) {
        ent_saml_redirect_error(err, errlen, "a signature is required but "
                                "there is no certificate to verify it");
        return ENT_SAML_SIGNATURE;
    }

    is_signed = 0;

    if (idp_certs != NULL && params[ENT_SRD_SIGNATURE].found) {
        rc = ent_saml_redirect_check_sig(params, body, idp_certs, allow_sha1,
                                         err, errlen);
        if (rc != ENT_SAML_OK) {
            return rc;
        }

        is_signed = 1;
    }

    relay = NULL;

    if (params[ENT_SRD_RELAY].found) {
        rc = ent_saml_redirect_relay(&params[ENT_SRD_RELAY], &relay, err,
                                     errlen);
        if (rc != ENT_SAML_OK) {
            return rc;
        }
    }

    rc = ent_saml_redirect_message(&params[body], &xml, &xml_len, err,
                                   errlen);
    if (rc != ENT_SAML_OK) {
        free(relay);
        return rc;
    }

    out->xml = xml;
    out->xml_len = xml_len;
    out->relay_state = relay;
    out->is_request = (body == ENT_SRD_REQUEST);
    out->is_signed = is_signed;

    return ENT_SAML_OK;
}


void
ent_saml_redirect_free(ent_saml_redirect_t *msg)
{
    if (msg == NULL) {
        return;
    }

    free(msg->xml);
    free(msg->relay_state);

    memset(msg, 0, sizeof(ent_saml_redirect_t));
}


/*
 * Finds the five parameters by their exact names, nothing decoded; a name
 * without "=" has an empty value.  Duplicates and empty values are errors.
 */

static int
ent_saml_redirect_params(const char *query, size_t len,
    ent_saml_redirect_param_t *params, char *err, size_t errlen)
{
    size_t       i, k, end, eq, nlen;
    const char  *amp, *s;

    memset(params, 0, ENT_SRD_NPARAMS * sizeof(ent_saml_redirect_param_t));

    for (i = 0; i < len; i = end + 1) {
        amp = memchr(query + i, '&', len - i);
        end = amp ? (size_t) (amp - query) : len;

        s = memchr(query + i, '=', end - i);
        eq = s ? (size_t) (s - query) : end;
        nlen = eq - i;

        for (k = 0; k < ENT_SRD_NPARAMS; k++) {
            if (strlen(ent_saml_redirect_names[k]) == nlen
                && memcmp(ent_saml_redirect_names[k], query + i, nlen) == 0)
            {
                break;
            }
        }

        if (k == ENT_SRD_NPARAMS) {
            continue;
        }

        if (params[k].found) {
            ent_saml_redirect_error(err, errlen, "more than one %s in the "
                                    "query", ent_saml_redirect_names[k]);
            return ENT_SAML_MALFORMED;
        }

        params[k].found = 1;
        params[k].value = query + (eq < end ? eq + 1 : end);
        params[k].len = eq < end ? end - eq - 1 : 0;

        if (params[k].len == 0) {
            ent_saml_redirect_error(err, errlen, "empty %s",
                                    ent_saml_redirect_names[k]);
            return ENT_SAML_MALFORMED;
        }
    }

    return ENT_SAML_OK;
}


/*
 * SigAlg and Signature are present: the algorithm must be allowed, and a
 * certificate of its key type must verify the signature over the values
 * as received, in the specification's order.
 */

static int
ent_saml_redirect_check_sig(ent_saml_redirect_param_t *params, int body,
    const ent_saml_rkey_t *certs, int allow_sha1, char *err, size_t errlen)
{
    int                             rc, v;
    char                           *signed_octets, *p;
    size_t                          i, n, alglen, siglen, tried;
    unsigned char                   alg_uri[ENT_SRD_MAX_SIGALG];
    unsigned char                   sig_b64[ENT_SRD_MAX_SIG_RAW];
    unsigned char                   sig[ENT_SRD_MAX_SIG_RAW / 4 * 3];
    const ent_saml_redirect_alg_t  *alg;
    ent_saml_redirect_param_t      *pb, *pr, *pa, *ps;

    pb = &params[body];
    pr = &params[ENT_SRD_RELAY];
    pa = &params[ENT_SRD_SIGALG];
    ps = &params[ENT_SRD_SIGNATURE];

    alg = NULL;

    if (pa->len <= sizeof(alg_uri)
        && ent_saml_redirect_pct_decode(pa->value, pa->len, alg_uri, &alglen)
           == 0)
    {
        alg = ent_saml_redirect_find_alg((const char *) alg_uri, alglen);
    }

    if (alg == NULL) {
        ent_saml_redirect_error(err, errlen, "SigAlg is not one of "
                                "rsa-sha256/384/512 or ecdsa-sha256/384");
        return ENT_SAML_SIGNATURE;
    }

    if (alg->sha1 && !allow_sha1) {
        ent_saml_redirect_error(err, errlen, "SigAlg rsa-sha1 is not "
                                "allowed");
        return ENT_SAML_SIGNATURE;
    }

    /* percent-decoding only shortens, base64 by a quarter */

    if (ps->len > ENT_SRD_MAX_SIG_RAW) {
        ent_saml_redirect_error(err, errlen, "Signature too long");
        return ENT_SAML_SIGNATURE;
    }

    if (ent_saml_redirect_pct_decode(ps->value, ps->len, sig_b64, &n) != 0
        || ent_saml_redirect_b64_decode(sig_b64, n, sig, &siglen) != 0)
    {
        ent_saml_redirect_error(err, errlen, "Signature is not valid "
                                "percent-encoded base64");
        return ENT_SAML_SIGNATURE;
    }

    /* name=value[&RelayState=value]&SigAlg=value */

    n = strlen(ent_saml_redirect_names[body]) + 1 + pb->len
        + (pr->found ? sizeof("&RelayState=") - 1 + pr->len : 0)
        + sizeof("&SigAlg=") - 1 + pa->len;

    signed_octets = malloc(n);
    if (signed_octets == NULL) {
        ent_saml_redirect_error(err, errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    p = signed_octets;

    i = strlen(ent_saml_redirect_names[body]);
    memcpy(p, ent_saml_redirect_names[body], i);
    p += i;
    *p++ = '=';
    memcpy(p, pb->value, pb->len);
    p += pb->len;

    if (pr->found) {
        memcpy(p, "&RelayState=", sizeof("&RelayState=") - 1);
        p += sizeof("&RelayState=") - 1;
        memcpy(p, pr->value, pr->len);
        p += pr->len;
    }

    memcpy(p, "&SigAlg=", sizeof("&SigAlg=") - 1);
    p += sizeof("&SigAlg=") - 1;
    memcpy(p, pa->value, pa->len);

    rc = ENT_SAML_SIGNATURE;
    tried = 0;

    for (i = 0; i < certs->nkeys; i++) {
        if (EVP_PKEY_get_base_id(certs->keys[i]) != alg->type) {
            continue;
        }

        tried++;

        v = ent_saml_redirect_verify(alg, certs->keys[i], signed_octets, n,
                                     sig, siglen);
        if (v == 1) {
            rc = ENT_SAML_OK;
            break;
        }

        if (v < 0) {
            rc = ENT_SAML_INTERNAL;
            break;
        }
    }

    free(signed_octets);

    if (rc == ENT_SAML_INTERNAL) {
        ent_saml_redirect_error(err, errlen, "out of memory");

    } else if (rc != ENT_SAML_OK && tried == 0) {
        ent_saml_redirect_error(err, errlen, "no certificate of the "
                                "SigAlg's key type");

    } else if (rc != ENT_SAML_OK) {
        ent_saml_redirect_error(err, errlen, "Signature does not verify");
    }

    return rc;
}


static int
ent_saml_redirect_relay(const ent_saml_redirect_param_t *param, char **out,
    char *err, size_t errlen)
{
    size_t          n;
    unsigned char  *s;

    *out = NULL;

    s = malloc(param->len + 1);
    if (s == NULL) {
        ent_saml_redirect_error(err, errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    if (ent_saml_redirect_pct_decode(param->value, param->len, s, &n) != 0) {
        free(s);
        ent_saml_redirect_error(err, errlen, "RelayState is not valid "
                                "percent-encoding");
        return ENT_SAML_MALFORMED;
    }

    if (n > ENT_SAML_REDIRECT_MAX_RELAY) {
        free(s);
        ent_saml_redirect_error(err, errlen, "RelayState too long");
        return ENT_SAML_MALFORMED;
    }

    if (!ent_saml_redirect_relay_ok(s, n)) {
        free(s);
        ent_saml_redirect_error(err, errlen, "RelayState contains a "
                                "control character");
        return ENT_SAML_MALFORMED;
    }

    s[n] = '\0';
    *out = (char *) s;

    return ENT_SAML_OK;
}


/* percent-decoding, base64, raw inflate */

static int
ent_saml_redirect_message(const ent_saml_redirect_param_t *param,
    char **xml, size_t *xml_len, char *err, size_t errlen)
{
    int             rc;
    size_t          n, zlen;
    unsigned char  *b64, *z;

    *xml = NULL;

    b64 = malloc(param->len + param->len / 4 * 3 + 3);
    if (b64 == NULL) {
        ent_saml_redirect_error(err, errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    z = b64 + param->len;

    if (ent_saml_redirect_pct_decode(param->value, param->len, b64, &n) != 0)
    {
        free(b64);
        ent_saml_redirect_error(err, errlen, "SAML message is not valid "
                                "percent-encoding");
        return ENT_SAML_MALFORMED;
    }

    if (ent_saml_redirect_b64_decode(b64, n, z, &zlen) != 0) {
        free(b64);
        ent_saml_redirect_error(err, errlen, "SAML message is not valid "
                                "base64");
        return ENT_SAML_MALFORMED;
    }

    rc = ent_saml_redirect_inflate(z, zlen, xml, xml_len, err, errlen);

    free(b64);

    return rc;
}


/*
 * Raw inflate into one buffer a byte larger than the bound: filling that
 * byte means too large, and inflating stops there.
 */

static int
ent_saml_redirect_inflate(const unsigned char *z, size_t zlen, char **xml,
    size_t *xml_len, char *err, size_t errlen)
{
    int        rc;
    char      *out;
    size_t     bound, n, rest, room;
    z_stream   zs;

    bound = ent_saml_redirect_bound(zlen);

    out = malloc(bound + 2);
    if (out == NULL) {
        ent_saml_redirect_error(err, errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    memset(&zs, 0, sizeof(z_stream));

    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
        free(out);
        ent_saml_redirect_error(err, errlen, "inflate failed");
        return ENT_SAML_INTERNAL;
    }

    zs.next_in = (Bytef *) z;
    zs.avail_in = (uInt) zlen;
    zs.next_out = (Bytef *) out;
    zs.avail_out = (uInt) (bound + 1);

    do {
        rc = inflate(&zs, Z_FINISH);
    } while (rc == Z_OK);

    n = zs.total_out;
    rest = zs.avail_in;
    room = zs.avail_out;

    inflateEnd(&zs);

    if (n > bound) {
        free(out);
        ent_saml_redirect_error(err, errlen, "SAML message too large once "
                                "inflated");
        return ENT_SAML_MALFORMED;
    }

    if (rc == Z_STREAM_END && rest != 0) {
        free(out);
        ent_saml_redirect_error(err, errlen, "data after the end of the "
                                "DEFLATE stream");
        return ENT_SAML_MALFORMED;
    }

    if (rc != Z_STREAM_END) {
        free(out);

        if (rc == Z_BUF_ERROR && room != 0 && rest == 0) {
            ent_saml_redirect_error(err, errlen, "DEFLATE stream truncated");

        } else if (zlen >= 2
                   && ((z[0] == 0x1f && z[1] == 0x8b)
                       || ((z[0] & 0x0f) == Z_DEFLATED && (z[0] >> 4) <= 7
                           && ((z[0] << 8) | z[1]) % 31 == 0)))
        {
            ent_saml_redirect_error(err, errlen, "SAML message is zlib- or "
                                    "gzip-wrapped, not raw DEFLATE");

        } else {
            ent_saml_redirect_error(err, errlen, "SAML message is not raw "
                                    "DEFLATE");
        }

        return ENT_SAML_MALFORMED;
    }

    if (n == 0 || memchr(out, '\0', n) != NULL) {
        free(out);
        ent_saml_redirect_error(err, errlen, "SAML message empty or with a "
                                "NUL byte");
        return ENT_SAML_MALFORMED;
    }

    out[n] = '\0';

    *xml = out;
    *xml_len = n;

    return ENT_SAML_OK;
}
