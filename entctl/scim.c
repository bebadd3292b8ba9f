/*
 * entctl: SCIM tokens of a tenant.
 *
 *   scim-token create CODE --name NAME [--expires-days N]
 *   scim-token list CODE
 *   scim-token revoke CODE TOKEN_ID
 *
 * A token is "ent_scim_" and 32 random bytes (base64url), printed once on
 * stdout; only its SHA-256 is stored.  The IdP sends it as
 * "Authorization: Bearer <token>" to https://<tenant host>/scim/v2.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "entctl.h"
#include "ngx_ent_jwt.h"


static int scim_token_create(PGconn *conn, int argc, char **argv);


static const entctl_opt_t  scim_no_opts[] = { { NULL, 0 } };


int
entctl_scim_token(PGconn *conn, int argc, char **argv)
{
    int                        rc;
    char                      *tid;
    const char                *params[2];
    static const entctl_opt_t  known[] = {
        { "--name", ENTCTL_OPT_VALUE },
        { "--expires-days", ENTCTL_OPT_VALUE },
        { NULL, 0 }
    };

    if (argc >= 1 && strcmp(argv[0], "create") == 0) {
        if (entctl_args(argc - 1, argv + 1, 1, 1, known,
                        "scim-token create CODE --name NAME "
                        "[--expires-days N]") < 0)
        {
            return 2;
        }

        return scim_token_create(conn, argc - 1, argv + 1);
    }

    if (argc >= 1 && strcmp(argv[0], "list") == 0) {
        if (entctl_args(argc - 1, argv + 1, 1, 1, scim_no_opts,
                        "scim-token list CODE") < 0)
        {
            return 2;
        }

        tid = sso_tenant_id(conn, argv[1]);
        if (tid == NULL) {
            return 1;
        }

        params[0] = tid;
        rc = sso_exec(conn,
            "SELECT id, name, created_at, expires_at, revoked_at, "
            "last_used_at, CASE WHEN revoked_at IS NOT NULL THEN 'revoked' "
            "WHEN expires_at IS NOT NULL AND expires_at <= now() "
            "THEN 'expired' ELSE 'active' END AS state "
            "FROM ent.scim_tokens WHERE tenant_id = $1 ORDER BY created_at",
            1, params, 1);
        free(tid);

        return rc < 0 ? 1 : 0;
    }

    if (argc >= 1 && strcmp(argv[0], "revoke") == 0) {
        if (entctl_args(argc - 1, argv + 1, 2, 2, scim_no_opts,
                        "scim-token revoke CODE TOKEN_ID") < 0)
        {
            return 2;
        }

        if (strspn(argv[2], "0123456789abcdef-") != strlen(argv[2])
            || strlen(argv[2]) != 36)
        {
            fprintf(stderr, "entctl: %s is not a token id (see "
                    "\"scim-token list\")\n", argv[2]);
            return 2;
        }

        tid = sso_tenant_id(conn, argv[1]);
        if (tid == NULL) {
            return 1;
        }

        params[0] = tid;
        params[1] = argv[2];

        rc = sso_exec(conn,
            "UPDATE ent.scim_tokens SET revoked_at = now() "
            "WHERE tenant_id = $1 AND id = $2::uuid AND revoked_at IS NULL",
            2, params, 0);
        free(tid);

        if (rc < 0) {
            return 1;
        }

        if (rc == 0) {
            fprintf(stderr, "entctl: no such active token\n");
            return 1;
        }

        printf("scim-token %s: revoked\n", argv[2]);
        return 0;
    }

    fprintf(stderr, "usage: entctl scim-token create CODE --name NAME "
            "[--expires-days N] | scim-token list CODE | "
            "scim-token revoke CODE TOKEN_ID\n");

    return 2;
}


static int
scim_token_create(PGconn *conn, int argc, char **argv)
{
    int             rc, i;
    char           *tid, token[80], hex[2 * SHA256_DIGEST_LENGTH + 3];
    size_t          n;
    PGresult       *res;
    const char     *name, *days, *params[4];
    unsigned char   raw[32], md[SHA256_DIGEST_LENGTH];

    name = sso_opt(argc, argv, "--name");
    days = sso_opt(argc, argv, "--expires-days");

    if (name == NULL || strlen(name) == 0 || strlen(name) > 128
        || (days && (strspn(days, "0123456789") != strlen(days)
                     || atoi(days) < 1 || atoi(days) > 3650)))
    {
        fprintf(stderr, "entctl: scim-token create CODE --name NAME "
                "[--expires-days 1..3650]\n");
        return 2;
    }

    tid = sso_tenant_id(conn, argv[0]);
    if (tid == NULL) {
        return 1;
    }

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        free(tid);
        return 1;
    }

    memcpy(token, "ent_scim_", 9);
    n = ent_b64url_encode((unsigned char *) token + 9, raw, sizeof(raw));
    token[9 + n] = '\0';

    SHA256((unsigned char *) token, 9 + n, md);

    hex[0] = '\\';
    hex[1] = 'x';

    for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        snprintf(hex + 2 + 2 * i, 3, "%02x", md[i]);
    }

    params[0] = tid;
    params[1] = name;
    params[2] = hex;
    params[3] = days;

    res = PQexecParams(conn,
        "INSERT INTO ent.scim_tokens (tenant_id, name, token_sha256, "
        "expires_at) VALUES ($1, $2, $3::bytea, "
        "now() + make_interval(days => $4::integer)) RETURNING id",
        4, NULL, params, NULL, NULL, 0);

    rc = 1;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        fprintf(stderr, "scim-token %s: created (id %s); the token is shown "
                "once:\n", argv[0], PQgetvalue(res, 0, 0));
        printf("%s\n", token);
        rc = 0;

    } else {
        fprintf(stderr, "entctl: %s", PQerrorMessage(conn));
    }

    PQclear(res);
    free(tid);
    OPENSSL_cleanse(token, sizeof(token));
    OPENSSL_cleanse(raw, sizeof(raw));

    return rc;
}


/*
 * user erase CODE USER: USER is the user's id, email or SCIM userName in
 * that tenant; prints the id erased
 */

int
entctl_user(PGconn *conn, int argc, char **argv)
{
    int          rc;
    char        *tid;
    PGresult    *res;
    const char  *params[2], *outcome;

    if (argc < 1 || strcmp(argv[0], "erase") != 0) {
        fprintf(stderr, "usage: entctl user erase CODE USER (its id, email "
                "or SCIM userName)\n");
        return 2;
    }

    if (entctl_args(argc - 1, argv + 1, 2, 2, scim_no_opts,
                    "user erase CODE USER (its id, email or SCIM "
                    "userName)") < 0)
    {
        return 2;
    }

    tid = sso_tenant_id(conn, argv[1]);
    if (tid == NULL) {
        return 1;
    }

    params[0] = tid;
    params[1] = argv[2];

    res = PQexecParams(conn,
                       "SELECT user_id, outcome FROM ent.user_erase($1, $2)",
                       2, NULL, params, NULL, NULL, 0);
    free(tid);

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fprintf(stderr, "entctl: %s", PQerrorMessage(conn));
        PQclear(res);
        return 1;
    }

    outcome = PQgetvalue(res, 0, 1);
    rc = 0;

    if (strcmp(outcome, "not_found") == 0) {
        fprintf(stderr, "entctl: no user \"%s\" in %s\n", argv[2], argv[1]);
        rc = 1;

    } else if (strcmp(outcome, "already_erased") == 0) {
        printf("user erase %s %s: erased already\n", argv[1],
               PQgetisnull(res, 0, 0) ? argv[2] : PQgetvalue(res, 0, 0));

    } else {
        printf("user erase %s %s: erased\n", argv[1], PQgetvalue(res, 0, 0));
    }

    PQclear(res);

    return rc;
}
