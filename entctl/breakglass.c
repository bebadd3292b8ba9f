/*
 * entctl: platform admins and break-glass grants (the schema:
 * sql/009_authz.sql).
 *
 *   platform-admin add EMAIL [--name N] | platform-admin remove EMAIL
 *   platform-admin list
 *   breakglass request CODE --admin EMAIL --reason R --justification J
 *                           [--role ROLE] [--minutes M]
 *   breakglass approve GRANT --admin EMAIL
 *   breakglass revoke GRANT --admin EMAIL
 *   breakglass link GRANT --admin EMAIL --key-file F --host HOST[:PORT]
 *   breakglass list [CODE] | breakglass set-max MINUTES
 *
 * Exit status: 0 done, 1 refused by the data (an unknown tenant, role,
 * user or grant, a rule of break-glass) or a database error, 2 bad usage.
 * Statements that belong together run in one transaction; the triggers of
 * the schema flush the nodes' "authz" cache.  Every break-glass action is
 * recorded in ent.events.
 *
 * A break-glass sign-in link carries a token sealed with the key of the
 * nginx directive ent_sso_secret_key (AES-256-GCM, bound to the tenant
 * with the AAD "breakglass:<tenant id>"); it is printed once and never
 * stored or logged.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "entctl.h"
#include "ngx_ent_jwt.h"
#include "ngx_ent_sso_util.h"


#define AUTHZ_LINK_SECONDS  300
#define AUTHZ_NONCE_BYTES   16

/* the state of a grant, in SQL (g is ent.breakglass_grants) */
#define AUTHZ_STATE                                                          \
    "CASE WHEN g.revoked_at IS NOT NULL THEN 'revoked' "                     \
    "WHEN g.approved_at IS NULL THEN 'requested' "                           \
    "WHEN g.expires_at > now() THEN 'active' ELSE 'expired' END"

/* the columns of authz_grant() */
#define AUTHZ_G_TENANT      0
#define AUTHZ_G_ADMIN       1
#define AUTHZ_G_STATE       2
#define AUTHZ_G_EMAIL       3
#define AUTHZ_G_MINUTES     4
#define AUTHZ_G_APPROVER    5


static int authz_uuid_ok(const char *s);
static void authz_uuid_lower(char *s);
static int authz_email_ok(const char *s);
static int authz_host_ok(const char *host);
static char *authz_admin(PGconn *conn, const char *email);
static int authz_max_minutes(PGconn *conn);
static PGresult *authz_grant(PGconn *conn, const char *id);
static int authz_event(PGconn *conn, const char *grant, const char *actor,
    const char *reason, const char *host);
static int authz_admin_add(PGconn *conn, int argc, char **argv);
static int authz_admin_remove(PGconn *conn, const char *email);
static int authz_bg_request(PGconn *conn, int argc, char **argv);
static int authz_bg_decide(PGconn *conn, int argc, char **argv,
    int approve);
static int authz_bg_link(PGconn *conn, int argc, char **argv);


static const char *const  authz_no_opts[] = { NULL };


/* the edge reads a grant id in its canonical, lowercase form */

static void
authz_uuid_lower(char *s)
{
    for ( /* void */ ; *s; s++) {
        *s = (char) tolower((unsigned char) *s);
    }
}


static int
authz_uuid_ok(const char *s)
{
    size_t  i;

    if (strlen(s) != 36) {
        return 0;
    }

    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }

        } else if (strchr("0123456789abcdefABCDEF", s[i]) == NULL) {
            return 0;
        }
    }

    return 1;
}


/* "local@domain", printable, no spaces, at most 320 bytes */

static int
authz_email_ok(const char *s)
{
    size_t       n;
    const char  *at, *p;

    n = strlen(s);
    at = strchr(s, '@');

    if (n > 320 || at == NULL || at == s || at[1] == '\0'
        || strchr(at + 1, '@') != NULL)
    {
        return 0;
    }

    for (p = s; *p; p++) {
        if ((unsigned char) *p <= 0x20 || (unsigned char) *p == 0x7f) {
            return 0;
        }
    }

    return 1;
}


/* a host name or IPv4 address with an optional ":port", nothing else */

static int
authz_host_ok(const char *host)
{
    size_t              n;
    const char         *colon;
    static const char   chars[] = "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";

    colon = strchr(host, ':');
    n = colon ? (size_t) (colon - host) : strlen(host);

    if (n == 0 || n > 253 || strspn(host, chars) != n
        || host[0] == '.' || host[0] == '-' || host[n - 1] == '.'
        || host[n - 1] == '-')
    {
        return 0;
    }

    return colon == NULL || entctl_authz_number(colon + 1, 1, 65535) > 0;
}


/* the user id of the active platform admin with this email, or NULL */

static char *
authz_admin(PGconn *conn, const char *email)
{
    char        *id;
    PGresult    *res;
    const char  *params[1];

    params[0] = email;

    res = entctl_authz_query(conn,
        "SELECT p.user_id, u.status FROM ent.platform_admins p "
        "JOIN ent.users u ON u.id = p.user_id "
        "WHERE lower(u.email) = lower($1)", 1, params);

    if (res == NULL) {
        return NULL;
    }

    id = NULL;

    if (PQntuples(res) == 0) {
        fprintf(stderr, "entctl: \"%s\" is not a platform admin (see "
                "\"entctl platform-admin list\")\n", email);

    } else if (PQntuples(res) > 1) {
        fprintf(stderr, "entctl: several platform admins have the email "
                "\"%s\"\n", email);

    } else if (strcmp(PQgetvalue(res, 0, 1), "active") != 0) {
        fprintf(stderr, "entctl: the user of platform admin \"%s\" is %s\n",
                email, PQgetvalue(res, 0, 1));

    } else {
        id = strdup(PQgetvalue(res, 0, 0));
    }

    PQclear(res);

    return id;
}


/* the setting breakglass_max_minutes (60 when absent), -1 on error */

static int
authz_max_minutes(PGconn *conn)
{
    int        max;
    PGresult  *res;

    res = entctl_authz_query(conn,
        "SELECT coalesce((SELECT value FROM ent.settings "
        "WHERE name = 'breakglass_max_minutes' "
        "AND value ~ '^[0-9]{1,4}$'), '60')", 0, NULL);

    if (res == NULL) {
        return -1;
    }

    max = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);

    return max;
}


/* a grant (the AUTHZ_G_* columns), or NULL after a message */

static PGresult *
authz_grant(PGconn *conn, const char *id)
{
    PGresult    *res;
    const char  *params[1];

    if (!authz_uuid_ok(id)) {
        fprintf(stderr, "entctl: \"%s\" is not a grant id (a uuid, as "
                "\"breakglass request\" and \"breakglass list\" print "
                "it)\n", id);
        return NULL;
    }

    params[0] = id;

    res = entctl_authz_query(conn,
        "SELECT g.tenant_id, g.admin_id, " AUTHZ_STATE ", a.email, "
        "g.minutes, coalesce(ap.email, '') "
        "FROM ent.breakglass_grants g "
        "JOIN ent.users a ON a.id = g.admin_id "
        "LEFT JOIN ent.users ap ON ap.id = g.approved_by "
        "WHERE g.id = $1", 1, params);

    if (res == NULL) {
        return NULL;
    }

    if (PQntuples(res) != 1) {
        fprintf(stderr, "entctl: no break-glass grant \"%s\"\n", id);
        PQclear(res);
        return NULL;
    }

    return res;
}


/*
 * The ent.events row of a break-glass action: kind "breakglass", outcome
 * "info", the grant's tenant, the acting admin as the user, and the grant
 * id and the admins' emails in detail.
 */

static int
authz_event(PGconn *conn, const char *grant, const char *actor,
    const char *reason, const char *host)
{
    const char  *params[4];

    params[0] = grant;
    params[1] = actor;
    params[2] = reason;
    params[3] = host;

    return sso_exec(conn,
        "SELECT ent.event(g.tenant_id::text, $2::text, 'breakglass', 'info', "
        "$3, NULL, jsonb_strip_nulls(jsonb_build_object('grant', g.id, "
        "'tenant', t.code, 'role', g.role, 'minutes', g.minutes, "
        "'admin', a.email, 'by', b.email, 'approved_by', ap.email, "
        "'revoked_by', rv.email, 'host', $4::text))::text) "
        "FROM ent.breakglass_grants g "
        "JOIN ent.tenants t ON t.id = g.tenant_id "
        "JOIN ent.users a ON a.id = g.admin_id "
        "JOIN ent.users b ON b.id = $2::uuid "
        "LEFT JOIN ent.users ap ON ap.id = g.approved_by "
        "LEFT JOIN ent.users rv ON rv.id = g.revoked_by "
        "WHERE g.id = $1", 4, params, 0) == 1 ? 0 : -1;
}


int
entctl_platform_admin(PGconn *conn, int argc, char **argv)
{
    PGresult  *res;

    if (argc >= 1 && strcmp(argv[0], "add") == 0) {
        return authz_admin_add(conn, argc - 1, argv + 1);
    }

    if (argc >= 1 && strcmp(argv[0], "remove") == 0) {
        if (entctl_authz_args(argc - 1, argv + 1, 1, 1, authz_no_opts,
                              "platform-admin remove EMAIL") < 0)
        {
            return 2;
        }

        return authz_admin_remove(conn, argv[1]);
    }

    if (argc >= 1 && strcmp(argv[0], "list") == 0) {
        if (entctl_authz_args(argc - 1, argv + 1, 0, 0, authz_no_opts,
                              "platform-admin list") < 0)
        {
            return 2;
        }

        res = entctl_authz_query(conn,
            "SELECT coalesce(u.email, '') AS email, u.id AS user_id, "
            "u.status, to_char(p.created_at AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS added, "
            "coalesce(u.name, '') AS name "
            "FROM ent.platform_admins p JOIN ent.users u ON u.id = p.user_id "
            "ORDER BY lower(u.email), u.id", 0, NULL);

        if (res == NULL) {
            return 1;
        }

        entctl_authz_table(res);
        PQclear(res);

        return 0;
    }

    fprintf(stderr, "usage: entctl platform-admin add EMAIL [--name N] | "
            "platform-admin remove EMAIL | platform-admin list\n");
    return 2;
}


static int
authz_admin_add(PGconn *conn, int argc, char **argv)
{
    int                 npos, n;
    char               *uid;
    PGresult           *res;
    const char         *params[2];
    static const char  *known[] = { "--name", NULL };

    npos = entctl_authz_args(argc, argv, 1, 1, known,
                             "platform-admin add EMAIL [--name N]");
    if (npos < 0) {
        return 2;
    }

    params[0] = argv[0];
    params[1] = entctl_authz_opt(argc, argv, npos, "--name");

    if (!authz_email_ok(argv[0])) {
        fprintf(stderr, "entctl: invalid email \"%s\"\n", argv[0]);
        return 2;
    }

    if (params[1] && (*params[1] == '\0' || strlen(params[1]) > 256)) {
        fprintf(stderr, "entctl: --name: 1 to 256 bytes\n");
        return 2;
    }

    if (sso_exec(conn, "BEGIN", 0, NULL, 0) < 0) {
        return 1;
    }

    /* two "add" of one new email at once make one user */

    if (sso_exec(conn, "SELECT pg_advisory_xact_lock(hashtext('ent.users:' "
                       "|| lower($1)))", 1, params, 0) != 1)
    {
        entctl_authz_end(conn, 0);
        return 1;
    }

    res = entctl_authz_query(conn,
        "SELECT u.id, p.user_id IS NOT NULL FROM ent.users u "
        "LEFT JOIN ent.platform_admins p ON p.user_id = u.id "
        "WHERE lower(u.email) = lower($1) ORDER BY 2 DESC, u.created_at", 1,
        params);

    if (res == NULL) {
        entctl_authz_end(conn, 0);
        return 1;
    }

    n = PQntuples(res);

    if (n == 0) {
        PQclear(res);

        res = entctl_authz_query(conn,
            "INSERT INTO ent.users (email, name) VALUES ($1, $2) "
            "RETURNING id", 2, params);

        if (res == NULL) {
            entctl_authz_end(conn, 0);
            return 1;
        }

    } else if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
        PQclear(res);
        entctl_authz_end(conn, 0);
        printf("platform-admin add %s: already a platform admin\n", argv[0]);
        return 0;

    } else if (n > 1) {
        fprintf(stderr, "entctl: %d users have the email \"%s\": cannot "
                "tell which one is meant\n", n, argv[0]);
        PQclear(res);
        entctl_authz_end(conn, 0);
        return 1;
    }

    uid = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);

    params[0] = uid;

    n = (uid == NULL) ? -1
        : sso_exec(conn, "INSERT INTO ent.platform_admins (user_id) "
                         "VALUES ($1)", 1, params, 0);

    free(uid);

    if (entctl_authz_end(conn, n == 1) != 0) {
        return 1;
    }

    printf("platform-admin add %s: saved\n", argv[0]);

    return 0;
}


static int
authz_admin_remove(PGconn *conn, const char *email)
{
    int          n;
    PGresult    *res;
    const char  *params[1];

    params[0] = email;

    res = entctl_authz_query(conn,
        "SELECT p.user_id, (SELECT count(*) FROM ent.breakglass_grants g "
        "WHERE p.user_id IN (g.admin_id, g.approved_by, g.revoked_by)) "
        "FROM ent.platform_admins p JOIN ent.users u ON u.id = p.user_id "
        "WHERE lower(u.email) = lower($1)", 1, params);

    if (res == NULL) {
        return 1;
    }

    n = PQntuples(res);

    if (n != 1) {
        fprintf(stderr, n ? "entctl: several platform admins have the email "
                            "\"%s\"\n"
                          : "entctl: \"%s\" is not a platform admin\n",
                email);
        PQclear(res);
        return 1;
    }

    /*
     * the grants reference ent.platform_admins (no ON DELETE): an admin
     * with break-glass history cannot be removed without losing it
     */

    if (atoi(PQgetvalue(res, 0, 1)) > 0) {
        fprintf(stderr, "entctl: platform admin \"%s\" has %s break-glass "
                "grants on record (requested, approved or revoked), which "
                "the schema keeps: the admin cannot be removed (revoke any "
                "active grant with \"entctl breakglass revoke\")\n", email,
                PQgetvalue(res, 0, 1));
        PQclear(res);
        return 1;
    }

    params[0] = PQgetvalue(res, 0, 0);

    n = sso_exec(conn, "DELETE FROM ent.platform_admins WHERE user_id = $1",
                 1, params, 0);

    PQclear(res);

    if (n != 1) {
        return 1;
    }

    printf("platform-admin remove %s: removed\n", email);

    return 0;
}


int
entctl_breakglass(PGconn *conn, int argc, char **argv)
{
    int          npos, n;
    char        *tid;
    PGresult    *res;
    const char  *params[1];

    if (argc < 1) {
        goto usage;
    }

    if (strcmp(argv[0], "request") == 0) {
        return authz_bg_request(conn, argc - 1, argv + 1);
    }

    if (strcmp(argv[0], "approve") == 0 || strcmp(argv[0], "revoke") == 0) {
        return authz_bg_decide(conn, argc - 1, argv + 1, argv[0][0] == 'a');
    }

    if (strcmp(argv[0], "link") == 0) {
        return authz_bg_link(conn, argc - 1, argv + 1);
    }

    if (strcmp(argv[0], "list") == 0) {
        npos = entctl_authz_args(argc - 1, argv + 1, 0, 1, authz_no_opts,
                                 "breakglass list [CODE]");
        if (npos < 0) {
            return 2;
        }

        tid = NULL;

        if (npos == 1) {
            tid = sso_tenant_id(conn, argv[1]);
            if (tid == NULL) {
                return 1;
            }
        }

        params[0] = tid;

        res = entctl_authz_query(conn,
            "SELECT g.id, t.code AS tenant, a.email AS admin, "
            "coalesce(ap.email, '') AS approved_by, g.role, "
            AUTHZ_STATE " AS state, "
            "coalesce(to_char(g.expires_at AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') AS expires_at, g.reason "
            "FROM ent.breakglass_grants g "
            "JOIN ent.tenants t ON t.id = g.tenant_id "
            "JOIN ent.users a ON a.id = g.admin_id "
            "LEFT JOIN ent.users ap ON ap.id = g.approved_by "
            "WHERE $1::uuid IS NULL OR g.tenant_id = $1 "
            "ORDER BY g.requested_at, g.id", 1, params);

        free(tid);

        if (res == NULL) {
            return 1;
        }

        entctl_authz_table(res);
        PQclear(res);

        return 0;
    }

    if (strcmp(argv[0], "set-max") == 0) {
        if (entctl_authz_args(argc - 1, argv + 1, 1, 1, authz_no_opts,
                              "breakglass set-max MINUTES") < 0)
        {
            return 2;
        }

        if (entctl_authz_number(argv[1], 1, 1440) < 0) {
            fprintf(stderr, "entctl: breakglass set-max takes 1 to 1440 "
                    "minutes\n");
            return 2;
        }

        params[0] = argv[1];

        if (sso_exec(conn, "BEGIN", 0, NULL, 0) < 0) {
            return 1;
        }

        n = sso_exec(conn,
                "INSERT INTO ent.settings (name, value) "
                "VALUES ('breakglass_max_minutes', $1) "
                "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, "
                "updated_at = now()", 1, params, 0);

        if (n != 1
            || sso_exec(conn,
                   "SELECT ent.event(NULL, NULL, 'breakglass', 'info', "
                   "'max minutes: ' || $1, NULL, "
                   "jsonb_build_object('max_minutes', $1::integer)::text)",
                   1, params, 0) != 1
            || entctl_authz_end(conn, 1) != 0)
        {
            entctl_authz_end(conn, 0);
            return 1;
        }

        printf("breakglass set-max %s: saved\n", argv[1]);

        return 0;
    }

usage:

    fprintf(stderr, "usage: entctl breakglass request CODE --admin EMAIL "
            "--reason R --justification J [--role ROLE] [--minutes M] | "
            "breakglass approve|revoke GRANT --admin EMAIL | "
            "breakglass link GRANT --admin EMAIL --key-file F --host HOST | "
            "breakglass list [CODE] | breakglass set-max MINUTES\n");
    return 2;
}


static int
authz_bg_request(PGconn *conn, int argc, char **argv)
{
    int                 npos, max, minutes, ok;
    char               *tid, *aid, *gid;
    char                mbuf[16], ebuf[300];
    PGresult           *res;
    const char         *reason, *just, *role, *mins, *params[6];
    static const char  *known[] = {
        "--admin", "--reason", "--justification", "--role", "--minutes", NULL
    };

    npos = entctl_authz_args(argc, argv, 1, 1, known,
                             "breakglass request CODE --admin EMAIL "
                             "--reason R --justification J [--role ROLE] "
                             "[--minutes M]");
    if (npos < 0) {
        return 2;
    }

    reason = entctl_authz_opt(argc, argv, npos, "--reason");
    just = entctl_authz_opt(argc, argv, npos, "--justification");
    role = entctl_authz_opt(argc, argv, npos, "--role");
    mins = entctl_authz_opt(argc, argv, npos, "--minutes");

    if (entctl_authz_opt(argc, argv, npos, "--admin") == NULL || reason == NULL
        || just == NULL)
    {
        fprintf(stderr, "entctl: breakglass request needs --admin, --reason "
                "and --justification\n");
        return 2;
    }

    if (*reason == '\0' || strlen(reason) > 256) {
        fprintf(stderr, "entctl: --reason: 1 to 256 bytes\n");
        return 2;
    }

    if (*just == '\0' || strlen(just) > 4096) {
        fprintf(stderr, "entctl: --justification: 1 to 4096 bytes\n");
        return 2;
    }

    minutes = 0;

    if (mins) {
        minutes = entctl_authz_number(mins, 1, 1440);

        if (minutes < 0) {
            fprintf(stderr, "entctl: --minutes takes 1 to 1440 (and at most "
                    "the setting breakglass_max_minutes)\n");
            return 2;
        }
    }

    role = role ? role : "admin";

    tid = sso_tenant_id(conn, argv[0]);
    if (tid == NULL) {
        return 1;
    }

    aid = NULL;
    ok = 0;

    if (!entctl_authz_role_exists(conn, tid, argv[0], role)) {
        goto done;
    }

    aid = authz_admin(conn, entctl_authz_opt(argc, argv, npos, "--admin"));
    if (aid == NULL) {
        goto done;
    }

    max = authz_max_minutes(conn);
    if (max < 0) {
        goto done;
    }

    if (minutes > max) {
        fprintf(stderr, "entctl: --minutes %d is more than the setting "
                "breakglass_max_minutes (%d)\n", minutes, max);
        goto done;
    }

    snprintf(mbuf, sizeof(mbuf), "%d", mins ? minutes : max);

    if (sso_exec(conn, "BEGIN", 0, NULL, 0) < 0) {
        goto done;
    }

    params[0] = tid;
    params[1] = aid;
    params[2] = role;
    params[3] = reason;
    params[4] = just;
    params[5] = mbuf;

    res = entctl_authz_query(conn,
        "INSERT INTO ent.breakglass_grants (tenant_id, admin_id, role, "
        "reason, justification, minutes) "
        "VALUES ($1, $2, $3, $4, $5, $6::integer) RETURNING id", 6, params);

    if (res == NULL) {
        entctl_authz_end(conn, 0);
        goto done;
    }

    gid = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);

    if (gid == NULL) {
        entctl_authz_end(conn, 0);
        goto done;
    }

    /* ent.event() cuts the reason at 256 bytes */

    snprintf(ebuf, sizeof(ebuf), "requested: %s", reason);

    ok = authz_event(conn, gid, aid, ebuf, NULL) == 0
         && entctl_authz_end(conn, 1) == 0;

    if (!ok) {
        entctl_authz_end(conn, 0);

    } else {
        printf("%s\n", gid);
    }

    free(gid);

done:

    free(tid);
    free(aid);

    return ok ? 0 : 1;
}


/* breakglass approve|revoke GRANT --admin EMAIL */

static int
authz_bg_decide(PGconn *conn, int argc, char **argv, int approve)
{
    int                 npos, ok, max;
    char               *aid;
    PGresult           *g, *res;
    const char         *state, *params[2];
    static const char  *known[] = { "--admin", NULL };

    npos = entctl_authz_args(argc, argv, 1, 1, known,
                             approve ? "breakglass approve GRANT --admin EMAIL"
                              : "breakglass revoke GRANT --admin EMAIL");
    if (npos < 0) {
        return 2;
    }

    if (entctl_authz_opt(argc, argv, npos, "--admin") == NULL) {
        fprintf(stderr, "entctl: breakglass %s needs --admin EMAIL\n",
                approve ? "approve" : "revoke");
        return 2;
    }

    if (!authz_uuid_ok(argv[0])) {
        fprintf(stderr, "entctl: \"%s\" is not a grant id (a uuid)\n",
                argv[0]);
        return 2;
    }

    authz_uuid_lower(argv[0]);

    aid = authz_admin(conn, entctl_authz_opt(argc, argv, npos, "--admin"));
    if (aid == NULL) {
        return 1;
    }

    g = authz_grant(conn, argv[0]);
    if (g == NULL) {
        free(aid);
        return 1;
    }

    state = PQgetvalue(g, 0, AUTHZ_G_STATE);
    ok = 0;

    if (strcmp(state, "revoked") == 0) {
        fprintf(stderr, "entctl: grant %s was revoked\n", argv[0]);
        goto done;
    }

    if (approve) {
        if (strcmp(state, "requested") != 0) {
            fprintf(stderr, "entctl: grant %s is already approved (by %s; "
                    "%s)\n", argv[0], PQgetvalue(g, 0, AUTHZ_G_APPROVER),
                    state);
            goto done;
        }

        if (strcmp(PQgetvalue(g, 0, AUTHZ_G_ADMIN), aid) == 0) {
            fprintf(stderr, "entctl: %s requested grant %s: a platform "
                    "admin cannot approve their own request, another one "
                    "must\n", PQgetvalue(g, 0, AUTHZ_G_EMAIL), argv[0]);
            goto done;
        }

        max = authz_max_minutes(conn);
        if (max < 0) {
            goto done;
        }

        if (atoi(PQgetvalue(g, 0, AUTHZ_G_MINUTES)) > max) {
            fprintf(stderr, "entctl: grant %s asks for %s minutes, more than "
                    "the setting breakglass_max_minutes (%d) now: request "
                    "again\n", argv[0], PQgetvalue(g, 0, AUTHZ_G_MINUTES),
                    max);
            goto done;
        }

    } else if (strcmp(state, "expired") == 0) {
        fprintf(stderr, "entctl: grant %s has expired: nothing to "
                "revoke\n", argv[0]);
        goto done;
    }

    if (sso_exec(conn, "BEGIN", 0, NULL, 0) < 0) {
        goto done;
    }

    params[0] = argv[0];
    params[1] = aid;

    /* the conditions again: another admin may have acted meanwhile */

    res = entctl_authz_query(conn, approve
        ? "UPDATE ent.breakglass_grants SET approved_by = $2, "
          "approved_at = now(), "
          "expires_at = now() + minutes * interval '1 minute' "
          "WHERE id = $1 AND approved_at IS NULL AND revoked_at IS NULL "
          "AND admin_id <> $2 "
          "RETURNING to_char(expires_at AT TIME ZONE 'UTC', "
          "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        : "UPDATE ent.breakglass_grants SET revoked_by = $2, "
          "revoked_at = now() "
          "WHERE id = $1 AND revoked_at IS NULL "
          "AND (expires_at IS NULL OR expires_at > now()) "
          "RETURNING ''", 2, params);

    if (res == NULL || PQntuples(res) != 1) {
        if (res) {
            fprintf(stderr, "entctl: grant %s changed meanwhile: see "
                    "\"entctl breakglass list\"\n", argv[0]);
            PQclear(res);
        }

        entctl_authz_end(conn, 0);
        goto done;
    }

    if (authz_event(conn, argv[0], aid, approve ? "approved" : "revoked",
                    NULL)
        != 0
        || entctl_authz_end(conn, 1) != 0)
    {
        PQclear(res);
        entctl_authz_end(conn, 0);
        goto done;
    }

    if (approve) {
        printf("breakglass approve %s: active until %s\n", argv[0],
               PQgetvalue(res, 0, 0));

    } else {
        printf("breakglass revoke %s: revoked\n", argv[0]);
    }

    PQclear(res);
    ok = 1;

done:

    PQclear(g);
    free(aid);

    return ok ? 0 : 1;
}


/*
 * breakglass link GRANT --admin EMAIL --key-file F --host HOST: the
 * one-time sign-in URL of an active grant, for its requesting admin:
 *
 *   https://HOST/_ent/breakglass?token=base64url(seal(JSON))
 *
 * JSON {"g":"<grant>","t":"<tenant>","e":<now + 300>,"n":"<nonce>"},
 * sealed with the ent_sso_secret_key key and the AAD
 * "breakglass:<tenant id>".
 */

static int
authz_bg_link(PGconn *conn, int argc, char **argv)
{
    int                 npos, ok, n;
    char               *aid, *token;
    char                json[256], aad[64];
    size_t              len, tlen;
    PGresult           *g;
    const char         *host, *keyfile, *state;
    unsigned char       key[ENT_AEAD_KEY_LEN];
    unsigned char       nonce[ent_b64url_encoded_len(AUTHZ_NONCE_BYTES)];
    unsigned char       sealed[sizeof(json) + ENT_AEAD_OVERHEAD];
    static const char  *known[] = {
        "--admin", "--key-file", "--host", NULL
    };

    npos = entctl_authz_args(argc, argv, 1, 1, known,
                             "breakglass link GRANT --admin EMAIL "
                             "--key-file F --host HOST[:PORT]");
    if (npos < 0) {
        return 2;
    }

    host = entctl_authz_opt(argc, argv, npos, "--host");
    keyfile = entctl_authz_opt(argc, argv, npos, "--key-file");

    if (entctl_authz_opt(argc, argv, npos, "--admin") == NULL || host == NULL
        || keyfile == NULL)
    {
        fprintf(stderr, "entctl: breakglass link needs --admin, --key-file "
                "and --host\n");
        return 2;
    }

    if (!authz_host_ok(host)) {
        fprintf(stderr, "entctl: --host \"%s\": the tenant's host name, "
                "with an optional \":port\" (no scheme, no path)\n", host);
        return 2;
    }

    if (!authz_uuid_ok(argv[0])) {
        fprintf(stderr, "entctl: \"%s\" is not a grant id (a uuid)\n",
                argv[0]);
        return 2;
    }

    authz_uuid_lower(argv[0]);

    aid = authz_admin(conn, entctl_authz_opt(argc, argv, npos, "--admin"));
    if (aid == NULL) {
        return 1;
    }

    g = authz_grant(conn, argv[0]);
    if (g == NULL) {
        free(aid);
        return 1;
    }

    ok = 0;
    token = NULL;
    tlen = 0;
    state = PQgetvalue(g, 0, AUTHZ_G_STATE);

    if (strcmp(PQgetvalue(g, 0, AUTHZ_G_ADMIN), aid) != 0) {
        fprintf(stderr, "entctl: only the admin who requested grant %s "
                "(%s) may get its sign-in link\n", argv[0],
                PQgetvalue(g, 0, AUTHZ_G_EMAIL));
        goto done;
    }

    if (strcmp(state, "active") != 0) {
        fprintf(stderr, "entctl: grant %s is %s, not active: %s\n", argv[0],
                state, strcmp(state, "requested") == 0
                       ? "another platform admin must approve it first"
                       : "request a new one");
        goto done;
    }

    if (sso_secret_key(keyfile, key) != 0) {
        goto done;
    }

    if (ent_random_token(nonce, AUTHZ_NONCE_BYTES) != 0) {
        fprintf(stderr, "entctl: no random bytes\n");
        goto done;
    }

    len = (size_t) snprintf(json, sizeof(json),
                            "{\"g\":\"%s\",\"t\":\"%s\",\"e\":%lld,"
                            "\"n\":\"%.*s\"}",
                            argv[0], PQgetvalue(g, 0, AUTHZ_G_TENANT),
                            (long long) time(NULL) + AUTHZ_LINK_SECONDS,
                            (int) sizeof(nonce), (char *) nonce);

    n = snprintf(aad, sizeof(aad), "breakglass:%s",
                 PQgetvalue(g, 0, AUTHZ_G_TENANT));

    tlen = ent_b64url_encoded_len(len + ENT_AEAD_OVERHEAD);
    token = malloc(tlen + 1);

    if (token == NULL || len >= sizeof(json) || n >= (int) sizeof(aad)
        || ent_aead_seal(key, (unsigned char *) aad, n,
                         (unsigned char *) json, len, sealed)
           != (int) (len + ENT_AEAD_OVERHEAD))
    {
        fprintf(stderr, "entctl: cannot seal the token\n");
        goto done;
    }

    token[ent_b64url_encode((unsigned char *) token, sealed,
                            len + ENT_AEAD_OVERHEAD)] = '\0';

    /* recorded before it is shown: the event has the host, not the token */

    if (authz_event(conn, argv[0], aid, "link issued", host) != 0) {
        goto done;
    }

    printf("https://%s/_ent/breakglass?token=%s\n", host, token);
    ok = 1;

done:

    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(json, sizeof(json));

    if (token) {
        OPENSSL_cleanse(token, tlen + 1);
        free(token);
    }

    PQclear(g);
    free(aid);

    return ok ? 0 : 1;
}
