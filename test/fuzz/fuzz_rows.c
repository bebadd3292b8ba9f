/*
 * libFuzzer target: the rows blob reader must accept only well-formed
 * blobs and never read outside the buffer, whatever the bytes.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_rows.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                len, total;
    uint8_t              *copy;
    const unsigned char  *d;
    ngx_ent_rows_t        rows;

    /* an exact-size heap copy, so that ASan sees every overread */

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    if (ngx_ent_rows_open(&rows, copy, size) == 0) {
        total = 0;

        while (ngx_ent_rows_next(&rows, &d, &len)) {
            if (d) {
                total += len;
            }
        }

        if (total > size) {
            abort();
        }

        if (rows.nrows && rows.ncols) {
            (void) ngx_ent_rows_cell(&rows, rows.nrows - 1, rows.ncols - 1,
                                     &d, &len);
        }
    }

    free(copy);

    return 0;
}
