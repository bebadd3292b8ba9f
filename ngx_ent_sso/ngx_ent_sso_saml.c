/*
 * ngx_http_ent_sso_module: SAML 2.0 service provider (Web Browser SSO and
 * Single Logout; HTTP-Redirect for what we send, HTTP-POST to
 * /_ent/saml/acs, HTTP-Redirect to /_ent/saml/slo).
 *
 * The SP's entity ID is the tenant's, or https://<tenant host>/_ent/saml/
 * metadata; its ACS https://<tenant host>/_ent/saml/acs.  The
 * AuthnRequest's ID, the RelayState, where to return and an expiry travel
 * in a sealed __Host-ent_saml cookie (SameSite=None: the IdP POSTs from
 * another site), bound to the tenant; the Response must answer that ID
 * and bring that RelayState back.  An assertion is accepted once (its ID
 * kept in Redis until it expires), and so is a request (its ID kept until
 * the state cookie would expire).  Then the user is found or provisioned
 * and a session made, as for OpenID Connect.
 *
 * Parsed keys (the IdP's certificates, the SP's private key) are kept per
 * worker, found by a digest of their stored form, so that a response costs
 * one signature check and no PEM parsing.
 */


#include "ngx_ent_sso.h"
#include "ngx_ent_saml.h"
#include "ngx_ent_saml_redirect.h"


#define NGX_HTTP_ENT_SSO_SAML_KEYS     32

#define NGX_HTTP_ENT_SSO_KEY_IDP_XML   1    /* IdP certificates: XML */
#define NGX_HTTP_ENT_SSO_KEY_IDP_RDR   2    /* IdP certificates: Redirect */
#define NGX_HTTP_ENT_SSO_KEY_SP_XML    3    /* SP key: decryption */
#define NGX_HTTP_ENT_SSO_KEY_SP_RDR    4    /* SP key: Redirect signatures */


typedef struct {
    u_char                       md[SHA256_DIGEST_LENGTH];
    ngx_uint_t                   kind;
    void                        *obj;
    uint64_t                     used;        /* a lookup's serial number */
} ngx_http_ent_sso_saml_key_t;


static ngx_int_t ngx_http_ent_sso_saml_open(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *request_id, ngx_str_t *relay);
static ngx_int_t ngx_http_ent_sso_saml_check(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
static void ngx_http_ent_sso_saml_replayed(ngx_ent_op_t *op);
static ngx_int_t ngx_http_ent_sso_saml_str(ngx_http_request_t *r,
    ngx_str_t *out, const char *s);
static ngx_int_t ngx_http_ent_sso_saml_fail(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_uint_t status, const char *reason,
    const char *text);
static ngx_int_t ngx_http_ent_sso_saml_urls(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *sp, ngx_str_t *acs,
    ngx_str_t *slo);
static void *ngx_http_ent_sso_saml_key(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_uint_t kind);
static void ngx_http_ent_sso_saml_key_free(ngx_uint_t kind, void *obj);
static ngx_int_t ngx_http_ent_sso_saml_cookie(ngx_http_request_t *r,
    ngx_str_t *value, time_t max_age);
static ngx_int_t ngx_http_ent_sso_saml_send(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *to, const char *param,
    char *xml, size_t xml_len, ngx_str_t *relay);
static ngx_int_t ngx_http_ent_sso_saml_id(u_char *id);
static ngx_int_t ngx_http_ent_sso_saml_relay(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *relay);


static ngx_str_t  ngx_http_ent_sso_saml_cookie_name =
    ngx_string("__Host-ent_saml");

static ngx_http_ent_sso_saml_key_t  *ngx_http_ent_sso_saml_keys;
static uint64_t                      ngx_http_ent_sso_saml_keys_serial;


ngx_int_t
ngx_http_ent_sso_saml_login(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    char                          *xml;
    size_t                         xlen;
    json_t                        *js;
    ngx_int_t                      rc;
    ngx_str_t                      acs, sp, sealed, relay;
    u_char                         id[40], rs[40];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (ctx->return_to.len == 0
        || !ent_return_to_ok(ctx->return_to.data, ctx->return_to.len))
    {
        ngx_str_set(&ctx->return_to, "/");
    }

    /* the request's ID, and a RelayState that means nothing elsewhere */

    if (ngx_http_ent_sso_saml_id(id) != NGX_OK
        || ngx_http_ent_sso_saml_id(rs) != NGX_OK
        || ngx_http_ent_sso_saml_urls(r, ctx, &sp, &acs, NULL) != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &ctx->idp.saml_sso_url, NULL)
           != NGX_OK
        || (ctx->idp.saml_name_id_format.len
            && ngx_http_ent_sso_saml_str(r, &ctx->idp.saml_name_id_format,
                                         NULL)
               != NGX_OK))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    relay.data = rs + 1;
    relay.len = ngx_strlen(rs + 1);

    if (ent_saml_authn_request_xml((char *) sp.data, (char *) acs.data,
                                   (char *) ctx->idp.saml_sso_url.data,
                                   (char *) id, ngx_http_ent_sso_now(r),
                                   ctx->idp.saml_name_id_format.len
                                   ? (char *) ctx->idp.saml_name_id_format.data
                                   : "",
                                   0, &xml, &xlen)
        != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the sealed state: the request's ID, the RelayState, where to return */

    js = json_pack("{s:s, s:s%, s:s%, s:I}", "i", (char *) id,
                   "s", relay.data, relay.len,
                   "r", ctx->return_to.data, ctx->return_to.len,
                   "e", (json_int_t) (ngx_http_ent_sso_now(r)
                                      + smcf->state_ttl));

    if (ngx_http_ent_sso_seal(r, ctx, "saml-state", js, &sealed) != NGX_OK
        || ngx_http_ent_sso_saml_cookie(r, &sealed, smcf->state_ttl)
           != NGX_OK)
    {
        free(xml);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->sso_status[0] == 'n') {
        ctx->sso_status = "redirect";
    }

    rc = ngx_http_ent_sso_saml_send(r, ctx, &ctx->idp.saml_sso_url,
                                    "SAMLRequest", xml, xlen, &relay);
    free(xml);

    return rc;
}


/*
 * A message to the IdP by the HTTP-Redirect binding: a 302 to "to" with
 * the deflated message, the RelayState and, when the tenant has an SP key,
 * the binding's signature
 */

static ngx_int_t
ngx_http_ent_sso_saml_send(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_str_t *to, const char *param, char *xml, size_t xml_len,
    ngx_str_t *relay)
{
    int                     rv;
    u_char                 *p, *rs;
    char                   *q;
    size_t                  qlen;
    ngx_str_t               url;
    ent_saml_rkey_t        *key;

    key = NULL;

    if (ctx->idp.saml_sp_key.len) {
        key = ngx_http_ent_sso_saml_key(r, ctx, NGX_HTTP_ENT_SSO_KEY_SP_RDR);
        if (key == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    rs = NULL;

    if (relay && relay->len) {
        rs = ngx_pnalloc(r->pool, relay->len + 1);
        if (rs == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_cpymem(rs, relay->data, relay->len) = '\0';
    }

    rv = ent_saml_redirect_encode_rkey(param, xml, xml_len, (char *) rs, key,
                                       &q, &qlen);
    if (rv != ENT_SAML_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: saml: a %s cannot be encoded (%d)", param,
                      rv);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    url.len = to->len + 1 + qlen;
    url.data = ngx_pnalloc(r->pool, url.len);
    if (url.data == NULL) {
        free(q);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(url.data, to->data, to->len);
    *p++ = ngx_strlchr(to->data, to->data + to->len, '?') ? '&' : '?';
    p = ngx_cpymem(p, q, qlen);
    url.len = p - url.data;

    free(q);

    ctx->decided = 1;

    return ngx_http_ent_sso_redirect(r, &url);
}


/*
 * Where an IdP-initiated login lands: no RelayState, "/"; a safe path of
 * this site; or an absolute URL whose scheme and host are this request's,
 * reduced to its path.  Anything else is refused.
 */

static ngx_int_t
ngx_http_ent_sso_saml_relay(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *relay)
{
    ngx_str_t  home, path;

    if (relay->len == 0) {
        ngx_str_set(&ctx->return_to, "/");
        return NGX_OK;
    }

    if (ent_return_to_ok(relay->data, relay->len)) {
        ctx->return_to = *relay;
        return NGX_OK;
    }

    if (ngx_http_ent_sso_base_url(r, &home, "") != NGX_OK) {
        return NGX_ERROR;
    }

    /* "<scheme>://<host>/", without our prefix's "_ent/" */

    home.len -= sizeof("_ent/") - 1;

    if (relay->len <= home.len
        || ngx_strncasecmp(relay->data, home.data, home.len) != 0)
    {
        return NGX_DECLINED;
    }

    path.data = relay->data + home.len - 1;
    path.len = relay->len - home.len + 1;

    if (!ent_return_to_ok(path.data, path.len)) {
        return NGX_DECLINED;
    }

    ctx->return_to = path;

    return NGX_OK;
}


/* "_" and 32 hex digits: an xs:ID */

static ngx_int_t
ngx_http_ent_sso_saml_id(u_char *id)
{
    u_char  rnd[16];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return NGX_ERROR;
    }

    id[0] = '_';
    *ngx_hex_dump(id + 1, rnd, sizeof(rnd)) = '\0';

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_saml_cookie(ngx_http_request_t *r, ngx_str_t *value,
    time_t max_age)
{
    u_char           *p;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, ngx_http_ent_sso_saml_cookie_name.len
                             + value->len + 100);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Set-Cookie");
    h->value.data = p;

    /* SameSite=None: the IdP posts the response from another site */

    p = ngx_sprintf(p, "%V=%V; Path=/; Secure; HttpOnly; SameSite=None; "
                    "Max-Age=%T", &ngx_http_ent_sso_saml_cookie_name, value,
                    max_age);
    h->value.len = p - h->value.data;

    return NGX_OK;
}


/*
 * The SP's entity ID, its ACS and its logout service, NUL-terminated in
 * r->pool (any may be NULL)
 */

static ngx_int_t
ngx_http_ent_sso_saml_urls(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_str_t *sp, ngx_str_t *acs, ngx_str_t *slo)
{
    if (sp) {
        if (ctx->idp.saml_sp_entity_id.len) {
            *sp = ctx->idp.saml_sp_entity_id;

        } else if (ngx_http_ent_sso_base_url(r, sp, "saml/metadata")
                   != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_ent_sso_saml_str(r, sp, NULL) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (acs
        && (ngx_http_ent_sso_base_url(r, acs, "saml/acs") != NGX_OK
            || ngx_http_ent_sso_saml_str(r, acs, NULL) != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (slo
        && (ngx_http_ent_sso_base_url(r, slo, "saml/slo") != NGX_OK
            || ngx_http_ent_sso_saml_str(r, slo, NULL) != NGX_OK))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* POST /_ent/saml/acs */


ngx_int_t
ngx_http_ent_sso_saml_acs(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (ctx->phase >= 4) {
        /* the user's lookup and the session: as for OpenID Connect */
        return ngx_http_ent_sso_callback(r, ctx);
    }

    if (!ctx->idp.saml) {
        return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_NOT_FOUND,
                                          "not a SAML tenant",
                                          "This organization signs in "
                                          "with OpenID Connect.");
    }

    if (ctx->phase == 1) {
        if (ctx->status == NGX_HTTP_BAD_REQUEST) {
            return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                              "an assertion used twice",
                                              "This sign-in response was "
                                              "used already.");
        }

        if (ctx->status != NGX_OK) {
            return ngx_http_ent_sso_answer(r, ctx,
                                           NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "unavailable",
                                           "Sign-in is unavailable right "
                                           "now.");
        }

        /* an IdP's assertion of an email is taken as verified */

        rc = 0;

        if (ctx->id.email.len && ctx->idp.domains.len) {
            u_char  *list;

            list = ngx_pnalloc(r->pool, ctx->idp.domains.len + 1);
            if (list == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            *ngx_cpymem(list, ctx->idp.domains.data, ctx->idp.domains.len)
                = '\0';
            rc = ent_email_domain_in((char *) ctx->id.email.data,
                                     (char *) list);
        }

        return ngx_http_ent_sso_provision(r, ctx, rc ? 1 : 0);
    }

    if (!ctx->body_done) {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                              "not a POST",
                                              "The sign-in response is "
                                              "invalid.");
        }

        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_ent_sso_body_read);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            /* answered by nginx (an error_page, maybe): decided */
            ctx->decided = 1;
            return rc;
        }

        ngx_http_finalize_request(r, NGX_DONE);

        if (!ctx->body_done) {
            ctx->waiting = 1;
            return NGX_DONE;
        }
    }

    return ngx_http_ent_sso_saml_check(r, ctx);
}


static ngx_int_t
ngx_http_ent_sso_saml_check(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    int                            rv;
    u_char                        *p, *b64;
    size_t                         n;
    char                          *email, *id;
    ngx_int_t                      rc;
    ngx_str_t                      body, raw, request_id, key, acs_url,
                                   sp_url, relay, state_relay;
    ngx_str_t                     *argv, *rargv;
    ngx_uint_t                     ncmds;
    ngx_ent_redis_cmd_t            cmds[2];
    ent_saml_expect_t              expect;
    ent_saml_result_t              res;
    char                           err[160];
    u_char                         kbuf[256];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    rc = ngx_http_ent_sso_body(r, ENT_SAML_MAX_B64_LEN + 4096, &body);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                          "an empty or oversized body",
                                          "The sign-in response is "
                                          "invalid.");
    }

    if (ngx_http_ent_sso_arg(r, &body, "SAMLResponse", &raw) == NULL
        || raw.len == 0)
    {
        return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                          "no single SAMLResponse",
                                          "The sign-in response is "
                                          "invalid.");
    }

    /* form-decoded ("+" kept: base64 has no spaces) */

    b64 = ngx_pnalloc(r->pool, raw.len);
    if (b64 == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b64;
    ngx_unescape_uri(&p, &raw.data, raw.len, 0);
    n = p - b64;

    /* the RelayState, form-decoded */

    ngx_str_null(&relay);

    if (ngx_http_ent_sso_arg(r, &body, "RelayState", &raw) && raw.len) {
        if (raw.len > 3 * ENT_RETURN_TO_MAX_LEN) {
            return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                              "an oversized RelayState",
                                              "The sign-in response is "
                                              "invalid.");
        }

        relay.data = ngx_pnalloc(r->pool, raw.len);
        if (relay.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = relay.data;
        ngx_unescape_uri(&p, &raw.data, raw.len, 0);
        relay.len = p - relay.data;
    }

    ngx_memzero(&expect, sizeof(ent_saml_expect_t));

    if (ngx_http_ent_sso_saml_open(r, ctx, &request_id, &state_relay)
        == NGX_OK)
    {
        /* SP-initiated: the RelayState we sent comes back */

        if (state_relay.len
            && (relay.len != state_relay.len
                || CRYPTO_memcmp(relay.data, state_relay.data, relay.len)
                   != 0))
        {
            return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                              "RelayState does not match "
                                              "the request",
                                              "The sign-in response is "
                                              "invalid.");
        }

        expect.request_id = (char *) request_id.data;

    } else if (ctx->idp.saml_unsolicited) {

        /*
         * IdP-initiated: a RelayState may only name a page of this site,
         * as a path or as an absolute URL on this very host
         */

        ngx_str_null(&request_id);

        if (ngx_http_ent_sso_saml_relay(r, ctx, &relay) != NGX_OK) {
            return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                              "an unsolicited RelayState "
                                              "that is not a page of this "
                                              "site",
                                              "The sign-in response is "
                                              "invalid.");
        }

    } else {
        return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                          ctx->saml_state.len
                                          ? "no valid SAML state cookie"
                                          : "an unsolicited response, "
                                            "and IdP-initiated login is "
                                            "off",
                                          "The sign-in took too long or "
                                          "was started elsewhere. Please "
                                          "try again.");
    }

    if (ngx_http_ent_sso_saml_urls(r, ctx, &sp_url, &acs_url, NULL)
        != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &ctx->idp.issuer, NULL) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    expect.idp_keys = ngx_http_ent_sso_saml_key(r, ctx,
                                                NGX_HTTP_ENT_SSO_KEY_IDP_XML);
    if (expect.idp_keys == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->idp.saml_sp_key.len) {
        expect.sp_keys = ngx_http_ent_sso_saml_key(r, ctx,
                                                 NGX_HTTP_ENT_SSO_KEY_SP_XML);
        if (expect.sp_keys == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ctx->idp.saml_name_id_format.len) {
        if (ngx_http_ent_sso_saml_str(r, &ctx->idp.saml_name_id_format, NULL)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        expect.name_id_format = (char *) ctx->idp.saml_name_id_format.data;
    }

    expect.acs_url = (char *) acs_url.data;
    expect.sp_entity_id = (char *) sp_url.data;
    expect.idp_entity_id = (char *) ctx->idp.issuer.data;
    expect.now = ngx_http_ent_sso_now(r);
    expect.skew = ctx->idp.saml_skew >= 0 ? ctx->idp.saml_skew : smcf->skew;
    expect.allow_idp_initiated = ctx->idp.saml_unsolicited;
    expect.allow_sha1 = ctx->idp.saml_allow_sha1;
    expect.require_signed_assertion = 0;

    ngx_memzero(&res, sizeof(ent_saml_result_t));
    err[0] = '\0';

    rv = ent_saml_response_check(b64, n, &expect, &res, err, sizeof(err));

    if (rv != ENT_SAML_OK) {
        ent_saml_result_free(&res);
        p = ngx_pnalloc(r->pool, ngx_strlen(err) + 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_cpystrn(p, (u_char *) (err[0] ? err : "invalid response"),
                    ngx_strlen(err) + 1);

        return ngx_http_ent_sso_saml_fail(r, ctx,
                                          rv == ENT_SAML_INTERNAL
                                          ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                          : NGX_HTTP_UNAUTHORIZED,
                                          (char *) p,
                                          "The identity provider's "
                                          "response is not valid.");
    }

    /* the identity */

    email = NULL;

    if (ctx->idp.claim_email.len) {
        u_char  name[128];

        if (ctx->idp.claim_email.len < sizeof(name)) {
            *ngx_cpymem(name, ctx->idp.claim_email.data,
                        ctx->idp.claim_email.len) = '\0';
            email = ent_saml_attr_join(&res, (char *) name);
        }
    }

    if (ngx_http_ent_sso_saml_str(r, &ctx->id.sub, res.name_id) != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &ctx->id.op_sid, res.session_index)
           != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &ctx->id.email,
                                     email ? email
                                     : (res.name_id_format
                                        && ngx_strstr(res.name_id_format,
                                                      "emailAddress"))
                                       ? res.name_id : NULL)
           != NGX_OK)
    {
        free(email);
        ent_saml_result_free(&res);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    free(email);

    {
        char    *v;
        u_char   name[128];

        if (ctx->idp.claim_name.len && ctx->idp.claim_name.len < 128) {
            *ngx_cpymem(name, ctx->idp.claim_name.data,
                        ctx->idp.claim_name.len) = '\0';
            v = ent_saml_attr_join(&res, (char *) name);
            (void) ngx_http_ent_sso_saml_str(r, &ctx->id.name, v);
            free(v);
        }

        if (ctx->idp.claim_groups.len && ctx->idp.claim_groups.len < 128) {
            *ngx_cpymem(name, ctx->idp.claim_groups.data,
                        ctx->idp.claim_groups.len) = '\0';
            v = ent_saml_attr_list(&res, (char *) name);
            (void) ngx_http_ent_sso_saml_str(r, &ctx->id.groups, v);
            free(v);
        }
    }

    /* the tenant's custom attributes, values joined with "," */

    {
        char         *v;
        json_t       *map, *path;
        const char   *key;

        map = ngx_http_ent_sso_attrs_map(r, ctx);

        json_object_foreach(map, key, path) {
            if (!json_is_string(path)) {
                continue;
            }

            v = ent_saml_attr_join(&res, json_string_value(path));
            if (v == NULL) {
                continue;
            }

            rc = ngx_http_ent_sso_attrs_add(r, ctx, key, v);
            free(v);

            if (rc == NGX_ERROR) {
                json_decref(map);
                ent_saml_result_free(&res);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        json_decref(map);
    }

    ctx->id.iss = ctx->idp.issuer;
    ctx->id.iss.len = ngx_strlen(ctx->idp.issuer.data);

    if (ctx->id.sub.len == 0 || ctx->id.sub.len > 255) {
        ent_saml_result_free(&res);
        return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                          "no usable NameID",
                                          "The identity provider's "
                                          "response is not valid.");
    }

    /* the assertion is good once: its ID until it expires */

    id = res.assertion_id;
    key.data = kbuf;
    key.len = ngx_http_ent_sso_key(r, ctx, kbuf, sizeof(kbuf), "sa",
                                   (u_char *) id, ngx_strlen(id));

    argv = ngx_palloc(r->pool, 6 * sizeof(ngx_str_t));

    if (key.len == 0 || argv == NULL) {
        ent_saml_result_free(&res);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&argv[0], "SET");
    argv[1].data = ngx_pnalloc(r->pool, key.len);
    argv[5].data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);

    if (argv[1].data == NULL || argv[5].data == NULL) {
        ent_saml_result_free(&res);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(argv[1].data, key.data, key.len);
    argv[1].len = key.len;
    ngx_str_set(&argv[2], "1");
    ngx_str_set(&argv[3], "NX");
    ngx_str_set(&argv[4], "EX");
    /* kept as long as the assertion is accepted: the skew it was given */
    argv[5].len = ngx_sprintf(argv[5].data, "%T",
                              ngx_max(res.expires + expect.skew - expect.now,
                                      1) + 1)
                  - argv[5].data;

    ent_saml_result_free(&res);

    cmds[0].argc = 6;
    cmds[0].argv = argv;

    /* and the request is answered once: its ID until the state expires */

    ncmds = 1;

    if (request_id.len) {
        key.len = ngx_http_ent_sso_key(r, ctx, kbuf, sizeof(kbuf), "sr",
                                       request_id.data, request_id.len);
        rargv = ngx_palloc(r->pool, 6 * sizeof(ngx_str_t));

        if (key.len == 0 || rargv == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rargv[0] = argv[0];
        rargv[1].data = ngx_pnalloc(r->pool, key.len);
        rargv[5].data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);

        if (rargv[1].data == NULL || rargv[5].data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(rargv[1].data, kbuf, key.len);
        rargv[1].len = key.len;
        rargv[2] = argv[2];
        rargv[3] = argv[3];
        rargv[4] = argv[4];
        rargv[5].len = ngx_sprintf(rargv[5].data, "%T", smcf->state_ttl)
                       - rargv[5].data;

        cmds[1].argc = 6;
        cmds[1].argv = rargv;
        ncmds = 2;
    }

    if (ngx_ent_redis_run(r, cmds, ncmds, ngx_http_ent_sso_saml_replayed, r)
        == NGX_AGAIN)
    {
        ctx->phase = 1;
        ctx->waiting = 1;
        return ngx_ent_phase_wait(r);
    }

    return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "unavailable",
                                   "Sign-in is unavailable right now.");
}


static void
ngx_http_ent_sso_saml_replayed(ngx_ent_op_t *op)
{
    ngx_uint_t               i;
    ngx_http_request_t      *r;
    ngx_http_ent_sso_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    ctx->status = (op->status == NGX_ENT_OK && op->nreplies > 0)
                  ? NGX_OK : NGX_HTTP_SERVICE_UNAVAILABLE;

    for (i = 0; ctx->status == NGX_OK && i < op->nreplies; i++) {
        if (op->replies[i]->type == REDIS_REPLY_ERROR) {
            ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;

        } else if (op->replies[i]->type == REDIS_REPLY_NIL) {
            ctx->status = NGX_HTTP_BAD_REQUEST;
        }
    }

    ngx_http_ent_sso_wake(r, ctx);
}


static ngx_int_t
ngx_http_ent_sso_saml_open(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *request_id, ngx_str_t *relay)
{
    json_t  *js, *i, *s, *rt, *e;

    if (ctx->saml_state.len == 0) {
        return NGX_DECLINED;
    }

    js = ngx_http_ent_sso_unseal(r, ctx, "saml-state", &ctx->saml_state);

    i = json_object_get(js, "i");
    s = json_object_get(js, "s");
    rt = json_object_get(js, "r");
    e = json_object_get(js, "e");

    if (!json_is_string(i) || !json_is_string(s) || !json_is_string(rt)
        || !json_is_integer(e)
        || json_integer_value(e) < ngx_http_ent_sso_now(r)
        || ngx_http_ent_sso_saml_str(r, request_id, json_string_value(i))
           != NGX_OK
        || ngx_http_ent_sso_saml_str(r, relay, json_string_value(s))
           != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &ctx->return_to,
                                     json_string_value(rt))
           != NGX_OK)
    {
        json_decref(js);
        return NGX_ERROR;
    }

    json_decref(js);

    if (!ent_return_to_ok(ctx->return_to.data, ctx->return_to.len)) {
        ngx_str_set(&ctx->return_to, "/");
    }

    return NGX_OK;
}


/* GET /_ent/saml/metadata */


ngx_int_t
ngx_http_ent_sso_saml_metadata(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    u_char     *body;
    char       *xml;
    size_t      len;
    ngx_str_t   acs, sp, slo, cert;

    if (ngx_http_ent_sso_saml_urls(r, ctx, &sp, &acs, &slo) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cert = ctx->idp.saml_sp_cert;

    if (cert.len && ngx_http_ent_sso_saml_str(r, &cert, NULL) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->idp.saml_name_id_format.len
        && ngx_http_ent_sso_saml_str(r, &ctx->idp.saml_name_id_format, NULL)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ent_saml_sp_metadata_ex((char *) sp.data, (char *) acs.data,
                                (char *) slo.data,
                                cert.len ? (char *) cert.data : NULL,
                                ctx->idp.saml_name_id_format.len
                                ? (char *) ctx->idp.saml_name_id_format.data
                                : NULL,
                                ctx->idp.saml_sp_key.len != 0, &xml, &len)
        != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        free(xml);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body, xml, len);
    free(xml);

    ctx->decided = 1;

    return ngx_http_ent_sso_send(r, NGX_HTTP_OK, "application/samlmetadata+xml",
                                 body, len);
}


/*
 * GET /_ent/saml/slo: the IdP's LogoutRequest (it revokes the sessions of
 * that IdP session, or of that NameID, on every node, and is answered with
 * a LogoutResponse), or its LogoutResponse to ours.  Both must carry the
 * Redirect binding's signature by one of the IdP's certificates.
 */

ngx_int_t
ngx_http_ent_sso_saml_slo(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    int                            rv;
    json_t                        *js, *l, *e;
    ngx_str_t                      slo, request_id, empty;
    ent_saml_rkey_t               *certs;
    ent_saml_logout_t              lo;
    ent_saml_redirect_t            m;
    char                           err[160];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (ctx->phase > 0) {
        return ngx_http_ent_sso_revoke(r, ctx, NULL);
    }

    if (!ctx->idp.saml) {
        return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_NOT_FOUND,
                                          "logout: not a SAML tenant",
                                          "This organization signs in "
                                          "with OpenID Connect.");
    }

    if (r->method != NGX_HTTP_GET || r->args.len == 0) {
        return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                          "logout: not a Redirect-binding "
                                          "message",
                                          "The sign-out message is "
                                          "invalid.");
    }

    certs = ngx_http_ent_sso_saml_key(r, ctx, NGX_HTTP_ENT_SSO_KEY_IDP_RDR);

    if (certs == NULL
        || ngx_http_ent_sso_saml_urls(r, ctx, NULL, NULL, &slo) != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &ctx->idp.issuer, NULL) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&m, sizeof(ent_saml_redirect_t));
    ngx_memzero(&lo, sizeof(ent_saml_logout_t));
    err[0] = '\0';

    rv = ent_saml_redirect_decode((char *) r->args.data, r->args.len, certs,
                                  1, ctx->idp.saml_allow_sha1, &m, err,
                                  sizeof(err));

    if (rv == ENT_SAML_OK && m.is_request) {
        rv = ent_saml_logout_request_check((u_char *) m.xml, m.xml_len,
                                           (char *) ctx->idp.issuer.data,
                                           (char *) slo.data,
                                           ngx_http_ent_sso_now(r),
                                           ctx->idp.saml_skew >= 0
                                           ? ctx->idp.saml_skew : smcf->skew,
                                           &lo, err, sizeof(err));

        if (rv == ENT_SAML_OK) {
            /* as a back-channel logout: jti, sid, sub */

            ctx->claims = json_pack("{s:s, s:s}", "jti", lo.id,
                                    "sub", lo.name_id);

            /*
             * one SessionIndex: that session; several (each must end):
             * all of the NameID's sessions, as with none
             */

            if (ctx->claims && lo.nsession_indexes == 1) {
                (void) json_object_set_new(ctx->claims, "sid",
                                      json_string(lo.session_indexes[0]));
            }

            if (ctx->claims == NULL
                || ngx_http_ent_sso_saml_str(r, &ctx->state, lo.id)
                   != NGX_OK
                || ngx_http_ent_sso_saml_str(r, &ctx->return_to,
                                             m.relay_state ? m.relay_state
                                                           : "")
                   != NGX_OK)
            {
                ent_saml_logout_free(&lo);
                ent_saml_redirect_free(&m);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ent_saml_logout_free(&lo);
            ent_saml_redirect_free(&m);

            return ngx_http_ent_sso_revoke(r, ctx, NULL);
        }

    } else if (rv == ENT_SAML_OK) {

        /* the answer to our LogoutRequest: its ID is in the state cookie */

        js = ngx_http_ent_sso_unseal(r, ctx, "saml-logout", &ctx->saml_state);
        l = json_object_get(js, "l");
        e = json_object_get(js, "e");

        if (!json_is_string(l) || !json_is_integer(e)
            || json_integer_value(e) < ngx_http_ent_sso_now(r)
            || ngx_http_ent_sso_saml_str(r, &request_id, json_string_value(l))
               != NGX_OK)
        {
            json_decref(js);
            ent_saml_redirect_free(&m);
            return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                              "logout: no valid SAML state "
                                              "cookie",
                                              "The sign-out took too long "
                                              "or was started elsewhere.");
        }

        json_decref(js);

        rv = ent_saml_logout_response_check((u_char *) m.xml, m.xml_len,
                                            (char *) ctx->idp.issuer.data,
                                            (char *) slo.data,
                                            (char *) request_id.data,
                                            ngx_http_ent_sso_now(r),
                                            ctx->idp.saml_skew >= 0
                                            ? ctx->idp.saml_skew
                                            : smcf->skew,
                                            &lo, err, sizeof(err));

        if (rv == ENT_SAML_OK) {
            ngx_str_null(&empty);

            if (!lo.success) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "ent sso: saml: the IdP could not end its "
                              "session: %s", lo.status ? lo.status : "");
            }

            ent_saml_logout_free(&lo);
            ent_saml_redirect_free(&m);

            if (ngx_http_ent_sso_saml_cookie(r, &empty, 0) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ctx->sso_status = "logout";
            ctx->decided = 1;
            ngx_str_set(&empty, "/");

            return ngx_http_ent_sso_redirect(r, &empty);
        }
    }

    ent_saml_logout_free(&lo);
    ent_saml_redirect_free(&m);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ent sso: saml: logout: %s", err[0] ? err : "invalid");

    ngx_http_ent_sso_event(r, ctx, "logout.idp", "failure", "saml: invalid "
                           "logout message", NULL);

    if (ctx->sso_status[0] == 'n') {
        ctx->sso_status = "logout_failed";
    }

    return ngx_http_ent_sso_answer(r, ctx,
                                   rv == ENT_SAML_INTERNAL
                                   ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                   : rv == ENT_SAML_SIGNATURE
                                     ? NGX_HTTP_UNAUTHORIZED
                                     : NGX_HTTP_BAD_REQUEST,
                                   "logout_failed",
                                   "The sign-out message is not valid.");
}


/*
 * An IdP-initiated logout has revoked what it named (or found the request
 * used already): the browser's cookie goes, and the IdP gets its
 * LogoutResponse, when it has a logout service to receive one
 */

ngx_int_t
ngx_http_ent_sso_saml_slo_done(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_uint_t revoked)
{
    char                          *xml;
    size_t                         xlen;
    ngx_int_t                      rc;
    ngx_str_t                      sp;
    u_char                         id[40];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (!revoked) {
        ngx_http_ent_sso_event(r, ctx, "logout.idp", "failure",
                               "saml: a LogoutRequest used twice", NULL);
        return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_BAD_REQUEST,
                                       "logout_failed",
                                       "This sign-out message was used "
                                       "already.");
    }

    ngx_http_ent_sso_event(r, ctx, "logout.idp", "success",
                           "saml: IdP-initiated", NULL);
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ent sso: saml: IdP-initiated logout revoked %ui "
                  "session%s", ctx->nsessions,
                  ctx->nsessions == 1 ? "" : "s");

    ctx->sso_status = "logout";

    if (ngx_http_ent_sso_set_cookie(r, &smcf->cookie, (u_char *) "", 0, 0)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->idp.saml_slo_url.len == 0) {
        ctx->decided = 1;
        return ngx_http_ent_sso_send(r, NGX_HTTP_OK, "application/json",
                                     (u_char *) "{\"signed_out\":true}\n",
                                     sizeof("{\"signed_out\":true}\n") - 1);
    }

    if (ngx_http_ent_sso_saml_id(id) != NGX_OK
        || ngx_http_ent_sso_saml_urls(r, ctx, &sp, NULL, NULL) != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &ctx->idp.saml_slo_url, NULL)
           != NGX_OK
        || ent_saml_logout_response_xml((char *) sp.data,
                                        (char *) ctx->idp.saml_slo_url.data,
                                        (char *) id, (char *) ctx->state.data,
                                        ngx_http_ent_sso_now(r), 1, &xml,
                                        &xlen)
           != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_ent_sso_saml_send(r, ctx, &ctx->idp.saml_slo_url,
                                    "SAMLResponse", xml, xlen,
                                    &ctx->return_to);
    free(xml);

    return rc;
}


/*
 * SP-initiated logout, the local session already gone: a LogoutRequest
 * for the session's NameID and SessionIndex, its ID kept in the state
 * cookie for the IdP's answer
 */

ngx_int_t
ngx_http_ent_sso_saml_logout(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    char                          *xml;
    size_t                         xlen;
    json_t                        *js;
    ngx_int_t                      rc;
    ngx_str_t                      sp, sealed;
    u_char                         id[40];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (ctx->id.iss.len != ctx->idp.issuer.len
        || ngx_strncmp(ctx->id.iss.data, ctx->idp.issuer.data,
                       ctx->id.iss.len) != 0)
    {
        /* a session of an IdP the tenant no longer uses */
        ctx->decided = 1;
        return ngx_http_ent_sso_send(r, NGX_HTTP_OK, "application/json",
                                     (u_char *) "{\"signed_out\":true}\n",
                                     sizeof("{\"signed_out\":true}\n") - 1);
    }

    if (ngx_http_ent_sso_saml_id(id) != NGX_OK
        || ngx_http_ent_sso_saml_urls(r, ctx, &sp, NULL, NULL) != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &ctx->idp.saml_slo_url, NULL)
           != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &ctx->id.sub, NULL) != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &ctx->id.op_sid, NULL) != NGX_OK
        || (ctx->idp.saml_name_id_format.len
            && ngx_http_ent_sso_saml_str(r, &ctx->idp.saml_name_id_format,
                                         NULL)
               != NGX_OK))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ent_saml_logout_request_xml((char *) sp.data,
                                    (char *) ctx->idp.saml_slo_url.data,
                                    (char *) id, ngx_http_ent_sso_now(r),
                                    (char *) ctx->id.sub.data,
                                    ctx->idp.saml_name_id_format.len
                                    ? (char *)
                                      ctx->idp.saml_name_id_format.data
                                    : NULL,
                                    ctx->id.op_sid.len
                                    ? (char *) ctx->id.op_sid.data : NULL,
                                    &xml, &xlen)
        != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    js = json_pack("{s:s, s:I}", "l", (char *) id,
                   "e", (json_int_t) (ngx_http_ent_sso_now(r)
                                      + smcf->state_ttl));

    if (ngx_http_ent_sso_seal(r, ctx, "saml-logout", js, &sealed) != NGX_OK
        || ngx_http_ent_sso_saml_cookie(r, &sealed, smcf->state_ttl)
           != NGX_OK)
    {
        free(xml);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_ent_sso_saml_send(r, ctx, &ctx->idp.saml_slo_url,
                                    "SAMLRequest", xml, xlen, NULL);
    free(xml);

    return rc;
}


/*
 * the parsed form of a key or certificates, kept per worker
 *
 * The pointer returned stays valid until NGX_HTTP_ENT_SSO_SAML_KEYS - 1
 * further lookups have been made in this worker.  Each lookup, hit or
 * miss, is stamped with a new serial number, so stamps are unique and the
 * victim of a miss is the slot whose last lookup is the oldest, never one
 * of the last NGX_HTTP_ENT_SSO_SAML_KEYS - 1 lookups.  A request holds at
 * most two pointers (the ACS: IdP certificates and the SP key) and uses
 * them before it returns to the event loop, so no other request's lookup
 * comes in between; both therefore stay valid while it uses them.  A clock
 * would not do: lookups in the same millisecond share a stamp, and the
 * entry just returned may be chosen as the victim of the next miss.
 */

static void *
ngx_http_ent_sso_saml_key(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_uint_t kind)
{
    void                         *obj;
    ngx_str_t                    *src, pem;
    ngx_uint_t                    i, lru;
    SHA256_CTX                    sha;
    u_char                        md[SHA256_DIGEST_LENGTH], k;
    char                          err[128];
    ngx_http_ent_sso_saml_key_t  *keys;

    src = (kind == NGX_HTTP_ENT_SSO_KEY_IDP_XML
           || kind == NGX_HTTP_ENT_SSO_KEY_IDP_RDR)
          ? &ctx->idp.saml_cert : &ctx->idp.saml_sp_key;

    if (src->len == 0) {
        return NULL;
    }

    k = (u_char) kind;

    SHA256_Init(&sha);
    SHA256_Update(&sha, &k, 1);
    SHA256_Update(&sha, ctx->tenant_id.data, ctx->tenant_id.len);
    SHA256_Update(&sha, src->data, src->len);
    SHA256_Final(md, &sha);

    if (ngx_http_ent_sso_saml_keys == NULL) {
        ngx_http_ent_sso_saml_keys = ngx_calloc(NGX_HTTP_ENT_SSO_SAML_KEYS
                                          * sizeof(ngx_http_ent_sso_saml_key_t),
                                          ngx_cycle->log);
        if (ngx_http_ent_sso_saml_keys == NULL) {
            return NULL;
        }
    }

    keys = ngx_http_ent_sso_saml_keys;
    lru = 0;

    for (i = 0; i < NGX_HTTP_ENT_SSO_SAML_KEYS; i++) {
        if (keys[i].obj && keys[i].kind == kind
            && ngx_memcmp(keys[i].md, md, sizeof(md)) == 0)
        {
            keys[i].used = ++ngx_http_ent_sso_saml_keys_serial;
            return keys[i].obj;
        }

        if (keys[i].obj == NULL
            || (keys[lru].obj && keys[i].used < keys[lru].used))
        {
            lru = i;
        }
    }

    /* a miss: parse, into the free or least recently used slot */

    pem = *src;

    if (src == &ctx->idp.saml_sp_key
        && ngx_http_ent_sso_secret_open(r, ctx, "saml-sp-key", src, &pem)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: saml: the SP key of \"%V\" does not decrypt "
                      "with ent_sso_secret_key (set it again with entctl)",
                      &ctx->tenant_code);
        return NULL;
    }

    err[0] = '\0';

    switch (kind) {

    case NGX_HTTP_ENT_SSO_KEY_IDP_XML:
        obj = ent_saml_keys_load((char *) pem.data, pem.len, err,
                                 sizeof(err));
        break;

    case NGX_HTTP_ENT_SSO_KEY_IDP_RDR:
        obj = ent_saml_rkey_load_certs((char *) pem.data, pem.len, err,
                                       sizeof(err));
        break;

    case NGX_HTTP_ENT_SSO_KEY_SP_XML:
        obj = ent_saml_sp_key_load((char *) pem.data, pem.len, err,
                                   sizeof(err));
        break;

    default: /* NGX_HTTP_ENT_SSO_KEY_SP_RDR */
        obj = ent_saml_rkey_load_private((char *) pem.data, pem.len, err,
                                         sizeof(err));
        break;
    }

    if (pem.data != src->data) {
        ngx_explicit_memzero(pem.data, pem.len);
    }

    if (obj == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: saml: the %s of \"%V\" cannot be used: %s",
                      src == &ctx->idp.saml_cert ? "IdP certificates"
                                                  : "SP key",
                      &ctx->tenant_code, err);
        return NULL;
    }

    if (keys[lru].obj) {
        ngx_http_ent_sso_saml_key_free(keys[lru].kind, keys[lru].obj);
    }

    ngx_memcpy(keys[lru].md, md, sizeof(md));
    keys[lru].kind = kind;
    keys[lru].obj = obj;
    keys[lru].used = ++ngx_http_ent_sso_saml_keys_serial;

    return obj;
}


static void
ngx_http_ent_sso_saml_key_free(ngx_uint_t kind, void *obj)
{
    switch (kind) {

    case NGX_HTTP_ENT_SSO_KEY_IDP_XML:
    case NGX_HTTP_ENT_SSO_KEY_SP_XML:
        ent_saml_keys_free(obj);
        break;

    default:
        ent_saml_rkey_free(obj);
        break;
    }
}


void
ngx_http_ent_sso_saml_exit(void)
{
    ngx_uint_t  i;

    if (ngx_http_ent_sso_saml_keys == NULL) {
        return;
    }

    for (i = 0; i < NGX_HTTP_ENT_SSO_SAML_KEYS; i++) {
        if (ngx_http_ent_sso_saml_keys[i].obj) {
            ngx_http_ent_sso_saml_key_free(ngx_http_ent_sso_saml_keys[i].kind,
                                           ngx_http_ent_sso_saml_keys[i].obj);
        }
    }

    ngx_free(ngx_http_ent_sso_saml_keys);
    ngx_http_ent_sso_saml_keys = NULL;
}


/*
 * s into out (a copy, NUL-terminated); s NULL: out itself made
 * NUL-terminated in a copy (for the library, which wants C strings)
 */

static ngx_int_t
ngx_http_ent_sso_saml_str(ngx_http_request_t *r, ngx_str_t *out,
    const char *s)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   src;

    if (s) {
        src.data = (u_char *) s;
        src.len = ngx_strlen(s);

    } else {
        src = *out;
    }

    len = src.len;

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (len) {
        ngx_memcpy(p, src.data, len);
    }

    p[len] = '\0';

    out->data = p;
    out->len = len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_saml_fail(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_uint_t status, const char *reason, const char *text)
{
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ent sso: saml: %s", reason);

    ngx_http_ent_sso_event(r, ctx, "login", "failure", reason, NULL);

    if (ctx->sso_status[0] == 'n') {
        ctx->sso_status = "login_failed";
    }

    return ngx_http_ent_sso_answer(r, ctx, status, "login_failed", text);
}
