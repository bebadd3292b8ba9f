/*
 * ngx_http_ent_core_module: the shared core of ngx_ent.
 *
 * Directives for the PostgreSQL pool, the Redis connections and the
 * shared-memory caches; per-worker setup and teardown; the operation
 * objects through which a request waits for a backend; "ent_status".
 */


#include "ngx_ent_core_int.h"


#define NGX_HTTP_ENT_PARAM_NUM       1
#define NGX_HTTP_ENT_PARAM_MSEC      2
#define NGX_HTTP_ENT_PARAM_BACKOFF   3
#define NGX_HTTP_ENT_PARAM_STR       4
#define NGX_HTTP_ENT_PARAM_FLAG      5


/* "name=value" directive parameters, as data */

typedef struct {
    ngx_str_t                  name;
    ngx_uint_t                 type;
    size_t                     offset;
    size_t                     offset2;     /* backoff: the maximum */
    ngx_uint_t                 min;
    ngx_uint_t                 max;
} ngx_http_ent_core_param_t;


static void *ngx_http_ent_core_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_ent_core_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_http_ent_core_postgres(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_core_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_core_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_core_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_core_audit_journal(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ent_core_metrics_zone(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ent_core_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ent_core_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_ent_core_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ent_core_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_ent_core_variable_index(ngx_conf_t *cf,
    char *name);
static char *ngx_http_ent_core_params(ngx_conf_t *cf, ngx_uint_t first,
    ngx_http_ent_core_param_t *params, void *base);
static char *ngx_http_ent_core_parse_msec(ngx_conf_t *cf, ngx_str_t *value,
    size_t skip, ngx_msec_t *ms);
static char *ngx_http_ent_core_parse_num(ngx_conf_t *cf, ngx_str_t *value,
    size_t skip, ngx_uint_t min, ngx_uint_t max, ngx_uint_t *n);
static char *ngx_http_ent_core_parse_backoff(ngx_conf_t *cf, ngx_str_t *value,
    size_t skip, ngx_msec_t *min, ngx_msec_t *max);
static ngx_int_t ngx_http_ent_core_status_handler(ngx_http_request_t *r);
static char *ngx_http_ent_core_postgres_replica(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ent_core_pg_parse(ngx_conf_t *cf,
    ngx_ent_pg_conf_t *pg, ngx_uint_t replica);
static u_char *ngx_http_ent_core_status_backend(u_char *p, u_char *last,
    const char *name, ngx_uint_t enabled, ngx_ent_backend_stats_t *st);
static void ngx_ent_op_cleanup(void *data);
static ngx_int_t ngx_http_ent_core_init_process(ngx_cycle_t *cycle);
static void ngx_http_ent_core_exit_process(ngx_cycle_t *cycle);


static ngx_uint_t  ngx_ent_ops;     /* operations alive in this process */


#define ngx_http_ent_pg(f)      offsetof(ngx_ent_pg_conf_t, f)
#define ngx_http_ent_redis(f)   offsetof(ngx_ent_redis_conf_t, f)
#define ngx_http_ent_cache(f)   offsetof(ngx_ent_cache_t, f)

static ngx_http_ent_core_param_t  ngx_http_ent_core_pg_params[] = {
    { ngx_string("pool="), NGX_HTTP_ENT_PARAM_NUM,
      ngx_http_ent_pg(pool_size), 0, 1, 1024 },
    { ngx_string("queue="), NGX_HTTP_ENT_PARAM_NUM,
      ngx_http_ent_pg(queue_size), 0, 0, 65536 },
    { ngx_string("connect_timeout="), NGX_HTTP_ENT_PARAM_MSEC,
      ngx_http_ent_pg(connect_timeout), 0, 0, 0 },
    { ngx_string("query_timeout="), NGX_HTTP_ENT_PARAM_MSEC,
      ngx_http_ent_pg(query_timeout), 0, 0, 0 },
    { ngx_string("queue_timeout="), NGX_HTTP_ENT_PARAM_MSEC,
      ngx_http_ent_pg(queue_timeout), 0, 0, 0 },
    { ngx_string("backoff="), NGX_HTTP_ENT_PARAM_BACKOFF,
      ngx_http_ent_pg(backoff_min), ngx_http_ent_pg(backoff_max), 0, 0 },
    { ngx_string("listen="), NGX_HTTP_ENT_PARAM_FLAG,
      ngx_http_ent_pg(listen), 0, 0, 0 },
    { ngx_string("max_lag="), NGX_HTTP_ENT_PARAM_MSEC,
      ngx_http_ent_pg(max_lag), 0, 0, 0 },
    { ngx_null_string, 0, 0, 0, 0, 0 }
};

static ngx_http_ent_core_param_t  ngx_http_ent_core_redis_params[] = {
    { ngx_string("pool="), NGX_HTTP_ENT_PARAM_NUM,
      ngx_http_ent_redis(pool_size), 0, 1, 64 },
    { ngx_string("db="), NGX_HTTP_ENT_PARAM_NUM,
      ngx_http_ent_redis(db), 0, 0, 65535 },
    { ngx_string("user="), NGX_HTTP_ENT_PARAM_STR,
      ngx_http_ent_redis(user), 0, 0, 0 },
    { ngx_string("password="), NGX_HTTP_ENT_PARAM_STR,
      ngx_http_ent_redis(password), 0, 0, 0 },
    { ngx_string("connect_timeout="), NGX_HTTP_ENT_PARAM_MSEC,
      ngx_http_ent_redis(connect_timeout), 0, 0, 0 },
    { ngx_string("timeout="), NGX_HTTP_ENT_PARAM_MSEC,
      ngx_http_ent_redis(timeout), 0, 0, 0 },
    { ngx_string("backoff="), NGX_HTTP_ENT_PARAM_BACKOFF,
      ngx_http_ent_redis(backoff_min), ngx_http_ent_redis(backoff_max),
      0, 0 },
    { ngx_string("sentinel="), NGX_HTTP_ENT_PARAM_STR,
      ngx_http_ent_redis(sentinel_list), 0, 0, 0 },
    { ngx_string("master="), NGX_HTTP_ENT_PARAM_STR,
      ngx_http_ent_redis(master_name), 0, 0, 0 },
    { ngx_string("sentinel_password="), NGX_HTTP_ENT_PARAM_STR,
      ngx_http_ent_redis(sentinel_password), 0, 0, 0 },
    { ngx_string("cluster="), NGX_HTTP_ENT_PARAM_STR,
      ngx_http_ent_redis(cluster_list), 0, 0, 0 },
    { ngx_null_string, 0, 0, 0, 0, 0 }
};

static ngx_http_ent_core_param_t  ngx_http_ent_core_cache_params[] = {
    { ngx_string("ttl="), NGX_HTTP_ENT_PARAM_MSEC,
      ngx_http_ent_cache(ttl), 0, 0, 0 },
    { ngx_string("negative_ttl="), NGX_HTTP_ENT_PARAM_MSEC,
      ngx_http_ent_cache(negative_ttl), 0, 0, 0 },
    { ngx_string("error_ttl="), NGX_HTTP_ENT_PARAM_MSEC,
      ngx_http_ent_cache(error_ttl), 0, 0, 0 },
    { ngx_string("stale="), NGX_HTTP_ENT_PARAM_MSEC,
      ngx_http_ent_cache(stale), 0, 0, 0 },
    { ngx_null_string, 0, 0, 0, 0, 0 }
};


static ngx_command_t  ngx_http_ent_core_commands[] = {

    { ngx_string("ent_postgres"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ent_core_postgres,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_postgres_replica"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ent_core_postgres_replica,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ent_core_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_cache_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ent_core_cache_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ent_core_status,
      0,
      0,
      NULL },

    { ngx_string("ent_audit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_core_main_conf_t, audit),
      NULL },

    { ngx_string("ent_audit_journal"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ent_core_audit_journal,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_metrics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ent_core_metrics_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ent_core_metrics,
      0,
      0,
      NULL },

    { ngx_string("ent_metrics_log"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_core_loc_conf_t, metrics_log),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ent_core_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_ent_core_postconfiguration,   /* postconfiguration */

    ngx_http_ent_core_create_main_conf,    /* create main configuration */
    ngx_http_ent_core_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ent_core_create_loc_conf,     /* create location configuration */
    ngx_http_ent_core_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_ent_core_module = {
    NGX_MODULE_V1,
    &ngx_http_ent_core_module_ctx,         /* module context */
    ngx_http_ent_core_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ent_core_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ent_core_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


ngx_int_t
ngx_ent_core_present(void)
{
    return NGX_OK;
}


/*
 * Keys of hashes that take request data (cache buckets, the limiter's
 * table): read once, so a blocking read is no harm
 */

ngx_int_t
ngx_ent_random(void *buf, size_t len, ngx_log_t *log)
{
    ssize_t   n;
    ngx_fd_t  fd;

    fd = ngx_open_file("/dev/urandom", NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      "ent: /dev/urandom cannot be opened");
        return NGX_ERROR;
    }

    n = read(fd, buf, len);

    (void) ngx_close_file(fd);

    if (n < 0 || (size_t) n != len) {
        ngx_log_error(NGX_LOG_EMERG, log, n < 0 ? ngx_errno : 0,
                      "ent: /dev/urandom cannot be read");
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_uint_t
ngx_ent_core_backends(ngx_conf_t *cf)
{
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ent_core_module);

    return (cmcf->pg_enabled == 1 ? NGX_ENT_POSTGRES : 0)
           | (cmcf->redis_enabled == 1 ? NGX_ENT_REDIS : 0);
}


ngx_http_ent_core_main_conf_t *
ngx_ent_core_main_conf(void)
{
    if (ngx_http_ent_core_module.ctx_index == NGX_MODULE_UNSET_INDEX
        || ngx_cycle->conf_ctx == NULL
        || ngx_cycle->conf_ctx[ngx_http_module.index] == NULL)
    {
        return NULL;
    }

    return ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_ent_core_module);
}


static void *
ngx_http_ent_core_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ent_core_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cmcf->pg = { 0 };
     *     cmcf->redis = { 0 };
     *     cmcf->pg_pool = NULL;
     *     cmcf->redis_pool = NULL;
     */

    cmcf->pg_enabled = NGX_CONF_UNSET;
    cmcf->redis_enabled = NGX_CONF_UNSET;
    cmcf->audit = NGX_CONF_UNSET;
    cmcf->audit_max = NGX_CONF_UNSET_SIZE;
    cmcf->audit_flush = NGX_CONF_UNSET_MSEC;
    cmcf->metrics_top = NGX_CONF_UNSET_UINT;
    cmcf->sla_window = NGX_CONF_UNSET_MSEC;
    cmcf->request_id_index = NGX_ERROR;
    cmcf->tenant_id_index = NGX_ERROR;
    cmcf->tenant_code_index = NGX_ERROR;

    if (ngx_array_init(&cmcf->stmts, cf->pool, 8,
                       sizeof(ngx_ent_pg_stmt_t *))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&cmcf->caches, cf->pool, 4, sizeof(ngx_ent_cache_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return cmcf;
}


static char *
ngx_http_ent_core_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_ent_core_main_conf_t *cmcf = conf;

    ngx_conf_init_value(cmcf->pg_enabled, 0);
    ngx_conf_init_value(cmcf->redis_enabled, 0);

    if (cmcf->pg_ro_enabled && !cmcf->pg_enabled) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"ent_postgres_replica\" needs \"ent_postgres\" "
                      "(the primary) in http{}");
        return NGX_CONF_ERROR;
    }
    ngx_conf_init_value(cmcf->audit, 1);
    ngx_conf_init_size_value(cmcf->audit_max, 64 * 1024 * 1024);
    ngx_conf_init_msec_value(cmcf->audit_flush, 200);
    ngx_conf_init_uint_value(cmcf->metrics_top, 100);
    ngx_conf_init_msec_value(cmcf->sla_window, 300000);

    cmcf->metrics_step = cmcf->sla_window / 30;

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_core_postgres(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_core_main_conf_t *cmcf = conf;

    char  *rv;

    if (cmcf->pg_enabled != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    rv = ngx_http_ent_core_pg_parse(cf, &cmcf->pg, 0);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    cmcf->pg_enabled = 1;

    return NGX_CONF_OK;
}


/*
 * The parameters and conninfo of ent_postgres (listen=, no max_lag=) or of
 * ent_postgres_replica (max_lag=, no listen=).
 */

static char *
ngx_http_ent_core_pg_parse(ngx_conf_t *cf, ngx_ent_pg_conf_t *pg,
    ngx_uint_t replica)
{
    char       *rv;
    ngx_str_t  *value;

    value = cf->args->elts;

    pg->pool_size = replica ? 2 : 4;
    pg->queue_size = 256;
    pg->connect_timeout = 2000;
    pg->query_timeout = 5000;
    pg->queue_timeout = 2000;
    pg->backoff_min = 50;
    pg->backoff_max = 2000;
    pg->listen = NGX_CONF_UNSET;
    pg->max_lag = NGX_CONF_UNSET_MSEC;

    rv = ngx_http_ent_core_params(cf, 2, ngx_http_ent_core_pg_params, pg);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (replica ? pg->listen != NGX_CONF_UNSET
                : pg->max_lag != NGX_CONF_UNSET_MSEC)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\" takes no \"%s\"",
                           &value[0], replica ? "listen=" : "max_lag=");
        return NGX_CONF_ERROR;
    }

    if (pg->listen == NGX_CONF_UNSET) {
        pg->listen = !replica;
    }

    if (pg->max_lag == NGX_CONF_UNSET_MSEC) {
        pg->max_lag = 1000;
    }

    if (replica && pg->max_lag < 100) {
        return "max_lag= must be at least 100ms";
    }

    return ngx_ent_pg_conf(cf, pg, &value[1]);
}


/*
 * ent_postgres_replica "conninfo" [pool=N] [max_lag=time] ...: the caches'
 * reads go to a replica (a hot standby) while it is at most max_lag behind
 * the primary, as the heartbeat row says (migration 017).
 */

static char *
ngx_http_ent_core_postgres_replica(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ent_core_main_conf_t *cmcf = conf;

    char  *rv;

    if (cmcf->pg_ro_enabled) {
        return "is duplicate";
    }

    rv = ngx_http_ent_core_pg_parse(cf, &cmcf->pg_ro, 1);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    cmcf->pg_lag_stmt = ngx_ent_pg_stmt_add(cf,
                                        "SELECT ent.replica_lag()", 0);
    cmcf->pg_beat_stmt = ngx_ent_pg_stmt_add(cf,
                                        "SELECT ent.heartbeat()", 0);

    if (cmcf->pg_lag_stmt == NULL || cmcf->pg_beat_stmt == NULL) {
        return NGX_CONF_ERROR;
    }

    cmcf->pg_ro_enabled = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_core_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_core_main_conf_t *cmcf = conf;

    char                  *rv;
    ngx_str_t             *value;
    ngx_url_t              u;
    ngx_ent_redis_conf_t  *rd;

    if (cmcf->redis_enabled != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    rd = &cmcf->redis;
    value = cf->args->elts;

    rd->pool_size = NGX_CONF_UNSET_UINT;
    rd->db = 0;
    rd->connect_timeout = 1000;
    rd->timeout = 1000;
    rd->backoff_min = 50;
    rd->backoff_max = 2000;

    /* "sentinel=" and "master=", or "cluster=", take the address' place */

    if (ngx_strncmp(value[1].data, "cluster=", sizeof("cluster=") - 1) == 0) {
        rv = ngx_http_ent_core_params(cf, 1, ngx_http_ent_core_redis_params,
                                      rd);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        rv = ngx_ent_redis_cluster_conf(cf, rd);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

    } else if (ngx_strncmp(value[1].data, "sentinel=", sizeof("sentinel=") - 1)
               == 0
               || ngx_strncmp(value[1].data, "master=", sizeof("master=") - 1)
                  == 0)
    {
        rv = ngx_http_ent_core_params(cf, 1, ngx_http_ent_core_redis_params,
                                      rd);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        rv = ngx_ent_redis_sentinel_conf(cf, rd);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        if (rd->cluster_list.len) {
            return "has \"sentinel\" and \"cluster\": use one or the other";
        }

    } else {
        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url = value[1];
        u.default_port = 6379;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            if (u.err) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "%s in \"%V\" of the \"ent_redis\" "
                                   "directive", u.err, &u.url);
            }

            return NGX_CONF_ERROR;
        }

        if (u.naddrs == 0 || u.addrs == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "no address in \"%V\" of the \"ent_redis\" "
                               "directive", &u.url);
            return NGX_CONF_ERROR;
        }

        rd->addr = u.addrs[0];

        rv = ngx_http_ent_core_params(cf, 2, ngx_http_ent_core_redis_params,
                                      rd);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        if (rd->sentinel_list.len || rd->master_name.len
            || rd->sentinel_password.len)
        {
            return "has an address and \"sentinel\" parameters: "
                   "use one or the other";
        }

        if (rd->cluster_list.len) {
            return "has an address and \"cluster\": use one or the other";
        }
    }

    if (rd->pool_size == NGX_CONF_UNSET_UINT) {
        rd->pool_size = 2;
    }

    if (rd->user.len && rd->password.len == 0) {
        return "has \"user\" without \"password\"";
    }

    cmcf->redis_enabled = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_core_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char             *rv;
    u_char           *p;
    ssize_t           size;
    ngx_str_t        *value, name, s;
    ngx_ent_cache_t  *cache;

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\" in \"%V\" directive, "
                           "expected \"name:size\"", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\" in \"%V\" directive",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small in \"%V\" directive, "
                           "at least %uz bytes", &name, &cmd->name,
                           8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    cache = ngx_ent_cache_declare(cf, &name, size);
    if (cache == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cache->declared) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\" in \"%V\" directive",
                           &name, &cmd->name);
        return NGX_CONF_ERROR;
    }

    cache->declared = 1;

    rv = ngx_http_ent_core_params(cf, 2, ngx_http_ent_core_cache_params,
                                  cache);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (cache->ttl == 0) {
        return "has a zero \"ttl\"";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_core_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ent_core_status_handler;

    return NGX_CONF_OK;
}


/*
 * ent_audit_journal PATH [max_size=SIZE] [flush=TIME]
 */

static char *
ngx_http_ent_core_audit_journal(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ent_core_main_conf_t *cmcf = conf;

    ssize_t      size;
    ngx_str_t   *value, s;
    ngx_msec_t   ms;
    ngx_uint_t   i;

    if (cmcf->audit_path) {
        return "is duplicate";
    }

    value = cf->args->elts;

    cmcf->audit_path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (cmcf->audit_path == NULL) {
        return NGX_CONF_ERROR;
    }

    cmcf->audit_path->name = value[1];

    if (cmcf->audit_path->name.len > 1
        && cmcf->audit_path->name.data[cmcf->audit_path->name.len - 1] == '/')
    {
        cmcf->audit_path->name.len--;
    }

    if (ngx_conf_full_name(cf->cycle, &cmcf->audit_path->name, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "max_size=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;
            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || size < 65536) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" in \"%V\": at least 64k",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            cmcf->audit_max = size;
            continue;
        }

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            if (ngx_http_ent_core_parse_msec(cf, &value[i], 6, &ms)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            if (ms == 0 || ms > 60000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" in \"%V\" must be between 1ms "
                                   "and 60s", &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            cmcf->audit_flush = ms;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\"",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * ent_metrics_zone SIZE [top=N] [window=TIME]
 */

static char *
ngx_http_ent_core_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ent_core_main_conf_t *cmcf = conf;

    ssize_t             size;
    ngx_str_t          *value, name;
    ngx_int_t           n;
    ngx_msec_t          ms;
    ngx_uint_t          i;
    ngx_ent_metrics_t  *m;

    if (cmcf->metrics) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR || size < (ssize_t) (32 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid size \"%V\" in \"%V\": at least %uz",
                           &value[1], &cmd->name, 32 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "top=", 4) == 0) {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);

            if (n < 1 || n > 10000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" in \"%V\": 1 to 10000",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            cmcf->metrics_top = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "window=", 7) == 0) {
            if (ngx_http_ent_core_parse_msec(cf, &value[i], 7, &ms)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            if (ms < 3000 || ms > 86400000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" in \"%V\" must be between 3s "
                                   "and 1d", &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            cmcf->sla_window = ms;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\"",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    m = ngx_pcalloc(cf->pool, sizeof(ngx_ent_metrics_t));
    if (m == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&name, "ent_metrics");

    m->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                        &ngx_http_ent_core_module);
    if (m->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (m->shm_zone->data) {
        return "is duplicate";
    }

    m->shm_zone->init = ngx_ent_metrics_init_zone;
    m->shm_zone->data = m;

    cmcf->metrics = m;

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_core_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_ent_metrics_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ent_core_postconfiguration(ngx_conf_t *cf)
{
    u_char                         *p;
    ngx_str_t                       base;
    ngx_core_conf_t                *ccf;
    ngx_http_handler_pt            *h;
    ngx_http_core_main_conf_t      *hmcf;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ent_core_module);
    hmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    if (cmcf->audit == NGX_CONF_UNSET) {
        cmcf->audit = 1;
    }

    if (cmcf->audit && cmcf->pg_enabled == 1) {
        cmcf->audit_stmt = ngx_ent_pg_stmt_add(cf,
                               "SELECT ent.audit_write($1::jsonb)", 1);
        if (cmcf->audit_stmt == NULL) {
            return NGX_ERROR;
        }

        if (cmcf->audit_path == NULL) {
            /* next to the request bodies' temporary files */

            clcf = ngx_http_conf_get_module_loc_conf(cf,
                                                     ngx_http_core_module);

            if (clcf->client_body_temp_path) {
                base = clcf->client_body_temp_path->name;

            } else {
                ngx_str_set(&base, NGX_HTTP_CLIENT_TEMP_PATH);

                if (ngx_conf_full_name(cf->cycle, &base, 0) != NGX_OK) {
                    return NGX_ERROR;
                }
            }

            while (base.len > 1 && base.data[base.len - 1] != '/') {
                base.len--;
            }

            cmcf->audit_path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
            p = ngx_pnalloc(cf->pool, base.len + sizeof("ent_audit"));

            if (cmcf->audit_path == NULL || p == NULL) {
                return NGX_ERROR;
            }

            cmcf->audit_path->name.data = p;
            p = ngx_cpymem(p, base.data, base.len);
            p = ngx_cpymem(p, "ent_audit", sizeof("ent_audit") - 1);
            cmcf->audit_path->name.len = p - cmcf->audit_path->name.data;
            *p = '\0';
        }

        if (ngx_add_path(cf, &cmcf->audit_path) != NGX_OK) {
            return NGX_ERROR;
        }

        cmcf->request_id_index = ngx_http_ent_core_variable_index(cf,
                                                                "request_id");
    }

    if (cmcf->metrics == NULL) {
        return NGX_OK;
    }

    /* worker_processes, when set before http{} ("auto": the CPUs) */
    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    cmcf->metrics->workers = (ccf && ccf->worker_processes != NGX_CONF_UNSET
                              && ccf->worker_processes > 0)
                             ? (ngx_uint_t) ccf->worker_processes : 1;

    h = ngx_array_push(&hmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_ent_metrics_log_handler;

    cmcf->tenant_id_index = ngx_http_ent_core_variable_index(cf,
                                                             "ent_tenant_id");
    cmcf->tenant_code_index = ngx_http_ent_core_variable_index(cf,
                                                       "ent_tenant_code");

    if (cmcf->tenant_code_index == NGX_ERROR) {
        cmcf->tenant_id_index = NGX_ERROR;
    }

    if (cmcf->pg_enabled == 1) {
        cmcf->sla_stmt = ngx_ent_pg_stmt_add(cf,
                             "SELECT tenant_id, code, p99_ms, error_ratio, "
                             "min_requests FROM ent.sla_all()", 0);
        if (cmcf->sla_stmt == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void *
ngx_http_ent_core_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ent_core_loc_conf_t  *clcf;

    clcf = ngx_palloc(cf->pool, sizeof(ngx_http_ent_core_loc_conf_t));
    if (clcf == NULL) {
        return NULL;
    }

    clcf->metrics_log = NGX_CONF_UNSET;

    return clcf;
}


static char *
ngx_http_ent_core_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ent_core_loc_conf_t *prev = parent;
    ngx_http_ent_core_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->metrics_log, prev->metrics_log, 1);

    return NGX_CONF_OK;
}


/* a variable's index when some module defines it, else NGX_ERROR */

static ngx_int_t
ngx_http_ent_core_variable_index(ngx_conf_t *cf, char *name)
{
    ngx_str_t                   s;
    ngx_uint_t                  i;
    ngx_hash_key_t             *key;
    ngx_http_core_main_conf_t  *hmcf;

    hmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    s.data = (u_char *) name;
    s.len = ngx_strlen(name);

    if (hmcf->variables_keys == NULL) {
        return NGX_ERROR;
    }

    key = hmcf->variables_keys->keys.elts;

    for (i = 0; i < hmcf->variables_keys->keys.nelts; i++) {
        if (key[i].key.len == s.len
            && ngx_strncmp(key[i].key.data, s.data, s.len) == 0)
        {
            return ngx_http_get_variable_index(cf, &s);
        }
    }

    return NGX_ERROR;
}


static char *
ngx_http_ent_core_params(ngx_conf_t *cf, ngx_uint_t first,
    ngx_http_ent_core_param_t *params, void *base)
{
    char                       *rv;
    u_char                     *p;
    ngx_str_t                  *value, *str;
    ngx_uint_t                  i;
    ngx_http_ent_core_param_t  *prm;

    value = cf->args->elts;

    for (i = first; i < cf->args->nelts; i++) {

        for (prm = params; prm->name.len; prm++) {
            if (value[i].len >= prm->name.len
                && ngx_strncmp(value[i].data, prm->name.data, prm->name.len)
                   == 0)
            {
                break;
            }
        }

        if (prm->name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\" directive",
                               &value[i], &value[0]);
            return NGX_CONF_ERROR;
        }

        p = (u_char *) base + prm->offset;

        switch (prm->type) {

        case NGX_HTTP_ENT_PARAM_NUM:
            rv = ngx_http_ent_core_parse_num(cf, &value[i], prm->name.len,
                                             prm->min, prm->max,
                                             (ngx_uint_t *) p);
            break;

        case NGX_HTTP_ENT_PARAM_MSEC:
            rv = ngx_http_ent_core_parse_msec(cf, &value[i], prm->name.len,
                                              (ngx_msec_t *) p);
            break;

        case NGX_HTTP_ENT_PARAM_BACKOFF:
            rv = ngx_http_ent_core_parse_backoff(cf, &value[i],
                                                 prm->name.len,
                                                 (ngx_msec_t *) p,
                                                 (ngx_msec_t *)
                                                 ((u_char *) base
                                                  + prm->offset2));
            break;

        case NGX_HTTP_ENT_PARAM_STR:
            str = (ngx_str_t *) p;
            str->data = value[i].data + prm->name.len;
            str->len = value[i].len - prm->name.len;

            if (str->len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" directive has an empty \"%*s\"",
                                   &value[0], prm->name.len - 1,
                                   prm->name.data);
                return NGX_CONF_ERROR;
            }

            rv = NGX_CONF_OK;
            break;

        default: /* NGX_HTTP_ENT_PARAM_FLAG */
            if (ngx_strcmp(value[i].data + prm->name.len, "on") == 0) {
                *(ngx_flag_t *) p = 1;

            } else if (ngx_strcmp(value[i].data + prm->name.len, "off") == 0) {
                *(ngx_flag_t *) p = 0;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" directive, "
                                   "it must be \"on\" or \"off\"",
                                   &value[i], &value[0]);
                return NGX_CONF_ERROR;
            }

            rv = NGX_CONF_OK;
            break;
        }

        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_core_parse_msec(ngx_conf_t *cf, ngx_str_t *value, size_t skip,
    ngx_msec_t *ms)
{
    ngx_str_t   s, *args;
    ngx_int_t   n;

    args = cf->args->elts;

    s.data = value->data + skip;
    s.len = value->len - skip;

    n = ngx_parse_time(&s, 0);

    if (n == NGX_ERROR || n > 86400000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\" in \"%V\" directive",
                           value, &args[0]);
        return NGX_CONF_ERROR;
    }

    *ms = (ngx_msec_t) n;

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_core_parse_num(ngx_conf_t *cf, ngx_str_t *value, size_t skip,
    ngx_uint_t min, ngx_uint_t max, ngx_uint_t *n)
{
    ngx_int_t   v;
    ngx_str_t  *args;

    args = cf->args->elts;

    v = ngx_atoi(value->data + skip, value->len - skip);

    if (v == NGX_ERROR || (ngx_uint_t) v < min || (ngx_uint_t) v > max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "must be a number from %ui to %ui",
                           value, &args[0], min, max);
        return NGX_CONF_ERROR;
    }

    *n = (ngx_uint_t) v;

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_core_parse_backoff(ngx_conf_t *cf, ngx_str_t *value,
    size_t skip, ngx_msec_t *min, ngx_msec_t *max)
{
    u_char     *p;
    ngx_str_t   s, *args;
    ngx_int_t   a, b;

    args = cf->args->elts;

    s.data = value->data + skip;
    s.len = value->len - skip;

    p = ngx_strlchr(s.data, s.data + s.len, ':');
    if (p == NULL) {
        goto invalid;
    }

    s.len = p - s.data;
    a = ngx_parse_time(&s, 0);

    s.data = p + 1;
    s.len = value->data + value->len - s.data;
    b = ngx_parse_time(&s, 0);

    if (a == NGX_ERROR || b == NGX_ERROR || a == 0 || a > b || b > 60000) {
        goto invalid;
    }

    *min = a;
    *max = b;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, "
                       "expected \"backoff=min:max\" with 0 < min <= max "
                       "<= 60s", value, &args[0]);
    return NGX_CONF_ERROR;
}


/* operations */


ngx_ent_op_t *
ngx_ent_op_create(ngx_http_request_t *r, size_t extra,
    ngx_ent_op_handler_pt handler, void *data)
{
    ngx_log_t           *log;
    ngx_ent_op_t        *op;
    ngx_pool_cleanup_t  *cln;

    log = r ? r->connection->log : ngx_cycle->log;

    op = ngx_calloc(sizeof(ngx_ent_op_t) + extra, log);
    if (op == NULL) {
        return NULL;
    }

    ngx_ent_ops++;

    op->handler = handler;
    op->data = data;
    op->log = log;
    op->timer.data = op;
    op->timer.log = op->log;

    if (r) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            ngx_ent_ops--;
            ngx_free(op);
            return NULL;
        }

        cln->handler = ngx_ent_op_cleanup;
        cln->data = op;

        op->request = r;
        op->cln = cln;
        op->bound = 1;
    }

    return op;
}


static void
ngx_ent_op_cleanup(void *data)
{
    ngx_ent_op_t  *op = data;

    /* the request is going away: never touch it again */

    op->request = NULL;
    op->cln = NULL;
    op->log = ngx_cycle->log;
    op->timer.log = ngx_cycle->log;

    if (op->cancel) {
        op->cancel(op);
    }
}


void
ngx_ent_op_complete(ngx_ent_op_t *op, ngx_uint_t status)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    op->status = status;
    op->cancel = NULL;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    if (!op->bound) {
        op->handler(op);
        ngx_ent_op_free(op);
        return;
    }

    r = op->request;

    if (r == NULL) {
        ngx_ent_op_free(op);
        return;
    }

    /* the handler may finalize the request: its pool goes, cleanup too */
    op->cln->handler = NULL;
    op->cln = NULL;

    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    op->handler(op);
    ngx_ent_op_free(op);

    ngx_http_run_posted_requests(c);
}


void
ngx_ent_op_free(ngx_ent_op_t *op)
{
    ngx_uint_t  i;

    ngx_ent_ops--;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    if (op->cln) {
        op->cln->handler = NULL;
    }

    for (i = 0; i < op->nreplies; i++) {
        if (op->replies[i]) {
            freeReplyObject(op->replies[i]);
        }
    }

    if (op->blob) {
        ngx_free(op->blob);
    }

    if (op->out) {
        ngx_free(op->out);
    }

    ngx_free(op);
}


ngx_int_t
ngx_ent_phase_wait(ngx_http_request_t *r)
{
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_DONE;
}


void
ngx_ent_phase_resume(ngx_http_request_t *r)
{
    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
}


void *
ngx_ent_ctx_get(ngx_http_request_t *r, ngx_module_t *m,
    ngx_pool_cleanup_pt handler)
{
    void                *ctx;
    ngx_pool_cleanup_t  *cln;

    ctx = r->ctx[m->ctx_index];

    if (ctx == NULL && (r->internal || r->filter_finalize)) {
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == handler) {
                ctx = cln->data;
                r->ctx[m->ctx_index] = ctx;
                break;
            }
        }
    }

    return ctx;
}


void *
ngx_ent_ctx_new(ngx_http_request_t *r, ngx_module_t *m, size_t size,
    ngx_pool_cleanup_pt handler)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, size);
    if (cln == NULL) {
        return NULL;
    }

    ngx_memzero(cln->data, size);
    cln->handler = handler;
    r->ctx[m->ctx_index] = cln->data;

    return cln->data;
}


/* ent_status */


static ngx_int_t
ngx_http_ent_core_status_handler(ngx_http_request_t *r)
{
    u_char                         *p, *last;
    size_t                          size;
    ngx_int_t                       rc, lag;
    ngx_buf_t                      *b;
    ngx_uint_t                      i;
    ngx_ent_cache_t               **caches;
    ngx_ent_backend_stats_t         st;
    ngx_http_ent_core_main_conf_t  *cmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_core_module);

    size = 1024 + cmcf->caches.nelts * 512;

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;
    last = b->end;

    p = ngx_slprintf(p, last, "{\"pid\":%P,\"ops\":%ui,", ngx_pid,
                     ngx_ent_ops);

    ngx_ent_pg_stats(cmcf, &st);
    p = ngx_http_ent_core_status_backend(p, last, "postgres",
                                         cmcf->pg_enabled, &st);

    if (ngx_ent_pg_replica_stats(cmcf, &st, &lag) == NGX_OK) {
        p = ngx_http_ent_core_status_backend(p, last, "postgres_replica", 1,
                                             &st);
        p = ngx_slprintf(p, last, "\"postgres_replica_lag_ms\":%i,", lag);
    }

    ngx_ent_redis_stats(cmcf, &st);
    p = ngx_http_ent_core_status_backend(p, last, "redis",
                                         cmcf->redis_enabled, &st);

    p = ngx_slprintf(p, last, "\"caches\":{");

    caches = cmcf->caches.elts;

    for (i = 0; i < cmcf->caches.nelts; i++) {
        p = ngx_slprintf(p, last, "%s\"%V\":", i ? "," : "",
                         &caches[i]->name);
        p = ngx_ent_cache_stats(caches[i], p, last);
    }

    p = ngx_slprintf(p, last, "}}\n");

    b->last = p;

    return ngx_http_ent_core_send(r, b, "application/json",
                                  sizeof("application/json") - 1);
}


/* a page made in memory (ent_status, ent_metrics), answered with 200 */

ngx_int_t
ngx_http_ent_core_send(ngx_http_request_t *r, ngx_buf_t *b, char *type,
    size_t type_len)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = type_len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static u_char *
ngx_http_ent_core_status_backend(u_char *p, u_char *last, const char *name,
    ngx_uint_t enabled, ngx_ent_backend_stats_t *st)
{
    if (!enabled) {
        return ngx_slprintf(p, last, "\"%s\":null,", name);
    }

    p = ngx_slprintf(p, last,
                     "\"%s\":{\"connected\":%ui,\"busy\":%ui,"
                     "\"queued\":%ui,\"queries\":%ui,\"errors\":%ui,"
                     "\"timeouts\":%ui,\"rejected\":%ui,"
                     "\"reconnects\":%ui",
                     name, st->connected, st->busy, st->queued,
                     st->queries, st->errors, st->timeouts, st->rejected,
                     st->reconnects);

    if (ngx_strcmp(name, "redis") == 0) {
        /* an IP literal and a port, or a unix socket path */

        if (st->master.len
            && (size_t) (last - p) > sizeof(",\"master\":\"\"") - 1
                                      + 6 * st->master.len)
        {
            p = ngx_slprintf(p, last, ",\"master\":\"");
            p = (u_char *) ngx_escape_json(p, st->master.data,
                                           st->master.len);
            p = ngx_slprintf(p, last, "\"");

        } else {
            p = ngx_slprintf(p, last, ",\"master\":null");
        }

        p = ngx_slprintf(p, last, ",\"failovers\":%ui", st->failovers);

        if (st->cluster) {
            p = ngx_slprintf(p, last,
                             ",\"cluster\":{\"nodes\":%ui,\"redirects\":%ui,"
                             "\"maps\":%ui}",
                             st->nodes, st->redirects, st->maps);

        } else {
            p = ngx_slprintf(p, last, ",\"cluster\":null");
        }
    }

    return ngx_slprintf(p, last, "},");
}


/* worker */


static ngx_int_t
ngx_http_ent_core_init_process(ngx_cycle_t *cycle)
{
    ngx_msec_t                      fill;
    ngx_http_ent_core_main_conf_t  *cmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    cmcf = ngx_ent_core_main_conf();
    if (cmcf == NULL) {
        return NGX_OK;
    }

    ngx_ent_cache_init_worker(cmcf, cycle->log);

    if (cmcf->pg_enabled) {
        /*
         * a fill may queue, prepare and query, on the primary or on the
         * replica (its own timeouts): never a shorter mark, or a late
         * fill could overwrite a newer one
         */
        fill = cmcf->pg.queue_timeout + 2 * cmcf->pg.query_timeout;

        if (cmcf->pg_ro_enabled) {
            fill = ngx_max(fill, cmcf->pg_ro.queue_timeout
                                 + 2 * cmcf->pg_ro.query_timeout);
        }

        ngx_ent_cache_fill_timeout(cmcf, fill + 1000);
    }

    if (cmcf->pg_enabled
        && ngx_ent_pg_init_worker(cycle, cmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cmcf->redis_enabled
        && ngx_ent_redis_init_worker(cycle, cmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cmcf->audit_stmt
        && ngx_ent_audit_init_worker(cycle, cmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cmcf->metrics
        && ngx_ent_metrics_init_worker(cycle, cmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_ent_core_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ngx_ent_core_main_conf();
    if (cmcf == NULL) {
        return;
    }

    ngx_ent_audit_exit_worker(cmcf);

    if (cmcf->metrics) {
        ngx_ent_metrics_exit_worker(cmcf);
    }

    ngx_ent_cache_exit_worker(cmcf);

    if (cmcf->pg_pool) {
        ngx_ent_pg_exit_worker(cmcf);
    }

    if (cmcf->redis_pool) {
        ngx_ent_redis_exit_worker(cmcf);
    }
}
