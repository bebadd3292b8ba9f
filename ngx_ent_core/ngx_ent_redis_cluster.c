/*
 * ngx_ent core: Redis Cluster.
 *
 *     ent_redis cluster=10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379 ...;
 *
 * Each worker keeps the cluster's slot map (16384 slots, each to the
 * master serving it) and one connection per master, each pipelining like
 * a single Redis's connections (ngx_ent_redis.c).  The map comes from
 * CLUSTER SLOTS, asked of any node that is up: at start, after a MOVED,
 * after a connection to a master is lost (it may have failed over), and
 * every 250 ms while a master of the map is down; at most once per
 * 100 ms.  The seeds are where the first map comes from, and where it
 * comes from again when no node is left to ask.
 *
 * The commands of one call (ngx_ent_redis_run()) have their key first
 * (argv[1]) and must all hash to one slot: every key of one tenant carries
 * the tenant's hash tag "{t:<tenant>}", so a tenant's keys live on one
 * master.  A call goes to its slot's master; while the slot is not in the
 * map, to any node, whose MOVED says where it is.
 *
 *   MOVED <slot> <ip>:<port>   the slot has moved: the map is corrected at
 *                              once and reloaded whole soon after; the
 *                              command goes to the new owner
 *   ASK <slot> <ip>:<port>     the slot is migrating and the key is on the
 *                              target already: the command goes there,
 *                              after ASKING; the map stays
 *   TRYAGAIN                   a multi-key command during a migration:
 *                              sent again after 20 ms
 *   CLUSTERDOWN                a slot without a master: the call fails as
 *                              unavailable, the map is asked for again
 *
 * Only the commands of a call that were redirected go again, so none runs
 * twice.  After five redirections an error reply reaches the caller as it
 * is.  Replicas are never read (READONLY is never sent): sessions,
 * revocations and counters are never stale.  Nodes report IP addresses: a
 * hostname endpoint is refused (resolving would block), as with sentinels.
 */


#include "ngx_ent_redis.h"


#define NGX_ENT_CLUSTER_MAX_NODES     64
#define NGX_ENT_CLUSTER_MAX_TRIES     5
#define NGX_ENT_CLUSTER_REFRESH_MIN   100     /* ms between two maps */
#define NGX_ENT_CLUSTER_DOWN_POLL     250     /* ms, while a master is down */
#define NGX_ENT_CLUSTER_TRYAGAIN_MS   20      /* before TRYAGAIN's resend */
#define NGX_ENT_CLUSTER_REFUSED_MAX   5000    /* ms, after refused maps */
#define NGX_ENT_CLUSTER_RETRY         3       /* with MOVED and ASK */
#define NGX_ENT_CLUSTER_SKIP          0xffff  /* the reply to ASKING */
#define NGX_ENT_CLUSTER_ANY           NGX_ENT_REDIS_SLOTS

#define NGX_ENT_CLUSTER_ASKING        "*1\r\n$6\r\nASKING\r\n"


struct ngx_ent_redis_cluster_s {
    ngx_ent_redis_pool_t      *pool;
    ngx_event_t                timer;        /* the next map */
    ngx_msec_t                 last;         /* when one was asked for */
    ngx_uint_t                 asked;        /* of which node */
    ngx_uint_t                 redirects;
    ngx_uint_t                 maps;
    ngx_uint_t                 refused;      /* maps in a row */
    unsigned                   wanted:1;
    unsigned                   unmapped:1;   /* a master left out */
    unsigned                   refreshing:1;
    unsigned                   loaded:1;
    u_char                     slots[NGX_ENT_REDIS_SLOTS];  /* node + 1 */
};


/* an operation's routing state, after its replies array */

typedef struct {
    ngx_uint_t                 slot;
    ngx_uint_t                 ncmds;
    ngx_uint_t                 nexpect;      /* replies to this send */
    ngx_uint_t                 nreceived;
    ngx_uint_t                 tries;
    size_t                    *off;          /* ncmds + 1, into enc */
    u_short                   *expect;       /* reply -> command */
    u_char                    *enc;          /* the commands, encoded */
} ngx_ent_redis_cop_t;


static ngx_ent_redis_conn_t *ngx_ent_redis_cluster_route(
    ngx_ent_redis_cluster_t *cl, ngx_uint_t slot);
static ngx_ent_redis_conn_t *ngx_ent_redis_cluster_node(
    ngx_ent_redis_cluster_t *cl, struct sockaddr *sa, socklen_t socklen);
static ngx_int_t ngx_ent_redis_cluster_addr(ngx_ent_redis_conn_t *ref,
    const u_char *ip, size_t ip_len, const u_char *port, size_t port_len,
    ngx_sockaddr_t *sa, socklen_t *socklen);
static void ngx_ent_redis_cluster_release(ngx_ent_redis_conn_t *rc);
static ngx_int_t ngx_ent_redis_cluster_send(ngx_ent_redis_conn_t *rc,
    ngx_ent_op_t *op, ngx_uint_t ask);
static int ngx_ent_redis_cluster_redirected(redisReply *reply);
static ngx_uint_t ngx_ent_redis_cluster_error(redisReply *reply,
    const char *prefix, size_t len);
static void ngx_ent_redis_cluster_resend(ngx_ent_redis_conn_t *rc,
    ngx_ent_op_t *op, ngx_uint_t ask);
static void ngx_ent_redis_cluster_again(ngx_event_t *ev);
static void ngx_ent_redis_cluster_stale(ngx_ent_redis_cluster_t *cl);
static void ngx_ent_redis_cluster_timer(ngx_event_t *ev);
static void ngx_ent_redis_cluster_refresh(ngx_ent_redis_cluster_t *cl);
static void ngx_ent_redis_cluster_mapped(ngx_ent_op_t *op);
static ngx_uint_t ngx_ent_redis_cluster_down(ngx_ent_redis_cluster_t *cl);
static ngx_int_t ngx_ent_redis_cluster_load(ngx_ent_redis_cluster_t *cl,
    redisReply *reply);
static ngx_uint_t ngx_ent_redis_cluster_named(ngx_sockaddr_t *addrs,
    socklen_t *lens, ngx_uint_t n, struct sockaddr *sa, socklen_t socklen);


/* configuration */


char *
ngx_ent_redis_cluster_conf(ngx_conf_t *cf, ngx_ent_redis_conf_t *conf)
{
    if (conf->sentinel_list.len || conf->master_name.len
        || conf->sentinel_password.len)
    {
        return "has \"cluster\" and \"sentinel\" parameters: "
               "use one or the other";
    }

    if (conf->db) {
        return "has \"db\" with \"cluster\": a Redis Cluster has "
               "database 0 only";
    }

    if (conf->pool_size != NGX_CONF_UNSET_UINT) {
        return "has \"pool\" with \"cluster\": a cluster takes one "
               "connection per node per worker";
    }

    if (ngx_ent_redis_addr_list(cf, &conf->cluster_list, 6379, "cluster",
                                &conf->seeds, &conf->nseeds)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* worker */


ngx_int_t
ngx_ent_redis_cluster_create(ngx_cycle_t *cycle, ngx_ent_redis_pool_t *pool)
{
    ngx_uint_t                i;
    ngx_ent_redis_conf_t     *conf;
    ngx_ent_redis_cluster_t  *cl;

    conf = pool->conf;

    cl = ngx_pcalloc(cycle->pool, sizeof(ngx_ent_redis_cluster_t));
    if (cl == NULL) {
        return NGX_ERROR;
    }

    pool->conns = ngx_pcalloc(cycle->pool, NGX_ENT_CLUSTER_MAX_NODES
                                           * sizeof(ngx_ent_redis_conn_t));
    if (pool->conns == NULL) {
        return NGX_ERROR;
    }

    pool->nconns = 0;
    pool->addr = NULL;
    pool->cluster = cl;

    cl->pool = pool;
    cl->timer.handler = ngx_ent_redis_cluster_timer;
    cl->timer.data = cl;
    cl->timer.log = pool->log;
    cl->timer.cancelable = 1;

    /* the first connection up asks for the map */
    cl->wanted = 1;

    for (i = 0; i < conf->nseeds; i++) {
        (void) ngx_ent_redis_cluster_node(cl, conf->seeds[i].sockaddr,
                                          conf->seeds[i].socklen);
    }

    return NGX_OK;
}


void
ngx_ent_redis_cluster_destroy(ngx_ent_redis_pool_t *pool)
{
    if (pool->cluster->timer.timer_set) {
        ngx_del_timer(&pool->cluster->timer);
    }
}


void
ngx_ent_redis_cluster_stats(ngx_ent_redis_pool_t *pool,
    ngx_ent_backend_stats_t *st)
{
    ngx_uint_t  i;

    st->cluster = 1;
    st->nodes = 0;
    st->redirects = pool->cluster->redirects;
    st->maps = pool->cluster->maps;
    st->master.len = 0;

    for (i = 0; i < pool->nconns; i++) {
        if (pool->conns[i].used && pool->conns[i].master) {
            st->nodes++;
        }
    }
}


/* commands */


ngx_int_t
ngx_ent_redis_cluster_run(ngx_ent_redis_pool_t *pool, ngx_http_request_t *r,
    ngx_ent_redis_cmd_t *cmds, ngx_uint_t ncmds,
    ngx_ent_op_handler_pt handler, void *data)
{
    u_char                *p;
    size_t                 size;
    ngx_uint_t             i, k, slot, s;
    ngx_ent_op_t          *op;
    ngx_ent_redis_cop_t   *cop;
    ngx_ent_redis_conn_t  *rc;

    /* one slot for all: the key is the first argument */

    slot = NGX_ENT_CLUSTER_ANY;
    size = 0;

    for (i = 0; i < ncmds; i++) {
        if (cmds[i].argc == 0 || cmds[i].argc > 1048576) {
            return NGX_ERROR;
        }

        if (cmds[i].argc > 1) {
            s = ngx_ent_redis_slot(cmds[i].argv[1].data, cmds[i].argv[1].len);

            if (slot != NGX_ENT_CLUSTER_ANY && s != slot) {
                ngx_log_error(NGX_LOG_ALERT, pool->log, 0,
                              "ent: redis commands of one call in two "
                              "cluster slots, %ui and %ui", slot, s);
                return NGX_ERROR;
            }

            slot = s;
        }

        size += sizeof("*\r\n") - 1 + NGX_INT_T_LEN;

        for (k = 0; k < cmds[i].argc; k++) {
            size += sizeof("$\r\n\r\n") - 1 + NGX_SIZE_T_LEN
                    + cmds[i].argv[k].len;
        }
    }

    rc = ngx_ent_redis_cluster_route(pool->cluster, slot);

    if (rc == NULL) {
        pool->stats.rejected++;
        return NGX_DECLINED;
    }

    op = ngx_ent_op_create(r, ncmds * sizeof(redisReply *)
                              + sizeof(ngx_ent_redis_cop_t)
                              + (ncmds + 1) * sizeof(size_t)
                              + 2 * ncmds * sizeof(u_short) + size,
                           handler, data);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->replies = (redisReply **) (op + 1);

    cop = (ngx_ent_redis_cop_t *) (op->replies + ncmds);
    cop->off = (size_t *) (cop + 1);
    cop->expect = (u_short *) (cop->off + ncmds + 1);
    cop->enc = (u_char *) (cop->expect + 2 * ncmds);
    cop->slot = slot;
    cop->ncmds = ncmds;

    p = cop->enc;

    for (i = 0; i < ncmds; i++) {
        cop->off[i] = p - cop->enc;
        p = ngx_sprintf(p, "*%ui\r\n", cmds[i].argc);

        for (k = 0; k < cmds[i].argc; k++) {
            p = ngx_sprintf(p, "$%uz\r\n", cmds[i].argv[k].len);
            p = ngx_cpymem(p, cmds[i].argv[k].data, cmds[i].argv[k].len);
            *p++ = CR;
            *p++ = LF;
        }
    }

    cop->off[ncmds] = p - cop->enc;

    op->cluster = cop;

    /* the replies array is indexed by command: NULL until answered */
    op->nreplies = ncmds;

    if (ngx_ent_redis_cluster_send(rc, op, 0) != NGX_OK) {
        ngx_ent_op_free(op);
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


/* the connection to the master of slot, or any node for ANY or unmapped */

static ngx_ent_redis_conn_t *
ngx_ent_redis_cluster_route(ngx_ent_redis_cluster_t *cl, ngx_uint_t slot)
{
    ngx_uint_t  n;

    n = (slot == NGX_ENT_CLUSTER_ANY) ? 0 : cl->slots[slot];

    if (n) {
        return ngx_ent_redis_take(&cl->pool->conns[n - 1]);
    }

    return ngx_ent_redis_pick(cl->pool);
}


/* appends op's unanswered commands to rc (each after ASKING with ask) */

static ngx_int_t
ngx_ent_redis_cluster_send(ngx_ent_redis_conn_t *rc, ngx_ent_op_t *op,
    ngx_uint_t ask)
{
    size_t                saved;
    ngx_uint_t            i, n;
    ngx_ent_redis_cop_t  *cop;

    cop = op->cluster;

    /* unsent bytes before ours: an append may compact the buffer */
    saved = rc->out_len - rc->out_pos;

    n = 0;

    for (i = 0; i < cop->ncmds; i++) {
        if (op->replies[i]) {
            continue;
        }

        if (ask) {
            if (ngx_ent_redis_append_raw(rc, (u_char *) NGX_ENT_CLUSTER_ASKING,
                                         sizeof(NGX_ENT_CLUSTER_ASKING) - 1)
                != NGX_OK)
            {
                goto failed;
            }

            cop->expect[n++] = NGX_ENT_CLUSTER_SKIP;
        }

        if (ngx_ent_redis_append_raw(rc, cop->enc + cop->off[i],
                                     cop->off[i + 1] - cop->off[i])
            != NGX_OK)
        {
            goto failed;
        }

        cop->expect[n++] = (u_short) i;
    }

    cop->nexpect = n;
    cop->nreceived = 0;
    op->ncmds = n;

    ngx_ent_redis_queue(rc, op);

    return NGX_OK;

failed:

    rc->out_len = rc->out_pos + saved;

    return NGX_ERROR;
}


/* a reply to op's current send: NGX_AGAIN while more are due */

ngx_int_t
ngx_ent_redis_cluster_store(ngx_ent_op_t *op, redisReply *reply)
{
    ngx_uint_t            i;
    ngx_ent_redis_cop_t  *cop;

    cop = op->cluster;

    i = cop->expect[cop->nreceived++];

    if (i == NGX_ENT_CLUSTER_SKIP) {
        /* ASKING's "+OK"; if it failed, the command after it says so */
        freeReplyObject(reply);

    } else {
        op->replies[i] = reply;
    }

    return (cop->nreceived < cop->nexpect) ? NGX_AGAIN : NGX_OK;
}


/*
 * All replies to op's send on rc are in: op completes, or its redirected
 * commands go where the first redirection points (others, if they point
 * elsewhere, are redirected again from there).
 */

void
ngx_ent_redis_cluster_done(ngx_ent_redis_conn_t *rc, ngx_ent_op_t *op)
{
    int                       kind;
    size_t                    ip_len, port_len;
    socklen_t                 socklen;
    ngx_uint_t                i, k, n, slot, down;
    unsigned int              s;
    redisReply               *reply;
    const u_char             *ip, *port;
    ngx_sockaddr_t            sa;
    ngx_ent_redis_cop_t      *cop;
    ngx_ent_redis_conn_t     *target;
    ngx_ent_redis_cluster_t  *cl;

    cop = op->cluster;
    cl = rc->pool->cluster;

    if (cop->tries >= NGX_ENT_CLUSTER_MAX_TRIES) {
        ngx_ent_op_complete(op, NGX_ENT_OK);
        return;
    }

    /* the first redirection decides where the redirected commands go */

    kind = 0;
    down = 0;
    target = NULL;
    slot = 0;

    for (k = 0; k < cop->nexpect && kind == 0; k++) {
        i = cop->expect[k];

        if (i == NGX_ENT_CLUSTER_SKIP) {
            continue;
        }

        reply = op->replies[i];

        kind = ngx_ent_redis_cluster_redirected(reply);

        if (kind == 0) {
            down |= ngx_ent_redis_cluster_error(reply, "CLUSTERDOWN",
                                                sizeof("CLUSTERDOWN") - 1);
            continue;
        }

        if (kind == NGX_ENT_CLUSTER_RETRY) {
            break;
        }

        (void) ngx_ent_redis_redirect((u_char *) reply->str, reply->len,
                                      &kind, &s, &ip, &ip_len, &port,
                                      &port_len);

        slot = s;

        if (ngx_ent_redis_cluster_addr(rc, ip, ip_len, port, port_len, &sa,
                                       &socklen)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, rc->pool->log, 0,
                          "redis cluster node %V redirects to an address "
                          "that is no IP literal: \"%*s\"",
                          &rc->node.name, (size_t) ngx_min(reply->len, 128),
                          reply->str);
            ngx_ent_op_complete(op, NGX_ENT_OK);
            return;
        }

        target = ngx_ent_redis_cluster_node(cl, &sa.sockaddr, socklen);
    }

    if (kind == 0) {
        if (down) {
            /*
             * a slot without a master (a failover under way): where is
             * it now; the op fails as unavailable, like any other
             * backend that cannot answer (503, or a limiter's fallback),
             * not with the node's error reply
             */
            ngx_ent_redis_cluster_stale(cl);
            ngx_ent_op_complete(op, NGX_ENT_UNAVAILABLE);
            return;
        }

        ngx_ent_op_complete(op, NGX_ENT_OK);
        return;
    }

    /* the redirected commands are sent again: their replies go */

    n = 0;

    for (k = 0; k < cop->nexpect; k++) {
        i = cop->expect[k];

        if (i == NGX_ENT_CLUSTER_SKIP) {
            continue;
        }

        reply = op->replies[i];

        if (ngx_ent_redis_cluster_redirected(reply)) {
            freeReplyObject(reply);
            op->replies[i] = NULL;
            n++;
        }
    }

    cop->tries++;

    if (kind == NGX_ENT_CLUSTER_RETRY) {
        op->timer.handler = ngx_ent_redis_cluster_again;
        ngx_add_timer(&op->timer, NGX_ENT_CLUSTER_TRYAGAIN_MS);
        return;
    }

    cl->redirects++;

    if (kind == NGX_ENT_REDIS_MOVED) {
        if (target) {
            ngx_log_debug3(NGX_LOG_DEBUG_EVENT, rc->pool->log, 0,
                           "redis cluster: slot %ui moved from %V to %V",
                           slot, &rc->node.name, &target->node.name);

            cl->slots[slot] = (u_char) (target - cl->pool->conns + 1);
            target->master = 1;
        }

        ngx_ent_redis_cluster_stale(cl);
    }

    ngx_ent_redis_cluster_resend(target, op, kind == NGX_ENT_REDIS_ASK);
}


/* MOVED, ASK or TRYAGAIN; 0 for any other reply */

static int
ngx_ent_redis_cluster_redirected(redisReply *reply)
{
    int            kind;
    size_t         ip_len, port_len;
    unsigned int   slot;
    const u_char  *ip, *port;

    if (reply->type != REDIS_REPLY_ERROR || reply->str == NULL) {
        return 0;
    }

    if (ngx_ent_redis_cluster_error(reply, "TRYAGAIN",
                                    sizeof("TRYAGAIN") - 1))
    {
        return NGX_ENT_CLUSTER_RETRY;
    }

    if (ngx_ent_redis_redirect((u_char *) reply->str, reply->len, &kind,
                               &slot, &ip, &ip_len, &port, &port_len)
        != 0)
    {
        return 0;
    }

    return kind;
}


/* an error reply that starts with prefix */

static ngx_uint_t
ngx_ent_redis_cluster_error(redisReply *reply, const char *prefix,
    size_t len)
{
    return reply->type == REDIS_REPLY_ERROR && reply->str
           && reply->len >= len
           && ngx_strncmp(reply->str, prefix, len) == 0;
}


static void
ngx_ent_redis_cluster_resend(ngx_ent_redis_conn_t *rc, ngx_ent_op_t *op,
    ngx_uint_t ask)
{
    if (rc == NULL || ngx_ent_redis_usable(rc) == NGX_DECLINED) {
        ngx_ent_redis_cluster_fail(op, NGX_ENT_UNAVAILABLE);
        return;
    }

    if (ngx_ent_redis_cluster_send(rc, op, ask) != NGX_OK) {
        ngx_ent_redis_cluster_fail(op, NGX_ENT_UNAVAILABLE);
    }
}


static void
ngx_ent_redis_cluster_again(ngx_event_t *ev)
{
    ngx_ent_op_t                   *op;
    ngx_ent_redis_cop_t            *cop;
    ngx_ent_redis_cluster_t        *cl;
    ngx_http_ent_core_main_conf_t  *cmcf;

    op = ev->data;
    cop = op->cluster;

    cmcf = ngx_ent_core_main_conf();
    cl = cmcf->redis_pool->cluster;

    ngx_ent_redis_cluster_resend(ngx_ent_redis_cluster_route(cl, cop->slot),
                                 op, 0);
}


/* op fails whole: no reply of it is handed out */

void
ngx_ent_redis_cluster_fail(ngx_ent_op_t *op, ngx_uint_t status)
{
    ngx_uint_t  i;

    for (i = 0; i < op->nreplies; i++) {
        if (op->replies[i]) {
            freeReplyObject(op->replies[i]);
            op->replies[i] = NULL;
        }
    }

    op->nreplies = 0;

    ngx_ent_op_complete(op, status);
}


/* nodes */


/* the connection to the node at sa, made (and connecting) if new */

static ngx_ent_redis_conn_t *
ngx_ent_redis_cluster_node(ngx_ent_redis_cluster_t *cl, struct sockaddr *sa,
    socklen_t socklen)
{
    ngx_uint_t             i;
    ngx_ent_redis_pool_t  *pool;
    ngx_ent_redis_conn_t  *rc, *spare;

    pool = cl->pool;
    spare = NULL;

    for (i = 0; i < pool->nconns; i++) {
        rc = &pool->conns[i];

        if (!rc->used) {
            if (spare == NULL) {
                spare = rc;
            }

            continue;
        }

        if (ngx_cmp_sockaddr(rc->node.sockaddr, rc->node.socklen, sa,
                             socklen, 1)
            == NGX_OK)
        {
            return rc;
        }
    }

    if (spare == NULL) {
        if (pool->nconns == NGX_ENT_CLUSTER_MAX_NODES) {
            ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                          "redis cluster has more than %d nodes",
                          NGX_ENT_CLUSTER_MAX_NODES);
            return NULL;
        }

        spare = &pool->conns[pool->nconns++];
    }

    rc = spare;

    ngx_ent_redis_conn_init(pool, rc);

    rc->master = 0;
    rc->ever_connected = 0;
    rc->backoff = 0;
    rc->state = NGX_ENT_REDIS_DOWN;

    ngx_memcpy(&rc->node_sockaddr, sa, socklen);
    rc->node.sockaddr = &rc->node_sockaddr.sockaddr;
    rc->node.socklen = socklen;
    rc->node.name.data = rc->node_text;
    rc->node.name.len = ngx_sock_ntop(sa, socklen, rc->node_text,
                                      NGX_SOCKADDR_STRLEN, 1);

    ngx_ent_redis_connect(rc);

    return rc;
}


/* ip:port as a node reports it; an empty ip is the node that answered */

static ngx_int_t
ngx_ent_redis_cluster_addr(ngx_ent_redis_conn_t *ref, const u_char *ip,
    size_t ip_len, const u_char *port, size_t port_len, ngx_sockaddr_t *sa,
    socklen_t *socklen)
{
    ngx_int_t  n;

    if (ip_len) {
        return ngx_ent_redis_sentinel_addr(ip, ip_len, port, port_len,
                                           &sa->sockaddr, socklen);
    }

    n = ngx_atoi((u_char *) port, port_len);

    if (n < 1 || n > 65535 || ref->node.sockaddr == NULL) {
        return NGX_DECLINED;
    }

    ngx_memcpy(sa, ref->node.sockaddr, ref->node.socklen);
    *socklen = ref->node.socklen;
    ngx_inet_set_port(&sa->sockaddr, (in_port_t) n);

    return NGX_OK;
}


/* a node that no longer serves slots: closed, its place free */

static void
ngx_ent_redis_cluster_release(ngx_ent_redis_conn_t *rc)
{
    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rc->pool->log, 0,
                   "redis cluster: %V serves no slot", &rc->node.name);

    ngx_ent_redis_disconnect(rc);

    rc->used = 0;
    rc->master = 0;
}


void
ngx_ent_redis_cluster_connected(ngx_ent_redis_conn_t *rc)
{
    ngx_ent_redis_cluster_t  *cl;

    cl = rc->pool->cluster;

    if (cl->wanted && !cl->refreshing && !cl->timer.timer_set) {
        ngx_ent_redis_cluster_refresh(cl);
    }
}


ngx_int_t
ngx_ent_redis_cluster_lost(ngx_ent_redis_conn_t *rc)
{
    ngx_ent_redis_cluster_t  *cl;

    cl = rc->pool->cluster;

    if (!rc->used) {
        return NGX_OK;
    }

    /* a master lost may have failed over: where are its slots now */

    if (rc->master || !cl->loaded) {
        ngx_ent_redis_cluster_stale(cl);
        return NGX_OK;
    }

    /* a node that serves no slot (a replica seed, an ASK target): gone */

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rc->pool->log, 0,
                   "redis cluster: %V lost, it serves no slot",
                   &rc->node.name);

    rc->used = 0;

    return NGX_DONE;
}


/* the slot map */


static void
ngx_ent_redis_cluster_stale(ngx_ent_redis_cluster_t *cl)
{
    ngx_msec_t  elapsed;

    cl->wanted = 1;

    if (cl->refreshing || cl->timer.timer_set
        || ngx_exiting || ngx_quit || ngx_terminate)
    {
        return;
    }

    elapsed = ngx_current_msec - cl->last;

    ngx_add_timer(&cl->timer, (elapsed < NGX_ENT_CLUSTER_REFRESH_MIN)
                              ? NGX_ENT_CLUSTER_REFRESH_MIN - elapsed : 1);
}


static void
ngx_ent_redis_cluster_timer(ngx_event_t *ev)
{
    ngx_ent_redis_cluster_refresh(ev->data);
}


/* CLUSTER SLOTS, asked of a node that is up */

static void
ngx_ent_redis_cluster_refresh(ngx_ent_redis_cluster_t *cl)
{
    ngx_str_t              argv[2];
    ngx_uint_t             i, n, connecting;
    ngx_ent_op_t          *op;
    ngx_ent_redis_conf_t  *conf;
    ngx_ent_redis_pool_t  *pool;
    ngx_ent_redis_conn_t  *rc;

    pool = cl->pool;
    conf = pool->conf;

    if (cl->refreshing || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    rc = NULL;
    connecting = 0;

    for (i = 1; i <= pool->nconns; i++) {
        n = (cl->asked + i) % pool->nconns;

        if (!pool->conns[n].used) {
            continue;
        }

        if (pool->conns[n].state == NGX_ENT_REDIS_READY) {
            rc = &pool->conns[n];
            break;
        }

        if (pool->conns[n].state == NGX_ENT_REDIS_CONNECTING) {
            connecting = 1;
        }
    }

    if (rc == NULL) {
        /* the first connection up asks (ngx_ent_redis_cluster_connected) */

        if (!connecting) {
            for (i = 0; i < conf->nseeds; i++) {
                (void) ngx_ent_redis_cluster_node(cl, conf->seeds[i].sockaddr,
                                                  conf->seeds[i].socklen);
            }
        }

        return;
    }

    op = ngx_ent_op_create(NULL, sizeof(redisReply *),
                           ngx_ent_redis_cluster_mapped, cl);
    if (op == NULL) {
        return;
    }

    op->replies = (redisReply **) (op + 1);

    ngx_str_set(&argv[0], "CLUSTER");
    ngx_str_set(&argv[1], "SLOTS");

    if (ngx_ent_redis_append(rc, 2, argv) != NGX_OK) {
        ngx_ent_op_free(op);
        return;
    }

    op->ncmds = 1;

    ngx_ent_redis_queue(rc, op);

    cl->refreshing = 1;
    cl->wanted = 0;
    cl->last = ngx_current_msec;
    cl->asked = rc - pool->conns;
}


static void
ngx_ent_redis_cluster_mapped(ngx_ent_op_t *op)
{
    ngx_msec_t                delay;
    ngx_ent_redis_cluster_t  *cl;

    cl = op->data;
    cl->refreshing = 0;

    if (op->status != NGX_ENT_OK || op->nreplies != 1) {
        /* the node went away: another one is asked soon */
        ngx_ent_redis_cluster_stale(cl);
        return;
    }

    if (ngx_ent_redis_cluster_load(cl, op->replies[0]) != NGX_OK) {
        /*
         * The old map stays.  A map refused (logged) is asked for again
         * after 0.2, 0.4 ... 5 s: it may well be refused again
         */

        delay = NGX_ENT_CLUSTER_REFRESH_MIN << ngx_min(cl->refused + 1, 6);
        cl->refused++;
        cl->wanted = 1;

        if (!cl->timer.timer_set && !ngx_exiting && !ngx_quit
            && !ngx_terminate)
        {
            ngx_add_timer(&cl->timer,
                          ngx_min(delay, NGX_ENT_CLUSTER_REFUSED_MAX));
        }

        return;
    }

    cl->refused = 0;

    if (cl->wanted) {
        /* something moved while the map was on its way */
        cl->wanted = 0;
        ngx_ent_redis_cluster_stale(cl);
        return;
    }

    /*
     * A master the map names is down: its replica may be promoted any
     * moment, and the next map says so (the reconnections' backoff may
     * be longer than that)
     */

    if (ngx_ent_redis_cluster_down(cl) && !cl->timer.timer_set
        && !ngx_exiting && !ngx_quit && !ngx_terminate)
    {
        cl->wanted = 1;
        ngx_add_timer(&cl->timer, NGX_ENT_CLUSTER_DOWN_POLL);
    }
}


static ngx_uint_t
ngx_ent_redis_cluster_down(ngx_ent_redis_cluster_t *cl)
{
    ngx_uint_t             i;
    ngx_ent_redis_conn_t  *rc;

    if (cl->unmapped) {
        return 1;
    }

    for (i = 0; i < cl->pool->nconns; i++) {
        rc = &cl->pool->conns[i];

        if (rc->used && rc->master
            && (rc->state == NGX_ENT_REDIS_BACKOFF
                || rc->state == NGX_ENT_REDIS_DOWN))
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_ent_redis_cluster_load(ngx_ent_redis_cluster_t *cl, redisReply *reply)
{
    u_char                  port[NGX_INT_T_LEN];
    u_char                  slots[NGX_ENT_REDIS_SLOTS];
    size_t                  nranges, port_len;
    socklen_t               socklen, lens[NGX_ENT_CLUSTER_MAX_NODES];
    ngx_uint_t              i, s, n, masters, unmapped;
    ngx_sockaddr_t          sa, addrs[NGX_ENT_CLUSTER_MAX_NODES];
    ngx_ent_redis_pool_t   *pool;
    ngx_ent_redis_conn_t   *rc, *asked;
    ngx_ent_redis_range_t  *ranges;

    pool = cl->pool;
    asked = &pool->conns[cl->asked];
    unmapped = 0;

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "redis %V refused CLUSTER SLOTS: %*s",
                      &asked->node.name, (size_t) ngx_min(reply->len, 128),
                      reply->str);
        return NGX_ERROR;
    }

    ranges = ngx_alloc(NGX_ENT_REDIS_SLOTS * sizeof(ngx_ent_redis_range_t),
                       pool->log);
    if (ranges == NULL) {
        return NGX_ERROR;
    }

    if (ngx_ent_redis_cluster_slots(reply, ranges, NGX_ENT_REDIS_SLOTS,
                                    &nranges)
        != 0)
    {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "redis %V sent a malformed CLUSTER SLOTS reply",
                      &asked->node.name);
        ngx_free(ranges);
        return NGX_ERROR;
    }

    /* the masters named, each once */

    n = 0;

    for (i = 0; i < nranges; i++) {
        port_len = ngx_sprintf(port, "%ui", (ngx_uint_t) ranges[i].port)
                   - port;

        if (ngx_ent_redis_cluster_addr(asked, ranges[i].ip, ranges[i].ip_len,
                                       port, port_len, &sa, &socklen)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                          "redis %V names a master at \"%*s\", not an IP "
                          "literal: the slot map is refused",
                          &asked->node.name, ranges[i].ip_len, ranges[i].ip);
            ngx_free(ranges);
            return NGX_ERROR;
        }

        if (ngx_ent_redis_cluster_named(addrs, lens, n, &sa.sockaddr, socklen)
            < n)
        {
            continue;
        }

        if (n == NGX_ENT_CLUSTER_MAX_NODES) {
            ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                          "redis %V names more than %d masters: the slot map "
                          "is refused", &asked->node.name,
                          NGX_ENT_CLUSTER_MAX_NODES);
            ngx_free(ranges);
            return NGX_ERROR;
        }

        addrs[n] = sa;
        lens[n++] = socklen;
    }

    /*
     * Nodes the map does not name make room first (after a failover to
     * new addresses the old and the new may not fit together); the one
     * that answered is on the stack and stays, as do nodes with commands
     * in flight
     */

    for (i = 0; i < pool->nconns; i++) {
        rc = &pool->conns[i];

        if (!rc->used || rc == asked || rc->ninflight) {
            continue;
        }

        if (ngx_ent_redis_cluster_named(addrs, lens, n, rc->node.sockaddr,
                                        rc->node.socklen)
            == n)
        {
            ngx_ent_redis_cluster_release(rc);
        }
    }

    for (s = 0; s < NGX_ENT_REDIS_SLOTS; s++) {
        if (cl->slots[s] && !pool->conns[cl->slots[s] - 1].used) {
            cl->slots[s] = 0;
        }
    }

    ngx_memzero(slots, sizeof(slots));

    for (i = 0; i < nranges; i++) {
        port_len = ngx_sprintf(port, "%ui", (ngx_uint_t) ranges[i].port)
                   - port;

        (void) ngx_ent_redis_cluster_addr(asked, ranges[i].ip,
                                          ranges[i].ip_len, port, port_len,
                                          &sa, &socklen);

        rc = ngx_ent_redis_cluster_node(cl, &sa.sockaddr, socklen);

        if (rc == NULL) {
            ngx_free(ranges);
            return NGX_ERROR;
        }

        if (!rc->used) {
            /*
             * its connect() failed at once (it is unused then, with no
             * backoff of its own): pointing the slots at it would fail
             * them for good; left out of the map, they go to any node,
             * whose MOVED connects to it again, and the map is asked for
             * again as while a master is down
             */
            unmapped = 1;
            continue;
        }

        for (s = ranges[i].start; s <= ranges[i].end; s++) {
            slots[s] = (u_char) (rc - pool->conns + 1);
        }
    }

    ngx_free(ranges);

    cl->maps++;
    cl->loaded = 1;
    cl->unmapped = unmapped;

    for (i = 0; i < pool->nconns; i++) {
        pool->conns[i].master = 0;
    }

    for (s = 0; s < NGX_ENT_REDIS_SLOTS; s++) {
        if (slots[s]) {
            pool->conns[slots[s] - 1].master = 1;
        }
    }

    masters = 0;

    for (i = 0; i < pool->nconns; i++) {
        rc = &pool->conns[i];

        if (!rc->used) {
            continue;
        }

        if (rc->master) {
            masters++;

        } else if (rc->ninflight == 0 && rc != asked) {
            /* the one that answered is on the stack: it stays for now */
            ngx_ent_redis_cluster_release(rc);
        }
    }

    if (ngx_memcmp(slots, cl->slots, sizeof(slots)) != 0) {
        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                      "redis cluster slot map from %V: %uz ranges on %ui "
                      "masters", &asked->node.name, nranges, masters);
        ngx_memcpy(cl->slots, slots, sizeof(slots));
    }

    return NGX_OK;
}


/* where sa is among the n addresses, n if it is not */

static ngx_uint_t
ngx_ent_redis_cluster_named(ngx_sockaddr_t *addrs, socklen_t *lens,
    ngx_uint_t n, struct sockaddr *sa, socklen_t socklen)
{
    ngx_uint_t  k;

    for (k = 0; k < n; k++) {
        if (ngx_cmp_sockaddr(&addrs[k].sockaddr, lens[k], sa, socklen, 1)
            == NGX_OK)
        {
            break;
        }
    }

    return k;
}
