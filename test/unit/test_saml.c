/*
 * Unit tests of the SSO module's SAML code (ngx_ent_saml.c), printing TAP.
 *
 * Everything is made at run time: an RSA-2048 key and certificate (the
 * IdP's), a second RSA pair (an attacker's), and a P-256 pair; Responses
 * are written from a template, signed here with xmlsec's own template API
 * (enveloped, exclusive c14n, the certificate in KeyInfo as IdPs do), then
 * tampered with as strings: XSW, comment injection, algorithm downgrades,
 * DOCTYPEs, times at the edges of the allowed skew.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <zlib.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/valid.h>

#include <xmlsec/xmlsec.h>
#include <xmlsec/crypto.h>
#include <xmlsec/keysmngr.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlenc.h>
#include <xmlsec/xmltree.h>

#include "ngx_ent_saml.h"
#include "tap.h"


#define NOW        1700000000L
#define SKEW       60
#define ACS        "https://sp.example/_ent/saml/acs"
#define SP         "https://sp.example/saml"
#define IDP        "https://idp.example/saml"
#define REQ        "_req1"
#define ARENA_MAX  4096

#define ST_PREFIX  "urn:oasis:names:tc:SAML:2.0:status:"
#define ST_SUCCESS "<samlp:Status><samlp:StatusCode Value=\"" ST_PREFIX      \
                   "Success\"/></samlp:Status>"

#define SIGN_ASSERTION  0
#define SIGN_RESPONSE   1

#define KT_MGF1P   "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
#define KT_OAEP11  "http://www.w3.org/2009/xmlenc11#rsa-oaep"
#define KT_PKCS1   "http://www.w3.org/2001/04/xmlenc#rsa-1_5"

#define DATA_AES128_GCM  "http://www.w3.org/2009/xmlenc11#aes128-gcm"
#define DATA_AES256_GCM  "http://www.w3.org/2009/xmlenc11#aes256-gcm"
#define DATA_AES128_CBC  "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
#define DATA_AES256_CBC  "http://www.w3.org/2001/04/xmlenc#aes256-cbc"


typedef struct {
    const char  *resp_id;
    const char  *assert_id;
    const char  *dest;           /* NULL: no Destination */
    const char  *irt;            /* NULL: no InResponseTo (both places) */
    const char  *scd_irt;        /* the confirmation's, when it differs */
    const char  *resp_issuer;    /* NULL: no Issuer in the Response */
    const char  *status;
    const char  *issuer;
    const char  *nameid;
    const char  *recipient;
    const char  *audience;
    long         issue;
    long         nb;
    long         nooa;
    long         scd_nooa;
    const char  *authn;          /* the AuthnStatement, or "" */
    const char  *attrs;          /* the AttributeStatement, or "" */
} doc_t;


typedef struct {
    EVP_PKEY    *key;
    char        *key_pem;
    char        *cert_pem;
    char        *key_rsa_pem;    /* PKCS#1, the SP's only */
    char        *key_enc_pem;    /* passphrase-protected, the SP's only */
} pair_t;


/* how encrypt_xml() encrypts */

typedef struct {
    const char    *kt;           /* key transport */
    const EVP_MD  *md;           /* OAEP digest used, NULL: SHA-1 */
    const char    *md_uri;       /* DigestMethod written, NULL: none */
    const EVP_MD  *mgf;          /* MGF1 digest used, NULL: SHA-1 */
    const char    *mgf_uri;      /* MGF written, NULL: none */
    const char    *data;         /* data encryption */
    size_t         key_len;      /* AES key, 0: as data says */
    size_t         wrap_len;     /* bytes of key wrapped, 0: key_len */
    int            sibling;      /* EncryptedKey next to EncryptedData */
    int            tamper;       /* flip a ciphertext bit */
    const char    *label;        /* OAEPparams, NULL: none */
    EVP_PKEY      *rsa;          /* the recipient */
} enc_t;


static void *keep(void *p);
static char *str(const char *fmt, ...);
static char *when(long t);
static char *pem_key(EVP_PKEY *k);
static char *pem_cert(EVP_PKEY *k, const char *cn);
static void make_pair(pair_t *p, EVP_PKEY *k, const char *cn);
static char *pem_bio(BIO *bio);
static void sp_extra_pems(pair_t *p);
static void defaults(doc_t *d);
static char *build(const doc_t *d);
static char *sign_alg(const char *xml, int what, const pair_t *p,
    xmlSecTransformId c14n, xmlSecTransformId sig, xmlSecTransformId dg);
static char *sign(const char *xml, int what, const pair_t *p);
static char *replace(const char *s, const char *from, const char *to);
static char *between(const char *s, const char *from, const char *to);
static char *b64(const char *s, int crlf);
static void expect_defaults(ent_saml_expect_t *e);
static int run(const char *xml, const ent_saml_expect_t *e,
    ent_saml_result_t *r);
static void fails(const char *xml, const ent_saml_expect_t *e, int rc,
    const char *msg, const char *name);
static void test_times(void);
static void test_valid(void);
static void test_signatures(void);
static void test_xsw(void);
static void test_parser(void);
static void test_protocol(void);
static void test_content(void);
static void test_input(void);
static void test_request(void);
static void test_metadata(void);
static char *b64n(const unsigned char *p, size_t n);
static char *cert_b64(const char *pem);
static void test_rotation(void);
static void test_name_id_format(void);
static char *encrypt_xml(const char *plain, const enc_t *p);
static void enc_defaults(enc_t *p);
static char *encrypt_in(const char *xml, const enc_t *p);
static char *xmlsec_encrypt(const char *xml, xmlSecTransformId data);
static void test_encrypted(void);
static void test_request_xml(void);
static void test_logout_build(void);
static char *logout_req(const char *attrs, const char *body);
static int lo_req(const char *xml, ent_saml_logout_t *lo);
static void lo_req_fails(const char *xml, int rc, const char *msg,
    const char *name);
static void test_logout_request(void);
static char *logout_resp(const char *irt, const char *status);
static int lo_resp(const char *xml, ent_saml_logout_t *lo);
static void test_logout_response(void);
static char *inflate_param(const char *v);
static char *der_plus(const char *b64s);
static char *der_break_key(const char *b64s);
static void test_metadata_ex(void);
static char *md_key(const char *use, const char *b64);
static char *md_okta(const char *entity, const char *keys, const char *sso);
static int md_parse(const char *xml, const char *entity,
    ent_saml_idp_metadata_t *md);
static void md_fails(const char *xml, const char *entity, int rc,
    const char *msg, const char *name);
static void test_idp_metadata(void);


static pair_t    idp, attacker, ec, sp;
static void     *arena[ARENA_MAX];
static size_t    narena;
static char      err[256];


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
    va_list  args;

    if (fmt == NULL) {
        /* never; but gcc's UBSan checks otherwise make a path for it */
        exit(2);
    }

    va_start(args, fmt);
    n = vsnprintf(one, sizeof(one), fmt, args);
    va_end(args);

    s = keep(malloc(n + 1));

    va_start(args, fmt);
    vsnprintf(s, n + 1, fmt, args);
    va_end(args);

    return s;
}


static char *
when(long t)
{
    char  buf[21];

    ent_saml_format_time((time_t) t, buf);

    return str("%s", buf);
}


static char *
pem_key(EVP_PKEY *k)
{
    BIO      *bio;
    char     *data, *s;
    long      n;

    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(bio, &data);
    s = keep(malloc(n + 1));
    memcpy(s, data, n);
    s[n] = '\0';
    BIO_free(bio);

    return s;
}


static char *
pem_cert(EVP_PKEY *k, const char *cn)
{
    BIO        *bio;
    X509       *x;
    char       *data, *s;
    long        n;
    X509_NAME  *name;

    x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -86400);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 365);
    X509_set_pubkey(x, k);

    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *) cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, k, EVP_sha256());

    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, x);
    n = BIO_get_mem_data(bio, &data);
    s = keep(malloc(n + 1));
    memcpy(s, data, n);
    s[n] = '\0';
    BIO_free(bio);
    X509_free(x);

    return s;
}


static void
make_pair(pair_t *p, EVP_PKEY *k, const char *cn)
{
    if (k == NULL) {
        fprintf(stderr, "key generation failed\n");
        exit(2);
    }

    p->key = k;
    p->key_pem = pem_key(k);
    p->cert_pem = pem_cert(k, cn);
}


static char *
pem_bio(BIO *bio)
{
    char  *data, *s;
    long   n;

    n = BIO_get_mem_data(bio, &data);
    s = keep(malloc(n + 1));
    memcpy(s, data, n);
    s[n] = '\0';
    BIO_free(bio);

    return s;
}


/* the same key as PKCS#1 and as an encrypted PKCS#8 */

static void
sp_extra_pems(pair_t *p)
{
    BIO  *bio;

    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey_traditional(bio, p->key, NULL, NULL, 0, NULL,
                                         NULL);
    p->key_rsa_pem = pem_bio(bio);

    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PKCS8PrivateKey(bio, p->key, EVP_aes_128_cbc(), NULL, 0,
                                  NULL, (void *) "secret");
    p->key_enc_pem = pem_bio(bio);
}


static void
defaults(doc_t *d)
{
    memset(d, 0, sizeof(doc_t));

    d->resp_id = "_resp1";
    d->assert_id = "_a1";
    d->dest = ACS;
    d->irt = REQ;
    d->resp_issuer = IDP;
    d->status = ST_SUCCESS;
    d->issuer = IDP;
    d->nameid = "alice@example.com";
    d->recipient = ACS;
    d->audience = SP;
    d->issue = NOW - 10;
    d->nb = NOW - 60;
    d->nooa = NOW + 300;
    d->scd_nooa = NOW + 200;
    d->authn = str("<saml:AuthnStatement AuthnInstant=\"%s\""
                   " SessionIndex=\"_s1\" SessionNotOnOrAfter=\"%s\">"
                   "<saml:AuthnContext><saml:AuthnContextClassRef>"
                   "urn:oasis:names:tc:SAML:2.0:ac:classes:"
                   "PasswordProtectedTransport</saml:AuthnContextClassRef>"
                   "</saml:AuthnContext></saml:AuthnStatement>",
                   when(NOW - 20), when(NOW + 28800));
    d->attrs = "<saml:AttributeStatement>"
               "<saml:Attribute Name=\"email\">"
               "<saml:AttributeValue>alice@example.com</saml:AttributeValue>"
               "</saml:Attribute>"
               "<saml:Attribute Name=\"name\">"
               "<saml:AttributeValue>Alice Example</saml:AttributeValue>"
               "</saml:Attribute>"
               "<saml:Attribute Name=\"groups\">"
               "<saml:AttributeValue>admins</saml:AttributeValue>"
               "<saml:AttributeValue>dev</saml:AttributeValue>"
               "<saml:AttributeValue>ops</saml:AttributeValue>"
               "</saml:Attribute>"
               "</saml:AttributeStatement>";
}


static char *
build(const doc_t *d)
{
    const char  *scd_irt;

    scd_irt = d->scd_irt ? d->scd_irt : d->irt;

    return str(
        "<samlp:Response"
        " xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\""
        " xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\""
        " ID=\"%s\" Version=\"2.0\" IssueInstant=\"%s\"%s%s%s%s>\n"
        "%s%s%s"
        "%s\n"
        "<saml:Assertion ID=\"%s\" Version=\"2.0\" IssueInstant=\"%s\">"
        "<saml:Issuer>%s</saml:Issuer>"
        "<saml:Subject>"
        "<saml:NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:"
        "emailAddress\">%s</saml:NameID>"
        "<saml:SubjectConfirmation"
        " Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\">"
        "<saml:SubjectConfirmationData%s%s%s Recipient=\"%s\""
        " NotOnOrAfter=\"%s\"/>"
        "</saml:SubjectConfirmation>"
        "</saml:Subject>"
        "<saml:Conditions NotBefore=\"%s\" NotOnOrAfter=\"%s\">"
        "<saml:AudienceRestriction><saml:Audience>%s</saml:Audience>"
        "</saml:AudienceRestriction>"
        "</saml:Conditions>"
        "%s%s"
        "</saml:Assertion>\n"
        "</samlp:Response>\n",
        d->resp_id, when(d->issue),
        d->dest ? " Destination=\"" : "", d->dest ? d->dest : "",
        d->dest ? "\"" : "",
        d->irt ? str(" InResponseTo=\"%s\"", d->irt) : "",
        d->resp_issuer ? "<saml:Issuer>" : "",
        d->resp_issuer ? d->resp_issuer : "",
        d->resp_issuer ? "</saml:Issuer>\n" : "",
        d->status,
        d->assert_id, when(d->issue), d->issuer, d->nameid,
        scd_irt ? " InResponseTo=\"" : "", scd_irt ? scd_irt : "",
        scd_irt ? "\"" : "",
        d->recipient, when(d->scd_nooa),
        when(d->nb), when(d->nooa), d->audience,
        d->authn, d->attrs);
}


/*
 * Signs the Response or its (first) Assertion: the Signature goes right
 * after the element's Issuer, as the schema wants it.
 */

static char *
sign_alg(const char *xml, int what, const pair_t *p, xmlSecTransformId c14n,
    xmlSecTransformId sig, xmlSecTransformId dg)
{
    int               n;
    char             *s;
    xmlChar          *out;
    xmlDocPtr         doc;
    xmlAttrPtr        attr;
    xmlNodePtr        elem, node, sign, ref, ki, issuer;
    xmlSecDSigCtxPtr  dsig;

    doc = xmlReadMemory(xml, strlen(xml), NULL, NULL, XML_PARSE_NONET);
    if (doc == NULL) {
        fprintf(stderr, "sign: cannot parse\n");
        exit(2);
    }

    elem = xmlDocGetRootElement(doc);

    if (what == SIGN_ASSERTION) {
        for (node = elem->children; node; node = node->next) {
            if (node->type == XML_ELEMENT_NODE
                && strcmp((const char *) node->name, "Assertion") == 0)
            {
                break;
            }
        }

        elem = node;
    }

    issuer = NULL;

    for (node = elem->children; node; node = node->next) {
        if (node->type == XML_ELEMENT_NODE
            && strcmp((const char *) node->name, "Issuer") == 0)
        {
            issuer = node;
            break;
        }
    }

    attr = xmlHasProp(elem, (const xmlChar *) "ID");
    xmlAddID(NULL, doc, attr->children->content, attr);

    sign = xmlSecTmplSignatureCreateNsPref(doc, c14n, sig, NULL,
                                           (const xmlChar *) "ds");
    if (issuer) {
        xmlAddNextSibling(issuer, sign);

    } else {
        xmlAddChild(elem, sign);
    }

    ref = xmlSecTmplSignatureAddReference(sign, dg, NULL,
              (const xmlChar *) str("#%s", attr->children->content), NULL);
    xmlSecTmplReferenceAddTransform(ref, xmlSecTransformEnvelopedId);
    xmlSecTmplReferenceAddTransform(ref, xmlSecTransformExclC14NId);
    ki = xmlSecTmplSignatureEnsureKeyInfo(sign, NULL);
    xmlSecTmplKeyInfoAddX509Data(ki);

    dsig = xmlSecDSigCtxCreate(NULL);
    dsig->signKey = xmlSecCryptoAppKeyLoadMemory(
                        (const xmlSecByte *) p->key_pem, strlen(p->key_pem),
                        xmlSecKeyDataFormatPem, NULL, NULL, NULL);

    if (dsig->signKey == NULL
        || xmlSecCryptoAppKeyCertLoadMemory(dsig->signKey,
               (const xmlSecByte *) p->cert_pem, strlen(p->cert_pem),
               xmlSecKeyDataFormatPem) < 0
        || xmlSecDSigCtxSign(dsig, sign) < 0)
    {
        fprintf(stderr, "sign: xmlsec failed\n");
        exit(2);
    }

    xmlSecDSigCtxDestroy(dsig);

    xmlDocDumpMemory(doc, &out, &n);
    s = keep(malloc(n + 1));
    memcpy(s, out, n);
    s[n] = '\0';
    xmlFree(out);
    xmlFreeDoc(doc);

    return s;
}


static char *
sign(const char *xml, int what, const pair_t *p)
{
    return sign_alg(xml, what, p, xmlSecTransformExclC14NId,
                    p == &ec ? xmlSecTransformEcdsaSha256Id
                             : xmlSecTransformRsaSha256Id,
                    xmlSecTransformSha256Id);
}


/* the first occurrence replaced; a missing one is a broken test */

static char *
replace(const char *s, const char *from, const char *to)
{
    const char  *p;

    p = strstr(s, from);
    if (p == NULL) {
        fprintf(stderr, "replace: \"%s\" not found\n", from);
        exit(2);
    }

    return str("%.*s%s%s", (int) (p - s), s, to, p + strlen(from));
}


/* from the first "from" to the end of the first "to" after it */

static char *
between(const char *s, const char *from, const char *to)
{
    const char  *p, *q;

    p = strstr(s, from);
    q = p ? strstr(p, to) : NULL;

    if (q == NULL) {
        fprintf(stderr, "between: not found\n");
        exit(2);
    }

    return str("%.*s", (int) (q + strlen(to) - p), p);
}


/* standard base64, lines of 76 with CRLF when crlf is set */

static char *
b64(const char *s, int crlf)
{
    int            n, i, o;
    char          *out;
    unsigned char *flat;

    n = strlen(s);
    flat = malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock(flat, (const unsigned char *) s, n);
    n = strlen((char *) flat);

    out = keep(malloc(n + n / 76 * 2 + 3));

    for (i = 0, o = 0; i < n; i++) {
        if (crlf && i && i % 76 == 0) {
            out[o++] = '\r';
            out[o++] = '\n';
        }

        out[o++] = flat[i];
    }

    out[o] = '\0';
    free(flat);

    return out;
}


static void
expect_defaults(ent_saml_expect_t *e)
{
    memset(e, 0, sizeof(ent_saml_expect_t));

    e->acs_url = ACS;
    e->sp_entity_id = SP;
    e->idp_entity_id = IDP;
    e->idp_cert_pem = idp.cert_pem;
    e->request_id = REQ;
    e->now = NOW;
    e->skew = SKEW;
}


static int
run(const char *xml, const ent_saml_expect_t *e, ent_saml_result_t *r)
{
    int  rc;

    memset(err, 0, sizeof(err));

    rc = ent_saml_response_check_xml((const unsigned char *) xml,
                                     strlen(xml), e, r, err, sizeof(err));
    if (rc != ENT_SAML_OK) {
        printf("# rc %d: %s\n", rc, err);
    }

    return rc;
}


static void
fails(const char *xml, const ent_saml_expect_t *e, int rc, const char *msg,
    const char *name)
{
    int                got;
    ent_saml_result_t  r;

    got = run(xml, e, &r);

    check(got == rc && strcmp(err, msg) == 0 && r.name_id == NULL
          && r.nattrs == 0, name);

    ent_saml_result_free(&r);
}


static void
test_times(void)
{
    time_t  t;
    char    buf[21];

    check(ent_saml_parse_time("2023-11-14T22:13:20Z", &t) == 0
          && t == NOW, "time: plain");
    check(ent_saml_parse_time("2023-11-14T22:13:20.999999Z", &t) == 0
          && t == NOW, "time: fraction dropped");
    check(ent_saml_parse_time("2024-02-29T00:00:00Z", &t) == 0
          && t == 1709164800, "time: leap day");
    check(ent_saml_parse_time("2023-02-29T00:00:00Z", &t) == -1,
          "time: no leap day in 2023");
    check(ent_saml_parse_time("2023-11-14T22:13:20", &t) == -1,
          "time: no Z");
    check(ent_saml_parse_time("2023-11-14T22:13:20+00:00", &t) == -1,
          "time: offset refused");
    check(ent_saml_parse_time("1969-12-31T23:59:59Z", &t) == -1,
          "time: before 1970");
    check(ent_saml_parse_time("2023-13-01T00:00:00Z", &t) == -1
          && ent_saml_parse_time("2023-11-14T24:00:00Z", &t) == -1
          && ent_saml_parse_time("2023-11-14T22:13:60Z", &t) == -1
          && ent_saml_parse_time("2023-11-14T22:13:20.Z", &t) == -1
          && ent_saml_parse_time(" 2023-11-14T22:13:20Z", &t) == -1
          && ent_saml_parse_time("2023-11-14T22:13:20Zx", &t) == -1
          && ent_saml_parse_time("", &t) == -1,
          "time: malformed refused");

    ent_saml_format_time(NOW, buf);
    check(strcmp(buf, "2023-11-14T22:13:20Z") == 0, "time: format");
}


static void
test_valid(void)
{
    char                     *xml, *v;
    const char               *enc;
    ent_saml_result_t         r;
    ent_saml_expect_t         e;
    const ent_saml_attr_t    *a;
    doc_t                     d;

    expect_defaults(&e);
    defaults(&d);

    xml = sign(build(&d), SIGN_ASSERTION, &idp);

    check(run(xml, &e, &r) == ENT_SAML_OK, "valid: signed assertion passes");
    check(r.name_id && strcmp(r.name_id, "alice@example.com") == 0,
          "valid: NameID");
    check(r.name_id_format && strcmp(r.name_id_format,
          "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress") == 0,
          "valid: NameID Format");
    check(r.session_index && strcmp(r.session_index, "_s1") == 0,
          "valid: SessionIndex");
    check(r.assertion_id && strcmp(r.assertion_id, "_a1") == 0,
          "valid: assertion ID");
    check(r.response_id && strcmp(r.response_id, "_resp1") == 0,
          "valid: response ID");
    check(r.expires == NOW + 200, "valid: expiry is the earliest");
    check(r.issue_instant == NOW - 10, "valid: IssueInstant");
    check(r.authn_instant == NOW - 20, "valid: AuthnInstant");
    check(r.session_not_on_or_after == NOW + 28800,
          "valid: SessionNotOnOrAfter");
    check(r.assertion_signed && !r.response_signed, "valid: signed flags");
    check(r.nattrs == 3, "valid: three attributes");

    a = ent_saml_attr(&r, "email");
    check(a && a->nvalues == 1 && strcmp(a->values[0], "alice@example.com")
          == 0, "valid: email attribute");

    a = ent_saml_attr(&r, "name");
    check(a && a->nvalues == 1 && strcmp(a->values[0], "Alice Example")
          == 0, "valid: name attribute");

    a = ent_saml_attr(&r, "groups");
    check(a && a->nvalues == 3 && strcmp(a->values[2], "ops") == 0,
          "valid: multi-valued groups");

    v = ent_saml_attr_join(&r, "groups");
    check(v && strcmp(v, "admins,dev,ops") == 0, "valid: groups joined");
    free(v);

    check(ent_saml_attr(&r, "missing") == NULL
          && ent_saml_attr_join(&r, "missing") == NULL,
          "valid: missing attribute");

    {
        char             *vals[] = { "x,ops-admins", "", "dev", "a\x01b",
                                     "CN=Fin,OU=G", "ops" };
        ent_saml_attr_t   ga = { "groups", 6, vals };
        ent_saml_result_t gr;

        memset(&gr, 0, sizeof(gr));
        gr.nattrs = 1;
        gr.attrs = &ga;

        v = ent_saml_attr_list(&gr, "groups");
        check(v && strcmp(v, "dev,ops") == 0,
              "a list leaves out values with a comma, a control "
              "character, or none");
        free(v);

        v = ent_saml_attr_join(&gr, "groups");
        check(v && strcmp(v, "x,ops-admins,,dev,a\x01b,CN=Fin,OU=G,ops") == 0,
              "a join keeps every value");
        free(v);
    }

    ent_saml_result_free(&r);
    check(r.name_id == NULL && r.attrs == NULL, "valid: result freed");

    /* the form value path, with CRLF line breaks */

    enc = b64(xml, 1);
    memset(err, 0, sizeof(err));
    check(ent_saml_response_check((const unsigned char *) enc, strlen(enc),
                                  &e, &r, err, sizeof(err)) == ENT_SAML_OK
          && strcmp(r.name_id, "alice@example.com") == 0,
          "valid: base64 with CRLF");
    ent_saml_result_free(&r);

    /* IdP-initiated, when allowed */

    d.irt = NULL;
    xml = sign(build(&d), SIGN_ASSERTION, &idp);
    e.allow_idp_initiated = 1;
    check(run(xml, &e, &r) == ENT_SAML_OK, "valid: IdP-initiated allowed");
    ent_saml_result_free(&r);

    e.request_id = NULL;
    check(run(xml, &e, &r) == ENT_SAML_OK,
          "valid: IdP-initiated, no request outstanding");
    ent_saml_result_free(&r);

    /* no Destination, no Response Issuer: both optional when unsigned */

    expect_defaults(&e);
    defaults(&d);
    d.dest = NULL;
    d.resp_issuer = NULL;
    xml = sign(build(&d), SIGN_ASSERTION, &idp);
    check(run(xml, &e, &r) == ENT_SAML_OK,
          "valid: no Destination, no Response Issuer");
    ent_saml_result_free(&r);

    /* an EC IdP */

    defaults(&d);
    xml = sign(build(&d), SIGN_ASSERTION, &ec);
    e.idp_cert_pem = ec.cert_pem;
    check(run(xml, &e, &r) == ENT_SAML_OK && r.assertion_signed,
          "valid: ECDSA-SHA256 with a P-256 certificate");
    ent_saml_result_free(&r);

    e.idp_cert_pem = idp.cert_pem;
    fails(xml, &e, ENT_SAML_SIGNATURE, "signature verification failed",
          "EC signature against the RSA certificate");

    /* RSA-SHA512 with a SHA-512 digest */

    xml = sign_alg(build(&d), SIGN_ASSERTION, &idp, xmlSecTransformExclC14NId,
                   xmlSecTransformRsaSha512Id, xmlSecTransformSha512Id);
    check(run(xml, &e, &r) == ENT_SAML_OK, "valid: RSA-SHA512");
    ent_saml_result_free(&r);
}


static void
test_signatures(void)
{
    char               *xml, *both, *v;
    ent_saml_result_t   r;
    ent_saml_expect_t   e;
    doc_t               d;

    expect_defaults(&e);
    defaults(&d);

    xml = sign(build(&d), SIGN_RESPONSE, &idp);
    check(run(xml, &e, &r) == ENT_SAML_OK && r.response_signed
          && !r.assertion_signed && strcmp(r.name_id, "alice@example.com")
          == 0, "signed Response covers the assertion");
    ent_saml_result_free(&r);

    e.require_signed_assertion = 1;
    fails(xml, &e, ENT_SAML_SIGNATURE, "the Assertion is not signed",
          "signed Response refused when the assertion must be signed");

    both = sign(sign(build(&d), SIGN_ASSERTION, &idp), SIGN_RESPONSE, &idp);
    check(run(both, &e, &r) == ENT_SAML_OK && r.response_signed
          && r.assertion_signed, "both signed");
    ent_saml_result_free(&r);

    e.require_signed_assertion = 0;

    fails(build(&d), &e, ENT_SAML_SIGNATURE,
          "neither Response nor Assertion is signed", "unsigned refused");

    fails(sign(build(&d), SIGN_ASSERTION, &attacker), &e,
          ENT_SAML_SIGNATURE, "signature verification failed",
          "attacker's key (and its certificate in KeyInfo) refused");

    fails(sign(build(&d), SIGN_RESPONSE, &attacker), &e,
          ENT_SAML_SIGNATURE, "signature verification failed",
          "attacker-signed Response refused");

    /* a good assertion signature does not save a bad Response one */

    fails(sign(sign(build(&d), SIGN_ASSERTION, &idp), SIGN_RESPONSE,
               &attacker), &e, ENT_SAML_SIGNATURE,
          "signature verification failed",
          "bad Response signature over a good assertion refused");

    xml = sign(build(&d), SIGN_ASSERTION, &idp);

    fails(replace(xml, ">alice@example.com</saml:NameID>",
                  ">bob@example.com</saml:NameID>"), &e,
          ENT_SAML_SIGNATURE, "signature verification failed",
          "NameID changed after signing");

    fails(replace(xml, "<saml:AttributeValue>dev<",
                  "<saml:AttributeValue>root<"), &e,
          ENT_SAML_SIGNATURE, "signature verification failed",
          "attribute changed after signing");

    fails(replace(xml, "<ds:SignatureValue>", "<ds:SignatureValue>AAAA"),
          &e, ENT_SAML_SIGNATURE, "signature verification failed",
          "signature value changed");

    /* the document's own certificate does not matter */

    v = between(attacker.cert_pem, "MII", "-----END");
    v[strlen(v) - 8] = '\0';
    check(run(replace(xml, between(xml, "<ds:X509Certificate>",
                                   "</ds:X509Certificate>"),
                      str("<ds:X509Certificate>%s</ds:X509Certificate>", v)),
              &e, &r) == ENT_SAML_OK,
          "the attacker's certificate in KeyInfo is ignored");
    ent_saml_result_free(&r);

    xml = sign(build(&d), SIGN_ASSERTION, &attacker);
    e.idp_cert_pem = attacker.cert_pem;
    check(run(xml, &e, &r) == ENT_SAML_OK,
          "the pinned certificate is the trust (attacker pinned: passes)");
    ent_saml_result_free(&r);
    e.idp_cert_pem = idp.cert_pem;

    /* algorithms */

    fails(sign_alg(build(&d), SIGN_ASSERTION, &idp, xmlSecTransformExclC14NId,
                   xmlSecTransformRsaSha1Id, xmlSecTransformSha256Id),
          &e, ENT_SAML_SIGNATURE, "SHA-1 is not allowed",
          "rsa-sha1 refused");

    fails(sign_alg(build(&d), SIGN_ASSERTION, &idp, xmlSecTransformExclC14NId,
                   xmlSecTransformRsaSha256Id, xmlSecTransformSha1Id),
          &e, ENT_SAML_SIGNATURE, "SHA-1 is not allowed",
          "sha1 digest refused");

    e.allow_sha1 = 1;

    check(run(sign_alg(build(&d), SIGN_ASSERTION, &idp,
                       xmlSecTransformExclC14NId, xmlSecTransformRsaSha1Id,
                       xmlSecTransformSha1Id), &e, &r) == ENT_SAML_OK
          && r.assertion_signed, "rsa-sha1 and sha1 accepted with allow_sha1");
    ent_saml_result_free(&r);

    check(run(sign_alg(build(&d), SIGN_RESPONSE, &idp,
                       xmlSecTransformExclC14NId, xmlSecTransformRsaSha256Id,
                       xmlSecTransformSha1Id), &e, &r) == ENT_SAML_OK
          && r.response_signed, "sha1 digest accepted with allow_sha1");
    ent_saml_result_free(&r);

    fails(sign_alg(build(&d), SIGN_ASSERTION, &ec, xmlSecTransformExclC14NId,
                   xmlSecTransformEcdsaSha1Id, xmlSecTransformSha256Id),
          &e, ENT_SAML_SIGNATURE, "signature method is not allowed",
          "ecdsa-sha1 refused even with allow_sha1");

    fails(replace(sign_alg(build(&d), SIGN_ASSERTION, &idp,
                           xmlSecTransformExclC14NId,
                           xmlSecTransformRsaSha1Id, xmlSecTransformSha1Id),
                  "alice@", "mallory@"),
          &e, ENT_SAML_SIGNATURE, "signature verification failed",
          "a tampered SHA-1 signature still fails");

    e.allow_sha1 = 0;

    fails(sign_alg(build(&d), SIGN_ASSERTION, &idp, xmlSecTransformInclC14NId,
                   xmlSecTransformRsaSha256Id, xmlSecTransformSha256Id),
          &e, ENT_SAML_SIGNATURE, "canonicalization method is not allowed",
          "inclusive c14n refused");

    fails(replace(xml, "#rsa-sha256", "#hmac-sha256"), &e,
          ENT_SAML_SIGNATURE, "signature method is not allowed",
          "hmac-sha256 refused");

    xml = sign(build(&d), SIGN_ASSERTION, &idp);

    fails(replace(xml, "URI=\"#_a1\"", "URI=\"\""), &e, ENT_SAML_SIGNATURE,
          "Reference does not point to the signed element",
          "empty Reference URI refused");

    fails(replace(xml, "URI=\"#_a1\"", "URI=\"#_resp1\""), &e,
          ENT_SAML_SIGNATURE,
          "Reference does not point to the signed element",
          "Reference to another element refused");

    fails(replace(xml, "URI=\"#_a1\"",
                  "URI=\"#xpointer(id('_a1'))\""), &e, ENT_SAML_SIGNATURE,
          "Reference does not point to the signed element",
          "XPointer Reference refused");

    fails(replace(xml, "</ds:Reference>",
                  str("</ds:Reference>%s",
                      between(xml, "<ds:Reference", "</ds:Reference>"))),
          &e, ENT_SAML_SIGNATURE,
          "Signature must have exactly one Reference",
          "two References refused");

    fails(replace(xml, "<ds:Transforms>",
                  "<ds:Transforms><ds:Transform Algorithm="
                  "\"http://www.w3.org/TR/1999/REC-xpath-19991116\"/>"),
          &e, ENT_SAML_SIGNATURE, "transform is not allowed",
          "XPath transform refused");

    fails(replace(xml, "</saml:Issuer><ds:Signature",
                  str("</saml:Issuer>%s<ds:Signature",
                      between(xml, "<ds:Signature", "</ds:Signature>"))),
          &e, ENT_SAML_SIGNATURE, "more than one Signature",
          "two Signatures refused");
}


static void
test_xsw(void)
{
    char               *xml, *signed_a, *evil, *evil_signed, *rsigned;
    ent_saml_expect_t   e;
    doc_t               d;

    expect_defaults(&e);
    defaults(&d);

    xml = sign(build(&d), SIGN_ASSERTION, &idp);
    signed_a = between(xml, "<saml:Assertion", "</saml:Assertion>");

    /* an unsigned assertion of the attacker's */

    d.assert_id = "_evil";
    d.nameid = "mallory@example.com";
    evil = between(build(&d), "<saml:Assertion", "</saml:Assertion>");
    defaults(&d);

    fails(replace(xml, signed_a, str("%s%s", evil, signed_a)), &e,
          ENT_SAML_MALFORMED, "more than one Assertion in the document",
          "XSW: evil assertion before the signed one");

    fails(replace(xml, signed_a, str("%s%s", signed_a, evil)), &e,
          ENT_SAML_MALFORMED, "more than one Assertion in the document",
          "XSW: evil assertion after the signed one");

    /* the signed one hidden in Extensions, an evil copy (same ID, same
       Signature) at the top */

    evil_signed = replace(signed_a, ">alice@example.com</saml:NameID>",
                          ">mallory@example.com</saml:NameID>");

    fails(replace(replace(xml, signed_a, evil_signed),
                  "</saml:Issuer>\n<samlp:Status>",
                  str("</saml:Issuer>\n<samlp:Extensions>%s"
                      "</samlp:Extensions><samlp:Status>", signed_a)),
          &e, ENT_SAML_MALFORMED, "more than one Assertion in the document",
          "XSW: signed assertion moved into Extensions");

    /* the signed one inside the evil one's Advice */

    fails(replace(xml, signed_a,
                  replace(evil, "<saml:Conditions",
                          str("<saml:Advice>%s</saml:Advice>"
                              "<saml:Conditions", signed_a))),
          &e, ENT_SAML_MALFORMED, "more than one Assertion in the document",
          "XSW: signed assertion inside the evil one's Advice");

    /* the signed assertion's Signature copied into the evil one alone */

    fails(replace(xml, signed_a,
                  replace(evil, "</saml:Issuer>",
                          str("</saml:Issuer>%s",
                              between(signed_a, "<ds:Signature",
                                      "</ds:Signature>")))),
          &e, ENT_SAML_SIGNATURE,
          "Reference does not point to the signed element",
          "XSW: copied Signature on an evil assertion");

    /* the same with the evil assertion taking the signed one's ID */

    fails(replace(xml, "<saml:NameID Format=\"urn:oasis:names:tc:"
                  "SAML:1.1:nameid-format:emailAddress\">alice@",
                  "<saml:NameID Format=\"urn:oasis:names:tc:"
                  "SAML:1.1:nameid-format:emailAddress\">mallory@"),
          &e, ENT_SAML_SIGNATURE, "signature verification failed",
          "XSW: evil content under the original ID and Signature");

    /* duplicated IDs: another element, the Response, xml:id */

    fails(replace(xml, "</saml:Issuer>\n<samlp:Status>",
                  "</saml:Issuer>\n<samlp:Extensions><x:Foo xmlns:x=\"urn:x\""
                  " ID=\"_a1\"/></samlp:Extensions><samlp:Status>"),
          &e, ENT_SAML_MALFORMED, "duplicate ID in the document",
          "XSW: duplicated ID on another element");

    d.resp_id = "_a1";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_MALFORMED,
          "duplicate ID in the document", "Response and Assertion share an ID");
    defaults(&d);

    fails(replace(xml, "<samlp:Status>",
                  "<samlp:Extensions><x:Foo xmlns:x=\"urn:x\" xml:id=\"_a1\"/>"
                  "</samlp:Extensions><samlp:Status>"),
          &e, ENT_SAML_MALFORMED, "xml:id is not allowed",
          "XSW: xml:id refused");

    /* a signed Response with an assertion swapped in */

    rsigned = sign(build(&d), SIGN_RESPONSE, &idp);

    fails(replace(rsigned, between(rsigned, "<saml:Assertion",
                                   "</saml:Assertion>"), evil),
          &e, ENT_SAML_SIGNATURE, "signature verification failed",
          "XSW: assertion replaced under a signed Response");

    /* an assertion that is not a child of the Response */

    fails(replace(replace(xml, signed_a, ""), "<samlp:Status>",
                  str("<samlp:Extensions>%s</samlp:Extensions>"
                      "<samlp:Status>", signed_a)),
          &e, ENT_SAML_MALFORMED, "Response has no Assertion",
          "signed assertion only inside Extensions");
}


static void
test_parser(void)
{
    char               *xml;
    ent_saml_expect_t   e;
    doc_t               d;

    expect_defaults(&e);
    defaults(&d);

    xml = sign(build(&d), SIGN_ASSERTION, &idp);

    fails(str("<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>%s",
              replace(xml, "<?xml version=\"1.0\"?>\n", "")),
          &e, ENT_SAML_MALFORMED, "DOCTYPE is not allowed", "XXE refused");

    fails(replace(xml, "?>\n",
                  "?>\n<!DOCTYPE samlp:Response [<!ENTITY a \"aaaaaaaaaa\">"
                  "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
                  "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
                  "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>\n"),
          &e, ENT_SAML_MALFORMED, "DOCTYPE is not allowed",
          "billion laughs refused");

    fails(replace(xml, "?>\n", "?>\n<!DOCTYPE samlp:Response>\n"),
          &e, ENT_SAML_MALFORMED, "DOCTYPE is not allowed",
          "bare DOCTYPE refused");

    fails(replace(xml, "?>\n", "?>\n<!DOCTYPE samlp:Response SYSTEM "
                  "\"http://attacker.example/x.dtd\">\n"),
          &e, ENT_SAML_MALFORMED, "DOCTYPE is not allowed",
          "external DTD refused");

    fails(replace(xml, "alice@example.com</saml:NameID>",
                  "&xxe;</saml:NameID>"),
          &e, ENT_SAML_MALFORMED, "SAMLResponse is not well-formed XML",
          "undeclared entity refused");

    fails("<samlp:Response", &e, ENT_SAML_MALFORMED,
          "SAMLResponse is not well-formed XML", "truncated XML refused");

    fails("<foo/>", &e, ENT_SAML_MALFORMED,
          "root element is not a Response", "other root refused");

    fails(replace(build(&d), "urn:oasis:names:tc:SAML:2.0:protocol",
                  "urn:evil"),
          &e, ENT_SAML_MALFORMED, "root element is not a Response",
          "Response in another namespace refused");

    fails(replace(build(&d), "Version=\"2.0\"", "Version=\"1.1\""),
          &e, ENT_SAML_MALFORMED, "Response Version is not 2.0",
          "SAML 1.1 refused");
}


static void
test_protocol(void)
{
    char               *xml, *conf, *early;
    ent_saml_result_t   r;
    ent_saml_expect_t   e;
    doc_t               d;

    expect_defaults(&e);

    /* status */

    defaults(&d);
    d.status = "<samlp:Status><samlp:StatusCode Value=\"" ST_PREFIX
               "Requester\"/></samlp:Status>";
    fails(build(&d), &e, ENT_SAML_STATUS,
          "SAML status is not Success: Requester", "status Requester");

    d.status = "<samlp:Status><samlp:StatusCode Value=\"" ST_PREFIX
               "Responder\"><samlp:StatusCode Value=\"" ST_PREFIX
               "AuthnFailed\"/></samlp:StatusCode></samlp:Status>";
    fails(build(&d), &e, ENT_SAML_STATUS,
          "SAML status is not Success: Responder/AuthnFailed",
          "status Responder/AuthnFailed");

    d.status = "<samlp:Status><samlp:StatusCode Value=\"bad &#10;code\"/>"
               "</samlp:Status>";
    fails(build(&d), &e, ENT_SAML_STATUS,
          "SAML status is not Success: bad??code",
          "status code sanitised");

    d.status = "";
    fails(build(&d), &e, ENT_SAML_MALFORMED, "Response has no Status",
          "no Status");

    /* encrypted */

    defaults(&d);
    xml = build(&d);
    fails(replace(xml, between(xml, "<saml:Assertion", "</saml:Assertion>"),
                  "<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="
                  "\"http://www.w3.org/2001/04/xmlenc#\"/>"
                  "</saml:EncryptedAssertion>"),
          &e, ENT_SAML_UNSUPPORTED, "encrypted assertions are not supported",
          "EncryptedAssertion refused clearly");

    fails(replace(xml, "</saml:Assertion>",
                  "</saml:Assertion><saml:EncryptedAssertion/>"),
          &e, ENT_SAML_UNSUPPORTED, "encrypted assertions are not supported",
          "EncryptedAssertion next to an Assertion refused");

    /* endpoints, audience, issuers, request ids */

    defaults(&d);
    d.audience = "https://other-sp.example";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "Assertion audience is not this SP", "wrong audience");

    defaults(&d);
    d.recipient = "https://evil.example/acs";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "SubjectConfirmation Recipient is not the ACS URL",
          "wrong recipient");

    defaults(&d);
    d.dest = "https://evil.example/acs";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "Response Destination is not the ACS URL", "wrong destination");

    defaults(&d);
    d.dest = NULL;
    fails(sign(build(&d), SIGN_RESPONSE, &idp), &e, ENT_SAML_INVALID,
          "signed Response has no Destination",
          "signed Response without Destination");

    defaults(&d);
    d.issuer = "https://evil.example";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "Assertion Issuer is not the IdP", "wrong assertion issuer");

    defaults(&d);
    d.resp_issuer = "https://evil.example";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "Response Issuer is not the IdP", "wrong response issuer");

    defaults(&d);
    d.irt = "_other";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "InResponseTo does not match the request", "wrong InResponseTo");

    defaults(&d);
    d.scd_irt = "_other";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "SubjectConfirmation InResponseTo does not match",
          "wrong confirmation InResponseTo");

    defaults(&d);
    d.irt = NULL;
    xml = sign(build(&d), SIGN_ASSERTION, &idp);
    fails(xml, &e, ENT_SAML_INVALID, "Response has no InResponseTo",
          "unsolicited response refused by default");

    e.request_id = NULL;
    fails(xml, &e, ENT_SAML_INVALID, "IdP-initiated login is not allowed",
          "IdP-initiated refused without a request");

    defaults(&d);
    e.allow_idp_initiated = 1;
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "InResponseTo without an outstanding request",
          "InResponseTo with no request outstanding");
    expect_defaults(&e);

    /* times, at the edges of the skew */

    defaults(&d);
    d.nooa = NOW - SKEW - 100;
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "Assertion has expired", "expired");

    d.nooa = NOW - SKEW;
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "Assertion has expired", "NotOnOrAfter exactly now - skew");

    d.nooa = NOW - SKEW + 1;
    check(run(sign(build(&d), SIGN_ASSERTION, &idp), &e, &r) == ENT_SAML_OK
          && r.expires == NOW - SKEW + 1,
          "NotOnOrAfter now - skew + 1 passes and is the expiry");
    ent_saml_result_free(&r);

    defaults(&d);
    d.nb = NOW + SKEW;
    check(run(sign(build(&d), SIGN_ASSERTION, &idp), &e, &r) == ENT_SAML_OK,
          "NotBefore exactly now + skew passes");
    ent_saml_result_free(&r);

    d.nb = NOW + SKEW + 1;
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "Assertion is not yet valid", "NotBefore now + skew + 1");

    defaults(&d);
    d.scd_nooa = NOW - SKEW;
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "SubjectConfirmation has expired",
          "confirmation NotOnOrAfter exactly now - skew");

    d.scd_nooa = NOW - SKEW + 1;
    check(run(sign(build(&d), SIGN_ASSERTION, &idp), &e, &r) == ENT_SAML_OK,
          "confirmation NotOnOrAfter now - skew + 1 passes");
    ent_saml_result_free(&r);

    /*
     * several bearer confirmations: the ID stays in the replay cache as
     * long as any of them may hold (one not valid yet too), bounded by the
     * Conditions; a first one expiring early must not cut it short
     */

    defaults(&d);
    d.nooa = NOW + 900;
    d.scd_nooa = NOW + 600;
    xml = build(&d);
    conf = between(xml, "<saml:SubjectConfirmation ",
                   "</saml:SubjectConfirmation>");
    early = replace(conf, when(NOW + 600), when(NOW + 60));

    check(run(sign(replace(xml, conf, str("%s%s", early, conf)),
                   SIGN_ASSERTION, &idp), &e, &r) == ENT_SAML_OK
          && r.expires == NOW + 600,
          "two confirmations: the expiry is the later one's");
    ent_saml_result_free(&r);

    check(run(sign(replace(xml, conf,
                           str("%s%s", early,
                               replace(replace(conf, when(NOW + 600),
                                               when(NOW + 700)),
                                       " Recipient=",
                                       str(" NotBefore=\"%s\" Recipient=",
                                           when(NOW + 120))))),
                   SIGN_ASSERTION, &idp), &e, &r) == ENT_SAML_OK
          && r.expires == NOW + 700,
          "a confirmation valid later: the expiry is its own");
    ent_saml_result_free(&r);

    check(run(sign(replace(xml, conf,
                           str("%s%s", early,
                               replace(conf, when(NOW + 600),
                                       when(NOW + 1000)))),
                   SIGN_ASSERTION, &idp), &e, &r) == ENT_SAML_OK
          && r.expires == NOW + 900,
          "a confirmation beyond the Conditions: the Conditions' expiry");
    ent_saml_result_free(&r);

    check(run(sign(replace(xml, conf,
                           str("%s%s", early,
                               replace(replace(conf, when(NOW + 600),
                                               when(NOW + 800)),
                                       d.recipient,
                                       "https://evil.example/acs"))),
                   SIGN_ASSERTION, &idp), &e, &r) == ENT_SAML_OK
          && r.expires == NOW + 60,
          "a confirmation that never holds does not lengthen the expiry");
    ent_saml_result_free(&r);

    defaults(&d);
    d.issue = NOW + SKEW + 1;
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "Response issued in the future", "issued in the future");

    defaults(&d);
    xml = build(&d);
    fails(sign(replace(xml, " NotBefore=\"", " NotBefore=\"x"),
               SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "Conditions NotBefore is invalid", "malformed NotBefore");

    /* statements */

    defaults(&d);
    d.authn = "";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "Assertion has no AuthnStatement", "missing AuthnStatement");

    defaults(&d);
    d.authn = str("<saml:AuthnStatement AuthnInstant=\"%s\""
                  " SessionNotOnOrAfter=\"%s\"/>", when(NOW - 20),
                  when(NOW - SKEW));
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "IdP session has expired", "SessionNotOnOrAfter passed");

    defaults(&d);
    d.authn = str("<saml:AuthnStatement AuthnInstant=\"%s\"/>",
                  when(NOW - 20));
    check(run(sign(build(&d), SIGN_ASSERTION, &idp), &e, &r) == ENT_SAML_OK
          && r.session_index == NULL && r.session_not_on_or_after == 0,
          "AuthnStatement without SessionIndex");
    ent_saml_result_free(&r);

    defaults(&d);
    xml = build(&d);
    fails(sign(replace(xml, "</saml:AudienceRestriction>",
                       "</saml:AudienceRestriction><saml:Condition/>"),
               SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "unknown Condition", "unknown Condition refused");

    fails(sign(replace(xml, "cm:bearer\"", "cm:holder-of-key\""),
               SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "no bearer SubjectConfirmation", "no bearer confirmation");
}


static void
test_content(void)
{
    char                   *xml;
    ent_saml_result_t       r;
    ent_saml_expect_t       e;
    const ent_saml_attr_t  *a;
    doc_t                   d;

    expect_defaults(&e);

    /* comment injection: the comment must not cut the value */

    defaults(&d);
    d.nameid = "alice@evil.com<!---->.example.com";
    xml = sign(build(&d), SIGN_ASSERTION, &idp);
    check(run(xml, &e, &r) == ENT_SAML_OK && r.name_id
          && strcmp(r.name_id, "alice@evil.com.example.com") == 0,
          "comment injection: NameID is the full text");
    ent_saml_result_free(&r);

    defaults(&d);
    d.attrs = "<saml:AttributeStatement><saml:Attribute Name=\"email\">"
              "<saml:AttributeValue>admin@corp<!-- x -->.evil.example"
              "</saml:AttributeValue></saml:Attribute>"
              "<saml:Attribute Name=\"cdata\"><saml:AttributeValue>"
              "<![CDATA[a<b]]>c</saml:AttributeValue></saml:Attribute>"
              "<saml:Attribute Name=\"empty\"/>"
              "</saml:AttributeStatement>";
    xml = sign(build(&d), SIGN_ASSERTION, &idp);
    check(run(xml, &e, &r) == ENT_SAML_OK, "attributes: comment and CDATA");
    a = ent_saml_attr(&r, "email");
    check(a && a->nvalues == 1
          && strcmp(a->values[0], "admin@corp.evil.example") == 0,
          "comment injection: attribute is the full text");
    a = ent_saml_attr(&r, "cdata");
    check(a && strcmp(a->values[0], "a<bc") == 0, "CDATA value");
    a = ent_saml_attr(&r, "empty");
    xml = ent_saml_attr_join(&r, "empty");
    check(a && a->nvalues == 0 && xml && xml[0] == '\0',
          "attribute without values");
    free(xml);
    ent_saml_result_free(&r);

    defaults(&d);
    d.nameid = "\n  alice@example.com\n";
    check(run(sign(build(&d), SIGN_ASSERTION, &idp), &e, &r) == ENT_SAML_OK
          && strcmp(r.name_id, "alice@example.com") == 0,
          "NameID trimmed of white space");
    ent_saml_result_free(&r);

    defaults(&d);
    d.nameid = "alice<x:b xmlns:x=\"urn:x\">@evil</x:b>@example.com";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "NameID is not valid", "NameID with a child element refused");

    defaults(&d);
    d.nameid = "";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "NameID is not valid", "empty NameID refused");

    defaults(&d);
    d.nameid = "alice&#10;X-Ent-User: admin";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "NameID is not valid", "NameID with a newline refused");

    defaults(&d);
    d.attrs = "<saml:AttributeStatement><saml:Attribute Name=\"email\">"
              "<saml:AttributeValue>a&#9;b</saml:AttributeValue>"
              "</saml:Attribute></saml:AttributeStatement>";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "attribute value is not valid",
          "control character in a value refused");

    defaults(&d);
    d.attrs = "<saml:AttributeStatement><saml:Attribute>"
              "<saml:AttributeValue>x</saml:AttributeValue>"
              "</saml:Attribute></saml:AttributeStatement>";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INVALID,
          "attribute Name is not valid", "attribute without Name refused");

    defaults(&d);
    xml = build(&d);
    fails(sign(replace(xml, "<saml:NameID",
                       "<saml:EncryptedID/><saml:NameID"),
               SIGN_ASSERTION, &idp), &e, ENT_SAML_UNSUPPORTED,
          "encrypted NameIDs are not supported", "EncryptedID refused");
}


static void
test_input(void)
{
    int                 rc;
    char               *big;
    size_t              n;
    ent_saml_result_t   r;
    ent_saml_expect_t   e;
    doc_t               d;

    expect_defaults(&e);

    rc = ent_saml_response_check((const unsigned char *) "", 0, &e, &r,
                                 err, sizeof(err));
    check(rc == ENT_SAML_MALFORMED && strcmp(err, "empty SAMLResponse") == 0,
          "empty input");

    rc = ent_saml_response_check((const unsigned char *) "!!!not base64",
                                 13, &e, &r, err, sizeof(err));
    check(rc == ENT_SAML_MALFORMED
          && strcmp(err, "SAMLResponse is not valid base64") == 0,
          "garbage base64");

    rc = ent_saml_response_check((const unsigned char *) "PGE+", 3, &e, &r,
                                 err, sizeof(err));
    check(rc == ENT_SAML_MALFORMED
          && strcmp(err, "SAMLResponse is not valid base64") == 0,
          "truncated base64");

    rc = ent_saml_response_check((const unsigned char *) "PG=E", 4, &e, &r,
                                 err, sizeof(err));
    check(rc == ENT_SAML_MALFORMED
          && strcmp(err, "SAMLResponse is not valid base64") == 0,
          "misplaced padding");

    rc = ent_saml_response_check((const unsigned char *) "\r\n", 2, &e, &r,
                                 err, sizeof(err));
    check(rc == ENT_SAML_MALFORMED
          && strcmp(err, "SAMLResponse is not valid base64") == 0,
          "only line breaks");

    rc = ent_saml_response_check((const unsigned char *) "PGE+PC9hPg==", 12,
                                 &e, &r, err, sizeof(err));
    check(rc == ENT_SAML_MALFORMED
          && strcmp(err, "root element is not a Response") == 0,
          "padded base64 decodes");

    n = ENT_SAML_MAX_B64_LEN + 1;
    big = keep(malloc(n));
    memset(big, 'A', n);
    rc = ent_saml_response_check((const unsigned char *) big, n, &e, &r,
                                 err, sizeof(err));
    check(rc == ENT_SAML_MALFORMED
          && strcmp(err, "SAMLResponse too large") == 0, "oversized base64");

    n = ENT_SAML_MAX_LEN + 1;
    rc = ent_saml_response_check_xml((const unsigned char *) big, n, &e, &r,
                                     err, sizeof(err));
    check(rc == ENT_SAML_MALFORMED
          && strcmp(err, "SAMLResponse too large") == 0, "oversized XML");

    /* decodes to more than the XML limit */

    n = (ENT_SAML_MAX_LEN + 3) / 3 * 4;
    rc = ent_saml_response_check((const unsigned char *) big, n, &e, &r,
                                 err, sizeof(err));
    check(rc == ENT_SAML_MALFORMED
          && strcmp(err, "SAMLResponse too large") == 0,
          "base64 decoding to too much");

    e.idp_cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n"
                     "-----END CERTIFICATE-----\n";
    defaults(&d);
    rc = run(sign(build(&d), SIGN_ASSERTION, &idp), &e, &r);
    check(rc == ENT_SAML_INTERNAL
          && strcmp(err, "IdP certificate cannot be loaded") == 0,
          "a broken pinned certificate is an internal error");
    ent_saml_result_free(&r);
}


static void
test_request(void)
{
    int             rc, rawlen;
    char           *out, *b, *p;
    size_t          n, i;
    z_stream        z;
    xmlDocPtr       doc;
    unsigned char  *raw, xml[4096];

    rc = ent_saml_authn_request(SP, "https://sp.example/acs?a=1&b=<2>",
                                "https://idp.example/sso", "_0123abcd",
                                NOW, &out, &n);
    check(rc == 0 && n == strlen(out), "AuthnRequest built");

    check(strchr(out, '+') == NULL && strchr(out, '/') == NULL
          && strchr(out, '=') == NULL, "AuthnRequest is URL-encoded");

    /* percent-decode, base64-decode, inflate */

    b = keep(malloc(n + 1));

    for (i = 0, p = b; i < n; i++) {
        if (out[i] == '%') {
            *p++ = out[i + 2] == 'B' ? '+' : out[i + 2] == 'F' ? '/' : '=';
            i += 2;

        } else {
            *p++ = out[i];
        }
    }

    *p = '\0';
    free(out);

    raw = keep(malloc(strlen(b)));
    rawlen = EVP_DecodeBlock(raw, (unsigned char *) b, strlen(b));
    rawlen -= (strlen(b) > 0 && b[strlen(b) - 1] == '=')
              + (strlen(b) > 1 && b[strlen(b) - 2] == '=');

    memset(&z, 0, sizeof(z_stream));
    inflateInit2(&z, -15);
    z.next_in = raw;
    z.avail_in = rawlen;
    z.next_out = xml;
    z.avail_out = sizeof(xml) - 1;
    rc = inflate(&z, Z_FINISH);
    xml[z.total_out] = '\0';
    inflateEnd(&z);

    check(rc == Z_STREAM_END, "AuthnRequest inflates (raw DEFLATE)");
    check(strstr((char *) xml, "<samlp:AuthnRequest ") == (char *) xml
          && strstr((char *) xml, " ID=\"_0123abcd\"")
          && strstr((char *) xml, " IssueInstant=\"2023-11-14T22:13:20Z\""),
          "AuthnRequest ID and IssueInstant");
    check(strstr((char *) xml, " Destination=\"https://idp.example/sso\"")
          && strstr((char *) xml, "<saml:Issuer>" SP "</saml:Issuer>"),
          "AuthnRequest Destination and Issuer");
    check(strstr((char *) xml, " AssertionConsumerServiceURL=\""
                 "https://sp.example/acs?a=1&amp;b=&lt;2&gt;\"") != NULL,
          "AuthnRequest ACS URL escaped");
    check(strstr((char *) xml, "ProtocolBinding=\"urn:oasis:names:tc:SAML:"
                 "2.0:bindings:HTTP-POST\"") != NULL,
          "AuthnRequest asks for HTTP-POST");

    doc = xmlReadMemory((char *) xml, z.total_out, NULL, NULL,
                        XML_PARSE_NONET);
    check(doc != NULL, "AuthnRequest is well-formed");
    xmlFreeDoc(doc);

    check(ent_saml_authn_request(SP, ACS, IDP, "0bad", NOW, &out, &n) == -1
          && out == NULL
          && ent_saml_authn_request(SP, ACS, IDP, "_a\"b", NOW, &out, &n)
             == -1
          && ent_saml_authn_request(SP, "a\nb", IDP, "_a", NOW, &out, &n)
             == -1
          && ent_saml_authn_request(NULL, ACS, IDP, "_a", NOW, &out, &n)
             == -1, "AuthnRequest refuses bad input");
}


static void
test_metadata(void)
{
    char        *out;
    size_t       n;
    xmlDocPtr    doc;
    xmlNodePtr   root;

    check(ent_saml_sp_metadata(SP, ACS "?x=<&>", &out, &n) == 0
          && n == strlen(out), "metadata built");

    doc = xmlReadMemory(out, n, NULL, NULL, XML_PARSE_NONET);
    root = doc ? xmlDocGetRootElement(doc) : NULL;

    check(root && strcmp((char *) root->name, "EntityDescriptor") == 0
          && strcmp((char *) root->ns->href,
                    "urn:oasis:names:tc:SAML:2.0:metadata") == 0,
          "metadata parses, EntityDescriptor");
    check(strstr(out, "entityID=\"" SP "\"")
          && strstr(out, "WantAssertionsSigned=\"true\"")
          && strstr(out, "Location=\"" ACS "?x=&lt;&amp;&gt;\"")
          && strstr(out, "emailAddress</md:NameIDFormat>"),
          "metadata content");

    xmlFreeDoc(doc);
    free(out);

    check(ent_saml_sp_metadata("", ACS, &out, &n) == -1 && out == NULL,
          "metadata refuses an empty entity id");
}


/* standard base64 of binary data, on one line */

static char *
b64n(const unsigned char *p, size_t n)
{
    char  *out;

    out = keep(malloc(4 * ((n + 2) / 3) + 1));
    EVP_EncodeBlock((unsigned char *) out, p, (int) n);

    return out;
}


/* a PEM certificate's base64 body on one line */

static char *
cert_b64(const char *pem)
{
    char        *out, *o;
    const char  *p;

    p = strstr(pem, "-----\n") + 6;
    out = keep(malloc(strlen(p) + 1));

    for (o = out; *p && *p != '-'; p++) {
        if (*p != '\n') {
            *o++ = *p;
        }
    }

    *o = '\0';

    return out;
}


static void
test_rotation(void)
{
    char               *xml, *list, *bad;
    ent_saml_result_t   r;
    ent_saml_expect_t   e;
    ent_saml_keys_t    *keys;
    doc_t               d;
    size_t              i;

    expect_defaults(&e);
    defaults(&d);

    list = str("%s%s", attacker.cert_pem, idp.cert_pem);
    e.idp_cert_pem = list;

    xml = sign(build(&d), SIGN_ASSERTION, &idp);
    check(run(xml, &e, &r) == ENT_SAML_OK && r.assertion_signed,
          "rotation: the second certificate of the list verifies");
    ent_saml_result_free(&r);

    xml = sign(build(&d), SIGN_ASSERTION, &attacker);
    check(run(xml, &e, &r) == ENT_SAML_OK,
          "rotation: the first certificate of the list verifies");
    ent_saml_result_free(&r);

    fails(sign(build(&d), SIGN_ASSERTION, &ec), &e, ENT_SAML_SIGNATURE,
          "signature verification failed",
          "rotation: a key not in the list is refused");

    xml = sign(sign(build(&d), SIGN_ASSERTION, &idp), SIGN_RESPONSE,
               &attacker);
    check(run(xml, &e, &r) == ENT_SAML_OK && r.response_signed
          && r.assertion_signed,
          "rotation: Response and Assertion signed by different listed keys");
    ent_saml_result_free(&r);

    /* text around and between the blocks, a broken block, a length */

    e.idp_cert_pem = str("subject=CN=old\n%s\nbroken:\n-----BEGIN CERTIFICATE-"
                         "----\nAAAA\n-----END CERTIFICATE-----\n%s",
                         ec.cert_pem, idp.cert_pem);
    check(run(sign(build(&d), SIGN_ASSERTION, &idp), &e, &r) == ENT_SAML_OK,
          "rotation: a broken block and comments are skipped");
    ent_saml_result_free(&r);

    e.idp_cert_len = strlen(ec.cert_pem) + strlen("subject=CN=old\n");
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_SIGNATURE,
          "signature verification failed",
          "rotation: idp_cert_len bounds the list");
    e.idp_cert_len = 0;

    bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
          "-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n";
    e.idp_cert_pem = bad;
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INTERNAL,
          "IdP certificate cannot be loaded",
          "rotation: a list with no loadable certificate is an error");

    e.idp_cert_pem = idp.key_pem;
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INTERNAL,
          "IdP certificate cannot be loaded",
          "rotation: a private key is not a certificate list");

    e.idp_cert_pem = "-----BEGIN CERTIFICATE-----\nMIIB";
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INTERNAL,
          "IdP certificate cannot be loaded",
          "rotation: a truncated block is an error");

    /* prepared keys */

    keys = ent_saml_keys_load(list, strlen(list), err, sizeof(err));
    check(keys != NULL, "keys: a list loads");

    e.idp_cert_pem = NULL;
    e.idp_keys = keys;
    check(run(sign(build(&d), SIGN_ASSERTION, &idp), &e, &r) == ENT_SAML_OK,
          "keys: prepared keys verify");
    ent_saml_result_free(&r);
    check(run(sign(build(&d), SIGN_ASSERTION, &idp), &e, &r) == ENT_SAML_OK,
          "keys: prepared keys are reusable");
    ent_saml_result_free(&r);

    e.idp_cert_pem = ec.cert_pem;
    fails(sign(build(&d), SIGN_ASSERTION, &ec), &e, ENT_SAML_SIGNATURE,
          "signature verification failed",
          "keys: idp_keys win over idp_cert_pem");
    ent_saml_keys_free(keys);

    memset(err, 0, sizeof(err));
    check(ent_saml_keys_load(bad, strlen(bad), err, sizeof(err)) == NULL
          && strcmp(err, "IdP certificate cannot be loaded") == 0,
          "keys: none loadable");

    check(ent_saml_keys_load("", 0, err, sizeof(err)) == NULL
          && ent_saml_keys_load(NULL, 10, err, sizeof(err)) == NULL,
          "keys: empty input");

    list = "";

    for (i = 0; i < ENT_SAML_MAX_CERTS + 1; i++) {
        list = str("%s%s", list, idp.cert_pem);
    }

    memset(err, 0, sizeof(err));
    check(ent_saml_keys_load(list, strlen(list), err, sizeof(err)) == NULL
          && strcmp(err, "too many IdP certificates") == 0,
          "keys: too many certificates");

    keys = ent_saml_sp_key_load(sp.key_pem, strlen(sp.key_pem), err,
                                sizeof(err));
    e.idp_keys = keys;
    fails(sign(build(&d), SIGN_ASSERTION, &idp), &e, ENT_SAML_INTERNAL,
          "idp_keys are not IdP certificates",
          "keys: an SP key is not an IdP certificate list");
    ent_saml_keys_free(keys);
    ent_saml_keys_free(NULL);
}


static void
test_name_id_format(void)
{
    char               *xml;
    ent_saml_result_t   r;
    ent_saml_expect_t   e;
    doc_t               d;

    expect_defaults(&e);
    defaults(&d);

    xml = sign(build(&d), SIGN_ASSERTION, &idp);

    e.name_id_format = "urn:oasis:names:tc:SAML:1.1:nameid-format:"
                       "emailAddress";
    check(run(xml, &e, &r) == ENT_SAML_OK, "NameID Format: expected one");
    ent_saml_result_free(&r);

    e.name_id_format = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
    fails(xml, &e, ENT_SAML_INVALID, "NameID Format is not the one expected",
          "NameID Format: another one refused");

    xml = sign(replace(build(&d), " Format=\"urn:oasis:names:tc:SAML:1.1:"
                       "nameid-format:emailAddress\"", ""),
               SIGN_ASSERTION, &idp);
    fails(xml, &e, ENT_SAML_INVALID, "NameID Format is not the one expected",
          "NameID Format: absent is not persistent");

    e.name_id_format = "urn:oasis:names:tc:SAML:1.1:nameid-format:"
                       "unspecified";
    check(run(xml, &e, &r) == ENT_SAML_OK && r.name_id_format == NULL,
          "NameID Format: absent counts as unspecified");
    ent_saml_result_free(&r);

    e.name_id_format = "";
    fails(xml, &e, ENT_SAML_INVALID, "NameID Format is not the one expected",
          "NameID Format: empty expectation matches nothing absent");
}


/*
 * An EncryptedAssertion made here with OpenSSL, as IdPs make them: the
 * plaintext under a fresh AES key (IV first; GCM's tag last), the key
 * under the recipient's RSA key, the EncryptedKey inside the
 * EncryptedData's KeyInfo (Okta) or next to it with a RetrievalMethod
 * (ADFS, Shibboleth).
 */

static char *
encrypt_xml(const char *plain, const enc_t *p)
{
    int                 n, len, gcm;
    char               *method, *ek, *cv, *ki;
    size_t              klen, ctlen, eklen, ivlen;
    EVP_PKEY_CTX       *pctx;
    EVP_CIPHER_CTX     *cctx;
    const EVP_CIPHER   *cipher;
    unsigned char       key[32], *ct, *ekey;

    gcm = strstr(p->data, "gcm") != NULL;
    klen = strstr(p->data, "256") ? 32 : 16;

    if (p->key_len) {
        klen = p->key_len;
    }

    if (gcm) {
        cipher = klen == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm();
        ivlen = 12;

    } else {
        cipher = klen == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc();
        ivlen = 16;
    }

    RAND_bytes(key, sizeof(key));

    len = strlen(plain);
    ct = keep(malloc(ivlen + len + 32));
    RAND_bytes(ct, ivlen);

    cctx = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(cctx, cipher, NULL, key, ct);
    EVP_EncryptUpdate(cctx, ct + ivlen, &n, (const unsigned char *) plain,
                      len);
    ctlen = ivlen + n;
    EVP_EncryptFinal_ex(cctx, ct + ctlen, &n);
    ctlen += n;

    if (gcm) {
        EVP_CIPHER_CTX_ctrl(cctx, EVP_CTRL_GCM_GET_TAG, 16, ct + ctlen);
        ctlen += 16;
    }

    EVP_CIPHER_CTX_free(cctx);

    if (p->tamper) {
        ct[ivlen + 1] ^= 0x40;
    }

    /* the key */

    pctx = EVP_PKEY_CTX_new(p->rsa, NULL);
    EVP_PKEY_encrypt_init(pctx);

    if (strcmp(p->kt, KT_PKCS1) == 0) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING);

    } else {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING);
        EVP_PKEY_CTX_set_rsa_oaep_md(pctx, p->md ? p->md : EVP_sha1());
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, p->mgf ? p->mgf : EVP_sha1());

        if (p->label) {
            EVP_PKEY_CTX_set0_rsa_oaep_label(pctx,
                                             OPENSSL_strdup(p->label),
                                             strlen(p->label));
        }
    }

    eklen = 1024;
    ekey = keep(malloc(eklen));

    if (EVP_PKEY_encrypt(pctx, ekey, &eklen, key, p->wrap_len ? p->wrap_len
                                                              : klen) <= 0)
    {
        fprintf(stderr, "encrypt: RSA failed\n");
        exit(2);
    }

    EVP_PKEY_CTX_free(pctx);

    method = str("<xenc:EncryptionMethod Algorithm=\"%s\">%s%s%s"
                 "</xenc:EncryptionMethod>", p->kt,
                 p->label ? str("<xenc:OAEPparams>%s</xenc:OAEPparams>",
                                b64n((const unsigned char *) p->label,
                                     strlen(p->label)))
                          : "",
                 p->md_uri ? str("<ds:DigestMethod xmlns:ds=\""
                                 "http://www.w3.org/2000/09/xmldsig#\""
                                 " Algorithm=\"%s\"/>", p->md_uri) : "",
                 p->mgf_uri ? str("<xenc11:MGF xmlns:xenc11=\""
                                  "http://www.w3.org/2009/xmlenc11#\""
                                  " Algorithm=\"%s\"/>", p->mgf_uri) : "");

    /* a line break inside, as many IdPs write it */

    cv = b64n(ekey, eklen);
    cv = str("%.40s\n  %s", cv, cv + 40);

    ek = str("<xenc:EncryptedKey xmlns:xenc=\"http://www.w3.org/2001/04/"
             "xmlenc#\" Id=\"_ek1\">%s<xenc:CipherData><xenc:CipherValue>%s"
             "</xenc:CipherValue></xenc:CipherData>"
             "<xenc:ReferenceList><xenc:DataReference URI=\"#_ed1\"/>"
             "</xenc:ReferenceList></xenc:EncryptedKey>", method, cv);

    ki = p->sibling
         ? "<ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">"
           "<ds:RetrievalMethod Type=\"http://www.w3.org/2001/04/xmlenc#"
           "EncryptedKey\" URI=\"#_ek1\"/></ds:KeyInfo>"
         : str("<ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">"
               "%s</ds:KeyInfo>", ek);

    OPENSSL_cleanse(key, sizeof(key));

    return str("<saml:EncryptedAssertion>"
               "<xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/"
               "xmlenc#\" Id=\"_ed1\" Type=\"http://www.w3.org/2001/04/"
               "xmlenc#Element\">"
               "<xenc:EncryptionMethod Algorithm=\"%s\"/>%s"
               "<xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue>"
               "</xenc:CipherData></xenc:EncryptedData>%s"
               "</saml:EncryptedAssertion>",
               p->data, ki, b64n(ct, ctlen), p->sibling ? ek : "");
}


static void
enc_defaults(enc_t *p)
{
    memset(p, 0, sizeof(enc_t));

    p->kt = KT_MGF1P;
    p->data = DATA_AES128_GCM;
    p->rsa = sp.key;
}


/* the response xml with its (first) Assertion encrypted */

static char *
encrypt_in(const char *xml, const enc_t *p)
{
    char  *a;

    a = between(xml, "<saml:Assertion", "</saml:Assertion>");

    return replace(xml, a, encrypt_xml(a, p));
}


/* the same with xmlsec's own encryption, to check against another writer */

static char *
xmlsec_encrypt(const char *xml, xmlSecTransformId data)
{
    int                n;
    char              *s;
    xmlChar           *out;
    xmlDocPtr          doc;
    xmlNodePtr         a, ea, tmpl, ki, ek;
    xmlSecKeyPtr       key;
    xmlSecEncCtxPtr    ctx;
    xmlSecKeysMngrPtr  mngr;

    doc = xmlReadMemory(xml, strlen(xml), NULL, NULL, XML_PARSE_NONET);

    for (a = xmlDocGetRootElement(doc)->children; a; a = a->next) {
        if (a->type == XML_ELEMENT_NODE
            && strcmp((const char *) a->name, "Assertion") == 0)
        {
            break;
        }
    }

    ea = xmlNewDocNode(doc, a->ns, (const xmlChar *) "EncryptedAssertion",
                       NULL);
    xmlAddPrevSibling(a, ea);
    xmlUnlinkNode(a);
    xmlAddChild(ea, a);

    tmpl = xmlSecTmplEncDataCreate(doc, data, NULL, xmlSecTypeEncElement,
                                   NULL, NULL);
    xmlSecTmplEncDataEnsureCipherValue(tmpl);
    ki = xmlSecTmplEncDataEnsureKeyInfo(tmpl, NULL);
    ek = xmlSecTmplKeyInfoAddEncryptedKey(ki, xmlSecTransformRsaOaepId,
                                          NULL, NULL, NULL);
    xmlSecTmplEncDataEnsureCipherValue(ek);

    mngr = xmlSecKeysMngrCreate();
    xmlSecCryptoAppDefaultKeysMngrInit(mngr);
    key = xmlSecCryptoAppKeyLoadMemory((const xmlSecByte *) sp.cert_pem,
                                       strlen(sp.cert_pem),
                                       xmlSecKeyDataFormatCertPem,
                                       NULL, NULL, NULL);
    xmlSecCryptoAppDefaultKeysMngrAdoptKey(mngr, key);

    ctx = xmlSecEncCtxCreate(mngr);
    ctx->encKey = xmlSecKeyGenerate(xmlSecKeyDataAesId,
                                    data == xmlSecTransformAes256GcmId
                                    ? 256 : 128,
                                    xmlSecKeyDataTypeSession);

    if (ctx->encKey == NULL || xmlSecEncCtxXmlEncrypt(ctx, tmpl, a) < 0) {
        fprintf(stderr, "xmlsec_encrypt: failed\n");
        exit(2);
    }

    xmlSecEncCtxDestroy(ctx);
    xmlSecKeysMngrDestroy(mngr);

    xmlDocDumpMemory(doc, &out, &n);
    s = keep(malloc(n + 1));
    memcpy(s, out, n);
    s[n] = '\0';
    xmlFree(out);
    xmlFreeDoc(doc);

    return s;
}


static void
test_encrypted(void)
{
    int                 ok, k, dt, lay;
    char               *xml, *signed_xml, *a, *name;
    enc_t               p;
    ent_saml_result_t   r;
    ent_saml_expect_t   e;
    ent_saml_keys_t    *keys;
    doc_t               d;

    static const char  *data[] = { DATA_AES128_GCM, DATA_AES256_GCM,
                                   DATA_AES128_CBC, DATA_AES256_CBC };

    expect_defaults(&e);
    e.sp_key_pem = sp.key_pem;
    defaults(&d);

    signed_xml = sign(build(&d), SIGN_ASSERTION, &idp);

    /* every allowed combination, both places of the EncryptedKey */

    for (k = 0; k < 4; k++) {
        for (dt = 0; dt < 4; dt++) {
            for (lay = 0; lay < 2; lay++) {
                enc_defaults(&p);
                p.data = data[dt];
                p.sibling = lay;

                switch (k) {
                case 0:
                    break;
                case 1:
                    p.md = EVP_sha256();
                    p.md_uri = "http://www.w3.org/2001/04/xmlenc#sha256";
                    break;
                case 2:
                    p.kt = KT_OAEP11;
                    break;
                default:
                    p.kt = KT_OAEP11;
                    p.md = EVP_sha256();
                    p.md_uri = "http://www.w3.org/2001/04/xmlenc#sha256";
                    p.mgf = EVP_sha256();
                    p.mgf_uri = "http://www.w3.org/2009/xmlenc11#mgf1sha256";
                }

                name = str("encrypted: %s%s, %s, EncryptedKey %s",
                           k < 2 ? "rsa-oaep-mgf1p" : "xmlenc11 rsa-oaep",
                           k == 1 || k == 3 ? " (SHA-256)" : "",
                           strchr(p.data, '#') + 1,
                           lay ? "next to EncryptedData" : "in KeyInfo");

                ok = run(encrypt_in(signed_xml, &p), &e, &r) == ENT_SAML_OK
                     && strcmp(r.name_id, "alice@example.com") == 0
                     && r.assertion_signed && r.assertion_encrypted
                     && !r.response_signed && r.nattrs == 3
                     && strcmp(r.assertion_id, "_a1") == 0;
                check(ok, name);
                ent_saml_result_free(&r);
            }
        }
    }

    /* other digests and MGFs */

    enc_defaults(&p);
    p.kt = KT_OAEP11;
    p.md = EVP_sha512();
    p.md_uri = "http://www.w3.org/2001/04/xmlenc#sha512";
    p.mgf = EVP_sha384();
    p.mgf_uri = "http://www.w3.org/2009/xmlenc11#mgf1sha384";
    check(run(encrypt_in(signed_xml, &p), &e, &r) == ENT_SAML_OK,
          "encrypted: OAEP SHA-512 with MGF1 SHA-384");
    ent_saml_result_free(&r);

    enc_defaults(&p);
    p.label = "a label";
    xml = encrypt_in(signed_xml, &p);
    check(run(xml, &e, &r) == ENT_SAML_OK, "encrypted: OAEPparams");
    ent_saml_result_free(&r);

    fails(replace(xml, b64n((const unsigned char *) "a label", 7),
                  b64n((const unsigned char *) "b label", 7)),
          &e, ENT_SAML_DECRYPT, "cannot decrypt the assertion",
          "encrypted: another OAEPparams");

    fails(replace(xml, "</xenc:OAEPparams>",
                  "</xenc:OAEPparams><xenc:OAEPparams/>"),
          &e, ENT_SAML_DECRYPT, "key transport parameter is not allowed",
          "encrypted: two OAEPparams");

    /* xmlsec as the writer */

    check(run(xmlsec_encrypt(signed_xml, xmlSecTransformAes128CbcId), &e, &r)
          == ENT_SAML_OK && r.assertion_encrypted,
          "encrypted: by xmlsec, aes128-cbc, rsa-oaep-mgf1p");
    ent_saml_result_free(&r);

    check(run(xmlsec_encrypt(signed_xml, xmlSecTransformAes256GcmId), &e, &r)
          == ENT_SAML_OK && r.assertion_encrypted,
          "encrypted: by xmlsec, aes256-gcm, rsa-oaep-mgf1p");
    ent_saml_result_free(&r);

    /* prepared key, PKCS#1 key, key length given */

    keys = ent_saml_sp_key_load(sp.key_pem, strlen(sp.key_pem), err,
                                sizeof(err));
    e.sp_key_pem = NULL;
    e.sp_keys = keys;
    enc_defaults(&p);
    xml = encrypt_in(signed_xml, &p);
    check(keys && run(xml, &e, &r) == ENT_SAML_OK,
          "encrypted: prepared SP key");
    ent_saml_result_free(&r);
    check(run(xml, &e, &r) == ENT_SAML_OK,
          "encrypted: prepared SP key reused");
    ent_saml_result_free(&r);
    ent_saml_keys_free(keys);

    /* an EC SP key loads: it only signs, so only encryption is refused */

    keys = ent_saml_sp_key_load(ec.key_pem, strlen(ec.key_pem), err,
                                sizeof(err));
    e.sp_keys = keys;
    check(keys && run(signed_xml, &e, &r) == ENT_SAML_OK,
          "encrypted: an EC SP key, an unencrypted response accepted");
    ent_saml_result_free(&r);
    fails(xml, &e, ENT_SAML_UNSUPPORTED, "encrypted assertions are not "
          "supported: the SP key is not an RSA key",
          "encrypted: a prepared EC SP key cannot decrypt");
    ent_saml_keys_free(keys);

    keys = ent_saml_keys_load(idp.cert_pem, strlen(idp.cert_pem), err,
                              sizeof(err));
    e.sp_keys = keys;
    fails(xml, &e, ENT_SAML_INTERNAL, "sp_keys is not an SP key",
          "encrypted: IdP certificates are not an SP key");
    ent_saml_keys_free(keys);
    e.sp_keys = NULL;

    e.sp_key_pem = sp.key_rsa_pem;
    check(run(xml, &e, &r) == ENT_SAML_OK, "encrypted: PKCS#1 SP key");
    ent_saml_result_free(&r);

    e.sp_key_pem = str("%s trailing", sp.key_pem);
    e.sp_key_len = strlen(sp.key_pem);
    check(run(xml, &e, &r) == ENT_SAML_OK, "encrypted: sp_key_len");
    ent_saml_result_free(&r);
    e.sp_key_len = 0;

    e.sp_key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                   "-----END PRIVATE KEY-----\n";
    fails(xml, &e, ENT_SAML_INTERNAL, "SP private key cannot be loaded",
          "encrypted: a broken SP key is an internal error");

    e.sp_key_pem = ec.key_pem;
    fails(xml, &e, ENT_SAML_UNSUPPORTED, "encrypted assertions are not "
          "supported: the SP key is not an RSA key",
          "encrypted: an EC SP key cannot decrypt");

    e.sp_key_pem = idp.cert_pem;
    fails(xml, &e, ENT_SAML_INTERNAL, "SP private key cannot be loaded",
          "encrypted: a certificate is not an SP key");

    e.sp_key_pem = sp.key_enc_pem;
    fails(xml, &e, ENT_SAML_INTERNAL, "SP private key cannot be loaded",
          "encrypted: an encrypted SP key is refused, no prompt");

    e.sp_key_pem = sp.key_pem;

    /* without a key it stays unsupported */

    e.sp_key_pem = NULL;
    fails(xml, &e, ENT_SAML_UNSUPPORTED,
          "encrypted assertions are not supported",
          "encrypted: no SP key, unsupported");
    e.sp_key_pem = sp.key_pem;

    /* refused algorithms */

    enc_defaults(&p);
    p.kt = KT_PKCS1;
    fails(encrypt_in(signed_xml, &p), &e, ENT_SAML_DECRYPT,
          "key transport algorithm is not allowed",
          "encrypted: rsa-1_5 refused");

    enc_defaults(&p);
    p.md_uri = "http://www.w3.org/2001/04/xmldsig-more#md5";
    fails(encrypt_in(signed_xml, &p), &e, ENT_SAML_DECRYPT,
          "key transport digest is not allowed",
          "encrypted: OAEP with MD5 refused");

    enc_defaults(&p);
    p.kt = KT_OAEP11;
    p.mgf_uri = "http://www.w3.org/2009/xmlenc11#mgf1md5";
    fails(encrypt_in(signed_xml, &p), &e, ENT_SAML_DECRYPT,
          "key transport MGF is not allowed",
          "encrypted: an unknown MGF refused");

    enc_defaults(&p);
    p.mgf_uri = "http://www.w3.org/2009/xmlenc11#mgf1sha256";
    fails(encrypt_in(signed_xml, &p), &e, ENT_SAML_DECRYPT,
          "key transport parameter is not allowed",
          "encrypted: no MGF element with rsa-oaep-mgf1p");

    enc_defaults(&p);
    p.data = "http://www.w3.org/2001/04/xmlenc#aes192-cbc";
    fails(encrypt_in(signed_xml, &p), &e, ENT_SAML_DECRYPT,
          "data encryption algorithm is not allowed",
          "encrypted: aes192-cbc refused");

    enc_defaults(&p);
    xml = encrypt_in(signed_xml, &p);
    fails(replace(xml, DATA_AES128_GCM,
                  "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"),
          &e, ENT_SAML_DECRYPT, "data encryption algorithm is not allowed",
          "encrypted: tripledes-cbc refused");

    /* cryptographic failures: one message */

    enc_defaults(&p);
    p.rsa = attacker.key;
    fails(encrypt_in(signed_xml, &p), &e, ENT_SAML_DECRYPT,
          "cannot decrypt the assertion",
          "encrypted: for another SP's key");

    enc_defaults(&p);
    p.tamper = 1;
    fails(encrypt_in(signed_xml, &p), &e, ENT_SAML_DECRYPT,
          "cannot decrypt the assertion",
          "encrypted: tampered GCM ciphertext");

    enc_defaults(&p);
    p.data = DATA_AES128_CBC;
    p.tamper = 1;
    fails(encrypt_in(signed_xml, &p), &e, ENT_SAML_DECRYPT,
          "cannot decrypt the assertion",
          "encrypted: tampered CBC ciphertext");

    enc_defaults(&p);
    p.key_len = 16;
    p.data = DATA_AES256_GCM;
    fails(encrypt_in(signed_xml, &p), &e, ENT_SAML_DECRYPT,
          "cannot decrypt the assertion",
          "encrypted: a 128-bit key for aes256-gcm");

    enc_defaults(&p);
    p.wrap_len = 32;
    fails(encrypt_in(signed_xml, &p), &e, ENT_SAML_DECRYPT,
          "cannot decrypt the assertion",
          "encrypted: a 256-bit key for aes128-gcm");

    enc_defaults(&p);
    p.md = EVP_sha256();
    fails(encrypt_in(signed_xml, &p), &e, ENT_SAML_DECRYPT,
          "cannot decrypt the assertion",
          "encrypted: OAEP digest other than the one declared");

    enc_defaults(&p);
    xml = encrypt_in(signed_xml, &p);
    fails(replace(xml, "<xenc:CipherValue>", "<xenc:CipherValue>!"),
          &e, ENT_SAML_DECRYPT, "cannot decrypt the assertion",
          "encrypted: key CipherValue not base64");

    /* well-formedness of the plaintext is not told apart either */

    a = between(signed_xml, "<saml:Assertion", "</saml:Assertion>");

    enc_defaults(&p);
    fails(replace(signed_xml, a, encrypt_xml(str("%.100s", a), &p)), &e,
          ENT_SAML_DECRYPT, "cannot decrypt the assertion",
          "encrypted: a truncated plaintext");

    fails(replace(signed_xml, a,
                  encrypt_xml(str("<!DOCTYPE x [<!ENTITY e \"x\">]>%s", a),
                              &p)),
          &e, ENT_SAML_DECRYPT, "cannot decrypt the assertion",
          "encrypted: a DOCTYPE in the plaintext");

    fails(replace(signed_xml, a,
                  encrypt_xml(replace(a, "alice@example.com</saml:NameID>",
                                      "&xxe;</saml:NameID>"), &p)),
          &e, ENT_SAML_DECRYPT, "cannot decrypt the assertion",
          "encrypted: an entity reference in the plaintext");

    fails(replace(signed_xml, a, encrypt_xml(str("%s%s", a, a), &p)), &e,
          ENT_SAML_MALFORMED, "decrypted data is not one Assertion",
          "encrypted: two Assertions in the plaintext");

    fails(replace(signed_xml, a,
                  encrypt_xml("<saml:Issuer>" IDP "</saml:Issuer>", &p)),
          &e, ENT_SAML_MALFORMED, "decrypted data is not one Assertion",
          "encrypted: a plaintext that is not an Assertion");

    fails(replace(signed_xml, a, encrypt_xml(str("text%s", a), &p)), &e,
          ENT_SAML_MALFORMED, "decrypted data is not one Assertion",
          "encrypted: text next to the Assertion");

    check(run(replace(signed_xml, a,
                      encrypt_xml(str("<!-- c -->\n%s\n", a), &p)),
              &e, &r) == ENT_SAML_OK,
          "encrypted: a comment and white space around are fine");
    ent_saml_result_free(&r);

    check(run(replace(signed_xml, a,
                      encrypt_xml(replace(a, "<saml:Assertion ",
                                          "<saml:Assertion xmlns:saml=\""
                                          "urn:oasis:names:tc:SAML:2.0:"
                                          "assertion\" "), &p)),
              &e, &r) == ENT_SAML_OK,
          "encrypted: a plaintext with its own namespace declaration");
    ent_saml_result_free(&r);

    fails(replace(signed_xml, a,
                  encrypt_xml(replace(a, "<saml:Assertion ",
                                      "<saml:Assertion xml:id=\"x\" "),
                              &p)),
          &e, ENT_SAML_MALFORMED, "xml:id is not allowed",
          "encrypted: xml:id in the plaintext");

    /* structure */

    enc_defaults(&p);
    xml = encrypt_in(signed_xml, &p);

    fails(replace(xml, "</saml:EncryptedAssertion>",
                  "</saml:EncryptedAssertion>"
                  "<saml:EncryptedAssertion/>"),
          &e, ENT_SAML_MALFORMED, "more than one EncryptedAssertion",
          "encrypted: two EncryptedAssertions");

    fails(replace(xml, "</saml:EncryptedAssertion>",
                  str("</saml:EncryptedAssertion>%s", a)),
          &e, ENT_SAML_MALFORMED,
          "both an Assertion and an EncryptedAssertion",
          "encrypted: and a plain Assertion");

    fails(replace(xml, "<saml:EncryptedAssertion>",
                  str("<samlp:Extensions>%s</samlp:Extensions>"
                      "<saml:EncryptedAssertion>", a)),
          &e, ENT_SAML_MALFORMED,
          "both an Assertion and an EncryptedAssertion",
          "encrypted: and an Assertion hidden in Extensions");

    fails(replace(replace(xml, "<saml:EncryptedAssertion>",
                          "<samlp:Extensions><saml:EncryptedAssertion>"),
                  "</saml:EncryptedAssertion>",
                  str("</saml:EncryptedAssertion></samlp:Extensions>%s",
                      encrypt_xml(a, &p))),
          &e, ENT_SAML_MALFORMED, "more than one EncryptedAssertion",
          "encrypted: a second one hidden in Extensions");

    fails(replace(xml, "<saml:EncryptedAssertion>",
                  "<saml:EncryptedAssertion><saml:Foo/>"),
          &e, ENT_SAML_MALFORMED, "EncryptedAssertion is not valid",
          "encrypted: an unknown child");

    fails(replace(xml, "</saml:EncryptedAssertion>",
                  str("%s</saml:EncryptedAssertion>",
                      between(xml, "<xenc:EncryptedData",
                              "</xenc:EncryptedData>"))),
          &e, ENT_SAML_MALFORMED, "EncryptedAssertion is not valid",
          "encrypted: two EncryptedData");

    fails(replace(xml, between(xml, "<ds:KeyInfo", "</ds:KeyInfo>"), ""),
          &e, ENT_SAML_DECRYPT, "EncryptedAssertion has no EncryptedKey",
          "encrypted: no EncryptedKey");

    fails(replace(xml, "Type=\"http://www.w3.org/2001/04/xmlenc#Element\"",
                  "Type=\"http://www.w3.org/2001/04/xmlenc#Content\""),
          &e, ENT_SAML_MALFORMED, "EncryptedData is not an encrypted element",
          "encrypted: Type Content refused");

    fails(replace(xml, "<xenc:CipherData><xenc:CipherValue>",
                  "<xenc:CipherData><xenc:CipherReference URI=\""
                  "http://evil.example/x\"/><xenc:CipherValue>"),
          &e, ENT_SAML_MALFORMED, "EncryptedKey has no CipherValue",
          "encrypted: a CipherReference is never followed");

    name = between(xml, "</ds:KeyInfo>", "</xenc:CipherData>");
    fails(replace(xml, name,
                  "</ds:KeyInfo><xenc:CipherData><xenc:CipherReference URI="
                  "\"http://evil.example/x\"/></xenc:CipherData>"),
          &e, ENT_SAML_MALFORMED, "EncryptedData has no CipherValue",
          "encrypted: no data CipherValue");

    fails(replace(xml, "<ds:KeyInfo", "<ds:KeyInfo xmlns:ds=\"http://www.w3"
                  ".org/2000/09/xmldsig#\"/><ds:KeyInfo"),
          &e, ENT_SAML_MALFORMED, "EncryptedData is not valid",
          "encrypted: two KeyInfo");

    xml = encrypt_in(signed_xml, &p);
    name = between(xml, "<xenc:EncryptedKey", "</xenc:EncryptedKey>");
    xml = replace(xml, name, str("%s%s%s%s", name, name, name, name));
    check(run(xml, &e, &r) == ENT_SAML_OK,
          "encrypted: four EncryptedKeys are tried");
    ent_saml_result_free(&r);

    fails(replace(xml, name, str("%s%s", name, name)),
          &e, ENT_SAML_MALFORMED, "too many EncryptedKeys",
          "encrypted: five EncryptedKeys");

    /* several EncryptedKeys: one for another SP, then ours */

    enc_defaults(&p);
    p.rsa = attacker.key;
    name = between(encrypt_in(signed_xml, &p), "<xenc:EncryptedKey",
                   "</xenc:EncryptedKey>");
    p.rsa = sp.key;
    xml = encrypt_in(signed_xml, &p);
    check(run(replace(xml, "<xenc:EncryptedKey",
                      str("%s<xenc:EncryptedKey", name)), &e, &r)
          == ENT_SAML_OK, "encrypted: the EncryptedKey for us is found");
    ent_saml_result_free(&r);

    /* signatures: the Response's is checked before decrypting */

    enc_defaults(&p);
    xml = sign(encrypt_in(build(&d), &p), SIGN_RESPONSE, &idp);
    check(run(xml, &e, &r) == ENT_SAML_OK && r.response_signed
          && !r.assertion_signed && r.assertion_encrypted,
          "encrypted: a signed Response over an unsigned Assertion");
    ent_saml_result_free(&r);

    e.require_signed_assertion = 1;
    fails(xml, &e, ENT_SAML_SIGNATURE, "the Assertion is not signed",
          "encrypted: the Assertion must be signed when required");
    e.require_signed_assertion = 0;

    name = between(xml, "<xenc:CipherValue>", "</xenc:CipherValue>");
    fails(replace(xml, name, str("<xenc:CipherValue>AAAA%s",
                                 name + strlen("<xenc:CipherValue>") + 4)),
          &e, ENT_SAML_SIGNATURE, "signature verification failed",
          "encrypted: a tampered ciphertext breaks the Response signature");

    enc_defaults(&p);
    p.rsa = attacker.key;
    fails(sign(encrypt_in(build(&d), &p), SIGN_RESPONSE, &attacker), &e,
          ENT_SAML_SIGNATURE, "signature verification failed",
          "encrypted: an attacker-signed Response is not decrypted");

    enc_defaults(&p);
    fails(encrypt_in(build(&d), &p), &e, ENT_SAML_SIGNATURE,
          "neither Response nor Assertion is signed",
          "encrypted: unsigned Assertion in an unsigned Response");

    fails(encrypt_in(sign(build(&d), SIGN_ASSERTION, &attacker), &p), &e,
          ENT_SAML_SIGNATURE, "signature verification failed",
          "encrypted: an Assertion signed by another key");

    /* the decrypted Assertion gets every check */

    defaults(&d);
    d.issuer = "https://evil.example";
    fails(encrypt_in(sign(build(&d), SIGN_ASSERTION, &idp), &p), &e,
          ENT_SAML_INVALID, "Assertion Issuer is not the IdP",
          "encrypted: wrong Issuer inside");

    defaults(&d);
    d.assert_id = "_resp1";
    fails(encrypt_in(sign(build(&d), SIGN_ASSERTION, &idp), &p), &e,
          ENT_SAML_MALFORMED, "duplicate ID in the document",
          "encrypted: the Assertion's ID is the Response's");

    defaults(&d);
    d.nooa = NOW - 600;
    fails(encrypt_in(sign(build(&d), SIGN_ASSERTION, &idp), &p), &e,
          ENT_SAML_INVALID, "Assertion has expired",
          "encrypted: an expired Assertion");

    defaults(&d);
    xml = sign(build(&d), SIGN_ASSERTION, &idp);
    a = between(xml, "<saml:Assertion", "</saml:Assertion>");
    fails(replace(xml, a,
                  encrypt_xml(replace(a, "</saml:Subject>",
                                      "</saml:Subject><saml:Advice>"
                                      "<saml:EncryptedAssertion/>"
                                      "</saml:Advice>"), &p)),
          &e, ENT_SAML_MALFORMED,
          "both an Assertion and an EncryptedAssertion",
          "encrypted: an EncryptedAssertion inside the decrypted one");

    /* the base64 entry point */

    xml = b64(encrypt_in(signed_xml, &p), 1);
    memset(err, 0, sizeof(err));
    check(ent_saml_response_check((const unsigned char *) xml, strlen(xml),
                                  &e, &r, err, sizeof(err)) == ENT_SAML_OK
          && r.assertion_encrypted, "encrypted: base64 form value");
    ent_saml_result_free(&r);
}


static void
test_request_xml(void)
{
    char       *out, *old;
    size_t      n;
    xmlDocPtr   doc;

    check(ent_saml_authn_request_xml(SP, ACS "?a=1&b=2", "https://idp.example"
                                     "/sso", "_r1", NOW, NULL, 0, &out, &n)
          == 0 && n == strlen(out), "AuthnRequest XML built");

    check(strncmp(out, "<samlp:AuthnRequest ", 20) == 0
          && strstr(out, " ID=\"_r1\"")
          && strstr(out, " IssueInstant=\"2023-11-14T22:13:20Z\"")
          && strstr(out, " AssertionConsumerServiceURL=\"" ACS
                    "?a=1&amp;b=2\"")
          && strstr(out, "<samlp:NameIDPolicy Format=\"urn:oasis:names:tc:"
                    "SAML:1.1:nameid-format:emailAddress\" AllowCreate="
                    "\"true\"/>")
          && strstr(out, "ForceAuthn") == NULL,
          "AuthnRequest XML: emailAddress by default, no ForceAuthn");

    doc = xmlReadMemory(out, n, NULL, NULL, XML_PARSE_NONET);
    check(doc != NULL, "AuthnRequest XML is well-formed");
    xmlFreeDoc(doc);
    free(out);

    check(ent_saml_authn_request_xml(SP, ACS, IDP, "_r1", NOW,
                                     "urn:oasis:names:tc:SAML:2.0:nameid-"
                                     "format:persistent", 1, &out, &n) == 0
          && strstr(out, " ForceAuthn=\"true\"")
          && strstr(out, "Format=\"urn:oasis:names:tc:SAML:2.0:nameid-"
                    "format:persistent\""),
          "AuthnRequest XML: format and ForceAuthn");
    free(out);

    check(ent_saml_authn_request_xml(SP, ACS, IDP, "_r1", NOW, "", 0, &out,
                                     &n) == 0
          && strstr(out, "<samlp:NameIDPolicy AllowCreate=\"true\"/>"),
          "AuthnRequest XML: \"\" leaves Format out");
    old = out;

    check(ent_saml_authn_request(SP, ACS, IDP, "_r1", NOW, &out, &n) == 0
          && strcmp(inflate_param(out), old) == 0,
          "AuthnRequest: the deflated form is the XML without Format");
    free(out);
    free(old);

    check(ent_saml_authn_request_xml(SP, ACS, IDP, "_r1", NOW, "a\"b<",
                                     0, &out, &n) == 0
          && strstr(out, "Format=\"a&quot;b&lt;\""),
          "AuthnRequest XML: format escaped");
    free(out);

    check(ent_saml_authn_request_xml(SP, ACS, IDP, "1r", NOW, NULL, 0, &out,
                                     &n) == -1 && out == NULL
          && ent_saml_authn_request_xml(SP, ACS, IDP, "_r", NOW, "a\nb", 0,
                                        &out, &n) == -1
          && ent_saml_authn_request_xml(SP, "", IDP, "_r", NOW, NULL, 0,
                                        &out, &n) == -1
          && ent_saml_authn_request_xml(SP, ACS, NULL, "_r", NOW, NULL, 0,
                                        &out, &n) == -1,
          "AuthnRequest XML refuses bad input");
}


static void
test_logout_build(void)
{
    char               *out;
    size_t              n;
    ent_saml_logout_t   lo;

    check(ent_saml_logout_request_xml(SP, "https://idp.example/slo?x=1&y=2",
                                      "_lo1", NOW, "alice&bob@example.com",
                                      "urn:oasis:names:tc:SAML:1.1:"
                                      "nameid-format:emailAddress", "_s<1>",
                                      &out, &n) == 0
          && n == strlen(out), "LogoutRequest XML built");

    check(strncmp(out, "<samlp:LogoutRequest ", 21) == 0
          && strstr(out, " Destination=\"https://idp.example/slo?x=1&amp;"
                    "y=2\"")
          && strstr(out, ">alice&amp;bob@example.com</saml:NameID>")
          && strstr(out, "<samlp:SessionIndex>_s&lt;1&gt;"
                    "</samlp:SessionIndex>"),
          "LogoutRequest XML escaped");

    /* read back by our own check, the SP playing the IdP */

    check(ent_saml_logout_request_check((unsigned char *) out, n, SP,
                                        "https://idp.example/slo?x=1&y=2",
                                        NOW, SKEW, &lo, err, sizeof(err))
          == ENT_SAML_OK
          && strcmp(lo.name_id, "alice&bob@example.com") == 0
          && lo.nsession_indexes == 1
          && strcmp(lo.session_indexes[0], "_s<1>") == 0
          && strcmp(lo.id, "_lo1") == 0 && lo.issue_instant == NOW,
          "LogoutRequest XML reads back");
    ent_saml_logout_free(&lo);
    free(out);

    check(ent_saml_logout_request_xml(SP, IDP, "_lo1", NOW, "alice", NULL,
                                      NULL, &out, &n) == 0
          && strstr(out, "<saml:NameID>alice</saml:NameID>")
          && strstr(out, "SessionIndex") == NULL,
          "LogoutRequest XML without Format and SessionIndex");
    free(out);

    check(ent_saml_logout_request_xml(SP, IDP, "_lo1", NOW, "", NULL, NULL,
                                      &out, &n) == -1 && out == NULL
          && ent_saml_logout_request_xml(SP, IDP, "-x", NOW, "a", NULL, NULL,
                                         &out, &n) == -1
          && ent_saml_logout_request_xml(SP, IDP, "_x", NOW, "a\tb", NULL,
                                         NULL, &out, &n) == -1
          && ent_saml_logout_request_xml(SP, NULL, "_x", NOW, "a", NULL,
                                         NULL, &out, &n) == -1
          && ent_saml_logout_request_xml(SP, IDP, "_x", NOW, "a", NULL,
                                         "", &out, &n) == -1,
          "LogoutRequest XML refuses bad input");

    check(ent_saml_logout_response_xml(SP, "https://idp.example/slo",
                                       "_lr1", "_lo9", NOW, 1, &out, &n)
          == 0
          && strstr(out, " InResponseTo=\"_lo9\"")
          && strstr(out, "Value=\"urn:oasis:names:tc:SAML:2.0:status:"
                    "Success\""), "LogoutResponse XML, Success");

    check(ent_saml_logout_response_check((unsigned char *) out, n, SP,
                                         "https://idp.example/slo", "_lo9",
                                         NOW, SKEW, &lo, err, sizeof(err))
          == ENT_SAML_OK && lo.success
          && strcmp(lo.in_response_to, "_lo9") == 0,
          "LogoutResponse XML reads back");
    ent_saml_logout_free(&lo);
    free(out);

    check(ent_saml_logout_response_xml(SP, IDP, "_lr1", NULL, NOW, 0, &out,
                                       &n) == 0
          && strstr(out, "InResponseTo") == NULL
          && strstr(out, "status:Responder\""),
          "LogoutResponse XML, Responder");
    free(out);

    check(ent_saml_logout_response_xml(SP, IDP, "_lr1", "x\"y", NOW, 1,
                                       &out, &n) == -1 && out == NULL
          && ent_saml_logout_response_xml(SP, IDP, "", "_a", NOW, 1,
                                          &out, &n) == -1,
          "LogoutResponse XML refuses bad input");
}


#define SLO  "https://sp.example/_ent/saml/slo"
#define DEST " Destination=\"" SLO "\""

static char *
logout_req(const char *attrs, const char *body)
{
    return str("<samlp:LogoutRequest"
               " xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\""
               " xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\""
               " ID=\"_idplo1\" Version=\"2.0\" IssueInstant=\"%s\"%s>"
               "%s</samlp:LogoutRequest>", when(NOW - 5), attrs, body);
}


static int
lo_req(const char *xml, ent_saml_logout_t *lo)
{
    int  rc;

    memset(err, 0, sizeof(err));

    rc = ent_saml_logout_request_check((const unsigned char *) xml,
                                       strlen(xml), IDP, SLO, NOW, SKEW, lo,
                                       err, sizeof(err));
    if (rc != ENT_SAML_OK) {
        printf("# rc %d: %s\n", rc, err);
    }

    return rc;
}


static void
lo_req_fails(const char *xml, int rc, const char *msg, const char *name)
{
    int                got;
    ent_saml_logout_t  lo;

    got = lo_req(xml, &lo);

    check(got == rc && strcmp(err, msg) == 0 && lo.id == NULL
          && lo.name_id == NULL && lo.session_indexes == NULL, name);

    ent_saml_logout_free(&lo);
}


static void
test_logout_request(void)
{
    int                 i;
    char               *body, *xml, *many, *big;
    ent_saml_logout_t   lo;

    body = "<saml:Issuer>" IDP "</saml:Issuer>"
           "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">"
           "<ds:SignedInfo/></ds:Signature>"
           "<saml:NameID SPNameQualifier=\"" SP "\" Format=\"urn:oasis:"
           "names:tc:SAML:2.0:nameid-format:persistent\"> _p42 </saml:NameID>"
           "<samlp:SessionIndex>_s1</samlp:SessionIndex>"
           "<samlp:SessionIndex>_s2</samlp:SessionIndex>";

    xml = logout_req(str(" Destination=\"" SLO "\" NotOnOrAfter=\"%s\""
                         " Reason=\"urn:oasis:names:tc:SAML:2.0:logout:"
                         "user\"", when(NOW + 60)), body);

    check(lo_req(xml, &lo) == ENT_SAML_OK, "LogoutRequest passes");
    check(lo.id && strcmp(lo.id, "_idplo1") == 0
          && strcmp(lo.issuer, IDP) == 0 && strcmp(lo.name_id, "_p42") == 0
          && strcmp(lo.name_id_format, "urn:oasis:names:tc:SAML:2.0:"
                    "nameid-format:persistent") == 0
          && lo.nsession_indexes == 2
          && strcmp(lo.session_indexes[1], "_s2") == 0
          && lo.not_on_or_after == NOW + 60 && lo.issue_instant == NOW - 5,
          "LogoutRequest content");
    ent_saml_logout_free(&lo);
    check(lo.id == NULL && lo.session_indexes == NULL,
          "LogoutRequest freed");

    check(lo_req(logout_req(DEST, "<saml:Issuer>" IDP "</saml:Issuer>"
                            "<saml:NameID>a</saml:NameID>"), &lo)
          == ENT_SAML_OK && lo.name_id_format == NULL
          && lo.nsession_indexes == 0 && lo.not_on_or_after == 0,
          "LogoutRequest: minimal");
    ent_saml_logout_free(&lo);

    lo_req_fails(str("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
                     "%s", xml), ENT_SAML_MALFORMED, "DOCTYPE is not allowed",
                 "LogoutRequest: DOCTYPE");

    lo_req_fails(replace(xml, "<samlp:LogoutRequest", "<samlp:Logout"),
                 ENT_SAML_MALFORMED, "LogoutRequest is not well-formed XML",
                 "LogoutRequest: not XML");

    lo_req_fails(replace(replace(xml, "<samlp:LogoutRequest",
                                 "<samlp:AuthnRequest"),
                         "</samlp:LogoutRequest>", "</samlp:AuthnRequest>"),
                 ENT_SAML_MALFORMED, "root element is not a LogoutRequest",
                 "LogoutRequest: wrong root");

    lo_req_fails(replace(xml, "Version=\"2.0\"", "Version=\"1.1\""),
                 ENT_SAML_MALFORMED, "LogoutRequest Version is not 2.0",
                 "LogoutRequest: version");

    lo_req_fails(replace(xml, "ID=\"_idplo1\"", "ID=\"1\""),
                 ENT_SAML_MALFORMED, "LogoutRequest has no valid ID",
                 "LogoutRequest: bad ID");

    lo_req_fails(replace(xml, "<saml:Issuer>" IDP,
                         "<saml:Issuer>https://evil.example"),
                 ENT_SAML_INVALID, "LogoutRequest Issuer is not the IdP",
                 "LogoutRequest: wrong issuer");

    lo_req_fails(replace(xml, "<saml:Issuer>" IDP "</saml:Issuer>", ""),
                 ENT_SAML_INVALID, "LogoutRequest has no Issuer",
                 "LogoutRequest: no issuer");

    lo_req_fails(replace(xml, "</saml:Issuer>",
                         "</saml:Issuer><saml:Issuer>" IDP "</saml:Issuer>"),
                 ENT_SAML_INVALID, "LogoutRequest has no Issuer",
                 "LogoutRequest: two issuers");

    lo_req_fails(replace(xml, SLO, "https://evil.example/slo"),
                 ENT_SAML_INVALID,
                 "LogoutRequest Destination is not the SLO URL",
                 "LogoutRequest: wrong destination");

    /* signed, so it must name its Destination (bindings 3.4.5.2) */

    lo_req_fails(replace(xml, DEST, ""), ENT_SAML_INVALID,
                 "LogoutRequest has no Destination",
                 "LogoutRequest: no destination");

    lo_req_fails(replace(xml, when(NOW + 60), when(NOW - 61)),
                 ENT_SAML_INVALID, "LogoutRequest has expired",
                 "LogoutRequest: expired");

    lo_req_fails(replace(xml, when(NOW + 60), "tomorrow"),
                 ENT_SAML_INVALID, "LogoutRequest NotOnOrAfter is invalid",
                 "LogoutRequest: bad NotOnOrAfter");

    lo_req_fails(replace(xml, when(NOW - 5), when(NOW + 61)),
                 ENT_SAML_INVALID, "LogoutRequest issued in the future",
                 "LogoutRequest: issued in the future");

    /* its ID is remembered a day: an older one could be replayed */

    lo_req_fails(replace(xml, when(NOW - 5), when(NOW - 90000)),
                 ENT_SAML_INVALID, "LogoutRequest is too old",
                 "LogoutRequest: issued more than a day ago");

    lo_req_fails(replace(xml, when(NOW - 5),
                         when(NOW - (86400 - 2 * SKEW) - 1)),
                 ENT_SAML_INVALID, "LogoutRequest is too old",
                 "LogoutRequest: a second past the day, less the skews");

    memset(&lo, 0, sizeof(lo));
    check(lo_req(replace(xml, when(NOW - 5), when(NOW - (86400 - 2 * SKEW))),
                 &lo) == ENT_SAML_OK,
          "LogoutRequest: issued a day, less the skews, ago: taken");
    ent_saml_logout_free(&lo);

    lo_req_fails(replace(xml, when(NOW - 5), "2023-11-14"),
                 ENT_SAML_MALFORMED, "LogoutRequest has no valid IssueInstant",
                 "LogoutRequest: bad IssueInstant");

    lo_req_fails(replace(xml, between(xml, "<saml:NameID", "</saml:NameID>"),
                         ""),
                 ENT_SAML_INVALID, "LogoutRequest has no NameID",
                 "LogoutRequest: no NameID");

    lo_req_fails(replace(xml, "</saml:NameID>",
                         "</saml:NameID><saml:NameID>b</saml:NameID>"),
                 ENT_SAML_INVALID, "more than one NameID",
                 "LogoutRequest: two NameIDs");

    lo_req_fails(replace(xml, between(xml, "<saml:NameID", "</saml:NameID>"),
                         "<saml:EncryptedID/>"),
                 ENT_SAML_UNSUPPORTED, "encrypted NameIDs are not supported",
                 "LogoutRequest: EncryptedID");

    lo_req_fails(replace(xml, between(xml, "<saml:NameID", "</saml:NameID>"),
                         "<saml:BaseID NameQualifier=\"x\"/>"),
                 ENT_SAML_INVALID, "BaseID is not supported",
                 "LogoutRequest: BaseID");

    lo_req_fails(replace(xml, " _p42 ", "<x/>"),
                 ENT_SAML_INVALID, "NameID is not valid",
                 "LogoutRequest: an element in the NameID");

    lo_req_fails(replace(xml, " _p42 ", "a&#127;b"),
                 ENT_SAML_INVALID, "NameID is not valid",
                 "LogoutRequest: a control character in the NameID");

    lo_req_fails(replace(xml, " _p42 ", "  "),
                 ENT_SAML_INVALID, "NameID is not valid",
                 "LogoutRequest: an empty NameID");

    big = keep(malloc(ENT_SAML_MAX_VALUE_LEN + 2));
    memset(big, 'a', ENT_SAML_MAX_VALUE_LEN + 1);
    big[ENT_SAML_MAX_VALUE_LEN + 1] = '\0';

    lo_req_fails(replace(xml, " _p42 ", big),
                 ENT_SAML_INVALID, "NameID is not valid",
                 "LogoutRequest: a huge NameID");

    lo_req_fails(replace(xml, ">_s1<", str(">%s<", big)),
                 ENT_SAML_INVALID, "SessionIndex is not valid",
                 "LogoutRequest: a huge SessionIndex");

    lo_req_fails(replace(xml, ">_s1<", "><"),
                 ENT_SAML_INVALID, "SessionIndex is not valid",
                 "LogoutRequest: an empty SessionIndex");

    many = "";

    for (i = 0; i < ENT_SAML_MAX_SESSION_INDEXES + 1; i++) {
        many = str("%s<samlp:SessionIndex>_s%d</samlp:SessionIndex>", many,
                   i);
    }

    lo_req_fails(logout_req(DEST, str("<saml:Issuer>" IDP "</saml:Issuer>"
                                    "<saml:NameID>a</saml:NameID>%s", many)),
                 ENT_SAML_INVALID, "too many SessionIndex values",
                 "LogoutRequest: 17 SessionIndex values");

    many = replace(many, "<samlp:SessionIndex>_s16</samlp:SessionIndex>", "");
    check(lo_req(logout_req(DEST, str("<saml:Issuer>" IDP "</saml:Issuer>"
                                    "<saml:NameID>a</saml:NameID>%s", many)),
                 &lo) == ENT_SAML_OK && lo.nsession_indexes == 16,
          "LogoutRequest: 16 SessionIndex values");
    ent_saml_logout_free(&lo);

    lo_req_fails(replace(xml, "<saml:Issuer>",
                         "<saml:Issuer Format=\"urn:oasis:names:tc:SAML:1.1:"
                         "nameid-format:emailAddress\">"),
                 ENT_SAML_INVALID, "LogoutRequest Issuer is not the IdP",
                 "LogoutRequest: Issuer with a user Format");

    big = keep(malloc(ENT_SAML_MAX_LEN + 2));
    memset(big, ' ', ENT_SAML_MAX_LEN + 1);
    big[ENT_SAML_MAX_LEN + 1] = '\0';

    lo_req_fails(str("%s%s", xml, big), ENT_SAML_MALFORMED,
                 "LogoutRequest too large", "LogoutRequest: too large");

    lo_req_fails("", ENT_SAML_MALFORMED, "empty LogoutRequest",
                 "LogoutRequest: empty");

    memset(err, 0, sizeof(err));
    check(ent_saml_logout_request_check((unsigned char *) xml, strlen(xml),
                                        NULL, SLO, NOW, SKEW, &lo, err,
                                        sizeof(err)) == ENT_SAML_INTERNAL,
          "LogoutRequest: no IdP given");
    ent_saml_logout_free(&lo);
}


static char *
logout_resp(const char *irt, const char *status)
{
    return str("<samlp:LogoutResponse"
               " xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\""
               " xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\""
               " ID=\"_idplr1\" Version=\"2.0\" IssueInstant=\"%s\""
               " Destination=\"" SLO "\"%s>"
               "<saml:Issuer>" IDP "</saml:Issuer>%s"
               "</samlp:LogoutResponse>", when(NOW - 5),
               irt ? str(" InResponseTo=\"%s\"", irt) : "", status);
}


static int
lo_resp(const char *xml, ent_saml_logout_t *lo)
{
    int  rc;

    memset(err, 0, sizeof(err));

    rc = ent_saml_logout_response_check((const unsigned char *) xml,
                                        strlen(xml), IDP, SLO, "_lo1", NOW,
                                        SKEW, lo, err, sizeof(err));
    if (rc != ENT_SAML_OK) {
        printf("# rc %d: %s\n", rc, err);
    }

    return rc;
}


static void
test_logout_response(void)
{
    int                 rc;
    char               *xml;
    ent_saml_logout_t   lo;

    xml = logout_resp("_lo1", ST_SUCCESS);

    check(lo_resp(xml, &lo) == ENT_SAML_OK && lo.success
          && strcmp(lo.status, ST_PREFIX "Success") == 0
          && strcmp(lo.in_response_to, "_lo1") == 0
          && strcmp(lo.id, "_idplr1") == 0, "LogoutResponse passes");
    ent_saml_logout_free(&lo);

    check(lo_resp(logout_resp("_lo1", "<samlp:Status><samlp:StatusCode Value="
                              "\"" ST_PREFIX "Responder\"><samlp:StatusCode"
                              " Value=\"" ST_PREFIX "RequestDenied\"/>"
                              "</samlp:StatusCode></samlp:Status>"), &lo)
          == ENT_SAML_OK && !lo.success
          && strcmp(lo.status, ST_PREFIX "Responder") == 0,
          "LogoutResponse: Responder is read, not success");
    ent_saml_logout_free(&lo);

    check(lo_resp(logout_resp("_lo1", "<samlp:Status><samlp:StatusCode Value="
                              "\"bad\tcode\"/></samlp:Status>"), &lo)
          == ENT_SAML_OK && !lo.success
          && strcmp(lo.status, "bad?code") == 0,
          "LogoutResponse: odd status reduced to printable ASCII");
    ent_saml_logout_free(&lo);

    rc = lo_resp(logout_resp("_other", ST_SUCCESS), &lo);
    check(rc == ENT_SAML_INVALID
          && strcmp(err, "InResponseTo does not match the request") == 0
          && lo.id == NULL, "LogoutResponse: wrong InResponseTo");
    ent_saml_logout_free(&lo);

    rc = lo_resp(logout_resp(NULL, ST_SUCCESS), &lo);
    check(rc == ENT_SAML_INVALID
          && strcmp(err, "InResponseTo does not match the request") == 0,
          "LogoutResponse: no InResponseTo");
    ent_saml_logout_free(&lo);

    rc = lo_resp(replace(xml, "<saml:Issuer>" IDP, "<saml:Issuer>x"), &lo);
    check(rc == ENT_SAML_INVALID
          && strcmp(err, "LogoutResponse Issuer is not the IdP") == 0,
          "LogoutResponse: wrong issuer");
    ent_saml_logout_free(&lo);

    rc = lo_resp(replace(xml, SLO, "https://evil.example/"), &lo);
    check(rc == ENT_SAML_INVALID
          && strcmp(err, "LogoutResponse Destination is not the SLO URL")
             == 0, "LogoutResponse: wrong destination");
    ent_saml_logout_free(&lo);

    rc = lo_resp(replace(xml, DEST, ""), &lo);
    check(rc == ENT_SAML_INVALID
          && strcmp(err, "LogoutResponse has no Destination") == 0,
          "LogoutResponse: no destination");
    ent_saml_logout_free(&lo);

    rc = lo_resp(logout_resp("_lo1", ""), &lo);
    check(rc == ENT_SAML_MALFORMED
          && strcmp(err, "LogoutResponse has no Status") == 0,
          "LogoutResponse: no Status");
    ent_saml_logout_free(&lo);

    rc = lo_resp(logout_resp("_lo1", "<samlp:Status/>"), &lo);
    check(rc == ENT_SAML_MALFORMED
          && strcmp(err, "LogoutResponse has no StatusCode") == 0,
          "LogoutResponse: no StatusCode");
    ent_saml_logout_free(&lo);

    rc = lo_resp(str("<!DOCTYPE x>%s", xml), &lo);
    check(rc == ENT_SAML_MALFORMED
          && strcmp(err, "DOCTYPE is not allowed") == 0,
          "LogoutResponse: DOCTYPE");
    ent_saml_logout_free(&lo);

    rc = lo_resp(logout_req(DEST, "<saml:Issuer>" IDP "</saml:Issuer>"
                            "<saml:NameID>a</saml:NameID>"), &lo);
    check(rc == ENT_SAML_MALFORMED
          && strcmp(err, "root element is not a LogoutResponse") == 0,
          "LogoutResponse: a LogoutRequest is not one");
    ent_saml_logout_free(&lo);

    rc = lo_resp(replace(xml, when(NOW - 5), when(NOW + 3600)), &lo);
    check(rc == ENT_SAML_INVALID
          && strcmp(err, "LogoutResponse issued in the future") == 0,
          "LogoutResponse: issued in the future");
    ent_saml_logout_free(&lo);

    memset(err, 0, sizeof(err));
    check(ent_saml_logout_response_check((unsigned char *) xml, strlen(xml),
                                         IDP, SLO, NULL, NOW, SKEW, &lo,
                                         err, sizeof(err))
          == ENT_SAML_INTERNAL, "LogoutResponse: a request ID is needed");
    ent_saml_logout_free(&lo);
}


/* percent-decode, base64-decode and inflate a SAMLRequest value */

static char *
inflate_param(const char *v)
{
    int             rawlen;
    char           *b, *p, *xml;
    size_t          i, n;
    z_stream        z;
    unsigned char  *raw;

    n = strlen(v);
    b = keep(malloc(n + 1));

    for (i = 0, p = b; i < n; i++) {
        if (v[i] == '%') {
            *p++ = v[i + 2] == 'B' ? '+' : v[i + 2] == 'F' ? '/' : '=';
            i += 2;

        } else {
            *p++ = v[i];
        }
    }

    *p = '\0';

    raw = keep(malloc(strlen(b) + 1));
    rawlen = EVP_DecodeBlock(raw, (unsigned char *) b, strlen(b));
    rawlen -= (strlen(b) > 0 && b[strlen(b) - 1] == '=')
              + (strlen(b) > 1 && b[strlen(b) - 2] == '=');

    xml = keep(malloc(65536));

    memset(&z, 0, sizeof(z_stream));
    inflateInit2(&z, -15);
    z.next_in = raw;
    z.avail_in = rawlen;
    z.next_out = (unsigned char *) xml;
    z.avail_out = 65535;
    inflate(&z, Z_FINISH);
    xml[z.total_out] = '\0';
    inflateEnd(&z);

    return xml;
}


/* a base64 DER with three more bytes after it */

static char *
der_plus(const char *b64s)
{
    int             n;
    unsigned char  *der;

    der = keep(malloc(strlen(b64s) + 3));
    n = EVP_DecodeBlock(der, (const unsigned char *) b64s, strlen(b64s));
    n -= (b64s[strlen(b64s) - 1] == '=') + (b64s[strlen(b64s) - 2] == '=');
    memcpy(der + n, "\x05\x00\x00", 3);

    return b64n(der, n + 3);
}


/* a base64 DER certificate with its RSA modulus' length made invalid */

static char *
der_break_key(const char *b64s)
{
    int             n, i;
    unsigned char  *der;

    der = keep(malloc(strlen(b64s)));
    n = EVP_DecodeBlock(der, (const unsigned char *) b64s, strlen(b64s));
    n -= (b64s[strlen(b64s) - 1] == '=') + (b64s[strlen(b64s) - 2] == '=');

    for (i = 0; i + 4 < n; i++) {
        if (memcmp(der + i, "\x02\x82\x01\x01\x00", 5) == 0) {
            der[i + 1] = 0xc2;
            break;
        }
    }

    return b64n(der, n);
}


static void
test_metadata_ex(void)
{
    char        *out, *der;
    size_t       n;
    xmlDocPtr    doc;

    check(ent_saml_sp_metadata_ex(SP, ACS, SLO "?a=<1>&b", sp.cert_pem,
                                  NULL, 1, &out, &n) == 0
          && n == strlen(out), "SP metadata with keys built");

    doc = xmlReadMemory(out, n, NULL, NULL, XML_PARSE_NONET);
    check(doc != NULL, "SP metadata with keys is well-formed");
    xmlFreeDoc(doc);

    der = cert_b64(sp.cert_pem);

    check(strstr(out, "AuthnRequestsSigned=\"true\"")
          && strstr(out, "<md:KeyDescriptor use=\"signing\">")
          && strstr(out, "<md:KeyDescriptor use=\"encryption\">")
          && strstr(out, str("<ds:X509Certificate>%s</ds:X509Certificate>",
                             der))
          && strstr(strstr(out, str("<ds:X509Certificate>%s", der)) + 10,
                    str("<ds:X509Certificate>%s", der)),
          "SP metadata: the certificate for signing and encryption");

    check(strstr(out, "<md:EncryptionMethod Algorithm=\"http://www.w3.org/"
                 "2009/xmlenc11#aes256-gcm\"/>")
          && strstr(out, "<md:EncryptionMethod Algorithm=\"http://www.w3.org/"
                    "2001/04/xmlenc#aes128-cbc\"/>")
          && strstr(out, "<md:EncryptionMethod Algorithm=\"http://www.w3.org/"
                    "2009/xmlenc11#rsa-oaep\"/>")
          && strstr(out, "rsa-1_5") == NULL,
          "SP metadata: the accepted EncryptionMethods");

    check(strstr(out, "<md:SingleLogoutService Binding=\"urn:oasis:names:tc:"
                 "SAML:2.0:bindings:HTTP-Redirect\" Location=\"" SLO
                 "?a=&lt;1&gt;&amp;b\"/>")
          && strstr(out, "emailAddress</md:NameIDFormat>")
          && strstr(out, "</md:KeyDescriptor>\n    <md:SingleLogoutService")
          && strstr(out, "</md:NameIDFormat>\n    <md:AssertionConsumer"),
          "SP metadata: SLO escaped, elements in schema order");
    free(out);

    check(ent_saml_sp_metadata_ex(SP, ACS, NULL, ec.cert_pem, NULL, 1, &out,
                                  &n) == 0
          && strstr(out, "<md:KeyDescriptor use=\"signing\">")
          && strstr(out, "use=\"encryption\"") == NULL
          && strstr(out, "EncryptionMethod") == NULL,
          "SP metadata: an EC certificate is for signing only");
    free(out);

    check(ent_saml_sp_metadata_ex(SP, ACS, NULL, NULL, "urn:x:<y>", 0, &out,
                                  &n) == 0
          && strstr(out, "KeyDescriptor") == NULL
          && strstr(out, "SingleLogoutService") == NULL
          && strstr(out, "xmlns:ds") == NULL
          && strstr(out, "<md:NameIDFormat>urn:x:&lt;y&gt;</md:NameIDFormat>"),
          "SP metadata: no keys, no SLO, custom format");
    free(out);

    check(ent_saml_sp_metadata_ex(SP, ACS, NULL, "not a certificate", NULL,
                                  0, &out, &n) == -1 && out == NULL
          && ent_saml_sp_metadata_ex(SP, ACS, NULL, sp.key_pem, NULL, 0,
                                     &out, &n) == -1
          && ent_saml_sp_metadata_ex(SP, ACS, "a\nb", NULL, NULL, 0, &out,
                                     &n) == -1
          && ent_saml_sp_metadata_ex(SP, ACS, NULL, NULL, "", 0, &out, &n)
             == -1, "SP metadata refuses bad input");

    check(ent_saml_sp_metadata_ex(SP, ACS, NULL,
                                  str("%s%s", sp.cert_pem, idp.cert_pem),
                                  NULL, 0, &out, &n) == 0
          && strstr(out, der) && strstr(out, cert_b64(idp.cert_pem)) == NULL,
          "SP metadata: the first certificate of a list");
    free(out);
}


#define MD_NS   "urn:oasis:names:tc:SAML:2.0:metadata"
#define DS_NS   "http://www.w3.org/2000/09/xmldsig#"
#define PROTO   "urn:oasis:names:tc:SAML:2.0:protocol"
#define B_REDIR "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
#define B_POST  "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


static char *
md_key(const char *use, const char *b64)
{
    return str("<md:KeyDescriptor%s%s%s><ds:KeyInfo xmlns:ds=\"" DS_NS "\">"
               "<ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate>"
               "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>",
               use ? " use=\"" : "", use ? use : "", use ? "\"" : "", b64);
}


/* an Okta-like EntityDescriptor */

static char *
md_okta(const char *entity, const char *keys, const char *sso)
{
    return str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
               "<md:EntityDescriptor xmlns:md=\"" MD_NS "\" entityID=\"%s\">"
               "<md:IDPSSODescriptor WantAuthnRequestsSigned=\"false\""
               " protocolSupportEnumeration=\"" PROTO "\">%s"
               "<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:"
               "unspecified</md:NameIDFormat>"
               "<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:"
               "emailAddress</md:NameIDFormat>%s"
               "</md:IDPSSODescriptor></md:EntityDescriptor>",
               entity, keys, sso);
}


static int
md_parse(const char *xml, const char *entity, ent_saml_idp_metadata_t *md)
{
    int  rc;

    memset(err, 0, sizeof(err));

    rc = ent_saml_idp_metadata_parse((const unsigned char *) xml,
                                     strlen(xml), entity, md, err,
                                     sizeof(err));
    if (rc != ENT_SAML_OK) {
        printf("# rc %d: %s\n", rc, err);
    }

    return rc;
}


static void
md_fails(const char *xml, const char *entity, int rc, const char *msg,
    const char *name)
{
    int                      got;
    ent_saml_idp_metadata_t  md;

    got = md_parse(xml, entity, &md);

    check(got == rc && strcmp(err, msg) == 0 && md.entity_id == NULL
          && md.certs == NULL && md.ncerts == 0, name);

    ent_saml_idp_metadata_free(&md);
}


static void
test_idp_metadata(void)
{
    int                      i;
    char                    *okta, *sso, *idp64, *att64, *ec64, *entra;
    char                    *ssp, *fed, *xml, *keys, *big;
    ent_saml_idp_metadata_t  md;

    idp64 = cert_b64(idp.cert_pem);
    att64 = cert_b64(attacker.cert_pem);
    ec64 = cert_b64(ec.cert_pem);

    sso = "<md:SingleSignOnService Binding=\"" B_POST "\" Location=\""
          "https://dev-1.okta.com/app/dev-1_app_1/exk1/sso/saml\"/>"
          "<md:SingleSignOnService Binding=\"" B_REDIR "\" Location=\""
          "https://dev-1.okta.com/app/dev-1_app_1/exk1/sso/saml?r=1\"/>";

    okta = md_okta("http://www.okta.com/exk1", md_key("signing", idp64), sso);

    check(md_parse(okta, NULL, &md) == ENT_SAML_OK, "metadata: Okta-like");
    check(md.entity_id && strcmp(md.entity_id, "http://www.okta.com/exk1")
          == 0 && strcmp(md.sso_url, "https://dev-1.okta.com/app/dev-1_app_1/"
                         "exk1/sso/saml?r=1") == 0
          && md.slo_url == NULL && md.slo_response_url == NULL
          && !md.want_authn_requests_signed && md.ncerts == 1
          && strcmp(md.certs[0], idp.cert_pem) == 0,
          "metadata: Okta-like content, the certificate as PEM");
    check(md.not_after && md.not_after[0] > NOW
          && md.not_after[0] > time(NULL) + 86400 * 360
          && md.not_after[0] < time(NULL) + 86400 * 366,
          "metadata: the certificate's expiry");
    ent_saml_idp_metadata_free(&md);
    check(md.certs == NULL && md.entity_id == NULL, "metadata: freed");

    /* the certificate wrapped in lines, as some IdPs write it */

    xml = md_okta("http://www.okta.com/exk1",
                  md_key(NULL, str("\n    %.64s\n    %.64s\r\n  %s\n  ",
                                   idp64, idp64 + 64, idp64 + 128)), sso);
    check(md_parse(xml, NULL, &md) == ENT_SAML_OK && md.ncerts == 1
          && strcmp(md.certs[0], idp.cert_pem) == 0,
          "metadata: a wrapped certificate without use");
    ent_saml_idp_metadata_free(&md);

    /* Entra ID: one EntityDescriptor, several RoleDescriptors */

    entra = str("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                "<EntityDescriptor ID=\"_e1\" entityID=\"https://sts.windows"
                ".net/0000-1111/\" xmlns=\"" MD_NS "\">"
                "<Signature xmlns=\"" DS_NS "\"><SignedInfo/></Signature>"
                "<RoleDescriptor xmlns:xsi=\"http://www.w3.org/2001/"
                "XMLSchema-instance\" xmlns:fed=\"http://docs.oasis-open.org/"
                "wsfed/federation/200706\" xsi:type=\"fed:SecurityTokenService"
                "Type\" protocolSupportEnumeration=\"http://docs.oasis-open."
                "org/wsfed/federation/200706\"><KeyDescriptor use=\"signing\">"
                "<KeyInfo xmlns=\"" DS_NS "\"><X509Data><X509Certificate>%s"
                "</X509Certificate></X509Data></KeyInfo></KeyDescriptor>"
                "</RoleDescriptor>"
                "<SPSSODescriptor protocolSupportEnumeration=\"" PROTO "\">"
                "<KeyDescriptor use=\"signing\"><KeyInfo xmlns=\"" DS_NS "\">"
                "<X509Data><X509Certificate>%s</X509Certificate></X509Data>"
                "</KeyInfo></KeyDescriptor></SPSSODescriptor>"
                "<IDPSSODescriptor protocolSupportEnumeration=\"" PROTO "\">"
                "<KeyDescriptor use=\"signing\"><KeyInfo xmlns=\"" DS_NS "\">"
                "<X509Data><X509Certificate>%s</X509Certificate></X509Data>"
                "</KeyInfo></KeyDescriptor>"
                "<KeyDescriptor use=\"signing\"><KeyInfo xmlns=\"" DS_NS "\">"
                "<X509Data><X509Certificate>%s</X509Certificate></X509Data>"
                "</KeyInfo></KeyDescriptor>"
                "<KeyDescriptor use=\"signing\"><KeyInfo xmlns=\"" DS_NS "\">"
                "<X509Data><X509Certificate>%s</X509Certificate></X509Data>"
                "</KeyInfo></KeyDescriptor>"
                "<SingleLogoutService Binding=\"" B_REDIR "\" Location=\""
                "https://login.microsoftonline.com/0000-1111/saml2\"/>"
                "<SingleSignOnService Binding=\"" B_REDIR "\" Location=\""
                "https://login.microsoftonline.com/0000-1111/saml2\"/>"
                "<SingleSignOnService Binding=\"" B_POST "\" Location=\""
                "https://login.microsoftonline.com/0000-1111/saml2\"/>"
                "</IDPSSODescriptor></EntityDescriptor>",
                ec64, ec64, idp64, att64, idp64);

    check(md_parse(entra, NULL, &md) == ENT_SAML_OK
          && strcmp(md.entity_id, "https://sts.windows.net/0000-1111/") == 0
          && strcmp(md.slo_url, "https://login.microsoftonline.com/"
                    "0000-1111/saml2") == 0
          && md.ncerts == 2 && strcmp(md.certs[0], idp.cert_pem) == 0
          && strcmp(md.certs[1], attacker.cert_pem) == 0,
          "metadata: Entra-like, two certificates, a duplicate dropped,"
          " other roles' keys ignored");
    ent_saml_idp_metadata_free(&md);

    check(md_parse(entra, "https://sts.windows.net/0000-1111/", &md)
          == ENT_SAML_OK && md.ncerts == 2,
          "metadata: Entra-like by entity ID");
    ent_saml_idp_metadata_free(&md);

    /* SimpleSAMLphp: an encryption key, SLO, WantAuthnRequestsSigned */

    ssp = str("<?xml version=\"1.0\"?>\n"
              "<md:EntityDescriptor xmlns:md=\"" MD_NS "\" xmlns:ds=\"" DS_NS
              "\" entityID=\"https://idp.example.org/simplesaml/saml2/idp/"
              "metadata.php\">\n"
              "  <md:IDPSSODescriptor WantAuthnRequestsSigned=\"true\""
              " protocolSupportEnumeration=\"" PROTO "\">\n"
              "    <md:KeyDescriptor use=\"encryption\">\n"
              "      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s"
              "</ds:X509Certificate></ds:X509Data></ds:KeyInfo>\n"
              "    </md:KeyDescriptor>\n"
              "    <md:KeyDescriptor use=\"signing\">\n"
              "      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s"
              "</ds:X509Certificate></ds:X509Data></ds:KeyInfo>\n"
              "    </md:KeyDescriptor>\n"
              "    <md:SingleLogoutService Binding=\"" B_REDIR "\""
              " Location=\"https://idp.example.org/simplesaml/saml2/idp/"
              "SingleLogoutService.php\" ResponseLocation=\"https://idp."
              "example.org/simplesaml/saml2/idp/SLOResponse.php\"/>\n"
              "    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:"
              "transient</md:NameIDFormat>\n"
              "    <md:SingleSignOnService Binding=\"" B_REDIR "\""
              " Location=\"https://idp.example.org/simplesaml/saml2/idp/"
              "SSOService.php\"/>\n"
              "  </md:IDPSSODescriptor>\n"
              "  <md:ContactPerson contactType=\"technical\">"
              "<md:GivenName>Admin</md:GivenName></md:ContactPerson>\n"
              "</md:EntityDescriptor>\n", ec64, idp64);

    check(md_parse(ssp, NULL, &md) == ENT_SAML_OK
          && md.want_authn_requests_signed && md.ncerts == 1
          && strcmp(md.certs[0], idp.cert_pem) == 0
          && strcmp(md.sso_url, "https://idp.example.org/simplesaml/saml2/"
                    "idp/SSOService.php") == 0
          && strcmp(md.slo_response_url, "https://idp.example.org/"
                    "simplesaml/saml2/idp/SLOResponse.php") == 0,
          "metadata: SimpleSAMLphp-like, the encryption key left out");
    ent_saml_idp_metadata_free(&md);

    /* an EntitiesDescriptor: two IdPs and an SP, one of them nested */

    fed = str("<md:EntitiesDescriptor xmlns:md=\"" MD_NS "\" Name=\"fed\">"
              "%s<md:EntitiesDescriptor>%s</md:EntitiesDescriptor>"
              "<md:EntityDescriptor entityID=\"https://sp.example\">"
              "<md:SPSSODescriptor protocolSupportEnumeration=\"" PROTO
              "\"/></md:EntityDescriptor></md:EntitiesDescriptor>",
              strstr(okta, "<md:EntityDescriptor"),
              strstr(ssp, "<md:EntityDescriptor"));

    md_fails(fed, NULL, ENT_SAML_INVALID, "the metadata describes 2 identity"
             " providers: choose one with --entity-id",
             "metadata: several IdPs need an entity ID");

    check(md_parse(fed, "https://idp.example.org/simplesaml/saml2/idp/"
                   "metadata.php", &md) == ENT_SAML_OK
          && md.want_authn_requests_signed,
          "metadata: the nested IdP picked by entity ID");
    ent_saml_idp_metadata_free(&md);

    check(md_parse(fed, "http://www.okta.com/exk1", &md) == ENT_SAML_OK
          && !md.want_authn_requests_signed,
          "metadata: the other IdP picked by entity ID");
    ent_saml_idp_metadata_free(&md);

    md_fails(fed, "https://nobody.example", ENT_SAML_INVALID,
             "no EntityDescriptor with that entityID",
             "metadata: an unknown entity ID");

    md_fails(fed, "https://sp.example", ENT_SAML_INVALID,
             "no IDPSSODescriptor", "metadata: an SP picked by entity ID");

    md_fails(str("<md:EntitiesDescriptor xmlns:md=\"" MD_NS "\">%s%s"
                 "</md:EntitiesDescriptor>",
                 strstr(okta, "<md:EntityDescriptor"),
                 strstr(okta, "<md:EntityDescriptor")),
             "http://www.okta.com/exk1", ENT_SAML_INVALID,
             "more than one EntityDescriptor with that entityID",
             "metadata: an entity ID twice");

    /* hostile and broken */

    md_fails(str("<?xml version=\"1.0\"?><!DOCTYPE md [<!ENTITY x SYSTEM "
                 "\"file:///etc/passwd\">]>%s", strstr(okta, "<md:")),
             NULL, ENT_SAML_MALFORMED, "DOCTYPE is not allowed",
             "metadata: DOCTYPE with an external entity");

    md_fails("<md:EntityDescriptor", NULL, ENT_SAML_MALFORMED,
             "metadata is not well-formed XML", "metadata: not XML");

    md_fails("", NULL, ENT_SAML_MALFORMED, "empty metadata",
             "metadata: empty");

    big = keep(malloc(ENT_SAML_MAX_METADATA_LEN + 2));
    memset(big, ' ', ENT_SAML_MAX_METADATA_LEN + 1);
    big[ENT_SAML_MAX_METADATA_LEN + 1] = '\0';
    md_fails(str("%s%s", okta, big), NULL, ENT_SAML_MALFORMED,
             "metadata is larger than 1 MiB", "metadata: over 1 MiB");

    md_fails("<x:EntityDescriptor xmlns:x=\"urn:other\"/>", NULL,
             ENT_SAML_MALFORMED, "root element is neither an EntityDescriptor"
             " nor an EntitiesDescriptor", "metadata: wrong namespace");

    md_fails(replace(okta, "IDPSSODescriptor", "SPSSODescriptor"), NULL,
             ENT_SAML_MALFORMED, "metadata is not well-formed XML",
             "metadata: mismatched tags");

    md_fails(replace(replace(okta, "<md:IDPSSODescriptor",
                             "<md:SPSSODescriptor"),
                     "</md:IDPSSODescriptor>", "</md:SPSSODescriptor>"),
             NULL, ENT_SAML_INVALID, "no IDPSSODescriptor",
             "metadata: an SP only");

    md_fails(replace(okta, "protocolSupportEnumeration=\"" PROTO "\"",
                     "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:"
                     "1.1:protocol urn:oasis:names:tc:SAML:2.0:protocolX\""),
             NULL, ENT_SAML_INVALID, "no IDPSSODescriptor",
             "metadata: a SAML 1.1 IdP only");

    check(md_parse(replace(okta, "protocolSupportEnumeration=\"" PROTO "\"",
                           "protocolSupportEnumeration=\"urn:oasis:names:tc:"
                           "SAML:1.1:protocol " PROTO "\""), NULL, &md)
          == ENT_SAML_OK, "metadata: SAML 2.0 among other protocols");
    ent_saml_idp_metadata_free(&md);

    md_fails(replace(okta, "</md:IDPSSODescriptor>",
                     str("</md:IDPSSODescriptor>%s",
                         between(okta, "<md:IDPSSODescriptor",
                                 "</md:IDPSSODescriptor>"))),
             NULL, ENT_SAML_INVALID, "more than one IDPSSODescriptor",
             "metadata: two IDPSSODescriptors");

    md_fails(md_okta("http://www.okta.com/exk1", md_key("signing", idp64),
                     "<md:SingleSignOnService Binding=\"" B_POST "\""
                     " Location=\"https://idp.example/sso\"/>"),
             NULL, ENT_SAML_INVALID, "no SingleSignOnService with the"
             " HTTP-Redirect binding", "metadata: POST only");

    md_fails(md_okta("http://www.okta.com/exk1", md_key("signing", idp64),
                     "<md:SingleSignOnService Binding=\"" B_REDIR "\""
                     " Location=\"javascript:alert(1)\"/>"),
             NULL, ENT_SAML_INVALID, "SingleSignOnService Location is not an"
             " http(s) URL", "metadata: a javascript: Location");

    md_fails(md_okta("http://www.okta.com/exk1", md_key("signing", idp64),
                     "<md:SingleSignOnService Binding=\"" B_REDIR "\""
                     " Location=\"https://idp.example/a b\"/>"),
             NULL, ENT_SAML_INVALID, "SingleSignOnService Location is not an"
             " http(s) URL", "metadata: a Location with a space");

    md_fails(md_okta("http://www.okta.com/exk1", md_key("signing", idp64),
                     str("%s<md:SingleLogoutService Binding=\"" B_REDIR "\""
                         " Location=\"ftp://x\"/>", sso)),
             NULL, ENT_SAML_INVALID, "SingleLogoutService Location is not an"
             " http(s) URL", "metadata: a bad SLO Location");

    md_fails(md_okta("", md_key("signing", idp64), sso),
             NULL, ENT_SAML_INVALID, "EntityDescriptor has no valid entityID",
             "metadata: empty entityID");

    md_fails(md_okta("http://www.okta.com/exk1", md_key("encryption", idp64),
                     sso),
             NULL, ENT_SAML_INVALID, "no signing certificate (KeyDescriptor"
             " use=\"signing\")", "metadata: an encryption key only");

    md_fails(md_okta("http://www.okta.com/exk1", "", sso),
             NULL, ENT_SAML_INVALID, "no signing certificate (KeyDescriptor"
             " use=\"signing\")", "metadata: no key at all");

    md_fails(md_okta("http://www.okta.com/exk1", md_key("signing", "MII%%"),
                     sso),
             NULL, ENT_SAML_MALFORMED, "certificate 1 is not valid base64 DER",
             "metadata: a certificate not base64");

    md_fails(md_okta("http://www.okta.com/exk1",
                     md_key("signing", "aGVsbG8gd29ybGQ="), sso),
             NULL, ENT_SAML_MALFORMED, "certificate 1 is not valid base64 DER",
             "metadata: base64 that is not DER");

    md_fails(md_okta("http://www.okta.com/exk1",
                     md_key("signing", str("%.100s", idp64)), sso),
             NULL, ENT_SAML_MALFORMED, "certificate 1 is not valid base64 DER",
             "metadata: a truncated certificate");

    md_fails(md_okta("http://www.okta.com/exk1",
                     str("%s%s", md_key("signing", idp64),
                         md_key("signing", der_plus(att64))),
                     sso),
             NULL, ENT_SAML_MALFORMED, "certificate 2 is not valid base64 DER",
             "metadata: bytes after the second certificate's DER");

    md_fails(md_okta("http://www.okta.com/exk1",
                     md_key("signing", cert_b64(idp.key_pem)), sso),
             NULL, ENT_SAML_MALFORMED, "certificate 1 is not valid base64 DER",
             "metadata: a private key where a certificate goes");

    md_fails(md_okta("http://www.okta.com/exk1",
                     md_key("signing", der_break_key(idp64)), sso),
             NULL, ENT_SAML_MALFORMED,
             "certificate 1 has no usable public key",
             "metadata: a certificate whose key does not decode");

    keys = "";

    for (i = 0; i < ENT_SAML_MAX_CERTS + 1; i++) {
        keys = str("%s%s", keys, md_key("signing",
                                        cert_b64(pem_cert(idp.key,
                                                          str("c%d", i)))));
    }

    md_fails(md_okta("http://www.okta.com/exk1", keys, sso), NULL,
             ENT_SAML_INVALID, "more than 16 signing certificates",
             "metadata: too many certificates");

    xml = strstr(okta, "<md:EntityDescriptor");

    for (i = 0; i < 9; i++) {
        xml = str("<md:EntitiesDescriptor xmlns:md=\"" MD_NS "\">%s"
                  "</md:EntitiesDescriptor>", xml);
    }

    md_fails(xml, NULL, ENT_SAML_MALFORMED,
             "EntitiesDescriptors nested too deep",
             "metadata: nested too deep");
}


int
main(void)
{
    size_t  i;

    check(ent_saml_init() == 0 && ent_saml_init() == 0, "init (twice)");

    make_pair(&idp, EVP_RSA_gen(2048), "idp");
    make_pair(&attacker, EVP_RSA_gen(2048), "attacker");
    make_pair(&ec, EVP_EC_gen("P-256"), "ec");
    make_pair(&sp, EVP_RSA_gen(2048), "sp");
    sp_extra_pems(&sp);

    test_times();
    test_valid();
    test_signatures();
    test_xsw();
    test_parser();
    test_protocol();
    test_content();
    test_input();
    test_request();
    test_metadata();
    test_rotation();
    test_name_id_format();
    test_encrypted();
    test_request_xml();
    test_logout_build();
    test_logout_request();
    test_logout_response();
    test_metadata_ex();
    test_idp_metadata();

    EVP_PKEY_free(idp.key);
    EVP_PKEY_free(attacker.key);
    EVP_PKEY_free(ec.key);
    EVP_PKEY_free(sp.key);

    for (i = 0; i < narena; i++) {
        free(arena[i]);
    }

    ent_saml_shutdown();

    return tap_done();
}
