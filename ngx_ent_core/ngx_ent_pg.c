/*
 * ngx_ent core: the per-worker PostgreSQL pool.
 *
 * libpq owns each socket; nginx only watches it.  PQsocket() is wrapped
 * with ngx_get_connection() and registered level-triggered (libpq's
 * PQconnectPoll() and PQconsumeInput() expect level semantics); the write
 * event is registered only while libpq has something to send.  Connections
 * start with PQconnectStartParams() (numeric hostaddr resolved at
 * configuration time, or a unix socket: no DNS in a worker) and queries go
 * out with PQsendPrepare()/PQsendQueryPrepared(), each statement prepared
 * once per connection.  A connection is reused only when its transaction
 * status is idle.  Teardown frees the nginx connection first and leaves
 * closing the descriptor to PQfinish().
 *
 * A query that times out cannot be cancelled without blocking (libpq's cancel
 * opens a new connection synchronously), so the connection is dropped and
 * a fresh one started; "statement_timeout" is also sent at connect so that
 * the server abandons the query too.
 *
 * In worker 0 one more connection LISTENs on the invalidation channel; on
 * a reconnect (notifications may have been missed) it flushes the caches.
 */


#include "ngx_ent_core_int.h"


#define NGX_ENT_PG_DOWN         0
#define NGX_ENT_PG_BACKOFF      1
#define NGX_ENT_PG_CONNECTING   2
#define NGX_ENT_PG_IDLE         3
#define NGX_ENT_PG_PREPARING    4
#define NGX_ENT_PG_QUERYING     5
#define NGX_ENT_PG_LISTENING    6


typedef struct {
    ngx_ent_pg_pool_t         *pool;
    PGconn                    *conn;
    ngx_connection_t          *c;
    ino_t                      ino;
    ngx_uint_t                 state;
    ngx_ent_op_t              *op;
    PGresult                  *result;
    ngx_uint_t                 failed;
    ngx_event_t                timer;
    ngx_msec_t                 backoff;
    ngx_queue_t                queue;
    u_char                     prepared[NGX_ENT_PG_MAX_STMTS / 8];
    unsigned                   listener:1;
    unsigned                   ever_connected:1;
} ngx_ent_pg_conn_t;


struct ngx_ent_pg_pool_s {
    ngx_http_ent_core_main_conf_t  *cmcf;
    ngx_ent_pg_conf_t              *conf;
    ngx_log_t                      *log;
    ngx_ent_pg_conn_t              *conns;
    ngx_uint_t                      nconns;
    ngx_queue_t                     idle;
    ngx_queue_t                     waiting;
    ngx_uint_t                      up;          /* ready for queries */
    ngx_uint_t                      connecting;  /* will be, soon */
    time_t                          logged;
    ngx_ent_backend_stats_t         stats;

    /* a replica: how far behind it is (ent.replica_lag()), and when seen */
    ngx_msec_t                      lag;
    ngx_msec_t                      lag_at;
    unsigned                        lag_known:1;
    unsigned                        lag_busy:1;
    unsigned                        beat_busy:1;
};


static void ngx_ent_pg_connect(ngx_ent_pg_conn_t *pc);
static ngx_int_t ngx_ent_pg_wrap(ngx_ent_pg_conn_t *pc);
static void ngx_ent_pg_unwrap(ngx_ent_pg_conn_t *pc, ngx_uint_t closed);
static ngx_int_t ngx_ent_pg_want_write(ngx_ent_pg_conn_t *pc, ngx_uint_t on);
static void ngx_ent_pg_event_handler(ngx_event_t *ev);
static void ngx_ent_pg_timer_handler(ngx_event_t *ev);
static void ngx_ent_pg_connect_poll(ngx_ent_pg_conn_t *pc);
static void ngx_ent_pg_connected(ngx_ent_pg_conn_t *pc);
static void ngx_ent_pg_idle_read(ngx_ent_pg_conn_t *pc);
static void ngx_ent_pg_notifies(ngx_ent_pg_conn_t *pc);
static void ngx_ent_pg_io(ngx_ent_pg_conn_t *pc, ngx_uint_t write);
static void ngx_ent_pg_result(ngx_ent_pg_conn_t *pc, PGresult *res);
static void ngx_ent_pg_done(ngx_ent_pg_conn_t *pc);
static ngx_int_t ngx_ent_pg_rows(ngx_ent_op_t *op, PGresult *res);
static ngx_int_t ngx_ent_pg_send(ngx_ent_pg_conn_t *pc, ngx_ent_op_t *op);
static ngx_int_t ngx_ent_pg_flush(ngx_ent_pg_conn_t *pc);
static void ngx_ent_pg_release(ngx_ent_pg_conn_t *pc);
static void ngx_ent_pg_dispatch(ngx_ent_pg_pool_t *pool);
static void ngx_ent_pg_teardown(ngx_ent_pg_conn_t *pc);
static void ngx_ent_pg_close(ngx_ent_pg_conn_t *pc, ngx_uint_t status);
static void ngx_ent_pg_drop(ngx_ent_pg_conn_t *pc, ngx_uint_t status,
    ngx_uint_t fail_waiting);
static void ngx_ent_pg_fail_waiting(ngx_ent_pg_pool_t *pool);
static void ngx_ent_pg_cancel(ngx_ent_op_t *op);
static void ngx_ent_pg_queue_timeout(ngx_event_t *ev);
static ngx_uint_t ngx_ent_pg_usable(ngx_ent_pg_pool_t *pool);
static void ngx_ent_pg_revive(ngx_ent_pg_pool_t *pool);
static u_char *ngx_ent_pg_error(PGconn *conn, u_char *buf, size_t size);
static ngx_ent_pg_pool_t *ngx_ent_pg_pool_create(ngx_cycle_t *cycle,
    ngx_http_ent_core_main_conf_t *cmcf, ngx_ent_pg_conf_t *conf,
    ngx_uint_t listener);
static void ngx_ent_pg_pool_destroy(ngx_ent_pg_pool_t *pool);
static ngx_int_t ngx_ent_pg_submit(ngx_ent_pg_pool_t *pool,
    ngx_http_request_t *r, ngx_ent_pg_stmt_t *stmt, ngx_str_t *params,
    ngx_ent_op_handler_pt handler, void *data);
static ngx_uint_t ngx_ent_pg_lag_known(ngx_ent_pg_pool_t *pool);
static void ngx_ent_pg_replica_tick(ngx_event_t *ev);
static void ngx_ent_pg_replica_lag(ngx_ent_op_t *op);
static void ngx_ent_pg_replica_beat(ngx_ent_op_t *op);


static ngx_event_t  ngx_ent_pg_replica_timer;


/* worker */


ngx_int_t
ngx_ent_pg_init_worker(ngx_cycle_t *cycle, ngx_http_ent_core_main_conf_t *cmcf)
{
    ngx_event_t  *ev;

    /* each pool is in cmcf once made (pg_pool, pg_ro_pool) */

    if (ngx_ent_pg_pool_create(cycle, cmcf, &cmcf->pg,
                               cmcf->pg.listen && ngx_worker == 0)
        == NULL)
    {
        return NGX_ERROR;
    }

    if (!cmcf->pg_ro_enabled) {
        return NGX_OK;
    }

    if (ngx_ent_pg_pool_create(cycle, cmcf, &cmcf->pg_ro, 0) == NULL) {
        return NGX_ERROR;
    }

    ev = &ngx_ent_pg_replica_timer;
    ev->handler = ngx_ent_pg_replica_tick;
    ev->data = cmcf;
    ev->log = cycle->log;
    ev->cancelable = 1;

    ngx_add_timer(ev, 100);

    return NGX_OK;
}


static ngx_ent_pg_pool_t *
ngx_ent_pg_pool_create(ngx_cycle_t *cycle, ngx_http_ent_core_main_conf_t *cmcf,
    ngx_ent_pg_conf_t *conf, ngx_uint_t listener)
{
    ngx_uint_t          i;
    ngx_ent_pg_pool_t  *pool;
    ngx_ent_pg_conn_t  *pc;

    pool = ngx_pcalloc(cycle->pool, sizeof(ngx_ent_pg_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->cmcf = cmcf;
    pool->conf = conf;
    pool->log = cycle->log;
    pool->nconns = conf->pool_size + (listener ? 1 : 0);

    pool->conns = ngx_pcalloc(cycle->pool,
                              pool->nconns * sizeof(ngx_ent_pg_conn_t));
    if (pool->conns == NULL) {
        return NULL;
    }

    ngx_queue_init(&pool->idle);
    ngx_queue_init(&pool->waiting);

    for (i = 0; i < pool->nconns; i++) {
        pc = &pool->conns[i];

        pc->pool = pool;
        pc->listener = (i == conf->pool_size);
        pc->timer.handler = ngx_ent_pg_timer_handler;
        pc->timer.data = pc;
        pc->timer.log = pool->log;
    }

    /* connected once the pool is in place: an early answer may need it */

    if (conf == &cmcf->pg) {
        cmcf->pg_pool = pool;

    } else {
        cmcf->pg_ro_pool = pool;
    }

    for (i = 0; i < pool->nconns; i++) {
        ngx_ent_pg_connect(&pool->conns[i]);
    }

    return pool;
}


void
ngx_ent_pg_exit_worker(ngx_http_ent_core_main_conf_t *cmcf)
{
    if (ngx_ent_pg_replica_timer.timer_set) {
        ngx_del_timer(&ngx_ent_pg_replica_timer);
    }

    if (cmcf->pg_ro_pool) {
        ngx_ent_pg_pool_destroy(cmcf->pg_ro_pool);
        cmcf->pg_ro_pool = NULL;
    }

    ngx_ent_pg_pool_destroy(cmcf->pg_pool);
    cmcf->pg_pool = NULL;
}


static void
ngx_ent_pg_pool_destroy(ngx_ent_pg_pool_t *pool)
{
    ngx_uint_t          i;
    ngx_queue_t        *q;
    ngx_ent_op_t       *op;
    ngx_ent_pg_conn_t  *pc;

    while (!ngx_queue_empty(&pool->waiting)) {
        q = ngx_queue_head(&pool->waiting);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_ent_op_t, queue);
        ngx_ent_op_free(op);
    }

    for (i = 0; i < pool->nconns; i++) {
        pc = &pool->conns[i];

        if (pc->timer.timer_set) {
            ngx_del_timer(&pc->timer);
        }

        if (pc->op) {
            ngx_ent_op_free(pc->op);
            pc->op = NULL;
        }

        ngx_ent_pg_teardown(pc);
    }
}


void
ngx_ent_pg_stats(ngx_http_ent_core_main_conf_t *cmcf,
    ngx_ent_backend_stats_t *st)
{
    if (cmcf->pg_pool == NULL) {
        ngx_memzero(st, sizeof(ngx_ent_backend_stats_t));
        return;
    }

    *st = cmcf->pg_pool->stats;
}


/*
 * The replica's: its pool's counters, and its lag in ms (-1: unknown, or
 * not read lately); NGX_DECLINED without ent_postgres_replica.
 */

ngx_int_t
ngx_ent_pg_replica_stats(ngx_http_ent_core_main_conf_t *cmcf,
    ngx_ent_backend_stats_t *st, ngx_int_t *lag)
{
    ngx_ent_pg_pool_t  *pool;

    pool = cmcf->pg_ro_pool;

    if (pool == NULL) {
        return NGX_DECLINED;
    }

    *st = pool->stats;
    *lag = ngx_ent_pg_lag_known(pool) ? (ngx_int_t) pool->lag : -1;

    return NGX_OK;
}


/* the replica's lag was read within max_lag + 1 s */

static ngx_uint_t
ngx_ent_pg_lag_known(ngx_ent_pg_pool_t *pool)
{
    return pool->lag_known
           && ngx_current_msec - pool->lag_at <= pool->conf->max_lag + 1000;
}


/*
 * A cache fill: from the replica when it is up and known to be at most
 * max_lag behind, and no invalidation of the zone is more recent than
 * that (the replica may not have the change yet); else from the primary.
 */

ngx_int_t
ngx_ent_pg_query_read(ngx_http_request_t *r, ngx_ent_pg_stmt_t *stmt,
    ngx_str_t *params, ngx_ent_op_handler_pt handler, void *data,
    ngx_msec_t invalidated)
{
    ngx_msec_t                      max;
    ngx_ent_pg_pool_t              *pool;
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ngx_ent_core_main_conf();
    pool = cmcf ? cmcf->pg_ro_pool : NULL;

    if (pool == NULL) {
        return ngx_ent_pg_query(r, stmt, params, handler, data);
    }

    max = pool->conf->max_lag;

    if (pool->up == 0
        || !ngx_ent_pg_lag_known(pool)
        || pool->lag > max
        || (invalidated && ngx_current_msec - invalidated <= 2 * max + 1000)
        || (pool->stats.queued >= pool->conf->queue_size
            && ngx_queue_empty(&pool->idle)))
    {
        return ngx_ent_pg_query(r, stmt, params, handler, data);
    }

    return ngx_ent_pg_submit(pool, r, stmt, params, handler, data);
}


/*
 * Every (max_lag / 2, 100 ms to 1 s): each worker asks its replica how far
 * behind it is; worker 0 stamps the heartbeat on the primary.
 */

static void
ngx_ent_pg_replica_tick(ngx_event_t *ev)
{
    ngx_msec_t                      every;
    ngx_ent_pg_pool_t              *pool;
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ev->data;
    pool = cmcf->pg_ro_pool;

    if (ngx_exiting || ngx_quit || ngx_terminate || pool == NULL) {
        return;
    }

    if (!pool->lag_busy && pool->up) {
        if (ngx_ent_pg_submit(pool, NULL, cmcf->pg_lag_stmt, NULL,
                              ngx_ent_pg_replica_lag, pool)
            == NGX_AGAIN)
        {
            pool->lag_busy = 1;
        }
    }

    if (ngx_worker == 0 && !pool->beat_busy && cmcf->pg_pool->up) {
        if (ngx_ent_pg_submit(cmcf->pg_pool, NULL, cmcf->pg_beat_stmt, NULL,
                              ngx_ent_pg_replica_beat, pool)
            == NGX_AGAIN)
        {
            pool->beat_busy = 1;
        }
    }

    every = ngx_max(100, ngx_min(1000, pool->conf->max_lag / 2));
    ngx_add_timer(ev, every);
}


static void
ngx_ent_pg_replica_lag(ngx_ent_op_t *op)
{
    ngx_ent_pg_pool_t *pool = op->data;

    size_t          len;
    ngx_int_t       n;
    const u_char   *data;

    pool->lag_busy = 0;

    if (op->status != NGX_ENT_OK
        || ngx_ent_rows_cell(&op->rows, 0, 0, &data, &len) != 0
        || data == NULL
        || (n = ngx_atoi((u_char *) data, len)) == NGX_ERROR)
    {
        /* a replica that cannot say is not read from */
        pool->lag_known = 0;
        return;
    }

    pool->lag = (ngx_msec_t) n;
    pool->lag_at = ngx_current_msec;
    pool->lag_known = 1;
}


static void
ngx_ent_pg_replica_beat(ngx_ent_op_t *op)
{
    ngx_ent_pg_pool_t *pool = op->data;

    pool->beat_busy = 0;
}


/* connections */


static void
ngx_ent_pg_connect(ngx_ent_pg_conn_t *pc)
{
    u_char              errstr[256];
    ngx_ent_pg_pool_t  *pool;

    pool = pc->pool;

    pc->conn = PQconnectStartParams(pool->conf->keywords,
                                    pool->conf->values, 0);

    if (pc->conn == NULL) {
        ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                      "PQconnectStartParams() failed: out of memory");
        ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        return;
    }

    if (PQstatus(pc->conn) == CONNECTION_BAD
        || PQsetnonblocking(pc->conn, 1) == -1)
    {
        (void) ngx_ent_pg_error(pc->conn, errstr, sizeof(errstr));
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "postgres connect to \"%V\" failed: %s",
                      &pool->conf->display, errstr);
        ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        return;
    }

    if (ngx_ent_pg_wrap(pc) != NGX_OK) {
        ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        return;
    }

    pc->state = NGX_ENT_PG_CONNECTING;

    if (!pc->listener) {
        pool->connecting++;
    }

    pc->timer.cancelable = 1;
    ngx_add_timer(&pc->timer, pool->conf->connect_timeout);

    /* libpq: wait until the socket is writable, then PQconnectPoll() */

    if (ngx_ent_pg_want_write(pc, 1) != NGX_OK) {
        ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
    }
}


static ngx_int_t
ngx_ent_pg_wrap(ngx_ent_pg_conn_t *pc)
{
    int                fd;
    struct stat        st;
    ngx_log_t         *log;
    ngx_connection_t  *c;

    log = pc->pool->log;

    fd = PQsocket(pc->conn);

    if (fd == -1) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "postgres: no socket");
        return NGX_ERROR;
    }

    if (fstat(fd, &st) == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno, "fstat() failed");
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = pc;
    c->log = log;
    c->read->log = log;
    c->write->log = log;
    c->read->handler = ngx_ent_pg_event_handler;
    c->write->handler = ngx_ent_pg_event_handler;

    pc->c = c;
    pc->ino = st.st_ino;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_ent_pg_unwrap(pc, 1);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_ent_pg_unwrap(ngx_ent_pg_conn_t *pc, ngx_uint_t closed)
{
    ngx_uint_t         flags;
    ngx_connection_t  *c;

    c = pc->c;

    if (c == NULL) {
        return;
    }

    /*
     * libpq closes the descriptor (at PQfinish(), or on its own when it
     * sees the connection drop); a closed one is gone from epoll already
     */

    if (pc->conn == NULL || PQsocket(pc->conn) != c->fd) {
        closed = 1;
    }

    flags = closed ? NGX_CLOSE_EVENT : 0;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, flags);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, flags);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    pc->c = NULL;
}


static ngx_int_t
ngx_ent_pg_want_write(ngx_ent_pg_conn_t *pc, ngx_uint_t on)
{
    ngx_event_t  *wev;

    wev = pc->c->write;

    if (on && !wev->active) {
        return ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }

    if (!on && wev->active) {
        return ngx_del_event(wev, NGX_WRITE_EVENT, 0);
    }

    return NGX_OK;
}


static void
ngx_ent_pg_event_handler(ngx_event_t *ev)
{
    ngx_connection_t   *c;
    ngx_ent_pg_conn_t  *pc;

    c = ev->data;
    pc = c->data;

    if (c->close) {
        /* graceful shutdown: an idle connection goes now */
        ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        return;
    }

    switch (pc->state) {

    case NGX_ENT_PG_CONNECTING:
        ngx_ent_pg_connect_poll(pc);
        return;

    case NGX_ENT_PG_IDLE:
        if (ev->write) {
            (void) ngx_ent_pg_want_write(pc, 0);
            return;
        }

        ngx_ent_pg_idle_read(pc);
        return;

    case NGX_ENT_PG_PREPARING:
    case NGX_ENT_PG_QUERYING:
    case NGX_ENT_PG_LISTENING:
        ngx_ent_pg_io(pc, ev->write);
        return;

    default:
        ngx_log_error(NGX_LOG_ALERT, pc->pool->log, 0,
                      "postgres: event in state %ui", pc->state);
        ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        return;
    }
}


static void
ngx_ent_pg_timer_handler(ngx_event_t *ev)
{
    ngx_ent_pg_conn_t  *pc;

    pc = ev->data;

    switch (pc->state) {

    case NGX_ENT_PG_BACKOFF:
        pc->state = NGX_ENT_PG_DOWN;
        ngx_ent_pg_connect(pc);
        return;

    case NGX_ENT_PG_CONNECTING:
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, NGX_ETIMEDOUT,
                      "postgres connect to \"%V\" timed out",
                      &pc->pool->conf->display);
        ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        return;

    case NGX_ENT_PG_PREPARING:
    case NGX_ENT_PG_QUERYING:
    case NGX_ENT_PG_LISTENING:
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, NGX_ETIMEDOUT,
                      "postgres query timed out after %Mms, "
                      "dropping the connection", pc->pool->conf->query_timeout);
        pc->pool->stats.timeouts++;
        pc->backoff = 0;
        ngx_ent_pg_close(pc, NGX_ENT_TIMEOUT);
        return;

    default:
        return;
    }
}


static void
ngx_ent_pg_connect_poll(ngx_ent_pg_conn_t *pc)
{
    int                         fd;
    u_char                      errstr[256];
    struct stat                 st;
    ngx_ent_pg_pool_t          *pool;
    PostgresPollingStatusType   rc;

    pool = pc->pool;

    rc = PQconnectPoll(pc->conn);

    if (rc == PGRES_POLLING_FAILED) {
        (void) ngx_ent_pg_error(pc->conn, errstr, sizeof(errstr));
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "postgres connect to \"%V\" failed: %s",
                      &pool->conf->display, errstr);
        ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        return;
    }

    /*
     * libpq may close its socket and open another one while connecting
     * (SSL fallback, another address); the number may even be reused,
     * so compare the socket itself
     */

    fd = PQsocket(pc->conn);

    if (fd == -1 || fstat(fd, &st) == -1) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "postgres connect to \"%V\" lost its socket",
                      &pool->conf->display);
        ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        return;
    }

    if (fd != pc->c->fd || st.st_ino != pc->ino) {
        ngx_ent_pg_unwrap(pc, 1);

        if (ngx_ent_pg_wrap(pc) != NGX_OK) {
            ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
            return;
        }
    }

    switch (rc) {

    case PGRES_POLLING_READING:
        if (ngx_ent_pg_want_write(pc, 0) != NGX_OK) {
            ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        }
        return;

    case PGRES_POLLING_WRITING:
        if (ngx_ent_pg_want_write(pc, 1) != NGX_OK) {
            ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        }
        return;

    case PGRES_POLLING_OK:
        ngx_ent_pg_connected(pc);
        return;

    default:
        /* PGRES_POLLING_ACTIVE is not used by libpq any more */
        return;
    }
}


static void
ngx_ent_pg_connected(ngx_ent_pg_conn_t *pc)
{
    ngx_ent_pg_pool_t  *pool;

    pool = pc->pool;

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (ngx_ent_pg_want_write(pc, 0) != NGX_OK) {
        ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        return;
    }

    pool->stats.connected++;

    if (!pc->listener) {
        pool->connecting--;
        pool->up++;
    }

    if (pc->ever_connected) {
        pool->stats.reconnects++;
        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                      "postgres connection to \"%V\" re-established",
                      &pool->conf->display);
    }

    pc->backoff = 0;

    if (pc->listener) {

        /* connected: a close from here on counts it out again */
        pc->state = NGX_ENT_PG_LISTENING;

        if (!PQsendQuery(pc->conn, "LISTEN " NGX_ENT_NOTIFY_CHANNEL)) {
            ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
            return;
        }

        pc->timer.cancelable = 1;
        ngx_add_timer(&pc->timer, pool->conf->query_timeout);

        if (ngx_ent_pg_flush(pc) != NGX_OK) {
            ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        }

        return;
    }

    pc->ever_connected = 1;
    pc->c->idle = 1;
    pc->state = NGX_ENT_PG_IDLE;
    ngx_queue_insert_tail(&pool->idle, &pc->queue);

    ngx_ent_pg_dispatch(pool);
}


static void
ngx_ent_pg_idle_read(ngx_ent_pg_conn_t *pc)
{
    u_char  errstr[256];

    if (!PQconsumeInput(pc->conn) || PQstatus(pc->conn) == CONNECTION_BAD) {
        (void) ngx_ent_pg_error(pc->conn, errstr, sizeof(errstr));
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "postgres connection to \"%V\" lost: %s",
                      &pc->pool->conf->display, errstr);
        ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        return;
    }

    if (pc->listener) {
        ngx_ent_pg_notifies(pc);
    }
}


static void
ngx_ent_pg_notifies(ngx_ent_pg_conn_t *pc)
{
    PGnotify  *n;

    while ((n = PQnotifies(pc->conn)) != NULL) {

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, pc->pool->log, 0,
                       "ent invalidate \"%s\" from %d", n->extra,
                       n->be_pid);

        ngx_ent_cache_invalidate(pc->pool->cmcf, (u_char *) n->extra,
                                 ngx_strlen(n->extra), pc->pool->log);
        PQfreemem(n);
    }
}


static void
ngx_ent_pg_io(ngx_ent_pg_conn_t *pc, ngx_uint_t write)
{
    u_char     errstr[256];
    PGresult  *res;

    if (write) {
        if (ngx_ent_pg_flush(pc) != NGX_OK) {
            ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        }

        return;
    }

    if (!PQconsumeInput(pc->conn)) {
        (void) ngx_ent_pg_error(pc->conn, errstr, sizeof(errstr));
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "postgres connection to \"%V\" lost during a query: %s",
                      &pc->pool->conf->display, errstr);
        ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
        return;
    }

    while (!PQisBusy(pc->conn)) {

        res = PQgetResult(pc->conn);

        if (res == NULL) {
            ngx_ent_pg_done(pc);
            return;
        }

        ngx_ent_pg_result(pc, res);
    }
}


static void
ngx_ent_pg_result(ngx_ent_pg_conn_t *pc, PGresult *res)
{
    char            *msg, *state;
    ngx_ent_op_t    *op;
    ExecStatusType   st;

    st = PQresultStatus(res);

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        if (pc->result == NULL && !pc->failed) {
            pc->result = res;
            return;
        }

        PQclear(res);
        return;
    }

    msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    /* the primary message only: DETAIL may quote parameter values */

    op = pc->op;

    ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                  "postgres %s \"%s\" failed: %s (SQLSTATE %s)",
                  pc->state == NGX_ENT_PG_PREPARING ? "prepare of" : "query",
                  op && op->stmt ? op->stmt->name : "LISTEN",
                  msg ? msg : PQresStatus(st), state ? state : "-----");

    if (op && state) {
        (void) ngx_cpystrn(op->sqlstate, (u_char *) state,
                           sizeof(op->sqlstate));
    }

    pc->failed = 1;

    if (pc->result) {
        PQclear(pc->result);
        pc->result = NULL;
    }

    PQclear(res);
}


static void
ngx_ent_pg_done(ngx_ent_pg_conn_t *pc)
{
    ngx_int_t           rc;
    ngx_uint_t          status, failed, prepared;
    ngx_ent_op_t       *op;
    ngx_ent_pg_pool_t  *pool;

    pool = pc->pool;

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    failed = pc->failed;
    pc->failed = 0;

    if (PQtransactionStatus(pc->conn) != PQTRANS_IDLE) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "postgres connection not idle after a query, "
                      "dropping it");

        if (pc->result) {
            PQclear(pc->result);
            pc->result = NULL;
        }

        pool->stats.errors++;
        pc->backoff = 0;
        ngx_ent_pg_close(pc, NGX_ENT_ERROR);
        return;
    }

    if (pc->state == NGX_ENT_PG_LISTENING) {

        if (pc->result) {
            PQclear(pc->result);
            pc->result = NULL;
        }

        if (failed) {
            ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
            return;
        }

        /* notifications sent while nobody listened are lost */

        ngx_ent_cache_listening(pool->cmcf, 1);

        pc->ever_connected = 1;
        pc->c->idle = 1;
        pc->state = NGX_ENT_PG_IDLE;

        ngx_ent_pg_notifies(pc);
        return;
    }

    op = pc->op;
    prepared = 0;

    if (pc->state == NGX_ENT_PG_PREPARING) {

        if (pc->result) {
            PQclear(pc->result);
            pc->result = NULL;
        }

        if (!failed) {
            pc->prepared[op->stmt->index / 8] |= 1 << (op->stmt->index % 8);

            if (ngx_ent_pg_send(pc, op) == NGX_OK) {
                return;
            }

            ngx_ent_pg_close(pc, NGX_ENT_UNAVAILABLE);
            return;
        }

        prepared = 1;
    }

    status = NGX_ENT_OK;

    if (failed || prepared) {
        /* 57014: cancelled by statement_timeout, a timeout all the same */
        status = ngx_strcmp(op->sqlstate, "57014") == 0 ? NGX_ENT_TIMEOUT
                                                         : NGX_ENT_ERROR;
        pool->stats.errors++;

        if (ngx_strcmp(op->sqlstate, "0A000") == 0
            || ngx_strcmp(op->sqlstate, "26000") == 0)
        {
            /*
             * "cached plan must not change result type" (a migration
             * replaced a function), or a statement the server forgot:
             * this connection's prepared statements are stale, and a new
             * connection prepares them again
             */

            ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                          "postgres: prepared statements are out of date "
                          "(SQLSTATE %s), reconnecting", op->sqlstate);

            if (pc->result) {
                PQclear(pc->result);
                pc->result = NULL;
            }

            ngx_ent_pg_drop(pc, status, 0);
            ngx_ent_pg_dispatch(pool);
            return;
        }

    } else if (pc->result) {
        /* rows for a query, only the count for a command */
        rc = ngx_ent_pg_rows(op, pc->result);

        if (rc != NGX_OK) {
            status = NGX_ENT_ERROR;
            pool->stats.errors++;
        }
    }

    if (pc->result) {
        PQclear(pc->result);
        pc->result = NULL;
    }

    pc->op = NULL;
    pool->stats.busy--;

    ngx_ent_pg_release(pc);

    ngx_ent_op_complete(op, status);

    ngx_ent_pg_dispatch(pool);
}


static ngx_int_t
ngx_ent_pg_rows(ngx_ent_op_t *op, PGresult *res)
{
    int             nrows, ncols, i, j;
    char           *tuples;
    size_t          size;
    u_char         *p;

    tuples = PQcmdTuples(res);
    op->affected = (tuples && *tuples) ? (ngx_uint_t) ngx_atoi((u_char *)
                                              tuples, ngx_strlen(tuples)) : 0;

    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        return NGX_OK;
    }

    nrows = PQntuples(res);
    ncols = PQnfields(res);

    if (ncols
        && (ngx_uint_t) nrows > NGX_ENT_ROWS_MAX_CELLS / (ngx_uint_t) ncols)
    {
        ngx_log_error(NGX_LOG_ERR, op->log, 0,
                      "postgres result too large: %d rows of %d columns",
                      nrows, ncols);
        return NGX_ERROR;
    }

    size = ngx_ent_rows_header_size();

    for (i = 0; i < nrows; i++) {
        for (j = 0; j < ncols; j++) {
            size += ngx_ent_rows_cell_size(PQgetlength(res, i, j));
        }
    }

    op->blob = ngx_alloc(size, op->log);
    if (op->blob == NULL) {
        return NGX_ERROR;
    }

    p = ngx_ent_rows_put_header(op->blob, nrows, ncols);

    for (i = 0; i < nrows; i++) {
        for (j = 0; j < ncols; j++) {
            p = ngx_ent_rows_put_cell(p, (u_char *) PQgetvalue(res, i, j),
                                      PQgetlength(res, i, j),
                                      PQgetisnull(res, i, j));
        }
    }

    if (ngx_ent_rows_open(&op->rows, op->blob, size) != 0) {
        ngx_log_error(NGX_LOG_ALERT, op->log, 0, "ent rows encoding failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* queries */


ngx_int_t
ngx_ent_pg_query(ngx_http_request_t *r, ngx_ent_pg_stmt_t *stmt,
    ngx_str_t *params, ngx_ent_op_handler_pt handler, void *data)
{
    ngx_ent_pg_pool_t              *pool;
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ngx_ent_core_main_conf();
    pool = cmcf ? cmcf->pg_pool : NULL;

    if (pool == NULL) {
        ngx_log_error(NGX_LOG_ERR, r ? r->connection->log : ngx_cycle->log,
                      0, "ent: a query needs \"ent_postgres\" in http{}");
        return NGX_ERROR;
    }

    return ngx_ent_pg_submit(pool, r, stmt, params, handler, data);
}


static ngx_int_t
ngx_ent_pg_submit(ngx_ent_pg_pool_t *pool, ngx_http_request_t *r,
    ngx_ent_pg_stmt_t *stmt, ngx_str_t *params, ngx_ent_op_handler_pt handler,
    void *data)
{
    u_char        *p;
    size_t         extra;
    ngx_uint_t     i;
    ngx_log_t     *log;
    ngx_ent_op_t  *op;

    log = r ? r->connection->log : ngx_cycle->log;

    if (!ngx_ent_pg_usable(pool)) {
        ngx_ent_pg_revive(pool);

        if (!ngx_ent_pg_usable(pool)) {
            pool->stats.rejected++;
            return NGX_DECLINED;
        }
    }

    if (pool->stats.queued >= pool->conf->queue_size
        && ngx_queue_empty(&pool->idle))
    {
        pool->stats.rejected++;

        if (pool->logged != ngx_time()) {
            pool->logged = ngx_time();
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "postgres queue is full (%ui waiting)",
                          pool->stats.queued);
        }

        return NGX_DECLINED;
    }

    extra = stmt->nparams * sizeof(char *);

    for (i = 0; i < stmt->nparams; i++) {
        if (params[i].data == NULL) {
            continue;
        }

        if (ngx_strlchr(params[i].data, params[i].data + params[i].len, '\0')
            != NULL)
        {
            ngx_log_error(NGX_LOG_INFO, log, 0,
                          "ent: a query parameter contains a NUL byte");
            return NGX_ERROR;
        }

        extra += params[i].len + 1;
    }

    op = ngx_ent_op_create(r, extra, handler, data);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->stmt = stmt;
    op->backend = pool;
    op->values = (char **) (op + 1);

    p = (u_char *) (op->values + stmt->nparams);

    for (i = 0; i < stmt->nparams; i++) {
        if (params[i].data == NULL) {
            op->values[i] = NULL;
            continue;
        }

        op->values[i] = (char *) p;
        p = ngx_cpymem(p, params[i].data, params[i].len);
        *p++ = '\0';
    }

    pool->stats.queries++;

    ngx_queue_insert_tail(&pool->waiting, &op->queue);
    pool->stats.queued++;

    op->cancel = ngx_ent_pg_cancel;
    op->timer.handler = ngx_ent_pg_queue_timeout;
    ngx_add_timer(&op->timer, pool->conf->queue_timeout);

    ngx_ent_pg_dispatch(pool);

    if (op->cancel && !ngx_ent_pg_usable(pool)) {
        /* every connection failed just now: never complete in the call */
        ngx_ent_pg_cancel(op);
        pool->stats.rejected++;
        return NGX_DECLINED;
    }

    return NGX_AGAIN;
}


static ngx_uint_t
ngx_ent_pg_usable(ngx_ent_pg_pool_t *pool)
{
    return pool->up > 0 || pool->connecting > 0;
}


/*
 * A worker shutting down closed its idle connections (nginx does, once);
 * a request it still serves may need one: connect one again, without
 * backoff, its timer keeping the worker until it is up or has failed.
 */

static void
ngx_ent_pg_revive(ngx_ent_pg_pool_t *pool)
{
    ngx_uint_t          i;
    ngx_ent_pg_conn_t  *pc;

    if (!ngx_exiting && !ngx_quit) {
        return;
    }

    for (i = 0; i < pool->nconns; i++) {
        pc = &pool->conns[i];

        if (pc->listener || pc->state != NGX_ENT_PG_DOWN) {
            continue;
        }

        ngx_ent_pg_connect(pc);

        if (pc->timer.timer_set) {
            pc->timer.cancelable = 0;
        }

        return;
    }
}


static void
ngx_ent_pg_dispatch(ngx_ent_pg_pool_t *pool)
{
    ngx_queue_t        *q;
    ngx_ent_op_t       *op;
    ngx_ent_pg_conn_t  *pc;

    while (!ngx_queue_empty(&pool->waiting) && !ngx_queue_empty(&pool->idle)) {

        q = ngx_queue_head(&pool->idle);
        ngx_queue_remove(q);
        pc = ngx_queue_data(q, ngx_ent_pg_conn_t, queue);

        q = ngx_queue_head(&pool->waiting);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_ent_op_t, queue);

        pool->stats.queued--;
        op->cancel = NULL;

        if (op->timer.timer_set) {
            ngx_del_timer(&op->timer);
        }

        pc->c->idle = 0;
        pc->op = op;
        pool->stats.busy++;

        if (ngx_ent_pg_send(pc, op) != NGX_OK) {
            /* the query goes back to the head of the queue */

            pc->op = NULL;
            pool->stats.busy--;

            ngx_queue_insert_head(&pool->waiting, &op->queue);
            pool->stats.queued++;
            op->cancel = ngx_ent_pg_cancel;
            ngx_add_timer(&op->timer, pool->conf->queue_timeout);

            /* not yet: the caller may be inside ngx_ent_pg_query() */
            pc->state = NGX_ENT_PG_QUERYING;
            ngx_ent_pg_drop(pc, NGX_ENT_UNAVAILABLE, 0);
        }
    }
}


static ngx_int_t
ngx_ent_pg_send(ngx_ent_pg_conn_t *pc, ngx_ent_op_t *op)
{
    int                 ok;
    ngx_uint_t          idx;
    ngx_ent_pg_stmt_t  *stmt;

    stmt = op->stmt;
    idx = stmt->index;

    if (pc->prepared[idx / 8] & (1 << (idx % 8))) {
        ok = PQsendQueryPrepared(pc->conn, stmt->name, (int) stmt->nparams,
                                 (const char * const *) op->values, NULL,
                                 NULL, 0);
        pc->state = NGX_ENT_PG_QUERYING;

    } else {
        ok = PQsendPrepare(pc->conn, stmt->name, stmt->sql,
                           (int) stmt->nparams, NULL);
        pc->state = NGX_ENT_PG_PREPARING;
    }

    if (!ok) {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "postgres send failed: %s", PQerrorMessage(pc->conn));
        return NGX_ERROR;
    }

    op->sent = ngx_current_msec;

    if (!pc->timer.timer_set) {
        /* a query in flight keeps a shutting-down worker until it ends */
        pc->timer.cancelable = 0;
        ngx_add_timer(&pc->timer, pc->pool->conf->query_timeout);
    }

    return ngx_ent_pg_flush(pc);
}


static ngx_int_t
ngx_ent_pg_flush(ngx_ent_pg_conn_t *pc)
{
    int  rc;

    rc = PQflush(pc->conn);

    if (rc == -1) {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                      "postgres flush failed: %s", PQerrorMessage(pc->conn));
        return NGX_ERROR;
    }

    return ngx_ent_pg_want_write(pc, rc == 1);
}


static void
ngx_ent_pg_release(ngx_ent_pg_conn_t *pc)
{
    ngx_ent_pg_pool_t  *pool;

    pool = pc->pool;

    /*
     * Also while shutting down: the worker still serves requests that may
     * query again; an idle connection keeps no timer, so it does not hold
     * the worker back.
     */

    pc->state = NGX_ENT_PG_IDLE;
    pc->c->idle = 1;
    ngx_queue_insert_tail(&pool->idle, &pc->queue);
}


static void
ngx_ent_pg_teardown(ngx_ent_pg_conn_t *pc)
{
    if (pc->listener && pc->state == NGX_ENT_PG_IDLE) {
        /* the caches learn that nobody listens now */
        ngx_ent_cache_listening(pc->pool->cmcf, 0);
    }

    ngx_ent_pg_unwrap(pc, 0);

    if (pc->result) {
        PQclear(pc->result);
        pc->result = NULL;
    }

    if (pc->conn) {
        PQfinish(pc->conn);
        pc->conn = NULL;
    }

    pc->failed = 0;
    ngx_memzero(pc->prepared, sizeof(pc->prepared));

    pc->state = NGX_ENT_PG_DOWN;
}


static void
ngx_ent_pg_close(ngx_ent_pg_conn_t *pc, ngx_uint_t status)
{
    ngx_ent_pg_drop(pc, status, 1);
}


static void
ngx_ent_pg_drop(ngx_ent_pg_conn_t *pc, ngx_uint_t status,
    ngx_uint_t fail_waiting)
{
    ngx_uint_t          was;
    ngx_ent_op_t       *op;
    ngx_ent_pg_pool_t  *pool;

    pool = pc->pool;
    was = pc->state;

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (was == NGX_ENT_PG_IDLE && !pc->listener) {
        ngx_queue_remove(&pc->queue);
    }

    if (was >= NGX_ENT_PG_IDLE) {
        pool->stats.connected--;

        if (!pc->listener) {
            pool->up--;
        }
    }

    if (was == NGX_ENT_PG_CONNECTING && !pc->listener) {
        pool->connecting--;
    }

    op = pc->op;
    pc->op = NULL;

    if (op) {
        pool->stats.busy--;
    }

    ngx_ent_pg_teardown(pc);

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        pc->backoff = ngx_ent_backoff_next(pc->backoff,
                                           pool->conf->backoff_min,
                                           pool->conf->backoff_max);
        pc->state = NGX_ENT_PG_BACKOFF;
        pc->timer.cancelable = 1;
        ngx_add_timer(&pc->timer, pc->backoff);
    }

    /* the pool is consistent again: now tell the waiters */

    if (op) {
        ngx_ent_op_complete(op, status);
    }

    if (fail_waiting && !ngx_ent_pg_usable(pool)) {
        ngx_ent_pg_fail_waiting(pool);
    }
}


static void
ngx_ent_pg_fail_waiting(ngx_ent_pg_pool_t *pool)
{
    ngx_queue_t    *q, failed;
    ngx_ent_op_t   *op;

    if (ngx_queue_empty(&pool->waiting)) {
        return;
    }

    ngx_queue_init(&failed);

    while (!ngx_queue_empty(&pool->waiting)) {
        q = ngx_queue_head(&pool->waiting);
        ngx_queue_remove(q);
        ngx_queue_insert_tail(&failed, q);
        pool->stats.queued--;
        pool->stats.rejected++;

        op = ngx_queue_data(q, ngx_ent_op_t, queue);
        op->cancel = NULL;
        op->backend = NULL;
    }

    while (!ngx_queue_empty(&failed)) {
        q = ngx_queue_head(&failed);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_ent_op_t, queue);
        ngx_ent_op_complete(op, NGX_ENT_UNAVAILABLE);
    }
}


static void
ngx_ent_pg_cancel(ngx_ent_op_t *op)
{
    ngx_ent_pg_pool_t  *pool;

    /* the request went away while its query was still queued */

    pool = op->backend;

    ngx_queue_remove(&op->queue);
    pool->stats.queued--;

    ngx_ent_op_free(op);
}


static void
ngx_ent_pg_queue_timeout(ngx_event_t *ev)
{
    ngx_ent_op_t       *op;
    ngx_ent_pg_pool_t  *pool;

    op = ev->data;
    pool = op->backend;

    ngx_queue_remove(&op->queue);
    pool->stats.queued--;
    pool->stats.timeouts++;
    op->cancel = NULL;

    if (pool->logged != ngx_time()) {
        pool->logged = ngx_time();
        ngx_log_error(NGX_LOG_ERR, op->log, 0,
                      "postgres: no free connection within %Mms",
                      pool->conf->queue_timeout);
    }

    ngx_ent_op_complete(op, NGX_ENT_TIMEOUT);
}


static u_char *
ngx_ent_pg_error(PGconn *conn, u_char *buf, size_t size)
{
    u_char  *p, *last;

    /* libpq's message, on one line; it never holds the password */

    p = ngx_cpystrn(buf, (u_char *) (conn ? PQerrorMessage(conn)
                                          : "out of memory"), size);

    for (last = buf; last < p; last++) {
        if (*last == '\n' || *last == '\r') {
            *last = ' ';
        }
    }

    while (p > buf && p[-1] == ' ') {
        *--p = '\0';
    }

    return p;
}
