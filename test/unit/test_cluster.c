/*
 * Unit tests of the Redis Cluster helpers (ngx_ent_rows.c), printing TAP:
 * key slots, MOVED and ASK error replies, CLUSTER SLOTS replies.
 *
 * The expected slots are those of the Redis Cluster specification and of
 * "CLUSTER KEYSLOT" asked of a redis-server 7.0 once, written down here:
 * no server is needed.  CLUSTER SLOTS replies are RESP bytes read by
 * hiredis's redisReader, as the module reads them.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "ngx_ent_rows.h"
#include "tap.h"


/* a literal and its length, NUL bytes included */
#define L(s)       s, sizeof(s) - 1

/* parts of a CLUSTER SLOTS reply, in RESP */
#define ID1        "$40\r\n07c37dfeb235213a872192d90877d0cd55635b91\r\n"
#define ID2        "$40\r\ne7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca\r\n"
#define NODE(iplen, ip, port)                                                 \
    "*3\r\n$" iplen "\r\n" ip "\r\n:" port "\r\n" ID1
#define REPLICA(iplen, ip, port)                                              \
    "*3\r\n$" iplen "\r\n" ip "\r\n:" port "\r\n" ID2
#define RANGE(start, end, node)                                               \
    "*3\r\n:" start "\r\n:" end "\r\n" node

#define NRANGES    8


static unsigned int slot_of(const char *key, size_t len);
static int redirect(const char *s, size_t len, int kind, unsigned int slot,
    const char *ip, const char *port);
static int redirect_rc(const char *s, size_t len);
static redisReply *reply_of(const char *resp, size_t len);
static int slots(const char *resp, size_t len, size_t max, size_t *n);
static int range(size_t i, unsigned int start, unsigned int end,
    const char *ip, unsigned int port);
static void test_slot(void);
static void test_redirect(void);
static void test_redirect_bad(void);
static void test_cluster_slots(void);
static void test_cluster_slots_bad(void);


/* the ranges of the last slots() call, and the reply they point into */
static ngx_ent_redis_range_t   ranges[NRANGES];
static redisReply             *last;


static unsigned int
slot_of(const char *key, size_t len)
{
    return ngx_ent_redis_slot((const unsigned char *) key, len);
}


/* 1 when s is the redirect given, its parts pointing into s */

static int
redirect(const char *s, size_t len, int kind, unsigned int slot,
    const char *ip, const char *port)
{
    int                   k;
    size_t                il, pl;
    unsigned int          sl;
    const unsigned char  *i, *p, *in;

    in = (const unsigned char *) s;

    if (ngx_ent_redis_redirect(in, len, &k, &sl, &i, &il, &p, &pl) != 0) {
        return 0;
    }

    return k == kind && sl == slot
           && il == strlen(ip) && memcmp(i, ip, il) == 0
           && pl == strlen(port) && memcmp(p, port, pl) == 0
           && i >= in && i + il + 1 == p && p + pl == in + len;
}


static int
redirect_rc(const char *s, size_t len)
{
    int                   k;
    size_t                il, pl;
    unsigned int          sl;
    const unsigned char  *i, *p;

    return ngx_ent_redis_redirect((const unsigned char *) s, len, &k, &sl,
                                  &i, &il, &p, &pl);
}


static redisReply *
reply_of(const char *resp, size_t len)
{
    void         *reply;
    redisReader  *r;

    r = redisReaderCreate();
    if (r == NULL) {
        fprintf(stderr, "redisReaderCreate() failed\n");
        exit(2);
    }

    reply = NULL;

    if (redisReaderFeed(r, resp, len) != REDIS_OK
        || redisReaderGetReply(r, &reply) != REDIS_OK)
    {
        reply = NULL;
    }

    redisReaderFree(r);

    return reply;
}


/*
 * the reply's ranges (at most max) into ranges[], kept with the reply in
 * "last" until the next call; -2 when the RESP bytes are not one reply
 */

static int
slots(const char *resp, size_t len, size_t max, size_t *n)
{
    if (last) {
        freeReplyObject(last);
    }

    last = reply_of(resp, len);
    if (last == NULL) {
        return -2;
    }

    *n = 0xdead;

    return ngx_ent_redis_cluster_slots(last, ranges, max, n);
}


static int
range(size_t i, unsigned int start, unsigned int end, const char *ip,
    unsigned int port)
{
    const ngx_ent_redis_range_t  *r;

    r = &ranges[i];

    return r->start == start && r->end == end && r->port == port
           && r->ip_len == strlen(ip) && memcmp(r->ip, ip, r->ip_len) == 0;
}


static void
test_slot(void)
{
    size_t         n, m;
    unsigned char  a[64], b[64];
    char           big[300];

    /* the specification's own CRC16 check value: 0x31c3 */
    check(slot_of(L("123456789")) == 0x31c3, "slot of 123456789 is 12739");

    check(slot_of(L("foo")) == 12182, "slot of foo");
    check(slot_of(L("bar")) == 5061, "slot of bar");
    check(slot_of(L("a")) == 15495, "slot of a");
    check(slot_of(L("x")) == 16287, "slot of x");
    check(slot_of(L("")) == 0, "empty key: slot 0");
    check(slot_of(NULL, 0) == 0, "no key at all: slot 0");

    check(slot_of(L("user1000")) == 3443, "slot of user1000");
    check(slot_of(L("{user1000}.following")) == 3443,
          "{user1000}.following hashes user1000");
    check(slot_of(L("{user1000}.followers")) == 3443,
          "{user1000}.followers hashes user1000");

    check(slot_of(L("foo{}{bar}")) == 8363,
          "foo{}{bar}: empty tag, the whole key is hashed");
    check(slot_of(L("foo{}{bar}")) != slot_of(L("bar")),
          "foo{}{bar}: not the second tag");
    check(slot_of(L("foo{{bar}}zap")) == 4015
          && slot_of(L("{bar")) == 4015, "foo{{bar}}zap hashes {bar");
    check(slot_of(L("foo{bar}{zap}")) == 5061,
          "foo{bar}{zap} hashes bar, the first tag");
    check(slot_of(L("foo{")) == 7673, "foo{: unclosed, the whole key");
    check(slot_of(L("a{b")) == 13340, "a{b: unclosed, the whole key");
    check(slot_of(L("{}")) == 15257, "{}: empty tag, the whole key");
    check(slot_of(L("}{x}")) == 16287, "}{x} hashes x");

    check(slot_of(L("\0")) == 0 && slot_of(L("{\0}")) == 0,
          "a NUL byte, alone and as the tag");
    check(slot_of(L("k\0y")) == 1060 && slot_of(L("k")) != 1060,
          "a NUL byte inside the key is hashed");
    check(slot_of(L("a\0{b}")) == 3300
          && slot_of(L("b")) == 3300, "a NUL byte before the tag");
    check(slot_of(L("\xff\xfe\x80")) == 11813, "bytes above 0x7f");

    memset(big, 'k', sizeof(big));
    check(slot_of(big, sizeof(big)) == 16002, "300-byte key");

    /* one tenant's keys share a slot, whatever their prefix and suffix */

#define U(s)  (const unsigned char *) s, sizeof(s) - 1

    n = ngx_ent_redis_key(a, sizeof(a), U("rl:"), U("acme"), U("api"));
    m = ngx_ent_redis_key(b, sizeof(b), U("sess:"), U("acme"), U("x:y"));

    check(n && m && ngx_ent_redis_slot(a, n) == 9557
          && ngx_ent_redis_slot(b, m) == 9557
          && slot_of(L("t:acme")) == 9557,
          "tenant keys hash their {t:acme} tag");

#undef U
}


static void
test_redirect(void)
{
    size_t  n;
    char    buf[128], ip[65];

    check(redirect(L("MOVED 3999 127.0.0.1:6381"), NGX_ENT_REDIS_MOVED,
                   3999, "127.0.0.1", "6381"), "MOVED");
    check(redirect(L("ASK 3999 127.0.0.1:6381"), NGX_ENT_REDIS_ASK,
                   3999, "127.0.0.1", "6381"), "ASK");
    check(redirect(L("MOVED 0 10.0.0.1:1"), NGX_ENT_REDIS_MOVED,
                   0, "10.0.0.1", "1"), "slot 0, one-digit port");
    check(redirect(L("ASK 16383 10.0.0.1:65535"), NGX_ENT_REDIS_ASK,
                   16383, "10.0.0.1", "65535"), "slot 16383, port 65535");
    check(redirect(L("MOVED 00042 10.0.0.1:7000"), NGX_ENT_REDIS_MOVED,
                   42, "10.0.0.1", "7000"), "five digits, leading zeros");
    check(redirect(L("MOVED 3999 ::1:6380"), NGX_ENT_REDIS_MOVED,
                   3999, "::1", "6380"), "IPv6: split at the last colon");
    check(redirect(L("MOVED 7 2001:db8::17:7001"), NGX_ENT_REDIS_MOVED,
                   7, "2001:db8::17", "7001"), "IPv6 with a prefix");
    check(redirect(L("MOVED 3999 :6380"), NGX_ENT_REDIS_MOVED,
                   3999, "", "6380"), "empty ip: the node asked");
    check(redirect(L("ASK 1 redis-2.example:6379"), NGX_ENT_REDIS_ASK,
                   1, "redis-2.example", "6379"), "a host name");

    /* the longest ip: 64 bytes */

    memset(ip, 'a', 64);
    ip[64] = '\0';
    n = (size_t) snprintf(buf, sizeof(buf), "MOVED 1 %s:7000", ip);

    check(redirect(buf, n, NGX_ENT_REDIS_MOVED, 1, ip, "7000"),
          "64-byte ip");
}


static void
test_redirect_bad(void)
{
    size_t  n;
    char    buf[128];

    check(redirect_rc(L("")) == -1, "empty reply");
    check(redirect_rc(L("MOVED")) == -1, "MOVED alone");
    check(redirect_rc(L("MOVED ")) == -1, "MOVED and a space");
    check(redirect_rc(L("ASK")) == -1, "ASK alone");
    check(redirect_rc(L("ASK ")) == -1, "ASK and a space");
    check(redirect_rc(L("moved 3999 127.0.0.1:6381")) == -1,
          "lower-case moved");
    check(redirect_rc(L("ask 3999 127.0.0.1:6381")) == -1, "lower-case ask");
    check(redirect_rc(L("MOVEDX 3999 127.0.0.1:6381")) == -1,
          "a longer word");
    check(redirect_rc(L(" MOVED 3999 127.0.0.1:6381")) == -1,
          "a leading space");
    check(redirect_rc(L("ERR MOVED 3999 127.0.0.1:6381")) == -1,
          "another error mentioning MOVED");
    check(redirect_rc(L("TRYAGAIN Multiple keys request during rehashing "
                        "of slot")) == -1, "TRYAGAIN is no redirect");
    check(redirect_rc(L("CLUSTERDOWN The cluster is down")) == -1,
          "CLUSTERDOWN is no redirect");

    check(redirect_rc(L("MOVED  127.0.0.1:6381")) == -1, "no slot");
    check(redirect_rc(L("MOVED 127.0.0.1:6381")) == -1,
          "no slot, the ip in its place");
    check(redirect_rc(L("MOVED -1 127.0.0.1:6381")) == -1, "negative slot");
    check(redirect_rc(L("MOVED +1 127.0.0.1:6381")) == -1, "signed slot");
    check(redirect_rc(L("MOVED 16384 127.0.0.1:6381")) == -1, "slot 16384");
    check(redirect_rc(L("MOVED 99999 127.0.0.1:6381")) == -1, "slot 99999");
    check(redirect_rc(L("MOVED 123456 127.0.0.1:6381")) == -1,
          "six-digit slot");
    check(redirect_rc(L("MOVED 000001 127.0.0.1:6381")) == -1,
          "six-digit slot, small value");
    check(redirect_rc(L("MOVED 3999")) == -1, "no endpoint");
    check(redirect_rc(L("MOVED 3999 ")) == -1, "empty endpoint");
    check(redirect_rc(L("MOVED3999 127.0.0.1:6381")) == -1,
          "no space after MOVED");
    check(redirect_rc(L("MOVED 3999127.0.0.1:6381")) == -1,
          "no space after the slot");
    check(redirect_rc(L("MOVED 3999\t127.0.0.1:6381")) == -1,
          "a tab, not a space");
    check(redirect_rc(L("MOVED 3999  127.0.0.1:6381")) == -1, "two spaces");

    check(redirect_rc(L("MOVED 3999 127.0.0.1")) == -1, "no colon");
    check(redirect_rc(L("MOVED 3999 127.0.0.1:")) == -1, "empty port");
    check(redirect_rc(L("MOVED 3999 :")) == -1, "only a colon");
    check(redirect_rc(L("MOVED 3999 127.0.0.1:123456")) == -1,
          "six-digit port");
    check(redirect_rc(L("MOVED 3999 127.0.0.1:63a1")) == -1,
          "non-digit port");
    check(redirect_rc(L("MOVED 3999 127.0.0.1:-1")) == -1, "negative port");
    check(redirect_rc(L("MOVED 3999 127.0.0.1:+80")) == -1, "signed port");
    check(redirect_rc(L("MOVED 3999 [::1]:6380x")) == -1,
          "a letter after the port");

    check(redirect_rc(L("MOVED 3999 127.0.0.1 :6381")) == -1,
          "a space in the endpoint");
    check(redirect_rc(L("MOVED 3999 127.0.0.1:6381 ")) == -1,
          "a trailing space");
    check(redirect_rc(L("MOVED 3999 127.0.0.1:6381 extra")) == -1,
          "trailing words");
    check(redirect_rc(L("MOVED 3999 127.0.0.1:6381\r\n")) == -1,
          "a trailing CR LF");
    check(redirect_rc(L("MOVED 3999 127.0\t.0.1:6381")) == -1,
          "a tab in the ip");
    check(redirect_rc(L("MOVED 3999 127.0.0.1\x7f:6381")) == -1,
          "DEL in the ip");
    check(redirect_rc(L("MOVED 3999 h\xc3\xa9:6381")) == -1,
          "a byte above 0x7f in the ip");

    check(redirect_rc(L("MOVED 3999 127.0.0.1\0:6381")) == -1,
          "a NUL byte in the ip");
    check(redirect_rc(L("MOVED 3999 127.0.0.1:63\0" "81")) == -1,
          "a NUL byte in the port");
    check(redirect_rc(L("MOVED 39\0" "99 127.0.0.1:6381")) == -1,
          "a NUL byte in the slot");
    check(redirect_rc(L("MOVED 3999 127.0.0.1:6381\0")) == -1,
          "a NUL byte at the end");
    check(redirect_rc(L("MOVED\0" "3999 127.0.0.1:6381")) == -1,
          "a NUL byte for the space");

    /* a reply read only up to the length given */
    check(redirect_rc("MOVED 3999 127.0.0.1:6381", 20) == -1,
          "the length is honoured");

    /* one byte over the longest ip */

    memcpy(buf, "MOVED 1 ", 8);
    memset(buf + 8, 'a', 65);
    memcpy(buf + 8 + 65, ":7000", 5);
    n = 8 + 65 + 5;

    check(redirect_rc(buf, n) == -1, "65-byte ip");
}


static void
test_cluster_slots(void)
{
    size_t  n;

    /* three masters, as "redis-cli --cluster create" makes them */

    check(slots(L("*3\r\n"
                  RANGE("0", "5460", NODE("9", "127.0.0.1", "7000"))
                  RANGE("5461", "10922", NODE("9", "127.0.0.1", "7001"))
                  RANGE("10923", "16383", NODE("9", "127.0.0.1", "7002"))),
                NRANGES, &n) == 0 && n == 3, "three ranges");
    check(range(0, 0, 5460, "127.0.0.1", 7000), "first range");
    check(range(1, 5461, 10922, "127.0.0.1", 7001), "second range");
    check(range(2, 10923, 16383, "127.0.0.1", 7002), "third range");
    check((const char *) ranges[1].ip
          == last->element[1]->element[2]->element[0]->str,
          "ip points into the reply");

    check(slots(L("*3\r\n"
                  RANGE("0", "5460", NODE("9", "127.0.0.1", "7000"))
                  RANGE("5461", "10922", NODE("9", "127.0.0.1", "7001"))
                  RANGE("10923", "16383", NODE("9", "127.0.0.1", "7002"))),
                3, &n) == 0 && n == 3, "as many ranges as max");

    /* a master and two replicas: the master is first */

    check(slots(L("*2\r\n"
                  "*5\r\n:0\r\n:8191\r\n"
                  NODE("8", "10.0.0.1", "6379")
                  REPLICA("8", "10.0.0.2", "6380")
                  REPLICA("8", "10.0.0.3", "6381")
                  "*4\r\n:8192\r\n:16383\r\n"
                  NODE("11", "fd00::2:1:5", "6379")
                  REPLICA("8", "10.0.0.4", "6379")),
                NRANGES, &n) == 0 && n == 2, "ranges with replicas");
    check(range(0, 0, 8191, "10.0.0.1", 6379)
          && range(1, 8192, 16383, "fd00::2:1:5", 6379),
          "the masters, not the replicas");

    /* Redis 7: a fourth node element, a map of metadata (RESP2: an array) */

    check(slots(L("*2\r\n"
                  "*4\r\n:0\r\n:5460\r\n"
                  "*4\r\n$9\r\n127.0.0.1\r\n:37311\r\n" ID1
                  "*2\r\n$8\r\nhostname\r\n$10\r\nn1.example\r\n"
                  "*4\r\n$9\r\n127.0.0.1\r\n:37313\r\n" ID2 "*0\r\n"
                  "*3\r\n:6000\r\n:6000\r\n"
                  "*4\r\n$9\r\n127.0.0.1\r\n:37311\r\n" ID1 "*0\r\n"),
                NRANGES, &n) == 0 && n == 2, "Redis 7 node metadata");
    check(range(0, 0, 5460, "127.0.0.1", 37311)
          && range(1, 6000, 6000, "127.0.0.1", 37311),
          "Redis 7 ranges, a one-slot range");

    /* a node that does not know its ip (a cluster of one) */

    check(slots(L("*1\r\n" RANGE("0", "16383", NODE("0", "", "7000"))),
                NRANGES, &n) == 0 && n == 1 && range(0, 0, 16383, "", 7000),
          "empty ip");

    /* unknown-endpoint: a nil ip, the node asked (as a Redis 7 sends it) */

    check(slots(L("*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$-1\r\n:7000\r\n"
                  "$40\r\n07c37dfeb235213a872192d90877d0cd55635b91\r\n"),
                NRANGES, &n) == 0 && n == 1 && range(0, 0, 16383, "", 7000),
          "nil ip: the node asked");

    check(slots(L("*1\r\n" RANGE("0", "16383", NODE("1", "?", "7000"))),
                NRANGES, &n) == 0 && n == 1 && range(0, 0, 16383, "?", 7000),
          "\"?\" (no announced host name) passes as an ip");

    check(slots(L("*1\r\n" RANGE("0", "0", NODE("4", "a.b.", "1"))),
                NRANGES, &n) == 0 && range(0, 0, 0, "a.b.", 1),
          "port 1, a host name");
    check(slots(L("*1\r\n" RANGE("16383", "16383",
                                 NODE("2", "::", "65535"))),
                NRANGES, &n) == 0 && range(0, 16383, 16383, "::", 65535),
          "port 65535, slot 16383");

    check(slots(L("*0\r\n"), NRANGES, &n) == 0 && n == 0,
          "no slot served: no range");
    check(slots(L("*0\r\n"), 0, &n) == 0 && n == 0, "no range, max 0");
}


static void
test_cluster_slots_bad(void)
{
    int     len;
    size_t  n;
    char    buf[256];

    check(ngx_ent_redis_cluster_slots(NULL, ranges, NRANGES, &n) == -1,
          "no reply");
    check(slots(L("+OK\r\n"), NRANGES, &n) == -1, "a status, not an array");
    check(slots(L(":3\r\n"), NRANGES, &n) == -1, "an integer");
    check(slots(L("$-1\r\n"), NRANGES, &n) == -1, "nil");
    check(slots(L("*-1\r\n"), NRANGES, &n) == -1, "nil array");
    check(slots(L("$4\r\n*0\r\n\r\n"), NRANGES, &n) == -1,
          "a string that looks like an array");
    check(slots(L("-ERR This instance has cluster support disabled\r\n"),
                NRANGES, &n) == -1, "an error");

    /* more ranges than max */

    check(slots(L("*3\r\n"
                  RANGE("0", "5460", NODE("9", "127.0.0.1", "7000"))
                  RANGE("5461", "10922", NODE("9", "127.0.0.1", "7001"))
                  RANGE("10923", "16383", NODE("9", "127.0.0.1", "7002"))),
                2, &n) == -1, "more ranges than max");
    check(slots(L("*1\r\n" RANGE("0", "16383", NODE("0", "", "7000"))),
                0, &n) == -1, "one range, max 0");

    /* the range */

    check(slots(L("*1\r\n:0\r\n"), NRANGES, &n) == -1,
          "range not an array");
    check(slots(L("*1\r\n*0\r\n"), NRANGES, &n) == -1, "empty range");
    check(slots(L("*1\r\n*2\r\n:0\r\n:16383\r\n"), NRANGES, &n) == -1,
          "range without a master");
    check(slots(L("*1\r\n" RANGE("5461", "5460",
                                 NODE("9", "127.0.0.1", "7000"))),
                NRANGES, &n) == -1, "start after end");
    check(slots(L("*1\r\n" RANGE("0", "16384",
                                 NODE("9", "127.0.0.1", "7000"))),
                NRANGES, &n) == -1, "end 16384");
    check(slots(L("*1\r\n" RANGE("16384", "16384",
                                 NODE("9", "127.0.0.1", "7000"))),
                NRANGES, &n) == -1, "start and end 16384");
    check(slots(L("*1\r\n" RANGE("-1", "5460",
                                 NODE("9", "127.0.0.1", "7000"))),
                NRANGES, &n) == -1, "negative start");
    check(slots(L("*1\r\n" RANGE("-5", "-1",
                                 NODE("9", "127.0.0.1", "7000"))),
                NRANGES, &n) == -1, "negative range");
    check(slots(L("*1\r\n" RANGE("0", "9223372036854775807",
                                 NODE("9", "127.0.0.1", "7000"))),
                NRANGES, &n) == -1, "huge end");
    check(slots(L("*1\r\n*3\r\n$1\r\n0\r\n:5460\r\n"
                  NODE("9", "127.0.0.1", "7000")),
                NRANGES, &n) == -1, "start not an integer");
    check(slots(L("*1\r\n*3\r\n:0\r\n$-1\r\n"
                  NODE("9", "127.0.0.1", "7000")),
                NRANGES, &n) == -1, "end nil");

    /* the master */

    check(slots(L("*1\r\n*3\r\n:0\r\n:16383\r\n$9\r\n127.0.0.1\r\n"),
                NRANGES, &n) == -1, "master not an array");
    check(slots(L("*1\r\n*3\r\n:0\r\n:16383\r\n$-1\r\n"), NRANGES, &n)
          == -1, "master nil");
    check(slots(L("*1\r\n*3\r\n:0\r\n:16383\r\n*0\r\n"), NRANGES, &n) == -1,
          "master empty");
    check(slots(L("*1\r\n*3\r\n:0\r\n:16383\r\n*1\r\n$9\r\n127.0.0.1\r\n"),
                NRANGES, &n) == -1, "master without a port");
    check(slots(L("*1\r\n" RANGE("0", "16383",
                                 NODE("9", "127.0.0.1", "0"))),
                NRANGES, &n) == -1, "port 0");
    check(slots(L("*1\r\n" RANGE("0", "16383",
                                 NODE("9", "127.0.0.1", "-1"))),
                NRANGES, &n) == -1, "negative port");
    check(slots(L("*1\r\n" RANGE("0", "16383",
                                 NODE("9", "127.0.0.1", "65536"))),
                NRANGES, &n) == -1, "port 65536");
    check(slots(L("*1\r\n" RANGE("0", "16383",
                                 NODE("9", "127.0.0.1", "70000"))),
                NRANGES, &n) == -1, "port 70000");
    check(slots(L("*1\r\n*3\r\n:0\r\n:16383\r\n"
                  "*2\r\n$9\r\n127.0.0.1\r\n$4\r\n7000\r\n"),
                NRANGES, &n) == -1, "port as a string");
    check(slots(L("*1\r\n*3\r\n:0\r\n:16383\r\n"
                  "*2\r\n:2130706433\r\n:7000\r\n"),
                NRANGES, &n) == -1, "ip an integer");
    check(slots(L("*1\r\n*3\r\n:0\r\n:16383\r\n"
                  "*2\r\n*1\r\n$9\r\n127.0.0.1\r\n:7000\r\n"),
                NRANGES, &n) == -1, "ip an array");
    check(slots(L("*1\r\n*3\r\n:0\r\n:16383\r\n"
                  "*2\r\n-ERR\r\n:7000\r\n"),
                NRANGES, &n) == -1, "ip an error");
    check(slots(L("*1\r\n" RANGE("0", "16383",
                                 NODE("11", "127.0.0.1 x", "7000"))),
                NRANGES, &n) == -1, "a space in the ip");
    check(slots(L("*1\r\n" RANGE("0", "16383",
                                 NODE("10", "127.0.0.1\n", "7000"))),
                NRANGES, &n) == -1, "a line feed in the ip");
    check(slots(L("*1\r\n" RANGE("0", "16383",
                                 NODE("10", "127.0.0.1\0", "7000"))),
                NRANGES, &n) == -1, "a NUL byte in the ip");
    check(slots(L("*1\r\n" RANGE("0", "16383",
                                 NODE("3", "h\xc3\xa9", "7000"))),
                NRANGES, &n) == -1, "a byte above 0x7f in the ip");

    /* ip length: 64 bytes pass, 65 do not */

    len = snprintf(buf, sizeof(buf), "*1\r\n*3\r\n:0\r\n:16383\r\n"
                   "*2\r\n$64\r\n%064d\r\n:7000\r\n", 1);
    check(slots(buf, (size_t) len, NRANGES, &n) == 0 && n == 1
          && ranges[0].ip_len == 64, "64-byte ip");

    len = snprintf(buf, sizeof(buf), "*1\r\n*3\r\n:0\r\n:16383\r\n"
                   "*2\r\n$65\r\n%065d\r\n:7000\r\n", 1);
    check(slots(buf, (size_t) len, NRANGES, &n) == -1, "65-byte ip");

    /* one bad range spoils the reply */

    check(slots(L("*3\r\n"
                  RANGE("0", "5460", NODE("9", "127.0.0.1", "7000"))
                  RANGE("5461", "10922", NODE("9", "127.0.0.1", "7001"))
                  RANGE("10923", "16384", NODE("9", "127.0.0.1", "7002"))),
                NRANGES, &n) == -1, "a bad last range");
}


int
main(void)
{
    test_slot();
    test_redirect();
    test_redirect_bad();
    test_cluster_slots();
    test_cluster_slots_bad();

    if (last) {
        freeReplyObject(last);
    }

    return tap_done();
}
