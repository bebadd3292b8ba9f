/*
 * entctl: authorization administration (the schema: sql/009_authz.sql).
 *
 *   role create CODE NAME --rank N [--description D]
 *   role delete CODE NAME | role list CODE
 *   role grant CODE ROLE PERMISSION... | role revoke CODE ROLE PERMISSION...
 *   permission add NAME [--description D] | permission remove NAME
 *   permission list
 *   member set CODE EMAIL ROLE [--status active|suspended]
 *   member suspend|activate|remove CODE EMAIL | member list CODE
 *
 * (A tenant's --inherit-roles and --jit-role are options of "tenant
 * update", in tenant.c; the platform admins and break-glass grants are in
 * breakglass.c, which shares the entctl_authz_* helpers of this file.)
 *
 * Exit status: 0 done, 1 refused by the data (an unknown tenant, role or
 * user) or a database error, 2 bad usage.  Statements that belong together
 * run in one transaction; the triggers of the schema flush the nodes'
 * "authz" cache.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "entctl.h"


static int authz_role_ok(const char *name);
static int authz_perm_ok(const char *perm, int pattern);
static int authz_role_kind(PGconn *conn, const char *tid, const char *role);
static char *authz_user(PGconn *conn, const char *tid, const char *code,
    const char *email, int member);
static int authz_role_create(PGconn *conn, int argc, char **argv);
static int authz_role_delete(PGconn *conn, char **argv);
static int authz_role_perms(PGconn *conn, int argc, char **argv, int grant);
static int authz_member_set(PGconn *conn, int argc, char **argv);


static const char *const  authz_no_opts[] = { NULL };


/*
 * entctl_args() for commands whose options all take a value, each at most
 * once: known is a NULL-terminated list of their names.
 */

int
entctl_authz_args(int argc, char **argv, int min, int max,
    const char *const *known, const char *usage)
{
    int           n;
    entctl_opt_t  opts[16];

    for (n = 0; known[n] && n < 15; n++) {
        opts[n].name = known[n];
        opts[n].kind = ENTCTL_OPT_VALUE;
    }

    opts[n].name = NULL;
    opts[n].kind = 0;

    return entctl_args(argc, argv, min, max, opts, usage);
}


/* an option's value: only option positions are looked at, never values */

const char *
entctl_authz_opt(int argc, char **argv, int npos, const char *name)
{
    int  i;

    for (i = npos; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], name) == 0) {
            return argv[i + 1];
        }
    }

    return NULL;
}


/* a decimal number in [min, max], or -1 */

int
entctl_authz_number(const char *s, int min, int max)
{
    int     v;
    size_t  n;

    n = strlen(s);

    if (n == 0 || n > 9 || strspn(s, "0123456789") != n) {
        return -1;
    }

    v = atoi(s);

    return (v >= min && v <= max) ? v : -1;
}


/* the rule of the schema: ^[a-z][a-z0-9_:.-]{0,63}$ */

static int
authz_role_ok(const char *name)
{
    size_t  n;

    n = strlen(name);

    return n >= 1 && n <= 64 && name[0] >= 'a' && name[0] <= 'z'
           && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_:.-") == n;
}


/*
 * "area:action", each [a-z][a-z0-9_.-]{0,31}; with pattern, also
 * "area:*" and "*"
 */

static int
authz_perm_ok(const char *perm, int pattern)
{
    size_t              n;
    const char         *part, *colon;
    static const char   chars[] = "abcdefghijklmnopqrstuvwxyz0123456789_.-";

    if (pattern && strcmp(perm, "*") == 0) {
        return 1;
    }

    colon = strchr(perm, ':');
    if (colon == NULL) {
        return 0;
    }

    n = (size_t) (colon - perm);

    if (n < 1 || n > 32 || perm[0] < 'a' || perm[0] > 'z'
        || strspn(perm, chars) != n)
    {
        return 0;
    }

    part = colon + 1;

    if (pattern && strcmp(part, "*") == 0) {
        return 1;
    }

    n = strlen(part);

    return n >= 1 && n <= 32 && part[0] >= 'a' && part[0] <= 'z'
           && strspn(part, chars) == n;
}


/* a statement whose rows are wanted; NULL after a message */

PGresult *
entctl_authz_query(PGconn *conn, const char *sql, int n,
    const char *const *params)
{
    char      *detail;
    PGresult  *res;

    res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        detail = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        fprintf(stderr, "entctl: %s\n", detail ? detail : "database error");
        PQclear(res);
        return NULL;
    }

    return res;
}


/*
 * The end of a transaction: COMMIT when ok, else ROLLBACK (when one is
 * still open); 0 or -1.
 */

int
entctl_authz_end(PGconn *conn, int ok)
{
    if (ok) {
        return sso_exec(conn, "COMMIT", 0, NULL, 0) < 0 ? -1 : 0;
    }

    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        (void) sso_exec(conn, "ROLLBACK", 0, NULL, 0);
    }

    return -1;
}


/*
 * The rows as a table: a header of the column names in capitals, columns
 * padded to their widest value, "-" for an empty one; control bytes are
 * shown as "?" (names and reasons come from users).
 */

void
entctl_authz_table(PGresult *res)
{
    int          i, j, rows, cols;
    size_t       w[16], len;
    const char  *v, *p;

    rows = PQntuples(res);
    cols = PQnfields(res);

    if (cols > 16) {
        cols = 16;
    }

    for (j = 0; j < cols; j++) {
        w[j] = strlen(PQfname(res, j));

        for (i = 0; i < rows; i++) {
            len = (size_t) PQgetlength(res, i, j);
            w[j] = len > w[j] ? len : w[j];
        }
    }

    for (i = -1; i < rows; i++) {
        for (j = 0; j < cols; j++) {
            v = (i < 0) ? PQfname(res, j) : PQgetvalue(res, i, j);

            if (*v == '\0') {
                v = "-";
            }

            for (p = v; *p; p++) {
                if (i < 0) {
                    putchar(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);

                } else {
                    putchar((unsigned char) *p < 0x20
                            || (unsigned char) *p == 0x7f ? '?' : *p);
                }
            }

            if (j < cols - 1) {
                printf("%*s", (int) (w[j] - strlen(v) + 2), "");
            }
        }

        putchar('\n');
    }
}


/* 1: a system role, 2: a custom role of the tenant, 0: neither, -1 */

static int
authz_role_kind(PGconn *conn, const char *tid, const char *role)
{
    int          kind;
    PGresult    *res;
    const char  *params[2];

    params[0] = tid;
    params[1] = role;

    res = entctl_authz_query(conn,
        "SELECT CASE WHEN tenant_id IS NULL THEN 1 ELSE 2 END "
        "FROM ent.roles WHERE name = $2 "
        "AND (tenant_id IS NULL OR tenant_id = $1) "
        "ORDER BY tenant_id NULLS FIRST LIMIT 1", 2, params);

    if (res == NULL) {
        return -1;
    }

    kind = PQntuples(res) ? atoi(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);

    return kind;
}


/* 1, or 0 after a message */

int
entctl_authz_role_exists(PGconn *conn, const char *tid, const char *code,
    const char *role)
{
    int  kind;

    kind = authz_role_ok(role) ? authz_role_kind(conn, tid, role) : 0;

    if (kind == 0) {
        fprintf(stderr, "entctl: no role \"%s\" in tenant \"%s\": a system "
                "role or one made with \"entctl role create %s ...\" (see "
                "\"entctl role list %s\")\n", role, code, code, code);
    }

    return kind > 0;
}


/*
 * The user with this email (case-insensitive), the tenant's member first;
 * with member, only a member of the tenant.  Email is not unique in
 * ent.users (each tenant's JIT sign-in may have made its own user): a
 * choice between several is refused.  A strdup()ed id, or NULL after a
 * message.
 */

static char *
authz_user(PGconn *conn, const char *tid, const char *code,
    const char *email, int member)
{
    int          i, n, nm;
    char        *id;
    PGresult    *res;
    const char  *params[2];

    params[0] = tid;
    params[1] = email;

    res = entctl_authz_query(conn,
        "SELECT u.id, m.user_id IS NOT NULL FROM ent.users u "
        "LEFT JOIN ent.memberships m ON m.user_id = u.id "
        "AND m.tenant_id = $1 WHERE lower(u.email) = lower($2) "
        "ORDER BY 2 DESC, u.created_at", 2, params);

    if (res == NULL) {
        return NULL;
    }

    n = PQntuples(res);

    for (nm = 0, i = 0; i < n; i++) {
        nm += (strcmp(PQgetvalue(res, i, 1), "t") == 0);
    }

    id = NULL;

    if (nm == 1 || (nm == 0 && n == 1 && !member)) {
        id = strdup(PQgetvalue(res, 0, 0));

    } else if (nm == 0 && member) {
        fprintf(stderr, "entctl: \"%s\" is not a member of tenant \"%s\"\n",
                email, code);

    } else if (n == 0) {
        fprintf(stderr, "entctl: no user with the email \"%s\" (users are "
                "made at sign-in, by SCIM or by \"entctl platform-admin "
                "add\")\n", email);

    } else {
        fprintf(stderr, "entctl: %d users have the email \"%s\"%s: "
                "cannot tell which one is meant\n", nm ? nm : n, email,
                nm ? " in this tenant" : "");
    }

    PQclear(res);

    return id;
}


int
entctl_role(PGconn *conn, int argc, char **argv)
{
    char        *tid;
    PGresult    *res;
    const char  *params[1];

    if (argc < 1) {
        goto usage;
    }

    if (strcmp(argv[0], "create") == 0) {
        return authz_role_create(conn, argc - 1, argv + 1);
    }

    if (strcmp(argv[0], "delete") == 0) {
        if (entctl_authz_args(argc - 1, argv + 1, 2, 2, authz_no_opts,
                              "role delete CODE NAME") < 0)
        {
            return 2;
        }

        return authz_role_delete(conn, argv + 1);
    }

    if (strcmp(argv[0], "grant") == 0 || strcmp(argv[0], "revoke") == 0) {
        if (entctl_authz_args(argc - 1, argv + 1, 3, -1, authz_no_opts,
                              argv[0][0] == 'g'
                              ? "role grant CODE ROLE PERMISSION..."
                              : "role revoke CODE ROLE PERMISSION...")
            < 0)
        {
            return 2;
        }

        return authz_role_perms(conn, argc - 1, argv + 1, argv[0][0] == 'g');
    }

    if (strcmp(argv[0], "list") == 0) {
        if (entctl_authz_args(argc - 1, argv + 1, 1, 1, authz_no_opts,
                              "role list CODE") < 0)
        {
            return 2;
        }

        tid = sso_tenant_id(conn, argv[1]);
        if (tid == NULL) {
            return 1;
        }

        params[0] = tid;

        res = entctl_authz_query(conn,
            "SELECT r.name AS role, "
            "CASE WHEN r.tenant_id IS NULL THEN 'system' ELSE 'custom' END "
            "AS kind, r.rank, "
            "coalesce((SELECT string_agg(p.permission, ',' "
            "ORDER BY p.permission) FROM ent.role_permissions p "
            "WHERE p.tenant_id IS NULL AND p.role = r.name), '') "
            "AS platform, "
            "coalesce((SELECT string_agg(p.permission, ',' "
            "ORDER BY p.permission) FROM ent.role_permissions p "
            "WHERE p.tenant_id = $1 AND p.role = r.name), '') AS tenant, "
            "coalesce(r.description, '') AS description "
            "FROM ent.roles r WHERE r.tenant_id IS NULL OR r.tenant_id = $1 "
            "ORDER BY r.rank DESC, r.name", 1, params);

        free(tid);

        if (res == NULL) {
            return 1;
        }

        entctl_authz_table(res);
        PQclear(res);

        return 0;
    }

usage:

    fprintf(stderr, "usage: entctl role create CODE NAME --rank N "
            "[--description D] | role delete CODE NAME | role list CODE | "
            "role grant|revoke CODE ROLE PERMISSION...\n");
    return 2;
}


static int
authz_role_create(PGconn *conn, int argc, char **argv)
{
    int                 npos, rc;
    char               *tid;
    const char         *rank, *desc, *params[4];
    static const char  *known[] = { "--rank", "--description", NULL };

    npos = entctl_authz_args(argc, argv, 2, 2, known,
                             "role create CODE NAME --rank N "
                             "[--description D]");
    if (npos < 0) {
        return 2;
    }

    rank = entctl_authz_opt(argc, argv, npos, "--rank");
    desc = entctl_authz_opt(argc, argv, npos, "--description");

    if (!authz_role_ok(argv[1])) {
        fprintf(stderr, "entctl: invalid role name \"%s\": a lowercase "
                "letter, then up to 63 lowercase letters, digits, \"_\", "
                "\":\", \".\" or \"-\"\n", argv[1]);
        return 2;
    }

    if (rank == NULL || entctl_authz_number(rank, 1, 1000) < 0) {
        fprintf(stderr, "entctl: a custom role needs --rank 1..1000 (the "
                "system roles: owner 100, admin 50, manager 30, member 10, "
                "viewer 5)\n");
        return 2;
    }

    if (desc && strlen(desc) > 256) {
        fprintf(stderr, "entctl: --description: at most 256 bytes\n");
        return 2;
    }

    tid = sso_tenant_id(conn, argv[0]);
    if (tid == NULL) {
        return 1;
    }

    rc = authz_role_kind(conn, tid, argv[1]);

    if (rc == 1) {
        fprintf(stderr, "entctl: \"%s\" is a system role: a custom role "
                "needs another name\n", argv[1]);
    }

    if (rc != 0 && rc != 2) {
        free(tid);
        return 1;
    }

    params[0] = tid;
    params[1] = argv[1];
    params[2] = rank;
    params[3] = desc;

    /* again: the rank and description of an existing custom role change */

    rc = sso_exec(conn,
        "INSERT INTO ent.roles (tenant_id, name, rank, description) "
        "VALUES ($1, $2, $3::integer, $4) "
        "ON CONFLICT ((coalesce(tenant_id, "
        "'00000000-0000-0000-0000-000000000000'::uuid)), name) "
        "DO UPDATE SET rank = EXCLUDED.rank, "
        "description = coalesce(EXCLUDED.description, "
        "ent.roles.description)", 4, params, 0);

    free(tid);

    if (rc != 1) {
        return 1;
    }

    printf("role create %s %s: saved\n", argv[0], argv[1]);

    return 0;
}


static int
authz_role_delete(PGconn *conn, char **argv)
{
    int          kind;
    char        *tid;
    PGresult    *res;
    const char  *params[2];

    tid = sso_tenant_id(conn, argv[0]);
    if (tid == NULL) {
        return 1;
    }

    kind = authz_role_ok(argv[1]) ? authz_role_kind(conn, tid, argv[1]) : 0;

    if (kind != 2) {
        if (kind == 1) {
            fprintf(stderr, "entctl: \"%s\" is a system role: only custom "
                    "roles are deleted\n", argv[1]);

        } else if (kind == 0) {
            fprintf(stderr, "entctl: no custom role \"%s\" in tenant "
                    "\"%s\"\n", argv[1], argv[0]);
        }

        free(tid);
        return 1;
    }

    params[0] = tid;
    params[1] = argv[1];

    if (sso_exec(conn, "BEGIN", 0, NULL, 0) < 0) {
        free(tid);
        return 1;
    }

    /* still given to someone: refused, nothing changes */

    res = entctl_authz_query(conn,
        "SELECT (SELECT count(*) FROM ent.memberships "
        "WHERE tenant_id = $1 AND role = $2), "
        "(SELECT count(*) FROM ent.group_role_mappings "
        "WHERE tenant_id = $1 AND role = $2), "
        "(SELECT count(*) FROM ent.tenants WHERE id = $1 AND jit_role = $2), "
        "(SELECT count(*) FROM ent.breakglass_grants g WHERE g.tenant_id = $1 "
        "AND g.role = $2 AND g.revoked_at IS NULL "
        "AND (g.expires_at IS NULL OR g.expires_at > now()))", 2, params);

    if (res == NULL) {
        free(tid);
        entctl_authz_end(conn, 0);
        return 1;
    }

    if (atoi(PQgetvalue(res, 0, 0)) || atoi(PQgetvalue(res, 0, 1))
        || atoi(PQgetvalue(res, 0, 2)) || atoi(PQgetvalue(res, 0, 3)))
    {
        fprintf(stderr, "entctl: role \"%s\" is in use in tenant \"%s\" "
                "(%s memberships, %s group mappings, %s break-glass "
                "grants%s): change those first\n", argv[1], argv[0],
                PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
                PQgetvalue(res, 0, 3),
                atoi(PQgetvalue(res, 0, 2)) ? ", and the tenant's jit role"
                                            : "");
        PQclear(res);
        free(tid);
        entctl_authz_end(conn, 0);
        return 1;
    }

    PQclear(res);

    if (sso_exec(conn, "DELETE FROM ent.role_permissions "
                       "WHERE tenant_id = $1 AND role = $2", 2, params, 0)
        < 0
        || sso_exec(conn, "DELETE FROM ent.roles "
                          "WHERE tenant_id = $1 AND name = $2", 2, params, 0)
           != 1
        || entctl_authz_end(conn, 1) != 0)
    {
        free(tid);
        entctl_authz_end(conn, 0);
        return 1;
    }

    free(tid);

    printf("role delete %s %s: deleted\n", argv[0], argv[1]);

    return 0;
}


/*
 * role grant|revoke CODE ROLE PERMISSION...: the tenant's rows of
 * ent.role_permissions, all or none.
 */

static int
authz_role_perms(PGconn *conn, int argc, char **argv, int grant)
{
    int          i, n, ok;
    char        *tid, *area;
    const char  *params[3];

    for (i = 2; i < argc; i++) {
        if (!authz_perm_ok(argv[i], 1)) {
            fprintf(stderr, "entctl: invalid permission \"%s\": "
                    "\"area:action\" (lowercase), \"area:*\" or \"*\"\n",
                    argv[i]);
            return 2;
        }
    }

    tid = sso_tenant_id(conn, argv[0]);
    if (tid == NULL) {
        return 1;
    }

    if (!entctl_authz_role_exists(conn, tid, argv[0], argv[1])) {
        free(tid);
        return 1;
    }

    if (sso_exec(conn, "BEGIN", 0, NULL, 0) < 0) {
        free(tid);
        return 1;
    }

    params[0] = tid;
    params[1] = argv[1];
    ok = 1;

    for (i = 2; ok && i < argc; i++) {
        params[2] = argv[i];
        n = 0;

        if (!grant) {
            n = sso_exec(conn,
                "DELETE FROM ent.role_permissions WHERE tenant_id = $1 "
                "AND role = $2 AND permission = $3", 3, params, 0);

            if (n == 0) {
                n = sso_exec(conn,
                    "SELECT 1 FROM ent.role_permissions WHERE tenant_id "
                    "IS NULL AND role = $1 AND permission = $2", 2,
                    params + 1, 0);

                if (n > 0) {
                    fprintf(stderr, "entctl: \"%s\" is given to \"%s\" by "
                            "the platform, not by tenant \"%s\": it cannot "
                            "be revoked for one tenant\n", argv[i], argv[1],
                            argv[0]);
                    n = -1;

                } else if (n == 0) {
                    fprintf(stderr, "entctl: warning: \"%s\" was not "
                            "granted to \"%s\" in tenant \"%s\"\n", argv[i],
                            argv[1], argv[0]);
                }
            }

            ok = (n >= 0);
            continue;
        }

        if (strchr(argv[i], '*') == NULL) {
            n = sso_exec(conn, "SELECT 1 FROM ent.permissions "
                               "WHERE name = $1", 1, params + 2, 0);

            if (n == 0) {
                area = strdup(argv[i]);

                if (area) {
                    *strchr(area, ':') = '\0';
                }

                fprintf(stderr, "entctl: no permission \"%s\" in the "
                        "catalog: add it with \"entctl permission add %s "
                        "[--description D]\", or grant the pattern "
                        "\"%s:*\" or \"*\" (see \"entctl permission "
                        "list\")\n", argv[i], argv[i], area ? area : "");
                free(area);
                ok = 0;
                continue;
            }

        } else if (strcmp(argv[i], "*") != 0) {
            n = sso_exec(conn, "SELECT 1 FROM ent.permissions "
                               "WHERE split_part(name, ':', 1) "
                               "= split_part($1, ':', 1) LIMIT 1", 1,
                         params + 2, 0);

            if (n == 0) {
                fprintf(stderr, "entctl: warning: the catalog has no "
                        "permission of the area of \"%s\" yet\n", argv[i]);
            }
        }

        ok = (n >= 0)
             && sso_exec(conn,
                    "INSERT INTO ent.role_permissions (tenant_id, role, "
                    "permission) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    3, params, 0) >= 0;
    }

    free(tid);

    if (entctl_authz_end(conn, ok) != 0) {
        return 1;
    }

    printf("role %s %s %s: saved\n", grant ? "grant" : "revoke", argv[0],
           argv[1]);

    return 0;
}


int
entctl_permission(PGconn *conn, int argc, char **argv)
{
    int                 npos, n;
    PGresult           *res;
    const char         *params[2];
    static const char  *known[] = { "--description", NULL };

    if (argc >= 1 && strcmp(argv[0], "add") == 0) {
        npos = entctl_authz_args(argc - 1, argv + 1, 1, 1, known,
                                 "permission add NAME [--description D]");
        if (npos < 0) {
            return 2;
        }

        params[0] = argv[1];
        params[1] = entctl_authz_opt(argc - 1, argv + 1, npos,
                                     "--description");

        if (!authz_perm_ok(argv[1], 0)) {
            fprintf(stderr, "entctl: invalid permission \"%s\": "
                    "\"area:action\", each a lowercase letter then up to "
                    "31 lowercase letters, digits, \"_\", \".\" or \"-\"\n",
                    argv[1]);
            return 2;
        }

        if (params[1] && strlen(params[1]) > 256) {
            fprintf(stderr, "entctl: --description: at most 256 bytes\n");
            return 2;
        }

        if (sso_exec(conn,
                "INSERT INTO ent.permissions (name, description) "
                "VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET "
                "description = coalesce(EXCLUDED.description, "
                "ent.permissions.description)", 2, params, 0)
            != 1)
        {
            return 1;
        }

        printf("permission add %s: saved\n", argv[1]);

        return 0;
    }

    if (argc >= 1 && strcmp(argv[0], "remove") == 0) {
        if (entctl_authz_args(argc - 1, argv + 1, 1, 1, authz_no_opts,
                              "permission remove NAME") < 0)
        {
            return 2;
        }

        params[0] = argv[1];

        /* the exact grants go with it; patterns stay */

        if (sso_exec(conn, "BEGIN", 0, NULL, 0) < 0) {
            return 1;
        }

        n = sso_exec(conn, "DELETE FROM ent.permissions WHERE name = $1", 1,
                     params, 0);

        if (n == 0) {
            fprintf(stderr, "entctl: no permission \"%s\" in the catalog\n",
                    argv[1]);
        }

        if (n != 1
            || (n = sso_exec(conn, "DELETE FROM ent.role_permissions "
                                   "WHERE permission = $1", 1, params, 0))
               < 0
            || entctl_authz_end(conn, 1) != 0)
        {
            entctl_authz_end(conn, 0);
            return 1;
        }

        printf("permission remove %s: removed (and %d grants of it)\n",
               argv[1], n);

        return 0;
    }

    if (argc >= 1 && strcmp(argv[0], "list") == 0) {
        if (entctl_authz_args(argc - 1, argv + 1, 0, 0, authz_no_opts,
                              "permission list") < 0)
        {
            return 2;
        }

        res = entctl_authz_query(conn,
            "SELECT name AS permission, coalesce(description, '') "
            "AS description FROM ent.permissions ORDER BY name", 0, NULL);

        if (res == NULL) {
            return 1;
        }

        entctl_authz_table(res);
        PQclear(res);

        return 0;
    }

    fprintf(stderr, "usage: entctl permission add NAME [--description D] | "
            "permission remove NAME | permission list\n");
    return 2;
}


int
entctl_member(PGconn *conn, int argc, char **argv)
{
    int          n;
    char        *tid, *uid;
    PGresult    *res;
    const char  *params[3];

    if (argc < 1) {
        goto usage;
    }

    if (strcmp(argv[0], "set") == 0) {
        return authz_member_set(conn, argc - 1, argv + 1);
    }

    if (strcmp(argv[0], "list") == 0) {
        if (entctl_authz_args(argc - 1, argv + 1, 1, 1, authz_no_opts,
                              "member list CODE") < 0)
        {
            return 2;
        }

        tid = sso_tenant_id(conn, argv[1]);
        if (tid == NULL) {
            return 1;
        }

        params[0] = tid;

        res = entctl_authz_query(conn,
            "SELECT coalesce(u.email, '') AS email, m.role, "
            "m.status || CASE WHEN u.status <> 'active' "
            "THEN ' (user ' || u.status || ')' ELSE '' END AS status, "
            "m.source, coalesce(u.name, '') AS name "
            "FROM ent.memberships m JOIN ent.users u ON u.id = m.user_id "
            "WHERE m.tenant_id = $1 ORDER BY lower(u.email), u.id", 1,
            params);

        free(tid);

        if (res == NULL) {
            return 1;
        }

        entctl_authz_table(res);
        PQclear(res);

        return 0;
    }

    if (strcmp(argv[0], "suspend") != 0 && strcmp(argv[0], "activate") != 0
        && strcmp(argv[0], "remove") != 0)
    {
        goto usage;
    }

    if (entctl_authz_args(argc - 1, argv + 1, 2, 2, authz_no_opts,
                          "member suspend|activate|remove CODE EMAIL") < 0)
    {
        return 2;
    }

    tid = sso_tenant_id(conn, argv[1]);
    if (tid == NULL) {
        return 1;
    }

    uid = authz_user(conn, tid, argv[1], argv[2], 1);
    if (uid == NULL) {
        free(tid);
        return 1;
    }

    params[0] = tid;
    params[1] = uid;

    if (argv[0][0] == 'r') {
        n = sso_exec(conn, "DELETE FROM ent.memberships "
                           "WHERE tenant_id = $1 AND user_id = $2", 2,
                     params, 0);

    } else {
        params[2] = argv[0][0] == 's' ? "suspended" : "active";
        n = sso_exec(conn, "UPDATE ent.memberships SET status = $3 "
                           "WHERE tenant_id = $1 AND user_id = $2", 3,
                     params, 0);
    }

    free(tid);
    free(uid);

    if (n != 1) {
        return 1;
    }

    printf("member %s %s %s: %s\n", argv[0], argv[1], argv[2],
           argv[0][0] == 'r' ? "removed"
           : argv[0][0] == 's' ? "suspended" : "active");

    return 0;

usage:

    fprintf(stderr, "usage: entctl member set CODE EMAIL ROLE "
            "[--status active|suspended] | member suspend|activate|remove "
            "CODE EMAIL | member list CODE\n");
    return 2;
}


static int
authz_member_set(PGconn *conn, int argc, char **argv)
{
    int                 npos, n;
    char               *tid, *uid;
    const char         *status, *params[4];
    static const char  *known[] = { "--status", NULL };

    npos = entctl_authz_args(argc, argv, 3, 3, known,
                             "member set CODE EMAIL ROLE "
                             "[--status active|suspended]");
    if (npos < 0) {
        return 2;
    }

    status = entctl_authz_opt(argc, argv, npos, "--status");

    if (status && strcmp(status, "active") != 0
        && strcmp(status, "suspended") != 0)
    {
        fprintf(stderr, "entctl: --status active|suspended\n");
        return 2;
    }

    tid = sso_tenant_id(conn, argv[0]);
    if (tid == NULL) {
        return 1;
    }

    if (!entctl_authz_role_exists(conn, tid, argv[0], argv[2])) {
        free(tid);
        return 1;
    }

    uid = authz_user(conn, tid, argv[0], argv[1], 0);
    if (uid == NULL) {
        free(tid);
        return 1;
    }

    params[0] = tid;
    params[1] = uid;
    params[2] = argv[2];
    params[3] = status;

    n = sso_exec(conn,
        "INSERT INTO ent.memberships (tenant_id, user_id, role, status, "
        "source) VALUES ($1, $2, $3, coalesce($4, 'active'), 'admin') "
        "ON CONFLICT (tenant_id, user_id) DO UPDATE SET "
        "role = EXCLUDED.role, "
        "status = coalesce($4, ent.memberships.status)", 4, params, 0);

    free(tid);
    free(uid);

    if (n != 1) {
        return 1;
    }

    printf("member set %s %s %s: saved\n", argv[0], argv[1], argv[2]);

    return 0;
}
