/*
 * ngx_ent core: the API the feature modules use.
 *
 * The core module (ngx_http_ent_core_module.so) owns, per worker, one
 * PostgreSQL pool, one set of Redis connections and the shared-memory
 * caches.  Feature modules are separate .so files; nginx loads modules with
 * RTLD_GLOBAL, so they resolve these functions from the core at load time.
 * Outside the core every function below is declared weak: a feature module
 * loaded without the core still loads, and its preconfiguration calls
 * ngx_ent_core_check(), which fails "nginx -t" with a message naming the
 * missing load_module line instead of a dlopen() "undefined symbol" error.
 *
 * Waiting.  Every backend call takes a request (or NULL for background
 * work), a handler and its data, and returns:
 *
 *     NGX_AGAIN     the handler will be called once with op->status set;
 *     NGX_DECLINED  the backend is unavailable right now (answer 503);
 *     NGX_ERROR     an internal error (answer 500).
 *
 * The handler is never called from inside the call that started the
 * operation.  An operation bound to a request holds only a pointer that a
 * cleanup of the request's pool clears: when the client goes away, or the
 * request is finalized for any reason, the reply is dropped unseen and the
 * request memory is never touched again.
 */

#ifndef _NGX_ENT_CORE_H_INCLUDED_
#define _NGX_ENT_CORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <hiredis/hiredis.h>


#ifdef NGX_ENT_CORE_SELF
#define NGX_ENT_API
#else
#define NGX_ENT_API       __attribute__((weak))
#define NGX_ENT_ROWS_API  __attribute__((weak))
#endif

#include "ngx_ent_rows.h"


/* op->status */
#define NGX_ENT_OK             0
#define NGX_ENT_ERROR          1     /* the backend answered with an error */
#define NGX_ENT_UNAVAILABLE    2     /* connection lost, queue full */
#define NGX_ENT_TIMEOUT        3


#define NGX_ENT_REDIS_MAX_CMDS  64


typedef struct ngx_ent_op_s        ngx_ent_op_t;
typedef struct ngx_ent_pg_stmt_s   ngx_ent_pg_stmt_t;
typedef struct ngx_ent_cache_s     ngx_ent_cache_t;

typedef void (*ngx_ent_op_handler_pt)(ngx_ent_op_t *op);


struct ngx_ent_op_s {
    ngx_ent_op_handler_pt      handler;
    void                      *data;

    ngx_uint_t                 status;

    /* PostgreSQL: rows of the result, rows affected, SQLSTATE on error */
    ngx_ent_rows_t             rows;
    ngx_uint_t                 affected;
    u_char                     sqlstate[6];

    /* Redis: one reply per command, in order */
    ngx_uint_t                 nreplies;
    redisReply               **replies;

    /* private to the core below this line */
    ngx_http_request_t        *request;
    ngx_pool_cleanup_t        *cln;
    ngx_log_t                 *log;
    void                     (*cancel)(ngx_ent_op_t *op);
    void                      *backend;
    ngx_queue_t                queue;
    ngx_event_t                timer;
    ngx_msec_t                 sent;

    ngx_ent_pg_stmt_t         *stmt;
    char                     **values;
    u_char                    *blob;

    u_char                    *out;
    size_t                     out_len;
    ngx_uint_t                 ncmds;
    void                      *cluster;      /* Redis Cluster routing */

    unsigned                   bound:1;
};


struct ngx_ent_pg_stmt_s {
    ngx_uint_t                 index;
    ngx_uint_t                 nparams;
    char                      *sql;
    char                       name[32];
};


typedef struct {
    ngx_uint_t                 argc;
    ngx_str_t                 *argv;
} ngx_ent_redis_cmd_t;


/* ngx_ent_cache_fetch() flags */
#define NGX_ENT_CACHE_STALE_OK  0x01


/*
 * Turns the rows a fill brought back into the value stored (a module's
 * compiled record); runs once per fill, in the worker that filled, with a
 * temporary pool.  NGX_OK with *out set; anything else fails the fill.
 */
typedef ngx_int_t (*ngx_ent_cache_transform_pt)(ngx_ent_rows_t *rows,
    ngx_pool_t *pool, ngx_str_t *out, ngx_log_t *log);


typedef struct {
    ngx_ent_pg_stmt_t           *stmt;
    ngx_str_t                   *params;
    ngx_ent_cache_transform_pt   transform;   /* NULL: store the rows */
    ngx_uint_t                   flags;
} ngx_ent_cache_fill_t;


/* core presence; call from a feature module's preconfiguration */
#define ngx_ent_core_check(cf, name)                                         \
    ((&ngx_http_ent_core_module == NULL || ngx_ent_core_present == NULL)     \
     ? ngx_ent_core_missing(cf, name) : NGX_OK)

static ngx_inline ngx_int_t
ngx_ent_core_missing(ngx_conf_t *cf, const char *name)
{
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "%s requires ngx_http_ent_core_module: add "
                       "\"load_module modules/ngx_http_ent_core_module.so;\" "
                       "before the other ngx_ent modules", name);
    return NGX_ERROR;
}


extern ngx_module_t  ngx_http_ent_core_module NGX_ENT_API;

NGX_ENT_API ngx_int_t ngx_ent_core_present(void);

/* len random bytes from /dev/urandom, at configuration or process start */
NGX_ENT_API ngx_int_t ngx_ent_random(void *buf, size_t len, ngx_log_t *log);


/* which backends http{} configures; from a postconfiguration on */
#define NGX_ENT_POSTGRES  0x01
#define NGX_ENT_REDIS     0x02

NGX_ENT_API ngx_uint_t ngx_ent_core_backends(ngx_conf_t *cf);


/* PostgreSQL: statements are declared at configuration time */
NGX_ENT_API ngx_ent_pg_stmt_t *ngx_ent_pg_stmt_add(ngx_conf_t *cf, char *sql,
    ngx_uint_t nparams);

/* params[i].data == NULL sends SQL NULL; values are text */
NGX_ENT_API ngx_int_t ngx_ent_pg_query(ngx_http_request_t *r,
    ngx_ent_pg_stmt_t *stmt, ngx_str_t *params,
    ngx_ent_op_handler_pt handler, void *data);


/*
 * Redis: how many times this worker has (re)connected; it changes when
 * Redis may have lost its data (a restart), for modules that remember
 * what they stored
 */
NGX_ENT_API ngx_uint_t ngx_ent_redis_generation(void);

/* Redis: all commands go out in one write, on one connection */
NGX_ENT_API ngx_int_t ngx_ent_redis_run(ngx_http_request_t *r,
    ngx_ent_redis_cmd_t *cmds, ngx_uint_t ncmds,
    ngx_ent_op_handler_pt handler, void *data);

/*
 * Redis: NGX_OK when op completed with a reply to every command and none
 * of them is an error reply (-ERR, a MOVED that ran out of tries, ...);
 * else NGX_ERROR, logged once.  For callers that must fail closed.
 */
NGX_ENT_API ngx_int_t ngx_ent_redis_replied(ngx_ent_op_t *op);


/* shared-memory caches */
NGX_ENT_API ngx_ent_cache_t *ngx_ent_cache_zone(ngx_conf_t *cf,
    ngx_str_t *name);

/*
 * The value stored for key, filled by fill->stmt(fill->params) on a miss
 * (through fill->transform when set), with concurrent misses for one key
 * coalesced into one query on this node.
 *   NGX_OK        *value holds the rows blob or the transformed value
 *                 (copied into r->pool)
 *   NGX_DECLINED  a negative entry: the query returned no rows
 *   NGX_AGAIN     handler is called when the fill ends; call again then
 *   NGX_BUSY      the backend failed recently and no stale value is allowed
 *   NGX_ERROR     internal error
 */
NGX_ENT_API ngx_int_t ngx_ent_cache_fetch(ngx_http_request_t *r,
    ngx_ent_cache_t *cache, ngx_str_t *key, ngx_ent_cache_fill_t *fill,
    ngx_str_t *value, ngx_ent_op_handler_pt handler, void *data);

/*
 * Values that are not rows (documents fetched over HTTP).  peek: NGX_OK
 * with the value copied into pool and *left the milliseconds it stays
 * fresh (0: expired, the caller may serve it while it refreshes), or
 * NGX_DECLINED.  put: stores for ttl.  claim: a node-wide lease for ms,
 * NGX_OK to the first caller, NGX_BUSY to the others until it ends.
 */
/*
 * The zone's generation: it changes whenever the whole zone is flushed
 * (an invalidation "zone:*", on every node); a module that keeps values of
 * the zone in worker memory compares it to drop them (a plain read).  The
 * epoch changes with it, and also when the zone is outdated (the node's
 * listener was away and may have missed notifications): a value kept from
 * an older epoch is to be asked for again, and may serve should that fail.
 */
NGX_ENT_API ngx_uint_t ngx_ent_cache_generation(ngx_ent_cache_t *cache);
NGX_ENT_API ngx_uint_t ngx_ent_cache_epoch(ngx_ent_cache_t *cache);

/*
 * SipHash-1-3 under the zone's random key: the same in every worker and
 * across reloads (the zone keeps it), unknown outside the node; for parts
 * of a key that a client chooses
 */
NGX_ENT_API uint64_t ngx_ent_cache_hash64(ngx_ent_cache_t *cache,
    const u_char *p, size_t len);

NGX_ENT_API ngx_int_t ngx_ent_cache_peek(ngx_ent_cache_t *cache,
    ngx_str_t *key, ngx_pool_t *pool, ngx_str_t *value, ngx_msec_t *left);
NGX_ENT_API ngx_int_t ngx_ent_cache_put(ngx_ent_cache_t *cache,
    ngx_str_t *key, ngx_str_t *value, ngx_msec_t ttl);
NGX_ENT_API ngx_int_t ngx_ent_cache_claim(ngx_ent_cache_t *cache,
    ngx_str_t *key, ngx_msec_t ms);

NGX_ENT_API void ngx_ent_cache_delete(ngx_ent_cache_t *cache, ngx_str_t *key);
NGX_ENT_API void ngx_ent_cache_flush(ngx_ent_cache_t *cache);


/*
 * The audit trail.  An event is in this worker's journal on disk when the
 * call returns (or dropped with an error-log line: journal full, or too
 * long); it reaches PostgreSQL (ent.audit) in the background.  r may be
 * NULL (background work); with a request, the client address, User-Agent
 * and $request_id are added.  details: ndetails name/value pairs; a name
 * that starts with '#' has a number as its value, written as is.  Strings
 * are cut to their column's length; nothing secret belongs in any of them.
 * merge: a count (details "#count") added into the one row per tenant,
 * action, target_id and minute (rate-limit rejections).
 */
typedef struct {
    ngx_str_t                  tenant;      /* uuid text, or empty */
    ngx_str_t                  user;        /* uuid of the user concerned */
    ngx_str_t                  actor;
    const char                *actor_type;  /* user token platform_admin
                                               system anonymous */
    const char                *action;      /* "login", "scim.user.create" */
    const char                *result;      /* success failure info */
    ngx_str_t                  target_type;
    ngx_str_t                  target_id;
    ngx_str_t                  reason;
    ngx_str_t                 *details;
    ngx_uint_t                 ndetails;
    ngx_str_t                  other_issuer;  /* kept only if PostgreSQL
                                                 finds this issuer set up
                                                 for another tenant */
    unsigned                   merge:1;
} ngx_ent_audit_event_t;

NGX_ENT_API void ngx_ent_audit(ngx_http_request_t *r,
    ngx_ent_audit_event_t *ev);

/* a numeric detail, d[0] its name ("#count"), d[1] n written at p (room for
   NGX_INT64_LEN); returns the end of the digits */
static ngx_inline u_char *
ngx_ent_audit_number(ngx_str_t *d, const char *name, u_char *p, int64_t n)
{
    d[0].data = (u_char *) name;
    d[0].len = ngx_strlen(name);
    d[1].data = p;
    p = ngx_sprintf(p, "%L", n);
    d[1].len = p - d[1].data;

    return p;
}

/* whether events are kept at all (ent_audit on, PostgreSQL configured) */
NGX_ENT_API ngx_uint_t ngx_ent_audit_enabled(void);


/*
 * Per-tenant counters the feature modules add to (the metrics zone's;
 * nothing when ent_metrics_zone is not set).  The tenant is the request's
 * $ent_tenant_id.
 */
#define NGX_ENT_M_RATELIMITED    0
#define NGX_ENT_M_OIDC_LOGIN     1
#define NGX_ENT_M_OIDC_FAILURE   2
#define NGX_ENT_M_SAML_LOGIN     3
#define NGX_ENT_M_SAML_FAILURE   4
#define NGX_ENT_M_SCIM_OP        5
#define NGX_ENT_M_SCIM_ERROR     6
#define NGX_ENT_M_COUNTERS       7

NGX_ENT_API void ngx_ent_metrics_count(ngx_http_request_t *r,
    ngx_uint_t counter);


/*
 * A phase handler that waits returns ngx_ent_phase_wait(r) (NGX_DONE, which
 * every phase checker takes as "stop here"; NGX_AGAIN would finalize the
 * request in the rewrite phases):
 * until ngx_ent_phase_resume(r), write events on the client connection no
 * longer re-run the phase engine (which would re-enter the handler while
 * it waits), and a client that closes its connection ends the request.
 */
NGX_ENT_API ngx_int_t ngx_ent_phase_wait(ngx_http_request_t *r);
NGX_ENT_API void ngx_ent_phase_resume(ngx_http_request_t *r);

/*
 * A request context that survives internal redirects (which wipe module
 * contexts, so that a request would be counted or resolved twice): it lives
 * in a pool cleanup, found again by its handler, which also marks whose it
 * is.  ngx_ent_ctx_new() returns it zeroed and set as the module's context.
 */
NGX_ENT_API void *ngx_ent_ctx_get(ngx_http_request_t *r, ngx_module_t *m,
    ngx_pool_cleanup_pt handler);
NGX_ENT_API void *ngx_ent_ctx_new(ngx_http_request_t *r, ngx_module_t *m,
    size_t size, ngx_pool_cleanup_pt handler);


#endif /* _NGX_ENT_CORE_H_INCLUDED_ */
