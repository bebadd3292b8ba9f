/*
 * libFuzzer target: invalidation payloads come from PostgreSQL NOTIFY,
 * which any database user may send; the parser must never misbehave.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_rows.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                   what;
    size_t                zl, kl;
    uint8_t              *copy;
    const unsigned char  *z, *k;

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    if (ngx_ent_notify_parse(copy, size, &what, &z, &zl, &k, &kl) == 0) {
        if (what == NGX_ENT_NOTIFY_KEY
            && (z == NULL || k == NULL || zl + kl + 1 != size))
        {
            abort();
        }
    }

    free(copy);

    return 0;
}
