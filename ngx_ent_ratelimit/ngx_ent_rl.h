/*
 * ngx_ent rate limits: I/O-free window arithmetic and header syntax
 * (unit-tested).
 *
 * Fixed windows aligned to the epoch (a "1h" window starts on the hour,
 * UTC); a request is admitted when the counter's value after its own
 * increment is at most the limit.  At a window edge a client can therefore
 * make up to 2 * limit requests within a short span (limit at the end of
 * one window, limit at the start of the next); never more than limit
 * within one window.
 */

#ifndef _NGX_ENT_RL_H_INCLUDED_
#define _NGX_ENT_RL_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <time.h>


/* the window containing now: its start and the seconds until it resets */
void ngx_ent_rl_window(time_t now, time_t window, time_t *start,
    time_t *reset);

/*
 * A monthly quota's period: from the last anchor day (1..28) at 00:00 UTC
 * at or before now, to the same day of the next month.  Sets the period's
 * start and length in seconds, and the seconds until it resets.
 */
void ngx_ent_rl_month(time_t now, int anchor, time_t *start, time_t *length,
    time_t *reset);

/* RateLimit-Policy item: "name";q=<limit>;w=<window> (draft -10) */
size_t ngx_ent_rl_policy_item(unsigned char *buf, size_t size,
    const unsigned char *name, size_t len, uint64_t limit, uint64_t window);

/* RateLimit item: "name";r=<remaining>;t=<reset> */
size_t ngx_ent_rl_item(unsigned char *buf, size_t size,
    const unsigned char *name, size_t len, uint64_t remaining,
    uint64_t reset);


/*
 * A tenant's overrides, "policy=N,policy2=unlimited": the limit for policy
 * (NGX_ENT_RL_UNLIMITED for "unlimited"), or dflt when the policy is not
 * listed or its value is malformed.
 */
#define NGX_ENT_RL_UNLIMITED  -1

long ngx_ent_rl_override(const unsigned char *s, size_t len,
    const unsigned char *policy, size_t plen, long dflt);


#endif /* _NGX_ENT_RL_H_INCLUDED_ */
