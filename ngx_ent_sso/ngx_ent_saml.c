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
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/valid.h>
#include <libxml/xmlerror.h>

#include <xmlsec/xmlsec.h>
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

#define ENT_STATUS_PREFIX    "urn:oasis:names:tc:SAML:2.0:status:"
#define ENT_STATUS_SUCCESS   ENT_STATUS_PREFIX "Success"
#define ENT_CM_BEARER        "urn:oasis:names:tc:SAML:2.0:cm:bearer"
#define ENT_NAMEID_ENTITY    "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
#define ENT_NAMEID_EMAIL                                                      \
    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
#define ENT_BINDING_POST     "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

#define ENT_ALG_EXC_C14N     "http://www.w3.org/2001/10/xml-exc-c14n#"
#define ENT_ALG_ENVELOPED                                                     \
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

#define ENT_SAML_PARSE_OPTIONS                                                \
    (XML_PARSE_NONET|XML_PARSE_NOERROR|XML_PARSE_NOWARNING)

#define ENT_SAML_MAX_ID_LEN  256
#define ENT_SAML_STATUS_LEN  64      /* of a status code put in err */

/* an attribute value that is not one text node: equal to nothing */
#define ENT_SAML_ODD_VALUE   "\x01"


typedef struct {
    const ent_saml_expect_t  *expect;
    ent_saml_result_t        *out;
    char                     *err;
    size_t                    errlen;
    xmlDocPtr                 doc;
    xmlNodePtr                response;
    xmlNodePtr                assertion;
    const char               *in_response_to;     /* the Response's */
} ent_saml_ctx_t;


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
static int ent_saml_b64_value(unsigned char c);
static int ent_saml_b64_decode(const unsigned char *src, size_t len,
    unsigned char *dst, size_t *dstlen);
static void ent_saml_sax_subset(void *ctx, const xmlChar *name,
    const xmlChar *external_id, const xmlChar *system_id);
static void ent_saml_sax_entity(void *ctx, const xmlChar *name, int type,
    const xmlChar *public_id, const xmlChar *system_id, xmlChar *content);
static xmlDocPtr ent_saml_parse(const unsigned char *xml, size_t len,
    int *rc, char *err, size_t errlen);
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
    xmlSecKeyPtr key, int *is_signed);
static int ent_saml_check_signatures(ent_saml_ctx_t *c);
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
ent_saml_parse(const unsigned char *xml, size_t len, int *rc, char *err,
    size_t errlen)
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
        ent_saml_error(err, errlen, "SAMLResponse is not well-formed XML");
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
        || expect->idp_cert_pem == NULL)
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

    c.doc = ent_saml_parse(xml, len, &rc, err, errlen);
    if (c.doc == NULL) {
        return rc;
    }

    rc = ent_saml_check_response(&c);

    xmlFreeDoc(c.doc);

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
 * The whole document: one Assertion, no encrypted parts, no xml:id, and
 * the Response's and the Assertion's IDs each carried by one element only.
 */

static int
ent_saml_scan(ent_saml_ctx_t *c, const char *rid, const char *aid)
{
    size_t      nassert, nrid, naid;
    xmlAttrPtr  attr;
    xmlNodePtr  node, root;
    const char  *v;

    nassert = 0;
    nrid = 0;
    naid = 0;

    root = c->response;
    node = root;

    while (node) {

        if (node->type == XML_ELEMENT_NODE) {

            if (ent_saml_is(node, ENT_SAML_NS, "EncryptedAssertion")) {
                ent_saml_error(c->err, c->errlen,
                               "encrypted assertions are not supported");
                return ENT_SAML_UNSUPPORTED;
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

                if (v && strcmp(v, aid) == 0) {
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

    if (n != 1 || !ent_saml_alg_in(v, ent_saml_sig_algs)) {
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

    if (n != 1 || !ent_saml_alg_in(v, ent_saml_digest_algs)) {
        ent_saml_error(c->err, c->errlen, "digest method is not allowed");
        return ENT_SAML_SIGNATURE;
    }

    return ENT_SAML_OK;
}


/*
 * Verifies the enveloped signature of elem (the Response or the Assertion)
 * with the pinned key.  *is_signed is 0 when elem has no ds:Signature
 * child: ENT_SAML_OK is then returned and nothing is verified.
 */

static int
ent_saml_verify(ent_saml_ctx_t *c, xmlNodePtr elem, xmlSecKeyPtr key,
    int *is_signed)
{
    int                     rc;
    size_t                  n;
    xmlAttrPtr              attr;
    xmlNodePtr              sig;
    const char             *id;
    xmlSecDSigCtxPtr        dsig;
    xmlSecDSigReferenceCtx *ref;

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

    rc = ENT_SAML_INTERNAL;

    dsig = xmlSecDSigCtxCreate(NULL);
    if (dsig == NULL) {
        ent_saml_error(c->err, c->errlen, "xmlsec context failed");
        goto done;
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

    rc = ENT_SAML_SIGNATURE;

    if (xmlSecDSigCtxVerify(dsig, sig) < 0
        || dsig->status != xmlSecDSigStatusSucceeded)
    {
        ent_saml_error(c->err, c->errlen, "signature verification failed");
        goto done;
    }

    /* what xmlsec did agrees with what was checked above */

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

    if (dsig) {
        xmlSecDSigCtxDestroy(dsig);
    }

    xmlRemoveID(c->doc, attr);

    return rc;
}


static int
ent_saml_check_signatures(ent_saml_ctx_t *c)
{
    int                       rc, rsigned, asigned;
    size_t                    len;
    xmlSecKeyPtr              key;
    const ent_saml_expect_t  *e;

    e = c->expect;
    len = e->idp_cert_len ? e->idp_cert_len : strlen(e->idp_cert_pem);

    key = xmlSecCryptoAppKeyLoadMemory((const xmlSecByte *) e->idp_cert_pem,
                                       (xmlSecSize) len,
                                       xmlSecKeyDataFormatCertPem,
                                       NULL, NULL, NULL);
    if (key == NULL) {
        ent_saml_error(c->err, c->errlen, "IdP certificate cannot be loaded");
        return ENT_SAML_INTERNAL;
    }

    rc = ent_saml_verify(c, c->response, key, &rsigned);

    if (rc == ENT_SAML_OK) {
        rc = ent_saml_verify(c, c->assertion, key, &asigned);
    }

    xmlSecKeyDestroy(key);

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


static int
ent_saml_check_response(ent_saml_ctx_t *c)
{
    int                       rc;
    size_t                    n;
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

    if (ent_saml_child(root, ENT_SAML_NS, "EncryptedAssertion", NULL)) {
        ent_saml_error(c->err, c->errlen,
                       "encrypted assertions are not supported");
        return ENT_SAML_UNSUPPORTED;
    }

    c->assertion = ent_saml_child(root, ENT_SAML_NS, "Assertion", &n);

    if (n != 1) {
        ent_saml_error(c->err, c->errlen,
                       n ? "more than one Assertion in the document"
                         : "Response has no Assertion");
        return ENT_SAML_MALFORMED;
    }

    aid = ent_saml_prop(c->assertion, "ID");

    if (!ent_saml_valid_id(aid)) {
        ent_saml_error(c->err, c->errlen, "Assertion has no valid ID");
        return ENT_SAML_MALFORMED;
    }

    rc = ent_saml_scan(c, rid, aid);
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

    rc = ent_saml_check_signatures(c);
    if (rc != ENT_SAML_OK) {
        return rc;
    }

    /* from here on, only the verified Response and Assertion are read */

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
    char            when[21];
    ent_saml_buf_t  b;

    *out = NULL;
    *outlen = 0;

    if (!ent_saml_plain(sp_entity_id) || !ent_saml_plain(acs_url)
        || !ent_saml_plain(idp_sso_url) || !ent_saml_valid_id(id))
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
    ent_saml_buf_str(&b, "\" ProtocolBinding=\"" ENT_BINDING_POST "\">"
                     "<saml:Issuer>");
    ent_saml_buf_esc(&b, sp_entity_id);
    ent_saml_buf_str(&b, "</saml:Issuer>"
                     "<samlp:NameIDPolicy AllowCreate=\"true\"/>"
                     "</samlp:AuthnRequest>");

    if (b.failed) {
        free(b.data);
        return -1;
    }

    *out = ent_saml_deflate_b64url(b.data, b.len, outlen);

    free(b.data);

    return *out ? 0 : -1;
}


int
ent_saml_sp_metadata(const char *sp_entity_id, const char *acs_url,
    char **out, size_t *outlen)
{
    ent_saml_buf_t  b;

    *out = NULL;
    *outlen = 0;

    if (!ent_saml_plain(sp_entity_id) || !ent_saml_plain(acs_url)) {
        return -1;
    }

    memset(&b, 0, sizeof(ent_saml_buf_t));

    ent_saml_buf_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<md:EntityDescriptor xmlns:md=\"" ENT_MD_NS
                     "\" entityID=\"");
    ent_saml_buf_esc(&b, sp_entity_id);
    ent_saml_buf_str(&b, "\">\n"
                     "  <md:SPSSODescriptor AuthnRequestsSigned=\"false\""
                     " WantAssertionsSigned=\"true\""
                     " protocolSupportEnumeration=\"" ENT_SAMLP_NS "\">\n"
                     "    <md:NameIDFormat>" ENT_NAMEID_EMAIL
                     "</md:NameIDFormat>\n"
                     "    <md:AssertionConsumerService Binding=\""
                     ENT_BINDING_POST "\" Location=\"");
    ent_saml_buf_esc(&b, acs_url);
    ent_saml_buf_str(&b, "\" index=\"0\" isDefault=\"true\"/>\n"
                     "  </md:SPSSODescriptor>\n"
                     "</md:EntityDescriptor>\n");

    if (b.failed) {
        free(b.data);
        return -1;
    }

    *out = b.data;
    *outlen = b.len;

    return 0;
}
