/*
 * ngx_http_ent_scim_module: the SCIM 2.0 service provider (RFC 7643/7644)
 * at /scim/v2, a content handler.
 *
 * A request is read whole (its body bounded), its bearer token found by
 * its SHA-256 in the "scim_tokens" cache zone (PostgreSQL behind it) and
 * checked against the tenant of the Host; then one PostgreSQL function
 * per operation does the work in one transaction and returns the status
 * and the resource, which this module sends with the SCIM media type, its
 * ETag and, on a create, its Location.  Filters are compiled here, from a
 * parse tree and an attribute allow-list, into parameterized SQL.  Every
 * error is the RFC 7644 envelope.
 */


#include "ngx_ent_scim.h"
#include "ngx_ent_scim_patch.h"

#include <openssl/sha.h>


/* a resource type or a schema, for discovery */
typedef struct {
    ngx_str_t                    id;
    ngx_str_t                    doc;         /* "%V": the base URL */
} ngx_http_ent_scim_doc_t;


static ngx_int_t ngx_http_ent_scim_handler(ngx_http_request_t *r);
static void ngx_http_ent_scim_body(ngx_http_request_t *r);
static void ngx_http_ent_scim_run(ngx_http_request_t *r);
static ngx_int_t ngx_http_ent_scim_auth(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx);
static void ngx_http_ent_scim_token_filled(ngx_ent_op_t *op);
static ngx_int_t ngx_http_ent_scim_count(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx);
static void ngx_http_ent_scim_counted(ngx_ent_op_t *op);
static void ngx_http_ent_scim_event(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx, const char *outcome, const char *reason);
static ngx_int_t ngx_http_ent_scim_stream(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx);
static void ngx_http_ent_scim_streamed(ngx_ent_op_t *op);
static ngx_int_t ngx_http_ent_scim_route(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx);
static ngx_int_t ngx_http_ent_scim_answer(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx, ngx_uint_t status, u_char *body,
    size_t len);
static ngx_int_t ngx_http_ent_scim_send(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len, ngx_str_t *etag,
    ngx_str_t *location);
static ngx_uint_t ngx_http_ent_scim_arg_scan(ngx_http_request_t *r,
    const char *name, ngx_str_t *out, ngx_uint_t *valued);
static ngx_int_t ngx_http_ent_scim_static(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx);
static ngx_int_t ngx_http_ent_scim_project(ngx_http_request_t *r,
    json_t *js);
static void ngx_http_ent_scim_select(json_t *res, ngx_str_t *list,
    ngx_uint_t keep);
static json_t *ngx_http_ent_scim_member(json_t *obj, u_char *name,
    size_t len, const char **key);
static void *ngx_http_ent_scim_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_ent_scim_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_ent_scim_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ent_scim_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_ent_scim(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ent_scim_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ent_scim_postconfiguration(ngx_conf_t *cf);


static ngx_conf_num_bounds_t  ngx_http_ent_scim_count_bounds = {
    ngx_conf_check_num_bounds, 1, 1000
};


static ngx_command_t  ngx_http_ent_scim_commands[] = {

    { ngx_string("ent_scim"),
      NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_ent_scim,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_scim_loc_conf_t, enable),
      NULL },

    { ngx_string("ent_scim_max_count"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_scim_main_conf_t, max_count),
      &ngx_http_ent_scim_count_bounds },

    { ngx_string("ent_scim_rate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_scim_main_conf_t, rate),
      NULL },

    { ngx_string("ent_scim_tokens_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_scim_main_conf_t, tokens_zone),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ent_scim_module_ctx = {
    ngx_http_ent_scim_preconfiguration,    /* preconfiguration */
    ngx_http_ent_scim_postconfiguration,   /* postconfiguration */

    ngx_http_ent_scim_create_main_conf,    /* create main configuration */
    ngx_http_ent_scim_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ent_scim_create_loc_conf,     /* create location configuration */
    ngx_http_ent_scim_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_ent_scim_module = {
    NGX_MODULE_V1,
    &ngx_http_ent_scim_module_ctx,         /* module context */
    ngx_http_ent_scim_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_ent_scim_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_ent_scim_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ent_scim_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->if_none_match = -1;
    ctx->retry_after = -1;

    ngx_http_set_ctx(r, ctx, ngx_http_ent_scim_module);

    /* read the body whole: in memory or in nginx's temporary file */

    rc = ngx_http_read_client_request_body(r, ngx_http_ent_scim_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_ent_scim_body(ngx_http_request_t *r)
{
    off_t                     len, n;
    u_char                   *p;
    ngx_buf_t                *b;
    ngx_chain_t              *cl;
    ngx_http_ent_scim_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_scim_module);

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            b = cl->buf;
            len += ngx_buf_in_memory(b) ? b->last - b->pos
                                        : b->file_last - b->file_pos;
        }
    }

    if (len > NGX_HTTP_ENT_SCIM_MAX_BODY) {
        ngx_http_finalize_request(r,
            ngx_http_ent_scim_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "tooMany", "The body is too large."));
        return;
    }

    if (len) {
        ctx->body.data = ngx_pnalloc(r->pool, (size_t) len + 1);
        if (ctx->body.data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        p = ctx->body.data;

        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            b = cl->buf;

            if (ngx_buf_in_memory(b)) {
                p = ngx_cpymem(p, b->pos, b->last - b->pos);
                continue;
            }

            /* a body past client_body_buffer_size: just written, read back */

            n = b->file_last - b->file_pos;

            if (ngx_read_file(b->file, p, (size_t) n, b->file_pos) != n) {
                ngx_http_finalize_request(r,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            p += n;
        }

        ctx->body.len = p - ctx->body.data;
        *p = '\0';
    }

    ngx_http_ent_scim_run(r);
}


/* every step; re-entered when a lookup or query ends */

static void
ngx_http_ent_scim_run(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_ent_scim_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_scim_module);

    if (!ctx->authenticated) {
        rc = ngx_http_ent_scim_auth(r, ctx);

        if (rc == NGX_AGAIN && ctx->pending) {
            return;
        }

        if (rc == NGX_DONE) {
            /* refused, and answered */
            ngx_http_finalize_request(r, ctx->answered);
            return;
        }

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    if (!ctx->counted) {
        rc = ngx_http_ent_scim_count(r, ctx);

        if (rc == NGX_AGAIN && ctx->pending) {
            return;
        }

        if (rc == NGX_DONE) {
            ngx_http_finalize_request(r, ctx->answered);
            return;
        }

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    rc = ngx_http_ent_scim_route(r, ctx);

    if (rc == NGX_AGAIN && ctx->pending) {
        return;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * ent_scim_rate: requests per token and minute, counted in Redis for the
 * whole fleet (INCR of a key of this minute); over it, 429 with the
 * seconds to the next minute.  Without Redis, or with it down, the
 * request goes on (the limit protects, it does not gate provisioning).
 */

static ngx_int_t
ngx_http_ent_scim_count(ngx_http_request_t *r, ngx_http_ent_scim_ctx_t *ctx)
{
    u_char                         *p;
    size_t                          len;
    ngx_str_t                      *argv;
    ngx_ent_redis_cmd_t             cmds[2];
    u_char                          suffix[128];
    ngx_http_ent_scim_main_conf_t  *scmf;

    scmf = ngx_http_get_module_main_conf(r, ngx_http_ent_scim_module);

    if (ctx->retry_after > 0) {
        ngx_table_elt_t  *h;
        u_char           *v;

        h = ngx_list_push(&r->headers_out.headers);
        v = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (h == NULL || v == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        h->value.data = v;
        h->value.len = ngx_sprintf(v, "%i", ctx->retry_after) - v;

        ctx->answered = ngx_http_ent_scim_error(r,
                                                NGX_HTTP_TOO_MANY_REQUESTS,
                                                NULL, "Too many requests "
                                                "for this token: slow "
                                                "down.");
        return NGX_DONE;
    }

    if (ctx->retry_after == 0 || scmf->rate == 0 || !scmf->redis) {
        ctx->counted = 1;
        return NGX_OK;
    }

    p = ngx_snprintf(suffix, sizeof(suffix), "scim:rl:%V:%T", &ctx->token_id,
                     ngx_time() / 60);

    argv = ngx_palloc(r->pool, 5 * sizeof(ngx_str_t));
    if (argv == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    argv[1].data = ngx_pnalloc(r->pool, 192);
    if (argv[1].data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_ent_redis_key(argv[1].data, 192, (u_char *) "ent:", 4,
                            ctx->tenant_id.data, ctx->tenant_id.len,
                            suffix, p - suffix);
    if (len == 0) {
        ctx->counted = 1;
        return NGX_OK;
    }

    argv[1].len = len;
    ngx_str_set(&argv[0], "INCR");
    ngx_str_set(&argv[2], "EXPIRE");
    argv[3] = argv[1];
    ngx_str_set(&argv[4], "120");

    cmds[0].argc = 2;
    cmds[0].argv = argv;
    cmds[1].argc = 3;
    cmds[1].argv = &argv[2];

    if (ngx_ent_redis_run(r, cmds, 2, ngx_http_ent_scim_counted, r)
        != NGX_AGAIN)
    {
        ctx->counted = 1;
        return NGX_OK;
    }

    r->main->count++;
    ctx->pending = 1;

    return NGX_AGAIN;
}


static void
ngx_http_ent_scim_counted(ngx_ent_op_t *op)
{
    ngx_http_request_t              *r;
    ngx_http_ent_scim_ctx_t         *ctx;
    ngx_http_ent_scim_main_conf_t   *scmf;

    r = op->data;
    r->main->count--;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_scim_module);
    ctx->pending = 0;
    scmf = ngx_http_get_module_main_conf(r, ngx_http_ent_scim_module);

    ctx->retry_after = 0;

    if (op->status == NGX_ENT_OK && op->nreplies >= 1
        && op->replies[0]->type == REDIS_REPLY_INTEGER
        && (ngx_uint_t) op->replies[0]->integer > scmf->rate)
    {
        ctx->retry_after = 60 - ngx_time() % 60;
        ngx_ent_metrics_count(r, NGX_ENT_M_RATELIMITED);
        ngx_http_ent_scim_event(r, ctx, "ratelimit.rejected",
                                "over the token's rate");

    } else {
        ctx->counted = 1;
    }

    ngx_http_ent_scim_run(r);
}


/*
 * An audit event of a refused SCIM request: action "scim_token.*",
 * "cross_tenant.scim_token", or a rate-limit rejection (counted into the
 * one row per tenant and minute)
 */

static void
ngx_http_ent_scim_event(ngx_http_request_t *r, ngx_http_ent_scim_ctx_t *ctx,
    const char *action, const char *reason)
{
    ngx_str_t              d[2];
    ngx_ent_audit_event_t  ev;

    ngx_memzero(&ev, sizeof(ngx_ent_audit_event_t));

    ev.tenant = ctx->tenant_id;
    ev.action = action;
    ev.result = "failure";
    ev.reason.data = (u_char *) reason;
    ev.reason.len = ngx_strlen(reason);

    if (ctx->token_id.len) {
        ev.actor = ctx->token_id;
        ev.actor_type = "token";
    }

    if (ngx_strncmp(action, "ratelimit.", 10) == 0) {
        ngx_str_set(&ev.target_type, "policy");
        ngx_str_set(&ev.target_id, "scim");
        ngx_str_set(&d[0], "#count");
        ngx_str_set(&d[1], "1");
        ev.details = d;
        ev.ndetails = 1;
        ev.merge = 1;

    } else {
        ngx_str_set(&ev.target_type, "scim_token");
        ev.target_id = ctx->token_id;
    }

    ngx_ent_audit(r, &ev);
}


/*
 * Authorization: Bearer <token>, its SHA-256 looked up; the token must be
 * active and the tenant's of this Host.  NGX_OK, NGX_AGAIN (a lookup in
 * flight), or the response's status (sent).
 */

static ngx_int_t
ngx_http_ent_scim_auth(ngx_http_request_t *r, ngx_http_ent_scim_ctx_t *ctx)
{
    size_t                          len, exp_len;
    u_char                         *p;
    time_t                          expires;
    ngx_int_t                       rc;
    ngx_str_t                       token, value, param;
    ngx_uint_t                      revoked;
    ngx_ent_rows_t                  rows;
    const u_char                   *data, *exp;
    ngx_ent_cache_fill_t            fill;
    ngx_http_variable_value_t      *vv;
    u_char                          md[SHA256_DIGEST_LENGTH];
    ngx_http_ent_scim_main_conf_t  *scmf;

    scmf = ngx_http_get_module_main_conf(r, ngx_http_ent_scim_module);

    if (ctx->tenant_id.len == 0) {
        vv = ngx_http_get_indexed_variable(r, scmf->tenant_id_index);

        if (vv == NULL || vv->not_found || vv->len == 0) {
            ctx->answered = ngx_http_ent_scim_error(r, NGX_HTTP_NOT_FOUND,
                                                    NULL, "No organization "
                                                    "for this host.");
            return NGX_DONE;
        }

        ctx->tenant_id.data = vv->data;
        ctx->tenant_id.len = vv->len;
    }

    if (ctx->digest.len == 0) {
        if (r->headers_in.authorization == NULL) {
            goto unauthorized;
        }

        token = r->headers_in.authorization->value;

        if (token.len < 7 || ngx_strncasecmp(token.data, (u_char *) "Bearer ",
                                             7) != 0)
        {
            goto unauthorized;
        }

        token.data += 7;
        token.len -= 7;

        while (token.len && token.data[0] == ' ') {
            token.data++;
            token.len--;
        }

        if (token.len < 16 || token.len > 512) {
            goto unauthorized;
        }

        SHA256(token.data, token.len, md);

        ctx->digest.data = ngx_pnalloc(r->pool, 2 + 2 * sizeof(md));
        if (ctx->digest.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_cpymem(ctx->digest.data, "\\x", 2);
        p = ngx_hex_dump(p, md, sizeof(md));
        ctx->digest.len = p - ctx->digest.data;
    }

    param = ctx->digest;

    fill.stmt = scmf->token_stmt;
    fill.params = &param;
    fill.transform = NULL;
    fill.flags = 0;

    rc = ngx_ent_cache_fetch(r, scmf->tokens, &ctx->digest, &fill, &value,
                             ngx_http_ent_scim_token_filled, r);

    switch (rc) {

    case NGX_AGAIN:
        r->main->count++;
        ctx->pending = 1;
        return NGX_AGAIN;

    case NGX_OK:
        break;

    case NGX_DECLINED:
        goto unauthorized;

    case NGX_BUSY:
        ctx->answered = ngx_http_ent_scim_error(r,
                                                NGX_HTTP_SERVICE_UNAVAILABLE,
                                                NULL, "Provisioning is "
                                                "unavailable right now.");
        return NGX_DONE;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* id, tenant_id, state, expires */

    if (ngx_ent_rows_open(&rows, value.data, value.len) != 0
        || rows.nrows != 1 || rows.ncols != 4)
    {
        goto unauthorized;
    }

    (void) ngx_ent_rows_next(&rows, &data, &len);
    ctx->token_id.data = (u_char *) data;
    ctx->token_id.len = data ? len : 0;

    (void) ngx_ent_rows_next(&rows, &data, &len);

    if (data == NULL || len != ctx->tenant_id.len
        || ngx_strncmp(data, ctx->tenant_id.data, len) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ent scim: a token of another tenant");
        ngx_http_ent_scim_event(r, ctx, "cross_tenant.scim_token",
                                "a SCIM token of another tenant");
        goto unauthorized;
    }

    (void) ngx_ent_rows_next(&rows, &data, &len);
    (void) ngx_ent_rows_next(&rows, &exp, &exp_len);

    if (data && len == 6 && ngx_strncmp(data, "active", 6) == 0 && exp) {
        /* the cached answer may be older than the expiry: checked here */
        expires = ngx_atotm((u_char *) exp, exp_len);

        if (expires == NGX_ERROR || ngx_time() >= expires) {
            data = (const u_char *) "expired";
            len = 7;
        }
    }

    if (data == NULL || len != 6 || ngx_strncmp(data, "active", 6) != 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ent scim: a %*s token used, id %V",
                      data ? len : 0, data ? data : (u_char *) "",
                      &ctx->token_id);
        revoked = (data && len == 7 && ngx_strncmp(data, "revoked", 7) == 0);
        ngx_http_ent_scim_event(r, ctx,
                                revoked ? "scim_token.revoked_use"
                                        : "scim_token.expired_use",
                                revoked ? "a revoked token used"
                                        : "an expired token used");
        goto unauthorized;
    }

    ctx->authenticated = 1;

    return NGX_OK;

unauthorized:

    r->headers_out.www_authenticate = ngx_list_push(&r->headers_out.headers);
    if (r->headers_out.www_authenticate == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.www_authenticate->hash = 1;
    ngx_str_set(&r->headers_out.www_authenticate->key, "WWW-Authenticate");
    ngx_str_set(&r->headers_out.www_authenticate->value,
                "Bearer realm=\"scim\"");

    ctx->answered = ngx_http_ent_scim_error(r, NGX_HTTP_UNAUTHORIZED, NULL,
                                            "A valid SCIM token of this "
                                            "organization is required.");
    return NGX_DONE;
}


static void
ngx_http_ent_scim_token_filled(ngx_ent_op_t *op)
{
    ngx_http_request_t       *r;
    ngx_http_ent_scim_ctx_t  *ctx;

    r = op->data;
    r->main->count--;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_scim_module);
    ctx->pending = 0;

    ngx_http_ent_scim_run(r);
}


/* /scim/v2/<Resource>[/<id>] */

static ngx_int_t
ngx_http_ent_scim_route(ngx_http_request_t *r, ngx_http_ent_scim_ctx_t *ctx)
{
    u_char     *p, *end, *slash;
    ngx_str_t   host;

    if (ctx->resource.len == 0) {
        p = r->uri.data;
        end = p + r->uri.len;

        if (r->uri.len < sizeof(NGX_HTTP_ENT_SCIM_PREFIX "/") - 1
            || ngx_strncmp(p, NGX_HTTP_ENT_SCIM_PREFIX "/",
                           sizeof(NGX_HTTP_ENT_SCIM_PREFIX "/") - 1) != 0)
        {
            return ngx_http_ent_scim_error(r, NGX_HTTP_NOT_FOUND, NULL,
                                           "Not a SCIM endpoint.");
        }

        p += sizeof(NGX_HTTP_ENT_SCIM_PREFIX "/") - 1;
        slash = ngx_strlchr(p, end, '/');

        ctx->resource.data = p;
        ctx->resource.len = (slash ? slash : end) - p;

        if (slash) {
            ctx->id.data = slash + 1;
            ctx->id.len = end - slash - 1;

            if (ctx->id.len == 0 || ctx->id.len > 64
                || ngx_strlchr(ctx->id.data, end, '/'))
            {
                return ngx_http_ent_scim_error(r, NGX_HTTP_NOT_FOUND, NULL,
                                               "No such resource.");
            }
        }

        host = r->headers_in.server;

        ctx->base.len = sizeof("https://") - 1 + host.len + 6
                        + sizeof(NGX_HTTP_ENT_SCIM_PREFIX) - 1;
        ctx->base.data = ngx_pnalloc(r->pool, ctx->base.len);
        if (ctx->base.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_sprintf(ctx->base.data, "%s://%V",
#if (NGX_HTTP_SSL)
                        r->connection->ssl ? "https" :
#endif
                        "http", &host);

        if (r->headers_in.host) {
            /* the Host's port, when it has one */
            slash = ngx_strlchr(r->headers_in.host->value.data,
                                r->headers_in.host->value.data
                                + r->headers_in.host->value.len, ':');

            if (slash && r->headers_in.host->value.data
                            + r->headers_in.host->value.len - slash <= 6)
            {
                p = ngx_cpymem(p, slash, r->headers_in.host->value.data
                                         + r->headers_in.host->value.len
                                         - slash);
            }
        }

        p = ngx_cpymem(p, NGX_HTTP_ENT_SCIM_PREFIX,
                       sizeof(NGX_HTTP_ENT_SCIM_PREFIX) - 1);
        ctx->base.len = p - ctx->base.data;
    }

    if (ctx->resource.len == 5
        && ngx_strncmp(ctx->resource.data, "Users", 5) == 0)
    {
        return ngx_http_ent_scim_users(r, ctx);
    }

    if (ctx->resource.len == 6
        && ngx_strncmp(ctx->resource.data, "Groups", 6) == 0)
    {
        return ngx_http_ent_scim_groups(r, ctx);
    }

    if (ctx->resource.len == 4
        && ngx_strncmp(ctx->resource.data, "Bulk", 4) == 0)
    {
        return ngx_http_ent_scim_error(r, NGX_HTTP_NOT_IMPLEMENTED, NULL,
                                       "Bulk operations are not "
                                       "supported.");
    }

    return ngx_http_ent_scim_static(r, ctx);
}


/*
 * GET /Users?filter=...&startIndex=&count=&sortBy=&sortOrder= and
 * POST /Users/.search (the same in a JSON body); Groups alike, with extra
 * appended to the statement's parameters
 */

ngx_int_t
ngx_http_ent_scim_list(ngx_http_request_t *r, ngx_http_ent_scim_ctx_t *ctx,
    ent_scim_attr_t *attrs, size_t nattrs, ngx_ent_pg_stmt_t *stmt,
    ngx_str_t *extra)
{
    u_char                         *p, *dst;
    size_t                          i, len;
    json_t                         *js, *v, *cv, *sv, *ov;
    ngx_int_t                       rc, start, count;
    ngx_str_t                       filter, arg, sort, *params;
    ngx_uint_t                      desc, n, valued;
    json_error_t                    jerr;
    ent_scim_sql_t                  q;
    char                            err[160];
    ngx_http_ent_scim_main_conf_t  *scmf;

    scmf = ngx_http_get_module_main_conf(r, ngx_http_ent_scim_module);

    ngx_str_null(&filter);
    ngx_str_null(&sort);
    start = 1;
    count = scmf->max_count;
    desc = 0;
    js = NULL;

    if (r->method == NGX_HTTP_POST) {
        js = json_loadb((char *) ctx->body.data, ctx->body.len,
                        JSON_REJECT_DUPLICATES, &jerr);

        if (!json_is_object(js)) {
            json_decref(js);
            return ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalidSyntax",
                                           "The body is not a JSON object.");
        }

        /*
         * member names are case-insensitive (RFC 7643 2.1); a filter that
         * is there is compiled or refused, never dropped for all rows
         * (null is unassigned, RFC 7643 2.5)
         */

        if (ent_scim_patch_member(js, "filter", &v) != 0
            || (v && !json_is_null(v) && !json_is_string(v)))
        {
            json_decref(js);
            return ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalidFilter",
                                           "filter must be one string.");
        }

        if (json_is_string(v)) {
            filter.data = (u_char *) json_string_value(v);
            filter.len = json_string_length(v);
        }

        if (ent_scim_patch_member(js, "startIndex", &v) != 0
            || ent_scim_patch_member(js, "count", &cv) != 0
            || ent_scim_patch_member(js, "sortBy", &sv) != 0
            || ent_scim_patch_member(js, "sortOrder", &ov) != 0)
        {
            json_decref(js);
            return ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalidSyntax",
                                           "A member is given twice, in "
                                           "two spellings.");
        }

        if (json_is_integer(v)) {
            start = (ngx_int_t) json_integer_value(v);
        }

        v = cv;
        if (json_is_integer(v)) {
            count = (ngx_int_t) json_integer_value(v);
        }

        v = sv;
        if (json_is_string(v)) {
            /* a copy: the body is freed once the filter is compiled */
            sort.len = ngx_min(json_string_length(v), 64);
            sort.data = ngx_pnalloc(r->pool, sort.len + 1);
            if (sort.data == NULL) {
                json_decref(js);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_memcpy(sort.data, json_string_value(v), sort.len);
        }

        v = ov;
        desc = json_is_string(v)
               && ngx_strcasecmp((u_char *) json_string_value(v),
                                 (u_char *) "descending") == 0;

    } else {
        n = ngx_http_ent_scim_arg_scan(r, "filter", &arg, &valued);

        if (n > 1) {
            /* which one the client meant is not ours to guess */
            return ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalidFilter",
                                           "filter is given more than "
                                           "once.");
        }

        if (n == 1 && valued == 0) {
            /* "?filter" with no "=": present, and empty */
            ngx_str_set(&arg, "");
        }

        if (n == 1) {
            filter.data = ngx_pnalloc(r->pool, arg.len + 1);
            if (filter.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            /* form-decoded: "+" is a space */

            for (i = 0; i < arg.len; i++) {
                if (arg.data[i] == '+') {
                    arg.data[i] = ' ';
                }
            }

            dst = filter.data;
            p = arg.data;
            ngx_unescape_uri(&dst, &p, arg.len, 0);
            filter.len = dst - filter.data;
        }

        if (ngx_http_ent_scim_arg(r, "startIndex", &arg)) {
            start = (arg.len && arg.data[0] == '-')
                    ? -1 : ngx_atoi(arg.data, arg.len);
            if (start == NGX_ERROR && !(arg.len && arg.data[0] == '-')) {
                goto bad_number;
            }
        }

        if (ngx_http_ent_scim_arg(r, "count", &arg)) {
            count = (arg.len && arg.data[0] == '-')
                    ? 0 : ngx_atoi(arg.data, arg.len);
            if (count == NGX_ERROR) {
                goto bad_number;
            }
        }

        if (ngx_http_ent_scim_arg(r, "sortBy", &sort) == NULL) {
            ngx_str_null(&sort);
        }

        if (ngx_http_ent_scim_arg(r, "sortOrder", &arg)) {
            desc = (arg.len == 10
                    && ngx_strncasecmp(arg.data, (u_char *) "descending", 10)
                       == 0);
        }
    }

    /* RFC 7644 3.4.2.4: startIndex below 1 is 1; count below 0 is 0 */

    if (start < 1) {
        start = 1;
    }

    if (start > NGX_MAX_INT32_VALUE) {
        /* past any list (PostgreSQL's integer): an empty page, not a 503 */
        start = NGX_MAX_INT32_VALUE;
    }

    if (count < 0) {
        count = 0;
    }

    if ((ngx_uint_t) count > scmf->max_count) {
        count = scmf->max_count;
    }

    params = ngx_pcalloc(r->pool, 9 * sizeof(ngx_str_t));
    if (params == NULL) {
        json_decref(js);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    params[0] = ctx->tenant_id;

    if (filter.data) {
        ngx_memzero(&q, sizeof(ent_scim_sql_t));
        err[0] = '\0';

        rc = ent_scim_filter_compile((char *) filter.data, filter.len,
                                     attrs, nattrs, "$1", &q, err,
                                     sizeof(err));
        json_decref(js);
        js = NULL;

        if (rc == ENT_SCIM_INTERNAL) {
            ent_scim_sql_free(&q);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc != 0) {
            ent_scim_sql_free(&q);
            p = ngx_pnalloc(r->pool, ngx_strlen(err) + 1);
            if (p) {
                ngx_cpystrn(p, (u_char *) err, ngx_strlen(err) + 1);
            }

            return ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalidFilter",
                                           p ? (char *) p
                                             : "The filter is not valid.");
        }

        /* the SQL, then the values as a PostgreSQL text[] literal */

        len = ngx_strlen(q.sql);
        params[1].data = ngx_pnalloc(r->pool, len);
        if (params[1].data == NULL) {
            ent_scim_sql_free(&q);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(params[1].data, q.sql, len);
        params[1].len = len;

        len = 2;
        for (i = 0; i < q.nparams; i++) {
            len += 2 * ngx_strlen(q.params[i]) + 3;
        }

        params[2].data = ngx_pnalloc(r->pool, len);
        if (params[2].data == NULL) {
            ent_scim_sql_free(&q);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = params[2].data;
        *p++ = '{';

        for (i = 0; i < q.nparams; i++) {
            if (i) {
                *p++ = ',';
            }

            *p++ = '"';

            for (dst = (u_char *) q.params[i]; *dst; dst++) {
                if (*dst == '"' || *dst == '\\') {
                    *p++ = '\\';
                }

                *p++ = *dst;
            }

            *p++ = '"';
        }

        *p++ = '}';
        params[2].len = p - params[2].data;

        ent_scim_sql_free(&q);

    } else {
        ngx_str_set(&params[1], "true");
        ngx_str_set(&params[2], "{}");
    }

    /* sortBy: a name the function knows, lowercased; others: creation */

    params[3].data = ngx_pnalloc(r->pool, sort.len + 1);
    if (params[3].data == NULL) {
        json_decref(js);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    params[3].len = sort.len;
    ngx_strlow(params[3].data, sort.data, sort.len);

    json_decref(js);

    ngx_str_set(&params[4], "false");
    if (desc) {
        ngx_str_set(&params[4], "true");
    }

    params[5].data = ngx_pnalloc(r->pool, 2 * NGX_INT_T_LEN);
    params[6].data = params[5].data ? params[5].data + NGX_INT_T_LEN : NULL;
    if (params[5].data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    params[5].len = ngx_sprintf(params[5].data, "%i", start) - params[5].data;
    params[6].len = ngx_sprintf(params[6].data, "%i", count) - params[6].data;
    params[7] = ctx->base;

    if (extra) {
        params[8] = *extra;
    }

    return ngx_http_ent_scim_query(r, ctx, stmt, params);

bad_number:

    json_decref(js);

    return ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST, "invalidValue",
                                   "startIndex and count are integers.");
}




/* a function's query; NGX_AGAIN, its handler answers */

ngx_int_t
ngx_http_ent_scim_query(ngx_http_request_t *r, ngx_http_ent_scim_ctx_t *ctx,
    ngx_ent_pg_stmt_t *stmt, ngx_str_t *params)
{
    if (ngx_ent_pg_query(r, stmt, params, ngx_http_ent_scim_done, r)
        != NGX_AGAIN)
    {
        return ngx_http_ent_scim_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, NULL,
                                       "Provisioning is unavailable right "
                                       "now.");
    }

    ctx->phase = 1;
    r->main->count++;
    ctx->pending = 1;

    return NGX_AGAIN;
}


/*
 * If-Match and If-None-Match: W/"<version>".  If-Match is "*" (any
 * current resource: no condition, a missing one is a 404 all the same) or
 * a list of ETags that holds if any of them is current (RFC 7232 3.1); its
 * versions go to PostgreSQL as an array, "{3,5}".  Tags that are not ours
 * can never be current; a list of only those is "{-1}".
 */

ngx_int_t
ngx_http_ent_scim_conditions(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx)
{
    u_char     *p, *end, *comma, *q;
    ngx_int_t   version;
    ngx_str_t   tag;

    if (r->headers_in.if_match) {
        p = r->headers_in.if_match->value.data;
        end = p + r->headers_in.if_match->value.len;

        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }

        if (end - p == 1 && *p == '*') {
            return NGX_OK;
        }

        /* a version and a comma per tag's 3 bytes, or "-1"; and "{}" */

        ctx->if_match.data = ngx_pnalloc(r->pool, 2 * (end - p) + 4);
        if (ctx->if_match.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        q = ctx->if_match.data;
        *q++ = '{';

        while (p < end) {
            comma = ngx_strlchr(p, end, ',');
            if (comma == NULL) {
                comma = end;
            }

            tag.data = p;
            tag.len = comma - p;

            while (tag.len && (tag.data[0] == ' ' || tag.data[0] == '\t')) {
                tag.data++;
                tag.len--;
            }

            while (tag.len && (tag.data[tag.len - 1] == ' '
                               || tag.data[tag.len - 1] == '\t'))
            {
                tag.len--;
            }

            version = ngx_http_ent_scim_version(&tag);

            if (version != NGX_ERROR) {
                if (q - ctx->if_match.data > 1) {
                    *q++ = ',';
                }

                q = ngx_sprintf(q, "%i", version);
            }

            p = comma + 1;
        }

        if (q - ctx->if_match.data == 1) {
            /*
             * no tag of ours: a condition no version meets, a 412 from the
             * function (after the 404 of a missing resource); answering
             * here, the callers went on and answered twice
             */
            q = ngx_cpymem(q, "-1", 2);
        }

        *q++ = '}';
        ctx->if_match.len = q - ctx->if_match.data;
    }

    if (r->headers_in.if_none_match) {
        ctx->if_none_match = ngx_http_ent_scim_version(
                                     &r->headers_in.if_none_match->value);
    }

    return NGX_OK;
}


/* does If-Match hold for this version: no condition, or one of its own */

ngx_uint_t
ngx_http_ent_scim_matches(ngx_http_ent_scim_ctx_t *ctx, ngx_int_t version)
{
    u_char  *p, *end, *q;

    if (ctx->if_match.len == 0) {
        return 1;
    }

    /* "{3,5}", as made above */

    p = ctx->if_match.data + 1;
    end = ctx->if_match.data + ctx->if_match.len - 1;

    while (p < end) {
        q = ngx_strlchr(p, end, ',');
        if (q == NULL) {
            q = end;
        }

        if (ngx_atoi(p, q - p) == version) {
            return 1;
        }

        p = q + 1;
    }

    return 0;
}


/* a function's (status, body) */

void
ngx_http_ent_scim_done(ngx_ent_op_t *op)
{
    size_t                    len;
    ngx_int_t                 rc, status;
    ngx_http_request_t       *r;
    const u_char             *data;
    ngx_http_ent_scim_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_scim_module);

    r->main->count--;
    ctx->pending = 0;

    if (op->status != NGX_ENT_OK || op->rows.nrows != 1
        || op->rows.ncols != 2)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent scim: the query failed (status %ui)",
                      op->status);
        rc = ngx_http_ent_scim_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, NULL,
                                     "Provisioning is unavailable right "
                                     "now.");
        ngx_http_finalize_request(r, rc);
        return;
    }

    (void) ngx_ent_rows_cell(&op->rows, 0, 0, &data, &len);
    status = data ? ngx_atoi((u_char *) data, len) : NGX_ERROR;

    (void) ngx_ent_rows_cell(&op->rows, 0, 1, &data, &len);

    ctx->status = (status == NGX_ERROR) ? 500 : status;
    ctx->result.len = data ? len : 0;

    if (ctx->op == NGX_HTTP_ENT_SCIM_OP_PATCH
        && ctx->status == NGX_HTTP_PRECONDITION_FAILED
        && ctx->if_match.len == 0 && ctx->tries < 3)
    {
        /* changed between the read and the write: read again */
        rc = ngx_http_ent_scim_patch_start(r, ctx);

        if (rc != NGX_AGAIN || !ctx->pending) {
            ngx_http_finalize_request(r, rc);
        }

        return;
    }

    if (ctx->result.len) {
        ctx->result.data = ngx_pnalloc(r->pool, len);
        if (ctx->result.data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(ctx->result.data, data, len);
    }

    /* a change: one entry in the tenant's Redis Stream too */

    if (ctx->status >= 200 && ctx->status < 300
        && ctx->op != NGX_HTTP_ENT_SCIM_OP_GET
        && ctx->op != NGX_HTTP_ENT_SCIM_OP_LIST
        && ngx_http_ent_scim_stream(r, ctx) == NGX_AGAIN)
    {
        return;
    }

    rc = ngx_http_ent_scim_answer(r, ctx, ctx->status, ctx->result.data,
                                  ctx->result.len);

    ngx_http_finalize_request(r, rc);
}


/*
 * XADD ent:{t:<tenant>}:scim MAXLEN ~ 100000 * tenant T resource R id I
 * operation O version V: what apps behind the proxy read instead of
 * polling (with the PostgreSQL NOTIFY ent_scim).  Without Redis, or with
 * it down, the change stands (it is in PostgreSQL): the answer goes on.
 */

static ngx_int_t
ngx_http_ent_scim_stream(ngx_http_request_t *r, ngx_http_ent_scim_ctx_t *ctx)
{
    size_t                          len;
    json_t                         *js, *v;
    ngx_str_t                      *argv, id, version;
    json_error_t                    jerr;
    ngx_ent_redis_cmd_t             cmd;
    ngx_http_ent_scim_main_conf_t  *scmf;

    scmf = ngx_http_get_module_main_conf(r, ngx_http_ent_scim_module);

    if (!scmf->redis) {
        return NGX_DECLINED;
    }

    id = ctx->id;
    ngx_str_set(&version, "");

    js = ctx->result.len ? json_loadb((char *) ctx->result.data,
                                      ctx->result.len, 0, &jerr)
                         : NULL;

    v = json_object_get(js, "id");
    if (json_is_string(v)) {
        id.len = json_string_length(v);
        id.data = ngx_pnalloc(r->pool, id.len);
        if (id.data) {
            ngx_memcpy(id.data, json_string_value(v), id.len);
        }
    }

    v = json_object_get(json_object_get(js, "meta"), "version");
    if (json_is_string(v)) {
        version.len = json_string_length(v);
        version.data = ngx_pnalloc(r->pool, version.len);
        if (version.data) {
            ngx_memcpy(version.data, json_string_value(v), version.len);
        }
    }

    json_decref(js);

    argv = ngx_palloc(r->pool, 16 * sizeof(ngx_str_t));
    if (argv == NULL || id.data == NULL) {
        return NGX_DECLINED;
    }

    argv[1].data = ngx_pnalloc(r->pool, 192);
    if (argv[1].data == NULL) {
        return NGX_DECLINED;
    }

    len = ngx_ent_redis_key(argv[1].data, 192, (u_char *) "ent:", 4,
                            ctx->tenant_id.data, ctx->tenant_id.len,
                            (u_char *) "scim", 4);
    if (len == 0) {
        return NGX_DECLINED;
    }

    argv[1].len = len;
    ngx_str_set(&argv[0], "XADD");
    ngx_str_set(&argv[2], "MAXLEN");
    ngx_str_set(&argv[3], "~");
    ngx_str_set(&argv[4], "100000");
    ngx_str_set(&argv[5], "*");
    ngx_str_set(&argv[6], "tenant");
    argv[7] = ctx->tenant_id;
    ngx_str_set(&argv[8], "resource");

    if (ctx->resource.len == 6) {
        ngx_str_set(&argv[9], "Group");

    } else {
        ngx_str_set(&argv[9], "User");
    }

    ngx_str_set(&argv[10], "id");
    argv[11] = id;
    ngx_str_set(&argv[12], "operation");

    switch (ctx->op) {

    case NGX_HTTP_ENT_SCIM_OP_CREATE:
        ngx_str_set(&argv[13], "create");
        break;

    case NGX_HTTP_ENT_SCIM_OP_DELETE:
        ngx_str_set(&argv[13], "delete");
        break;

    default:
        if (r->method == NGX_HTTP_PATCH) {
            ngx_str_set(&argv[13], "patch");

        } else {
            ngx_str_set(&argv[13], "replace");
        }

        break;
    }

    ngx_str_set(&argv[14], "version");
    argv[15] = version;

    cmd.argc = 16;
    cmd.argv = argv;

    if (ngx_ent_redis_run(r, &cmd, 1, ngx_http_ent_scim_streamed, r)
        != NGX_AGAIN)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ent scim: a change not added to the Redis Stream");
        return NGX_DECLINED;
    }

    r->main->count++;
    ctx->pending = 1;

    return NGX_AGAIN;
}


static void
ngx_http_ent_scim_streamed(ngx_ent_op_t *op)
{
    ngx_int_t                 rc;
    ngx_http_request_t       *r;
    ngx_http_ent_scim_ctx_t  *ctx;

    r = op->data;
    r->main->count--;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_scim_module);
    ctx->pending = 0;

    if (op->status != NGX_ENT_OK || op->nreplies != 1
        || op->replies[0]->type == REDIS_REPLY_ERROR)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ent scim: a change not added to the Redis Stream");
    }

    rc = ngx_http_ent_scim_answer(r, ctx, ctx->status, ctx->result.data,
                                  ctx->result.len);

    ngx_http_finalize_request(r, rc);
}


/*
 * A function's answer to the client: a resource (with its ETag, and its
 * Location on a create), a list, nothing (204), or an error's scimType and
 * detail in the envelope
 */

static ngx_int_t
ngx_http_ent_scim_answer(ngx_http_request_t *r, ngx_http_ent_scim_ctx_t *ctx,
    ngx_uint_t status, u_char *body, size_t len)
{
    json_t        *js, *meta, *v;
    u_char        *p;
    ngx_str_t      etag, location;
    json_error_t   jerr;

    if (status == NGX_HTTP_NO_CONTENT) {
        return ngx_http_ent_scim_send(r, status, NULL, 0, NULL, NULL);
    }

    if (status < NGX_HTTP_BAD_REQUEST && ctx->op == NGX_HTTP_ENT_SCIM_OP_LIST
        && ngx_http_ent_scim_arg(r, "attributes", &etag) == NULL
        && ngx_http_ent_scim_arg(r, "excludedAttributes", &etag) == NULL)
    {
        /* a list as PostgreSQL made it: no ETag, nothing to take out */

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(p, body, len);

        return ngx_http_ent_scim_send(r, status, p, len, NULL, NULL);
    }

    js = json_loadb((char *) body, len, 0, &jerr);

    if (status >= NGX_HTTP_BAD_REQUEST) {
        v = json_object_get(js, "detail");
        p = NULL;

        if (json_is_string(v)) {
            p = ngx_pnalloc(r->pool, json_string_length(v) + 1);
            if (p) {
                ngx_cpystrn(p, (u_char *) json_string_value(v),
                            json_string_length(v) + 1);
            }
        }

        v = json_object_get(js, "scimType");

        status = ngx_http_ent_scim_error(r, status,
                                         json_is_string(v)
                                         ? (ngx_strcmp(json_string_value(v),
                                                       "uniqueness") == 0
                                            ? "uniqueness"
                                            : ngx_strcmp(json_string_value(v),
                                                         "mutability") == 0
                                            ? "mutability" : "invalidValue")
                                         : NULL,
                                         p ? (char *) p : "Refused.");
        json_decref(js);
        return status;
    }

    ngx_str_null(&etag);
    ngx_str_null(&location);

    meta = json_object_get(js, "meta");
    v = json_object_get(meta, "version");

    if (json_is_string(v)) {
        etag.len = json_string_length(v);
        etag.data = ngx_pnalloc(r->pool, etag.len);
        if (etag.data) {
            ngx_memcpy(etag.data, json_string_value(v), etag.len);
        }

        if (ctx->op == NGX_HTTP_ENT_SCIM_OP_GET && ctx->if_none_match >= 0
            && ngx_http_ent_scim_version(&etag) == ctx->if_none_match)
        {
            json_decref(js);
            return ngx_http_ent_scim_send(r, NGX_HTTP_NOT_MODIFIED, NULL, 0,
                                          &etag, NULL);
        }
    }

    v = json_object_get(meta, "location");

    if (status == NGX_HTTP_CREATED && json_is_string(v)) {
        location.len = json_string_length(v);
        location.data = ngx_pnalloc(r->pool, location.len);
        if (location.data) {
            ngx_memcpy(location.data, json_string_value(v), location.len);
        }
    }

    /* attributes, excludedAttributes: what the client asked to see */

    if (ngx_http_ent_scim_project(r, js) == NGX_OK) {
        char  *out;

        out = json_dumps(js, JSON_COMPACT);
        json_decref(js);

        if (out == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        len = ngx_strlen(out);
        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            free(out);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(p, out, len);
        free(out);

        return ngx_http_ent_scim_send(r, status, p, len,
                                      etag.len ? &etag : NULL,
                                      location.len ? &location : NULL);
    }

    json_decref(js);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(p, body, len);

    return ngx_http_ent_scim_send(r, status, p, len,
                                  etag.len ? &etag : NULL,
                                  location.len ? &location : NULL);
}


/*
 * RFC 7644 3.9: "attributes" keeps only the named attributes (and id and
 * schemas, always returned), "excludedAttributes" drops the named ones;
 * names are case-insensitive, "name.givenName" names a sub-attribute, a
 * URN prefix an extension's.  NGX_OK when js was changed, NGX_DECLINED
 * when nothing was asked.
 */

static ngx_int_t
ngx_http_ent_scim_project(ngx_http_request_t *r, json_t *js)
{
    size_t      i;
    json_t     *list, *res;
    ngx_str_t   attrs, excluded, *which;
    ngx_uint_t  keep;

    which = NULL;
    keep = 0;

    if (ngx_http_ent_scim_arg(r, "attributes", &attrs) && attrs.len) {
        which = &attrs;
        keep = 1;

    } else if (ngx_http_ent_scim_arg(r, "excludedAttributes", &excluded)
               && excluded.len)
    {
        which = &excluded;
    }

    if (which == NULL || !json_is_object(js)) {
        return NGX_DECLINED;
    }

    list = json_object_get(js, "Resources");

    if (json_is_array(list)) {
        json_array_foreach(list, i, res) {
            ngx_http_ent_scim_select(res, which, keep);
        }

    } else {
        ngx_http_ent_scim_select(js, which, keep);
    }

    return NGX_OK;
}


static void
ngx_http_ent_scim_select(json_t *res, ngx_str_t *list, ngx_uint_t keep)
{
    u_char      *p, *end, *comma, *dot, *colon, *name;
    size_t       len;
    json_t      *out, *v, *sub, *osub;
    const char  *key, *skey;
    ngx_uint_t   n;
    u_char       buf[512];

    if (!json_is_object(res)) {
        return;
    }

    out = keep ? json_object() : NULL;

    if (keep) {
        if (out == NULL) {
            return;
        }

        (void) json_object_set(out, "id", json_object_get(res, "id"));
        (void) json_object_set(out, "schemas",
                               json_object_get(res, "schemas"));
    }

    /* the list as given in the query: percent-decoded, comma-separated */

    p = list->data;
    end = p + list->len;

    for (n = 0; p < end && n < 64; n++) {
        comma = ngx_strlchr(p, end, ',');
        if (comma == NULL) {
            comma = end;
        }

        len = comma - p;

        if (len == 0 || len >= sizeof(buf)) {
            p = comma + 1;
            continue;
        }

        name = buf;
        {
            u_char  *src, *dst;

            src = p;
            dst = buf;
            ngx_unescape_uri(&dst, &src, len, 0);
            len = dst - buf;
        }

        /* an extension's URN: up to its last ":" when a member has it */

        v = NULL;
        key = NULL;
        colon = NULL;

        if (len > 4 && ngx_strncasecmp(name, (u_char *) "urn:", 4) == 0) {
            colon = name + len;

            while (colon > name && *(colon - 1) != ':') {
                colon--;
            }

            v = ngx_http_ent_scim_member(res, name, colon - name - 1, &key);

            if (v) {
                name = colon;
                len = buf + len - colon;

            } else {
                /* the core schema's URN names the core attribute */
                key = NULL;
                len = buf + len - colon;
                name = colon;
                colon = NULL;
            }
        }

        dot = ngx_strlchr(name, name + len, '.');

        if (colon && v) {
            /* inside the extension object */
            sub = ngx_http_ent_scim_member(v, name,
                                           dot ? (size_t) (dot - name) : len,
                                           &skey);
            if (keep) {
                osub = json_object_get(out, key);
                if (osub == NULL) {
                    osub = json_object();
                    (void) json_object_set_new(out, key, osub);
                }

                if (sub && osub) {
                    (void) json_object_set(osub, skey, sub);
                }

            } else if (sub) {
                (void) json_object_del(v, skey);
            }

            p = comma + 1;
            continue;
        }

        v = ngx_http_ent_scim_member(res, name,
                                     dot ? (size_t) (dot - name) : len, &key);

        if (v == NULL || ngx_strcmp(key, "id") == 0
            || ngx_strcmp(key, "schemas") == 0)
        {
            p = comma + 1;
            continue;
        }

        if (dot == NULL || !json_is_object(v)) {
            if (keep) {
                (void) json_object_set(out, key, v);

            } else {
                (void) json_object_del(res, key);
            }

            p = comma + 1;
            continue;
        }

        /* a sub-attribute of a complex attribute */

        sub = ngx_http_ent_scim_member(v, dot + 1, name + len - dot - 1,
                                       &skey);

        if (sub) {
            if (keep) {
                osub = json_object_get(out, key);
                if (osub == NULL) {
                    osub = json_object();
                    (void) json_object_set_new(out, key, osub);
                }

                if (osub) {
                    (void) json_object_set(osub, skey, sub);
                }

            } else {
                (void) json_object_del(v, skey);
            }
        }

        p = comma + 1;
    }

    if (keep) {
        /* res becomes out */
        (void) json_object_clear(res);
        (void) json_object_update(res, out);
        json_decref(out);
    }
}


/* a member of obj by a case-insensitive name, with its key as spelled */

static json_t *
ngx_http_ent_scim_member(json_t *obj, u_char *name, size_t len,
    const char **key)
{
    json_t      *v;
    const char  *k;

    json_object_foreach(obj, k, v) {
        if (ngx_strlen(k) == len
            && ngx_strncasecmp((u_char *) k, name, len) == 0)
        {
            *key = k;
            return v;
        }
    }

    return NULL;
}


/* the RFC 7644 3.12 envelope */

ngx_int_t
ngx_http_ent_scim_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *scim_type, const char *detail)
{
    u_char   *p, *body;
    json_t   *js;
    char     *s;
    size_t    len;
    u_char    st[NGX_INT_T_LEN];

    *ngx_sprintf(st, "%ui", status) = '\0';

    js = json_pack("{s:[s], s:s, s:s}", "schemas",
                   "urn:ietf:params:scim:api:messages:2.0:Error",
                   "status", (char *) st, "detail", detail);

    if (js && scim_type) {
        (void) json_object_set_new(js, "scimType", json_string(scim_type));
    }

    s = js ? json_dumps(js, JSON_COMPACT) : NULL;
    json_decref(js);

    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(s);
    body = ngx_pnalloc(r->pool, len + 1);

    if (body == NULL) {
        free(s);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body, s, len);
    *p++ = '\n';
    free(s);

    return ngx_http_ent_scim_send(r, status, body, p - body, NULL, NULL);
}


static ngx_int_t
ngx_http_ent_scim_send(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len, ngx_str_t *etag, ngx_str_t *location)
{
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    /* If-Match and If-None-Match are ours (versions), not nginx's */
    r->disable_not_modified = 1;

    if (len) {
        ngx_str_set(&r->headers_out.content_type, NGX_HTTP_ENT_SCIM_TYPE);
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }

    if (etag) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "ETag");
        h->value = *etag;
        r->headers_out.etag = h;
    }

    if (location) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Location");
        h->value = *location;
        r->headers_out.location = h;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    if (len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    ngx_ent_metrics_count(r, r->headers_out.status >= 400
                             ? NGX_ENT_M_SCIM_ERROR : NGX_ENT_M_SCIM_OP);

    if (r->headers_out.status >= 400) {
        ngx_ent_metrics_count(r, NGX_ENT_M_SCIM_OP);
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* W/"12" or "12": 12; anything else NGX_ERROR */

ngx_int_t
ngx_http_ent_scim_version(ngx_str_t *value)
{
    u_char  *p, *end;

    p = value->data;
    end = p + value->len;

    if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
        p += 2;
    }

    if (end - p < 3 || *p != '"' || end[-1] != '"') {
        return NGX_ERROR;
    }

    return ngx_atoi(p + 1, end - p - 2);
}


/*
 * An argument of the query string: how many times it is there, "name" or
 * "name=..."; *valued how many of them with a value, the last in *out
 */

static ngx_uint_t
ngx_http_ent_scim_arg_scan(ngx_http_request_t *r, const char *name,
    ngx_str_t *out, ngx_uint_t *valued)
{
    u_char      *p, *end, *amp, *eq;
    size_t       len;
    ngx_uint_t   n;

    len = ngx_strlen(name);
    p = r->args.data;
    end = p + r->args.len;
    n = 0;
    *valued = 0;

    while (p && p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        eq = ngx_strlchr(p, amp, '=');

        if ((size_t) ((eq ? eq : amp) - p) == len
            && ngx_strncmp(p, name, len) == 0)
        {
            n++;

            if (eq) {
                out->data = eq + 1;
                out->len = amp - eq - 1;
                (*valued)++;
            }
        }

        p = amp + 1;
    }

    return n;
}


/* an argument of the query string, "name=" exactly once; NULL otherwise */

ngx_str_t *
ngx_http_ent_scim_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *out)
{
    ngx_uint_t  valued;

    (void) ngx_http_ent_scim_arg_scan(r, name, out, &valued);

    return valued == 1 ? out : NULL;
}


/*
 * /ServiceProviderConfig, /ResourceTypes[/<id>], /Schemas[/<id>]
 * (RFC 7644 4): the resource types and schemas as lists, or one by its id
 */

static ngx_int_t
ngx_http_ent_scim_static(ngx_http_request_t *r, ngx_http_ent_scim_ctx_t *ctx)
{
    u_char                   *p, *body;
    size_t                    len;
    ngx_uint_t                i, n;
    ngx_http_ent_scim_doc_t  *docs;

    static ngx_str_t  spc = ngx_string(
        "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:"
        "ServiceProviderConfig\"],"
        "\"documentationUri\":\"https://github.com/ngx-ent/docs/scim.md\","
        "\"patch\":{\"supported\":true},"
        "\"bulk\":{\"supported\":false,\"maxOperations\":0,"
        "\"maxPayloadSize\":0},"
        "\"filter\":{\"supported\":true,\"maxResults\":%ui},"
        "\"changePassword\":{\"supported\":false},"
        "\"sort\":{\"supported\":true},"
        "\"etag\":{\"supported\":true},"
        "\"authenticationSchemes\":[{\"type\":\"oauthbearertoken\","
        "\"name\":\"OAuth Bearer Token\",\"description\":"
        "\"A per-organization token made with entctl scim-token create\","
        "\"primary\":true}],"
        "\"meta\":{\"resourceType\":\"ServiceProviderConfig\","
        "\"location\":\"%V/ServiceProviderConfig\"}}\n");

    static ngx_http_ent_scim_doc_t  types[] = {
      { ngx_string("User"), ngx_string(
        "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:ResourceType\"],"
        "\"id\":\"User\",\"name\":\"User\",\"endpoint\":\"/Users\","
        "\"schema\":\"urn:ietf:params:scim:schemas:core:2.0:User\","
        "\"schemaExtensions\":[{\"schema\":\"urn:ietf:params:scim:schemas:"
        "extension:enterprise:2.0:User\",\"required\":false}],"
        "\"meta\":{\"resourceType\":\"ResourceType\",\"location\":"
        "\"%V/ResourceTypes/User\"}}") },
      { ngx_string("Group"), ngx_string(
        "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:ResourceType\"],"
        "\"id\":\"Group\",\"name\":\"Group\",\"endpoint\":\"/Groups\","
        "\"schema\":\"urn:ietf:params:scim:schemas:core:2.0:Group\","
        "\"meta\":{\"resourceType\":\"ResourceType\",\"location\":"
        "\"%V/ResourceTypes/Group\"}}") },
      { ngx_null_string, ngx_null_string }
    };

    static ngx_http_ent_scim_doc_t  schemas[] = {
      { ngx_string("urn:ietf:params:scim:schemas:core:2.0:User"), ngx_string(
        "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Schema\"],"
        "\"id\":\"urn:ietf:params:scim:schemas:core:2.0:User\","
        "\"name\":\"User\",\"attributes\":["
        "{\"name\":\"userName\",\"type\":\"string\",\"multiValued\":false,"
        "\"required\":true,\"caseExact\":false,\"mutability\":\"readWrite\","
        "\"returned\":\"default\",\"uniqueness\":\"server\"},"
        "{\"name\":\"externalId\",\"type\":\"string\",\"multiValued\":false,"
        "\"required\":false,\"caseExact\":true,\"mutability\":\"readWrite\","
        "\"returned\":\"default\",\"uniqueness\":\"none\"},"
        "{\"name\":\"name\",\"type\":\"complex\",\"multiValued\":false,"
        "\"required\":false,\"subAttributes\":["
        "{\"name\":\"givenName\",\"type\":\"string\"},"
        "{\"name\":\"familyName\",\"type\":\"string\"},"
        "{\"name\":\"formatted\",\"type\":\"string\"},"
        "{\"name\":\"middleName\",\"type\":\"string\"},"
        "{\"name\":\"honorificPrefix\",\"type\":\"string\"},"
        "{\"name\":\"honorificSuffix\",\"type\":\"string\"}]},"
        "{\"name\":\"displayName\",\"type\":\"string\",\"multiValued\":false},"
        "{\"name\":\"nickName\",\"type\":\"string\",\"multiValued\":false},"
        "{\"name\":\"profileUrl\",\"type\":\"reference\","
        "\"multiValued\":false},"
        "{\"name\":\"title\",\"type\":\"string\",\"multiValued\":false},"
        "{\"name\":\"userType\",\"type\":\"string\",\"multiValued\":false},"
        "{\"name\":\"preferredLanguage\",\"type\":\"string\","
        "\"multiValued\":false},"
        "{\"name\":\"locale\",\"type\":\"string\",\"multiValued\":false},"
        "{\"name\":\"timezone\",\"type\":\"string\",\"multiValued\":false},"
        "{\"name\":\"active\",\"type\":\"boolean\",\"multiValued\":false},"
        "{\"name\":\"emails\",\"type\":\"complex\",\"multiValued\":true},"
        "{\"name\":\"phoneNumbers\",\"type\":\"complex\","
        "\"multiValued\":true},"
        "{\"name\":\"addresses\",\"type\":\"complex\",\"multiValued\":true},"
        "{\"name\":\"ims\",\"type\":\"complex\",\"multiValued\":true},"
        "{\"name\":\"photos\",\"type\":\"complex\",\"multiValued\":true},"
        "{\"name\":\"entitlements\",\"type\":\"complex\","
        "\"multiValued\":true},"
        "{\"name\":\"roles\",\"type\":\"complex\",\"multiValued\":true},"
        "{\"name\":\"x509Certificates\",\"type\":\"complex\","
        "\"multiValued\":true},"
        "{\"name\":\"groups\",\"type\":\"complex\",\"multiValued\":true,"
        "\"mutability\":\"readOnly\"}],"
        "\"meta\":{\"resourceType\":\"Schema\",\"location\":"
        "\"%V/Schemas/urn:ietf:params:scim:schemas:core:2.0:User\"}}") },
      { ngx_string("urn:ietf:params:scim:schemas:extension:enterprise:2.0:"
                   "User"), ngx_string(
        "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Schema\"],"
        "\"id\":\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:"
        "User\",\"name\":\"EnterpriseUser\",\"attributes\":["
        "{\"name\":\"employeeNumber\",\"type\":\"string\"},"
        "{\"name\":\"costCenter\",\"type\":\"string\"},"
        "{\"name\":\"organization\",\"type\":\"string\"},"
        "{\"name\":\"division\",\"type\":\"string\"},"
        "{\"name\":\"department\",\"type\":\"string\"},"
        "{\"name\":\"manager\",\"type\":\"complex\"}],"
        "\"meta\":{\"resourceType\":\"Schema\",\"location\":"
        "\"%V/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:"
        "2.0:User\"}}") },
      { ngx_string("urn:ietf:params:scim:schemas:core:2.0:Group"), ngx_string(
        "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:Schema\"],"
        "\"id\":\"urn:ietf:params:scim:schemas:core:2.0:Group\","
        "\"name\":\"Group\",\"attributes\":["
        "{\"name\":\"displayName\",\"type\":\"string\",\"multiValued\":false,"
        "\"required\":true,\"caseExact\":false,\"mutability\":\"readWrite\","
        "\"returned\":\"default\",\"uniqueness\":\"server\"},"
        "{\"name\":\"externalId\",\"type\":\"string\",\"multiValued\":false,"
        "\"required\":false,\"caseExact\":true,\"mutability\":\"readWrite\","
        "\"returned\":\"default\",\"uniqueness\":\"none\"},"
        "{\"name\":\"members\",\"type\":\"complex\",\"multiValued\":true,"
        "\"required\":false,\"mutability\":\"readWrite\","
        "\"returned\":\"default\",\"subAttributes\":["
        "{\"name\":\"value\",\"type\":\"string\",\"mutability\":"
        "\"immutable\"},"
        "{\"name\":\"$ref\",\"type\":\"reference\",\"referenceTypes\":"
        "[\"User\"],\"mutability\":\"immutable\"},"
        "{\"name\":\"display\",\"type\":\"string\",\"mutability\":"
        "\"readOnly\"},"
        "{\"name\":\"type\",\"type\":\"string\",\"canonicalValues\":"
        "[\"User\"],\"mutability\":\"immutable\"}]}],"
        "\"meta\":{\"resourceType\":\"Schema\",\"location\":"
        "\"%V/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group\"}}") },
      { ngx_null_string, ngx_null_string }
    };

    ngx_http_ent_scim_main_conf_t  *scmf;

    scmf = ngx_http_get_module_main_conf(r, ngx_http_ent_scim_module);

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return ngx_http_ent_scim_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                                       "Method not allowed here.");
    }

    if (ctx->resource.len == 21
        && ngx_strncmp(ctx->resource.data, "ServiceProviderConfig", 21) == 0)
    {
        if (ctx->id.len) {
            return ngx_http_ent_scim_error(r, NGX_HTTP_NOT_FOUND, NULL,
                                           "No such resource.");
        }

        body = ngx_pnalloc(r->pool, spc.len + ctx->base.len + NGX_INT_T_LEN);
        if (body == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_sprintf(body, (char *) spc.data, scmf->max_count,
                        &ctx->base);

        return ngx_http_ent_scim_send(r, NGX_HTTP_OK, body, p - body, NULL,
                                      NULL);
    }

    if (ctx->resource.len == 13
        && ngx_strncmp(ctx->resource.data, "ResourceTypes", 13) == 0)
    {
        docs = types;

    } else if (ctx->resource.len == 7
               && ngx_strncmp(ctx->resource.data, "Schemas", 7) == 0)
    {
        docs = schemas;

    } else {
        return ngx_http_ent_scim_error(r, NGX_HTTP_NOT_FOUND, NULL,
                                       "No such resource.");
    }

    /* one by its id (exact, as the ids are given) */

    if (ctx->id.len) {
        for (i = 0; docs[i].id.len; i++) {
            if (docs[i].id.len == ctx->id.len
                && ngx_strncmp(docs[i].id.data, ctx->id.data, ctx->id.len)
                   == 0)
            {
                break;
            }
        }

        if (docs[i].id.len == 0) {
            return ngx_http_ent_scim_error(r, NGX_HTTP_NOT_FOUND, NULL,
                                           "No such resource.");
        }

        body = ngx_pnalloc(r->pool, docs[i].doc.len + ctx->base.len + 1);
        if (body == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_sprintf(body, (char *) docs[i].doc.data, &ctx->base);
        *p++ = LF;

        return ngx_http_ent_scim_send(r, NGX_HTTP_OK, body, p - body, NULL,
                                      NULL);
    }

    /* all of them, a ListResponse */

    len = sizeof("{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:"
                 "ListResponse\"],\"totalResults\":,\"itemsPerPage\":,"
                 "\"startIndex\":1,\"Resources\":[]}\n")
          + 2 * NGX_INT_T_LEN;

    for (n = 0; docs[n].id.len; n++) {
        len += docs[n].doc.len + ctx->base.len + 1;
    }

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"schemas\":[\"urn:ietf:params:scim:api:messages:"
                    "2.0:ListResponse\"],\"totalResults\":%ui,"
                    "\"itemsPerPage\":%ui,\"startIndex\":1,\"Resources\":[",
                    n, n);

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_sprintf(p, (char *) docs[i].doc.data, &ctx->base);
    }

    p = ngx_cpymem(p, "]}\n", 3);

    return ngx_http_ent_scim_send(r, NGX_HTTP_OK, body, p - body, NULL, NULL);
}


/* configuration */


static void *
ngx_http_ent_scim_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ent_scim_main_conf_t  *scmf;

    scmf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ent_scim_main_conf_t));
    if (scmf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     scmf->tokens = NULL;
     *     scmf->tokens_zone = { 0, NULL };
     *     scmf->used = 0;
     */

    scmf->max_count = NGX_CONF_UNSET_UINT;
    scmf->rate = NGX_CONF_UNSET_UINT;

    return scmf;
}


static char *
ngx_http_ent_scim_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_ent_scim_main_conf_t *scmf = conf;

    ngx_conf_init_uint_value(scmf->max_count, 100);
    ngx_conf_init_uint_value(scmf->rate, 60);

    if (scmf->tokens_zone.data == NULL) {
        ngx_str_set(&scmf->tokens_zone, "scim_tokens");
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_ent_scim_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ent_scim_loc_conf_t  *sclf;

    sclf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ent_scim_loc_conf_t));
    if (sclf == NULL) {
        return NULL;
    }

    sclf->enable = NGX_CONF_UNSET;

    return sclf;
}


static char *
ngx_http_ent_scim_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ent_scim_loc_conf_t *prev = parent;
    ngx_http_ent_scim_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_scim(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                           *rv;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_ent_scim_loc_conf_t   *sclf = conf;
    ngx_http_ent_scim_main_conf_t  *scmf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (sclf->enable) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        clcf->handler = ngx_http_ent_scim_handler;

        scmf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_ent_scim_module);
        scmf->used = 1;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ent_scim_preconfiguration(ngx_conf_t *cf)
{
    return ngx_ent_core_check(cf, "ngx_http_ent_scim_module");
}


static ngx_int_t
ngx_http_ent_scim_postconfiguration(ngx_conf_t *cf)
{
    ngx_str_t                       name;
    ngx_http_ent_scim_main_conf_t  *scmf;

    scmf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ent_scim_module);

    if (!scmf->used) {
        return NGX_OK;
    }

    if ((ngx_ent_core_backends(cf) & NGX_ENT_POSTGRES) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ent_scim\" needs \"ent_postgres\" in http{}");
        return NGX_ERROR;
    }

    scmf->redis = (ngx_ent_core_backends(cf) & NGX_ENT_REDIS) != 0;

    scmf->tokens = ngx_ent_cache_zone(cf, &scmf->tokens_zone);
    if (scmf->tokens == NULL) {
        return NGX_ERROR;
    }

    scmf->token_stmt = ngx_ent_pg_stmt_add(cf,
                           "SELECT * FROM ent.scim_token_auth($1::bytea)", 1);
    scmf->create_stmt = ngx_ent_pg_stmt_add(cf,
                           "SELECT * FROM ent.scim_user_create($1::uuid, "
                           "$2::uuid, $3::jsonb, $4)", 4);
    scmf->get_stmt = ngx_ent_pg_stmt_add(cf,
                           "SELECT * FROM ent.scim_user_get($1::uuid, $2, "
                           "$3)", 3);
    scmf->replace_stmt = ngx_ent_pg_stmt_add(cf,
                           "SELECT * FROM ent.scim_user_replace($1::uuid, "
                           "$2::uuid, $3, $4::jsonb, ent.scim_if_match("
                           "$1::uuid, 'User', $3, $5::bigint[]), $6)", 6);
    scmf->delete_stmt = ngx_ent_pg_stmt_add(cf,
                           "SELECT * FROM ent.scim_user_delete($1::uuid, "
                           "$2::uuid, $3, ent.scim_if_match($1::uuid, "
                           "'User', $3, $4::bigint[]))", 4);
    scmf->list_stmt = ngx_ent_pg_stmt_add(cf,
                           "SELECT * FROM ent.scim_user_list($1::uuid, $2, "
                           "$3::text[], $4, $5::boolean, $6::integer, "
                           "$7::integer, $8)", 8);

    scmf->gcreate_stmt = ngx_ent_pg_stmt_add(cf,
                           "SELECT * FROM ent.scim_group_create($1::uuid, "
                           "$2::uuid, $3::jsonb, $4)", 4);
    scmf->gget_stmt = ngx_ent_pg_stmt_add(cf,
                           "SELECT * FROM ent.scim_group_get($1::uuid, $2, "
                           "$3, $4::boolean)", 4);
    scmf->gchange_stmt = ngx_ent_pg_stmt_add(cf,
                           "SELECT * FROM ent.scim_group_change($1::uuid, "
                           "$2::uuid, $3, $4::jsonb, ent.scim_if_match("
                           "$1::uuid, 'Group', $3, $5::bigint[]), $6, "
                           "$7::boolean)", 7);
    scmf->gdelete_stmt = ngx_ent_pg_stmt_add(cf,
                           "SELECT * FROM ent.scim_group_delete($1::uuid, "
                           "$2::uuid, $3, ent.scim_if_match($1::uuid, "
                           "'Group', $3, $4::bigint[]))", 4);
    scmf->glist_stmt = ngx_ent_pg_stmt_add(cf,
                           "SELECT * FROM ent.scim_group_list($1::uuid, $2, "
                           "$3::text[], $4, $5::boolean, $6::integer, "
                           "$7::integer, $8, $9::boolean)", 9);

    if (scmf->token_stmt == NULL || scmf->create_stmt == NULL
        || scmf->get_stmt == NULL || scmf->replace_stmt == NULL
        || scmf->delete_stmt == NULL || scmf->list_stmt == NULL
        || scmf->gcreate_stmt == NULL || scmf->gget_stmt == NULL
        || scmf->gchange_stmt == NULL || scmf->gdelete_stmt == NULL
        || scmf->glist_stmt == NULL)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&name, "ent_tenant_id");

    scmf->tenant_id_index = ngx_http_get_variable_index(cf, &name);
    if (scmf->tenant_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
}
