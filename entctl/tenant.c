/*
 * entctl: tenant administration.
 *
 *   tenant create CODE --name NAME [--tier T] [--region R] [--parent CODE]
 *                      [--upstream NAME] [--status S]
 *   tenant list | show CODE | delete CODE | suspend CODE | resume CODE
 *   tenant update CODE [--name N] [--tier T] [--region R] [--parent CODE|none]
 *                      [--upstream N|none] [--status S]
 *                      [--brand-color #rrggbb|none] [--logo-url URL|none]
 *                      [--billing-day 1..28|inherit]
 *                      [--inherit-roles on|off] [--jit-role ROLE]
 *   domain add CODE DOMAIN | domain remove DOMAIN
 *   feature set CODE FEATURE on|off | feature unset CODE FEATURE
 *   feature platform FEATURE [--enabled on|off] [--rollout PERCENT]
 *   allow add CODE CIDR | allow remove CODE CIDR | allow clear CODE
 *   headers set CODE [--csp-sources S|none] [--report-only on|off|inherit]
 *                    [--report-uri URL|none] [--hsts-preload on|off]
 *   maintenance on|off CODE | maintenance on|off [--retry-after SECONDS]
 *   ratelimit set CODE POLICY N|unlimited | ratelimit unset CODE POLICY
 *   ratelimit list CODE
 *
 * Every change is one parameterized statement, run once the whole command
 * line is checked (entctl_args(): an unknown option, a stray argument or
 * a malformed value is bad usage, exit 2, and nothing is written); the
 * triggers in the schema notify the nginx nodes, which apply it within a
 * second.  Input is checked here with the same rules the edge applies
 * (ngx_ent_host.c), so that errors say what is wrong before the database
 * does.
 */

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "entctl.h"
#include "ngx_ent_host.h"
#include "ngx_ent_rows.h"


static int ent_code_ok(const char *code);
static int ent_domain_ok(const char *domain, char *out);
static int ent_cidr_ok(const char *cidr);
static const char *ent_opt(int argc, char **argv, const char *name);
static int ent_onoff(const char *name, const char *v, int inherit);
static int ent_exec(PGconn *conn, const char *sql, int n,
    const char *const *params, int expect_rows);
static int ent_tenant_exists(PGconn *conn, const char *code);
static int ent_redis(const char *addr, const char *cmd, const char *key,
    const char *value);
static int ent_redis_exchange(const char *addr, int ask, const char *cmd,
    const char *key, const char *value, char *reply, size_t size);


static const char *const  ent_statuses[] = {
    "active", "suspended", "deactivated", "maintenance", NULL
};


static const entctl_opt_t  ent_no_opts[] = { { NULL, 0 } };

static const entctl_opt_t  ent_tenant_opts[] = {
    { "--name", ENTCTL_OPT_VALUE },
    { "--tier", ENTCTL_OPT_VALUE },
    { "--region", ENTCTL_OPT_VALUE },
    { "--parent", ENTCTL_OPT_VALUE },
    { "--upstream", ENTCTL_OPT_VALUE },
    { "--status", ENTCTL_OPT_VALUE },
    { "--brand-color", ENTCTL_OPT_VALUE },
    { "--logo-url", ENTCTL_OPT_VALUE },
    { "--billing-day", ENTCTL_OPT_VALUE },
    { "--inherit-roles", ENTCTL_OPT_VALUE },
    { "--jit-role", ENTCTL_OPT_VALUE },
    { NULL, 0 }
};

/* the options of "tenant update" that "tenant create" refuses */

static const char *const  ent_update_only[] = {
    "--brand-color", "--logo-url", "--billing-day", "--inherit-roles",
    "--jit-role", NULL
};

#define ENT_MAINTENANCE_USAGE                                                \
    "maintenance on|off CODE | maintenance on|off [--retry-after SECONDS]"

#define ENT_TENANT_CREATE_USAGE                                              \
    "tenant create CODE --name NAME [--tier T] [--region R] "                \
    "[--parent CODE] [--upstream NAME] [--status S]"

#define ENT_TENANT_UPDATE_USAGE                                              \
    "tenant update CODE [--name N] [--tier T] [--region R] "                 \
    "[--parent CODE|none] [--upstream NAME|none] [--status S] "              \
    "[--brand-color #rrggbb|none] [--logo-url URL|none] "                    \
    "[--billing-day 1..28|inherit] [--inherit-roles on|off] "                \
    "[--jit-role ROLE]"


static int
ent_code_ok(const char *code)
{
    size_t  i, n;

    n = strlen(code);

    if (n == 0 || n > 63 || code[0] == '-' || code[n - 1] == '-') {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (!(islower((unsigned char) code[i])
              || isdigit((unsigned char) code[i]) || code[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


static int
ent_domain_ok(const char *domain, char *out)
{
    size_t  n;

    if (strlen(domain) > NGX_ENT_HOST_MAX) {
        return 0;
    }

    if (ngx_ent_host_normalize((const unsigned char *) domain,
                               strlen(domain), (unsigned char *) out, &n)
        != NGX_ENT_HOST_OK)
    {
        return 0;
    }

    out[n] = '\0';

    /* a name, not "localhost": at least two labels */
    return strchr(out, '.') != NULL;
}


static int
ent_cidr_ok(const char *cidr)
{
    ngx_ent_iprange_t  r;

    return ngx_ent_cidr_parse((const unsigned char *) cidr, strlen(cidr), &r)
           != 0;
}


static const char *
ent_opt(int argc, char **argv, const char *name)
{
    int  i;

    for (i = 0; i < argc - 1; i++) {
        if (strcmp(argv[i], name) == 0) {
            return argv[i + 1];
        }
    }

    return NULL;
}


/* runs a statement; prints rows as "a|b|c" lines when expect_rows */

static int
ent_exec(PGconn *conn, const char *sql, int n, const char *const *params,
    int expect_rows)
{
    int             i, j;
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

    if (expect_rows) {
        for (i = 0; i < PQntuples(res); i++) {
            for (j = 0; j < PQnfields(res); j++) {
                printf("%s%s", j ? "|" : "",
                       PQgetisnull(res, i, j) ? "" : PQgetvalue(res, i, j));
            }

            printf("\n");
        }
    }

    n = (st == PGRES_TUPLES_OK) ? PQntuples(res) : atoi(PQcmdTuples(res));

    PQclear(res);

    return n;
}


static int
ent_tenant_exists(PGconn *conn, const char *code)
{
    const char  *p[1];

    p[0] = code;

    if (ent_exec(conn, "SELECT 1 FROM ent.tenants WHERE code = $1", 1, p, 0)
        != 1)
    {
        fprintf(stderr, "entctl: no tenant \"%s\"\n", code);
        return 0;
    }

    return 1;
}


int
entctl_tenant(PGconn *conn, int argc, char **argv)
{
    int          i, n, create;
    char         usage[64];
    const char  *verb, *code, *v, *p[12];

    if (argc < 1) {
        goto usage;
    }

    verb = argv[0];
    argc--;
    argv++;

    if (strcmp(verb, "list") == 0) {
        if (entctl_args(argc, argv, 0, 0, ent_no_opts, "tenant list") < 0) {
            return 2;
        }

        return ent_exec(conn,
                        "SELECT t.code, t.display_name, t.status, "
                        "coalesce(t.plan_id, '(inherited)'), "
                        "coalesce(t.region, ''), coalesce(p.code, '') "
                        "FROM ent.tenants t "
                        "LEFT JOIN ent.tenants p ON p.id = t.parent_id "
                        "ORDER BY t.code", 0, NULL, 1) < 0;
    }

    create = (strcmp(verb, "create") == 0);

    if (create || strcmp(verb, "update") == 0) {
        if (entctl_args(argc, argv, 1, 1, ent_tenant_opts,
                        create ? ENT_TENANT_CREATE_USAGE
                               : ENT_TENANT_UPDATE_USAGE)
            < 0)
        {
            return 2;
        }

    } else if (strcmp(verb, "show") == 0 || strcmp(verb, "suspend") == 0
               || strcmp(verb, "resume") == 0
               || strcmp(verb, "delete") == 0)
    {
        snprintf(usage, sizeof(usage), "tenant %s CODE", verb);

        if (entctl_args(argc, argv, 1, 1, ent_no_opts, usage) < 0) {
            return 2;
        }

    } else {
        goto usage;
    }

    code = argv[0];

    if (!ent_code_ok(code)) {
        fprintf(stderr, "entctl: invalid tenant code \"%s\": use 1 to 63 "
                "lowercase letters, digits and inner hyphens\n", code);
        return 1;
    }

    /* the whole command line first: bad usage is 2, and changes nothing */

    if (create) {
        if (ent_opt(argc, argv, "--name") == NULL) {
            fprintf(stderr, "entctl: \"tenant create\" needs --name\n");
            return 2;
        }

        for (i = 0; ent_update_only[i]; i++) {
            if (ent_opt(argc, argv, ent_update_only[i])) {
                fprintf(stderr, "entctl: %s is set with \"tenant update\" "
                        "once the tenant exists\n", ent_update_only[i]);
                return 2;
            }
        }

    } else if (strcmp(verb, "update") == 0) {
        if (argc == 1) {
            fprintf(stderr, "entctl: \"tenant update %s\" without an option "
                    "changes nothing\nusage: entctl %s\n", code,
                    ENT_TENANT_UPDATE_USAGE);
            return 2;
        }

        v = ent_opt(argc, argv, "--inherit-roles");

        if (v && strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
            fprintf(stderr, "entctl: --inherit-roles takes \"on\" or "
                    "\"off\"\n");
            return 2;
        }

        v = ent_opt(argc, argv, "--billing-day");

        if (v && strcmp(v, "inherit") != 0
            && (strlen(v) == 0 || strlen(v) > 2
                || strspn(v, "0123456789") != strlen(v)
                || atoi(v) < 1 || atoi(v) > 28))
        {
            fprintf(stderr, "entctl: --billing-day takes 1 to 28, or "
                    "\"inherit\"\n");
            return 2;
        }

        v = ent_opt(argc, argv, "--brand-color");

        if (v && strcmp(v, "none") != 0
            && (strlen(v) != 7 || v[0] != '#'
                || strspn(v + 1, "0123456789abcdefABCDEF") != 6))
        {
            fprintf(stderr, "entctl: --brand-color takes \"#rrggbb\" (six "
                    "hexadecimal digits), or \"none\"\n");
            return 2;
        }
    }

    v = ent_opt(argc, argv, "--status");

    if (v) {
        for (i = 0; ent_statuses[i]; i++) {
            if (strcmp(v, ent_statuses[i]) == 0) {
                break;
            }
        }

        if (ent_statuses[i] == NULL) {
            fprintf(stderr, "entctl: invalid status \"%s\": use active, "
                    "suspended, deactivated or maintenance\n", v);
            return 1;
        }
    }

    v = ent_opt(argc, argv, "--tier");

    if (v) {
        p[0] = v;
        if (ent_exec(conn, "SELECT 1 FROM ent.plans WHERE id = $1", 1, p, 0)
            != 1)
        {
            fprintf(stderr, "entctl: no tier \"%s\" (see ent.plans)\n", v);
            return 1;
        }
    }

    v = ent_opt(argc, argv, "--parent");

    if (v && strcmp(v, "none") != 0 && !ent_tenant_exists(conn, v)) {
        return 1;
    }

    if (create) {
        p[0] = code;
        p[1] = ent_opt(argc, argv, "--name");
        p[2] = ent_opt(argc, argv, "--tier");
        p[3] = ent_opt(argc, argv, "--region");
        p[4] = ent_opt(argc, argv, "--parent");
        p[5] = ent_opt(argc, argv, "--upstream");
        p[6] = ent_opt(argc, argv, "--status");

        /* "none" (no parent, no upstream) is what create does anyway */

        for (i = 4; i <= 5; i++) {
            if (p[i] && strcmp(p[i], "none") == 0) {
                p[i] = NULL;
            }
        }

        n = ent_exec(conn,
                     "INSERT INTO ent.tenants (code, display_name, plan_id, "
                     "region, parent_id, upstream, status) "
                     "SELECT $1, $2, coalesce($3, CASE WHEN $5::text IS NULL "
                     "THEN 'free' END), $4, "
                     "(SELECT id FROM ent.tenants WHERE code = $5), $6, "
                     "coalesce($7, 'active') RETURNING id",
                     7, p, 1);
        return n == 1 ? 0 : 1;
    }

    if (!ent_tenant_exists(conn, code)) {
        return 1;
    }

    p[0] = code;

    if (strcmp(verb, "show") == 0) {
        return ent_exec(conn,
                        "SELECT 'id: ' || t.id || E'\\ncode: ' || t.code "
                        "|| E'\\nname: ' || t.display_name "
                        "|| E'\\nstatus: ' || t.status "
                        "|| E'\\ntier: ' || coalesce(t.plan_id, '(inherited)') "
                        "|| E'\\nregion: ' || coalesce(t.region, '') "
                        "|| E'\\nparent: ' || coalesce(p.code, '') "
                        "|| E'\\nupstream: ' || coalesce(t.upstream, '') "
                        "|| E'\\njit_role: ' || t.jit_role "
                        "|| E'\\ninherit_roles: ' || t.inherit_roles "
                        "|| E'\\ndomains: ' || coalesce((SELECT string_agg("
                        "domain, ',' ORDER BY domain) FROM ent.tenant_domains "
                        "WHERE tenant_id = t.id), '') "
                        "|| E'\\nfeatures: ' || t.features::text "
                        "|| E'\\nallow: ' || coalesce(array_to_string("
                        "t.allow_cidrs, ','), '(inherited)') "
                        "|| E'\\neffective: ' || coalesce((SELECT status || ' "
                        "' || tier || ' ' || coalesce(features, '') FROM "
                        "ent.tenant_for_host('', t.code)), '') "
                        "FROM ent.tenants t "
                        "LEFT JOIN ent.tenants p ON p.id = t.parent_id "
                        "WHERE t.code = $1", 1, p, 1) < 0;
    }

    if (strcmp(verb, "suspend") == 0 || strcmp(verb, "resume") == 0) {
        p[1] = verb[0] == 's' ? "suspended" : "active";
        return ent_exec(conn, "UPDATE ent.tenants SET status = $2 "
                              "WHERE code = $1", 2, p, 0) == 1 ? 0 : 1;
    }

    if (strcmp(verb, "delete") == 0) {
        if (ent_exec(conn, "SELECT 1 FROM ent.tenants c JOIN ent.tenants t "
                           "ON c.parent_id = t.id WHERE t.code = $1", 1, p, 0)
            > 0)
        {
            fprintf(stderr, "entctl: tenant \"%s\" has child tenants: move "
                    "or delete them first\n", code);
            return 1;
        }

        return ent_exec(conn, "DELETE FROM ent.tenants WHERE code = $1",
                        1, p, 0) == 1 ? 0 : 1;
    }

    /* update: a system role or a custom role of this tenant */

    p[1] = ent_opt(argc, argv, "--jit-role");

    if (p[1]
        && ent_exec(conn, "SELECT 1 FROM ent.roles r "
                          "JOIN ent.tenants t ON t.code = $1 "
                          "WHERE r.name = $2 AND (r.tenant_id IS NULL "
                          "OR r.tenant_id = t.id) LIMIT 1", 2, p, 0)
           != 1)
    {
        fprintf(stderr, "entctl: no role \"%s\" in tenant \"%s\" (see "
                "\"entctl role list %s\")\n", p[1], code, code);
        return 1;
    }

    /*
     * one statement: all of it is saved, or nothing (a value the schema
     * refuses, such as a name too long, changes nothing)
     */

    p[1] = ent_opt(argc, argv, "--name");
    p[2] = ent_opt(argc, argv, "--tier");
    p[3] = ent_opt(argc, argv, "--region");
    p[4] = ent_opt(argc, argv, "--parent");
    p[5] = ent_opt(argc, argv, "--upstream");
    p[6] = ent_opt(argc, argv, "--status");
    p[7] = ent_opt(argc, argv, "--brand-color");
    p[8] = ent_opt(argc, argv, "--logo-url");
    p[9] = ent_opt(argc, argv, "--billing-day");
    p[10] = ent_opt(argc, argv, "--inherit-roles");
    p[11] = ent_opt(argc, argv, "--jit-role");

    n = ent_exec(conn,
                 "UPDATE ent.tenants SET "
                 "display_name = coalesce($2, display_name), "
                 "plan_id = coalesce($3, plan_id), "
                 "region = coalesce($4, region), "
                 "parent_id = CASE WHEN $5::text IS NULL THEN parent_id "
                 "WHEN $5 = 'none' THEN NULL "
                 "ELSE (SELECT id FROM ent.tenants WHERE code = $5) END, "
                 "upstream = CASE WHEN $6::text IS NULL THEN upstream "
                 "WHEN $6 = 'none' THEN NULL ELSE $6 END, "
                 "status = coalesce($7, status), "
                 "brand_color = CASE WHEN $8::text IS NULL THEN brand_color "
                 "WHEN $8 = 'none' THEN NULL ELSE $8 END, "
                 "logo_url = CASE WHEN $9::text IS NULL THEN logo_url "
                 "WHEN $9 = 'none' THEN NULL ELSE $9 END, "
                 "billing_anchor_day = CASE WHEN $10::text IS NULL "
                 "THEN billing_anchor_day WHEN $10 = 'inherit' THEN NULL "
                 "ELSE $10::smallint END, "
                 "inherit_roles = coalesce($11::text = 'on', inherit_roles), "
                 "jit_role = coalesce($12, jit_role) "
                 "WHERE code = $1", 12, p, 0);

    return n == 1 ? 0 : 1;

usage:

    fprintf(stderr, "usage: entctl tenant create|list|show|update|suspend|"
            "resume|delete ... (see entctl --help)\n");
    return 2;
}


int
entctl_domain(PGconn *conn, int argc, char **argv)
{
    char         domain[NGX_ENT_HOST_MAX + 8];
    const char  *p[2];

    if (argc >= 1 && strcmp(argv[0], "add") == 0) {
        if (entctl_args(argc - 1, argv + 1, 2, 2, ent_no_opts,
                        "domain add CODE DOMAIN") < 0)
        {
            return 2;
        }

        if (!ent_domain_ok(argv[2], domain)) {
            fprintf(stderr, "entctl: invalid domain \"%s\": use a DNS name "
                    "such as \"portal.example.com\", no IP address, port or "
                    "scheme\n", argv[2]);
            return 1;
        }

        if (!ent_tenant_exists(conn, argv[1])) {
            return 1;
        }

        p[0] = argv[1];
        p[1] = domain;

        return ent_exec(conn, "INSERT INTO ent.tenant_domains (domain, "
                              "tenant_id) SELECT $2, id FROM ent.tenants "
                              "WHERE code = $1", 2, p, 0) == 1 ? 0 : 1;
    }

    if (argc >= 1 && strcmp(argv[0], "remove") == 0) {
        if (entctl_args(argc - 1, argv + 1, 1, 1, ent_no_opts,
                        "domain remove DOMAIN") < 0)
        {
            return 2;
        }

        if (!ent_domain_ok(argv[1], domain)) {
            fprintf(stderr, "entctl: invalid domain \"%s\"\n", argv[1]);
            return 1;
        }

        p[0] = domain;

        if (ent_exec(conn, "DELETE FROM ent.tenant_domains WHERE domain = $1",
                     1, p, 0) != 1)
        {
            fprintf(stderr, "entctl: no domain \"%s\"\n", domain);
            return 1;
        }

        return 0;
    }

    fprintf(stderr, "usage: entctl domain add CODE DOMAIN | "
            "entctl domain remove DOMAIN\n");
    return 2;
}


int
entctl_feature(PGconn *conn, int argc, char **argv)
{
    int                        i, npos;
    const char                *p[3], *v;
    static const entctl_opt_t  known[] = {
        { "--enabled", ENTCTL_OPT_VALUE },
        { "--rollout", ENTCTL_OPT_VALUE },
        { NULL, 0 }
    };

    npos = -1;

    if (argc >= 1 && strcmp(argv[0], "set") == 0) {
        npos = entctl_args(argc - 1, argv + 1, 3, 3, ent_no_opts,
                           "feature set CODE FEATURE on|off");

    } else if (argc >= 1 && strcmp(argv[0], "unset") == 0) {
        npos = entctl_args(argc - 1, argv + 1, 2, 2, ent_no_opts,
                           "feature unset CODE FEATURE");

    } else if (argc >= 1 && strcmp(argv[0], "platform") == 0) {
        npos = entctl_args(argc - 1, argv + 1, 1, 1, known,
                           "feature platform FEATURE [--enabled on|off] "
                           "[--rollout PERCENT]");

    } else {
        fprintf(stderr, "usage: entctl feature set CODE FEATURE on|off | "
                "unset CODE FEATURE | platform FEATURE [--enabled on|off] "
                "[--rollout PERCENT]\n");
    }

    if (npos < 0) {
        return 2;
    }

    /* the feature: "platform FEATURE ...", "set|unset CODE FEATURE" */

    v = (argv[0][0] == 'p') ? argv[1] : argv[2];

    for (i = 0; v[i]; i++) {
        if (!(islower((unsigned char) v[i]) || v[i] == '_'
              || (i && isdigit((unsigned char) v[i]))))
        {
            break;
        }
    }

    if (i == 0 || v[i] != '\0') {
        fprintf(stderr, "entctl: invalid feature \"%s\": use lowercase "
                "letters, digits and \"_\"\n", v);
        return 1;
    }

    if (strcmp(argv[0], "set") == 0) {
        if (strcmp(argv[3], "on") != 0 && strcmp(argv[3], "off") != 0) {
            fprintf(stderr, "entctl: a feature is set \"on\" or \"off\"\n");
            return 2;
        }

        if (!ent_tenant_exists(conn, argv[1])) {
            return 1;
        }

        p[0] = argv[1];
        p[1] = argv[2];
        p[2] = strcmp(argv[3], "on") == 0 ? "true" : "false";

        return ent_exec(conn, "UPDATE ent.tenants SET features = features "
                              "|| jsonb_build_object($2::text, $3::boolean) "
                              "WHERE code = $1", 3, p, 0) == 1 ? 0 : 1;
    }

    if (strcmp(argv[0], "unset") == 0) {
        if (!ent_tenant_exists(conn, argv[1])) {
            return 1;
        }

        p[0] = argv[1];
        p[1] = argv[2];

        return ent_exec(conn, "UPDATE ent.tenants SET features = features "
                              "- $2::text WHERE code = $1", 2, p, 0) == 1
               ? 0 : 1;
    }

    p[0] = argv[1];
    p[1] = ent_opt(argc, argv, "--enabled");
    p[2] = ent_opt(argc, argv, "--rollout");

    if (p[1] && strcmp(p[1], "on") != 0 && strcmp(p[1], "off") != 0) {
        fprintf(stderr, "entctl: --enabled takes \"on\" or \"off\"\n");
        return 2;
    }

    if (p[2] && (strlen(p[2]) == 0 || strlen(p[2]) > 3
                 || strspn(p[2], "0123456789") != strlen(p[2])
                 || atoi(p[2]) > 100))
    {
        fprintf(stderr, "entctl: --rollout takes a percentage, 0 to 100\n");
        return 2;
    }

    return ent_exec(conn, "INSERT INTO ent.features (name, enabled, "
                          "rollout_percent) VALUES ($1, "
                          "coalesce($2 = 'on', true), "
                          "coalesce($3::integer, 100)) "
                          "ON CONFLICT (name) DO UPDATE SET "
                          "enabled = coalesce($2 = 'on', "
                          "ent.features.enabled), "
                          "rollout_percent = coalesce($3::integer, "
                          "ent.features.rollout_percent), "
                          "updated_at = now()", 3, p, 0) == 1 ? 0 : 1;
}


int
entctl_allow(PGconn *conn, int argc, char **argv)
{
    int          npos;
    const char  *p[2];

    npos = -1;

    if (argc >= 1 && (strcmp(argv[0], "add") == 0
                      || strcmp(argv[0], "remove") == 0))
    {
        npos = entctl_args(argc - 1, argv + 1, 2, 2, ent_no_opts,
                           argv[0][0] == 'a' ? "allow add CODE CIDR"
                                             : "allow remove CODE CIDR");

    } else if (argc >= 1 && strcmp(argv[0], "clear") == 0) {
        npos = entctl_args(argc - 1, argv + 1, 1, 1, ent_no_opts,
                           "allow clear CODE");

    } else {
        fprintf(stderr, "usage: entctl allow add|remove CODE CIDR | "
                "allow clear CODE (inherit from the parent)\n");
    }

    if (npos < 0) {
        return 2;
    }

    if (npos == 2 && !ent_cidr_ok(argv[2])) {
        fprintf(stderr, "entctl: invalid CIDR \"%s\": use forms such as "
                "\"203.0.113.0/24\", \"198.51.100.7\" or "
                "\"2001:db8::/32\"\n", argv[2]);
        return 1;
    }

    if (!ent_tenant_exists(conn, argv[1])) {
        return 1;
    }

    p[0] = argv[1];
    p[1] = (npos == 2) ? argv[2] : NULL;

    if (argv[0][0] == 'a') {
        return ent_exec(conn, "UPDATE ent.tenants SET allow_cidrs = "
                              "(SELECT array_agg(DISTINCT c) FROM "
                              "unnest(coalesce(allow_cidrs, '{}') "
                              "|| $2::cidr) c) WHERE code = $1",
                        2, p, 0) == 1 ? 0 : 1;
    }

    if (argv[0][0] == 'r') {
        return ent_exec(conn, "UPDATE ent.tenants SET allow_cidrs = "
                              "array_remove(allow_cidrs, $2::cidr) "
                              "WHERE code = $1", 2, p, 0) == 1 ? 0 : 1;
    }

    return ent_exec(conn, "UPDATE ent.tenants SET allow_cidrs = NULL "
                          "WHERE code = $1", 1, p, 0) == 1 ? 0 : 1;
}


/* "on", "off", and "inherit" when inherit is set; 0 after a message */

static int
ent_onoff(const char *name, const char *v, int inherit)
{
    if (v == NULL || strcmp(v, "on") == 0 || strcmp(v, "off") == 0
        || (inherit && strcmp(v, "inherit") == 0))
    {
        return 1;
    }

    fprintf(stderr, "entctl: %s takes \"on\"%s \"off\"%s, not \"%s\"\n",
            name, inherit ? "," : " or", inherit ? " or \"inherit\"" : "",
            v);

    return 0;
}


int
entctl_headers(PGconn *conn, int argc, char **argv)
{
    const char                *p[5];
    static const entctl_opt_t  known[] = {
        { "--csp-sources", ENTCTL_OPT_VALUE },
        { "--report-only", ENTCTL_OPT_VALUE },
        { "--report-uri", ENTCTL_OPT_VALUE },
        { "--hsts-preload", ENTCTL_OPT_VALUE },
        { NULL, 0 }
    };

#define ENT_HEADERS_USAGE                                                    \
    "headers set CODE [--csp-sources S|none] "                               \
    "[--report-only on|off|inherit] [--report-uri URL|none] "                \
    "[--hsts-preload on|off]"

    if (argc < 1 || strcmp(argv[0], "set") != 0) {
        fprintf(stderr, "usage: entctl " ENT_HEADERS_USAGE "\n");
        return 2;
    }

    if (entctl_args(argc - 1, argv + 1, 1, 1, known, ENT_HEADERS_USAGE) < 0) {
        return 2;
    }

    if (argc == 2) {
        fprintf(stderr, "entctl: \"headers set %s\" without an option "
                "changes nothing\nusage: entctl " ENT_HEADERS_USAGE "\n",
                argv[1]);
        return 2;
    }

    p[0] = argv[1];
    p[1] = ent_opt(argc, argv, "--csp-sources");
    p[2] = ent_opt(argc, argv, "--report-only");
    p[3] = ent_opt(argc, argv, "--report-uri");
    p[4] = ent_opt(argc, argv, "--hsts-preload");

    if (!ent_onoff("--report-only", p[2], 1)
        || !ent_onoff("--hsts-preload", p[4], 0))
    {
        return 2;
    }

    if (!ent_tenant_exists(conn, argv[1])) {
        return 1;
    }

    return ent_exec(conn,
                    "UPDATE ent.tenants SET "
                    "csp_sources = CASE WHEN $2::text IS NULL THEN csp_sources"
                    " WHEN $2 = 'none' THEN NULL ELSE $2 END, "
                    "csp_report_only = CASE WHEN $3::text IS NULL THEN "
                    "csp_report_only WHEN $3 = 'inherit' THEN NULL "
                    "ELSE $3 = 'on' END, "
                    "csp_report_uri = CASE WHEN $4::text IS NULL THEN "
                    "csp_report_uri WHEN $4 = 'none' THEN NULL ELSE $4 END, "
                    "hsts_preload = CASE WHEN $5::text IS NULL THEN "
                    "hsts_preload ELSE $5 = 'on' END "
                    "WHERE code = $1", 5, p, 0) == 1 ? 0 : 1;

#undef ENT_HEADERS_USAGE
}


int
entctl_maintenance(PGconn *conn, int argc, char **argv, const char *redis)
{
    int                        on, npos;
    PGresult                  *res;
    const char                *p[2], *retry;
    static const entctl_opt_t  known[] = {
        { "--retry-after", ENTCTL_OPT_VALUE },
        { NULL, 0 }
    };

    npos = entctl_args(argc, argv, 1, 2, known,
                       ENT_MAINTENANCE_USAGE);
    if (npos < 0) {
        return 2;
    }

    if (strcmp(argv[0], "on") != 0 && strcmp(argv[0], "off") != 0) {
        fprintf(stderr, "usage: entctl " ENT_MAINTENANCE_USAGE "\n");
        return 2;
    }

    on = (strcmp(argv[0], "on") == 0);
    retry = ent_opt(argc, argv, "--retry-after");

    if (retry && (strlen(retry) == 0 || strlen(retry) > 5
                  || strspn(retry, "0123456789") != strlen(retry)
                  || atoi(retry) < 1 || atoi(retry) > 86400))
    {
        fprintf(stderr, "entctl: --retry-after takes 1 to 86400 seconds\n");
        return 2;
    }

    if (npos == 1) {
        /* the whole platform: the Redis key every worker polls */

        return ent_redis(redis, on ? "SET" : "DEL", "ent:maintenance",
                         on ? (retry ? retry : "1") : NULL);
    }

    /* one tenant: its status, through PostgreSQL */

    if (retry) {
        fprintf(stderr, "entctl: --retry-after is for the whole platform; "
                "a tenant in maintenance answers with the Retry-After of "
                "the nginx directive ent_tenant_retry_after\n");
        return 2;
    }

    p[0] = argv[1];
    p[1] = on ? "maintenance" : "active";

    res = PQexecParams(conn,
                       "WITH u AS (UPDATE ent.tenants SET status = $2 "
                       "WHERE code = $1 AND status IN ('active', "
                       "'maintenance') RETURNING 1) "
                       "SELECT t.status, (SELECT count(*) FROM u) "
                       "FROM ent.tenants t WHERE t.code = $1",
                       2, NULL, p, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "entctl: %s", PQresultErrorMessage(res));
        PQclear(res);
        return 1;
    }

    if (PQntuples(res) != 1) {
        fprintf(stderr, "entctl: no tenant \"%s\"\n", argv[1]);
        PQclear(res);
        return 1;
    }

    if (strcmp(PQgetvalue(res, 0, 1), "1") != 0) {
        /* suspended or deactivated: maintenance does not change that */

        fprintf(stderr, "entctl: tenant \"%s\" is %s, left as it is: "
                "\"maintenance on|off\" changes an active tenant or one in "
                "maintenance (\"entctl tenant resume %s\" makes it "
                "active)\n", argv[1], PQgetvalue(res, 0, 0), argv[1]);
        PQclear(res);
        return 1;
    }

    PQclear(res);

    return 0;
}


/*
 * A blocking RESP exchange (fine for a command line tool), following a
 * Redis Cluster's MOVED and ASK: the key's slot may be on another node
 * than the one named.
 */

static int
ent_redis(const char *addr, const char *cmd, const char *key,
    const char *value)
{
    int                   tries, kind, ask;
    char                  target[160], next[160], reply[512], *colon;
    size_t                len, ip_len, port_len;
    unsigned int          slot;
    const unsigned char  *ip, *port;

    snprintf(target, sizeof(target), "%s", addr);
    ask = 0;

    for (tries = 0; tries < 5; tries++) {

        if (ent_redis_exchange(target, ask, cmd, key, value, reply,
                               sizeof(reply))
            != 0)
        {
            return 1;
        }

        if (reply[0] != '-') {
            return 0;
        }

        len = strcspn(reply + 1, "\r\n");

        if (ngx_ent_redis_redirect((unsigned char *) reply + 1, len, &kind,
                                   &slot, &ip, &ip_len, &port, &port_len)
            != 0)
        {
            fprintf(stderr, "entctl: redis refused: %.*s\n", (int) len,
                    reply + 1);
            return 1;
        }

        /* an empty ip: the node that answered, on another port */

        if (ip_len == 0) {
            colon = strrchr(target, ':');
            ip = (const unsigned char *) target;
            ip_len = colon ? (size_t) (colon - target) : strlen(target);
        }

        snprintf(next, sizeof(next), "%.*s:%.*s", (int) ip_len,
                 (const char *) ip, (int) port_len, (const char *) port);
        memcpy(target, next, sizeof(target));

        ask = (kind == NGX_ENT_REDIS_ASK);
    }

    fprintf(stderr, "entctl: redis: more than 5 redirections\n");

    return 1;
}


/* one command to addr (after ASKING with ask): its one-line reply */

static int
ent_redis_exchange(const char *addr, int ask, const char *cmd,
    const char *key, const char *value, char *reply, size_t size)
{
    int               fd, rc, lines;
    char              host[160], buf[512], *colon, *p;
    const char       *port;
    size_t            len, got;
    ssize_t           n;
    struct addrinfo   hints, *ai;

    snprintf(host, sizeof(host), "%s", addr);
    colon = strrchr(host, ':');
    port = "6379";

    if (colon) {
        *colon = '\0';
        port = colon + 1;
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;

    rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "entctl: redis %s: %s\n", addr, gai_strerror(rc));
        return 1;
    }

    fd = socket(ai->ai_family, SOCK_STREAM, 0);

    if (fd == -1 || connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
        fprintf(stderr, "entctl: cannot connect to redis %s: %s\n", addr,
                strerror(errno));
        freeaddrinfo(ai);
        if (fd != -1) {
            close(fd);
        }
        return 1;
    }

    freeaddrinfo(ai);

    len = (size_t) snprintf(buf, sizeof(buf), "%s",
                            ask ? "*1\r\n$6\r\nASKING\r\n" : "");

    if (value) {
        len += snprintf(buf + len, sizeof(buf) - len,
                        "*3\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
                        strlen(cmd), cmd, strlen(key), key, strlen(value),
                        value);
    } else {
        len += snprintf(buf + len, sizeof(buf) - len,
                        "*2\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
                        strlen(cmd), cmd, strlen(key), key);
    }

    if (write(fd, buf, len) != (ssize_t) len) {
        fprintf(stderr, "entctl: redis write failed\n");
        close(fd);
        return 1;
    }

    /* the replies are one line each: ASKING's, then the command's */

    got = 0;
    lines = 0;

    while (lines < 1 + ask && got < sizeof(buf) - 1) {
        n = read(fd, buf + got, sizeof(buf) - 1 - got);

        if (n <= 0) {
            break;
        }

        got += n;
        buf[got] = '\0';

        for (lines = 0, p = buf; (p = strstr(p, "\r\n")) != NULL; p += 2) {
            lines++;
        }
    }

    close(fd);

    if (lines < 1 + ask) {
        fprintf(stderr, "entctl: redis %s closed the connection\n", addr);
        return 1;
    }

    p = ask ? strstr(buf, "\r\n") + 2 : buf;
    snprintf(reply, size, "%s", p);

    return 0;
}


int
entctl_ratelimit(PGconn *conn, int argc, char **argv)
{
    int          npos;
    size_t       i;
    const char  *p[3];

    npos = -1;

    if (argc >= 1 && strcmp(argv[0], "set") == 0) {
        npos = entctl_args(argc - 1, argv + 1, 3, 3, ent_no_opts,
                           "ratelimit set CODE POLICY N|unlimited");

    } else if (argc >= 1 && strcmp(argv[0], "unset") == 0) {
        npos = entctl_args(argc - 1, argv + 1, 2, 2, ent_no_opts,
                           "ratelimit unset CODE POLICY");

    } else if (argc >= 1 && strcmp(argv[0], "list") == 0) {
        npos = entctl_args(argc - 1, argv + 1, 1, 1, ent_no_opts,
                           "ratelimit list CODE");

    } else {
        fprintf(stderr, "usage: entctl ratelimit set CODE POLICY "
                "N|unlimited | unset CODE POLICY | list CODE\n");
    }

    if (npos < 0) {
        return 2;
    }

    if (npos >= 2) {
        for (i = 0; argv[2][i]; i++) {
            if (!(islower((unsigned char) argv[2][i])
                  || (i && (isdigit((unsigned char) argv[2][i])
                            || argv[2][i] == '_' || argv[2][i] == '-'))))
            {
                break;
            }
        }

        if (i == 0 || i > 32 || argv[2][i] != '\0') {
            fprintf(stderr, "entctl: invalid policy \"%s\"\n", argv[2]);
            return 1;
        }
    }

    if (npos == 3
        && strcmp(argv[3], "unlimited") != 0
        && (strspn(argv[3], "0123456789") != strlen(argv[3])
            || strlen(argv[3]) == 0 || strlen(argv[3]) > 9))
    {
        fprintf(stderr, "entctl: a limit is a count (0 to 999999999) "
                "or \"unlimited\"\n");
        return 2;
    }

    if (!ent_tenant_exists(conn, argv[1])) {
        return 1;
    }

    p[0] = argv[1];

    if (npos == 3) {
        p[1] = argv[2];
        p[2] = strcmp(argv[3], "unlimited") == 0 ? NULL : argv[3];

        return ent_exec(conn, "INSERT INTO ent.ratelimit_overrides "
                              "(tenant_id, policy, limit_value) "
                              "SELECT id, $2, $3::integer FROM ent.tenants "
                              "WHERE code = $1 "
                              "ON CONFLICT (tenant_id, policy) DO UPDATE "
                              "SET limit_value = EXCLUDED.limit_value, "
                              "updated_at = now()", 3, p, 0) == 1 ? 0 : 1;
    }

    if (npos == 2) {
        p[1] = argv[2];

        return ent_exec(conn, "DELETE FROM ent.ratelimit_overrides o USING "
                              "ent.tenants t WHERE o.tenant_id = t.id AND "
                              "t.code = $1 AND o.policy = $2", 2, p, 0) >= 0
               ? 0 : 1;
    }

    return ent_exec(conn, "SELECT o.policy, coalesce(o.limit_value::text, "
                          "'unlimited') FROM ent.ratelimit_overrides o "
                          "JOIN ent.tenants t ON t.id = o.tenant_id "
                          "WHERE t.code = $1 ORDER BY o.policy",
                    1, p, 1) < 0;
}
