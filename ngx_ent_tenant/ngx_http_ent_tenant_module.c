/*
 * ngx_http_ent_tenant_module: tenants at the edge.
 *
 * SERVER_REWRITE: every client-sent header with the identity prefix is
 * removed (any case, "_" for "-"); in servers with "ent_tenant on" the
 * Host is normalized and resolved, a custom domain first, else
 * "<code>.<base>" for the longest configured base domain, through the
 * core's shared-memory cache (one PostgreSQL query per node per miss: the
 * effective record, with everything a child inherits, is computed by
 * ent.tenant_for_host()).  Unknown, suspended, deactivated tenants and
 * maintenance (per tenant, or platform-wide from the Redis key
 * "ent:maintenance", polled by each worker) are answered here, with short
 * white-label pages (JSON for API requests) unless error_page says
 * otherwise; the tenant's identity headers are then set.
 *
 * ACCESS: the tenant's IP allow-list (client address after realip; sorted
 * ranges, binary search) and ent_require_feature.
 *
 * Header filter: security headers on every response, errors included.
 *
 * The resolved tenant is kept in a cleanup of the request pool, so that it
 * survives internal redirects (error_page, try_files, named locations),
 * which wipe module contexts: the realip module's technique.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ent_core.h"
#include "ngx_ent_host.h"
#include "ngx_ent_tenant.h"


static ngx_int_t ngx_http_ent_tenant_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ent_tenant_init(ngx_conf_t *cf);
static void *ngx_http_ent_tenant_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_ent_tenant_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_ent_tenant_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_ent_tenant_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_http_ent_tenant_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ent_tenant_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void ngx_http_ent_tenant_off(ngx_str_t *value);
static char *ngx_http_ent_tenant_base_domain(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ent_tenant_unknown(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_tenant_header_name(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ent_tenant_require_feature(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ent_tenant_enum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ent_tenant_seconds(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ent_tenant_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_ent_tenant_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ent_tenant_custom_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_http_ent_tenant_ctx_t *ngx_http_ent_tenant_new_ctx(
    ngx_http_request_t *r);
static void ngx_http_ent_tenant_cleanup(void *data);
static ngx_int_t ngx_http_ent_tenant_handler(ngx_http_request_t *r);
static void ngx_http_ent_tenant_filled(ngx_ent_op_t *op);
static ngx_int_t ngx_http_ent_tenant_decide(ngx_http_request_t *r,
    ngx_http_ent_tenant_ctx_t *ctx);
static ngx_int_t ngx_http_ent_tenant_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ent_tenant_feature_off(ngx_http_request_t *r,
    ngx_http_ent_tenant_ctx_t *ctx, ngx_str_t *feature);
static ngx_int_t ngx_http_ent_tenant_deny(ngx_http_request_t *r,
    ngx_http_ent_tenant_ctx_t *ctx, ngx_int_t rc);
static ngx_int_t ngx_http_ent_tenant_rewrite_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ent_tenant_strip_once(ngx_http_request_t *r,
    ngx_http_ent_tenant_main_conf_t *tmcf);
static void ngx_http_ent_tenant_stripped(void *data);
static ngx_int_t ngx_http_ent_tenant_strip(ngx_http_request_t *r,
    ngx_http_ent_tenant_main_conf_t *tmcf);
static ngx_int_t ngx_http_ent_tenant_identity(ngx_http_request_t *r,
    ngx_http_ent_tenant_main_conf_t *tmcf, ngx_http_ent_tenant_t *t);
static ngx_int_t ngx_http_ent_tenant_init_process(ngx_cycle_t *cycle);
static void ngx_http_ent_tenant_poll(ngx_event_t *ev);
static void ngx_http_ent_tenant_polled(ngx_ent_op_t *op);


static ngx_conf_enum_t  ngx_http_ent_tenant_deactivated_status[] = {
    { ngx_string("404"), NGX_HTTP_NOT_FOUND },
    { ngx_string("410"), 410 },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_ent_tenant_upstream_modes[] = {
    { ngx_string("override"), NGX_HTTP_ENT_UPSTREAM_OVERRIDE },
    { ngx_string("keep"), NGX_HTTP_ENT_UPSTREAM_KEEP },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_ent_tenant_retry_bounds = {
    ngx_conf_check_num_bounds, 1, 86400
};


static ngx_command_t  ngx_http_ent_tenant_commands[] = {

    { ngx_string("ent_tenant"),
      NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_srv_conf_t, enable),
      NULL },

    { ngx_string("ent_tenant_base_domain"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_1MORE,
      ngx_http_ent_tenant_base_domain,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_tenant_unknown"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_ent_tenant_unknown,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_tenant_deactivated"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_ent_tenant_enum,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_srv_conf_t, deactivated),
      &ngx_http_ent_tenant_deactivated_status },

    { ngx_string("ent_tenant_retry_after"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_ent_tenant_seconds,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_srv_conf_t, retry_after),
      &ngx_http_ent_tenant_retry_bounds },

    { ngx_string("ent_tenant_json_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_1MORE,
      ngx_conf_set_str_array_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_srv_conf_t, json_prefixes),
      NULL },

    { ngx_string("ent_tenant_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_main_conf_t, zone),
      NULL },

    { ngx_string("ent_identity_strip"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_main_conf_t, strip),
      NULL },

    { ngx_string("ent_identity_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_main_conf_t, prefix),
      NULL },

    { ngx_string("ent_tenant_header"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_ent_tenant_header_name,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_maintenance_poll"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_main_conf_t, poll_interval),
      NULL },

    { ngx_string("ent_require_feature"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ent_tenant_require_feature,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ent_security_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, headers),
      NULL },

    { ngx_string("ent_csp"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, csp),
      NULL },

    { ngx_string("ent_csp_report_only"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, csp_report_only),
      NULL },

    { ngx_string("ent_csp_report_uri"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, csp_report_uri),
      NULL },

    { ngx_string("ent_hsts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, hsts),
      NULL },

    { ngx_string("ent_hsts_preload"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, hsts_preload),
      NULL },

    { ngx_string("ent_frame_options"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, frame_options),
      NULL },

    { ngx_string("ent_content_type_options"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, content_type_options),
      NULL },

    { ngx_string("ent_referrer_policy"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, referrer_policy),
      NULL },

    { ngx_string("ent_permissions_policy"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, permissions_policy),
      NULL },

    { ngx_string("ent_cross_origin_opener_policy"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, coop),
      NULL },

    { ngx_string("ent_cross_origin_resource_policy"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, corp),
      NULL },

    { ngx_string("ent_security_headers_upstream"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ent_tenant_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ent_tenant_loc_conf_t, upstream_headers),
      &ngx_http_ent_tenant_upstream_modes },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ent_tenant_module_ctx = {
    ngx_http_ent_tenant_preconfiguration,  /* preconfiguration */
    ngx_http_ent_tenant_init,              /* postconfiguration */

    ngx_http_ent_tenant_create_main_conf,  /* create main configuration */
    ngx_http_ent_tenant_init_main_conf,    /* init main configuration */

    ngx_http_ent_tenant_create_srv_conf,   /* create server configuration */
    ngx_http_ent_tenant_merge_srv_conf,    /* merge server configuration */

    ngx_http_ent_tenant_create_loc_conf,   /* create location configuration */
    ngx_http_ent_tenant_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_ent_tenant_module = {
    NGX_MODULE_V1,
    &ngx_http_ent_tenant_module_ctx,       /* module context */
    ngx_http_ent_tenant_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ent_tenant_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* offsets of ngx_str_t fields of ngx_http_ent_tenant_t, as variables */

static ngx_http_variable_t  ngx_http_ent_tenant_vars[] = {

    { ngx_string("ent_tenant_id"), NULL, ngx_http_ent_tenant_variable,
      offsetof(ngx_http_ent_tenant_t, id), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_tenant_code"), NULL, ngx_http_ent_tenant_variable,
      offsetof(ngx_http_ent_tenant_t, code), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_tenant_name"), NULL, ngx_http_ent_tenant_variable,
      offsetof(ngx_http_ent_tenant_t, name), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_tenant_status"), NULL, ngx_http_ent_tenant_variable,
      offsetof(ngx_http_ent_tenant_t, status_text),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_tenant_tier"), NULL, ngx_http_ent_tenant_variable,
      offsetof(ngx_http_ent_tenant_t, tier), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_tenant_region"), NULL, ngx_http_ent_tenant_variable,
      offsetof(ngx_http_ent_tenant_t, region), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_tenant_upstream"), NULL, ngx_http_ent_tenant_variable,
      offsetof(ngx_http_ent_tenant_t, upstream),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_tenant_features"), NULL, ngx_http_ent_tenant_variable,
      offsetof(ngx_http_ent_tenant_t, features),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_tenant_parent_id"), NULL, ngx_http_ent_tenant_variable,
      offsetof(ngx_http_ent_tenant_t, parent_id),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_tenant_billing_anchor"), NULL,
      ngx_http_ent_tenant_variable,
      offsetof(ngx_http_ent_tenant_t, billing_anchor),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_tenant_ratelimits"), NULL,
      ngx_http_ent_tenant_variable,
      offsetof(ngx_http_ent_tenant_t, ratelimits),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_tenant_csp_sources"), NULL,
      ngx_http_ent_tenant_variable,
      offsetof(ngx_http_ent_tenant_t, csp_sources),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ent_tenant_custom_domain"), NULL,
      ngx_http_ent_tenant_custom_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* rendered without the script engine (ngx_http_ent_tenant_header_filter) */

#define NGX_HTTP_ENT_DEFAULT_CSP                                              \
    NGX_HTTP_ENT_CSP_HEAD " $ent_tenant_csp_sources" NGX_HTTP_ENT_CSP_TAIL

#define NGX_HTTP_ENT_DEFAULT_PERMISSIONS                                      \
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), "            \
    "magnetometer=(), microphone=(), payment=(), usb=()"


static ngx_int_t
ngx_http_ent_tenant_preconfiguration(ngx_conf_t *cf)
{
    if (ngx_ent_core_check(cf, "ngx_http_ent_tenant_module") != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ent_tenant_add_variables(cf);
}


static ngx_int_t
ngx_http_ent_tenant_init(ngx_conf_t *cf)
{
    ngx_str_t                         sql;
    ngx_uint_t                        backends;
    ngx_http_handler_pt              *h;
    ngx_http_core_main_conf_t        *cmcf;
    ngx_http_ent_tenant_main_conf_t  *tmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ent_tenant_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_SERVER_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ent_tenant_handler;

    /* a named location starts here, after the server's rewrite phase */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ent_tenant_rewrite_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ent_tenant_access_handler;

    ngx_http_ent_tenant_output_init();

    if (!tmcf->used) {
        return NGX_OK;
    }

    backends = ngx_ent_core_backends(cf);

    if (!(backends & NGX_ENT_POSTGRES)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ent_tenant on\" needs \"ent_postgres\" "
                           "in http{}");
        return NGX_ERROR;
    }

    tmcf->redis = (backends & NGX_ENT_REDIS) ? 1 : 0;

    tmcf->cache = ngx_ent_cache_zone(cf, &tmcf->zone);
    if (tmcf->cache == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&sql, "SELECT * FROM ent.tenant_for_host($1, $2)");

    tmcf->stmt = ngx_ent_pg_stmt_add(cf, (char *) sql.data, 2);
    if (tmcf->stmt == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_ent_tenant_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ent_tenant_main_conf_t  *tmcf;

    tmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ent_tenant_main_conf_t));
    if (tmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     tmcf->zone = { 0, NULL };
     *     tmcf->prefix = { 0, NULL };
     *     tmcf->header_id = { 0, NULL };
     *     tmcf->header_code = { 0, NULL };
     *     tmcf->header_tier = { 0, NULL };
     *     tmcf->cache = NULL;
     *     tmcf->stmt = NULL;
     *     tmcf->used = 0;
     *     tmcf->maintenance = 0;
     */

    tmcf->strip = NGX_CONF_UNSET;
    tmcf->poll_interval = NGX_CONF_UNSET_MSEC;

    return tmcf;
}


static char *
ngx_http_ent_tenant_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_ent_tenant_main_conf_t *tmcf = conf;

    u_char      *p;
    ngx_str_t   *names[3];
    ngx_uint_t   i, k;

    ngx_conf_init_value(tmcf->strip, 1);
    ngx_conf_init_msec_value(tmcf->poll_interval, 500);

    if (tmcf->zone.len == 0) {
        ngx_str_set(&tmcf->zone, "tenants");
    }

    if (tmcf->prefix.len == 0) {
        ngx_str_set(&tmcf->prefix, "X-Ent-");
    }

    if (tmcf->header_id.len == 0) {
        ngx_str_set(&tmcf->header_id, "X-Ent-Tenant-Id");
    }

    if (tmcf->header_code.len == 0) {
        ngx_str_set(&tmcf->header_code, "X-Ent-Tenant-Code");
    }

    if (tmcf->header_tier.len == 0) {
        ngx_str_set(&tmcf->header_tier, "X-Ent-Tenant-Tier");
    }

    /* the prefix, folded once: lowercase, "_" as "-" */

    p = ngx_pnalloc(cf->pool, tmcf->prefix.len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < tmcf->prefix.len; i++) {
        p[i] = (tmcf->prefix.data[i] == '_')
               ? '-' : ngx_tolower(tmcf->prefix.data[i]);

        if (p[i] <= ' ' || p[i] >= 0x7f || p[i] == ':') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"ent_identity_prefix\" \"%V\"",
                               &tmcf->prefix);
            return NGX_CONF_ERROR;
        }
    }

    tmcf->prefix.data = p;

    /* trusted names must carry the prefix: a client copy is stripped */

    names[0] = &tmcf->header_id;
    names[1] = &tmcf->header_code;
    names[2] = &tmcf->header_tier;

    for (k = 0; k < 3; k++) {
        tmcf->identity[k].key = *names[k];
        tmcf->identity[k].lowcase_key = ngx_pnalloc(cf->pool, names[k]->len);
        if (tmcf->identity[k].lowcase_key == NULL) {
            return NGX_CONF_ERROR;
        }

        tmcf->identity[k].hash = ngx_hash_strlow(tmcf->identity[k].lowcase_key,
                                                 names[k]->data,
                                                 names[k]->len);

        if (names[k]->len <= tmcf->prefix.len
            || ngx_strncasecmp(names[k]->data, tmcf->prefix.data,
                               tmcf->prefix.len) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the identity header \"%V\" must start with "
                               "the identity prefix \"%V\", or clients "
                               "could send their own", names[k],
                               &tmcf->prefix);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_ent_tenant_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_ent_tenant_srv_conf_t  *tscf;

    tscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ent_tenant_srv_conf_t));
    if (tscf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     tscf->bases = NULL;
     */

    tscf->enable = NGX_CONF_UNSET;
    tscf->unknown = NGX_CONF_UNSET_UINT;
    tscf->deactivated = NGX_CONF_UNSET_UINT;
    tscf->retry_after = NGX_CONF_UNSET_UINT;
    tscf->json_prefixes = NGX_CONF_UNSET_PTR;

    return tscf;
}


static char *
ngx_http_ent_tenant_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ent_tenant_srv_conf_t *prev = parent;
    ngx_http_ent_tenant_srv_conf_t *conf = child;

    ngx_str_t                        *s;
    ngx_http_ent_tenant_main_conf_t  *tmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->unknown, prev->unknown,
                              NGX_HTTP_NOT_FOUND);
    ngx_conf_merge_uint_value(conf->deactivated, prev->deactivated,
                              NGX_HTTP_NOT_FOUND);
    ngx_conf_merge_uint_value(conf->retry_after, prev->retry_after, 300);
    ngx_conf_merge_ptr_value(conf->json_prefixes, prev->json_prefixes, NULL);

    if (conf->bases == NULL) {
        conf->bases = prev->bases;
    }

    if (conf->json_prefixes == NULL) {
        conf->json_prefixes = ngx_array_create(cf->pool, 2,
                                               sizeof(ngx_str_t));
        if (conf->json_prefixes == NULL) {
            return NGX_CONF_ERROR;
        }

        s = ngx_array_push_n(conf->json_prefixes, 2);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_str_set(&s[0], "/api/");
        ngx_str_set(&s[1], "/scim/");
    }

    if (conf->enable) {
        tmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_ent_tenant_module);
        tmcf->used = 1;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_ent_tenant_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ent_tenant_loc_conf_t  *tlcf;

    tlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ent_tenant_loc_conf_t));
    if (tlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     tlcf->features = NULL;
     *     tlcf->csp_report_uri = { 0, NULL };
     *     tlcf->hsts = { 0, NULL };
     *     tlcf->hsts_preloaded = { 0, NULL };
     *     tlcf->frame_options = { 0, NULL };
     *     tlcf->content_type_options = { 0, NULL };
     *     tlcf->referrer_policy = { 0, NULL };
     *     tlcf->permissions_policy = { 0, NULL };
     *     tlcf->coop = { 0, NULL };
     *     tlcf->corp = { 0, NULL };
     */

    tlcf->headers = NGX_CONF_UNSET;
    tlcf->csp = NGX_CONF_UNSET_PTR;
    tlcf->csp_default = NGX_CONF_UNSET;
    tlcf->csp_report_only = NGX_CONF_UNSET;
    tlcf->hsts_preload = NGX_CONF_UNSET;
    tlcf->upstream_headers = NGX_CONF_UNSET_UINT;

    return tlcf;
}


static char *
ngx_http_ent_tenant_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ent_tenant_loc_conf_t *prev = parent;
    ngx_http_ent_tenant_loc_conf_t *conf = child;

    ngx_str_t                          s;
    ngx_http_compile_complex_value_t   ccv;

    /* each header merges on its own: no add_header all-or-nothing */

    ngx_conf_merge_value(conf->headers, prev->headers, 1);
    /* the policy, and whether it is the default one (see below) */

    if (conf->csp == NGX_CONF_UNSET_PTR) {
        ngx_conf_merge_value(conf->csp_default, prev->csp_default, 0);
    }

    ngx_conf_merge_ptr_value(conf->csp, prev->csp, NULL);
    ngx_conf_init_value(conf->csp_default, 0);

    ngx_conf_merge_value(conf->csp_report_only, prev->csp_report_only, 0);
    ngx_conf_merge_str_value(conf->csp_report_uri, prev->csp_report_uri, "");
    ngx_conf_merge_str_value(conf->hsts, prev->hsts,
                             "max-age=31536000; includeSubDomains");
    ngx_conf_merge_value(conf->hsts_preload, prev->hsts_preload, 0);
    ngx_conf_merge_str_value(conf->frame_options, prev->frame_options,
                             "SAMEORIGIN");
    ngx_conf_merge_str_value(conf->content_type_options,
                             prev->content_type_options, "nosniff");
    ngx_conf_merge_str_value(conf->referrer_policy, prev->referrer_policy,
                             "strict-origin-when-cross-origin");
    ngx_conf_merge_str_value(conf->permissions_policy,
                             prev->permissions_policy,
                             NGX_HTTP_ENT_DEFAULT_PERMISSIONS);
    ngx_conf_merge_str_value(conf->coop, prev->coop, "same-origin");
    ngx_conf_merge_str_value(conf->corp, prev->corp, "same-site");
    ngx_conf_merge_uint_value(conf->upstream_headers, prev->upstream_headers,
                              NGX_HTTP_ENT_UPSTREAM_OVERRIDE);

    /* "off" is an empty value, decided here rather than per response */

    ngx_http_ent_tenant_off(&conf->hsts);
    ngx_http_ent_tenant_off(&conf->frame_options);
    ngx_http_ent_tenant_off(&conf->content_type_options);
    ngx_http_ent_tenant_off(&conf->referrer_policy);
    ngx_http_ent_tenant_off(&conf->permissions_policy);
    ngx_http_ent_tenant_off(&conf->coop);
    ngx_http_ent_tenant_off(&conf->corp);

    if (conf->hsts_preload && conf->hsts.len) {
        conf->hsts_preloaded.len = conf->hsts.len + sizeof("; preload") - 1;
        conf->hsts_preloaded.data = ngx_pnalloc(cf->pool,
                                                conf->hsts_preloaded.len);
        if (conf->hsts_preloaded.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(ngx_cpymem(conf->hsts_preloaded.data, conf->hsts.data,
                              conf->hsts.len),
                   "; preload", sizeof("; preload") - 1);
    }

    if (conf->features == NULL) {
        conf->features = prev->features;
    }

    if (conf->csp == NULL) {
        /* the default policy, compiled once per level that lacks one */

        conf->csp = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (conf->csp == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_str_set(&s, NGX_HTTP_ENT_DEFAULT_CSP);

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &s;
        ccv.complex_value = conf->csp;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        prev->csp = conf->csp;
        prev->csp_default = 1;
        conf->csp_default = 1;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_ent_tenant_off(ngx_str_t *value)
{
    if (value->len == 3 && ngx_strncmp(value->data, "off", 3) == 0) {
        value->len = 0;
    }
}


static char *
ngx_http_ent_tenant_base_domain(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_tenant_srv_conf_t *tscf = conf;

    u_char      buf[NGX_ENT_HOST_MAX + 8];
    size_t      n;
    ngx_str_t  *value, *base, tmp;
    ngx_uint_t  i, j;

    if (tscf->bases) {
        return "is duplicate";
    }

    tscf->bases = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                   sizeof(ngx_str_t));
    if (tscf->bases == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len > NGX_ENT_HOST_MAX
            || ngx_ent_host_normalize(value[i].data, value[i].len, buf, &n)
               != NGX_ENT_HOST_OK
            || n != value[i].len
            || ngx_strncmp(buf, value[i].data, n) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid domain \"%V\" in \"%V\" directive, "
                               "expected a lowercase name such as "
                               "\"example.com\"", &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        base = ngx_array_push(tscf->bases);
        if (base == NULL) {
            return NGX_CONF_ERROR;
        }

        *base = value[i];
    }

    /* longest first: the longest match wins */

    base = tscf->bases->elts;

    for (i = 1; i < tscf->bases->nelts; i++) {
        for (j = i; j > 0 && base[j].len > base[j - 1].len; j--) {
            tmp = base[j];
            base[j] = base[j - 1];
            base[j - 1] = tmp;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_tenant_unknown(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ent_tenant_srv_conf_t *tscf = conf;

    ngx_str_t  *value;
    ngx_int_t   n;

    if (tscf->unknown != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "pass") == 0) {
        tscf->unknown = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);

    if (n != NGX_HTTP_NOT_FOUND && n != 410 && n != NGX_HTTP_FORBIDDEN
        && n != NGX_HTTP_BAD_REQUEST)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "it must be \"pass\", 400, 403, 404 or 410",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    tscf->unknown = n;

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_tenant_header_name(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ent_tenant_main_conf_t *tmcf = conf;

    ngx_str_t   *value, *name;
    ngx_uint_t   i;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "id") == 0) {
        name = &tmcf->header_id;

    } else if (ngx_strcmp(value[1].data, "code") == 0) {
        name = &tmcf->header_code;

    } else if (ngx_strcmp(value[1].data, "tier") == 0) {
        name = &tmcf->header_tier;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid field \"%V\" in \"%V\" directive, "
                           "it must be \"id\", \"code\" or \"tier\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < value[2].len; i++) {
        if (!((value[2].data[i] >= 'a' && value[2].data[i] <= 'z')
              || (value[2].data[i] >= 'A' && value[2].data[i] <= 'Z')
              || (value[2].data[i] >= '0' && value[2].data[i] <= '9')
              || value[2].data[i] == '-'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid header name \"%V\" in \"%V\" "
                               "directive", &value[2], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    *name = value[2];

    return NGX_CONF_OK;
}


static char *
ngx_http_ent_tenant_require_feature(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ent_tenant_loc_conf_t *tlcf = conf;

    ngx_str_t   *value, *f;
    ngx_uint_t   i, j;

    if (tlcf->features) {
        return "is duplicate";
    }

    tlcf->features = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                      sizeof(ngx_str_t));
    if (tlcf->features == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        for (j = 0; j < value[i].len; j++) {
            if (!((value[i].data[j] >= 'a' && value[i].data[j] <= 'z')
                  || (j > 0 && ((value[i].data[j] >= '0'
                                 && value[i].data[j] <= '9')
                                || value[i].data[j] == '_'))))
            {
                break;
            }
        }

        if (value[i].len == 0 || value[i].len > 64 || j != value[i].len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid feature \"%V\" in \"%V\" directive, "
                               "expected a name such as \"api_ai\"",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        f = ngx_array_push(tlcf->features);
        if (f == NULL) {
            return NGX_CONF_ERROR;
        }

        *f = value[i];
    }

    return NGX_CONF_OK;
}


/* nginx's enum and number slots, with errors that name the directive */

static char *
ngx_http_ent_tenant_enum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t        *value;
    ngx_uint_t       *np, i;
    ngx_conf_enum_t  *e;

    np = (ngx_uint_t *) ((char *) conf + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    e = cmd->post;

    for (i = 0; e[i].name.len; i++) {
        if (e[i].name.len == value[1].len
            && ngx_strcasecmp(e[i].name.data, value[1].data) == 0)
        {
            *np = e[i].value;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, "
                       "it must be \"%V\" or \"%V\"", &value[1],
                       &cmd->name, &e[0].name, &e[1].name);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_ent_tenant_seconds(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_int_t               n;
    ngx_str_t              *value;
    ngx_uint_t             *np;
    ngx_conf_num_bounds_t  *b;

    np = (ngx_uint_t *) ((char *) conf + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    b = cmd->post;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n == NGX_ERROR || n < b->low || n > b->high) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "it must be a number of seconds from %i to %i",
                           &value[1], &cmd->name, b->low, b->high);
        return NGX_CONF_ERROR;
    }

    *np = n;

    return NGX_CONF_OK;
}


/* variables */


static ngx_int_t
ngx_http_ent_tenant_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_ent_tenant_vars; v->name.len; v++) {
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
ngx_http_ent_tenant_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                  *s;
    ngx_http_ent_tenant_ctx_t  *ctx;

    ctx = ngx_http_ent_tenant_get_ctx(r);

    if (ctx == NULL || ctx->state != NGX_HTTP_ENT_TENANT_RESOLVED) {
        /* no tenant (yet, or a pass-through): empty, not "not found" */
        v->len = 0;
        v->data = (u_char *) "";
        v->valid = 1;
        v->no_cacheable = 1;
        v->not_found = 0;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((u_char *) &ctx->tenant + data);

    v->len = s->len;
    v->data = s->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ent_tenant_custom_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ent_tenant_ctx_t  *ctx;

    ctx = ngx_http_ent_tenant_get_ctx(r);

    v->len = 1;
    v->data = (u_char *) ((ctx && ctx->state == NGX_HTTP_ENT_TENANT_RESOLVED
                           && ctx->tenant.custom_domain) ? "1" : "0");
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* the context, kept in a pool cleanup to survive internal redirects */


ngx_http_ent_tenant_ctx_t *
ngx_http_ent_tenant_get_ctx(ngx_http_request_t *r)
{
    return ngx_ent_ctx_get(r, &ngx_http_ent_tenant_module,
                           ngx_http_ent_tenant_cleanup);
}


static ngx_http_ent_tenant_ctx_t *
ngx_http_ent_tenant_new_ctx(ngx_http_request_t *r)
{
    return ngx_ent_ctx_new(r, &ngx_http_ent_tenant_module,
                           sizeof(ngx_http_ent_tenant_ctx_t),
                           ngx_http_ent_tenant_cleanup);
}


static void
ngx_http_ent_tenant_cleanup(void *data)
{
    /* only a marker: the context lives in the pool */
}


/* resolution */


static ngx_int_t
ngx_http_ent_tenant_handler(ngx_http_request_t *r)
{
    u_char                           *host;
    size_t                            hlen, clen;
    ngx_int_t                         rc, hrc;
    ngx_str_t                         key, value, params[2], *bases;
    ngx_uint_t                        i;
    const u_char                     *code;
    ngx_ent_cache_fill_t              fill;
    ngx_http_ent_tenant_ctx_t        *ctx;
    ngx_http_ent_tenant_srv_conf_t   *tscf;
    ngx_http_ent_tenant_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_tenant_module);

    ctx = ngx_http_ent_tenant_get_ctx(r);

    if (ctx) {
        if (ctx->state == NGX_HTTP_ENT_TENANT_WAITING) {
            return NGX_DONE;
        }

        if (ctx->state != NGX_HTTP_ENT_TENANT_NONE) {
            /* after an internal redirect: decided already */
            return NGX_DECLINED;
        }
    }

    /* once per request: internal redirects and subrequests share them */

    if (tmcf->strip && ngx_http_ent_tenant_strip_once(r, tmcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tscf = ngx_http_get_module_srv_conf(r, ngx_http_ent_tenant_module);

    if (!tscf->enable || r != r->main) {
        return NGX_DECLINED;
    }

    if (ctx == NULL) {
        ctx = ngx_http_ent_tenant_new_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* nginx has validated and lowercased it already; we are stricter */

        host = ngx_pnalloc(r->pool, r->headers_in.server.len + 1);
        if (host == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        hrc = ngx_ent_host_normalize(r->headers_in.server.data,
                                     r->headers_in.server.len, host, &hlen);

        switch (hrc) {
        case NGX_ENT_HOST_OK:
            break;

        case NGX_ENT_HOST_IP:
            /* decided: an error_page's redirect passes as unknown */
            ctx->state = NGX_HTTP_ENT_TENANT_UNKNOWN;

            if (tscf->unknown == 0) {
                /* "ent_tenant_unknown pass": a health check by address */
                return NGX_DECLINED;
            }

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ent tenant: an IP address as host");

            return ngx_http_ent_tenant_page(r, ctx, NGX_HTTP_BAD_REQUEST,
                       "invalid_host", "Bad request",
                       "Use the organization's address, not an IP address.",
                       NULL);

        default:
            ctx->state = NGX_HTTP_ENT_TENANT_UNKNOWN;

            if (tscf->unknown == 0 && hrc == NGX_ENT_HOST_EMPTY) {
                /* HTTP/1.0 without Host; a malformed one is still 400 */
                return NGX_DECLINED;
            }

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ent tenant: a missing or malformed host");
            return ngx_http_ent_tenant_page(r, ctx, NGX_HTTP_BAD_REQUEST,
                       "invalid_host", "Bad request",
                       "The request names no valid host.", NULL);
        }

        ctx->host.data = host;
        ctx->host.len = hlen;
    }

    params[0] = ctx->host;
    params[1].data = NULL;
    params[1].len = 0;

    if (tscf->bases) {
        bases = tscf->bases->elts;

        for (i = 0; i < tscf->bases->nelts; i++) {
            if (ngx_ent_host_code(ctx->host.data, ctx->host.len,
                                  bases[i].data, bases[i].len, &code, &clen))
            {
                params[1].data = (u_char *) code;
                params[1].len = clen;
                break;
            }
        }
    }

    fill.stmt = tmcf->stmt;
    fill.params = params;
    fill.transform = ngx_http_ent_tenant_compile;
    fill.flags = NGX_ENT_CACHE_STALE_OK;

    /*
     * The answer depends on the host and on whether this server's base
     * domains give it a code: servers of other bases share the zone, so a
     * host looked up without a code ("@host") is another key
     */

    key = ctx->host;

    if (params[1].len == 0) {
        key.data = ngx_pnalloc(r->pool, ctx->host.len + 1);
        if (key.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        key.data[0] = '@';
        ngx_memcpy(key.data + 1, ctx->host.data, ctx->host.len);
        key.len = ctx->host.len + 1;
    }

    rc = ngx_ent_cache_fetch(r, tmcf->cache, &key, &fill, &value,
                             ngx_http_ent_tenant_filled, r);

    switch (rc) {

    case NGX_OK:
        if (ngx_http_ent_tenant_decode(&value, &ctx->tenant) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ent tenant: a cached record for \"%V\" is "
                          "malformed", &ctx->host);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->state = NGX_HTTP_ENT_TENANT_RESOLVED;
        break;

    case NGX_DECLINED:
        ctx->state = NGX_HTTP_ENT_TENANT_UNKNOWN;
        break;

    case NGX_AGAIN:
        if (++ctx->waits > NGX_HTTP_ENT_MAX_WAITS) {
            goto unavailable;
        }

        ctx->state = NGX_HTTP_ENT_TENANT_WAITING;
        return ngx_ent_phase_wait(r);

    case NGX_BUSY:
        goto unavailable;

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ent_tenant_decide(r, ctx);

unavailable:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "ent tenant: \"%V\" could not be resolved, "
                  "PostgreSQL is unavailable", &ctx->host);

    ctx->state = NGX_HTTP_ENT_TENANT_UNKNOWN;
    r->headers_out.status = NGX_HTTP_SERVICE_UNAVAILABLE;

    return ngx_http_ent_tenant_page(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "unavailable", "Temporarily unavailable",
                                    "Please try again in a moment.", NULL);
}


static void
ngx_http_ent_tenant_filled(ngx_ent_op_t *op)
{
    ngx_http_request_t         *r;
    ngx_http_ent_tenant_ctx_t  *ctx;

    r = op->data;

    ctx = ngx_http_ent_tenant_get_ctx(r);

    if (ctx) {
        /* ask again: the answer is in the cache, or the error mark is */
        ctx->state = NGX_HTTP_ENT_TENANT_NONE;
    }

    ngx_ent_phase_resume(r);
}


static ngx_int_t
ngx_http_ent_tenant_decide(ngx_http_request_t *r,
    ngx_http_ent_tenant_ctx_t *ctx)
{
    ngx_http_ent_tenant_t            *t;
    ngx_http_ent_tenant_srv_conf_t   *tscf;
    ngx_http_ent_tenant_main_conf_t  *tmcf;

    tscf = ngx_http_get_module_srv_conf(r, ngx_http_ent_tenant_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_tenant_module);

    if (ctx->state == NGX_HTTP_ENT_TENANT_UNKNOWN) {
        if (tscf->unknown == 0) {
            return NGX_DECLINED;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ent tenant: no tenant for \"%V\"", &ctx->host);

        return ngx_http_ent_tenant_page(r, ctx, tscf->unknown,
                                        "unknown_tenant", "Not found",
                                        "There is no organization at this "
                                        "address.", NULL);
    }

    t = &ctx->tenant;

    switch (t->status) {

    case NGX_HTTP_ENT_SUSPENDED:
        return ngx_http_ent_tenant_page(r, ctx, NGX_HTTP_FORBIDDEN,
                                        "tenant_suspended", "Suspended",
                                        "This organization's access is "
                                        "suspended. Contact its "
                                        "administrator.", NULL);

    case NGX_HTTP_ENT_DEACTIVATED:
        return ngx_http_ent_tenant_page(r, ctx, tscf->deactivated,
                                        "tenant_deactivated", "Not found",
                                        "This organization no longer "
                                        "exists here.", NULL);

    default:
        break;
    }

    /* the tenant's own maintenance, or the platform's */

    if (t->status == NGX_HTTP_ENT_MAINTENANCE || tmcf->maintenance) {
        return ngx_http_ent_tenant_page(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "maintenance", "Maintenance",
                                        "Scheduled maintenance is in "
                                        "progress. Please come back soon.",
                                        NULL);
    }

    if (ngx_http_ent_tenant_identity(r, tmcf, t) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


/* allow-lists and feature gates, after realip */


static ngx_int_t
ngx_http_ent_tenant_access_handler(ngx_http_request_t *r)
{
    u_char                          *p, *last;
    ngx_str_t                       *f;
    ngx_str_t                        d[2];
    ngx_uint_t                       i, allowed;
    struct sockaddr_in              *sin;
    ngx_ent_audit_event_t            ev;
    ngx_http_ent_tenant_t           *t;
    ngx_http_ent_tenant_ctx_t       *ctx;
    ngx_http_ent_tenant_loc_conf_t  *tlcf;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6             *sin6;
#endif

    ctx = ngx_http_ent_tenant_get_ctx(r);

    if (ctx && ctx->denied) {
        /* a denial's error_page passes the access phase again: decided */
        return NGX_DECLINED;
    }

    if (ctx == NULL || ctx->state != NGX_HTTP_ENT_TENANT_RESOLVED) {

        /*
         * no tenant ("ent_tenant_unknown pass", a server without tenants):
         * a gated feature is nobody's, but a page for another error
         * (error_page 404) is served as it is
         */

        tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_tenant_module);

        if (tlcf->features == NULL || r->error_page) {
            return NGX_DECLINED;
        }

        if (ctx == NULL) {
            ctx = ngx_http_ent_tenant_new_ctx(r);
            if (ctx == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        f = tlcf->features->elts;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ent tenant: feature \"%V\" is required and the "
                      "request has no tenant", &f[0]);

        return ngx_http_ent_tenant_feature_off(r, ctx, &f[0]);
    }

    t = &ctx->tenant;

    if (t->has_allowlist) {
        allowed = 0;

        switch (r->connection->sockaddr->sa_family) {

        case AF_INET:
            sin = (struct sockaddr_in *) r->connection->sockaddr;
            allowed = ngx_ent_ipset_match(t->v4, t->nv4, 4,
                                          (u_char *) &sin->sin_addr);
            break;

#if (NGX_HAVE_INET6)
        case AF_INET6:
            sin6 = (struct sockaddr_in6 *) r->connection->sockaddr;

            if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
                allowed = ngx_ent_ipset_match(t->v4, t->nv4, 4,
                                              sin6->sin6_addr.s6_addr + 12);

            } else {
                allowed = ngx_ent_ipset_match(t->v6, t->nv6, 16,
                                              sin6->sin6_addr.s6_addr);
            }

            break;
#endif

        default:
            /* a unix socket: the proxy in front decides (realip) */
            allowed = 0;
        }

        if (!allowed) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ent tenant: %V is not on the allow-list of "
                          "tenant \"%V\"", &r->connection->addr_text,
                          &t->code);

            ngx_memzero(&ev, sizeof(ngx_ent_audit_event_t));
            ev.tenant = t->id;
            ev.actor = r->connection->addr_text;
            ev.actor_type = "anonymous";
            ev.action = "ip.denied";
            ev.result = "failure";
            ngx_str_set(&ev.target_type, "tenant");
            ev.target_id = t->code;
            ngx_str_set(&ev.reason, "client address not on the allow-list");
            ngx_str_set(&d[0], "uri");
            d[1] = r->uri;
            ev.details = d;
            ev.ndetails = 1;

            ngx_ent_audit(r, &ev);

            return ngx_http_ent_tenant_deny(r, ctx,
                       ngx_http_ent_tenant_page(r, ctx, NGX_HTTP_FORBIDDEN,
                                                "ip_not_allowed", "Forbidden",
                                                "This organization only "
                                                "allows access from its own "
                                                "networks.", NULL));
        }
    }

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_tenant_module);

    if (tlcf->features == NULL) {
        return NGX_DECLINED;
    }

    f = tlcf->features->elts;

    for (i = 0; i < tlcf->features->nelts; i++) {

        /* t->features: sorted, comma-separated names */

        p = t->features.data;
        last = p + t->features.len;

        while (p < last) {
            if ((size_t) (last - p) >= f[i].len
                && ngx_strncmp(p, f[i].data, f[i].len) == 0
                && (p + f[i].len == last || p[f[i].len] == ','))
            {
                break;
            }

            p = ngx_strlchr(p, last, ',');
            p = p ? p + 1 : last;
        }

        if (p >= last) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ent tenant: feature \"%V\" is off for tenant "
                          "\"%V\" (tier \"%V\")", &f[i], &t->code, &t->tier);

            return ngx_http_ent_tenant_feature_off(r, ctx, &f[i]);
        }
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ent_tenant_feature_off(ngx_http_request_t *r,
    ngx_http_ent_tenant_ctx_t *ctx, ngx_str_t *feature)
{
    return ngx_http_ent_tenant_deny(r, ctx,
               ngx_http_ent_tenant_page(r, ctx, NGX_HTTP_FORBIDDEN,
                                        "feature_not_available",
                                        "Not available",
                                        "This feature is not part of the "
                                        "organization's plan.", feature));
}


static ngx_int_t
ngx_http_ent_tenant_deny(ngx_http_request_t *r, ngx_http_ent_tenant_ctx_t *ctx,
    ngx_int_t rc)
{
    /*
     * In the access phase NGX_OK means "allowed", and under "satisfy any"
     * another module's yes would override our status: the tenant's policy
     * is not one vote among others, so the request ends here, with our
     * page or, for an error_page, with the status
     */

    ctx->denied = 1;

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/* headers to the upstream */


/*
 * A request nginx refuses before its phases (TRACE, a bad Transfer-Encoding,
 * headers too large) may enter them first through an error_page: as an
 * internal redirect, or in a named location, which skips the server's
 * rewrite phase.  So the identity headers are removed wherever a request
 * first enters the phases, once: a mark in the pool (which internal
 * redirects keep) tells a later pass that the headers now there are the
 * modules' own.
 */

static ngx_int_t
ngx_http_ent_tenant_rewrite_handler(ngx_http_request_t *r)
{
    ngx_http_ent_tenant_main_conf_t  *tmcf;

    if (!r->internal) {
        /* the server's rewrite phase has run */
        return NGX_DECLINED;
    }

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_tenant_module);

    if (tmcf->strip && ngx_http_ent_tenant_strip_once(r, tmcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ent_tenant_strip_once(ngx_http_request_t *r,
    ngx_http_ent_tenant_main_conf_t *tmcf)
{
    ngx_pool_cleanup_t  *cln;

    /* a short list: a fresh request has few cleanups, if any */

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_ent_tenant_stripped) {
            return NGX_OK;
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_ent_tenant_stripped;

    return ngx_http_ent_tenant_strip(r, tmcf);
}


static void
ngx_http_ent_tenant_stripped(void *data)
{
    /* a mark only */
}


static ngx_int_t
ngx_http_ent_tenant_strip(ngx_http_request_t *r,
    ngx_http_ent_tenant_main_conf_t *tmcf)
{
    u_char            c;
    ngx_uint_t        i, j, found, total;
    ngx_list_t        list;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    /*
     * The common case finds nothing and costs one pass.  nginx 1.22 has no
     * way to mark a request header as removed, so the list is rebuilt
     * without the identity headers; they are never among the headers that
     * r->headers_in points to, so those pointers stay valid.
     */

    found = 0;
    total = 0;
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

        total++;

        if (h[i].key.len < tmcf->prefix.len) {
            continue;
        }

        for (j = 0; j < tmcf->prefix.len; j++) {
            c = h[i].key.data[j];
            c = (c == '_') ? '-' : ngx_tolower(c);

            if (c != tmcf->prefix.data[j]) {
                break;
            }
        }

        if (j == tmcf->prefix.len) {
            found++;
            h[i].hash = 0;
        }
    }

    if (found == 0) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ent: %ui client-sent identity header%s removed", found,
                  found > 1 ? "s" : "");

    /* room for the trusted headers set next */

    if (ngx_list_init(&list, r->pool, total + 3, sizeof(ngx_table_elt_t))
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

        if (h[i].hash == 0) {
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


static ngx_int_t
ngx_http_ent_tenant_identity(ngx_http_request_t *r,
    ngx_http_ent_tenant_main_conf_t *tmcf, ngx_http_ent_tenant_t *t)
{
    ngx_str_t        *values[3];
    ngx_uint_t        i, k;
    ngx_table_elt_t  *h;

    values[0] = &t->id;
    values[1] = &t->code;
    values[2] = &t->tier;

    for (k = 0; k < 3; k++) {

        /* checked by the schema, and once more: no CR, LF, NUL */

        for (i = 0; i < values[k]->len; i++) {
            if (values[k]->data[i] < 0x20 || values[k]->data[i] == 0x7f) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "ent tenant: \"%V\" of tenant \"%V\" holds a "
                              "control character, not sent",
                              &tmcf->identity[k].key, &t->code);
                return NGX_ERROR;
            }
        }

        h = ngx_list_push(&r->headers_in.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = tmcf->identity[k];
        h->value = *values[k];
    }

    return NGX_OK;
}


/* platform-wide maintenance: the Redis key, polled by every worker */


static ngx_int_t
ngx_http_ent_tenant_init_process(ngx_cycle_t *cycle)
{
    ngx_http_ent_tenant_main_conf_t  *tmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    if (cycle->conf_ctx == NULL
        || cycle->conf_ctx[ngx_http_module.index] == NULL)
    {
        return NGX_OK;
    }

    tmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ent_tenant_module);

    if (tmcf == NULL || !tmcf->used || !tmcf->redis) {
        return NGX_OK;
    }

    tmcf->poll.handler = ngx_http_ent_tenant_poll;
    tmcf->poll.data = tmcf;
    tmcf->poll.log = cycle->log;
    tmcf->poll.cancelable = 1;

    ngx_add_timer(&tmcf->poll, 1);

    return NGX_OK;
}


static void
ngx_http_ent_tenant_poll(ngx_event_t *ev)
{
    ngx_str_t                         argv[2];
    ngx_ent_redis_cmd_t               cmd;
    ngx_http_ent_tenant_main_conf_t  *tmcf;

    tmcf = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_str_set(&argv[0], "GET");
    ngx_str_set(&argv[1], NGX_HTTP_ENT_MAINTENANCE_KEY);

    cmd.argc = 2;
    cmd.argv = argv;

    if (ngx_ent_redis_run(NULL, &cmd, 1, ngx_http_ent_tenant_polled, tmcf)
        != NGX_AGAIN)
    {
        /* Redis is down: keep the last known state, ask again later */
        ngx_add_timer(&tmcf->poll, tmcf->poll_interval);
    }
}


static void
ngx_http_ent_tenant_polled(ngx_ent_op_t *op)
{
    ngx_int_t                         n;
    redisReply                       *reply;
    ngx_http_ent_tenant_main_conf_t  *tmcf;

    tmcf = op->data;

    if (op->status == NGX_ENT_OK && op->nreplies == 1) {
        reply = op->replies[0];

        if (reply->type == REDIS_REPLY_NIL
            || (reply->type == REDIS_REPLY_STRING
                && (reply->len == 0
                    || (reply->len == 3
                        && ngx_strncmp(reply->str, "off", 3) == 0))))
        {
            tmcf->maintenance = 0;

        } else if (reply->type == REDIS_REPLY_STRING) {
            n = ngx_atoi((u_char *) reply->str, reply->len);
            tmcf->maintenance = (n > 0 && n <= 86400) ? (ngx_uint_t) n : 1;
        }
    }

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(&tmcf->poll, tmcf->poll_interval);
    }
}
