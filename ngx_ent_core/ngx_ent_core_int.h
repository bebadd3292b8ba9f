/*
 * ngx_ent core: definitions private to the core module's files.
 */

#ifndef _NGX_ENT_CORE_INT_H_INCLUDED_
#define _NGX_ENT_CORE_INT_H_INCLUDED_


#define NGX_ENT_CORE_SELF  1

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <libpq-fe.h>
#include <hiredis/hiredis.h>

#include "ngx_ent_core.h"


#define NGX_ENT_PG_MAX_STMTS       256
#define NGX_ENT_NOTIFY_CHANNEL     "ent_invalidate"


typedef struct ngx_ent_pg_pool_s      ngx_ent_pg_pool_t;
typedef struct ngx_ent_redis_pool_s   ngx_ent_redis_pool_t;


typedef struct {
    ngx_str_t                  conninfo;     /* as configured, for -t only */
    ngx_str_t                  display;      /* without the password */
    const char               **keywords;
    const char               **values;
    ngx_uint_t                 pool_size;
    ngx_uint_t                 queue_size;
    ngx_msec_t                 connect_timeout;
    ngx_msec_t                 query_timeout;
    ngx_msec_t                 queue_timeout;
    ngx_msec_t                 backoff_min;
    ngx_msec_t                 backoff_max;
    ngx_flag_t                 listen;
    ngx_msec_t                 max_lag;      /* a replica's */
} ngx_ent_pg_conf_t;


#define NGX_ENT_REDIS_MAX_SENTINELS  16


typedef struct {
    ngx_addr_t                 addr;         /* unless sentinels */
    ngx_addr_t                *sentinels;    /* sentinel=, NULL without */
    ngx_uint_t                 nsentinels;
    ngx_str_t                  sentinel_list; /* as configured */
    ngx_str_t                  master_name;   /* master= */
    ngx_str_t                  sentinel_password;
    ngx_addr_t                *seeds;        /* cluster=, NULL without */
    ngx_uint_t                 nseeds;
    ngx_str_t                  cluster_list;  /* as configured */
    ngx_str_t                  user;
    ngx_str_t                  password;
    ngx_uint_t                 db;
    ngx_uint_t                 pool_size;
    ngx_msec_t                 connect_timeout;
    ngx_msec_t                 timeout;
    ngx_msec_t                 backoff_min;
    ngx_msec_t                 backoff_max;
} ngx_ent_redis_conf_t;


struct ngx_ent_cache_s {
    ngx_str_t                  name;
    ngx_shm_zone_t            *shm_zone;
    ngx_slab_pool_t           *shpool;
    struct ngx_ent_cache_sh_s *sh;
    ngx_msec_t                 ttl;
    ngx_msec_t                 negative_ttl;
    ngx_msec_t                 error_ttl;
    ngx_msec_t                 stale;
    ngx_msec_t                 fill_timeout;
    ngx_uint_t                 declared;     /* by ent_cache_zone */
};


typedef struct {
    ngx_shm_zone_t            *shm_zone;
    ngx_slab_pool_t           *shpool;
    void                      *sh;
    ngx_uint_t                 workers;     /* a shard each */
} ngx_ent_metrics_t;


typedef struct {
    ngx_uint_t                 events;      /* journaled */
    ngx_uint_t                 written;     /* committed */
    ngx_uint_t                 dropped;
    ngx_uint_t                 rejected;
    ngx_uint_t                 retries;
    ngx_uint_t                 adopted;
    off_t                      journal;     /* bytes not yet committed */
} ngx_ent_audit_stats_t;


typedef struct {
    ngx_flag_t                 pg_enabled;
    ngx_ent_pg_conf_t          pg;
    ngx_array_t                stmts;        /* ngx_ent_pg_stmt_t * */

    /* ent_postgres_replica: the caches' reads */
    ngx_flag_t                 pg_ro_enabled;
    ngx_ent_pg_conf_t          pg_ro;
    ngx_ent_pg_stmt_t         *pg_lag_stmt;
    ngx_ent_pg_stmt_t         *pg_beat_stmt;

    ngx_flag_t                 redis_enabled;
    ngx_ent_redis_conf_t       redis;

    ngx_array_t                caches;       /* ngx_ent_cache_t * */

    ngx_flag_t                 audit;
    ngx_path_t                *audit_path;
    size_t                     audit_max;
    ngx_msec_t                 audit_flush;
    ngx_ent_pg_stmt_t         *audit_stmt;
    ngx_int_t                  request_id_index;

    ngx_ent_metrics_t         *metrics;
    ngx_uint_t                 metrics_top;
    ngx_msec_t                 sla_window;
    ngx_msec_t                 metrics_step;  /* sla_window / 30 */
    ngx_ent_pg_stmt_t         *sla_stmt;
    ngx_int_t                  tenant_id_index;
    ngx_int_t                  tenant_code_index;

    /* per worker, set up in init_process */
    ngx_ent_pg_pool_t         *pg_pool;
    ngx_ent_pg_pool_t         *pg_ro_pool;
    ngx_ent_redis_pool_t      *redis_pool;
    ngx_queue_t                fills;        /* ngx_ent_cache_fill_t */
    ngx_event_t                fill_poll;
} ngx_http_ent_core_main_conf_t;


typedef struct {
    ngx_flag_t                 metrics_log;   /* ent_metrics_log */
} ngx_http_ent_core_loc_conf_t;


typedef struct {
    ngx_uint_t                 connected;
    ngx_uint_t                 busy;
    ngx_uint_t                 queued;
    ngx_uint_t                 queries;
    ngx_uint_t                 errors;
    ngx_uint_t                 timeouts;
    ngx_uint_t                 rejected;
    ngx_uint_t                 reconnects;
    ngx_uint_t                 failovers;    /* Redis: master changes */
    ngx_str_t                  master;       /* Redis: len 0 if unknown */
    ngx_uint_t                 cluster;      /* Redis Cluster: 1, then */
    ngx_uint_t                 nodes;        /* masters in the slot map */
    ngx_uint_t                 redirects;    /* MOVED and ASK followed */
    ngx_uint_t                 maps;         /* slot maps loaded */
} ngx_ent_backend_stats_t;


extern ngx_module_t  ngx_http_ent_core_module;


ngx_http_ent_core_main_conf_t *ngx_ent_core_main_conf(void);
ngx_int_t ngx_http_ent_core_send(ngx_http_request_t *r, ngx_buf_t *b,
    char *type, size_t type_len);

/* operations */
ngx_ent_op_t *ngx_ent_op_create(ngx_http_request_t *r, size_t extra,
    ngx_ent_op_handler_pt handler, void *data);
void ngx_ent_op_complete(ngx_ent_op_t *op, ngx_uint_t status);
void ngx_ent_op_free(ngx_ent_op_t *op);

/* PostgreSQL */
char *ngx_ent_pg_conf(ngx_conf_t *cf, ngx_ent_pg_conf_t *conf,
    ngx_str_t *conninfo);
ngx_int_t ngx_ent_pg_init_worker(ngx_cycle_t *cycle,
    ngx_http_ent_core_main_conf_t *cmcf);
void ngx_ent_pg_exit_worker(ngx_http_ent_core_main_conf_t *cmcf);
ngx_int_t ngx_ent_send(ngx_connection_t *c, u_char *out, size_t *pos,
    size_t len);
ngx_int_t ngx_ent_peer_connect(ngx_peer_connection_t *peer, ngx_addr_t *addr,
    ngx_log_t *log, void *data, ngx_event_handler_pt read,
    ngx_event_handler_pt write);
ngx_int_t ngx_ent_pg_replica_stats(ngx_http_ent_core_main_conf_t *cmcf,
    ngx_ent_backend_stats_t *st, ngx_int_t *lag);
ngx_int_t ngx_ent_pg_query_read(ngx_http_request_t *r,
    ngx_ent_pg_stmt_t *stmt, ngx_str_t *params,
    ngx_ent_op_handler_pt handler, void *data, ngx_msec_t invalidated);
void ngx_ent_pg_stats(ngx_http_ent_core_main_conf_t *cmcf,
    ngx_ent_backend_stats_t *st);

/* Redis */
ngx_int_t ngx_ent_redis_init_worker(ngx_cycle_t *cycle,
    ngx_http_ent_core_main_conf_t *cmcf);
void ngx_ent_redis_exit_worker(ngx_http_ent_core_main_conf_t *cmcf);
void ngx_ent_redis_stats(ngx_http_ent_core_main_conf_t *cmcf,
    ngx_ent_backend_stats_t *st);
void ngx_ent_redis_master_found(ngx_ent_redis_pool_t *pool,
    struct sockaddr *sockaddr, socklen_t socklen);

/* Redis Sentinel */
typedef struct ngx_ent_redis_sentinel_s  ngx_ent_redis_sentinel_t;

char *ngx_ent_redis_sentinel_conf(ngx_conf_t *cf, ngx_ent_redis_conf_t *conf);
char *ngx_ent_redis_cluster_conf(ngx_conf_t *cf, ngx_ent_redis_conf_t *conf);
#define NGX_ENT_REDIS_MAX_ELEMENTS  1048576
redisReader *ngx_ent_redis_reader_create(void);
ngx_int_t ngx_ent_redis_addr_list(ngx_conf_t *cf, ngx_str_t *list,
    in_port_t default_port, const char *what, ngx_addr_t **addrs,
    ngx_uint_t *n);
ngx_ent_redis_sentinel_t *ngx_ent_redis_sentinel_create(ngx_cycle_t *cycle,
    ngx_ent_redis_conf_t *conf, ngx_ent_redis_pool_t *pool);
void ngx_ent_redis_sentinel_discover(ngx_ent_redis_sentinel_t *sn);
void ngx_ent_redis_sentinel_destroy(ngx_ent_redis_sentinel_t *sn);
ngx_int_t ngx_ent_redis_sentinel_addr(const u_char *ip, size_t ip_len,
    const u_char *port, size_t port_len, struct sockaddr *sa,
    socklen_t *socklen);
ngx_int_t ngx_ent_redis_sentinel_switch(const u_char *p, size_t len,
    ngx_str_t *name, ngx_str_t *ip, ngx_str_t *port);

/* caches */
ngx_ent_cache_t *ngx_ent_cache_declare(ngx_conf_t *cf, ngx_str_t *name,
    size_t size);
void ngx_ent_cache_init_worker(ngx_http_ent_core_main_conf_t *cmcf,
    ngx_log_t *log);
void ngx_ent_cache_exit_worker(ngx_http_ent_core_main_conf_t *cmcf);
void ngx_ent_cache_invalidate(ngx_http_ent_core_main_conf_t *cmcf,
    u_char *payload, size_t len, ngx_log_t *log);
void ngx_ent_cache_flush_all(ngx_http_ent_core_main_conf_t *cmcf);
void ngx_ent_cache_listening(ngx_http_ent_core_main_conf_t *cmcf,
    ngx_uint_t on);
void ngx_ent_cache_fill_timeout(ngx_http_ent_core_main_conf_t *cmcf,
    ngx_msec_t timeout);
u_char *ngx_ent_cache_stats(ngx_ent_cache_t *cache, u_char *p, u_char *last);
ngx_uint_t ngx_ent_cache_counter(ngx_ent_cache_t *cache, ngx_uint_t which);

/* audit */
ngx_int_t ngx_ent_audit_init_worker(ngx_cycle_t *cycle,
    ngx_http_ent_core_main_conf_t *cmcf);
void ngx_ent_audit_exit_worker(ngx_http_ent_core_main_conf_t *cmcf);
void ngx_ent_audit_stats(ngx_ent_audit_stats_t *st);

/* metrics */
ngx_int_t ngx_ent_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data);
ngx_int_t ngx_ent_metrics_log_handler(ngx_http_request_t *r);
ngx_int_t ngx_ent_metrics_handler(ngx_http_request_t *r);
ngx_int_t ngx_ent_metrics_init_worker(ngx_cycle_t *cycle,
    ngx_http_ent_core_main_conf_t *cmcf);
void ngx_ent_metrics_exit_worker(ngx_http_ent_core_main_conf_t *cmcf);


#endif /* _NGX_ENT_CORE_INT_H_INCLUDED_ */
