/*
 * entctl: the audit trail and service-level targets.
 *
 *   audit prune [--dry-run]
 *   audit export CODE --from TIME --to TIME [--format csv|json]
 *   audit retention list
 *   audit retention set CODE|default CATEGORY INTERVAL
 *   audit retention unset CODE|default CATEGORY
 *   sla set CODE --p99-ms N [--error-ratio R] [--min-requests N]
 *   sla unset CODE | sla list
 *
 * An export streams (single-row mode) in the order events happened: CSV
 * with a header line (RFC 4180 quoting), or JSON Lines, one object per
 * event.  TIME is anything PostgreSQL reads as a timestamptz
 * ("2026-11-01", "2026-11-01T12:00:00Z"); --to is exclusive.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "entctl.h"


#define AUDIT_COLUMNS                                                        \
    "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), " \
    "id, tenant_id, actor, actor_type, action, category, target_type, "     \
    "target_id, result, reason, client_ip, user_agent, request_id, "       \
    "details::text"

static const char  *audit_names[] = {
    "at", "id", "tenant_id", "actor", "actor_type", "action", "category",
    "target_type", "target_id", "result", "reason", "client_ip",
    "user_agent", "request_id", "details"
};

#define AUDIT_NCOLS  (sizeof(audit_names) / sizeof(audit_names[0]))


static int audit_export(PGconn *conn, int argc, char **argv);
static int audit_retention(PGconn *conn, int argc, char **argv);
static void audit_csv(const char *s);
static void audit_json(const char *s);


static const entctl_opt_t  audit_no_opts[] = { { NULL, 0 } };

static const entctl_opt_t  audit_prune_opts[] = {
    { "--dry-run", ENTCTL_OPT_FLAG },
    { NULL, 0 }
};

static const entctl_opt_t  audit_export_opts[] = {
    { "--from", ENTCTL_OPT_VALUE },
    { "--to", ENTCTL_OPT_VALUE },
    { "--format", ENTCTL_OPT_VALUE },
    { NULL, 0 }
};

static const entctl_opt_t  audit_sla_opts[] = {
    { "--p99-ms", ENTCTL_OPT_VALUE },
    { "--error-ratio", ENTCTL_OPT_VALUE },
    { "--min-requests", ENTCTL_OPT_VALUE },
    { NULL, 0 }
};


int
entctl_audit(PGconn *conn, int argc, char **argv)
{
    int          rc;
    const char  *params[2];

    if (argc >= 1 && strcmp(argv[0], "prune") == 0) {
        if (entctl_args(argc - 1, argv + 1, 0, 0, audit_prune_opts,
                        "audit prune [--dry-run]") < 0)
        {
            return 2;
        }

        params[0] = argc == 2 ? "true" : "false";
        params[1] = entctl_actor();

        rc = sso_exec(conn, "SELECT part AS partition, what, rows "
                      "FROM ent.audit_prune($1::boolean, $2)", 2, params, 1);

        if (rc == 0) {
            printf("nothing to prune\n");
        }

        return rc < 0 ? 1 : 0;
    }

    if (argc >= 1 && strcmp(argv[0], "export") == 0) {
        if (entctl_args(argc - 1, argv + 1, 1, 1, audit_export_opts,
                        "audit export CODE --from TIME --to TIME "
                        "[--format csv|json]") < 0)
        {
            return 2;
        }

        return audit_export(conn, argc - 1, argv + 1);
    }

    if (argc >= 2 && strcmp(argv[0], "retention") == 0) {
        return audit_retention(conn, argc - 1, argv + 1);
    }

    fprintf(stderr,
            "usage: entctl audit prune [--dry-run]\n"
            "       entctl audit export CODE --from TIME --to TIME "
            "[--format csv|json]\n"
            "       entctl audit retention list | set CODE|default CATEGORY "
            "INTERVAL | unset CODE|default CATEGORY\n");
    return 2;
}


static int
audit_export(PGconn *conn, int argc, char **argv)
{
    int          i, json, first;
    char        *tid;
    PGresult    *res;
    const char  *from, *to, *format, *params[3];

    from = sso_opt(argc, argv, "--from");
    to = sso_opt(argc, argv, "--to");
    format = sso_opt(argc, argv, "--format");
    format = format ? format : "csv";

    if (from == NULL || to == NULL
        || (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0))
    {
        fprintf(stderr, "usage: entctl audit export CODE --from TIME "
                "--to TIME [--format csv|json]\n");
        return 2;
    }

    json = (format[0] == 'j');

    tid = sso_tenant_id(conn, argv[0]);
    if (tid == NULL) {
        return 1;
    }

    params[0] = tid;
    params[1] = from;
    params[2] = to;

    if (!PQsendQueryParams(conn,
            "SELECT " AUDIT_COLUMNS " FROM ent.audit "
            "WHERE tenant_id = $1 AND at >= $2::timestamptz "
            "AND at < $3::timestamptz ORDER BY at, seq",
            3, NULL, params, NULL, NULL, 0)
        || !PQsetSingleRowMode(conn))
    {
        fprintf(stderr, "entctl: %s", PQerrorMessage(conn));
        free(tid);
        return 1;
    }

    free(tid);

    if (!json) {
        for (i = 0; i < (int) AUDIT_NCOLS; i++) {
            printf("%s%s", i ? "," : "", audit_names[i]);
        }

        printf("\r\n");
    }

    first = 1;

    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType  st = PQresultStatus(res);

        if (st == PGRES_SINGLE_TUPLE) {
            if (json) {
                printf("{");
            }

            for (i = 0; i < (int) AUDIT_NCOLS; i++) {
                const char  *v = PQgetvalue(res, 0, i);
                int          null = PQgetisnull(res, 0, i);

                if (json) {
                    printf("%s\"%s\":", i ? "," : "", audit_names[i]);

                    if (null) {
                        printf("null");

                    } else if (i == AUDIT_NCOLS - 1) {
                        printf("%s", v);     /* jsonb's own text */

                    } else {
                        audit_json(v);
                    }

                } else {
                    printf("%s", i ? "," : "");

                    if (!null) {
                        audit_csv(v);
                    }
                }
            }

            printf(json ? "}\n" : "\r\n");
            first = 0;

        } else if (st != PGRES_TUPLES_OK) {
            fprintf(stderr, "entctl: %s",
                    PQresultErrorMessage(res));
            PQclear(res);

            while ((res = PQgetResult(conn)) != NULL) {
                PQclear(res);
            }

            return 1;
        }

        PQclear(res);
    }

    (void) first;

    return ferror(stdout) ? 1 : 0;
}


/*
 * RFC 4180: quoted when it holds a comma, a quote or a line break.  A
 * cell a spreadsheet would take for a formula (=, +, -, @, a tab or CR
 * first: a User-Agent such as "=HYPERLINK(...)") gets a ' before it, which
 * spreadsheets show as text and do not display
 */

static void
audit_csv(const char *s)
{
    const char  *lead;

    lead = (strchr("=+-@\t\r", *s) != NULL && *s != '\0') ? "'" : "";

    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(lead, stdout);
        fputs(s, stdout);
        return;
    }

    putchar('"');
    fputs(lead, stdout);

    for (/* void */; *s; s++) {
        if (*s == '"') {
            putchar('"');
        }

        putchar(*s);
    }

    putchar('"');
}


static void
audit_json(const char *s)
{
    unsigned char  c;

    putchar('"');

    for (/* void */; *s; s++) {
        c = (unsigned char) *s;

        if (c == '"' || c == '\\') {
            printf("\\%c", c);

        } else if (c < 0x20) {
            printf("\\u%04x", c);

        } else {
            putchar(c);
        }
    }

    putchar('"');
}


static int
audit_retention(PGconn *conn, int argc, char **argv)
{
    int          rc;
    char        *tid;
    const char  *params[3];

    if (strcmp(argv[0], "list") == 0) {
        if (entctl_args(argc - 1, argv + 1, 0, 0, audit_no_opts,
                        "audit retention list") < 0)
        {
            return 2;
        }

        rc = sso_exec(conn,
            "SELECT coalesce(t.code, 'default') AS tenant, r.category, "
            "r.keep FROM ent.audit_retention r "
            "LEFT JOIN ent.tenants t ON t.id = r.tenant_id "
            "ORDER BY t.code NULLS FIRST, r.category", 0, NULL, 1);
        return rc < 0 ? 1 : 0;
    }

    if (strcmp(argv[0], "set") == 0) {
        if (entctl_args(argc - 1, argv + 1, 3, 3, audit_no_opts,
                        "audit retention set CODE|default CATEGORY "
                        "INTERVAL") < 0)
        {
            return 2;
        }

    } else if (strcmp(argv[0], "unset") == 0) {
        if (entctl_args(argc - 1, argv + 1, 2, 2, audit_no_opts,
                        "audit retention unset CODE|default CATEGORY") < 0)
        {
            return 2;
        }

        if (strcmp(argv[1], "default") == 0 && strcmp(argv[2], "*") == 0) {
            fprintf(stderr, "entctl: the default for \"*\" stays; set it "
                    "instead\n");
            return 2;
        }

    } else {
        fprintf(stderr, "usage: entctl audit retention list | set "
                "CODE|default CATEGORY INTERVAL | unset CODE|default "
                "CATEGORY\n");
        return 2;
    }

    tid = NULL;

    if (strcmp(argv[1], "default") != 0) {
        tid = sso_tenant_id(conn, argv[1]);
        if (tid == NULL) {
            return 1;
        }
    }

    params[0] = tid;
    params[1] = argv[2];

    if (argv[0][0] == 's') {
        params[2] = argv[3];
        rc = sso_exec(conn,
            "INSERT INTO ent.audit_retention (tenant_id, category, keep) "
            "VALUES ($1::uuid, $2, $3::interval) "
            "ON CONFLICT (tenant_id, category) DO UPDATE SET keep = "
            "EXCLUDED.keep", 3, params, 0);

    } else {
        rc = sso_exec(conn,
            "DELETE FROM ent.audit_retention WHERE tenant_id IS NOT "
            "DISTINCT FROM $1::uuid AND category = $2", 2, params, 0);
    }

    free(tid);

    return rc < 0 ? 1 : 0;
}


int
entctl_sla(PGconn *conn, int argc, char **argv)
{
    int          rc;
    char        *tid;
    const char  *p99, *ratio, *min, *params[4];

    if (argc >= 1 && strcmp(argv[0], "list") == 0) {
        if (entctl_args(argc - 1, argv + 1, 0, 0, audit_no_opts,
                        "sla list") < 0)
        {
            return 2;
        }

        rc = sso_exec(conn, "SELECT code, p99_ms, error_ratio, min_requests "
                      "FROM ent.sla_all()", 0, NULL, 1);
        return rc < 0 ? 1 : 0;
    }

    if (argc >= 1 && strcmp(argv[0], "unset") == 0) {
        if (entctl_args(argc - 1, argv + 1, 1, 1, audit_no_opts,
                        "sla unset CODE") < 0)
        {
            return 2;
        }

        tid = sso_tenant_id(conn, argv[1]);
        if (tid == NULL) {
            return 1;
        }

        params[0] = tid;
        rc = sso_exec(conn, "DELETE FROM ent.sla_targets WHERE tenant_id = "
                      "$1", 1, params, 0);
        free(tid);
        return rc < 0 ? 1 : 0;
    }

    if (argc >= 1 && strcmp(argv[0], "set") == 0) {
        if (entctl_args(argc - 1, argv + 1, 1, 1, audit_sla_opts,
                        "sla set CODE --p99-ms N [--error-ratio R] "
                        "[--min-requests N]") < 0)
        {
            return 2;
        }

        p99 = sso_opt(argc, argv, "--p99-ms");
        ratio = sso_opt(argc, argv, "--error-ratio");
        min = sso_opt(argc, argv, "--min-requests");

        if (p99 == NULL || entctl_authz_number(p99, 1, 600000) < 0
            || (min && entctl_authz_number(min, 1, 1000000) < 0)
            || (ratio && strspn(ratio, "0123456789.") != strlen(ratio)))
        {
            fprintf(stderr, "usage: entctl sla set CODE --p99-ms 1..600000 "
                    "[--error-ratio 0..1] [--min-requests N]\n");
            return 2;
        }

        tid = sso_tenant_id(conn, argv[1]);
        if (tid == NULL) {
            return 1;
        }

        params[0] = tid;
        params[1] = p99;
        params[2] = ratio ? ratio : "1";
        params[3] = min ? min : "20";

        rc = sso_exec(conn,
            "INSERT INTO ent.sla_targets (tenant_id, p99_ms, error_ratio, "
            "min_requests) VALUES ($1, $2::integer, $3::numeric, "
            "$4::integer) ON CONFLICT (tenant_id) DO UPDATE SET "
            "p99_ms = EXCLUDED.p99_ms, error_ratio = EXCLUDED.error_ratio, "
            "min_requests = EXCLUDED.min_requests", 4, params, 0);
        free(tid);
        return rc < 0 ? 1 : 0;
    }

    fprintf(stderr, "usage: entctl sla set CODE --p99-ms N [--error-ratio R] "
            "[--min-requests N] | sla unset CODE | sla list\n");
    return 2;
}
