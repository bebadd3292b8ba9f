/*
 * ngx_http_ent_sso_module: sessions.
 *
 * The cookie holds a session id (128 bits: 64 random, a hint of the
 * tenant and a MAC of both, 32 each) and a random key (256 bits),
 * base64url.  The key keeps the session secret, not the id: an id that
 * repeats in a tenant (one in 2^64 a pair) replaces the other session,
 * which then opens with no key: a sign-out, never another's identity.
 * Redis holds, under the id, the identity sealed with
 * that key (AES-256-GCM, bound to the tenant and the id), so a Redis dump
 * leaks nothing usable and a cookie of tenant A opens nothing on tenant B.
 * Reads refresh the idle timeout (GETEX); the absolute end is inside the
 * sealed data.  Sets index the sessions of a user (revoke-all) and of an
 * IdP subject and IdP session (back-channel logout).  Keys:
 *
 *     ent:{t:<tenant id>}:s:<session id>      the session
 *     ent:{t:<tenant id>}:u:<user id>         its user's sessions
 *     ent:{t:<tenant id>}:o:<H(iss, sub)>     an IdP subject's sessions
 *     ent:{t:<tenant id>}:os:<H(iss, sid)>    an IdP session's sessions
 *     ent:{t:<tenant id>}:st:<state>          a login state, used
 *     ent:{t:<tenant id>}:jti:<H(iss, jti)>   a logout token, used
 *
 * H is base64url(SHA-256(a "\n" b)).  Everything has a TTL.
 */


#include "ngx_ent_sso.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>


#define NGX_HTTP_ENT_SSO_MAX_REVOKE  256


static void ngx_http_ent_sso_loaded(ngx_ent_op_t *op);
static void ngx_http_ent_sso_sid_hint(ngx_str_t *tenant, u_char *hint);
static void ngx_http_ent_sso_sid_mac(ngx_http_ent_sso_main_conf_t *smcf,
    u_char *raw, u_char *mac);
static ngx_int_t ngx_http_ent_sso_sid_check(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
static ngx_int_t ngx_http_ent_sso_open(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, u_char *data, size_t len);
static ngx_int_t ngx_http_ent_sso_decode(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, u_char *plain, size_t n);
static ngx_int_t ngx_http_ent_sso_cache_key(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *key, u_char *sid);
static ngx_int_t ngx_http_ent_sso_cache_get(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
static void ngx_http_ent_sso_cache_put(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, u_char *plain, size_t n);
static void ngx_http_ent_sso_tag(ngx_http_ent_sso_ctx_t *ctx, u_char *tag);
static size_t ngx_http_ent_sso_cells_size(ngx_http_ent_sso_ctx_t *ctx);
static u_char *ngx_http_ent_sso_cells(ngx_http_ent_sso_ctx_t *ctx, u_char *p);
static void ngx_http_ent_sso_created(ngx_ent_op_t *op);
static void ngx_http_ent_sso_done(ngx_ent_op_t *op);
static ngx_uint_t ngx_http_ent_sso_cross_site(ngx_http_request_t *r);
static void ngx_http_ent_sso_unspend(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
static void ngx_http_ent_sso_unspent(ngx_ent_op_t *op);
static void ngx_http_ent_sso_listed(ngx_ent_op_t *op);
static ngx_int_t ngx_http_ent_sso_index(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, const char *kind, ngx_str_t *a,
    ngx_str_t *b, ngx_str_t *out);
static ngx_int_t ngx_http_ent_sso_run_cmds(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_ent_redis_cmd_t *cmds, ngx_uint_t n,
    ngx_ent_op_handler_pt handler);
static ngx_int_t ngx_http_ent_sso_signed_out(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);


size_t
ngx_http_ent_sso_key(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    u_char *buf, size_t size, const char *kind, u_char *suffix, size_t len)
{
    u_char  *p;
    u_char   tmp[512];

    if (ngx_strlen(kind) + 1 + len > sizeof(tmp)) {
        return 0;
    }

    p = ngx_cpymem(tmp, kind, ngx_strlen(kind));
    *p++ = ':';
    p = ngx_cpymem(p, suffix, len);

    return ngx_ent_redis_key(buf, size, (u_char *) "ent:", 4,
                             ctx->tenant_id.data, ctx->tenant_id.len, tmp,
                             p - tmp);
}


static ngx_int_t
ngx_http_ent_sso_cmd_key(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_str_t *out, const char *kind, u_char *suffix, size_t len)
{
    u_char  buf[640];

    out->len = ngx_http_ent_sso_key(r, ctx, buf, sizeof(buf), kind, suffix,
                                    len);
    if (out->len == 0) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(r->pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, buf, out->len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_num(ngx_http_request_t *r, ngx_str_t *out, time_t n)
{
    out->data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = ngx_sprintf(out->data, "%T", n) - out->data;

    return NGX_OK;
}


/* load */


ngx_int_t
ngx_http_ent_sso_session_load(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    ngx_str_t                     *argv;
    ngx_ent_redis_cmd_t            cmd;
    ngx_http_ent_sso_main_conf_t  *smcf;

    if (ctx->session_done) {
        return ctx->status == NGX_HTTP_SERVICE_UNAVAILABLE
               ? ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "unavailable",
                                         "Sessions are unavailable right "
                                         "now.")
               : NGX_OK;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    /* the endpoints (logout needs the ID token) always read Redis */

    if (smcf->session_cache && ctx->endpoint == NGX_HTTP_ENT_SSO_EP_NONE
        && ngx_http_ent_sso_cache_get(r, ctx) == NGX_OK)
    {
        ctx->session_done = 1;
        ctx->authenticated = 1;
        ctx->status = NGX_OK;
        return NGX_OK;
    }

    /*
     * The session id says which tenant it was made for, under a MAC: a
     * forged one is no session; one made for another tenant is the
     * isolation breach signal, and no session here either
     */

    switch (ngx_http_ent_sso_sid_check(r, ctx)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        ctx->session_done = 1;
        ctx->status = NGX_OK;
        ctx->sso_status = "cross_tenant";
        ctx->expired = 1;

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ent sso: a session of another tenant presented");
        ngx_http_ent_sso_event(r, ctx, "cross_tenant.session", "failure",
                               "a session cookie made for another tenant",
                               NULL);
        return NGX_OK;

    default:
        ctx->session_done = 1;
        ctx->status = NGX_OK;
        ctx->sso_status = "bad_cookie";
        ctx->expired = 1;
        return NGX_OK;
    }

    argv = ngx_palloc(r->pool, 4 * sizeof(ngx_str_t));
    if (argv == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&argv[0], "GETEX");
    ngx_str_set(&argv[2], "EX");

    if (ngx_http_ent_sso_cmd_key(r, ctx, &argv[1], "s", ctx->sid,
                                 NGX_HTTP_ENT_SSO_SID_B64) != NGX_OK
        || ngx_http_ent_sso_num(r, &argv[3], smcf->idle) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cmd.argc = 4;
    cmd.argv = argv;

    return ngx_http_ent_sso_run_cmds(r, ctx, &cmd, 1,
                                     ngx_http_ent_sso_loaded);
}


static void
ngx_http_ent_sso_loaded(ngx_ent_op_t *op)
{
    redisReply              *rep;
    ngx_http_request_t      *r;
    ngx_http_ent_sso_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    ctx->session_done = 1;
    ctx->status = NGX_OK;

    if (op->status != NGX_ENT_OK || op->nreplies != 1
        || op->replies[0]->type == REDIS_REPLY_ERROR)
    {
        /* fail closed: no session is trusted without Redis */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: a session could not be read (status %ui)",
                      op->status);
        ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        ngx_http_ent_sso_wake(r, ctx);
        return;
    }

    rep = op->replies[0];

    if (rep->type != REDIS_REPLY_STRING) {
        ctx->sso_status = "expired";
        ctx->expired = 1;
        ngx_http_ent_sso_wake(r, ctx);
        return;
    }

    if (ngx_http_ent_sso_open(r, ctx, (u_char *) rep->str, rep->len)
        == NGX_OK)
    {
        ctx->authenticated = 1;

    } else {
        ctx->expired = 1;
    }

    ngx_http_ent_sso_wake(r, ctx);
}


static ngx_int_t
ngx_http_ent_sso_open(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    u_char *data, size_t len)
{
    int              n;
    u_char          *plain, *p;
    u_char           aad[128];

    if (len <= ENT_AEAD_OVERHEAD || len > NGX_HTTP_ENT_SSO_BLOB_MAX) {
        return NGX_ERROR;
    }

    plain = ngx_pnalloc(r->pool, len);
    if (plain == NULL) {
        return NGX_ERROR;
    }

    p = ngx_snprintf(aad, sizeof(aad), "session:%V:%*s", &ctx->tenant_id,
                     (size_t) NGX_HTTP_ENT_SSO_SID_B64, ctx->sid);

    n = ent_aead_open(ctx->skey, aad, p - aad, data, len, plain);

    if (n <= 0) {
        /* another key (a forged cookie) or another tenant's session */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ent sso: a session cookie that does not open its "
                      "session");
        ctx->sso_status = "bad_cookie";
        return NGX_ERROR;
    }

    if (ngx_http_ent_sso_decode(r, ctx, plain, n) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ent_sso_cache_put(r, ctx, plain, n);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_decode(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    u_char *plain, size_t n)
{
    size_t           clen;
    ngx_str_t       *f;
    ngx_uint_t       i;
    const u_char    *cell;
    ngx_ent_rows_t   rows;

    /* one row of NGX_HTTP_ENT_SSO_FIELDS cells, in the identity's order */

    if (ngx_ent_rows_open(&rows, plain, n) != 0 || rows.nrows != 1
        || (rows.ncols != NGX_HTTP_ENT_SSO_FIELDS
            && rows.ncols != NGX_HTTP_ENT_SSO_FIELDS - 1))
    {
        return NGX_ERROR;
    }

    f = &ctx->id.user_id;

    for (i = 0; i < rows.ncols - 2; i++) {
        (void) ngx_ent_rows_next(&rows, &cell, &clen);
        f[i].data = (u_char *) cell;
        f[i].len = cell ? clen : 0;
    }

    (void) ngx_ent_rows_next(&rows, &cell, &clen);
    ctx->id.created = cell ? ngx_atotm((u_char *) cell, clen) : 0;

    (void) ngx_ent_rows_next(&rows, &cell, &clen);
    ctx->id.expires = cell ? ngx_atotm((u_char *) cell, clen) : NGX_ERROR;

    if (ctx->id.expires == NGX_ERROR
        || ctx->id.expires <= ngx_http_ent_sso_now(r))
    {
        ctx->sso_status = "expired";
        return NGX_ERROR;
    }

    ctx->breakglass = (ctx->id.iss.len
                           == sizeof(NGX_HTTP_ENT_SSO_BREAKGLASS_ISS) - 1
                       && ngx_strncmp(ctx->id.iss.data,
                                      NGX_HTTP_ENT_SSO_BREAKGLASS_ISS,
                                      ctx->id.iss.len) == 0);

    return ctx->id.user_id.len ? NGX_OK : NGX_ERROR;
}


/*
 * The micro-cache (ent_sso_session_cache): a session read from Redis is
 * kept in the node's shared memory for at most that long, so that a burst
 * of requests of one browser costs one Redis round trip.  Keyed by tenant
 * and session id; the value starts with a tag derived from the cookie's
 * key (a cookie with the right id and a wrong key gets nothing), then the
 * identity's cells.  A logout or back-channel logout on this node deletes
 * the entry at once; other nodes drop it when it expires: revocation
 * reaches them within the cache time.
 */

#define NGX_HTTP_ENT_SSO_TAG_LEN  16


static ngx_int_t
ngx_http_ent_sso_cache_key(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_str_t *key, u_char *sid)
{
    u_char  *p;

    key->data = ngx_pnalloc(r->pool, 3 + ctx->tenant_id.len + 1
                                     + NGX_HTTP_ENT_SSO_SID_B64);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key->data, "sc:", 3);
    p = ngx_cpymem(p, ctx->tenant_id.data, ctx->tenant_id.len);
    *p++ = ':';
    p = ngx_cpymem(p, sid, NGX_HTTP_ENT_SSO_SID_B64);
    key->len = p - key->data;

    return NGX_OK;
}


/*
 * SHA-256 of the cookie's key, once per request: its first 16 bytes tag
 * micro-cache entries, the next 12 make the X-Ent-Session digest (neither
 * reveals the key nor the id)
 */

u_char *
ngx_http_ent_sso_key_md(ngx_http_ent_sso_ctx_t *ctx)
{
    SHA256_CTX  sha;

    if (!ctx->key_md_done) {
        SHA256_Init(&sha);
        SHA256_Update(&sha, "ent-session-tag:", 16);
        SHA256_Update(&sha, ctx->skey, ENT_AEAD_KEY_LEN);
        SHA256_Final(ctx->key_md, &sha);
        ctx->key_md_done = 1;
    }

    return ctx->key_md;
}


static void
ngx_http_ent_sso_tag(ngx_http_ent_sso_ctx_t *ctx, u_char *tag)
{
    ngx_memcpy(tag, ngx_http_ent_sso_key_md(ctx), NGX_HTTP_ENT_SSO_TAG_LEN);
}


static ngx_int_t
ngx_http_ent_sso_cache_get(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    ngx_str_t                      key, value;
    ngx_msec_t                     left;
    u_char                         tag[NGX_HTTP_ENT_SSO_TAG_LEN];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (ngx_http_ent_sso_cache_key(r, ctx, &key, ctx->sid) != NGX_OK
        || ngx_ent_cache_peek(smcf->docs, &key, r->pool, &value, &left)
           != NGX_OK
        || left == 0 || value.len <= NGX_HTTP_ENT_SSO_TAG_LEN)
    {
        return NGX_DECLINED;
    }

    ngx_http_ent_sso_tag(ctx, tag);

    if (!ent_ct_equal(tag, NGX_HTTP_ENT_SSO_TAG_LEN, value.data,
                      NGX_HTTP_ENT_SSO_TAG_LEN))
    {
        return NGX_DECLINED;
    }

    return ngx_http_ent_sso_decode(r, ctx, value.data + NGX_HTTP_ENT_SSO_TAG_LEN,
                                   value.len - NGX_HTTP_ENT_SSO_TAG_LEN);
}


static void
ngx_http_ent_sso_cache_put(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    u_char *plain, size_t n)
{
    time_t                         left;
    ngx_str_t                      key, value, idt;
    ngx_msec_t                     ttl;
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (smcf->session_cache == 0) {
        return;
    }

    left = ctx->id.expires - ngx_http_ent_sso_now(r);
    ttl = smcf->session_cache;

    if (left <= 0) {
        return;
    }

    if ((ngx_msec_t) left * 1000 < ttl) {
        ttl = (ngx_msec_t) left * 1000;
    }

    /* the cells again, without the ID token (only logout wants it) */

    idt = ctx->id.id_token;
    ngx_str_null(&ctx->id.id_token);

    value.len = NGX_HTTP_ENT_SSO_TAG_LEN + n;
    value.data = ngx_pnalloc(r->pool, value.len);

    if (value.data == NULL
        || ngx_http_ent_sso_cache_key(r, ctx, &key, ctx->sid) != NGX_OK)
    {
        ctx->id.id_token = idt;
        return;
    }

    ngx_http_ent_sso_tag(ctx, value.data);
    value.len = NGX_HTTP_ENT_SSO_TAG_LEN
                + (ngx_http_ent_sso_cells(ctx, value.data
                                               + NGX_HTTP_ENT_SSO_TAG_LEN)
                   - (value.data + NGX_HTTP_ENT_SSO_TAG_LEN));

    ctx->id.id_token = idt;

    (void) ngx_ent_cache_put(smcf->docs, &key, &value, ttl);
}


void
ngx_http_ent_sso_cache_drop(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, u_char *sid)
{
    ngx_str_t                      key;
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (smcf->session_cache
        && ngx_http_ent_sso_cache_key(r, ctx, &key, sid) == NGX_OK)
    {
        ngx_ent_cache_delete(smcf->docs, &key);
    }
}


/* the identity as one row of cells: the size, then the writing */

static size_t
ngx_http_ent_sso_cells_size(ngx_http_ent_sso_ctx_t *ctx)
{
    size_t       len;
    ngx_str_t   *f;
    ngx_uint_t   i;

    f = &ctx->id.user_id;
    len = ngx_ent_rows_header_size();

    for (i = 0; i < NGX_HTTP_ENT_SSO_FIELDS - 2; i++) {
        len += ngx_ent_rows_cell_size(f[i].len);
    }

    return len + 2 * ngx_ent_rows_cell_size(NGX_TIME_T_LEN);
}


static u_char *
ngx_http_ent_sso_cells(ngx_http_ent_sso_ctx_t *ctx, u_char *p)
{
    ngx_str_t   *f;
    ngx_uint_t   i;
    u_char       num[NGX_TIME_T_LEN];

    f = &ctx->id.user_id;
    p = ngx_ent_rows_put_header(p, 1, NGX_HTTP_ENT_SSO_FIELDS);

    for (i = 0; i < NGX_HTTP_ENT_SSO_FIELDS - 2; i++) {
        p = ngx_ent_rows_put_cell(p, f[i].data ? f[i].data : (u_char *) "",
                                  f[i].len, 0);
    }

    p = ngx_ent_rows_put_cell(p, num,
                              ngx_sprintf(num, "%T", ctx->id.created) - num,
                              0);

    return ngx_ent_rows_put_cell(p, num,
                                 ngx_sprintf(num, "%T", ctx->id.expires)
                                 - num, 0);
}


/* create, at the end of a login: a new id every time (no fixation) */


/*
 * A session id: 8 random bytes, 4 bytes of SHA-256 of the tenant id (the
 * hint), and 4 bytes of SHA-256 over the secret key and the 12 before
 * (the MAC: only this edge makes ids that pass).  The session's own key
 * (the cookie's other 32 bytes) is what protects it; the id only names
 * its Redis key, and now also the tenant it belongs to.
 */

static void
ngx_http_ent_sso_sid_hint(ngx_str_t *tenant, u_char *hint)
{
    u_char  md[SHA256_DIGEST_LENGTH];

    (void) SHA256(tenant->data, tenant->len, md);
    ngx_memcpy(hint, md, 4);
}


static void
ngx_http_ent_sso_sid_mac(ngx_http_ent_sso_main_conf_t *smcf, u_char *raw,
    u_char *mac)
{
    u_char      md[SHA256_DIGEST_LENGTH];
    SHA256_CTX  sha;

    SHA256_Init(&sha);
    SHA256_Update(&sha, smcf->secret, ENT_AEAD_KEY_LEN);
    SHA256_Update(&sha, "ent-sid", sizeof("ent-sid") - 1);
    SHA256_Update(&sha, raw, 12);
    SHA256_Final(md, &sha);

    ngx_memcpy(mac, md, 4);
}


/* NGX_OK: ours, for this tenant; NGX_DECLINED: ours, another tenant's */

static ngx_int_t
ngx_http_ent_sso_sid_check(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    u_char                        *raw;
    u_char                         hint[4], mac[4];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    raw = ctx->sid_raw;

    ngx_http_ent_sso_sid_mac(smcf, raw, mac);

    if (CRYPTO_memcmp(mac, raw + 12, 4) != 0) {
        return NGX_ERROR;
    }

    ngx_http_ent_sso_sid_hint(&ctx->tenant_id, hint);

    return ngx_memcmp(hint, raw + 8, 4) == 0 ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_http_ent_sso_session_create(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    u_char                        *p, *sealed, *plain;
    size_t                         len;
    ngx_str_t                     *argv, h, cookie;
    ngx_uint_t                     n, a;
    ngx_ent_redis_cmd_t            cmds[7];
    u_char                         raw[NGX_HTTP_ENT_SSO_SID_LEN
                                       + ENT_AEAD_KEY_LEN];
    u_char                         aad[128];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* random (8), the tenant's hint (4), their MAC (4) */
    ngx_http_ent_sso_sid_hint(&ctx->tenant_id, raw + 8);
    ngx_http_ent_sso_sid_mac(smcf, raw, raw + 12);

    (void) ent_b64url_encode(ctx->sid, raw, NGX_HTTP_ENT_SSO_SID_LEN);
    ngx_memcpy(ctx->sid_raw, raw, NGX_HTTP_ENT_SSO_SID_LEN);
    ngx_memcpy(ctx->skey, raw + NGX_HTTP_ENT_SSO_SID_LEN, ENT_AEAD_KEY_LEN);
    ctx->key_md_done = 0;

    ctx->id.created = ngx_http_ent_sso_now(r);
    ctx->id.expires = ctx->id.created + smcf->absolute;

    if (ctx->expires_cap && ctx->expires_cap < ctx->id.expires) {
        /* a break-glass session ends with its grant */
        ctx->id.expires = ctx->expires_cap;
    }

    /* the identity as one row of cells (no parsing on every request) */

    len = ngx_http_ent_sso_cells_size(ctx);

    if (len + ENT_AEAD_OVERHEAD > NGX_HTTP_ENT_SSO_BLOB_MAX) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: an identity too big for a session");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    plain = ngx_pnalloc(r->pool, len);
    sealed = ngx_pnalloc(r->pool, len + ENT_AEAD_OVERHEAD);
    if (plain == NULL || sealed == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_http_ent_sso_cells(ctx, plain) - plain;

    p = ngx_snprintf(aad, sizeof(aad), "session:%V:%*s", &ctx->tenant_id,
                     (size_t) NGX_HTTP_ENT_SSO_SID_B64, ctx->sid);

    if (ent_aead_seal(ctx->skey, aad, p - aad, plain, len, sealed) < 0) {
        ngx_explicit_memzero(plain, len);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_explicit_memzero(plain, len);

    argv = ngx_palloc(r->pool, 24 * sizeof(ngx_str_t));
    if (argv == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a = 0;
    n = 0;

    /* SET s:<sid> <sealed> EX idle */

    cmds[n].argv = &argv[a];
    ngx_str_set(&argv[a], "SET");
    if (ngx_http_ent_sso_cmd_key(r, ctx, &argv[a + 1], "s", ctx->sid,
                                 NGX_HTTP_ENT_SSO_SID_B64) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    argv[a + 2].data = sealed;
    argv[a + 2].len = len + ENT_AEAD_OVERHEAD;
    ngx_str_set(&argv[a + 3], "EX");
    if (ngx_http_ent_sso_num(r, &argv[a + 4], smcf->idle) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cmds[n++].argc = 5;
    a += 5;

    /* the indexes: SADD then EXPIRE each */

    for (/* void */; n < 7; n += 2) {

        if (n == 1) {
            if (ngx_http_ent_sso_cmd_key(r, ctx, &h, "u",
                                         ctx->id.user_id.data,
                                         ctx->id.user_id.len)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

        } else if (n == 3) {
            if (ngx_http_ent_sso_index(r, ctx, "o", &ctx->id.iss,
                                       &ctx->id.sub, &h)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

        } else {
            if (ctx->id.op_sid.len == 0) {
                break;
            }

            if (ngx_http_ent_sso_index(r, ctx, "os", &ctx->id.iss,
                                       &ctx->id.op_sid, &h)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        cmds[n].argv = &argv[a];
        cmds[n].argc = 3;
        ngx_str_set(&argv[a], "SADD");
        argv[a + 1] = h;
        argv[a + 2].data = ctx->sid;
        argv[a + 2].len = NGX_HTTP_ENT_SSO_SID_B64;
        a += 3;

        cmds[n + 1].argv = &argv[a];
        cmds[n + 1].argc = 3;
        ngx_str_set(&argv[a], "EXPIRE");
        argv[a + 1] = h;
        if (ngx_http_ent_sso_num(r, &argv[a + 2], smcf->absolute) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        a += 3;
    }

    /* the cookie goes out with the redirect that follows */

    cookie.data = ngx_pnalloc(r->pool, NGX_HTTP_ENT_SSO_COOKIE_B64);
    if (cookie.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cookie.len = ent_b64url_encode(cookie.data, raw, sizeof(raw));
    ngx_explicit_memzero(raw, sizeof(raw));

    /* set with the redirect, once Redis has taken the whole session */
    ctx->cookie_value = cookie;

    return ngx_http_ent_sso_run_cmds(r, ctx, cmds, n,
                                     ngx_http_ent_sso_created);
}


static void
ngx_http_ent_sso_created(ngx_ent_op_t *op)
{
    ngx_uint_t               i;
    ngx_http_request_t      *r;
    ngx_http_ent_sso_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    ctx->status = NGX_OK;

    if (op->status != NGX_ENT_OK) {
        ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    } else {
        for (i = 0; i < op->nreplies; i++) {
            if (op->replies[i]->type == REDIS_REPLY_ERROR) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "ent sso: Redis refused a session: %*s",
                              (size_t) op->replies[i]->len,
                              op->replies[i]->str);
                ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;
                break;
            }
        }
    }

    ctx->authenticated = (ctx->status == NGX_OK);

    ngx_http_ent_sso_wake(r, ctx);
}


static ngx_int_t
ngx_http_ent_sso_index(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    const char *kind, ngx_str_t *a, ngx_str_t *b, ngx_str_t *out)
{
    SHA256_CTX  sha;
    u_char      md[SHA256_DIGEST_LENGTH];
    u_char      enc[48];
    size_t      n;

    SHA256_Init(&sha);
    SHA256_Update(&sha, a->data, a->len);
    SHA256_Update(&sha, "\n", 1);
    SHA256_Update(&sha, b->data, b->len);
    SHA256_Final(md, &sha);

    n = ent_b64url_encode(enc, md, sizeof(md));

    return ngx_http_ent_sso_cmd_key(r, ctx, out, kind, enc, n);
}


static ngx_int_t
ngx_http_ent_sso_run_cmds(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_ent_redis_cmd_t *cmds, ngx_uint_t n, ngx_ent_op_handler_pt handler)
{
    ngx_int_t  rc;

    rc = ngx_ent_redis_run(r, cmds, n, handler, r);

    if (rc == NGX_AGAIN) {
        ctx->waiting = 1;
        return ngx_ent_phase_wait(r);
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "ent sso: Redis is unavailable");

    ctx->sso_status = "unavailable";

    return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "unavailable",
                                   "Sessions are unavailable right now.");
}


/* GET /_ent/session: who am I */


ngx_int_t
ngx_http_ent_sso_session_endpoint(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    u_char      *p, *body;
    char        *s;
    size_t       len;
    json_t      *js, *groups, *roles;
    ngx_int_t    rc;
    ngx_uint_t   i;
    ngx_str_t   *lists[2];
    json_t      *arrays[2];
    u_char      *q, *end;

    if (ctx->has_cookie) {
        rc = ngx_http_ent_sso_session_load(r, ctx);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    ctx->decided = 1;

    if (!ctx->authenticated) {
        ngx_str_set(&r->headers_out.content_type, "application/json");
        return ngx_http_ent_sso_send(r, NGX_HTTP_UNAUTHORIZED,
                                     "application/json",
                                     (u_char *) "{\"authenticated\":false}\n",
                                     sizeof("{\"authenticated\":false}\n")
                                     - 1);
    }

    groups = json_array();
    roles = json_array();
    lists[0] = &ctx->id.groups;
    lists[1] = &ctx->id.roles;
    arrays[0] = groups;
    arrays[1] = roles;

    for (i = 0; i < 2; i++) {
        p = lists[i]->data;
        end = p + lists[i]->len;

        while (p && p < end) {
            q = ngx_strlchr(p, end, ',');
            if (q == NULL) {
                q = end;
            }

            if (q > p) {
                json_array_append_new(arrays[i],
                                      json_stringn((char *) p, q - p));
            }

            p = q + 1;
        }
    }

    js = json_pack("{s:b, s:{s:s%, s:s%, s:s%, s:o}, s:o, "
                   "s:{s:s%, s:s%}, s:I, s:I}",
                   "authenticated", 1,
                   "user",
                   "id", ctx->id.user_id.data, ctx->id.user_id.len,
                   "email", ctx->id.email.data ? (char *) ctx->id.email.data
                                               : "",
                   ctx->id.email.len,
                   "name", ctx->id.name.data ? (char *) ctx->id.name.data
                                             : "",
                   ctx->id.name.len,
                   "groups", groups,
                   "roles", roles,
                   "tenant",
                   "id", ctx->tenant_id.data, ctx->tenant_id.len,
                   "code", ctx->tenant_code.data, ctx->tenant_code.len,
                   "created_at", (json_int_t) ctx->id.created,
                   "expires_at", (json_int_t) ctx->id.expires);

    if (js == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the custom attributes, "name=value" lines */

    if (ctx->id.attrs.len) {
        json_t  *attrs;

        attrs = json_object();
        p = ctx->id.attrs.data;
        end = p + ctx->id.attrs.len;

        while (attrs && p < end) {
            u_char  *eq;
            char     name[64];

            q = ngx_strlchr(p, end, '\n');
            if (q == NULL) {
                q = end;
            }

            eq = ngx_strlchr(p, q, '=');

            if (eq && eq > p && (size_t) (eq - p) < sizeof(name)) {
                *ngx_cpymem(name, p, eq - p) = '\0';
                json_object_set_new(attrs, name,
                                    json_stringn((char *) eq + 1,
                                                 q - eq - 1));
            }

            p = q + 1;
        }

        json_object_set_new(json_object_get(js, "user"), "attributes",
                            attrs);
    }

    s = json_dumps(js, JSON_COMPACT);
    json_decref(js);

    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(s);
    body = ngx_pnalloc(r->pool, len + 1);
    if (body == NULL) {
        free(s);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body, s, len);
    body[len++] = '\n';
    free(s);

    return ngx_http_ent_sso_send(r, NGX_HTTP_OK, "application/json", body,
                                 len);
}


/* /_ent/logout[?all=1]: this session, or all of the user's */


/* the browser says the request comes from another site */

static ngx_uint_t
ngx_http_ent_sso_cross_site(ngx_http_request_t *r)
{
    u_char           *p, *last;
    ngx_str_t         site, origin, host;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    /*
     * Sec-Fetch-Site must say this origin ("same-origin") or the user
     * ("none": typed, a bookmark): "same-site" is also a sibling tenant's
     * page, whose <img> would carry the cookie.  Without it (an older
     * browser), an Origin or Referer must name this host; a request with
     * none of the three is no browser's cross-site request.
     */

    ngx_str_null(&site);
    ngx_str_null(&origin);

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Sec-Fetch-Site") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Sec-Fetch-Site",
                               h[i].key.len) == 0)
        {
            site = h[i].value;

        } else if (h[i].key.len == sizeof("Origin") - 1
                   && ngx_strncasecmp(h[i].key.data, (u_char *) "Origin",
                                      h[i].key.len) == 0)
        {
            origin = h[i].value;
        }
    }

    if (site.data) {
        return !((site.len == sizeof("same-origin") - 1
                  && ngx_strncasecmp(site.data, (u_char *) "same-origin",
                                     site.len) == 0)
                 || (site.len == sizeof("none") - 1
                     && ngx_strncasecmp(site.data, (u_char *) "none",
                                        site.len) == 0));
    }

    if (origin.data == NULL && r->headers_in.referer) {
        origin = r->headers_in.referer->value;
    }

    if (origin.data == NULL) {
        return 0;
    }

    /* "https://host[:port]" and what follows, against Host */

    p = origin.data;
    last = p + origin.len;

    if (origin.len > 8 && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0)
    {
        p += 8;

    } else if (origin.len > 7
               && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0)
    {
        p += 7;

    } else {
        return 1;
    }

    host.data = p;

    while (p < last && *p != '/' && *p != '?' && *p != '#') {
        p++;
    }

    host.len = p - host.data;

    return r->headers_in.host == NULL
           || host.len != r->headers_in.host->value.len
           || ngx_strncasecmp(host.data, r->headers_in.host->value.data,
                              host.len) != 0;
}



ngx_int_t
ngx_http_ent_sso_logout(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    ngx_str_t                      all, *argv;
    ngx_ent_redis_cmd_t            cmds[2];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    switch (ctx->phase) {

    case 0:
        if (ctx->has_cookie) {
            rc = ngx_http_ent_sso_session_load(r, ctx);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        if (!ctx->authenticated) {
            break;
        }

        argv = ngx_palloc(r->pool, 4 * sizeof(ngx_str_t));
        if (argv == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&argv[0], "DEL");
        if (ngx_http_ent_sso_cmd_key(r, ctx, &argv[1], "s", ctx->sid,
                                     NGX_HTTP_ENT_SSO_SID_B64) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cmds[0].argc = 2;
        cmds[0].argv = argv;

        ngx_http_ent_sso_cache_drop(r, ctx, ctx->sid);

        /*
         * revoke-all: the user's index first, then every session in it
         * and this one, in one DEL: a failure deletes none of them, and
         * a retry with the same cookie revokes them all
         */

        if (ngx_http_ent_sso_arg(r, &r->args, "all", &all)
            && all.len == 1 && all.data[0] == '1')
        {
            if (ngx_http_ent_sso_cross_site(r)) {
                /* a link on another site cannot end every session */
                return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_FORBIDDEN,
                                               "cross_site",
                                               "Signing out everywhere "
                                               "starts on this site.");
            }

            ngx_str_set(&argv[2], "SMEMBERS");
            if (ngx_http_ent_sso_cmd_key(r, ctx, &argv[3], "u",
                                         ctx->id.user_id.data,
                                         ctx->id.user_id.len)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            cmds[0].argc = 2;
            cmds[0].argv = &argv[2];
            ctx->phase = 2;

            return ngx_http_ent_sso_run_cmds(r, ctx, cmds, 1,
                                             ngx_http_ent_sso_listed);
        }

        ctx->phase = 1;

        return ngx_http_ent_sso_run_cmds(r, ctx, cmds, 1,
                                         ngx_http_ent_sso_done);

    case 2:
        /* the user's sessions were listed: delete them and this one */
        if (ctx->status != NGX_OK) {
            break;
        }

        for (i = 0; i < ctx->nsessions; i++) {
            if (ngx_memcmp(ctx->sessions[i].data, ctx->sid,
                           NGX_HTTP_ENT_SSO_SID_B64) == 0)
            {
                break;
            }
        }

        if (i == ctx->nsessions) {
            /* (room for it was made by the listing) */
            ctx->sessions[i].data = ctx->sid;
            ctx->sessions[i].len = NGX_HTTP_ENT_SSO_SID_B64;
            ctx->nsessions++;
        }

        ctx->phase = 1;

        return ngx_http_ent_sso_revoke(r, ctx, NULL);

    case 3:
        /* back from fetching the IdP's discovery document */
        return ngx_http_ent_sso_signed_out(r, ctx);

    default:
        break;
    }

    if ((ctx->phase == 1 || ctx->phase == 2) && ctx->status != NGX_OK) {
        /*
         * fail closed: Redis did not take the DEL (or the listing), so
         * the session may still be valid; the cookie stays, for a retry
         */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ent sso: a session could not be deleted");
        return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "unavailable",
                                       "Signing out is unavailable right "
                                       "now.");
    }

    /* the session is gone from Redis (or there was none): the cookie too */

    if (ngx_http_ent_sso_set_cookie(r, &smcf->cookie, (u_char *) "", 0, 0)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->authenticated) {
        ngx_http_ent_sso_event(r, ctx, "logout.user", "success", NULL,
                               &ctx->id.user_id);
    }

    ctx->phase = 3;

    return ngx_http_ent_sso_signed_out(r, ctx);
}


static ngx_int_t
ngx_http_ent_sso_signed_out(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    u_char     *p;
    ngx_int_t   rc;
    ngx_str_t   url, home;

    ctx->sso_status = "logout";

    if (ctx->idp_none) {
        /* no IdP (any more): this logout ends here */
        goto done;
    }

    /* a SAML LogoutRequest to the IdP, when it has a logout service */

    if (ctx->authenticated && ctx->idp.saml && ctx->idp.saml_slo_url.len
        && ctx->id.sub.len && ctx->id.id_token.len == 0)
    {
        return ngx_http_ent_sso_saml_logout(r, ctx);
    }

    /* RP-initiated logout at the IdP, when it offers it */

    if (ctx->authenticated && ctx->id.id_token.len) {
        rc = ngx_http_ent_sso_need_discovery(r, ctx);

        if (rc == NGX_DONE) {
            return rc;
        }

        if (rc == NGX_OK && ctx->disc->end_session.len) {
            if (ngx_http_ent_sso_base_url(r, &home, "") != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            /* the site's root, not our prefix */
            home.len -= sizeof("_ent/") - 1;

            url.len = ctx->disc->end_session.len + 64
                      + ctx->id.id_token.len + 3 * home.len
                      + 3 * ctx->idp.client_id.len;
            url.data = ngx_pnalloc(r->pool, url.len);
            if (url.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            p = ngx_cpymem(url.data, ctx->disc->end_session.data,
                           ctx->disc->end_session.len);
            *p++ = ngx_strlchr(ctx->disc->end_session.data,
                               ctx->disc->end_session.data
                               + ctx->disc->end_session.len, '?')
                   ? '&' : '?';
            p = ngx_sprintf(p, "id_token_hint=%V&post_logout_redirect_uri=",
                            &ctx->id.id_token);
            p = (u_char *) ngx_escape_uri(p, home.data, home.len,
                                          NGX_ESCAPE_URI_COMPONENT);
            p = ngx_cpymem(p, "&client_id=", sizeof("&client_id=") - 1);
            p = (u_char *) ngx_escape_uri(p, ctx->idp.client_id.data,
                                          ctx->idp.client_id.len,
                                          NGX_ESCAPE_URI_COMPONENT);
            url.len = p - url.data;

            ctx->decided = 1;
            return ngx_http_ent_sso_redirect(r, &url);
        }
    }

done:

    ctx->decided = 1;

    return ngx_http_ent_sso_send(r, NGX_HTTP_OK, "application/json",
                                 (u_char *) "{\"signed_out\":true}\n",
                                 sizeof("{\"signed_out\":true}\n") - 1);
}


static void
ngx_http_ent_sso_done(ngx_ent_op_t *op)
{
    ngx_http_request_t      *r;
    ngx_http_ent_sso_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    ctx->status = (ngx_ent_redis_replied(op) == NGX_OK)
                  ? NGX_OK : NGX_HTTP_SERVICE_UNAVAILABLE;

    ngx_http_ent_sso_wake(r, ctx);
}


/* the members of the last SMEMBERS reply become ctx->sessions */

static void
ngx_http_ent_sso_listed(ngx_ent_op_t *op)
{
    size_t                   i, n;
    redisReply              *rep;
    ngx_http_request_t      *r;
    ngx_http_ent_sso_ctx_t  *ctx;

    r = op->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_sso_module);

    ctx->status = NGX_OK;

    /* an IdP logout's SET NX of its jti: spent by this request */
    ctx->jti_spent = (ctx->jti.len && op->status == NGX_ENT_OK
                      && op->nreplies == 2
                      && op->replies[0]->type == REDIS_REPLY_STATUS);

    if (ngx_ent_redis_replied(op) != NGX_OK) {
        ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        ngx_http_ent_sso_wake(r, ctx);
        return;
    }

    if (op->nreplies == 2 && op->replies[0]->type == REDIS_REPLY_NIL
        && (ctx->endpoint == NGX_HTTP_ENT_SSO_EP_BACKCHANNEL
            || ctx->endpoint == NGX_HTTP_ENT_SSO_EP_SAML_SLO))
    {
        /* SET NX of the token's jti found it: a replay */
        ctx->status = NGX_HTTP_BAD_REQUEST;
        ngx_http_ent_sso_wake(r, ctx);
        return;
    }

    rep = op->replies[op->nreplies - 1];

    n = (rep->type == REDIS_REPLY_ARRAY) ? rep->elements : 0;

    if (n > NGX_HTTP_ENT_SSO_MAX_REVOKE) {
        /* the rest stay in the index, for the next revocation */
        n = NGX_HTTP_ENT_SSO_MAX_REVOKE;
        ctx->partial = 1;
    }

    ctx->sessions = ngx_palloc(r->pool, (n + 1) * sizeof(ngx_str_t));
    if (ctx->sessions == NULL) {
        ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        ngx_http_ent_sso_wake(r, ctx);
        return;
    }

    ctx->nsessions = 0;

    for (i = 0; i < n; i++) {
        if (rep->element[i]->type != REDIS_REPLY_STRING
            || rep->element[i]->len != NGX_HTTP_ENT_SSO_SID_B64)
        {
            continue;
        }

        ctx->sessions[ctx->nsessions].data = ngx_pnalloc(r->pool,
                                               NGX_HTTP_ENT_SSO_SID_B64);
        if (ctx->sessions[ctx->nsessions].data == NULL) {
            continue;
        }

        ngx_memcpy(ctx->sessions[ctx->nsessions].data, rep->element[i]->str,
                   NGX_HTTP_ENT_SSO_SID_B64);
        ctx->sessions[ctx->nsessions].len = NGX_HTTP_ENT_SSO_SID_B64;
        ctx->nsessions++;
    }

    ngx_http_ent_sso_wake(r, ctx);
}


/*
 * An IdP logout that fails after its jti was spent gives the jti back, so
 * that the IdP's retry is not refused as a replay (best effort: when Redis
 * is down, the DEL fails as the logout did)
 */

static void
ngx_http_ent_sso_unspend(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    ngx_str_t            argv[2];
    ngx_ent_redis_cmd_t  cmd;

    if (!ctx->jti_spent) {
        return;
    }

    ctx->jti_spent = 0;

    ngx_str_set(&argv[0], "DEL");
    argv[1] = ctx->jti;

    cmd.argc = 2;
    cmd.argv = argv;

    (void) ngx_ent_redis_run(NULL, &cmd, 1, ngx_http_ent_sso_unspent, NULL);
}


static void
ngx_http_ent_sso_unspent(ngx_ent_op_t *op)
{
    if (ngx_ent_redis_replied(op) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, op->log, 0,
                      "ent sso: the jti of a failed IdP logout could not be "
                      "given back: the IdP's retry is refused as a replay");
    }
}


/*
 * Revocation.  For a back-channel logout: phase 0 (the token is verified,
 * its claims in ctx->claims) marks the jti used and lists the sessions of
 * the IdP session (sid) or subject (sub); phase 1 deletes them; phase 2
 * answers.  A SAML LogoutRequest takes the same path with its ID as the
 * jti, its first SessionIndex as the sid and its NameID as the sub.  For
 * revoke-all, phase 1 deletes the listed sessions and the user's index.
 */

ngx_int_t
ngx_http_ent_sso_revoke(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_str_t *index_key)
{
    json_t                *v;
    ngx_str_t             *argv, a, b, idx, jti;
    ngx_uint_t             i, idp_logout;
    ngx_ent_redis_cmd_t   *cmds;

    idp_logout = (ctx->endpoint == NGX_HTTP_ENT_SSO_EP_BACKCHANNEL
                  || ctx->endpoint == NGX_HTTP_ENT_SSO_EP_SAML_SLO);

    if (idp_logout && ctx->phase == 0)
    {
        a = ctx->idp.issuer;
        v = json_object_get(ctx->claims, "sid");

        if (json_is_string(v)) {
            b.data = (u_char *) json_string_value(v);
            b.len = json_string_length(v);

            if (ngx_http_ent_sso_index(r, ctx, "os", &a, &b, &idx) != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

        } else {
            v = json_object_get(ctx->claims, "sub");
            b.data = (u_char *) json_string_value(v);
            b.len = json_string_length(v);

            if (ngx_http_ent_sso_index(r, ctx, "o", &a, &b, &idx) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        v = json_object_get(ctx->claims, "jti");
        b.data = (u_char *) json_string_value(v);
        b.len = json_string_length(v);

        if (ngx_http_ent_sso_index(r, ctx, "jti", &a, &b, &jti) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        argv = ngx_palloc(r->pool, 8 * sizeof(ngx_str_t));
        cmds = ngx_palloc(r->pool, 2 * sizeof(ngx_ent_redis_cmd_t));
        if (argv == NULL || cmds == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&argv[0], "SET");
        argv[1] = jti;
        ngx_str_set(&argv[2], "1");
        ngx_str_set(&argv[3], "NX");
        ngx_str_set(&argv[4], "EX");
        ngx_str_set(&argv[5], "86400");
        ngx_str_set(&argv[6], "SMEMBERS");
        argv[7] = idx;

        cmds[0].argc = 6;
        cmds[0].argv = argv;
        cmds[1].argc = 2;
        cmds[1].argv = &argv[6];

        ctx->index = idx;
        ctx->jti = jti;
        ctx->phase = 1;

        return ngx_http_ent_sso_run_cmds(r, ctx, cmds, 2,
                                         ngx_http_ent_sso_listed);
    }

    if (idp_logout && ctx->phase == 1) {
        if (ctx->status == NGX_HTTP_BAD_REQUEST
            && ctx->endpoint == NGX_HTTP_ENT_SSO_EP_SAML_SLO)
        {
            return ngx_http_ent_sso_saml_slo_done(r, ctx, 0);
        }

        if (ctx->status == NGX_HTTP_BAD_REQUEST) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ent sso: a logout token used twice");
            ctx->decided = 1;
            return ngx_http_ent_sso_send(r, NGX_HTTP_BAD_REQUEST,
                                         "application/json",
                                         (u_char *) "{\"error\":"
                                         "\"invalid_request\"}\n",
                                         sizeof("{\"error\":"
                                                "\"invalid_request\"}\n")
                                         - 1);
        }

        if (ctx->status != NGX_OK) {
            ngx_http_ent_sso_unspend(r, ctx);
            return ngx_http_ent_sso_answer(r, ctx,
                                           NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "unavailable",
                                           "Sessions are unavailable.");
        }

        ctx->phase = 2;

    } else if (idp_logout) {

        if (ctx->status != NGX_OK) {
            /* the IdP retries a logout that did not answer 200 */
            ngx_http_ent_sso_unspend(r, ctx);
            return ngx_http_ent_sso_answer(r, ctx,
                                           NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "unavailable",
                                           "Sessions are unavailable.");
        }

        if (ctx->endpoint == NGX_HTTP_ENT_SSO_EP_SAML_SLO) {
            return ngx_http_ent_sso_saml_slo_done(r, ctx, 1);
        }

        ngx_http_ent_sso_event(r, ctx, "logout.backchannel", "success",
                               "back-channel", NULL);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ent sso: back-channel logout revoked %ui "
                      "session%s", ctx->nsessions,
                      ctx->nsessions == 1 ? "" : "s");

        ctx->decided = 1;
        return ngx_http_ent_sso_send(r, NGX_HTTP_OK, NULL, NULL, 0);

    } else {
        /* revoke-all from logout: its index is the user's */
        if (ngx_http_ent_sso_cmd_key(r, ctx, &ctx->index, "u",
                                     ctx->id.user_id.data,
                                     ctx->id.user_id.len)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /*
     * DEL every listed session and the index; when the index had more
     * than could be listed, SREM the listed ones from it instead, so that
     * the others can still be revoked
     */

    argv = ngx_palloc(r->pool, (2 * ctx->nsessions + 3) * sizeof(ngx_str_t));
    cmds = ngx_palloc(r->pool, 2 * sizeof(ngx_ent_redis_cmd_t));
    if (argv == NULL || cmds == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&argv[0], "DEL");

    for (i = 0; i < ctx->nsessions; i++) {
        ngx_http_ent_sso_cache_drop(r, ctx, ctx->sessions[i].data);

        if (ngx_http_ent_sso_cmd_key(r, ctx, &argv[i + 1], "s",
                                     ctx->sessions[i].data,
                                     ctx->sessions[i].len)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (!ctx->partial) {
        argv[i + 1] = ctx->index;

        cmds[0].argc = ctx->nsessions + 2;
        cmds[0].argv = argv;

        return ngx_http_ent_sso_run_cmds(r, ctx, cmds, 1,
                                         ngx_http_ent_sso_done);
    }

    cmds[0].argc = ctx->nsessions + 1;
    cmds[0].argv = argv;

    argv += ctx->nsessions + 1;
    ngx_str_set(&argv[0], "SREM");
    argv[1] = ctx->index;

    for (i = 0; i < ctx->nsessions; i++) {
        argv[i + 2] = ctx->sessions[i];
    }

    cmds[1].argc = ctx->nsessions + 2;
    cmds[1].argv = argv;

    return ngx_http_ent_sso_run_cmds(r, ctx, cmds, 2, ngx_http_ent_sso_done);
}
