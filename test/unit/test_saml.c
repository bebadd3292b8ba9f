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
#include <openssl/x509.h>

#include <zlib.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/valid.h>

#include <xmlsec/xmlsec.h>
#include <xmlsec/crypto.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
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
} pair_t;


static void *keep(void *p);
static char *str(const char *fmt, ...);
static char *when(long t);
static char *pem_key(EVP_PKEY *k);
static char *pem_cert(EVP_PKEY *k, const char *cn);
static void make_pair(pair_t *p, EVP_PKEY *k, const char *cn);
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


static pair_t    idp, attacker, ec;
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
          &e, ENT_SAML_SIGNATURE, "signature method is not allowed",
          "rsa-sha1 refused");

    fails(sign_alg(build(&d), SIGN_ASSERTION, &idp, xmlSecTransformExclC14NId,
                   xmlSecTransformRsaSha256Id, xmlSecTransformSha1Id),
          &e, ENT_SAML_SIGNATURE, "digest method is not allowed",
          "sha1 digest refused");

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
    char               *xml;
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


int
main(void)
{
    size_t  i;

    check(ent_saml_init() == 0 && ent_saml_init() == 0, "init (twice)");

    make_pair(&idp, EVP_RSA_gen(2048), "idp");
    make_pair(&attacker, EVP_RSA_gen(2048), "attacker");
    make_pair(&ec, EVP_EC_gen("P-256"), "ec");

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

    EVP_PKEY_free(idp.key);
    EVP_PKEY_free(attacker.key);
    EVP_PKEY_free(ec.key);

    for (i = 0; i < narena; i++) {
        free(arena[i]);
    }

    ent_saml_shutdown();

    return tap_done();
}
