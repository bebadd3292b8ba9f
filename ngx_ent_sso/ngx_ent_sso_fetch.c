/*
 * ngx_http_ent_sso_module: outbound HTTP and the IdPs' documents.
 *
 * Outbound HTTP goes through nginx: a subrequest, in memory, to the fetch
 * location (ent_sso_fetch_location, "/_ent/fetch" by default), which the
 * operator defines with "proxy_pass $ent_sso_fetch_url" and TLS
 * verification on.  The subrequest carries only the headers set here (the
 * client's cookies and credentials never reach an IdP).
 *
 * Discovery documents and JWK sets are kept, raw, in the "sso_docs" cache
 * zone for ent_sso_metadata_ttl: one fetch per node per TTL (a lease keeps
 * the other workers on the stale copy meanwhile).  Each worker parses a
 * JWK set once and keeps the keys, looking at the zone again at most once
 * a second; an unknown "kid" refetches the set at most once per
 * ent_sso_jwks_refetch_interval per issuer and node.
 */


#include "ngx_ent_sso.h"


#define NGX_HTTP_ENT_SSO_KEYSETS      256


typedef struct {
    ngx_uint_t                   kind;
    ngx_str_t                    url;
    ngx_http_ent_sso_ctx_t      *parent;
} ngx_http_ent_sso_fetch_ctx_t;


/* a worker's parsed JWK set of one issuer */
typedef struct {
    u_char                      *issuer;      /* malloc()ed, NUL-terminated */
    size_t                       issuer_len;
    uint32_t                     crc;
    size_t                       len;
    ngx_msec_t                   checked;
    ent_jwks_t                  *jwks;
} ngx_http_ent_sso_keyset_t;


static ngx_int_t ngx_http_ent_sso_fetch_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_ent_sso_doc_key(ngx_http_request_t *r,
    ngx_str_t *key, const char *kind, ngx_str_t *issuer);
static ngx_int_t ngx_http_ent_sso_parse_discovery(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *doc);
static ngx_int_t ngx_http_ent_sso_json_url(ngx_http_request_t *r,
    json_t *doc, const char *name, ngx_str_t *out, ngx_uint_t required);
static ngx_http_ent_sso_keyset_t *ngx_http_ent_sso_keyset(ngx_str_t *issuer,
    ngx_log_t *log);
static ngx_int_t ngx_http_ent_sso_keyset_load(ngx_http_request_t *r,
    ngx_http_ent_sso_keyset_t *ks, ngx_str_t *doc);


/* per worker: parsed key sets; freed at exit */
static ngx_http_ent_sso_keyset_t  *ngx_http_ent_sso_keysets;
static ngx_uint_t                  ngx_http_ent_sso_nkeysets;


ngx_int_t
ngx_http_ent_sso_fetch(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_str_t *url, ngx_str_t *body, ngx_str_t *authorization)
{
    ngx_buf_t                     *b;
    ngx_chain_t                   *cl;
    ngx_table_elt_t               *h;
    ngx_http_request_t            *sr;
    ngx_http_post_subrequest_t    *ps;
    ngx_http_ent_sso_fetch_ctx_t  *fctx;
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_ent_sso_fetch_done;
    ps->data = ctx;

    if (ngx_http_subrequest(r, &smcf->fetch_uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    fctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ent_sso_fetch_ctx_t));
    if (fctx == NULL) {
        return NGX_ERROR;
    }

    fctx->kind = NGX_HTTP_ENT_SSO_CTX_FETCH;
    fctx->url = *url;
    fctx->parent = ctx;

    ngx_http_set_ctx(sr, fctx, ngx_http_ent_sso_module);

    /* a clean set of request headers: nothing of the client's */

    ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));

    if (ngx_list_init(&sr->headers_in.headers, r->pool, 4,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

#if (nginx_version < 1023000)
    if (ngx_array_init(&sr->headers_in.cookies, r->pool, 1,
                       sizeof(ngx_table_elt_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }
#endif

    sr->headers_in.content_length_n = -1;
    sr->headers_in.keep_alive_n = -1;
    sr->headers_in.server = r->headers_in.server;

    h = ngx_list_push(&sr->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Accept");
    ngx_str_set(&h->value, "application/json");
    h->lowcase_key = (u_char *) "accept";

    if (authorization) {
        h = ngx_list_push(&sr->headers_in.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Authorization");
        h->value = *authorization;
        h->lowcase_key = (u_char *) "authorization";
    }

    if (body) {
        h = ngx_list_push(&sr->headers_in.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Content-Type");
        ngx_str_set(&h->value, "application/x-www-form-urlencoded");
        h->lowcase_key = (u_char *) "content-type";
        sr->headers_in.content_type = h;

        sr->request_body = ngx_pcalloc(r->pool,
                                       sizeof(ngx_http_request_body_t));
        if (sr->request_body == NULL) {
            return NGX_ERROR;
        }

        b = ngx_calloc_buf(r->pool);
        cl = ngx_alloc_chain_link(r->pool);
        if (b == NULL || cl == NULL) {
            return NGX_ERROR;
        }

        b->pos = body->data;
        b->last = body->data + body->len;
        b->memory = 1;
        b->last_buf = 1;

        cl->buf = b;
        cl->next = NULL;

        sr->request_body->bufs = cl;
        sr->headers_in.content_length_n = body->len;

        sr->method = NGX_HTTP_POST;
        ngx_str_set(&sr->method_name, "POST");

    } else {
        sr->request_body = NULL;
        sr->method = NGX_HTTP_GET;
        ngx_str_set(&sr->method_name, "GET");
    }

    sr->header_only = 0;

    ctx->fetched = 0;
    ctx->fetch_status = 0;
    ngx_str_null(&ctx->fetch_body);
    ctx->waiting = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ent sso: fetching \"%V\"", url);

    return ngx_ent_phase_wait(r);
}


static ngx_int_t
ngx_http_ent_sso_fetch_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_http_ent_sso_ctx_t *ctx = data;

    ngx_buf_t           *b;
    ngx_http_request_t  *r;

    r = sr->parent;

    if (!ctx->waiting) {
        /* called twice (a late finalization): once is enough */
        return (rc == NGX_ERROR) ? NGX_OK : rc;
    }

    ctx->waiting = 0;
    ctx->fetched = 1;
    ctx->fetch_status = sr->headers_out.status;

    if (rc != NGX_OK && rc != NGX_DONE && ctx->fetch_status < 400) {
        ctx->fetch_status = (rc >= NGX_HTTP_SPECIAL_RESPONSE)
                            ? (ngx_uint_t) rc : NGX_HTTP_BAD_GATEWAY;
    }

    if (sr->out && sr->out->buf) {
        b = sr->out->buf;
        ctx->fetch_body.data = b->pos;
        ctx->fetch_body.len = b->last - b->pos;
    }

    if (ctx->fetch_status != NGX_HTTP_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ent sso: an identity provider answered %ui",
                      ctx->fetch_status);
    }

    /* the parent is posted once the subrequest ends: let it run again */

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    /*
     * a fetch that failed outright (an upstream lost mid-body) is a failed
     * fetch: NGX_ERROR here would terminate the client's request, which is
     * to get the stale copy, a 503 or a 401 instead.  (A document over
     * subrequest_output_buffer_size is another matter: nginx marks the
     * shared connection failed, and the client's request ends with it.)
     */

    if (rc == NGX_ERROR) {
        return NGX_OK;
    }

    return rc;
}


ngx_int_t
ngx_http_ent_sso_fetch_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ent_sso_fetch_ctx_t  *fctx;

    fctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    if (fctx == NULL || fctx->kind != NGX_HTTP_ENT_SSO_CTX_FETCH) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = fctx->url.data;
    v->len = fctx->url.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* the discovery document: parsed per use, into the request pool */


ngx_int_t
ngx_http_ent_sso_need_discovery(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_str_t                      key, doc, url, lease;
    ngx_msec_t                     left;
    ngx_http_ent_sso_main_conf_t  *smcf;

    if (ctx->disc) {
        return NGX_OK;
    }

    /*
     * an OpenID Provider over https only: discovery in clear text would let
     * anyone on the path name other keys (entctl refuses such an issuer;
     * the table's check allows http for SAML entity IDs)
     */

    if (ctx->idp.issuer.len < sizeof("https://") - 1
        || ngx_strncmp(ctx->idp.issuer.data, "https://",
                       sizeof("https://") - 1) != 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: the issuer \"%V\" is not an https URL: no "
                      "discovery", &ctx->idp.issuer);
        ctx->sso_status = "idp_unavailable";
        return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "idp_unavailable",
                                       "The identity provider cannot be "
                                       "reached right now.");
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (ngx_http_ent_sso_doc_key(r, &key, "d", &ctx->idp.issuer) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->fetched && ctx->fetch_what == NGX_HTTP_ENT_SSO_FETCH_DISC) {
        ctx->fetched = 0;
        ctx->fetch_what = NGX_HTTP_ENT_SSO_FETCH_NONE;

        if (ctx->fetch_status == NGX_HTTP_OK
            && ngx_http_ent_sso_parse_discovery(r, ctx, &ctx->fetch_body)
               == NGX_OK)
        {
            (void) ngx_ent_cache_put(smcf->docs, &key, &ctx->fetch_body,
                                     smcf->docs_ttl * 1000);
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: no valid discovery document for \"%V\"",
                      &ctx->idp.issuer);

        /* a stale copy is better than none */

        if (ngx_ent_cache_peek(smcf->docs, &key, r->pool, &doc, &left)
            == NGX_OK
            && ngx_http_ent_sso_parse_discovery(r, ctx, &doc) == NGX_OK)
        {
            return NGX_OK;
        }

        ctx->sso_status = "idp_unavailable";
        return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "idp_unavailable",
                                       "The identity provider cannot be "
                                       "reached right now.");
    }

    rc = ngx_ent_cache_peek(smcf->docs, &key, r->pool, &doc, &left);

    if (rc == NGX_OK) {
        if (ngx_http_ent_sso_parse_discovery(r, ctx, &doc) != NGX_OK) {
            ctx->disc = NULL;
            left = 0;

        } else if (left > 0) {
            return NGX_OK;
        }

        /* expired: one worker of the node refreshes, the others go on */

        lease.len = key.len + 1;
        lease.data = ngx_pnalloc(r->pool, lease.len);
        if (lease.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_cpymem(lease.data, "~", 1);
        ngx_memcpy(p, key.data, key.len);

        if (ctx->disc
            && ngx_ent_cache_claim(smcf->docs, &lease, 10000) != NGX_OK)
        {
            return NGX_OK;
        }

        ctx->disc = NULL;
    }

    url.len = ctx->idp.issuer.len + sizeof("/.well-known/openid-configuration");
    url.data = ngx_pnalloc(r->pool, url.len);
    if (url.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(url.data, ctx->idp.issuer.data, ctx->idp.issuer.len);

    if (p > url.data && p[-1] == '/') {
        p--;
    }

    p = ngx_cpymem(p, "/.well-known/openid-configuration",
                   sizeof("/.well-known/openid-configuration") - 1);
    url.len = p - url.data;

    ctx->fetch_what = NGX_HTTP_ENT_SSO_FETCH_DISC;

    rc = ngx_http_ent_sso_fetch(r, ctx, &url, NULL, NULL);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return rc;
}


static ngx_int_t
ngx_http_ent_sso_parse_discovery(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *doc)
{
    json_t                        *root, *v;
    json_error_t                   err;
    ngx_http_ent_sso_discovery_t  *d;

    if (doc->len == 0 || doc->len > 65536) {
        return NGX_ERROR;
    }

    root = json_loadb((char *) doc->data, doc->len, JSON_REJECT_DUPLICATES,
                      &err);

    if (root == NULL || !json_is_object(root)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: a discovery document that is not a JSON "
                      "object");
        json_decref(root);
        return NGX_ERROR;
    }

    d = ngx_pcalloc(r->pool, sizeof(ngx_http_ent_sso_discovery_t));
    if (d == NULL) {
        json_decref(root);
        return NGX_ERROR;
    }

    /* OpenID Connect Discovery 4.3: the issuer must be ours, exactly */

    v = json_object_get(root, "issuer");

    if (!json_is_string(v)
        || json_string_length(v) != ctx->idp.issuer.len
        || ngx_strncmp(json_string_value(v), ctx->idp.issuer.data,
                       ctx->idp.issuer.len) != 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: the discovery document of \"%V\" names "
                      "another issuer", &ctx->idp.issuer);
        json_decref(root);
        return NGX_ERROR;
    }

    d->issuer = ctx->idp.issuer;

    if (ngx_http_ent_sso_json_url(r, root, "authorization_endpoint",
                                  &d->authorization, 1) != NGX_OK
        || ngx_http_ent_sso_json_url(r, root, "token_endpoint", &d->token, 1)
           != NGX_OK
        || ngx_http_ent_sso_json_url(r, root, "jwks_uri", &d->jwks_uri, 1)
           != NGX_OK
        || ngx_http_ent_sso_json_url(r, root, "end_session_endpoint",
                                     &d->end_session, 0) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: the discovery document of \"%V\" lacks an "
                      "endpoint or has an invalid one", &ctx->idp.issuer);
        json_decref(root);
        return NGX_ERROR;
    }

    d->iss_param = json_is_true(json_object_get(root,
                        "authorization_response_iss_parameter_supported"));

    json_decref(root);

    ctx->disc = d;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_json_url(ngx_http_request_t *r, json_t *doc,
    const char *name, ngx_str_t *out, ngx_uint_t required)
{
    size_t       i, len;
    json_t      *v;
    const char  *s;

    v = json_object_get(doc, name);

    if (v == NULL) {
        return required ? NGX_ERROR : NGX_OK;
    }

    if (!json_is_string(v)) {
        return NGX_ERROR;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    /* https only (no plain http, even on loopback), printable, short */

    if (len > 2048 || len <= 8 || ngx_strncmp(s, "https://", 8) != 0) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        if ((u_char) s[i] <= 0x20 || (u_char) s[i] >= 0x7f) {
            return NGX_ERROR;
        }
    }

    out->data = ngx_pnalloc(r->pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, s, len);
    out->len = len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_doc_key(ngx_http_request_t *r, ngx_str_t *key,
    const char *kind, ngx_str_t *issuer)
{
    u_char  *p;

    key->data = ngx_pnalloc(r->pool, issuer->len + 2);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key->data, kind, 1);
    *p++ = ':';
    p = ngx_cpymem(p, issuer->data, issuer->len);
    key->len = p - key->data;

    return NGX_OK;
}


/* JWK sets */


ngx_int_t
ngx_http_ent_sso_need_jwks(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_str_t                      key, doc, lease;
    ngx_msec_t                     left;
    ngx_http_ent_sso_keyset_t     *ks;
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    ks = ngx_http_ent_sso_keyset(&ctx->idp.issuer, r->connection->log);
    if (ks == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_ent_sso_doc_key(r, &key, "j", &ctx->idp.issuer) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->fetched && ctx->fetch_what == NGX_HTTP_ENT_SSO_FETCH_JWKS) {
        ctx->fetched = 0;
        ctx->fetch_what = NGX_HTTP_ENT_SSO_FETCH_NONE;

        if (ctx->fetch_status == NGX_HTTP_OK
            && ngx_http_ent_sso_keyset_load(r, ks, &ctx->fetch_body)
               == NGX_OK)
        {
            (void) ngx_ent_cache_put(smcf->docs, &key, &ctx->fetch_body,
                                     smcf->docs_ttl * 1000);
            ctx->jwks = ks->jwks;
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: no valid JWK set for \"%V\"",
                      &ctx->idp.issuer);

        if (ks->jwks) {
            ctx->jwks = ks->jwks;
            return NGX_OK;
        }

        ctx->sso_status = "idp_unavailable";
        return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "idp_unavailable",
                                       "The identity provider's keys cannot "
                                       "be fetched right now.");
    }

    if (!ctx->jwks_refetched) {

        if (ks->jwks
            && ngx_current_msec - ks->checked < 1000)
        {
            ctx->jwks = ks->jwks;
            return NGX_OK;
        }

        rc = ngx_ent_cache_peek(smcf->docs, &key, r->pool, &doc, &left);

        if (rc == NGX_OK) {
            if (ks->jwks == NULL || ks->len != doc.len
                || ks->crc != ngx_crc32_long(doc.data, doc.len))
            {
                (void) ngx_http_ent_sso_keyset_load(r, ks, &doc);
            }

            ks->checked = ngx_current_msec;

            if (ks->jwks && left > 0) {
                ctx->jwks = ks->jwks;
                return NGX_OK;
            }

            if (ks->jwks) {
                /* expired: one worker refreshes */

                lease.len = key.len + 1;
                lease.data = ngx_pnalloc(r->pool, lease.len);
                if (lease.data == NULL) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                p = ngx_cpymem(lease.data, "~", 1);
                ngx_memcpy(p, key.data, key.len);

                if (ngx_ent_cache_claim(smcf->docs, &lease, 10000)
                    != NGX_OK)
                {
                    ctx->jwks = ks->jwks;
                    return NGX_OK;
                }
            }
        }
    }

    /* the set's address is in the discovery document */

    rc = ngx_http_ent_sso_need_discovery(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->fetch_what = NGX_HTTP_ENT_SSO_FETCH_JWKS;

    rc = ngx_http_ent_sso_fetch(r, ctx, &ctx->disc->jwks_uri, NULL, NULL);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return rc;
}


/*
 * An unknown "kid": the IdP may have rotated its keys.  NGX_OK when this
 * request may refetch the set now (at most once per interval and issuer
 * on this node), NGX_DECLINED otherwise.
 */

ngx_int_t
ngx_http_ent_sso_jwks_refetch(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    ngx_str_t                      key;
    ngx_http_ent_sso_main_conf_t  *smcf;

    if (ctx->jwks_refetched) {
        return NGX_DECLINED;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (ngx_http_ent_sso_doc_key(r, &key, "r", &ctx->idp.issuer) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ent_cache_claim(smcf->docs, &key, smcf->jwks_throttle)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ent sso: an unknown key id for \"%V\", refetch "
                      "throttled", &ctx->idp.issuer);
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ent sso: an unknown key id for \"%V\", refetching its "
                  "keys", &ctx->idp.issuer);

    ctx->jwks_refetched = 1;
    ctx->jwks = NULL;

    return NGX_OK;
}


static ngx_http_ent_sso_keyset_t *
ngx_http_ent_sso_keyset(ngx_str_t *issuer, ngx_log_t *log)
{
    ngx_uint_t                  i;
    ngx_http_ent_sso_keyset_t  *ks;

    if (ngx_http_ent_sso_keysets == NULL) {
        ngx_http_ent_sso_keysets = ngx_calloc(NGX_HTTP_ENT_SSO_KEYSETS
                                       * sizeof(ngx_http_ent_sso_keyset_t),
                                       log);
        if (ngx_http_ent_sso_keysets == NULL) {
            return NULL;
        }
    }

    for (i = 0; i < ngx_http_ent_sso_nkeysets; i++) {
        ks = &ngx_http_ent_sso_keysets[i];

        if (ks->issuer_len == issuer->len
            && ngx_strncmp(ks->issuer, issuer->data, issuer->len) == 0)
        {
            return ks;
        }
    }

    if (ngx_http_ent_sso_nkeysets == NGX_HTTP_ENT_SSO_KEYSETS) {
        /* more issuers than slots: start over, the zone still has them */
        ngx_http_ent_sso_docs_exit();

        ngx_http_ent_sso_keysets = ngx_calloc(NGX_HTTP_ENT_SSO_KEYSETS
                                       * sizeof(ngx_http_ent_sso_keyset_t),
                                       log);
        if (ngx_http_ent_sso_keysets == NULL) {
            return NULL;
        }
    }

    ks = &ngx_http_ent_sso_keysets[ngx_http_ent_sso_nkeysets];

    ks->issuer = ngx_alloc(issuer->len + 1, log);
    if (ks->issuer == NULL) {
        return NULL;
    }

    ngx_memcpy(ks->issuer, issuer->data, issuer->len);
    ks->issuer[issuer->len] = '\0';
    ks->issuer_len = issuer->len;

    ngx_http_ent_sso_nkeysets++;

    return ks;
}


static ngx_int_t
ngx_http_ent_sso_keyset_load(ngx_http_request_t *r,
    ngx_http_ent_sso_keyset_t *ks, ngx_str_t *doc)
{
    ent_jwks_t  *jwks;
    char         err[128];

    err[0] = '\0';

    if (doc->len == 0 || doc->len > ENT_JWKS_MAX_LEN) {
        return NGX_ERROR;
    }

    jwks = ngx_alloc(sizeof(ent_jwks_t), r->connection->log);
    if (jwks == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(jwks, sizeof(ent_jwks_t));

    if (ent_jwks_parse(doc->data, doc->len, jwks, err, sizeof(err)) != 0
        || jwks->nkeys == 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: the JWK set of \"%s\" is unusable: %s",
                      ks->issuer, err[0] ? err : "no signing keys");
        ent_jwks_free(jwks);
        ngx_free(jwks);
        return NGX_ERROR;
    }

    if (ks->jwks) {
        ent_jwks_free(ks->jwks);
        ngx_free(ks->jwks);
    }

    ks->jwks = jwks;
    ks->len = doc->len;
    ks->crc = ngx_crc32_long(doc->data, doc->len);
    ks->checked = ngx_current_msec;

    return NGX_OK;
}


void
ngx_http_ent_sso_docs_exit(void)
{
    ngx_uint_t                  i;
    ngx_http_ent_sso_keyset_t  *ks;

    if (ngx_http_ent_sso_keysets == NULL) {
        return;
    }

    for (i = 0; i < ngx_http_ent_sso_nkeysets; i++) {
        ks = &ngx_http_ent_sso_keysets[i];

        if (ks->jwks) {
            ent_jwks_free(ks->jwks);
            ngx_free(ks->jwks);
        }

        ngx_free(ks->issuer);
    }

    ngx_free(ngx_http_ent_sso_keysets);
    ngx_http_ent_sso_keysets = NULL;
    ngx_http_ent_sso_nkeysets = 0;
}
