/*
 * libFuzzer target: the post-login redirect validator.  Whatever it
 * accepts must be a same-host path even after one more percent-decoding:
 * "/" first, then neither "/" nor "\", nothing below 0x21 or from 0x7f,
 * and no escape of "/", "\", "%" or a control byte.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_sso_util.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_hex(uint8_t c);


static int
fuzz_hex(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int       hi, lo;
    size_t    i, n;
    uint8_t  *copy, *dec;

    copy = malloc(size ? size : 1);
    dec = malloc(size ? size : 1);
    if (copy == NULL || dec == NULL) {
        free(copy);
        free(dec);
        return 0;
    }

    memcpy(copy, data, size);

    if (ent_return_to_ok(copy, size) == 1) {

        if (size == 0 || size > ENT_RETURN_TO_MAX_LEN || copy[0] != '/') {
            abort();
        }

        if (size > 1 && (copy[1] == '/' || copy[1] == '\\')) {
            abort();
        }

        for (i = 0; i < size; i++) {
            if (copy[i] < 0x21 || copy[i] >= 0x7f || copy[i] == '\\') {
                abort();
            }
        }

        /* decoded once more, it is still a same-host path */

        for (i = 0, n = 0; i < size; i++) {
            if (copy[i] != '%') {
                dec[n++] = copy[i];
                continue;
            }

            if (size - i < 3) {
                abort();
            }

            hi = fuzz_hex(copy[i + 1]);
            lo = fuzz_hex(copy[i + 2]);

            if (hi < 0 || lo < 0) {
                abort();
            }

            dec[n] = (uint8_t) ((hi << 4) | lo);

            if (dec[n] == '/' || dec[n] == '\\' || dec[n] == '%'
                || dec[n] < 0x20 || dec[n] == 0x7f)
            {
                abort();
            }

            n++;
            i += 2;
        }

        if (dec[0] != '/' || (n > 1 && (dec[1] == '/' || dec[1] == '\\'))) {
            abort();
        }

        if (memchr(dec, '\\', n) != NULL) {
            abort();
        }
    }

    free(copy);
    free(dec);

    return 0;
}
