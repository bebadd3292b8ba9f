/*
 * ngx_ent rate limits: I/O-free helpers (see ngx_ent_rl.h).
 */


#include <stdio.h>
#include <string.h>

#include "ngx_ent_rl.h"


void
ngx_ent_rl_window(time_t now, time_t window, time_t *start, time_t *reset)
{
    if (window <= 0) {
        window = 1;
    }

    *start = now - now % window;
    *reset = *start + window - now;
}


size_t
ngx_ent_rl_policy_item(unsigned char *buf, size_t size,
    const unsigned char *name, size_t len, uint64_t limit, uint64_t window)
{
    int  n;

    n = snprintf((char *) buf, size, "\"%.*s\";q=%llu;w=%llu", (int) len,
                 (const char *) name, (unsigned long long) limit,
                 (unsigned long long) window);

    return (n < 0 || (size_t) n >= size) ? 0 : (size_t) n;
}


size_t
ngx_ent_rl_item(unsigned char *buf, size_t size, const unsigned char *name,
    size_t len, uint64_t remaining, uint64_t reset)
{
    int  n;

    n = snprintf((char *) buf, size, "\"%.*s\";r=%llu;t=%llu", (int) len,
                 (const char *) name, (unsigned long long) remaining,
                 (unsigned long long) reset);

    return (n < 0 || (size_t) n >= size) ? 0 : (size_t) n;
}
