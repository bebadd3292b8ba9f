/*
 * ngx_ent core: where the Redis master is, from Redis Sentinel.
 *
 *     ent_redis sentinel=10.0.0.1:26379,10.0.0.2:26379 master=mymaster ...;
 *
 * One connection per worker to one sentinel at a time, owned by nginx
 * like the pool's (ngx_event_connect_peer(), event handlers, timers; the
 * hiredis reader only parses).  In one write it sends
 *
 *     [AUTH <sentinel_password>]
 *     SENTINEL get-master-addr-by-name <master>
 *     SUBSCRIBE +switch-master
 *
 * and hands the address of the first answer to the pool
 * (ngx_ent_redis_master_found()).  The connection then stays subscribed:
 * a "+switch-master" message for our master moves the pool at once, when
 * the sentinels promote a replica.  The pool also asks again on its own
 * (ngx_ent_redis_sentinel_discover()) after any error on a master
 * connection, which restarts this connection: so a lost message, or a
 * subscription that is down, costs one connection error, no more.
 *
 * A sentinel that does not answer, refuses, does not know the master or
 * reports something other than an IP literal is logged and the next one
 * is asked; when none answered, the round starts again after a backoff
 * (the pool's backoff= bounds).  Sentinels report IP addresses: a
 * hostname (announce-hostnames) is refused, never resolved, since
 * resolving would block the worker.
 */


#include "ngx_ent_core_int.h"


#define NGX_ENT_SENTINEL_IDLE        0
#define NGX_ENT_SENTINEL_CONNECTING  1
#define NGX_ENT_SENTINEL_QUERY       2     /* the address is awaited */
#define NGX_ENT_SENTINEL_SUBSCRIBED  3
#define NGX_ENT_SENTINEL_BACKOFF     4

#define NGX_ENT_SENTINEL_DEFAULT_PORT  26379
#define NGX_ENT_SENTINEL_MAX_NAME      256


struct ngx_ent_redis_sentinel_s {
    ngx_ent_redis_conf_t      *conf;
    ngx_ent_redis_pool_t      *pool;
    ngx_log_t                 *log;
    ngx_peer_connection_t      peer;
    redisReader               *reader;
    ngx_event_t                timer;
    ngx_uint_t                 state;
    ngx_uint_t                 current;      /* the sentinel asked */
    ngx_uint_t                 tried;        /* failed in this round */
    ngx_uint_t                 nreplies;     /* on this connection */
    ngx_uint_t                 auth;         /* 1 with a password */
    ngx_uint_t                 gen;          /* connections closed */
    ngx_uint_t                 again;        /* asked after the answer */
    ngx_msec_t                 backoff;
    u_char                    *out;
    size_t                     out_len;
    size_t                     out_pos;
};


static void ngx_ent_redis_sentinel_ask(ngx_ent_redis_sentinel_t *sn);
static void ngx_ent_redis_sentinel_connected(ngx_ent_redis_sentinel_t *sn);
static void ngx_ent_redis_sentinel_fail(ngx_ent_redis_sentinel_t *sn,
    ngx_err_t err, const char *fmt, ...);
static void ngx_ent_redis_sentinel_close(ngx_ent_redis_sentinel_t *sn);
static void ngx_ent_redis_sentinel_write_handler(ngx_event_t *wev);
static void ngx_ent_redis_sentinel_read_handler(ngx_event_t *rev);
static void ngx_ent_redis_sentinel_timer_handler(ngx_event_t *ev);
static ngx_int_t ngx_ent_redis_sentinel_reply(ngx_ent_redis_sentinel_t *sn,
    redisReply *reply);
static ngx_int_t ngx_ent_redis_sentinel_master(ngx_ent_redis_sentinel_t *sn,
    redisReply *reply);
static ngx_int_t ngx_ent_redis_sentinel_message(ngx_ent_redis_sentinel_t *sn,
    redisReply *reply);
static ngx_int_t ngx_ent_redis_sentinel_flush(ngx_ent_redis_sentinel_t *sn);
static ngx_int_t ngx_ent_redis_sentinel_is(redisReply *r, const char *s);


/* configuration */


char *
ngx_ent_redis_sentinel_conf(ngx_conf_t *cf, ngx_ent_redis_conf_t *conf)
{
    ngx_uint_t  i;

    if (conf->sentinel_list.len == 0) {
        return "has \"master\" without \"sentinel\"";
    }

    if (conf->master_name.len == 0) {
        return "has \"sentinel\" without \"master\"";
    }

    if (conf->master_name.len > NGX_ENT_SENTINEL_MAX_NAME) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "master name in \"ent_redis\" directive is longer "
                           "than %d bytes", NGX_ENT_SENTINEL_MAX_NAME);
        return NGX_CONF_ERROR;
    }

    /* sentinels announce "<name> <ip> <port> ...": no spaces, no controls */

    for (i = 0; i < conf->master_name.len; i++) {
        if (conf->master_name.data[i] <= ' '
            || conf->master_name.data[i] == 0x7f)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid master name \"%V\" in \"ent_redis\" "
                               "directive", &conf->master_name);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_ent_redis_addr_list(cf, &conf->sentinel_list,
                                NGX_ENT_SENTINEL_DEFAULT_PORT, "sentinel",
                                &conf->sentinels, &conf->nsentinels)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * "host:port,host:port,...": at most NGX_ENT_REDIS_MAX_SENTINELS
 * addresses, each resolved once, at configuration time
 */

ngx_int_t
ngx_ent_redis_addr_list(ngx_conf_t *cf, ngx_str_t *list,
    in_port_t default_port, const char *what, ngx_addr_t **addrs,
    ngx_uint_t *naddrs)
{
    u_char      *p, *last, *comma;
    ngx_str_t    s;
    ngx_url_t    u;
    ngx_uint_t   i, n;

    n = 1;
    last = list->data + list->len;

    for (p = list->data; p < last; p++) {
        if (*p == ',') {
            n++;
        }
    }

    if (n > NGX_ENT_REDIS_MAX_SENTINELS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many addresses in \"%s=\" of the "
                           "\"ent_redis\" directive, at most %d", what,
                           NGX_ENT_REDIS_MAX_SENTINELS);
        return NGX_ERROR;
    }

    *addrs = ngx_pcalloc(cf->pool, n * sizeof(ngx_addr_t));
    if (*addrs == NULL) {
        return NGX_ERROR;
    }

    p = list->data;

    for (i = 0; i < n; i++) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        s.data = p;
        s.len = comma - p;
        p = comma + 1;

        if (s.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "empty address in \"%s=%V\" of the "
                               "\"ent_redis\" directive", what, list);
            return NGX_ERROR;
        }

        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url = s;
        u.default_port = default_port;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            if (u.err) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "%s in %s \"%V\" of the \"ent_redis\" "
                                   "directive", u.err, what, &s);
            }

            return NGX_ERROR;
        }

        if (u.naddrs == 0 || u.addrs == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "no address in %s \"%V\" of the "
                               "\"ent_redis\" directive", what, &s);
            return NGX_ERROR;
        }

        (*addrs)[i] = u.addrs[0];
    }

    *naddrs = n;

    return NGX_OK;
}


/* worker */


ngx_ent_redis_sentinel_t *
ngx_ent_redis_sentinel_create(ngx_cycle_t *cycle, ngx_ent_redis_conf_t *conf,
    ngx_ent_redis_pool_t *pool)
{
    size_t                     len;
    u_char                    *p;
    size_t                     lens[3];
    const u_char              *args[3];
    ngx_ent_redis_sentinel_t  *sn;

    sn = ngx_pcalloc(cycle->pool, sizeof(ngx_ent_redis_sentinel_t));
    if (sn == NULL) {
        return NULL;
    }

    sn->conf = conf;
    sn->pool = pool;
    sn->log = cycle->log;

    sn->timer.handler = ngx_ent_redis_sentinel_timer_handler;
    sn->timer.data = sn;
    sn->timer.log = cycle->log;
    sn->timer.cancelable = 1;

    /* the same bytes on every connection: encoded once */

    len = 0;

    if (conf->sentinel_password.len) {
        lens[0] = sizeof("AUTH") - 1;
        lens[1] = conf->sentinel_password.len;
        len += ngx_ent_resp_size(2, lens);
        sn->auth = 1;
    }

    lens[0] = sizeof("SENTINEL") - 1;
    lens[1] = sizeof("get-master-addr-by-name") - 1;
    lens[2] = conf->master_name.len;
    len += ngx_ent_resp_size(3, lens);

    lens[0] = sizeof("SUBSCRIBE") - 1;
    lens[1] = sizeof("+switch-master") - 1;
    len += ngx_ent_resp_size(2, lens);

    sn->out = ngx_pnalloc(cycle->pool, len);
    if (sn->out == NULL) {
        return NULL;
    }

    p = sn->out;

    if (sn->auth) {
        args[0] = (u_char *) "AUTH";
        lens[0] = sizeof("AUTH") - 1;
        args[1] = conf->sentinel_password.data;
        lens[1] = conf->sentinel_password.len;
        p = ngx_ent_resp_write(p, 2, args, lens);
    }

    args[0] = (u_char *) "SENTINEL";
    lens[0] = sizeof("SENTINEL") - 1;
    args[1] = (u_char *) "get-master-addr-by-name";
    lens[1] = sizeof("get-master-addr-by-name") - 1;
    args[2] = conf->master_name.data;
    lens[2] = conf->master_name.len;
    p = ngx_ent_resp_write(p, 3, args, lens);

    args[0] = (u_char *) "SUBSCRIBE";
    lens[0] = sizeof("SUBSCRIBE") - 1;
    args[1] = (u_char *) "+switch-master";
    lens[1] = sizeof("+switch-master") - 1;
    p = ngx_ent_resp_write(p, 2, args, lens);

    sn->out_len = p - sn->out;

    return sn;
}


void
ngx_ent_redis_sentinel_destroy(ngx_ent_redis_sentinel_t *sn)
{
    ngx_ent_redis_sentinel_close(sn);
    sn->state = NGX_ENT_SENTINEL_IDLE;
}


/*
 * The pool needs the master's address: ask, unless an answer is on its
 * way or the sentinels are backing off.  A subscribed connection is
 * restarted: the pool saw an error, the address may have changed while
 * a message was lost.
 */

void
ngx_ent_redis_sentinel_discover(ngx_ent_redis_sentinel_t *sn)
{
    switch (sn->state) {

    case NGX_ENT_SENTINEL_QUERY:
        if (sn->nreplies > sn->auth) {
            /* the answer came already: ask again once SUBSCRIBE is done */
            sn->again = 1;
        }

        return;

    case NGX_ENT_SENTINEL_CONNECTING:
    case NGX_ENT_SENTINEL_BACKOFF:
        /*
         * An answer, or the next round, is coming.  (A connection that
         * fails meanwhile asks again from its own backoff timer: that
         * paces the questions while the sentinels still name a dead
         * master.)
         */
        return;

    case NGX_ENT_SENTINEL_SUBSCRIBED:
        ngx_ent_redis_sentinel_close(sn);
        break;

    default:
        break;
    }

    sn->state = NGX_ENT_SENTINEL_IDLE;
    sn->tried = 0;
    sn->again = 0;

    ngx_ent_redis_sentinel_ask(sn);
}


static void
ngx_ent_redis_sentinel_ask(ngx_ent_redis_sentinel_t *sn)
{
    ngx_int_t          rv;
    ngx_addr_t        *addr;

    addr = &sn->conf->sentinels[sn->current];

    sn->reader = ngx_ent_redis_reader_create();
    if (sn->reader == NULL) {
        ngx_log_error(NGX_LOG_ALERT, sn->log, 0, "redisReaderCreate() failed");
        ngx_ent_redis_sentinel_fail(sn, 0, NULL);
        return;
    }

    sn->out_pos = 0;
    sn->nreplies = 0;

    rv = ngx_ent_peer_connect(&sn->peer, addr, sn->log, sn,
                              ngx_ent_redis_sentinel_read_handler,
                              ngx_ent_redis_sentinel_write_handler);

    if (rv == NGX_ERROR) {
        ngx_ent_redis_sentinel_fail(sn, 0, "connect failed");
        return;
    }

    sn->state = NGX_ENT_SENTINEL_CONNECTING;
    ngx_add_timer(&sn->timer, sn->conf->connect_timeout);

    if (rv == NGX_OK) {
        ngx_ent_redis_sentinel_connected(sn);
    }
}


static void
ngx_ent_redis_sentinel_connected(ngx_ent_redis_sentinel_t *sn)
{
    if (sn->timer.timer_set) {
        ngx_del_timer(&sn->timer);
    }

    sn->state = NGX_ENT_SENTINEL_QUERY;
    ngx_add_timer(&sn->timer, sn->conf->timeout);

    if (ngx_ent_redis_sentinel_flush(sn) != NGX_OK) {
        ngx_ent_redis_sentinel_fail(sn, 0, "send failed");
    }
}


/* this sentinel failed us: log why, ask the next one, or back off */

static void
ngx_ent_redis_sentinel_fail(ngx_ent_redis_sentinel_t *sn, ngx_err_t err,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;
    u_char    errstr[NGX_MAX_ERROR_STR];

    if (fmt) {
        va_start(args, fmt);
        p = ngx_vslprintf(errstr, errstr + sizeof(errstr), fmt, args);
        va_end(args);

        ngx_log_error(NGX_LOG_ERR, sn->log, err,
                      "redis sentinel %V (master \"%V\"): %*s",
                      &sn->conf->sentinels[sn->current].name,
                      &sn->conf->master_name, p - errstr, errstr);
    }

    ngx_ent_redis_sentinel_close(sn);

    sn->state = NGX_ENT_SENTINEL_IDLE;
    sn->again = 0;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    sn->current = (sn->current + 1) % sn->conf->nsentinels;

    if (++sn->tried < sn->conf->nsentinels) {
        ngx_ent_redis_sentinel_ask(sn);
        return;
    }

    sn->tried = 0;
    sn->backoff = ngx_ent_backoff_next(sn->backoff, sn->conf->backoff_min,
                                       sn->conf->backoff_max);

    ngx_log_error(NGX_LOG_ERR, sn->log, 0,
                  "no redis sentinel answered for master \"%V\", "
                  "asking again in %Mms",
                  &sn->conf->master_name, sn->backoff);

    sn->state = NGX_ENT_SENTINEL_BACKOFF;
    ngx_add_timer(&sn->timer, sn->backoff);
}


static void
ngx_ent_redis_sentinel_close(ngx_ent_redis_sentinel_t *sn)
{
    if (sn->timer.timer_set) {
        ngx_del_timer(&sn->timer);
    }

    if (sn->peer.connection) {
        ngx_close_connection(sn->peer.connection);
        sn->peer.connection = NULL;
        sn->gen++;
    }

    if (sn->reader) {
        redisReaderFree(sn->reader);
        sn->reader = NULL;
    }
}


static void
ngx_ent_redis_sentinel_write_handler(ngx_event_t *wev)
{
    int                        err;
    socklen_t                  len;
    ngx_connection_t          *c;
    ngx_ent_redis_sentinel_t  *sn;

    c = wev->data;
    sn = c->data;

    if (sn->state == NGX_ENT_SENTINEL_CONNECTING) {
        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_ent_redis_sentinel_fail(sn, err, "connect() failed");
            return;
        }

        ngx_ent_redis_sentinel_connected(sn);
        return;
    }

    if (ngx_ent_redis_sentinel_flush(sn) != NGX_OK) {
        ngx_ent_redis_sentinel_fail(sn, 0, "send failed");
    }
}


static void
ngx_ent_redis_sentinel_read_handler(ngx_event_t *rev)
{
    void                      *reply;
    ssize_t                    n;
    u_char                     buf[4096];
    ngx_uint_t                 gen;
    ngx_connection_t          *c;
    ngx_ent_redis_sentinel_t  *sn;

    c = rev->data;
    sn = c->data;

    /*
     * A reply may get the pool to ask again, which closes this connection
     * and opens another one, perhaps in the same ngx_connection_t: once
     * the generation changed, nothing here is ours any more.
     */

    gen = sn->gen;

    if (c->close) {
        /* graceful shutdown: the subscription is idle */
        ngx_ent_redis_sentinel_close(sn);
        sn->state = NGX_ENT_SENTINEL_IDLE;
        return;
    }

    if (sn->state == NGX_ENT_SENTINEL_CONNECTING) {
        /* the write handler tells connected from refused */
        ngx_ent_redis_sentinel_write_handler(c->write);

        if (sn->gen != gen || sn->state == NGX_ENT_SENTINEL_CONNECTING) {
            return;
        }
    }

    for ( ;; ) {

        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_ent_redis_sentinel_fail(sn, 0, "closed the connection");
            return;
        }

        if (redisReaderFeed(sn->reader, (const char *) buf, n) != REDIS_OK) {
            ngx_ent_redis_sentinel_fail(sn, 0, "redisReaderFeed() failed");
            return;
        }

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(sn->reader, &reply) != REDIS_OK) {
                ngx_ent_redis_sentinel_fail(sn, 0, "protocol error: %s",
                                            sn->reader->errstr);
                return;
            }

            if (reply == NULL) {
                break;
            }

            if (ngx_ent_redis_sentinel_reply(sn, reply) != NGX_OK
                || sn->gen != gen)
            {
                return;
            }
        }

        if (!rev->ready) {
            break;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_ent_redis_sentinel_fail(sn, 0, "read event failed");
    }
}


static void
ngx_ent_redis_sentinel_timer_handler(ngx_event_t *ev)
{
    ngx_ent_redis_sentinel_t  *sn;

    sn = ev->data;

    switch (sn->state) {

    case NGX_ENT_SENTINEL_CONNECTING:
        ngx_ent_redis_sentinel_fail(sn, 0, "connect timed out");
        return;

    case NGX_ENT_SENTINEL_QUERY:
        if (sn->nreplies > sn->auth) {
            /* the address came: asking again on errors works without */
            ngx_log_error(NGX_LOG_WARN, sn->log, 0,
                          "redis sentinel %V did not confirm SUBSCRIBE "
                          "+switch-master within %Mms",
                          &sn->conf->sentinels[sn->current].name,
                          sn->conf->timeout);
            ngx_ent_redis_sentinel_close(sn);
            sn->state = NGX_ENT_SENTINEL_IDLE;

            if (sn->again) {
                ngx_ent_redis_sentinel_discover(sn);
            }

            return;
        }

        ngx_ent_redis_sentinel_fail(sn, 0, "no answer within %Mms",
                                    sn->conf->timeout);
        return;

    case NGX_ENT_SENTINEL_BACKOFF:
        /* ask again, if only to subscribe again */
        ngx_ent_redis_sentinel_close(sn);
        sn->state = NGX_ENT_SENTINEL_IDLE;
        ngx_ent_redis_sentinel_discover(sn);
        return;

    default:
        return;
    }
}


/*
 * The replies in order: [AUTH], the address, the subscription, then
 * "+switch-master" messages.  NGX_OK: go on reading; otherwise the reply
 * is freed and the connection gone.
 */

static ngx_int_t
ngx_ent_redis_sentinel_reply(ngx_ent_redis_sentinel_t *sn, redisReply *reply)
{
    ngx_int_t   rv;
    ngx_uint_t  i;

    i = sn->nreplies++;

    if (sn->auth && i == 0) {
        if (reply->type == REDIS_REPLY_ERROR) {
            ngx_ent_redis_sentinel_fail(sn, 0, "refused AUTH: %*s",
                                        (size_t) ngx_min(reply->len, 128),
                                        reply->str);
            freeReplyObject(reply);
            return NGX_ERROR;
        }

        freeReplyObject(reply);
        return NGX_OK;
    }

    i -= sn->auth;

    if (i == 0) {
        rv = ngx_ent_redis_sentinel_master(sn, reply);
        freeReplyObject(reply);
        return rv;
    }

    if (i == 1) {
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1
            || ngx_ent_redis_sentinel_is(reply->element[0], "subscribe")
               != NGX_OK)
        {
            /* asking again on errors still works without it */
            ngx_log_error(NGX_LOG_WARN, sn->log, 0,
                          "redis sentinel %V refused SUBSCRIBE "
                          "+switch-master",
                          &sn->conf->sentinels[sn->current].name);
            freeReplyObject(reply);
            ngx_ent_redis_sentinel_close(sn);
            sn->state = NGX_ENT_SENTINEL_IDLE;

            if (sn->again) {
                ngx_ent_redis_sentinel_discover(sn);
            }

            return NGX_ERROR;
        }

        freeReplyObject(reply);

        if (sn->timer.timer_set) {
            ngx_del_timer(&sn->timer);
        }

        /* nothing in flight: a graceful shutdown may close it */

        sn->state = NGX_ENT_SENTINEL_SUBSCRIBED;
        sn->peer.connection->idle = 1;

        if (sn->again) {
            /* starts over: the caller sees the generation change */
            ngx_ent_redis_sentinel_discover(sn);
        }

        return NGX_OK;
    }

    rv = ngx_ent_redis_sentinel_message(sn, reply);
    freeReplyObject(reply);
    return rv;
}


/* SENTINEL get-master-addr-by-name: ["<ip>", "<port>"], or nil */

static ngx_int_t
ngx_ent_redis_sentinel_master(ngx_ent_redis_sentinel_t *sn, redisReply *reply)
{
    socklen_t        socklen;
    redisReply      *ip, *port;
    ngx_sockaddr_t   sa;

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_ent_redis_sentinel_fail(sn, 0, "error: %*s",
                                    (size_t) ngx_min(reply->len, 128),
                                    reply->str);
        return NGX_ERROR;
    }

    if (reply->type == REDIS_REPLY_NIL) {
        ngx_ent_redis_sentinel_fail(sn, 0, "does not know the master");
        return NGX_ERROR;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_ent_redis_sentinel_fail(sn, 0, "unexpected reply to "
                                    "SENTINEL get-master-addr-by-name");
        return NGX_ERROR;
    }

    ip = reply->element[0];
    port = reply->element[1];

    if (ngx_ent_redis_sentinel_addr((u_char *) ip->str, ip->len,
                                    (u_char *) port->str, port->len,
                                    &sa.sockaddr, &socklen)
        != NGX_OK)
    {
        ngx_ent_redis_sentinel_fail(sn, 0, "reported \"%*s\" port \"%*s\": "
                                    "not an IP address and port "
                                    "(hostnames are not resolved)",
                                    (size_t) ngx_min(ip->len, 64), ip->str,
                                    (size_t) ngx_min(port->len, 16),
                                    port->str);
        return NGX_ERROR;
    }

    sn->tried = 0;
    sn->backoff = 0;

    ngx_ent_redis_master_found(sn->pool, &sa.sockaddr, socklen);

    return NGX_OK;
}


/* ["message", "+switch-master", "<name> <old-ip> <old-port> <ip> <port>"] */

static ngx_int_t
ngx_ent_redis_sentinel_message(ngx_ent_redis_sentinel_t *sn,
    redisReply *reply)
{
    socklen_t        socklen;
    ngx_str_t        name, ip, port;
    redisReply      *payload;
    ngx_sockaddr_t   sa;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || ngx_ent_redis_sentinel_is(reply->element[0], "message") != NGX_OK
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        ngx_ent_redis_sentinel_fail(sn, 0, "unexpected message on the "
                                    "subscription");
        return NGX_ERROR;
    }

    payload = reply->element[2];

    if (ngx_ent_redis_sentinel_switch((u_char *) payload->str, payload->len,
                                      &name, &ip, &port)
        != NGX_OK)
    {
        ngx_ent_redis_sentinel_fail(sn, 0, "malformed +switch-master \"%*s\"",
                                    (size_t) ngx_min(payload->len, 128),
                                    payload->str);
        return NGX_ERROR;
    }

    if (name.len != sn->conf->master_name.len
        || ngx_strncmp(name.data, sn->conf->master_name.data, name.len) != 0)
    {
        return NGX_OK;      /* another master of the same sentinels */
    }

    if (ngx_ent_redis_sentinel_addr(ip.data, ip.len, port.data, port.len,
                                    &sa.sockaddr, &socklen)
        != NGX_OK)
    {
        ngx_ent_redis_sentinel_fail(sn, 0, "+switch-master to \"%V\" port "
                                    "\"%V\": not an IP address and port "
                                    "(hostnames are not resolved)",
                                    &ip, &port);
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_NOTICE, sn->log, 0,
                  "redis sentinel %V: +switch-master \"%V\" to %V:%V",
                  &sn->conf->sentinels[sn->current].name, &name, &ip, &port);

    ngx_ent_redis_master_found(sn->pool, &sa.sockaddr, socklen);

    return NGX_OK;
}


static ngx_int_t
ngx_ent_redis_sentinel_flush(ngx_ent_redis_sentinel_t *sn)
{
    return ngx_ent_send(sn->peer.connection, sn->out, &sn->out_pos,
                        sn->out_len);
}


static ngx_int_t
ngx_ent_redis_sentinel_is(redisReply *r, const char *s)
{
    size_t  len;

    len = ngx_strlen(s);

    if ((r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        && r->len == len && ngx_strncmp(r->str, s, len) == 0)
    {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* parsing, I/O-free */


/*
 * An IP literal (v4 or v6) and a decimal port into a sockaddr, no DNS:
 * NGX_OK, or NGX_DECLINED for anything else (a hostname included).
 */

ngx_int_t
ngx_ent_redis_sentinel_addr(const u_char *ip, size_t ip_len,
    const u_char *port, size_t port_len, struct sockaddr *sa,
    socklen_t *socklen)
{
    ngx_int_t             n;
    in_addr_t             inaddr;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
    u_char                text[NGX_INET6_ADDRSTRLEN];
#endif

    if (port_len == 0 || port_len > 5) {
        return NGX_DECLINED;
    }

    n = ngx_atoi((u_char *) port, port_len);

    if (n < 1 || n > 65535) {
        return NGX_DECLINED;
    }

    if (ip_len == 0 || ip_len > NGX_SOCKADDR_STRLEN) {
        return NGX_DECLINED;
    }

    inaddr = ngx_inet_addr((u_char *) ip, ip_len);

    if (inaddr != INADDR_NONE) {
        sin = (struct sockaddr_in *) sa;
        ngx_memzero(sin, sizeof(struct sockaddr_in));
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = inaddr;
        sin->sin_port = htons((in_port_t) n);
        *socklen = sizeof(struct sockaddr_in);
        return NGX_OK;
    }

#if (NGX_HAVE_INET6)

    if (ip_len < sizeof(text)) {
        /* ngx_inet6_addr() writes into what it parses */
        ngx_memcpy(text, ip, ip_len);

        sin6 = (struct sockaddr_in6 *) sa;
        ngx_memzero(sin6, sizeof(struct sockaddr_in6));

        if (ngx_inet6_addr(text, ip_len, sin6->sin6_addr.s6_addr) == NGX_OK) {
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((in_port_t) n);
            *socklen = sizeof(struct sockaddr_in6);
            return NGX_OK;
        }
    }

#endif

    return NGX_DECLINED;
}


/*
 * A "+switch-master" payload, "<name> <old-ip> <old-port> <new-ip>
 * <new-port>": NGX_OK and the name and the new address, NGX_ERROR when
 * it is not five space-separated fields.
 */

ngx_int_t
ngx_ent_redis_sentinel_switch(const u_char *p, size_t len, ngx_str_t *name,
    ngx_str_t *ip, ngx_str_t *port)
{
    u_char      *start, *end, *last;
    ngx_str_t    f[5];
    ngx_uint_t   n;

    start = (u_char *) p;
    last = start + len;
    n = 0;

    while (start < last) {
        if (n == 5) {
            return NGX_ERROR;
        }

        end = ngx_strlchr(start, last, ' ');
        if (end == NULL) {
            end = last;
        }

        if (end == start) {
            return NGX_ERROR;
        }

        f[n].data = start;
        f[n].len = end - start;
        n++;

        start = end + 1;

        if (end < last && start == last) {
            return NGX_ERROR;       /* a trailing space */
        }
    }

    if (n != 5) {
        return NGX_ERROR;
    }

    *name = f[0];
    *ip = f[3];
    *port = f[4];

    return NGX_OK;
}
