/*
 * entctl: single sign-on administration.
 *
 *   sso oidc CODE [--issuer URL] [--client-id ID] [--key-file FILE]
 *                 [--client-secret-env VAR | --client-secret-file FILE
 *                  | --no-client-secret]
 *                 [--scopes "openid email profile"] [--auth basic|post]
 *                 [--claim-email C] [--claim-name C] [--claim-groups C]
 *                 [--domains a.com,b.com|none] [--enforce on|off]
 *                 [--trust-email on|off]
 *                 [--api-audience AUD|none] [--api-scopes "s1 s2"|none]
 *                 [--claim-map NAME=CLAIM]... [--claim-map -]
 *                 [--ca-file FILE] [--no-check]
 *   sso show CODE | sso enable CODE | sso disable CODE | sso delete CODE
 *   sso domain add CODE DOMAIN [--verified] | sso domain verify CODE DOMAIN
 *   sso domain remove CODE DOMAIN
 *   sso map-group CODE GROUP ROLE | sso unmap-group CODE GROUP ROLE
 *   sso saml ...: see saml.c
 *
 * Every command checks its whole command line first (entctl_args(): an
 * unknown option is bad usage, exit 2, and nothing is written).  Acting
 * on what does not exist (a tenant without an IdP, a domain or a mapping
 * that is not there) is refused: "no ...", exit 1.
 *
 * "sso oidc" creates the tenant's OIDC record (--issuer and --client-id
 * needed) or changes the options given: an option left out keeps its
 * stored value, as with "sso saml"; "none" (and --no-client-secret)
 * clears an optional one.  Given an issuer, it fetches the discovery
 * document and its JWK set over TLS (verified against the system CAs or
 * --ca-file) and checks them before it saves anything.  The client
 * secret is read from an environment variable or a file (never the
 * command line, which other users can see), sealed with the key of the
 * nginx directive ent_sso_secret_key (AES-256-GCM, bound to the tenant),
 * and only the sealed form is stored.
 */

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "entctl.h"
#include "ngx_ent_jwt.h"
#include "ngx_ent_sso_util.h"


#define ENT_FETCH_MAX  (256 * 1024)

#define SSO_OIDC_USAGE                                                       \
    "sso oidc CODE [--issuer URL] [--client-id ID] [--key-file FILE] "       \
    "[--client-secret-env VAR | --client-secret-file FILE | "                \
    "--no-client-secret] [--scopes S] [--auth basic|post] "                  \
    "[--claim-email C] [--claim-name C] [--claim-groups C] "                 \
    "[--domains D,D|none] [--enforce on|off] [--trust-email on|off] "        \
    "[--api-audience A|none] "                                                \
    "[--api-scopes S|none] [--claim-map NAME=CLAIM]... [--ca-file FILE] "    \
    "[--no-check]"


static int sso_flag(int argc, char **argv, const char *name);
static int sso_check(const char *issuer, const char *ca);
static int sso_oidc(PGconn *conn, int argc, char **argv);


static const entctl_opt_t  sso_no_opts[] = { { NULL, 0 } };


const char *
sso_opt(int argc, char **argv, const char *name)
{
    int  i;

    for (i = 0; i < argc - 1; i++) {
        if (strcmp(argv[i], name) == 0) {
            return argv[i + 1];
        }
    }

    return NULL;
}


static int
sso_flag(int argc, char **argv, const char *name)
{
    int  i;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return 1;
        }
    }

    return 0;
}


int
sso_exec(PGconn *conn, const char *sql, int n, const char *const *params,
    int print)
{
    int             i, j, rows;
    char           *detail;
    PGresult       *res;
    ExecStatusType  st;

    res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    st = PQresultStatus(res);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        detail = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        fprintf(stderr, "entctl: %s\n", detail ? detail : "database error");
        PQclear(res);
        return -1;
    }

    if (print) {
        for (i = 0; i < PQntuples(res); i++) {
            for (j = 0; j < PQnfields(res); j++) {
                printf("%s%s=%s", j ? "\n" : "", PQfname(res, j),
                       PQgetisnull(res, i, j) ? "" : PQgetvalue(res, i, j));
            }

            printf("\n");
        }
    }

    rows = (st == PGRES_TUPLES_OK) ? PQntuples(res)
                                   : atoi(PQcmdTuples(res));
    PQclear(res);

    return rows;
}


/*
 * Every "opt NAME=CLAIM" of the command line as a JSON object (a string
 * for the SQL), *out NULL when the option is absent; "opt -" alone gives
 * "{}" (no custom attributes).  Names: [a-z0-9-], 1 to 32 bytes, at most
 * 16; claims 1 to 256 printable bytes.
 */

int
entctl_attr_map(int argc, char **argv, const char *opt, char **out)
{
    int      i, n;
    char     name[33];
    json_t  *map;
    size_t   len;
    const char  *eq;

    *out = NULL;
    map = NULL;
    n = 0;

    for (i = 1; i < argc - 1; i++) {
        if (strcmp(argv[i], opt) != 0) {
            continue;
        }

        if (map == NULL) {
            map = json_object();
            if (map == NULL) {
                return -1;
            }
        }

        if (strcmp(argv[i + 1], "-") == 0) {
            continue;
        }

        eq = strchr(argv[i + 1], '=');
        len = eq ? (size_t) (eq - argv[i + 1]) : 0;

        if (eq == NULL || len == 0 || len >= sizeof(name)
            || strspn(argv[i + 1], "abcdefghijklmnopqrstuvwxyz0123456789-")
               != len
            || argv[i + 1][0] == '-'
            || strlen(eq + 1) == 0 || strlen(eq + 1) > 256
            || ++n > 16)
        {
            fprintf(stderr, "entctl: %s NAME=CLAIM: NAME of lowercase "
                    "letters, digits and \"-\" (at most 32, 16 names), "
                    "CLAIM of at most 256 bytes\n", opt);
            json_decref(map);
            return -1;
        }

        memcpy(name, argv[i + 1], len);
        name[len] = '\0';

        if (json_object_set_new(map, name, json_string(eq + 1)) != 0) {
            fprintf(stderr, "entctl: %s: not UTF-8\n", opt);
            json_decref(map);
            return -1;
        }
    }

    if (map) {
        *out = json_dumps(map, JSON_COMPACT);
        json_decref(map);

        if (*out == NULL) {
            return -1;
        }
    }

    return 0;
}


char *
sso_tenant_id(PGconn *conn, const char *code)
{
    char        *id;
    PGresult    *res;
    const char  *params[1];

    params[0] = code;

    res = PQexecParams(conn, "SELECT id FROM ent.tenants WHERE code = $1",
                       1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fprintf(stderr, "entctl: no tenant \"%s\"\n", code);
        PQclear(res);
        return NULL;
    }

    id = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);

    return id;
}


int
sso_read_file(const char *path, unsigned char *buf, size_t size, size_t *len)
{
    FILE  *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "entctl: %s: %s\n", path, strerror(errno));
        return -1;
    }

    *len = fread(buf, 1, size, f);

    if (ferror(f) || !feof(f)) {
        fprintf(stderr, "entctl: %s: unreadable or too big\n", path);
        fclose(f);
        return -1;
    }

    fclose(f);

    return 0;
}


/* the same rules as the nginx directive: 32 raw bytes or their base64 */

int
sso_secret_key(const char *path, unsigned char *key)
{
    size_t         len, i, n;
    unsigned char  buf[256];

    if (sso_read_file(path, buf, sizeof(buf), &len) != 0) {
        return -1;
    }

    if (len == ENT_AEAD_KEY_LEN) {
        memcpy(key, buf, ENT_AEAD_KEY_LEN);
        return 0;
    }

    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'
                   || buf[len - 1] == ' ' || buf[len - 1] == '='))
    {
        len--;
    }

    for (i = 0; i < len; i++) {
        if (buf[i] == '+') {
            buf[i] = '-';

        } else if (buf[i] == '/') {
            buf[i] = '_';
        }
    }

    if (len != ent_b64url_encoded_len(ENT_AEAD_KEY_LEN)
        || ent_b64url_decode(key, &n, buf, len) != 0
        || n != ENT_AEAD_KEY_LEN)
    {
        fprintf(stderr, "entctl: %s must hold 32 random bytes, raw or "
                "base64\n", path);
        return -1;
    }

    return 0;
}


/*
 * A blocking HTTPS GET (a command-line tool may block): the body, NUL-
 * terminated, and the status; NULL on a transport or TLS failure.
 * Certificates are verified, with the host name (or IP) of the URL.
 */

char *
sso_fetch(const char *url, const char *ca, int *status)
{
    int               fd, n, rc;
    SSL              *ssl;
    char             *host, *port, *path, *p, *body, *out;
    size_t            len;
    SSL_CTX          *sctx;
    struct timeval    tv;
    struct addrinfo   hints, *ai, *a;
    char              req[4096], hostbuf[512];

    *status = 0;

    if (strncmp(url, "https://", 8) != 0 || strlen(url) > 2048) {
        fprintf(stderr, "entctl: %s: only https URLs\n", url);
        return NULL;
    }

    snprintf(hostbuf, sizeof(hostbuf), "%s", url + 8);

    p = strchr(hostbuf, '/');
    path = p ? strdup(p) : strdup("/");

    if (p) {
        *p = '\0';
    }

    host = hostbuf;
    port = strrchr(hostbuf, ':');

    if (port && strchr(hostbuf, ']') == NULL) {
        *port++ = '\0';

    } else {
        port = "443";
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;

    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        fprintf(stderr, "entctl: cannot resolve %s\n", host);
        free(path);
        return NULL;
    }

    fd = -1;

    for (a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd == -1) {
            continue;
        }

        tv.tv_sec = 10;
        tv.tv_usec = 0;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            break;
        }

        close(fd);
        fd = -1;
    }

    freeaddrinfo(ai);

    if (fd == -1) {
        fprintf(stderr, "entctl: cannot connect to %s:%s\n", host, port);
        free(path);
        return NULL;
    }

    sctx = SSL_CTX_new(TLS_client_method());
    ssl = NULL;
    out = NULL;

    if (sctx == NULL) {
        goto done;
    }

    SSL_CTX_set_min_proto_version(sctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER, NULL);

    if ((ca ? SSL_CTX_load_verify_locations(sctx, ca, NULL)
            : SSL_CTX_set_default_verify_paths(sctx)) != 1)
    {
        fprintf(stderr, "entctl: cannot load the CA certificates\n");
        goto done;
    }

    ssl = SSL_new(sctx);
    if (ssl == NULL) {
        goto done;
    }

    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1) {
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
    }

    SSL_set_fd(ssl, fd);

    if (SSL_connect(ssl) != 1) {
        fprintf(stderr, "entctl: TLS with %s failed: %s\n", host,
                X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
        goto done;
    }

    /* Host: the URL's authority, as written */

    p = strchr(url + 8, '/');
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %.*s\r\n"
                 "Accept: application/json, application/samlmetadata+xml, "
                 "application/xml;q=0.9\r\nUser-Agent: entctl\r\n\r\n",
                 path, (int) (p ? (size_t) (p - (url + 8)) : strlen(url + 8)),
                 url + 8);

    if (SSL_write(ssl, req, n) != n) {
        goto done;
    }

    body = malloc(ENT_FETCH_MAX + 1);
    if (body == NULL) {
        goto done;
    }

    len = 0;

    for ( ;; ) {
        rc = SSL_read(ssl, body + len, ENT_FETCH_MAX - len);

        if (rc <= 0) {
            break;
        }

        len += rc;

        if (len == ENT_FETCH_MAX) {
            fprintf(stderr, "entctl: %s: a document too big\n", url);
            free(body);
            goto done;
        }
    }

    body[len] = '\0';

    if (sscanf(body, "HTTP/1.%*d %d", status) != 1) {
        free(body);
        goto done;
    }

    p = strstr(body, "\r\n\r\n");

    if (p == NULL) {
        free(body);
        goto done;
    }

    out = strdup(p + 4);
    free(body);

done:

    if (ssl) {
        SSL_free(ssl);
    }

    if (sctx) {
        SSL_CTX_free(sctx);
    }

    close(fd);
    free(path);

    return out;
}


/* discovery (OpenID Connect Discovery 1.0) and the JWK set, checked */

static int
sso_check(const char *issuer, const char *ca)
{
    int          status, ok;
    char        *doc, *keys, url[2600], err[128];
    size_t       n;
    json_t      *js, *v, *e;
    ent_jwks_t   jwks;
    json_error_t jerr;

    n = strlen(issuer);
    snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration",
             (int) (n && issuer[n - 1] == '/' ? n - 1 : n), issuer);

    doc = sso_fetch(url, ca, &status);

    if (doc == NULL || status != 200) {
        fprintf(stderr, "entctl: %s: no discovery document (status %d)\n",
                url, status);
        free(doc);
        return -1;
    }

    js = json_loads(doc, JSON_REJECT_DUPLICATES, &jerr);
    free(doc);

    if (!json_is_object(js)) {
        fprintf(stderr, "entctl: %s: not a JSON object\n", url);
        json_decref(js);
        return -1;
    }

    ok = 1;

    v = json_object_get(js, "issuer");
    if (!json_is_string(v) || strcmp(json_string_value(v), issuer) != 0) {
        fprintf(stderr, "entctl: the document names issuer \"%s\", not "
                "\"%s\"\n", json_is_string(v) ? json_string_value(v) : "",
                issuer);
        ok = 0;
    }

    if (!json_is_string(json_object_get(js, "authorization_endpoint"))
        || !json_is_string(json_object_get(js, "token_endpoint"))
        || !json_is_string(json_object_get(js, "jwks_uri")))
    {
        fprintf(stderr, "entctl: the document lacks authorization_endpoint, "
                "token_endpoint or jwks_uri\n");
        ok = 0;
    }

    v = json_object_get(js, "response_types_supported");
    if (json_is_array(v)) {
        status = 0;
        json_array_foreach(v, n, e) {
            if (json_is_string(e)
                && strcmp(json_string_value(e), "code") == 0)
            {
                status = 1;
            }
        }

        if (!status) {
            fprintf(stderr, "entctl: the provider does not offer the code "
                    "flow\n");
            ok = 0;
        }
    }

    v = json_object_get(js, "code_challenge_methods_supported");
    if (json_is_array(v)) {
        status = 0;
        json_array_foreach(v, n, e) {
            if (json_is_string(e)
                && strcmp(json_string_value(e), "S256") == 0)
            {
                status = 1;
            }
        }

        if (!status) {
            fprintf(stderr, "entctl: the provider does not offer PKCE "
                    "S256\n");
            ok = 0;
        }
    }

    if (!ok) {
        json_decref(js);
        return -1;
    }

    keys = sso_fetch(json_string_value(json_object_get(js, "jwks_uri")), ca,
                     &status);
    json_decref(js);

    if (keys == NULL || status != 200) {
        fprintf(stderr, "entctl: no JWK set (status %d)\n", status);
        free(keys);
        return -1;
    }

    memset(&jwks, 0, sizeof(jwks));

    if (ent_jwks_parse((unsigned char *) keys, strlen(keys), &jwks, err,
                       sizeof(err))
        != 0
        || jwks.nkeys == 0)
    {
        fprintf(stderr, "entctl: the JWK set has no usable signing key%s%s\n",
                jwks.nkeys ? ": " : "", jwks.nkeys ? err : "");
        ent_jwks_free(&jwks);
        free(keys);
        return -1;
    }

    printf("discovery and JWK set of %s: OK (%zu signing keys)\n", issuer,
           jwks.nkeys);

    ent_jwks_free(&jwks);
    free(keys);

    return 0;
}


static int
sso_oidc(PGconn *conn, int argc, char **argv)
{
    int                        rc, n, exists, had_secret, clear;
    char                      *tid, *sealed64, *attrs, *old_client;
    char                       domains[4096];
    size_t                     len, slen;
    PGresult                  *res;
    const char                *issuer, *client_id, *keyfile, *env, *sfile;
    const char                *v, *params[16];
    unsigned char              key[ENT_AEAD_KEY_LEN], secret[1024], aad[64];
    unsigned char             *sealed;
    static const entctl_opt_t  known[] = {
        { "--issuer", ENTCTL_OPT_VALUE },
        { "--client-id", ENTCTL_OPT_VALUE },
        { "--key-file", ENTCTL_OPT_VALUE },
        { "--client-secret-env", ENTCTL_OPT_VALUE },
        { "--client-secret-file", ENTCTL_OPT_VALUE },
        { "--no-client-secret", ENTCTL_OPT_FLAG },
        { "--scopes", ENTCTL_OPT_VALUE },
        { "--auth", ENTCTL_OPT_VALUE },
        { "--claim-email", ENTCTL_OPT_VALUE },
        { "--claim-name", ENTCTL_OPT_VALUE },
        { "--claim-groups", ENTCTL_OPT_VALUE },
        { "--domains", ENTCTL_OPT_VALUE },
        { "--enforce", ENTCTL_OPT_VALUE },
        { "--trust-email", ENTCTL_OPT_VALUE },
        { "--api-audience", ENTCTL_OPT_VALUE },
        { "--api-scopes", ENTCTL_OPT_VALUE },
        { "--claim-map", ENTCTL_OPT_MULTI },
        { "--ca-file", ENTCTL_OPT_VALUE },
        { "--no-check", ENTCTL_OPT_FLAG },
        { NULL, 0 }
    };

    if (entctl_args(argc, argv, 1, 1, known, SSO_OIDC_USAGE) < 0) {
        return 2;
    }

    /* the whole command line first: nothing is read or written before */

    issuer = sso_opt(argc, argv, "--issuer");
    client_id = sso_opt(argc, argv, "--client-id");
    keyfile = sso_opt(argc, argv, "--key-file");
    env = sso_opt(argc, argv, "--client-secret-env");
    sfile = sso_opt(argc, argv, "--client-secret-file");
    clear = sso_flag(argc, argv, "--no-client-secret");

    if ((env != NULL) + (sfile != NULL) + clear > 1) {
        fprintf(stderr, "entctl: one of --client-secret-env, "
                "--client-secret-file and --no-client-secret\n");
        return 2;
    }

    if ((env || sfile) && keyfile == NULL) {
        fprintf(stderr, "entctl: a client secret needs --key-file (the file "
                "of the nginx directive ent_sso_secret_key), to seal it\n");
        return 2;
    }

    if (issuer && (strncmp(issuer, "https://", 8) != 0
                   || strlen(issuer) > 512))
    {
        fprintf(stderr, "entctl: the issuer must be an https URL\n");
        return 2;
    }

    v = sso_opt(argc, argv, "--auth");
    if (v && strcmp(v, "basic") != 0 && strcmp(v, "post") != 0) {
        fprintf(stderr, "entctl: --auth basic|post\n");
        return 2;
    }

    v = sso_opt(argc, argv, "--enforce");
    if (v && strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
        fprintf(stderr, "entctl: --enforce on|off\n");
        return 2;
    }

    v = sso_opt(argc, argv, "--trust-email");
    if (v && strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
        fprintf(stderr, "entctl: --trust-email on|off\n");
        return 2;
    }

    if (sso_domains(sso_opt(argc, argv, "--domains"), domains,
                    sizeof(domains))
        != 0)
    {
        return 2;
    }

    slen = 0;

    if (env) {
        v = getenv(env);
        if (v == NULL || *v == '\0' || strlen(v) >= sizeof(secret)) {
            fprintf(stderr, "entctl: $%s holds no secret\n", env);
            return 2;
        }

        slen = strlen(v);
        memcpy(secret, v, slen);
    }

    if (entctl_attr_map(argc, argv, "--claim-map", &attrs) != 0) {
        OPENSSL_cleanse(secret, sizeof(secret));
        return 2;
    }

    tid = NULL;
    sealed64 = NULL;
    old_client = NULL;
    res = NULL;
    rc = 1;

    tid = sso_tenant_id(conn, argv[0]);
    if (tid == NULL) {
        goto done;
    }

    /* an option not given keeps the stored value */

    params[0] = tid;
    res = PQexecParams(conn, "SELECT client_id, client_secret_enc IS NOT NULL "
                       "FROM ent.identity_providers "
                       "WHERE tenant_id = $1 AND protocol = 'oidc'",
                       1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "entctl: %s", PQresultErrorMessage(res));
        goto done;
    }

    exists = (PQntuples(res) == 1);
    had_secret = exists && strcmp(PQgetvalue(res, 0, 1), "t") == 0;

    if (exists && !PQgetisnull(res, 0, 0)) {
        old_client = strdup(PQgetvalue(res, 0, 0));
    }

    if (!exists && (issuer == NULL || client_id == NULL)) {
        fprintf(stderr, "entctl: a new OIDC IdP needs --issuer and "
                "--client-id\nusage: entctl " SSO_OIDC_USAGE "\n");
        rc = 2;
        goto done;
    }

    if (issuer && !sso_flag(argc, argv, "--no-check")
        && sso_check(issuer, sso_opt(argc, argv, "--ca-file")) != 0)
    {
        goto done;
    }

    if (sfile && sso_read_file(sfile, secret, sizeof(secret) - 1, &slen)
                 != 0)
    {
        goto done;
    }

    if (env || sfile) {
        while (slen && (secret[slen - 1] == '\n' || secret[slen - 1] == '\r'))
        {
            slen--;
        }

        if (sso_secret_key(keyfile, key) != 0) {
            goto done;
        }

        n = snprintf((char *) aad, sizeof(aad), "client-secret:%s", tid);

        sealed = malloc(slen + ENT_AEAD_OVERHEAD);
        sealed64 = malloc(ent_b64url_encoded_len(slen + ENT_AEAD_OVERHEAD)
                          + 1);

        if (sealed == NULL || sealed64 == NULL
            || ent_aead_seal(key, aad, n, secret, slen, sealed) < 0)
        {
            free(sealed);
            goto done;
        }

        len = ent_b64url_encode((unsigned char *) sealed64, sealed,
                                slen + ENT_AEAD_OVERHEAD);
        sealed64[len] = '\0';

        free(sealed);

    } else if (had_secret && !clear && client_id && old_client
               && strcmp(client_id, old_client) != 0)
    {
        fprintf(stderr, "entctl: warning: the client id changes and the "
                "stored client secret is kept: give the new client's "
                "secret (--client-secret-env or --client-secret-file), or "
                "--no-client-secret\n");
    }

    v = sso_opt(argc, argv, "--auth");

    params[0] = tid;
    params[1] = issuer;
    params[2] = client_id;
    params[3] = sealed64;
    params[4] = v == NULL ? NULL
                : strcmp(v, "post") == 0 ? "client_secret_post"
                                         : "client_secret_basic";
    params[5] = sso_opt(argc, argv, "--scopes");
    params[6] = sso_opt(argc, argv, "--claim-email");
    params[7] = sso_opt(argc, argv, "--claim-name");
    params[8] = sso_opt(argc, argv, "--claim-groups");
    params[9] = sso_opt(argc, argv, "--domains") ? domains : NULL;
    v = sso_opt(argc, argv, "--enforce");
    params[10] = v == NULL ? NULL : strcmp(v, "on") == 0 ? "true" : "false";
    params[11] = sso_opt(argc, argv, "--api-audience");
    params[12] = sso_opt(argc, argv, "--api-scopes");
    params[13] = attrs;
    params[14] = clear ? "true" : "false";
    v = sso_opt(argc, argv, "--trust-email");
    params[15] = v == NULL ? NULL : strcmp(v, "on") == 0 ? "true" : "false";

    if (exists) {
        n = sso_exec(conn,
            "UPDATE ent.identity_providers AS p SET "
            "issuer = coalesce($2, p.issuer), "
            "client_id = coalesce($3, p.client_id), "
            "client_secret_enc = CASE WHEN $15::boolean THEN NULL "
            "ELSE coalesce($4, p.client_secret_enc) END, "
            "token_auth = coalesce($5, p.token_auth), "
            "scopes = coalesce($6, p.scopes), "
            "claim_email = coalesce($7, p.claim_email), "
            "claim_name = coalesce($8, p.claim_name), "
            "claim_groups = coalesce($9, p.claim_groups), "
            "allowed_domains = coalesce($10::text[], p.allowed_domains), "
            "enforce_sso = coalesce($11::boolean, p.enforce_sso), "
            "api_audience = CASE WHEN $12::text IS NULL THEN p.api_audience "
            "WHEN $12 = 'none' THEN NULL ELSE $12 END, "
            "api_scopes = CASE WHEN $13::text IS NULL THEN p.api_scopes "
            "WHEN $13 = 'none' THEN NULL ELSE $13 END, "
            "claim_attrs = coalesce($14::jsonb, p.claim_attrs), "
            "trust_email = coalesce($16::boolean, p.trust_email), "
            "enabled = true, updated_at = now() "
            "WHERE p.tenant_id = $1 AND p.protocol = 'oidc'",
            16, params, 0);

    } else {
        n = sso_exec(conn,
            "INSERT INTO ent.identity_providers (tenant_id, protocol, "
            "issuer, client_id, client_secret_enc, token_auth, scopes, "
            "claim_email, claim_name, claim_groups, allowed_domains, "
            "enforce_sso, api_audience, api_scopes, claim_attrs, "
            "trust_email) "
            "VALUES ($1, 'oidc', $2, $3, "
            "CASE WHEN $15::boolean THEN NULL ELSE $4 END, "
            "coalesce($5, 'client_secret_basic'), "
            "coalesce($6, 'openid email profile'), coalesce($7, 'email'), "
            "coalesce($8, 'name'), coalesce($9, 'groups'), "
            "coalesce($10::text[], '{}'), coalesce($11::boolean, false), "
            "nullif($12::text, 'none'), nullif($13::text, 'none'), "
            "coalesce($14::jsonb, '{}'), coalesce($16::boolean, false))",
            16, params, 0);
    }

    if (n != 1) {
        goto done;
    }

    printf("sso oidc %s: saved\n", argv[0]);
    rc = 0;

done:

    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(key, sizeof(key));
    PQclear(res);
    free(tid);
    free(sealed64);
    free(attrs);
    free(old_client);

    return rc;
}


/*
 * --domains as a PostgreSQL array literal of checked names: "a.com,b.com"
 * gives "{a.com,b.com}", "none" (or "") gives "{}"; 0, or -1 after a
 * message
 */

int
sso_domains(const char *v, char *out, size_t size)
{
    char  *d;

    d = out;
    *d++ = '{';

    if (v && strcmp(v, "none") != 0) {
        if (strlen(v) > size - 3) {
            fprintf(stderr, "entctl: --domains: at most %zu bytes\n",
                    size - 3);
            return -1;
        }

        for ( ; *v; v++) {
            if (!((*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9')
                  || *v == '.' || *v == '-' || *v == ','))
            {
                fprintf(stderr, "entctl: --domains: lowercase names "
                        "separated by commas, or \"none\"\n");
                return -1;
            }

            *d++ = *v;
        }
    }

    *d++ = '}';
    *d = '\0';

    return 0;
}


int
entctl_sso(PGconn *conn, int argc, char **argv)
{
    int                        rc, npos;
    char                      *tid;
    char                       usage[64];
    const char                *verb, *params[4];
    static const entctl_opt_t  verified[] = {
        { "--verified", ENTCTL_OPT_FLAG },
        { NULL, 0 }
    };

    if (argc < 1) {
        goto usage;
    }

    verb = argv[0];

    if (strcmp(verb, "oidc") == 0) {
        return sso_oidc(conn, argc - 1, argv + 1);
    }

    if (strcmp(verb, "saml") == 0) {
        return entctl_sso_saml(conn, argc - 1, argv + 1);
    }

    if (strcmp(verb, "domain") == 0) {
        if (argc < 2 || (strcmp(argv[1], "add") != 0
                         && strcmp(argv[1], "verify") != 0
                         && strcmp(argv[1], "remove") != 0))
        {
            fprintf(stderr, "usage: entctl sso domain add CODE DOMAIN "
                    "[--verified] | sso domain verify|remove CODE DOMAIN\n");
            return 2;
        }

        snprintf(usage, sizeof(usage), "sso domain %s CODE DOMAIN%s",
                 argv[1], argv[1][0] == 'a' ? " [--verified]" : "");

        if (entctl_args(argc - 2, argv + 2, 2, 2,
                        argv[1][0] == 'a' ? verified : sso_no_opts, usage)
            < 0)
        {
            return 2;
        }

        tid = sso_tenant_id(conn, argv[2]);
        if (tid == NULL) {
            return 1;
        }

        params[0] = tid;
        params[1] = argv[3];

        if (argv[1][0] == 'a') {
            params[2] = sso_flag(argc, argv, "--verified") ? "t" : "f";
            rc = sso_exec(conn,
                "INSERT INTO ent.email_domains (tenant_id, domain, "
                "verified_at) VALUES ($1, lower($2), CASE WHEN $3 THEN "
                "now() END) ON CONFLICT (tenant_id, domain) DO UPDATE "
                "SET verified_at = coalesce(ent.email_domains."
                "verified_at, EXCLUDED.verified_at)", 3, params, 0);

        } else if (argv[1][0] == 'v') {
            rc = sso_exec(conn,
                "UPDATE ent.email_domains SET verified_at = now() "
                "WHERE tenant_id = $1 AND domain = lower($2)", 2,
                params, 0);

        } else {
            rc = sso_exec(conn,
                "DELETE FROM ent.email_domains WHERE tenant_id = $1 "
                "AND domain = lower($2)", 2, params, 0);
        }

        free(tid);

        if (rc == 0) {
            fprintf(stderr, "entctl: no email domain \"%s\" in tenant "
                    "\"%s\"\n", argv[3], argv[2]);
        }

        return rc > 0 ? 0 : 1;
    }

    if (strcmp(verb, "map-group") == 0 || strcmp(verb, "unmap-group") == 0) {
        snprintf(usage, sizeof(usage), "sso %s CODE GROUP ROLE", verb);

        if (entctl_args(argc - 1, argv + 1, 3, 3, sso_no_opts, usage) < 0) {
            return 2;
        }

        tid = sso_tenant_id(conn, argv[1]);
        if (tid == NULL) {
            return 1;
        }

        params[0] = tid;
        params[1] = argv[2];
        params[2] = argv[3];

        /* mapping again is done already; unmapping what is not, refused */

        rc = sso_exec(conn, verb[0] == 'm'
             ? "INSERT INTO ent.group_role_mappings (tenant_id, "
               "idp_group, role) VALUES ($1, $2, $3) ON CONFLICT DO "
               "NOTHING"
             : "DELETE FROM ent.group_role_mappings WHERE tenant_id = "
               "$1 AND idp_group = $2 AND role = $3", 3, params, 0);

        free(tid);

        if (rc == 0 && verb[0] == 'u') {
            fprintf(stderr, "entctl: no mapping of group \"%s\" to role "
                    "\"%s\" in tenant \"%s\"\n", argv[2], argv[3], argv[1]);
            return 1;
        }

        return rc < 0 ? 1 : 0;
    }

    if (strcmp(verb, "show") != 0 && strcmp(verb, "enable") != 0
        && strcmp(verb, "disable") != 0 && strcmp(verb, "delete") != 0)
    {
        goto usage;
    }

    snprintf(usage, sizeof(usage), "sso %s CODE", verb);

    npos = entctl_args(argc - 1, argv + 1, 1, 1, sso_no_opts, usage);
    if (npos < 0) {
        return 2;
    }

    tid = sso_tenant_id(conn, argv[1]);
    if (tid == NULL) {
        return 1;
    }

    params[0] = tid;

    if (strcmp(verb, "show") == 0) {
        rc = sso_exec(conn,
            "SELECT protocol, enabled, issuer, client_id, "
            "client_secret_enc IS NOT NULL AS has_secret, token_auth, "
            "scopes, claim_email, claim_name, claim_groups, "
            "array_to_string(allowed_domains, ',') AS allowed_domains, "
            "(SELECT domains FROM ent.sso_idp(tenant_id)) AS "
            "verified_domains, enforce_sso, api_audience, api_scopes, "
            "saml_sso_url, saml_slo_url, "
            "(length(saml_cert) - length(replace(saml_cert, "
            "'BEGIN CERTIFICATE', ''))) / 17 AS saml_certs, "
            "saml_sp_entity_id, saml_sp_key_enc IS NOT NULL AS saml_sp_key, "
            "saml_name_id_format, saml_skew, saml_unsolicited, "
            "saml_allow_sha1, claim_attrs, trust_email "
            "FROM ent.identity_providers WHERE tenant_id = $1 "
            "ORDER BY protocol", 1, params, 1);

    } else if (strcmp(verb, "enable") == 0
               || strcmp(verb, "disable") == 0)
    {
        params[1] = verb[0] == 'e' ? "true" : "false";
        rc = sso_exec(conn,
            "UPDATE ent.identity_providers SET enabled = $2::boolean "
            "WHERE tenant_id = $1", 2, params, 0);

    } else {
        rc = sso_exec(conn,
            "DELETE FROM ent.identity_providers WHERE tenant_id = $1", 1,
            params, 0);
    }

    free(tid);

    if (rc == 0) {
        fprintf(stderr, "entctl: no identity provider in tenant \"%s\" "
                "(see \"entctl sso oidc\" and \"entctl sso saml\")\n",
                argv[1]);
        return 1;
    }

    return rc < 0 ? 1 : 0;

usage:

    fprintf(stderr, "usage: entctl sso oidc CODE ... | sso saml CODE ... | "
            "sso show|enable|disable|delete CODE | "
            "sso domain add CODE DOMAIN [--verified] | "
            "sso domain verify|remove CODE DOMAIN | "
            "sso map-group|unmap-group CODE GROUP ROLE "
            "(see entctl --help)\n");
    return 2;
}
