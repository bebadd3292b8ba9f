/*
 * libFuzzer target: SAML HTTP-Redirect binding query strings, anything a
 * browser can put after the "?" of the SLO or SSO endpoint.
 *
 * The input is decoded as a query with the fixed certificates below (a
 * throwaway RSA and a throwaway EC one, made for this target; their keys
 * were used once, to sign the valid seeds in corpus/saml_redirect/, and
 * are not kept), with and without a signature required, and without
 * certificates.  The three results must agree with each other, whatever
 * passes must look like a result (bounded, NUL-terminated, no control
 * character in RelayState), and must survive an encode and decode round
 * trip, unsigned and signed by a key made at start-up.  The input is also
 * encoded as a message itself, which must decode back to the same bytes.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ngx_ent_saml_redirect.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_init(void);
static void fuzz_check(int rc, const ent_saml_redirect_t *msg,
    const char *err, size_t errlen);
static int fuzz_same(const ent_saml_redirect_t *a,
    const ent_saml_redirect_t *b);
static void fuzz_roundtrip(const ent_saml_redirect_t *msg,
    const ent_saml_rkey_t *key);


static ent_saml_rkey_t  *fuzz_certs, *fuzz_key;


static const char  fuzz_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDETCCAfmgAwIBAgIUWMAHph48/2okcJQjQUBA09v9eS0wDQYJKoZIhvcNAQEL\n"
    "BQAwFzEVMBMGA1UEAwwMZnV6ei1pZHAtcnNhMCAXDTI2MTEyMjAxMTczMloYDzIx\n"
    "MjYxMDI5MDExNzMyWjAXMRUwEwYDVQQDDAxmdXp6LWlkcC1yc2EwggEiMA0GCSqG\n"
    "SIb3DQEBAQUAA4IBDwAwggEKAoIBAQDTBV3aBJUwsEtFAE41qpII34bDbCsayUha\n"
    "Xx76LhRz7vx1uOEzPL1droqhRVsJGnSuTLeKicTooi501Zn0vYJY/qKhfVT66IKv\n"
    "MWynqULGLEcbTHiPO0H+xdpzv3kdhZk11OcVpFGYdI4ii5++xrM9OlCbagfGod1M\n"
    "vROvIow/TN8ScX1anlien+2azGsrqIQZ+bZyfKTV0AUAfvgw1IMf0Suh6t3tv+X/\n"
    "40Ty08ibuqXWIzXQpnhXTO7jcXagUlWJpE1iFI8m+8UDME082IBaG6eXN43B1deX\n"
    "QEbF/8aaH+ht7PABZnrKE2y8S6Y5ettlAiJZZK86knTHe3T1gorDAgMBAAGjUzBR\n"
    "MB0GA1UdDgQWBBSCpeAYBTS6nA/KRV4CKiynfv8RYDAfBgNVHSMEGDAWgBSCpeAY\n"
    "BTS6nA/KRV4CKiynfv8RYDAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUA\n"
    "A4IBAQAPtq1cKBUJhZQ9ZPrIkMvXPAk2XSbP5rIguU14srEXNOu+dOiUB7GEoRj3\n"
    "7buPzSNxsmCz/Ho8YUIPazWjOcaKGsHSW2qES4LFUZi4Q3wUhVGsyP+DXTnM8YzR\n"
    "tyghQcEBPPkOVat2EXzZeX9TB+pymyyFyOpCoXURgKTijnlac0zPFjG9e7YUqkV8\n"
    "+q40MISgvQ25u1AG3MuPS8NtS4KLo57u5P8IZd2Ouui2mLQGCiVdZOhiVk/cwjzY\n"
    "xzIwcj/QUzbVyeeSgdVsOMb1SW3cXop1NjvwbOgGkrPjSBfApLI6v0jevIAC9QSb\n"
    "/OkHRHZMsvk64C1AyBz/clbDeWIf\n"
    "-----END CERTIFICATE-----\n"
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBhDCCASmgAwIBAgIUQraajzCeVqn+HiC8dvRXyKdRVGUwCgYIKoZIzj0EAwIw\n"
    "FjEUMBIGA1UEAwwLZnV6ei1pZHAtZWMwIBcNMjYxMTIyMDExNzMyWhgPMjEyNjEw\n"
    "MjkwMTE3MzJaMBYxFDASBgNVBAMMC2Z1enotaWRwLWVjMFkwEwYHKoZIzj0CAQYI\n"
    "KoZIzj0DAQcDQgAEPtJ3MOv8i4E+y43YJUa7YkT8cK0dE3lrENCTDmgs3QMWVm21\n"
    "TgsfIJaPGHTwNlpiLXUV5jaJozILh2w10MVbTaNTMFEwHQYDVR0OBBYEFIsi/18b\n"
    "YHs7ic5ORELzuCOd/FTcMB8GA1UdIwQYMBaAFIsi/18bYHs7ic5ORELzuCOd/FTc\n"
    "MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAKmNmmnHlB952qIV\n"
    "AnIh7pRBcWbDrcGspb9ivrJ07WwLAiEA130FpadpUZl/CIzcw8MUV+zjauqaUlPK\n"
    "QCQ+ndpVUsg=\n"
    "-----END CERTIFICATE-----\n";


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  rc1, rc2, rc3, rc;
    char                *copy, *q, err[128];
    size_t               qlen;
    ent_saml_redirect_t  m1, m2, m3;

    fuzz_init();

    /* an exact-size heap copy, so that ASan sees every overread */

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    memset(err, 'x', sizeof(err));
    rc1 = ent_saml_redirect_decode(copy, size, fuzz_certs, 0, size & 1, &m1,
                                   err, sizeof(err));
    fuzz_check(rc1, &m1, err, sizeof(err));

    memset(err, 'x', sizeof(err));
    rc2 = ent_saml_redirect_decode(copy, size, fuzz_certs, 1, size & 1, &m2,
                                   err, sizeof(err));
    fuzz_check(rc2, &m2, err, sizeof(err));

    memset(err, 'x', sizeof(err));
    rc3 = ent_saml_redirect_decode(copy, size, NULL, 0, 0, &m3, err,
                                   sizeof(err));
    fuzz_check(rc3, &m3, err, sizeof(err));

    /* required implies checked; checked only adds refusals */

    if (rc2 == ENT_SAML_OK
        && (!m2.is_signed || rc1 != ENT_SAML_OK || !fuzz_same(&m1, &m2)))
    {
        abort();
    }

    if (rc1 == ENT_SAML_OK && (rc3 != ENT_SAML_OK || !fuzz_same(&m1, &m3))) {
        abort();
    }

    if (rc3 == ENT_SAML_OK && m3.is_signed) {
        abort();
    }

    if (rc3 == ENT_SAML_OK) {
        fuzz_roundtrip(&m3, NULL);
        fuzz_roundtrip(&m3, fuzz_key);
    }

    ent_saml_redirect_free(&m1);
    ent_saml_redirect_free(&m2);
    ent_saml_redirect_free(&m3);

    /* the input as a message */

    rc = ent_saml_redirect_encode_rkey((size & 2) ? "SAMLResponse"
                                                  : "SAMLRequest",
                                       copy, size, NULL, NULL, &q, &qlen);

    if (rc == ENT_SAML_OK) {
        rc = ent_saml_redirect_decode(q, qlen, NULL, 0, 0, &m1, err,
                                      sizeof(err));

        if (rc != ENT_SAML_OK || m1.xml_len != size
            || memcmp(m1.xml, copy, size) != 0
            || m1.is_request != !(size & 2) || m1.relay_state != NULL)
        {
            abort();
        }

        ent_saml_redirect_free(&m1);
        free(q);

    } else if (rc != ENT_SAML_MALFORMED || q != NULL) {
        abort();
    }

    free(copy);

    return 0;
}


/* once per process: the certificates and a signing key */

static void
fuzz_init(void)
{
    BIO       *bio;
    char      *pem, err[128];
    long       n;
    EVP_PKEY  *pkey;

    if (fuzz_certs != NULL) {
        return;
    }

    fuzz_certs = ent_saml_rkey_load_certs(fuzz_cert, sizeof(fuzz_cert) - 1,
                                          err, sizeof(err));

    pkey = EVP_EC_gen("P-256");
    bio = BIO_new(BIO_s_mem());

    if (fuzz_certs == NULL || pkey == NULL || bio == NULL
        || PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1)
    {
        abort();
    }

    n = BIO_get_mem_data(bio, &pem);

    fuzz_key = ent_saml_rkey_load_private(pem, (size_t) n, err, sizeof(err));
    if (fuzz_key == NULL) {
        abort();
    }

    BIO_free(bio);
    EVP_PKEY_free(pkey);
}


static void
fuzz_check(int rc, const ent_saml_redirect_t *msg, const char *err,
    size_t errlen)
{
    size_t  i, n;

    if (rc != ENT_SAML_OK && rc != ENT_SAML_MALFORMED
        && rc != ENT_SAML_SIGNATURE && rc != ENT_SAML_INTERNAL)
    {
        abort();
    }

    if (rc != ENT_SAML_OK) {
        /* a failure leaves a message and an empty result */

        if (memchr(err, '\0', errlen) == NULL || err[0] == '\0'
            || msg->xml != NULL || msg->relay_state != NULL
            || msg->xml_len != 0 || msg->is_signed)
        {
            abort();
        }

        return;
    }

    if (msg->xml == NULL || msg->xml_len == 0
        || msg->xml_len > ENT_SAML_REDIRECT_MAX_XML
        || strlen(msg->xml) != msg->xml_len)
    {
        abort();
    }

    if (msg->relay_state != NULL) {
        n = strlen(msg->relay_state);

        if (n == 0 || n > ENT_SAML_REDIRECT_MAX_RELAY) {
            abort();
        }

        for (i = 0; i < n; i++) {
            if ((unsigned char) msg->relay_state[i] < 0x20
                || msg->relay_state[i] == 0x7f)
            {
                abort();
            }
        }
    }
}


static int
fuzz_same(const ent_saml_redirect_t *a, const ent_saml_redirect_t *b)
{
    if (a->xml_len != b->xml_len || memcmp(a->xml, b->xml, a->xml_len) != 0
        || a->is_request != b->is_request)
    {
        return 0;
    }

    if (a->relay_state == NULL || b->relay_state == NULL) {
        return a->relay_state == b->relay_state;
    }

    return strcmp(a->relay_state, b->relay_state) == 0;
}


/*
 * Encoded again, the message decodes to the same; the encoder may refuse
 * it only for its size (DEFLATE at another level, another percent-encoding)
 */

static void
fuzz_roundtrip(const ent_saml_redirect_t *msg, const ent_saml_rkey_t *key)
{
    int                  rc;
    char                *q, err[128];
    size_t               qlen;
    ent_saml_redirect_t  back;

    rc = ent_saml_redirect_encode_rkey(msg->is_request ? "SAMLRequest"
                                                       : "SAMLResponse",
                                       msg->xml, msg->xml_len,
                                       msg->relay_state, key, &q, &qlen);

    if (rc == ENT_SAML_MALFORMED && q == NULL) {
        return;
    }

    if (rc != ENT_SAML_OK) {
        abort();
    }

    rc = ent_saml_redirect_decode(q, qlen, key, key != NULL, 0, &back, err,
                                  sizeof(err));

    if (rc != ENT_SAML_OK || !fuzz_same(msg, &back)
        || back.is_signed != (key != NULL))
    {
        abort();
    }

    ent_saml_redirect_free(&back);
    free(q);
}
