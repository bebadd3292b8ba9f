/*
 * Unit tests of the rate limiter's I/O-free helpers, printing TAP.
 */

#include <stdio.h>
#include <string.h>

#include "ngx_ent_rl.h"
#include "tap.h"




int
main(void)
{
    time_t          start, reset;
    size_t          n;
    unsigned char   buf[64];

    ngx_ent_rl_window(3600 * 10 + 17, 3600, &start, &reset);
    check(start == 36000 && reset == 3600 - 17, "an hour window");

    ngx_ent_rl_window(36000, 3600, &start, &reset);
    check(start == 36000 && reset == 3600, "at the start of a window");

    ngx_ent_rl_window(35999, 3600, &start, &reset);
    check(start == 32400 && reset == 1, "the last second of a window");

    ngx_ent_rl_window(1000, 900, &start, &reset);
    check(start == 900 && reset == 800, "a 15-minute window");

    ngx_ent_rl_window(5, 0, &start, &reset);
    check(start == 5 && reset == 1, "a zero window is one second");

    n = ngx_ent_rl_policy_item(buf, sizeof(buf), (unsigned char *) "ai", 2,
                               200, 3600);
    check(n == 17 && memcmp(buf, "\"ai\";q=200;w=3600", n) == 0,
          "RateLimit-Policy item");

    n = ngx_ent_rl_item(buf, sizeof(buf), (unsigned char *) "ai", 2, 17,
                        1234);
    check(n == 16 && memcmp(buf, "\"ai\";r=17;t=1234", n) == 0,
          "RateLimit item");

    n = ngx_ent_rl_item(buf, 10, (unsigned char *) "ai", 2, 17, 1234);
    check(n == 0, "too small a buffer");

    {
        time_t  len;

        /* 2026-03-14 23:59:50 UTC, anchor 15: the period began Feb 15 */
        ngx_ent_rl_month(1773532790, 15, &start, &len, &reset);
        check(start == 1771113600 && len == 28 * 86400 && reset == 10,
              "month: before the anchor day, since last month's");

        /* 2026-03-15 00:00:10 UTC: a new period, until Apr 15 */
        ngx_ent_rl_month(1773532810, 15, &start, &len, &reset);
        check(start == 1773532800 && len == 31 * 86400
              && reset == 31 * 86400 - 10, "month: on the anchor day");

        /* 2026-01-03, anchor 5: from 2025-12-05 to 2026-01-05 */
        ngx_ent_rl_month(1767398400, 5, &start, &len, &reset);
        check(start == 1764892800 && len == 31 * 86400,
              "month: across the year end");

        /* 2028-02-29 12:00 (a leap year), anchor 1: Feb 1 to Mar 1 */
        ngx_ent_rl_month(1835438400, 1, &start, &len, &reset);
        check(start == 1832976000 && len == 29 * 86400,
              "month: a leap February");

        ngx_ent_rl_month(1835438400, 31, &start, &len, &reset);
        check(start == 1832976000, "month: an anchor past 28 means 1");
    }

#define O(s)  (const unsigned char *) s, sizeof(s) - 1

    check(ngx_ent_rl_override(O("ai=5000,api=unlimited"), O("ai"), 7) == 5000,
          "override: a count");
    check(ngx_ent_rl_override(O("ai=5000,api=unlimited"), O("api"), 7)
          == NGX_ENT_RL_UNLIMITED, "override: unlimited");
    check(ngx_ent_rl_override(O("ai=5000"), O("a"), 7) == 7,
          "override: a prefix of a name is not the name");
    check(ngx_ent_rl_override(O("aix=1,ai=2"), O("ai"), 7) == 2,
          "override: the exact name");
    check(ngx_ent_rl_override(O("ai=12x"), O("ai"), 7) == 7,
          "override: malformed: the default");
    check(ngx_ent_rl_override(O("ai="), O("ai"), 7) == 7,
          "override: empty: the default");
    check(ngx_ent_rl_override(O("ai=99999999999"), O("ai"), 7) == 7,
          "override: too long: the default");
    check(ngx_ent_rl_override(O("ai=1000000000"), O("ai"), 7) == 1000000000,
          "override: ten digits (PostgreSQL's integer goes that far)");
    check(ngx_ent_rl_override(O("ai=2147483647"), O("ai"), 7) == 2147483647,
          "override: the largest integer");
    check(ngx_ent_rl_override(O(""), O("ai"), 7) == 7, "override: none");
    check(ngx_ent_rl_override(O(",,ai=3,"), O("ai"), 7) == 3,
          "override: stray commas");

    return tap_done();
}
