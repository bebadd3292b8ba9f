/*
 * ngx_ent core: PostgreSQL configuration, at configuration time only
 * (nginx -t and reload; blocking name resolution is allowed here, as for
 * upstream servers).
 *
 * The conninfo string is parsed with PQconninfoParse(); host names (one,
 * or a list for failover) are resolved to the numeric "hostaddr" the
 * workers connect to; the server's
 * statement_timeout is set to the pool's query_timeout; a display form
 * without secrets is kept for log messages.  Statements are declared by
 * modules while their directives are parsed, and prepared lazily on each
 * connection by name.
 */


#include "ngx_ent_core_int.h"



/*
 * The "hostaddr" list for a "host" list: each name resolved (its first
 * address), an empty element for a unix socket directory; "" when no host
 * needs one; NULL on error (logged).
 */

static u_char *
ngx_ent_pg_hostaddrs(ngx_conf_t *cf, char *host)
{
    u_char      *out, *p, *last, *s, *e;
    size_t       len;
    ngx_url_t    u;
    ngx_uint_t   named;
    u_char       buf[NGX_SOCKADDR_STRLEN];

    len = (ngx_strlen(host) + 1) * NGX_SOCKADDR_STRLEN;

    out = ngx_pnalloc(cf->pool, len + 1);
    if (out == NULL) {
        return NULL;
    }

    p = out;
    last = out + len;
    named = 0;

    for (s = (u_char *) host; /* void */; s = e + 1) {

        e = (u_char *) ngx_strchr(s, ',');
        if (e == NULL) {
            e = s + ngx_strlen(s);
        }

        if (p != out) {
            *p++ = ',';
        }

        if (e > s && *s != '/' && *s != '@') {

            ngx_memzero(&u, sizeof(ngx_url_t));

            u.host.data = s;
            u.host.len = e - s;
            u.url = u.host;
            u.no_port = 1;
            u.default_port = 5432;

            if (ngx_inet_resolve_host(cf->pool, &u) != NGX_OK
                || u.naddrs == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "host \"%*s\" of \"ent_postgres\" not "
                                   "found", (size_t) (e - s), s);
                return NULL;
            }

            len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, buf,
                                NGX_SOCKADDR_STRLEN, 0);

            if ((size_t) (last - p) < len) {
                return NULL;
            }

            p = ngx_cpymem(p, buf, len);
            named = 1;
        }

        if (*e == '\0') {
            break;
        }
    }

    *p = '\0';

    return named ? out : (u_char *) "";
}


char *
ngx_ent_pg_conf(ngx_conf_t *cf, ngx_ent_pg_conf_t *conf, ngx_str_t *conninfo)
{
    char               *err, *host, *hostaddr, *options;
    u_char             *p, *last;
    size_t              len, k;
    ngx_uint_t          n, i, has_app;
    PQconninfoOption   *opts, *o;

    static const char  *keepalive[][2] = {
        { "keepalives_idle", "30" },
        { "keepalives_interval", "10" },
        { "keepalives_count", "3" },
        { "tcp_user_timeout", "60000" },
    };

    conf->conninfo = *conninfo;

    err = NULL;
    opts = PQconninfoParse((char *) conninfo->data, &err);

    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid connection string in \"ent_postgres\" "
                           "directive: %s", err ? err : "out of memory");
        if (err) {
            PQfreemem(err);
        }
        return NGX_CONF_ERROR;
    }

    n = 0;
    host = NULL;
    hostaddr = NULL;
    options = NULL;
    has_app = 0;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL) {
            continue;
        }

        n++;

        if (ngx_strcmp(o->keyword, "host") == 0) {
            host = o->val;

        } else if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            hostaddr = o->val;

        } else if (ngx_strcmp(o->keyword, "options") == 0) {
            options = o->val;

        } else if (ngx_strcmp(o->keyword, "application_name") == 0) {
            has_app = 1;
        }
    }

    /*
     * 3 more: hostaddr, options, application_name; 4 keepalive settings;
     * 1 for the NULL
     */

    conf->keywords = ngx_pcalloc(cf->pool, (n + 8) * sizeof(char *));
    conf->values = ngx_pcalloc(cf->pool, (n + 8) * sizeof(char *));
    conf->display.data = ngx_pnalloc(cf->pool, 1024);

    if (conf->keywords == NULL || conf->values == NULL
        || conf->display.data == NULL)
    {
        PQconninfoFree(opts);
        return NGX_CONF_ERROR;
    }

    p = conf->display.data;
    last = p + 1024;
    i = 0;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL || ngx_strcmp(o->keyword, "options") == 0) {
            continue;
        }

        conf->keywords[i] = (char *) ngx_pstrdup(cf->pool,
                                      &(ngx_str_t) { ngx_strlen(o->keyword) + 1,
                                                     (u_char *) o->keyword });
        conf->values[i] = (char *) ngx_pstrdup(cf->pool,
                                      &(ngx_str_t) { ngx_strlen(o->val) + 1,
                                                     (u_char *) o->val });

        if (conf->keywords[i] == NULL || conf->values[i] == NULL) {
            PQconninfoFree(opts);
            return NGX_CONF_ERROR;
        }

        if (ngx_strcmp(o->keyword, "password") != 0
            && ngx_strcmp(o->keyword, "sslpassword") != 0)
        {
            p = ngx_slprintf(p, last, "%s%s=%s", p == conf->display.data
                                                 ? "" : " ",
                             o->keyword, o->val);
        }

        i++;
    }

    conf->display.len = p - conf->display.data;

    /*
     * No DNS in a worker: host names are resolved now, at configuration
     * time, into "hostaddr" (one address per host of a list; a list is
     * tried in order by libpq, e.g. with target_session_attrs=read-write,
     * each attempt on nginx's event loop).
     */

    if (host && hostaddr == NULL) {
        p = ngx_ent_pg_hostaddrs(cf, host);
        if (p == NULL) {
            PQconninfoFree(opts);
            return NGX_CONF_ERROR;
        }

        if (*p) {
            conf->keywords[i] = "hostaddr";
            conf->values[i] = (char *) p;
            i++;
        }
    }

    /* the server gives up on a query soon after we do */

    len = (options ? ngx_strlen(options) : 0) + 64;
    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        PQconninfoFree(opts);
        return NGX_CONF_ERROR;
    }

    /*
     * a second more than ours: our timer is the one that answers the
     * request; the server's only stops work nobody waits for any more
     */

    (void) ngx_snprintf(p, len, "%s%s-c statement_timeout=%M%Z",
                        options ? options : "", options ? " " : "",
                        conf->query_timeout + 1000);

    conf->keywords[i] = "options";
    conf->values[i] = (char *) p;
    i++;

    if (!has_app) {
        conf->keywords[i] = "application_name";
        conf->values[i] = "ngx_ent";
        i++;
    }

    /*
     * A peer that is gone without a word (a failover, a cable) is noticed
     * within about a minute, not the kernel's two hours: this matters for
     * the cache invalidation listener, which only waits, and would miss
     * every NOTIFY meanwhile.  The connection string's own values win.
     */

    for (k = 0; k < sizeof(keepalive) / sizeof(keepalive[0]); k++) {
        for (o = opts; o->keyword; o++) {
            if (o->val && ngx_strcmp(o->keyword, keepalive[k][0]) == 0) {
                break;
            }
        }

        if (o->keyword == NULL) {
            conf->keywords[i] = (char *) keepalive[k][0];
            conf->values[i] = (char *) keepalive[k][1];
            i++;
        }
    }

    conf->keywords[i] = NULL;
    conf->values[i] = NULL;

    PQconninfoFree(opts);

    return NGX_CONF_OK;
}


ngx_ent_pg_stmt_t *
ngx_ent_pg_stmt_add(ngx_conf_t *cf, char *sql, ngx_uint_t nparams)
{
    ngx_uint_t                      i;
    ngx_ent_pg_stmt_t              *stmt, **stmts;
    ngx_http_ent_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ent_core_module);

    stmts = cmcf->stmts.elts;

    for (i = 0; i < cmcf->stmts.nelts; i++) {
        if (stmts[i]->nparams == nparams
            && ngx_strcmp(stmts[i]->sql, sql) == 0)
        {
            return stmts[i];
        }
    }

    if (cmcf->stmts.nelts == NGX_ENT_PG_MAX_STMTS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many PostgreSQL statements, at most %d",
                           NGX_ENT_PG_MAX_STMTS);
        return NULL;
    }

    stmt = ngx_pcalloc(cf->pool, sizeof(ngx_ent_pg_stmt_t));
    if (stmt == NULL) {
        return NULL;
    }

    stmt->index = cmcf->stmts.nelts;
    stmt->nparams = nparams;
    stmt->sql = sql;
    (void) ngx_snprintf((u_char *) stmt->name, sizeof(stmt->name),
                        "ngx_ent_%ui%Z", stmt->index);

    stmts = ngx_array_push(&cmcf->stmts);
    if (stmts == NULL) {
        return NULL;
    }

    *stmts = stmt;

    return stmt;
}
