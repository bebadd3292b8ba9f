/*
 * libFuzzer target: SAML Responses, everything an IdP or a browser can
 * post to the ACS endpoint.
 *
 * The input goes both to the XML entry point and, as a SAMLResponse form
 * value, to the base64 one, with fixed expectations and the fixed pinned
 * certificate below (a throwaway self-signed one made for this target; its
 * key was used once, to sign the valid seeds in corpus/saml/, and is not
 * kept).  Mutations of the valid seeds thus get as far as the signature
 * and the protocol checks.  Whatever passes must look like a result: a
 * NameID, IDs, an expiry in the future, no control characters anywhere.
 * A short input is also read as an xs:dateTime, which must format back to
 * the same instant.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_saml.h"


#define FUZZ_NOW   1700000000
#define FUZZ_SKEW  60


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int rc, const ent_saml_result_t *res, const char *err,
    size_t errlen);
static void fuzz_string(const char *s);
static void fuzz_time(const uint8_t *data, size_t size);


static const char  fuzz_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDCTCCAfGgAwIBAgIUEi1gthWL/cTnp3prV8cNOQPYABwwDQYJKoZIhvcNAQEL\n"
    "BQAwEzERMA8GA1UEAwwIZnV6ei1pZHAwIBcNMjYxMTIyMDAwOTQxWhgPMjEyNjEw\n"
    "MjkwMDA5NDFaMBMxETAPBgNVBAMMCGZ1enotaWRwMIIBIjANBgkqhkiG9w0BAQEF\n"
    "AAOCAQ8AMIIBCgKCAQEAumY83WzMnKmN+9PksTw/GXH690QYQL/10yDcpUlJiMWN\n"
    "EPDkvQB8Qnf9rEWCtWEharRTjLQ68I+nho1YRWbhFOm7cQsNv+paR776H1WdPMQF\n"
    "n+lFuAQFJDaX1hj4Tz0SAmhSHdFeVHeUk98HYUuiQOJJRVgMKTKEwhC3OvA1wiZN\n"
    "rqYGMEp8zGA5+ep7L4OJDvX+uhPCwb437wEdLTEZxtjnaEjUF+JhDrzwPHukaPB8\n"
    "vqWViGFwujJV8SYTL6atZ4gNIEVk3mRzNJQL79MbkbENfBxrroOord9Wn1XAmBqH\n"
    "S8Isf9SQDzsqD0m4JEAnhW0g419LV5e4pTB64sdSTwIDAQABo1MwUTAdBgNVHQ4E\n"
    "FgQUAzndkaXftYsKERl8rIkuEVgt+QcwHwYDVR0jBBgwFoAUAzndkaXftYsKERl8\n"
    "rIkuEVgt+QcwDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAtCxq\n"
    "g9sa4oZ/euMZBRtJXqJ9nNKUoV4jpZDOjZjjAdgXncwoRwZRkAKRZFz6ar75UT4O\n"
    "BfFnOIb1p/yWRDrRoj+iXYj5/5cq6jqLpfZkHgCnof7GeDtTofGlVV1u7vZFaUP5\n"
    "LWaS/sbGZueXYthbDXOH6E8SvD37oh70YFg9uwuN0SsiIWz4EUrx5tD8Hg0nUiOw\n"
    "iuqyvNva0xJZwAxNSucnDhF3FPEg6zI6qVg6Da798IqiheQ9JnQYm73nFU5DLA0p\n"
    "BBeSlDxWyrVe/Bc+EgGW7gkSJ7+DeZX9bMq5iEzotnUcdJx9It/CwNk3M4vAQteO\n"
    "BswxIHq7ZHPtYhtx9Q==\n"
    "-----END CERTIFICATE-----\n";


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                rc;
    char               err[128];
    uint8_t           *copy;
    ent_saml_result_t  res;
    ent_saml_expect_t  expect;

    if (ent_saml_init() != 0) {
        abort();
    }

    fuzz_time(data, size);

    memset(&expect, 0, sizeof(ent_saml_expect_t));

    expect.acs_url = "https://sp.example/_ent/saml/acs";
    expect.sp_entity_id = "https://sp.example/saml";
    expect.idp_entity_id = "https://idp.example/saml";
    expect.idp_cert_pem = fuzz_cert;
    expect.request_id = "_req1";
    expect.now = FUZZ_NOW;
    expect.skew = FUZZ_SKEW;
    expect.allow_idp_initiated = size & 1;

    /* an exact-size heap copy, so that ASan sees every overread */

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);
    memset(err, 'x', sizeof(err));

    rc = ent_saml_response_check_xml(copy, size, &expect, &res, err,
                                     sizeof(err));
    fuzz_check(rc, &res, err, sizeof(err));
    ent_saml_result_free(&res);

    memset(err, 'x', sizeof(err));

    rc = ent_saml_response_check(copy, size, &expect, &res, err,
                                 sizeof(err));
    fuzz_check(rc, &res, err, sizeof(err));
    ent_saml_result_free(&res);

    free(copy);

    return 0;
}


static void
fuzz_check(int rc, const ent_saml_result_t *res, const char *err,
    size_t errlen)
{
    char    *joined;
    size_t   i, j;

    if (rc < ENT_SAML_OK || rc > ENT_SAML_INTERNAL) {
        abort();
    }

    if (rc != ENT_SAML_OK) {
        /* a failure leaves a message and an empty result */

        if (memchr(err, '\0', errlen) == NULL || err[0] == '\0'
            || res->name_id != NULL || res->attrs != NULL
            || res->assertion_id != NULL)
        {
            abort();
        }

        return;
    }

    if (res->name_id == NULL || res->name_id[0] == '\0'
        || res->assertion_id == NULL || res->response_id == NULL
        || res->expires <= FUZZ_NOW - FUZZ_SKEW
        || (!res->assertion_signed && !res->response_signed)
        || res->nattrs > ENT_SAML_MAX_ATTRS)
    {
        abort();
    }

    fuzz_string(res->name_id);
    fuzz_string(res->assertion_id);

    if (res->session_index) {
        fuzz_string(res->session_index);
    }

    for (i = 0; i < res->nattrs; i++) {
        fuzz_string(res->attrs[i].name);

        if (res->attrs[i].nvalues > ENT_SAML_MAX_VALUES) {
            abort();
        }

        for (j = 0; j < res->attrs[i].nvalues; j++) {
            fuzz_string(res->attrs[i].values[j]);
        }

        if (ent_saml_attr(res, res->attrs[i].name) == NULL) {
            abort();
        }

        joined = ent_saml_attr_join(res, res->attrs[i].name);
        if (joined == NULL) {
            abort();
        }

        fuzz_string(joined);
        free(joined);
    }
}


/* what reaches an identity header: no control character */

static void
fuzz_string(const char *s)
{
    if (s == NULL) {
        abort();
    }

    for ( /* void */ ; *s; s++) {
        if ((unsigned char) *s < 0x20 || *s == 0x7f) {
            abort();
        }
    }
}


static void
fuzz_time(const uint8_t *data, size_t size)
{
    char    s[64], buf[21];
    time_t  t, t2;

    if (size >= sizeof(s)) {
        return;
    }

    memcpy(s, data, size);
    s[size] = '\0';

    if (ent_saml_parse_time(s, &t) != 0) {
        return;
    }

    ent_saml_format_time(t, buf);

    if (ent_saml_parse_time(buf, &t2) != 0 || t2 != t
        || strncmp(buf, s, 19) != 0)
    {
        abort();
    }
}
