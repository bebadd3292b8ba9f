/*
 * ngx_ent SSO: what the files of the SAML 2.0 library share (the list is
 * at the top of ngx_ent_saml.c); for them only, the rest of the module
 * uses ngx_ent_saml.h.
 */

#ifndef _NGX_ENT_SAML_INT_H_INCLUDED_
#define _NGX_ENT_SAML_INT_H_INCLUDED_


#include <libxml/tree.h>

#include <openssl/evp.h>

#include <xmlsec/xmlsec.h>
#include <xmlsec/keys.h>

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

#define ENT_SAML_PARSE_OPTIONS                                                \
    (XML_PARSE_NONET|XML_PARSE_NOERROR|XML_PARSE_NOWARNING)


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


/* ngx_ent_saml.c */

extern const char  ent_saml_b64_alphabet[];

void ent_saml_error(char *err, size_t errlen, const char *fmt, ...);
int ent_saml_b64_decode(const unsigned char *src, size_t len,
    unsigned char *dst, size_t *dstlen);
xmlDocPtr ent_saml_parse(const unsigned char *xml, size_t len,
    const char *what, int *rc, char *err, size_t errlen);
int ent_saml_is(xmlNodePtr node, const char *ns, const char *name);
xmlNodePtr ent_saml_child(xmlNodePtr parent, const char *ns,
    const char *name, size_t *count);
const char *ent_saml_prop(xmlNodePtr node, const char *name);
int ent_saml_valid_id(const char *id);
int ent_saml_clean(const char *s, size_t len);
int ent_saml_text(xmlNodePtr node, size_t max, char **out);
int ent_saml_text_eq(xmlNodePtr node, const char *expected);
int ent_saml_time_prop(xmlNodePtr node, const char *name, int required,
    time_t *t);
int ent_saml_b64_decode_ws(xmlNodePtr node, unsigned char **out,
    size_t *outlen);
long long ent_saml_days(int y, int m, int d);
void ent_saml_buf_add(ent_saml_buf_t *b, const char *s, size_t n);
void ent_saml_buf_str(ent_saml_buf_t *b, const char *s);
void ent_saml_buf_esc(ent_saml_buf_t *b, const char *s);
int ent_saml_plain(const char *s);
int ent_saml_buf_done(ent_saml_buf_t *b, char **out, size_t *outlen);
int ent_saml_dup(char **dst, const char *src);


/* ngx_ent_saml_response.c */

int ent_saml_scan(ent_saml_ctx_t *c, const char *rid, const char *aid);


/* ngx_ent_saml_sig.c */

int ent_saml_check_signatures(ent_saml_ctx_t *c, const char *rid);


/* ngx_ent_saml_enc.c */

extern const ent_saml_cipher_t  ent_saml_ciphers[];

int ent_saml_no_password(char *buf, int size, int rwflag, void *u);
int ent_saml_decrypt(ent_saml_ctx_t *c);


#endif /* _NGX_ENT_SAML_INT_H_INCLUDED_ */
