/*
 * ngx_http_ent_test_module: drives the ngx_ent core from a configuration,
 * for the integration tests and the benchmarks.  Never shipped.
 *
 *   ent_test_pg    "SQL" [param ...];          content: rows as text
 *   ent_test_redis arg [arg ...];              content: the reply as text
 *   ent_test_cache zone "SQL" key [param ...]; content: cached rows
 *   ent_test_access_redis arg [arg ...];       access: pass on a reply
 *   ent_test_access_cache zone "SQL" key [param ...];
 *                                              access: pass on a cached row
 *
 * A location takes one content and one access action; they share the
 * request context, which the access action no longer needs by the time
 * the content handler runs.
 *
 * Every argument is a complex value ($variables allowed).  Backend
 * unavailable or timed out: 503; backend error: 500 with the SQLSTATE.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ent_core.h"


#define NGX_HTTP_ENT_TEST_PG      1
#define NGX_HTTP_ENT_TEST_REDIS   2
#define NGX_HTTP_ENT_TEST_CACHE   3


typedef struct {
    ngx_uint_t                   kind;
    ngx_ent_pg_stmt_t           *stmt;
    ngx_ent_cache_t             *cache;
    ngx_http_complex_value_t    *key;
    ngx_array_t                  args;      /* ngx_http_complex_value_t */
} ngx_http_ent_test_action_t;


typedef struct {
    ngx_http_ent_test_action_t  *content;
    ngx_http_ent_test_action_t  *access;
} ngx_http_ent_test_loc_conf_t;


typedef struct {
    ngx_http_ent_test_action_t  *action;
    ngx_uint_t                   done;
    ngx_uint_t                   waiting;
    ngx_uint_t                   status;
    ngx_uint_t                   waited;
    ngx_str_t                    body;
    ngx_str_t                    state;
    ngx_str_t                   *params;
} ngx_http_ent_test_ctx_t;


static ngx_int_t ngx_http_ent_test_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ent_test_init(ngx_conf_t *cf);
static void *ngx_http_ent_test_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ent_test_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_ent_test_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ent_test_content_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ent_test_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ent_test_start(ngx_http_request_t *r,
    ngx_http_ent_test_ctx_t *ctx);
static ngx_int_t ngx_http_ent_test_eval(ngx_http_request_t *r,
    ngx_http_ent_test_ctx_t *ctx);
static void ngx_http_ent_test_content_done(ngx_ent_op_t *op);
static void ngx_http_ent_test_access_done(ngx_ent_op_t *op);
static ngx_int_t ngx_http_ent_test_collect(ngx_http_request_t *r,
    ngx_http_ent_test_ctx_t *ctx, ngx_ent_op_t *op);
static ngx_int_t ngx_http_ent_test_rows(ngx_http_request_t *r,
    ngx_str_t *blob, ngx_str_t *out);
static u_char *ngx_http_ent_test_reply(u_char *p, u_char *last,
    redisReply *reply);
static ngx_int_t ngx_http_ent_test_send(ngx_http_request_t *r,
    ngx_http_ent_test_ctx_t *ctx);


static ngx_command_t  ngx_http_ent_test_commands[] = {

    { ngx_string("ent_test_pg"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ent_test_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_test_redis"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ent_test_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_test_cache"),
      NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_ent_test_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_test_access_redis"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ent_test_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_test_access_cache"),
      NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_ent_test_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ent_test_module_ctx = {
    ngx_http_ent_test_preconfiguration,    /* preconfiguration */
    ngx_http_ent_test_init,                /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ent_test_create_loc_conf,     /* create location configuration */
    ngx_http_ent_test_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_ent_test_module = {
    NGX_MODULE_V1,
    &ngx_http_ent_test_module_ctx,         /* module context */
    ngx_http_ent_test_commands,            /* module directives */
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
ngx_http_ent_test_preconfiguration(ngx_conf_t *cf)
{
    return ngx_ent_core_check(cf, "ngx_http_ent_test_module");
}


static ngx_int_t
ngx_http_ent_test_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ent_test_access_handler;

    return NGX_OK;
}


static void *
ngx_http_ent_test_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ent_test_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ent_test_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->content = NULL;
     *     conf->access = NULL;
     */

    return conf;
}


static char *
ngx_http_ent_test_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ent_test_loc_conf_t *prev = parent;
    ngx_http_ent_test_loc_conf_t *conf = child;

    if (conf->access == NULL) {
        conf->access = prev->access;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_test_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_test_loc_conf_t *tlcf = conf;

    ngx_str_t                         *value;
    ngx_uint_t                         i, first, access;
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_complex_value_t          *cv;
    ngx_http_ent_test_action_t        *a;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;
    access = (ngx_strncmp(cmd->name.data, "ent_test_access_", 16) == 0);

    if ((access && tlcf->access) || (!access && tlcf->content)) {
        return "is duplicate";
    }

    a = ngx_pcalloc(cf->pool, sizeof(ngx_http_ent_test_action_t));
    if (a == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_strstr(cmd->name.data, "_pg") != NULL) {
        a->kind = NGX_HTTP_ENT_TEST_PG;
        first = 2;

    } else if (ngx_strstr(cmd->name.data, "_redis") != NULL) {
        a->kind = NGX_HTTP_ENT_TEST_REDIS;
        first = 1;

    } else {
        a->kind = NGX_HTTP_ENT_TEST_CACHE;
        first = 4;

        if (cf->args->nelts < 4) {
            return "needs a zone, a query and a key";
        }

        a->cache = ngx_ent_cache_zone(cf, &value[1]);
        if (a->cache == NULL) {
            return NGX_CONF_ERROR;
        }

        a->key = ngx_pcalloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (a->key == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &value[3];
        ccv.complex_value = a->key;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_array_init(&a->args, cf->pool, 4,
                       sizeof(ngx_http_complex_value_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = first; i < cf->args->nelts; i++) {
        cv = ngx_array_push(&a->args);
        if (cv == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &value[i];
        ccv.complex_value = cv;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (a->kind != NGX_HTTP_ENT_TEST_REDIS) {
        a->stmt = ngx_ent_pg_stmt_add(cf,
                                      (char *) value[first == 2 ? 1 : 2].data,
                                      a->args.nelts);
        if (a->stmt == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (access) {
        tlcf->access = a;
        return NGX_CONF_OK;
    }

    tlcf->content = a;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ent_test_content_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ent_test_content_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_ent_test_ctx_t       *ctx;
    ngx_http_ent_test_loc_conf_t  *tlcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_test_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ent_test_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->action = tlcf->content;
    ngx_http_set_ctx(r, ctx, ngx_http_ent_test_module);

    if (ngx_http_ent_test_eval(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_ent_test_start(r, ctx);

    if (rc == NGX_AGAIN) {
        r->main->count++;
        return NGX_DONE;
    }

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_ent_test_send(r, ctx);
}


static ngx_int_t
ngx_http_ent_test_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_ent_test_ctx_t       *ctx;
    ngx_http_ent_test_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_test_module);

    if (tlcf->access == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_test_module);

    if (ctx && ctx->waiting) {
        return NGX_AGAIN;
    }

    if (ctx && ctx->done) {
        if (ctx->status == NGX_HTTP_OK) {
            return NGX_OK;
        }

        return ctx->status;
    }

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ent_test_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->action = tlcf->access;
        ngx_http_set_ctx(r, ctx, ngx_http_ent_test_module);

        if (ngx_http_ent_test_eval(r, ctx) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    rc = ngx_http_ent_test_start(r, ctx);

    if (rc == NGX_AGAIN) {
        ctx->waiting = 1;
        return ngx_ent_phase_wait(r);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    return ctx->status == NGX_HTTP_OK ? NGX_OK : (ngx_int_t) ctx->status;
}


static ngx_int_t
ngx_http_ent_test_eval(ngx_http_request_t *r, ngx_http_ent_test_ctx_t *ctx)
{
    ngx_uint_t                 i;
    ngx_http_complex_value_t  *cv;

    ctx->params = ngx_pcalloc(r->pool,
                              (ctx->action->args.nelts + 1)
                              * sizeof(ngx_str_t));
    if (ctx->params == NULL) {
        return NGX_ERROR;
    }

    cv = ctx->action->args.elts;

    for (i = 0; i < ctx->action->args.nelts; i++) {
        if (ngx_http_complex_value(r, &cv[i], &ctx->params[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ctx->action->key
        && ngx_http_complex_value(r, ctx->action->key,
                                  &ctx->params[ctx->action->args.nelts])
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * NGX_OK: ctx->status/body are set; NGX_AGAIN: a handler will be called;
 * an HTTP status otherwise
 */

static ngx_int_t
ngx_http_ent_test_start(ngx_http_request_t *r, ngx_http_ent_test_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_str_t                    value;
    ngx_ent_redis_cmd_t          cmd;
    ngx_ent_cache_fill_t         fill;
    ngx_ent_op_handler_pt        done;
    ngx_http_ent_test_action_t  *a;

    a = ctx->action;
    done = (ctx->action == ((ngx_http_ent_test_loc_conf_t *)
                            ngx_http_get_module_loc_conf(r,
                                ngx_http_ent_test_module))->content)
           ? ngx_http_ent_test_content_done : ngx_http_ent_test_access_done;

    switch (a->kind) {

    case NGX_HTTP_ENT_TEST_PG:
        rc = ngx_ent_pg_query(r, a->stmt, ctx->params, done, r);
        break;

    case NGX_HTTP_ENT_TEST_REDIS:
        cmd.argc = a->args.nelts;
        cmd.argv = ctx->params;
        rc = ngx_ent_redis_run(r, &cmd, 1, done, r);
        break;

    default: /* NGX_HTTP_ENT_TEST_CACHE */
        fill.stmt = a->stmt;
        fill.params = ctx->params;
        fill.transform = NULL;
        fill.flags = NGX_ENT_CACHE_STALE_OK;

        rc = ngx_ent_cache_fetch(r, a->cache, &ctx->params[a->args.nelts],
                                 &fill, &value, done, r);

        if (rc == NGX_AGAIN && ctx->waited) {
            /* a fill ended, another started: we wait once more */
            ngx_str_set(&ctx->state, "WAIT");
        }

        if (rc == NGX_OK) {
            if (ctx->state.len == 0) {
                ngx_str_set(&ctx->state, "HIT");
            }

            ctx->status = NGX_HTTP_OK;
            return ngx_http_ent_test_rows(r, &value, &ctx->body);
        }

        if (rc == NGX_DECLINED) {
            if (ctx->state.len == 0) {
                ngx_str_set(&ctx->state, "NEGATIVE");
            }

            ctx->status = NGX_HTTP_NOT_FOUND;
            ngx_str_set(&ctx->body, "not found\n");
            return NGX_OK;
        }

        if (rc == NGX_AGAIN) {
            ngx_str_set(&ctx->state, "MISS");
        }

        if (rc == NGX_BUSY) {
            rc = NGX_DECLINED;
        }

        break;
    }

    if (rc == NGX_DECLINED) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_AGAIN;
}


static void
ngx_http_ent_test_content_done(ngx_ent_op_t *op)
{
    ngx_int_t                 rc;
    ngx_http_request_t       *r;
    ngx_http_ent_test_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_test_module);

    rc = ngx_http_ent_test_collect(r, ctx, op);

    if (rc == NGX_AGAIN) {
        /* still waiting: the request keeps its reference */
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    ngx_http_finalize_request(r, ngx_http_ent_test_send(r, ctx));
}


static void
ngx_http_ent_test_access_done(ngx_ent_op_t *op)
{
    ngx_int_t                 rc;
    ngx_http_request_t       *r;
    ngx_http_ent_test_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_test_module);

    rc = ngx_http_ent_test_collect(r, ctx, op);

    if (rc == NGX_AGAIN) {
        return;
    }

    ctx->done = 1;
    ctx->waiting = 0;

    if (rc != NGX_OK) {
        ctx->status = rc;
    }

    ngx_ent_phase_resume(r);
}


static ngx_int_t
ngx_http_ent_test_collect(ngx_http_request_t *r, ngx_http_ent_test_ctx_t *ctx,
    ngx_ent_op_t *op)
{
    u_char      *p;
    size_t       size;
    ngx_str_t    blob;
    ngx_uint_t   i;

    if (ctx->action->kind == NGX_HTTP_ENT_TEST_CACHE) {
        /* the fill ended (or failed): ask again */

        ngx_str_set(&ctx->state, "MISS");
        ctx->waited = 1;

        return ngx_http_ent_test_start(r, ctx);
    }

    if (op->status == NGX_ENT_UNAVAILABLE || op->status == NGX_ENT_TIMEOUT) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (op->status == NGX_ENT_ERROR) {
        ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        ctx->body.data = ngx_pnalloc(r->pool, 32);
        if (ctx->body.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->body.len = ngx_sprintf(ctx->body.data, "error %s\n",
                                    op->sqlstate[0] ? (char *) op->sqlstate
                                                    : "-")
                        - ctx->body.data;
        return NGX_OK;
    }

    ctx->status = NGX_HTTP_OK;

    if (ctx->action->kind == NGX_HTTP_ENT_TEST_PG) {
        blob.data = (u_char *) op->rows.data;
        blob.len = op->rows.len;

        if (blob.data == NULL) {
            ctx->body.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 16);
            if (ctx->body.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ctx->body.len = ngx_sprintf(ctx->body.data, "affected %ui\n",
                                        op->affected)
                            - ctx->body.data;
            return NGX_OK;
        }

        return ngx_http_ent_test_rows(r, &blob, &ctx->body);
    }

    size = 64;

    for (i = 0; i < op->nreplies; i++) {
        size += 64 + (op->replies[i]->type == REDIS_REPLY_ARRAY
                      ? op->replies[i]->elements * 64 : 0)
                + (op->replies[i]->str ? op->replies[i]->len : 0);
    }

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->body.data = p;

    for (i = 0; i < op->nreplies; i++) {
        p = ngx_http_ent_test_reply(p, ctx->body.data + size,
                                    op->replies[i]);
        if (op->replies[i]->type == REDIS_REPLY_ERROR) {
            ctx->status = NGX_HTTP_BAD_GATEWAY;
        }
    }

    ctx->body.len = p - ctx->body.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_test_rows(ngx_http_request_t *r, ngx_str_t *blob,
    ngx_str_t *out)
{
    u_char          *p;
    size_t           len, size;
    uint32_t         n;
    const u_char    *data;
    ngx_ent_rows_t   rows;

    if (ngx_ent_rows_open(&rows, blob->data, blob->len) != 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    size = blob->len + 2 * (size_t) rows.nrows * rows.ncols + 2;

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out->data = p;
    n = 0;

    while (ngx_ent_rows_next(&rows, &data, &len)) {
        p = data ? ngx_cpymem(p, data, len) : ngx_cpymem(p, "\\N", 2);

        n++;
        *p++ = (n % rows.ncols == 0) ? '\n' : '|';
    }

    out->len = p - out->data;

    return NGX_OK;
}


static u_char *
ngx_http_ent_test_reply(u_char *p, u_char *last, redisReply *reply)
{
    size_t  i;

    switch (reply->type) {

    case REDIS_REPLY_INTEGER:
        return ngx_slprintf(p, last, ":%L\n", (int64_t) reply->integer);

    case REDIS_REPLY_NIL:
        return ngx_slprintf(p, last, "(nil)\n");

    case REDIS_REPLY_STATUS:
        return ngx_slprintf(p, last, "+%*s\n", reply->len, reply->str);

    case REDIS_REPLY_ERROR:
        return ngx_slprintf(p, last, "-%*s\n", reply->len, reply->str);

    case REDIS_REPLY_STRING:
        return ngx_slprintf(p, last, "$%*s\n", reply->len, reply->str);

    case REDIS_REPLY_ARRAY:
        p = ngx_slprintf(p, last, "*%uz\n", reply->elements);

        for (i = 0; i < reply->elements; i++) {
            p = ngx_http_ent_test_reply(p, last, reply->element[i]);
        }

        return p;

    default:
        return ngx_slprintf(p, last, "?\n");
    }
}


static ngx_int_t
ngx_http_ent_test_send(ngx_http_request_t *r, ngx_http_ent_test_ctx_t *ctx)
{
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    r->headers_out.status = ctx->status;
    r->headers_out.content_length_n = ctx->body.len;
    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (ctx->state.len) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "X-Cache");
        h->value = ctx->state;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only
        || ctx->body.len == 0)
    {
        return rc == NGX_OK && ctx->body.len == 0
               ? ngx_http_send_special(r, NGX_HTTP_LAST) : rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->body.data;
    b->last = ctx->body.data + ctx->body.len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
