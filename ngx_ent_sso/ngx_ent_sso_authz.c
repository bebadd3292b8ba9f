/*
 * ngx_http_ent_sso_module: authorization at the edge.
 *
 * Every authenticated request (session, bearer token, break-glass
 * session) learns the user's standing in the tenant: status, roles, the
 * highest rank and the permissions, from ent.authz() in PostgreSQL through
 * the "authz" cache zone, and then from this worker's memory: an entry is
 * good while the zone's generation is the one it was read in.  Any change
 * that can alter an answer flushes the zone on every node (a NOTIFY), so
 * a demotion, a suspension or a new permission applies to the user's next
 * request, without a new login, within a second.
 *
 * Then the location's rules, all of which must pass (each may be limited
 * to some methods): a minimum role by rank, one of a list of roles, any or
 * all of a list of permissions, a condition on an attribute.  A refusal is
 * a 403 that names what is missing, and an event.
 *
 * Break-glass: /_ent/breakglass?token=... turns a one-time link made by
 * "entctl breakglass link" into a session of the platform admin, with the
 * grant's role, ending with the grant; every request of it is checked
 * against the grant (revocation and expiry) and recorded.
 */


#include "ngx_ent_sso.h"
#include "ngx_ent_tenant_api.h"

#include <openssl/sha.h>


#define NGX_HTTP_ENT_SSO_AZ_ROLE_MIN    1
#define NGX_HTTP_ENT_SSO_AZ_ROLES       2
#define NGX_HTTP_ENT_SSO_AZ_PERM_ANY    3
#define NGX_HTTP_ENT_SSO_AZ_PERM_ALL    4
#define NGX_HTTP_ENT_SSO_AZ_ATTR        5

#define NGX_HTTP_ENT_SSO_OP_EQ          1
#define NGX_HTTP_ENT_SSO_OP_NE          2
#define NGX_HTTP_ENT_SSO_OP_IN          3
#define NGX_HTTP_ENT_SSO_OP_REGEX       4
#define NGX_HTTP_ENT_SSO_OP_CONTAINS    5

#define NGX_HTTP_ENT_SSO_AZ_SLOTS       4096   /* per worker, a power of 2 */
#define NGX_HTTP_ENT_SSO_AZ_KEY         192

#define NGX_HTTP_ENT_SSO_READ_METHODS                                       \
    (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_OPTIONS)
/* every other method: WebDAV's, unknown ones (a rule must not miss them) */
#define NGX_HTTP_ENT_SSO_WRITE_METHODS                                      \
    (~(ngx_uint_t) NGX_HTTP_ENT_SSO_READ_METHODS)


typedef struct {
    ngx_uint_t                   type;
    ngx_uint_t                   methods;     /* 0: all */
    ngx_int_t                    rank;
    ngx_str_t                    attr;        /* ATTR: the attribute */
    ngx_uint_t                   op;
    ngx_array_t                 *values;      /* of ngx_str_t */
#if (NGX_PCRE)
    ngx_regex_t                 *regex;
#endif
    ngx_str_t                    what;        /* the refusal names it */
} ngx_http_ent_sso_rule_t;


/* a user's standing, kept in worker memory */
typedef struct {
    u_char                       key[NGX_HTTP_ENT_SSO_AZ_KEY];
    size_t                       key_len;
    ngx_uint_t                   generation;
    ngx_uint_t                   epoch;
    ngx_int_t                    status;      /* 1 active, 2 suspended,
                                                 3 none */
    ngx_int_t                    rank;
    time_t                       expires;
    u_char                      *roles;       /* malloc()ed */
    size_t                       roles_len;
    u_char                      *perms;       /* malloc()ed */
    size_t                       perms_len;
} ngx_http_ent_sso_standing_t;


static ngx_int_t ngx_http_ent_sso_authz_key(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, u_char *key, size_t *len);
static void ngx_http_ent_sso_authz_filled(ngx_ent_op_t *op);
static ngx_int_t ngx_http_ent_sso_authz_parse(ngx_http_request_t *r,
    ngx_str_t *value, ngx_http_ent_sso_standing_t *st);
static ngx_int_t ngx_http_ent_sso_authz_check(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_http_ent_sso_standing_t *st);
static ngx_uint_t ngx_http_ent_sso_in_list(ngx_str_t *list, ngx_str_t *item);
static ngx_int_t ngx_http_ent_sso_rule_ok(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_http_ent_sso_rule_t *rule);
static ngx_int_t ngx_http_ent_sso_attr_value(ngx_http_ent_sso_ctx_t *ctx,
    ngx_str_t *name, ngx_str_t *value);
static ngx_int_t ngx_http_ent_sso_deny(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_uint_t status, const char *error,
    ngx_str_t *missing, const char *text);
static ngx_uint_t ngx_http_ent_sso_methods(ngx_conf_t *cf, ngx_str_t *value);
static void ngx_http_ent_sso_bg_found(ngx_ent_op_t *op);
static void ngx_http_ent_sso_bg_spent(ngx_ent_op_t *op);


static ngx_http_ent_sso_standing_t  *ngx_http_ent_sso_standings;


static u_char  ngx_http_ent_sso_hex[] = "0123456789abcdef";


static struct {
    ngx_str_t                    name;
    ngx_int_t                    rank;
} ngx_http_ent_sso_system_roles[] = {
    { ngx_string("owner"), 100 },
    { ngx_string("admin"), 50 },
    { ngx_string("manager"), 30 },
    { ngx_string("member"), 10 },
    { ngx_string("viewer"), 5 },
};


/*
 * NGX_OK: allowed (ctx->az_* set); NGX_DONE: waiting for the standing;
 * else the request was answered (403, 503) and this is what to return.
 */

ngx_int_t
ngx_http_ent_sso_authz(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    size_t                         len;
    uint32_t                       hash;
    ngx_int_t                      rc;
    ngx_str_t                      key, value, params[5];
    ngx_uint_t                     gen, epoch;
    ngx_ent_cache_fill_t           fill;
    ngx_http_ent_sso_standing_t   *st, *stale, tmp;
    ngx_http_ent_sso_main_conf_t  *smcf;
    u_char                         kbuf[NGX_HTTP_ENT_SSO_AZ_KEY];

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (ngx_http_ent_sso_authz_key(r, ctx, kbuf, &len) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    gen = ngx_ent_cache_generation(smcf->authz_cache);
    epoch = ngx_ent_cache_epoch(smcf->authz_cache);

    if (ngx_http_ent_sso_standings == NULL) {
        ngx_http_ent_sso_standings = ngx_calloc(NGX_HTTP_ENT_SSO_AZ_SLOTS
                                      * sizeof(ngx_http_ent_sso_standing_t),
                                      ngx_cycle->log);
        if (ngx_http_ent_sso_standings == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    hash = ngx_murmur_hash2(kbuf, len);
    st = &ngx_http_ent_sso_standings[hash & (NGX_HTTP_ENT_SSO_AZ_SLOTS - 1)];

    stale = NULL;

    if (st->key_len == len && st->generation == gen && st->status
        && ngx_memcmp(st->key, kbuf, len) == 0)
    {
        if (st->epoch == epoch) {
            return ngx_http_ent_sso_authz_check(r, ctx, st);
        }

        /*
         * the node's listener was away: a change may have been missed, so
         * the standing is asked for again; kept for if PostgreSQL cannot
         * answer (a failover), as the zone keeps its stale entries
         */

        stale = st;
    }

    /* this worker does not know: the zone, or PostgreSQL */

    key.data = kbuf;
    key.len = len;

    params[0] = ctx->tenant_id;
    params[2].data = NULL;
    params[2].len = 0;
    params[3] = ctx->id.groups;
    params[4].data = NULL;
    params[4].len = 0;

    if (params[3].data == NULL) {
        ngx_str_set(&params[3], "");
    }

    if (ctx->breakglass) {
        params[1] = ctx->id.user_id;
        params[4] = ctx->id.sub;

    } else if (ctx->identity_from_bearer) {
        params[1] = ctx->id.sub;
        params[2] = ctx->id.iss;

    } else {
        params[1] = ctx->id.user_id;
    }

    fill.stmt = smcf->authz_stmt;
    fill.params = params;
    fill.transform = NULL;
    fill.flags = 0;

    rc = ngx_ent_cache_fetch(r, smcf->authz_cache, &key, &fill, &value,
                             ngx_http_ent_sso_authz_filled, r);

    switch (rc) {

    case NGX_AGAIN:
        ctx->waiting = 1;
        return ngx_ent_phase_wait(r);

    case NGX_OK:
        break;

    case NGX_DECLINED:
        ngx_str_null(&value);
        break;

    case NGX_BUSY:
        if (stale && stale->key_len == len && stale->generation == gen
            && ngx_memcmp(stale->key, kbuf, len) == 0)
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ent sso: PostgreSQL unavailable, a standing "
                          "kept from before the listener reconnected used");
            return ngx_http_ent_sso_authz_check(r, ctx, stale);
        }

        ctx->sso_status = "unavailable";
        return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "unavailable",
                                       "Access cannot be checked right "
                                       "now.");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&tmp, sizeof(ngx_http_ent_sso_standing_t));

    if (ngx_http_ent_sso_authz_parse(r, &value, &tmp) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* remember it, unless the zone was flushed meanwhile */

    if (gen == ngx_ent_cache_generation(smcf->authz_cache)) {
        ngx_free(st->roles);
        ngx_free(st->perms);
        ngx_memzero(st, sizeof(ngx_http_ent_sso_standing_t));

        st->roles = ngx_alloc(tmp.roles_len + 1, ngx_cycle->log);
        st->perms = ngx_alloc(tmp.perms_len + 1, ngx_cycle->log);

        if (st->roles && st->perms) {
            ngx_memcpy(st->roles, tmp.roles, tmp.roles_len);
            ngx_memcpy(st->perms, tmp.perms, tmp.perms_len);
            st->roles_len = tmp.roles_len;
            st->perms_len = tmp.perms_len;
            st->status = tmp.status;
            st->rank = tmp.rank;
            st->expires = tmp.expires;
            st->generation = gen;
            st->epoch = epoch;
            ngx_memcpy(st->key, kbuf, len);
            st->key_len = len;

        } else {
            ngx_free(st->roles);
            ngx_free(st->perms);
            ngx_memzero(st, sizeof(ngx_http_ent_sso_standing_t));
        }
    }

    return ngx_http_ent_sso_authz_check(r, ctx, &tmp);
}


/*
 * "<tenant>:<who>:<groups>": who is our user id, "g<grant>" for
 * break-glass, or "b" and a digest of the issuer and subject of a bearer
 * token; groups a hash of the IdP groups (they select group mappings)
 */

static ngx_int_t
ngx_http_ent_sso_authz_key(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    u_char *key, size_t *len)
{
    u_char                        *p, *last;
    uint64_t                       h;
    ngx_uint_t                     i;
    SHA256_CTX                     sha;
    ngx_http_ent_sso_main_conf_t  *smcf;
    u_char                         md[SHA256_DIGEST_LENGTH];

    p = key;
    last = key + NGX_HTTP_ENT_SSO_AZ_KEY;

    if (ctx->tenant_id.len > 64 || ctx->id.user_id.len > 64
        || ctx->id.sub.len > 64)
    {
        if (!ctx->identity_from_bearer) {
            return NGX_ERROR;
        }
    }

    if (!ctx->breakglass && !ctx->identity_from_bearer) {
        /* the usual case, every request of a session: no printf */

        p = ngx_cpymem(p, ctx->tenant_id.data, ctx->tenant_id.len);
        *p++ = ':';
        p = ngx_cpymem(p, ctx->id.user_id.data, ctx->id.user_id.len);

        goto groups;
    }

    p = ngx_slprintf(p, last, "%V:", &ctx->tenant_id);

    if (ctx->breakglass) {
        p = ngx_slprintf(p, last, "g%V:%V", &ctx->id.sub, &ctx->id.user_id);

    } else {
        SHA256_Init(&sha);
        SHA256_Update(&sha, ctx->id.iss.data, ctx->id.iss.len);
        SHA256_Update(&sha, "\n", 1);
        SHA256_Update(&sha, ctx->id.sub.data, ctx->id.sub.len);
        SHA256_Final(md, &sha);

        if (last - p < 1 + (ssize_t) ent_b64url_encoded_len(18)) {
            return NGX_ERROR;
        }

        *p++ = 'b';
        p += ent_b64url_encode(p, md, 18);

    }

groups:

    /*
     * the groups only tell apart the standings of one user's sessions (an
     * IdP's group changes between logins): a 64-bit SipHash, far cheaper
     * than a digest on every request, under the zone's random key (the
     * same in every worker and after a reload) so that a user naming their
     * own groups cannot make a new list pass for an earlier one
     */

    if (last - p < 1 + 16 + 1) {
        return NGX_ERROR;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);
    h = ngx_ent_cache_hash64(smcf->authz_cache, ctx->id.groups.data,
                             ctx->id.groups.len);

    *p++ = ':';

    for (i = 0; i < 16; i++) {
        p[i] = ngx_http_ent_sso_hex[(h >> (60 - 4 * i)) & 0xf];
    }

    p += 16;

    *len = p - key;

    return NGX_OK;
}


static void
ngx_http_ent_sso_authz_filled(ngx_ent_op_t *op)
{
    ngx_http_request_t      *r;
    ngx_http_ent_sso_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    if (ctx) {
        ctx->waiting = 0;
    }

    ngx_ent_phase_resume(r);
}


/* the row of ent.authz(): status, roles, rank, permissions, user, expires */

static ngx_int_t
ngx_http_ent_sso_authz_parse(ngx_http_request_t *r, ngx_str_t *value,
    ngx_http_ent_sso_standing_t *st)
{
    size_t           len;
    ngx_ent_rows_t   rows;
    const u_char    *data;

    st->status = 3;

    if (value->len == 0) {
        return NGX_OK;
    }

    if (ngx_ent_rows_open(&rows, value->data, value->len) != 0
        || rows.nrows != 1 || rows.ncols != 6)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: ent.authz() answered an unexpected shape "
                      "(are the migrations applied?)");
        return NGX_OK;
    }

    (void) ngx_ent_rows_next(&rows, &data, &len);

    if (data && len == 6 && ngx_strncmp(data, "active", 6) == 0) {
        st->status = 1;

    } else if (data && len == 9 && ngx_strncmp(data, "suspended", 9) == 0) {
        st->status = 2;
    }

    (void) ngx_ent_rows_next(&rows, &data, &len);
    st->roles = (u_char *) data;
    st->roles_len = data ? len : 0;

    (void) ngx_ent_rows_next(&rows, &data, &len);
    st->rank = data ? ngx_atoi((u_char *) data, len) : 0;

    (void) ngx_ent_rows_next(&rows, &data, &len);
    st->perms = (u_char *) data;
    st->perms_len = data ? len : 0;

    (void) ngx_ent_rows_next(&rows, &data, &len);

    (void) ngx_ent_rows_next(&rows, &data, &len);
    st->expires = data ? ngx_atotm((u_char *) data, len) : 0;

    if (st->rank == NGX_ERROR || st->expires == NGX_ERROR) {
        st->status = 3;
    }

    return NGX_OK;
}


/* the standing known: copy it for this request, then the rules */

static ngx_int_t
ngx_http_ent_sso_authz_check(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_http_ent_sso_standing_t *st)
{
    ngx_str_t                     missing;
    ngx_uint_t                    i;
    ngx_http_ent_sso_rule_t      *rules;
    ngx_http_ent_sso_loc_conf_t  *slcf;

    if (!ctx->authz_done) {
        ctx->az_roles.data = ngx_pnalloc(r->pool, st->roles_len + 1);
        ctx->az_perms.data = ngx_pnalloc(r->pool, st->perms_len + 1);
        if (ctx->az_roles.data == NULL || ctx->az_perms.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ctx->az_roles.data, st->roles, st->roles_len);
        ngx_memcpy(ctx->az_perms.data, st->perms, st->perms_len);
        ctx->az_roles.len = st->roles_len;
        ctx->az_perms.len = st->perms_len;
        ctx->az_rank = st->rank;
        ctx->az_expires = st->expires;
        ctx->authz_done = 1;

        /* $ent_roles and the signed assertion: the roles now, too */
        ctx->id.roles = ctx->az_roles;
    }

    if (st->status == 2) {
        ngx_str_set(&missing, "an active membership");
        return ngx_http_ent_sso_deny(r, ctx, NGX_HTTP_FORBIDDEN, "suspended",
                                     &missing,
                                     "Your membership of this organization "
                                     "is suspended.");
    }

    /*
     * a valid bearer token of no member (a service account, a client's own
     * credentials) goes on with no role and no permission: only rules that
     * need neither can pass
     */

    if (st->status != 1 && !(ctx->identity_from_bearer && !ctx->breakglass))
    {
        if (ctx->breakglass) {
            ngx_str_set(&missing, "an active break-glass grant");
            return ngx_http_ent_sso_deny(r, ctx, NGX_HTTP_FORBIDDEN,
                                         "breakglass_ended", &missing,
                                         "This emergency access has ended "
                                         "or was revoked.");
        }

        ngx_str_set(&missing, "a membership");
        return ngx_http_ent_sso_deny(r, ctx, NGX_HTTP_FORBIDDEN, "no_access",
                                     &missing,
                                     "You are not a member of this "
                                     "organization.");
    }

    if (ctx->breakglass) {
        /* to the second, whatever the caches say */

        if (ctx->az_expires <= ngx_http_ent_sso_now(r)) {
            u_char  *p, reason[128];

            p = ngx_snprintf(reason, sizeof(reason) - 1, "grant %V ended",
                             &ctx->id.sub);
            *p = '\0';

            ngx_http_ent_sso_event(r, ctx, "breakglass.expired", "failure",
                                   (char *) reason, &ctx->id.user_id);

            ngx_str_set(&missing, "an active break-glass grant");
            return ngx_http_ent_sso_deny(r, ctx, NGX_HTTP_FORBIDDEN,
                                         "breakglass_ended", &missing,
                                         "This emergency access has "
                                         "ended.");
        }
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_sso_module);

    if (slcf->authz) {
        rules = slcf->authz->elts;

        for (i = 0; i < slcf->authz->nelts; i++) {
            if (rules[i].methods && !(rules[i].methods & r->method)) {
                continue;
            }

            if (ngx_http_ent_sso_rule_ok(r, ctx, &rules[i]) != NGX_OK) {
                return ngx_http_ent_sso_deny(r, ctx, NGX_HTTP_FORBIDDEN,
                                             "forbidden", &rules[i].what,
                                             NULL);
            }
        }
    }

    if (ctx->breakglass) {
        u_char  *p, reason[256];

        /* every request of a break-glass session is on the record */

        p = ngx_snprintf(reason, sizeof(reason) - 1,
                         "grant %V: %V %V", &ctx->id.sub,
                         &r->method_name, &r->uri);
        *p = '\0';

        ngx_http_ent_sso_event(r, ctx, "breakglass", "info",
                               (char *) reason, &ctx->id.user_id);
    }

    /* an internal redirect to a location of other rules checks those */
    ctx->authz_conf = slcf;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_rule_ok(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_http_ent_sso_rule_t *rule)
{
    ngx_str_t   *v, value, item;
    ngx_uint_t   i, n;
    u_char      *p, *end, *q;

    v = rule->values ? rule->values->elts : NULL;

    switch (rule->type) {

    case NGX_HTTP_ENT_SSO_AZ_ROLE_MIN:
        return ctx->az_rank >= rule->rank ? NGX_OK : NGX_DECLINED;

    case NGX_HTTP_ENT_SSO_AZ_ROLES:
        for (i = 0; i < rule->values->nelts; i++) {
            if (ngx_http_ent_sso_in_list(&ctx->az_roles, &v[i])) {
                return NGX_OK;
            }
        }

        return NGX_DECLINED;

    case NGX_HTTP_ENT_SSO_AZ_PERM_ANY:
    case NGX_HTTP_ENT_SSO_AZ_PERM_ALL:
        n = 0;

        for (i = 0; i < rule->values->nelts; i++) {
            if (ngx_http_ent_sso_in_list(&ctx->az_perms, &v[i])) {
                n++;
            }
        }

        if (rule->type == NGX_HTTP_ENT_SSO_AZ_PERM_ANY) {
            return n ? NGX_OK : NGX_DECLINED;
        }

        return n == rule->values->nelts ? NGX_OK : NGX_DECLINED;

    default: /* NGX_HTTP_ENT_SSO_AZ_ATTR */
        break;
    }

    if (ngx_http_ent_sso_attr_value(ctx, &rule->attr, &value) != NGX_OK) {
        /* an absent attribute passes only "!=" */
        return rule->op == NGX_HTTP_ENT_SSO_OP_NE ? NGX_OK : NGX_DECLINED;
    }

    switch (rule->op) {

    case NGX_HTTP_ENT_SSO_OP_EQ:
    case NGX_HTTP_ENT_SSO_OP_NE:
        n = (value.len == v[0].len
             && ngx_strncmp(value.data, v[0].data, value.len) == 0);
        return (n == (rule->op == NGX_HTTP_ENT_SSO_OP_EQ)) ? NGX_OK
                                                           : NGX_DECLINED;

    case NGX_HTTP_ENT_SSO_OP_IN:
        for (i = 0; i < rule->values->nelts; i++) {
            if (value.len == v[i].len
                && ngx_strncmp(value.data, v[i].data, value.len) == 0)
            {
                return NGX_OK;
            }
        }

        return NGX_DECLINED;

#if (NGX_PCRE)
    case NGX_HTTP_ENT_SSO_OP_REGEX:
        return ngx_regex_exec(rule->regex, &value, NULL, 0) >= 0
               ? NGX_OK : NGX_DECLINED;
#endif

    default: /* NGX_HTTP_ENT_SSO_OP_CONTAINS: one of a ","-joined list */
        p = value.data;
        end = p + value.len;

        while (p < end) {
            q = ngx_strlchr(p, end, ',');
            if (q == NULL) {
                q = end;
            }

            item.data = p;
            item.len = q - p;

            if (item.len == v[0].len
                && ngx_strncmp(item.data, v[0].data, item.len) == 0)
            {
                return NGX_OK;
            }

            p = q + 1;
        }

        return NGX_DECLINED;
    }
}


/* an attribute of the identity: built in, or a custom one */

static ngx_int_t
ngx_http_ent_sso_attr_value(ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *name,
    ngx_str_t *value)
{
    static struct {
        ngx_str_t  name;
        size_t     offset;
    } builtin[] = {
        { ngx_string("email"), offsetof(ngx_http_ent_sso_ctx_t, id.email) },
        { ngx_string("name"), offsetof(ngx_http_ent_sso_ctx_t, id.name) },
        { ngx_string("groups"),
          offsetof(ngx_http_ent_sso_ctx_t, id.groups) },
        { ngx_string("roles"), offsetof(ngx_http_ent_sso_ctx_t, az_roles) },
        { ngx_string("permissions"),
          offsetof(ngx_http_ent_sso_ctx_t, az_perms) },
        { ngx_string("sub"), offsetof(ngx_http_ent_sso_ctx_t, id.sub) },
        { ngx_string("user_id"),
          offsetof(ngx_http_ent_sso_ctx_t, id.user_id) },
    };

    ngx_uint_t  i;

    for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        if (name->len == builtin[i].name.len
            && ngx_strncmp(name->data, builtin[i].name.data, name->len) == 0)
        {
            *value = *(ngx_str_t *) ((u_char *) ctx + builtin[i].offset);
            return value->len ? NGX_OK : NGX_DECLINED;
        }
    }

    return ngx_http_ent_sso_attr_find(&ctx->id.attrs, name->data, name->len,
                                      value);
}


/* item one of the ","-separated list */

static ngx_uint_t
ngx_http_ent_sso_in_list(ngx_str_t *list, ngx_str_t *item)
{
    u_char  *p, *end, *q;

    p = list->data;
    end = p + list->len;

    while (p && p < end) {
        q = ngx_strlchr(p, end, ',');
        if (q == NULL) {
            q = end;
        }

        if ((size_t) (q - p) == item->len
            && ngx_strncmp(p, item->data, item->len) == 0)
        {
            return 1;
        }

        p = q + 1;
    }

    return 0;
}


/* 403 (or the given status): JSON naming what is missing, or a page */

static ngx_int_t
ngx_http_ent_sso_deny(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_uint_t status, const char *error, ngx_str_t *missing,
    const char *text)
{
    u_char     *p, *body, page[512];
    ngx_int_t   rc;

    p = ngx_snprintf(page, sizeof(page) - 1, "%s", "missing ");
    p = ngx_snprintf(p, page + sizeof(page) - 1 - p, "%V", missing);
    *p = '\0';

    ngx_http_ent_sso_event(r, ctx, "authz", "failure", (char *) page,
                           &ctx->id.user_id);

    ctx->sso_status = "forbidden";
    ctx->decided = 1;
    ctx->answered = 1;

    if (text == NULL) {
        p = ngx_snprintf(page, sizeof(page) - 1,
                         "You need %V for this page.", missing);
        *p = '\0';
        text = (char *) page;
    }

    if (ctx->bearer.len == 0) {
        rc = ngx_http_ent_tenant_html(r, status, error, "Access denied",
                                      text);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    body = ngx_pnalloc(r->pool, 64 + ngx_strlen(error) + missing->len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"error\":\"%s\",\"missing\":\"%V\"}\n", error,
                    missing);

    return ngx_http_ent_sso_send(r, status, "application/json", body,
                                 p - body);
}


/* $ent_permissions */

ngx_int_t
ngx_http_ent_sso_permissions_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ent_sso_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_ent_sso_module);

    if (ctx == NULL || ctx->kind != NGX_HTTP_ENT_SSO_CTX_REQUEST
        || !ctx->authz_done)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ctx->az_perms.data;
    v->len = ctx->az_perms.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


void
ngx_http_ent_sso_authz_exit(void)
{
    ngx_uint_t  i;

    if (ngx_http_ent_sso_standings == NULL) {
        return;
    }

    for (i = 0; i < NGX_HTTP_ENT_SSO_AZ_SLOTS; i++) {
        ngx_free(ngx_http_ent_sso_standings[i].roles);
        ngx_free(ngx_http_ent_sso_standings[i].perms);
    }

    ngx_free(ngx_http_ent_sso_standings);
    ngx_http_ent_sso_standings = NULL;
}


/*
 * The directives:
 *
 *   ent_authz_role_min ROLE|RANK [methods=M];
 *   ent_authz_roles ROLE... [methods=M];
 *   ent_authz_permission [any|all] PERMISSION... [methods=M];
 *   ent_authz_attr NAME =|!=|in|~|contains VALUE [methods=M];
 *
 * M: methods separated by ",", or "read" (GET, HEAD, OPTIONS) or "write"
 * (every other method).  A location with rules of its own does not
 * inherit its parent's.
 */

char *
ngx_http_ent_sso_authz_rule(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_sso_loc_conf_t *slcf = conf;

    u_char                    *p;
    size_t                     len;
    ngx_str_t                 *value, *s;
    ngx_uint_t                 i, n, first, last;
    const char                *kind;
    ngx_http_ent_sso_rule_t   *rule;
#if (NGX_PCRE)
    ngx_regex_compile_t        rc;
    u_char                     errstr[NGX_MAX_CONF_ERRSTR];
#endif

    value = cf->args->elts;
    kind = cmd->post;
    n = cf->args->nelts;

    if (slcf->authz == NULL) {
        slcf->authz = ngx_array_create(cf->pool, 4,
                                       sizeof(ngx_http_ent_sso_rule_t));
        if (slcf->authz == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(slcf->authz);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_ent_sso_rule_t));

    /* methods=..., last */

    last = n;

    if (n > 2 && value[n - 1].len > 8
        && ngx_strncmp(value[n - 1].data, "methods=", 8) == 0)
    {
        rule->methods = ngx_http_ent_sso_methods(cf, &value[n - 1]);
        if (rule->methods == 0) {
            return NGX_CONF_ERROR;
        }

        last = n - 1;
    }

    if (ngx_strcmp(kind, "role_min") == 0) {
        if (last != 2) {
            goto invalid;
        }

        rule->type = NGX_HTTP_ENT_SSO_AZ_ROLE_MIN;
        rule->rank = ngx_atoi(value[1].data, value[1].len);

        for (i = 0; rule->rank == NGX_ERROR
                    && i < sizeof(ngx_http_ent_sso_system_roles)
                           / sizeof(ngx_http_ent_sso_system_roles[0]); i++)
        {
            if (value[1].len == ngx_http_ent_sso_system_roles[i].name.len
                && ngx_strncmp(value[1].data,
                               ngx_http_ent_sso_system_roles[i].name.data,
                               value[1].len) == 0)
            {
                rule->rank = ngx_http_ent_sso_system_roles[i].rank;
            }
        }

        if (rule->rank == NGX_ERROR || rule->rank < 1 || rule->rank > 1000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive: a "
                               "system role (owner, admin, manager, member, "
                               "viewer) or a rank of 1 to 1000",
                               &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }

        len = sizeof("the role ") - 1 + value[1].len;
        p = ngx_pnalloc(cf->pool, len);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        rule->what.data = p;
        rule->what.len = ngx_sprintf(p, "the role %V", &value[1]) - p;

        return NGX_CONF_OK;
    }

    if (ngx_strcmp(kind, "attr") == 0) {
        if (last != 4) {
            goto invalid;
        }

        rule->type = NGX_HTTP_ENT_SSO_AZ_ATTR;
        rule->attr = value[1];

        if (value[2].len == 1 && value[2].data[0] == '=') {
            rule->op = NGX_HTTP_ENT_SSO_OP_EQ;

        } else if (value[2].len == 2 && ngx_strncmp(value[2].data, "!=", 2)
                                        == 0)
        {
            rule->op = NGX_HTTP_ENT_SSO_OP_NE;

        } else if (value[2].len == 2 && ngx_strncmp(value[2].data, "in", 2)
                                        == 0)
        {
            rule->op = NGX_HTTP_ENT_SSO_OP_IN;

        } else if (value[2].len == 1 && value[2].data[0] == '~') {
            rule->op = NGX_HTTP_ENT_SSO_OP_REGEX;

        } else if (value[2].len == 8
                   && ngx_strncmp(value[2].data, "contains", 8) == 0)
        {
            rule->op = NGX_HTTP_ENT_SSO_OP_CONTAINS;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive: "
                               "=, !=, in, ~ or contains",
                               &value[2], &cmd->name);
            return NGX_CONF_ERROR;
        }

        rule->values = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (rule->values == NULL) {
            return NGX_CONF_ERROR;
        }

        if (rule->op == NGX_HTTP_ENT_SSO_OP_IN) {
            p = value[3].data;

            for (i = 0; i <= value[3].len; i++) {
                if (i < value[3].len && value[3].data[i] != ',') {
                    continue;
                }

                s = ngx_array_push(rule->values);
                if (s == NULL) {
                    return NGX_CONF_ERROR;
                }

                s->data = p;
                s->len = value[3].data + i - p;
                p = value[3].data + i + 1;
            }

        } else {
            s = ngx_array_push(rule->values);
            if (s == NULL) {
                return NGX_CONF_ERROR;
            }

            *s = value[3];
        }

#if (NGX_PCRE)
        if (rule->op == NGX_HTTP_ENT_SSO_OP_REGEX) {
            ngx_memzero(&rc, sizeof(ngx_regex_compile_t));
            rc.pattern = value[3];
            rc.pool = cf->pool;
            rc.err.len = NGX_MAX_CONF_ERRSTR;
            rc.err.data = errstr;

            if (ngx_regex_compile(&rc) != NGX_OK) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid regex \"%V\" in \"%V\" "
                                   "directive: %V", &value[3], &cmd->name,
                                   &rc.err);
                return NGX_CONF_ERROR;
            }

            rule->regex = rc.regex;
        }
#else
        if (rule->op == NGX_HTTP_ENT_SSO_OP_REGEX) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" with \"~\" needs PCRE", &cmd->name);
            return NGX_CONF_ERROR;
        }
#endif

        len = sizeof("the attribute ") - 1 + value[1].len;
        p = ngx_pnalloc(cf->pool, len);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        rule->what.data = p;
        rule->what.len = ngx_sprintf(p, "the attribute %V", &value[1]) - p;

        return NGX_CONF_OK;
    }

    /* roles or permissions: a list */

    first = 1;

    if (ngx_strcmp(kind, "roles") == 0) {
        rule->type = NGX_HTTP_ENT_SSO_AZ_ROLES;

    } else {
        rule->type = NGX_HTTP_ENT_SSO_AZ_PERM_ANY;

        if (value[1].len == 3 && ngx_strncmp(value[1].data, "all", 3) == 0) {
            rule->type = NGX_HTTP_ENT_SSO_AZ_PERM_ALL;
            first = 2;

        } else if (value[1].len == 3
                   && ngx_strncmp(value[1].data, "any", 3) == 0)
        {
            first = 2;
        }
    }

    if (first >= last) {
        goto invalid;
    }

    rule->values = ngx_array_create(cf->pool, last - first,
                                    sizeof(ngx_str_t));
    if (rule->values == NULL) {
        return NGX_CONF_ERROR;
    }

    len = sizeof("all of the permissions ") - 1;

    for (i = first; i < last; i++) {
        for (p = value[i].data; p < value[i].data + value[i].len; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
                  || *p == '_' || *p == '.' || *p == '-' || *p == ':'))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" "
                                   "directive: lowercase letters, digits "
                                   "and \"_.-:\"", &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }
        }

        s = ngx_array_push(rule->values);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];
        len += value[i].len + 2;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    rule->what.data = p;
    p = ngx_sprintf(p, "%s ",
                    rule->type == NGX_HTTP_ENT_SSO_AZ_ROLES
                    ? "one of the roles"
                    : last - first == 1 ? "the permission"
                    : rule->type == NGX_HTTP_ENT_SSO_AZ_PERM_ALL
                    ? "all of the permissions" : "one of the permissions");

    for (i = first; i < last; i++) {
        p = ngx_sprintf(p, "%s%V", i == first ? "" : ", ", &value[i]);
    }

    rule->what.len = p - rule->what.data;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid number of arguments in \"%V\" directive",
                       &cmd->name);
    return NGX_CONF_ERROR;
}


static ngx_uint_t
ngx_http_ent_sso_methods(ngx_conf_t *cf, ngx_str_t *value)
{
    u_char      *p, *end, *q;
    ngx_str_t    m;
    ngx_uint_t   mask, i;

    static struct {
        ngx_str_t   name;
        ngx_uint_t  mask;
    } names[] = {
        { ngx_string("read"), NGX_HTTP_ENT_SSO_READ_METHODS },
        { ngx_string("write"), NGX_HTTP_ENT_SSO_WRITE_METHODS },
        { ngx_string("GET"), NGX_HTTP_GET },
        { ngx_string("HEAD"), NGX_HTTP_HEAD },
        { ngx_string("OPTIONS"), NGX_HTTP_OPTIONS },
        { ngx_string("POST"), NGX_HTTP_POST },
        { ngx_string("PUT"), NGX_HTTP_PUT },
        { ngx_string("PATCH"), NGX_HTTP_PATCH },
        { ngx_string("DELETE"), NGX_HTTP_DELETE },
    };

    mask = 0;
    p = value->data + 8;
    end = value->data + value->len;

    while (p < end) {
        q = ngx_strlchr(p, end, ',');
        if (q == NULL) {
            q = end;
        }

        m.data = p;
        m.len = q - p;

        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (m.len == names[i].name.len
                && ngx_strncmp(m.data, names[i].name.data, m.len) == 0)
            {
                mask |= names[i].mask;
                break;
            }
        }

        if (i == sizeof(names) / sizeof(names[0])) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid method \"%V\" in \"%V\": read, "
                               "write, GET, HEAD, OPTIONS, POST, PUT, PATCH "
                               "or DELETE", &m, value);
            return 0;
        }

        p = q + 1;
    }

    return mask;
}


/*
 * GET /_ent/breakglass?token=T: a one-time link of an approved grant.
 * Phase 0 opens the token (sealed with ent_sso_secret_key for this tenant)
 * and asks PostgreSQL for the grant; phase 1 spends the token's nonce in
 * Redis; phase 2 makes the session; phase 3 answers with its cookie.
 */

ngx_int_t
ngx_http_ent_sso_breakglass(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    json_t                        *js, *g, *t, *e, *n;
    u_char                        *p;
    size_t                         len;
    ngx_int_t                      rc;
    ngx_str_t                      token, grant, nonce, key, *argv;
    ngx_ent_rows_t                 rows;
    const u_char                  *data;
    ngx_ent_redis_cmd_t            cmd;
    u_char                         kbuf[256];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    switch (ctx->phase) {

    case 0:
        break;

    case 1:
        /* the grant, from PostgreSQL: tenant, admin, role, end, email... */

        if (ctx->status != NGX_OK) {
            return ngx_http_ent_sso_answer(r, ctx,
                                           NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "unavailable",
                                           "Access cannot be checked right "
                                           "now.");
        }

        if (ngx_ent_rows_open(&rows, ctx->fetch_body.data,
                              ctx->fetch_body.len) != 0
            || rows.nrows != 1 || rows.ncols != 6)
        {
            goto refused;
        }

        (void) ngx_ent_rows_next(&rows, &data, &len);

        if (data == NULL || len != ctx->tenant_id.len
            || ngx_strncmp(data, ctx->tenant_id.data, len) != 0)
        {
            goto refused;
        }

        (void) ngx_ent_rows_next(&rows, &data, &len);
        if (data == NULL || len > 64) {
            goto refused;
        }

        ctx->id.user_id.data = ngx_pnalloc(r->pool, len);
        if (ctx->id.user_id.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ctx->id.user_id.data, data, len);
        ctx->id.user_id.len = len;

        (void) ngx_ent_rows_next(&rows, &data, &len);
        ctx->id.roles.data = ngx_pnalloc(r->pool, len + 1);
        if (data == NULL || ctx->id.roles.data == NULL) {
            goto refused;
        }

        ngx_memcpy(ctx->id.roles.data, data, len);
        ctx->id.roles.len = len;

        (void) ngx_ent_rows_next(&rows, &data, &len);
        ctx->expires_cap = data ? ngx_atotm((u_char *) data, len) : 0;

        if (ctx->expires_cap == NGX_ERROR
            || ctx->expires_cap <= ngx_http_ent_sso_now(r))
        {
            goto refused;
        }

        (void) ngx_ent_rows_next(&rows, &data, &len);
        if (data && len <= 320) {
            ctx->id.email.data = ngx_pnalloc(r->pool, len);
            if (ctx->id.email.data) {
                ngx_memcpy(ctx->id.email.data, data, len);
                ctx->id.email.len = len;
            }
        }

        (void) ngx_ent_rows_next(&rows, &data, &len);
        if (data && len <= 256) {
            ctx->id.name.data = ngx_pnalloc(r->pool, len);
            if (ctx->id.name.data) {
                ngx_memcpy(ctx->id.name.data, data, len);
                ctx->id.name.len = len;
            }
        }

        /* the link is good once: its nonce, until the link expires */

        key.len = ngx_http_ent_sso_key(r, ctx, kbuf, sizeof(kbuf), "bg",
                                       ctx->nonce.data, ctx->nonce.len);
        argv = ngx_palloc(r->pool, 6 * sizeof(ngx_str_t));

        if (key.len == 0 || argv == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&argv[0], "SET");
        argv[1].data = ngx_pnalloc(r->pool, key.len);
        if (argv[1].data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(argv[1].data, kbuf, key.len);
        argv[1].len = key.len;
        ngx_str_set(&argv[2], "1");
        ngx_str_set(&argv[3], "NX");
        ngx_str_set(&argv[4], "EX");
        ngx_str_set(&argv[5], "600");

        cmd.argc = 6;
        cmd.argv = argv;

        if (ngx_ent_redis_run(r, &cmd, 1, ngx_http_ent_sso_bg_spent, r)
            != NGX_AGAIN)
        {
            return ngx_http_ent_sso_answer(r, ctx,
                                           NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "unavailable",
                                           "Sessions are unavailable right "
                                           "now.");
        }

        ctx->phase = 2;
        ctx->waiting = 1;
        return ngx_ent_phase_wait(r);

    case 2:
        if (ctx->status == NGX_HTTP_BAD_REQUEST) {
            goto refused;
        }

        if (ctx->status != NGX_OK) {
            return ngx_http_ent_sso_answer(r, ctx,
                                           NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "unavailable",
                                           "Sessions are unavailable right "
                                           "now.");
        }

        /* a session of the admin, marked by the grant */

        ngx_str_set(&ctx->id.iss, NGX_HTTP_ENT_SSO_BREAKGLASS_ISS);
        ctx->id.sub = ctx->state;
        ctx->phase = 3;

        return ngx_http_ent_sso_session_create(r, ctx);

    case 3:
        if (ctx->status != NGX_OK) {
            return ngx_http_ent_sso_answer(r, ctx,
                                           NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "unavailable",
                                           "Sessions are unavailable right "
                                           "now.");
        }

        if (ngx_http_ent_sso_set_cookie(r, &smcf->cookie,
                                        ctx->cookie_value.data,
                                        ctx->cookie_value.len,
                                        ctx->id.expires
                                        - ngx_http_ent_sso_now(r))
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_pnalloc(r->pool, ctx->state.len + 32);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_sprintf(p, "grant %V: signed in", &ctx->state) = '\0';

        ngx_http_ent_sso_event(r, ctx, "breakglass", "success", (char *) p,
                               &ctx->id.user_id);

        ctx->sso_status = "login";
        ctx->decided = 1;
        ngx_str_set(&ctx->return_to, "/");

        return ngx_http_ent_sso_redirect(r, &ctx->return_to);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* phase 0: the token */

    if (r->method != NGX_HTTP_GET
        || ngx_http_ent_sso_arg(r, &r->args, "token", &token) == NULL
        || token.len == 0 || token.len > 1024)
    {
        goto refused;
    }

    js = ngx_http_ent_sso_unseal(r, ctx, "breakglass", &token);

    g = json_object_get(js, "g");
    t = json_object_get(js, "t");
    e = json_object_get(js, "e");
    n = json_object_get(js, "n");

    if (!json_is_string(g) || !json_is_string(t) || !json_is_integer(e)
        || !json_is_string(n) || json_string_length(g) != 36
        || json_string_length(n) == 0 || json_string_length(n) > 64
        || json_integer_value(e) < ngx_http_ent_sso_now(r)
        || json_string_length(t) != ctx->tenant_id.len
        || ngx_strncmp(json_string_value(t), ctx->tenant_id.data,
                       ctx->tenant_id.len) != 0)
    {
        json_decref(js);
        goto refused;
    }

    grant.len = 36;
    grant.data = ngx_pnalloc(r->pool, grant.len);
    nonce.len = json_string_length(n);
    nonce.data = ngx_pnalloc(r->pool, nonce.len);

    if (grant.data == NULL || nonce.data == NULL) {
        json_decref(js);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(grant.data, json_string_value(g), grant.len);
    ngx_memcpy(nonce.data, json_string_value(n), nonce.len);
    json_decref(js);

    for (p = grant.data; p < grant.data + grant.len; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')
              || *p == '-'))
        {
            goto refused;
        }
    }

    ctx->state = grant;
    ctx->nonce = nonce;

    rc = ngx_ent_pg_query(r, smcf->bg_stmt, &ctx->state,
                          ngx_http_ent_sso_bg_found, r);

    if (rc != NGX_AGAIN) {
        return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "unavailable",
                                       "Access cannot be checked right "
                                       "now.");
    }

    ctx->phase = 1;
    ctx->waiting = 1;
    return ngx_ent_phase_wait(r);

refused:

    ngx_http_ent_sso_event(r, ctx, "breakglass", "failure",
                           "an invalid, used or expired link", NULL);

    return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_FORBIDDEN,
                                   "breakglass_refused",
                                   "This emergency access link is not "
                                   "valid, was used already, or its grant "
                                   "is not active.");
}


static void
ngx_http_ent_sso_bg_found(ngx_ent_op_t *op)
{
    ngx_http_request_t      *r;
    ngx_http_ent_sso_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    ctx->status = (op->status == NGX_ENT_OK) ? NGX_OK
                                             : NGX_HTTP_SERVICE_UNAVAILABLE;

    if (op->status == NGX_ENT_OK) {
        ctx->fetch_body.data = ngx_pnalloc(r->pool, op->rows.len + 1);
        if (ctx->fetch_body.data == NULL) {
            ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;

        } else {
            ngx_memcpy(ctx->fetch_body.data, op->rows.data, op->rows.len);
            ctx->fetch_body.len = op->rows.len;
        }
    }

    ngx_http_ent_sso_wake(r, ctx);
}


static void
ngx_http_ent_sso_bg_spent(ngx_ent_op_t *op)
{
    ngx_http_request_t      *r;
    ngx_http_ent_sso_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    if (op->status != NGX_ENT_OK || op->nreplies != 1
        || op->replies[0]->type == REDIS_REPLY_ERROR)
    {
        ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    } else if (op->replies[0]->type == REDIS_REPLY_NIL) {
        ctx->status = NGX_HTTP_BAD_REQUEST;

    } else {
        ctx->status = NGX_OK;
    }

    ngx_http_ent_sso_wake(r, ctx);
}
