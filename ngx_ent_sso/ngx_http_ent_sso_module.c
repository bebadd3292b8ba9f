/*
 * ngx_http_ent_sso_module: single sign-on at the edge.
 *
 * In the access phase of a location with "ent_sso required" (or
 * "optional"), a request is let through with the identity of a valid
 * session or bearer token in trusted headers, or is sent to the tenant's
 * identity provider (browsers) or answered 401 (APIs).  The endpoints under
 * /_ent/ (callback, session, logout, back-channel logout, login) are
 * answered in the same phase, in any location where ent_sso is on.
 *
 * Every wait (PostgreSQL, Redis, a subrequest) parks the request with
 * ngx_ent_phase_wait() and re-enters the handler when it ends; the context
 * survives internal redirects, so a decision is never taken twice.
 */


#include "ngx_ent_sso.h"
#include "ngx_ent_tenant_api.h"
#include "ngx_ent_saml.h"

#include <openssl/sha.h>


static ngx_int_t ngx_http_ent_sso_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ent_sso_run(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
static ngx_uint_t ngx_http_ent_sso_has_rules(
    ngx_http_ent_sso_loc_conf_t *slcf);
static ngx_int_t ngx_http_ent_sso_need_idp(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
static void ngx_http_ent_sso_idp_filled(ngx_ent_op_t *op);
static ngx_uint_t ngx_http_ent_sso_endpoint(ngx_http_request_t *r,
    ngx_http_ent_sso_main_conf_t *smcf);
static ngx_int_t ngx_http_ent_sso_app_path(ngx_http_request_t *r,
    ngx_str_t *path);
static ngx_uint_t ngx_http_ent_sso_path_is(ngx_str_t *uri, ngx_str_t *path);
static ngx_int_t ngx_http_ent_sso_cookies(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_http_ent_sso_main_conf_t *smcf);
static ngx_int_t ngx_http_ent_sso_drop_header(ngx_http_request_t *r,
    ngx_table_elt_t *drop);
static ngx_uint_t ngx_http_ent_sso_navigation(ngx_http_request_t *r);
static ngx_int_t ngx_http_ent_sso_identity(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
static ngx_int_t ngx_http_ent_sso_push(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value);
static ngx_int_t ngx_http_ent_sso_assertion(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *out);
static void ngx_http_ent_sso_cleanup(void *data);

static ngx_int_t ngx_http_ent_sso_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ent_sso_attr_headers(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
static ngx_int_t ngx_http_ent_sso_attr_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ent_sso_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static char *ngx_http_ent_sso_secret_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_sso_assertion_key(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ent_sso_clock_offset(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ent_sso_session_timeout(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ent_sso_algorithms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_sso_mode(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_sso_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_sso_uri_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static void ngx_http_ent_sso_header_len(ngx_str_t *h);
static ngx_int_t ngx_http_ent_sso_token_chars(ngx_str_t *s);
static ngx_int_t ngx_http_ent_sso_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ent_sso_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_ent_sso_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_ent_sso_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_ent_sso_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ent_sso_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_ent_sso_init_process(ngx_cycle_t *cycle);
static void ngx_http_ent_sso_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_ent_sso_modes[] = {
    { ngx_string("off"), NGX_HTTP_ENT_SSO_OFF },
    { ngx_string("required"), NGX_HTTP_ENT_SSO_REQUIRED },
    { ngx_string("optional"), NGX_HTTP_ENT_SSO_OPTIONAL },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_ent_sso_commands[] = {

    { ngx_string("ent_sso"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ent_sso_mode,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_loc_conf_t, mode),
      NULL },

    { ngx_string("ent_sso_bearer"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_loc_conf_t, bearer),
      NULL },

    { ngx_string("ent_sso_bearer_scopes"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_conf_set_str_array_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_loc_conf_t, bearer_scopes),
      NULL },

    { ngx_string("ent_sso_assertion"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_loc_conf_t, assertion),
      NULL },

    { ngx_string("ent_sso_enforce_path"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ent_sso_uri_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_loc_conf_t, enforce_paths),
      NULL },

    { ngx_string("ent_sso_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_ent_sso_header,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_authz_role_min"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ent_sso_authz_rule,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) "role_min" },

    { ngx_string("ent_authz_roles"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ent_sso_authz_rule,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) "roles" },

    { ngx_string("ent_authz_permission"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ent_sso_authz_rule,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) "permission" },

    { ngx_string("ent_authz_attr"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_ent_sso_authz_rule,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) "attr" },

    { ngx_string("ent_authz"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_loc_conf_t, authz_on),
      NULL },

    { ngx_string("ent_authz_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_main_conf_t, authz_zone),
      NULL },

    { ngx_string("ent_sso_secret_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ent_sso_secret_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_sso_assertion_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_ent_sso_assertion_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_sso_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_main_conf_t, zone),
      NULL },

    { ngx_string("ent_sso_docs_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_main_conf_t, docs_zone),
      NULL },

    { ngx_string("ent_sso_fetch_location"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ent_sso_uri_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_main_conf_t, fetch_uri),
      NULL },

    { ngx_string("ent_sso_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_main_conf_t, cookie),
      NULL },

    { ngx_string("ent_sso_session_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_ent_sso_session_timeout,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_sso_session_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_main_conf_t, session_cache),
      NULL },

    { ngx_string("ent_sso_login_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_main_conf_t, state_ttl),
      NULL },

    { ngx_string("ent_sso_clock_skew"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_main_conf_t, skew),
      NULL },

    { ngx_string("ent_sso_metadata_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_main_conf_t, docs_ttl),
      NULL },

    { ngx_string("ent_sso_jwks_refetch_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_main_conf_t, jwks_throttle),
      NULL },

    { ngx_string("ent_sso_algorithms"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ent_sso_algorithms,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_sso_events"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_sso_main_conf_t, events),
      NULL },

    { ngx_string("ent_sso_clock_offset"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ent_sso_clock_offset,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ent_sso_module_ctx = {
    ngx_http_ent_sso_preconfiguration,     /* preconfiguration */
    ngx_http_ent_sso_postconfiguration,    /* postconfiguration */

    ngx_http_ent_sso_create_main_conf,     /* create main configuration */
    ngx_http_ent_sso_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ent_sso_create_loc_conf,      /* create location configuration */
    ngx_http_ent_sso_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_ent_sso_module = {
    NGX_MODULE_V1,
    &ngx_http_ent_sso_module_ctx,          /* module context */
    ngx_http_ent_sso_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ent_sso_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ent_sso_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


#define ngx_http_ent_sso_id(f)  offsetof(ngx_http_ent_sso_identity_t, f)

static ngx_http_variable_t  ngx_http_ent_sso_vars[] = {

    { ngx_string("ent_user_id"), NULL, ngx_http_ent_sso_variable,
      ngx_http_ent_sso_id(user_id), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_user_email"), NULL, ngx_http_ent_sso_variable,
      ngx_http_ent_sso_id(email), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_user_name"), NULL, ngx_http_ent_sso_variable,
      ngx_http_ent_sso_id(name), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_user_groups"), NULL, ngx_http_ent_sso_variable,
      ngx_http_ent_sso_id(groups), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_roles"), NULL, ngx_http_ent_sso_variable,
      ngx_http_ent_sso_id(roles), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_user_sub"), NULL, ngx_http_ent_sso_variable,
      ngx_http_ent_sso_id(sub), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_permissions"), NULL,
      ngx_http_ent_sso_permissions_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_user_attr_"), NULL, ngx_http_ent_sso_attr_variable,
      0, NGX_HTTP_VAR_PREFIX|NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_sso_status"), NULL, ngx_http_ent_sso_status_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_sso_fetch_url"), NULL, ngx_http_ent_sso_fetch_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_ent_sso_tenant_id = ngx_string("ent_tenant_id");
static ngx_str_t  ngx_http_ent_sso_saml_cookie =
    ngx_string("__Host-ent_saml");
static ngx_str_t  ngx_http_ent_sso_tenant_code =
    ngx_string("ent_tenant_code");


/* the access handler */


static ngx_int_t
ngx_http_ent_sso_handler(ngx_http_request_t *r)
{
    ngx_uint_t                     i, enforce;
    ngx_str_t                     *paths, path;
    ngx_http_variable_value_t     *vv;
    ngx_http_ent_sso_ctx_t        *ctx, tmp;
    ngx_http_ent_sso_loc_conf_t   *slcf;
    ngx_http_ent_sso_main_conf_t  *smcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_ent_ctx_get(r, &ngx_http_ent_sso_module,
                          ngx_http_ent_sso_cleanup);

    if (ctx) {
        if (ctx->waiting) {
            if (r->err_status) {
                /*
                 * the body being read failed (too big, bad chunking) and
                 * nginx sends the error_page: nothing will wake us
                 */
                ctx->waiting = 0;
                ctx->decided = 1;
                return NGX_DECLINED;
            }

            return NGX_DONE;
        }

        if (ctx->decided) {
            /*
             * after an internal redirect: a signed-in request stays so,
             * and a refused one is being sent its error_page; one let
             * through anonymously ("optional", an enforced path of a
             * tenant without SSO) is decided again where SSO is required
             */

            slcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_sso_module);

            if (ctx->authenticated) {
                /* but this location's rules, if they are others */

                if ((slcf->authz_on || ctx->breakglass)
                    && ctx->authz_conf != slcf)
                {
                    return ngx_http_ent_sso_authz(r, ctx);
                }

                return NGX_OK;
            }

            /* decided anew where SSO is required, or rules want someone */

            if (!ctx->anonymous
                || !(slcf->mode == NGX_HTTP_ENT_SSO_REQUIRED
                     || (slcf->mode == NGX_HTTP_ENT_SSO_OPTIONAL
                         && ngx_http_ent_sso_has_rules(slcf))))
            {
                return NGX_DECLINED;
            }

            ctx->anonymous = 0;

            smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

            ctx->decided = 0;
            ctx->enforce = 0;
            ctx->endpoint = ngx_http_ent_sso_endpoint(r, smcf);

            if (ctx->tenant_id.len == 0 || ctx->tenant_code.len == 0) {
                return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_FORBIDDEN,
                                               "no_tenant",
                                               "Sign-in needs an "
                                               "organization.");
            }
        }

        return ngx_http_ent_sso_run(r, ctx);
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_sso_module);
    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    enforce = 0;

    if (slcf->enforce_paths) {
        paths = slcf->enforce_paths->elts;

        /*
         * the path as a servlet container reads it too: "/login;a=b" and
         * "/x/..;/login" are "/login" to Tomcat or Jetty, not to nginx
         */

        if (ngx_http_ent_sso_app_path(r, &path) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (i = 0; i < slcf->enforce_paths->nelts; i++) {
            /* "/login" also covers "/login/", "/Login", "/login.json" */

            if (ngx_http_ent_sso_path_is(&r->uri, &paths[i])
                || ngx_http_ent_sso_path_is(&path, &paths[i]))
            {
                enforce = 1;
                break;
            }
        }
    }

    if (slcf->mode == NGX_HTTP_ENT_SSO_OFF && !enforce) {
        /* the session cookie holds its key: no upstream ever sees it */

        ngx_memzero(&tmp, sizeof(ngx_http_ent_sso_ctx_t));
        tmp.sso_status = "none";

        if (ngx_http_ent_sso_cookies(r, &tmp, smcf) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_DECLINED;
    }

    ctx = ngx_ent_ctx_new(r, &ngx_http_ent_sso_module,
                          sizeof(ngx_http_ent_sso_ctx_t),
                          ngx_http_ent_sso_cleanup);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->kind = NGX_HTTP_ENT_SSO_CTX_REQUEST;
    ctx->request = r;
    ctx->sso_status = "none";
    ctx->enforce = enforce;

    vv = ngx_http_get_indexed_variable(r, smcf->tenant_id_index);

    if (vv && !vv->not_found && vv->len) {
        ctx->tenant_id.data = vv->data;
        ctx->tenant_id.len = vv->len;
    }

    vv = ngx_http_get_indexed_variable(r, smcf->tenant_code_index);

    if (vv && !vv->not_found && vv->len) {
        ctx->tenant_code.data = vv->data;
        ctx->tenant_code.len = vv->len;
    }

    if (slcf->mode != NGX_HTTP_ENT_SSO_OFF) {
        ctx->endpoint = ngx_http_ent_sso_endpoint(r, smcf);
    }

    if (ngx_http_ent_sso_cookies(r, ctx, smcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->tenant_id.len == 0 || ctx->tenant_code.len == 0) {
        ctx->decided = 1;

        if (slcf->mode != NGX_HTTP_ENT_SSO_REQUIRED
            && ctx->endpoint == NGX_HTTP_ENT_SSO_EP_NONE
            && !ngx_http_ent_sso_has_rules(slcf))
        {
            ctx->anonymous = 1;
            ctx->status = NGX_DECLINED;
            return NGX_DECLINED;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ent sso: no tenant for this request");

        return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_FORBIDDEN,
                                       "no_tenant",
                                       "Sign-in needs an organization.");
    }

    return ngx_http_ent_sso_run(r, ctx);
}


static ngx_int_t
ngx_http_ent_sso_run(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    u_char                       *p;
    ngx_int_t                     rc;
    ngx_str_t                     root;
    ngx_http_ent_sso_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_sso_module);

    /*
     * A session needs nothing of the IdP record: it is checked first, and
     * a request with a valid one costs one Redis read (or a micro-cache
     * hit) and nothing else.
     */

    if (ctx->endpoint == NGX_HTTP_ENT_SSO_EP_NONE && !ctx->enforce
        && ctx->has_cookie)
    {
        /* again after the read: NGX_OK, or the 503 of a failed read */
        rc = ngx_http_ent_sso_session_load(r, ctx);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (ctx->authenticated && ctx->endpoint == NGX_HTTP_ENT_SSO_EP_NONE) {
        goto authenticated;
    }

    rc = ngx_http_ent_sso_need_idp(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    /*
     * A tenant without an IdP (or whose IdP was disabled) can still end
     * the sessions it has: logout is local then, with no redirect
     */

    if (ctx->idp_none && ctx->endpoint != NGX_HTTP_ENT_SSO_EP_LOGOUT) {
        if (ctx->enforce && slcf->mode == NGX_HTTP_ENT_SSO_OFF) {
            /* an enforced path of a tenant without SSO */
            ctx->decided = 1;
            ctx->anonymous = 1;
            ctx->status = NGX_DECLINED;
            return NGX_DECLINED;
        }

        if (ctx->endpoint == NGX_HTTP_ENT_SSO_EP_NONE
            && slcf->mode == NGX_HTTP_ENT_SSO_OPTIONAL
            && !ngx_http_ent_sso_has_rules(slcf))
        {
            ctx->decided = 1;
            ctx->anonymous = 1;
            ctx->status = NGX_DECLINED;
            return NGX_DECLINED;
        }

        ctx->sso_status = "not_configured";

        return ngx_http_ent_sso_answer(r, ctx,
                   ctx->endpoint == NGX_HTTP_ENT_SSO_EP_NONE
                   ? NGX_HTTP_FORBIDDEN : NGX_HTTP_NOT_FOUND,
                   "sso_not_configured",
                   "Single sign-on is not configured for this "
                   "organization.");
    }

    switch (ctx->endpoint) {

    case NGX_HTTP_ENT_SSO_EP_CALLBACK:
        return ngx_http_ent_sso_callback(r, ctx);

    case NGX_HTTP_ENT_SSO_EP_SESSION:
        return ngx_http_ent_sso_session_endpoint(r, ctx);

    case NGX_HTTP_ENT_SSO_EP_LOGOUT:
        return ngx_http_ent_sso_logout(r, ctx);

    case NGX_HTTP_ENT_SSO_EP_BACKCHANNEL:
        return ngx_http_ent_sso_backchannel(r, ctx);

    case NGX_HTTP_ENT_SSO_EP_SAML_ACS:
        return ngx_http_ent_sso_saml_acs(r, ctx);

    case NGX_HTTP_ENT_SSO_EP_SAML_META:
        return ngx_http_ent_sso_saml_metadata(r, ctx);

    case NGX_HTTP_ENT_SSO_EP_SAML_SLO:
        return ngx_http_ent_sso_saml_slo(r, ctx);

    case NGX_HTTP_ENT_SSO_EP_BREAKGLASS:
        return ngx_http_ent_sso_breakglass(r, ctx);

    case NGX_HTTP_ENT_SSO_EP_LOGIN:
        if (ngx_http_ent_sso_arg(r, &r->args, "return_to", &root) == NULL
            || root.len > ENT_RETURN_TO_MAX_LEN)
        {
            ngx_str_set(&ctx->return_to, "/");

        } else {
            /* decoded once; the validator refuses what decodes further */

            ctx->return_to.data = ngx_pnalloc(r->pool, root.len);
            if (ctx->return_to.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            p = ctx->return_to.data;
            ngx_unescape_uri(&p, &root.data, root.len, 0);
            ctx->return_to.len = p - ctx->return_to.data;
        }

        return ngx_http_ent_sso_login(r, ctx);

    default:
        break;
    }

    if (ctx->enforce) {
        /* a password login path of the upstream */

        if (!ctx->idp.enforce) {
            if (slcf->mode == NGX_HTTP_ENT_SSO_OFF) {
                ctx->decided = 1;
                ctx->anonymous = 1;
                ctx->status = NGX_DECLINED;
                return NGX_DECLINED;
            }

        } else {
            ngx_str_set(&root, "/");
            ctx->return_to = root;
            ctx->sso_status = "enforced";

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ent sso: \"%V\" is a password login of a tenant "
                          "that enforces single sign-on", &r->uri);

            return ngx_http_ent_sso_login(r, ctx);
        }
    }

    if (ctx->has_cookie) {
        rc = ngx_http_ent_sso_session_load(r, ctx);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (ctx->authenticated) {

authenticated:

        ctx->sso_status = ctx->identity_from_bearer ? "bearer" : "session";

        /*
         * the user's standing in the tenant, and this location's rules; a
         * break-glass session's grant is checked (revoked? expired?) and
         * its request recorded wherever it goes, "ent_authz off" or not
         */

        if (slcf->authz_on || ctx->breakglass) {
            rc = ngx_http_ent_sso_authz(r, ctx);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        if (ngx_http_ent_sso_identity(r, ctx) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* NGX_OK: under "satisfy any" a signed-in user is let in */

        ctx->decided = 1;
        ctx->status = NGX_OK;
        return NGX_OK;
    }

    if (ctx->bearer.len == 0 && slcf->bearer) {
        ngx_http_ent_sso_arg(r, NULL, NULL, &ctx->bearer);
    }

    if (ctx->bearer.len) {
        rc = ngx_http_ent_sso_bearer(r, ctx);

        if (rc != NGX_OK) {
            return rc;
        }

        /* authenticated */
        return ngx_http_ent_sso_run(r, ctx);
    }

    /* anonymous, where no rule asks for a role, a permission, an attribute */

    if (slcf->mode == NGX_HTTP_ENT_SSO_OPTIONAL
        && !ngx_http_ent_sso_has_rules(slcf))
    {
        ctx->decided = 1;
        ctx->anonymous = 1;
        ctx->status = NGX_DECLINED;
        return NGX_DECLINED;
    }

    if (ngx_http_ent_sso_navigation(r)) {
        ctx->return_to = r->unparsed_uri;
        return ngx_http_ent_sso_login(r, ctx);
    }

    ctx->sso_status = "unauthenticated";

    return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                   "unauthenticated",
                                   "Sign-in required.");
}


/*
 * Authorization rules need someone to authorize: where a location has any,
 * "ent_sso optional" does not let an anonymous request through them
 */

static ngx_uint_t
ngx_http_ent_sso_has_rules(ngx_http_ent_sso_loc_conf_t *slcf)
{
    return slcf->authz_on && slcf->authz && slcf->authz->nelts;
}


/* the tenant's IdP record */


static ngx_int_t
ngx_http_ent_sso_need_idp(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_str_t                      value, *f;
    ngx_uint_t                     i;
    ngx_ent_rows_t                 rows;
    const u_char                  *data;
    size_t                         len;
    ngx_ent_cache_fill_t           fill;
    ngx_http_ent_sso_main_conf_t  *smcf;

    if (ctx->idp_done) {
        return NGX_OK;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    fill.stmt = smcf->idp_stmt;
    fill.params = &ctx->tenant_id;
    fill.transform = NULL;
    fill.flags = NGX_ENT_CACHE_STALE_OK;

    rc = ngx_ent_cache_fetch(r, smcf->cache, &ctx->tenant_id, &fill, &value,
                             ngx_http_ent_sso_idp_filled, r);

    switch (rc) {

    case NGX_AGAIN:
        ctx->waiting = 1;
        return ngx_ent_phase_wait(r);

    case NGX_DECLINED:
        ctx->idp_done = 1;
        ctx->idp_none = 1;
        return NGX_OK;

    case NGX_OK:
        break;

    case NGX_BUSY:
        ctx->sso_status = "unavailable";
        return ngx_http_ent_sso_answer(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "unavailable",
                                       "Sign-in is unavailable right now.");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_ent_rows_open(&rows, value.data, value.len) != 0
        || rows.nrows != 1 || (rows.ncols != 25 && rows.ncols != 26))
    {
        ctx->idp_done = 1;
        ctx->idp_none = 1;
        return NGX_OK;
    }

    f = &ctx->idp.protocol;

    for (i = 0; i < 13; i++) {
        (void) ngx_ent_rows_next(&rows, &data, &len);

        if (i == 11) {
            ctx->idp.enforce = (data && len == 1 && data[0] == 't');
            continue;
        }

        /* the blob lives in r->pool: the strings point into it */

        f->data = (u_char *) data;
        f->len = data ? len : 0;
        f++;
    }

    (void) ngx_ent_rows_next(&rows, &data, &len);
    ctx->idp.api_scopes.data = (u_char *) data;
    ctx->idp.api_scopes.len = data ? len : 0;

    (void) ngx_ent_rows_next(&rows, &data, &len);
    ctx->idp.saml_sso_url.data = (u_char *) data;
    ctx->idp.saml_sso_url.len = data ? len : 0;

    f = &ctx->idp.saml_cert;

    for (i = 0; i < 6; i++) {
        (void) ngx_ent_rows_next(&rows, &data, &len);
        f->data = (u_char *) data;
        f->len = data ? len : 0;
        f++;
    }

    (void) ngx_ent_rows_next(&rows, &data, &len);
    ctx->idp.saml_skew = data ? ngx_atoi((u_char *) data, len) : -1;

    (void) ngx_ent_rows_next(&rows, &data, &len);
    ctx->idp.saml_unsolicited = (data && len == 1 && data[0] == 't');

    (void) ngx_ent_rows_next(&rows, &data, &len);
    ctx->idp.saml_allow_sha1 = (data && len == 1 && data[0] == 't');

    (void) ngx_ent_rows_next(&rows, &data, &len);
    ctx->idp.claim_attrs.data = (u_char *) data;
    ctx->idp.claim_attrs.len = data ? len : 0;

    /* 26 since migration 016 (a record cached before it has 25) */

    if (rows.ncols == 26) {
        (void) ngx_ent_rows_next(&rows, &data, &len);
        ctx->idp.trust_email = (data && len == 1 && data[0] == 't');
    }

    ctx->idp_done = 1;

    if (ctx->idp.protocol.len == 4
        && ngx_strncmp(ctx->idp.protocol.data, "saml", 4) == 0)
    {
        ctx->idp.saml = 1;

        if (ctx->idp.saml_sso_url.len == 0 || ctx->idp.saml_cert.len == 0) {
            ctx->idp_none = 1;
        }

    } else if (ctx->idp.protocol.len != 4
               || ngx_strncmp(ctx->idp.protocol.data, "oidc", 4) != 0)
    {
        ctx->idp_none = 1;
    }

    return NGX_OK;
}


static void
ngx_http_ent_sso_idp_filled(ngx_ent_op_t *op)
{
    ngx_http_request_t      *r;
    ngx_http_ent_sso_ctx_t  *ctx;

    r = op->data;

    ctx = ngx_ent_ctx_get(r, &ngx_http_ent_sso_module,
                          ngx_http_ent_sso_cleanup);

    if (ctx) {
        ctx->waiting = 0;
    }

    ngx_ent_phase_resume(r);
}


void
ngx_http_ent_sso_wake(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    ctx->waiting = 0;
    ngx_ent_phase_resume(r);
}


static ngx_uint_t
ngx_http_ent_sso_endpoint(ngx_http_request_t *r,
    ngx_http_ent_sso_main_conf_t *smcf)
{
    u_char     *p;
    size_t      len;
    ngx_uint_t  i;

    static struct {
        ngx_str_t   name;
        ngx_uint_t  ep;
    } eps[] = {
        { ngx_string("oidc/callback"), NGX_HTTP_ENT_SSO_EP_CALLBACK },
        { ngx_string("session"), NGX_HTTP_ENT_SSO_EP_SESSION },
        { ngx_string("logout"), NGX_HTTP_ENT_SSO_EP_LOGOUT },
        { ngx_string("oidc/backchannel"), NGX_HTTP_ENT_SSO_EP_BACKCHANNEL },
        { ngx_string("login"), NGX_HTTP_ENT_SSO_EP_LOGIN },
        { ngx_string("saml/acs"), NGX_HTTP_ENT_SSO_EP_SAML_ACS },
        { ngx_string("saml/metadata"), NGX_HTTP_ENT_SSO_EP_SAML_META },
        { ngx_string("saml/slo"), NGX_HTTP_ENT_SSO_EP_SAML_SLO },
        { ngx_string("breakglass"), NGX_HTTP_ENT_SSO_EP_BREAKGLASS },
    };

    if (r->uri.len <= smcf->prefix.len
        || ngx_strncmp(r->uri.data, smcf->prefix.data, smcf->prefix.len)
           != 0)
    {
        return NGX_HTTP_ENT_SSO_EP_NONE;
    }

    p = r->uri.data + smcf->prefix.len;
    len = r->uri.len - smcf->prefix.len;

    for (i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
        if (len == eps[i].name.len
            && ngx_strncmp(p, eps[i].name.data, len) == 0)
        {
            return eps[i].ep;
        }
    }

    return NGX_HTTP_ENT_SSO_EP_NONE;
}


/*
 * Our cookies: read, then removed from what the upstream gets.  Each
 * Cookie header is rewritten without them (in place, so that nginx's own
 * pointers to it stay right); a header left empty is dropped.
 */

/*
 * The URI without path parameters (";..." to the end of each segment),
 * its "." and ".." segments resolved again and slashes merged: what a
 * servlet container serves for it.  The URI itself when it has no ";".
 */

static ngx_int_t
ngx_http_ent_sso_app_path(ngx_http_request_t *r, ngx_str_t *path)
{
    u_char  *p, *last, *q, *seg, *out;

    *path = r->uri;

    if (ngx_strlchr(r->uri.data, r->uri.data + r->uri.len, ';') == NULL) {
        return NGX_OK;
    }

    out = ngx_pnalloc(r->pool, r->uri.len + 1);
    if (out == NULL) {
        return NGX_ERROR;
    }

    q = out;
    p = r->uri.data;
    last = p + r->uri.len;

    while (p < last) {

        while (p < last && *p == '/') {
            p++;
        }

        seg = q;
        *q++ = '/';

        while (p < last && *p != '/' && *p != ';') {
            *q++ = *p++;
        }

        while (p < last && *p != '/') {
            p++;
        }

        if (q - seg == 2 && seg[1] == '.') {
            q = seg;

        } else if (q - seg == 3 && seg[1] == '.' && seg[2] == '.') {
            /* back to the end of the previous segment */
            q = seg;

            while (q > out && *--q != '/') { /* void */ }

        } else if (q - seg == 1 && p < last) {
            /* an empty segment: merged */
            q = seg;
        }
    }

    if (q == out) {
        *q++ = '/';
    }

    path->data = out;
    path->len = q - out;

    return NGX_OK;
}


/* "/login" is "/login", "/login/...", "/Login", "/login.json" */

static ngx_uint_t
ngx_http_ent_sso_path_is(ngx_str_t *uri, ngx_str_t *path)
{
    return uri->len >= path->len
           && ngx_strncasecmp(uri->data, path->data, path->len) == 0
           && (uri->len == path->len
               || uri->data[path->len] == '/'
               || uri->data[path->len] == '.');
}


static ngx_int_t
ngx_http_ent_sso_cookies(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_http_ent_sso_main_conf_t *smcf)
{
    u_char           *p, *q, *start, *end, *last, *out, *name_end;
    u_char           *name_last;
    size_t            vlen, dlen;
    ngx_int_t         rc;
    ngx_str_t        *names[3];
    ngx_uint_t        i, k, ours, seen;
    const u_char     *val;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *empty;
    u_char            raw[NGX_HTTP_ENT_SSO_COOKIE_B64];

    names[0] = &smcf->cookie;
    names[1] = &smcf->state_cookie;
    names[2] = &ngx_http_ent_sso_saml_cookie;
    seen = 0;

again:

    empty = NULL;
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

        if (h[i].hash == 0 || h[i].key.len != sizeof("Cookie") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Cookie",
                               sizeof("Cookie") - 1) != 0)
        {
            continue;
        }

        /* the session cookie: once, across all Cookie headers */

        rc = ent_cookie_find(h[i].value.data, h[i].value.len,
                             smcf->cookie.data, smcf->cookie.len, &val,
                             &vlen);

        if (rc == 0 && !seen) {
            seen = 1;

            if (vlen == NGX_HTTP_ENT_SSO_COOKIE_B64
                && ent_b64url_decode(raw, &dlen, val, vlen) == 0
                && dlen == NGX_HTTP_ENT_SSO_SID_LEN + ENT_AEAD_KEY_LEN)
            {
                (void) ent_b64url_encode(ctx->sid, raw,
                                         NGX_HTTP_ENT_SSO_SID_LEN);
                ngx_memcpy(ctx->sid_raw, raw, NGX_HTTP_ENT_SSO_SID_LEN);
                ngx_memcpy(ctx->skey, raw + NGX_HTTP_ENT_SSO_SID_LEN,
                           ENT_AEAD_KEY_LEN);
                ctx->has_cookie = 1;

            } else {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "ent sso: a malformed session cookie");
                ctx->sso_status = "bad_cookie";
            }

        } else if (rc == 0 || rc == -1) {
            /* twice, or a header we cannot read: trust no session */
            if (ctx->has_cookie || rc == -1) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "ent sso: an ambiguous or malformed Cookie "
                              "header");
            }

            ctx->has_cookie = 0;
            ctx->sso_status = "bad_cookie";
        }

        /* the login state, for the callback */

        if ((ctx->endpoint == NGX_HTTP_ENT_SSO_EP_SAML_ACS
             || ctx->endpoint == NGX_HTTP_ENT_SSO_EP_SAML_SLO)
            && ent_cookie_find(h[i].value.data, h[i].value.len,
                               (u_char *) "__Host-ent_saml",
                               sizeof("__Host-ent_saml") - 1, &val, &vlen)
               == 0)
        {
            ctx->saml_state.data = (u_char *) val;
            ctx->saml_state.len = vlen;
        }

        if (ctx->endpoint == NGX_HTTP_ENT_SSO_EP_CALLBACK
            && ent_cookie_find(h[i].value.data, h[i].value.len,
                            smcf->state_cookie.data, smcf->state_cookie.len,
                            &val, &vlen)
            == 0)
        {
            ctx->state.data = (u_char *) val;
            ctx->state.len = vlen;
        }

        /*
         * rewrite without our cookies: a header that holds the session
         * cookie is ours; another is searched for any of the three names
         */

        ours = (rc == 0);

        for (k = 0; !ours && k < 3; k++) {
            if (ngx_strlcasestrn(h[i].value.data,
                                 h[i].value.data + h[i].value.len,
                                 names[k]->data, names[k]->len - 1)
                != NULL)
            {
                ours = 1;
            }
        }

        if (!ours) {
            continue;
        }

        out = ngx_pnalloc(r->pool, h[i].value.len + 1);
        if (out == NULL) {
            return NGX_ERROR;
        }

        q = out;
        p = h[i].value.data;
        last = p + h[i].value.len;

        while (p < last) {
            start = p;

            while (p < last && *p != ';') {
                p++;
            }

            end = p;

            if (p < last) {
                p++;
            }

            while (start < end && (*start == ' ' || *start == '\t')) {
                start++;
            }

            if (start == end) {
                continue;
            }

            name_end = start;

            while (name_end < end && *name_end != '=') {
                name_end++;
            }

            /* the name as the reader sees it: without trailing blanks */

            name_last = name_end;

            while (name_last > start
                   && (name_last[-1] == ' ' || name_last[-1] == '\t'))
            {
                name_last--;
            }

            for (k = 0; k < 3; k++) {
                if ((size_t) (name_last - start) == names[k]->len
                    && ngx_strncmp(start, names[k]->data, names[k]->len)
                       == 0)
                {
                    break;
                }
            }

            if (k < 3) {
                continue;
            }

            if (q != out) {
                *q++ = ';';
                *q++ = ' ';
            }

            q = ngx_cpymem(q, start, end - start);
        }

        h[i].value.data = out;
        h[i].value.len = q - out;

        if (q == out) {
            empty = &h[i];
            break;
        }
    }

    if (empty) {
        if (ngx_http_ent_sso_drop_header(r, empty) != NGX_OK) {
            return NGX_ERROR;
        }

        goto again;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_drop_header(ngx_http_request_t *r, ngx_table_elt_t *drop)
{
    ngx_uint_t        i, total;
    ngx_list_t        list;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    /* nginx 1.22 cannot mark a request header removed: rebuild the list */

    total = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        total += part->nelts;
    }

    if (ngx_list_init(&list, r->pool, total + 8, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

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

        if (&h[i] == drop) {
            continue;
        }

        nh = ngx_list_push(&list);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = h[i];
    }

    /* one part only: "last" must point into the request, not here */

    r->headers_in.headers = list;
    r->headers_in.headers.last = &r->headers_in.headers.part;

    return NGX_OK;
}


/*
 * A browser navigating gets a redirect to its IdP; anything else (an API
 * call, XHR, fetch) gets 401 with WWW-Authenticate.
 */

static ngx_uint_t
ngx_http_ent_sso_navigation(ngx_http_request_t *r)
{
    ngx_int_t         mode;
    ngx_uint_t        i, html;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return 0;
    }

    html = 1;
    mode = -1;
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

        if (h[i].key.len == sizeof("X-Requested-With") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "X-Requested-With",
                               h[i].key.len) == 0)
        {
            return 0;
        }

        if (h[i].key.len == sizeof("Sec-Fetch-Mode") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Sec-Fetch-Mode",
                               h[i].key.len) == 0)
        {
            mode = (h[i].value.len == sizeof("navigate") - 1
                    && ngx_strncasecmp(h[i].value.data,
                                       (u_char *) "navigate",
                                       h[i].value.len) == 0)
                   ? 1 : 0;
            continue;
        }

        if (h[i].key.len == sizeof("Accept") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Accept",
                               h[i].key.len) == 0)
        {
            html = ngx_strlcasestrn(h[i].value.data,
                                    h[i].value.data + h[i].value.len,
                                    (u_char *) "text/html",
                                    sizeof("text/html") - 2) != NULL
                   || ngx_strlcasestrn(h[i].value.data,
                                       h[i].value.data + h[i].value.len,
                                       (u_char *) "*/*",
                                       sizeof("*/*") - 2) != NULL;

            if (ngx_strlcasestrn(h[i].value.data,
                                 h[i].value.data + h[i].value.len,
                                 (u_char *) "application/json",
                                 sizeof("application/json") - 2) != NULL
                && ngx_strlcasestrn(h[i].value.data,
                                    h[i].value.data + h[i].value.len,
                                    (u_char *) "text/html",
                                    sizeof("text/html") - 2) == NULL)
            {
                html = 0;
            }
        }
    }

    /* Sec-Fetch-Mode, when the browser sends it, says it best */

    return mode >= 0 ? (ngx_uint_t) mode : html;
}


/* identity to the upstream */


static ngx_int_t
ngx_http_ent_sso_identity(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    ngx_str_t                     v;
    ngx_http_ent_sso_loc_conf_t  *slcf;

    if (ctx->headers_set) {
        return NGX_OK;
    }

    ctx->headers_set = 1;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_sso_module);

    if (ngx_http_ent_sso_push(r, &slcf->h_user_id, &ctx->id.user_id)
        != NGX_OK
        || ngx_http_ent_sso_push(r, &slcf->h_email, &ctx->id.email) != NGX_OK
        || ngx_http_ent_sso_push(r, &slcf->h_name, &ctx->id.name) != NGX_OK
        || ngx_http_ent_sso_push(r, &slcf->h_groups, &ctx->id.groups)
           != NGX_OK
        || ngx_http_ent_sso_push(r, &slcf->h_roles,
                                 ctx->authz_done ? &ctx->az_roles
                                                 : &ctx->id.roles)
           != NGX_OK
        || ngx_http_ent_sso_push(r, &slcf->h_permissions, &ctx->az_perms)
           != NGX_OK
        || (ctx->breakglass
            && ngx_http_ent_sso_push(r, &slcf->h_breakglass, &ctx->id.sub)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ctx->id.attrs.len && ngx_http_ent_sso_attr_headers(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!ctx->identity_from_bearer && slcf->h_session.len) {
        /* a digest of the session id: correlates, never replays */
        v.data = ngx_pnalloc(r->pool, ent_b64url_encoded_len(12));
        if (v.data == NULL) {
            return NGX_ERROR;
        }

        v.len = ent_b64url_encode(v.data, ngx_http_ent_sso_key_md(ctx) + 16,
                                  12);

        if (ngx_http_ent_sso_push(r, &slcf->h_session, &v) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (slcf->assertion) {
        if (ngx_http_ent_sso_assertion(r, ctx, &v) != NGX_OK
            || ngx_http_ent_sso_push(r, &slcf->h_assertion, &v) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* X-Ent-User-Attr-<name>: value, for each custom attribute */

static ngx_int_t
ngx_http_ent_sso_attr_headers(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx)
{
    u_char     *p, *end, *eol, *eq;
    ngx_str_t   name, value;

    p = ctx->id.attrs.data;
    end = p + ctx->id.attrs.len;

    while (p < end) {
        eol = ngx_strlchr(p, end, '\n');
        if (eol == NULL) {
            eol = end;
        }

        eq = ngx_strlchr(p, eol, '=');

        if (eq && eq > p) {
            /* the name twice: as sent, then lowercased (see push) */

            name.len = sizeof("X-Ent-User-Attr-") - 1 + (eq - p);
            name.data = ngx_pnalloc(r->pool, 2 * name.len + 2);
            if (name.data == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(name.data, "X-Ent-User-Attr-",
                       sizeof("X-Ent-User-Attr-") - 1);
            ngx_memcpy(name.data + sizeof("X-Ent-User-Attr-") - 1, p, eq - p);
            name.data[name.len] = '\0';
            ngx_strlow(name.data + name.len + 1, name.data, name.len);
            name.data[2 * name.len + 1] = '\0';

            value.data = eq + 1;
            value.len = eol - value.data;

            if (ngx_http_ent_sso_push(r, &name, &value) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        p = eol + 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_push(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    if (name->len == 0 || value->len == 0) {
        return NGX_OK;
    }

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    /* the configured names are lowercased after their terminating NUL */

    h->key = *name;
    h->hash = 1;
    h->lowcase_key = name->data + name->len + 1;

    h->value.len = ent_header_escape_len(value->data, value->len);

    if (h->value.len == value->len) {
        /* nothing to escape: the value lives as long as the request */
        h->value.data = value->data;
        return NGX_OK;
    }

    h->value.data = ngx_pnalloc(r->pool, h->value.len);
    if (h->value.data == NULL) {
        return NGX_ERROR;
    }

    (void) ent_header_escape(h->value.data, value->data, value->len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_assertion(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *out)
{
    char                          *jwt;
    size_t                         len;
    time_t                         now;
    json_t                        *claims;
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (smcf->assertion_key == NULL) {
        ngx_str_null(out);
        return NGX_OK;
    }

    now = ngx_http_ent_sso_now(r);

#define ngx_http_ent_sso_s(s)  ((s).data ? (char *) (s).data : ""), (s).len

    claims = json_pack("{s:s%, s:s%, s:s%, s:s%, s:s%, s:s%, s:s%, s:I, "
                       "s:I}",
                       "iss", "ngx_ent", (size_t) 7,
                       "sub", ngx_http_ent_sso_s(ctx->id.user_id),
                       "aud", ngx_http_ent_sso_s(ctx->tenant_code),
                       "tenant", ngx_http_ent_sso_s(ctx->tenant_id),
                       "email", ngx_http_ent_sso_s(ctx->id.email),
                       "name", ngx_http_ent_sso_s(ctx->id.name),
                       "roles", ngx_http_ent_sso_s(ctx->id.roles),
                       "iat", (json_int_t) now,
                       "exp", (json_int_t) now + 60);

    if (claims == NULL) {
        return NGX_ERROR;
    }

    if (ent_jwt_sign(smcf->assertion_key, smcf->assertion_alg,
                     smcf->assertion_kid.len
                     ? (char *) smcf->assertion_kid.data : NULL,
                     claims, &jwt, &len)
        != 0)
    {
        json_decref(claims);
        return NGX_ERROR;
    }

    json_decref(claims);

    out->data = ngx_pnalloc(r->pool, len);
    if (out->data == NULL) {
        free(jwt);
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, jwt, len);
    out->len = len;
    free(jwt);

    return NGX_OK;
}


/* answers */


time_t
ngx_http_ent_sso_now(ngx_http_request_t *r)
{
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    return ngx_time() + smcf->clock_offset;
}


/*
 * An error the module decides: the tenant's white-label page for
 * browsers, short JSON otherwise; 401 carries WWW-Authenticate.
 */

ngx_int_t
ngx_http_ent_sso_answer(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    ngx_uint_t status, const char *error, const char *text)
{
    u_char           *p, *body;
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    ctx->decided = 1;
    ctx->answered = 1;

    if (status == NGX_HTTP_UNAUTHORIZED) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");

        if (ctx->bearer.len) {
            ngx_str_set(&h->value,
                        "Bearer error=\"invalid_token\"");

        } else {
            ngx_str_set(&h->value, "Bearer");
        }

        r->headers_out.www_authenticate = h;
    }

    if (ctx->bearer.len == 0) {
        rc = ngx_http_ent_tenant_html(r, status, error,
                                      status == NGX_HTTP_SERVICE_UNAVAILABLE
                                      ? "Unavailable" : "Sign-in failed",
                                      text);
        if (rc != NGX_DECLINED) {
            /* sent, or an error_page: the request may be gone */
            return rc;
        }
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        /* the tenant's page sets its own */
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        ngx_str_set(&h->value, "5");
    }

    body = ngx_pnalloc(r->pool, 64 + ngx_strlen(error) + ngx_strlen(text));
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"error\":\"%s\",\"message\":\"%s\"}\n", error,
                    text);

    /* the request may be freed by the time this returns */

    return ngx_http_ent_sso_send(r, status, "application/json", body,
                                 p - body);
}


/* sends a whole response from the access phase; returns NGX_DONE */

ngx_int_t
ngx_http_ent_sso_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    if (type) {
        r->headers_out.content_type.data = (u_char *) type;
        r->headers_out.content_type.len = ngx_strlen(type);
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }

    /* identity and session answers are never cached */

    if (ngx_http_ent_sso_set_cookie(r, NULL, (u_char *) "no-store", 8, 0)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    rc = ngx_http_send_header(r);

    if (rc != NGX_ERROR && rc <= NGX_OK && !r->header_only && len == 0) {
        rc = ngx_http_send_special(r, NGX_HTTP_LAST);

    } else if (rc != NGX_ERROR && rc <= NGX_OK && !r->header_only) {
        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_DONE;
        }

        b->pos = body;
        b->last = body + len;
        b->memory = 1;
        b->last_buf = 1;
        b->last_in_chain = 1;

        out.buf = b;
        out.next = NULL;

        rc = ngx_http_output_filter(r, &out);
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


ngx_int_t
ngx_http_ent_sso_redirect(ngx_http_request_t *r, ngx_str_t *url)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value = *url;

    /* sent as is: nginx must not make it absolute or rewrite it */
    r->headers_out.location = NULL;

    return ngx_http_ent_sso_send(r, NGX_HTTP_MOVED_TEMPORARILY, NULL, NULL,
                                 0);
}


/*
 * Set-Cookie with the flags the name's prefix requires; name NULL adds
 * "Cache-Control: <value>" instead (one helper for both response headers
 * the module adds).  max_age 0 with an empty value deletes the cookie.
 */

ngx_int_t
ngx_http_ent_sso_set_cookie(ngx_http_request_t *r, ngx_str_t *name,
    u_char *value, size_t len, time_t max_age)
{
    u_char           *p;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;

    if (name == NULL) {
        ngx_str_set(&h->key, "Cache-Control");
        h->value.data = value;
        h->value.len = len;
        return NGX_OK;
    }

    ngx_str_set(&h->key, "Set-Cookie");

    p = ngx_pnalloc(r->pool, name->len + len + 100);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h->value.data = p;
    p = ngx_sprintf(p, "%V=%*s; Path=/; Secure; HttpOnly; SameSite=Lax; "
                    "Max-Age=%T", name, len, value, max_age);
    h->value.len = p - h->value.data;

    return NGX_OK;
}


/*
 * Login state for a cookie: the JSON object js (consumed) sealed with the
 * key of ent_sso_secret_key, bound to a purpose and the tenant, as
 * base64url in r->pool; and back: the object (to be released), or NULL
 * when the value does not open (forged, another tenant's, another kind).
 */

ngx_int_t
ngx_http_ent_sso_seal(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    const char *purpose, json_t *js, ngx_str_t *out)
{
    u_char                        *p, *sealed;
    char                          *plain;
    size_t                         len;
    ngx_int_t                      rc;
    u_char                         aad[64];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    plain = js ? json_dumps(js, JSON_COMPACT) : NULL;
    json_decref(js);

    if (plain == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(plain);
    rc = NGX_ERROR;

    sealed = ngx_pnalloc(r->pool, len + ENT_AEAD_OVERHEAD);
    out->data = ngx_pnalloc(r->pool,
                            ent_b64url_encoded_len(len + ENT_AEAD_OVERHEAD));
    p = ngx_snprintf(aad, sizeof(aad), "%s:%V", purpose, &ctx->tenant_id);

    if (sealed && out->data
        && ent_aead_seal(smcf->secret, aad, p - aad, (u_char *) plain, len,
                         sealed) >= 0)
    {
        out->len = ent_b64url_encode(out->data, sealed,
                                     len + ENT_AEAD_OVERHEAD);
        rc = NGX_OK;
    }

    free(plain);

    return rc;
}


json_t *
ngx_http_ent_sso_unseal(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    const char *purpose, ngx_str_t *in)
{
    ngx_str_t     plain;
    json_error_t  jerr;

    if (in->len > 4096
        || ngx_http_ent_sso_secret_open(r, ctx, purpose, in, &plain)
           != NGX_OK
        || plain.len == 0)
    {
        return NULL;
    }

    return json_loadb((char *) plain.data, plain.len, JSON_REJECT_DUPLICATES,
                      &jerr);
}


/*
 * The request body in one piece in r->pool, at most max bytes: NGX_OK,
 * NGX_DECLINED (none, or too big) or NGX_ERROR.  A body longer than
 * client_body_buffer_size is in nginx's temporary file, just written: it
 * is read back (from the page cache) as nginx reads such files itself.
 */

ngx_int_t
ngx_http_ent_sso_body(ngx_http_request_t *r, size_t max, ngx_str_t *out)
{
    off_t         len, n;
    u_char       *p;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (r->request_body == NULL) {
        return NGX_DECLINED;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += ngx_buf_in_memory(b) ? b->last - b->pos
                                    : b->file_last - b->file_pos;
    }

    if (len <= 0 || len > (off_t) max) {
        return NGX_DECLINED;
    }

    out->data = ngx_pnalloc(r->pool, (size_t) len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        n = b->file_last - b->file_pos;

        if (n > 0 && ngx_read_file(b->file, p, (size_t) n, b->file_pos) != n)
        {
            return NGX_ERROR;
        }

        p += n;
    }

    out->len = (size_t) len;

    return NGX_OK;
}


/*
 * A value sealed with ent_sso_secret_key (AES-256-GCM, base64url) for a
 * purpose and this tenant: a state cookie, the OIDC client secret, the
 * SAML SP key.  The plaintext lands in r->pool.
 */

ngx_int_t
ngx_http_ent_sso_secret_open(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, const char *purpose, ngx_str_t *in,
    ngx_str_t *out)
{
    int                            n;
    u_char                        *p, *raw;
    size_t                         len;
    u_char                         aad[64];
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    if (in->len == 0) {
        return NGX_DECLINED;
    }

    raw = ngx_pnalloc(r->pool, in->len);
    out->data = ngx_pnalloc(r->pool, in->len + 1);
    if (raw == NULL || out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_snprintf(aad, sizeof(aad), "%s:%V", purpose, &ctx->tenant_id);

    if (ent_b64url_decode(raw, &len, in->data, in->len) != 0) {
        return NGX_DECLINED;
    }

    n = ent_aead_open(smcf->secret, aad, p - aad, raw, len, out->data);
    if (n < 0) {
        return NGX_DECLINED;
    }

    out->len = n;
    out->data[n] = '\0';

    return NGX_OK;
}


/*
 * The URL of one of our endpoints on the host the browser asked for:
 * "<scheme>://<Host>/<prefix><path>".  The Host has passed nginx's and
 * the tenant module's checks.
 */

ngx_int_t
ngx_http_ent_sso_base_url(ngx_http_request_t *r, ngx_str_t *out,
    const char *path)
{
    u_char                        *p;
    ngx_str_t                      host, port;
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    /*
     * the name nginx validated (no userinfo, no path), and the Host's port
     * only when it is one
     */

    host = r->headers_in.server;
    ngx_str_null(&port);

    if (r->headers_in.host) {
        p = ngx_strlchr(r->headers_in.host->value.data,
                        r->headers_in.host->value.data
                        + r->headers_in.host->value.len, ':');

        if (p) {
            port.data = p + 1;
            port.len = r->headers_in.host->value.data
                       + r->headers_in.host->value.len - port.data;

            if (port.len == 0 || port.len > 5
                || ngx_atoi(port.data, port.len) == NGX_ERROR)
            {
                ngx_str_null(&port);
            }
        }
    }

    out->data = ngx_pnalloc(r->pool, sizeof("https://") + host.len + 6
                                     + smcf->prefix.len + ngx_strlen(path));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        p = ngx_cpymem(p, "https://", 8);

    } else
#endif
    {
        p = ngx_cpymem(p, "http://", 7);
    }

    p = ngx_cpymem(p, host.data, host.len);

    if (port.len) {
        *p++ = ':';
        p = ngx_cpymem(p, port.data, port.len);
    }

    p = ngx_cpymem(p, smcf->prefix.data, smcf->prefix.len);
    p = ngx_cpymem(p, path, ngx_strlen(path));

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * The raw value of a query (or form) argument; args NULL reads the bearer
 * token of the Authorization header into value instead.  A name given
 * twice is refused (NULL): one value, or none.
 */

ngx_str_t *
ngx_http_ent_sso_arg(ngx_http_request_t *r, ngx_str_t *args,
    const char *name, ngx_str_t *value)
{
    u_char     *p, *last, *start;
    size_t      nlen;
    ngx_uint_t  found;
    ngx_str_t  *auth;

    if (args == NULL) {
        if (r->headers_in.authorization == NULL) {
            return NULL;
        }

        auth = &r->headers_in.authorization->value;

        if (auth->len <= sizeof("Bearer ") - 1
            || ngx_strncasecmp(auth->data, (u_char *) "Bearer ",
                               sizeof("Bearer ") - 1) != 0)
        {
            return NULL;
        }

        value->data = auth->data + sizeof("Bearer ") - 1;
        value->len = auth->len - (sizeof("Bearer ") - 1);

        while (value->len && value->data[0] == ' ') {
            value->data++;
            value->len--;
        }

        return value->len ? value : NULL;
    }

    nlen = ngx_strlen(name);
    found = 0;
    p = args->data;
    last = p + args->len;

    while (p < last) {
        start = p;

        while (p < last && *p != '&') {
            p++;
        }

        if ((size_t) (p - start) > nlen && start[nlen] == '='
            && ngx_strncmp(start, name, nlen) == 0)
        {
            if (found) {
                return NULL;
            }

            found = 1;
            value->data = start + nlen + 1;
            value->len = p - start - nlen - 1;
        }

        p++;
    }

    return found ? value : NULL;
}


/* events for the audit trail, written asynchronously */


void
ngx_http_ent_sso_event(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    const char *kind, const char *outcome, const char *reason,
    ngx_str_t *user_id)
{
    ngx_str_t                      d[4];
    ngx_uint_t                     saml;
    ngx_ent_audit_event_t          ev;
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ent_sso_module);

    saml = (ctx->idp.protocol.len == 4
            && ngx_strncmp(ctx->idp.protocol.data, "saml", 4) == 0);

    if (ngx_strcmp(kind, "login") == 0) {
        ngx_ent_metrics_count(r, outcome[0] == 's'
                                 ? (saml ? NGX_ENT_M_SAML_LOGIN
                                         : NGX_ENT_M_OIDC_LOGIN)
                                 : (saml ? NGX_ENT_M_SAML_FAILURE
                                         : NGX_ENT_M_OIDC_FAILURE));
    }

    if (!smcf->events) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ent sso: %s %s%s%s", kind, outcome,
                  reason ? ": " : "", reason ? reason : "");

    ngx_memzero(&ev, sizeof(ngx_ent_audit_event_t));

    ev.tenant = ctx->tenant_id;
    ev.action = kind;
    ev.result = outcome;

    if (user_id && user_id->len) {
        ev.user = *user_id;
        ev.actor = *user_id;
        ev.actor_type = "user";
        ngx_str_set(&ev.target_type, "user");
        ev.target_id = *user_id;

    } else {
        ev.actor_type = "anonymous";
    }

    if (reason) {
        ev.reason.data = (u_char *) reason;
        ev.reason.len = ngx_strlen(reason);
    }

    ev.details = d;

    if (ctx->idp.protocol.len) {
        ngx_str_set(&d[0], "protocol");
        d[1] = ctx->idp.protocol;
        ngx_str_set(&d[2], "issuer");
        d[3] = ctx->idp.issuer;
        ev.ndetails = ctx->idp.issuer.len ? 2 : 1;
    }

    ngx_ent_audit(r, &ev);
}


static void
ngx_http_ent_sso_cleanup(void *data)
{
    ngx_http_ent_sso_ctx_t  *ctx = data;

    if (ctx->claims) {
        json_decref(ctx->claims);
        ctx->claims = NULL;
    }
}


/* variables */


static ngx_int_t
ngx_http_ent_sso_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t               *s;
    ngx_http_ent_sso_ctx_t  *ctx;

    ctx = ngx_ent_ctx_get(r->main, &ngx_http_ent_sso_module,
                          ngx_http_ent_sso_cleanup);

    if (ctx == NULL || ctx->kind != NGX_HTTP_ENT_SSO_CTX_REQUEST
        || !ctx->authenticated)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((u_char *) &ctx->id + data);

    v->data = s->data;
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* $ent_user_attr_<name>: a custom attribute of the identity */

static ngx_int_t
ngx_http_ent_sso_attr_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t               *name, value;
    ngx_http_ent_sso_ctx_t  *ctx;

    name = (ngx_str_t *) data;

    ctx = ngx_ent_ctx_get(r->main, &ngx_http_ent_sso_module,
                          ngx_http_ent_sso_cleanup);

    if (ctx == NULL || ctx->kind != NGX_HTTP_ENT_SSO_CTX_REQUEST
        || !ctx->authenticated
        || ngx_http_ent_sso_attr_find(&ctx->id.attrs,
                                      name->data + sizeof("ent_user_attr_") - 1,
                                      name->len - (sizeof("ent_user_attr_") - 1),
                                      &value)
           != NGX_OK)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = value.data;
    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * the value of one "name=value\n" line of an identity's attributes (the
 * names are lowercase, as nginx makes variable names)
 */

ngx_int_t
ngx_http_ent_sso_attr_find(ngx_str_t *attrs, u_char *name, size_t len,
    ngx_str_t *value)
{
    u_char  *p, *end, *eol;

    p = attrs->data;
    end = p + attrs->len;

    while (p && p < end) {
        eol = ngx_strlchr(p, end, '\n');
        if (eol == NULL) {
            eol = end;
        }

        if ((size_t) (eol - p) > len && p[len] == '='
            && ngx_strncmp(p, name, len) == 0)
        {
            value->data = p + len + 1;
            value->len = eol - value->data;
            return NGX_OK;
        }

        p = eol + 1;
    }

    return NGX_DECLINED;
}


/*
 * Custom attributes at a login: the tenant's map of names to the claims
 * or SAML attributes that carry them (a JSON object, NULL when none), and
 * a value appended to the identity's "name=value\n" lines.  A value with
 * a control byte, or over 1024 bytes, is dropped; so is what would take
 * the lines past NGX_HTTP_ENT_SSO_ATTRS_MAX.
 */

json_t *
ngx_http_ent_sso_attrs_map(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx)
{
    json_t        *map;
    json_error_t   jerr;

    if (ctx->idp.claim_attrs.len == 0) {
        return NULL;
    }

    map = json_loadb((char *) ctx->idp.claim_attrs.data,
                     ctx->idp.claim_attrs.len, JSON_REJECT_DUPLICATES, &jerr);

    if (!json_is_object(map)) {
        json_decref(map);
        return NULL;
    }

    return map;
}


ngx_int_t
ngx_http_ent_sso_attrs_add(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, const char *name, const char *value)
{
    u_char  *p;
    size_t   nlen, vlen, i;

    nlen = ngx_strlen(name);
    vlen = ngx_strlen(value);

    if (nlen == 0 || vlen > 1024
        || ctx->id.attrs.len + nlen + vlen + 2 > NGX_HTTP_ENT_SSO_ATTRS_MAX)
    {
        return NGX_DECLINED;
    }

    for (i = 0; i < vlen; i++) {
        if ((u_char) value[i] < 0x20 || (u_char) value[i] == 0x7f) {
            return NGX_DECLINED;
        }
    }

    p = ngx_pnalloc(r->pool, ctx->id.attrs.len + nlen + vlen + 2);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (ctx->id.attrs.len) {
        ngx_memcpy(p, ctx->id.attrs.data, ctx->id.attrs.len);
    }

    ctx->id.attrs.data = p;
    p += ctx->id.attrs.len;
    p = ngx_cpymem(p, name, nlen);
    *p++ = '=';
    p = ngx_cpymem(p, value, vlen);
    *p++ = '\n';
    ctx->id.attrs.len = p - ctx->id.attrs.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ent_sso_ctx_t  *ctx;

    ctx = ngx_ent_ctx_get(r->main, &ngx_http_ent_sso_module,
                          ngx_http_ent_sso_cleanup);

    if (ctx == NULL || ctx->kind != NGX_HTTP_ENT_SSO_CTX_REQUEST) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = (u_char *) ctx->sso_status;
    v->len = ngx_strlen(ctx->sso_status);
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* configuration */


static char *
ngx_http_ent_sso_mode(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_sso_loc_conf_t *slcf = conf;

    ngx_str_t                     *value;
    ngx_conf_enum_t               *e;
    ngx_http_ent_sso_main_conf_t  *smcf;

    if (slcf->mode != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (e = ngx_http_ent_sso_modes; e->name.len; e++) {
        if (e->name.len == value[1].len
            && ngx_strncmp(e->name.data, value[1].data, value[1].len) == 0)
        {
            break;
        }
    }

    if (e->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: "
                           "off, required or optional", &value[1],
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    slcf->mode = e->value;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ent_sso_module);
    smcf->used = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_sso_uri_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char        *p = conf;

    ngx_str_t                     *value, *s;
    ngx_uint_t                     i;
    ngx_array_t                  **a;
    ngx_http_ent_sso_main_conf_t  *smcf;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 0 || value[i].data[0] != '/'
            || value[i].len > 512)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive: "
                               "a path starting with \"/\"",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_strcmp(cmd->name.data, "ent_sso_enforce_path") == 0) {
        smcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_ent_sso_module);
        smcf->used = 1;
    }

    if (ngx_strcmp(cmd->name.data, "ent_sso_fetch_location") == 0) {
        s = (ngx_str_t *) (p + cmd->offset);

        if (s->data) {
            return "is duplicate";
        }

        *s = value[1];
        return NGX_CONF_OK;
    }

    a = (ngx_array_t **) (p + cmd->offset);

    if (*a == NGX_CONF_UNSET_PTR) {
        *a = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (*a == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    for (i = 1; i < cf->args->nelts; i++) {
        s = ngx_array_push(*a);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_sso_header(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_sso_loc_conf_t *slcf = conf;

    u_char       c;
    ngx_str_t   *value, *h;
    ngx_uint_t   i;

    static struct {
        ngx_str_t  name;
        size_t     offset;
    } fields[] = {
        { ngx_string("user_id"),
          offsetof(ngx_http_ent_sso_loc_conf_t, h_user_id) },
        { ngx_string("email"),
          offsetof(ngx_http_ent_sso_loc_conf_t, h_email) },
        { ngx_string("name"),
          offsetof(ngx_http_ent_sso_loc_conf_t, h_name) },
        { ngx_string("groups"),
          offsetof(ngx_http_ent_sso_loc_conf_t, h_groups) },
        { ngx_string("roles"),
          offsetof(ngx_http_ent_sso_loc_conf_t, h_roles) },
        { ngx_string("session"),
          offsetof(ngx_http_ent_sso_loc_conf_t, h_session) },
        { ngx_string("assertion"),
          offsetof(ngx_http_ent_sso_loc_conf_t, h_assertion) },
        { ngx_string("permissions"),
          offsetof(ngx_http_ent_sso_loc_conf_t, h_permissions) },
        { ngx_string("breakglass"),
          offsetof(ngx_http_ent_sso_loc_conf_t, h_breakglass) },
    };

    value = cf->args->elts;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (value[1].len == fields[i].name.len
            && ngx_strncmp(value[1].data, fields[i].name.data,
                           value[1].len) == 0)
        {
            break;
        }
    }

    if (i == sizeof(fields) / sizeof(fields[0])) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: "
                           "user_id, email, name, groups, roles, session, "
                           "assertion, permissions or breakglass",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    h = (ngx_str_t *) ((u_char *) slcf + fields[i].offset);

    if (value[2].len == 3 && ngx_strncmp(value[2].data, "off", 3) == 0) {
        ngx_str_set(h, "");
        return NGX_CONF_OK;
    }

    /* the tenant module strips client-sent X-Ent-*: only those are safe */

    if (value[2].len <= 6
        || ngx_strncasecmp(value[2].data, (u_char *) "X-Ent-", 6) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: an "
                           "identity header must start with \"X-Ent-\" "
                           "(client-sent copies of those are removed)",
                           &value[2], &cmd->name);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < value[2].len; i++) {
        c = value[2].data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive",
                               &value[2], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    /* the name, its NUL, then its lowercase form (ngx_http_ent_sso_push) */

    h->data = ngx_pnalloc(cf->pool, 2 * value[2].len + 2);
    if (h->data == NULL) {
        return NGX_CONF_ERROR;
    }

    h->len = value[2].len;
    ngx_memcpy(h->data, value[2].data, h->len);
    h->data[h->len] = '\0';
    ngx_strlow(h->data + h->len + 1, value[2].data, h->len);
    h->data[2 * h->len + 1] = '\0';

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_sso_secret_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_sso_main_conf_t *smcf = conf;

    u_char     *p, *last;
    size_t      n;
    ssize_t     size;
    ngx_fd_t    fd;
    ngx_str_t  *value, file;
    u_char      buf[256], bin[64];

    if (smcf->has_secret) {
        return "is duplicate";
    }

    value = cf->args->elts;
    file = value[1];

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &file);
        return NGX_CONF_ERROR;
    }

    size = ngx_read_fd(fd, buf, sizeof(buf));
    ngx_close_file(fd);

    if (size < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%V\" failed", &file);
        return NGX_CONF_ERROR;
    }

    /* 32 raw bytes, or their base64url / base64 text (one line) */

    if (size == ENT_AEAD_KEY_LEN) {
        ngx_memcpy(smcf->secret, buf, ENT_AEAD_KEY_LEN);
        smcf->has_secret = 1;
        ngx_explicit_memzero(buf, sizeof(buf));
        return NGX_CONF_OK;
    }

    p = buf;
    last = buf + size;

    while (last > p && (last[-1] == '\n' || last[-1] == '\r'
                        || last[-1] == ' ' || last[-1] == '='))
    {
        last--;
    }

    for (n = 0; n < (size_t) (last - p); n++) {
        if (p[n] == '+') {
            p[n] = '-';

        } else if (p[n] == '/') {
            p[n] = '_';
        }
    }

    /* the length first: the decoder needs room for what it is given */

    if ((size_t) (last - p) != ent_b64url_encoded_len(ENT_AEAD_KEY_LEN)
        || ent_b64url_decode(bin, &n, p, last - p) != 0
        || n != ENT_AEAD_KEY_LEN)
    {
        ngx_explicit_memzero(buf, sizeof(buf));
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must hold 32 random bytes, raw or "
                           "base64 (e.g. \"openssl rand -base64 32\")",
                           &file);
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(smcf->secret, bin, ENT_AEAD_KEY_LEN);
    ngx_explicit_memzero(buf, sizeof(buf));
    ngx_explicit_memzero(bin, sizeof(bin));
    smcf->has_secret = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_sso_assertion_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ent_sso_main_conf_t *smcf = conf;

    BIO                 *bio;
    EVP_PKEY            *key;
    ngx_str_t           *value, file;
    ngx_pool_cleanup_t  *cln;

    if (smcf->assertion_key) {
        return "is duplicate";
    }

    value = cf->args->elts;
    file = value[1];

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    bio = BIO_new_file((char *) file.data, "r");
    if (bio == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot open \"%V\"", &file);
        return NGX_CONF_ERROR;
    }

    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" holds no PEM private key", &file);
        return NGX_CONF_ERROR;
    }

    switch (EVP_PKEY_get_base_id(key)) {

    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(key) < 2048) {
            EVP_PKEY_free(key);
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": an RSA key of 2048 bits or more "
                               "is needed", &file);
            return NGX_CONF_ERROR;
        }

        smcf->assertion_alg = ENT_JWA_RS256;
        break;

    case EVP_PKEY_EC:
        if (EVP_PKEY_get_bits(key) != 256 && EVP_PKEY_get_bits(key) != 384) {
            EVP_PKEY_free(key);
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": an EC key on P-256 or P-384 is "
                               "needed", &file);
            return NGX_CONF_ERROR;
        }

        smcf->assertion_alg = EVP_PKEY_get_bits(key) == 384
                              ? ENT_JWA_ES384 : ENT_JWA_ES256;
        break;

    case EVP_PKEY_ED25519:
        smcf->assertion_alg = ENT_JWA_EDDSA;
        break;

    default:
        EVP_PKEY_free(key);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": an RSA, EC or Ed25519 key is needed",
                           &file);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        EVP_PKEY_free(key);
        return NGX_CONF_ERROR;
    }

    cln->handler = (ngx_pool_cleanup_pt) EVP_PKEY_free;
    cln->data = key;

    smcf->assertion_key = key;

    if (cf->args->nelts == 3) {
        if (value[2].len <= 4 || ngx_strncmp(value[2].data, "kid=", 4) != 0
            || value[2].len > 4 + 64)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive",
                               &value[2], &cmd->name);
            return NGX_CONF_ERROR;
        }

        smcf->assertion_kid.data = value[2].data + 4;
        smcf->assertion_kid.len = value[2].len - 4;
    }

    return NGX_CONF_OK;
}


/* for tests: shifts the module's clock, forward or back (a sign allowed) */

static char *
ngx_http_ent_sso_clock_offset(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ent_sso_main_conf_t *smcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value, s;

    if (smcf->clock_offset != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    s = value[1];

    if (s.len && s.data[0] == '-') {
        s.data++;
        s.len--;
    }

    n = ngx_atoi(s.data, s.len);

    if (n == NGX_ERROR || n > 315360000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "expected seconds within 10 years", &value[1],
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    smcf->clock_offset = (value[1].data[0] == '-') ? -n : n;

    ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                       "\"%V\" shifts the single sign-on clock: "
                       "for tests only", &cmd->name);

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_sso_session_timeout(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ent_sso_main_conf_t *smcf = conf;

    ngx_str_t  *value;

    if (smcf->idle != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    smcf->idle = ngx_parse_time(&value[1], 1);
    smcf->absolute = ngx_parse_time(&value[2], 1);

    if (smcf->idle == (time_t) NGX_ERROR || smcf->idle < 1
        || smcf->absolute == (time_t) NGX_ERROR
        || smcf->absolute < smcf->idle)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value in \"%V\" directive: "
                           "\"idle absolute\", absolute >= idle >= 1s",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_sso_algorithms(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_sso_main_conf_t *smcf = conf;

    unsigned     alg;
    ngx_str_t   *value;
    ngx_uint_t   i;
    char         name[16];

    if (smcf->algs != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    smcf->algs = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        alg = 0;

        if (value[i].len < sizeof(name)) {
            ngx_memcpy(name, value[i].data, value[i].len);
            name[value[i].len] = '\0';
            alg = ent_jwa_from_name(name);
        }

        if (alg == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive: "
                               "RS256, RS384, RS512, PS256, PS384, PS512, "
                               "ES256, ES384 or EdDSA", &value[i],
                               &cmd->name);
            return NGX_CONF_ERROR;
        }

        smcf->algs |= alg;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_ent_sso_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ent_sso_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     smcf->cache = NULL;
     *     smcf->docs = NULL;
     *     smcf->idp_stmt = NULL;
     *     smcf->login_stmt = NULL;
     *     smcf->zone = { 0, NULL };
     *     smcf->docs_zone = { 0, NULL };
     *     smcf->authz_zone = { 0, NULL };
     *     smcf->secret_file = { 0, NULL };
     *     smcf->secret = { 0 };
     *     smcf->has_secret = 0;
     *     smcf->assertion_key_file = { 0, NULL };
     *     smcf->assertion_kid = { 0, NULL };
     *     smcf->assertion_key = NULL;
     *     smcf->assertion_alg = 0;
     *     smcf->fetch_uri = { 0, NULL };
     *     smcf->prefix = { 0, NULL };
     *     smcf->cookie = { 0, NULL };
     *     smcf->state_cookie = { 0, NULL };
     *     smcf->used = 0;
     *     smcf->tenant_id_index = 0;
     *     smcf->tenant_code_index = 0;
     */

    smcf->idle = NGX_CONF_UNSET;
    smcf->absolute = NGX_CONF_UNSET;
    smcf->state_ttl = NGX_CONF_UNSET;
    smcf->skew = NGX_CONF_UNSET;
    smcf->docs_ttl = NGX_CONF_UNSET;
    smcf->jwks_throttle = NGX_CONF_UNSET_MSEC;
    smcf->session_cache = NGX_CONF_UNSET_MSEC;
    smcf->clock_offset = NGX_CONF_UNSET;
    smcf->algs = NGX_CONF_UNSET_UINT;
    smcf->events = NGX_CONF_UNSET;

    return smcf;
}


static char *
ngx_http_ent_sso_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_ent_sso_main_conf_t *smcf = conf;

    ngx_conf_init_value(smcf->idle, 3600);
    ngx_conf_init_value(smcf->absolute, 43200);
    ngx_conf_init_value(smcf->state_ttl, 600);
    ngx_conf_init_value(smcf->skew, 60);
    ngx_conf_init_value(smcf->docs_ttl, 3600);
    ngx_conf_init_msec_value(smcf->jwks_throttle, 30000);
    ngx_conf_init_msec_value(smcf->session_cache, 0);

    if (smcf->session_cache > 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ent_sso_session_cache\" is at most 1s: a "
                           "revocation must reach every node within it");
        return NGX_CONF_ERROR;
    }
    ngx_conf_init_value(smcf->clock_offset, 0);
    ngx_conf_init_uint_value(smcf->algs, ENT_JWA_DEFAULT);
    ngx_conf_init_value(smcf->events, 1);

    if (smcf->zone.data == NULL) {
        ngx_str_set(&smcf->zone, "sso");
    }

    if (smcf->docs_zone.data == NULL) {
        ngx_str_set(&smcf->docs_zone, "sso_docs");
    }

    if (smcf->authz_zone.data == NULL) {
        ngx_str_set(&smcf->authz_zone, "authz");
    }

    if (smcf->fetch_uri.data == NULL) {
        ngx_str_set(&smcf->fetch_uri, "/_ent/fetch");
    }

    if (smcf->cookie.data == NULL) {
        ngx_str_set(&smcf->cookie, "__Host-ent_session");

    } else if (smcf->cookie.len < 2 || smcf->cookie.len > 64
               || ngx_http_ent_sso_token_chars(&smcf->cookie) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"ent_sso_cookie\" name \"%V\"",
                           &smcf->cookie);
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&smcf->state_cookie, "__Host-ent_oidc");
    ngx_str_set(&smcf->prefix, "/_ent/");

    return NGX_CONF_OK;
}


static void *
ngx_http_ent_sso_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ent_sso_loc_conf_t  *slcf;

    slcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ent_sso_loc_conf_t));
    if (slcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     slcf->h_user_id = { 0, NULL };
     *     slcf->h_email = { 0, NULL };
     *     slcf->h_name = { 0, NULL };
     *     slcf->h_groups = { 0, NULL };
     *     slcf->h_roles = { 0, NULL };
     *     slcf->h_session = { 0, NULL };
     *     slcf->h_assertion = { 0, NULL };
     *     slcf->h_permissions = { 0, NULL };
     *     slcf->h_breakglass = { 0, NULL };
     *     slcf->authz = NULL;
     */

    slcf->mode = NGX_CONF_UNSET_UINT;
    slcf->bearer = NGX_CONF_UNSET;
    slcf->bearer_scopes = NGX_CONF_UNSET_PTR;
    slcf->assertion = NGX_CONF_UNSET;
    slcf->enforce_paths = NGX_CONF_UNSET_PTR;
    slcf->authz_on = NGX_CONF_UNSET;

    return slcf;
}


static char *
ngx_http_ent_sso_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ent_sso_loc_conf_t *prev = parent;
    ngx_http_ent_sso_loc_conf_t *conf = child;

    ngx_http_ent_sso_main_conf_t  *smcf;

    ngx_conf_merge_uint_value(conf->mode, prev->mode,
                              NGX_HTTP_ENT_SSO_OFF);
    ngx_conf_merge_value(conf->bearer, prev->bearer, 1);
    ngx_conf_merge_ptr_value(conf->bearer_scopes, prev->bearer_scopes, NULL);
    ngx_conf_merge_value(conf->assertion, prev->assertion, 0);

    if (conf->assertion) {
        smcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_ent_sso_module);
        if (smcf->assertion_key == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"ent_sso_assertion on\" needs "
                               "\"ent_sso_assertion_key\" in http{}");
            return NGX_CONF_ERROR;
        }
    }
    ngx_conf_merge_ptr_value(conf->enforce_paths, prev->enforce_paths, NULL);
    /* each default: the name, NUL, its lowercase form (see push) */

    ngx_conf_merge_str_value(conf->h_user_id, prev->h_user_id,
                             "X-Ent-User-Id\0x-ent-user-id");
    ngx_conf_merge_str_value(conf->h_email, prev->h_email,
                             "X-Ent-User-Email\0x-ent-user-email");
    ngx_conf_merge_str_value(conf->h_name, prev->h_name,
                             "X-Ent-User-Name\0x-ent-user-name");
    ngx_conf_merge_str_value(conf->h_groups, prev->h_groups,
                             "X-Ent-User-Groups\0x-ent-user-groups");
    ngx_conf_merge_str_value(conf->h_roles, prev->h_roles,
                             "X-Ent-Roles\0x-ent-roles");
    ngx_conf_merge_str_value(conf->h_session, prev->h_session,
                             "X-Ent-Session\0x-ent-session");
    ngx_conf_merge_str_value(conf->h_assertion, prev->h_assertion,
                             "X-Ent-Identity\0x-ent-identity");
    ngx_conf_merge_str_value(conf->h_permissions, prev->h_permissions,
                             "X-Ent-Permissions\0x-ent-permissions");
    ngx_conf_merge_str_value(conf->h_breakglass, prev->h_breakglass,
                             "X-Ent-Break-Glass\0x-ent-break-glass");

    /*
     * rules of its own turn authorization on in a location unless it says
     * "ent_authz off" itself; "off" does not inherit the enclosing rules
     */

    if (conf->authz == NULL) {
        if (conf->authz_on != 0) {
            conf->authz = prev->authz;
        }

        ngx_conf_merge_value(conf->authz_on, prev->authz_on, 1);

    } else if (conf->authz_on == NGX_CONF_UNSET) {
        conf->authz_on = 1;
    }

    if (!conf->authz_on && conf->authz) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ent_authz off\" and ent_authz_* rules "
                           "in one location");
        return NGX_CONF_ERROR;
    }

    ngx_http_ent_sso_header_len(&conf->h_user_id);
    ngx_http_ent_sso_header_len(&conf->h_email);
    ngx_http_ent_sso_header_len(&conf->h_name);
    ngx_http_ent_sso_header_len(&conf->h_groups);
    ngx_http_ent_sso_header_len(&conf->h_roles);
    ngx_http_ent_sso_header_len(&conf->h_session);
    ngx_http_ent_sso_header_len(&conf->h_assertion);
    ngx_http_ent_sso_header_len(&conf->h_permissions);
    ngx_http_ent_sso_header_len(&conf->h_breakglass);

    return NGX_CONF_OK;
}


/* an RFC 6265 cookie name: letters, digits and "-_." only, here */

static ngx_int_t
ngx_http_ent_sso_token_chars(ngx_str_t *s)
{
    u_char      c;
    ngx_uint_t  i;

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a default "Name\0name" merged as one string: its length is the first */

static void
ngx_http_ent_sso_header_len(ngx_str_t *h)
{
    h->len = h->len ? ngx_strlen(h->data) : 0;
}


static ngx_int_t
ngx_http_ent_sso_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    if (ngx_ent_core_check(cf, "ngx_http_ent_sso_module") != NGX_OK) {
        return NGX_ERROR;
    }

    for (v = ngx_http_ent_sso_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_sso_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                     backends, n;
    ngx_http_handler_pt           *h, *first;
    ngx_http_core_main_conf_t     *cmcf;
    ngx_http_ent_sso_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ent_sso_module);

    if (!smcf->used) {
        return NGX_OK;
    }

    backends = ngx_ent_core_backends(cf);

    if ((backends & (NGX_ENT_POSTGRES|NGX_ENT_REDIS))
        != (NGX_ENT_POSTGRES|NGX_ENT_REDIS))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ent_sso\" needs \"ent_postgres\" and "
                           "\"ent_redis\" in http{}");
        return NGX_ERROR;
    }

    if (!smcf->has_secret) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ent_sso\" needs \"ent_sso_secret_key\" in "
                           "http{} (it decrypts the IdPs' client secrets "
                           "and seals login state)");
        return NGX_ERROR;
    }

    smcf->tenant_id_index = ngx_http_get_variable_index(cf,
                                                &ngx_http_ent_sso_tenant_id);
    smcf->tenant_code_index = ngx_http_get_variable_index(cf,
                                              &ngx_http_ent_sso_tenant_code);

    if (smcf->tenant_id_index == NGX_ERROR
        || smcf->tenant_code_index == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    smcf->cache = ngx_ent_cache_zone(cf, &smcf->zone);
    smcf->docs = ngx_ent_cache_zone(cf, &smcf->docs_zone);
    smcf->authz_cache = ngx_ent_cache_zone(cf, &smcf->authz_zone);

    if (smcf->cache == NULL || smcf->docs == NULL
        || smcf->authz_cache == NULL)
    {
        return NGX_ERROR;
    }

    smcf->authz_stmt = ngx_ent_pg_stmt_add(cf,
                           "SELECT * FROM ent.authz($1::uuid, $2, $3, $4, "
                           "$5::uuid)", 5);
    smcf->bg_stmt = ngx_ent_pg_stmt_add(cf,
                        "SELECT * FROM ent.breakglass($1::uuid)", 1);

    if (smcf->authz_stmt == NULL || smcf->bg_stmt == NULL) {
        return NGX_ERROR;
    }

    smcf->idp_stmt = ngx_ent_pg_stmt_add(cf,
                         "SELECT * FROM ent.sso_idp($1::uuid)", 1);
    smcf->login_stmt = ngx_ent_pg_stmt_add(cf,
                         "SELECT * FROM ent.sso_login($1::uuid, $2, $3, $4, "
                         "$5, $6, $7::boolean)", 7);

    if (smcf->idp_stmt == NULL || smcf->login_stmt == NULL) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * Last among the access handlers (nginx runs them in the reverse order
     * of registration, so first in the array): the tenant's allow-list,
     * feature gates, allow/deny and auth_basic decide before anyone is
     * sent to an IdP.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    first = cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers.elts;
    n = cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers.nelts;

    ngx_memmove(&first[1], &first[0], (n - 1) * sizeof(ngx_http_handler_pt));
    first[0] = ngx_http_ent_sso_handler;

    return NGX_OK;
}


/* libxml2 and xmlsec, once per worker (never torn down: OpenSSL's state) */

static ngx_int_t
ngx_http_ent_sso_init_process(ngx_cycle_t *cycle)
{
    if (ent_saml_init() != 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "ent sso: xmlsec could not be initialized");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_ent_sso_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_ent_sso_docs_exit();
    ngx_http_ent_sso_bearers_exit();
    ngx_http_ent_sso_saml_exit();
    ngx_http_ent_sso_authz_exit();
}
