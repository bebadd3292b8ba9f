/*
 * libFuzzer target: claim mapping.  The input is parsed as the claims of a
 * token (bounded like one), then read through several paths into buffers
 * of several sizes; the input as a NUL-terminated string is also an email
 * address and a domain list.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_sso_util.h"


#define FUZZ_CLAIMS_MAX  16384


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_string(json_t *claims, const char *path, size_t outlen);
static void fuzz_list(json_t *claims, const char *path, size_t outlen);
static void fuzz_email(const char *email, const char *list);
static int fuzz_lower(int c);


static const char  *fuzz_paths[] = {
    "sub", "email", "a", "a.b", "a.b.c", "realm_access.roles", "groups",
    "x.y.z", "", ".", "a..b", ".a", "a.", "https://acme.example/claims.g",
    NULL
};

static const size_t  fuzz_sizes[] = { 1, 2, 8, 64, 512 };


static void
fuzz_string(json_t *claims, const char *path, size_t outlen)
{
    int    rc;
    char  *out;

    out = malloc(outlen);
    if (out == NULL) {
        return;
    }

    memset(out, 'X', outlen);

    rc = ent_claim_string(claims, path, out, outlen);

    if (rc != 0 && rc != -1) {
        abort();
    }

    if (memchr(out, '\0', outlen) == NULL) {
        abort();
    }

    if (rc == -1 && out[0] != '\0') {
        abort();
    }

    free(out);
}


static void
fuzz_list(json_t *claims, const char *path, size_t outlen)
{
    int     rc, commas;
    char   *out;
    size_t  i, n;

    out = malloc(outlen);
    if (out == NULL) {
        return;
    }

    memset(out, 'X', outlen);

    rc = ent_claim_list(claims, path, out, outlen);

    if (rc < -1 || memchr(out, '\0', outlen) == NULL) {
        abort();
    }

    n = strlen(out);

    if ((rc <= 0 && n != 0) || (rc > 0 && n == 0)) {
        abort();
    }

    /* rc elements: rc - 1 commas, no empty element, no control byte */

    commas = 0;

    for (i = 0; i < n; i++) {
        if ((unsigned char) out[i] < 0x20 || out[i] == 0x7f) {
            abort();
        }

        if (out[i] == ',') {
            if (i == 0 || i == n - 1 || out[i + 1] == ',') {
                abort();
            }

            commas++;
        }
    }

    if (rc > 0 && commas != rc - 1) {
        abort();
    }

    free(out);
}


static int
fuzz_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}


static void
fuzz_email(const char *email, const char *list)
{
    size_t       i, n, dlen;
    const char  *at, *p, *e;

    if (ent_email_domain_in(email, list) != 1) {
        return;
    }

    /* one "@", a local part, and a domain that is one entry of the list */

    at = strchr(email, '@');

    if (at == NULL || at == email || at[1] == '\0'
        || strchr(at + 1, '@') != NULL)
    {
        abort();
    }

    dlen = strlen(at + 1);

    for (p = list; ; p = e + 1) {
        e = strchr(p, ',');
        n = e ? (size_t) (e - p) : strlen(p);

        if (n == dlen) {
            for (i = 0; i < n; i++) {
                if (fuzz_lower((unsigned char) p[i])
                    != fuzz_lower((unsigned char) at[1 + i]))
                {
                    break;
                }
            }

            if (i == n) {
                return;
            }
        }

        if (e == NULL) {
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          *str, *nl;
    size_t         i, j;
    json_t        *claims;
    json_error_t   err;

    if (size > FUZZ_CLAIMS_MAX) {
        return 0;
    }

    claims = json_loadb((const char *) data, size, JSON_ALLOW_NUL, &err);

    if (claims != NULL) {
        for (i = 0; fuzz_paths[i] != NULL; i++) {
            for (j = 0; j < sizeof(fuzz_sizes) / sizeof(fuzz_sizes[0]); j++) {
                fuzz_string(claims, fuzz_paths[i], fuzz_sizes[j]);
                fuzz_list(claims, fuzz_paths[i], fuzz_sizes[j]);
            }
        }

        json_decref(claims);
    }

    str = malloc(size + 1);
    if (str == NULL) {
        return 0;
    }

    memcpy(str, data, size);
    str[size] = '\0';

    fuzz_email(str, "example.com,a.example");
    fuzz_email("ann@example.com", str);
    fuzz_email(str, str);

    /* split at the first newline: an address, then a list */

    nl = strchr(str, '\n');

    if (nl != NULL) {
        *nl = '\0';
        fuzz_email(str, nl + 1);
    }

    free(str);

    return 0;
}
