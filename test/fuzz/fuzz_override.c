/*
 * libFuzzer target: the rate limiter's override string comes from the
 * database; the parser must stay within its bytes whatever they are.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_rl.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long      n;
    uint8_t  *copy;

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    n = ngx_ent_rl_override(copy, size, (const unsigned char *) "ai", 2, 7);

    if (n < NGX_ENT_RL_UNLIMITED || n > 999999999) {
        abort();
    }

    free(copy);

    return 0;
}
