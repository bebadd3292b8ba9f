/*
 * ngx_ent core: per-tenant metrics and service-level evaluation.
 *
 * A shared-memory zone ("ent_metrics_zone") holds one slot per tenant seen,
 * found by hashing the tenant id (open addressing; a slot is claimed under
 * the zone's mutex, once per tenant, and never moves).  Two slots are
 * reserved: requests without a tenant, and the tenants that no longer fit.
 * Each slot has two sets of shards of counters, a shard per worker in each:
 * the workers of one configuration cycle write one set, those of the next
 * (after a reload, while the old ones finish) the other, so that a shard
 * has one writer and takes plain additions, no locked instructions.  (A
 * worker whose number is past the zone's shards, after a reload that
 * raised worker_processes, adds atomically.)  Readers sum every shard.
 * Nothing is allocated per request: the log-phase handler finds the slot
 * and adds to fixed counters and fixed latency buckets.
 *
 * Each shard also keeps a ring of NGX_ENT_M_WINDOW buckets of the last
 * "ent_sla_window" (latency histogram and 5xx count): the window that the
 * per-tenant quantiles and the SLA are computed over.  Every tick one
 * worker (whichever claims the tick) evaluates each tenant that has
 * targets (ent.sla_targets, reloaded every 5 s by one worker): a violation
 * starts when the window holds at least min_requests and its p99 or its
 * error ratio is over target, and ends when neither is; each start and
 * end is one audit event (sla.violation_start, sla.violation_end),
 * whichever worker sees it first.
 */


#include "ngx_ent_core_int.h"


#define NGX_ENT_M_BUCKETS     12
#define NGX_ENT_M_WINDOW      30
#define NGX_ENT_M_CLASSES     6
#define NGX_ENT_M_NONE        0
#define NGX_ENT_M_OTHER       1
#define NGX_ENT_M_SLA_RELOAD  5000


static ngx_msec_t  ngx_ent_m_bounds[NGX_ENT_M_BUCKETS - 1] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
};

static char  *ngx_ent_m_le[NGX_ENT_M_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10", "+Inf"
};

static char  *ngx_ent_m_class[NGX_ENT_M_CLASSES] = {
    "1xx", "2xx", "3xx", "4xx", "5xx", "other"
};


typedef struct {
    ngx_atomic_t               epoch;
    ngx_atomic_t               latency[NGX_ENT_M_BUCKETS];
    ngx_atomic_t               errors;
    ngx_atomic_t               over;        /* slower than the p99 target */
} ngx_ent_m_win_t;


typedef struct {
    ngx_atomic_t               status[NGX_ENT_M_CLASSES];
    ngx_atomic_t               latency[NGX_ENT_M_BUCKETS];
    ngx_atomic_t               latency_ms;
    ngx_atomic_t               upstream[NGX_ENT_M_BUCKETS];
    ngx_atomic_t               upstream_ms;
    ngx_atomic_t               bytes_in;
    ngx_atomic_t               bytes_out;
    ngx_atomic_t               counters[NGX_ENT_M_COUNTERS];
    ngx_ent_m_win_t            win[NGX_ENT_M_WINDOW];
} ngx_ent_m_shard_t;


typedef struct {
    ngx_atomic_t               used;
    ngx_atomic_t               named;         /* a series of its own */
    u_char                     id[36];
    u_char                     code[64];
    size_t                     code_len;

    /* targets, set by the worker that loads them */
    ngx_atomic_t               sla_gen;
    ngx_atomic_t               sla_p99;       /* ms */
    ngx_atomic_t               sla_err;       /* parts per million */
    ngx_atomic_t               sla_min;
    ngx_atomic_t               sla_state;     /* 1: violating */

    /* the last evaluation, for its events */
    ngx_atomic_t               win_p99;       /* microseconds */
    ngx_atomic_t               win_err;       /* parts per million */

    ngx_ent_m_shard_t          shards[1];
} ngx_ent_m_slot_t;


typedef struct {
    ngx_atomic_t               pg[2];          /* errors, reconnects */
    ngx_atomic_t               redis[2];
} ngx_ent_m_backend_t;


typedef struct {
    ngx_uint_t                 nslots;
    ngx_uint_t                 nshards;        /* 2 x workers */
    ngx_uint_t                 workers;
    ngx_atomic_t               gen;            /* configuration cycles */
    size_t                     slot_size;
    ngx_atomic_t               tick;           /* the last tick evaluated */
    ngx_atomic_t               sla_next;       /* when to reload targets */
    ngx_atomic_t               sla_gen;
    ngx_atomic_t               tenants;        /* slots claimed */
    ngx_atomic_t               named;          /* slots named */
    ngx_atomic_t               overflow;       /* requests in "other" */
    ngx_ent_m_backend_t        backend[64];    /* per worker */
    u_char                    *slots;
} ngx_ent_m_sh_t;


typedef struct {
    ngx_uint_t                 status[NGX_ENT_M_CLASSES];
    ngx_uint_t                 latency[NGX_ENT_M_BUCKETS];
    ngx_uint_t                 latency_ms;
    ngx_uint_t                 upstream[NGX_ENT_M_BUCKETS];
    ngx_uint_t                 upstream_ms;
    ngx_uint_t                 bytes_in;
    ngx_uint_t                 bytes_out;
    ngx_uint_t                 counters[NGX_ENT_M_COUNTERS];
    ngx_uint_t                 win[NGX_ENT_M_BUCKETS];
    ngx_uint_t                 win_requests;
    ngx_uint_t                 win_errors;
    ngx_uint_t                 win_over;
    ngx_uint_t                 requests;
} ngx_ent_m_sum_t;


typedef struct {
    ngx_ent_m_slot_t          *slot;
    ngx_uint_t                 requests;
} ngx_ent_m_rank_t;


static ngx_ent_m_slot_t *ngx_ent_m_slot(ngx_ent_metrics_t *m,
    ngx_uint_t i);
static ngx_ent_m_slot_t *ngx_ent_m_find(ngx_ent_metrics_t *m, u_char *id,
    size_t len, u_char *code, size_t code_len, ngx_uint_t claim);
static ngx_uint_t ngx_ent_m_bucket(ngx_msec_t ms);
static void ngx_ent_m_add(ngx_ent_m_slot_t *slot, ngx_ent_m_sum_t *s,
    ngx_uint_t nshards, ngx_uint_t epoch);
static void ngx_ent_m_merge(ngx_ent_m_sum_t *to, ngx_ent_m_sum_t *from);
static u_char *ngx_ent_m_quantiles(u_char *p, u_char *last,
    const char *name, ngx_str_t *label, ngx_ent_m_sum_t *s);
static ngx_uint_t ngx_ent_m_quantile(ngx_uint_t *h, ngx_uint_t count,
    double q);
static void ngx_ent_m_tick(ngx_event_t *ev);
static void ngx_ent_m_sla_load(ngx_ent_metrics_t *m);
static void ngx_ent_m_sla_loaded(ngx_ent_op_t *op);
static void ngx_ent_m_sla_eval(ngx_ent_metrics_t *m, ngx_uint_t epoch);
static void ngx_ent_m_sla_event(ngx_ent_m_slot_t *slot, const char *action,
    const char *result, const char *reason, ngx_ent_m_sum_t *s);
static int ngx_ent_m_rank_cmp(const void *a, const void *b);
static u_char *ngx_ent_m_family(u_char *p, u_char *last, const char *name,
    const char *type, const char *help);
static u_char *ngx_ent_m_tenant(u_char *p, u_char *last, ngx_str_t *label,
    ngx_ent_m_sum_t *s, ngx_ent_m_slot_t *slot, ngx_uint_t part);


static ngx_event_t  ngx_ent_m_timer;


/* the zone */


ngx_int_t
ngx_ent_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_ent_metrics_t *om = data;

    size_t             slot;
    ngx_uint_t         nshards, n;
    ngx_ent_m_sh_t    *sh;
    ngx_slab_pool_t   *shpool;
    ngx_ent_metrics_t *m;

    m = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    m->shpool = shpool;

    if (om) {
        m->sh = om->sh;
        ((ngx_ent_m_sh_t *) m->sh)->gen++;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        m->sh = shpool->data;
        ((ngx_ent_m_sh_t *) m->sh)->gen++;
        return NGX_OK;
    }

    nshards = 2 * m->workers;

    slot = offsetof(ngx_ent_m_slot_t, shards)
           + nshards * sizeof(ngx_ent_m_shard_t);
    slot = ngx_align(slot, 128);

    sh = ngx_slab_calloc(shpool, sizeof(ngx_ent_m_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    /* as many slots as the zone holds, past the allocator's own pages */

    shpool->log_nomem = 0;      /* the failed tries are not news */

    for (n = shm_zone->shm.size / slot; n >= 4; n -= n / 16 + 1) {
        sh->slots = ngx_slab_calloc(shpool, n * slot);
        if (sh->slots) {
            break;
        }
    }

    shpool->log_nomem = 1;

    if (sh->slots == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "ent_metrics_zone is too small for %ui workers: "
                      "at least %uz bytes", nshards,
                      4 * slot + 16 * ngx_pagesize);
        return NGX_ERROR;
    }

    sh->nshards = nshards;
    sh->workers = m->workers;
    sh->slot_size = slot;
    sh->nslots = n;

    shpool->data = sh;
    m->sh = sh;

    ngx_ent_m_slot(m, NGX_ENT_M_NONE)->used = 1;
    ngx_ent_m_slot(m, NGX_ENT_M_OTHER)->used = 1;

    return NGX_OK;
}


static ngx_ent_m_slot_t *
ngx_ent_m_slot(ngx_ent_metrics_t *m, ngx_uint_t i)
{
    ngx_ent_m_sh_t  *sh = m->sh;

    return (ngx_ent_m_slot_t *) (sh->slots + i * sh->slot_size);
}


/*
 * The slot of a tenant id: found without a lock (a slot's id is written
 * before "used" is set, and never changes), claimed under the mutex
 */

static ngx_ent_m_slot_t *
ngx_ent_m_find(ngx_ent_metrics_t *m, u_char *id, size_t len, u_char *code,
    size_t code_len, ngx_uint_t claim)
{
    ngx_uint_t         i, n, start, k;
    ngx_ent_m_sh_t    *sh;
    ngx_ent_m_slot_t  *slot;

    sh = m->sh;

    if (len != 36) {
        return ngx_ent_m_slot(m, NGX_ENT_M_NONE);
    }

    n = sh->nslots - 2;
    start = ngx_murmur_hash2(id, 36) % n;

    for (k = 0; k < n; k++) {
        i = 2 + (start + k) % n;
        slot = ngx_ent_m_slot(m, i);

        if (!slot->used) {
            break;
        }

        if (ngx_memcmp(slot->id, id, 36) == 0) {
            return slot;
        }
    }

    if (!claim || k == n) {
        return claim ? ngx_ent_m_slot(m, NGX_ENT_M_OTHER) : NULL;
    }

    ngx_shmtx_lock(&m->shpool->mutex);

    for (/* void */; k < n; k++) {
        i = 2 + (start + k) % n;
        slot = ngx_ent_m_slot(m, i);

        if (slot->used) {
            if (ngx_memcmp(slot->id, id, 36) == 0) {
                ngx_shmtx_unlock(&m->shpool->mutex);
                return slot;
            }

            continue;
        }

        ngx_memcpy(slot->id, id, 36);
        slot->code_len = ngx_min(code_len, sizeof(slot->code));
        ngx_memcpy(slot->code, code, slot->code_len);

        ngx_memory_barrier();
        slot->used = 1;
        (void) ngx_atomic_fetch_add(&sh->tenants, 1);

        ngx_shmtx_unlock(&m->shpool->mutex);
        return slot;
    }

    ngx_shmtx_unlock(&m->shpool->mutex);

    return ngx_ent_m_slot(m, NGX_ENT_M_OTHER);
}


static ngx_uint_t
ngx_ent_m_bucket(ngx_msec_t ms)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_ENT_M_BUCKETS - 1; i++) {
        if (ms <= ngx_ent_m_bounds[i]) {
            return i;
        }
    }

    return NGX_ENT_M_BUCKETS - 1;
}


static ngx_uint_t  ngx_ent_m_index;       /* this worker's shard */
static ngx_uint_t  ngx_ent_m_shared;      /* ... which it shares */


static ngx_inline ngx_ent_m_shard_t *
ngx_ent_m_shard(ngx_ent_metrics_t *m, ngx_ent_m_slot_t *slot)
{
    return &slot->shards[ngx_ent_m_index];
}


/* one writer per shard: plain additions */

#define ngx_ent_m_inc(var, n)                                                \
    do {                                                                     \
        if (ngx_ent_m_shared) {                                              \
            (void) ngx_atomic_fetch_add(&(var), n);                          \
        } else {                                                             \
            (var) += (n);                                                    \
        }                                                                    \
    } while (0)


static ngx_ent_m_slot_t *
ngx_ent_m_request_slot(ngx_http_request_t *r, ngx_ent_metrics_t *m)
{
    ngx_ent_m_slot_t               *slot;
    ngx_http_variable_value_t      *id, *code;
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_core_module);

    if (cmcf->tenant_id_index == NGX_ERROR) {
        return ngx_ent_m_slot(m, NGX_ENT_M_NONE);
    }

    id = ngx_http_get_indexed_variable(r, cmcf->tenant_id_index);

    if (id == NULL || id->not_found || id->len != 36) {
        return ngx_ent_m_slot(m, NGX_ENT_M_NONE);
    }

    /* a tenant seen before: no need for its code */

    slot = ngx_ent_m_find(m, id->data, id->len, NULL, 0, 0);
    if (slot) {
        return slot;
    }

    code = ngx_http_get_indexed_variable(r, cmcf->tenant_code_index);

    if (code == NULL || code->not_found) {
        return ngx_ent_m_find(m, id->data, id->len, id->data, 0, 1);
    }

    return ngx_ent_m_find(m, id->data, id->len, code->data, code->len, 1);
}


/* the log phase: one request counted */


ngx_int_t
ngx_ent_metrics_log_handler(ngx_http_request_t *r)
{
    off_t                           sent;
    ngx_uint_t                      status, b, i, epoch;
    ngx_msec_t                      ms, ums;
    ngx_time_t                     *tp;
    ngx_ent_m_win_t                *w;
    ngx_ent_m_slot_t               *slot;
    ngx_ent_m_shard_t              *sh;
    ngx_ent_metrics_t              *m;
    ngx_http_upstream_state_t      *state;
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_core_module);

    m = cmcf->metrics;
    if (m == NULL || m->sh == NULL) {
        return NGX_OK;
    }

    if (!((ngx_http_ent_core_loc_conf_t *)
          ngx_http_get_module_loc_conf(r, ngx_http_ent_core_module))
         ->metrics_log)
    {
        return NGX_OK;
    }

    slot = ngx_ent_m_request_slot(r, m);

    if (slot == ngx_ent_m_slot(m, NGX_ENT_M_OTHER)) {
        (void) ngx_atomic_fetch_add(&((ngx_ent_m_sh_t *) m->sh)->overflow,
                                    1);
    }

    sh = ngx_ent_m_shard(m, slot);

    status = r->err_status ? r->err_status : r->headers_out.status;
    i = (status >= 100 && status < 600) ? status / 100 - 1 : 5;
    ngx_ent_m_inc(sh->status[i], 1);

    tp = ngx_timeofday();
    ms = (ngx_msec_t) ((tp->sec - r->start_sec) * 1000
                       + (tp->msec - r->start_msec));
    if ((ngx_msec_int_t) ms < 0) {
        ms = 0;
    }

    b = ngx_ent_m_bucket(ms);
    ngx_ent_m_inc(sh->latency[b], 1);
    ngx_ent_m_inc(sh->latency_ms, ms);

    if (r->upstream_states && r->upstream_states->nelts) {
        state = r->upstream_states->elts;
        ums = 0;

        for (i = 0; i < r->upstream_states->nelts; i++) {
            if (state[i].status && state[i].response_time != (ngx_msec_t) -1)
            {
                ums += state[i].response_time;
            }
        }

        ngx_ent_m_inc(sh->upstream[ngx_ent_m_bucket(ums)], 1);
        ngx_ent_m_inc(sh->upstream_ms, ums);
    }

    sent = r->connection->sent;
    ngx_ent_m_inc(sh->bytes_in, r->request_length);
    ngx_ent_m_inc(sh->bytes_out, sent > 0 ? sent : 0);

    /* the window */

    epoch = ((ngx_uint_t) tp->sec * 1000 + tp->msec) / cmcf->metrics_step;
    w = &sh->win[epoch % NGX_ENT_M_WINDOW];

    if (w->epoch != epoch) {
        ngx_memzero((void *) w->latency, sizeof(w->latency));
        w->errors = 0;
        w->over = 0;
        ngx_memory_barrier();
        w->epoch = epoch;
    }

    ngx_ent_m_inc(w->latency[b], 1);

    if (status >= 500 && status < 600) {
        ngx_ent_m_inc(w->errors, 1);
    }

    /*
     * the p99 target is judged on this count, exact whatever the target
     * (the histogram knows latencies only to its buckets): over it in more
     * than 1% of the window's requests is a p99 over it
     */

    if (slot->sla_gen && ms > slot->sla_p99) {
        ngx_ent_m_inc(w->over, 1);
    }

    return NGX_OK;
}


void
ngx_ent_metrics_count(ngx_http_request_t *r, ngx_uint_t counter)
{
    ngx_ent_m_slot_t               *slot;
    ngx_ent_metrics_t              *m;
    ngx_http_ent_core_main_conf_t  *cmcf;

    if (counter >= NGX_ENT_M_COUNTERS) {
        return;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_core_module);

    m = cmcf->metrics;
    if (m == NULL || m->sh == NULL) {
        return;
    }

    slot = ngx_ent_m_request_slot(r->main, m);

    ngx_ent_m_inc(ngx_ent_m_shard(m, slot)->counters[counter], 1);
}


/* sums */


static void
ngx_ent_m_add(ngx_ent_m_slot_t *slot, ngx_ent_m_sum_t *s, ngx_uint_t nshards,
    ngx_uint_t epoch)
{
    ngx_uint_t          i, j, k, e;
    ngx_ent_m_win_t    *w;
    ngx_ent_m_shard_t  *sh;

    for (k = 0; k < nshards; k++) {
        sh = &slot->shards[k];

        for (i = 0; i < NGX_ENT_M_CLASSES; i++) {
            s->status[i] += sh->status[i];
            s->requests += sh->status[i];
        }

        for (i = 0; i < NGX_ENT_M_BUCKETS; i++) {
            s->latency[i] += sh->latency[i];
            s->upstream[i] += sh->upstream[i];
        }

        s->latency_ms += sh->latency_ms;
        s->upstream_ms += sh->upstream_ms;
        s->bytes_in += sh->bytes_in;
        s->bytes_out += sh->bytes_out;

        for (i = 0; i < NGX_ENT_M_COUNTERS; i++) {
            s->counters[i] += sh->counters[i];
        }

        for (i = 0; i < NGX_ENT_M_WINDOW; i++) {
            w = &sh->win[i];
            e = w->epoch;

            if (e + NGX_ENT_M_WINDOW <= epoch || e > epoch) {
                continue;
            }

            for (j = 0; j < NGX_ENT_M_BUCKETS; j++) {
                s->win[j] += w->latency[j];
                s->win_requests += w->latency[j];
            }

            s->win_errors += w->errors;
            s->win_over += w->over;
        }
    }
}


static void
ngx_ent_m_merge(ngx_ent_m_sum_t *to, ngx_ent_m_sum_t *from)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_ENT_M_CLASSES; i++) {
        to->status[i] += from->status[i];
    }

    for (i = 0; i < NGX_ENT_M_BUCKETS; i++) {
        to->latency[i] += from->latency[i];
        to->upstream[i] += from->upstream[i];
        to->win[i] += from->win[i];
    }

    for (i = 0; i < NGX_ENT_M_COUNTERS; i++) {
        to->counters[i] += from->counters[i];
    }

    to->latency_ms += from->latency_ms;
    to->upstream_ms += from->upstream_ms;
    to->bytes_in += from->bytes_in;
    to->bytes_out += from->bytes_out;
    to->win_requests += from->win_requests;
    to->win_errors += from->win_errors;
    to->win_over += from->win_over;
    to->requests += from->requests;
}


/* a quantile of a histogram, in microseconds, interpolated in its bucket */

static ngx_uint_t
ngx_ent_m_quantile(ngx_uint_t *h, ngx_uint_t count, double q)
{
    double      rank, cum, lo, hi;
    ngx_uint_t  i;

    if (count == 0) {
        return 0;
    }

    rank = q * count;
    cum = 0;

    for (i = 0; i < NGX_ENT_M_BUCKETS; i++) {
        if (h[i] == 0 || cum + h[i] < rank) {
            cum += h[i];
            continue;
        }

        lo = i ? (double) ngx_ent_m_bounds[i - 1] : 0;

        if (i == NGX_ENT_M_BUCKETS - 1) {
            /* past the last bound: no better answer than the bound */
            return (ngx_uint_t) (lo * 1000);
        }

        hi = (double) ngx_ent_m_bounds[i];

        return (ngx_uint_t) ((lo + (hi - lo) * (rank - cum) / h[i]) * 1000);
    }

    return (ngx_uint_t) (ngx_ent_m_bounds[NGX_ENT_M_BUCKETS - 2] * 1000);
}


/* the tick: backend counters published, SLA targets loaded, evaluated */


ngx_int_t
ngx_ent_metrics_init_worker(ngx_cycle_t *cycle,
    ngx_http_ent_core_main_conf_t *cmcf)
{
    ngx_ent_m_sh_t  *sh;

    sh = cmcf->metrics->sh;

    if (sh) {
        ngx_ent_m_index = (ngx_worker % sh->workers)
                          + (sh->gen & 1) * sh->workers;
        ngx_ent_m_shared = (ngx_worker >= sh->workers);
    }

    ngx_ent_m_timer.handler = ngx_ent_m_tick;
    ngx_ent_m_timer.data = cmcf;
    ngx_ent_m_timer.log = cycle->log;
    ngx_ent_m_timer.cancelable = 1;

    ngx_add_timer(&ngx_ent_m_timer, cmcf->metrics_step);

    return NGX_OK;
}


void
ngx_ent_metrics_exit_worker(ngx_http_ent_core_main_conf_t *cmcf)
{
    if (ngx_ent_m_timer.timer_set) {
        ngx_del_timer(&ngx_ent_m_timer);
    }
}


static void
ngx_ent_m_tick(ngx_event_t *ev)
{
    ngx_http_ent_core_main_conf_t *cmcf = ev->data;

    ngx_uint_t                now, epoch, tick;
    ngx_time_t               *tp;
    ngx_ent_m_sh_t           *sh;
    ngx_ent_metrics_t        *m;
    ngx_ent_backend_stats_t   st;

    m = cmcf->metrics;
    sh = m->sh;

    if (sh == NULL) {
        return;
    }

    if (ngx_worker < 64) {
        if (cmcf->pg_pool) {
            ngx_ent_pg_stats(cmcf, &st);
            sh->backend[ngx_worker].pg[0] = st.errors + st.timeouts;
            sh->backend[ngx_worker].pg[1] = st.reconnects;
        }

        if (cmcf->redis_pool) {
            ngx_ent_redis_stats(cmcf, &st);
            sh->backend[ngx_worker].redis[0] = st.errors + st.timeouts;
            sh->backend[ngx_worker].redis[1] = st.reconnects;
        }
    }

    tp = ngx_timeofday();
    now = (ngx_uint_t) tp->sec * 1000 + tp->msec;
    epoch = now / cmcf->metrics_step;

    if (cmcf->pg_pool && cmcf->sla_stmt) {
        tick = sh->sla_next;

        if (now >= tick
            && ngx_atomic_cmp_set(&sh->sla_next, tick,
                                  now + NGX_ENT_M_SLA_RELOAD))
        {
            ngx_ent_m_sla_load(m);
        }
    }

    tick = sh->tick;

    if (tick != epoch && ngx_atomic_cmp_set(&sh->tick, tick, epoch)) {
        ngx_ent_m_sla_eval(m, epoch);
    }

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(ev, cmcf->metrics_step);
}


static void
ngx_ent_m_sla_load(ngx_ent_metrics_t *m)
{
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ngx_ent_core_main_conf();

    if (ngx_ent_pg_query(NULL, cmcf->sla_stmt, NULL, ngx_ent_m_sla_loaded, m)
        != NGX_AGAIN)
    {
        /* try again at the next tick */
        ((ngx_ent_m_sh_t *) m->sh)->sla_next = 0;
    }
}


static void
ngx_ent_m_sla_loaded(ngx_ent_op_t *op)
{
    ngx_ent_metrics_t *m = op->data;

    double             ratio;
    ngx_str_t          v[5];
    ngx_int_t          p99, min;
    size_t             len;
    uint32_t           c;
    ngx_uint_t         i, gen;
    ngx_ent_m_sh_t    *sh;
    const u_char      *data;
    ngx_ent_m_slot_t  *slot;
    u_char             num[32];

    sh = m->sh;

    if (op->status != NGX_ENT_OK) {
        ngx_log_error(NGX_LOG_WARN, op->log, 0,
                      "ent metrics: SLA targets not loaded (status %ui)",
                      op->status);
        return;
    }

    gen = ngx_atomic_fetch_add(&sh->sla_gen, 1) + 1;

    for (i = 0; i < op->rows.nrows; i++) {
        for (c = 0; c < 5; c++) {
            if (ngx_ent_rows_cell(&op->rows, i, c, &data, &len) != 0
                || data == NULL)
            {
                break;
            }

            v[c].data = (u_char *) data;
            v[c].len = len;
        }

        if (c < 5) {
            continue;
        }

        p99 = ngx_atoi(v[2].data, v[2].len);
        min = ngx_atoi(v[4].data, v[4].len);
        if (v[3].len == 0 || v[3].len >= sizeof(num)) {
            continue;
        }

        ngx_memcpy(num, v[3].data, v[3].len);
        num[v[3].len] = '\0';
        ratio = strtod((char *) num, NULL);

        if (p99 <= 0 || min <= 0 || ratio < 0 || ratio > 1) {
            continue;
        }

        slot = ngx_ent_m_find(m, v[0].data, v[0].len, v[1].data, v[1].len,
                              1);

        if (slot == ngx_ent_m_slot(m, NGX_ENT_M_OTHER)) {
            continue;
        }

        slot->sla_p99 = p99;
        slot->sla_err = (ngx_atomic_uint_t) (ratio * 1000000 + 0.5);
        slot->sla_min = min;
        ngx_memory_barrier();
        slot->sla_gen = gen;
    }

    /* targets removed since: the tenant is no longer evaluated */

    for (i = 2; i < sh->nslots; i++) {
        slot = ngx_ent_m_slot(m, i);

        if (slot->used && slot->sla_gen && slot->sla_gen != gen) {
            slot->sla_gen = 0;

            if (slot->sla_state
                && ngx_atomic_cmp_set(&slot->sla_state, 1, 0))
            {
                ngx_ent_m_sla_event(slot, "sla.violation_end", "info",
                                    "targets removed", NULL);
            }
        }
    }
}


static void
ngx_ent_m_sla_eval(ngx_ent_metrics_t *m, ngx_uint_t epoch)
{
    ngx_uint_t         i, p99, err, slow, bad;
    ngx_ent_m_sh_t    *sh;
    ngx_ent_m_sum_t    s;
    ngx_ent_m_slot_t  *slot;

    sh = m->sh;

    for (i = 2; i < sh->nslots; i++) {
        slot = ngx_ent_m_slot(m, i);

        if (!slot->used || slot->sla_gen == 0) {
            continue;
        }

        ngx_memzero(&s, sizeof(ngx_ent_m_sum_t));
        ngx_ent_m_add(slot, &s, sh->nshards, epoch);

        p99 = ngx_ent_m_quantile(s.win, s.win_requests, 0.99);
        err = s.win_requests ? s.win_errors * 1000000 / s.win_requests : 0;

        slot->win_p99 = p99;
        slot->win_err = err;

        if (s.win_requests < slot->sla_min) {
            /* too few to judge: a violation in progress stays */
            continue;
        }

        /* more than 1% of the requests over the target: a p99 over it */
        slow = (s.win_over * 100 > s.win_requests);
        bad = (slow || err > slot->sla_err);

        if (bad && slot->sla_state == 0
            && ngx_atomic_cmp_set(&slot->sla_state, 0, 1))
        {
            ngx_ent_m_sla_event(slot, "sla.violation_start", "failure",
                                slow ? "p99 latency over target"
                                : "error ratio over target", &s);

        } else if (!bad && slot->sla_state == 1
                   && ngx_atomic_cmp_set(&slot->sla_state, 1, 0))
        {
            ngx_ent_m_sla_event(slot, "sla.violation_end", "success",
                                "within targets", &s);
        }
    }
}


static void
ngx_ent_m_sla_event(ngx_ent_m_slot_t *slot, const char *action,
    const char *result, const char *reason, ngx_ent_m_sum_t *s)
{
    u_char                 *p;
    ngx_str_t               d[10];
    ngx_uint_t              n;
    ngx_ent_audit_event_t   ev;
    u_char                  buf[5 * NGX_INT64_LEN];

    ngx_memzero(&ev, sizeof(ngx_ent_audit_event_t));

    ev.tenant.data = slot->id;
    ev.tenant.len = 36;
    ev.actor_type = "system";
    ev.action = action;
    ev.result = result;
    ngx_str_set(&ev.target_type, "tenant");
    ev.target_id.data = slot->code;
    ev.target_id.len = slot->code_len;
    ev.reason.data = (u_char *) reason;
    ev.reason.len = ngx_strlen(reason);

    p = ngx_ent_audit_number(&d[0], "#target_p99_ms", buf, slot->sla_p99);
    p = ngx_ent_audit_number(&d[2], "#target_error_ppm", p, slot->sla_err);
    n = 2;

    if (s) {
        p = ngx_ent_audit_number(&d[4], "#p99_ms", p, slot->win_p99 / 1000);
        p = ngx_ent_audit_number(&d[6], "#error_ppm", p, slot->win_err);
        (void) ngx_ent_audit_number(&d[8], "#requests", p, s->win_requests);
        n = 5;
    }

    ev.details = d;
    ev.ndetails = n;

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "ent metrics: tenant \"%*s\": %s (%s)",
                  slot->code_len, slot->code, action, reason);

    ngx_ent_audit(NULL, &ev);
}


/* the Prometheus text: ent_metrics */


static int
ngx_ent_m_rank_cmp(const void *a, const void *b)
{
    const ngx_ent_m_rank_t  *x = a, *y = b;

    if (x->requests != y->requests) {
        return x->requests < y->requests ? 1 : -1;
    }

    return ngx_memcmp(x->slot->id, y->slot->id, 36);
}


ngx_int_t
ngx_ent_metrics_handler(ngx_http_request_t *r)
{
    u_char                         *p, *last;
    size_t                          size;
    ngx_int_t                       rc;
    ngx_buf_t                      *b;
    ngx_str_t                       label;
    ngx_uint_t                      i, k, n, part, epoch, top;
    ngx_time_t                     *tp;
    ngx_ent_m_sh_t                 *sh;
    ngx_ent_m_sum_t                *sums, other, node;
    ngx_ent_m_rank_t               *rank;
    ngx_ent_m_slot_t               *slot;
    ngx_ent_cache_t               **caches;
    ngx_ent_metrics_t              *m;
    ngx_ent_audit_stats_t           ast;
    ngx_http_ent_core_main_conf_t  *cmcf;

    static const char  *families[][3] = {
        { "ent_requests_total", "counter",
          "Requests answered, by status class" },
        { "ent_request_duration_seconds", "histogram",
          "Time from the first byte read to the log phase" },
        { "ent_upstream_response_seconds", "histogram",
          "Upstream response time, summed over the upstreams tried" },
        { "ent_received_bytes_total", "counter", "Bytes received" },
        { "ent_sent_bytes_total", "counter", "Bytes sent" },
        { "ent_ratelimit_rejections_total", "counter",
          "Requests refused by a rate limit or quota" },
        { "ent_sso_logins_total", "counter",
          "Single sign-on logins, by protocol and result" },
        { "ent_scim_operations_total", "counter", "SCIM requests answered" },
        { "ent_scim_errors_total", "counter",
          "SCIM requests answered with an error" },
        { "ent_request_duration_window_seconds", "gauge",
          "Latency quantiles over the last ent_sla_window" },
        { "ent_sla_violation", "gauge",
          "1 while the tenant's SLA targets are missed" },
        { "ent_sla_window_requests", "gauge",
          "Requests in the last ent_sla_window" },
        { "ent_sla_window_error_ratio", "gauge",
          "5xx share of the requests in the last ent_sla_window" },
        { "ent_sla_target_p99_seconds", "gauge", "Contracted p99 latency" },
        { "ent_sla_target_error_ratio", "gauge",
          "Contracted maximum error ratio" },
    };

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_core_module);
    m = cmcf->metrics;

    if (m == NULL || m->sh == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }

    sh = m->sh;

    tp = ngx_timeofday();
    epoch = ((ngx_uint_t) tp->sec * 1000 + tp->msec) / cmcf->metrics_step;

    /* every slot summed once; ranked by requests; the top N named */

    sums = ngx_pcalloc(r->pool, sh->nslots * sizeof(ngx_ent_m_sum_t));
    rank = ngx_pnalloc(r->pool, sh->nslots * sizeof(ngx_ent_m_rank_t));

    if (sums == NULL || rank == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;
    ngx_memzero(&node, sizeof(ngx_ent_m_sum_t));

    for (i = 0; i < sh->nslots; i++) {
        slot = ngx_ent_m_slot(m, i);

        if (!slot->used) {
            continue;
        }

        ngx_ent_m_add(slot, &sums[i], sh->nshards, epoch);

        if (i >= 2) {
            rank[n].slot = slot;
            rank[n].requests = sums[i].requests;
            n++;
        }
    }

    ngx_qsort(rank, n, sizeof(ngx_ent_m_rank_t), ngx_ent_m_rank_cmp);

    /*
     * The busiest tenants not named yet take the seats left of the top N,
     * and keep them until nginx restarts: a tenant that moved between its
     * own series and "_other" would take its counts with it, and both
     * series' counters would go back (a reset to Prometheus)
     */

    for (k = 0; k < n && sh->named < cmcf->metrics_top; k++) {
        slot = rank[k].slot;

        if (slot->named || !ngx_atomic_cmp_set(&slot->named, 0, 1)) {
            continue;
        }

        if (ngx_atomic_fetch_add(&sh->named, 1) >= cmcf->metrics_top) {
            /* another worker took the last seat meanwhile */
            (void) ngx_atomic_fetch_add(&sh->named, -1);
            slot->named = 0;
            break;
        }
    }

    /* the named ones first, busiest first; "other": the rest */

    top = 0;
    other = sums[NGX_ENT_M_OTHER];

    for (k = 0; k < n; k++) {
        slot = rank[k].slot;

        if (slot->named) {
            rank[top++] = rank[k];
            continue;
        }

        ngx_ent_m_merge(&other,
                        &sums[((u_char *) slot - sh->slots) / sh->slot_size]);
    }

    for (i = 0; i < sh->nslots; i++) {
        ngx_ent_m_merge(&node, &sums[i]);
    }

    size = 16384 + (top + 2) * 6144 + cmcf->caches.nelts * 512;

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->pos;
    last = b->end;

    for (part = 0; part < sizeof(families) / sizeof(families[0]); part++) {
        p = ngx_ent_m_family(p, last, families[part][0], families[part][1],
                             families[part][2]);

        ngx_str_set(&label, "_none");
        p = ngx_ent_m_tenant(p, last, &label, &sums[NGX_ENT_M_NONE], NULL,
                             part);

        for (k = 0; k < top; k++) {
            slot = rank[k].slot;
            label.data = slot->code;
            label.len = slot->code_len;

            p = ngx_ent_m_tenant(p, last, &label,
                      &sums[((u_char *) slot - sh->slots) / sh->slot_size],
                      slot, part);
        }

        ngx_str_set(&label, "_other");
        p = ngx_ent_m_tenant(p, last, &label, &other, NULL, part);
    }

    /* the node */

    p = ngx_ent_m_family(p, last, "ent_node_requests_total", "counter",
                         "Requests answered by this node, by status class");

    for (i = 0; i < NGX_ENT_M_CLASSES; i++) {
        p = ngx_slprintf(p, last, "ent_node_requests_total{class=\"%s\"} "
                         "%ui\n", ngx_ent_m_class[i], node.status[i]);
    }

    p = ngx_ent_m_family(p, last, "ent_node_request_duration_seconds",
                         "histogram", "Request latency on this node");

    for (i = 0, k = 0; i < NGX_ENT_M_BUCKETS; i++) {
        k += node.latency[i];
        p = ngx_slprintf(p, last, "ent_node_request_duration_seconds_bucket"
                         "{le=\"%s\"} %ui\n", ngx_ent_m_le[i], k);
    }

    p = ngx_slprintf(p, last,
                     "ent_node_request_duration_seconds_sum %ui.%03ui\n"
                     "ent_node_request_duration_seconds_count %ui\n",
                     node.latency_ms / 1000, node.latency_ms % 1000, k);

    p = ngx_ent_m_family(p, last, "ent_node_request_duration_window_seconds",
                         "gauge", "Latency quantiles over the last "
                         "ent_sla_window on this node");

    p = ngx_ent_m_quantiles(p, last,
                            "ent_node_request_duration_window_seconds",
                            NULL, &node);

    p = ngx_ent_m_family(p, last, "ent_backend_errors_total", "counter",
                         "Backend errors and timeouts, all workers");

    {
        ngx_uint_t  e[2][2];

        ngx_memzero(e, sizeof(e));

        for (i = 0; i < 64; i++) {
            e[0][0] += sh->backend[i].pg[0];
            e[0][1] += sh->backend[i].pg[1];
            e[1][0] += sh->backend[i].redis[0];
            e[1][1] += sh->backend[i].redis[1];
        }

        p = ngx_slprintf(p, last,
                         "ent_backend_errors_total{backend=\"postgres\"} %ui\n"
                         "ent_backend_errors_total{backend=\"redis\"} %ui\n",
                         e[0][0], e[1][0]);

        p = ngx_ent_m_family(p, last, "ent_backend_reconnects_total",
                             "counter", "Backend reconnections, all workers");

        p = ngx_slprintf(p, last,
                         "ent_backend_reconnects_total{backend=\"postgres\"} "
                         "%ui\n"
                         "ent_backend_reconnects_total{backend=\"redis\"} "
                         "%ui\n", e[0][1], e[1][1]);
    }

    p = ngx_ent_m_family(p, last, "ent_cache_hits_total", "counter",
                         "Shared-memory cache hits, by zone");

    caches = cmcf->caches.elts;

    for (i = 0; i < cmcf->caches.nelts; i++) {
        p = ngx_slprintf(p, last, "ent_cache_hits_total{zone=\"%V\"} %ui\n",
                         &caches[i]->name, ngx_ent_cache_counter(caches[i],
                                                                  0));
    }

    p = ngx_ent_m_family(p, last, "ent_cache_misses_total", "counter",
                         "Shared-memory cache misses, by zone");

    for (i = 0; i < cmcf->caches.nelts; i++) {
        p = ngx_slprintf(p, last,
                         "ent_cache_misses_total{zone=\"%V\"} %ui\n",
                         &caches[i]->name, ngx_ent_cache_counter(caches[i],
                                                                  1));
    }

    p = ngx_ent_m_family(p, last, "ent_cache_hit_ratio", "gauge",
                         "Hits over lookups since the zone was created");

    for (i = 0; i < cmcf->caches.nelts; i++) {
        ngx_uint_t  h, mi;

        h = ngx_ent_cache_counter(caches[i], 0);
        mi = ngx_ent_cache_counter(caches[i], 1);

        p = ngx_slprintf(p, last, "ent_cache_hit_ratio{zone=\"%V\"} "
                         "%ui.%04ui\n", &caches[i]->name,
                         (h + mi) ? h / (h + mi) : 0,
                         (h + mi) ? (h * 10000 / (h + mi)) % 10000 : 0);
    }

    ngx_ent_audit_stats(&ast);

    p = ngx_ent_m_family(p, last, "ent_audit_journal_bytes", "gauge",
                         "Audit events of the answering worker not yet in "
                         "PostgreSQL, in bytes");
    p = ngx_slprintf(p, last, "ent_audit_journal_bytes %O\n", ast.journal);

    p = ngx_ent_m_family(p, last, "ent_metrics_tenants", "gauge",
                         "Tenants with a slot in the metrics zone");
    p = ngx_slprintf(p, last, "ent_metrics_tenants %uA\n"
                     "# HELP ent_metrics_overflow_total Requests of tenants "
                     "that found no free slot\n"
                     "# TYPE ent_metrics_overflow_total counter\n"
                     "ent_metrics_overflow_total %uA\n",
                     sh->tenants, sh->overflow);

    if (p == last) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ent metrics: the page did not fit in %uz bytes", size);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = p;

    return ngx_http_ent_core_send(r, b,
                                  "text/plain; version=0.0.4; charset=utf-8",
                                  sizeof("text/plain") - 1);
}


static u_char *
ngx_ent_m_family(u_char *p, u_char *last, const char *name, const char *type,
    const char *help)
{
    return ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s %s\n",
                        name, help, name, type);
}


/* one tenant's lines of one family */

static u_char *
ngx_ent_m_tenant(u_char *p, u_char *last, ngx_str_t *label,
    ngx_ent_m_sum_t *s, ngx_ent_m_slot_t *slot, ngx_uint_t part)
{
    ngx_uint_t  i, cum, q;

    switch (part) {

    case 0:
        for (i = 0; i < NGX_ENT_M_CLASSES; i++) {
            if (s->status[i] || i == 1) {
                p = ngx_slprintf(p, last, "ent_requests_total{tenant=\"%V\","
                                 "class=\"%s\"} %ui\n", label,
                                 ngx_ent_m_class[i], s->status[i]);
            }
        }
        break;

    case 1:
    case 2:
        {
        const char  *name;
        ngx_uint_t  *h, ms;

        name = (part == 1) ? "ent_request_duration_seconds"
                           : "ent_upstream_response_seconds";
        h = (part == 1) ? s->latency : s->upstream;
        ms = (part == 1) ? s->latency_ms : s->upstream_ms;

        for (i = 0, cum = 0; i < NGX_ENT_M_BUCKETS; i++) {
            cum += h[i];
            p = ngx_slprintf(p, last, "%s_bucket{tenant=\"%V\",le=\"%s\"} "
                             "%ui\n", name, label, ngx_ent_m_le[i], cum);
        }

        p = ngx_slprintf(p, last, "%s_sum{tenant=\"%V\"} %ui.%03ui\n"
                         "%s_count{tenant=\"%V\"} %ui\n",
                         name, label, ms / 1000, ms % 1000, name, label, cum);
        }
        break;

    case 3:
        p = ngx_slprintf(p, last, "ent_received_bytes_total{tenant=\"%V\"} "
                         "%ui\n", label, s->bytes_in);
        break;

    case 4:
        p = ngx_slprintf(p, last, "ent_sent_bytes_total{tenant=\"%V\"} %ui\n",
                         label, s->bytes_out);
        break;

    case 5:
        p = ngx_slprintf(p, last, "ent_ratelimit_rejections_total"
                         "{tenant=\"%V\"} %ui\n", label,
                         s->counters[NGX_ENT_M_RATELIMITED]);
        break;

    case 6:
        p = ngx_slprintf(p, last,
                  "ent_sso_logins_total{tenant=\"%V\",protocol=\"oidc\","
                  "result=\"success\"} %ui\n"
                  "ent_sso_logins_total{tenant=\"%V\",protocol=\"oidc\","
                  "result=\"failure\"} %ui\n"
                  "ent_sso_logins_total{tenant=\"%V\",protocol=\"saml\","
                  "result=\"success\"} %ui\n"
                  "ent_sso_logins_total{tenant=\"%V\",protocol=\"saml\","
                  "result=\"failure\"} %ui\n",
                  label, s->counters[NGX_ENT_M_OIDC_LOGIN],
                  label, s->counters[NGX_ENT_M_OIDC_FAILURE],
                  label, s->counters[NGX_ENT_M_SAML_LOGIN],
                  label, s->counters[NGX_ENT_M_SAML_FAILURE]);
        break;

    case 7:
        p = ngx_slprintf(p, last, "ent_scim_operations_total{tenant=\"%V\"} "
                         "%ui\n", label, s->counters[NGX_ENT_M_SCIM_OP]);
        break;

    case 8:
        p = ngx_slprintf(p, last, "ent_scim_errors_total{tenant=\"%V\"} "
                         "%ui\n", label, s->counters[NGX_ENT_M_SCIM_ERROR]);
        break;

    case 9:
        p = ngx_ent_m_quantiles(p, last, "ent_request_duration_window_seconds",
                                label, s);
        break;

    default:
        if (slot == NULL || slot->sla_gen == 0) {
            break;
        }

        switch (part) {
        case 10:
            p = ngx_slprintf(p, last, "ent_sla_violation{tenant=\"%V\"} "
                             "%uA\n", label, slot->sla_state);
            break;
        case 11:
            p = ngx_slprintf(p, last, "ent_sla_window_requests"
                             "{tenant=\"%V\"} %ui\n", label,
                             s->win_requests);
            break;
        case 12:
            q = s->win_requests ? s->win_errors * 1000000 / s->win_requests
                                : 0;
            p = ngx_slprintf(p, last, "ent_sla_window_error_ratio"
                             "{tenant=\"%V\"} %ui.%06ui\n", label,
                             q / 1000000, q % 1000000);
            break;
        case 13:
            p = ngx_slprintf(p, last, "ent_sla_target_p99_seconds"
                             "{tenant=\"%V\"} %uA.%03uA\n", label,
                             slot->sla_p99 / 1000, slot->sla_p99 % 1000);
            break;
        default:
            p = ngx_slprintf(p, last, "ent_sla_target_error_ratio"
                             "{tenant=\"%V\"} %uA.%06uA\n", label,
                             slot->sla_err / 1000000,
                             slot->sla_err % 1000000);
        }
    }

    return p;
}


/* the window's p50, p95 and p99 as gauges, of a tenant or (NULL) the node */

static u_char *
ngx_ent_m_quantiles(u_char *p, u_char *last, const char *name,
    ngx_str_t *label, ngx_ent_m_sum_t *s)
{
    ngx_uint_t    i, q;
    static char  *qs[] = { "0.5", "0.95", "0.99" };
    static double qv[] = { 0.5, 0.95, 0.99 };

    for (i = 0; i < 3; i++) {
        q = ngx_ent_m_quantile(s->win, s->win_requests, qv[i]);

        if (label) {
            p = ngx_slprintf(p, last, "%s{tenant=\"%V\",quantile=\"%s\"} "
                             "%ui.%06ui\n", name, label, qs[i],
                             q / 1000000, q % 1000000);
        } else {
            p = ngx_slprintf(p, last, "%s{quantile=\"%s\"} %ui.%06ui\n",
                             name, qs[i], q / 1000000, q % 1000000);
        }
    }

    return p;
}
