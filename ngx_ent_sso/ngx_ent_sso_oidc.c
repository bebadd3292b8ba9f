/*
 * ngx_http_ent_sso_module: OpenID Connect relying party.
 *
 * Login: authorization code flow with PKCE (S256), "state" and "nonce".
 * The login state (state, nonce, PKCE verifier, where to return) travels
 * in a short-lived __Host- cookie sealed (AES-256-GCM) with the key of
 * ent_sso_secret_key and bound to the tenant; the callback accepts a state
 * once (SET NX in Redis), so a replayed callback fails even with the
 * cookie.  The code is exchanged at the token endpoint through the fetch
 * location, the ID token verified (pinned algorithms, iss, aud, azp, exp,
 * iat, nbf with skew, nonce), the user found or provisioned in PostgreSQL,
 * and a new session created (a new id at every login).
 */


#include "ngx_ent_sso.h"


#define NGX_HTTP_ENT_SSO_BEARERS  1024

typedef struct {
    u_char      *key;            /* issuer, audience, token */
    size_t       issuer_len;
    size_t       audience_len;
    size_t       token_len;
    json_t      *claims;
    time_t       exp;
    time_t       nbf;
} ngx_http_ent_sso_bearer_t;


static ngx_int_t ngx_http_ent_sso_open_state(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *state);
static ngx_int_t ngx_http_ent_sso_exchange(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
static ngx_int_t ngx_http_ent_sso_client_secret(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *secret);
static ngx_int_t ngx_http_ent_sso_id_token(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
static ngx_int_t ngx_http_ent_sso_map_claims(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, json_t *claims, ngx_uint_t *jit);
static ngx_int_t ngx_http_ent_sso_claim(ngx_http_request_t *r, json_t *claims,
    ngx_str_t *path, ngx_str_t *out, size_t size);
static void ngx_http_ent_sso_replay_done(ngx_ent_op_t *op);
static void ngx_http_ent_sso_login_done(ngx_ent_op_t *op);
static ngx_uint_t ngx_http_ent_sso_has_ctl(u_char *p, size_t len);
static ngx_int_t ngx_http_ent_sso_fail(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_uint_t status, const char *error,
    const char *reason, const char *text);
static ngx_int_t ngx_http_ent_sso_scopes_ok(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, json_t *claims);
static ngx_uint_t ngx_http_ent_sso_has_scope(json_t *claims, u_char *scope,
    size_t len);
static void ngx_http_ent_sso_bearer_foreign(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
static ngx_http_ent_sso_bearer_t *ngx_http_ent_sso_bearer_slot(
    ngx_http_ent_sso_ctx_t *ctx);
static json_t *ngx_http_ent_sso_bearer_cached(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_http_ent_sso_bearer_t *b);
static void ngx_http_ent_sso_bearer_keep(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_http_ent_sso_bearer_t *b,
    json_t *claims);
static void ngx_http_ent_sso_bearer_clear(ngx_http_ent_sso_bearer_t *b);
static time_t ngx_http_ent_sso_bearer_time(json_t *v);
static u_char *ngx_http_ent_sso_escape(u_char *p, ngx_str_t *s);
static size_t ngx_http_ent_sso_escape_len(ngx_str_t *s);


/* login: the redirect to the IdP */


ngx_int_t
ngx_http_ent_sso_login(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_str_t                      url, redirect_uri, state, nonce, verifier,
                                   sealed;
    json_t                        *js;
    u_char                         challenge[ENT_PKCE_CHALLENGE_LEN];
    u_char                         buf[3][64];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (ctx->idp.saml) {
        return ngx_http_ent_sso_saml_login(r, ctx);
    }

    rc = ngx_http_ent_sso_need_discovery(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->return_to.len == 0
        || !ent_return_to_ok(ctx->return_to.data, ctx->return_to.len))
    {
        if (ctx->return_to.len) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ent sso: an unsafe return address replaced "
                          "by \"/\"");
        }

        ngx_str_set(&ctx->return_to, "/");
    }

    if (ent_random_token(buf[0], 32) != 0
        || ent_random_token(buf[1], 32) != 0
        || ent_random_token(buf[2], 32) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    state.data = buf[0];
    state.len = ent_b64url_encoded_len(32);
    nonce.data = buf[1];
    nonce.len = state.len;
    verifier.data = buf[2];
    verifier.len = state.len;

    ent_pkce_s256(verifier.data, verifier.len, challenge);

    /* the sealed login state */

    js = json_pack("{s:s%, s:s%, s:s%, s:s%, s:I}",
                   "s", state.data, state.len,
                   "n", nonce.data, nonce.len,
                   "v", verifier.data, verifier.len,
                   "r", ctx->return_to.data, ctx->return_to.len,
                   "e", (json_int_t) (ngx_http_ent_sso_now(r)
                                      + smcf->state_ttl));
    if (ngx_http_ent_sso_seal(r, ctx, "oidc-state", js, &sealed) != NGX_OK
        || ngx_http_ent_sso_set_cookie(r, &smcf->state_cookie, sealed.data,
                                       sealed.len, smcf->state_ttl)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the authorization request */

    if (ngx_http_ent_sso_base_url(r, &redirect_uri, "oidc/callback")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    url.len = ctx->disc->authorization.len + 512
              + ngx_http_ent_sso_escape_len(&ctx->idp.client_id)
              + ngx_http_ent_sso_escape_len(&redirect_uri)
              + ngx_http_ent_sso_escape_len(&ctx->idp.scopes);

    url.data = ngx_pnalloc(r->pool, url.len);
    if (url.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(url.data, ctx->disc->authorization.data,
                   ctx->disc->authorization.len);

    *p++ = ngx_strlchr(ctx->disc->authorization.data,
                       ctx->disc->authorization.data
                       + ctx->disc->authorization.len, '?')
           ? '&' : '?';

    p = ngx_cpymem(p, "response_type=code&client_id=",
                   sizeof("response_type=code&client_id=") - 1);
    p = ngx_http_ent_sso_escape(p, &ctx->idp.client_id);
    p = ngx_cpymem(p, "&redirect_uri=", sizeof("&redirect_uri=") - 1);
    p = ngx_http_ent_sso_escape(p, &redirect_uri);
    p = ngx_cpymem(p, "&scope=", sizeof("&scope=") - 1);
    p = ngx_http_ent_sso_escape(p, &ctx->idp.scopes);
    p = ngx_sprintf(p, "&state=%V&nonce=%V&code_challenge=%*s"
                    "&code_challenge_method=S256", &state, &nonce,
                    (size_t) ENT_PKCE_CHALLENGE_LEN, challenge);

    url.len = p - url.data;

    if (ctx->sso_status[0] == 'n') {
        ctx->sso_status = "redirect";
    }

    ctx->decided = 1;

    return ngx_http_ent_sso_redirect(r, &url);
}


/* the callback */


ngx_int_t
ngx_http_ent_sso_callback(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_str_t                      state, iss, err, key, cookie;
    ngx_ent_redis_cmd_t            cmd;
    ngx_str_t                     *argv;
    u_char                         kbuf[256];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    switch (ctx->phase) {

    case 0:
        break;

    case 1:
        /* the state's one use */

        if (ctx->status == NGX_HTTP_BAD_REQUEST) {
            return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_state",
                                         "a login state used twice",
                                         "This sign-in response was used "
                                         "already.");
        }

        if (ctx->status != NGX_OK) {
            goto unavailable;
        }

        ctx->phase = 2;
        return ngx_http_ent_sso_exchange(r, ctx);

    case 2:
        if (!ctx->fetched || ctx->fetch_what != NGX_HTTP_ENT_SSO_FETCH_TOKEN)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->fetched = 0;
        ctx->fetch_what = NGX_HTTP_ENT_SSO_FETCH_NONE;

        if (ctx->fetch_status != NGX_HTTP_OK) {
            return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                         "login_failed",
                                         "the token endpoint refused the "
                                         "code",
                                         "The sign-in could not be "
                                         "completed.");
        }

        /* kept apart: a JWKS fetch reuses the fetch fields */
        ctx->token_body = ctx->fetch_body;
        ctx->phase = 3;

        /* fall through */

    case 3:
        return ngx_http_ent_sso_id_token(r, ctx);

    case 4:
        /* the user, found or provisioned */

        if (ctx->status == NGX_HTTP_FORBIDDEN) {
            return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_FORBIDDEN,
                                         "no_account",
                                         "not a member, and not "
                                         "provisionable",
                                         "Your account has no access to "
                                         "this organization.");
        }

        if (ctx->status == NGX_HTTP_FORBIDDEN + 1000) {
            return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_FORBIDDEN,
                                         "suspended",
                                         "the user or the membership is "
                                         "suspended",
                                         "Your account is suspended.");
        }

        if (ctx->status != NGX_OK) {
            goto unavailable;
        }

        ctx->phase = 5;
        return ngx_http_ent_sso_session_create(r, ctx);

    case 5:
        if (ctx->status != NGX_OK) {
            goto unavailable;
        }

        /* the session exists: its cookie, and back where the user was */

        if (ngx_http_ent_sso_set_cookie(r, &smcf->cookie,
                                        ctx->cookie_value.data,
                                        ctx->cookie_value.len,
                                        smcf->absolute)
            != NGX_OK
            || ngx_http_ent_sso_set_cookie(r, &smcf->state_cookie,
                                           (u_char *) "", 0, 0)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_ent_sso_event(r, ctx, "login", "success", NULL,
                               &ctx->id.user_id);

        ctx->sso_status = "login";
        ctx->decided = 1;

        return ngx_http_ent_sso_redirect(r, &ctx->return_to);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method != NGX_HTTP_GET) {
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_request", "not a GET",
                                     "The sign-in response is invalid.");
    }

    rc = ngx_http_ent_sso_need_discovery(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_ent_sso_arg(r, &r->args, "error", &err)) {
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                     "login_failed",
                                     "the identity provider returned an "
                                     "error",
                                     "The identity provider did not sign "
                                     "you in.");
    }

    if (ngx_http_ent_sso_arg(r, &r->args, "code", &ctx->code) == NULL
        || ngx_http_ent_sso_arg(r, &r->args, "state", &state) == NULL
        || ctx->code.len == 0 || ctx->code.len > 2048
        || state.len == 0 || state.len > 256)
    {
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_request",
                                     "no single code and state",
                                     "The sign-in response is invalid.");
    }

    /* RFC 9207: the issuer of the response, when the IdP sends it */

    if (ngx_http_ent_sso_arg(r, &r->args, "iss", &iss)) {
        p = ngx_pnalloc(r->pool, iss.len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cookie.data = p;
        ngx_unescape_uri(&p, &iss.data, iss.len, 0);
        cookie.len = p - cookie.data;

        if (cookie.len != ctx->idp.issuer.len
            || ngx_strncmp(cookie.data, ctx->idp.issuer.data, cookie.len)
               != 0)
        {
            return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request",
                                         "wrong iss in the response",
                                         "The sign-in response comes from "
                                         "another issuer.");
        }

    } else if (ctx->disc->iss_param) {
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_request",
                                     "no iss in the response",
                                     "The sign-in response is invalid.");
    }

    rc = ngx_http_ent_sso_open_state(r, ctx, &state);
    if (rc != NGX_OK) {
        return rc;
    }

    /* a state is good once, whatever the cookie says */

    key.data = kbuf;
    key.len = ngx_http_ent_sso_key(r, ctx, kbuf, sizeof(kbuf), "st",
                                   state.data, state.len);
    if (key.len == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    argv = ngx_palloc(r->pool, 6 * sizeof(ngx_str_t));
    if (argv == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&argv[0], "SET");
    argv[1].data = ngx_pnalloc(r->pool, key.len);
    if (argv[1].data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(argv[1].data, key.data, key.len);
    argv[1].len = key.len;
    ngx_str_set(&argv[2], "1");
    ngx_str_set(&argv[3], "NX");
    ngx_str_set(&argv[4], "EX");
    argv[5].data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (argv[5].data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    argv[5].len = ngx_sprintf(argv[5].data, "%T", smcf->state_ttl)
                  - argv[5].data;

    cmd.argc = 6;
    cmd.argv = argv;

    rc = ngx_ent_redis_run(r, &cmd, 1, ngx_http_ent_sso_replay_done, r);

    if (rc == NGX_AGAIN) {
        ctx->phase = 1;
        ctx->waiting = 1;
        return ngx_ent_phase_wait(r);
    }

unavailable:

    ctx->sso_status = "unavailable";
    return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "unavailable",
                                   "Sign-in is unavailable right now.");
}


static ngx_int_t
ngx_http_ent_sso_open_state(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *state)
{
    json_t  *js, *s, *nn, *v, *rt, *e;

    if (ctx->state.len == 0 || ctx->state.len > 4096) {
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_state",
                                     "no login state cookie",
                                     "The sign-in took too long or was "
                                     "started elsewhere. Please try "
                                     "again.");
    }

    js = ngx_http_ent_sso_unseal(r, ctx, "oidc-state", &ctx->state);

    s = json_object_get(js, "s");
    nn = json_object_get(js, "n");
    v = json_object_get(js, "v");
    rt = json_object_get(js, "r");
    e = json_object_get(js, "e");

    if (!json_is_string(s) || !json_is_string(nn) || !json_is_string(v)
        || !json_is_string(rt) || !json_is_integer(e))
    {
        json_decref(js);
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_state",
                                     "a login state cookie that does not "
                                     "open",
                                     "The sign-in response is invalid.");
    }

    if (!ent_ct_equal((u_char *) json_string_value(s), json_string_length(s),
                      state->data, state->len))
    {
        json_decref(js);
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_state",
                                     "state does not match the cookie",
                                     "The sign-in response does not belong "
                                     "to this browser.");
    }

    if (json_integer_value(e) < ngx_http_ent_sso_now(r)) {
        json_decref(js);
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_state", "login state expired",
                                     "The sign-in took too long. Please try "
                                     "again.");
    }

    ctx->nonce.len = json_string_length(nn);
    ctx->verifier.len = json_string_length(v);
    ctx->return_to.len = json_string_length(rt);

    ctx->nonce.data = ngx_pnalloc(r->pool, ctx->nonce.len + 1);
    ctx->verifier.data = ngx_pnalloc(r->pool, ctx->verifier.len + 1);
    ctx->return_to.data = ngx_pnalloc(r->pool, ctx->return_to.len + 1);

    if (ctx->nonce.data == NULL || ctx->verifier.data == NULL
        || ctx->return_to.data == NULL)
    {
        json_decref(js);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *ngx_cpymem(ctx->nonce.data, json_string_value(nn), ctx->nonce.len) = 0;
    *ngx_cpymem(ctx->verifier.data, json_string_value(v),
                ctx->verifier.len) = 0;
    *ngx_cpymem(ctx->return_to.data, json_string_value(rt),
                ctx->return_to.len) = 0;

    json_decref(js);

    /* sealed by us, yet checked again: never an open redirect */

    if (!ent_return_to_ok(ctx->return_to.data, ctx->return_to.len)) {
        ngx_str_set(&ctx->return_to, "/");
    }

    return NGX_OK;
}


static void
ngx_http_ent_sso_replay_done(ngx_ent_op_t *op)
{
    ngx_http_request_t      *r;
    ngx_http_ent_sso_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    if (ngx_ent_redis_replied(op) != NGX_OK || op->nreplies != 1) {
        /* fail closed: a state is spent only where Redis says so */
        ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    } else if (op->replies[0]->type == REDIS_REPLY_NIL) {
        ctx->status = NGX_HTTP_BAD_REQUEST;

    } else {
        ctx->status = NGX_OK;
    }

    ngx_http_ent_sso_wake(r, ctx);
}


static ngx_int_t
ngx_http_ent_sso_exchange(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    u_char     *p;
    ngx_int_t   rc;
    ngx_str_t   body, redirect_uri, secret, basic, creds;

    if (ngx_http_ent_sso_base_url(r, &redirect_uri, "oidc/callback")
        != NGX_OK
        || ngx_http_ent_sso_client_secret(r, ctx, &secret) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.len = 256 + ctx->code.len + ctx->verifier.len
               + ngx_http_ent_sso_escape_len(&redirect_uri)
               + ngx_http_ent_sso_escape_len(&ctx->idp.client_id)
               + ngx_http_ent_sso_escape_len(&secret);

    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the code came URL-encoded in the query: it goes on as it came */

    p = ngx_sprintf(body.data, "grant_type=authorization_code&code=%V"
                    "&redirect_uri=", &ctx->code);
    p = ngx_http_ent_sso_escape(p, &redirect_uri);
    p = ngx_sprintf(p, "&code_verifier=%V", &ctx->verifier);

    if (secret.len == 0) {
        /* a public client (RFC 6749 4.1.3): its id in the body, PKCE */

        p = ngx_cpymem(p, "&client_id=", sizeof("&client_id=") - 1);
        p = ngx_http_ent_sso_escape(p, &ctx->idp.client_id);
        body.len = p - body.data;

        ctx->fetch_what = NGX_HTTP_ENT_SSO_FETCH_TOKEN;
        rc = ngx_http_ent_sso_fetch(r, ctx, &ctx->disc->token, &body, NULL);

        return rc == NGX_ERROR ? NGX_HTTP_INTERNAL_SERVER_ERROR : rc;
    }

    if (ctx->idp.token_auth.len == sizeof("client_secret_post") - 1
        && ngx_strncmp(ctx->idp.token_auth.data, "client_secret_post",
                       ctx->idp.token_auth.len) == 0)
    {
        p = ngx_cpymem(p, "&client_id=", sizeof("&client_id=") - 1);
        p = ngx_http_ent_sso_escape(p, &ctx->idp.client_id);
        p = ngx_cpymem(p, "&client_secret=", sizeof("&client_secret=") - 1);
        p = ngx_http_ent_sso_escape(p, &secret);
        body.len = p - body.data;

        ngx_explicit_memzero(secret.data, secret.len);

        ctx->fetch_what = NGX_HTTP_ENT_SSO_FETCH_TOKEN;
        rc = ngx_http_ent_sso_fetch(r, ctx, &ctx->disc->token, &body, NULL);

        return rc == NGX_ERROR ? NGX_HTTP_INTERNAL_SERVER_ERROR : rc;
    }

    body.len = p - body.data;

    /* RFC 6749 2.3.1: both parts form-encoded, then Basic */

    creds.len = ngx_http_ent_sso_escape_len(&ctx->idp.client_id) + 1
                + ngx_http_ent_sso_escape_len(&secret);
    creds.data = ngx_pnalloc(r->pool, creds.len);
    basic.data = ngx_pnalloc(r->pool, sizeof("Basic ") - 1
                                      + ngx_base64_encoded_length(creds.len));

    if (creds.data == NULL || basic.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_ent_sso_escape(creds.data, &ctx->idp.client_id);
    *p++ = ':';
    p = ngx_http_ent_sso_escape(p, &secret);
    creds.len = p - creds.data;

    ngx_explicit_memzero(secret.data, secret.len);

    p = ngx_cpymem(basic.data, "Basic ", sizeof("Basic ") - 1);

    {
        ngx_str_t  enc;

        enc.data = p;
        ngx_encode_base64(&enc, &creds);
        basic.len = sizeof("Basic ") - 1 + enc.len;
    }

    ctx->fetch_what = NGX_HTTP_ENT_SSO_FETCH_TOKEN;
    rc = ngx_http_ent_sso_fetch(r, ctx, &ctx->disc->token, &body, &basic);

    return rc == NGX_ERROR ? NGX_HTTP_INTERNAL_SERVER_ERROR : rc;
}


static ngx_int_t
ngx_http_ent_sso_client_secret(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *secret)
{
    if (ctx->idp.client_secret.len == 0) {
        /* a public client: PKCE alone */
        ngx_str_set(secret, "");
        return NGX_OK;
    }

    if (ngx_http_ent_sso_secret_open(r, ctx, "client-secret",
                                     &ctx->idp.client_secret, secret)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: the client secret of \"%V\" does not "
                      "decrypt with ent_sso_secret_key (set it again with "
                      "entctl)", &ctx->tenant_code);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_id_token(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_str_t                      token;
    ngx_uint_t                     jit;
    json_t                        *resp, *v;
    json_error_t                   jerr;
    char                          *aud;
    ent_jwt_t                      jwt;
    const char                    *reason;

    resp = json_loadb((char *) ctx->token_body.data, ctx->token_body.len,
                      JSON_REJECT_DUPLICATES, &jerr);
    v = json_object_get(resp, "id_token");

    if (!json_is_string(v) || json_string_length(v) > ENT_JWT_MAX_LEN) {
        json_decref(resp);
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                     "login_failed",
                                     "no ID token in the token response",
                                     "The sign-in could not be "
                                     "completed.");
    }

    token.len = json_string_length(v);
    token.data = ngx_pnalloc(r->pool, token.len);
    if (token.data == NULL) {
        json_decref(resp);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(token.data, json_string_value(v), token.len);
    json_decref(resp);

    aud = ngx_pnalloc(r->pool, ctx->idp.client_id.len + 1);
    if (aud == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *ngx_cpymem(aud, ctx->idp.client_id.data, ctx->idp.client_id.len) = '\0';

    ngx_memzero(&jwt, sizeof(ent_jwt_t));

    rc = ngx_http_ent_sso_verify(r, ctx, &token, aud,
                                 (char *) ctx->nonce.data, &jwt, &reason);

    if (rc == NGX_DECLINED) {
        ent_jwt_free(&jwt);
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                     "login_failed", reason,
                                     "The identity token is not valid.");
    }

    if (rc != NGX_OK) {
        ent_jwt_free(&jwt);
        return rc;
    }

    ctx->id.id_token = token;

    rc = ngx_http_ent_sso_map_claims(r, ctx, jwt.claims, &jit);

    ent_jwt_free(&jwt);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_ent_sso_provision(r, ctx, jit);
}


/* find or provision the user (OIDC and SAML alike); phase 4 follows */

ngx_int_t
ngx_http_ent_sso_provision(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_uint_t jit)
{
    ngx_int_t                      rc;
    ngx_str_t                      params[7];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    params[0] = ctx->tenant_id;
    params[1] = ctx->id.iss;
    params[2] = ctx->id.sub;
    params[3] = ctx->id.email;
    params[4] = ctx->id.name;
    params[5] = ctx->id.groups;

    if (jit) {
        ngx_str_set(&params[6], "true");

    } else {
        ngx_str_set(&params[6], "false");
    }

    rc = ngx_ent_pg_query(r, smcf->login_stmt, params,
                          ngx_http_ent_sso_login_done, r);

    if (rc == NGX_AGAIN) {
        ctx->phase = 4;
        ctx->waiting = 1;
        return ngx_ent_phase_wait(r);
    }

    ctx->sso_status = "unavailable";
    return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "unavailable",
                                   "Sign-in is unavailable right now.");
}


/*
 * Verifies a JWT of the tenant's IdP: NGX_OK (claims in jwt), NGX_DECLINED
 * (invalid, *reason says why), NGX_DONE (waiting for the JWK set), or an
 * HTTP status.
 */

ngx_int_t
ngx_http_ent_sso_verify(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_str_t *token, const char *aud, const char *nonce, ent_jwt_t *jwt,
    const char **reason)
{
    int                            rv;
    char                          *err, *iss;
    ngx_int_t                      rc;
    ent_jwt_expect_t               expect;
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    err = ngx_pcalloc(r->pool, 160);
    iss = ngx_pnalloc(r->pool, ctx->idp.issuer.len + 1);
    if (err == NULL || iss == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *reason = err;

    if (token->len > ENT_JWT_MAX_LEN) {
        ngx_cpystrn((u_char *) err, (u_char *) "token too long", 160);
        return NGX_DECLINED;
    }

    rc = ngx_http_ent_sso_need_jwks(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    rv = ent_jwt_verify(token->data, token->len, ctx->jwks, smcf->algs, jwt,
                        err, 160);

    if (rv == ENT_JWT_NO_KEY) {
        rc = ngx_http_ent_sso_jwks_refetch(r, ctx);

        if (rc == NGX_OK) {
            ent_jwt_free(jwt);
            ngx_memzero(jwt, sizeof(ent_jwt_t));

            rc = ngx_http_ent_sso_need_jwks(r, ctx);
            if (rc != NGX_OK) {
                return rc;
            }

            rv = ent_jwt_verify(token->data, token->len, ctx->jwks,
                                smcf->algs, jwt, err, 160);
        }
    }

    if (rv != ENT_JWT_OK) {
        if (err[0] == '\0') {
            ngx_cpystrn((u_char *) err, (u_char *) "invalid token", 160);
        }

        return NGX_DECLINED;
    }

    *ngx_cpymem(iss, ctx->idp.issuer.data, ctx->idp.issuer.len) = '\0';

    ngx_memzero(&expect, sizeof(ent_jwt_expect_t));
    expect.iss = iss;
    expect.aud = aud;
    expect.azp = nonce ? aud : NULL;
    expect.nonce = nonce;
    expect.now = ngx_http_ent_sso_now(r);
    expect.skew = smcf->skew;
    expect.require_exp = nonce ? 1 : (ctx->endpoint
                                      != NGX_HTTP_ENT_SSO_EP_BACKCHANNEL);
    expect.require_iat = nonce ? 1 : 0;

    if (ctx->endpoint == NGX_HTTP_ENT_SSO_EP_BACKCHANNEL) {
        /* never older than the jti replay record (a day) remembers */
        expect.require_iat = 1;
        expect.max_age = 86400 - 2 * smcf->skew;
    }

    if (ent_jwt_check(jwt->claims, &expect, err, 160) != 0) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_map_claims(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, json_t *claims, ngx_uint_t *jit)
{
    json_t      *v, *map, *path;
    u_char      *list;
    ngx_str_t    sub, verified;
    const char  *key;
    char         buf[1025];

    *jit = 0;

    v = json_object_get(claims, "sub");

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > 255)
    {
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                     "login_failed", "no valid sub claim",
                                     "The identity token is not valid.");
    }

    if (ngx_http_ent_sso_has_ctl((u_char *) json_string_value(v),
                                 json_string_length(v)))
    {
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                     "login_failed",
                                     "control characters in sub",
                                     "The identity token is not valid.");
    }

    sub.len = json_string_length(v);
    sub.data = ngx_pnalloc(r->pool, sub.len + 1);
    if (sub.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *ngx_cpymem(sub.data, json_string_value(v), sub.len) = '\0';

    ctx->id.sub = sub;
    ctx->id.iss = ctx->idp.issuer;

    v = json_object_get(claims, "sid");

    if (json_is_string(v) && json_string_length(v) <= 255) {
        ctx->id.op_sid.len = json_string_length(v);
        ctx->id.op_sid.data = ngx_pnalloc(r->pool, ctx->id.op_sid.len + 1);
        if (ctx->id.op_sid.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ctx->id.op_sid.data, json_string_value(v),
                   ctx->id.op_sid.len);
    }

    /* the schema's limits: an email of 320 bytes, a name of 256 */

    if (ngx_http_ent_sso_claim(r, claims, &ctx->idp.claim_email,
                               &ctx->id.email, 321) != NGX_OK
        || ngx_http_ent_sso_claim(r, claims, &ctx->idp.claim_name,
                                  &ctx->id.name, 257) != NGX_OK
        || ngx_http_ent_sso_claim(r, claims, &ctx->idp.claim_groups,
                                  &ctx->id.groups, 0) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the tenant's custom attributes: a string, a number or a list */

    map = ngx_http_ent_sso_attrs_map(r, ctx);

    json_object_foreach(map, key, path) {
        if (!json_is_string(path)) {
            continue;
        }

        if (ent_claim_string(claims, json_string_value(path), buf,
                             sizeof(buf)) != 0
            && ent_claim_list(claims, json_string_value(path), buf,
                              sizeof(buf)) < 0)
        {
            continue;
        }

        if (ngx_http_ent_sso_attrs_add(r, ctx, key, buf) == NGX_ERROR) {
            json_decref(map);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    json_decref(map);

    /*
     * An email decides membership only when verified, and provisioning
     * only for a verified domain of the tenant.
     */

    v = json_object_get(claims, "email_verified");

    verified.len = 0;

    if (json_is_true(v)
        || (json_is_string(v) && ngx_strcmp(json_string_value(v), "true")
                                 == 0))
    {
        verified.len = 1;
    }

    if (ctx->id.email.len && !verified.len && v == NULL
        && ctx->idp.trust_email && ctx->idp.domains.len)
    {
        /*
         * No email_verified at all (Entra ID, OneLogin): the IdP's word is
         * taken for an address in a domain the tenant proved it owns; an
         * explicit "false" is never overridden.
         */

        list = ngx_pnalloc(r->pool, ctx->idp.domains.len + 1);
        if (list == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_cpymem(list, ctx->idp.domains.data, ctx->idp.domains.len) = 0;

        verified.len = ent_email_domain_in((char *) ctx->id.email.data,
                                           (char *) list) == 1;
    }

    if (ctx->id.email.len && !verified.len) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ent sso: the email of \"%V\" is not verified: it "
                      "decides nothing", &ctx->id.sub);
        ngx_str_set(&ctx->id.email, "");
    }

    if (ctx->id.email.len && ctx->idp.domains.len) {
        list = ngx_pnalloc(r->pool, ctx->idp.domains.len + 1);
        if (list == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_cpymem(list, ctx->idp.domains.data, ctx->idp.domains.len) = 0;

        *jit = ent_email_domain_in((char *) ctx->id.email.data,
                                   (char *) list);
    }

    return NGX_OK;
}


/*
 * A claim into out: a string of at most size - 1 bytes (longer: absent),
 * or with size 0 a list, joined with ",", of at most 2047 bytes.
 */

static ngx_int_t
ngx_http_ent_sso_claim(ngx_http_request_t *r, json_t *claims,
    ngx_str_t *path, ngx_str_t *out, size_t size)
{
    int     n;
    char    name[128];
    char   *buf;

    ngx_str_null(out);

    if (path->len == 0 || path->len >= sizeof(name)) {
        return NGX_OK;
    }

    ngx_memcpy(name, path->data, path->len);
    name[path->len] = '\0';

    buf = ngx_pnalloc(r->pool, size ? size : 2048);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    n = size ? ent_claim_string(claims, name, buf, size)
             : ent_claim_list(claims, name, buf, 2048);

    if (n < 0 || (size && n != 0)
        || ngx_http_ent_sso_has_ctl((u_char *) buf, ngx_strlen(buf)))
    {
        /* absent, or unsafe in a header or a variable: not taken */
        return NGX_OK;
    }

    out->data = (u_char *) buf;
    out->len = ngx_strlen(buf);

    return NGX_OK;
}


/* a byte below 0x20 or 0x7f: refused in anything that becomes a header */

static ngx_uint_t
ngx_http_ent_sso_has_ctl(u_char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_ent_sso_login_done(ngx_ent_op_t *op)
{
    size_t                   len;
    const u_char            *data;
    ngx_http_request_t      *r;
    ngx_http_ent_sso_ctx_t  *ctx;
    ngx_str_t                outcome;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    ctx->status = NGX_OK;

    if (op->status != NGX_ENT_OK || op->rows.nrows != 1
        || op->rows.ncols != 4)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: the login query failed (status %ui)",
                      op->status);
        ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        ngx_http_ent_sso_wake(r, ctx);
        return;
    }

    (void) ngx_ent_rows_cell(&op->rows, 0, 0, &data, &len);
    outcome.len = data ? len : 0;
    outcome.data = ngx_pnalloc(r->pool, outcome.len + 1);

    if (outcome.data == NULL) {
        ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        ngx_http_ent_sso_wake(r, ctx);
        return;
    }

    *ngx_cpymem(outcome.data, data, outcome.len) = 0;

    if (ngx_ent_rows_cell(&op->rows, 0, 1, &data, &len) == 0 && data) {
        ctx->id.user_id.data = ngx_pnalloc(r->pool, len + 1);
        if (ctx->id.user_id.data) {
            *ngx_cpymem(ctx->id.user_id.data, data, len) = 0;
            ctx->id.user_id.len = len;
        }
    }

    if (ngx_ent_rows_cell(&op->rows, 0, 2, &data, &len) == 0 && data) {
        ctx->id.roles.data = ngx_pnalloc(r->pool, len + 1);
        if (ctx->id.roles.data) {
            *ngx_cpymem(ctx->id.roles.data, data, len) = 0;
            ctx->id.roles.len = len;
        }
    }

    if (ngx_ent_rows_cell(&op->rows, 0, 3, &data, &len) == 0 && data
        && len == 1 && data[0] == 't')
    {
        ngx_http_ent_sso_event(r, ctx, "provision", "success", "jit",
                               &ctx->id.user_id);
    }

    if (ngx_strcmp(outcome.data, "ok") != 0 || ctx->id.user_id.len == 0) {
        ctx->status = ngx_strcmp(outcome.data, "suspended") == 0
                      ? NGX_HTTP_FORBIDDEN + 1000 : NGX_HTTP_FORBIDDEN;
    }

    ngx_http_ent_sso_wake(r, ctx);
}


/* bearer tokens for APIs */


/*
 * A refused token that names another issuer than the tenant's: perhaps a
 * token of another tenant's IdP.  Its signature cannot be checked here
 * (another tenant's keys), so the event is kept only if PostgreSQL finds
 * the issuer configured for another tenant ("if_other_issuer"); at most
 * 10 a second per worker, so that junk tokens do not flood the journal.
 */

static void
ngx_http_ent_sso_bearer_foreign(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    u_char                 *dot, *end, *buf;
    size_t                  len;
    json_t                 *claims, *iss;
    ngx_str_t               d[2];
    ngx_ent_audit_event_t   ev;
    static time_t           second;
    static ngx_uint_t       count;

    if (second != ngx_time()) {
        second = ngx_time();
        count = 0;
    }

    if (count >= 10 || ctx->bearer.len > 16384) {
        return;
    }

    end = ctx->bearer.data + ctx->bearer.len;
    dot = ngx_strlchr(ctx->bearer.data, end, '.');

    if (dot == NULL) {
        return;
    }

    len = ngx_strlchr(dot + 1, end, '.') ? (size_t)
          (ngx_strlchr(dot + 1, end, '.') - dot - 1) : 0;

    buf = ngx_pnalloc(r->pool, len + 1);

    if (len == 0 || buf == NULL
        || ent_b64url_decode(buf, &len, dot + 1, len) != 0)
    {
        return;
    }

    claims = json_loadb((char *) buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (claims == NULL) {
        return;
    }

    iss = json_object_get(claims, "iss");

    if (json_is_string(iss) && json_string_length(iss) > 0
        && json_string_length(iss) <= 512
        && (json_string_length(iss) != ctx->idp.issuer.len
            || ngx_strncmp(json_string_value(iss), ctx->idp.issuer.data,
                           ctx->idp.issuer.len) != 0))
    {
        count++;

        ngx_memzero(&ev, sizeof(ngx_ent_audit_event_t));

        ev.tenant = ctx->tenant_id;
        ev.actor_type = "anonymous";
        ev.action = "cross_tenant.token";
        ev.result = "failure";
        ngx_str_set(&ev.reason, "a bearer token of another tenant's "
                                "identity provider");
        ngx_str_set(&d[0], "issuer");
        d[1].data = (u_char *) json_string_value(iss);
        d[1].len = json_string_length(iss);
        ev.details = d;
        ev.ndetails = 1;
        ev.other_issuer = d[1];

        ngx_ent_audit(r, &ev);
    }

    json_decref(claims);
}


ngx_int_t
ngx_http_ent_sso_bearer(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    char                       *aud;
    json_t                     *v;
    ngx_int_t                   rc;
    ngx_uint_t                  jit;
    ent_jwt_t                   jwt;
    const char                 *reason;
    ngx_http_ent_sso_bearer_t  *b;

    if (ctx->idp.api_audience.len == 0) {
        ctx->sso_status = "bearer_invalid";
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                     "invalid_token",
                                     "no API audience configured",
                                     "Bearer tokens are not accepted for "
                                     "this organization.");
    }

    ngx_memzero(&jwt, sizeof(ent_jwt_t));

    /* a token verified before by this worker: its claims, if still valid */

    b = ngx_http_ent_sso_bearer_slot(ctx);

    jwt.claims = ngx_http_ent_sso_bearer_cached(r, ctx, b);

    if (jwt.claims) {
        json_incref(jwt.claims);
        rc = NGX_OK;

    } else {
        aud = ngx_pnalloc(r->pool, ctx->idp.api_audience.len + 1);
        if (aud == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_cpymem(aud, ctx->idp.api_audience.data,
                    ctx->idp.api_audience.len)
            = '\0';

        rc = ngx_http_ent_sso_verify(r, ctx, &ctx->bearer, aud, NULL, &jwt,
                                     &reason);

        if (rc == NGX_OK) {
            ngx_http_ent_sso_bearer_keep(r, ctx, b, jwt.claims);
        }
    }

    if (rc == NGX_DECLINED) {
        ent_jwt_free(&jwt);
        ctx->sso_status = "bearer_invalid";
        ngx_http_ent_sso_bearer_foreign(r, ctx);
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                     "invalid_token", reason,
                                     "The bearer token is not valid.");
    }

    if (rc != NGX_OK) {
        ent_jwt_free(&jwt);
        return rc;
    }

    if (!ngx_http_ent_sso_scopes_ok(r, ctx, jwt.claims)) {
        ent_jwt_free(&jwt);
        ctx->sso_status = "bearer_scope";
        return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                     "invalid_token", "a scope is missing",
                                     "The bearer token lacks a required "
                                     "scope.");
    }

    rc = ngx_http_ent_sso_map_claims(r, ctx, jwt.claims, &jit);

    if (rc == NGX_OK) {
        /* a token's subject is the IdP's, not one of our user ids */
        ctx->id.user_id = ctx->id.sub;

        v = json_object_get(jwt.claims, "exp");
        ctx->id.expires = json_is_integer(v) ? json_integer_value(v) : 0;
    }

    ent_jwt_free(&jwt);

    if (rc != NGX_OK) {
        return rc;
    }

    ctx->authenticated = 1;
    ctx->identity_from_bearer = 1;

    return NGX_OK;
}


/*
 * Verified bearer tokens, per worker: a client sends the same token many
 * times, and an RSA or EC signature costs more than the rest of the
 * request.  An entry holds a copy of the issuer, the API audience and the
 * token it was verified for, and is used only when all three are equal to
 * the request's (the token compared in constant time; a change of the
 * tenant's IdP or API audience misses), and only while the token is valid
 * (exp, with no skew granted); its scopes are checked again on every
 * request.  A direct-mapped table: the slot is SipHash-1-3, under a key
 * drawn per worker, of the token's last 64 octets (its signature: the
 * octets that differ from one token to the next), so that nobody can aim
 * tokens at one slot; a collision replaces the older entry.
 */

static ngx_http_ent_sso_bearer_t  *ngx_http_ent_sso_bearers;
static uint64_t                    ngx_http_ent_sso_bearer_key[2];


static ngx_http_ent_sso_bearer_t *
ngx_http_ent_sso_bearer_slot(ngx_http_ent_sso_ctx_t *ctx)
{
    size_t    n;
    uint64_t  hash;

    if (ngx_http_ent_sso_bearers == NULL) {
        return NULL;
    }

    n = ngx_min(ctx->bearer.len, 64);

    hash = ngx_ent_siphash(ngx_http_ent_sso_bearer_key,
                           ctx->bearer.data + ctx->bearer.len - n, n);

    return &ngx_http_ent_sso_bearers[hash % NGX_HTTP_ENT_SSO_BEARERS];
}


static json_t *
ngx_http_ent_sso_bearer_cached(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_http_ent_sso_bearer_t *b)
{
    time_t   now;
    u_char  *p;

    if (b == NULL
        || b->claims == NULL
        || b->issuer_len != ctx->idp.issuer.len
        || b->audience_len != ctx->idp.api_audience.len
        || b->token_len != ctx->bearer.len)
    {
        return NULL;
    }

    p = b->key;

    if (ngx_memcmp(p, ctx->idp.issuer.data, b->issuer_len) != 0) {
        return NULL;
    }

    p += b->issuer_len;

    if (ngx_memcmp(p, ctx->idp.api_audience.data, b->audience_len) != 0) {
        return NULL;
    }

    p += b->audience_len;

    if (!ent_ct_equal(p, b->token_len, ctx->bearer.data, ctx->bearer.len)) {
        return NULL;
    }

    now = ngx_http_ent_sso_now(r);

    if (now >= b->exp || now < b->nbf) {
        ngx_http_ent_sso_bearer_clear(b);
        return NULL;
    }

    return b->claims;
}


/* an entry emptied: the token's copy wiped before it is freed */

static void
ngx_http_ent_sso_bearer_clear(ngx_http_ent_sso_bearer_t *b)
{
    if (b->claims) {
        json_decref(b->claims);
        b->claims = NULL;
    }

    if (b->key) {
        OPENSSL_cleanse(b->key,
                        b->issuer_len + b->audience_len + b->token_len);
        ngx_free(b->key);
        b->key = NULL;
    }
}


static void
ngx_http_ent_sso_bearer_keep(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_http_ent_sso_bearer_t *b, json_t *claims)
{
    u_char  *p;
    size_t   len;
    json_t  *v;

    v = json_object_get(claims, "exp");

    if (!json_is_number(v) || ctx->idp.issuer.len == 0) {
        return;
    }

    if (ngx_http_ent_sso_bearers == NULL) {
        if (RAND_bytes((u_char *) ngx_http_ent_sso_bearer_key,
                       sizeof(ngx_http_ent_sso_bearer_key))
            != 1)
        {
            return;
        }

        ngx_http_ent_sso_bearers = ngx_calloc(NGX_HTTP_ENT_SSO_BEARERS
                                         * sizeof(ngx_http_ent_sso_bearer_t),
                                         r->connection->log);
        if (ngx_http_ent_sso_bearers == NULL) {
            return;
        }

        b = ngx_http_ent_sso_bearer_slot(ctx);
    }

    len = ctx->idp.issuer.len + ctx->idp.api_audience.len + ctx->bearer.len;

    p = ngx_alloc(len, r->connection->log);
    if (p == NULL) {
        return;
    }

    claims = json_incref(claims);

    ngx_http_ent_sso_bearer_clear(b);

    b->key = p;
    p = ngx_cpymem(p, ctx->idp.issuer.data, ctx->idp.issuer.len);
    p = ngx_cpymem(p, ctx->idp.api_audience.data, ctx->idp.api_audience.len);
    ngx_memcpy(p, ctx->bearer.data, ctx->bearer.len);

    b->issuer_len = ctx->idp.issuer.len;
    b->audience_len = ctx->idp.api_audience.len;
    b->token_len = ctx->bearer.len;

    b->claims = claims;
    b->exp = ngx_http_ent_sso_bearer_time(v);

    v = json_object_get(claims, "nbf");
    b->nbf = json_is_number(v) ? ngx_http_ent_sso_bearer_time(v) : 0;
}


/*
 * A NumericDate the token was checked against, as a time_t: past the
 * range of one (1e300, a 64-bit bound) a conversion would be undefined;
 * a year past 10,000 is far enough for "never"
 */

static time_t
ngx_http_ent_sso_bearer_time(json_t *v)
{
    double  d;

    d = json_number_value(v);

    if (!(d > 0)) {
        return 0;
    }

    return (d < 253402300800.0) ? (time_t) d : (time_t) 253402300800LL;
}


void
ngx_http_ent_sso_bearers_exit(void)
{
    ngx_uint_t  i;

    if (ngx_http_ent_sso_bearers == NULL) {
        return;
    }

    for (i = 0; i < NGX_HTTP_ENT_SSO_BEARERS; i++) {
        ngx_http_ent_sso_bearer_clear(&ngx_http_ent_sso_bearers[i]);
    }

    ngx_free(ngx_http_ent_sso_bearers);
    ngx_http_ent_sso_bearers = NULL;
}


static ngx_int_t
ngx_http_ent_sso_scopes_ok(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    json_t *claims)
{
    u_char                       *p, *last, *start;
    ngx_str_t                    *s;
    ngx_uint_t                    i;
    ngx_http_ent_sso_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_sso_module);

    if (slcf->bearer_scopes) {
        s = slcf->bearer_scopes->elts;

        for (i = 0; i < slcf->bearer_scopes->nelts; i++) {
            if (!ngx_http_ent_sso_has_scope(claims, s[i].data, s[i].len)) {
                return 0;
            }
        }
    }

    p = ctx->idp.api_scopes.data;
    last = p + ctx->idp.api_scopes.len;

    while (p < last) {
        while (p < last && *p == ' ') {
            p++;
        }

        start = p;

        while (p < last && *p != ' ') {
            p++;
        }

        if (p > start
            && !ngx_http_ent_sso_has_scope(claims, start, p - start))
        {
            return 0;
        }
    }

    return 1;
}


static ngx_uint_t
ngx_http_ent_sso_has_scope(json_t *claims, u_char *scope, size_t len)
{
    size_t       i, n;
    json_t      *v, *e;
    const char  *s, *start;

    /* "scope": a space-separated string (RFC 9068); "scp": an array */

    v = json_object_get(claims, "scope");

    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);

        for (i = 0; i < n; /* void */) {
            start = s + i;

            while (i < n && s[i] != ' ') {
                i++;
            }

            if ((size_t) (s + i - start) == len
                && ngx_strncmp(start, scope, len) == 0)
            {
                return 1;
            }

            i++;
        }
    }

    /* "scp": an array, or (Entra ID) a space-separated string */

    v = json_object_get(claims, "scp");

    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);

        for (i = 0; i < n; /* void */) {
            start = s + i;

            while (i < n && s[i] != ' ') {
                i++;
            }

            if ((size_t) (s + i - start) == len
                && ngx_strncmp(start, scope, len) == 0)
            {
                return 1;
            }

            i++;
        }
    }

    if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            if (json_is_string(e) && json_string_length(e) == len
                && ngx_strncmp(json_string_value(e), scope, len) == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}


/* back-channel logout (OpenID Connect Back-Channel Logout 1.0) */


ngx_int_t
ngx_http_ent_sso_backchannel(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    u_char      *p;
    size_t       len;
    ngx_int_t    rc;
    ngx_str_t    body, raw;
    ngx_chain_t *cl;
    json_t      *events, *v;
    ent_jwt_t    jwt;
    const char  *reason;
    char        *aud;

    if (!ctx->body_done) {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request", "not a POST",
                                         "A logout token is POSTed.");
        }

        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_ent_sso_body_read);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            /* answered by nginx (an error_page, maybe): decided */
            ctx->decided = 1;
            return rc;
        }

        /* the reference the body reader took */
        ngx_http_finalize_request(r, NGX_DONE);

        if (!ctx->body_done) {
            /* the rest of the body is on its way */
            ctx->waiting = 1;
            return NGX_DONE;
        }
    }

    if (ctx->logout_token.len == 0) {

        if (r->request_body == NULL || r->request_body->temp_file) {
            return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request",
                                         "no body, or one too big",
                                         "A logout token is needed.");
        }

        len = 0;

        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            len += cl->buf->last - cl->buf->pos;
        }

        if (len == 0 || len > ENT_JWT_MAX_LEN + 64) {
            return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request",
                                         "a body too big or empty",
                                         "A logout token is needed.");
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

        if (ngx_http_ent_sso_arg(r, &body, "logout_token", &raw) == NULL
            || raw.len == 0)
        {
            return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request",
                                         "no single logout_token",
                                         "A logout token is needed.");
        }

        /* base64url and dots need no decoding; anything else is refused */
        ctx->logout_token = raw;
    }

    if (ctx->claims == NULL) {
        /* verified once; the revocation's steps come back here */
        aud = ngx_pnalloc(r->pool, ctx->idp.client_id.len + 1);
        if (aud == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_cpymem(aud, ctx->idp.client_id.data, ctx->idp.client_id.len)
            = '\0';

        ngx_memzero(&jwt, sizeof(ent_jwt_t));

        rc = ngx_http_ent_sso_verify(r, ctx, &ctx->logout_token, aud, NULL,
                                     &jwt, &reason);

        if (rc == NGX_DECLINED) {
            ent_jwt_free(&jwt);
            return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request", reason,
                                         "The logout token is not valid.");
        }

        if (rc != NGX_OK) {
            ent_jwt_free(&jwt);
            return rc;
        }

        /* section 2.6: events, iat, jti, sid or sub, and never a nonce */

        events = json_object_get(jwt.claims, "events");
        v = json_object_get(jwt.claims, "jti");

        if (!json_is_object(events)
            || !json_is_object(json_object_get(events,
                   "http://schemas.openid.net/event/backchannel-logout"))
            || !json_is_string(v) || json_string_length(v) == 0
            || json_string_length(v) > 256
            || !json_is_number(json_object_get(jwt.claims, "iat"))
            || json_object_get(jwt.claims, "nonce") != NULL
            || (!json_is_string(json_object_get(jwt.claims, "sid"))
                && !json_is_string(json_object_get(jwt.claims, "sub"))))
        {
            ent_jwt_free(&jwt);
            return ngx_http_ent_sso_fail(r, ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request",
                                         "not a logout token",
                                         "The logout token is not valid.");
        }

        /* keep what the revocation needs, past this function */

        ctx->claims = json_incref(jwt.claims);
        ent_jwt_free(&jwt);

        rc = ngx_http_ent_sso_revoke(r, ctx, NULL);

        return rc;
    }

    return ngx_http_ent_sso_revoke(r, ctx, NULL);
}


void
ngx_http_ent_sso_body_read(ngx_http_request_t *r)
{
    ngx_http_ent_sso_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    ctx->body_done = 1;

    if (ctx->waiting) {
        ctx->waiting = 0;
        r->read_event_handler = ngx_http_block_reading;
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
    }
}


/* a failed sign-in: recorded, then answered */


static ngx_int_t
ngx_http_ent_sso_fail(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_uint_t status, const char *error, const char *reason,
    const char *text)
{
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ent sso: %s: %s", error, reason);

    if (ctx->endpoint != NGX_HTTP_ENT_SSO_EP_NONE) {
        ngx_http_ent_sso_event(r, ctx,
                               ctx->endpoint
                               == NGX_HTTP_ENT_SSO_EP_BACKCHANNEL
                               ? "logout.backchannel" : "login",
                               "failure", reason,
                               ctx->id.user_id.len ? &ctx->id.user_id : NULL);
    }

    if (ctx->sso_status[0] == 'n') {
        ctx->sso_status = error;
    }

    return ngx_http_ent_sso_answer(r, ctx, status, error, text);
}


/* form/query encoding of a value (RFC 3986 unreserved kept) */


static u_char *
ngx_http_ent_sso_escape(u_char *p, ngx_str_t *s)
{
    return (u_char *) ngx_escape_uri(p, s->data, s->len,
                                     NGX_ESCAPE_URI_COMPONENT);
}


static size_t
ngx_http_ent_sso_escape_len(ngx_str_t *s)
{
    return s->len + 2 * ngx_escape_uri(NULL, s->data, s->len,
                                       NGX_ESCAPE_URI_COMPONENT);
}
