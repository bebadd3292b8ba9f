/*
 * ngx_ent SSO: SAML 2.0 Single Logout, the LogoutRequest and the
 * LogoutResponse built and checked (see ngx_ent_saml.h).
 */


#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "ngx_ent_saml_int.h"


/*
 * A LogoutRequest's ID is remembered for a day (the replay cache of
 * ngx_ent_sso_session.c): an older request could be replayed once it is
 * forgotten, so none older than that, with the skew on both sides, is taken
 */
#define ENT_SAML_LOGOUT_MAX_AGE  86400


static int ent_saml_logout_head(xmlNodePtr root, const char *name,
    const char *idp, const char *slo_url, time_t now, long skew,
    ent_saml_logout_t *out, char *err, size_t errlen);
static int ent_saml_logout_check(const unsigned char *xml, size_t len,
    const char *name, const char *idp, const char *slo_url, time_t now,
    long skew, ent_saml_logout_t *out, xmlDocPtr *doc, char *err,
    size_t errlen);


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

    /*
     * SLO messages are always signed here, and a signed message must name
     * its Destination (SAML bindings 3.4.5.2): without it, a message to
     * another SP of the same IdP would be accepted here too
     */

    v = ent_saml_prop(root, "Destination");

    if (v == NULL) {
        ent_saml_error(err, errlen, "%s has no Destination", name);
        return ENT_SAML_INVALID;
    }

    if (strcmp(v, slo_url) != 0) {
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

    if (out->issue_instant < now - (ENT_SAML_LOGOUT_MAX_AGE - 2 * skew)) {
        ent_saml_error(err, errlen, "LogoutRequest is too old");
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
