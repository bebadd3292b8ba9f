/*
 * ngx_ent SSO: I/O-free SAML 2.0 service provider (see ngx_ent_saml.h).
 *
 * This file: init and shutdown, the safe parse (no DTD, bounded) and the
 * helpers the other files share through ngx_ent_saml_int.h: elements,
 * attributes and text, base64, times, output buffers.  The rest, by
 * concern:
 *
 *   ngx_ent_saml_response.c  the Response check and its result;
 *   ngx_ent_saml_sig.c       the pinned IdP certificates and the
 *                            signatures of the Response and the Assertion;
 *   ngx_ent_saml_enc.c       the SP's key and the EncryptedAssertion;
 *   ngx_ent_saml_logout.c    LogoutRequest and LogoutResponse, built and
 *                            checked;
 *   ngx_ent_saml_md.c        the AuthnRequest, the SP's metadata and the
 *                            IdP's metadata.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <xmlsec/xmlsec.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>

#include "ngx_ent_saml_int.h"


#define ENT_SAML_MAX_ID_LEN  256

/* an attribute value that is not one text node: equal to nothing */
#define ENT_SAML_ODD_VALUE   "\x01"


static void ent_saml_xml_silent(void *ctx, const char *msg, ...);
static void ent_saml_xml_silent_structured(void *ctx, xmlErrorPtr error);
static void ent_saml_sec_silent(const char *file, int line, const char *func,
    const char *object, const char *subject, int reason, const char *msg);
static int ent_saml_b64_value(unsigned char c);
static void ent_saml_sax_subset(void *ctx, const xmlChar *name,
    const xmlChar *external_id, const xmlChar *system_id);
static void ent_saml_sax_entity(void *ctx, const xmlChar *name, int type,
    const xmlChar *public_id, const xmlChar *system_id, xmlChar *content);


static int  ent_saml_ready;


const char  ent_saml_b64_alphabet[] =
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


void
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

int
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


xmlDocPtr
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
ent_saml_is(xmlNodePtr node, const char *ns, const char *name)
{
    return node->type == XML_ELEMENT_NODE
           && node->ns != NULL && node->ns->href != NULL
           && strcmp((const char *) node->ns->href, ns) == 0
           && strcmp((const char *) node->name, name) == 0;
}


/* the first child element ns:name, and how many there are */

xmlNodePtr
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

const char *
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

int
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

int
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

int
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


int
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

int
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


/* the base64 content of an element, any XML white space skipped */

int
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


/* days since 1970-01-01 of a proleptic Gregorian date */

long long
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


void
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


void
ent_saml_buf_str(ent_saml_buf_t *b, const char *s)
{
    ent_saml_buf_add(b, s, strlen(s));
}


/* text escaped for an attribute value or element content */

void
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

int
ent_saml_plain(const char *s)
{
    return s != NULL && s[0] != '\0' && ent_saml_clean(s, strlen(s));
}


int
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


/* a copy of a configured or checked string; NULL stays NULL */

int
ent_saml_dup(char **dst, const char *src)
{
    if (src == NULL) {
        *dst = NULL;
        return 0;
    }

    *dst = strdup(src);

    return *dst ? 0 : -1;
}
