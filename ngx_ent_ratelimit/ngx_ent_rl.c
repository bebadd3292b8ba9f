/*
 * ngx_ent rate limits: I/O-free helpers (see ngx_ent_rl.h).
 */


#include <limits.h>
#include <string.h>

#include "ngx_ent_rl.h"


static time_t ngx_ent_rl_days(int y, int m, int d);
static size_t ngx_ent_rl_item_fmt(unsigned char *buf, size_t size,
    const unsigned char *name, size_t len, char a, uint64_t x, char b,
    uint64_t y);
static unsigned char *ngx_ent_rl_num(unsigned char *p, uint64_t n);


void
ngx_ent_rl_window(time_t now, time_t window, time_t *start, time_t *reset)
{
    if (window <= 0) {
        window = 1;
    }

    *start = now - now % window;
    *reset = *start + window - now;
}


/* days since 1970-01-01 of a proleptic Gregorian date (m 1..12) */

static time_t
ngx_ent_rl_days(int y, int m, int d)
{
    /* shift the year to start in March: leap days fall at its end */

    if (m <= 2) {
        y--;
        m += 12;
    }

    return (time_t) 365 * y + y / 4 - y / 100 + y / 400
           + (153 * (m - 3) + 2) / 5 + d - 1 - 719468;
}


void
ngx_ent_rl_month(time_t now, int anchor, time_t *start, time_t *length,
    time_t *reset)
{
    int        y, m, d;
    time_t     days, next;
    struct tm  tm;

    if (anchor < 1 || anchor > 28) {
        anchor = 1;
    }

    gmtime_r(&now, &tm);

    y = tm.tm_year + 1900;
    m = tm.tm_mon + 1;
    d = tm.tm_mday;

    if (d < anchor) {
        /* the period began last month */
        if (--m == 0) {
            m = 12;
            y--;
        }
    }

    days = ngx_ent_rl_days(y, m, anchor);
    *start = days * 86400;

    if (++m == 13) {
        m = 1;
        y++;
    }

    next = ngx_ent_rl_days(y, m, anchor) * 86400;

    *length = next - *start;
    *reset = next - now;
}


size_t
ngx_ent_rl_policy_item(unsigned char *buf, size_t size,
    const unsigned char *name, size_t len, uint64_t limit, uint64_t window)
{
    return ngx_ent_rl_item_fmt(buf, size, name, len, 'q', limit, 'w', window);
}


size_t
ngx_ent_rl_item(unsigned char *buf, size_t size, const unsigned char *name,
    size_t len, uint64_t remaining, uint64_t reset)
{
    return ngx_ent_rl_item_fmt(buf, size, name, len, 'r', remaining, 't',
                               reset);
}


/* "name";a=x;b=y, or 0 when it does not fit */

static size_t
ngx_ent_rl_item_fmt(unsigned char *buf, size_t size,
    const unsigned char *name, size_t len, char a, uint64_t x, char b,
    uint64_t y)
{
    unsigned char  *p;

    /* quotes, two ";k=", two numbers of at most 20 digits */

    if (size < len + 2 + 6 + 40 + 1) {
        return 0;
    }

    p = buf;
    *p++ = '"';
    memcpy(p, name, len);
    p += len;
    *p++ = '"';
    *p++ = ';';
    *p++ = (unsigned char) a;
    *p++ = '=';
    p = ngx_ent_rl_num(p, x);
    *p++ = ';';
    *p++ = (unsigned char) b;
    *p++ = '=';
    p = ngx_ent_rl_num(p, y);

    return (size_t) (p - buf);
}


static unsigned char *
ngx_ent_rl_num(unsigned char *p, uint64_t n)
{
    unsigned char   tmp[20], *t;

    t = tmp + sizeof(tmp);

    do {
        *--t = (unsigned char) ('0' + n % 10);
        n /= 10;
    } while (n);

    memcpy(p, t, tmp + sizeof(tmp) - t);

    return p + (tmp + sizeof(tmp) - t);
}


long
ngx_ent_rl_override(const unsigned char *s, size_t len,
    const unsigned char *policy, size_t plen, long dflt)
{
    long                  n;
    const unsigned char  *p, *last, *end, *v;

    p = s;
    last = s + len;

    while (p < last) {
        end = memchr(p, ',', last - p);
        if (end == NULL) {
            end = last;
        }

        if ((size_t) (end - p) > plen && p[plen] == '='
            && memcmp(p, policy, plen) == 0)
        {
            v = p + plen + 1;

            if (end - v == 9 && memcmp(v, "unlimited", 9) == 0) {
                return NGX_ENT_RL_UNLIMITED;
            }

            /* PostgreSQL's integer: up to 2147483647, ten digits */

            if (v == end || end - v > 10) {
                return dflt;
            }

            for (n = 0; v < end; v++) {
                if (*v < '0' || *v > '9' || n > (LONG_MAX - 9) / 10) {
                    return dflt;
                }

                n = n * 10 + (*v - '0');
            }

            return n;
        }

        p = end + 1;
    }

    return dflt;
}
