/*
 * ngx_ent: I/O-free helpers (see ngx_ent_rows.h).
 */


#include <string.h>

#include <hiredis/hiredis.h>

#include "ngx_ent_rows.h"


static uint32_t ngx_ent_rows_u32(const unsigned char *p);
static size_t ngx_ent_digits(size_t n);
static unsigned char *ngx_ent_put_num(unsigned char *p, size_t n);


size_t
ngx_ent_rows_header_size(void)
{
    return 2 * sizeof(uint32_t);
}


size_t
ngx_ent_rows_cell_size(size_t len)
{
    return sizeof(uint32_t) + len;
}


unsigned char *
ngx_ent_rows_put_header(unsigned char *p, uint32_t nrows, uint32_t ncols)
{
    memcpy(p, &nrows, sizeof(uint32_t));
    memcpy(p + sizeof(uint32_t), &ncols, sizeof(uint32_t));

    return p + 2 * sizeof(uint32_t);
}


unsigned char *
ngx_ent_rows_put_cell(unsigned char *p, const unsigned char *data, size_t len,
    int is_null)
{
    uint32_t  n;

    n = is_null ? NGX_ENT_ROWS_NULL : (uint32_t) len;
    memcpy(p, &n, sizeof(uint32_t));
    p += sizeof(uint32_t);

    if (!is_null && len) {
        memcpy(p, data, len);
        p += len;
    }

    return p;
}


static uint32_t
ngx_ent_rows_u32(const unsigned char *p)
{
    uint32_t  n;

    memcpy(&n, p, sizeof(uint32_t));

    return n;
}


int
ngx_ent_rows_open(ngx_ent_rows_t *rows, const unsigned char *data, size_t len)
{
    size_t    pos;
    uint32_t  n, i, cells;

    memset(rows, 0, sizeof(ngx_ent_rows_t));

    if (data == NULL || len < 2 * sizeof(uint32_t)) {
        return -1;
    }

    rows->nrows = ngx_ent_rows_u32(data);
    rows->ncols = ngx_ent_rows_u32(data + sizeof(uint32_t));

    if (rows->ncols != 0
        && rows->nrows > NGX_ENT_ROWS_MAX_CELLS / rows->ncols)
    {
        return -1;
    }

    cells = rows->nrows * rows->ncols;
    pos = 2 * sizeof(uint32_t);

    for (i = 0; i < cells; i++) {

        if (len - pos < sizeof(uint32_t)) {
            return -1;
        }

        n = ngx_ent_rows_u32(data + pos);
        pos += sizeof(uint32_t);

        if (n == NGX_ENT_ROWS_NULL) {
            continue;
        }

        if (n > len - pos) {
            return -1;
        }

        pos += n;
    }

    if (pos != len) {
        return -1;
    }

    rows->data = data;
    rows->len = len;
    rows->pos = 2 * sizeof(uint32_t);

    return 0;
}


int
ngx_ent_rows_cell(const ngx_ent_rows_t *rows, uint32_t row, uint32_t col,
    const unsigned char **data, size_t *len)
{
    ngx_ent_rows_t  cur;

    if (rows->data == NULL || row >= rows->nrows || col >= rows->ncols) {
        return -1;
    }

    cur = *rows;
    cur.pos = 2 * sizeof(uint32_t);
    cur.cell = 0;

    while (cur.cell < row * rows->ncols + col) {
        (void) ngx_ent_rows_next(&cur, data, len);
    }

    (void) ngx_ent_rows_next(&cur, data, len);

    return 0;
}


int
ngx_ent_notify_parse(const unsigned char *p, size_t len, int *what,
    const unsigned char **zone, size_t *zone_len,
    const unsigned char **key, size_t *key_len)
{
    size_t  i;

    *zone = NULL;
    *zone_len = 0;
    *key = NULL;
    *key_len = 0;

    if (len == 1 && p[0] == '*') {
        *what = NGX_ENT_NOTIFY_ALL;
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (p[i] == ':') {
            break;
        }

        if (p[i] <= ' ' || p[i] >= 0x7f) {
            return -1;
        }
    }

    if (i == 0 || i == len) {
        return -1;
    }

    *zone = p;
    *zone_len = i;

    p += i + 1;
    len -= i + 1;

    if (len == 0 || (len == 1 && p[0] == '*')) {
        *what = NGX_ENT_NOTIFY_ZONE;
        return 0;
    }

    *what = NGX_ENT_NOTIFY_KEY;
    *key = p;
    *key_len = len;

    return 0;
}


static size_t
ngx_ent_digits(size_t n)
{
    size_t  d;

    for (d = 1; n >= 10; n /= 10) {
        d++;
    }

    return d;
}


static unsigned char *
ngx_ent_put_num(unsigned char *p, size_t n)
{
    size_t  d, i;

    d = ngx_ent_digits(n);

    for (i = d; i > 0; i--) {
        p[i - 1] = (unsigned char) ('0' + n % 10);
        n /= 10;
    }

    return p + d;
}


size_t
ngx_ent_resp_size(size_t argc, const size_t *lens)
{
    size_t  i, size;

    size = 1 + ngx_ent_digits(argc) + 2;

    for (i = 0; i < argc; i++) {
        size += 1 + ngx_ent_digits(lens[i]) + 2 + lens[i] + 2;
    }

    return size;
}


unsigned char *
ngx_ent_resp_write(unsigned char *p, size_t argc,
    const unsigned char *const *args, const size_t *lens)
{
    size_t  i;

    *p++ = '*';
    p = ngx_ent_put_num(p, argc);
    *p++ = '\r';
    *p++ = '\n';

    for (i = 0; i < argc; i++) {
        *p++ = '$';
        p = ngx_ent_put_num(p, lens[i]);
        *p++ = '\r';
        *p++ = '\n';

        if (lens[i]) {
            memcpy(p, args[i], lens[i]);
            p += lens[i];
        }

        *p++ = '\r';
        *p++ = '\n';
    }

    return p;
}


unsigned long
ngx_ent_backoff_next(unsigned long cur, unsigned long min, unsigned long max)
{
    if (cur < min) {
        return min;
    }

    if (cur >= max / 2) {
        return max;
    }

    return cur * 2;
}


size_t
ngx_ent_redis_key(unsigned char *buf, size_t size,
    const unsigned char *prefix, size_t prefix_len,
    const unsigned char *tenant, size_t tenant_len,
    const unsigned char *suffix, size_t suffix_len)
{
    size_t          i, need;
    unsigned char  *p;

    if (tenant_len == 0) {
        return 0;
    }

    for (i = 0; i < tenant_len; i++) {
        if (tenant[i] == '{' || tenant[i] == '}' || tenant[i] <= ' '
            || tenant[i] == 0x7f)
        {
            return 0;
        }
    }

    need = prefix_len + sizeof("{t:}:") - 1 + tenant_len + suffix_len;

    if (need > size) {
        return 0;
    }

    p = buf;
    memcpy(p, prefix, prefix_len);
    p += prefix_len;
    memcpy(p, "{t:", 3);
    p += 3;
    memcpy(p, tenant, tenant_len);
    p += tenant_len;
    memcpy(p, "}:", 2);
    p += 2;
    memcpy(p, suffix, suffix_len);
    p += suffix_len;

    return (size_t) (p - buf);
}


/* Redis Cluster */


static uint16_t  ngx_ent_crc16_table[256];
static int       ngx_ent_crc16_ready;


static void
ngx_ent_crc16_init(void)
{
    int       b;
    uint16_t  crc;
    unsigned  i;

    /* CRC-16/XMODEM: polynomial 0x1021, initial value 0, no reflection */

    for (i = 0; i < 256; i++) {
        crc = (uint16_t) (i << 8);

        for (b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021)
                                 : (uint16_t) (crc << 1);
        }

        ngx_ent_crc16_table[i] = crc;
    }

    ngx_ent_crc16_ready = 1;
}


unsigned int
ngx_ent_redis_slot(const unsigned char *key, size_t len)
{
    size_t    i, s, e;
    uint16_t  crc;

    if (!ngx_ent_crc16_ready) {
        ngx_ent_crc16_init();
    }

    /* the hash tag: what is between the first '{' and the next '}' */

    for (s = 0; s < len && key[s] != '{'; s++) { /* void */ }

    if (s < len) {
        for (e = s + 1; e < len && key[e] != '}'; e++) { /* void */ }

        if (e < len && e > s + 1) {
            key += s + 1;
            len = e - s - 1;
        }
    }

    crc = 0;

    for (i = 0; i < len; i++) {
        crc = (uint16_t) ((crc << 8)
                          ^ ngx_ent_crc16_table[((crc >> 8) ^ key[i]) & 0xff]);
    }

    return crc & (NGX_ENT_REDIS_SLOTS - 1);
}


int
ngx_ent_redis_redirect(const unsigned char *p, size_t len, int *kind,
    unsigned int *slot, const unsigned char **ip, size_t *ip_len,
    const unsigned char **port, size_t *port_len)
{
    size_t                i, n;
    unsigned int          v;
    const unsigned char  *last, *colon;

    if (len > 6 && memcmp(p, "MOVED ", 6) == 0) {
        *kind = NGX_ENT_REDIS_MOVED;
        n = 6;

    } else if (len > 4 && memcmp(p, "ASK ", 4) == 0) {
        *kind = NGX_ENT_REDIS_ASK;
        n = 4;

    } else {
        return -1;
    }

    last = p + len;
    p += n;

    v = 0;

    for (i = 0; p < last && *p >= '0' && *p <= '9'; p++, i++) {
        if (i == 5) {
            return -1;
        }

        v = v * 10 + (*p - '0');
    }

    if (i == 0 || v >= NGX_ENT_REDIS_SLOTS || p == last || *p != ' ') {
        return -1;
    }

    p++;

    /* "<ip>:<port>", split at the last colon (IPv6 has colons); no spaces */

    colon = NULL;

    for (i = 0; p + i < last; i++) {
        if (p[i] <= ' ' || p[i] >= 0x7f) {
            return -1;
        }

        if (p[i] == ':') {
            colon = p + i;
        }
    }

    if (colon == NULL || colon + 1 == last || last - colon - 1 > 5
        || colon - p > 64)
    {
        return -1;
    }

    for (i = 1; colon + i < last; i++) {
        if (colon[i] < '0' || colon[i] > '9') {
            return -1;
        }
    }

    *slot = v;
    *ip = p;
    *ip_len = (size_t) (colon - p);
    *port = colon + 1;
    *port_len = (size_t) (last - colon - 1);

    return 0;
}


static int
ngx_ent_redis_reply_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS;
}


int
ngx_ent_redis_cluster_slots(const redisReply *reply,
    ngx_ent_redis_range_t *ranges, size_t max, size_t *n)
{
    size_t             i, k;
    const redisReply  *e, *node, *ip;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements > max)
    {
        return -1;
    }

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];

        /* [start, end, [ip, port, id, ...] (the master), replicas ...] */

        if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements < 3
            || e->element[0]->type != REDIS_REPLY_INTEGER
            || e->element[1]->type != REDIS_REPLY_INTEGER
            || e->element[0]->integer < 0
            || e->element[1]->integer >= NGX_ENT_REDIS_SLOTS
            || e->element[0]->integer > e->element[1]->integer)
        {
            return -1;
        }

        node = e->element[2];

        /* the ip may be nil (unknown-endpoint): the node asked */

        if (node->type != REDIS_REPLY_ARRAY || node->elements < 2
            || (node->element[0]->type != REDIS_REPLY_NIL
                && (!ngx_ent_redis_reply_str(node->element[0])
                    || node->element[0]->len > 64))
            || node->element[1]->type != REDIS_REPLY_INTEGER
            || node->element[1]->integer < 1
            || node->element[1]->integer > 65535)
        {
            return -1;
        }

        ip = node->element[0];

        if (ip->type == REDIS_REPLY_NIL) {
            ranges[i].ip = (const unsigned char *) "";
            ranges[i].ip_len = 0;

        } else {
            for (k = 0; k < ip->len; k++) {
                if ((unsigned char) ip->str[k] <= ' '
                    || (unsigned char) ip->str[k] >= 0x7f)
                {
                    return -1;
                }
            }

            ranges[i].ip = (const unsigned char *) ip->str;
            ranges[i].ip_len = ip->len;
        }

        ranges[i].start = (unsigned int) e->element[0]->integer;
        ranges[i].end = (unsigned int) e->element[1]->integer;
        ranges[i].port = (unsigned int) node->element[1]->integer;
    }

    *n = reply->elements;

    return 0;
}


/* SipHash (Aumasson and Bernstein), c rounds per word and d at the end */

#define ngx_ent_rotl(x, b)  (((x) << (b)) | ((x) >> (64 - (b))))

#define ngx_ent_sipround(v0, v1, v2, v3)                                    \
    v0 += v1; v1 = ngx_ent_rotl(v1, 13); v1 ^= v0;                          \
    v0 = ngx_ent_rotl(v0, 32);                                              \
    v2 += v3; v3 = ngx_ent_rotl(v3, 16); v3 ^= v2;                          \
    v0 += v3; v3 = ngx_ent_rotl(v3, 21); v3 ^= v0;                          \
    v2 += v1; v1 = ngx_ent_rotl(v1, 17); v1 ^= v2;                          \
    v2 = ngx_ent_rotl(v2, 32)


static inline uint64_t
ngx_ent_siphash_cd(const uint64_t *k, const unsigned char *p, size_t len,
    int c, int d)
{
    int                   i;
    size_t                left;
    uint64_t              v0, v1, v2, v3, m, b;
    const unsigned char  *end;

    v0 = k[0] ^ 0x736f6d6570736575ULL;
    v1 = k[1] ^ 0x646f72616e646f6dULL;
    v2 = k[0] ^ 0x6c7967656e657261ULL;
    v3 = k[1] ^ 0x7465646279746573ULL;

    end = p + (len & ~(size_t) 7);

    for ( /* void */ ; p != end; p += 8) {
        m = (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
            | (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32
            | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48
            | (uint64_t) p[7] << 56;

        v3 ^= m;

        for (i = 0; i < c; i++) {
            ngx_ent_sipround(v0, v1, v2, v3);
        }

        v0 ^= m;
    }

    b = (uint64_t) len << 56;

    for (left = len & 7; left; left--) {
        b |= (uint64_t) p[left - 1] << (8 * (left - 1));
    }

    v3 ^= b;

    for (i = 0; i < c; i++) {
        ngx_ent_sipround(v0, v1, v2, v3);
    }

    v0 ^= b;
    v2 ^= 0xff;

    for (i = 0; i < d; i++) {
        ngx_ent_sipround(v0, v1, v2, v3);
    }

    return v0 ^ v1 ^ v2 ^ v3;
}


uint64_t
ngx_ent_siphash(const uint64_t *k, const unsigned char *p, size_t len)
{
    return ngx_ent_siphash_cd(k, p, len, 1, 3);
}


uint64_t
ngx_ent_siphash24(const uint64_t *k, const unsigned char *p, size_t len)
{
    return ngx_ent_siphash_cd(k, p, len, 2, 4);
}
