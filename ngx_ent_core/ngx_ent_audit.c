/*
 * ngx_ent core: the audit trail's writer.
 *
 * An event is one JSON line appended to this worker's journal file (one
 * write(2) with O_APPEND, the way nginx writes its access log) before the
 * call returns; a timer sends what the journal holds to PostgreSQL in
 * batches (ent.audit_write(), one query per batch of up to 500 events or
 * 256 KB) and truncates the journal once all of it is committed; under a
 * steady flow, where that moment never comes, what is not yet committed
 * moves to a new journal once 1 MB (a quarter of "max_size" if less) is.  A request never waits for
 * PostgreSQL.  When PostgreSQL is down or slow the journal grows (up to
 * "max_size" not yet committed, then events are dropped with an error-log
 * line) and is sent, in order, when it is back.  A batch PostgreSQL
 * refuses as data is halved until the one event it refuses is found; that
 * one is set aside in a file beside the journal.
 *
 * A journal that cannot be created (a full or read-only disk) is tried
 * again every second; meanwhile events are dropped and counted, and the
 * worker serves on: a worker that fails to start is not started again.
 *
 * Each event carries an id made here (a random per-worker prefix and a
 * counter) and its time: a batch sent twice (the worker died after the
 * commit but before it truncated) writes nothing the second time.
 *
 * Journals are named audit-<pid>-<time>-<random>.jnl and locked (fcntl)
 * by their owner.  A worker that finds a journal nobody holds (its owner
 * was killed, or exited before PostgreSQL was back) adopts it: sends it
 * and removes it.
 * A journal is created under a temporary name and renamed once locked, so
 * that no one adopts a journal in the instant between its creation and
 * its lock.
 */


#include "ngx_ent_core_int.h"

#include <dirent.h>


#define NGX_ENT_AUDIT_LINE       8192
#define NGX_ENT_AUDIT_CHUNK      (256 * 1024)
#define NGX_ENT_AUDIT_BATCH      500
#define NGX_ENT_AUDIT_RETRY      1000
#define NGX_ENT_AUDIT_SCAN       2000
#define NGX_ENT_AUDIT_ROTATE     (1024 * 1024)


typedef struct {
    ngx_fd_t                   fd;
    off_t                      size;        /* bytes in the file */
    off_t                      sent;        /* committed up to here */
    u_char                     name[NGX_MAX_PATH];
} ngx_ent_journal_t;


typedef struct {
    ngx_http_ent_core_main_conf_t  *cmcf;
    ngx_ent_journal_t               own;
    ngx_ent_journal_t               adopted;  /* fd == -1: none */
    ngx_ent_journal_t              *busy;     /* a batch of it in flight */
    off_t                           batch;    /* its length in bytes */
    ngx_uint_t                      events;   /* its events */
    ngx_event_t                     timer;
    ngx_msec_t                      next_scan;
    uint64_t                        prefix[2];
    uint64_t                        seq;
    ngx_uint_t                      limit;    /* events in a batch, at most */
    ngx_uint_t                      full;     /* dropping, logged once */
    ngx_uint_t                      nofile;   /* no journal, logged once */
    ngx_uint_t                      exiting;
    ngx_ent_audit_stats_t           stats;
} ngx_ent_audit_worker_t;


static ngx_int_t ngx_ent_audit_open(ngx_ent_audit_worker_t *w,
    ngx_log_t *log);
static void ngx_ent_audit_atexit(void);
static void ngx_ent_audit_timer(ngx_event_t *ev);
static void ngx_ent_audit_flush(ngx_ent_audit_worker_t *w);
static void ngx_ent_audit_done(ngx_ent_op_t *op);
static ngx_int_t ngx_ent_audit_set_aside(ngx_ent_audit_worker_t *w,
    ngx_ent_journal_t *j, off_t off, off_t len);
static void ngx_ent_audit_rotate(ngx_ent_audit_worker_t *w);
static void ngx_ent_audit_drained(ngx_ent_audit_worker_t *w,
    ngx_ent_journal_t *j);
static void ngx_ent_audit_scan(ngx_ent_audit_worker_t *w);
static void ngx_ent_audit_schedule(ngx_ent_audit_worker_t *w, ngx_msec_t ms);
static size_t ngx_ent_audit_utf8(u_char *s, size_t len);
static u_char *ngx_ent_audit_str(u_char *p, u_char *last, const char *name,
    u_char *s, size_t len, size_t max);


static ngx_ent_audit_worker_t  *ngx_ent_audit_w;


ngx_int_t
ngx_ent_audit_init_worker(ngx_cycle_t *cycle,
    ngx_http_ent_core_main_conf_t *cmcf)
{
    ssize_t                  n;
    ngx_fd_t                 fd;
    ngx_ent_audit_worker_t  *w;

    /* on the heap: events may still come after the cycle's pool is gone */
    w = ngx_calloc(sizeof(ngx_ent_audit_worker_t), cycle->log);
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->cmcf = cmcf;
    w->own.fd = NGX_INVALID_FILE;
    w->adopted.fd = NGX_INVALID_FILE;

    /* ids unique across workers and nodes: 128 random bits per worker */

    fd = ngx_open_file("/dev/urandom", NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "ent audit: open(\"/dev/urandom\") failed");
        return NGX_ERROR;
    }

    n = read(fd, w->prefix, sizeof(w->prefix));
    (void) ngx_close_file(fd);

    if (n != (ssize_t) sizeof(w->prefix)) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "ent audit: read(\"/dev/urandom\") failed");
        return NGX_ERROR;
    }

    w->timer.handler = ngx_ent_audit_timer;
    w->timer.data = w;
    w->timer.log = cycle->log;
    w->timer.cancelable = 1;

    w->limit = NGX_ENT_AUDIT_BATCH;

    if (ngx_ent_audit_open(w, cycle->log) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "ent audit: no journal: events are dropped until one "
                      "can be created");
        w->nofile = 1;
    }

    ngx_ent_audit_w = w;

    if (atexit(ngx_ent_audit_atexit) != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "ent audit: atexit() "
                      "failed");
        return NGX_ERROR;
    }

    /* journals left by workers before this one */
    ngx_ent_audit_schedule(w, 100);

    return NGX_OK;
}


static ngx_int_t
ngx_ent_audit_open(ngx_ent_audit_worker_t *w, ngx_log_t *log)
{
    u_char     tmp[NGX_MAX_PATH];
    ngx_str_t  *dir;

    dir = &w->cmcf->audit_path->name;

    if (dir->len + 64 > NGX_MAX_PATH) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "ent audit: journal path \"%V\" too long", dir);
        return NGX_ERROR;
    }

    /*
     * the pid, the time and a random number: a worker never takes over
     * (and truncates) the journal of an earlier one that had its pid (a
     * restart in a container, where pids repeat), nor of a worker of
     * another host sharing the directory
     */

    ngx_sprintf(w->own.name, "%V/audit-%P-%xT-%08xD.jnl%Z", dir, ngx_pid,
                ngx_time(), (uint32_t) ngx_random());
    ngx_sprintf(tmp, "%s.tmp%Z", w->own.name);

    w->own.fd = ngx_open_file(tmp, NGX_FILE_RDWR|O_APPEND,
                              NGX_FILE_TRUNCATE, 0600);

    if (w->own.fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "ent audit: open(\"%s\") failed", tmp);
        return NGX_ERROR;
    }

    if (ngx_trylock_fd(w->own.fd) != 0
        || ngx_rename_file(tmp, w->own.name) == NGX_FILE_ERROR)
    {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "ent audit: cannot lock or rename \"%s\"", tmp);
        (void) ngx_close_file(w->own.fd);
        w->own.fd = NGX_INVALID_FILE;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The worker is exiting: no more sending, but events still go to the
 * journal (modules after the core in exit order flush their counts); the
 * journal is closed, and removed when all of it is committed, at exit()
 */

void
ngx_ent_audit_exit_worker(ngx_http_ent_core_main_conf_t *cmcf)
{
    ngx_ent_audit_worker_t  *w;

    w = ngx_ent_audit_w;
    if (w == NULL) {
        return;
    }

    if (w->timer.timer_set) {
        ngx_del_timer(&w->timer);
    }

    w->exiting = 1;
}


static void
ngx_ent_audit_atexit(void)
{
    ngx_ent_audit_worker_t  *w;

    w = ngx_ent_audit_w;
    if (w == NULL) {
        return;
    }

    ngx_ent_audit_w = NULL;

    /* what is not committed stays for another worker to adopt */

    if (w->own.fd != NGX_INVALID_FILE) {
        if (w->own.size == 0 && w->busy == NULL) {
            (void) ngx_delete_file(w->own.name);
        }

        (void) ngx_close_file(w->own.fd);
    }

    if (w->adopted.fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(w->adopted.fd);
    }
}


void
ngx_ent_audit_stats(ngx_ent_audit_stats_t *st)
{
    ngx_ent_audit_worker_t  *w;

    w = ngx_ent_audit_w;

    if (w == NULL) {
        ngx_memzero(st, sizeof(ngx_ent_audit_stats_t));
        return;
    }

    *st = w->stats;
    st->journal = w->own.size - w->own.sent;
}


/* one event: a JSON line in the journal */


void
ngx_ent_audit(ngx_http_request_t *r, ngx_ent_audit_event_t *ev)
{
    u_char                   *p, *last;
    ssize_t                   n;
    uint64_t                  seq;
    ngx_tm_t                  tm;
    ngx_str_t                 s, *d;
    ngx_uint_t                i;
    ngx_time_t               *tp;
    ngx_http_variable_value_t *vv;
    ngx_ent_audit_worker_t   *w;
    u_char                    line[NGX_ENT_AUDIT_LINE];

    w = ngx_ent_audit_w;

    if (w == NULL || ev->action == NULL || ev->result == NULL) {
        return;
    }

    tp = ngx_timeofday();
    ngx_gmtime(tp->sec, &tm);

    seq = ++w->seq;

    p = line;
    last = line + NGX_ENT_AUDIT_LINE - 2;

    /* a version 4 UUID's layout; the bits are the worker's and the count */

    p = ngx_slprintf(p, last,
                     "{\"id\":\"%08xD-%04xD-4%03xD-%04xD-%012xL\","
                     "\"at\":\"%4d-%02d-%02dT%02d:%02d:%02d.%03MZ\"",
                     (uint32_t) (w->prefix[0] >> 32),
                     (uint32_t) ((w->prefix[0] >> 16) & 0xffff),
                     (uint32_t) (w->prefix[0] & 0xfff),
                     (uint32_t) (0x8000 | ((seq >> 48) & 0x3fff)),
                     (uint64_t) ((w->prefix[1] ^ seq) & 0xffffffffffffULL),
                     tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                     tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec,
                     tp->msec);

    p = ngx_ent_audit_str(p, last, "tenant", ev->tenant.data, ev->tenant.len,
                          36);
    p = ngx_ent_audit_str(p, last, "user", ev->user.data, ev->user.len, 36);
    p = ngx_ent_audit_str(p, last, "actor", ev->actor.data, ev->actor.len,
                          256);

    if (ev->actor_type) {
        p = ngx_ent_audit_str(p, last, "actor_type",
                              (u_char *) ev->actor_type,
                              ngx_strlen(ev->actor_type), 32);
    }

    p = ngx_ent_audit_str(p, last, "action", (u_char *) ev->action,
                          ngx_strlen(ev->action), 64);
    p = ngx_ent_audit_str(p, last, "result", (u_char *) ev->result,
                          ngx_strlen(ev->result), 16);
    p = ngx_ent_audit_str(p, last, "target_type", ev->target_type.data,
                          ev->target_type.len, 32);
    p = ngx_ent_audit_str(p, last, "target_id", ev->target_id.data,
                          ev->target_id.len, 256);
    p = ngx_ent_audit_str(p, last, "reason", ev->reason.data, ev->reason.len,
                          256);

    if (ev->merge) {
        p = ngx_slprintf(p, last, ",\"merge\":true");
    }

    p = ngx_ent_audit_str(p, last, "if_other_issuer", ev->other_issuer.data,
                          ev->other_issuer.len, 512);

    if (r) {
        p = ngx_ent_audit_str(p, last, "ip", r->connection->addr_text.data,
                              r->connection->addr_text.len, 64);

        if (r->headers_in.user_agent) {
            p = ngx_ent_audit_str(p, last, "ua",
                                  r->headers_in.user_agent->value.data,
                                  r->headers_in.user_agent->value.len, 512);
        }

        if (w->cmcf->request_id_index != NGX_ERROR) {
            vv = ngx_http_get_indexed_variable(r->main,
                                               w->cmcf->request_id_index);
            if (vv && !vv->not_found) {
                p = ngx_ent_audit_str(p, last, "rid", vv->data, vv->len, 64);
            }
        }
    }

    p = ngx_slprintf(p, last, ",\"details\":{");

    d = ev->details;

    for (i = 0; i < ev->ndetails; i++) {
        s = d[2 * i];

        if (s.len && s.data[0] == '#') {
            /* a number: its digits, as given */
            p = ngx_slprintf(p, last, "%s\"%*s\":%V", i ? "," : "",
                             (size_t) ngx_min(s.len - 1, 64), s.data + 1,
                             &d[2 * i + 1]);
            continue;
        }

        if (i) {
            p = ngx_slprintf(p, last, ",");
        }

        p = ngx_ent_audit_str(p, last, NULL, s.data, s.len, 64);
        p = ngx_slprintf(p, last, ":");
        p = ngx_ent_audit_str(p, last, NULL, d[2 * i + 1].data,
                              d[2 * i + 1].len, 512);
    }

    if (p + 3 > last + 2) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "ent audit: event \"%s\" too long, dropped",
                      ev->action);
        w->stats.dropped++;
        return;
    }

    *p++ = '}';
    *p++ = '}';
    *p++ = '\n';

    if (w->own.fd == NGX_INVALID_FILE) {
        if (!w->nofile) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "ent audit: no journal: events are dropped until "
                          "one can be created");
            w->nofile = 1;
        }

        w->stats.dropped++;
        return;
    }

    /* what is not committed yet counts, not what was and is still there */

    if (w->own.size - w->own.sent + (p - line)
        > (off_t) w->cmcf->audit_max)
    {
        if (!w->full) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "ent audit: journal \"%s\" is full (%O bytes "
                          "not yet in PostgreSQL): events are dropped until "
                          "it drains", w->own.name,
                          w->own.size - w->own.sent);
            w->full = 1;
        }

        w->stats.dropped++;
        return;
    }

    n = ngx_write_fd(w->own.fd, line, p - line);

    if (n != p - line) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, ngx_errno,
                      "ent audit: write to \"%s\" failed, event \"%s\" "
                      "dropped", w->own.name, ev->action);
        w->stats.dropped++;

        if (n > 0) {
            /* a torn line: cut it off again */
            if (ftruncate(w->own.fd, w->own.size) == -1) {
                ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                              "ent audit: ftruncate(\"%s\") failed",
                              w->own.name);
            }
        }

        return;
    }

    w->own.size += n;
    w->stats.events++;

    if (w->busy == NULL && !w->exiting) {
        ngx_ent_audit_schedule(w, w->cmcf->audit_flush);
    }
}


/*
 * ,"name":"value" (or "value" alone when name is NULL), JSON-escaped;
 * what PostgreSQL's jsonb refuses (bytes that are not UTF-8, NUL) becomes
 * '?', so one odd User-Agent never fails a batch
 */

/*
 * The length of the well-formed UTF-8 sequence at s (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF), 0 for none
 */

static size_t
ngx_ent_audit_utf8(u_char *s, size_t len)
{
    size_t  n, i;
    u_char  lo, hi;

    lo = 0x80;
    hi = 0xbf;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;

    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        lo = (s[0] == 0xe0) ? 0xa0 : 0x80;
        hi = (s[0] == 0xed) ? 0x9f : 0xbf;

    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        lo = (s[0] == 0xf0) ? 0x90 : 0x80;
        hi = (s[0] == 0xf4) ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    if (len < n || s[1] < lo || s[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


static u_char *
ngx_ent_audit_str(u_char *p, u_char *last, const char *name, u_char *s,
    size_t len, size_t max)
{
    size_t   n;
    u_char   c, *end;

    if (name) {
        if (len == 0) {
            return p;
        }

        p = ngx_slprintf(p, last, ",\"%s\":", name);
    }

    if (p >= last) {
        return p;
    }

    *p++ = '"';

    end = s + ngx_min(len, max);

    while (s < end && p + 8 < last) {
        c = *s;

        if (c >= 0x80) {
            n = ngx_ent_audit_utf8(s, end - s);

            if (n == 0) {
                /* not UTF-8 (PostgreSQL would refuse the whole batch) */
                *p++ = '?';
                s++;
                continue;
            }

            while (n--) {
                *p++ = *s++;
            }

            continue;
        }

        s++;

        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = c;

        } else if (c == 0) {
            *p++ = '?';

        } else if (c < 0x20 || c == 0x7f) {
            p = ngx_sprintf(p, "\\u%04xd", (ngx_uint_t) c);

        } else {
            *p++ = c;
        }
    }

    if (p < last) {
        *p++ = '"';
    }

    return p;
}


/* sending */


/*
 * A flush soon keeps a worker that shuts down gracefully alive until the
 * journal is sent (worker_shutdown_timeout bounds it); a retry (PostgreSQL
 * away) or an idle scan does not: the journal waits for the next worker
 */

static void
ngx_ent_audit_schedule(ngx_ent_audit_worker_t *w, ngx_msec_t ms)
{
    ngx_uint_t  cancelable;

    cancelable = (ms == NGX_ENT_AUDIT_RETRY || ms == NGX_ENT_AUDIT_SCAN);

    if (w->timer.timer_set) {
        if (w->timer.timer.key <= ngx_current_msec + ms) {
            if (!cancelable) {
                w->timer.cancelable = 0;
            }

            return;
        }

        ngx_del_timer(&w->timer);
    }

    w->timer.cancelable = cancelable;

    ngx_add_timer(&w->timer, ms);
}


static void
ngx_ent_audit_timer(ngx_event_t *ev)
{
    ngx_ent_audit_worker_t  *w = ev->data;

    if (ngx_ent_audit_w != w) {
        return;
    }

    ngx_ent_audit_flush(w);
}


static void
ngx_ent_audit_flush(ngx_ent_audit_worker_t *w)
{
    u_char             *buf, *p, *q, *out, *nl;
    off_t               len, done;
    ssize_t             n;
    ngx_int_t           rc;
    ngx_str_t           param;
    ngx_uint_t          events;
    ngx_ent_journal_t  *j;

    if (w->busy) {
        return;
    }

    if (w->own.fd == NGX_INVALID_FILE && !w->exiting
        && ngx_ent_audit_open(w, ngx_cycle->log) == NGX_OK)
    {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "ent audit: journal \"%s\" created, events are kept "
                      "again", w->own.name);
        w->own.size = 0;
        w->own.sent = 0;
        w->nofile = 0;
    }

    /* journals nobody holds, however busy this worker's own is */

    if (w->adopted.fd == NGX_INVALID_FILE
        && (ngx_msec_int_t) (ngx_current_msec - w->next_scan) >= 0)
    {
        w->next_scan = ngx_current_msec + NGX_ENT_AUDIT_SCAN;
        ngx_ent_audit_scan(w);
    }

    /* an adopted journal holds the older events: it goes first */

    j = (w->adopted.fd != NGX_INVALID_FILE) ? &w->adopted : &w->own;

    if (j->fd == NGX_INVALID_FILE) {
        /* no journal of its own (yet): try again */
        ngx_ent_audit_schedule(w, NGX_ENT_AUDIT_RETRY);
        return;
    }

    if (j->sent == j->size) {
        if (j == &w->adopted) {
            ngx_ent_audit_drained(w, j);
            ngx_ent_audit_schedule(w, 0);
            return;
        }

        if (j->size) {
            ngx_ent_audit_drained(w, j);
        }

        /* nothing to send: look for orphans now and then */
        ngx_ent_audit_schedule(w, NGX_ENT_AUDIT_SCAN);
        return;
    }

    len = ngx_min(j->size - j->sent, NGX_ENT_AUDIT_CHUNK);

    buf = ngx_alloc(2 * len + 2, ngx_cycle->log);
    if (buf == NULL) {
        ngx_ent_audit_schedule(w, NGX_ENT_AUDIT_RETRY);
        return;
    }

    n = pread(j->fd, buf, len, j->sent);

    if (n <= 0) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      "ent audit: pread(\"%s\") failed", j->name);
        ngx_free(buf);
        ngx_ent_audit_schedule(w, NGX_ENT_AUDIT_RETRY);
        return;
    }

    /* whole lines, at most a batch of them, joined into a JSON array */

    out = buf + n;
    q = out;
    *q++ = '[';
    events = 0;
    done = 0;

    for (p = buf; p < buf + n && events < w->limit; p = nl + 1) {

        nl = ngx_strlchr(p, buf + n, '\n');
        if (nl == NULL) {
            break;
        }

        if (ngx_strlchr(p, nl, '\0') != NULL) {
            /*
             * a line no writer makes (the writer escapes NUL): a journal
             * damaged on disk.  The batch ends before it; alone, it is
             * set aside, since no query can carry it
             */

            if (events) {
                break;
            }

            if (ngx_ent_audit_set_aside(w, j, j->sent + (p - buf),
                                        nl + 1 - p)
                != NGX_OK)
            {
                ngx_free(buf);
                ngx_ent_audit_schedule(w, NGX_ENT_AUDIT_RETRY);
                return;
            }

            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "ent audit: a damaged line of \"%s\" set aside",
                          j->name);
            j->sent += nl + 1 - buf;
            w->stats.rejected++;
            ngx_free(buf);
            ngx_ent_audit_schedule(w, 0);
            return;
        }

        if (nl > p) {
            if (events) {
                *q++ = ',';
            }

            q = ngx_cpymem(q, p, nl - p);
            events++;
        }

        done = nl + 1 - buf;
    }

    *q++ = ']';

    if (done == 0) {
        /* a torn last line, left by a worker killed mid-write */

        if (j == &w->adopted || n == j->size - j->sent) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "ent audit: \"%s\" ends in %z bytes that are not "
                          "a whole event, skipped", j->name, n);
            j->sent += n;
        }

        ngx_free(buf);
        ngx_ent_audit_schedule(w, 0);
        return;
    }

    if (events == 0) {
        j->sent += done;
        ngx_free(buf);
        ngx_ent_audit_schedule(w, 0);
        return;
    }

    param.data = out;
    param.len = q - out;

    rc = ngx_ent_pg_query(NULL, w->cmcf->audit_stmt, &param,
                          ngx_ent_audit_done, w);

    ngx_free(buf);

    if (rc != NGX_AGAIN) {
        /* PostgreSQL is away: the journal keeps the events */
        ngx_ent_audit_schedule(w, NGX_ENT_AUDIT_RETRY);
        return;
    }

    w->busy = j;
    w->batch = done;
    w->events = events;

    /* a worker shutting down waits for the batch's answer */

    if (w->timer.timer_set) {
        ngx_del_timer(&w->timer);
    }

    w->timer.cancelable = 0;
    ngx_add_timer(&w->timer, w->cmcf->pg.query_timeout
                             + w->cmcf->pg.queue_timeout + 1000);
}


static void
ngx_ent_audit_done(ngx_ent_op_t *op)
{
    ngx_ent_audit_worker_t  *w = op->data;

    off_t               rotate;
    ngx_ent_journal_t  *j;

    if (ngx_ent_audit_w != w) {
        return;
    }

    j = w->busy;
    w->busy = NULL;

    if (w->timer.timer_set) {
        ngx_del_timer(&w->timer);
    }

    if (op->status == NGX_ENT_OK) {
        j->sent += w->batch;
        w->stats.written += w->events;

        rotate = ngx_min(NGX_ENT_AUDIT_ROTATE,
                         (off_t) w->cmcf->audit_max / 4);

        /* after a refused batch, back to whole batches step by step */
        w->limit = ngx_min(2 * w->limit, NGX_ENT_AUDIT_BATCH);

        if (j == &w->own) {
            if (j->sent == j->size) {
                ngx_ent_audit_drained(w, j);

            } else if (j->sent >= rotate
                       && (j->size - j->sent <= rotate
                           || j->sent >= (off_t) w->cmcf->audit_max))
            {
                ngx_ent_audit_rotate(w);
            }

            if (w->full
                && j->size - j->sent <= (off_t) w->cmcf->audit_max / 2)
            {
                ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                              "ent audit: journal \"%s\" drained, events "
                              "are kept again", j->name);
                w->full = 0;
            }
        }

        ngx_ent_audit_schedule(w, 0);
        return;
    }

    if (op->status == NGX_ENT_ERROR
        && (op->sqlstate[0] == '2'
            && (op->sqlstate[1] == '2' || op->sqlstate[1] == '3')))
    {
        /*
         * PostgreSQL refuses an event of the batch as data: the batch is
         * halved until the one it refuses is found, which is set aside
         * in a file an operator can read and load, so that it neither
         * blocks the events behind it nor vanishes, and no other event
         * goes with it
         */

        if (w->events > 1) {
            w->limit = w->events / 2;
            ngx_ent_audit_schedule(w, 0);
            return;
        }

        if (ngx_ent_audit_set_aside(w, j, j->sent, w->batch) != NGX_OK) {
            ngx_ent_audit_schedule(w, NGX_ENT_AUDIT_RETRY);
            return;
        }

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "ent audit: PostgreSQL refused an event (SQLSTATE "
                      "%s), set aside in \"%s.rejected\"", op->sqlstate,
                      j->name);

        j->sent += w->batch;
        w->stats.rejected++;
        ngx_ent_audit_schedule(w, 0);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "ent audit: %ui events not written yet (status %ui%s%s), "
                  "kept in the journal", w->events, op->status,
                  op->sqlstate[0] ? ", SQLSTATE " : "",
                  op->sqlstate[0] ? (char *) op->sqlstate : "");

    w->stats.retries++;
    ngx_ent_audit_schedule(w, NGX_ENT_AUDIT_RETRY);
}


/* bytes [off, off + len) of a journal, appended to "<journal>.rejected" */

static ngx_int_t
ngx_ent_audit_set_aside(ngx_ent_audit_worker_t *w, ngx_ent_journal_t *j,
    off_t off, off_t len)
{
    u_char    *buf;
    ssize_t    n;
    ngx_fd_t   fd;
    ngx_int_t  rc;
    u_char     name[NGX_MAX_PATH];

    ngx_sprintf(name, "%s.rejected%Z", j->name);

    buf = ngx_alloc(len, ngx_cycle->log);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    fd = ngx_open_file(name, NGX_FILE_WRONLY|NGX_FILE_APPEND,
                       NGX_FILE_CREATE_OR_OPEN, 0600);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      "ent audit: open(\"%s\") failed, the event stays in "
                      "the journal", name);
        goto done;
    }

    n = pread(j->fd, buf, len, off);

    if (n != len) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      "ent audit: pread(\"%s\") failed", j->name);

    } else if (ngx_write_fd(fd, buf, n) != n) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      "ent audit: write to \"%s\" failed, the event stays "
                      "in the journal", name);

    } else {
        rc = NGX_OK;
    }

    (void) ngx_close_file(fd);

done:

    ngx_free(buf);

    return rc;
}


/*
 * Under a steady flow the journal is never all committed, and so never
 * truncated: what is not committed yet is copied into a new journal,
 * which takes the old one's place, and the old one is removed.  A worker
 * killed meanwhile leaves both to be adopted; the events in both are then
 * sent twice, which writes them once (their ids).
 */

static void
ngx_ent_audit_rotate(ngx_ent_audit_worker_t *w)
{
    off_t              off;
    u_char            *buf;
    ssize_t            n;
    ngx_ent_journal_t  old;

    buf = ngx_alloc(NGX_ENT_AUDIT_CHUNK, ngx_cycle->log);
    if (buf == NULL) {
        return;
    }

    old = w->own;

    if (ngx_ent_audit_open(w, ngx_cycle->log) != NGX_OK) {
        w->own = old;
        ngx_free(buf);
        return;
    }

    w->own.size = 0;
    w->own.sent = 0;

    for (off = old.sent; off < old.size; off += n) {

        n = pread(old.fd, buf, ngx_min(old.size - off, NGX_ENT_AUDIT_CHUNK),
                  off);

        if (n <= 0 || ngx_write_fd(w->own.fd, buf, n) != n) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                          "ent audit: copying \"%s\" into \"%s\" failed, "
                          "the journal is kept", old.name, w->own.name);

            (void) ngx_delete_file(w->own.name);
            (void) ngx_close_file(w->own.fd);
            w->own = old;
            ngx_free(buf);
            return;
        }

        w->own.size += n;
    }

    ngx_free(buf);

    (void) ngx_delete_file(old.name);
    (void) ngx_close_file(old.fd);
}


/* all of a journal is in PostgreSQL */

static void
ngx_ent_audit_drained(ngx_ent_audit_worker_t *w, ngx_ent_journal_t *j)
{
    if (j == &w->adopted) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "ent audit: \"%s\" sent, removed", j->name);

        (void) ngx_delete_file(j->name);
        (void) ngx_close_file(j->fd);
        j->fd = NGX_INVALID_FILE;
        return;
    }

    if (ftruncate(j->fd, 0) == -1) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      "ent audit: ftruncate(\"%s\") failed", j->name);
        return;
    }

    j->size = 0;
    j->sent = 0;

    if (w->full) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "ent audit: journal \"%s\" drained, events are "
                      "kept again", j->name);
        w->full = 0;
    }
}


/* journals nobody holds: their worker is gone */

static void
ngx_ent_audit_scan(ngx_ent_audit_worker_t *w)
{
    DIR              *dir;
    size_t            len;
    ngx_fd_t          fd;
    ngx_str_t        *path;
    ngx_file_info_t   fi;
    struct dirent    *de;
    u_char            name[NGX_MAX_PATH];

    path = &w->cmcf->audit_path->name;

    ngx_sprintf(name, "%V%Z", path);

    dir = opendir((char *) name);
    if (dir == NULL) {
        return;
    }

    while ((de = readdir(dir)) != NULL) {
        len = ngx_strlen(de->d_name);

        if (len < 11 || len > 64
            || ngx_strncmp(de->d_name, "audit-", 6) != 0
            || ngx_strcmp(de->d_name + len - 4, ".jnl") != 0)
        {
            continue;
        }

        ngx_sprintf(name, "%V/%s%Z", path, de->d_name);

        if (ngx_strcmp(name, w->own.name) == 0) {
            continue;
        }

        fd = ngx_open_file(name, NGX_FILE_RDWR, NGX_FILE_OPEN, 0);
        if (fd == NGX_INVALID_FILE) {
            continue;
        }

        if (ngx_trylock_fd(fd) != 0
            || ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
            || fi.st_nlink == 0)
        {
            /* alive, or adopted and removed by someone else meanwhile */
            (void) ngx_close_file(fd);
            continue;
        }

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "ent audit: adopting \"%s\" (%O bytes) of a worker "
                      "that is gone", name, ngx_file_size(&fi));

        w->adopted.fd = fd;
        w->adopted.size = ngx_file_size(&fi);
        w->adopted.sent = 0;
        ngx_cpystrn(w->adopted.name, name, NGX_MAX_PATH);
        w->stats.adopted++;
        break;
    }

    closedir(dir);
}


ngx_uint_t
ngx_ent_audit_enabled(void)
{
    return ngx_ent_audit_w != NULL;
}
