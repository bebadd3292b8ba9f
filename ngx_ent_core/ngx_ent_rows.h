/*
 * ngx_ent: I/O-free helpers shared by the core and the feature modules.
 *
 * Nothing here knows nginx or a socket: plain bytes in, results out, so
 * the unit tests and the libFuzzer targets link this file on its own.
 *
 * Rows blob: the form in which a PostgreSQL result travels from the pool
 * to a module and into the shared-memory cache.  Host byte order (a blob
 * never leaves the node):
 *
 *     u32 nrows, u32 ncols, then nrows * ncols cells in row order,
 *     each cell u32 length (0xffffffff for SQL NULL) followed by bytes.
 *
 * A blob read from anywhere is checked whole by ngx_ent_rows_open()
 * before any cell is handed out.
 */

#ifndef _NGX_ENT_ROWS_H_INCLUDED_
#define _NGX_ENT_ROWS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <string.h>


/* weak in feature modules (see ngx_ent_core.h), plain everywhere else */
#ifndef NGX_ENT_ROWS_API
#define NGX_ENT_ROWS_API
#endif


#define NGX_ENT_ROWS_NULL       0xffffffffu
#define NGX_ENT_ROWS_MAX_CELLS  1048576


typedef struct {
    const unsigned char  *data;
    size_t                len;
    uint32_t              nrows;
    uint32_t              ncols;
    size_t                pos;        /* cursor for ngx_ent_rows_next() */
    uint32_t              cell;       /* index of the next cell */
} ngx_ent_rows_t;


/* blob building: size first, then write into a buffer of that size */
NGX_ENT_ROWS_API size_t ngx_ent_rows_header_size(void);
NGX_ENT_ROWS_API size_t ngx_ent_rows_cell_size(size_t len);
NGX_ENT_ROWS_API unsigned char *ngx_ent_rows_put_header(unsigned char *p, uint32_t nrows,
    uint32_t ncols);
NGX_ENT_ROWS_API unsigned char *ngx_ent_rows_put_cell(unsigned char *p,
    const unsigned char *data, size_t len, int is_null);

/* 0 on a well-formed blob, -1 otherwise */
NGX_ENT_ROWS_API int ngx_ent_rows_open(ngx_ent_rows_t *rows, const unsigned char *data,
    size_t len);

/*
 * the next cell in row order: 1 with data and len set (data NULL for SQL
 * NULL), 0 at the end (data NULL).  Inline: a request decodes some sixty cells (its
 * tenant, identity provider, session), each a call into the core module
 * otherwise; the blob was checked whole by ngx_ent_rows_open().
 */
static inline int
ngx_ent_rows_next(ngx_ent_rows_t *rows, const unsigned char **data,
    size_t *len)
{
    uint32_t  n;

    if (rows->data == NULL || rows->cell >= rows->nrows * rows->ncols) {
        *data = NULL;
        *len = 0;
        return 0;
    }

    memcpy(&n, rows->data + rows->pos, sizeof(uint32_t));
    rows->pos += sizeof(uint32_t);
    rows->cell++;

    if (n == NGX_ENT_ROWS_NULL) {
        *data = NULL;
        *len = 0;
        return 1;
    }

    *data = rows->data + rows->pos;
    *len = n;
    rows->pos += n;

    return 1;
}

/* random access: 0 and the cell, or -1 when out of range */
NGX_ENT_ROWS_API int ngx_ent_rows_cell(const ngx_ent_rows_t *rows, uint32_t row, uint32_t col,
    const unsigned char **data, size_t *len);


/*
 * Invalidation payload: "<zone>:<key>" deletes one key of one cache zone,
 * "<zone>:" or "<zone>:*" flushes the zone, "*" flushes every zone.
 * Returns 0 and the parts, or -1 for a malformed payload.
 */
#define NGX_ENT_NOTIFY_KEY      0
#define NGX_ENT_NOTIFY_ZONE     1
#define NGX_ENT_NOTIFY_ALL      2

NGX_ENT_ROWS_API int ngx_ent_notify_parse(const unsigned char *p, size_t len, int *what,
    const unsigned char **zone, size_t *zone_len,
    const unsigned char **key, size_t *key_len);


/*
 * Redis protocol (RESP) command encoding: "*<argc>\r\n" then
 * "$<len>\r\n<arg>\r\n" for each argument.  ngx_ent_resp_size() gives the
 * exact length, ngx_ent_resp_write() writes it and returns the end.
 */
NGX_ENT_ROWS_API size_t ngx_ent_resp_size(size_t argc, const size_t *lens);
NGX_ENT_ROWS_API unsigned char *ngx_ent_resp_write(unsigned char *p, size_t argc,
    const unsigned char *const *args, const size_t *lens);


/* reconnect backoff: doubles from min up to max */
NGX_ENT_ROWS_API unsigned long ngx_ent_backoff_next(unsigned long cur, unsigned long min,
    unsigned long max);


/*
 * Redis key with a per-tenant hash tag: "<prefix>{t:<tenant>}:<suffix>".
 * The tenant code must be non-empty and hold no '{' '}' or control bytes;
 * returns the length written, or 0 when it does not fit or is invalid.
 */
NGX_ENT_ROWS_API size_t ngx_ent_redis_key(unsigned char *buf, size_t size,
    const unsigned char *prefix, size_t prefix_len,
    const unsigned char *tenant, size_t tenant_len,
    const unsigned char *suffix, size_t suffix_len);


/*
 * Redis Cluster.  ngx_ent_redis_slot(): the key's slot, CRC16 of its
 * hash tag (what is between the first "{" and the next "}", when not
 * empty) or of the whole key.
 */
#define NGX_ENT_REDIS_SLOTS     16384

NGX_ENT_ROWS_API unsigned int ngx_ent_redis_slot(const unsigned char *key, size_t len);

/*
 * An error reply "MOVED <slot> <ip>:<port>" or "ASK <slot> <ip>:<port>":
 * 0 and the parts (ip may be empty: the node that answered), -1 for
 * anything else
 */
#define NGX_ENT_REDIS_MOVED     1
#define NGX_ENT_REDIS_ASK       2

NGX_ENT_ROWS_API int ngx_ent_redis_redirect(const unsigned char *p, size_t len, int *kind,
    unsigned int *slot, const unsigned char **ip, size_t *ip_len,
    const unsigned char **port, size_t *port_len);

/*
 * A CLUSTER SLOTS reply: each range of slots and its master, pointing into
 * the reply.  0 and *n ranges, or -1 when anything in it is malformed (at
 * most max ranges).
 */
typedef struct {
    unsigned int          start;
    unsigned int          end;
    const unsigned char  *ip;         /* may be empty: the node asked */
    size_t                ip_len;
    unsigned int          port;
} ngx_ent_redis_range_t;

struct redisReply;

NGX_ENT_ROWS_API int ngx_ent_redis_cluster_slots(const struct redisReply *reply,
    ngx_ent_redis_range_t *ranges, size_t max, size_t *n);


/*
 * SipHash-1-3 of len bytes under the 128-bit key k (k[0] the first eight
 * key bytes read little-endian): the hash of keys that come from requests
 * (cache buckets, the bearer-token cache), random per zone or per worker so
 * that nobody can aim many keys at one bucket.  ngx_ent_siphash24() is
 * SipHash-2-4, the same code checked against the reference vectors.
 */
NGX_ENT_ROWS_API uint64_t ngx_ent_siphash(const uint64_t *k,
    const unsigned char *p, size_t len);
NGX_ENT_ROWS_API uint64_t ngx_ent_siphash24(const uint64_t *k,
    const unsigned char *p, size_t len);


#endif /* _NGX_ENT_ROWS_H_INCLUDED_ */
