/*
 * ngx_ent SSO: SAML 2.0, the pinned IdP certificates and the signatures of
 * a Response and its Assertion (see ngx_ent_saml.h, and for where they
 * come in the check, ngx_ent_saml_response.c).
 */


#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include <libxml/tree.h>
#include <libxml/valid.h>

#include <xmlsec/xmlsec.h>
#include <xmlsec/crypto.h>
#include <xmlsec/keys.h>
#include <xmlsec/list.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmldsig.h>

#include "ngx_ent_saml_int.h"


static const char *ent_saml_find(const char *s, size_t len, const char *lit);
static int ent_saml_alg_in(const char *alg, const char *const *list);
static int ent_saml_signed_info(ent_saml_ctx_t *c, xmlNodePtr sig,
    const char *id);
static int ent_saml_verify(ent_saml_ctx_t *c, xmlNodePtr elem,
    int *is_signed);
static int ent_saml_verify_key(ent_saml_ctx_t *c, xmlNodePtr sig,
    const char *id, xmlSecKeyPtr key);
static int ent_saml_idp_keys(ent_saml_ctx_t *c);


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

int
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
