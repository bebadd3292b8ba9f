/*
 * ngx_ent SSO: SAML 2.0, the SP's private key and the decryption of an
 * EncryptedAssertion (see ngx_ent_saml.h).
 *
 * An EncryptedAssertion is decrypted after the Response's signature is
 * verified and before anything else is read from it: the key transport is
 * done here with OpenSSL (xmlsec 1.2 knows neither xmlenc11#rsa-oaep nor
 * OAEP digests other than SHA-1), the data decryption by one xmlsec AES
 * transform built by hand (no KeyInfo, no URI, no keys manager is ever
 * consulted), and the plaintext is parsed in the Response's namespace
 * context, as XML Encryption wants it.
 */


#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <xmlsec/xmlsec.h>
#include <xmlsec/buffer.h>
#include <xmlsec/crypto.h>
#include <xmlsec/keys.h>
#include <xmlsec/list.h>
#include <xmlsec/transforms.h>

#include "ngx_ent_saml_int.h"


#define ENT_SAML_MAX_ENC_KEYS  4     /* EncryptedKeys tried */

#define ENT_SAML_DECRYPT_FAILED  "cannot decrypt the assertion"


/* an EncryptedKey as we allow it */

typedef struct {
    const EVP_MD             *md;
    const EVP_MD             *mgf;
    xmlNodePtr                label;              /* OAEPparams, or NULL */
    xmlNodePtr                value;              /* CipherValue */
} ent_saml_enc_key_t;


static EVP_PKEY *ent_saml_sp_key(ent_saml_ctx_t *c);
static const EVP_MD *ent_saml_oaep_md(const char *uri, int mgf);
static int ent_saml_enc_key(ent_saml_ctx_t *c, xmlNodePtr node,
    ent_saml_enc_key_t *ek);
static int ent_saml_cipher_value(xmlNodePtr parent, xmlNodePtr *value);
static int ent_saml_unwrap(EVP_PKEY *pkey, const ent_saml_enc_key_t *ek,
    unsigned char *key, size_t size, size_t *keylen);
static int ent_saml_aes(const ent_saml_cipher_t *alg,
    const unsigned char *key, const unsigned char *in, size_t inlen,
    unsigned char **out, size_t *outlen);
static int ent_saml_blank(xmlNodePtr node);
static int ent_saml_plaintext(ent_saml_ctx_t *c, const unsigned char *plain,
    size_t len);


const ent_saml_cipher_t  ent_saml_ciphers[] = {
    { ENT_ALG_AES128_GCM, 16, 1 },
    { ENT_ALG_AES256_GCM, 32, 1 },
    { ENT_ALG_AES128_CBC, 16, 0 },
    { ENT_ALG_AES256_CBC, 32, 0 },
    { NULL, 0, 0 }
};


/* an encrypted key is refused rather than a passphrase asked for */

int
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

    /*
     * an EC key signs AuthnRequests and LogoutRequests; it loads, so that
     * unencrypted responses are accepted, and only an EncryptedAssertion
     * is refused (ent_saml_decrypt())
     */

    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA
        && EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC)
    {
        EVP_PKEY_free(pkey);
        ent_saml_error(err, errlen,
                       "SP private key is neither an RSA nor an EC key");
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


/*
 * The EncryptedAssertion replaced by the Assertion it holds.  Its shape and
 * algorithms are checked first, with their own messages; then each
 * EncryptedKey is tried with the SP's key, and whatever goes wrong from
 * there to a well-formed plaintext is one fixed message.
 */

int
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

    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        ent_saml_error(c->err, c->errlen, "encrypted assertions are not "
                       "supported: the SP key is not an RSA key");
        return ENT_SAML_UNSUPPORTED;
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
