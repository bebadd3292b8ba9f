/*
 * ngx_ent SSO: SAML 2.0, the check of a Response (see ngx_ent_saml.h).
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
 * The signatures are verified in ngx_ent_saml_sig.c, an EncryptedAssertion
 * is decrypted in ngx_ent_saml_enc.c.
 */


#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "ngx_ent_saml_int.h"
#include "ngx_ent_sso_util.h"


#define ENT_SAML_STATUS_LEN  64      /* of a status code put in err */


static void ent_saml_status_name(char *dst, const char *value);
static int ent_saml_check_status(ent_saml_ctx_t *c);
static int ent_saml_check_issuer(ent_saml_ctx_t *c, xmlNodePtr parent,
    int required);
static int ent_saml_find_assertion(ent_saml_ctx_t *c);
static int ent_saml_check_response(ent_saml_ctx_t *c);
static int ent_saml_check_subject(ent_saml_ctx_t *c);
static int ent_saml_check_confirmation(ent_saml_ctx_t *c, xmlNodePtr scd,
    time_t *expires, const char **why);
static int ent_saml_check_conditions(ent_saml_ctx_t *c);
static int ent_saml_check_authn(ent_saml_ctx_t *c);
static int ent_saml_attributes(ent_saml_ctx_t *c);
static char *ent_saml_attr_cat(const ent_saml_result_t *res, const char *name,
    int list);
static int ent_saml_attribute(ent_saml_ctx_t *c, xmlNodePtr node,
    ent_saml_attr_t *attr);


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

int
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
    int                       rc, held;
    size_t                    n;
    time_t                    expires, latest;
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

    /*
     * one bearer confirmation that holds is enough; but the assertion's ID
     * must stay in the replay cache for as long as any of them may hold
     * (one that is not valid yet included), or it could be accepted again
     * by the second once the first has expired
     */

    why = "no bearer SubjectConfirmation";
    rc = ENT_SAML_INVALID;
    latest = 0;

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

        held = ent_saml_check_confirmation(c, scd, &expires, &why);

        if (held == 0) {
            rc = ENT_SAML_OK;
        }

        if (held >= 0 && expires > latest) {
            latest = expires;
        }
    }

    if (rc != ENT_SAML_OK) {
        ent_saml_error(c->err, c->errlen, "%s", why);
        return rc;
    }

    if (latest < out->expires || out->expires == 0) {
        out->expires = latest;
    }

    return ENT_SAML_OK;
}


/*
 * 0: the bearer confirmation holds; 1: it will once its NotBefore has come;
 * -1: it never will.  *expires is its NotOnOrAfter when 0 or 1.
 */

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

    if (ent_saml_time_prop(scd, "NotBefore", 0, &t) != 0) {
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

    /* last: the one check that time alone may turn from failed to held */

    if (t > e->now + e->skew) {
        *why = "SubjectConfirmation is not yet valid";
        return 1;
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
    return ent_saml_attr_cat(res, name, 0);
}


char *
ent_saml_attr_list(const ent_saml_result_t *res, const char *name)
{
    return ent_saml_attr_cat(res, name, 1);
}


/*
 * A list's items (groups) are read back split at ","; a value that holds
 * one ("x,admins", or an AD distinguished name), a control character, or
 * nothing, would be read as other items: it is left out, as OpenID
 * Connect's lists leave it
 */

static char *
ent_saml_attr_cat(const ent_saml_result_t *res, const char *name, int list)
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
        if (list && !ent_sso_list_ok(a->values[i], strlen(a->values[i]))) {
            continue;
        }

        if (p != s) {
            *p++ = ',';
        }

        len = strlen(a->values[i]);
        memcpy(p, a->values[i], len);
        p += len;
    }

    *p = '\0';

    return s;
}
