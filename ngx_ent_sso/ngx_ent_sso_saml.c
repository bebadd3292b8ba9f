/*
 * ngx_http_ent_sso_module: SAML 2.0 service provider (Web Browser SSO,
 * HTTP-Redirect for the AuthnRequest, HTTP-POST to /_ent/saml/acs).
 *
 * The SP's entity ID is https://<tenant host>/_ent/saml/metadata and its
 * ACS https://<tenant host>/_ent/saml/acs.  The AuthnRequest's ID, where
 * to return and an expiry travel in a sealed __Host-ent_saml cookie
 * (SameSite=None: the IdP POSTs from another site), bound to the tenant;
 * the Response must answer that ID.  An assertion is accepted once (its ID
 * kept in Redis until it expires), and so is a request (its ID kept until
 * the state cookie would expire).  Then the user is found or provisioned
 * and a session made, as for OpenID Connect.
 */


#include "ngx_ent_sso.h"
#include "ngx_ent_saml.h"


static ngx_int_t ngx_http_ent_sso_saml_open(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *request_id);
static ngx_int_t ngx_http_ent_sso_saml_check(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
static void ngx_http_ent_sso_saml_replayed(ngx_ent_op_t *op);
static ngx_int_t ngx_http_ent_sso_saml_str(ngx_http_request_t *r,
    ngx_str_t *out, const char *s);
static ngx_int_t ngx_http_ent_sso_saml_fail(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_uint_t status, const char *reason,
    const char *text);


static ngx_str_t  ngx_http_ent_sso_saml_cookie_name =
    ngx_string("__Host-ent_saml");


ngx_int_t
ngx_http_ent_sso_saml_login(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    u_char                        *p, *cookie;
    char                          *req, *sp, *acs, *sso;
    size_t                         rlen;
    json_t                        *js;
    ngx_str_t                      url, acs_url, sp_url, sealed;
    ngx_table_elt_t               *h;
    u_char                         id[40], rnd[16];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (ctx->return_to.len == 0
        || !ent_return_to_ok(ctx->return_to.data, ctx->return_to.len))
    {
        ngx_str_set(&ctx->return_to, "/");
    }

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* an xs:ID: a letter first */
    id[0] = '_';
    *ngx_hex_dump(id + 1, rnd, sizeof(rnd)) = '\0';

    if (ngx_http_ent_sso_base_url(r, &acs_url, "saml/acs") != NGX_OK
        || ngx_http_ent_sso_base_url(r, &sp_url, "saml/metadata") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sp = ngx_pnalloc(r->pool, sp_url.len + 1);
    acs = ngx_pnalloc(r->pool, acs_url.len + 1);
    sso = ngx_pnalloc(r->pool, ctx->idp.saml_sso_url.len + 1);
    if (sp == NULL || acs == NULL || sso == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *ngx_cpymem(sp, sp_url.data, sp_url.len) = '\0';
    *ngx_cpymem(acs, acs_url.data, acs_url.len) = '\0';
    *ngx_cpymem(sso, ctx->idp.saml_sso_url.data, ctx->idp.saml_sso_url.len)
        = '\0';

    if (ent_saml_authn_request(sp, acs, sso, (char *) id,
                               ngx_http_ent_sso_now(r), &req, &rlen)
        != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the sealed state: the request's ID, where to return, until when */

    js = json_pack("{s:s, s:s%, s:I}", "i", (char *) id,
                   "r", ctx->return_to.data, ctx->return_to.len,
                   "e", (json_int_t) (ngx_http_ent_sso_now(r)
                                      + smcf->state_ttl));

    cookie = NULL;

    if (ngx_http_ent_sso_seal(r, ctx, "saml-state", js, &sealed) == NGX_OK) {
        cookie = ngx_pnalloc(r->pool, sealed.len
                             + ngx_http_ent_sso_saml_cookie_name.len + 100);
    }

    if (cookie == NULL) {
        free(req);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        free(req);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Set-Cookie");
    h->value.data = cookie;
    /* SameSite=None: the IdP posts the response from another site */

    p = ngx_sprintf(cookie, "%V=%V; Path=/; Secure; HttpOnly; "
                    "SameSite=None; Max-Age=%T",
                    &ngx_http_ent_sso_saml_cookie_name, &sealed,
                    smcf->state_ttl);
    h->value.len = p - cookie;

    /* the HTTP-Redirect binding */

    url.len = ctx->idp.saml_sso_url.len + sizeof("?SAMLRequest=") + rlen;
    url.data = ngx_pnalloc(r->pool, url.len);
    if (url.data == NULL) {
        free(req);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(url.data, ctx->idp.saml_sso_url.data,
                   ctx->idp.saml_sso_url.len);
    *p++ = ngx_strlchr(ctx->idp.saml_sso_url.data,
                       ctx->idp.saml_sso_url.data
                       + ctx->idp.saml_sso_url.len, '?')
           ? '&' : '?';
    p = ngx_cpymem(p, "SAMLRequest=", sizeof("SAMLRequest=") - 1);
    p = ngx_cpymem(p, req, rlen);
    url.len = p - url.data;

    free(req);

    if (ctx->sso_status[0] == 'n') {
        ctx->sso_status = "redirect";
    }

    ctx->decided = 1;

    return ngx_http_ent_sso_redirect(r, &url);
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
    size_t                         len, n;
    char                          *acs, *sp, *iss, *cert, *email, *id;
    ngx_str_t                      body, raw, request_id, key, acs_url,
                                   sp_url;
    ngx_str_t                     *argv, *rargv;
    ngx_chain_t                   *cl;
    ngx_ent_redis_cmd_t            cmds[2];
    ent_saml_expect_t              expect;
    ent_saml_result_t              res;
    char                           err[160];
    u_char                         kbuf[256];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (r->request_body == NULL || r->request_body->temp_file) {
        return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                          "no body, or one too big",
                                          "The sign-in response is "
                                          "invalid.");
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += cl->buf->last - cl->buf->pos;
    }

    if (len == 0 || len > ENT_SAML_MAX_B64_LEN) {
        return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                          "an empty or oversized body",
                                          "The sign-in response is "
                                          "invalid.");
    }

    body.data = ngx_pnalloc(r->pool, len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = body.data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    body.len = len;

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

    if (ngx_http_ent_sso_saml_open(r, ctx, &request_id) != NGX_OK) {
        return ngx_http_ent_sso_saml_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                          "no valid SAML state cookie",
                                          "The sign-in took too long or "
                                          "was started elsewhere. Please "
                                          "try again.");
    }

    if (ngx_http_ent_sso_base_url(r, &acs_url, "saml/acs") != NGX_OK
        || ngx_http_ent_sso_base_url(r, &sp_url, "saml/metadata") != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &acs_url, NULL) != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &sp_url, NULL) != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &ctx->idp.issuer, NULL) != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &ctx->idp.saml_cert, NULL) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    acs = (char *) acs_url.data;
    sp = (char *) sp_url.data;
    iss = (char *) ctx->idp.issuer.data;
    cert = (char *) ctx->idp.saml_cert.data;

    ngx_memzero(&expect, sizeof(ent_saml_expect_t));
    expect.acs_url = acs;
    expect.sp_entity_id = sp;
    expect.idp_entity_id = iss;
    expect.idp_cert_pem = cert;
    expect.request_id = (char *) request_id.data;
    expect.now = ngx_http_ent_sso_now(r);
    expect.skew = smcf->skew;
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
            v = ent_saml_attr_join(&res, (char *) name);
            (void) ngx_http_ent_sso_saml_str(r, &ctx->id.groups, v);
            free(v);
        }
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
    argv[5].len = ngx_sprintf(argv[5].data, "%T",
                              ngx_max(res.expires - expect.now, 1)
                              + smcf->skew)
                  - argv[5].data;

    ent_saml_result_free(&res);

    cmds[0].argc = 6;
    cmds[0].argv = argv;

    /* and the request is answered once: its ID until the state expires */

    key.len = ngx_http_ent_sso_key(r, ctx, kbuf, sizeof(kbuf), "sr",
                                   request_id.data, request_id.len);
    rargv = ngx_palloc(r->pool, 6 * sizeof(ngx_str_t));

    if (key.len == 0 || rargv == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rargv[0] = argv[0];
    rargv[1].data = ngx_pnalloc(r->pool, key.len);
    if (rargv[1].data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(rargv[1].data, kbuf, key.len);
    rargv[1].len = key.len;
    rargv[2] = argv[2];
    rargv[3] = argv[3];
    rargv[4] = argv[4];
    rargv[5].data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (rargv[5].data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rargv[5].len = ngx_sprintf(rargv[5].data, "%T", smcf->state_ttl)
                   - rargv[5].data;

    cmds[1].argc = 6;
    cmds[1].argv = rargv;

    if (ngx_ent_redis_run(r, cmds, 2, ngx_http_ent_sso_saml_replayed, r)
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
    ngx_http_request_t      *r;
    ngx_http_ent_sso_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    if (op->status != NGX_ENT_OK || op->nreplies != 2
        || op->replies[0]->type == REDIS_REPLY_ERROR
        || op->replies[1]->type == REDIS_REPLY_ERROR)
    {
        ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    } else if (op->replies[0]->type == REDIS_REPLY_NIL
               || op->replies[1]->type == REDIS_REPLY_NIL)
    {
        ctx->status = NGX_HTTP_BAD_REQUEST;

    } else {
        ctx->status = NGX_OK;
    }

    ngx_http_ent_sso_wake(r, ctx);
}


static ngx_int_t
ngx_http_ent_sso_saml_open(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *request_id)
{
    json_t  *js, *i, *rt, *e;

    js = ngx_http_ent_sso_unseal(r, ctx, "saml-state", &ctx->saml_state);

    i = json_object_get(js, "i");
    rt = json_object_get(js, "r");
    e = json_object_get(js, "e");

    if (!json_is_string(i) || !json_is_string(rt) || !json_is_integer(e)
        || json_integer_value(e) < ngx_http_ent_sso_now(r)
        || ngx_http_ent_sso_saml_str(r, request_id, json_string_value(i))
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
    ngx_str_t   acs, sp;

    if (ngx_http_ent_sso_base_url(r, &acs, "saml/acs") != NGX_OK
        || ngx_http_ent_sso_base_url(r, &sp, "saml/metadata") != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &acs, NULL) != NGX_OK
        || ngx_http_ent_sso_saml_str(r, &sp, NULL) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ent_saml_sp_metadata((char *) sp.data, (char *) acs.data, &xml,
                             &len)
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
