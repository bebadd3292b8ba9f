/*
 * ngx_ent SSO: I/O-free SAML 2.0 service provider (see ngx_ent_saml.h).
 *
 * The order of a check matters: the base64 and the XML are bounded and
 * parsed without any DTD; the document's shape is checked (one Response,
 * one Assertion in the whole document, no xml:id, unique IDs) before any
 * signature is looked at; each signature's SignedInfo is checked by hand
 * against the allowed algorithms and the one allowed Reference before
 * xmlsec verifies it with only the signed element's ID registered and only
 * the pinned key; and every value is then read from the verified element's
 * subtree, found once, by walking its children, never by searching.
 *
 * An EncryptedAssertion is decrypted after the Response's signature is
 * verified and before anything else is read from it: the key transport is
 * done here with OpenSSL (xmlsec 1.2 knows neither xmlenc11#rsa-oaep nor
 * OAEP digests other than SHA-1), the data decryption by one xmlsec AES
 * transform built by hand (no KeyInfo, no URI, no keys manager is ever
 * consulted), and the plaintext is parsed in the Response's namespace
 * context, as XML Encryption wants it.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/valid.h>
#include <libxml/xmlerror.h>

#include <xmlsec/xmlsec.h>
#include <xmlsec/buffer.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/keys.h>
#include <xmlsec/list.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmldsig.h>

#include "ngx_ent_saml.h"


#define ENT_SAMLP_NS         "urn:oasis:names:tc:SAML:2.0:protocol"
#define ENT_SAML_NS          "urn:oasis:names:tc:SAML:2.0:assertion"
#define ENT_DSIG_NS          "http://www.w3.org/2000/09/xmldsig#"
#define ENT_MD_NS            "urn:oasis:names:tc:SAML:2.0:metadata"
#define ENT_XENC_NS          "http://www.w3.org/2001/04/xmlenc#"
#define ENT_XENC11_NS        "http://www.w3.org/2009/xmlenc11#"

#define ENT_STATUS_PREFIX    "urn:oasis:names:tc:SAML:2.0:status:"
#define ENT_STATUS_SUCCESS   ENT_STATUS_PREFIX "Success"
#define ENT_CM_BEARER        "urn:oasis:names:tc:SAML:2.0:cm:bearer"
#define ENT_NAMEID_ENTITY    "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
#define ENT_NAMEID_EMAIL                                                      \
    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
#define ENT_NAMEID_UNSPECIFIED                                                \
    "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
#define ENT_BINDING_POST     "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
#define ENT_BINDING_REDIRECT                                                  \
    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
#define ENT_STATUS_RESPONDER ENT_STATUS_PREFIX "Responder"

#define ENT_ALG_EXC_C14N     "http://www.w3.org/2001/10/xml-exc-c14n#"
#define ENT_ALG_ENVELOPED                                                     \
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
#define ENT_ALG_RSA_SHA1     "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
#define ENT_ALG_SHA1         "http://www.w3.org/2000/09/xmldsig#sha1"
#define ENT_ALG_SHA256       "http://www.w3.org/2001/04/xmlenc#sha256"
#define ENT_ALG_SHA384       "http://www.w3.org/2001/04/xmldsig-more#sha384"
#define ENT_ALG_SHA512       "http://www.w3.org/2001/04/xmlenc#sha512"
#define ENT_ALG_RSA_OAEP_MGF1P  ENT_XENC_NS "rsa-oaep-mgf1p"
#define ENT_ALG_RSA_OAEP     ENT_XENC11_NS "rsa-oaep"
#define ENT_ALG_AES128_CBC   ENT_XENC_NS "aes128-cbc"
#define ENT_ALG_AES256_CBC   ENT_XENC_NS "aes256-cbc"
#define ENT_ALG_AES128_GCM   ENT_XENC11_NS "aes128-gcm"
#define ENT_ALG_AES256_GCM   ENT_XENC11_NS "aes256-gcm"
#define ENT_XENC_ELEMENT     ENT_XENC_NS "Element"

#define ENT_PEM_BEGIN        "-----BEGIN CERTIFICATE-----"
#define ENT_PEM_END          "-----END CERTIFICATE-----"

#define ENT_SAML_KEYS_IDP    1
#define ENT_SAML_KEYS_SP     2

#define ENT_SAML_MAX_ENC_KEYS  4     /* EncryptedKeys tried */
#define ENT_SAML_MAX_URL_LEN   2048  /* in metadata */
#define ENT_SAML_MAX_DEPTH     8     /* nested EntitiesDescriptors */

#define ENT_SAML_PARSE_OPTIONS                                                \
    (XML_PARSE_NONET|XML_PARSE_NOERROR|XML_PARSE_NOWARNING)

#define ENT_SAML_MAX_ID_LEN  256
#define ENT_SAML_STATUS_LEN  64      /* of a status code put in err */

/* an attribute value that is not one text node: equal to nothing */
#define ENT_SAML_ODD_VALUE   "\x01"

#define ENT_SAML_DECRYPT_FAILED  "cannot decrypt the assertion"


struct ent_saml_keys_s {
    int                       kind;
    size_t                    nkeys;
    xmlSecKeyPtr              keys[ENT_SAML_MAX_CERTS];   /* the IdP's */
    EVP_PKEY                 *pkey;                       /* the SP's */
};


typedef struct {
    const ent_saml_expect_t  *expect;
    ent_saml_result_t        *out;
    char                     *err;
    size_t                    errlen;
    xmlDocPtr                 doc;
    xmlNodePtr                response;
    xmlNodePtr                assertion;
    xmlNodePtr                encrypted;          /* EncryptedAssertion */
    const char               *in_response_to;     /* the Response's */
    const ent_saml_keys_t    *idp_keys;
    ent_saml_keys_t          *own_idp_keys;       /* loaded for this call */
    ent_saml_keys_t          *own_sp_keys;
} ent_saml_ctx_t;


/* an EncryptedKey as we allow it */

typedef struct {
    const EVP_MD             *md;
    const EVP_MD             *mgf;
    xmlNodePtr                label;              /* OAEPparams, or NULL */
    xmlNodePtr                value;              /* CipherValue */
} ent_saml_enc_key_t;


/* the data encryption algorithms accepted */

typedef struct {
    const char               *uri;
    size_t                    key_len;
    int                       gcm;
} ent_saml_cipher_t;


typedef struct {
    char                     *data;
    size_t                    len;
    size_t                    size;
    int                       failed;
} ent_saml_buf_t;


static void ent_saml_error(char *err, size_t errlen, const char *fmt, ...);
static void ent_saml_xml_silent(void *ctx, const char *msg, ...);
static void ent_saml_xml_silent_structured(void *ctx, xmlErrorPtr error);
static void ent_saml_sec_silent(const char *file, int line, const char *func,
    const char *object, const char *subject, int reason, const char *msg);
static const char *ent_saml_find(const char *s, size_t len, const char *lit);
static int ent_saml_no_password(char *buf, int size, int rwflag, void *u);
static int ent_saml_b64_value(unsigned char c);
static int ent_saml_b64_decode(const unsigned char *src, size_t len,
    unsigned char *dst, size_t *dstlen);
static void ent_saml_sax_subset(void *ctx, const xmlChar *name,
    const xmlChar *external_id, const xmlChar *system_id);
static void ent_saml_sax_entity(void *ctx, const xmlChar *name, int type,
    const xmlChar *public_id, const xmlChar *system_id, xmlChar *content);
static xmlDocPtr ent_saml_parse(const unsigned char *xml, size_t len,
    const char *what, int *rc, char *err, size_t errlen);
static int ent_saml_is(xmlNodePtr node, const char *ns, const char *name);
static xmlNodePtr ent_saml_child(xmlNodePtr parent, const char *ns,
    const char *name, size_t *count);
static const char *ent_saml_prop(xmlNodePtr node, const char *name);
static int ent_saml_valid_id(const char *id);
static int ent_saml_clean(const char *s, size_t len);
static int ent_saml_text(xmlNodePtr node, size_t max, char **out);
static int ent_saml_text_eq(xmlNodePtr node, const char *expected);
static int ent_saml_time_prop(xmlNodePtr node, const char *name, int required,
    time_t *t);
static void ent_saml_status_name(char *dst, const char *value);
static int ent_saml_check_status(ent_saml_ctx_t *c);
static int ent_saml_scan(ent_saml_ctx_t *c, const char *rid, const char *aid);
static int ent_saml_check_issuer(ent_saml_ctx_t *c, xmlNodePtr parent,
    int required);
static int ent_saml_alg_in(const char *alg, const char *const *list);
static int ent_saml_signed_info(ent_saml_ctx_t *c, xmlNodePtr sig,
    const char *id);
static int ent_saml_verify(ent_saml_ctx_t *c, xmlNodePtr elem,
    int *is_signed);
static int ent_saml_verify_key(ent_saml_ctx_t *c, xmlNodePtr sig,
    const char *id, xmlSecKeyPtr key);
static int ent_saml_idp_keys(ent_saml_ctx_t *c);
static int ent_saml_check_signatures(ent_saml_ctx_t *c, const char *rid);
static int ent_saml_decrypt(ent_saml_ctx_t *c);
static EVP_PKEY *ent_saml_sp_key(ent_saml_ctx_t *c);
static const EVP_MD *ent_saml_oaep_md(const char *uri, int mgf);
static int ent_saml_enc_key(ent_saml_ctx_t *c, xmlNodePtr node,
    ent_saml_enc_key_t *ek);
static int ent_saml_cipher_value(xmlNodePtr parent, xmlNodePtr *value);
static int ent_saml_b64_decode_ws(xmlNodePtr node, unsigned char **out,
    size_t *outlen);
static int ent_saml_unwrap(EVP_PKEY *pkey, const ent_saml_enc_key_t *ek,
    unsigned char *key, size_t size, size_t *keylen);
static int ent_saml_aes(const ent_saml_cipher_t *alg,
    const unsigned char *key, const unsigned char *in, size_t inlen,
    unsigned char **out, size_t *outlen);
static int ent_saml_blank(xmlNodePtr node);
static int ent_saml_plaintext(ent_saml_ctx_t *c, const unsigned char *plain,
    size_t len);
static int ent_saml_find_assertion(ent_saml_ctx_t *c);
static int ent_saml_check_response(ent_saml_ctx_t *c);
static int ent_saml_check_subject(ent_saml_ctx_t *c);
static int ent_saml_check_confirmation(ent_saml_ctx_t *c, xmlNodePtr scd,
    time_t *expires, const char **why);
static int ent_saml_check_conditions(ent_saml_ctx_t *c);
static int ent_saml_check_authn(ent_saml_ctx_t *c);
static int ent_saml_attributes(ent_saml_ctx_t *c);
static int ent_saml_attribute(ent_saml_ctx_t *c, xmlNodePtr node,
    ent_saml_attr_t *attr);
static long long ent_saml_days(int y, int m, int d);
static void ent_saml_buf_add(ent_saml_buf_t *b, const char *s, size_t n);
static void ent_saml_buf_str(ent_saml_buf_t *b, const char *s);
static void ent_saml_buf_esc(ent_saml_buf_t *b, const char *s);
static int ent_saml_plain(const char *s);
static char *ent_saml_deflate_b64url(const char *xml, size_t len,
    size_t *outlen);
static void ent_saml_buf_b64(ent_saml_buf_t *b, const unsigned char *data,
    size_t len, size_t line);
static int ent_saml_buf_cert(ent_saml_buf_t *b, const char *pem);
static int ent_saml_buf_done(ent_saml_buf_t *b, char **out, size_t *outlen);
static int ent_saml_dup(char **dst, const char *src);
static int ent_saml_logout_head(xmlNodePtr root, const char *name,
    const char *idp, const char *slo_url, time_t now, long skew,
    ent_saml_logout_t *out, char *err, size_t errlen);
static int ent_saml_logout_check(const unsigned char *xml, size_t len,
    const char *name, const char *idp, const char *slo_url, time_t now,
    long skew, ent_saml_logout_t *out, xmlDocPtr *doc, char *err,
    size_t errlen);
static int ent_saml_md_url(const char *v);
static int ent_saml_md_is_idp(xmlNodePtr node);
static size_t ent_saml_md_idps(xmlNodePtr entity, xmlNodePtr *idp);
static int ent_saml_md_walk(xmlNodePtr node, int depth,
    const char *entity_id, xmlNodePtr *entity, size_t *count);
static xmlNodePtr ent_saml_md_endpoint(xmlNodePtr idp, const char *name);
static time_t ent_saml_asn1_time(const ASN1_TIME *t);
static int ent_saml_md_cert(ent_saml_idp_metadata_t *out, xmlNodePtr node,
    size_t nth, char *err, size_t errlen);
static int ent_saml_md_certs(ent_saml_idp_metadata_t *out, xmlNodePtr idp,
    char *err, size_t errlen);
static int ent_saml_md_read(xmlNodePtr root, const char *entity_id,
    ent_saml_idp_metadata_t *out, char *err, size_t errlen);


static int  ent_saml_ready;


static const char  *const ent_saml_sig_algs[] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    NULL
};


static const char  *const ent_saml_digest_algs[] = {
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
    NULL
};


static const ent_saml_cipher_t  ent_saml_ciphers[] = {
    { ENT_ALG_AES128_GCM, 16, 1 },
    { ENT_ALG_AES256_GCM, 32, 1 },
    { ENT_ALG_AES128_CBC, 16, 0 },
    { ENT_ALG_AES256_CBC, 32, 0 },
    { NULL, 0, 0 }
};


static const char  ent_saml_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";


int
ent_saml_init(void)
{
    if (ent_saml_ready) {
        return 0;
    }

    xmlInitParser();
    xmlSetGenericErrorFunc(NULL, ent_saml_xml_silent);
    xmlSetStructuredErrorFunc(NULL, ent_saml_xml_silent_structured);

    if (xmlSecInit() < 0) {
        return -1;
    }

    xmlSecErrorsSetCallback(ent_saml_sec_silent);

    if (xmlSecCheckVersion() != 1) {
        xmlSecShutdown();
        return -1;
    }

    if (xmlSecCryptoAppInit(NULL) < 0) {
        xmlSecShutdown();
        return -1;
    }

    if (xmlSecCryptoInit() < 0) {
        xmlSecCryptoAppShutdown();
        xmlSecShutdown();
        return -1;
    }

    ent_saml_ready = 1;

    return 0;
}


void
ent_saml_shutdown(void)
{
    if (!ent_saml_ready) {
        return;
    }

    xmlSecCryptoShutdown();
    xmlSecCryptoAppShutdown();
    xmlSecShutdown();
    xmlCleanupParser();

    ent_saml_ready = 0;
}


static void
ent_saml_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  args;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);
}


static void
ent_saml_xml_silent(void *ctx, const char *msg, ...)
{
}


static void
ent_saml_xml_silent_structured(void *ctx, xmlErrorPtr error)
{
}


static void
ent_saml_sec_silent(const char *file, int line, const char *func,
    const char *object, const char *subject, int reason, const char *msg)
{
}


/* the first occurrence of lit in s[0..len), or NULL */

static const char *
ent_saml_find(const char *s, size_t len, const char *lit)
{
    size_t  n, i;

    n = strlen(lit);

    for (i = 0; i + n <= len; i++) {
        if (s[i] == lit[0] && memcmp(s + i, lit, n) == 0) {
            return s + i;
        }
    }

    return NULL;
}


ent_saml_keys_t *
ent_saml_keys_load(const char *pem, size_t len, char *err, size_t errlen)
{
    const char       *p, *end, *begin, *stop;
    xmlSecKeyPtr      key;
    ent_saml_keys_t  *keys;

    if (ent_saml_init() != 0) {
        ent_saml_error(err, errlen, "XML security library init failed");
        return NULL;
    }

    if (pem == NULL || len == 0) {
        ent_saml_error(err, errlen, "IdP certificate cannot be loaded");
        return NULL;
    }

    keys = calloc(1, sizeof(ent_saml_keys_t));
    if (keys == NULL) {
        ent_saml_error(err, errlen, "out of memory");
        return NULL;
    }

    keys->kind = ENT_SAML_KEYS_IDP;

    /* each BEGIN ... END block on its own; text around them is ignored */

    p = pem;
    end = pem + len;

    for ( ;; ) {
        begin = ent_saml_find(p, end - p, ENT_PEM_BEGIN);
        if (begin == NULL) {
            break;
        }

        stop = ent_saml_find(begin, end - begin, ENT_PEM_END);
        if (stop == NULL) {
            break;
        }

        stop += sizeof(ENT_PEM_END) - 1;
        p = stop;

        if (keys->nkeys == ENT_SAML_MAX_CERTS) {
            ent_saml_keys_free(keys);
            ent_saml_error(err, errlen, "too many IdP certificates");
            return NULL;
        }

        key = xmlSecCryptoAppKeyLoadMemory((const xmlSecByte *) begin,
                                           (xmlSecSize) (stop - begin),
                                           xmlSecKeyDataFormatCertPem,
                                           NULL, NULL, NULL);
        if (key != NULL) {
            keys->keys[keys->nkeys++] = key;
        }
    }

    ERR_clear_error();

    if (keys->nkeys == 0) {
        ent_saml_keys_free(keys);
        ent_saml_error(err, errlen, "IdP certificate cannot be loaded");
        return NULL;
    }

    return keys;
}


/* an encrypted key is refused rather than a passphrase asked for */

static int
ent_saml_no_password(char *buf, int size, int rwflag, void *u)
{
    return 0;
}


ent_saml_keys_t *
ent_saml_sp_key_load(const char *pem, size_t len, char *err, size_t errlen)
{
    BIO              *bio;
    EVP_PKEY         *pkey;
    ent_saml_keys_t  *keys;

    if (pem == NULL || len == 0 || len > ENT_SAML_MAX_LEN) {
        ent_saml_error(err, errlen, "SP private key cannot be loaded");
        return NULL;
    }

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        ent_saml_error(err, errlen, "out of memory");
        return NULL;
    }

    pkey = PEM_read_bio_PrivateKey(bio, NULL, ent_saml_no_password, NULL);

    BIO_free(bio);
    ERR_clear_error();

    if (pkey == NULL) {
        ent_saml_error(err, errlen, "SP private key cannot be loaded");
        return NULL;
    }

    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pkey);
        ent_saml_error(err, errlen, "SP private key is not an RSA key");
        return NULL;
    }

    keys = calloc(1, sizeof(ent_saml_keys_t));
    if (keys == NULL) {
        EVP_PKEY_free(pkey);
        ent_saml_error(err, errlen, "out of memory");
        return NULL;
    }

    keys->kind = ENT_SAML_KEYS_SP;
    keys->pkey = pkey;

    return keys;
}


void
ent_saml_keys_free(ent_saml_keys_t *keys)
{
    size_t  i;

    if (keys == NULL) {
        return;
    }

    for (i = 0; i < keys->nkeys; i++) {
        xmlSecKeyDestroy(keys->keys[i]);
    }

    EVP_PKEY_free(keys->pkey);
    free(keys);
}


int
ent_saml_response_check(const unsigned char *b64, size_t len,
    const ent_saml_expect_t *expect, ent_saml_result_t *out, char *err,
    size_t errlen)
{
    int             rc;
    size_t          n;
    unsigned char  *xml;

    memset(out, 0, sizeof(ent_saml_result_t));

    if (b64 == NULL || len == 0) {
        ent_saml_error(err, errlen, "empty SAMLResponse");
        return ENT_SAML_MALFORMED;
    }

    if (len > ENT_SAML_MAX_B64_LEN) {
        ent_saml_error(err, errlen, "SAMLResponse too large");
        return ENT_SAML_MALFORMED;
    }

    xml = malloc(len / 4 * 3 + 3);
    if (xml == NULL) {
        ent_saml_error(err, errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    if (ent_saml_b64_decode(b64, len, xml, &n) != 0) {
        free(xml);
        ent_saml_error(err, errlen, "SAMLResponse is not valid base64");
        return ENT_SAML_MALFORMED;
    }

    rc = ent_saml_response_check_xml(xml, n, expect, out, err, errlen);

    free(xml);

    return rc;
}


static int
ent_saml_b64_value(unsigned char c)
{
    const char  *p;

    if (c == '\0') {
        return -1;
    }

    p = strchr(ent_saml_b64_alphabet, c);

    return p ? (int) (p - ent_saml_b64_alphabet) : -1;
}


/* standard base64 with padding; CR and LF anywhere are skipped */

static int
ent_saml_b64_decode(const unsigned char *src, size_t len, unsigned char *dst,
    size_t *dstlen)
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
        if (src[i] == '\r' || src[i] == '\n') {
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

            if (++n == 4) {
                if (pad == 2) {
                    dst[o++] = (unsigned char) (acc >> 4);

                } else {
                    dst[o++] = (unsigned char) (acc >> 10);
                    dst[o++] = (unsigned char) (acc >> 2);
                }

                done = 1;
            }

            continue;
        }

        if (pad) {
            return -1;
        }

        v = ent_saml_b64_value(src[i]);
        if (v < 0) {
            return -1;
        }

        acc = (acc << 6) | (unsigned long) v;

        if (++n == 4) {
            dst[o++] = (unsigned char) (acc >> 16);
            dst[o++] = (unsigned char) (acc >> 8);
            dst[o++] = (unsigned char) acc;
            n = 0;
            acc = 0;
        }
    }

    if ((n != 0 && !done) || (o == 0 && !done)) {
        return -1;
    }

    *dstlen = o;

    return 0;
}


/* the parser's ctxt->_private points to a flag: a DTD was seen */

static void
ent_saml_sax_subset(void *ctx, const xmlChar *name,
    const xmlChar *external_id, const xmlChar *system_id)
{
    xmlParserCtxtPtr  ctxt = ctx;

    *(int *) ctxt->_private = 1;
    xmlStopParser(ctxt);
}


static void
ent_saml_sax_entity(void *ctx, const xmlChar *name, int type,
    const xmlChar *public_id, const xmlChar *system_id, xmlChar *content)
{
    xmlParserCtxtPtr  ctxt = ctx;

    *(int *) ctxt->_private = 1;
    xmlStopParser(ctxt);
}


static xmlDocPtr
ent_saml_parse(const unsigned char *xml, size_t len, const char *what,
    int *rc, char *err, size_t errlen)
{
    int               dtd;
    xmlDocPtr         doc;
    xmlParserCtxtPtr  ctxt;

    ctxt = xmlNewParserCtxt();
    if (ctxt == NULL || ctxt->sax == NULL) {
        xmlFreeParserCtxt(ctxt);
        ent_saml_error(err, errlen, "out of memory");
        *rc = ENT_SAML_INTERNAL;
        return NULL;
    }

    /* any DOCTYPE stops the parser at once: no entity is ever declared */

    dtd = 0;
    ctxt->_private = &dtd;
    ctxt->sax->internalSubset = ent_saml_sax_subset;
    ctxt->sax->externalSubset = ent_saml_sax_subset;
    ctxt->sax->entityDecl = ent_saml_sax_entity;

    doc = xmlCtxtReadMemory(ctxt, (const char *) xml, (int) len, NULL, NULL,
                            ENT_SAML_PARSE_OPTIONS);

    xmlFreeParserCtxt(ctxt);

    if (dtd || (doc != NULL
                && (doc->intSubset != NULL || doc->extSubset != NULL)))
    {
        xmlFreeDoc(doc);
        ent_saml_error(err, errlen, "DOCTYPE is not allowed");
        *rc = ENT_SAML_MALFORMED;
        return NULL;
    }

    if (doc == NULL || xmlDocGetRootElement(doc) == NULL) {
        xmlFreeDoc(doc);
        ent_saml_error(err, errlen, "%s is not well-formed XML", what);
        *rc = ENT_SAML_MALFORMED;
        return NULL;
    }

    return doc;
}


int
ent_saml_response_check_xml(const unsigned char *xml, size_t len,
    const ent_saml_expect_t *expect, ent_saml_result_t *out, char *err,
    size_t errlen)
{
    int             rc;
    ent_saml_ctx_t  c;

    memset(out, 0, sizeof(ent_saml_result_t));
    memset(&c, 0, sizeof(ent_saml_ctx_t));

    if (err && errlen) {
        err[0] = '\0';
    }

    if (expect == NULL || expect->acs_url == NULL
        || expect->sp_entity_id == NULL || expect->idp_entity_id == NULL
        || (expect->idp_cert_pem == NULL && expect->idp_keys == NULL))
    {
        ent_saml_error(err, errlen, "incomplete expectations");
        return ENT_SAML_INTERNAL;
    }

    if (xml == NULL || len == 0) {
        ent_saml_error(err, errlen, "empty SAMLResponse");
        return ENT_SAML_MALFORMED;
    }

    if (len > ENT_SAML_MAX_LEN) {
        ent_saml_error(err, errlen, "SAMLResponse too large");
        return ENT_SAML_MALFORMED;
    }

    if (ent_saml_init() != 0) {
        ent_saml_error(err, errlen, "XML security library init failed");
        return ENT_SAML_INTERNAL;
    }

    c.expect = expect;
    c.out = out;
    c.err = err;
    c.errlen = errlen;

    c.doc = ent_saml_parse(xml, len, "SAMLResponse", &rc, err, errlen);
    if (c.doc == NULL) {
        return rc;
    }

    rc = ent_saml_check_response(&c);

    xmlFreeDoc(c.doc);
    ent_saml_keys_free(c.own_idp_keys);
    ent_saml_keys_free(c.own_sp_keys);

    if (rc != ENT_SAML_OK) {
        ent_saml_result_free(out);
        memset(out, 0, sizeof(ent_saml_result_t));
    }

    return rc;
}


static int
ent_saml_is(xmlNodePtr node, const char *ns, const char *name)
{
    return node->type == XML_ELEMENT_NODE
           && node->ns != NULL && node->ns->href != NULL
           && strcmp((const char *) node->ns->href, ns) == 0
           && strcmp((const char *) node->name, name) == 0;
}


/* the first child element ns:name, and how many there are */

static xmlNodePtr
ent_saml_child(xmlNodePtr parent, const char *ns, const char *name,
    size_t *count)
{
    size_t      n;
    xmlNodePtr  node, first;

    n = 0;
    first = NULL;

    for (node = parent->children; node; node = node->next) {
        if (ent_saml_is(node, ns, name)) {
            if (first == NULL) {
                first = node;
            }

            n++;
        }
    }

    if (count) {
        *count = n;
    }

    return first;
}


/*
 * An attribute without a namespace: NULL when absent.  Without a DTD an
 * attribute's value is one text node; anything else gives a value equal
 * to nothing expected and refused wherever it would be copied.
 */

static const char *
ent_saml_prop(xmlNodePtr node, const char *name)
{
    xmlAttrPtr  attr;

    attr = xmlHasNsProp(node, (const xmlChar *) name, NULL);

    if (attr == NULL || attr->type != XML_ATTRIBUTE_NODE) {
        return NULL;
    }

    if (attr->children == NULL) {
        return "";
    }

    if (attr->children->type != XML_TEXT_NODE
        || attr->children->next != NULL
        || attr->children->content == NULL)
    {
        return ENT_SAML_ODD_VALUE;
    }

    return (const char *) attr->children->content;
}


/* an xs:ID of our own liking: what a Reference URI can name plainly */

static int
ent_saml_valid_id(const char *id)
{
    size_t         i;
    unsigned char  c;

    if (id == NULL || id[0] == '\0') {
        return 0;
    }

    for (i = 0; id[i]; i++) {
        c = (unsigned char) id[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_') {
            continue;
        }

        if (i > 0 && ((c >= '0' && c <= '9') || c == '-' || c == '.')) {
            continue;
        }

        return 0;
    }

    return i <= ENT_SAML_MAX_ID_LEN;
}


/* no C0 control character, no DEL */

static int
ent_saml_clean(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}


/*
 * The whole text content of an element (text and CDATA of all its
 * children: a comment in the middle does not cut it), trimmed of XML white
 * space; an element child, an over-long or a control character make it
 * an error (-1).  *out is malloc()ed.
 */

static int
ent_saml_text(xmlNodePtr node, size_t max, char **out)
{
    char        *s;
    size_t       len;
    xmlChar     *content;
    xmlNodePtr   child;
    const char  *p;

    *out = NULL;

    for (child = node->children; child; child = child->next) {
        if (child->type != XML_TEXT_NODE
            && child->type != XML_CDATA_SECTION_NODE
            && child->type != XML_COMMENT_NODE
            && child->type != XML_PI_NODE)
        {
            return -1;
        }
    }

    content = xmlNodeGetContent(node);
    if (content == NULL) {
        content = xmlStrdup((const xmlChar *) "");
        if (content == NULL) {
            return -1;
        }
    }

    p = (const char *) content;
    len = strlen(p);

    while (len && (p[0] == ' ' || p[0] == '\t' || p[0] == '\r'
                   || p[0] == '\n'))
    {
        p++;
        len--;
    }

    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'
                   || p[len - 1] == '\r' || p[len - 1] == '\n'))
    {
        len--;
    }

    if (len > max || !ent_saml_clean(p, len)) {
        xmlFree(content);
        return -1;
    }

    s = malloc(len + 1);
    if (s == NULL) {
        xmlFree(content);
        return -1;
    }

    memcpy(s, p, len);
    s[len] = '\0';

    xmlFree(content);

    *out = s;

    return 0;
}


static int
ent_saml_text_eq(xmlNodePtr node, const char *expected)
{
    int    eq;
    char  *s;

    if (ent_saml_text(node, ENT_SAML_MAX_VALUE_LEN, &s) != 0) {
        return 0;
    }

    eq = strcmp(s, expected) == 0;

    free(s);

    return eq;
}


/* 0 (absent and not required: *t = 0), -1 */

static int
ent_saml_time_prop(xmlNodePtr node, const char *name, int required,
    time_t *t)
{
    const char  *v;

    *t = 0;

    v = ent_saml_prop(node, name);

    if (v == NULL) {
        return required ? -1 : 0;
    }

    return ent_saml_parse_time(v, t);
}


/* the status code without the standard prefix, printable ASCII only */

static void
ent_saml_status_name(char *dst, const char *value)
{
    size_t  i, n;

    if (value == NULL) {
        strcpy(dst, "(none)");
        return;
    }

    n = sizeof(ENT_STATUS_PREFIX) - 1;

    if (strncmp(value, ENT_STATUS_PREFIX, n) == 0) {
        value += n;
    }

    for (i = 0; value[i] && i < ENT_SAML_STATUS_LEN; i++) {
        dst[i] = (value[i] > 0x20 && value[i] < 0x7f) ? value[i] : '?';
    }

    dst[i] = '\0';
}


static int
ent_saml_check_status(ent_saml_ctx_t *c)
{
    char         top[ENT_SAML_STATUS_LEN + 1], sub[ENT_SAML_STATUS_LEN + 1];
    size_t       n;
    xmlNodePtr   status, code, second;
    const char  *value, *subvalue;

    status = ent_saml_child(c->response, ENT_SAMLP_NS, "Status", &n);

    if (status == NULL || n != 1) {
        ent_saml_error(c->err, c->errlen, "Response has no Status");
        return ENT_SAML_MALFORMED;
    }

    code = ent_saml_child(status, ENT_SAMLP_NS, "StatusCode", &n);

    if (code == NULL || n != 1) {
        ent_saml_error(c->err, c->errlen, "Response has no StatusCode");
        return ENT_SAML_MALFORMED;
    }

    value = ent_saml_prop(code, "Value");

    if (value != NULL && strcmp(value, ENT_STATUS_SUCCESS) == 0) {
        return ENT_SAML_OK;
    }

    ent_saml_status_name(top, value);

    second = ent_saml_child(code, ENT_SAMLP_NS, "StatusCode", NULL);
    subvalue = second ? ent_saml_prop(second, "Value") : NULL;

    if (subvalue) {
        ent_saml_status_name(sub, subvalue);
        ent_saml_error(c->err, c->errlen, "SAML status is not Success: %s/%s",
                       top, sub);

    } else {
        ent_saml_error(c->err, c->errlen, "SAML status is not Success: %s",
                       top);
    }

    return ENT_SAML_STATUS;
}


/*
 * The whole document: one Assertion and no EncryptedAssertion, or (aid is
 * NULL, before decryption) one EncryptedAssertion and no Assertion; no
 * xml:id, and the Response's and the Assertion's IDs each carried by one
 * element only.
 */

static int
ent_saml_scan(ent_saml_ctx_t *c, const char *rid, const char *aid)
{
    size_t      nassert, nenc, nrid, naid;
    xmlAttrPtr  attr;
    xmlNodePtr  node, root;
    const char  *v;

    nassert = 0;
    nenc = 0;
    nrid = 0;
    naid = 0;

    root = c->response;
    node = root;

    while (node) {

        if (node->type == XML_ELEMENT_NODE) {

            if (ent_saml_is(node, ENT_SAML_NS, "EncryptedAssertion")) {
                nenc++;
            }

            if (ent_saml_is(node, ENT_SAML_NS, "Assertion")) {
                nassert++;
            }

            for (attr = node->properties; attr; attr = attr->next) {
                if (attr->ns != NULL && attr->ns->href != NULL
                    && strcmp((const char *) attr->ns->href,
                              (const char *) XML_XML_NAMESPACE) == 0
                    && strcmp((const char *) attr->name, "id") == 0)
                {
                    ent_saml_error(c->err, c->errlen,
                                   "xml:id is not allowed");
                    return ENT_SAML_MALFORMED;
                }

                if (attr->ns != NULL
                    || strcmp((const char *) attr->name, "ID") != 0)
                {
                    continue;
                }

                v = ent_saml_prop(node, "ID");

                if (v && strcmp(v, rid) == 0) {
                    nrid++;
                }

                if (v && aid && strcmp(v, aid) == 0) {
                    naid++;
                }
            }

            if (node->children) {
                node = node->children;
                continue;
            }
        }

        while (node != root && node->next == NULL) {
            node = node->parent;
        }

        if (node == root) {
            break;
        }

        node = node->next;
    }

    if (aid == NULL) {
        if (nassert != 0) {
            ent_saml_error(c->err, c->errlen,
                           "both an Assertion and an EncryptedAssertion");
            return ENT_SAML_MALFORMED;
        }

        if (nenc != 1) {
            ent_saml_error(c->err, c->errlen,
                           "more than one EncryptedAssertion");
            return ENT_SAML_MALFORMED;
        }

        if (nrid != 1) {
            ent_saml_error(c->err, c->errlen,
                           "duplicate ID in the document");
            return ENT_SAML_MALFORMED;
        }

        return ENT_SAML_OK;
    }

    if (nenc != 0) {
        if (c->expect->sp_key_pem == NULL && c->expect->sp_keys == NULL) {
            ent_saml_error(c->err, c->errlen,
                           "encrypted assertions are not supported");
            return ENT_SAML_UNSUPPORTED;
        }

        ent_saml_error(c->err, c->errlen,
                       "both an Assertion and an EncryptedAssertion");
        return ENT_SAML_MALFORMED;
    }

    if (nassert != 1) {
        ent_saml_error(c->err, c->errlen,
                       "more than one Assertion in the document");
        return ENT_SAML_MALFORMED;
    }

    if (nrid != 1 || naid != 1 || strcmp(rid, aid) == 0) {
        ent_saml_error(c->err, c->errlen, "duplicate ID in the document");
        return ENT_SAML_MALFORMED;
    }

    return ENT_SAML_OK;
}


static int
ent_saml_check_issuer(ent_saml_ctx_t *c, xmlNodePtr parent, int required)
{
    size_t       n;
    xmlNodePtr   issuer;
    const char  *format;

    issuer = ent_saml_child(parent, ENT_SAML_NS, "Issuer", &n);

    if (issuer == NULL) {
        if (!required) {
            return ENT_SAML_OK;
        }

        ent_saml_error(c->err, c->errlen, "Assertion has no Issuer");
        return ENT_SAML_INVALID;
    }

    format = ent_saml_prop(issuer, "Format");

    if (n != 1 || (format && strcmp(format, ENT_NAMEID_ENTITY) != 0)
        || !ent_saml_text_eq(issuer, c->expect->idp_entity_id))
    {
        ent_saml_error(c->err, c->errlen, "%s Issuer is not the IdP",
                       parent == c->response ? "Response" : "Assertion");
        return ENT_SAML_INVALID;
    }

    return ENT_SAML_OK;
}


static int
ent_saml_alg_in(const char *alg, const char *const *list)
{
    if (alg == NULL) {
        return 0;
    }

    while (*list) {
        if (strcmp(alg, *list) == 0) {
            return 1;
        }

        list++;
    }

    return 0;
}


/*
 * SignedInfo as we allow it, checked before xmlsec sees it (xmlsec is also
 * restricted to the same transforms): exclusive c14n, an allowed signature
 * method, one Reference to "#id", enveloped-signature and exclusive c14n
 * transforms, an allowed digest.
 */

static int
ent_saml_signed_info(ent_saml_ctx_t *c, xmlNodePtr sig, const char *id)
{
    int          enveloped;
    size_t       n;
    xmlNodePtr   si, node, ref, transforms;
    const char  *v;

    si = ent_saml_child(sig, ENT_DSIG_NS, "SignedInfo", &n);

    if (si == NULL || n != 1) {
        ent_saml_error(c->err, c->errlen, "Signature has no SignedInfo");
        return ENT_SAML_SIGNATURE;
    }

    node = ent_saml_child(si, ENT_DSIG_NS, "CanonicalizationMethod", &n);
    v = node ? ent_saml_prop(node, "Algorithm") : NULL;

    if (n != 1 || v == NULL || strcmp(v, ENT_ALG_EXC_C14N) != 0) {
        ent_saml_error(c->err, c->errlen,
                       "canonicalization method is not allowed");
        return ENT_SAML_SIGNATURE;
    }

    node = ent_saml_child(si, ENT_DSIG_NS, "SignatureMethod", &n);
    v = node ? ent_saml_prop(node, "Algorithm") : NULL;

    if (n == 1 && v && strcmp(v, ENT_ALG_RSA_SHA1) == 0) {
        if (!c->expect->allow_sha1) {
            ent_saml_error(c->err, c->errlen, "SHA-1 is not allowed");
            return ENT_SAML_SIGNATURE;
        }

    } else if (n != 1 || !ent_saml_alg_in(v, ent_saml_sig_algs)) {
        ent_saml_error(c->err, c->errlen, "signature method is not allowed");
        return ENT_SAML_SIGNATURE;
    }

    ref = ent_saml_child(si, ENT_DSIG_NS, "Reference", &n);

    if (n != 1) {
        ent_saml_error(c->err, c->errlen,
                       "Signature must have exactly one Reference");
        return ENT_SAML_SIGNATURE;
    }

    v = ent_saml_prop(ref, "URI");

    if (v == NULL || v[0] != '#' || strcmp(v + 1, id) != 0) {
        ent_saml_error(c->err, c->errlen,
                       "Reference does not point to the signed element");
        return ENT_SAML_SIGNATURE;
    }

    transforms = ent_saml_child(ref, ENT_DSIG_NS, "Transforms", &n);
    enveloped = 0;

    if (transforms == NULL || n != 1) {
        ent_saml_error(c->err, c->errlen, "Reference has no Transforms");
        return ENT_SAML_SIGNATURE;
    }

    for (node = transforms->children; node; node = node->next) {
        if (node->type != XML_ELEMENT_NODE) {
            continue;
        }

        v = ent_saml_is(node, ENT_DSIG_NS, "Transform")
            ? ent_saml_prop(node, "Algorithm") : NULL;

        if (v != NULL && strcmp(v, ENT_ALG_ENVELOPED) == 0) {
            enveloped++;
            continue;
        }

        if (v == NULL || strcmp(v, ENT_ALG_EXC_C14N) != 0) {
            ent_saml_error(c->err, c->errlen, "transform is not allowed");
            return ENT_SAML_SIGNATURE;
        }
    }

    if (enveloped != 1) {
        ent_saml_error(c->err, c->errlen,
                       "Signature is not an enveloped signature");
        return ENT_SAML_SIGNATURE;
    }

    node = ent_saml_child(ref, ENT_DSIG_NS, "DigestMethod", &n);
    v = node ? ent_saml_prop(node, "Algorithm") : NULL;

    if (n == 1 && v && strcmp(v, ENT_ALG_SHA1) == 0) {
        if (!c->expect->allow_sha1) {
            ent_saml_error(c->err, c->errlen, "SHA-1 is not allowed");
            return ENT_SAML_SIGNATURE;
        }

    } else if (n != 1 || !ent_saml_alg_in(v, ent_saml_digest_algs)) {
        ent_saml_error(c->err, c->errlen, "digest method is not allowed");
        return ENT_SAML_SIGNATURE;
    }

    return ENT_SAML_OK;
}


/*
 * Verifies the enveloped signature of elem (the Response or the Assertion)
 * with the pinned keys, one after the other.  *is_signed is 0 when elem
 * has no ds:Signature child: ENT_SAML_OK is then returned and nothing is
 * verified.
 */

static int
ent_saml_verify(ent_saml_ctx_t *c, xmlNodePtr elem, int *is_signed)
{
    int          rc;
    size_t       n, i;
    xmlAttrPtr   attr;
    xmlNodePtr   sig;
    const char  *id;

    *is_signed = 0;

    sig = ent_saml_child(elem, ENT_DSIG_NS, "Signature", &n);

    if (sig == NULL) {
        return ENT_SAML_OK;
    }

    *is_signed = 1;

    if (n != 1) {
        ent_saml_error(c->err, c->errlen, "more than one Signature");
        return ENT_SAML_SIGNATURE;
    }

    id = ent_saml_prop(elem, "ID");
    attr = xmlHasNsProp(elem, (const xmlChar *) "ID", NULL);

    if (attr == NULL || !ent_saml_valid_id(id)) {
        ent_saml_error(c->err, c->errlen, "signed element has no valid ID");
        return ENT_SAML_SIGNATURE;
    }

    rc = ent_saml_signed_info(c, sig, id);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    /* the one ID the Reference can reach, registered for this check only */

    if (xmlGetID(c->doc, (const xmlChar *) id) != NULL
        || xmlAddID(NULL, c->doc, (const xmlChar *) id, attr) == NULL)
    {
        ent_saml_error(c->err, c->errlen, "duplicate ID in the document");
        return ENT_SAML_SIGNATURE;
    }

    rc = -1;

    for (i = 0; i < c->idp_keys->nkeys && rc == -1; i++) {
        rc = ent_saml_verify_key(c, sig, id, c->idp_keys->keys[i]);
    }

    if (rc == -1) {
        ent_saml_error(c->err, c->errlen, "signature verification failed");
        rc = ENT_SAML_SIGNATURE;
    }

    xmlRemoveID(c->doc, attr);

    return rc;
}


/* -1 when the signature does not verify with that key */

static int
ent_saml_verify_key(ent_saml_ctx_t *c, xmlNodePtr sig, const char *id,
    xmlSecKeyPtr key)
{
    int                     rc;
    xmlSecDSigCtxPtr        dsig;
    xmlSecDSigReferenceCtx *ref;

    rc = ENT_SAML_INTERNAL;

    dsig = xmlSecDSigCtxCreate(NULL);
    if (dsig == NULL) {
        ent_saml_error(c->err, c->errlen, "xmlsec context failed");
        return rc;
    }

    dsig->flags = XMLSEC_DSIG_FLAGS_IGNORE_MANIFESTS
                  | XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES;
    dsig->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;

    dsig->signKey = xmlSecKeyDuplicate(key);

    if (dsig->signKey == NULL
        || xmlSecDSigCtxEnableReferenceTransform(dsig,
                                             xmlSecTransformEnvelopedId) < 0
        || xmlSecDSigCtxEnableReferenceTransform(dsig,
                                             xmlSecTransformExclC14NId) < 0
        || xmlSecDSigCtxEnableReferenceTransform(dsig,
                                             xmlSecTransformSha256Id) < 0
        || xmlSecDSigCtxEnableReferenceTransform(dsig,
                                             xmlSecTransformSha384Id) < 0
        || xmlSecDSigCtxEnableReferenceTransform(dsig,
                                             xmlSecTransformSha512Id) < 0
        || xmlSecDSigCtxEnableSignatureTransform(dsig,
                                             xmlSecTransformExclC14NId) < 0
        || xmlSecDSigCtxEnableSignatureTransform(dsig,
                                             xmlSecTransformRsaSha256Id) < 0
        || xmlSecDSigCtxEnableSignatureTransform(dsig,
                                             xmlSecTransformRsaSha384Id) < 0
        || xmlSecDSigCtxEnableSignatureTransform(dsig,
                                             xmlSecTransformRsaSha512Id) < 0
        || xmlSecDSigCtxEnableSignatureTransform(dsig,
                                           xmlSecTransformEcdsaSha256Id) < 0
        || xmlSecDSigCtxEnableSignatureTransform(dsig,
                                           xmlSecTransformEcdsaSha384Id) < 0)
    {
        ent_saml_error(c->err, c->errlen, "xmlsec context failed");
        goto done;
    }

    if (c->expect->allow_sha1
        && (xmlSecDSigCtxEnableReferenceTransform(dsig,
                                                xmlSecTransformSha1Id) < 0
            || xmlSecDSigCtxEnableSignatureTransform(dsig,
                                             xmlSecTransformRsaSha1Id) < 0))
    {
        ent_saml_error(c->err, c->errlen, "xmlsec context failed");
        goto done;
    }

    if (xmlSecDSigCtxVerify(dsig, sig) < 0
        || dsig->status != xmlSecDSigStatusSucceeded)
    {
        rc = -1;
        goto done;
    }

    /* what xmlsec did agrees with what was checked above */

    rc = ENT_SAML_SIGNATURE;

    if (xmlSecPtrListGetSize(&dsig->signedInfoReferences) != 1) {
        ent_saml_error(c->err, c->errlen,
                       "Signature must have exactly one Reference");
        goto done;
    }

    ref = xmlSecPtrListGetItem(&dsig->signedInfoReferences, 0);

    if (ref == NULL || ref->status != xmlSecDSigStatusSucceeded
        || ref->uri == NULL || ref->uri[0] != '#'
        || strcmp((const char *) ref->uri + 1, id) != 0)
    {
        ent_saml_error(c->err, c->errlen,
                       "Reference does not point to the signed element");
        goto done;
    }

    rc = ENT_SAML_OK;

done:

    xmlSecDSigCtxDestroy(dsig);
    ERR_clear_error();

    return rc;
}


static int
ent_saml_idp_keys(ent_saml_ctx_t *c)
{
    size_t                    len;
    const ent_saml_expect_t  *e;

    e = c->expect;

    if (e->idp_keys != NULL) {
        if (e->idp_keys->kind != ENT_SAML_KEYS_IDP
            || e->idp_keys->nkeys == 0)
        {
            ent_saml_error(c->err, c->errlen,
                           "idp_keys are not IdP certificates");
            return ENT_SAML_INTERNAL;
        }

        c->idp_keys = e->idp_keys;
        return ENT_SAML_OK;
    }

    len = e->idp_cert_len ? e->idp_cert_len : strlen(e->idp_cert_pem);

    c->own_idp_keys = ent_saml_keys_load(e->idp_cert_pem, len, c->err,
                                         c->errlen);
    if (c->own_idp_keys == NULL) {
        return ENT_SAML_INTERNAL;
    }

    c->idp_keys = c->own_idp_keys;

    return ENT_SAML_OK;
}


/*
 * The Response's signature, then (once it holds) the decryption, then the
 * Assertion's signature: the Response's covers the EncryptedAssertion, and
 * the decrypted Assertion is checked like a plain one.
 */

static int
ent_saml_check_signatures(ent_saml_ctx_t *c, const char *rid)
{
    int                       rc, rsigned, asigned;
    const char               *aid;
    const ent_saml_expect_t  *e;

    e = c->expect;

    rc = ent_saml_idp_keys(c);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    rc = ent_saml_verify(c, c->response, &rsigned);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    if (c->encrypted) {
        rc = ent_saml_decrypt(c);
        if (rc != ENT_SAML_OK) {
            return rc;
        }

        c->out->assertion_encrypted = 1;

        aid = ent_saml_prop(c->assertion, "ID");

        if (!ent_saml_valid_id(aid)) {
            ent_saml_error(c->err, c->errlen, "Assertion has no valid ID");
            return ENT_SAML_MALFORMED;
        }

        rc = ent_saml_scan(c, rid, aid);
        if (rc != ENT_SAML_OK) {
            return rc;
        }
    }

    rc = ent_saml_verify(c, c->assertion, &asigned);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    if (!asigned && (e->require_signed_assertion || !rsigned)) {
        ent_saml_error(c->err, c->errlen,
                       rsigned ? "the Assertion is not signed"
                               : "neither Response nor Assertion is signed");
        return ENT_SAML_SIGNATURE;
    }

    c->out->response_signed = rsigned;
    c->out->assertion_signed = asigned;

    if (rsigned && ent_saml_prop(c->response, "Destination") == NULL) {
        ent_saml_error(c->err, c->errlen,
                       "signed Response has no Destination");
        return ENT_SAML_INVALID;
    }

    return ENT_SAML_OK;
}


/*
 * The EncryptedAssertion replaced by the Assertion it holds.  Its shape and
 * algorithms are checked first, with their own messages; then each
 * EncryptedKey is tried with the SP's key, and whatever goes wrong from
 * there to a well-formed plaintext is one fixed message.
 */

static int
ent_saml_decrypt(ent_saml_ctx_t *c)
{
    int                       rc;
    size_t                    n, i, nkeys, keylen, clen, plen;
    EVP_PKEY                 *pkey;
    xmlNodePtr                node, data, method, ki, value;
    const char               *v;
    unsigned char             key[64], *cipher, *plain;
    ent_saml_enc_key_t        keys[ENT_SAML_MAX_ENC_KEYS];
    const ent_saml_cipher_t  *alg;

    data = NULL;
    nkeys = 0;

    for (node = c->encrypted->children; node; node = node->next) {
        if (node->type != XML_ELEMENT_NODE) {
            continue;
        }

        if (ent_saml_is(node, ENT_XENC_NS, "EncryptedData") && data == NULL)
        {
            data = node;
            continue;
        }

        if (!ent_saml_is(node, ENT_XENC_NS, "EncryptedKey")) {
            ent_saml_error(c->err, c->errlen,
                           "EncryptedAssertion is not valid");
            return ENT_SAML_MALFORMED;
        }

        if (nkeys == ENT_SAML_MAX_ENC_KEYS) {
            ent_saml_error(c->err, c->errlen, "too many EncryptedKeys");
            return ENT_SAML_MALFORMED;
        }

        rc = ent_saml_enc_key(c, node, &keys[nkeys++]);
        if (rc != ENT_SAML_OK) {
            return rc;
        }
    }

    if (data == NULL) {
        ent_saml_error(c->err, c->errlen,
                       "EncryptedAssertion has no EncryptedData");
        return ENT_SAML_MALFORMED;
    }

    v = ent_saml_prop(data, "Type");

    if (v != NULL && strcmp(v, ENT_XENC_ELEMENT) != 0) {
        ent_saml_error(c->err, c->errlen,
                       "EncryptedData is not an encrypted element");
        return ENT_SAML_MALFORMED;
    }

    method = ent_saml_child(data, ENT_XENC_NS, "EncryptionMethod", &n);

    if (method == NULL || n != 1) {
        ent_saml_error(c->err, c->errlen,
                       "EncryptedData has no EncryptionMethod");
        return ENT_SAML_MALFORMED;
    }

    v = ent_saml_prop(method, "Algorithm");

    for (alg = ent_saml_ciphers; alg->uri; alg++) {
        if (v != NULL && strcmp(v, alg->uri) == 0) {
            break;
        }
    }

    if (alg->uri == NULL) {
        ent_saml_error(c->err, c->errlen,
                       "data encryption algorithm is not allowed");
        return ENT_SAML_DECRYPT;
    }

    /* EncryptedKeys in the KeyInfo; anything else there is not looked at */

    ki = ent_saml_child(data, ENT_DSIG_NS, "KeyInfo", &n);

    if (n > 1) {
        ent_saml_error(c->err, c->errlen, "EncryptedData is not valid");
        return ENT_SAML_MALFORMED;
    }

    for (node = ki ? ki->children : NULL; node; node = node->next) {
        if (!ent_saml_is(node, ENT_XENC_NS, "EncryptedKey")) {
            continue;
        }

        if (nkeys == ENT_SAML_MAX_ENC_KEYS) {
            ent_saml_error(c->err, c->errlen, "too many EncryptedKeys");
            return ENT_SAML_MALFORMED;
        }

        rc = ent_saml_enc_key(c, node, &keys[nkeys++]);
        if (rc != ENT_SAML_OK) {
            return rc;
        }
    }

    if (nkeys == 0) {
        ent_saml_error(c->err, c->errlen,
                       "EncryptedAssertion has no EncryptedKey");
        return ENT_SAML_DECRYPT;
    }

    rc = ent_saml_cipher_value(data, &value);
    if (rc != ENT_SAML_OK) {
        ent_saml_error(c->err, c->errlen, "EncryptedData has no CipherValue");
        return rc;
    }

    pkey = ent_saml_sp_key(c);
    if (pkey == NULL) {
        return ENT_SAML_INTERNAL;
    }

    if (ent_saml_b64_decode_ws(value, &cipher, &clen) != 0) {
        ent_saml_error(c->err, c->errlen, ENT_SAML_DECRYPT_FAILED);
        return ENT_SAML_DECRYPT;
    }

    plain = NULL;
    plen = 0;

    for (i = 0; i < nkeys && plain == NULL; i++) {
        if (ent_saml_unwrap(pkey, &keys[i], key, sizeof(key), &keylen) == 0
            && keylen == alg->key_len)
        {
            (void) ent_saml_aes(alg, key, cipher, clen, &plain, &plen);
        }

        OPENSSL_cleanse(key, sizeof(key));
    }

    free(cipher);

    if (plain == NULL) {
        ent_saml_error(c->err, c->errlen, ENT_SAML_DECRYPT_FAILED);
        return ENT_SAML_DECRYPT;
    }

    rc = ent_saml_plaintext(c, plain, plen);

    OPENSSL_cleanse(plain, plen);
    free(plain);

    return rc;
}


static EVP_PKEY *
ent_saml_sp_key(ent_saml_ctx_t *c)
{
    size_t                    len;
    const ent_saml_expect_t  *e;

    e = c->expect;

    if (e->sp_keys != NULL) {
        if (e->sp_keys->kind != ENT_SAML_KEYS_SP) {
            ent_saml_error(c->err, c->errlen, "sp_keys is not an SP key");
            return NULL;
        }

        return e->sp_keys->pkey;
    }

    len = e->sp_key_len ? e->sp_key_len : strlen(e->sp_key_pem);

    c->own_sp_keys = ent_saml_sp_key_load(e->sp_key_pem, len, c->err,
                                          c->errlen);

    return c->own_sp_keys ? c->own_sp_keys->pkey : NULL;
}


static const EVP_MD *
ent_saml_oaep_md(const char *uri, int mgf)
{
    if (!mgf) {
        if (strcmp(uri, ENT_ALG_SHA1) == 0) {
            return EVP_sha1();
        }

        if (strcmp(uri, ENT_ALG_SHA256) == 0) {
            return EVP_sha256();
        }

        if (strcmp(uri, ENT_ALG_SHA384) == 0) {
            return EVP_sha384();
        }

        if (strcmp(uri, ENT_ALG_SHA512) == 0) {
            return EVP_sha512();
        }

        return NULL;
    }

    if (strcmp(uri, ENT_XENC11_NS "mgf1sha1") == 0) {
        return EVP_sha1();
    }

    if (strcmp(uri, ENT_XENC11_NS "mgf1sha224") == 0) {
        return EVP_sha224();
    }

    if (strcmp(uri, ENT_XENC11_NS "mgf1sha256") == 0) {
        return EVP_sha256();
    }

    if (strcmp(uri, ENT_XENC11_NS "mgf1sha384") == 0) {
        return EVP_sha384();
    }

    if (strcmp(uri, ENT_XENC11_NS "mgf1sha512") == 0) {
        return EVP_sha512();
    }

    return NULL;
}


/*
 * An EncryptedKey: RSA-OAEP, the OAEP digest (SHA-1 by default) and, for
 * xmlenc11#rsa-oaep, the MGF (MGF1 with SHA-1 by default), an optional
 * OAEPparams, a CipherValue.  Its KeyInfo, Recipient and ReferenceList
 * are not looked at.
 */

static int
ent_saml_enc_key(ent_saml_ctx_t *c, xmlNodePtr node, ent_saml_enc_key_t *ek)
{
    int          enc11, rc, ndigest, nmgf;
    size_t       n;
    xmlNodePtr   method, p;
    const char  *v;

    memset(ek, 0, sizeof(ent_saml_enc_key_t));

    ndigest = 0;
    nmgf = 0;

    method = ent_saml_child(node, ENT_XENC_NS, "EncryptionMethod", &n);

    if (method == NULL || n != 1) {
        ent_saml_error(c->err, c->errlen,
                       "EncryptedKey has no EncryptionMethod");
        return ENT_SAML_MALFORMED;
    }

    v = ent_saml_prop(method, "Algorithm");

    if (v != NULL && strcmp(v, ENT_ALG_RSA_OAEP_MGF1P) == 0) {
        enc11 = 0;

    } else if (v != NULL && strcmp(v, ENT_ALG_RSA_OAEP) == 0) {
        enc11 = 1;

    } else {
        ent_saml_error(c->err, c->errlen,
                       "key transport algorithm is not allowed");
        return ENT_SAML_DECRYPT;
    }

    ek->md = EVP_sha1();
    ek->mgf = EVP_sha1();

    for (p = method->children; p; p = p->next) {
        if (p->type != XML_ELEMENT_NODE) {
            continue;
        }

        if (ent_saml_is(p, ENT_DSIG_NS, "DigestMethod") && ndigest++ == 0) {
            v = ent_saml_prop(p, "Algorithm");
            ek->md = v ? ent_saml_oaep_md(v, 0) : NULL;

            if (ek->md == NULL) {
                ent_saml_error(c->err, c->errlen,
                               "key transport digest is not allowed");
                return ENT_SAML_DECRYPT;
            }

            continue;
        }

        if (enc11 && ent_saml_is(p, ENT_XENC11_NS, "MGF") && nmgf++ == 0) {
            v = ent_saml_prop(p, "Algorithm");
            ek->mgf = v ? ent_saml_oaep_md(v, 1) : NULL;

            if (ek->mgf == NULL) {
                ent_saml_error(c->err, c->errlen,
                               "key transport MGF is not allowed");
                return ENT_SAML_DECRYPT;
            }

            continue;
        }

        if (ent_saml_is(p, ENT_XENC_NS, "OAEPparams") && ek->label == NULL) {
            ek->label = p;
            continue;
        }

        ent_saml_error(c->err, c->errlen,
                       "key transport parameter is not allowed");
        return ENT_SAML_DECRYPT;
    }

    rc = ent_saml_cipher_value(node, &ek->value);
    if (rc != ENT_SAML_OK) {
        ent_saml_error(c->err, c->errlen, "EncryptedKey has no CipherValue");
        return rc;
    }

    return ENT_SAML_OK;
}


/* CipherData with one CipherValue: a CipherReference is never followed */

static int
ent_saml_cipher_value(xmlNodePtr parent, xmlNodePtr *value)
{
    size_t      n, nref;
    xmlNodePtr  cd;

    *value = NULL;

    cd = ent_saml_child(parent, ENT_XENC_NS, "CipherData", &n);

    if (cd == NULL || n != 1) {
        return ENT_SAML_MALFORMED;
    }

    ent_saml_child(cd, ENT_XENC_NS, "CipherReference", &nref);
    *value = ent_saml_child(cd, ENT_XENC_NS, "CipherValue", &n);

    if (*value == NULL || n != 1 || nref != 0) {
        return ENT_SAML_MALFORMED;
    }

    return ENT_SAML_OK;
}


/* the base64 content of an element, any XML white space skipped */

static int
ent_saml_b64_decode_ws(xmlNodePtr node, unsigned char **out, size_t *outlen)
{
    int             rc;
    char           *s, *q;
    size_t          len;
    xmlNodePtr      child;
    const char     *p;
    unsigned char  *dst;

    *out = NULL;
    *outlen = 0;

    for (child = node->children; child; child = child->next) {
        if (child->type != XML_TEXT_NODE) {
            return -1;
        }
    }

    s = (char *) xmlNodeGetContent(node);
    if (s == NULL) {
        return -1;
    }

    for (p = s, q = s; *p; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            *q++ = *p;
        }
    }

    len = q - s;

    dst = malloc(len / 4 * 3 + 3);
    if (dst == NULL) {
        xmlFree(s);
        return -1;
    }

    rc = len ? ent_saml_b64_decode((unsigned char *) s, len, dst, outlen)
             : -1;

    xmlFree(s);

    if (rc != 0) {
        free(dst);
        return -1;
    }

    *out = dst;

    return 0;
}


/* RSA-OAEP with the SP's key: 0, or -1 whatever the reason */

static int
ent_saml_unwrap(EVP_PKEY *pkey, const ent_saml_enc_key_t *ek,
    unsigned char *key, size_t size, size_t *keylen)
{
    int             rc;
    size_t          clen, llen, n;
    unsigned char  *cipher, *label, *olabel, *out;
    EVP_PKEY_CTX   *ctx;

    *keylen = 0;
    rc = -1;
    label = NULL;
    llen = 0;
    out = NULL;
    ctx = NULL;

    if (ent_saml_b64_decode_ws(ek->value, &cipher, &clen) != 0) {
        return -1;
    }

    if (ek->label
        && ent_saml_b64_decode_ws(ek->label, &label, &llen) != 0)
    {
        goto done;
    }

    n = (size_t) EVP_PKEY_get_size(pkey);

    if (clen != n) {
        goto done;
    }

    out = malloc(n);
    ctx = EVP_PKEY_CTX_new(pkey, NULL);

    if (out == NULL || ctx == NULL
        || EVP_PKEY_decrypt_init(ctx) <= 0
        || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0
        || EVP_PKEY_CTX_set_rsa_oaep_md(ctx, ek->md) <= 0
        || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, ek->mgf) <= 0)
    {
        goto done;
    }

    if (label) {
        /* ctx takes it and frees it with OPENSSL_free() */

        olabel = OPENSSL_memdup(label, llen);

        if (olabel == NULL
            || EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, olabel, (int) llen)
               <= 0)
        {
            OPENSSL_free(olabel);
            goto done;
        }
    }

    if (EVP_PKEY_decrypt(ctx, out, &n, cipher, clen) <= 0 || n > size) {
        goto done;
    }

    memcpy(key, out, n);
    *keylen = n;
    rc = 0;

done:

    EVP_PKEY_CTX_free(ctx);

    if (out) {
        OPENSSL_cleanse(out, clen);
        free(out);
    }

    free(label);
    free(cipher);
    ERR_clear_error();

    return rc;
}


/*
 * The data with one xmlsec AES transform: IV first, then for GCM the tag
 * last; XML Encryption's CBC padding is xmlsec's.  *out is malloc()ed.
 */

static int
ent_saml_aes(const ent_saml_cipher_t *alg, const unsigned char *key,
    const unsigned char *in, size_t inlen, unsigned char **out,
    size_t *outlen)
{
    int                    rc;
    size_t                 n;
    xmlSecKeyPtr           k;
    xmlSecBufferPtr        buf;
    xmlSecTransformId      id;
    xmlSecTransformPtr     t;
    xmlSecTransformCtxPtr  ctx;

    *out = NULL;
    *outlen = 0;

    if (alg->gcm) {
        id = alg->key_len == 16 ? xmlSecTransformAes128GcmId
                                : xmlSecTransformAes256GcmId;

    } else {
        id = alg->key_len == 16 ? xmlSecTransformAes128CbcId
                                : xmlSecTransformAes256CbcId;
    }

    rc = -1;
    k = NULL;
    ctx = NULL;

    buf = xmlSecBufferCreate(alg->key_len);
    if (buf == NULL) {
        return -1;
    }

    if (xmlSecBufferSetData(buf, key, alg->key_len) < 0) {
        goto done;
    }

    k = xmlSecKeyReadBuffer(xmlSecKeyDataAesId, buf);
    ctx = xmlSecTransformCtxCreate();

    if (k == NULL || ctx == NULL
        || xmlSecPtrListAdd(&ctx->enabledTransforms, (xmlSecPtr) id) < 0)
    {
        goto done;
    }

    ctx->enabledUris = 0;

    t = xmlSecTransformCtxCreateAndAppend(ctx, id);

    if (t == NULL) {
        goto done;
    }

    t->operation = xmlSecTransformOperationDecrypt;

    if (xmlSecTransformSetKey(t, k) < 0
        || xmlSecTransformCtxBinaryExecute(ctx, in, (xmlSecSize) inlen) < 0
        || ctx->status != xmlSecTransformStatusFinished
        || ctx->result == NULL)
    {
        goto done;
    }

    n = xmlSecBufferGetSize(ctx->result);

    if (n == 0 || n > ENT_SAML_MAX_LEN) {
        goto done;
    }

    *out = malloc(n + 1);
    if (*out == NULL) {
        goto done;
    }

    memcpy(*out, xmlSecBufferGetData(ctx->result), n);
    (*out)[n] = '\0';
    *outlen = n;
    rc = 0;

done:

    if (ctx) {
        if (ctx->result) {
            xmlSecBufferEmpty(ctx->result);
        }

        xmlSecTransformCtxDestroy(ctx);
    }

    if (k) {
        xmlSecKeyDestroy(k);
    }

    xmlSecBufferDestroy(buf);
    ERR_clear_error();

    return rc;
}


/* a text node of XML white space only */

static int
ent_saml_blank(xmlNodePtr node)
{
    const xmlChar  *p;

    if (node->type == XML_COMMENT_NODE || node->type == XML_PI_NODE) {
        return 1;
    }

    if (node->type != XML_TEXT_NODE) {
        return 0;
    }

    for (p = node->content; p && *p; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            return 0;
        }
    }

    return 1;
}


/*
 * The plaintext parsed as content in the Response's namespace context (no
 * DOCTYPE can appear in content, no entity is declared), then put in the
 * EncryptedAssertion's place.
 */

static int
ent_saml_plaintext(ent_saml_ctx_t *c, const unsigned char *plain,
    size_t len)
{
    size_t           nelem;
    xmlNodePtr       list, node, next, assertion;
    xmlParserErrors  perr;

    list = NULL;

    perr = xmlParseInNodeContext(c->response, (const char *) plain,
                                 (int) len, ENT_SAML_PARSE_OPTIONS, &list);

    if (perr != XML_ERR_OK) {
        xmlFreeNodeList(list);
        ent_saml_error(c->err, c->errlen, ENT_SAML_DECRYPT_FAILED);
        return ENT_SAML_DECRYPT;
    }

    nelem = 0;
    assertion = NULL;

    for (node = list; node; node = node->next) {
        if (node->type == XML_ELEMENT_NODE) {
            nelem++;
            assertion = node;
            continue;
        }

        if (!ent_saml_blank(node)) {
            nelem = 2;
        }
    }

    if (nelem != 1 || !ent_saml_is(assertion, ENT_SAML_NS, "Assertion")) {
        xmlFreeNodeList(list);
        ent_saml_error(c->err, c->errlen,
                       "decrypted data is not one Assertion");
        return ENT_SAML_MALFORMED;
    }

    for (node = list; node; node = next) {
        next = node->next;
        node->prev = NULL;
        node->next = NULL;

        if (node != assertion) {
            xmlFreeNode(node);
        }
    }

    xmlReplaceNode(c->encrypted, assertion);
    xmlFreeNode(c->encrypted);

    c->encrypted = NULL;
    c->assertion = assertion;

    return ENT_SAML_OK;
}


static int
ent_saml_check_response(ent_saml_ctx_t *c)
{
    int                       rc;
    time_t                    t;
    xmlNodePtr                root;
    const char               *v, *rid, *aid;
    ent_saml_result_t        *out;
    const ent_saml_expect_t  *e;

    e = c->expect;
    out = c->out;
    root = xmlDocGetRootElement(c->doc);
    c->response = root;

    if (!ent_saml_is(root, ENT_SAMLP_NS, "Response")) {
        ent_saml_error(c->err, c->errlen, "root element is not a Response");
        return ENT_SAML_MALFORMED;
    }

    v = ent_saml_prop(root, "Version");

    if (v == NULL || strcmp(v, "2.0") != 0) {
        ent_saml_error(c->err, c->errlen, "Response Version is not 2.0");
        return ENT_SAML_MALFORMED;
    }

    rid = ent_saml_prop(root, "ID");

    if (!ent_saml_valid_id(rid)) {
        ent_saml_error(c->err, c->errlen, "Response has no valid ID");
        return ENT_SAML_MALFORMED;
    }

    if (ent_saml_time_prop(root, "IssueInstant", 1, &t) != 0) {
        ent_saml_error(c->err, c->errlen,
                       "Response has no valid IssueInstant");
        return ENT_SAML_MALFORMED;
    }

    rc = ent_saml_check_status(c);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    rc = ent_saml_find_assertion(c);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    if (c->encrypted == NULL) {
        aid = ent_saml_prop(c->assertion, "ID");

        if (!ent_saml_valid_id(aid)) {
            ent_saml_error(c->err, c->errlen, "Assertion has no valid ID");
            return ENT_SAML_MALFORMED;
        }

        rc = ent_saml_scan(c, rid, aid);

    } else {
        rc = ent_saml_scan(c, rid, NULL);
    }

    if (rc != ENT_SAML_OK) {
        return rc;
    }

    v = ent_saml_prop(root, "Destination");

    if (v != NULL && strcmp(v, e->acs_url) != 0) {
        ent_saml_error(c->err, c->errlen,
                       "Response Destination is not the ACS URL");
        return ENT_SAML_INVALID;
    }

    rc = ent_saml_check_issuer(c, root, 0);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    rc = ent_saml_check_signatures(c, rid);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    /* from here on, only the verified Response and Assertion are read */

    aid = ent_saml_prop(c->assertion, "ID");

    if (t > e->now + e->skew) {
        ent_saml_error(c->err, c->errlen, "Response issued in the future");
        return ENT_SAML_INVALID;
    }

    v = ent_saml_prop(root, "InResponseTo");
    c->in_response_to = v;

    if (e->request_id != NULL) {
        if (v == NULL) {
            if (!e->allow_idp_initiated) {
                ent_saml_error(c->err, c->errlen,
                               "Response has no InResponseTo");
                return ENT_SAML_INVALID;
            }

        } else if (strcmp(v, e->request_id) != 0) {
            ent_saml_error(c->err, c->errlen,
                           "InResponseTo does not match the request");
            return ENT_SAML_INVALID;
        }

    } else if (v != NULL) {
        ent_saml_error(c->err, c->errlen,
                       "InResponseTo without an outstanding request");
        return ENT_SAML_INVALID;

    } else if (!e->allow_idp_initiated) {
        ent_saml_error(c->err, c->errlen,
                       "IdP-initiated login is not allowed");
        return ENT_SAML_INVALID;
    }

    out->response_id = strdup(rid);
    out->assertion_id = strdup(aid);

    if (out->response_id == NULL || out->assertion_id == NULL) {
        ent_saml_error(c->err, c->errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    v = ent_saml_prop(c->assertion, "Version");

    if (v == NULL || strcmp(v, "2.0") != 0) {
        ent_saml_error(c->err, c->errlen, "Assertion Version is not 2.0");
        return ENT_SAML_INVALID;
    }

    if (ent_saml_time_prop(c->assertion, "IssueInstant", 1,
                           &out->issue_instant) != 0)
    {
        ent_saml_error(c->err, c->errlen,
                       "Assertion has no valid IssueInstant");
        return ENT_SAML_INVALID;
    }

    if (out->issue_instant > e->now + e->skew) {
        ent_saml_error(c->err, c->errlen, "Assertion issued in the future");
        return ENT_SAML_INVALID;
    }

    rc = ent_saml_check_issuer(c, c->assertion, 1);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    rc = ent_saml_check_conditions(c);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    rc = ent_saml_check_subject(c);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    rc = ent_saml_check_authn(c);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    return ent_saml_attributes(c);
}


/* the Assertion, or (with a key) the EncryptedAssertion, of the Response */

static int
ent_saml_find_assertion(ent_saml_ctx_t *c)
{
    size_t                    na, ne;
    xmlNodePtr                enc;
    const ent_saml_expect_t  *e;

    e = c->expect;

    enc = ent_saml_child(c->response, ENT_SAML_NS, "EncryptedAssertion",
                         &ne);
    c->assertion = ent_saml_child(c->response, ENT_SAML_NS, "Assertion",
                                  &na);

    if (ne == 0) {
        if (na != 1) {
            ent_saml_error(c->err, c->errlen,
                           na ? "more than one Assertion in the document"
                              : "Response has no Assertion");
            return ENT_SAML_MALFORMED;
        }

        return ENT_SAML_OK;
    }

    if (e->sp_key_pem == NULL && e->sp_keys == NULL) {
        ent_saml_error(c->err, c->errlen,
                       "encrypted assertions are not supported");
        return ENT_SAML_UNSUPPORTED;
    }

    if (ne != 1) {
        ent_saml_error(c->err, c->errlen, "more than one EncryptedAssertion");
        return ENT_SAML_MALFORMED;
    }

    if (na != 0) {
        ent_saml_error(c->err, c->errlen,
                       "both an Assertion and an EncryptedAssertion");
        return ENT_SAML_MALFORMED;
    }

    c->encrypted = enc;
    c->assertion = NULL;

    return ENT_SAML_OK;
}


static int
ent_saml_check_subject(ent_saml_ctx_t *c)
{
    int                       rc;
    size_t                    n;
    time_t                    expires;
    xmlNodePtr                subject, nameid, node, scd;
    const char               *v, *why;
    ent_saml_result_t        *out;

    out = c->out;

    subject = ent_saml_child(c->assertion, ENT_SAML_NS, "Subject", &n);

    if (subject == NULL || n != 1) {
        ent_saml_error(c->err, c->errlen, "Assertion has no Subject");
        return ENT_SAML_INVALID;
    }

    if (ent_saml_child(subject, ENT_SAML_NS, "EncryptedID", NULL)) {
        ent_saml_error(c->err, c->errlen,
                       "encrypted NameIDs are not supported");
        return ENT_SAML_UNSUPPORTED;
    }

    nameid = ent_saml_child(subject, ENT_SAML_NS, "NameID", &n);

    if (nameid == NULL || n != 1) {
        ent_saml_error(c->err, c->errlen, "Subject has no NameID");
        return ENT_SAML_INVALID;
    }

    if (ent_saml_text(nameid, ENT_SAML_MAX_VALUE_LEN, &out->name_id) != 0
        || out->name_id[0] == '\0')
    {
        ent_saml_error(c->err, c->errlen, "NameID is not valid");
        return ENT_SAML_INVALID;
    }

    v = ent_saml_prop(nameid, "Format");

    if (v != NULL) {
        if (strlen(v) > ENT_SAML_MAX_NAME_LEN || !ent_saml_clean(v, strlen(v)))
        {
            ent_saml_error(c->err, c->errlen, "NameID Format is not valid");
            return ENT_SAML_INVALID;
        }

        out->name_id_format = strdup(v);

        if (out->name_id_format == NULL) {
            ent_saml_error(c->err, c->errlen, "out of memory");
            return ENT_SAML_INTERNAL;
        }
    }

    if (c->expect->name_id_format != NULL
        && strcmp(v ? v : ENT_NAMEID_UNSPECIFIED,
                  c->expect->name_id_format) != 0)
    {
        ent_saml_error(c->err, c->errlen,
                       "NameID Format is not the one expected");
        return ENT_SAML_INVALID;
    }

    /* one bearer confirmation that holds is enough */

    why = "no bearer SubjectConfirmation";
    rc = ENT_SAML_INVALID;

    for (node = subject->children; node; node = node->next) {
        if (!ent_saml_is(node, ENT_SAML_NS, "SubjectConfirmation")) {
            continue;
        }

        v = ent_saml_prop(node, "Method");

        if (v == NULL || strcmp(v, ENT_CM_BEARER) != 0) {
            continue;
        }

        scd = ent_saml_child(node, ENT_SAML_NS, "SubjectConfirmationData",
                             &n);

        if (scd == NULL || n != 1) {
            why = "bearer SubjectConfirmation has no data";
            continue;
        }

        if (ent_saml_check_confirmation(c, scd, &expires, &why) == 0) {
            rc = ENT_SAML_OK;
            break;
        }
    }

    if (rc != ENT_SAML_OK) {
        ent_saml_error(c->err, c->errlen, "%s", why);
        return rc;
    }

    if (expires < out->expires || out->expires == 0) {
        out->expires = expires;
    }

    return ENT_SAML_OK;
}


static int
ent_saml_check_confirmation(ent_saml_ctx_t *c, xmlNodePtr scd,
    time_t *expires, const char **why)
{
    time_t                    t;
    const char               *v;
    const ent_saml_expect_t  *e;

    e = c->expect;

    v = ent_saml_prop(scd, "Recipient");

    if (v == NULL || strcmp(v, e->acs_url) != 0) {
        *why = "SubjectConfirmation Recipient is not the ACS URL";
        return -1;
    }

    if (ent_saml_time_prop(scd, "NotOnOrAfter", 1, expires) != 0) {
        *why = "SubjectConfirmation has no valid NotOnOrAfter";
        return -1;
    }

    if (*expires <= e->now - e->skew) {
        *why = "SubjectConfirmation has expired";
        return -1;
    }

    if (ent_saml_time_prop(scd, "NotBefore", 0, &t) != 0
        || t > e->now + e->skew)
    {
        *why = "SubjectConfirmation is not yet valid";
        return -1;
    }

    v = ent_saml_prop(scd, "InResponseTo");

    if (c->in_response_to != NULL
        ? (v == NULL || strcmp(v, c->in_response_to) != 0) : v != NULL)
    {
        *why = "SubjectConfirmation InResponseTo does not match";
        return -1;
    }

    return 0;
}


static int
ent_saml_check_conditions(ent_saml_ctx_t *c)
{
    int                       found;
    size_t                    n, naudiences;
    time_t                    t;
    xmlNodePtr                cond, node, aud;
    const ent_saml_expect_t  *e;

    e = c->expect;

    cond = ent_saml_child(c->assertion, ENT_SAML_NS, "Conditions", &n);

    if (cond == NULL || n != 1) {
        ent_saml_error(c->err, c->errlen, "Assertion has no Conditions");
        return ENT_SAML_INVALID;
    }

    if (ent_saml_time_prop(cond, "NotBefore", 0, &t) != 0) {
        ent_saml_error(c->err, c->errlen, "Conditions NotBefore is invalid");
        return ENT_SAML_INVALID;
    }

    if (t > e->now + e->skew) {
        ent_saml_error(c->err, c->errlen, "Assertion is not yet valid");
        return ENT_SAML_INVALID;
    }

    if (ent_saml_time_prop(cond, "NotOnOrAfter", 0, &t) != 0) {
        ent_saml_error(c->err, c->errlen,
                       "Conditions NotOnOrAfter is invalid");
        return ENT_SAML_INVALID;
    }

    if (t != 0) {
        if (t <= e->now - e->skew) {
            ent_saml_error(c->err, c->errlen, "Assertion has expired");
            return ENT_SAML_INVALID;
        }

        c->out->expires = t;
    }

    /* every AudienceRestriction must name us; at least one must exist */

    naudiences = 0;

    for (node = cond->children; node; node = node->next) {
        if (node->type != XML_ELEMENT_NODE) {
            continue;
        }

        if (ent_saml_is(node, ENT_SAML_NS, "OneTimeUse")
            || ent_saml_is(node, ENT_SAML_NS, "ProxyRestriction"))
        {
            continue;
        }

        if (!ent_saml_is(node, ENT_SAML_NS, "AudienceRestriction")) {
            ent_saml_error(c->err, c->errlen, "unknown Condition");
            return ENT_SAML_INVALID;
        }

        naudiences++;
        found = 0;

        for (aud = node->children; aud; aud = aud->next) {
            if (ent_saml_is(aud, ENT_SAML_NS, "Audience")
                && ent_saml_text_eq(aud, e->sp_entity_id))
            {
                found = 1;
                break;
            }
        }

        if (!found) {
            ent_saml_error(c->err, c->errlen,
                           "Assertion audience is not this SP");
            return ENT_SAML_INVALID;
        }
    }

    if (naudiences == 0) {
        ent_saml_error(c->err, c->errlen,
                       "Assertion has no AudienceRestriction");
        return ENT_SAML_INVALID;
    }

    return ENT_SAML_OK;
}


static int
ent_saml_check_authn(ent_saml_ctx_t *c)
{
    xmlNodePtr                authn;
    const char               *v;
    ent_saml_result_t        *out;
    const ent_saml_expect_t  *e;

    e = c->expect;
    out = c->out;

    authn = ent_saml_child(c->assertion, ENT_SAML_NS, "AuthnStatement", NULL);

    if (authn == NULL) {
        ent_saml_error(c->err, c->errlen, "Assertion has no AuthnStatement");
        return ENT_SAML_INVALID;
    }

    if (ent_saml_time_prop(authn, "AuthnInstant", 1, &out->authn_instant)
        != 0)
    {
        ent_saml_error(c->err, c->errlen,
                       "AuthnStatement has no valid AuthnInstant");
        return ENT_SAML_INVALID;
    }

    if (ent_saml_time_prop(authn, "SessionNotOnOrAfter", 0,
                           &out->session_not_on_or_after) != 0)
    {
        ent_saml_error(c->err, c->errlen,
                       "AuthnStatement SessionNotOnOrAfter is invalid");
        return ENT_SAML_INVALID;
    }

    if (out->session_not_on_or_after != 0
        && out->session_not_on_or_after <= e->now - e->skew)
    {
        ent_saml_error(c->err, c->errlen, "IdP session has expired");
        return ENT_SAML_INVALID;
    }

    v = ent_saml_prop(authn, "SessionIndex");

    if (v != NULL) {
        if (v[0] == '\0' || strlen(v) > ENT_SAML_MAX_VALUE_LEN
            || !ent_saml_clean(v, strlen(v)))
        {
            ent_saml_error(c->err, c->errlen, "SessionIndex is not valid");
            return ENT_SAML_INVALID;
        }

        out->session_index = strdup(v);

        if (out->session_index == NULL) {
            ent_saml_error(c->err, c->errlen, "out of memory");
            return ENT_SAML_INTERNAL;
        }
    }

    return ENT_SAML_OK;
}


static int
ent_saml_attributes(ent_saml_ctx_t *c)
{
    int                 rc;
    size_t              n;
    xmlNodePtr          st, node;
    ent_saml_result_t  *out;

    out = c->out;
    n = 0;

    for (st = c->assertion->children; st; st = st->next) {
        if (!ent_saml_is(st, ENT_SAML_NS, "AttributeStatement")) {
            continue;
        }

        for (node = st->children; node; node = node->next) {
            if (ent_saml_is(node, ENT_SAML_NS, "Attribute")) {
                n++;
            }
        }
    }

    if (n == 0) {
        return ENT_SAML_OK;
    }

    if (n > ENT_SAML_MAX_ATTRS) {
        ent_saml_error(c->err, c->errlen, "too many attributes");
        return ENT_SAML_INVALID;
    }

    out->attrs = calloc(n, sizeof(ent_saml_attr_t));
    if (out->attrs == NULL) {
        ent_saml_error(c->err, c->errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    for (st = c->assertion->children; st; st = st->next) {
        if (!ent_saml_is(st, ENT_SAML_NS, "AttributeStatement")) {
            continue;
        }

        for (node = st->children; node; node = node->next) {
            if (!ent_saml_is(node, ENT_SAML_NS, "Attribute")) {
                continue;
            }

            rc = ent_saml_attribute(c, node, &out->attrs[out->nattrs++]);
            if (rc != ENT_SAML_OK) {
                return rc;
            }
        }
    }

    return ENT_SAML_OK;
}


static int
ent_saml_attribute(ent_saml_ctx_t *c, xmlNodePtr node, ent_saml_attr_t *attr)
{
    size_t       n, len;
    xmlNodePtr   v;
    const char  *name;

    name = ent_saml_prop(node, "Name");
    len = name ? strlen(name) : 0;

    if (len == 0 || len > ENT_SAML_MAX_NAME_LEN
        || !ent_saml_clean(name, len))
    {
        ent_saml_error(c->err, c->errlen, "attribute Name is not valid");
        return ENT_SAML_INVALID;
    }

    attr->name = strdup(name);
    if (attr->name == NULL) {
        ent_saml_error(c->err, c->errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    ent_saml_child(node, ENT_SAML_NS, "AttributeValue", &n);

    if (n > ENT_SAML_MAX_VALUES) {
        ent_saml_error(c->err, c->errlen, "too many attribute values");
        return ENT_SAML_INVALID;
    }

    attr->values = calloc(n ? n : 1, sizeof(char *));
    if (attr->values == NULL) {
        ent_saml_error(c->err, c->errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    for (v = node->children; v; v = v->next) {
        if (!ent_saml_is(v, ENT_SAML_NS, "AttributeValue")) {
            continue;
        }

        if (ent_saml_text(v, ENT_SAML_MAX_VALUE_LEN,
                          &attr->values[attr->nvalues])
            != 0)
        {
            ent_saml_error(c->err, c->errlen,
                           "attribute value is not valid");
            return ENT_SAML_INVALID;
        }

        attr->nvalues++;
    }

    return ENT_SAML_OK;
}


void
ent_saml_result_free(ent_saml_result_t *res)
{
    size_t  i, j;

    if (res == NULL) {
        return;
    }

    free(res->name_id);
    free(res->name_id_format);
    free(res->session_index);
    free(res->assertion_id);
    free(res->response_id);

    if (res->attrs) {
        for (i = 0; i < res->nattrs; i++) {
            free(res->attrs[i].name);

            if (res->attrs[i].values) {
                for (j = 0; j < res->attrs[i].nvalues; j++) {
                    free(res->attrs[i].values[j]);
                }

                free(res->attrs[i].values);
            }
        }

        free(res->attrs);
    }

    memset(res, 0, sizeof(ent_saml_result_t));
}


const ent_saml_attr_t *
ent_saml_attr(const ent_saml_result_t *res, const char *name)
{
    size_t  i;

    for (i = 0; i < res->nattrs; i++) {
        if (res->attrs[i].name && strcmp(res->attrs[i].name, name) == 0) {
            return &res->attrs[i];
        }
    }

    return NULL;
}


char *
ent_saml_attr_join(const ent_saml_result_t *res, const char *name)
{
    char                   *s, *p;
    size_t                  i, len;
    const ent_saml_attr_t  *a;

    a = ent_saml_attr(res, name);
    if (a == NULL) {
        return NULL;
    }

    len = 1;

    for (i = 0; i < a->nvalues; i++) {
        len += strlen(a->values[i]) + 1;
    }

    s = malloc(len);
    if (s == NULL) {
        return NULL;
    }

    p = s;

    for (i = 0; i < a->nvalues; i++) {
        if (i) {
            *p++ = ',';
        }

        len = strlen(a->values[i]);
        memcpy(p, a->values[i], len);
        p += len;
    }

    *p = '\0';

    return s;
}


/* days since 1970-01-01 of a proleptic Gregorian date */

static long long
ent_saml_days(int y, int m, int d)
{
    long long  era, yoe, doy, doe;

    y -= m <= 2;
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


int
ent_saml_parse_time(const char *s, time_t *t)
{
    int          i, k, v[6], len[6], mdays;
    const char  *p;
    static const char  sep[6] = { '-', '-', 'T', ':', ':', '\0' };
    static const int   days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                    30, 31 };

    len[0] = 4;
    len[1] = len[2] = len[3] = len[4] = len[5] = 2;

    p = s;

    for (i = 0; i < 6; i++) {
        v[i] = 0;

        for (k = 0; k < len[i]; k++) {
            if (p[k] < '0' || p[k] > '9') {
                return -1;
            }

            v[i] = v[i] * 10 + (p[k] - '0');
        }

        p += len[i];

        if (i < 5) {
            if (*p != sep[i]) {
                return -1;
            }

            p++;
        }
    }

    if (*p == '.') {
        p++;

        if (*p < '0' || *p > '9') {
            return -1;
        }

        for (i = 0; *p >= '0' && *p <= '9'; i++, p++) {
            if (i == 12) {
                return -1;
            }
        }
    }

    if (p[0] != 'Z' || p[1] != '\0') {
        return -1;
    }

    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[3] > 23
        || v[4] > 59 || v[5] > 59)
    {
        return -1;
    }

    mdays = days[v[1] - 1];

    if (v[1] == 2
        && (v[0] % 4 == 0 && (v[0] % 100 != 0 || v[0] % 400 == 0)))
    {
        mdays = 29;
    }

    if (v[2] > mdays) {
        return -1;
    }

    *t = (time_t) (ent_saml_days(v[0], v[1], v[2]) * 86400
                   + v[3] * 3600 + v[4] * 60 + v[5]);

    return 0;
}


void
ent_saml_format_time(time_t t, char *buf)
{
    char       tmp[80];
    struct tm  tm;

    if (t < 0 || gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999) {
        strcpy(buf, "1970-01-01T00:00:00Z");
        return;
    }

    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);

    memcpy(buf, tmp, 20);
    buf[20] = '\0';
}


static void
ent_saml_buf_add(ent_saml_buf_t *b, const char *s, size_t n)
{
    char    *p;
    size_t   size;

    if (b->failed) {
        return;
    }

    if (b->len + n + 1 > b->size) {
        size = (b->len + n + 1) * 2;
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


static void
ent_saml_buf_str(ent_saml_buf_t *b, const char *s)
{
    ent_saml_buf_add(b, s, strlen(s));
}


/* text escaped for an attribute value or element content */

static void
ent_saml_buf_esc(ent_saml_buf_t *b, const char *s)
{
    for ( /* void */ ; *s; s++) {
        switch (*s) {
        case '&':
            ent_saml_buf_str(b, "&amp;");
            break;
        case '<':
            ent_saml_buf_str(b, "&lt;");
            break;
        case '>':
            ent_saml_buf_str(b, "&gt;");
            break;
        case '"':
            ent_saml_buf_str(b, "&quot;");
            break;
        case '\'':
            ent_saml_buf_str(b, "&apos;");
            break;
        default:
            ent_saml_buf_add(b, s, 1);
        }
    }
}


/* a non-empty configured string without control characters */

static int
ent_saml_plain(const char *s)
{
    return s != NULL && s[0] != '\0' && ent_saml_clean(s, strlen(s));
}


/* raw DEFLATE, then base64, then percent-encoding */

static char *
ent_saml_deflate_b64url(const char *xml, size_t len, size_t *outlen)
{
    int             rc;
    char           *out, *p;
    size_t          i, n, zlen;
    z_stream        z;
    unsigned char  *zbuf, b64[4];
    unsigned long   acc;

    memset(&z, 0, sizeof(z_stream));

    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, -15, 8,
                     Z_DEFAULT_STRATEGY)
        != Z_OK)
    {
        return NULL;
    }

    zlen = deflateBound(&z, len);
    zbuf = malloc(zlen);

    if (zbuf == NULL) {
        deflateEnd(&z);
        return NULL;
    }

    z.next_in = (unsigned char *) xml;
    z.avail_in = len;
    z.next_out = zbuf;
    z.avail_out = zlen;

    rc = deflate(&z, Z_FINISH);
    zlen = z.total_out;
    deflateEnd(&z);

    if (rc != Z_STREAM_END) {
        free(zbuf);
        return NULL;
    }

    /* each base64 character takes at most 3 bytes once percent-encoded */

    out = malloc((zlen + 2) / 3 * 4 * 3 + 1);
    if (out == NULL) {
        free(zbuf);
        return NULL;
    }

    p = out;

    for (i = 0; i < zlen; i += 3) {
        n = zlen - i < 3 ? zlen - i : 3;

        acc = (unsigned long) zbuf[i] << 16;

        if (n > 1) {
            acc |= (unsigned long) zbuf[i + 1] << 8;
        }

        if (n > 2) {
            acc |= zbuf[i + 2];
        }

        b64[0] = ent_saml_b64_alphabet[(acc >> 18) & 63];
        b64[1] = ent_saml_b64_alphabet[(acc >> 12) & 63];
        b64[2] = n > 1 ? ent_saml_b64_alphabet[(acc >> 6) & 63] : '=';
        b64[3] = n > 2 ? ent_saml_b64_alphabet[acc & 63] : '=';

        for (n = 0; n < 4; n++) {
            switch (b64[n]) {
            case '+':
                memcpy(p, "%2B", 3);
                p += 3;
                break;
            case '/':
                memcpy(p, "%2F", 3);
                p += 3;
                break;
            case '=':
                memcpy(p, "%3D", 3);
                p += 3;
                break;
            default:
                *p++ = b64[n];
            }
        }
    }

    *p = '\0';
    *outlen = p - out;

    free(zbuf);

    return out;
}


int
ent_saml_authn_request(const char *sp_entity_id, const char *acs_url,
    const char *idp_sso_url, const char *id, time_t issue_instant,
    char **out, size_t *outlen)
{
    char    *xml;
    size_t   len;

    *out = NULL;
    *outlen = 0;

    /* no NameIDPolicy Format: the IdP's default, as it always was */

    if (ent_saml_authn_request_xml(sp_entity_id, acs_url, idp_sso_url, id,
                                   issue_instant, "", 0, &xml, &len)
        != 0)
    {
        return -1;
    }

    *out = ent_saml_deflate_b64url(xml, len, outlen);

    free(xml);

    return *out ? 0 : -1;
}


/* base64 of data, a line break every line characters when line > 0 */

static void
ent_saml_buf_b64(ent_saml_buf_t *b, const unsigned char *data, size_t len,
    size_t line)
{
    char           q[4];
    size_t         i, n, col;
    unsigned long  acc;

    col = 0;

    for (i = 0; i < len; i += 3) {
        n = len - i < 3 ? len - i : 3;

        acc = (unsigned long) data[i] << 16;

        if (n > 1) {
            acc |= (unsigned long) data[i + 1] << 8;
        }

        if (n > 2) {
            acc |= data[i + 2];
        }

        q[0] = ent_saml_b64_alphabet[(acc >> 18) & 63];
        q[1] = ent_saml_b64_alphabet[(acc >> 12) & 63];
        q[2] = n > 1 ? ent_saml_b64_alphabet[(acc >> 6) & 63] : '=';
        q[3] = n > 2 ? ent_saml_b64_alphabet[acc & 63] : '=';

        ent_saml_buf_add(b, q, 4);
        col += 4;

        if (line && col >= line && i + 3 < len) {
            ent_saml_buf_add(b, "\n", 1);
            col = 0;
        }
    }
}


/* the first certificate of a PEM text as base64 DER, on one line */

static int
ent_saml_buf_cert(ent_saml_buf_t *b, const char *pem)
{
    int             n;
    BIO            *bio;
    X509           *x;
    unsigned char  *der;

    bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL) {
        return -1;
    }

    x = PEM_read_bio_X509(bio, NULL, ent_saml_no_password, NULL);
    BIO_free(bio);

    if (x == NULL) {
        ERR_clear_error();
        return -1;
    }

    der = NULL;
    n = i2d_X509(x, &der);
    X509_free(x);

    if (n <= 0) {
        ERR_clear_error();
        return -1;
    }

    ent_saml_buf_b64(b, der, (size_t) n, 0);
    OPENSSL_free(der);

    return 0;
}


static int
ent_saml_buf_done(ent_saml_buf_t *b, char **out, size_t *outlen)
{
    if (b->failed || b->data == NULL) {
        free(b->data);
        return -1;
    }

    *out = b->data;
    *outlen = b->len;

    return 0;
}


int
ent_saml_authn_request_xml(const char *sp_entity_id, const char *acs_url,
    const char *idp_sso_url, const char *id, time_t issue_instant,
    const char *name_id_format, int force_authn, char **out, size_t *outlen)
{
    char            when[21];
    ent_saml_buf_t  b;

    *out = NULL;
    *outlen = 0;

    if (name_id_format == NULL) {
        name_id_format = ENT_NAMEID_EMAIL;
    }

    if (!ent_saml_plain(sp_entity_id) || !ent_saml_plain(acs_url)
        || !ent_saml_plain(idp_sso_url) || !ent_saml_valid_id(id)
        || (name_id_format[0] && !ent_saml_plain(name_id_format)))
    {
        return -1;
    }

    ent_saml_format_time(issue_instant, when);

    memset(&b, 0, sizeof(ent_saml_buf_t));

    ent_saml_buf_str(&b, "<samlp:AuthnRequest xmlns:samlp=\"" ENT_SAMLP_NS
                     "\" xmlns:saml=\"" ENT_SAML_NS "\" ID=\"");
    ent_saml_buf_esc(&b, id);
    ent_saml_buf_str(&b, "\" Version=\"2.0\" IssueInstant=\"");
    ent_saml_buf_str(&b, when);
    ent_saml_buf_str(&b, "\" Destination=\"");
    ent_saml_buf_esc(&b, idp_sso_url);
    ent_saml_buf_str(&b, "\" AssertionConsumerServiceURL=\"");
    ent_saml_buf_esc(&b, acs_url);
    ent_saml_buf_str(&b, "\" ProtocolBinding=\"" ENT_BINDING_POST "\"");

    if (force_authn) {
        ent_saml_buf_str(&b, " ForceAuthn=\"true\"");
    }

    ent_saml_buf_str(&b, "><saml:Issuer>");
    ent_saml_buf_esc(&b, sp_entity_id);
    ent_saml_buf_str(&b, "</saml:Issuer><samlp:NameIDPolicy");

    if (name_id_format[0]) {
        ent_saml_buf_str(&b, " Format=\"");
        ent_saml_buf_esc(&b, name_id_format);
        ent_saml_buf_str(&b, "\"");
    }

    ent_saml_buf_str(&b, " AllowCreate=\"true\"/></samlp:AuthnRequest>");

    return ent_saml_buf_done(&b, out, outlen);
}


int
ent_saml_logout_request_xml(const char *sp_entity_id,
    const char *destination, const char *id, time_t issue_instant,
    const char *name_id, const char *name_id_format,
    const char *session_index, char **out, size_t *outlen)
{
    char            when[21];
    ent_saml_buf_t  b;

    *out = NULL;
    *outlen = 0;

    if (!ent_saml_plain(sp_entity_id) || !ent_saml_plain(destination)
        || !ent_saml_valid_id(id) || !ent_saml_plain(name_id)
        || strlen(name_id) > ENT_SAML_MAX_VALUE_LEN
        || (name_id_format && !ent_saml_plain(name_id_format))
        || (session_index && (!ent_saml_plain(session_index)
                              || strlen(session_index)
                                 > ENT_SAML_MAX_VALUE_LEN)))
    {
        return -1;
    }

    ent_saml_format_time(issue_instant, when);

    memset(&b, 0, sizeof(ent_saml_buf_t));

    ent_saml_buf_str(&b, "<samlp:LogoutRequest xmlns:samlp=\"" ENT_SAMLP_NS
                     "\" xmlns:saml=\"" ENT_SAML_NS "\" ID=\"");
    ent_saml_buf_esc(&b, id);
    ent_saml_buf_str(&b, "\" Version=\"2.0\" IssueInstant=\"");
    ent_saml_buf_str(&b, when);
    ent_saml_buf_str(&b, "\" Destination=\"");
    ent_saml_buf_esc(&b, destination);
    ent_saml_buf_str(&b, "\"><saml:Issuer>");
    ent_saml_buf_esc(&b, sp_entity_id);
    ent_saml_buf_str(&b, "</saml:Issuer><saml:NameID");

    if (name_id_format) {
        ent_saml_buf_str(&b, " Format=\"");
        ent_saml_buf_esc(&b, name_id_format);
        ent_saml_buf_str(&b, "\"");
    }

    ent_saml_buf_str(&b, ">");
    ent_saml_buf_esc(&b, name_id);
    ent_saml_buf_str(&b, "</saml:NameID>");

    if (session_index) {
        ent_saml_buf_str(&b, "<samlp:SessionIndex>");
        ent_saml_buf_esc(&b, session_index);
        ent_saml_buf_str(&b, "</samlp:SessionIndex>");
    }

    ent_saml_buf_str(&b, "</samlp:LogoutRequest>");

    return ent_saml_buf_done(&b, out, outlen);
}


int
ent_saml_logout_response_xml(const char *sp_entity_id,
    const char *destination, const char *id, const char *in_response_to,
    time_t issue_instant, int success, char **out, size_t *outlen)
{
    char            when[21];
    ent_saml_buf_t  b;

    *out = NULL;
    *outlen = 0;

    if (!ent_saml_plain(sp_entity_id) || !ent_saml_plain(destination)
        || !ent_saml_valid_id(id)
        || (in_response_to && !ent_saml_valid_id(in_response_to)))
    {
        return -1;
    }

    ent_saml_format_time(issue_instant, when);

    memset(&b, 0, sizeof(ent_saml_buf_t));

    ent_saml_buf_str(&b, "<samlp:LogoutResponse xmlns:samlp=\"" ENT_SAMLP_NS
                     "\" xmlns:saml=\"" ENT_SAML_NS "\" ID=\"");
    ent_saml_buf_esc(&b, id);
    ent_saml_buf_str(&b, "\" Version=\"2.0\" IssueInstant=\"");
    ent_saml_buf_str(&b, when);
    ent_saml_buf_str(&b, "\" Destination=\"");
    ent_saml_buf_esc(&b, destination);

    if (in_response_to) {
        ent_saml_buf_str(&b, "\" InResponseTo=\"");
        ent_saml_buf_esc(&b, in_response_to);
    }

    ent_saml_buf_str(&b, "\"><saml:Issuer>");
    ent_saml_buf_esc(&b, sp_entity_id);
    ent_saml_buf_str(&b, "</saml:Issuer><samlp:Status>"
                     "<samlp:StatusCode Value=\"");
    ent_saml_buf_str(&b, success ? ENT_STATUS_SUCCESS : ENT_STATUS_RESPONDER);
    ent_saml_buf_str(&b, "\"/></samlp:Status></samlp:LogoutResponse>");

    return ent_saml_buf_done(&b, out, outlen);
}


int
ent_saml_sp_metadata(const char *sp_entity_id, const char *acs_url,
    char **out, size_t *outlen)
{
    return ent_saml_sp_metadata_ex(sp_entity_id, acs_url, NULL, NULL, NULL,
                                   0, out, outlen);
}


int
ent_saml_sp_metadata_ex(const char *sp_entity_id, const char *acs_url,
    const char *slo_url, const char *sp_cert_pem, const char *name_id_format,
    int authn_requests_signed, char **out, size_t *outlen)
{
    int                       i;
    ent_saml_buf_t            b;
    const ent_saml_cipher_t  *alg;
    static const char        *use[2] = { "signing", "encryption" };

    *out = NULL;
    *outlen = 0;

    if (name_id_format == NULL) {
        name_id_format = ENT_NAMEID_EMAIL;
    }

    if (!ent_saml_plain(sp_entity_id) || !ent_saml_plain(acs_url)
        || (slo_url && !ent_saml_plain(slo_url))
        || !ent_saml_plain(name_id_format))
    {
        return -1;
    }

    memset(&b, 0, sizeof(ent_saml_buf_t));

    ent_saml_buf_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<md:EntityDescriptor xmlns:md=\"" ENT_MD_NS "\"");

    if (sp_cert_pem) {
        ent_saml_buf_str(&b, " xmlns:ds=\"" ENT_DSIG_NS "\"");
    }

    ent_saml_buf_str(&b, " entityID=\"");
    ent_saml_buf_esc(&b, sp_entity_id);
    ent_saml_buf_str(&b, "\">\n  <md:SPSSODescriptor AuthnRequestsSigned=\"");
    ent_saml_buf_str(&b, authn_requests_signed ? "true" : "false");
    ent_saml_buf_str(&b, "\" WantAssertionsSigned=\"true\""
                     " protocolSupportEnumeration=\"" ENT_SAMLP_NS "\">\n");

    for (i = 0; sp_cert_pem && i < 2; i++) {
        ent_saml_buf_str(&b, "    <md:KeyDescriptor use=\"");
        ent_saml_buf_str(&b, use[i]);
        ent_saml_buf_str(&b, "\">\n      <ds:KeyInfo><ds:X509Data>"
                         "<ds:X509Certificate>");

        if (ent_saml_buf_cert(&b, sp_cert_pem) != 0) {
            free(b.data);
            return -1;
        }

        ent_saml_buf_str(&b, "</ds:X509Certificate></ds:X509Data>"
                         "</ds:KeyInfo>\n");

        if (i == 1) {
            for (alg = ent_saml_ciphers; alg->uri; alg++) {
                ent_saml_buf_str(&b, "      <md:EncryptionMethod"
                                 " Algorithm=\"");
                ent_saml_buf_str(&b, alg->uri);
                ent_saml_buf_str(&b, "\"/>\n");
            }

            ent_saml_buf_str(&b, "      <md:EncryptionMethod Algorithm=\""
                             ENT_ALG_RSA_OAEP "\"/>\n"
                             "      <md:EncryptionMethod Algorithm=\""
                             ENT_ALG_RSA_OAEP_MGF1P "\"/>\n");
        }

        ent_saml_buf_str(&b, "    </md:KeyDescriptor>\n");
    }

    if (slo_url) {
        ent_saml_buf_str(&b, "    <md:SingleLogoutService Binding=\""
                         ENT_BINDING_REDIRECT "\" Location=\"");
        ent_saml_buf_esc(&b, slo_url);
        ent_saml_buf_str(&b, "\"/>\n");
    }

    ent_saml_buf_str(&b, "    <md:NameIDFormat>");
    ent_saml_buf_esc(&b, name_id_format);
    ent_saml_buf_str(&b, "</md:NameIDFormat>\n"
                     "    <md:AssertionConsumerService Binding=\""
                     ENT_BINDING_POST "\" Location=\"");
    ent_saml_buf_esc(&b, acs_url);
    ent_saml_buf_str(&b, "\" index=\"0\" isDefault=\"true\"/>\n"
                     "  </md:SPSSODescriptor>\n"
                     "</md:EntityDescriptor>\n");

    return ent_saml_buf_done(&b, out, outlen);
}


/* a copy of a configured or checked string; NULL stays NULL */

static int
ent_saml_dup(char **dst, const char *src)
{
    if (src == NULL) {
        *dst = NULL;
        return 0;
    }

    *dst = strdup(src);

    return *dst ? 0 : -1;
}


/*
 * What a LogoutRequest and a LogoutResponse share: the root, Version, ID,
 * IssueInstant, Issuer and Destination.
 */

static int
ent_saml_logout_head(xmlNodePtr root, const char *name, const char *idp,
    const char *slo_url, time_t now, long skew, ent_saml_logout_t *out,
    char *err, size_t errlen)
{
    size_t       n;
    xmlNodePtr   issuer;
    const char  *v;

    if (!ent_saml_is(root, ENT_SAMLP_NS, name)) {
        ent_saml_error(err, errlen, "root element is not a %s", name);
        return ENT_SAML_MALFORMED;
    }

    v = ent_saml_prop(root, "Version");

    if (v == NULL || strcmp(v, "2.0") != 0) {
        ent_saml_error(err, errlen, "%s Version is not 2.0", name);
        return ENT_SAML_MALFORMED;
    }

    v = ent_saml_prop(root, "ID");

    if (!ent_saml_valid_id(v)) {
        ent_saml_error(err, errlen, "%s has no valid ID", name);
        return ENT_SAML_MALFORMED;
    }

    if (ent_saml_dup(&out->id, v) != 0) {
        ent_saml_error(err, errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    if (ent_saml_time_prop(root, "IssueInstant", 1, &out->issue_instant)
        != 0)
    {
        ent_saml_error(err, errlen, "%s has no valid IssueInstant", name);
        return ENT_SAML_MALFORMED;
    }

    issuer = ent_saml_child(root, ENT_SAML_NS, "Issuer", &n);

    if (issuer == NULL || n != 1) {
        ent_saml_error(err, errlen, "%s has no Issuer", name);
        return ENT_SAML_INVALID;
    }

    v = ent_saml_prop(issuer, "Format");

    if ((v && strcmp(v, ENT_NAMEID_ENTITY) != 0)
        || ent_saml_text(issuer, ENT_SAML_MAX_VALUE_LEN, &out->issuer) != 0
        || strcmp(out->issuer, idp) != 0)
    {
        ent_saml_error(err, errlen, "%s Issuer is not the IdP", name);
        return ENT_SAML_INVALID;
    }

    v = ent_saml_prop(root, "Destination");

    if (v != NULL && strcmp(v, slo_url) != 0) {
        ent_saml_error(err, errlen, "%s Destination is not the SLO URL",
                       name);
        return ENT_SAML_INVALID;
    }

    if (out->issue_instant > now + skew) {
        ent_saml_error(err, errlen, "%s issued in the future", name);
        return ENT_SAML_INVALID;
    }

    return ENT_SAML_OK;
}


/* parses, checks the head, and leaves the body to the caller */

static int
ent_saml_logout_check(const unsigned char *xml, size_t len, const char *name,
    const char *idp, const char *slo_url, time_t now, long skew,
    ent_saml_logout_t *out, xmlDocPtr *doc, char *err, size_t errlen)
{
    int  rc;

    *doc = NULL;

    if (err && errlen) {
        err[0] = '\0';
    }

    if (idp == NULL || slo_url == NULL) {
        ent_saml_error(err, errlen, "incomplete expectations");
        return ENT_SAML_INTERNAL;
    }

    if (xml == NULL || len == 0) {
        ent_saml_error(err, errlen, "empty %s", name);
        return ENT_SAML_MALFORMED;
    }

    if (len > ENT_SAML_MAX_LEN) {
        ent_saml_error(err, errlen, "%s too large", name);
        return ENT_SAML_MALFORMED;
    }

    if (ent_saml_init() != 0) {
        ent_saml_error(err, errlen, "XML security library init failed");
        return ENT_SAML_INTERNAL;
    }

    *doc = ent_saml_parse(xml, len, name, &rc, err, errlen);
    if (*doc == NULL) {
        return rc;
    }

    return ent_saml_logout_head(xmlDocGetRootElement(*doc), name, idp,
                                slo_url, now, skew, out, err, errlen);
}


int
ent_saml_logout_request_check(const unsigned char *xml, size_t len,
    const char *idp_entity_id, const char *slo_url, time_t now, long skew,
    ent_saml_logout_t *out, char *err, size_t errlen)
{
    int          rc;
    size_t       n;
    xmlDocPtr    doc;
    xmlNodePtr   root, nameid, node;
    const char  *v;

    memset(out, 0, sizeof(ent_saml_logout_t));

    rc = ent_saml_logout_check(xml, len, "LogoutRequest", idp_entity_id,
                               slo_url, now, skew, out, &doc, err, errlen);
    if (rc != ENT_SAML_OK) {
        goto done;
    }

    root = xmlDocGetRootElement(doc);

    if (ent_saml_time_prop(root, "NotOnOrAfter", 0, &out->not_on_or_after)
        != 0)
    {
        ent_saml_error(err, errlen, "LogoutRequest NotOnOrAfter is invalid");
        rc = ENT_SAML_INVALID;
        goto done;
    }

    if (out->not_on_or_after != 0 && out->not_on_or_after <= now - skew) {
        ent_saml_error(err, errlen, "LogoutRequest has expired");
        rc = ENT_SAML_INVALID;
        goto done;
    }

    if (ent_saml_child(root, ENT_SAML_NS, "EncryptedID", NULL)) {
        ent_saml_error(err, errlen, "encrypted NameIDs are not supported");
        rc = ENT_SAML_UNSUPPORTED;
        goto done;
    }

    if (ent_saml_child(root, ENT_SAML_NS, "BaseID", NULL)) {
        ent_saml_error(err, errlen, "BaseID is not supported");
        rc = ENT_SAML_INVALID;
        goto done;
    }

    rc = ENT_SAML_INVALID;

    nameid = ent_saml_child(root, ENT_SAML_NS, "NameID", &n);

    if (nameid == NULL || n != 1) {
        ent_saml_error(err, errlen, n ? "more than one NameID"
                                      : "LogoutRequest has no NameID");
        goto done;
    }

    if (ent_saml_text(nameid, ENT_SAML_MAX_VALUE_LEN, &out->name_id) != 0
        || out->name_id[0] == '\0')
    {
        ent_saml_error(err, errlen, "NameID is not valid");
        goto done;
    }

    v = ent_saml_prop(nameid, "Format");

    if (v != NULL) {
        if (strlen(v) > ENT_SAML_MAX_NAME_LEN
            || !ent_saml_clean(v, strlen(v)))
        {
            ent_saml_error(err, errlen, "NameID Format is not valid");
            goto done;
        }

        if (ent_saml_dup(&out->name_id_format, v) != 0) {
            ent_saml_error(err, errlen, "out of memory");
            rc = ENT_SAML_INTERNAL;
            goto done;
        }
    }

    ent_saml_child(root, ENT_SAMLP_NS, "SessionIndex", &n);

    if (n > ENT_SAML_MAX_SESSION_INDEXES) {
        ent_saml_error(err, errlen, "too many SessionIndex values");
        goto done;
    }

    if (n) {
        out->session_indexes = calloc(n, sizeof(char *));

        if (out->session_indexes == NULL) {
            ent_saml_error(err, errlen, "out of memory");
            rc = ENT_SAML_INTERNAL;
            goto done;
        }
    }

    for (node = root->children; node; node = node->next) {
        if (!ent_saml_is(node, ENT_SAMLP_NS, "SessionIndex")) {
            continue;
        }

        if (ent_saml_text(node, ENT_SAML_MAX_VALUE_LEN,
                          &out->session_indexes[out->nsession_indexes])
            != 0)
        {
            ent_saml_error(err, errlen, "SessionIndex is not valid");
            goto done;
        }

        if (out->session_indexes[out->nsession_indexes++][0] == '\0') {
            ent_saml_error(err, errlen, "SessionIndex is not valid");
            goto done;
        }
    }

    rc = ENT_SAML_OK;

done:

    xmlFreeDoc(doc);

    if (rc != ENT_SAML_OK) {
        ent_saml_logout_free(out);
    }

    return rc;
}


int
ent_saml_logout_response_check(const unsigned char *xml, size_t len,
    const char *idp_entity_id, const char *slo_url, const char *request_id,
    time_t now, long skew, ent_saml_logout_t *out, char *err, size_t errlen)
{
    int          rc;
    char         top[ENT_SAML_MAX_NAME_LEN + 1];
    size_t       n;
    xmlDocPtr    doc;
    xmlNodePtr   root, status, code;
    const char  *v;

    memset(out, 0, sizeof(ent_saml_logout_t));

    doc = NULL;

    if (request_id == NULL) {
        ent_saml_error(err, errlen, "incomplete expectations");
        rc = ENT_SAML_INTERNAL;
        goto done;
    }

    rc = ent_saml_logout_check(xml, len, "LogoutResponse", idp_entity_id,
                               slo_url, now, skew, out, &doc, err, errlen);
    if (rc != ENT_SAML_OK) {
        goto done;
    }

    root = xmlDocGetRootElement(doc);

    v = ent_saml_prop(root, "InResponseTo");

    if (v == NULL || strcmp(v, request_id) != 0) {
        ent_saml_error(err, errlen,
                       "InResponseTo does not match the request");
        rc = ENT_SAML_INVALID;
        goto done;
    }

    if (ent_saml_dup(&out->in_response_to, v) != 0) {
        ent_saml_error(err, errlen, "out of memory");
        rc = ENT_SAML_INTERNAL;
        goto done;
    }

    rc = ENT_SAML_MALFORMED;

    status = ent_saml_child(root, ENT_SAMLP_NS, "Status", &n);

    if (status == NULL || n != 1) {
        ent_saml_error(err, errlen, "LogoutResponse has no Status");
        goto done;
    }

    code = ent_saml_child(status, ENT_SAMLP_NS, "StatusCode", &n);
    v = code ? ent_saml_prop(code, "Value") : NULL;

    if (code == NULL || n != 1 || v == NULL) {
        ent_saml_error(err, errlen, "LogoutResponse has no StatusCode");
        goto done;
    }

    out->success = strcmp(v, ENT_STATUS_SUCCESS) == 0;

    /* kept whole, reduced to printable ASCII */

    for (n = 0; v[n] && n < ENT_SAML_MAX_NAME_LEN; n++) {
        top[n] = (v[n] > 0x20 && v[n] < 0x7f) ? v[n] : '?';
    }

    top[n] = '\0';

    if (ent_saml_dup(&out->status, top) != 0) {
        ent_saml_error(err, errlen, "out of memory");
        rc = ENT_SAML_INTERNAL;
        goto done;
    }

    rc = ENT_SAML_OK;

done:

    xmlFreeDoc(doc);

    if (rc != ENT_SAML_OK) {
        ent_saml_logout_free(out);
    }

    return rc;
}


void
ent_saml_logout_free(ent_saml_logout_t *lo)
{
    size_t  i;

    if (lo == NULL) {
        return;
    }

    free(lo->id);
    free(lo->issuer);
    free(lo->name_id);
    free(lo->name_id_format);
    free(lo->in_response_to);
    free(lo->status);

    if (lo->session_indexes) {
        for (i = 0; i < lo->nsession_indexes; i++) {
            free(lo->session_indexes[i]);
        }

        free(lo->session_indexes);
    }

    memset(lo, 0, sizeof(ent_saml_logout_t));
}


/* an absolute http(s) URL without white space or control characters */

static int
ent_saml_md_url(const char *v)
{
    size_t  i, len;

    if (v == NULL) {
        return 0;
    }

    len = strlen(v);

    if (len > ENT_SAML_MAX_URL_LEN
        || (strncasecmp(v, "https://", 8) != 0
            && strncasecmp(v, "http://", 7) != 0))
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) v[i] <= 0x20 || v[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}


/* an IDPSSODescriptor that speaks SAML 2.0 */

static int
ent_saml_md_is_idp(xmlNodePtr node)
{
    size_t       n;
    const char  *v, *p;

    if (!ent_saml_is(node, ENT_MD_NS, "IDPSSODescriptor")) {
        return 0;
    }

    v = ent_saml_prop(node, "protocolSupportEnumeration");
    n = sizeof(ENT_SAMLP_NS) - 1;

    for (p = v; p && (p = strstr(p, ENT_SAMLP_NS)) != NULL; p += n) {
        if ((p == v || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n'
             || p[-1] == '\r')
            && (p[n] == '\0' || p[n] == ' ' || p[n] == '\t' || p[n] == '\n'
                || p[n] == '\r'))
        {
            return 1;
        }
    }

    return 0;
}


static size_t
ent_saml_md_idps(xmlNodePtr entity, xmlNodePtr *idp)
{
    size_t      n;
    xmlNodePtr  node;

    n = 0;
    *idp = NULL;

    for (node = entity->children; node; node = node->next) {
        if (ent_saml_md_is_idp(node)) {
            if (n++ == 0) {
                *idp = node;
            }
        }
    }

    return n;
}


/*
 * The EntityDescriptors under node that are entity_id, or, when entity_id
 * is NULL, that have a SAML 2.0 IDPSSODescriptor: how many, and the first.
 */

static int
ent_saml_md_walk(xmlNodePtr node, int depth, const char *entity_id,
    xmlNodePtr *entity, size_t *count)
{
    xmlNodePtr   child, idp;
    const char  *v;

    if (ent_saml_is(node, ENT_MD_NS, "EntityDescriptor")) {
        v = ent_saml_prop(node, "entityID");

        if (entity_id ? (v != NULL && strcmp(v, entity_id) == 0)
                      : ent_saml_md_idps(node, &idp) > 0)
        {
            if ((*count)++ == 0) {
                *entity = node;
            }
        }

        return 0;
    }

    if (!ent_saml_is(node, ENT_MD_NS, "EntitiesDescriptor")) {
        return 0;
    }

    if (depth == ENT_SAML_MAX_DEPTH) {
        return -1;
    }

    for (child = node->children; child; child = child->next) {
        if (ent_saml_md_walk(child, depth + 1, entity_id, entity, count)
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* the first endpoint with the HTTP-Redirect binding, or NULL */

static xmlNodePtr
ent_saml_md_endpoint(xmlNodePtr idp, const char *name)
{
    xmlNodePtr   node;
    const char  *v;

    for (node = idp->children; node; node = node->next) {
        if (!ent_saml_is(node, ENT_MD_NS, name)) {
            continue;
        }

        v = ent_saml_prop(node, "Binding");

        if (v != NULL && strcmp(v, ENT_BINDING_REDIRECT) == 0) {
            return node;
        }
    }

    return NULL;
}


static time_t
ent_saml_asn1_time(const ASN1_TIME *t)
{
    struct tm  tm;

    memset(&tm, 0, sizeof(struct tm));

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }

    return (time_t) (ent_saml_days(tm.tm_year + 1900, tm.tm_mon + 1,
                                   tm.tm_mday) * 86400
                     + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
}


/*
 * One ds:X509Certificate: base64 DER that parses as X.509 with nothing
 * after it; appended as PEM unless it is already there.
 */

static int
ent_saml_md_cert(ent_saml_idp_metadata_t *out, xmlNodePtr node, size_t nth,
    char *err, size_t errlen)
{
    int                   rc;
    X509                 *x;
    size_t                len, i;
    char                 *pem;
    ent_saml_buf_t        b;
    unsigned char        *der;
    const unsigned char  *p;

    if (ent_saml_b64_decode_ws(node, &der, &len) != 0) {
        ent_saml_error(err, errlen,
                       "certificate %zu is not valid base64 DER", nth);
        return ENT_SAML_MALFORMED;
    }

    p = der;
    x = len < 0x100000 ? d2i_X509(NULL, &p, (long) len) : NULL;

    if (x == NULL || p != der + len) {
        X509_free(x);
        free(der);
        ERR_clear_error();
        ent_saml_error(err, errlen,
                       "certificate %zu is not valid base64 DER", nth);
        return ENT_SAML_MALFORMED;
    }

    /* d2i_X509() leaves the key undecoded: it must be usable as a pin */

    if (X509_get0_pubkey(x) == NULL) {
        X509_free(x);
        free(der);
        ERR_clear_error();
        ent_saml_error(err, errlen,
                       "certificate %zu has no usable public key", nth);
        return ENT_SAML_MALFORMED;
    }

    memset(&b, 0, sizeof(ent_saml_buf_t));

    ent_saml_buf_str(&b, ENT_PEM_BEGIN "\n");
    ent_saml_buf_b64(&b, der, len, 64);
    ent_saml_buf_str(&b, "\n" ENT_PEM_END "\n");

    free(der);

    if (ent_saml_buf_done(&b, &pem, &len) != 0) {
        X509_free(x);
        ent_saml_error(err, errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    for (i = 0; i < out->ncerts; i++) {
        if (strcmp(out->certs[i], pem) == 0) {
            X509_free(x);
            free(pem);
            return ENT_SAML_OK;
        }
    }

    rc = ENT_SAML_OK;

    if (out->ncerts == ENT_SAML_MAX_CERTS) {
        ent_saml_error(err, errlen, "more than %d signing certificates",
                       ENT_SAML_MAX_CERTS);
        rc = ENT_SAML_INVALID;

    } else {
        out->not_after[out->ncerts] = ent_saml_asn1_time(
                                                      X509_get0_notAfter(x));
        out->certs[out->ncerts++] = pem;
        pem = NULL;
    }

    X509_free(x);
    free(pem);

    return rc;
}


static int
ent_saml_md_certs(ent_saml_idp_metadata_t *out, xmlNodePtr idp, char *err,
    size_t errlen)
{
    int          rc;
    size_t       nth;
    xmlNodePtr   kd, ki, data, cert;
    const char  *use;

    out->certs = calloc(ENT_SAML_MAX_CERTS, sizeof(char *));
    out->not_after = calloc(ENT_SAML_MAX_CERTS, sizeof(time_t));

    if (out->certs == NULL || out->not_after == NULL) {
        ent_saml_error(err, errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    nth = 0;

    for (kd = idp->children; kd; kd = kd->next) {
        if (!ent_saml_is(kd, ENT_MD_NS, "KeyDescriptor")) {
            continue;
        }

        use = ent_saml_prop(kd, "use");

        if (use != NULL && strcmp(use, "signing") != 0) {
            continue;
        }

        for (ki = kd->children; ki; ki = ki->next) {
            if (!ent_saml_is(ki, ENT_DSIG_NS, "KeyInfo")) {
                continue;
            }

            for (data = ki->children; data; data = data->next) {
                if (!ent_saml_is(data, ENT_DSIG_NS, "X509Data")) {
                    continue;
                }

                for (cert = data->children; cert; cert = cert->next) {
                    if (!ent_saml_is(cert, ENT_DSIG_NS, "X509Certificate")) {
                        continue;
                    }

                    rc = ent_saml_md_cert(out, cert, ++nth, err, errlen);
                    if (rc != ENT_SAML_OK) {
                        return rc;
                    }
                }
            }
        }
    }

    if (out->ncerts == 0) {
        ent_saml_error(err, errlen,
                       "no signing certificate (KeyDescriptor"
                       " use=\"signing\")");
        return ENT_SAML_INVALID;
    }

    return ENT_SAML_OK;
}


static int
ent_saml_md_read(xmlNodePtr root, const char *entity_id,
    ent_saml_idp_metadata_t *out, char *err, size_t errlen)
{
    int          rc;
    size_t       n;
    xmlNodePtr   entity, idp, ep;
    const char  *v;

    if (!ent_saml_is(root, ENT_MD_NS, "EntityDescriptor")
        && !ent_saml_is(root, ENT_MD_NS, "EntitiesDescriptor"))
    {
        ent_saml_error(err, errlen, "root element is neither an"
                       " EntityDescriptor nor an EntitiesDescriptor");
        return ENT_SAML_MALFORMED;
    }

    entity = NULL;
    n = 0;

    if (ent_saml_md_walk(root, 0, entity_id, &entity, &n) != 0) {
        ent_saml_error(err, errlen, "EntitiesDescriptors nested too deep");
        return ENT_SAML_MALFORMED;
    }

    if (entity_id && n == 0) {
        ent_saml_error(err, errlen,
                       "no EntityDescriptor with that entityID");
        return ENT_SAML_INVALID;
    }

    if (entity_id && n > 1) {
        ent_saml_error(err, errlen,
                       "more than one EntityDescriptor with that entityID");
        return ENT_SAML_INVALID;
    }

    if (n == 0) {
        ent_saml_error(err, errlen, "no IDPSSODescriptor");
        return ENT_SAML_INVALID;
    }

    if (n > 1) {
        ent_saml_error(err, errlen, "the metadata describes %zu identity"
                       " providers: choose one with --entity-id", n);
        return ENT_SAML_INVALID;
    }

    v = ent_saml_prop(entity, "entityID");

    if (!ent_saml_plain(v) || strlen(v) > ENT_SAML_MAX_URL_LEN) {
        ent_saml_error(err, errlen, "EntityDescriptor has no valid entityID");
        return ENT_SAML_INVALID;
    }

    if (ent_saml_dup(&out->entity_id, v) != 0) {
        ent_saml_error(err, errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    n = ent_saml_md_idps(entity, &idp);

    if (n != 1) {
        ent_saml_error(err, errlen, n ? "more than one IDPSSODescriptor"
                                      : "no IDPSSODescriptor");
        return ENT_SAML_INVALID;
    }

    v = ent_saml_prop(idp, "WantAuthnRequestsSigned");
    out->want_authn_requests_signed = v && (strcmp(v, "true") == 0
                                            || strcmp(v, "1") == 0);

    ep = ent_saml_md_endpoint(idp, "SingleSignOnService");

    if (ep == NULL) {
        ent_saml_error(err, errlen, "no SingleSignOnService with the"
                       " HTTP-Redirect binding");
        return ENT_SAML_INVALID;
    }

    v = ent_saml_prop(ep, "Location");

    if (!ent_saml_md_url(v)) {
        ent_saml_error(err, errlen,
                       "SingleSignOnService Location is not an http(s) URL");
        return ENT_SAML_INVALID;
    }

    if (ent_saml_dup(&out->sso_url, v) != 0) {
        ent_saml_error(err, errlen, "out of memory");
        return ENT_SAML_INTERNAL;
    }

    ep = ent_saml_md_endpoint(idp, "SingleLogoutService");

    if (ep != NULL) {
        v = ent_saml_prop(ep, "Location");

        if (!ent_saml_md_url(v)) {
            ent_saml_error(err, errlen, "SingleLogoutService Location is not"
                           " an http(s) URL");
            return ENT_SAML_INVALID;
        }

        if (ent_saml_dup(&out->slo_url, v) != 0) {
            ent_saml_error(err, errlen, "out of memory");
            return ENT_SAML_INTERNAL;
        }

        v = ent_saml_prop(ep, "ResponseLocation");

        if (v != NULL && !ent_saml_md_url(v)) {
            ent_saml_error(err, errlen, "SingleLogoutService"
                           " ResponseLocation is not an http(s) URL");
            return ENT_SAML_INVALID;
        }

        if (ent_saml_dup(&out->slo_response_url, v) != 0) {
            ent_saml_error(err, errlen, "out of memory");
            return ENT_SAML_INTERNAL;
        }
    }

    rc = ent_saml_md_certs(out, idp, err, errlen);

    return rc;
}


int
ent_saml_idp_metadata_parse(const unsigned char *xml, size_t len,
    const char *entity_id, ent_saml_idp_metadata_t *out, char *err,
    size_t errlen)
{
    int        rc;
    xmlDocPtr  doc;

    memset(out, 0, sizeof(ent_saml_idp_metadata_t));

    if (err && errlen) {
        err[0] = '\0';
    }

    if (xml == NULL || len == 0) {
        ent_saml_error(err, errlen, "empty metadata");
        return ENT_SAML_MALFORMED;
    }

    if (len > ENT_SAML_MAX_METADATA_LEN) {
        ent_saml_error(err, errlen, "metadata is larger than 1 MiB");
        return ENT_SAML_MALFORMED;
    }

    if (ent_saml_init() != 0) {
        ent_saml_error(err, errlen, "XML security library init failed");
        return ENT_SAML_INTERNAL;
    }

    doc = ent_saml_parse(xml, len, "metadata", &rc, err, errlen);
    if (doc == NULL) {
        return rc;
    }

    rc = ent_saml_md_read(xmlDocGetRootElement(doc), entity_id, out, err,
                          errlen);

    xmlFreeDoc(doc);

    if (rc != ENT_SAML_OK) {
        ent_saml_idp_metadata_free(out);
    }

    return rc;
}


void
ent_saml_idp_metadata_free(ent_saml_idp_metadata_t *md)
{
    size_t  i;

    if (md == NULL) {
        return;
    }

    free(md->entity_id);
    free(md->sso_url);
    free(md->slo_url);
    free(md->slo_response_url);

    if (md->certs) {
        for (i = 0; i < md->ncerts; i++) {
            free(md->certs[i]);
        }

        free(md->certs);
    }

    free(md->not_after);

    memset(md, 0, sizeof(ent_saml_idp_metadata_t));
}
