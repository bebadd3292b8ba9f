/*
 * ngx_http_ent_ratelimit_module: fleet-wide rate limits per tier.
 *
 * Policies are declared in http{} with a limit per tier (the tenant's tier
 * comes from $ent_tenant_tier) and a window; a location applies one or
 * more.  In PREACCESS every policy's counter goes to Redis in one pipelined
 * round trip: "SET key 0 EX ttl NX" then "INCR key" per policy, so the
 * count is atomic however many nodes race (the value an INCR returns is
 * unique).  A request is admitted when every policy's value is within its
 * limit; when one rejects, every counter it raised is decremented again
 * (fire and forget), so rejected requests consume nothing.  Fixed windows,
 * aligned to the epoch: see ngx_ent_rl.h for what that admits at an edge.
 *
 * Redis unavailable, or slower than ent_ratelimit_budget: each policy
 * falls back as it says: "local" (a per-node shared-memory counter at
 * limit / nodes), "open" (admit) or "closed" (503).  Never a 500.
 *
 * Every response under a policy carries RateLimit-Policy and RateLimit
 * (draft-ietf-httpapi-ratelimit-headers-10 syntax), a 429 also Retry-After.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_md5.h>

#include "ngx_ent_core.h"
#include "ngx_ent_rl.h"
#include "ngx_ent_tenant_api.h"


#define NGX_HTTP_ENT_RL_MAX              8
#define NGX_HTTP_ENT_RL_NAME_LEN         32     /* a policy's, "-burst" aside */

/* ent_ratelimit_time_offset: ten years either way */
#define NGX_HTTP_ENT_RL_OFFSET_MAX       315360000

#define NGX_HTTP_ENT_RL_KEY_TENANT       0
#define NGX_HTTP_ENT_RL_KEY_IP           1
#define NGX_HTTP_ENT_RL_KEY_VAR          2

#define NGX_HTTP_ENT_RL_FAIL_LOCAL       0
#define NGX_HTTP_ENT_RL_FAIL_OPEN        1
#define NGX_HTTP_ENT_RL_FAIL_CLOSED      2

#define NGX_HTTP_ENT_RL_UNLIMITED        -1

#define NGX_HTTP_ENT_RL_NONE             0
#define NGX_HTTP_ENT_RL_WAITING          1
#define NGX_HTTP_ENT_RL_DONE             2

#define NGX_HTTP_ENT_RL_SLOT_PROBES      8

/* keys this worker knows exist with a TTL in Redis (direct-mapped) */
#define NGX_HTTP_ENT_RL_SEEN             4096   /* keys a worker knows */
#define NGX_HTTP_ENT_RL_SEEN_LEASES      32768  /* ... with lease= on */
#define NGX_HTTP_ENT_RL_WAYS             8

/* the first entry of a key's bucket; a tag is never 0 (an unused entry) */

#define ngx_http_ent_rl_bucket(rmcf, hash)                                   \
    (((hash) % ((rmcf)->nseen / NGX_HTTP_ENT_RL_WAYS)) * NGX_HTTP_ENT_RL_WAYS)
#define ngx_http_ent_rl_tag(hash)  ((uint32_t) ((hash) >> 32) | 1)

/* quota usage not yet written to PostgreSQL (direct-mapped) */
#define NGX_HTTP_ENT_RL_USAGE            1024
#define NGX_HTTP_ENT_RL_ID_LEN           36


typedef struct {
    ngx_str_t                    tier;
    ngx_int_t                    limit;
} ngx_http_ent_rl_tier_t;


typedef struct {
    ngx_str_t                    name;
    time_t                       window;
    ngx_array_t                  tiers;        /* ngx_http_ent_rl_tier_t */
    ngx_int_t                    limit;        /* other tiers */
    ngx_flag_t                   limit_set;    /* limit= given: "unlimited"
                                                  is -1, as NGX_CONF_UNSET */
    ngx_uint_t                   key_type;
    ngx_http_complex_value_t    *key;
    ngx_uint_t                   fail;
    ngx_uint_t                   nodes;
    ngx_uint_t                   status;
    ngx_flag_t                   dry_run;
    ngx_flag_t                   monthly;      /* per=month: billing cycle */
    ngx_uint_t                   warn[2];      /* soft thresholds, percent */
    ngx_flag_t                   preset;       /* built in: may be replaced */
    ngx_int_t                    burst;        /* at most this many a second */
    ngx_flag_t                   user;         /* key=user: after SSO */
    ngx_uint_t                   burst_ix;     /* its companion policy + 1 */
    ngx_int_t                    lease;        /* lease=N: at most N ahead */
} ngx_http_ent_rl_policy_t;


typedef struct {
    uint64_t                     hash;
    time_t                       start;
    ngx_uint_t                   generation;
    ngx_uint_t                   used;         /* when claimed */

    /* lease=: counts next..last taken in Redis, not yet used here */
    ngx_int_t                    next;
    ngx_int_t                    last;
    ngx_int_t                    count;        /* Redis's at the grant */
    ngx_int_t                    limit;        /* the grant's limit */
    time_t                       end;          /* of its window */
    ngx_msec_t                   asked;        /* a lease is on its way */
    ngx_uint_t                   asking;
} ngx_http_ent_rl_seen_t;


typedef struct {
    u_char                       tenant[NGX_HTTP_ENT_RL_ID_LEN];
    ngx_http_ent_rl_policy_t    *policy;
    time_t                       start;
    ngx_uint_t                   used;
    ngx_uint_t                   written;      /* what PostgreSQL has */
    ngx_uint_t                   writing;
    ngx_flag_t                   taken;        /* writing: a previous owner */
} ngx_http_ent_rl_usage_t;


/* rejections of one tenant and policy in one minute, for the audit trail */
typedef struct {
    u_char                       tenant[NGX_HTTP_ENT_RL_ID_LEN];
    ngx_str_t                    policy;
    time_t                       minute;
    ngx_uint_t                   count;
} ngx_http_ent_rl_rejects_t;

#define NGX_HTTP_ENT_RL_REJECTS          64


typedef struct {
    ngx_array_t                  policies;     /* ngx_http_ent_rl_policy_t */
    ngx_shm_zone_t              *zone;
    ngx_str_t                    zone_name;
    ssize_t                      zone_size;
    ngx_int_t                    tier_index;
    ngx_int_t                    code_index;
    ngx_int_t                    overrides_index;
    ngx_int_t                    anchor_index;
    ngx_int_t                    id_index;
    ngx_msec_t                   rollup;       /* ent_ratelimit_rollup */
    ngx_ent_pg_stmt_t           *usage_stmt;
    ngx_http_ent_rl_usage_t     *usage;        /* per worker, lazily */
    ngx_http_ent_rl_rejects_t   *rejects;      /* per worker, lazily */
    ngx_event_t                  rejects_timer;
    ngx_event_t                  flush;
    time_t                       offset;       /* ent_ratelimit_time_offset */
    time_t                       logged;
    ngx_http_ent_rl_seen_t      *seen;         /* per worker, lazily */
    ngx_uint_t                   claims;
    ngx_uint_t                   nseen;        /* its entries */
    uint32_t                    *tags;         /* a bucket's in one line */
    uint64_t                     hash_key[2];  /* the keys' SipHash, random */

    ngx_uint_t                   workers;      /* worker_processes */
    ngx_flag_t                   used;         /* "ent_ratelimit" is set */
} ngx_http_ent_rl_main_conf_t;


typedef struct {
    ngx_array_t                 *policies;     /* indexes in rmcf->policies */
    ngx_msec_t                   budget;
    ngx_flag_t                   legacy;
    ngx_flag_t                   after_access; /* a key=user policy: all
                                                  are counted after SSO */
} ngx_http_ent_rl_loc_conf_t;


typedef struct {
    ngx_http_ent_rl_policy_t    *policy;
    ngx_int_t                    limit;
    ngx_uint_t                   remaining;
    time_t                       reset;
    time_t                       window;
    ngx_uint_t                   used;
    ngx_uint_t                   warned;       /* threshold crossed, % */
    ngx_str_t                    key;
    uint64_t                     hash;
    time_t                       start;
    ngx_uint_t                   reply;        /* index of the INCR reply */
    ngx_int_t                    incr;         /* lease=: INCRBY this */
    ngx_int_t                    back;         /* to give back: DECRBY */
    unsigned                     leased:1;     /* admitted from a lease */
    unsigned                     created:1;    /* SET NX sent */
    unsigned                     rejected:1;
    unsigned                     counted:1;    /* Redis was incremented */
    unsigned                     unknown:1;    /* failed open */
    unsigned                     closed:1;     /* failed closed */
    unsigned                     crossed:1;    /* this count is a threshold */
} ngx_http_ent_rl_result_t;


typedef struct {
    ngx_uint_t                   state;
    ngx_uint_t                   n;
    ngx_uint_t                   first;        /* of this location's */
    ngx_array_t                 *policies;     /* the location's, counted */
    ngx_uint_t                   op_first;     /* res[] a reply is for */
    ngx_uint_t                   op_n;
    ngx_flag_t                   op;           /* a reply is awaited */
    ngx_http_ent_rl_result_t     res[NGX_HTTP_ENT_RL_MAX];
    ngx_int_t                    decision;     /* NGX_DECLINED or status */
    ngx_http_ent_rl_result_t    *cause;        /* the result that decided */
    ngx_str_t                    status;       /* $ent_ratelimit_status */
    ngx_flag_t                   answered;     /* the rejection was sent */
    ngx_uint_t                   generation;
    ngx_event_t                  budget;
    ngx_http_request_t          *request;
} ngx_http_ent_rl_ctx_t;


/* the local fallback: slots of counters in shared memory */

typedef struct {
    u_char                       hash[16];
    uint32_t                     end;          /* when its window ends */
    uint32_t                     count;
} ngx_http_ent_rl_slot_t;


typedef struct {
    ngx_slab_pool_t             *shpool;
    ngx_http_ent_rl_slot_t      *slots;
    ngx_uint_t                   nslots;

    /* the node's counters, for ent_ratelimit_status */
    ngx_atomic_t                 fallbacks;    /* decided without Redis */
    ngx_atomic_t                 budget;       /* of which: Redis too slow */
    ngx_atomic_t                 rejected;     /* 429/402/503 answered */
    ngx_atomic_t                 thresholds;   /* soft thresholds crossed */
} ngx_http_ent_rl_zone_t;

#define ngx_http_ent_rl_shm(rmcf)                                            \
    ((ngx_http_ent_rl_zone_t *) (rmcf)->zone->data)


static ngx_int_t ngx_http_ent_rl_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ent_rl_init(ngx_conf_t *cf);
static void *ngx_http_ent_rl_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_ent_rl_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_ent_rl_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ent_rl_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_ent_rl_policy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_rl_apply(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_rl_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_rl_time_offset(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_rl_rollup(ngx_conf_t *cf, void *post, void *data);
static ngx_int_t ngx_http_ent_rl_preset(ngx_conf_t *cf,
    ngx_http_ent_rl_main_conf_t *rmcf, char *name, time_t window,
    ngx_int_t limit, ngx_uint_t key_type, char *key);
static ngx_int_t ngx_http_ent_rl_policy_init(ngx_conf_t *cf,
    ngx_http_ent_rl_policy_t *p, ngx_str_t *name);
static ngx_int_t ngx_http_ent_rl_burst(ngx_conf_t *cf,
    ngx_http_ent_rl_main_conf_t *rmcf, ngx_http_ent_rl_policy_t *p);
static ngx_int_t ngx_http_ent_rl_key_compile(ngx_conf_t *cf,
    ngx_http_ent_rl_policy_t *p, ngx_str_t *value);
static ngx_int_t ngx_http_ent_rl_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static char *ngx_http_ent_rl_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ent_rl_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ent_rl_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ent_rl_preaccess_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ent_rl_precontent_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ent_rl_handler(ngx_http_request_t *r);
static ngx_http_ent_rl_ctx_t *ngx_http_ent_rl_get_ctx(ngx_http_request_t *r);
static ngx_int_t ngx_http_ent_rl_key(ngx_http_request_t *r,
    ngx_http_ent_rl_policy_t *p, ngx_str_t *tenant, ngx_str_t *tag,
    time_t start, ngx_str_t *key);
static uint64_t ngx_http_ent_rl_hash(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_str_t *key);
static ngx_uint_t ngx_http_ent_rl_seen(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_result_t *res, ngx_uint_t generation);
static ngx_http_ent_rl_seen_t *ngx_http_ent_rl_remember(
    ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_result_t *res, ngx_uint_t generation);
static void ngx_http_ent_rl_replied(ngx_ent_op_t *op);
static void ngx_http_ent_rl_budget(ngx_event_t *ev);
static void ngx_http_ent_rl_cleanup(void *data);
static void ngx_http_ent_rl_fallback(ngx_http_request_t *r,
    ngx_http_ent_rl_ctx_t *ctx);
static void ngx_http_ent_rl_late(ngx_ent_op_t *op,
    ngx_http_ent_rl_ctx_t *ctx);
static void ngx_http_ent_rl_crossed(ngx_http_request_t *r,
    ngx_http_ent_rl_ctx_t *ctx);
static void ngx_http_ent_rl_thresholds(ngx_http_request_t *r,
    ngx_http_ent_rl_result_t *res);
static void ngx_http_ent_rl_event(ngx_http_request_t *r,
    ngx_http_ent_rl_result_t *res, ngx_uint_t threshold);
static ngx_uint_t ngx_http_ent_rl_local(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_str_t *key, time_t end, ngx_int_t limit, ngx_uint_t *count);
static void ngx_http_ent_rl_decide(ngx_http_request_t *r,
    ngx_http_ent_rl_ctx_t *ctx);
static void ngx_http_ent_rl_undo(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_ctx_t *ctx);
static void ngx_http_ent_rl_give_back(ngx_http_ent_rl_ctx_t *ctx);
static void ngx_http_ent_rl_accounted(ngx_http_request_t *r,
    ngx_http_ent_rl_main_conf_t *rmcf, ngx_http_ent_rl_ctx_t *ctx);
static ngx_http_ent_rl_seen_t *ngx_http_ent_rl_lease(
    ngx_http_ent_rl_main_conf_t *rmcf, ngx_http_ent_rl_result_t *res,
    ngx_uint_t generation);
static ngx_uint_t ngx_http_ent_rl_room(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_result_t *res, ngx_uint_t generation);
static void ngx_http_ent_rl_granted(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_result_t *res, ngx_uint_t generation, ngx_int_t count);
static void ngx_http_ent_rl_ignored(ngx_ent_op_t *op);
static ngx_int_t ngx_http_ent_rl_reject(ngx_http_request_t *r,
    ngx_http_ent_rl_ctx_t *ctx);
static ngx_int_t ngx_http_ent_rl_header_filter(ngx_http_request_t *r);
static void ngx_http_ent_rl_account(ngx_http_request_t *r,
    ngx_http_ent_rl_main_conf_t *rmcf, ngx_http_ent_rl_result_t *res);
static ngx_int_t ngx_http_ent_rl_init_process(ngx_cycle_t *cycle);
static void ngx_http_ent_rl_exit_process(ngx_cycle_t *cycle);
static void ngx_http_ent_rl_flush(ngx_event_t *ev);
static void ngx_http_ent_rl_rejected(ngx_http_request_t *r,
    ngx_http_ent_rl_result_t *res);
static void ngx_http_ent_rl_rejects_flush(ngx_event_t *ev);
static void ngx_http_ent_rl_written(ngx_ent_op_t *op);
static ngx_int_t ngx_http_ent_rl_push(ngx_http_request_t *r,
    const char *name, u_char *value, size_t len);


static ngx_conf_post_handler_pt  ngx_http_ent_rl_rollup_p =
    ngx_http_ent_rl_rollup;


static ngx_command_t  ngx_http_ent_rl_commands[] = {

    { ngx_string("ent_ratelimit_policy"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ent_rl_policy,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_ratelimit"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ent_rl_apply,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_ratelimit_budget"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_rl_loc_conf_t, budget),
      NULL },

    { ngx_string("ent_ratelimit_legacy_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_rl_loc_conf_t, legacy),
      NULL },

    { ngx_string("ent_ratelimit_rollup"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_rl_main_conf_t, rollup),
      &ngx_http_ent_rl_rollup_p },

    { ngx_string("ent_ratelimit_time_offset"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ent_rl_time_offset,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_ratelimit_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ent_rl_status,
      0,
      0,
      NULL },

    { ngx_string("ent_ratelimit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ent_rl_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ent_ratelimit_module_ctx = {
    ngx_http_ent_rl_preconfiguration,      /* preconfiguration */
    ngx_http_ent_rl_init,                  /* postconfiguration */

    ngx_http_ent_rl_create_main_conf,      /* create main configuration */
    ngx_http_ent_rl_init_main_conf,        /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ent_rl_create_loc_conf,       /* create location configuration */
    ngx_http_ent_rl_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_ent_ratelimit_module = {
    NGX_MODULE_V1,
    &ngx_http_ent_ratelimit_module_ctx,    /* module context */
    ngx_http_ent_rl_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ent_rl_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ent_rl_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


static ngx_str_t  ngx_http_ent_rl_status_name =
    ngx_string("ent_ratelimit_status");


/* configuration */


static ngx_int_t
ngx_http_ent_rl_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_variable_t          *var;
    ngx_http_ent_rl_main_conf_t  *rmcf;

    if (ngx_ent_core_check(cf, "ngx_http_ent_ratelimit_module") != NGX_OK) {
        return NGX_ERROR;
    }

    var = ngx_http_add_variable(cf, &ngx_http_ent_rl_status_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_ent_rl_status_variable;

    /*
     * presets the other modules use (a same-named policy replaces them);
     * here, not in create_main_conf: their keys need nginx's variables
     */

    rmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_ent_ratelimit_module);

    if (ngx_http_ent_rl_preset(cf, rmcf, "login", 900, 10,
                               NGX_HTTP_ENT_RL_KEY_IP, NULL)
        != NGX_OK
        || ngx_http_ent_rl_preset(cf, rmcf, "scim", 60, 60,
                                  NGX_HTTP_ENT_RL_KEY_VAR,
                                  "$http_authorization")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_rl_init(ngx_conf_t *cf)
{
    ngx_str_t                     name;
    ngx_uint_t                    i;
    ngx_http_ent_rl_policy_t     *policies;
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_ent_rl_main_conf_t  *rmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    rmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_ent_ratelimit_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ent_rl_preaccess_handler;

    /* locations with a key=user policy count after ACCESS (SSO) */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ent_rl_precontent_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ent_rl_header_filter;

    /* the tenant's tier and code, if the tenant module is loaded */

    /* without Redis every request would only fall back, and log it */

    if (rmcf->used && !(ngx_ent_core_backends(cf) & NGX_ENT_REDIS)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ent_ratelimit\" needs \"ent_redis\" in http{}");
        return NGX_ERROR;
    }

    ngx_str_set(&name, "ent_tenant_tier");
    rmcf->tier_index = ngx_http_get_variable_index(cf, &name);

    ngx_str_set(&name, "ent_tenant_code");
    rmcf->code_index = ngx_http_get_variable_index(cf, &name);

    ngx_str_set(&name, "ent_tenant_ratelimits");
    rmcf->overrides_index = ngx_http_get_variable_index(cf, &name);

    ngx_str_set(&name, "ent_tenant_billing_anchor");
    rmcf->anchor_index = ngx_http_get_variable_index(cf, &name);

    ngx_str_set(&name, "ent_tenant_id");
    rmcf->id_index = ngx_http_get_variable_index(cf, &name);

    /* quota usage goes to PostgreSQL when there is one */

    if (ngx_ent_core_backends(cf) & NGX_ENT_POSTGRES) {
        policies = rmcf->policies.elts;

        for (i = 0; i < rmcf->policies.nelts; i++) {
            if (policies[i].monthly) {
                rmcf->usage_stmt = ngx_ent_pg_stmt_add(cf,
                        "SELECT ent.usage_record($1::uuid, $2, "
                        "$3::bigint, $4::bigint)", 4);
                if (rmcf->usage_stmt == NULL) {
                    return NGX_ERROR;
                }

                break;
            }
        }
    }

    if (rmcf->tier_index == NGX_ERROR || rmcf->code_index == NGX_ERROR
        || rmcf->overrides_index == NGX_ERROR
        || rmcf->anchor_index == NGX_ERROR || rmcf->id_index == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_ent_rl_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ent_rl_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ent_rl_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rmcf->zone = NULL;
     *     rmcf->zone_name = { 0, NULL };
     *     rmcf->zone_size = 0;
     *     rmcf->logged = 0;
     *     rmcf->usage_stmt = NULL;
     *     rmcf->usage = NULL;
     */

    rmcf->rollup = NGX_CONF_UNSET_MSEC;

    if (ngx_array_init(&rmcf->policies, cf->pool, 4,
                       sizeof(ngx_http_ent_rl_policy_t))
        != NGX_OK)
    {
        return NULL;
    }

    return rmcf;
}


static char *
ngx_http_ent_rl_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_ent_rl_main_conf_t *rmcf = conf;

    ngx_conf_init_msec_value(rmcf->rollup, 10000);

    if (rmcf->zone_name.len == 0) {
        ngx_str_set(&rmcf->zone_name, "ent_ratelimit");
        rmcf->zone_size = 1024 * 1024;
    }

    rmcf->zone = ngx_shared_memory_add(cf, &rmcf->zone_name, rmcf->zone_size,
                                       &ngx_http_ent_ratelimit_module);
    if (rmcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    rmcf->zone->init = ngx_http_ent_rl_init_zone;

    return NGX_CONF_OK;
}


static void *
ngx_http_ent_rl_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ent_rl_loc_conf_t  *rlcf;

    rlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ent_rl_loc_conf_t));
    if (rlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rlcf->policies = NULL;
     *     rlcf->after_access = 0;
     */

    rlcf->budget = NGX_CONF_UNSET_MSEC;
    rlcf->legacy = NGX_CONF_UNSET;

    return rlcf;
}


static char *
ngx_http_ent_rl_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ent_rl_loc_conf_t *prev = parent;
    ngx_http_ent_rl_loc_conf_t *conf = child;

    ngx_conf_merge_msec_value(conf->budget, prev->budget, 5);
    ngx_conf_merge_value(conf->legacy, prev->legacy, 0);

    if (conf->policies == NULL) {
        conf->policies = prev->policies;
        conf->after_access = prev->after_access;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ent_rl_preset(ngx_conf_t *cf, ngx_http_ent_rl_main_conf_t *rmcf,
    char *name, time_t window, ngx_int_t limit, ngx_uint_t key_type,
    char *key)
{
    ngx_str_t                  s;
    ngx_http_ent_rl_policy_t  *p;

    p = ngx_array_push(&rmcf->policies);
    if (p == NULL) {
        return NGX_ERROR;
    }

    s.data = (u_char *) name;
    s.len = ngx_strlen(name);

    if (ngx_http_ent_rl_policy_init(cf, p, &s) != NGX_OK) {
        return NGX_ERROR;
    }

    p->preset = 1;
    p->window = window;
    p->limit = limit;
    p->key_type = key_type;

    if (key) {
        s.data = (u_char *) key;
        s.len = ngx_strlen(key);

        return ngx_http_ent_rl_key_compile(cf, p, &s);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_rl_policy_init(ngx_conf_t *cf, ngx_http_ent_rl_policy_t *p,
    ngx_str_t *name)
{
    ngx_memzero(p, sizeof(ngx_http_ent_rl_policy_t));

    p->name = *name;
    p->limit = NGX_CONF_UNSET;
    p->fail = NGX_HTTP_ENT_RL_FAIL_LOCAL;
    p->nodes = 1;
    p->status = NGX_HTTP_TOO_MANY_REQUESTS;

    return ngx_array_init(&p->tiers, cf->pool, 4,
                          sizeof(ngx_http_ent_rl_tier_t));
}


/*
 * burst=N: no more than N of the window's requests within any one second.
 * A companion policy "<name>-burst" (a one-second window, limit N for
 * every tier, the same key and failure mode) that every location applying
 * the policy applies too: one more counter in the same Redis round trip,
 * and its own RateLimit-Policy entry.
 */

static ngx_int_t
ngx_http_ent_rl_burst(ngx_conf_t *cf, ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_policy_t *p)
{
    ngx_str_t                  name;
    ngx_uint_t                 pi;
    ngx_http_ent_rl_policy_t   copy, *c;

    if (p->window <= 1 || p->monthly) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "policy \"%V\": burst= needs a window of more "
                           "than a second, and no monthly quota", &p->name);
        return NGX_ERROR;
    }

    if (p->burst >= p->limit && p->limit != NGX_HTTP_ENT_RL_UNLIMITED) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "policy \"%V\": burst=%i is not below its "
                           "limit", &p->name, p->burst);
        return NGX_ERROR;
    }

    name.len = p->name.len + sizeof("-burst") - 1;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, "%V-burst", &p->name);

    /* the array may move when it grows */

    pi = p - (ngx_http_ent_rl_policy_t *) rmcf->policies.elts;
    copy = *p;

    c = ngx_array_push(&rmcf->policies);
    if (c == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ent_rl_policy_init(cf, c, &name) != NGX_OK) {
        return NGX_ERROR;
    }

    c->window = 1;
    c->limit = copy.burst;
    c->key_type = copy.key_type;
    c->key = copy.key;
    c->fail = copy.fail;
    c->nodes = copy.nodes;
    c->status = NGX_HTTP_TOO_MANY_REQUESTS;
    c->dry_run = copy.dry_run;

    p = (ngx_http_ent_rl_policy_t *) rmcf->policies.elts + pi;
    p->burst_ix = rmcf->policies.nelts;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_rl_key_compile(ngx_conf_t *cf, ngx_http_ent_rl_policy_t *p,
    ngx_str_t *value)
{
    ngx_http_compile_complex_value_t  ccv;

    p->key_type = NGX_HTTP_ENT_RL_KEY_VAR;

    p->key = ngx_pcalloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (p->key == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = p->key;

    return ngx_http_compile_complex_value(&ccv);
}


static char *
ngx_http_ent_rl_policy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_rl_main_conf_t *rmcf = conf;

    u_char                    *eq;
    ngx_int_t                  n, min;
    ngx_str_t                 *value, name, val, user;
    ngx_uint_t                 i, j;
    ngx_http_ent_rl_tier_t    *t;
    ngx_http_ent_rl_policy_t  *p, *policies;

    value = cf->args->elts;
    name = value[1];

    for (i = 0; i < name.len; i++) {
        if (!((name.data[i] >= 'a' && name.data[i] <= 'z')
              || (i && ((name.data[i] >= '0' && name.data[i] <= '9')
                        || name.data[i] == '_' || name.data[i] == '-'))))
        {
            break;
        }
    }

    if (name.len == 0 || name.len > NGX_HTTP_ENT_RL_NAME_LEN
        || i != name.len)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid policy name \"%V\" in \"%V\" directive",
                           &name, &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* a new policy, or one replacing a preset; never two of a name */

    p = NULL;
    policies = rmcf->policies.elts;

    for (i = 0; i < rmcf->policies.nelts; i++) {
        if (policies[i].name.len == name.len
            && ngx_strncmp(policies[i].name.data, name.data, name.len) == 0)
        {
            p = &policies[i];
            break;
        }
    }

    if (p && !p->preset)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate policy \"%V\" in \"%V\" directive",
                           &name, &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (p == NULL) {
        p = ngx_array_push(&rmcf->policies);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_ent_rl_policy_init(cf, p, &name) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "dry_run") == 0) {
            p->dry_run = 1;
            continue;
        }

        eq = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');

        if (eq == NULL || eq == value[i].data || eq + 1 == value[i].data
                                                          + value[i].len)
        {
            goto invalid;
        }

        val.data = eq + 1;
        val.len = value[i].data + value[i].len - val.data;

        if (ngx_strncmp(value[i].data, "per=", 4) == 0) {

            if (ngx_strcmp(val.data, "second") == 0) {
                p->window = 1;

            } else if (ngx_strcmp(val.data, "minute") == 0) {
                p->window = 60;

            } else if (ngx_strcmp(val.data, "hour") == 0) {
                p->window = 3600;

            } else if (ngx_strcmp(val.data, "day") == 0) {
                p->window = 86400;

            } else if (ngx_strcmp(val.data, "month") == 0) {
                /* a quota: the tenant's billing cycle */
                p->monthly = 1;
                p->window = 31 * 86400;
                p->warn[0] = 80;
                p->warn[1] = 95;

            } else {
                p->window = ngx_parse_time(&val, 1);

                if (p->window == (time_t) NGX_ERROR || p->window < 1
                    || p->window > 31 * 86400)
                {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "invalid window \"%V\" in \"%V\" "
                                       "directive, expected second, minute, "
                                       "hour, day or a time from 1s to 31d",
                                       &value[i], &cmd->name);
                    return NGX_CONF_ERROR;
                }
            }

        } else if (ngx_strncmp(value[i].data, "key=", 4) == 0) {

            if (ngx_strcmp(val.data, "tenant") == 0) {
                p->key_type = NGX_HTTP_ENT_RL_KEY_TENANT;

            } else if (ngx_strcmp(val.data, "ip") == 0) {
                p->key_type = NGX_HTTP_ENT_RL_KEY_IP;

            } else if (ngx_strcmp(val.data, "user") == 0) {

                /* the SSO module's user, known once ACCESS has run */

                ngx_str_set(&user, "$ent_user_id");

                if (ngx_http_ent_rl_key_compile(cf, p, &user) != NGX_OK) {
                    return NGX_CONF_ERROR;
                }

                p->user = 1;

            } else if (val.data[0] == '$') {
                if (ngx_http_ent_rl_key_compile(cf, p, &val) != NGX_OK) {
                    return NGX_CONF_ERROR;
                }

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid key \"%V\" in \"%V\" directive, "
                                   "expected tenant, ip, user or a $variable",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

        } else if (ngx_strncmp(value[i].data, "fail=", 5) == 0) {

            if (ngx_strcmp(val.data, "local") == 0) {
                p->fail = NGX_HTTP_ENT_RL_FAIL_LOCAL;

            } else if (ngx_strcmp(val.data, "open") == 0) {
                p->fail = NGX_HTTP_ENT_RL_FAIL_OPEN;

            } else if (ngx_strcmp(val.data, "closed") == 0) {
                p->fail = NGX_HTTP_ENT_RL_FAIL_CLOSED;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" "
                                   "directive, expected fail=local, "
                                   "fail=open or fail=closed",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

        } else if (ngx_strcmp(value[i].data, "warn=off") == 0) {
            p->warn[0] = 0;
            p->warn[1] = 0;

        } else if (ngx_strncmp(value[i].data, "warn=", 5) == 0) {
            u_char  *c;

            p->warn[0] = 0;
            p->warn[1] = 0;

            c = ngx_strlchr(val.data, val.data + val.len, ',');

            n = ngx_atoi(val.data, c ? (size_t) (c - val.data) : val.len);

            if (n < 1 || n > 99) {
                goto invalid;
            }

            p->warn[0] = n;

            if (c) {
                n = ngx_atoi(c + 1, val.data + val.len - c - 1);

                if (n < 1 || n > 99 || (ngx_uint_t) n <= p->warn[0]) {
                    goto invalid;
                }

                p->warn[1] = n;
            }

        } else if (ngx_strncmp(value[i].data, "burst=", 6) == 0) {
            n = ngx_atoi(val.data, val.len);

            if (n < 1 || n > 1000000000) {
                goto invalid;
            }

            p->burst = n;

        } else if (ngx_strncmp(value[i].data, "lease=", 6) == 0) {
            n = ngx_atoi(val.data, val.len);

            if (n < 1 || n > 1000000) {
                goto invalid;
            }

            p->lease = n;
            rmcf->nseen = NGX_HTTP_ENT_RL_SEEN_LEASES;

        } else if (ngx_strncmp(value[i].data, "nodes=", 6) == 0) {
            n = ngx_atoi(val.data, val.len);

            if (n < 1 || n > 10000) {
                goto invalid;
            }

            p->nodes = n;

        } else if (ngx_strncmp(value[i].data, "status=", 7) == 0) {
            n = ngx_atoi(val.data, val.len);

            if (n != NGX_HTTP_TOO_MANY_REQUESTS && n != 402) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" "
                                   "directive, expected status=429 or "
                                   "status=402", &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            p->status = n;

        } else {
            /* limit=N, or <tier>=N: N a count or "unlimited" */

            if (ngx_strcmp(val.data, "unlimited") == 0) {
                n = NGX_HTTP_ENT_RL_UNLIMITED;

            } else {
                n = ngx_atoi(val.data, val.len);

                if (n == NGX_ERROR || n > 1000000000) {
                    goto invalid;
                }
            }

            if (ngx_strncmp(value[i].data, "limit=", 6) == 0) {
                p->limit = n;
                p->limit_set = 1;
                continue;
            }

            for (j = 0; value[i].data + j < eq; j++) {
                if (!((value[i].data[j] >= 'a' && value[i].data[j] <= 'z')
                      || (j && ((value[i].data[j] >= '0'
                                 && value[i].data[j] <= '9')
                                || value[i].data[j] == '_'
                                || value[i].data[j] == '-'))))
                {
                    goto invalid;
                }
            }

            t = ngx_array_push(&p->tiers);
            if (t == NULL) {
                return NGX_CONF_ERROR;
            }

            t->tier.data = value[i].data;
            t->tier.len = eq - value[i].data;
            t->limit = n;
        }
    }

    if (p->window == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "policy \"%V\" has no window: add per=minute, "
                           "per=hour, ...", &name);
        return NGX_CONF_ERROR;
    }

    /*
     * lease= and a monthly quota: the usage billed is the highest count
     * handed out, so counts held unused in leases (and lost at a reload
     * or a Redis reconnect) would be billed and, for a month, refused
     */

    if (p->lease && p->monthly) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "policy \"%V\": lease= cannot be used with "
                           "per=month: counts held in a worker's lease are "
                           "billed, and lost at a reload or a Redis "
                           "reconnect", &name);
        return NGX_CONF_ERROR;
    }

    if (!p->limit_set) {
        if (p->tiers.nelts == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "policy \"%V\" has no limit: add limit=N "
                               "or <tier>=N", &name);
            return NGX_CONF_ERROR;
        }

        /* a tier not listed gets the lowest listed limit */

        t = p->tiers.elts;
        min = NGX_HTTP_ENT_RL_UNLIMITED;

        for (j = 0; j < p->tiers.nelts; j++) {
            if (t[j].limit != NGX_HTTP_ENT_RL_UNLIMITED
                && (min == NGX_HTTP_ENT_RL_UNLIMITED || t[j].limit < min))
            {
                min = t[j].limit;
            }
        }

        p->limit = min;
    }

    if (p->burst) {
        if (ngx_http_ent_rl_burst(cf, rmcf, p) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\" directive",
                       &value[i], &cmd->name);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_ent_rl_apply(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_rl_loc_conf_t *rlcf = conf;

    ngx_str_t                     *value;
    ngx_uint_t                     i, j, *ix;
    ngx_http_ent_rl_policy_t      *policies;
    ngx_http_ent_rl_main_conf_t   *rmcf;

    if (rlcf->policies) {
        return "is duplicate";
    }

    if (cf->args->nelts - 1 > NGX_HTTP_ENT_RL_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "at most %d policies in \"%V\" directive",
                           NGX_HTTP_ENT_RL_MAX, &cmd->name);
        return NGX_CONF_ERROR;
    }

    rmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_ent_ratelimit_module);
    rmcf->used = 1;

    rlcf->policies = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                      sizeof(ngx_uint_t));
    if (rlcf->policies == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        /*
         * policies are declared in http{} before the servers that use
         * them (nginx parses in order); the array may still grow and move,
         * so the index is kept and resolved per request
         */

        policies = rmcf->policies.elts;

        for (j = 0; j < rmcf->policies.nelts; j++) {
            if (policies[j].name.len == value[i].len
                && ngx_strncmp(policies[j].name.data, value[i].data,
                               value[i].len) == 0)
            {
                break;
            }
        }

        if (j == rmcf->policies.nelts) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown policy \"%V\" in \"%V\" directive: "
                               "declare it with \"ent_ratelimit_policy\" in "
                               "http{}, before the servers", &value[i],
                               &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (rlcf->policies->nelts == NGX_HTTP_ENT_RL_MAX) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "at most %d policies in \"%V\" directive, "
                               "each burst= counting as one",
                               NGX_HTTP_ENT_RL_MAX, &cmd->name);
            return NGX_CONF_ERROR;
        }

        ix = ngx_array_push(rlcf->policies);
        if (ix == NULL) {
            return NGX_CONF_ERROR;
        }

        *ix = j;

        if (policies[j].user) {
            rlcf->after_access = 1;
        }

        if (policies[j].burst_ix) {
            if (rlcf->policies->nelts == NGX_HTTP_ENT_RL_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "at most %d policies in \"%V\" "
                                   "directive, each burst= counting as one",
                                   NGX_HTTP_ENT_RL_MAX, &cmd->name);
                return NGX_CONF_ERROR;
            }

            ix = ngx_array_push(rlcf->policies);
            if (ix == NULL) {
                return NGX_CONF_ERROR;
            }

            *ix = policies[j].burst_ix - 1;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_rl_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_rl_main_conf_t *rmcf = conf;

    u_char     *p;
    ssize_t     size;
    ngx_str_t  *value, s;

    if (rmcf->zone_name.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');
    if (p == NULL || p == value[1].data) {
        goto invalid;
    }

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        goto invalid;
    }

    rmcf->zone_name.data = value[1].data;
    rmcf->zone_name.len = p - value[1].data;
    rmcf->zone_size = size;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid zone \"%V\" in \"%V\" directive, expected "
                       "\"name:size\" of at least 32k", &value[1],
                       &cmd->name);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_ent_rl_time_offset(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_rl_main_conf_t *rmcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value, s;

    /* for tests: shifts the limiter's clock, e.g. to a billing day */

    value = cf->args->elts;
    s = value[1];

    if (s.len && s.data[0] == '-') {
        s.data++;
        s.len--;
    }

    n = ngx_atoi(s.data, s.len);

    /* bounded: window starts stay small positive numbers (keys, time_t) */

    if (n == NGX_ERROR || n > NGX_HTTP_ENT_RL_OFFSET_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "expected seconds, at most %d either way",
                           &value[1], &cmd->name,
                           NGX_HTTP_ENT_RL_OFFSET_MAX);
        return NGX_CONF_ERROR;
    }

    rmcf->offset = (value[1].data[0] == '-') ? -n : n;

    ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                       "\"%V\" shifts the rate limiter's clock: "
                       "for tests only", &cmd->name);

    return NGX_CONF_OK;
}


/* a roll-up timer of no time would fire again at once, for ever */

static char *
ngx_http_ent_rl_rollup(ngx_conf_t *cf, void *post, void *data)
{
    ngx_msec_t  *ms = data;

    ngx_str_t  *value;

    if (*ms < 100) {
        value = cf->args->elts;

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "expected a time of at least 100ms",
                           &value[1], &value[0]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ent_rl_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ent_rl_zone_t  *oz = data;

    size_t                   n;
    ngx_slab_pool_t         *shpool;
    ngx_http_ent_rl_zone_t  *z;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (oz || shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    z = ngx_slab_calloc(shpool, sizeof(ngx_http_ent_rl_zone_t));
    if (z == NULL) {
        return NGX_ERROR;
    }

    n = (shm_zone->shm.size / 2) / sizeof(ngx_http_ent_rl_slot_t);

    z->slots = ngx_slab_calloc(shpool, n * sizeof(ngx_http_ent_rl_slot_t));
    if (z->slots == NULL) {
        return NGX_ERROR;
    }

    z->shpool = shpool;
    z->nslots = n;

    shpool->data = z;
    shm_zone->data = z;

    return NGX_OK;
}


/* ent_ratelimit_status: the node's counters, as JSON */


static char *
ngx_http_ent_rl_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ent_rl_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ent_rl_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_buf_t                    *b;
    ngx_chain_t                   out;
    ngx_http_ent_rl_zone_t       *z;
    ngx_http_ent_rl_main_conf_t  *rmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_ratelimit_module);
    z = ngx_http_ent_rl_shm(rmcf);

    b = ngx_create_temp_buf(r->pool, 256);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last, "{\"fallbacks\":%uA,\"budget_exceeded\":%uA,"
                          "\"rejected\":%uA,\"thresholds\":%uA}\n",
                          z->fallbacks, z->budget, z->rejected,
                          z->thresholds);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* $ent_ratelimit_status */


static ngx_int_t
ngx_http_ent_rl_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ent_rl_ctx_t  *ctx;

    ctx = ngx_http_ent_rl_get_ctx(r);

    if (ctx == NULL || ctx->status.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ctx->status.data;
    v->len = ctx->status.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* the request */


static ngx_http_ent_rl_ctx_t *
ngx_http_ent_rl_get_ctx(ngx_http_request_t *r)
{
    return ngx_ent_ctx_get(r, &ngx_http_ent_ratelimit_module,
                           ngx_http_ent_rl_cleanup);
}


/*
 * A location counts in PREACCESS, before authentication (a login limit
 * must hold for anonymous requests); one that applies a key=user policy
 * counts all its policies in PRECONTENT instead, after the SSO module has
 * set the user in ACCESS.
 */

static ngx_int_t
ngx_http_ent_rl_preaccess_handler(ngx_http_request_t *r)
{
    ngx_http_ent_rl_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_ratelimit_module);

    return rlcf->after_access ? NGX_DECLINED : ngx_http_ent_rl_handler(r);
}


static ngx_int_t
ngx_http_ent_rl_precontent_handler(ngx_http_request_t *r)
{
    ngx_http_ent_rl_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_ratelimit_module);

    return rlcf->after_access ? ngx_http_ent_rl_handler(r) : NGX_DECLINED;
}


static ngx_int_t
ngx_http_ent_rl_handler(ngx_http_request_t *r)
{
    time_t                         now, start;
    ngx_int_t                      rc, limit;
    ngx_int_t                      anchor;
    ngx_int_t                      k;
    ngx_str_t                      tenant, tag, tier, overrides,
                                   setv[NGX_HTTP_ENT_RL_MAX][6],
                                   incrv[NGX_HTTP_ENT_RL_MAX][3];
    u_char                        *ttl;
    u_char                         by[NGX_HTTP_ENT_RL_MAX][NGX_INT_T_LEN];
    ngx_uint_t                     i, j, n, nk, *ix;
    ngx_http_ent_rl_seen_t        *e;
    ngx_ent_redis_cmd_t            cmds[2 * NGX_HTTP_ENT_RL_MAX];
    ngx_http_ent_rl_tier_t        *t;
    ngx_http_ent_rl_ctx_t         *ctx;
    ngx_http_ent_rl_result_t      *res;
    ngx_http_ent_rl_policy_t      *p, *policies;
    ngx_http_variable_value_t     *vv;
    ngx_http_ent_rl_loc_conf_t    *rlcf;
    ngx_http_ent_rl_main_conf_t   *rmcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_ratelimit_module);

    if (rlcf->policies == NULL || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_ent_rl_get_ctx(r);

    if (ctx) {
        /* decided already, perhaps before an internal redirect */

        if (ctx->state == NGX_HTTP_ENT_RL_WAITING) {
            return NGX_DONE;
        }

        /*
         * an error_page for the rejection redirects here: its location
         * may apply the policy too, and must serve the page (as
         * limit_req does), not reject it again
         */

        if (ctx->answered) {
            return NGX_DECLINED;
        }

        if (ctx->decision != NGX_DECLINED) {
            return ngx_http_ent_rl_reject(r, ctx);
        }

        /*
         * admitted: here again (the phase resumed), or in a location an
         * internal redirect led to, whose policies count now, except
         * those counted already (a policy counts once per request); an
         * error_page serves the admitted request's outcome: not counted
         */

        if (ctx->policies == rlcf->policies || r->error_page) {
            return NGX_DECLINED;
        }

    } else {

        /*
         * the context lives in a pool cleanup: it survives internal
         * redirects (which wipe module contexts), so a request is counted
         * once, and the cleanup removes the budget timer if the request
         * goes away
         */

        ctx = ngx_ent_ctx_new(r, &ngx_http_ent_ratelimit_module,
                              sizeof(ngx_http_ent_rl_ctx_t),
                              ngx_http_ent_rl_cleanup);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->request = r;
        ctx->decision = NGX_DECLINED;
    }

    ctx->policies = rlcf->policies;
    ctx->first = ctx->n;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_ratelimit_module);

    vv = ngx_http_get_indexed_variable(r, rmcf->tier_index);
    tier.data = (vv && !vv->not_found) ? vv->data : NULL;
    tier.len = (vv && !vv->not_found) ? vv->len : 0;

    vv = ngx_http_get_indexed_variable(r, rmcf->anchor_index);
    anchor = (vv && !vv->not_found && vv->len)
             ? ngx_atoi(vv->data, vv->len) : 1;

    vv = ngx_http_get_indexed_variable(r, rmcf->overrides_index);
    overrides.data = (vv && !vv->not_found) ? vv->data : NULL;
    overrides.len = (vv && !vv->not_found) ? vv->len : 0;

    vv = ngx_http_get_indexed_variable(r, rmcf->code_index);
    tenant.data = (vv && !vv->not_found && vv->len) ? vv->data
                                                    : (u_char *) "-";
    tenant.len = (vv && !vv->not_found && vv->len) ? vv->len : 1;

    /* the hash tag: the tenant's id, as for its sessions (one slot) */

    vv = ngx_http_get_indexed_variable(r, rmcf->id_index);
    tag.data = (vv && !vv->not_found && vv->len) ? vv->data : (u_char *) "-";
    tag.len = (vv && !vv->not_found && vv->len) ? vv->len : 1;

    now = ngx_time() + rmcf->offset;
    ctx->generation = ngx_ent_redis_generation();
    ix = rlcf->policies->elts;
    policies = rmcf->policies.elts;
    n = 0;
    nk = 0;

    for (i = 0; i < rlcf->policies->nelts; i++) {

        p = &policies[ix[i]];

        for (j = 0; j < ctx->first; j++) {
            if (ctx->res[j].policy == p) {
                break;
            }
        }

        if (j < ctx->first) {
            /* counted in a location before an internal redirect */
            continue;
        }

        if (ctx->n == NGX_HTTP_ENT_RL_MAX) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ent ratelimit: more than %d policies across "
                          "internal redirects, \"%V\" not counted",
                          NGX_HTTP_ENT_RL_MAX, &p->name);
            continue;
        }

        /* the tier's limit, else the policy's */

        limit = p->limit;
        t = p->tiers.elts;

        for (j = 0; j < p->tiers.nelts; j++) {
            if (t[j].tier.len == tier.len
                && ngx_strncmp(t[j].tier.data, tier.data, tier.len) == 0)
            {
                limit = t[j].limit;
                break;
            }
        }

        /* the tenant's own contract, if it has one */

        if (overrides.len) {
            limit = ngx_ent_rl_override(overrides.data, overrides.len,
                                        p->name.data, p->name.len, limit);
        }

        if (limit == NGX_HTTP_ENT_RL_UNLIMITED) {
            continue;
        }

        res = &ctx->res[ctx->n];
        res->policy = p;
        res->limit = limit;

        if (p->monthly) {
            ngx_ent_rl_month(now, (int) anchor, &start, &res->window,
                             &res->reset);

        } else {
            ngx_ent_rl_window(now, p->window, &start, &res->reset);
            res->window = p->window;
        }

        rc = ngx_http_ent_rl_key(r, p, &tenant, &tag, start, &res->key);

        if (rc == NGX_DECLINED) {
            /* no key value: this policy does not apply */
            continue;
        }

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->n++;
        res->start = start;
        res->hash = ngx_http_ent_rl_hash(rmcf, &res->key);

        /*
         * lease=: counts this worker took ahead in Redis are used here
         * without a round trip; when none is left, INCRBY takes the next
         * ones: a share of what remains (by the last count seen), so that
         * the nodes' leases shrink to single counts near the limit
         */

        e = NULL;

        if (p->lease) {
            e = ngx_http_ent_rl_lease(rmcf, res, ctx->generation);

            if (e && e->next <= e->last) {
                res->leased = 1;
                res->used = e->next++;
                res->remaining = limit - res->used;
                ngx_http_ent_rl_thresholds(r, res);
                continue;
            }

            if (e == NULL
                && !ngx_http_ent_rl_room(rmcf, res, ctx->generation))
            {
                /* another key's lease holds the slot: no lease here */
                res->incr = 0;

            } else if (e && e->asking
                       && ngx_current_msec - e->asked < 1000)
            {
                /*
                 * a lease is on its way for this key: requests meanwhile
                 * count one each, rather than each take a lease that the
                 * first reply would make them give back
                 */
                res->incr = 1;

            } else if (e && e->count < limit) {
                k = (limit - e->count)
                    / (ngx_int_t) (2 * p->nodes * ngx_max(rmcf->workers, 1));
                k = ngx_max(ngx_min(k, p->lease), 1);
                res->incr = k;

                if (k > 1) {
                    e->asking = 1;
                    e->asked = ngx_current_msec;
                }

            } else {
                res->incr = 1;
            }
        }

        /*
         * INCR is atomic; the first time this worker uses a key in a
         * window, "SET key 0 EX ttl NX" goes first, so that the key always
         * has a TTL; later the INCR alone (a reconnect to Redis, which may
         * have lost the key, forgets what was seen)
         */

        ngx_str_set(&incrv[n][0], "INCR");
        incrv[n][1] = res->key;

        if (res->incr) {
            ngx_str_set(&incrv[n][0], "INCRBY");
            incrv[n][2].data = by[n];
            incrv[n][2].len = ngx_sprintf(by[n], "%i", res->incr) - by[n];
        }

        /* a lease policy has looked its key up already */

        if (p->lease ? e != NULL
                     : ngx_http_ent_rl_seen(rmcf, res, ctx->generation))
        {
            res->reply = nk;
            cmds[nk].argc = res->incr ? 3 : 2;
            cmds[nk].argv = incrv[n];
            nk++;
            n++;
            continue;
        }

        res->created = 1;

        ttl = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (ttl == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&setv[n][0], "SET");
        setv[n][1] = res->key;
        ngx_str_set(&setv[n][2], "0");
        ngx_str_set(&setv[n][3], "EX");
        setv[n][4].data = ttl;
        setv[n][4].len = ngx_sprintf(ttl, "%T", res->window + 60) - ttl;
        ngx_str_set(&setv[n][5], "NX");

        cmds[nk].argc = 6;
        cmds[nk].argv = setv[n];
        nk++;

        res->reply = nk;
        cmds[nk].argc = res->incr ? 3 : 2;
        cmds[nk].argv = incrv[n];
        nk++;

        n++;
    }

    if (ctx->n == ctx->first) {
        return NGX_DECLINED;
    }

    if (nk == 0) {
        /* every policy answered from this worker's leases */

        ngx_str_set(&ctx->status, "PASSED");
        ngx_http_ent_rl_decide(r, ctx);
        ngx_http_ent_rl_accounted(r, rmcf, ctx);

        return ctx->decision == NGX_DECLINED ? NGX_DECLINED
                                             : ngx_http_ent_rl_reject(r, ctx);
    }

    /*
     * the reply to a location's counts before an internal redirect, that
     * came too late for its budget, has not come yet: Redis is slow, and
     * a second reply would be taken for the first
     */

    rc = ctx->op ? NGX_DECLINED
                 : ngx_ent_redis_run(r, cmds, nk, ngx_http_ent_rl_replied,
                                     ctx);

    if (rc == NGX_AGAIN) {
        ctx->op = 1;
        ctx->op_first = ctx->first;
        ctx->op_n = ctx->n;

        ctx->budget.handler = ngx_http_ent_rl_budget;
        ctx->budget.data = ctx;
        ctx->budget.log = r->connection->log;
        ngx_add_timer(&ctx->budget, rlcf->budget);

        ctx->state = NGX_HTTP_ENT_RL_WAITING;
        return ngx_ent_phase_wait(r);
    }

    /* Redis unavailable right now */

    ngx_http_ent_rl_fallback(r, ctx);

    if (ctx->decision == NGX_DECLINED) {
        return NGX_DECLINED;
    }

    return ngx_http_ent_rl_reject(r, ctx);
}


static ngx_int_t
ngx_http_ent_rl_key(ngx_http_request_t *r, ngx_http_ent_rl_policy_t *p,
    ngx_str_t *tenant, ngx_str_t *tag, time_t start, ngx_str_t *key)
{
    u_char      *k, hash[16];
    u_char       suffix[NGX_HTTP_ENT_RL_NAME_LEN + sizeof("-burst") - 1
                        + 1 + NGX_TIME_T_LEN + 1 + 64];
    size_t       size;
    ngx_str_t    value;
    ngx_md5_t    md5;
    ngx_uint_t   i, safe;

    switch (p->key_type) {

    case NGX_HTTP_ENT_RL_KEY_TENANT:
        value = *tenant;
        break;

    case NGX_HTTP_ENT_RL_KEY_IP:
        value = r->connection->addr_text;
        break;

    default:
        if (ngx_http_complex_value(r, p->key, &value) != NGX_OK) {
            return NGX_ERROR;
        }

        if (value.len == 0) {
            return NGX_DECLINED;
        }
    }

    /* bounded keys: a long or unusual value is hashed */

    safe = (value.len <= 64);

    for (i = 0; safe && i < value.len; i++) {
        if (!((value.data[i] >= 'a' && value.data[i] <= 'z')
              || (value.data[i] >= 'A' && value.data[i] <= 'Z')
              || (value.data[i] >= '0' && value.data[i] <= '9')
              || value.data[i] == '.' || value.data[i] == ':'
              || value.data[i] == '-' || value.data[i] == '_'))
        {
            safe = 0;
        }
    }

    /*
     * "<policy>:<window start>:<value or #md5>" under the tenant's tag;
     * suffix[] holds the longest: a name of NGX_HTTP_ENT_RL_NAME_LEN and
     * "-burst", any time_t, 64 bytes of value (or "#" and 32 hex digits)
     */

    k = suffix;
    k = ngx_sprintf(k, "%V:%T:", &p->name, start);

    if (safe) {
        k = ngx_cpymem(k, value.data, value.len);

    } else {
        ngx_md5_init(&md5);
        ngx_md5_update(&md5, value.data, value.len);
        ngx_md5_final(hash, &md5);

        *k++ = '#';
        k = ngx_hex_dump(k, hash, sizeof(hash));
    }

    size = sizeof("rl:{t:}:") - 1 + tag->len + (k - suffix);

    key->data = ngx_pnalloc(r->pool, size);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_ent_redis_key(key->data, size, (u_char *) "rl:", 3,
                                 tag->data, tag->len, suffix, k - suffix);

    return key->len ? NGX_OK : NGX_ERROR;
}


/*
 * A key can hold what a client sends (a user, an address, a header): the
 * table matches entries by this hash alone, so it is keyed, at random per
 * configuration, so that nobody can make two keys share an entry (and
 * the one's lease count for the other)
 */

static uint64_t
ngx_http_ent_rl_hash(ngx_http_ent_rl_main_conf_t *rmcf, ngx_str_t *key)
{
    return ngx_ent_siphash(rmcf->hash_key, key->data, key->len);
}


/*
 * What this worker knows of the keys it counts (per worker, no lock): that
 * a key has its TTL in Redis (SET NX sent in this window and Redis
 * generation), and lease= counts it holds.  A set-associative table:
 * NGX_HTTP_ENT_RL_WAYS entries per bucket; an entry holding a usable lease
 * is never taken for another key (its counts would be lost), any other may
 * be.
 */

static ngx_http_ent_rl_seen_t *
ngx_http_ent_rl_find(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_result_t *res, ngx_uint_t generation)
{
    uint32_t                 tag;
    ngx_uint_t               b, i;
    ngx_http_ent_rl_seen_t  *e;

    if (rmcf->seen == NULL || generation == 0) {
        return NULL;
    }

    /* the tags first: one cache line, where the entries take eleven */

    b = ngx_http_ent_rl_bucket(rmcf, res->hash);
    tag = ngx_http_ent_rl_tag(res->hash);

    for (i = b; i < b + NGX_HTTP_ENT_RL_WAYS; i++) {
        if (rmcf->tags[i] != tag) {
            continue;
        }

        e = &rmcf->seen[i];

        if (e->hash == res->hash && e->start == res->start
            && e->generation == generation)
        {
            return e;
        }
    }

    return NULL;
}


static ngx_uint_t
ngx_http_ent_rl_leasing(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_seen_t *e, ngx_uint_t generation)
{
    return e->next <= e->last && e->generation == generation
           && ngx_time() + rmcf->offset < e->end;
}


/* a free entry in res's bucket, if there is one */

static ngx_http_ent_rl_seen_t *
ngx_http_ent_rl_free(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_result_t *res, ngx_uint_t generation)
{
    ngx_uint_t               i;
    ngx_http_ent_rl_seen_t  *e, *f;

    if (rmcf->seen == NULL) {
        return NULL;
    }

    e = &rmcf->seen[ngx_http_ent_rl_bucket(rmcf, res->hash)];
    f = NULL;

    for (i = 0; i < NGX_HTTP_ENT_RL_WAYS; i++) {
        if (ngx_http_ent_rl_leasing(rmcf, &e[i], generation)) {
            continue;
        }

        /* the least recently claimed of the others */

        if (f == NULL || e[i].used < f->used) {
            f = &e[i];
        }
    }

    return f;
}


static ngx_uint_t
ngx_http_ent_rl_seen(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_result_t *res, ngx_uint_t generation)
{
    return ngx_http_ent_rl_find(rmcf, res, generation) != NULL;
}


static ngx_http_ent_rl_seen_t *
ngx_http_ent_rl_remember(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_result_t *res, ngx_uint_t generation)
{
    ngx_http_ent_rl_seen_t  *e;

    if (rmcf->seen == NULL) {
        /* per worker, with the cycle */
        if (rmcf->nseen == 0) {
            rmcf->nseen = NGX_HTTP_ENT_RL_SEEN;
        }

        rmcf->tags = ngx_pcalloc(ngx_cycle->pool,
                                 rmcf->nseen * sizeof(uint32_t));
        if (rmcf->tags == NULL) {
            return NULL;
        }

        rmcf->seen = ngx_pcalloc(ngx_cycle->pool, rmcf->nseen
                                 * sizeof(ngx_http_ent_rl_seen_t));
        if (rmcf->seen == NULL) {
            return NULL;
        }
    }

    e = ngx_http_ent_rl_find(rmcf, res, generation);

    if (e) {
        return e;
    }

    e = ngx_http_ent_rl_free(rmcf, res, generation);

    if (e == NULL) {
        /* every entry of the bucket holds another key's lease */
        return NULL;
    }

    rmcf->tags[e - rmcf->seen] = ngx_http_ent_rl_tag(res->hash);

    e->hash = res->hash;
    e->start = res->start;
    e->generation = generation;
    e->used = ++rmcf->claims;
    e->asking = 0;
    e->next = 1;
    e->last = 0;
    e->count = 0;
    e->limit = 0;
    e->end = res->start + res->window;

    return e;
}


/* lease=: an entry can be had for res's key, which has none */

static ngx_uint_t
ngx_http_ent_rl_room(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_result_t *res, ngx_uint_t generation)
{
    return rmcf->seen == NULL
           || ngx_http_ent_rl_free(rmcf, res, generation) != NULL;
}


/*
 * lease=: this worker's entry for res's key and window, if it has one (a
 * lease granted under another limit, an override changed since, goes
 * back to Redis)
 */

static ngx_http_ent_rl_seen_t *
ngx_http_ent_rl_lease(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_result_t *res, ngx_uint_t generation)
{
    ngx_http_ent_rl_seen_t  *e;

    e = ngx_http_ent_rl_find(rmcf, res, generation);

    if (e && e->limit != res->limit && e->next <= e->last) {
        res->back += e->last - e->next + 1;
        e->next = e->last + 1;
    }

    return e;
}


/*
 * INCRBY k answered count: the k counts count-k+1..count are this worker's,
 * as far as they are within the limit (the rest goes back at once); the
 * request takes the first, the lease keeps the others.  None within: the
 * request is rejected and all k go back.
 */

static void
ngx_http_ent_rl_granted(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_result_t *res, ngx_uint_t generation, ngx_int_t count)
{
    ngx_int_t                k, within;
    ngx_http_ent_rl_seen_t  *e;

    k = res->incr;
    within = (count <= res->limit) ? k : res->limit - (count - k);

    e = ngx_http_ent_rl_remember(rmcf, res, generation);

    if (e) {
        e->count = ngx_max(e->count, count);

        if (k > 1) {
            e->asking = 0;
        }
    }

    if (within <= 0) {
        res->rejected = 1;
        res->remaining = 0;
        res->back += k;
        return;
    }

    res->counted = 1;
    res->used = count - k + 1;
    res->remaining = res->limit - res->used;

    if (within < k) {
        res->back += k - within;
    }

    if (e == NULL || e->next <= e->last) {
        /*
         * no room to keep a lease, or the worker still has one for this
         * key (requests that asked at the same time): what the request
         * does not take goes back
         */
        res->back += within - 1;
        return;
    }

    e->next = res->used + 1;
    e->last = count - k + within;
    e->limit = res->limit;
    e->end = res->start + res->window;
}


static void
ngx_http_ent_rl_replied(ngx_ent_op_t *op)
{
    ngx_uint_t                    i;
    redisReply                   *reply;
    ngx_http_request_t           *r;
    ngx_http_ent_rl_ctx_t        *ctx;
    ngx_http_ent_rl_result_t     *res;
    ngx_http_ent_rl_main_conf_t  *rmcf;

    ctx = op->data;
    r = ctx->request;
    ctx->op = 0;

    if (ctx->state != NGX_HTTP_ENT_RL_WAITING) {
        /* the budget ran out and a fallback decided */
        ngx_http_ent_rl_late(op, ctx);
        return;
    }

    if (ctx->budget.timer_set) {
        ngx_del_timer(&ctx->budget);
    }

    if (op->status != NGX_ENT_OK) {
        ngx_http_ent_rl_fallback(r, ctx);
        goto done;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_ratelimit_module);

    for (i = ctx->first; i < ctx->n; i++) {
        res = &ctx->res[i];

        if (res->leased) {
            continue;
        }

        if (res->reply >= op->nreplies) {
            ngx_http_ent_rl_fallback(r, ctx);
            goto done;
        }

        reply = op->replies[res->reply];

        /*
         * a count below one: the key went negative (a give-back reached
         * it after Redis had lost it); the numbers would be nonsense
         */

        if (reply->type != REDIS_REPLY_INTEGER || reply->integer < 1) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ent ratelimit: unexpected reply to INCR "
                          "\"%V\"", &res->key);
            ngx_http_ent_rl_fallback(r, ctx);
            goto done;
        }

        if (res->created) {
            ngx_http_ent_rl_remember(rmcf, res, ctx->generation);
        }

        if (res->incr) {
            ngx_http_ent_rl_granted(rmcf, res, ctx->generation,
                                    reply->integer);

            if (!res->rejected) {
                ngx_http_ent_rl_thresholds(r, res);
            }

            continue;
        }

        res->counted = 1;

        if (reply->integer > res->limit) {
            res->rejected = 1;
            res->remaining = 0;

        } else {
            res->remaining = res->limit - reply->integer;
            res->used = reply->integer;
            ngx_http_ent_rl_thresholds(r, res);
        }
    }

    ngx_str_set(&ctx->status, "PASSED");
    ngx_http_ent_rl_decide(r, ctx);
    ngx_http_ent_rl_accounted(r, rmcf, ctx);

done:

    ctx->state = NGX_HTTP_ENT_RL_DONE;
    ngx_ent_phase_resume(r);
}


/*
 * The reply came after the budget ran out and a fallback had decided
 * (the request is still under way; a reply to a finished one is never
 * seen).  What Redis counted for it stays counted only as far as the
 * request was admitted: its one count; the rest of a lease's INCRBY, and
 * the count of a request the fallback rejected, go back.
 */

static void
ngx_http_ent_rl_late(ngx_ent_op_t *op, ngx_http_ent_rl_ctx_t *ctx)
{
    ngx_int_t                     used;
    ngx_uint_t                    i;
    redisReply                   *reply;
    ngx_http_ent_rl_seen_t       *e;
    ngx_http_ent_rl_result_t     *res;
    ngx_http_ent_rl_main_conf_t  *rmcf;

    if (op->status != NGX_ENT_OK) {
        return;
    }

    rmcf = ngx_http_get_module_main_conf(ctx->request,
                                        ngx_http_ent_ratelimit_module);

    used = (ctx->decision == NGX_DECLINED);

    for (i = ctx->op_first; i < ctx->op_n; i++) {
        res = &ctx->res[i];

        if (res->leased || res->reply >= op->nreplies) {
            continue;
        }

        reply = op->replies[res->reply];

        if (reply->type != REDIS_REPLY_INTEGER || reply->integer < 1) {
            continue;
        }

        if (res->created) {
            (void) ngx_http_ent_rl_remember(rmcf, res, ctx->generation);
        }

        if (res->incr) {
            e = ngx_http_ent_rl_find(rmcf, res, ctx->generation);

            if (e) {
                e->count = ngx_max(e->count, reply->integer);
                e->asking = 0;
            }

            res->back += res->incr - used;

        } else {
            res->back += 1 - used;
        }

        /* kept: a refusal after an internal redirect takes it back */
        res->counted = used;
    }

    ngx_http_ent_rl_give_back(ctx);
}


static void
ngx_http_ent_rl_thresholds(ngx_http_request_t *r,
    ngx_http_ent_rl_result_t *res)
{
    ngx_uint_t   k, at;

    for (k = 2; k > 0; k--) {
        if (res->policy->warn[k - 1] == 0) {
            continue;
        }

        /* the count at which the threshold is crossed */
        at = ((ngx_uint_t) res->limit * res->policy->warn[k - 1] + 99) / 100;

        if (res->used < at) {
            continue;
        }

        res->warned = res->policy->warn[k - 1];

        /*
         * the one request that crosses it (INCR values are unique), if it
         * is admitted (a rejected one gives its count back, and the next
         * request gets it): see ngx_http_ent_rl_crossed()
         */

        res->crossed = (res->used == at);

        return;
    }
}


/* one line and one event per tenant, quota, threshold and period */

static void
ngx_http_ent_rl_crossed(ngx_http_request_t *r, ngx_http_ent_rl_ctx_t *ctx)
{
    ngx_uint_t                 i;
    ngx_http_ent_rl_result_t  *res;

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->res[i];

        if (!res->crossed || res->rejected) {
            continue;
        }

        res->crossed = 0;

        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "ent ratelimit: \"%V\" reached %ui%% of "
                      "\"%V\" (%ui of %i)", &res->key, res->warned,
                      &res->policy->name, res->used, res->limit);

        ngx_http_ent_rl_event(r, res, res->warned);
    }
}


/*
 * A soft threshold crossed: an event for the audit trail (ent.events),
 * written asynchronously, once per tenant, quota, threshold and period
 * across the fleet (only the request whose INCR hit the threshold's count
 * writes it).
 */

static void
ngx_http_ent_rl_event(ngx_http_request_t *r, ngx_http_ent_rl_result_t *res,
    ngx_uint_t threshold)
{
    u_char                       *p;
    ngx_str_t                     d[12];
    ngx_ent_audit_event_t         ev;
    ngx_http_variable_value_t    *vv;
    ngx_http_ent_rl_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_ratelimit_module);

    (void) ngx_atomic_fetch_add(&ngx_http_ent_rl_shm(rmcf)->thresholds, 1);

    vv = ngx_http_get_indexed_variable(r, rmcf->id_index);

    if (vv == NULL || vv->not_found || vv->len == 0) {
        return;
    }

    p = ngx_pnalloc(r->pool, res->policy->name.len + 6 * NGX_INT64_LEN
                             + 32);
    if (p == NULL) {
        return;
    }

    ngx_memzero(&ev, sizeof(ngx_ent_audit_event_t));

    ev.tenant.data = vv->data;
    ev.tenant.len = vv->len;
    ev.action = "quota_threshold";
    ev.result = "info";
    ngx_str_set(&ev.target_type, "policy");
    ev.target_id = res->policy->name;

    ev.reason.data = p;
    p = ngx_sprintf(p, "%V reached %ui%%", &res->policy->name, threshold);
    ev.reason.len = p - ev.reason.data;

    ngx_str_set(&d[0], "policy");
    d[1] = res->policy->name;
    p = ngx_ent_audit_number(&d[2], "#threshold", p, threshold);
    p = ngx_ent_audit_number(&d[4], "#used", p, res->used);
    p = ngx_ent_audit_number(&d[6], "#limit", p, res->limit);
    p = ngx_ent_audit_number(&d[8], "#period_start", p, res->start);
    (void) ngx_ent_audit_number(&d[10], "#window", p, res->window);

    ev.details = d;
    ev.ndetails = 6;

    ngx_ent_audit(r, &ev);
}


/*
 * A rejection, counted per tenant, policy and minute in this worker; each
 * count goes to the audit trail once its minute is over, merged there
 * with the other workers' and nodes' into one row
 */

static void
ngx_http_ent_rl_rejected(ngx_http_request_t *r, ngx_http_ent_rl_result_t *res)
{
    time_t                        minute;
    ngx_uint_t                    i, free;
    ngx_http_variable_value_t    *vv;
    ngx_http_ent_rl_rejects_t    *rj;
    ngx_http_ent_rl_main_conf_t  *rmcf;

    ngx_ent_metrics_count(r, NGX_ENT_M_RATELIMITED);

    if (!ngx_ent_audit_enabled()) {
        return;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_ratelimit_module);

    vv = ngx_http_get_indexed_variable(r, rmcf->id_index);

    if (vv == NULL || vv->not_found || vv->len != NGX_HTTP_ENT_RL_ID_LEN) {
        return;
    }

    if (rmcf->rejects == NULL) {
        rmcf->rejects = ngx_calloc(NGX_HTTP_ENT_RL_REJECTS
                                   * sizeof(ngx_http_ent_rl_rejects_t),
                                   ngx_cycle->log);
        if (rmcf->rejects == NULL) {
            return;
        }

        rmcf->rejects_timer.handler = ngx_http_ent_rl_rejects_flush;
        rmcf->rejects_timer.data = rmcf;
        rmcf->rejects_timer.log = ngx_cycle->log;
        rmcf->rejects_timer.cancelable = 1;
    }

    minute = ngx_time() - ngx_time() % 60;
    free = NGX_HTTP_ENT_RL_REJECTS;

    for (i = 0; i < NGX_HTTP_ENT_RL_REJECTS; i++) {
        rj = &rmcf->rejects[i];

        if (rj->count == 0) {
            if (free == NGX_HTTP_ENT_RL_REJECTS) {
                free = i;
            }

            continue;
        }

        if (rj->minute == minute && rj->policy.data == res->policy->name.data
            && ngx_memcmp(rj->tenant, vv->data, NGX_HTTP_ENT_RL_ID_LEN) == 0)
        {
            rj->count++;
            return;
        }
    }

    if (free == NGX_HTTP_ENT_RL_REJECTS) {
        /* more keys than slots this minute: what is counted goes now */
        ngx_http_ent_rl_rejects_flush(&rmcf->rejects_timer);
        free = 0;
    }

    rj = &rmcf->rejects[free];
    ngx_memcpy(rj->tenant, vv->data, NGX_HTTP_ENT_RL_ID_LEN);
    rj->policy = res->policy->name;
    rj->minute = minute;
    rj->count = 1;

    if (!rmcf->rejects_timer.timer_set) {
        ngx_add_timer(&rmcf->rejects_timer,
                      (minute + 61 - ngx_time()) * 1000);
    }
}


static void
ngx_http_ent_rl_rejects_flush(ngx_event_t *ev)
{
    ngx_http_ent_rl_main_conf_t *rmcf = ev->data;

    u_char                      num[NGX_INT64_LEN], at[NGX_INT64_LEN];
    time_t                      now;
    ngx_str_t                   d[6];
    ngx_uint_t                  i, left;
    ngx_ent_audit_event_t       aev;
    ngx_http_ent_rl_rejects_t  *rj;

    now = ngx_time();
    left = 0;

    for (i = 0; i < NGX_HTTP_ENT_RL_REJECTS; i++) {
        rj = &rmcf->rejects[i];

        if (rj->count == 0) {
            continue;
        }

        if (ev->timedout && rj->minute + 60 > now && !ngx_exiting) {
            left++;
            continue;
        }

        ngx_memzero(&aev, sizeof(ngx_ent_audit_event_t));

        aev.tenant.data = rj->tenant;
        aev.tenant.len = NGX_HTTP_ENT_RL_ID_LEN;
        aev.action = "ratelimit.rejected";
        aev.result = "failure";
        ngx_str_set(&aev.target_type, "policy");
        aev.target_id = rj->policy;
        ngx_str_set(&aev.reason, "requests over the limit");

        ngx_str_set(&d[0], "policy");
        d[1] = rj->policy;
        (void) ngx_ent_audit_number(&d[2], "#count", num, rj->count);
        (void) ngx_ent_audit_number(&d[4], "#minute", at, rj->minute);

        aev.details = d;
        aev.ndetails = 3;
        aev.merge = 1;

        ngx_ent_audit(NULL, &aev);

        rj->count = 0;
    }

    ev->timedout = 0;

    if (left && !ev->timer_set) {
        ngx_add_timer(ev, (now - now % 60 + 61 - now) * 1000);
    }
}


static void
ngx_http_ent_rl_budget(ngx_event_t *ev)
{
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_ent_rl_ctx_t      *ctx;
    ngx_http_ent_rl_main_conf_t *rmcf;

    ctx = ev->data;
    r = ctx->request;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_ratelimit_module);

    if (rmcf->logged != ngx_time()) {
        rmcf->logged = ngx_time();
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ent ratelimit: Redis did not answer within the "
                      "budget, falling back");
    }

    (void) ngx_atomic_fetch_add(&ngx_http_ent_rl_shm(rmcf)->budget, 1);

    ngx_http_ent_rl_fallback(r, ctx);

    ctx->state = NGX_HTTP_ENT_RL_DONE;

    /* resuming may finish the request and free it: keep the connection */
    c = r->connection;

    ngx_http_set_log_request(c->log, r);
    ngx_ent_phase_resume(r);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_ent_rl_cleanup(void *data)
{
    ngx_http_ent_rl_ctx_t  *ctx = data;

    if (ctx->budget.timer_set) {
        ngx_del_timer(&ctx->budget);
    }
}


static void
ngx_http_ent_rl_fallback(ngx_http_request_t *r, ngx_http_ent_rl_ctx_t *ctx)
{
    ngx_int_t                     limit;
    ngx_uint_t                    i, count;
    ngx_http_ent_rl_result_t     *res;
    ngx_http_ent_rl_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_ratelimit_module);

    if (rmcf->logged != ngx_time()) {
        rmcf->logged = ngx_time();
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ent ratelimit: Redis unavailable, policies fall "
                      "back as configured");
    }

    ngx_str_set(&ctx->status, "FALLBACK");

    (void) ngx_atomic_fetch_add(&ngx_http_ent_rl_shm(rmcf)->fallbacks, 1);

    /* what earlier locations counted was decided there */

    for (i = ctx->first; i < ctx->n; i++) {
        res = &ctx->res[i];

        if (res->leased) {
            /* counted in Redis already, when the lease was taken */
            continue;
        }

        switch (res->policy->fail) {

        case NGX_HTTP_ENT_RL_FAIL_OPEN:
            res->unknown = 1;
            res->remaining = res->limit;
            break;

        case NGX_HTTP_ENT_RL_FAIL_CLOSED:
            res->rejected = 1;
            res->closed = 1;
            res->remaining = 0;
            break;

        default: /* NGX_HTTP_ENT_RL_FAIL_LOCAL */

            limit = (res->limit + res->policy->nodes - 1)
                    / res->policy->nodes;

            if (!ngx_http_ent_rl_local(rmcf, &res->key,
                                       res->start + res->window, limit,
                                       &count))
            {
                res->rejected = 1;
                res->remaining = 0;

            } else {
                res->remaining = limit - count;
            }
        }
    }

    ngx_http_ent_rl_decide(r, ctx);
}


static ngx_uint_t
ngx_http_ent_rl_local(ngx_http_ent_rl_main_conf_t *rmcf, ngx_str_t *key,
    time_t end, ngx_int_t limit, ngx_uint_t *count)
{
    u_char                   hash[16];
    time_t                   now;
    ngx_md5_t                md5;
    ngx_uint_t               i, h, admit;
    ngx_http_ent_rl_zone_t  *z;
    ngx_http_ent_rl_slot_t  *s, *free;

    z = rmcf->zone->data;
    now = ngx_time() + rmcf->offset;

    ngx_md5_init(&md5);
    ngx_md5_update(&md5, key->data, key->len);
    ngx_md5_final(hash, &md5);

    ngx_memcpy(&h, hash, sizeof(ngx_uint_t));

    ngx_shmtx_lock(&z->shpool->mutex);

    free = NULL;
    s = NULL;

    /*
     * a few probes; a slot whose window has ended is reused, a full table
     * takes over the first probe's slot; the key names its window, so a slot
     * found by hash is the same window
     */

    for (i = 0; i < NGX_HTTP_ENT_RL_SLOT_PROBES; i++) {
        s = &z->slots[(h + i) % z->nslots];

        if (ngx_memcmp(s->hash, hash, 16) == 0) {
            break;
        }

        if (free == NULL && (time_t) s->end <= now) {
            free = s;
        }

        s = NULL;
    }

    if (s == NULL) {
        s = free ? free : &z->slots[h % z->nslots];
        ngx_memcpy(s->hash, hash, 16);
        s->end = (uint32_t) end;
        s->count = 0;
    }

    admit = ((ngx_int_t) s->count < limit);

    if (admit) {
        s->count++;
    }

    *count = s->count;

    ngx_shmtx_unlock(&z->shpool->mutex);

    return admit;
}


static void
ngx_http_ent_rl_decide(ngx_http_request_t *r, ngx_http_ent_rl_ctx_t *ctx)
{
    ngx_uint_t                    i, dry;
    ngx_http_ent_rl_result_t     *res;
    ngx_http_ent_rl_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_ratelimit_module);

    dry = 0;

    /*
     * the limiter failing closed decides; else the rejection that resets
     * last, so that Retry-After is never earlier than a policy that will
     * still refuse
     */

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->res[i];

        if (!res->rejected) {
            continue;
        }

        if (res->policy->dry_run) {
            dry = 1;
            continue;
        }

        if (ctx->cause == NULL
            || (res->closed && !ctx->cause->closed)
            || (res->closed == ctx->cause->closed
                && res->reset > ctx->cause->reset))
        {
            ctx->cause = res;
        }
    }

    if (ctx->cause) {
        ctx->decision = ctx->cause->closed ? NGX_HTTP_SERVICE_UNAVAILABLE
                                           : ctx->cause->policy->status;

        ngx_str_set(&ctx->status, "REJECTED");

        /* a rejected request consumes nothing: take every count back */
        ngx_http_ent_rl_undo(rmcf, ctx);

        for (i = 0; i < ctx->n; i++) {
            if ((ctx->res[i].counted || ctx->res[i].leased)
                && !ctx->res[i].rejected)
            {
                ctx->res[i].remaining++;
            }
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ent ratelimit: request rejected");
    }

    if (dry && ctx->cause == NULL) {
        ngx_str_set(&ctx->status, "DRY_RUN_REJECTED");
    }

    if (ctx->cause == NULL) {
        ngx_http_ent_rl_crossed(r, ctx);
    }

    ngx_http_ent_rl_give_back(ctx);
}


/* the monthly quotas a request admitted used, for the usage roll-up */

static void
ngx_http_ent_rl_accounted(ngx_http_request_t *r,
    ngx_http_ent_rl_main_conf_t *rmcf, ngx_http_ent_rl_ctx_t *ctx)
{
    ngx_uint_t  i;

    if (ctx->decision != NGX_DECLINED || rmcf->usage_stmt == NULL) {
        return;
    }

    for (i = 0; i < ctx->n; i++) {
        if (ctx->res[i].policy->monthly
            && (ctx->res[i].counted || ctx->res[i].leased)
            && !ctx->res[i].rejected)
        {
            ngx_http_ent_rl_account(r, rmcf, &ctx->res[i]);
        }
    }
}


static void
ngx_http_ent_rl_undo(ngx_http_ent_rl_main_conf_t *rmcf,
    ngx_http_ent_rl_ctx_t *ctx)
{
    ngx_uint_t                 i;
    ngx_http_ent_rl_seen_t    *e;
    ngx_http_ent_rl_result_t  *res;

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->res[i];

        if (res->leased || (res->counted && res->incr)) {
            /* the request's count returns to the lease it came from */

            e = ngx_http_ent_rl_lease(rmcf, res, ctx->generation);

            if (e && e->next == (ngx_int_t) res->used + 1) {
                e->next--;

            } else {
                res->back++;
            }

            continue;
        }

        if (res->counted) {
            res->back++;
        }
    }
}


/*
 * Counts that go back to Redis: fire and forget, nothing waits for it.
 * Not after a reconnect since they were taken (Redis may have lost the
 * key: a DECRBY would make it negative); and "SET key 0 EX ttl NX" goes
 * first, so that a key that expired meanwhile is never left without a
 * TTL.
 */

static void
ngx_http_ent_rl_give_back(ngx_http_ent_rl_ctx_t *ctx)
{
    u_char                by[NGX_HTTP_ENT_RL_MAX][NGX_INT_T_LEN];
    u_char                ttl[NGX_HTTP_ENT_RL_MAX][NGX_TIME_T_LEN];
    ngx_str_t             setv[NGX_HTTP_ENT_RL_MAX][6];
    ngx_str_t             argv[NGX_HTTP_ENT_RL_MAX][3];
    ngx_uint_t            i, n, nc, lost;
    ngx_ent_redis_cmd_t   cmds[2 * NGX_HTTP_ENT_RL_MAX];

    n = 0;
    nc = 0;
    lost = (ngx_ent_redis_generation() != ctx->generation);

    for (i = 0; i < ctx->n; i++) {
        if (ctx->res[i].back <= 0) {
            continue;
        }

        if (lost) {
            ctx->res[i].back = 0;
            continue;
        }

        ngx_str_set(&setv[n][0], "SET");
        setv[n][1] = ctx->res[i].key;
        ngx_str_set(&setv[n][2], "0");
        ngx_str_set(&setv[n][3], "EX");
        setv[n][4].data = ttl[n];
        setv[n][4].len = ngx_sprintf(ttl[n], "%T",
                                     ctx->res[i].window + 60) - ttl[n];
        ngx_str_set(&setv[n][5], "NX");
        cmds[nc].argc = 6;
        cmds[nc].argv = setv[n];
        nc++;

        ngx_str_set(&argv[n][0], "DECRBY");
        argv[n][1] = ctx->res[i].key;
        argv[n][2].data = by[n];
        argv[n][2].len = ngx_sprintf(by[n], "%i", ctx->res[i].back) - by[n];
        cmds[nc].argc = 3;
        cmds[nc].argv = argv[n];
        nc++;
        n++;

        ctx->res[i].back = 0;
    }

    if (nc) {
        (void) ngx_ent_redis_run(NULL, cmds, nc, ngx_http_ent_rl_ignored,
                                 NULL);
    }
}


static void
ngx_http_ent_rl_ignored(ngx_ent_op_t *op)
{
}


static ngx_int_t
ngx_http_ent_rl_reject(ngx_http_request_t *r, ngx_http_ent_rl_ctx_t *ctx)
{
    ngx_http_ent_rl_main_conf_t  *rmcf;
    u_char                    *p, *text;
    ngx_int_t                  rc;
    ngx_uint_t                 scim;
    ngx_buf_t                 *b;
    ngx_chain_t                out;
    ngx_http_ent_rl_result_t  *res;

    res = ctx->cause;

    if (res == NULL) {
        return NGX_DECLINED;
    }

    ctx->answered = 1;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_ratelimit_module);
    (void) ngx_atomic_fetch_add(&ngx_http_ent_rl_shm(rmcf)->rejected, 1);

    ngx_http_ent_rl_rejected(r, res);

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_ent_rl_push(r, "Retry-After", p,
                             ngx_sprintf(p, "%T", res->closed ? (time_t) 1
                                                              : res->reset)
                             - p)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    scim = (r->uri.len >= sizeof("/scim/v2") - 1
            && ngx_strncmp(r->uri.data, "/scim/v2", sizeof("/scim/v2") - 1)
               == 0
            && (r->uri.len == sizeof("/scim/v2") - 1
                || r->uri.data[sizeof("/scim/v2") - 1] == '/'));

    if (!scim && ctx->decision != NGX_HTTP_SERVICE_UNAVAILABLE) {

        /* a browser gets the tenant's page */

        text = ngx_pnalloc(r->pool, 128 + res->policy->name.len);
        if (text == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_sprintf(text, "The limit of the \"%V\" policy is reached. "
                     "Try again in %T seconds.", &res->policy->name,
                     res->reset) = '\0';

        rc = ngx_http_ent_tenant_html(r, ctx->decision, "quota_exceeded",
                                      ctx->decision == 402
                                      ? "Payment required"
                                      : "Too many requests",
                                      (char *) text);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    b = ngx_create_temp_buf(r->pool, 512 + res->policy->name.len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (scim) {
        /* RFC 7644 3.12: the SCIM error envelope, status as a string */
        p = ngx_sprintf(b->last, "{\"schemas\":[\"urn:ietf:params:scim:api:"
                        "messages:2.0:Error\"],\"status\":\"%i\","
                        "\"detail\":\"%s: policy %V, retry after %T s\"}\n",
                        ctx->decision,
                        ctx->decision == NGX_HTTP_SERVICE_UNAVAILABLE
                        ? "Rate limiter unavailable" : "Too many requests",
                        &res->policy->name,
                        res->closed ? (time_t) 1 : res->reset);

    } else if (ctx->decision == NGX_HTTP_SERVICE_UNAVAILABLE) {
        p = ngx_sprintf(b->last, "{\"type\":\"about:blank\",\"title\":"
                        "\"Rate limiter unavailable\",\"status\":503,"
                        "\"policy\":\"%V\"}\n", &res->policy->name);

    } else {
        p = ngx_sprintf(b->last, "{\"type\":\"quota-exceeded\",\"title\":"
                        "\"%s\",\"status\":%i,\"policy\":\"%V\","
                        "\"limit\":%i,\"window\":%T,\"retry_after\":%T}\n",
                        ctx->decision == 402 ? "Payment Required"
                                             : "Too Many Requests",
                        ctx->decision, &res->policy->name, res->limit,
                        res->window, res->reset);
    }

    b->last = p;
    b->last_buf = 1;
    b->last_in_chain = 1;

    r->headers_out.status = ctx->decision;
    r->headers_out.content_length_n = b->last - b->pos;
    if (scim) {
        ngx_str_set(&r->headers_out.content_type, "application/scim+json");

    } else {
        ngx_str_set(&r->headers_out.content_type,
                    "application/problem+json");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc != NGX_ERROR && rc <= NGX_OK && !r->header_only) {
        out.buf = b;
        out.next = NULL;
        rc = ngx_http_output_filter(r, &out);
    }

    /* in PREACCESS, NGX_OK would mean "go on": the request ends here */

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/* RateLimit-Policy and RateLimit on every response under a policy */


static ngx_int_t
ngx_http_ent_rl_header_filter(ngx_http_request_t *r)
{
    u_char                      *p, *q, *last;
    size_t                       n;
    ngx_uint_t                   i, min;
    ngx_http_ent_rl_ctx_t       *ctx;
    ngx_http_ent_rl_result_t    *res;
    ngx_http_ent_rl_loc_conf_t  *rlcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_ent_rl_get_ctx(r);

    if (ctx == NULL || ctx->n == 0 || ctx->state == NGX_HTTP_ENT_RL_WAITING) {
        return ngx_http_next_header_filter(r);
    }

    p = ngx_pnalloc(r->pool, ctx->n * 2 * 128);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = p + ctx->n * 128;
    q = p;

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->res[i];

        if (i) {
            *q++ = ',';
            *q++ = ' ';
        }

        n = ngx_ent_rl_policy_item(q, last - q, res->policy->name.data,
                                   res->policy->name.len, res->limit,
                                   res->window);
        q += n;
    }

    if (ngx_http_ent_rl_push(r, "RateLimit-Policy", p, q - p) != NGX_OK) {
        return NGX_ERROR;
    }

    p = last;
    last = p + ctx->n * 128;
    q = p;
    min = ctx->n;    /* the known result with the fewest left */

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->res[i];

        if (res->unknown) {
            continue;
        }

        if (q != p) {
            *q++ = ',';
            *q++ = ' ';
        }

        n = ngx_ent_rl_item(q, last - q, res->policy->name.data,
                            res->policy->name.len, res->remaining,
                            res->reset);
        q += n;

        if (min == ctx->n || res->remaining < ctx->res[min].remaining) {
            min = i;
        }
    }

    if (q != p && ngx_http_ent_rl_push(r, "RateLimit", p, q - p) != NGX_OK) {
        return NGX_ERROR;
    }

    /* soft thresholds: which quota, how far */

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->res[i];

        if (!res->warned) {
            continue;
        }

        p = ngx_pnalloc(r->pool, res->policy->name.len + 96);
        if (p == NULL) {
            return NGX_ERROR;
        }

        q = ngx_sprintf(p, "\"%V\";threshold=%ui;used=%ui;q=%i",
                        &res->policy->name, res->warned, res->used,
                        res->limit);

        if (ngx_http_ent_rl_push(r, "Ent-Quota-Warning", p, q - p)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_ratelimit_module);

    if (rlcf->legacy && min < ctx->n) {
        res = &ctx->res[min];

        p = ngx_pnalloc(r->pool, 3 * NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        q = ngx_sprintf(p, "%i", res->limit);
        if (ngx_http_ent_rl_push(r, "X-RateLimit-Limit", p, q - p) != NGX_OK) {
            return NGX_ERROR;
        }

        p = q;
        q = ngx_sprintf(p, "%ui", res->remaining);
        if (ngx_http_ent_rl_push(r, "X-RateLimit-Remaining", p, q - p)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = q;
        q = ngx_sprintf(p, "%T", res->reset);
        if (ngx_http_ent_rl_push(r, "X-RateLimit-Reset", p, q - p) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_ent_rl_push(ngx_http_request_t *r, const char *name, u_char *value,
    size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}



/* quota usage, rolled up to PostgreSQL */


static void
ngx_http_ent_rl_account(ngx_http_request_t *r,
    ngx_http_ent_rl_main_conf_t *rmcf, ngx_http_ent_rl_result_t *res)
{
    uint64_t                    h;
    ngx_uint_t                  i;
    ngx_http_ent_rl_usage_t    *u;
    ngx_http_variable_value_t  *vv;

    vv = ngx_http_get_indexed_variable(r, rmcf->id_index);

    if (vv == NULL || vv->not_found || vv->len != NGX_HTTP_ENT_RL_ID_LEN) {
        /* no tenant: nobody to bill */
        return;
    }

    if (rmcf->usage == NULL) {
        rmcf->usage = ngx_pcalloc(ngx_cycle->pool, NGX_HTTP_ENT_RL_USAGE
                                  * sizeof(ngx_http_ent_rl_usage_t));
        if (rmcf->usage == NULL) {
            return;
        }
    }

    h = res->hash;
    u = &rmcf->usage[h % NGX_HTTP_ENT_RL_USAGE];

    if (u->policy != res->policy || u->start != res->start
        || ngx_memcmp(u->tenant, vv->data, NGX_HTTP_ENT_RL_ID_LEN) != 0)
    {
        /*
         * another tenant's entry: taken over; what it had not written yet
         * is written by the next request that counts for it (Redis holds
         * the truth, "used" only grows)
         */

        for (i = 0; i < NGX_HTTP_ENT_RL_ID_LEN; i++) {
            u->tenant[i] = vv->data[i];
        }

        u->policy = res->policy;
        u->start = res->start;
        u->used = 0;
        u->written = 0;

        /* a write still under way is the previous owner's: wait for it */
        u->taken = (u->writing != 0);
    }

    if (res->used > u->used) {
        u->used = res->used;
    }
}


static ngx_int_t
ngx_http_ent_rl_init_process(ngx_cycle_t *cycle)
{
    ngx_http_ent_rl_main_conf_t  *rmcf;

    if ((ngx_process != NGX_PROCESS_WORKER
         && ngx_process != NGX_PROCESS_SINGLE)
        || cycle->conf_ctx == NULL
        || cycle->conf_ctx[ngx_http_module.index] == NULL)
    {
        return NGX_OK;
    }

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ent_ratelimit_module);

    if (rmcf == NULL) {
        return NGX_OK;
    }

    rmcf->workers = ((ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx,
                                                      ngx_core_module))
                    ->worker_processes;

    if (ngx_ent_random(rmcf->hash_key, sizeof(rmcf->hash_key), cycle->log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rmcf->usage_stmt == NULL) {
        return NGX_OK;
    }

    rmcf->flush.handler = ngx_http_ent_rl_flush;
    rmcf->flush.data = rmcf;
    rmcf->flush.log = cycle->log;
    rmcf->flush.cancelable = 1;

    ngx_add_timer(&rmcf->flush, rmcf->rollup);

    return NGX_OK;
}


static void
ngx_http_ent_rl_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_ent_rl_main_conf_t  *rmcf;

    if (cycle->conf_ctx == NULL
        || cycle->conf_ctx[ngx_http_module.index] == NULL)
    {
        return;
    }

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ent_ratelimit_module);

    if (rmcf && rmcf->flush.timer_set) {
        ngx_del_timer(&rmcf->flush);
    }

    if (rmcf && rmcf->rejects) {
        /* the counts so far, before the audit writer closes its journal */
        if (rmcf->rejects_timer.timer_set) {
            ngx_del_timer(&rmcf->rejects_timer);
        }

        rmcf->rejects_timer.timedout = 0;
        ngx_http_ent_rl_rejects_flush(&rmcf->rejects_timer);
    }
}


static void
ngx_http_ent_rl_flush(ngx_event_t *ev)
{
    u_char                        start[NGX_TIME_T_LEN], used[NGX_INT_T_LEN];
    ngx_str_t                     params[4];
    ngx_uint_t                    i;
    ngx_http_ent_rl_usage_t      *u;
    ngx_http_ent_rl_main_conf_t  *rmcf;

    rmcf = ev->data;

    for (i = 0; rmcf->usage && i < NGX_HTTP_ENT_RL_USAGE; i++) {
        u = &rmcf->usage[i];

        if (u->policy == NULL || u->used <= u->written || u->writing) {
            continue;
        }

        params[0].data = u->tenant;
        params[0].len = NGX_HTTP_ENT_RL_ID_LEN;
        params[1] = u->policy->name;
        params[2].data = start;
        params[2].len = ngx_sprintf(start, "%T", u->start) - start;
        params[3].data = used;
        params[3].len = ngx_sprintf(used, "%ui", u->used) - used;

        if (ngx_ent_pg_query(NULL, rmcf->usage_stmt, params,
                             ngx_http_ent_rl_written, u)
            != NGX_AGAIN)
        {
            /* PostgreSQL is away: everything stays for the next round */
            break;
        }

        u->writing = u->used;
    }

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(ev, rmcf->rollup);
    }
}


static void
ngx_http_ent_rl_written(ngx_ent_op_t *op)
{
    ngx_http_ent_rl_usage_t  *u;

    u = op->data;

    if (u->taken) {
        u->taken = 0;
        u->writing = 0;
        return;
    }

    if (op->status == NGX_ENT_OK && u->writing > u->written) {
        u->written = u->writing;
    }

    u->writing = 0;
}
