/*
 * libFuzzer target: CLUSTER SLOTS replies.  The input is RESP bytes from a
 * node, read by hiredis's redisReader as the module reads them; each
 * complete reply goes to ngx_ent_redis_cluster_slots() twice, with room
 * for exactly as many ranges as the reply has elements and with room for
 * two, each in a heap block of that size so that ASan sees a write past
 * max.
 *
 * A reply that passes must be an array of as many ranges as reported,
 * each start <= end < 16384, port 1..65535, the ip the very string of
 * the range's master, at most 64 printable bytes (empty for a nil ip:
 * the node asked).  The two calls must
 * agree: the short one passes exactly when the long one does and the
 * reply has at most two ranges, with the same ranges.
 *
 * hiredis 0.14 allocates an array as soon as it reads its length (up to
 * INT_MAX elements), which libFuzzer's malloc limit would report; arrays
 * longer than a CLUSTER SLOTS reply can be are refused by the reader.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "ngx_ent_rows.h"


#define FUZZ_SHORT  2


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static redisReader *fuzz_reader(void);
static void fuzz_reply(const redisReply *reply);
static void fuzz_check(const redisReply *reply,
    const ngx_ent_redis_range_t *ranges, size_t n);
#if (HIREDIS_MAJOR < 1)
static void *fuzz_create_array(const redisReadTask *task, int elements);
#endif


#if (HIREDIS_MAJOR < 1)
static redisReplyObjectFunctions         fuzz_fn;
static const redisReplyObjectFunctions  *fuzz_default_fn;
#endif


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void         *reply;
    redisReader  *r;

    r = fuzz_reader();
    if (r == NULL) {
        return 0;
    }

    if (redisReaderFeed(r, (const char *) data, size) != REDIS_OK) {
        redisReaderFree(r);
        return 0;
    }

    for ( ;; ) {
        reply = NULL;

        if (redisReaderGetReply(r, &reply) != REDIS_OK || reply == NULL) {
            break;
        }

        fuzz_reply(reply);
        freeReplyObject(reply);
    }

    redisReaderFree(r);

    return 0;
}


static redisReader *
fuzz_reader(void)
{
    redisReader  *r;

    r = redisReaderCreate();
    if (r == NULL) {
        return NULL;
    }

#if (HIREDIS_MAJOR < 1)

    if (fuzz_default_fn == NULL) {
        fuzz_default_fn = r->fn;
        fuzz_fn = *r->fn;
        fuzz_fn.createArray = fuzz_create_array;
    }

    r->fn = &fuzz_fn;

#else

    r->maxelements = NGX_ENT_REDIS_SLOTS;

#endif

    return r;
}


#if (HIREDIS_MAJOR < 1)

static void *
fuzz_create_array(const redisReadTask *task, int elements)
{
    if (elements > NGX_ENT_REDIS_SLOTS) {
        return NULL;
    }

    return fuzz_default_fn->createArray(task, elements);
}

#endif


static void
fuzz_reply(const redisReply *reply)
{
    int                     rc, rc_short;
    size_t                  i, n, n_short, max;
    ngx_ent_redis_range_t  *ranges, *ranges_short;

    max = reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;

    ranges = malloc((max ? max : 1) * sizeof(ngx_ent_redis_range_t));
    ranges_short = malloc(FUZZ_SHORT * sizeof(ngx_ent_redis_range_t));

    if (ranges == NULL || ranges_short == NULL) {
        free(ranges);
        free(ranges_short);
        return;
    }

    n = (size_t) -1;
    n_short = (size_t) -1;

    rc = ngx_ent_redis_cluster_slots(reply, ranges, max, &n);
    rc_short = ngx_ent_redis_cluster_slots(reply, ranges_short, FUZZ_SHORT,
                                           &n_short);

    if ((rc != 0 && rc != -1) || (rc_short != 0 && rc_short != -1)) {
        abort();
    }

    if (rc == 0) {
        fuzz_check(reply, ranges, n);
    }

    if (rc_short != (rc == 0 && max <= FUZZ_SHORT ? 0 : -1)) {
        abort();
    }

    if (rc_short == 0) {
        if (n_short != n) {
            abort();
        }

        for (i = 0; i < n; i++) {
            if (ranges_short[i].start != ranges[i].start
                || ranges_short[i].end != ranges[i].end
                || ranges_short[i].ip != ranges[i].ip
                || ranges_short[i].ip_len != ranges[i].ip_len
                || ranges_short[i].port != ranges[i].port)
            {
                abort();
            }
        }
    }

    /* one range less room than needed */

    if (rc == 0 && max > 0
        && ngx_ent_redis_cluster_slots(reply, ranges, max - 1, &n) != -1)
    {
        abort();
    }

    free(ranges);
    free(ranges_short);
}


static void
fuzz_check(const redisReply *reply, const ngx_ent_redis_range_t *ranges,
    size_t n)
{
    size_t             i, k;
    const redisReply  *ip;

    if (reply->type != REDIS_REPLY_ARRAY || n != reply->elements) {
        abort();
    }

    for (i = 0; i < n; i++) {
        if (ranges[i].start > ranges[i].end
            || ranges[i].end >= NGX_ENT_REDIS_SLOTS
            || ranges[i].port < 1 || ranges[i].port > 65535)
        {
            abort();
        }

        /* [start, end, [ip, port, ...], ...] */

        ip = reply->element[i]->element[2]->element[0];

        if ((ip->type == REDIS_REPLY_NIL
             ? ranges[i].ip_len != 0
             : ((const char *) ranges[i].ip != ip->str
                || ranges[i].ip_len != ip->len))
            || ranges[i].ip_len > 64
            || ranges[i].start != (unsigned int)
                                  reply->element[i]->element[0]->integer
            || ranges[i].end != (unsigned int)
                                reply->element[i]->element[1]->integer
            || ranges[i].port != (unsigned int)
                                 reply->element[i]->element[2]->element[1]
                                 ->integer)
        {
            abort();
        }

        for (k = 0; k < ranges[i].ip_len; k++) {
            if (ranges[i].ip[k] <= ' ' || ranges[i].ip[k] >= 0x7f) {
                abort();
            }
        }
    }
}
