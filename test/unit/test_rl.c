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

    return tap_done();
}
