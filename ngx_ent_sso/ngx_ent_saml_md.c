/*
 * ngx_ent SSO: SAML 2.0, what the SP sends and publishes to start a login,
 * the AuthnRequest and its own metadata, and what it reads of the IdP,
 * the IdP's metadata (see ngx_ent_saml.h).
 */


#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <libxml/tree.h>

#include "ngx_ent_saml_int.h"


#define ENT_SAML_MAX_URL_LEN   2048  /* in metadata */
#define ENT_SAML_MAX_DEPTH     8     /* nested EntitiesDescriptors */


static char *ent_saml_deflate_b64url(const char *xml, size_t len,
    size_t *outlen);
static void ent_saml_buf_b64(ent_saml_buf_t *b, const unsigned char *data,
    size_t len, size_t line);
static int ent_saml_buf_cert(ent_saml_buf_t *b, const char *pem,
    int *type);
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
ent_saml_buf_cert(ent_saml_buf_t *b, const char *pem, int *type)
{
    int             n;
    BIO            *bio;
    X509           *x;
    EVP_PKEY       *pk;
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

    pk = X509_get0_pubkey(x);
    *type = pk ? EVP_PKEY_get_base_id(pk) : EVP_PKEY_NONE;

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
    int                       i, type;
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

    type = EVP_PKEY_NONE;

    for (i = 0; sp_cert_pem && i < 2; i++) {

        /* only an RSA key decrypts: an EC key is for signing only */

        if (i == 1 && type != EVP_PKEY_RSA) {
            break;
        }

        ent_saml_buf_str(&b, "    <md:KeyDescriptor use=\"");
        ent_saml_buf_str(&b, use[i]);
        ent_saml_buf_str(&b, "\">\n      <ds:KeyInfo><ds:X509Data>"
                         "<ds:X509Certificate>");

        if (ent_saml_buf_cert(&b, sp_cert_pem, &type) != 0) {
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
