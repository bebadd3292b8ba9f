/*
 * libFuzzer target: the Host normalizer, the base-domain matcher and the
 * CIDR parser get every byte a client can send.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_host.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                i, n, clen;
    uint8_t              *copy, *out;
    const unsigned char  *code;
    ngx_ent_iprange_t     r[2];

    copy = malloc(size ? size : 1);
    out = malloc(size ? size : 1);
    if (copy == NULL || out == NULL) {
        free(copy);
        free(out);
        return 0;
    }

    memcpy(copy, data, size);

    if (ngx_ent_host_normalize(copy, size, out, &n) == NGX_ENT_HOST_OK) {
        if (n == 0 || n > NGX_ENT_HOST_MAX || n > size) {
            abort();
        }

        for (i = 0; i < n; i++) {
            if (!((out[i] >= 'a' && out[i] <= 'z')
                  || (out[i] >= '0' && out[i] <= '9')
                  || out[i] == '-' || out[i] == '.'))
            {
                abort();
            }
        }

        if (ngx_ent_host_code(out, n, (const unsigned char *) "example.com",
                              11, &code, &clen)
            && (clen == 0 || memchr(code, '.', clen) != NULL))
        {
            abort();
        }
    }

    if (ngx_ent_cidr_parse(copy, size, &r[0]) != 0) {
        r[1] = r[0];

        if (ngx_ent_ipset_build(r, 2, 16) != 1
            || !ngx_ent_ipset_match(r, 1, 16, r[0].start)
            || !ngx_ent_ipset_match(r, 1, 16, r[0].end))
        {
            abort();
        }
    }

    free(copy);
    free(out);

    return 0;
}
