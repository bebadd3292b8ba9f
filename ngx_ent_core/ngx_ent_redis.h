/*
 * ngx_ent core: what the Redis connection code (ngx_ent_redis.c) shares
 * with Redis Cluster routing (ngx_ent_redis_cluster.c); private to both.
 */

#ifndef _NGX_ENT_REDIS_H_INCLUDED_
#define _NGX_ENT_REDIS_H_INCLUDED_


#include "ngx_ent_core_int.h"


#define NGX_ENT_REDIS_DOWN         0
#define NGX_ENT_REDIS_BACKOFF      1
#define NGX_ENT_REDIS_CONNECTING   2
#define NGX_ENT_REDIS_READY        3
#define NGX_ENT_REDIS_WAITING      4     /* for the sentinels' answer */

#define NGX_ENT_REDIS_MAX_INFLIGHT 4096
#define NGX_ENT_REDIS_MAX_OUTPUT   (16 * 1024 * 1024)


typedef struct ngx_ent_redis_cluster_s  ngx_ent_redis_cluster_t;


typedef struct {
    ngx_ent_redis_pool_t      *pool;
    ngx_peer_connection_t      peer;
    ngx_uint_t                 state;
    redisReader               *reader;
    u_char                    *out;
    size_t                     out_len;
    size_t                     out_size;
    size_t                     out_pos;
    ngx_queue_t                inflight;
    ngx_uint_t                 ninflight;
    ngx_uint_t                 handshake;
    ngx_event_t                timer;
    ngx_msec_t                 backoff;
    ngx_msec_t                 up_since;    /* READY at, 0 when not */
    unsigned                   ever_connected:1;
    unsigned                   role_check:1;

    unsigned                   used:1;       /* cluster: a node's, or free */

    /* Redis Cluster: the node, one connection each (node.sockaddr set) */
    unsigned                   master:1;     /* has slots in the map */
    ngx_addr_t                 node;
    ngx_sockaddr_t             node_sockaddr;
    u_char                     node_text[NGX_SOCKADDR_STRLEN];
} ngx_ent_redis_conn_t;


struct ngx_ent_redis_pool_s {
    ngx_ent_redis_conf_t      *conf;
    ngx_log_t                 *log;
    ngx_ent_redis_conn_t      *conns;
    ngx_uint_t                 nconns;
    ngx_uint_t                 next;
    ngx_uint_t                 generation;
    ngx_ent_backend_stats_t    stats;

    ngx_addr_t                *addr;         /* where connections go */

    /* with sentinels */
    ngx_ent_redis_sentinel_t  *sentinel;
    ngx_addr_t                 master;       /* the last one reported */
    ngx_sockaddr_t             master_sockaddr;
    u_char                     master_text[NGX_SOCKADDR_STRLEN];
    ngx_uint_t                 master_known;
    ngx_uint_t                 failovers;

    /* with a cluster */
    ngx_ent_redis_cluster_t   *cluster;
};


#define ngx_ent_redis_addr(rc)                                               \
    ((rc)->node.sockaddr ? &(rc)->node : (rc)->pool->addr)


/* ngx_ent_redis.c */
void ngx_ent_redis_conn_init(ngx_ent_redis_pool_t *pool,
    ngx_ent_redis_conn_t *rc);
void ngx_ent_redis_connect(ngx_ent_redis_conn_t *rc);
void ngx_ent_redis_close(ngx_ent_redis_conn_t *rc, ngx_uint_t status);
void ngx_ent_redis_disconnect(ngx_ent_redis_conn_t *rc);
ngx_int_t ngx_ent_redis_usable(ngx_ent_redis_conn_t *rc);
ngx_ent_redis_conn_t *ngx_ent_redis_take(ngx_ent_redis_conn_t *rc);
ngx_ent_redis_conn_t *ngx_ent_redis_pick(ngx_ent_redis_pool_t *pool);
ngx_int_t ngx_ent_redis_append_raw(ngx_ent_redis_conn_t *rc, u_char *data,
    size_t len);
ngx_int_t ngx_ent_redis_append(ngx_ent_redis_conn_t *rc, ngx_uint_t argc,
    ngx_str_t *argv);
void ngx_ent_redis_queue(ngx_ent_redis_conn_t *rc, ngx_ent_op_t *op);

/* ngx_ent_redis_cluster.c */
ngx_int_t ngx_ent_redis_cluster_create(ngx_cycle_t *cycle,
    ngx_ent_redis_pool_t *pool);
void ngx_ent_redis_cluster_destroy(ngx_ent_redis_pool_t *pool);
ngx_int_t ngx_ent_redis_cluster_run(ngx_ent_redis_pool_t *pool,
    ngx_http_request_t *r, ngx_ent_redis_cmd_t *cmds, ngx_uint_t ncmds,
    ngx_ent_op_handler_pt handler, void *data);
ngx_int_t ngx_ent_redis_cluster_store(ngx_ent_op_t *op, redisReply *reply);
void ngx_ent_redis_cluster_done(ngx_ent_redis_conn_t *rc, ngx_ent_op_t *op);
void ngx_ent_redis_cluster_connected(ngx_ent_redis_conn_t *rc);
ngx_int_t ngx_ent_redis_cluster_lost(ngx_ent_redis_conn_t *rc);
void ngx_ent_redis_cluster_fail(ngx_ent_op_t *op, ngx_uint_t status);
void ngx_ent_redis_cluster_stats(ngx_ent_redis_pool_t *pool,
    ngx_ent_backend_stats_t *st);


#endif /* _NGX_ENT_REDIS_H_INCLUDED_ */
