/*
 * entctl: the ngx_ent admin command line (runs outside nginx, so plain
 * blocking libpq is fine here).
 *
 *   entctl [--dsn DSN] migrate     apply the migrations not yet applied
 *   entctl [--dsn DSN] status      list applied and pending migrations
 *   entctl version
 *
 * The connection string comes from --dsn, else $ENT_DSN, else libpq's own
 * defaults (PGHOST, PGDATABASE, ...).  Migrations are compiled in from
 * sql/ and recorded in ent.schema_migrations with a checksum; each runs in
 * its own transaction, under an advisory lock so that two nodes running
 * "migrate" at once apply each migration once.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "entctl.h"


#define ENTCTL_VERSION   "0.1.0"
#define ENTCTL_LOCK_ID   "7163541"     /* pg_advisory_lock key */


static int entctl_migrate(PGconn *conn);
static int entctl_status(PGconn *conn);
static int entctl_exec(PGconn *conn, const char *sql);
static void entctl_checksum(const char *text, char *out);
static void entctl_usage(FILE *f);
static void entctl_die(const char *fmt, ...);


static const entctl_opt_t  entctl_no_opts[] = { { NULL, 0 } };


int
main(int argc, char **argv)
{
    int          i, rc;
    char       **args;
    PGconn      *conn;
    const char  *dsn, *redis, *cmd;

    dsn = getenv("ENT_DSN");
    redis = getenv("ENT_REDIS");
    redis = redis ? redis : "127.0.0.1:6379";

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dsn") == 0 && i + 1 < argc) {
            dsn = argv[++i];

        } else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
            redis = argv[++i];

        } else if (strcmp(argv[i], "-h") == 0
                   || strcmp(argv[i], "--help") == 0)
        {
            entctl_usage(stdout);
            return 0;

        } else if (strcmp(argv[i], "--dsn") == 0
                   || strcmp(argv[i], "--redis") == 0)
        {
            fprintf(stderr, "entctl: option \"%s\" needs a value\n",
                    argv[i]);
            return 2;

        } else if (argv[i][0] == '-') {
            fprintf(stderr, "entctl: unknown option \"%s\"\n", argv[i]);
            entctl_usage(stderr);
            return 2;

        } else {
            break;
        }
    }

    if (i == argc) {
        entctl_usage(stderr);
        return 2;
    }

    cmd = argv[i];
    args = argv + i + 1;
    argc -= i + 1;

    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "migrate") == 0
        || strcmp(cmd, "status") == 0)
    {
        /* no arguments: "migrate --dry-run" must not migrate */

        if (entctl_args(argc, args, 0, 0, entctl_no_opts, cmd) < 0) {
            return 2;
        }

        if (cmd[0] == 'v') {
            printf("entctl %s\n", ENTCTL_VERSION);
            return 0;
        }
    }

    if (strcmp(cmd, "migrate") != 0 && strcmp(cmd, "status") != 0
        && strcmp(cmd, "tenant") != 0 && strcmp(cmd, "domain") != 0
        && strcmp(cmd, "feature") != 0 && strcmp(cmd, "allow") != 0
        && strcmp(cmd, "headers") != 0 && strcmp(cmd, "maintenance") != 0
        && strcmp(cmd, "ratelimit") != 0 && strcmp(cmd, "sso") != 0
        && strcmp(cmd, "role") != 0 && strcmp(cmd, "permission") != 0
        && strcmp(cmd, "member") != 0 && strcmp(cmd, "platform-admin") != 0
        && strcmp(cmd, "breakglass") != 0 && strcmp(cmd, "scim-token") != 0
        && strcmp(cmd, "user") != 0 && strcmp(cmd, "audit") != 0
        && strcmp(cmd, "sla") != 0)
    {
        fprintf(stderr, "entctl: unknown command \"%s\"\n", cmd);
        entctl_usage(stderr);
        return 2;
    }

    conn = PQconnectdb(dsn ? dsn : "");

    if (PQstatus(conn) != CONNECTION_OK) {
        entctl_die("cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
    }

    if (entctl_exec(conn, "SET client_min_messages = warning") != 0) {
        return 1;
    }

    /* who made the changes that the audit triggers record */
    {
        PGresult    *res;
        const char  *params[1];

        params[0] = entctl_actor();
        res = PQexecParams(conn, "SELECT set_config('ent.actor', $1, false)",
                           1, NULL, params, NULL, NULL, 0);
        PQclear(res);
    }

    if (strcmp(cmd, "migrate") == 0) {
        rc = entctl_migrate(conn);

    } else if (strcmp(cmd, "status") == 0) {
        rc = entctl_status(conn);

    } else if (strcmp(cmd, "tenant") == 0) {
        rc = entctl_tenant(conn, argc, args);

    } else if (strcmp(cmd, "domain") == 0) {
        rc = entctl_domain(conn, argc, args);

    } else if (strcmp(cmd, "feature") == 0) {
        rc = entctl_feature(conn, argc, args);

    } else if (strcmp(cmd, "allow") == 0) {
        rc = entctl_allow(conn, argc, args);

    } else if (strcmp(cmd, "headers") == 0) {
        rc = entctl_headers(conn, argc, args);

    } else if (strcmp(cmd, "ratelimit") == 0) {
        rc = entctl_ratelimit(conn, argc, args);

    } else if (strcmp(cmd, "sso") == 0) {
        rc = entctl_sso(conn, argc, args);

    } else if (strcmp(cmd, "scim-token") == 0) {
        rc = entctl_scim_token(conn, argc, args);

    } else if (strcmp(cmd, "user") == 0) {
        rc = entctl_user(conn, argc, args);

    } else if (strcmp(cmd, "role") == 0) {
        rc = entctl_role(conn, argc, args);

    } else if (strcmp(cmd, "permission") == 0) {
        rc = entctl_permission(conn, argc, args);

    } else if (strcmp(cmd, "member") == 0) {
        rc = entctl_member(conn, argc, args);

    } else if (strcmp(cmd, "platform-admin") == 0) {
        rc = entctl_platform_admin(conn, argc, args);

    } else if (strcmp(cmd, "breakglass") == 0) {
        rc = entctl_breakglass(conn, argc, args);

    } else if (strcmp(cmd, "audit") == 0) {
        rc = entctl_audit(conn, argc, args);

    } else if (strcmp(cmd, "sla") == 0) {
        rc = entctl_sla(conn, argc, args);

    } else {
        rc = entctl_maintenance(conn, argc, args, redis);
    }

    PQfinish(conn);

    return rc;
}


static int
entctl_migrate(PGconn *conn)
{
    int                     n, applied;
    char                    sum[17], ver[16];
    PGresult               *res;
    const char             *params[3];
    const ent_migration_t  *m;

    if (entctl_exec(conn, "SELECT pg_advisory_lock(" ENTCTL_LOCK_ID ")")
        != 0
        || entctl_exec(conn,
               "CREATE SCHEMA IF NOT EXISTS ent;"
               "CREATE TABLE IF NOT EXISTS ent.schema_migrations ("
               " version integer PRIMARY KEY,"
               " name text NOT NULL,"
               " checksum text NOT NULL,"
               " applied_at timestamptz NOT NULL DEFAULT now())")
           != 0)
    {
        return 1;
    }

    applied = 0;

    for (m = ent_migrations; m->name; m++) {

        snprintf(ver, sizeof(ver), "%d", m->version);
        entctl_checksum(m->sql, sum);

        params[0] = ver;
        res = PQexecParams(conn,
                           "SELECT checksum FROM ent.schema_migrations "
                           "WHERE version = $1::integer",
                           1, NULL, params, NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            entctl_die("reading ent.schema_migrations: %s",
                       PQresultErrorMessage(res));
        }

        n = PQntuples(res);

        if (n == 1) {
            if (strcmp(PQgetvalue(res, 0, 0), sum) != 0) {
                fprintf(stderr, "entctl: warning: migration %03d_%s was "
                        "changed after it was applied\n",
                        m->version, m->name);
            }

            PQclear(res);
            continue;
        }

        PQclear(res);

        if (entctl_exec(conn, "BEGIN") != 0) {
            return 1;
        }

        if (entctl_exec(conn, m->sql) != 0) {
            fprintf(stderr, "entctl: migration %03d_%s failed, "
                    "nothing of it was applied\n", m->version, m->name);
            return 1;
        }

        params[0] = ver;
        params[1] = m->name;
        params[2] = sum;

        res = PQexecParams(conn,
                           "INSERT INTO ent.schema_migrations "
                           "(version, name, checksum) "
                           "VALUES ($1::integer, $2, $3)",
                           3, NULL, params, NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            entctl_die("recording migration %03d_%s: %s", m->version,
                       m->name, PQresultErrorMessage(res));
        }

        PQclear(res);

        if (entctl_exec(conn, "COMMIT") != 0) {
            return 1;
        }

        printf("applied %03d_%s\n", m->version, m->name);
        applied++;
    }

    if (applied == 0) {
        printf("schema is up to date\n");
    }

    return entctl_exec(conn, "SELECT pg_advisory_unlock(" ENTCTL_LOCK_ID ")");
}


static int
entctl_status(PGconn *conn)
{
    int                     i, n, found;
    PGresult               *res;
    const ent_migration_t  *m;

    res = PQexec(conn, "SELECT version, applied_at FROM ent.schema_migrations "
                       "ORDER BY version");

    n = (PQresultStatus(res) == PGRES_TUPLES_OK) ? PQntuples(res) : 0;

    for (m = ent_migrations; m->name; m++) {
        found = -1;

        for (i = 0; i < n; i++) {
            if (atoi(PQgetvalue(res, i, 0)) == m->version) {
                found = i;
                break;
            }
        }

        if (found >= 0) {
            printf("%03d_%-24s applied %s\n", m->version, m->name,
                   PQgetvalue(res, found, 1));

        } else {
            printf("%03d_%-24s pending\n", m->version, m->name);
        }
    }

    PQclear(res);

    return 0;
}


static int
entctl_exec(PGconn *conn, const char *sql)
{
    PGresult       *res;
    ExecStatusType  st;

    res = PQexec(conn, sql);
    st = PQresultStatus(res);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "entctl: %s", PQresultErrorMessage(res));
        PQclear(res);
        return 1;
    }

    PQclear(res);

    return 0;
}


static void
entctl_checksum(const char *text, char *out)
{
    unsigned long long  h;

    /* FNV-1a 64: enough to notice an edited migration */

    h = 0xcbf29ce484222325ULL;

    while (*text) {
        h ^= (unsigned char) *text++;
        h *= 0x100000001b3ULL;
    }

    snprintf(out, 17, "%016llx", h);
}


/*
 * The arguments of a command after its verb: the positional arguments
 * first (at least min, at most max; max -1: any number), then options of
 * known, each at most once unless ENTCTL_OPT_MULTI.  A value never starts
 * with "--": "--name --tier x" is a forgotten value, not the name
 * "--tier".  Returns the number of positional arguments, or -1 after a
 * message and the usage line (the caller exits 2): a command checks its
 * whole command line this way before it reads or writes anything.
 */

int
entctl_args(int argc, char **argv, int min, int max,
    const entctl_opt_t *known, const char *usage)
{
    int                  i, j, n;
    const entctl_opt_t  *k;

    for (n = 0; n < argc && strncmp(argv[n], "--", 2) != 0; n++) {
        /* void */
    }

    if (max >= 0 && n > max) {
        fprintf(stderr, "entctl: unexpected argument \"%s\"\n", argv[max]);
        goto usage;
    }

    if (n < min) {
        goto usage;
    }

    for (i = n; i < argc; i++) {

        if (strncmp(argv[i], "--", 2) != 0) {
            fprintf(stderr, "entctl: unexpected argument \"%s\" (the "
                    "arguments come first, then the options)\n", argv[i]);
            goto usage;
        }

        for (k = known; k->name; k++) {
            if (strcmp(argv[i], k->name) == 0) {
                break;
            }
        }

        if (k->name == NULL) {
            fprintf(stderr, "entctl: unknown option \"%s\"\n", argv[i]);
            goto usage;
        }

        if (!(k->kind & ENTCTL_OPT_MULTI)) {
            for (j = n; j < i; j++) {
                if (strcmp(argv[j], argv[i]) == 0) {
                    fprintf(stderr, "entctl: option \"%s\" given twice\n",
                            argv[i]);
                    goto usage;
                }
            }
        }

        if (k->kind & ENTCTL_OPT_FLAG) {
            continue;
        }

        if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
            fprintf(stderr, "entctl: option \"%s\" needs a value\n",
                    argv[i]);
            goto usage;
        }

        i++;
    }

    return n;

usage:

    fprintf(stderr, "usage: entctl %s\n", usage);
    return -1;
}


static void
entctl_usage(FILE *f)
{
    fprintf(f,
            "usage: entctl [--dsn DSN] [--redis HOST:PORT] COMMAND ...\n"
            "\n"
            "  migrate | status | version\n"
            "  tenant create CODE --name NAME [--tier T] [--region R]\n"
            "         [--parent CODE] [--upstream NAME] [--status S]\n"
            "  tenant list | show CODE | suspend CODE | resume CODE |"
            " delete CODE\n"
            "  tenant update CODE [--name N] [--tier T] [--region R]\n"
            "         [--parent CODE|none] [--upstream NAME|none]"
            " [--status S]\n"
            "         [--brand-color #rrggbb|none] [--logo-url URL|none]\n"
            "         [--billing-day 1..28|inherit]"
            " [--inherit-roles on|off] [--jit-role ROLE]\n"
            "  domain add CODE DOMAIN | domain remove DOMAIN\n"
            "  feature set CODE FEATURE on|off | feature unset CODE FEATURE\n"
            "  feature platform FEATURE [--enabled on|off]"
            " [--rollout PERCENT]\n"
            "  allow add|remove CODE CIDR | allow clear CODE\n"
            "  headers set CODE [--csp-sources S|none]"
            " [--report-only on|off|inherit]\n"
            "         [--report-uri URL|none] [--hsts-preload on|off]\n"
            "  maintenance on|off CODE |"
            " maintenance on|off [--retry-after SECONDS]\n"
            "  ratelimit set CODE POLICY N|unlimited |"
            " ratelimit unset CODE POLICY\n"
            "  ratelimit list CODE\n"
            "  sso oidc CODE [--issuer URL] [--client-id ID]"
            " [--key-file FILE]\n"
            "         [--client-secret-env VAR | --client-secret-file F\n"
            "          | --no-client-secret] [--scopes S] [--auth basic|post]\n"
            "         [--claim-email C] [--claim-name C] [--claim-groups C]\n"
            "         [--domains D,D|none] [--enforce on|off]\n"
            "         [--api-audience A|none] [--api-scopes S|none]\n"
            "         [--claim-map NAME=CLAIM]... [--ca-file F] [--no-check]\n"
            "  sso saml CODE [--metadata FILE|URL [--idp-entity-id ID]"
            " [--ca-file F]]\n"
            "         [--entity-id ID] [--sso-url URL] [--slo-url URL|none]\n"
            "         [--cert-file PEM]... [--sp-entity-id ID|none]\n"
            "         [--sp-key-file PEM --sp-cert-file PEM --key-file F\n"
            "          | --sp-key-file none] [--name-id-format URN|none]\n"
            "         [--skew S|none] [--unsolicited on|off]"
            " [--allow-sha1 on|off]\n"
            "         [--attr-email A] [--attr-name A] [--attr-groups A]\n"
            "         [--attr-map NAME=ATTRIBUTE]... [--domains D,D|none]\n"
            "         [--enforce on|off]\n"
            "  sso show|enable|disable|delete CODE\n"
            "  sso domain add CODE DOMAIN [--verified] |"
            " sso domain verify|remove CODE DOMAIN\n"
            "  sso map-group|unmap-group CODE GROUP ROLE\n"
            "  scim-token create CODE --name NAME [--expires-days N]\n"
            "  scim-token list CODE | scim-token revoke CODE TOKEN_ID\n"
            "  user erase CODE USER\n"
            "  role create CODE NAME --rank 1..1000 [--description D]\n"
            "  role delete CODE NAME | role list CODE\n"
            "  role grant|revoke CODE ROLE PERMISSION...\n"
            "  permission add NAME [--description D] |"
            " permission remove NAME\n"
            "  permission list\n"
            "  member set CODE EMAIL ROLE [--status active|suspended]\n"
            "  member suspend|activate|remove CODE EMAIL |"
            " member list CODE\n"
            "  platform-admin add EMAIL [--name N] |"
            " platform-admin remove EMAIL\n"
            "  platform-admin list\n"
            "  breakglass request CODE --admin EMAIL --reason R"
            " --justification J\n"
            "         [--role ROLE] [--minutes M]\n"
            "  breakglass approve|revoke GRANT --admin EMAIL\n"
            "  breakglass link GRANT --admin EMAIL --key-file F"
            " --host HOST[:PORT]\n"
            "  breakglass list [CODE] | breakglass set-max 1..1440\n"
            "  audit prune [--dry-run]\n"
            "  audit export CODE --from TIME --to TIME [--format csv|json]\n"
            "  audit retention list | audit retention set CODE|default"
            " CATEGORY INTERVAL\n"
            "  audit retention unset CODE|default CATEGORY\n"
            "  sla set CODE --p99-ms N [--error-ratio R] [--min-requests N]\n"
            "  sla unset CODE | sla list\n"
            "\n"
            "DSN defaults to $ENT_DSN, then to libpq's environment; the Redis\n"
            "address (platform-wide maintenance) to $ENT_REDIS, then\n"
            "127.0.0.1:6379.  Changes reach every nginx node within 1 s.\n");
}


static void
entctl_die(const char *fmt, ...)
{
    va_list  args;

    fprintf(stderr, "entctl: ");
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    if (fmt[strlen(fmt) - 1] != '\n') {
        fprintf(stderr, "\n");
    }

    exit(1);
}


/* "entctl:<login>", the actor of what this run changes */

const char *
entctl_actor(void)
{
    static char  actor[128];
    const char  *u;

    if (actor[0] == '\0') {
        u = getenv("SUDO_USER");
        u = (u && *u) ? u : getenv("USER");

        if (u == NULL || *u == '\0') {
            struct passwd  *pw = getpwuid(getuid());

            u = pw ? pw->pw_name : "unknown";
        }

        snprintf(actor, sizeof(actor), "entctl:%.100s", u);
    }

    return actor;
}
