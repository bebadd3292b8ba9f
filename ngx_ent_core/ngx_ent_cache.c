/*
 * ngx_ent core: shared-memory caches.
 *
 * One zone per cache: slab pool, a hash table of chained entries (a bucket
 * array sized to the zone, so a lookup touches two or three cache lines
 * however many entries there are: an rbtree walk over 30,000 entries cost
 * a dozen cache misses), and an LRU queue, as in limit_req.  An entry is fresh until its TTL,
 * may be negative (the query found nothing), may carry an error mark (the
 * backend failed: answer "busy" until it passes, so a dead backend is not
 * hammered), and may be "pending": a fill is in progress, started by the
 * worker whose pid it records.  A full zone evicts least recently used
 * entries; the zone survives "nginx -s reload".
 *
 * Coalescing: the first miss marks the entry pending and starts one
 * query; later misses in the same worker wait on that fill, misses in
 * other workers poll the entry every few milliseconds.  Every waiter is
 * woken when the fill ends and simply asks again.  An invalidation that
 * arrives while a fill is pending marks it, so the stale answer that fill
 * brings back is not served as fresh.
 *
 * Time is ngx_current_msec, which nginx takes from CLOCK_MONOTONIC: the
 * same clock in every worker, before and after a reload.
 */


#include "ngx_ent_core_int.h"


#define NGX_ENT_CACHE_POLL       5
#define NGX_ENT_CACHE_MAX_KEY    1024
#define NGX_ENT_CACHE_EVICT      16

/* bumped whenever the layout of the zone changes */
#define NGX_ENT_CACHE_MAGIC      0x656e7406  /* "ent", version 6 */

#define NGX_ENT_CACHE_LISTENERS  8


typedef struct ngx_ent_cache_node_s  ngx_ent_cache_node_t;

typedef struct ngx_ent_cache_sh_s {
    uint32_t                   magic;
    ngx_ent_cache_node_t     **buckets;
    ngx_uint_t                 mask;         /* buckets - 1, a power of 2 */
    ngx_queue_t                lru;
    ngx_uint_t                 generation;
    ngx_uint_t                 epoch;        /* every zone-wide outdate */
    ngx_uint_t                 entries;
    ngx_uint_t                 hits;
    ngx_uint_t                 misses;
    ngx_uint_t                 stale;
    ngx_uint_t                 fills;
    ngx_uint_t                 fill_errors;
    ngx_uint_t                 evictions;
    ngx_uint_t                 invalidations;
    ngx_msec_t                 invalidated_at;  /* the last one (fills) */
    uint32_t                   fill_seq;     /* the last fill's number */

    /* the nodes' invalidation listeners, to know whether any was away */
    ngx_pid_t                  listeners[NGX_ENT_CACHE_LISTENERS];
    ngx_msec_t                 stopped;     /* one left gracefully at */

    uint64_t                   seed[2];     /* the hash's key, random */
} ngx_ent_cache_sh_t;


struct ngx_ent_cache_node_s {
    ngx_ent_cache_node_t      *next;         /* in its bucket */
    uint32_t                   hash;
    ngx_queue_t                queue;
    ngx_uint_t                 generation;
    ngx_msec_t                 touched;     /* moved to the LRU head at */
    ngx_msec_t                 expires;     /* value fresh until */
    ngx_msec_t                 pending;     /* fill running until */
    ngx_msec_t                 error;       /* backend failed: busy until */
    ngx_pid_t                  filler;
    uint32_t                   fill_seq;    /* the running fill's number */
    uint32_t                   vlen;
    uint16_t                   klen;
    u_char                     has_value;
    u_char                     negative;
    u_char                     invalidated;
    u_char                     data[1];     /* key, then value */
};


typedef struct {
    ngx_queue_t                queue;       /* in cmcf->fills */
    ngx_ent_cache_t           *cache;
    uint32_t                   hash;
    ngx_str_t                  key;
    ngx_queue_t                waiters;
    ngx_uint_t                 remote;
    uint32_t                   seq;         /* its mark's fill_seq */
    ngx_ent_cache_transform_pt transform;
} ngx_ent_cache_pending_t;


static ngx_int_t ngx_ent_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_ent_cache_outdate(ngx_ent_cache_t *cache,
    ngx_uint_t keep_stale);

static uint32_t ngx_ent_cache_hash(ngx_ent_cache_t *cache, ngx_str_t *key);
static ngx_ent_cache_node_t *ngx_ent_cache_lookup(ngx_ent_cache_t *cache,
    ngx_str_t *key, uint32_t hash);
static ngx_ent_cache_node_t *ngx_ent_cache_alloc(ngx_ent_cache_t *cache,
    size_t size);
static void ngx_ent_cache_free_node(ngx_ent_cache_t *cache,
    ngx_ent_cache_node_t *node);
static void ngx_ent_cache_touch(ngx_ent_cache_t *cache,
    ngx_ent_cache_node_t *cn);
static ngx_ent_cache_node_t *ngx_ent_cache_store(ngx_ent_cache_t *cache,
    ngx_ent_cache_node_t *node, ngx_str_t *key, uint32_t hash,
    ngx_str_t *value, ngx_msec_t ttl, ngx_uint_t negative);
static ngx_int_t ngx_ent_cache_copy(ngx_ent_cache_node_t *node,
    ngx_pool_t *pool, ngx_str_t *value);
static ngx_ent_cache_pending_t *ngx_ent_cache_fill_find(
    ngx_http_ent_core_main_conf_t *cmcf, ngx_ent_cache_t *cache,
    ngx_str_t *key, uint32_t hash, ngx_uint_t remote);
static ngx_ent_cache_pending_t *ngx_ent_cache_fill_new(
    ngx_http_ent_core_main_conf_t *cmcf, ngx_ent_cache_t *cache,
    ngx_str_t *key, uint32_t hash, ngx_uint_t remote);
static void ngx_ent_cache_fill_free(ngx_ent_cache_pending_t *fill);
static ngx_int_t ngx_ent_cache_wait(ngx_http_request_t *r,
    ngx_ent_cache_pending_t *fill, ngx_ent_op_handler_pt handler, void *data);
static void ngx_ent_cache_fill_done(ngx_ent_op_t *op);
static ngx_uint_t ngx_ent_cache_transform(ngx_ent_cache_pending_t *fill,
    ngx_ent_op_t *op, ngx_str_t *value, ngx_pool_t **pool);
static void ngx_ent_cache_wake(ngx_ent_cache_pending_t *fill,
    ngx_uint_t status);
static void ngx_ent_cache_waiter_cancel(ngx_ent_op_t *op);
static void ngx_ent_cache_poll_handler(ngx_event_t *ev);


ngx_ent_cache_t *
ngx_ent_cache_declare(ngx_conf_t *cf, ngx_str_t *name, size_t size)
{
    ngx_uint_t                      i;
    ngx_ent_cache_t                *cache, **caches;
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ent_core_module);

    caches = cmcf->caches.elts;

    for (i = 0; i < cmcf->caches.nelts; i++) {
        cache = caches[i];

        if (cache->name.len == name->len
            && ngx_strncmp(cache->name.data, name->data, name->len) == 0)
        {
            if (size && !cache->declared) {
                /* a module named it first, with the default size */
                cache->shm_zone->shm.size = size;
            }

            return cache;
        }
    }

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_ent_cache_t));
    if (cache == NULL) {
        return NULL;
    }

    cache->name.data = ngx_pstrdup(cf->pool, name);
    if (cache->name.data == NULL) {
        return NULL;
    }

    cache->name.len = name->len;
    cache->ttl = 60000;
    cache->negative_ttl = 10000;
    cache->error_ttl = 1000;
    cache->stale = 0;
    cache->fill_timeout = 10000;

    cache->shm_zone = ngx_shared_memory_add(cf, &cache->name,
                                            size ? size : 10 * 1024 * 1024,
                                            &ngx_http_ent_core_module);
    if (cache->shm_zone == NULL) {
        return NULL;
    }

    if (cache->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used by another module",
                           name);
        return NULL;
    }

    cache->shm_zone->init = ngx_ent_cache_init_zone;
    cache->shm_zone->data = cache;

    caches = ngx_array_push(&cmcf->caches);
    if (caches == NULL) {
        return NULL;
    }

    *caches = cache;

    return cache;
}


ngx_ent_cache_t *
ngx_ent_cache_zone(ngx_conf_t *cf, ngx_str_t *name)
{
    return ngx_ent_cache_declare(cf, name, 0);
}


static ngx_int_t
ngx_ent_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_ent_cache_t  *ocache = data;

    size_t            len, n;
    ngx_ent_cache_t  *cache;

    cache = shm_zone->data;
    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (ocache || shm_zone->shm.exists) {
        /* reload: keep what the previous cycle cached, if we can read it */

        cache->sh = cache->shpool->data;

        if (cache->sh == NULL || cache->sh->magic != NGX_ENT_CACHE_MAGIC) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "ent cache zone \"%V\" was made by another "
                          "version of the module: restart nginx instead "
                          "of reloading", &shm_zone->shm.name);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    cache->sh = ngx_slab_alloc(cache->shpool, sizeof(ngx_ent_cache_sh_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(cache->sh, sizeof(ngx_ent_cache_sh_t));

    if (ngx_ent_random(cache->sh->seed, sizeof(cache->sh->seed),
                       shm_zone->shm.log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cache->sh->magic = NGX_ENT_CACHE_MAGIC;
    cache->shpool->data = cache->sh;

    /* a bucket per 512 bytes of zone: chains stay short when it is full */

    n = 1;

    while (n < shm_zone->shm.size / 512) {
        n <<= 1;
    }

    cache->sh->buckets = ngx_slab_calloc(cache->shpool,
                                         n * sizeof(ngx_ent_cache_node_t *));
    if (cache->sh->buckets == NULL) {
        return NGX_ERROR;
    }

    cache->sh->mask = n - 1;

    ngx_queue_init(&cache->sh->lru);

    len = sizeof(" in ent cache zone \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in ent cache zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is normal: the LRU makes room */
    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


void
ngx_ent_cache_init_worker(ngx_http_ent_core_main_conf_t *cmcf, ngx_log_t *log)
{
    ngx_queue_init(&cmcf->fills);

    cmcf->fill_poll.handler = ngx_ent_cache_poll_handler;
    cmcf->fill_poll.data = cmcf;
    cmcf->fill_poll.log = log;
}


void
ngx_ent_cache_exit_worker(ngx_http_ent_core_main_conf_t *cmcf)
{
    ngx_queue_t           *q, *w;
    ngx_ent_op_t          *op;
    ngx_ent_cache_pending_t  *fill;

    if (cmcf->fill_poll.timer_set) {
        ngx_del_timer(&cmcf->fill_poll);
    }

    if (cmcf->fills.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&cmcf->fills)) {
        q = ngx_queue_head(&cmcf->fills);
        fill = ngx_queue_data(q, ngx_ent_cache_pending_t, queue);

        while (!ngx_queue_empty(&fill->waiters)) {
            w = ngx_queue_head(&fill->waiters);
            ngx_queue_remove(w);
            op = ngx_queue_data(w, ngx_ent_op_t, queue);
            ngx_ent_op_free(op);
        }

        ngx_ent_cache_fill_free(fill);
    }
}


/* lookups */


/*
 * Keys come from requests (a Host, a session id): the buckets are chosen
 * by SipHash-1-3 under a key drawn when the zone is made, so that nobody
 * can aim many keys at one chain.  It is also several times faster than
 * nginx's CRC32 (a 4-bit table) on keys of 40 to 100 bytes.
 */

static uint32_t
ngx_ent_cache_hash(ngx_ent_cache_t *cache, ngx_str_t *key)
{
    return (uint32_t) ngx_ent_siphash(cache->sh->seed, key->data, key->len);
}


static ngx_ent_cache_node_t *
ngx_ent_cache_lookup(ngx_ent_cache_t *cache, ngx_str_t *key, uint32_t hash)
{
    ngx_ent_cache_node_t  *cn;

    for (cn = cache->sh->buckets[hash & cache->sh->mask]; cn; cn = cn->next) {
        if (cn->hash == hash && cn->klen == key->len
            && ngx_memcmp(cn->data, key->data, key->len) == 0)
        {
            return cn;
        }
    }

    return NULL;
}


void
ngx_ent_cache_delete(ngx_ent_cache_t *cache, ngx_str_t *key)
{
    uint32_t               hash;
    ngx_ent_cache_node_t  *cn;

    if (key->len == 0 || key->len > NGX_ENT_CACHE_MAX_KEY) {
        return;
    }

    hash = ngx_ent_cache_hash(cache, key);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_ent_cache_lookup(cache, key, hash);

    if (cn) {
        cache->sh->invalidations++;
        cache->sh->invalidated_at = ngx_current_msec;

        if ((ngx_msec_int_t) (cn->pending - ngx_current_msec) > 0) {
            /* the fill in progress may bring back the old answer */
            cn->invalidated = 1;
            cn->has_value = 0;
            cn->error = 0;

        } else {
            ngx_ent_cache_free_node(cache, cn);
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


void
ngx_ent_cache_flush(ngx_ent_cache_t *cache)
{
    ngx_ent_cache_outdate(cache, 0);
}


/*
 * Values that are not rows (documents a module fetched over HTTP): stored
 * with ngx_ent_cache_put() for a TTL of the caller's choosing, read with
 * ngx_ent_cache_peek(), which also returns an expired value (with *left
 * 0) so that the caller may serve it while it refreshes.  A flush or an
 * invalidation removes them like any entry.
 */

ngx_uint_t
ngx_ent_cache_generation(ngx_ent_cache_t *cache)
{
    return *(volatile ngx_uint_t *) &cache->sh->generation;
}


ngx_uint_t
ngx_ent_cache_epoch(ngx_ent_cache_t *cache)
{
    return *(volatile ngx_uint_t *) &cache->sh->epoch;
}


uint64_t
ngx_ent_cache_hash64(ngx_ent_cache_t *cache, const u_char *p, size_t len)
{
    return ngx_ent_siphash(cache->sh->seed, p, len);
}


ngx_int_t
ngx_ent_cache_peek(ngx_ent_cache_t *cache, ngx_str_t *key, ngx_pool_t *pool,
    ngx_str_t *value, ngx_msec_t *left)
{
    uint32_t               hash;
    ngx_int_t              rc;
    ngx_msec_int_t         ms;
    ngx_ent_cache_node_t  *cn;

    if (key->len == 0 || key->len > NGX_ENT_CACHE_MAX_KEY) {
        return NGX_DECLINED;
    }

    hash = ngx_ent_cache_hash(cache, key);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_ent_cache_lookup(cache, key, hash);

    if (cn == NULL || !cn->has_value
        || cn->generation != cache->sh->generation)
    {
        cache->sh->misses++;
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_DECLINED;
    }

    ms = (ngx_msec_int_t) (cn->expires - ngx_current_msec);
    *left = ms > 0 ? (ngx_msec_t) ms : 0;

    if (ms > 0) {
        cache->sh->hits++;

    } else {
        cache->sh->stale++;
    }

    ngx_ent_cache_touch(cache, cn);

    rc = ngx_ent_cache_copy(cn, pool, value);

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return rc;
}


ngx_int_t
ngx_ent_cache_put(ngx_ent_cache_t *cache, ngx_str_t *key, ngx_str_t *value,
    ngx_msec_t ttl)
{
    uint32_t               hash;
    ngx_ent_cache_node_t  *cn;

    if (key->len == 0 || key->len > NGX_ENT_CACHE_MAX_KEY) {
        return NGX_ERROR;
    }

    hash = ngx_ent_cache_hash(cache, key);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_ent_cache_lookup(cache, key, hash);
    cn = ngx_ent_cache_store(cache, cn, key, hash, value, ttl, 0);

    if (cn) {
        cache->sh->fills++;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return cn ? NGX_OK : NGX_ERROR;
}


/*
 * A node-wide lease on key for ms: NGX_OK to the first caller, NGX_BUSY
 * to every other until it runs out (a refresh or a throttle that one
 * worker of the node does for all).
 */

ngx_int_t
ngx_ent_cache_claim(ngx_ent_cache_t *cache, ngx_str_t *key, ngx_msec_t ms)
{
    uint32_t               hash;
    ngx_int_t              rc;
    ngx_ent_cache_node_t  *cn;

    if (key->len == 0 || key->len > NGX_ENT_CACHE_MAX_KEY) {
        return NGX_ERROR;
    }

    hash = ngx_ent_cache_hash(cache, key);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_ent_cache_lookup(cache, key, hash);

    if (cn && (ngx_msec_int_t) (cn->pending - ngx_current_msec) > 0) {
        rc = NGX_BUSY;

    } else {
        if (cn == NULL) {
            cn = ngx_ent_cache_store(cache, NULL, key, hash, NULL, 0, 0);
        }

        if (cn) {
            cn->pending = ngx_current_msec + ms;
            cn->filler = ngx_pid;
            rc = NGX_OK;

        } else {
            rc = NGX_ERROR;
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return rc;
}


/*
 * A listener starts (on) or stops (off).  Notifications sent while no
 * listener was there are lost, so a starting listener flushes a zone
 * unless another one is alive, or one left within the last second because
 * its worker was shutting down (a reload hands over); a listener that lost
 * its connection, or crashed (a pid no longer alive), gives no such grace.
 */

void
ngx_ent_cache_listening(ngx_http_ent_core_main_conf_t *cmcf, ngx_uint_t on)
{
    ngx_uint_t            i, k, covered;
    ngx_ent_cache_t     **caches;
    ngx_ent_cache_sh_t   *sh;

    caches = cmcf->caches.elts;

    for (i = 0; i < cmcf->caches.nelts; i++) {
        sh = caches[i]->sh;
        covered = 0;

        ngx_shmtx_lock(&caches[i]->shpool->mutex);

        for (k = 0; k < NGX_ENT_CACHE_LISTENERS; k++) {
            if (sh->listeners[k] == 0) {
                continue;
            }

            if (sh->listeners[k] == ngx_pid) {
                sh->listeners[k] = 0;
                continue;
            }

            if (kill(sh->listeners[k], 0) == -1 && ngx_errno == NGX_ESRCH) {
                /* it crashed: nobody knows what it missed */
                sh->listeners[k] = 0;
                continue;
            }

            covered = 1;
        }

        if (!on) {
            /*
             * only a worker that is shutting down hands over to its
             * successor; a lost connection gives no such grace
             */

            if (ngx_exiting || ngx_quit || ngx_terminate) {
                sh->stopped = ngx_current_msec;
            }

            ngx_shmtx_unlock(&caches[i]->shpool->mutex);
            continue;
        }

        if (sh->stopped && ngx_current_msec - sh->stopped < 1000) {
            covered = 1;
        }

        for (k = 0; k < NGX_ENT_CACHE_LISTENERS; k++) {
            if (sh->listeners[k] == 0) {
                sh->listeners[k] = ngx_pid;
                break;
            }
        }

        ngx_shmtx_unlock(&caches[i]->shpool->mutex);

        if (!covered) {
            ngx_ent_cache_outdate(caches[i], 1);
        }
    }
}


/*
 * A flush (keep_stale 0) drops every entry: a new generation.  An expiry
 * (keep_stale 1: notifications may have been missed, but nothing says what
 * changed) makes every entry due for a refresh now and leaves it good
 * enough to serve stale (within the zone's "stale") should that refresh
 * fail: a database that fails over does not turn a whole cache into 503s.
 * Either way a fill in flight must not store what it brings back as fresh
 * (it may predate the change).
 */

static void
ngx_ent_cache_outdate(ngx_ent_cache_t *cache, ngx_uint_t keep_stale)
{
    ngx_queue_t           *q;
    ngx_ent_cache_node_t  *cn;

    ngx_shmtx_lock(&cache->shpool->mutex);

    if (!keep_stale) {
        cache->sh->generation++;
    }

    cache->sh->epoch++;

    cache->sh->invalidations++;
    cache->sh->invalidated_at = ngx_current_msec;

    for (q = ngx_queue_head(&cache->sh->lru);
         q != ngx_queue_sentinel(&cache->sh->lru);
         q = ngx_queue_next(q))
    {
        cn = ngx_queue_data(q, ngx_ent_cache_node_t, queue);

        if (keep_stale) {
            if ((ngx_msec_int_t) (cn->expires - ngx_current_msec) > 0) {
                cn->expires = ngx_current_msec;
            }

            cn->error = 0;
        }

        if ((ngx_msec_int_t) (cn->pending - ngx_current_msec) > 0) {
            cn->invalidated = 1;
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


void
ngx_ent_cache_fill_timeout(ngx_http_ent_core_main_conf_t *cmcf,
    ngx_msec_t timeout)
{
    ngx_uint_t        i;
    ngx_ent_cache_t **caches;

    caches = cmcf->caches.elts;

    for (i = 0; i < cmcf->caches.nelts; i++) {
        caches[i]->fill_timeout = timeout;
    }
}


void
ngx_ent_cache_flush_all(ngx_http_ent_core_main_conf_t *cmcf)
{
    ngx_uint_t        i;
    ngx_ent_cache_t **caches;

    caches = cmcf->caches.elts;

    for (i = 0; i < cmcf->caches.nelts; i++) {
        ngx_ent_cache_flush(caches[i]);
    }
}


void
ngx_ent_cache_invalidate(ngx_http_ent_core_main_conf_t *cmcf, u_char *payload,
    size_t len, ngx_log_t *log)
{
    int               what;
    size_t            zlen, klen;
    ngx_str_t         key;
    ngx_uint_t        i;
    const u_char     *zone, *k;
    ngx_ent_cache_t **caches;

    if (ngx_ent_notify_parse(payload, len, &what, &zone, &zlen, &k, &klen)
        != 0)
    {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "ent: malformed invalidation \"%*s\" ignored",
                      ngx_min(len, 128), payload);
        return;
    }

    if (what == NGX_ENT_NOTIFY_ALL) {
        ngx_ent_cache_flush_all(cmcf);
        return;
    }

    caches = cmcf->caches.elts;

    for (i = 0; i < cmcf->caches.nelts; i++) {
        if (caches[i]->name.len != zlen
            || ngx_strncmp(caches[i]->name.data, zone, zlen) != 0)
        {
            continue;
        }

        if (what == NGX_ENT_NOTIFY_ZONE) {
            ngx_ent_cache_flush(caches[i]);
            return;
        }

        key.data = (u_char *) k;
        key.len = klen;

        ngx_ent_cache_delete(caches[i], &key);
        return;
    }

    /* a zone this configuration does not use: nothing to do */
}


/* the coalescing fetch */


ngx_int_t
ngx_ent_cache_fetch(ngx_http_request_t *r, ngx_ent_cache_t *cache,
    ngx_str_t *key, ngx_ent_cache_fill_t *how, ngx_str_t *value,
    ngx_ent_op_handler_pt handler, void *data)
{
    uint32_t                        hash, seq;
    ngx_int_t                       rc;
    ngx_msec_t                      now, invalidated;
    ngx_pid_t                       filler;
    ngx_uint_t                      flags;
    ngx_ent_cache_node_t           *cn;
    ngx_ent_cache_pending_t        *fill;
    ngx_http_ent_core_main_conf_t  *cmcf;

    if (key->len == 0 || key->len > NGX_ENT_CACHE_MAX_KEY) {
        return NGX_ERROR;
    }

    cmcf = ngx_ent_core_main_conf();
    if (cmcf == NULL) {
        return NGX_ERROR;
    }

    hash = ngx_ent_cache_hash(cache, key);
    now = ngx_current_msec;
    flags = how->flags;

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_ent_cache_lookup(cache, key, hash);

    if (cn && cn->generation != cache->sh->generation) {
        /* flushed */
        cn->has_value = 0;
        cn->error = 0;
        cn->generation = cache->sh->generation;
    }

    if (cn && cn->has_value && (ngx_msec_int_t) (cn->expires - now) > 0) {
        cache->sh->hits++;
        ngx_ent_cache_touch(cache, cn);

        rc = ngx_ent_cache_copy(cn, r->pool, value);

        ngx_shmtx_unlock(&cache->shpool->mutex);
        return rc;
    }

    if (cn && (ngx_msec_int_t) (cn->error - now) > 0) {
        /* the backend failed a moment ago */
        goto failed;
    }

    if (cn && (ngx_msec_int_t) (cn->pending - now) > 0) {
        filler = cn->filler;
        ngx_shmtx_unlock(&cache->shpool->mutex);

        fill = ngx_ent_cache_fill_find(cmcf, cache, key, hash,
                                       filler != ngx_pid);
        if (fill == NULL) {
            fill = ngx_ent_cache_fill_new(cmcf, cache, key, hash, 1);
            if (fill == NULL) {
                return NGX_ERROR;
            }
        }

        return ngx_ent_cache_wait(r, fill, handler, data);
    }

    /* a miss: this worker fills */

    cache->sh->misses++;

    if (cn == NULL) {
        cn = ngx_ent_cache_store(cache, NULL, key, hash, NULL, 0, 0);
        if (cn == NULL) {
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return NGX_ERROR;
        }

        cn->has_value = 0;
    }

    cn->pending = now + cache->fill_timeout;
    cn->filler = ngx_pid;
    cn->fill_seq = ++cache->sh->fill_seq;
    cn->invalidated = 0;
    invalidated = cache->sh->invalidated_at;
    seq = cn->fill_seq;

    ngx_shmtx_unlock(&cache->shpool->mutex);

    fill = ngx_ent_cache_fill_new(cmcf, cache, key, hash, 0);
    if (fill == NULL) {
        goto unmark;
    }

    fill->transform = how->transform;
    fill->seq = seq;

    /* from a replica when there is one that is recent enough */

    rc = ngx_ent_pg_query_read(NULL, how->stmt, how->params,
                               ngx_ent_cache_fill_done, fill, invalidated);

    if (rc == NGX_AGAIN) {
        return ngx_ent_cache_wait(r, fill, handler, data);
    }

    ngx_ent_cache_fill_free(fill);

unmark:

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_ent_cache_lookup(cache, key, hash);

    if (cn == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_BUSY;
    }

    cn->pending = 0;
    cn->error = now + cache->error_ttl;
    cache->sh->fill_errors++;

failed:

    if ((flags & NGX_ENT_CACHE_STALE_OK) && cn->has_value
        && (ngx_msec_int_t) (cn->expires + cache->stale - now) > 0)
    {
        cache->sh->stale++;
        rc = ngx_ent_cache_copy(cn, r->pool, value);
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return rc;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return NGX_BUSY;
}


static ngx_int_t
ngx_ent_cache_wait(ngx_http_request_t *r, ngx_ent_cache_pending_t *fill,
    ngx_ent_op_handler_pt handler, void *data)
{
    ngx_ent_op_t                   *op;
    ngx_http_ent_core_main_conf_t  *cmcf;

    op = ngx_ent_op_create(r, 0, handler, data);
    if (op == NULL) {
        if (ngx_queue_empty(&fill->waiters) && fill->remote) {
            ngx_ent_cache_fill_free(fill);
        }

        return NGX_ERROR;
    }

    op->backend = fill;
    op->cancel = ngx_ent_cache_waiter_cancel;

    ngx_queue_insert_tail(&fill->waiters, &op->queue);

    if (fill->remote) {
        cmcf = ngx_ent_core_main_conf();

        if (!cmcf->fill_poll.timer_set) {
            ngx_add_timer(&cmcf->fill_poll, NGX_ENT_CACHE_POLL);
        }
    }

    return NGX_AGAIN;
}


static void
ngx_ent_cache_waiter_cancel(ngx_ent_op_t *op)
{
    ngx_ent_cache_pending_t  *fill;

    fill = op->backend;

    ngx_queue_remove(&op->queue);
    ngx_ent_op_free(op);

    if (fill->remote && ngx_queue_empty(&fill->waiters)) {
        ngx_ent_cache_fill_free(fill);
    }
}


static void
ngx_ent_cache_fill_done(ngx_ent_op_t *op)
{
    ngx_str_t                 value;
    ngx_msec_t                now;
    ngx_uint_t                status;
    ngx_pool_t               *pool;
    ngx_ent_cache_t          *cache;
    ngx_ent_cache_node_t     *cn;
    ngx_ent_cache_pending_t  *fill;

    fill = op->data;
    cache = fill->cache;
    now = ngx_current_msec;
    pool = NULL;

    status = op->status;

    if (status == NGX_ENT_OK && fill->transform && op->rows.nrows) {
        status = ngx_ent_cache_transform(fill, op, &value, &pool);

    } else {
        value.data = (u_char *) op->rows.data;
        value.len = op->rows.len;
    }

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_ent_cache_lookup(cache, &fill->key, fill->hash);

    if (cn && (cn->filler != ngx_pid || cn->fill_seq != fill->seq)) {
        /*
         * our mark expired and another fill runs now (of another worker,
         * or of this one): what we bring back may be older than what it
         * will; our waiters ask again
         */
        ngx_shmtx_unlock(&cache->shpool->mutex);
        goto wake;
    }

    if (status == NGX_ENT_OK) {
        cache->sh->fills++;

        cn = ngx_ent_cache_store(cache, cn, &fill->key, fill->hash, &value,
                                 op->rows.nrows ? cache->ttl
                                                : cache->negative_ttl,
                                 op->rows.nrows == 0);

        if (cn && cn->invalidated) {
            /*
             * changed while we asked: the answer may predate the change,
             * so it is neither fresh nor good enough to serve stale
             */
            cn->has_value = 0;
            cn->invalidated = 0;
        }

    } else if (cn) {
        cache->sh->fill_errors++;
        cn->pending = 0;
        cn->error = now + cache->error_ttl;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

wake:

    if (pool) {
        ngx_destroy_pool(pool);
    }

    /*
     * out of the worker's fills before any waiter wakes: a handler that
     * asks for the key again must not join this fill, which is freed
     * below (its request would hang, and its cleanup touch freed memory)
     */

    ngx_queue_remove(&fill->queue);
    ngx_queue_init(&fill->queue);

    ngx_ent_cache_wake(fill, status);
    ngx_ent_cache_fill_free(fill);
}


static ngx_uint_t
ngx_ent_cache_transform(ngx_ent_cache_pending_t *fill, ngx_ent_op_t *op,
    ngx_str_t *value, ngx_pool_t **pool)
{
    *pool = ngx_create_pool(4096, ngx_cycle->log);
    if (*pool == NULL) {
        return NGX_ENT_ERROR;
    }

    if (fill->transform(&op->rows, *pool, value, ngx_cycle->log) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "ent cache zone \"%V\": the rows for \"%V\" could "
                      "not be compiled", &fill->cache->name, &fill->key);
        return NGX_ENT_ERROR;
    }

    return NGX_ENT_OK;
}


static void
ngx_ent_cache_wake(ngx_ent_cache_pending_t *fill, ngx_uint_t status)
{
    ngx_queue_t    *q, waiters;
    ngx_ent_op_t   *op;

    ngx_queue_init(&waiters);

    if (!ngx_queue_empty(&fill->waiters)) {
        ngx_queue_add(&waiters, &fill->waiters);
        ngx_queue_init(&fill->waiters);
    }

    /*
     * detach every waiter from the fill before waking any: a handler may
     * end another waiter's request (a shared pool, an HTTP/2 connection),
     * whose cleanup must then find nothing to cancel and no fill to free
     */

    for (q = ngx_queue_head(&waiters);
         q != ngx_queue_sentinel(&waiters);
         q = ngx_queue_next(q))
    {
        op = ngx_queue_data(q, ngx_ent_op_t, queue);
        op->cancel = NULL;
        op->backend = NULL;
    }

    while (!ngx_queue_empty(&waiters)) {
        q = ngx_queue_head(&waiters);
        ngx_queue_remove(q);

        op = ngx_queue_data(q, ngx_ent_op_t, queue);

        ngx_ent_op_complete(op, status);
    }
}


static void
ngx_ent_cache_poll_handler(ngx_event_t *ev)
{
    ngx_uint_t                      done;
    ngx_queue_t                    *q, *next;
    ngx_ent_cache_t                *cache;
    ngx_ent_cache_pending_t  *fill;
    ngx_ent_cache_node_t           *cn;
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ev->data;

    for (q = ngx_queue_head(&cmcf->fills);
         q != ngx_queue_sentinel(&cmcf->fills);
         q = next)
    {
        next = ngx_queue_next(q);
        fill = ngx_queue_data(q, ngx_ent_cache_pending_t, queue);

        if (!fill->remote) {
            continue;
        }

        cache = fill->cache;

        ngx_shmtx_lock(&cache->shpool->mutex);

        cn = ngx_ent_cache_lookup(cache, &fill->key, fill->hash);
        done = (cn == NULL
                || (ngx_msec_int_t) (cn->pending - ngx_current_msec) <= 0
                || (cn->has_value
                    && (ngx_msec_int_t) (cn->expires - ngx_current_msec) > 0));

        ngx_shmtx_unlock(&cache->shpool->mutex);

        if (!done) {
            continue;
        }

        /* the waiters ask again and find an answer, an error or a miss */

        ngx_queue_remove(q);
        ngx_queue_init(q);

        ngx_ent_cache_wake(fill, NGX_ENT_OK);
        ngx_ent_cache_fill_free(fill);

        next = ngx_queue_head(&cmcf->fills);
    }

    for (q = ngx_queue_head(&cmcf->fills);
         q != ngx_queue_sentinel(&cmcf->fills);
         q = ngx_queue_next(q))
    {
        fill = ngx_queue_data(q, ngx_ent_cache_pending_t, queue);

        if (fill->remote) {
            ngx_add_timer(ev, NGX_ENT_CACHE_POLL);
            return;
        }
    }
}


/* fills */


static ngx_ent_cache_pending_t *
ngx_ent_cache_fill_find(ngx_http_ent_core_main_conf_t *cmcf,
    ngx_ent_cache_t *cache, ngx_str_t *key, uint32_t hash, ngx_uint_t remote)
{
    ngx_queue_t           *q;
    ngx_ent_cache_pending_t  *fill;

    for (q = ngx_queue_head(&cmcf->fills);
         q != ngx_queue_sentinel(&cmcf->fills);
         q = ngx_queue_next(q))
    {
        fill = ngx_queue_data(q, ngx_ent_cache_pending_t, queue);

        if (fill->cache == cache && fill->hash == hash
            && fill->remote == remote
            && fill->key.len == key->len
            && ngx_strncmp(fill->key.data, key->data, key->len) == 0)
        {
            return fill;
        }
    }

    return NULL;
}


static ngx_ent_cache_pending_t *
ngx_ent_cache_fill_new(ngx_http_ent_core_main_conf_t *cmcf,
    ngx_ent_cache_t *cache, ngx_str_t *key, uint32_t hash, ngx_uint_t remote)
{
    ngx_ent_cache_pending_t  *fill;

    fill = ngx_alloc(sizeof(ngx_ent_cache_pending_t) + key->len,
                     ngx_cycle->log);
    if (fill == NULL) {
        return NULL;
    }

    fill->cache = cache;
    fill->hash = hash;
    fill->remote = remote;
    fill->seq = 0;
    fill->transform = NULL;
    fill->key.len = key->len;
    fill->key.data = (u_char *) (fill + 1);
    ngx_memcpy(fill->key.data, key->data, key->len);

    ngx_queue_init(&fill->waiters);
    ngx_queue_insert_tail(&cmcf->fills, &fill->queue);

    return fill;
}


static void
ngx_ent_cache_fill_free(ngx_ent_cache_pending_t *fill)
{
    if (ngx_queue_next(&fill->queue) != &fill->queue) {
        ngx_queue_remove(&fill->queue);
    }

    ngx_free(fill);
}


/* nodes; the zone is locked */


static ngx_ent_cache_node_t *
ngx_ent_cache_store(ngx_ent_cache_t *cache, ngx_ent_cache_node_t *node,
    ngx_str_t *key, uint32_t hash, ngx_str_t *value, ngx_msec_t ttl,
    ngx_uint_t negative)
{
    size_t                 vlen;
    ngx_msec_t             now;
    ngx_ent_cache_node_t  *cn;

    vlen = value ? value->len : 0;

    if (vlen > 0x7fffffff) {
        return NULL;
    }

    now = ngx_current_msec;

    if (node && node->vlen == vlen) {
        cn = node;

    } else {
        cn = ngx_ent_cache_alloc(cache, offsetof(ngx_ent_cache_node_t, data)
                                        + key->len + vlen);

        if (cn == NULL) {
            /* the eviction may have freed it already */
            node = ngx_ent_cache_lookup(cache, key, hash);

            if (node) {
                ngx_ent_cache_free_node(cache, node);
            }

            return NULL;
        }

        /* the eviction may have taken the old node */

        node = ngx_ent_cache_lookup(cache, key, hash);

        cn->hash = hash;
        cn->klen = (uint16_t) key->len;
        cn->vlen = (uint32_t) vlen;
        ngx_memcpy(cn->data, key->data, key->len);

        if (node) {
            cn->pending = node->pending;
            cn->filler = node->filler;
            cn->fill_seq = node->fill_seq;
            cn->error = node->error;
            cn->invalidated = node->invalidated;
            ngx_ent_cache_free_node(cache, node);

        } else {
            cn->pending = 0;
            cn->filler = 0;
            cn->fill_seq = 0;
            cn->error = 0;
            cn->invalidated = 0;
        }

        cn->next = cache->sh->buckets[hash & cache->sh->mask];
        cache->sh->buckets[hash & cache->sh->mask] = cn;
        ngx_queue_insert_head(&cache->sh->lru, &cn->queue);
        cache->sh->entries++;
    }

    if (value) {
        ngx_memcpy(cn->data + cn->klen, value->data, vlen);
        cn->has_value = 1;
        cn->negative = negative ? 1 : 0;
        cn->expires = now + ttl;
        cn->pending = 0;
        cn->error = 0;

    } else {
        cn->has_value = 0;
        cn->negative = 0;
    }

    cn->generation = cache->sh->generation;
    cn->touched = now;

    ngx_queue_remove(&cn->queue);
    ngx_queue_insert_head(&cache->sh->lru, &cn->queue);

    return cn;
}


static ngx_ent_cache_node_t *
ngx_ent_cache_alloc(ngx_ent_cache_t *cache, size_t size)
{
    void                  *p;
    ngx_uint_t             n;
    ngx_queue_t           *q, *prev;
    ngx_ent_cache_node_t  *cn;

    p = ngx_slab_alloc_locked(cache->shpool, size);
    if (p) {
        return p;
    }

    /* full: drop least recently used entries that no fill waits on */

    n = 0;

    for (q = ngx_queue_last(&cache->sh->lru);
         q != ngx_queue_sentinel(&cache->sh->lru) && n < NGX_ENT_CACHE_EVICT;
         q = prev)
    {
        prev = ngx_queue_prev(q);
        cn = ngx_queue_data(q, ngx_ent_cache_node_t, queue);

        if ((ngx_msec_int_t) (cn->pending - ngx_current_msec) > 0) {
            continue;
        }

        ngx_ent_cache_free_node(cache, cn);
        cache->sh->evictions++;
        n++;

        p = ngx_slab_alloc_locked(cache->shpool, size);
        if (p) {
            return p;
        }
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "ent cache zone \"%V\" is full, an entry of %uz bytes "
                  "was not stored", &cache->name, size);

    return NULL;
}


static void
ngx_ent_cache_touch(ngx_ent_cache_t *cache, ngx_ent_cache_node_t *cn)
{
    /*
     * An approximate LRU: an entry moves to the head at most once a second.
     * Moving touches both neighbours' cache lines, on every hit, for an
     * order that eviction hardly needs to the millisecond.
     */

    if (ngx_current_msec - cn->touched < 1000) {
        return;
    }

    cn->touched = ngx_current_msec;

    ngx_queue_remove(&cn->queue);
    ngx_queue_insert_head(&cache->sh->lru, &cn->queue);
}


static void
ngx_ent_cache_free_node(ngx_ent_cache_t *cache, ngx_ent_cache_node_t *cn)
{
    ngx_ent_cache_node_t  **pp;

    for (pp = &cache->sh->buckets[cn->hash & cache->sh->mask];
         *pp != cn;
         pp = &(*pp)->next)
    {
        /* void */
    }

    *pp = cn->next;
    ngx_queue_remove(&cn->queue);
    ngx_slab_free_locked(cache->shpool, cn);
    cache->sh->entries--;
}


static ngx_int_t
ngx_ent_cache_copy(ngx_ent_cache_node_t *cn, ngx_pool_t *pool,
    ngx_str_t *value)
{
    if (cn->negative) {
        return NGX_DECLINED;
    }

    value->len = cn->vlen;
    value->data = ngx_pnalloc(pool, cn->vlen ? cn->vlen : 1);

    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, cn->data + cn->klen, cn->vlen);

    return NGX_OK;
}


u_char *
ngx_ent_cache_stats(ngx_ent_cache_t *cache, u_char *p, u_char *last)
{
    ngx_ent_cache_sh_t  *sh;

    sh = cache->sh;

    ngx_shmtx_lock(&cache->shpool->mutex);

    p = ngx_slprintf(p, last,
                     "{\"size\":%uz,\"ttl\":%M,\"negative_ttl\":%M,"
                     "\"entries\":%ui,\"hits\":%ui,"
                     "\"misses\":%ui,\"stale\":%ui,\"fills\":%ui,"
                     "\"fill_errors\":%ui,\"evictions\":%ui,"
                     "\"invalidations\":%ui}",
                     cache->shm_zone->shm.size, cache->ttl,
                     cache->negative_ttl, sh->entries, sh->hits,
                     sh->misses, sh->stale, sh->fills, sh->fill_errors,
                     sh->evictions, sh->invalidations);

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return p;
}


/* hits (0) or misses (1) since the zone was made, for the metrics */

ngx_uint_t
ngx_ent_cache_counter(ngx_ent_cache_t *cache, ngx_uint_t which)
{
    if (cache->sh == NULL) {
        return 0;
    }

    return which ? cache->sh->misses : cache->sh->hits;
}
