/*
 * entctl: a tenant's SAML 2.0 identity provider.
 *
 *   sso saml CODE [--metadata FILE|URL [--idp-entity-id ID] [--ca-file F]]
 *                 [--entity-id ID] [--sso-url URL] [--slo-url URL|none]
 *                 [--cert-file PEM]...
 *                 [--sp-entity-id ID|none] [--sp-key-file PEM
 *                  --sp-cert-file PEM --key-file SECRET | --sp-key-file none]
 *                 [--name-id-format URN|none] [--skew SECONDS|none]
 *                 [--unsolicited on|off] [--allow-sha1 on|off]
 *                 [--attr-email A] [--attr-name A] [--attr-groups A]
 *                 [--attr-map NAME=ATTRIBUTE]... [--attr-map -]
 *                 [--domains a.com,b.com|none] [--enforce on|off]
 *
 * The IdP's side comes from its metadata (a file, or an https URL fetched
 * here with the certificates verified) or from the explicit options, which
 * win over the metadata.  Every certificate must parse; an expired one is
 * a warning.  Several certificates may be given (rotation: a signature by
 * any of them is accepted).  The SP key is checked against its
 * certificate, sealed like the OIDC client secret, and only the sealed
 * form is stored.  An option left out keeps its stored value; "none"
 * removes an optional one (the SLO URL, the SP key and its certificate,
 * the SP entity ID, the NameID format, the clock skew), as "none" clears
 * a field elsewhere in entctl.  The command line is checked whole before
 * anything is fetched or written: an unknown option is bad usage, exit 2.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "entctl.h"
#include "ngx_ent_jwt.h"
#include "ngx_ent_sso_util.h"
#include "ngx_ent_saml.h"


#define SAML_MAX_CERTS  8
#define SAML_PEM_MAX    65536


static int saml_onoff(int argc, char **argv, const char *name,
    const char **out);
static int saml_certs_check(const char *pem, const char *where);
static int saml_cert_add(char *dst, size_t size, const char *pem);
static char *saml_sp_key(int argc, char **argv, const char *tid,
    const char *cert);


#define SAML_USAGE                                                           \
    "sso saml CODE [--metadata FILE|URL [--idp-entity-id ID] "               \
    "[--ca-file F]] [--entity-id ID] [--sso-url URL] "                       \
    "[--slo-url URL|none] [--cert-file PEM]... "                             \
    "[--sp-key-file PEM --sp-cert-file PEM --key-file SECRET | "             \
    "--sp-key-file none] [--sp-entity-id ID|none] "                          \
    "[--name-id-format URN|none] [--skew S|none] [--unsolicited on|off] "    \
    "[--allow-sha1 on|off] [--attr-email A] [--attr-name A] "                \
    "[--attr-groups A] [--attr-map NAME=ATTRIBUTE]... [--domains D,D|none] " \
    "[--enforce on|off]"


static const entctl_opt_t  saml_opts[] = {
    { "--metadata", ENTCTL_OPT_VALUE },
    { "--idp-entity-id", ENTCTL_OPT_VALUE },
    { "--ca-file", ENTCTL_OPT_VALUE },
    { "--entity-id", ENTCTL_OPT_VALUE },
    { "--sso-url", ENTCTL_OPT_VALUE },
    { "--slo-url", ENTCTL_OPT_VALUE },
    { "--cert-file", ENTCTL_OPT_MULTI },
    { "--sp-key-file", ENTCTL_OPT_VALUE },
    { "--sp-cert-file", ENTCTL_OPT_VALUE },
    { "--key-file", ENTCTL_OPT_VALUE },
    { "--sp-entity-id", ENTCTL_OPT_VALUE },
    { "--name-id-format", ENTCTL_OPT_VALUE },
    { "--skew", ENTCTL_OPT_VALUE },
    { "--unsolicited", ENTCTL_OPT_VALUE },
    { "--allow-sha1", ENTCTL_OPT_VALUE },
    { "--attr-email", ENTCTL_OPT_VALUE },
    { "--attr-name", ENTCTL_OPT_VALUE },
    { "--attr-groups", ENTCTL_OPT_VALUE },
    { "--attr-map", ENTCTL_OPT_MULTI },
    { "--domains", ENTCTL_OPT_VALUE },
    { "--enforce", ENTCTL_OPT_VALUE },
    { NULL, 0 }
};


static const char *saml_hint =
    "  Where to find it: Okta: Applications > the app > Sign On > "
    "\"Identity Provider metadata\";\n"
    "  Entra ID: Enterprise applications > the app > Single sign-on > "
    "SAML Certificates > \"App Federation Metadata Url\";\n"
    "  OneLogin: Applications > the app > More Actions > \"SAML "
    "Metadata\".\n";

static const char *saml_cert_hint =
    "  The IdP's signing certificate (PEM, \"-----BEGIN CERTIFICATE-----\"):"
    "\n  Okta: Sign On > SAML Signing Certificates > Actions > \"Download "
    "certificate\";\n"
    "  Entra ID: Single sign-on > SAML Certificates > \"Certificate "
    "(Base64)\";\n"
    "  OneLogin: SSO > X.509 Certificate > \"View Details\" > Download "
    "(X.509 PEM).\n";


int
entctl_sso_saml(PGconn *conn, int argc, char **argv)
{
    int                      i, rc, n, exists, nokey;
    char                    *tid, *doc, *sealed, *certs, domains[4096];
    size_t                   len;
    const char              *md, *v, *entity, *sso, *slo, *unsol, *sha1,
                            *enforce, *skew, *nif;
    char                    *attrs;
    const char              *params[19];
    unsigned char           *buf;
    char                     err[256];
    ent_saml_idp_metadata_t  meta;

    if (entctl_args(argc, argv, 1, 1, saml_opts, SAML_USAGE) < 0) {
        return 2;
    }

    /* the command line first: bad usage changes nothing, fetches nothing */

    if (saml_onoff(argc, argv, "--unsolicited", &unsol) != 0
        || saml_onoff(argc, argv, "--allow-sha1", &sha1) != 0
        || saml_onoff(argc, argv, "--enforce", &enforce) != 0)
    {
        return 2;
    }

    md = sso_opt(argc, argv, "--metadata");

    if (md == NULL && (sso_opt(argc, argv, "--idp-entity-id")
                       || sso_opt(argc, argv, "--ca-file")))
    {
        fprintf(stderr, "entctl: --idp-entity-id and --ca-file go with "
                "--metadata\n");
        return 2;
    }

    if (md && strncmp(md, "http://", 7) == 0) {
        fprintf(stderr, "entctl: --metadata: an https URL or a file "
                "(metadata over plain HTTP could be anyone's)\n");
        return 2;
    }

    /* "--sp-key-file none": no SP key (nor its certificate) any more */

    v = sso_opt(argc, argv, "--sp-key-file");
    nokey = (v && strcmp(v, "none") == 0);

    if ((v == NULL || nokey) && (sso_opt(argc, argv, "--sp-cert-file")
                                 || sso_opt(argc, argv, "--key-file")))
    {
        fprintf(stderr, "entctl: --sp-cert-file and --key-file go with "
                "--sp-key-file PEM (\"--sp-key-file none\" removes the SP "
                "key and its certificate)\n");
        return 2;
    }

    if (v && !nokey && (sso_opt(argc, argv, "--sp-cert-file") == NULL
                        || sso_opt(argc, argv, "--key-file") == NULL))
    {
        fprintf(stderr, "entctl: --sp-key-file needs --sp-cert-file (its "
                "certificate, published in the SP metadata) and --key-file "
                "(the file of the nginx directive ent_sso_secret_key)\n");
        return 2;
    }

    nif = sso_opt(argc, argv, "--name-id-format");
    if (nif && strcmp(nif, "none") != 0
        && (strncmp(nif, "urn:", 4) != 0 || strlen(nif) > 256))
    {
        fprintf(stderr, "entctl: --name-id-format: a URN, e.g. "
                "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress, "
                "or \"none\"\n");
        return 2;
    }

    skew = sso_opt(argc, argv, "--skew");
    if (skew && strcmp(skew, "none") != 0
        && (strspn(skew, "0123456789") != strlen(skew)
            || strlen(skew) == 0 || strlen(skew) > 4 || atoi(skew) > 3600))
    {
        fprintf(stderr, "entctl: --skew: seconds, 0 to 3600, or \"none\"\n");
        return 2;
    }

    if (sso_domains(sso_opt(argc, argv, "--domains"), domains,
                    sizeof(domains))
        != 0)
    {
        return 2;
    }

    if (entctl_attr_map(argc, argv, "--attr-map", &attrs) != 0) {
        return 2;
    }

    memset(&meta, 0, sizeof(meta));
    doc = NULL;
    sealed = NULL;
    tid = NULL;
    rc = 1;

    certs = calloc(1, SAML_PEM_MAX);
    buf = malloc(SAML_PEM_MAX);
    if (certs == NULL || buf == NULL) {
        goto done;
    }

    /* the IdP's metadata, when given */

    if (md) {
        if (strncmp(md, "https://", 8) == 0) {
            doc = sso_fetch(md, sso_opt(argc, argv, "--ca-file"), &n);

            if (doc == NULL || n != 200) {
                fprintf(stderr, "entctl: %s: %s%d\n", md,
                        doc ? "HTTP status " : "cannot fetch, status ", n);
                goto done;
            }

            len = strlen(doc);

        } else {
            if (sso_read_file(md, buf, SAML_PEM_MAX - 1, &len) != 0) {
                fprintf(stderr, "%s", saml_hint);
                goto done;
            }

            doc = malloc(len + 1);
            if (doc == NULL) {
                goto done;
            }

            memcpy(doc, buf, len);
            doc[len] = '\0';
        }

        err[0] = '\0';

        if (ent_saml_idp_metadata_parse((unsigned char *) doc, len,
                                        sso_opt(argc, argv,
                                                "--idp-entity-id"),
                                        &meta, err, sizeof(err))
            != ENT_SAML_OK)
        {
            fprintf(stderr, "entctl: %s: %s\n%s", md,
                    err[0] ? err : "not usable SAML metadata", saml_hint);
            goto done;
        }

        for (i = 0; i < (int) meta.ncerts; i++) {
            if (saml_cert_add(certs, SAML_PEM_MAX, meta.certs[i]) != 0) {
                goto done;
            }
        }
    }

    /* the explicit options win */

    entity = sso_opt(argc, argv, "--entity-id");
    sso = sso_opt(argc, argv, "--sso-url");
    slo = sso_opt(argc, argv, "--slo-url");

    if (entity == NULL) {
        entity = meta.entity_id;
    }

    if (sso == NULL) {
        sso = meta.sso_url;
    }

    if (slo == NULL) {
        slo = meta.slo_url;
    }

    n = 0;

    for (i = 1; i < argc - 1; i++) {
        if (strcmp(argv[i], "--cert-file") != 0) {
            continue;
        }

        if (n++ == 0) {
            /* explicit certificates replace the metadata's */
            certs[0] = '\0';
        }

        if (sso_read_file(argv[i + 1], buf, SAML_PEM_MAX - 1, &len) != 0) {
            fprintf(stderr, "%s", saml_cert_hint);
            goto done;
        }

        buf[len] = '\0';

        if (saml_certs_check((char *) buf, argv[i + 1]) != 0
            || saml_cert_add(certs, SAML_PEM_MAX, (char *) buf) != 0)
        {
            rc = 2;
            goto done;
        }
    }

    if (certs[0] && saml_certs_check(certs, md ? md : "--cert-file") != 0) {
        rc = 2;
        goto done;
    }

    if ((sso && (strncmp(sso, "https://", 8) != 0 || strlen(sso) > 1024))
        || (slo && strcmp(slo, "none") != 0
            && (strncmp(slo, "https://", 8) != 0 || strlen(slo) > 1024)))
    {
        fprintf(stderr, "entctl: the IdP's SSO and SLO URLs must be https "
                "URLs (the HTTP-Redirect binding's Location); "
                "\"--slo-url none\" removes the SLO URL\n%s", saml_hint);
        rc = 2;
        goto done;
    }

    if (entity && (strlen(entity) > 512 || strncmp(entity, "http", 4) != 0))
    {
        fprintf(stderr, "entctl: the IdP entity ID must be an http(s) URL "
                "of at most 512 bytes (\"entityID\" in its metadata)\n");
        rc = 2;
        goto done;
    }

    tid = sso_tenant_id(conn, argv[0]);
    if (tid == NULL) {
        goto done;
    }

    params[0] = tid;
    exists = sso_exec(conn, "SELECT 1 FROM ent.identity_providers "
                      "WHERE tenant_id = $1 AND protocol = 'saml'",
                      1, params, 0);
    if (exists < 0) {
        goto done;
    }

    if (!exists && (entity == NULL || sso == NULL || certs[0] == '\0')) {
        fprintf(stderr, "entctl: a new SAML IdP needs its entity ID, SSO URL "
                "and signing certificate: --metadata FILE|URL, or "
                "--entity-id, --sso-url and --cert-file\n%s", saml_hint);
        rc = 2;
        goto done;
    }

    if (v && !nokey) {
        sealed = saml_sp_key(argc, argv, tid,
                             sso_opt(argc, argv, "--sp-cert-file"));
        if (sealed == NULL) {
            rc = 2;
            goto done;
        }
    }

    params[1] = entity;
    params[2] = sso;
    params[3] = certs[0] ? certs : NULL;
    params[4] = sso_opt(argc, argv, "--attr-email");
    params[5] = sso_opt(argc, argv, "--attr-name");
    params[6] = sso_opt(argc, argv, "--attr-groups");
    params[7] = sso_opt(argc, argv, "--domains") ? domains : NULL;
    params[8] = enforce;
    params[9] = slo;
    params[10] = sso_opt(argc, argv, "--sp-entity-id");
    params[11] = sealed;
    params[12] = NULL;
    params[13] = nif;
    params[14] = skew;
    params[15] = unsol;
    params[16] = sha1;
    params[17] = attrs;
    params[18] = nokey ? "true" : "false";

    if (sealed) {
        if (sso_read_file(sso_opt(argc, argv, "--sp-cert-file"), buf,
                          SAML_PEM_MAX - 1, &len)
            != 0)
        {
            goto done;
        }

        buf[len] = '\0';
        params[12] = (char *) buf;
    }

    /* "none": the value is removed (the SP's default, or no SLO) */

    if (exists) {
        n = sso_exec(conn,
            "UPDATE ent.identity_providers AS p SET "
            "issuer = coalesce($2, p.issuer), "
            "saml_sso_url = coalesce($3, p.saml_sso_url), "
            "saml_cert = coalesce($4, p.saml_cert), "
            "claim_email = coalesce($5, p.claim_email), "
            "claim_name = coalesce($6, p.claim_name), "
            "claim_groups = coalesce($7, p.claim_groups), "
            "allowed_domains = coalesce($8::text[], p.allowed_domains), "
            "enforce_sso = coalesce($9::boolean, p.enforce_sso), "
            "saml_slo_url = CASE WHEN $10::text IS NULL THEN p.saml_slo_url "
            "WHEN $10 = 'none' THEN NULL ELSE $10 END, "
            "saml_sp_entity_id = CASE WHEN $11::text IS NULL "
            "THEN p.saml_sp_entity_id WHEN $11 = 'none' THEN NULL "
            "ELSE $11 END, "
            "saml_sp_key_enc = CASE WHEN $19::boolean THEN NULL "
            "ELSE coalesce($12, p.saml_sp_key_enc) END, "
            "saml_sp_cert = CASE WHEN $19::boolean THEN NULL "
            "ELSE coalesce($13, p.saml_sp_cert) END, "
            "saml_name_id_format = CASE WHEN $14::text IS NULL "
            "THEN p.saml_name_id_format WHEN $14 = 'none' THEN NULL "
            "ELSE $14 END, "
            "saml_skew = CASE WHEN $15::text IS NULL THEN p.saml_skew "
            "WHEN $15 = 'none' THEN NULL ELSE $15::integer END, "
            "saml_unsolicited = coalesce($16::boolean, p.saml_unsolicited), "
            "saml_allow_sha1 = coalesce($17::boolean, p.saml_allow_sha1), "
            "claim_attrs = coalesce($18::jsonb, p.claim_attrs), "
            "enabled = true, updated_at = now() "
            "WHERE p.tenant_id = $1 AND p.protocol = 'saml'",
            19, params, 0);

    } else {
        n = sso_exec(conn,
            "INSERT INTO ent.identity_providers (tenant_id, protocol, "
            "issuer, saml_sso_url, saml_cert, claim_email, claim_name, "
            "claim_groups, allowed_domains, enforce_sso, saml_slo_url, "
            "saml_sp_entity_id, saml_sp_key_enc, saml_sp_cert, "
            "saml_name_id_format, saml_skew, saml_unsolicited, "
            "saml_allow_sha1, claim_attrs) "
            "VALUES ($1, 'saml', $2, $3, $4, coalesce($5, 'email'), "
            "coalesce($6, 'name'), coalesce($7, 'groups'), "
            "coalesce($8::text[], '{}'), coalesce($9::boolean, false), "
            "nullif($10::text, 'none'), nullif($11::text, 'none'), "
            "CASE WHEN $19::boolean THEN NULL ELSE $12 END, $13, "
            "nullif($14::text, 'none'), nullif($15::text, 'none')::integer, "
            "coalesce($16::boolean, false), coalesce($17::boolean, false), "
            "coalesce($18::jsonb, '{}'))",
            19, params, 0);
    }

    if (n != 1) {
        goto done;
    }

    printf("sso saml %s: saved\n", argv[0]);
    rc = 0;

done:

    ent_saml_idp_metadata_free(&meta);
    free(attrs);
    free(doc);
    free(tid);
    free(sealed);
    free(certs);
    free(buf);

    return rc;
}


static int
saml_onoff(int argc, char **argv, const char *name, const char **out)
{
    const char  *v;

    v = sso_opt(argc, argv, name);
    *out = NULL;

    if (v == NULL) {
        return 0;
    }

    if (strcmp(v, "on") == 0) {
        *out = "true";
        return 0;
    }

    if (strcmp(v, "off") == 0) {
        *out = "false";
        return 0;
    }

    fprintf(stderr, "entctl: %s on|off\n", name);

    return -1;
}


/* every PEM block a certificate that parses; warnings for the expired */

static int
saml_certs_check(const char *pem, const char *where)
{
    int          n, blocks;
    BIO         *bio;
    X509        *x;
    const char  *p;
    char         name[256];

    blocks = 0;

    for (p = strstr(pem, "-----BEGIN "); p; p = strstr(p + 1, "-----BEGIN "))
    {
        if (strncmp(p, "-----BEGIN CERTIFICATE-----", 27) != 0) {
            fprintf(stderr, "entctl: %s holds a PEM block that is not a "
                    "certificate (only the IdP's public certificate is "
                    "needed)\n%s", where, saml_cert_hint);
            return -1;
        }

        blocks++;
    }

    if (blocks == 0) {
        fprintf(stderr, "entctl: %s is not a PEM certificate\n%s", where,
                saml_cert_hint);
        return -1;
    }

    if (blocks > SAML_MAX_CERTS) {
        fprintf(stderr, "entctl: %s: more than %d certificates\n", where,
                SAML_MAX_CERTS);
        return -1;
    }

    bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL) {
        return -1;
    }

    for (n = 0; n < blocks; n++) {
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

        if (x == NULL) {
            break;
        }

        if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
            X509_NAME_oneline(X509_get_subject_name(x), name, sizeof(name));
            fprintf(stderr, "entctl: warning: %s: certificate %d (%s) has "
                    "expired; responses signed with it are still accepted "
                    "until it is removed, but the IdP has probably rotated "
                    "its key: download the current one\n", where, n + 1,
                    name);
        }

        X509_free(x);
    }

    BIO_free(bio);

    if (n != blocks) {
        fprintf(stderr, "entctl: %s: certificate %d is malformed (copy the "
                "whole block, BEGIN and END lines included)\n%s", where,
                n + 1, saml_cert_hint);
        return -1;
    }

    return 0;
}


static int
saml_cert_add(char *dst, size_t size, const char *pem)
{
    size_t  have, len;

    have = strlen(dst);
    len = strlen(pem);

    if (have + len + 2 > size) {
        fprintf(stderr, "entctl: the certificates are too big\n");
        return -1;
    }

    memcpy(dst + have, pem, len);
    have += len;

    if (have && dst[have - 1] != '\n') {
        dst[have++] = '\n';
    }

    dst[have] = '\0';

    return 0;
}


/*
 * The SP's private key: RSA of 2048 bits or more (or EC), matching its
 * certificate, sealed for this tenant under the ent_sso_secret_key key
 */

static char *
saml_sp_key(int argc, char **argv, const char *tid, const char *cert)
{
    int             ok, n;
    BIO            *bio;
    X509           *x;
    char           *sealed64;
    size_t          len;
    EVP_PKEY       *pk;
    const char     *keyfile, *secretfile;
    unsigned char  *sealed, aad[128], key[ENT_AEAD_KEY_LEN], pem[16384];

    keyfile = sso_opt(argc, argv, "--sp-key-file");
    secretfile = sso_opt(argc, argv, "--key-file");

    if (cert == NULL || secretfile == NULL) {
        fprintf(stderr, "entctl: --sp-key-file needs --sp-cert-file (its "
                "certificate, published in the SP metadata) and --key-file "
                "(the file of the nginx directive ent_sso_secret_key)\n");
        return NULL;
    }

    if (sso_read_file(keyfile, pem, sizeof(pem) - 1, &len) != 0) {
        return NULL;
    }

    pem[len] = '\0';
    ok = 0;
    pk = NULL;
    x = NULL;

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio) {
        pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }

    if (pk == NULL) {
        fprintf(stderr, "entctl: %s: not an unencrypted PEM private key\n",
                keyfile);
        goto failed;
    }

    if (!((EVP_PKEY_base_id(pk) == EVP_PKEY_RSA && EVP_PKEY_bits(pk) >= 2048)
          || EVP_PKEY_base_id(pk) == EVP_PKEY_EC))
    {
        fprintf(stderr, "entctl: %s: an RSA key of 2048 bits or more, or "
                "an EC key\n", keyfile);
        goto failed;
    }

    bio = BIO_new_file(cert, "r");
    if (bio) {
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }

    if (x == NULL || X509_check_private_key(x, pk) != 1) {
        fprintf(stderr, "entctl: %s is not the certificate of %s\n", cert,
                keyfile);
        goto failed;
    }

    ok = 1;

failed:

    X509_free(x);
    EVP_PKEY_free(pk);

    if (!ok || sso_secret_key(secretfile, key) != 0) {
        OPENSSL_cleanse(pem, sizeof(pem));
        return NULL;
    }

    n = snprintf((char *) aad, sizeof(aad), "saml-sp-key:%s", tid);

    sealed = malloc(len + ENT_AEAD_OVERHEAD);
    sealed64 = malloc(ent_b64url_encoded_len(len + ENT_AEAD_OVERHEAD) + 1);

    if (sealed == NULL || sealed64 == NULL
        || ent_aead_seal(key, aad, n, pem, len, sealed) < 0)
    {
        free(sealed);
        free(sealed64);
        sealed64 = NULL;

    } else {
        sealed64[ent_b64url_encode((unsigned char *) sealed64, sealed,
                                   len + ENT_AEAD_OVERHEAD)] = '\0';
        free(sealed);
    }

    OPENSSL_cleanse(pem, sizeof(pem));
    OPENSSL_cleanse(key, sizeof(key));

    return sealed64;
}
