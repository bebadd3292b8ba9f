/*
 * ngx_ent core: the per-worker Redis connections.
 *
 * nginx owns every socket (ngx_event_connect_peer(), TCP or unix); hiredis
 * is used only to parse replies (commands are RESP-encoded by
 * ngx_ent_resp_write(), straight into the output buffer, no allocation).  Each connection
 * pipelines: commands are appended to one output buffer, flushed from a
 * posted write event (so that a burst of requests in one loop iteration
 * shares one send), and replies are matched to operations in order.
 * AUTH and SELECT go first on every new connection.  A command that takes
 * longer than "timeout" drops the connection, failing what is in flight on
 * it, and a new one is started with backoff.
 *
 * With "sentinel=" the address comes from the sentinels
 * (ngx_ent_redis_sentinel.c): a connection that finds no master known
 * waits for one (requests meanwhile get NGX_DECLINED, a 503); every
 * connection error, timeout, -READONLY/-LOADING/-MASTERDOWN reply or a
 * ROLE other than "master" (checked first on every new connection) makes
 * the master unknown again, so that the next connection attempt asks the
 * sentinels; a new address closes the connections to the old one.
 */


#include "ngx_ent_redis.h"


static void ngx_ent_redis_connected(ngx_ent_redis_conn_t *rc);
static ngx_int_t ngx_ent_redis_test_connect(ngx_connection_t *c);
static void ngx_ent_redis_write_handler(ngx_event_t *wev);
static void ngx_ent_redis_read_handler(ngx_event_t *rev);
static void ngx_ent_redis_timer_handler(ngx_event_t *ev);
static ngx_int_t ngx_ent_redis_reply(ngx_ent_redis_conn_t *rc,
    redisReply *reply);
static ngx_int_t ngx_ent_redis_reserve(ngx_ent_redis_conn_t *rc, size_t len);
static ngx_int_t ngx_ent_redis_flush(ngx_ent_redis_conn_t *rc);
static void ngx_ent_redis_arm(ngx_ent_redis_conn_t *rc);
static ngx_int_t ngx_ent_redis_not_master(redisReply *reply);
static ngx_int_t ngx_ent_redis_role_master(redisReply *reply);


/* worker */


ngx_int_t
ngx_ent_redis_init_worker(ngx_cycle_t *cycle,
    ngx_http_ent_core_main_conf_t *cmcf)
{
    ngx_uint_t             i;
    ngx_ent_redis_pool_t  *pool;
    ngx_ent_redis_conn_t  *rc;

    pool = ngx_pcalloc(cycle->pool, sizeof(ngx_ent_redis_pool_t));
    if (pool == NULL) {
        return NGX_ERROR;
    }

    pool->conf = &cmcf->redis;
    pool->log = cycle->log;
    pool->nconns = cmcf->redis.pool_size;
    pool->addr = &cmcf->redis.addr;

    if (cmcf->redis.sentinels) {
        pool->addr = NULL;
        pool->sentinel = ngx_ent_redis_sentinel_create(cycle, &cmcf->redis,
                                                       pool);
        if (pool->sentinel == NULL) {
            return NGX_ERROR;
        }
    }

    if (!cmcf->redis.seeds) {
        pool->conns = ngx_pcalloc(cycle->pool,
                                  pool->nconns * sizeof(ngx_ent_redis_conn_t));
        if (pool->conns == NULL) {
            return NGX_ERROR;
        }
    }

    cmcf->redis_pool = pool;

    if (cmcf->redis.seeds) {
        /* the cluster's nodes come and go: it owns the connections */
        return ngx_ent_redis_cluster_create(cycle, pool);
    }

    for (i = 0; i < pool->nconns; i++) {
        rc = &pool->conns[i];

        ngx_ent_redis_conn_init(pool, rc);
        ngx_ent_redis_connect(rc);
    }

    return NGX_OK;
}


void
ngx_ent_redis_conn_init(ngx_ent_redis_pool_t *pool, ngx_ent_redis_conn_t *rc)
{
    rc->pool = pool;
    rc->used = 1;
    ngx_queue_init(&rc->inflight);

    rc->timer.handler = ngx_ent_redis_timer_handler;
    rc->timer.data = rc;
    rc->timer.log = pool->log;
}


void
ngx_ent_redis_exit_worker(ngx_http_ent_core_main_conf_t *cmcf)
{
    ngx_uint_t             i;
    ngx_queue_t           *q;
    ngx_ent_op_t          *op;
    ngx_ent_redis_pool_t  *pool;
    ngx_ent_redis_conn_t  *rc;

    pool = cmcf->redis_pool;

    if (pool->sentinel) {
        ngx_ent_redis_sentinel_destroy(pool->sentinel);
        pool->sentinel = NULL;
    }

    if (pool->cluster) {
        ngx_ent_redis_cluster_destroy(pool);
    }

    for (i = 0; i < pool->nconns; i++) {
        rc = &pool->conns[i];

        if (rc->timer.timer_set) {
            ngx_del_timer(&rc->timer);
        }

        while (!ngx_queue_empty(&rc->inflight)) {
            q = ngx_queue_head(&rc->inflight);
            ngx_queue_remove(q);
            op = ngx_queue_data(q, ngx_ent_op_t, queue);
            ngx_ent_op_free(op);
        }

        if (rc->peer.connection) {
            ngx_close_connection(rc->peer.connection);
            rc->peer.connection = NULL;
        }

        if (rc->reader) {
            redisReaderFree(rc->reader);
            rc->reader = NULL;
        }

        if (rc->out) {
            ngx_free(rc->out);
            rc->out = NULL;
        }
    }

    cmcf->redis_pool = NULL;
}


void
ngx_ent_redis_stats(ngx_http_ent_core_main_conf_t *cmcf,
    ngx_ent_backend_stats_t *st)
{
    ngx_uint_t             i;
    ngx_ent_redis_pool_t  *pool;

    pool = cmcf->redis_pool;

    if (pool == NULL) {
        ngx_memzero(st, sizeof(ngx_ent_backend_stats_t));
        return;
    }

    *st = pool->stats;
    st->connected = 0;
    st->busy = 0;

    for (i = 0; i < pool->nconns; i++) {
        if (pool->conns[i].state == NGX_ENT_REDIS_READY) {
            st->connected++;
        }

        st->busy += pool->conns[i].ninflight;
    }

    st->failovers = pool->failovers;

    if (pool->cluster) {
        ngx_ent_redis_cluster_stats(pool, st);
    }

    if (pool->addr) {
        st->master = pool->addr->name;
    }
}


/*
 * The sentinels named the master: a new address closes the connections
 * to the old one (what is in flight there fails, as on any connection
 * loss) and starts them again at once; connections waiting for the
 * answer connect now.
 */

void
ngx_ent_redis_master_found(ngx_ent_redis_pool_t *pool,
    struct sockaddr *sockaddr, socklen_t socklen)
{
    size_t                 len;
    u_char                 text[NGX_SOCKADDR_STRLEN];
    ngx_uint_t             i, moved;
    ngx_ent_redis_conn_t  *rc;

    moved = 0;

    if (pool->addr == NULL
        || ngx_cmp_sockaddr(pool->master.sockaddr, pool->master.socklen,
                            sockaddr, socklen, 1)
           != NGX_OK)
    {
        moved = (pool->addr != NULL);

        len = ngx_sock_ntop(sockaddr, socklen, text, NGX_SOCKADDR_STRLEN, 1);

        if (moved) {
            pool->failovers++;
            ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                          "redis master \"%V\" moved from %V to %*s",
                          &pool->conf->master_name, &pool->master.name,
                          len, text);

        } else {
            ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                          "redis master \"%V\" is at %*s",
                          &pool->conf->master_name, len, text);
        }

        ngx_memcpy(&pool->master_sockaddr, sockaddr, socklen);
        pool->master.sockaddr = &pool->master_sockaddr.sockaddr;
        pool->master.socklen = socklen;

        ngx_memcpy(pool->master_text, text, len);
        pool->master.name.data = pool->master_text;
        pool->master.name.len = len;
        pool->addr = &pool->master;

        if (moved) {
            for (i = 0; i < pool->nconns; i++) {
                rc = &pool->conns[i];

                if (rc->state == NGX_ENT_REDIS_READY
                    || rc->state == NGX_ENT_REDIS_CONNECTING)
                {
                    ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
                }
            }
        }
    }

    pool->master_known = 1;

    for (i = 0; i < pool->nconns; i++) {
        rc = &pool->conns[i];

        if (rc->state == NGX_ENT_REDIS_WAITING
            || (moved && rc->state == NGX_ENT_REDIS_BACKOFF))
        {
            if (rc->timer.timer_set) {
                ngx_del_timer(&rc->timer);
            }

            /* after a move, at once; otherwise the backoff stays */

            if (moved) {
                rc->backoff = 0;
            }

            rc->state = NGX_ENT_REDIS_DOWN;
            ngx_ent_redis_connect(rc);
        }
    }
}


/* connections */


void
ngx_ent_redis_connect(ngx_ent_redis_conn_t *rc)
{
    ngx_int_t              rv;
    ngx_str_t              argv[3];
    ngx_uint_t             argc;
    u_char                 db[NGX_INT_T_LEN];
    ngx_ent_redis_pool_t  *pool;
    ngx_ent_redis_conf_t  *conf;

    pool = rc->pool;
    conf = pool->conf;

    if (pool->sentinel && !pool->master_known) {
        rc->state = NGX_ENT_REDIS_WAITING;
        ngx_ent_redis_sentinel_discover(pool->sentinel);
        return;
    }

    rc->reader = ngx_ent_redis_reader_create();
    if (rc->reader == NULL) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                      "redisReaderCreate() failed");
        ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
        return;
    }

    rc->out_len = 0;
    rc->out_pos = 0;
    rc->handshake = 0;

    if (conf->password.len) {
        argc = 0;
        ngx_str_set(&argv[argc], "AUTH");
        argc++;

        if (conf->user.len) {
            argv[argc++] = conf->user;
        }

        argv[argc++] = conf->password;

        if (ngx_ent_redis_append(rc, argc, argv) != NGX_OK) {
            ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
            return;
        }

        rc->handshake++;
    }

    if (conf->db) {
        ngx_str_set(&argv[0], "SELECT");
        argv[1].data = db;
        argv[1].len = ngx_sprintf(db, "%ui", conf->db) - db;

        if (ngx_ent_redis_append(rc, 2, argv) != NGX_OK) {
            ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
            return;
        }

        rc->handshake++;
    }

    /* what the sentinels call the master may be a replica by now */

    rc->role_check = 0;

    if (pool->sentinel) {
        ngx_str_set(&argv[0], "ROLE");

        if (ngx_ent_redis_append(rc, 1, argv) != NGX_OK) {
            ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
            return;
        }

        rc->handshake++;
        rc->role_check = 1;
    }

    rv = ngx_ent_peer_connect(&rc->peer, ngx_ent_redis_addr(rc), pool->log,
                              rc, ngx_ent_redis_read_handler,
                              ngx_ent_redis_write_handler);

    if (rv == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "redis connect to %V failed",
                      &ngx_ent_redis_addr(rc)->name);
        ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
        return;
    }

    rc->state = NGX_ENT_REDIS_CONNECTING;

    rc->timer.cancelable = 1;
    ngx_add_timer(&rc->timer, conf->connect_timeout);

    if (rv == NGX_OK) {
        ngx_ent_redis_connected(rc);
    }
}


static void
ngx_ent_redis_connected(ngx_ent_redis_conn_t *rc)
{
    ngx_ent_redis_pool_t  *pool;

    pool = rc->pool;

    if (rc->timer.timer_set) {
        ngx_del_timer(&rc->timer);
    }

    rc->state = NGX_ENT_REDIS_READY;
    rc->up_since = ngx_current_msec;
    pool->generation++;

    /* pipelined small writes must not wait for the previous one's ACK */

    if (rc->peer.sockaddr->sa_family != AF_UNIX
        && ngx_tcp_nodelay(rc->peer.connection) != NGX_OK)
    {
        ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
        return;
    }

    if (rc->ever_connected) {
        pool->stats.reconnects++;
        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                      "redis connection to %V re-established",
                      &ngx_ent_redis_addr(rc)->name);
    }

    rc->ever_connected = 1;

    if (rc->handshake || !ngx_queue_empty(&rc->inflight)) {
        ngx_ent_redis_arm(rc);

    } else {
        rc->peer.connection->idle = 1;
    }

    if (ngx_ent_redis_flush(rc) != NGX_OK) {
        ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
        return;
    }

    if (pool->cluster) {
        ngx_ent_redis_cluster_connected(rc);
    }
}


static ngx_int_t
ngx_ent_redis_test_connect(ngx_connection_t *c)
{
    int        err;
    socklen_t  len;

    err = 0;
    len = sizeof(int);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err) {
        ngx_log_error(NGX_LOG_ERR, c->log, err, "redis connect() to %V failed",
                      ((ngx_ent_redis_conn_t *) c->data)->peer.name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_ent_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t      *c;
    ngx_ent_redis_conn_t  *rc;

    c = wev->data;
    rc = c->data;

    if (rc->state == NGX_ENT_REDIS_CONNECTING) {
        if (ngx_ent_redis_test_connect(c) != NGX_OK) {
            ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
            return;
        }

        ngx_ent_redis_connected(rc);
        return;
    }

    if (rc->state != NGX_ENT_REDIS_READY) {
        return;
    }

    if (ngx_ent_redis_flush(rc) != NGX_OK) {
        ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
    }
}


static void
ngx_ent_redis_read_handler(ngx_event_t *rev)
{
    void                  *reply;
    ssize_t                n;
    u_char                 buf[16384];
    ngx_connection_t      *c;
    ngx_ent_redis_conn_t  *rc;

    c = rev->data;
    rc = c->data;

    if (c->close) {
        /*
         * graceful shutdown: an idle connection goes now; that says
         * nothing of the server, so a sentinel's master stays known for
         * the requests the worker still serves
         */

        if (ngx_queue_empty(&rc->inflight)) {
            ngx_ent_redis_disconnect(rc);

        } else {
            ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
        }

        return;
    }

    if (rc->state == NGX_ENT_REDIS_CONNECTING) {
        if (ngx_ent_redis_test_connect(c) != NGX_OK) {
            ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
            return;
        }

        ngx_ent_redis_connected(rc);

        if (rc->state != NGX_ENT_REDIS_READY) {
            return;
        }
    }

    for ( ;; ) {

        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, rc->pool->log, 0,
                          "redis %V closed the connection",
                          &ngx_ent_redis_addr(rc)->name);
            ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
            return;
        }

        if (redisReaderFeed(rc->reader, (const char *) buf, n) != REDIS_OK) {
            ngx_log_error(NGX_LOG_ALERT, rc->pool->log, 0,
                          "redisReaderFeed() failed");
            ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
            return;
        }

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(rc->reader, &reply) != REDIS_OK) {
                ngx_log_error(NGX_LOG_ERR, rc->pool->log, 0,
                              "redis protocol error: %s", rc->reader->errstr);
                ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
                return;
            }

            if (reply == NULL) {
                break;
            }

            if (ngx_ent_redis_reply(rc, reply) != NGX_OK) {
                return;
            }
        }

        if (!rev->ready) {
            /* a short read drained the socket: spare the EAGAIN recv() */
            break;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
    }
}


static ngx_int_t
ngx_ent_redis_reply(ngx_ent_redis_conn_t *rc, redisReply *reply)
{
    ngx_queue_t   *q;
    ngx_ent_op_t  *op;

    if (rc->handshake) {
        rc->handshake--;

        if (reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, rc->pool->log, 0,
                          "redis %V refused AUTH or SELECT: %*s",
                          &ngx_ent_redis_addr(rc)->name,
                          (size_t) ngx_min(reply->len, 128), reply->str);
            freeReplyObject(reply);
            ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
            return NGX_ERROR;
        }

        if (rc->handshake == 0 && rc->role_check) {
            rc->role_check = 0;

            if (ngx_ent_redis_role_master(reply) != NGX_OK) {
                ngx_log_error(NGX_LOG_ERR, rc->pool->log, 0,
                              "redis %V is not the master of \"%V\" (ROLE), "
                              "asking the sentinels again",
                              &ngx_ent_redis_addr(rc)->name,
                              &rc->pool->conf->master_name);
                freeReplyObject(reply);
                ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
                return NGX_ERROR;
            }
        }

        freeReplyObject(reply);

        if (rc->handshake == 0) {
            /* the handshake went through: no more backoff */
            rc->backoff = 0;
        }

        if (rc->handshake == 0 && ngx_queue_empty(&rc->inflight)) {
            if (rc->timer.timer_set) {
                ngx_del_timer(&rc->timer);
            }

            rc->peer.connection->idle = 1;
        }

        return NGX_OK;
    }

    if (ngx_queue_empty(&rc->inflight)) {
        ngx_log_error(NGX_LOG_ERR, rc->pool->log, 0,
                      "redis sent a reply nobody asked for");
        freeReplyObject(reply);
        ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
        return NGX_ERROR;
    }

    if (rc->pool->sentinel && ngx_ent_redis_not_master(reply) == NGX_OK) {
        /* a failover under way: fail what is in flight, ask again */
        ngx_log_error(NGX_LOG_ERR, rc->pool->log, 0,
                      "redis %V answered \"%*s\", asking the sentinels "
                      "again", &ngx_ent_redis_addr(rc)->name,
                      (size_t) ngx_min(reply->len, 128), reply->str);
        freeReplyObject(reply);
        ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
        return NGX_ERROR;
    }

    q = ngx_queue_head(&rc->inflight);
    op = ngx_queue_data(q, ngx_ent_op_t, queue);

    if (op->cluster) {
        if (ngx_ent_redis_cluster_store(op, reply) == NGX_AGAIN) {
            return NGX_OK;
        }

    } else {
        op->replies[op->nreplies++] = reply;

        if (op->nreplies < op->ncmds) {
            return NGX_OK;
        }
    }

    ngx_queue_remove(q);
    rc->ninflight--;

    /*
     * up: a server that accepts and then drops the connection (maxclients,
     * a proxy before a dead server) is not redialled at the shortest pace
     */

    rc->backoff = 0;

    /*
     * While commands are in flight the timer stays where it is: no later
     * than the oldest one's deadline; it is moved on when it fires (see
     * ngx_ent_redis_timer_handler), not on every reply
     */

    if (ngx_queue_empty(&rc->inflight)) {
        if (rc->timer.timer_set) {
            ngx_del_timer(&rc->timer);
        }

        if (rc->handshake == 0) {
            rc->peer.connection->idle = 1;
        }
    }

    /*
     * Kept open also while shutting down: the worker still serves requests
     * that may send more; an idle connection keeps no timer, so it does not
     * hold the worker back.
     */

    if (op->cluster) {
        /* complete, or sent again where a redirection points */
        ngx_ent_redis_cluster_done(rc, op);
        return NGX_OK;
    }

    ngx_ent_op_complete(op, NGX_ENT_OK);

    return NGX_OK;
}


static void
ngx_ent_redis_timer_handler(ngx_event_t *ev)
{
    ngx_msec_t             age;
    ngx_ent_op_t          *op;
    ngx_ent_redis_conn_t  *rc;

    rc = ev->data;

    switch (rc->state) {

    case NGX_ENT_REDIS_BACKOFF:
        rc->state = NGX_ENT_REDIS_DOWN;
        ngx_ent_redis_connect(rc);
        return;

    case NGX_ENT_REDIS_CONNECTING:
        ngx_log_error(NGX_LOG_ERR, rc->pool->log, NGX_ETIMEDOUT,
                      "redis connect to %V timed out",
                      &ngx_ent_redis_addr(rc)->name);
        ngx_ent_redis_close(rc, NGX_ENT_UNAVAILABLE);
        return;

    case NGX_ENT_REDIS_READY:
        if (rc->handshake == 0 && !ngx_queue_empty(&rc->inflight)) {

            /* each command has the timeout from when it was queued */

            op = ngx_queue_data(ngx_queue_head(&rc->inflight), ngx_ent_op_t,
                                queue);
            age = ngx_current_msec - op->sent;

            if (age < rc->pool->conf->timeout) {
                rc->timer.cancelable = 0;
                ngx_add_timer(&rc->timer, rc->pool->conf->timeout - age);
                return;
            }
        }

        ngx_log_error(NGX_LOG_ERR, rc->pool->log, NGX_ETIMEDOUT,
                      "redis %V did not answer within %Mms, "
                      "dropping the connection",
                      &ngx_ent_redis_addr(rc)->name,
                      rc->pool->conf->timeout);

        if (rc->handshake == 0) {
            /* a slow answer, not a refusal: back at once */
            rc->backoff = 0;
        }

        ngx_ent_redis_close(rc, NGX_ENT_TIMEOUT);
        return;

    default:
        return;
    }
}


/* commands */


ngx_uint_t
ngx_ent_redis_generation(void)
{
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ngx_ent_core_main_conf();

    return (cmcf && cmcf->redis_pool) ? cmcf->redis_pool->generation : 0;
}


/*
 * rc, if it takes a command now or once connected.  A worker shutting down
 * closed its idle connections (nginx does, once); a request it still
 * serves may need one: connected again, without backoff
 * (ngx_ent_redis_queue() keeps the worker until it is up or has failed).
 */

ngx_ent_redis_conn_t *
ngx_ent_redis_take(ngx_ent_redis_conn_t *rc)
{
    if (rc->state == NGX_ENT_REDIS_DOWN && (ngx_exiting || ngx_quit)) {
        ngx_ent_redis_connect(rc);
    }

    return (ngx_ent_redis_usable(rc) != NGX_DECLINED) ? rc : NULL;
}


/*
 * Round robin over the ready connections, else one still connecting, else
 * (shutting down) one connected again; NULL when none can take a command
 */

ngx_ent_redis_conn_t *
ngx_ent_redis_pick(ngx_ent_redis_pool_t *pool)
{
    ngx_uint_t             i, n;
    ngx_ent_redis_conn_t  *rc, *pick;

    pick = NULL;

    for (i = 0; i < pool->nconns; i++) {
        n = (pool->next + i) % pool->nconns;
        rc = &pool->conns[n];

        if (!rc->used) {
            continue;
        }

        switch (ngx_ent_redis_usable(rc)) {

        case NGX_OK:
            pool->next = n + 1;
            return rc;

        case NGX_AGAIN:
            if (pick == NULL) {
                pick = rc;
            }

            break;

        default:
            break;
        }
    }

    if (pick || (!ngx_exiting && !ngx_quit)) {
        return pick;
    }

    for (i = 0; i < pool->nconns; i++) {
        rc = &pool->conns[i];

        if (rc->used && rc->state == NGX_ENT_REDIS_DOWN) {
            return ngx_ent_redis_take(rc);
        }
    }

    return NULL;
}


ngx_int_t
ngx_ent_redis_run(ngx_http_request_t *r, ngx_ent_redis_cmd_t *cmds,
    ngx_uint_t ncmds, ngx_ent_op_handler_pt handler, void *data)
{
    size_t                          saved;
    ngx_uint_t                      i;
    ngx_log_t                      *log;
    ngx_ent_op_t                   *op;
    ngx_ent_redis_conn_t           *rc;
    ngx_ent_redis_pool_t           *pool;
    ngx_http_ent_core_main_conf_t  *cmcf;

    log = r ? r->connection->log : ngx_cycle->log;

    cmcf = ngx_ent_core_main_conf();
    pool = cmcf ? cmcf->redis_pool : NULL;

    if (pool == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "ent: a command needs \"ent_redis\" in http{}");
        return NGX_ERROR;
    }

    if (ncmds == 0 || ncmds > NGX_ENT_REDIS_MAX_CMDS) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "ent: %ui redis commands in one call", ncmds);
        return NGX_ERROR;
    }

    if (pool->cluster) {
        return ngx_ent_redis_cluster_run(pool, r, cmds, ncmds, handler, data);
    }

    rc = ngx_ent_redis_pick(pool);

    if (rc == NULL) {
        pool->stats.rejected++;
        return NGX_DECLINED;
    }

    op = ngx_ent_op_create(r, ncmds * sizeof(redisReply *), handler, data);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->replies = (redisReply **) (op + 1);

    /* unsent bytes before ours: an append may compact the buffer */
    saved = rc->out_len - rc->out_pos;

    for (i = 0; i < ncmds; i++) {
        if (ngx_ent_redis_append(rc, cmds[i].argc, cmds[i].argv) != NGX_OK) {
            rc->out_len = rc->out_pos + saved;
            ngx_ent_op_free(op);
            return NGX_ERROR;
        }
    }

    op->ncmds = ncmds;

    ngx_ent_redis_queue(rc, op);

    return NGX_AGAIN;
}


ngx_int_t
ngx_ent_redis_replied(ngx_ent_op_t *op)
{
    ngx_uint_t   i;
    redisReply  *reply;

    if (op->status != NGX_ENT_OK || op->nreplies == 0) {
        return NGX_ERROR;
    }

    for (i = 0; i < op->nreplies; i++) {
        reply = op->replies[i];

        if (reply == NULL) {
            return NGX_ERROR;
        }

        if (reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, op->log, 0,
                          "redis answered \"%*s\"",
                          (size_t) ngx_min(reply->len, 128), reply->str);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * NGX_OK: ready to take a command; NGX_AGAIN: connecting (what it takes
 * goes out when it is up); NGX_DECLINED: down, or too far behind.
 */

ngx_int_t
ngx_ent_redis_usable(ngx_ent_redis_conn_t *rc)
{
    if (rc->ninflight >= NGX_ENT_REDIS_MAX_INFLIGHT
        || rc->out_len - rc->out_pos > NGX_ENT_REDIS_MAX_OUTPUT)
    {
        return NGX_DECLINED;
    }

    switch (rc->state) {

    case NGX_ENT_REDIS_READY:
        return NGX_OK;

    case NGX_ENT_REDIS_CONNECTING:
        return NGX_AGAIN;

    default:
        return NGX_DECLINED;
    }
}


/* op's commands are in rc's output: it waits for its replies there */

void
ngx_ent_redis_queue(ngx_ent_redis_conn_t *rc, ngx_ent_op_t *op)
{
    op->backend = rc;
    op->sent = ngx_current_msec;

    ngx_queue_insert_tail(&rc->inflight, &op->queue);
    rc->ninflight++;
    rc->pool->stats.queries++;

    /* busy: a graceful shutdown waits for the reply */
    if (rc->peer.connection) {
        rc->peer.connection->idle = 0;
    }

    if (rc->state == NGX_ENT_REDIS_CONNECTING) {
        /* a command waits for this connection: so does a worker stopping */
        rc->timer.cancelable = 0;
    }

    if (rc->state == NGX_ENT_REDIS_READY) {
        if (!rc->timer.timer_set) {
            ngx_ent_redis_arm(rc);
        }

        /* sent from the posted write event: one send for the whole burst */

        if (!rc->peer.connection->write->posted) {
            ngx_post_event(rc->peer.connection->write, &ngx_posted_events);
        }
    }
}


ngx_int_t
ngx_ent_redis_append(ngx_ent_redis_conn_t *rc, ngx_uint_t argc,
    ngx_str_t *argv)
{
    size_t          len;
    size_t          lens[16], *plens;
    ngx_uint_t      i;
    const u_char   *args[16], **pargs;

    if (argc == 0 || argc > 1048576) {
        return NGX_ERROR;
    }

    if (argc <= 16) {
        pargs = args;
        plens = lens;

    } else {
        pargs = ngx_alloc(argc * (sizeof(u_char *) + sizeof(size_t)),
                          rc->pool->log);
        if (pargs == NULL) {
            return NGX_ERROR;
        }

        plens = (size_t *) (pargs + argc);
    }

    for (i = 0; i < argc; i++) {
        pargs[i] = argv[i].data;
        plens[i] = argv[i].len;
    }

    len = ngx_ent_resp_size(argc, plens);

    if (ngx_ent_redis_reserve(rc, len) != NGX_OK) {
        if (pargs != args) {
            ngx_free(pargs);
        }

        return NGX_ERROR;
    }

    (void) ngx_ent_resp_write(rc->out + rc->out_len, argc, pargs, plens);
    rc->out_len += len;

    if (pargs != args) {
        ngx_free(pargs);
    }

    return NGX_OK;
}


/* bytes already in the protocol's form (a cluster redirection's resend) */

ngx_int_t
ngx_ent_redis_append_raw(ngx_ent_redis_conn_t *rc, u_char *data, size_t len)
{
    if (ngx_ent_redis_reserve(rc, len) != NGX_OK) {
        return NGX_ERROR;
    }

    rc->out_len = ngx_cpymem(rc->out + rc->out_len, data, len) - rc->out;

    return NGX_OK;
}


/* room for len more bytes of output */

static ngx_int_t
ngx_ent_redis_reserve(ngx_ent_redis_conn_t *rc, size_t len)
{
    u_char  *out;
    size_t   size;

    if (rc->out_len + len <= rc->out_size) {
        return NGX_OK;
    }

    if (rc->out_pos) {
        ngx_memmove(rc->out, rc->out + rc->out_pos, rc->out_len - rc->out_pos);
        rc->out_len -= rc->out_pos;
        rc->out_pos = 0;
    }

    if (rc->out_len + len <= rc->out_size) {
        return NGX_OK;
    }

    size = ngx_max(rc->out_size * 2, rc->out_len + len);
    size = ngx_max(size, 4096);

    out = ngx_alloc(size, rc->pool->log);
    if (out == NULL) {
        return NGX_ERROR;
    }

    if (rc->out) {
        ngx_memcpy(out, rc->out, rc->out_len);
        ngx_free(rc->out);
    }

    rc->out = out;
    rc->out_size = size;

    return NGX_OK;
}


static ngx_int_t
ngx_ent_redis_flush(ngx_ent_redis_conn_t *rc)
{
    if (ngx_ent_send(rc->peer.connection, rc->out, &rc->out_pos, rc->out_len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rc->out_pos == rc->out_len) {
        rc->out_pos = 0;
        rc->out_len = 0;
    }

    return NGX_OK;
}


/*
 * A reply parser that refuses arrays of more than
 * NGX_ENT_REDIS_MAX_ELEMENTS elements: hiredis allocates an array's
 * element pointers when it reads the count, so "*2000000000" alone would
 * otherwise cost gigabytes.  hiredis 1.x has "maxelements"; 0.14 (Debian
 * 12's) gets a createArray() that says no, which the reader reports as an
 * error (the connection is dropped).
 */

#if (HIREDIS_MAJOR == 0)

static redisReplyObjectFunctions  ngx_ent_redis_functions;
static void *(*ngx_ent_redis_create_array_next)(const redisReadTask *task,
    int elements);


static void *
ngx_ent_redis_create_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > NGX_ENT_REDIS_MAX_ELEMENTS) {
        return NULL;
    }

    return ngx_ent_redis_create_array_next(task, elements);
}

#endif


redisReader *
ngx_ent_redis_reader_create(void)
{
    redisReader  *reader;

    reader = redisReaderCreate();
    if (reader == NULL) {
        return NULL;
    }

#if (HIREDIS_MAJOR == 0)

    if (ngx_ent_redis_create_array_next == NULL) {
        ngx_ent_redis_functions = *reader->fn;
        ngx_ent_redis_create_array_next = reader->fn->createArray;
        ngx_ent_redis_functions.createArray = ngx_ent_redis_create_array;
    }

    reader->fn = &ngx_ent_redis_functions;

#else

    reader->maxelements = NGX_ENT_REDIS_MAX_ELEMENTS;

#endif

    return reader;
}


/*
 * Connects peer to addr without blocking, the connection's events going to
 * read and write with data: NGX_OK (connected), NGX_AGAIN (in progress) or
 * NGX_ERROR.
 */

ngx_int_t
ngx_ent_peer_connect(ngx_peer_connection_t *peer, ngx_addr_t *addr,
    ngx_log_t *log, void *data, ngx_event_handler_pt read,
    ngx_event_handler_pt write)
{
    ngx_int_t          rv;
    ngx_connection_t  *c;

    ngx_memzero(peer, sizeof(ngx_peer_connection_t));

    peer->sockaddr = addr->sockaddr;
    peer->socklen = addr->socklen;
    peer->name = &addr->name;
    peer->get = ngx_event_get_peer;
    peer->log = log;
    peer->log_error = NGX_ERROR_ERR;

    rv = ngx_event_connect_peer(peer);

    if (rv == NGX_ERROR || rv == NGX_BUSY || rv == NGX_DECLINED) {
        return NGX_ERROR;
    }

    c = peer->connection;

    c->data = data;
    c->read->handler = read;
    c->write->handler = write;
    c->log = log;
    c->read->log = log;
    c->write->log = log;

    return rv;
}


/*
 * Sends out[*pos .. len) on c as far as the socket takes it, the rest when
 * it is writable again (the write event armed): NGX_OK or NGX_ERROR.
 */

ngx_int_t
ngx_ent_send(ngx_connection_t *c, u_char *out, size_t *pos, size_t len)
{
    ssize_t  n;

    while (*pos < len) {

        n = c->send(c, out + *pos, len - *pos);

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN || n == 0) {
            return ngx_handle_write_event(c->write, 0);
        }

        *pos += n;
    }

    return NGX_OK;
}


static void
ngx_ent_redis_arm(ngx_ent_redis_conn_t *rc)
{
    /* a command in flight keeps a shutting-down worker until it ends */

    rc->timer.cancelable = 0;
    ngx_add_timer(&rc->timer, rc->pool->conf->timeout);
}


/* the socket, its timer, reader and unsent output go; the queue stays */

void
ngx_ent_redis_disconnect(ngx_ent_redis_conn_t *rc)
{
    if (rc->timer.timer_set) {
        ngx_del_timer(&rc->timer);
    }

    if (rc->peer.connection) {
        ngx_close_connection(rc->peer.connection);
        rc->peer.connection = NULL;
    }

    if (rc->reader) {
        redisReaderFree(rc->reader);
        rc->reader = NULL;
    }

    rc->out_len = 0;
    rc->out_pos = 0;
    rc->handshake = 0;
    rc->state = NGX_ENT_REDIS_DOWN;
    rc->up_since = 0;
}


void
ngx_ent_redis_close(ngx_ent_redis_conn_t *rc, ngx_uint_t status)
{
    ngx_queue_t           *q, failed;
    ngx_ent_op_t          *op;
    ngx_ent_redis_pool_t  *pool;

    pool = rc->pool;

    /*
     * a connection that stayed up a while and was then closed (an idle
     * timeout of the server or of a proxy between) starts its backoff
     * anew; one dropped at once (accepted and refused) goes on with it
     */

    if (rc->up_since
        && ngx_current_msec - rc->up_since >= pool->conf->backoff_max)
    {
        rc->backoff = 0;
    }

    ngx_ent_redis_disconnect(rc);

    ngx_queue_init(&failed);

    if (!ngx_queue_empty(&rc->inflight)) {
        ngx_queue_add(&failed, &rc->inflight);
        ngx_queue_init(&rc->inflight);
    }

    rc->ninflight = 0;

    /* the next connection attempt asks the sentinels first */
    pool->master_known = 0;

    /*
     * A cluster's master may have failed over: where are its slots now; a
     * node that serves none is not connected again (NGX_DONE)
     */

    if ((pool->cluster == NULL || ngx_ent_redis_cluster_lost(rc) != NGX_DONE)
        && !ngx_exiting && !ngx_terminate && !ngx_quit)
    {
        rc->backoff = ngx_ent_backoff_next(rc->backoff,
                                           pool->conf->backoff_min,
                                           pool->conf->backoff_max);
        rc->state = NGX_ENT_REDIS_BACKOFF;
        rc->timer.cancelable = 1;
        ngx_add_timer(&rc->timer, rc->backoff);
    }

    /* the connection is consistent again: now tell the waiters */

    while (!ngx_queue_empty(&failed)) {
        q = ngx_queue_head(&failed);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_ent_op_t, queue);

        if (status == NGX_ENT_TIMEOUT) {
            pool->stats.timeouts++;

        } else {
            pool->stats.errors++;
        }

        if (op->cluster) {
            ngx_ent_redis_cluster_fail(op, status);
            continue;
        }

        ngx_ent_op_complete(op, status);
    }
}


/* -READONLY, -LOADING, -MASTERDOWN: this server is no master (yet) */

static ngx_int_t
ngx_ent_redis_not_master(redisReply *reply)
{
    ngx_str_t  *e;

    static ngx_str_t  errors[] = {
        ngx_string("READONLY"),
        ngx_string("LOADING"),
        ngx_string("MASTERDOWN"),
        ngx_null_string
    };

    if (reply->type != REDIS_REPLY_ERROR || reply->str == NULL) {
        return NGX_DECLINED;
    }

    for (e = errors; e->len; e++) {
        if (reply->len >= e->len
            && ngx_strncmp(reply->str, e->data, e->len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* ROLE answers an array whose first element is "master", "slave", ... */

static ngx_int_t
ngx_ent_redis_role_master(redisReply *reply)
{
    redisReply  *role;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        return NGX_DECLINED;
    }

    role = reply->element[0];

    if ((role->type == REDIS_REPLY_STRING || role->type == REDIS_REPLY_STATUS)
        && role->len == sizeof("master") - 1
        && ngx_strncmp(role->str, "master", sizeof("master") - 1) == 0)
    {
        return NGX_OK;
    }

    return NGX_DECLINED;
}
