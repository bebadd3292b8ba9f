/*
 * libFuzzer target: Redis Cluster redirections.  Any error reply of a
 * node reaches ngx_ent_redis_redirect(), and any key of a request (a
 * tenant code, a client address) reaches ngx_ent_redis_slot().
 *
 * A redirect that passes must be exactly "MOVED " or "ASK ", one to five
 * digits of a slot below 16384, a space, and "<ip>:<port>" with ip and
 * port pointing into the input, the port one to five digits, the ip at
 * most 64 printable bytes.  The slot of the input must be below 16384,
 * the slot of its hash tag when it has one, and agree with a CRC16 done
 * bit by bit here.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_rows.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_redirect(const uint8_t *p, size_t size);
static void fuzz_slot(const uint8_t *p, size_t size);
static unsigned int fuzz_crc16(const uint8_t *p, size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t  *copy;

    /* an exact-size heap copy, so that ASan sees every overread */

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    fuzz_redirect(copy, size);
    fuzz_slot(copy, size);

    free(copy);

    return 0;
}


static void
fuzz_redirect(const uint8_t *p, size_t size)
{
    int                   kind;
    size_t                i, n, ip_len, port_len;
    unsigned int          slot, v;
    const uint8_t        *last;
    const unsigned char  *ip, *port;

    if (ngx_ent_redis_redirect(p, size, &kind, &slot, &ip, &ip_len, &port,
                               &port_len)
        != 0)
    {
        return;
    }

    last = p + size;

    if (kind == NGX_ENT_REDIS_MOVED) {
        n = 6;

    } else if (kind == NGX_ENT_REDIS_ASK) {
        n = 4;

    } else {
        abort();
    }

    if (size <= n
        || memcmp(p, kind == NGX_ENT_REDIS_MOVED ? "MOVED " : "ASK ", n)
           != 0)
    {
        abort();
    }

    /* the slot: the digits up to the space before the ip */

    if (slot >= NGX_ENT_REDIS_SLOTS || ip < p + n + 2 || ip > last
        || ip[-1] != ' ')
    {
        abort();
    }

    v = 0;

    for (i = n; p + i < ip - 1; i++) {
        if (p[i] < '0' || p[i] > '9' || i - n == 5) {
            abort();
        }

        v = v * 10 + (p[i] - '0');
    }

    if (v != slot) {
        abort();
    }

    /* "<ip>:<port>" up to the end */

    if (ip_len > 64 || ip + ip_len + 1 != port || port[-1] != ':'
        || port_len < 1 || port_len > 5 || port + port_len != last)
    {
        abort();
    }

    for (i = 0; i < ip_len; i++) {
        if (ip[i] <= ' ' || ip[i] >= 0x7f) {
            abort();
        }
    }

    for (i = 0; i < port_len; i++) {
        if (port[i] < '0' || port[i] > '9') {
            abort();
        }
    }
}


static void
fuzz_slot(const uint8_t *p, size_t size)
{
    size_t        s, e;
    unsigned int  slot;

    slot = ngx_ent_redis_slot(p, size);

    if (slot >= NGX_ENT_REDIS_SLOTS) {
        abort();
    }

    /* the hash tag, found again: from the first "{" to the next "}" */

    s = 0;
    e = 0;

    while (s < size && p[s] != '{') {
        s++;
    }

    if (s < size) {
        e = s + 1;

        while (e < size && p[e] != '}') {
            e++;
        }
    }

    if (s < size && e < size && e > s + 1) {
        if (slot != ngx_ent_redis_slot(p + s + 1, e - s - 1)
            || slot != fuzz_crc16(p + s + 1, e - s - 1) % NGX_ENT_REDIS_SLOTS)
        {
            abort();
        }

    } else if (slot != fuzz_crc16(p, size) % NGX_ENT_REDIS_SLOTS) {
        abort();
    }
}


/* CRC-16/XMODEM, one bit at a time */

static unsigned int
fuzz_crc16(const uint8_t *p, size_t len)
{
    int           b;
    size_t        i;
    unsigned int  crc;

    crc = 0;

    for (i = 0; i < len; i++) {
        crc ^= (unsigned int) p[i] << 8;

        for (b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) : (crc << 1);
        }

        crc &= 0xffff;
    }

    return crc;
}
