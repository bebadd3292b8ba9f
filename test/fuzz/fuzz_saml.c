/*
 * libFuzzer target: SAML Responses, everything an IdP or a browser can
 * post to the ACS endpoint, and the other XML the SAML code reads.
 *
 * A first byte 0x01 to 0x04 selects, and is not part of, the input:
 *   0x01  a Response (XML) with the SP key below, so that EncryptedAssertions
 *         are decrypted (the key PEM on odd sizes, prepared keys on even
 *         ones) and a rotation list of two pinned certificates;
 *   0x02  a LogoutRequest;
 *   0x03  a LogoutResponse;
 *   0x04  IdP metadata (with an entity ID on odd sizes).
 * Any other first byte keeps the original target, described next, on the
 * whole input (so the older seeds, starting with "<" or base64, still do
 * what they did).
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
#define FUZZ_IDP   "https://idp.example/saml"
#define FUZZ_SLO   "https://sp.example/_ent/saml/slo"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_expect(ent_saml_expect_t *expect, size_t size);
static void fuzz_response(const uint8_t *data, size_t size);
static void fuzz_encrypted(const uint8_t *data, size_t size);
static void fuzz_logout(const uint8_t *data, size_t size, int response);
static void fuzz_metadata(const uint8_t *data, size_t size);
static void fuzz_err(int rc, const char *err, size_t errlen);
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


/*
 * Throwaway keys made for this target only: the SP's RSA key (the
 * encrypted seeds in corpus/saml/ are encrypted to its certificate) and
 * an "old" IdP certificate for the rotation list.
 */

static const char  fuzz_sp_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDn/3qXXVz2t+ac\n"
    "nRX46FnBXhZ9XRUGcGmMd1oxvpL4kaDFAAIbiSC93N2cOl3XcK6COwfyFc8O4iT+\n"
    "3IM7ruSpH2ucJ3bMebY1nyiPRbJiDFlukT7Cd7MW5q9qKx6X2P8GWg063AMU+vCO\n"
    "90F+iEYKTu80Ow4QV1M7znlmMUY36c/80wxavXnz8kSPbdP0QFeVLe2c1JnEYlbt\n"
    "UeooDylt4K/ZvF1OCZM5k3HjoWYv9SXInN0G1Lr+fLtcwRuqY0ONaxjxP5mCy4Fe\n"
    "c+dViDuQyPcrJgVjEF4MPLWc7WKMPrdh6s/I0rhLaKIoEAr9QdGDuXLpjP5ludqW\n"
    "v0n+mmbVAgMBAAECggEAUyXxCYv4NCKwH+R7CgU4mgG/PLoePXsPkTz7kgWUBkun\n"
    "W8PHfZf1qKaetI4EsSDdIqbGj8C6P8LUcJWW4U6q/GRa/JH2VY2vvOMotcTMjLCR\n"
    "Yvviiu88vBH8v6fppJGswVmIEVbmMeBIVG0Qx6lOtQYaXFVoEnpBxhcX0oUJfiL7\n"
    "XB1HCYETmBRrSl4KnbXceqWCsoZl/zO4fqSbR9xWNyhUIP7usBVTqSgLwiTmn30w\n"
    "XLe8czeZO2jyLm5VjvxtGjsok+7zFKuK6NvYjT/1g2TF0LQ8k3zsiQ24SzLBvL20\n"
    "UONYskibzHXyXikBsOJcN7f724QLKWaFzhTq4RS2pwKBgQD6VKOnepbrnRpxtO6w\n"
    "0n5LhefFoDdNLKK6BKNF8YQ5CyW5LLSokTLRJrKxl1htbhHLQpYyU2+f/BUj+LpV\n"
    "lgap4I+El/zIVVIySUDKoTM6OzNgtbfjYhOqpt0DuEdaMN2yZUrGk053rij6p3rm\n"
    "k2RQZORsBdlngQWigPa2WaR4NwKBgQDtQI0MDTB05j2LguSHxSDIv2a1JkvjpUsj\n"
    "nxX/Pc+g+dloG8/TOMrhi23RNKS7hdemVnCt1xVBQPOogkVYQLWv9jzOP5PL0GU+\n"
    "Ooljoj1baQksnSJvwo1u4UaXQGacwzVeWgyWrnQYA9DlRVqGG4MbfKMgD4LMYAjU\n"
    "skjYzyN7UwKBgEM77GCVGmfZ4DpeACXZwzYBlwiLSY8ex+3yRPAKOBsiFVWw3izQ\n"
    "IrfuDtyH66Yog/r1vWVy524uxHbO3S0TiGKj/6f7MleUIumCpzZFKX8gW2JELEmU\n"
    "E/gnrQDMw81DhqfdcMH42oBmdHct+GJpf+3fy0IAKC4Why7oOFstpHDtAoGBAMQr\n"
    "xLR7T17JZYguoaG1mIcE4/rTAJrpeLiqePjEdiKHlIElxfDDm9VkgVgjbDZ107sA\n"
    "7EiBeFytRQtHM+lmEBS/yMVNAnrbBGuw4RsV8h/cOK6/+tJoDqPo94JmyLHEIyOx\n"
    "14jcFLgqp5Z7gv8yTnTy2LrQuHkeyw57oApNM+xrAoGBAM7GjiDkSpgDbnw2fKlF\n"
    "JWzs5T4l8pqGwj+E6iX2iZIYXPUinvog40bt0w6o5wVGvMQSZKCmHDwDpnU70QFM\n"
    "fbvgTFO5VJTAeHg+s+H3ohOCxEls0sSKoBSr+j4uFLkTrYCo76fU1m6ePGZRyREv\n"
    "KLHCtDzoOmHlkMT1ZMzeEaeg\n"
    "-----END PRIVATE KEY-----\n";


static const char  fuzz_old_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDETCCAfmgAwIBAgIUGTt8DPePPxVlC0pWXgBudgu4Rw8wDQYJKoZIhvcNAQEL\n"
    "BQAwFzEVMBMGA1UEAwwMZnV6ei1vbGQtaWRwMCAXDTI2MTEyMjAxMjAwM1oYDzIx\n"
    "MjYxMDI5MDEyMDAzWjAXMRUwEwYDVQQDDAxmdXp6LW9sZC1pZHAwggEiMA0GCSqG\n"
    "SIb3DQEBAQUAA4IBDwAwggEKAoIBAQDthi8QnSxG5m1GCgIzEnXxu0ZfuiqjK/nW\n"
    "s3Z+zwaFtDDll1+E821zhtFWUnLly3ZjQvquqNsZgVTWzsFo82ahccIHmUoTQp+V\n"
    "IxQQ1kEzAIsT9PXXC3eKljzdXmZwGdGC/yAnbCwN6DUUDj7BJsqBwbUHpf7or1qb\n"
    "n9+GLXDrGQxOkL0W3LULLuvEb/cT/9YoY/P+anSRbcDVguMz1jQ1GK5GAZo4WPlU\n"
    "TQ5hky56V/+EkIXl3G7e4VHMBrLST+qS8MmrjDXkAYR/lVZOms4D7vKbD5bHP9cj\n"
    "iLGmyxaCrj//RuJhrFI7e79qcdIxgwA6dQTJ1vlFftvn+98iWfM7AgMBAAGjUzBR\n"
    "MB0GA1UdDgQWBBQEd/8rBsuSL0RNyyX4DwCpGgUh4zAfBgNVHSMEGDAWgBQEd/8r\n"
    "BsuSL0RNyyX4DwCpGgUh4zAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUA\n"
    "A4IBAQBk1ByvfY2zQjme3Ps6lEN8hkYrfqdo8rGN51L81aRGc/G77ad1fo5wiyH0\n"
    "pod1Wt3w3IujIEIgkUWuB/NONXqdfE95DJQxoamoB7nrfFKeE59F8xJ30FLrtlg0\n"
    "+vPfouY85+7MVt9vTGdV2ffRpeHcqdTQIIXYC69BgNZsHKV7ti6Btymee9Tj3gHx\n"
    "XDWCJMSsBHLfQysqt/ktAGdKI4JTMDhdgRYZ4pdVJ/mrOyiyqfFSCRhHyMxZLs6f\n"
    "X/y1jPHcwKuA/Mg658TTxn1CeCaoTfxVGF82/kz/MIFZjuY0lJOCBJaJIiLKN3j0\n"
    "IVLCfBMoGHB3l7kFQALrbgP3eeOB\n"
    "-----END CERTIFICATE-----\n";


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ent_saml_init() != 0) {
        abort();
    }

    if (size == 0 || data[0] > 0x04 || data[0] == 0x00) {
        fuzz_time(data, size);
        fuzz_response(data, size);
        return 0;
    }

    switch (data[0]) {
    case 0x01:
        fuzz_encrypted(data + 1, size - 1);
        break;
    case 0x02:
        fuzz_logout(data + 1, size - 1, 0);
        break;
    case 0x03:
        fuzz_logout(data + 1, size - 1, 1);
        break;
    default:
        fuzz_metadata(data + 1, size - 1);
    }

    return 0;
}


static void
fuzz_expect(ent_saml_expect_t *expect, size_t size)
{
    memset(expect, 0, sizeof(ent_saml_expect_t));

    expect->acs_url = "https://sp.example/_ent/saml/acs";
    expect->sp_entity_id = "https://sp.example/saml";
    expect->idp_entity_id = FUZZ_IDP;
    expect->idp_cert_pem = fuzz_cert;
    expect->request_id = "_req1";
    expect->now = FUZZ_NOW;
    expect->skew = FUZZ_SKEW;
    expect->allow_idp_initiated = size & 1;
}


static void
fuzz_response(const uint8_t *data, size_t size)
{
    int                rc;
    char               err[128];
    uint8_t           *copy;
    ent_saml_result_t  res;
    ent_saml_expect_t  expect;

    fuzz_expect(&expect, size);

    /* an exact-size heap copy, so that ASan sees every overread */

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return;
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
}


static void
fuzz_encrypted(const uint8_t *data, size_t size)
{
    int                rc;
    char               err[128], *pems;
    size_t             n;
    uint8_t           *copy;
    ent_saml_keys_t   *keys, *idp_keys;
    ent_saml_result_t  res;
    ent_saml_expect_t  expect;

    fuzz_expect(&expect, size);

    n = sizeof(fuzz_old_cert) - 1 + sizeof(fuzz_cert);
    pems = malloc(n);
    copy = malloc(size ? size : 1);

    if (pems == NULL || copy == NULL) {
        free(pems);
        free(copy);
        return;
    }

    memcpy(pems, fuzz_old_cert, sizeof(fuzz_old_cert) - 1);
    memcpy(pems + sizeof(fuzz_old_cert) - 1, fuzz_cert, sizeof(fuzz_cert));
    memcpy(copy, data, size);

    keys = NULL;
    idp_keys = NULL;

    if (size & 1) {
        expect.idp_cert_pem = pems;
        expect.sp_key_pem = fuzz_sp_key;

    } else {
        keys = ent_saml_sp_key_load(fuzz_sp_key, sizeof(fuzz_sp_key) - 1,
                                    err, sizeof(err));
        idp_keys = ent_saml_keys_load(pems, n - 1, err, sizeof(err));

        if (keys == NULL || idp_keys == NULL) {
            abort();
        }

        expect.idp_cert_pem = NULL;
        expect.idp_keys = idp_keys;
        expect.sp_keys = keys;
    }

    memset(err, 'x', sizeof(err));

    rc = ent_saml_response_check_xml(copy, size, &expect, &res, err,
                                     sizeof(err));
    fuzz_check(rc, &res, err, sizeof(err));
    ent_saml_result_free(&res);

    ent_saml_keys_free(keys);
    ent_saml_keys_free(idp_keys);
    free(pems);
    free(copy);
}


static void
fuzz_logout(const uint8_t *data, size_t size, int response)
{
    int                rc;
    char               err[128];
    size_t             i;
    uint8_t           *copy;
    ent_saml_logout_t  lo;

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return;
    }

    memcpy(copy, data, size);
    memset(err, 'x', sizeof(err));

    if (response) {
        rc = ent_saml_logout_response_check(copy, size, FUZZ_IDP, FUZZ_SLO,
                                            "_lo1", FUZZ_NOW, FUZZ_SKEW, &lo,
                                            err, sizeof(err));
    } else {
        rc = ent_saml_logout_request_check(copy, size, FUZZ_IDP, FUZZ_SLO,
                                           FUZZ_NOW, FUZZ_SKEW, &lo, err,
                                           sizeof(err));
    }

    fuzz_err(rc, err, sizeof(err));

    if (rc != ENT_SAML_OK) {
        if (lo.id || lo.name_id || lo.session_indexes || lo.status) {
            abort();
        }

    } else {
        if (lo.id == NULL || lo.issuer == NULL
            || strcmp(lo.issuer, FUZZ_IDP) != 0)
        {
            abort();
        }

        fuzz_string(lo.id);

        if (response) {
            if (lo.status == NULL || lo.in_response_to == NULL
                || strcmp(lo.in_response_to, "_lo1") != 0)
            {
                abort();
            }

            fuzz_string(lo.status);

        } else {
            if (lo.name_id == NULL || lo.name_id[0] == '\0'
                || lo.nsession_indexes > ENT_SAML_MAX_SESSION_INDEXES)
            {
                abort();
            }

            fuzz_string(lo.name_id);

            for (i = 0; i < lo.nsession_indexes; i++) {
                fuzz_string(lo.session_indexes[i]);
            }
        }
    }

    ent_saml_logout_free(&lo);
    free(copy);
}


static void
fuzz_metadata(const uint8_t *data, size_t size)
{
    int                      rc;
    char                     err[128];
    size_t                   i;
    uint8_t                 *copy;
    ent_saml_keys_t         *keys;
    ent_saml_idp_metadata_t  md;

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return;
    }

    memcpy(copy, data, size);
    memset(err, 'x', sizeof(err));

    rc = ent_saml_idp_metadata_parse(copy, size,
                                     (size & 1) ? FUZZ_IDP : NULL, &md, err,
                                     sizeof(err));
    fuzz_err(rc, err, sizeof(err));

    if (rc != ENT_SAML_OK) {
        if (md.entity_id || md.certs || md.ncerts) {
            abort();
        }

    } else {
        if (md.entity_id == NULL || md.sso_url == NULL || md.ncerts == 0
            || md.ncerts > ENT_SAML_MAX_CERTS)
        {
            abort();
        }

        fuzz_string(md.entity_id);
        fuzz_string(md.sso_url);

        /* every certificate found loads as a pinned one */

        for (i = 0; i < md.ncerts; i++) {
            keys = ent_saml_keys_load(md.certs[i], strlen(md.certs[i]), err,
                                      sizeof(err));
            if (keys == NULL) {
                abort();
            }

            ent_saml_keys_free(keys);
        }
    }

    ent_saml_idp_metadata_free(&md);
    free(copy);
}


/* a failure leaves a message */

static void
fuzz_err(int rc, const char *err, size_t errlen)
{
    if (rc < ENT_SAML_OK || rc > ENT_SAML_DECRYPT) {
        abort();
    }

    if (rc != ENT_SAML_OK
        && (memchr(err, '\0', errlen) == NULL || err[0] == '\0'))
    {
        abort();
    }
}


static void
fuzz_check(int rc, const ent_saml_result_t *res, const char *err,
    size_t errlen)
{
    char    *joined;
    size_t   i, j;

    if (rc < ENT_SAML_OK || rc > ENT_SAML_DECRYPT) {
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
