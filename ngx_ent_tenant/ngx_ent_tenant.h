/*
 * ngx_http_ent_tenant_module: definitions shared by its files.
 *
 *   ngx_http_ent_tenant_module.c  directives, resolution, access, headers
 *                                 to the upstream, platform maintenance
 *   ngx_ent_tenant_record.c       the compiled record kept in the cache
 *   ngx_ent_tenant_output.c       pages and security headers
 *   ngx_ent_host.c                I/O-free Host, CIDR and escaping helpers
 */

#ifndef _NGX_ENT_TENANT_H_INCLUDED_
#define _NGX_ENT_TENANT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ent_core.h"
#include "ngx_ent_host.h"


#define NGX_HTTP_ENT_TENANT_NONE         0
#define NGX_HTTP_ENT_TENANT_WAITING      1
#define NGX_HTTP_ENT_TENANT_RESOLVED     2
#define NGX_HTTP_ENT_TENANT_UNKNOWN      3

#define NGX_HTTP_ENT_ACTIVE              0
#define NGX_HTTP_ENT_SUSPENDED           1
#define NGX_HTTP_ENT_DEACTIVATED         2
#define NGX_HTTP_ENT_MAINTENANCE         3

#define NGX_HTTP_ENT_UPSTREAM_OVERRIDE   0
#define NGX_HTTP_ENT_UPSTREAM_KEEP       1

#define NGX_HTTP_ENT_NCOLS               19
#define NGX_HTTP_ENT_COL_ALLOW           8
#define NGX_HTTP_ENT_MAX_WAITS           3

#define NGX_HTTP_ENT_MAINTENANCE_KEY     "ent:maintenance"


typedef struct {
    ngx_str_t                    id;
    ngx_str_t                    code;
    ngx_str_t                    name;
    ngx_str_t                    status_text;
    ngx_str_t                    tier;
    ngx_str_t                    region;
    ngx_str_t                    upstream;
    ngx_str_t                    features;
    ngx_str_t                    csp_sources;
    ngx_str_t                    csp_report_uri;
    ngx_str_t                    brand_color;
    ngx_str_t                    logo_url;
    ngx_str_t                    parent_id;
    ngx_str_t                    ratelimits;
    ngx_str_t                    billing_anchor;
    ngx_uint_t                   status;
    ngx_uint_t                   has_allowlist;
    const ngx_ent_iprange_t     *v4;
    size_t                       nv4;
    const ngx_ent_iprange_t     *v6;
    size_t                       nv6;
    unsigned                     csp_report_only:1;
    unsigned                     hsts_preload:1;
    unsigned                     custom_domain:1;
} ngx_http_ent_tenant_t;


typedef struct {
    ngx_uint_t                   state;
    ngx_uint_t                   waits;
    ngx_uint_t                   page;       /* we generated the response */
    ngx_uint_t                   denied;     /* by the access checks */
    ngx_str_t                    host;
    ngx_http_ent_tenant_t        tenant;
} ngx_http_ent_tenant_ctx_t;


typedef struct {
    ngx_str_t                    zone;
    ngx_ent_cache_t             *cache;
    ngx_ent_pg_stmt_t           *stmt;
    ngx_flag_t                   strip;
    ngx_str_t                    prefix;
    ngx_str_t                    header_id;
    ngx_str_t                    header_code;
    ngx_str_t                    header_tier;
    ngx_table_elt_t              identity[3];  /* keys, lowercased, hashed */
    ngx_msec_t                   poll_interval;
    ngx_uint_t                   used;
    ngx_uint_t                   redis;

    /* per worker */
    ngx_event_t                  poll;
    ngx_uint_t                   maintenance;  /* Retry-After; 0: none */
} ngx_http_ent_tenant_main_conf_t;


typedef struct {
    ngx_flag_t                   enable;
    ngx_array_t                 *bases;        /* ngx_str_t, longest first */
    ngx_uint_t                   unknown;      /* 0: pass through */
    ngx_uint_t                   deactivated;
    ngx_uint_t                   retry_after;
    ngx_array_t                 *json_prefixes;
} ngx_http_ent_tenant_srv_conf_t;


/*
 * The default Content-Security-Policy: HEAD, the tenant's extra sources
 * ($ent_tenant_csp_sources) after a space when it has some, then TAIL
 */

#define NGX_HTTP_ENT_CSP_HEAD  "default-src 'self'"
#define NGX_HTTP_ENT_CSP_TAIL                                                 \
    "; object-src 'none'; base-uri 'self'; frame-ancestors 'self'; "         \
    "form-action 'self'"


typedef struct {
    ngx_array_t                 *features;     /* ngx_str_t */

    ngx_flag_t                   headers;
    ngx_http_complex_value_t    *csp;
    ngx_flag_t                   csp_default;  /* csp is ours: no script */
    ngx_flag_t                   csp_report_only;
    ngx_str_t                    csp_report_uri;
    ngx_str_t                    hsts;
    ngx_flag_t                   hsts_preload;
    ngx_str_t                    hsts_preloaded; /* hsts "; preload" */
    ngx_str_t                    frame_options;
    ngx_str_t                    content_type_options;
    ngx_str_t                    referrer_policy;
    ngx_str_t                    permissions_policy;
    ngx_str_t                    coop;
    ngx_str_t                    corp;
    ngx_uint_t                   upstream_headers;
} ngx_http_ent_tenant_loc_conf_t;


extern ngx_module_t  ngx_http_ent_tenant_module;


ngx_http_ent_tenant_ctx_t *ngx_http_ent_tenant_get_ctx(ngx_http_request_t *r);

/* ngx_ent_tenant_record.c */
ngx_int_t ngx_http_ent_tenant_compile(ngx_ent_rows_t *rows, ngx_pool_t *pool,
    ngx_str_t *out, ngx_log_t *log);
ngx_int_t ngx_http_ent_tenant_decode(ngx_str_t *value,
    ngx_http_ent_tenant_t *t);

/* ngx_ent_tenant_output.c */
void ngx_http_ent_tenant_output_init(void);
ngx_int_t ngx_http_ent_tenant_page(ngx_http_request_t *r,
    ngx_http_ent_tenant_ctx_t *ctx, ngx_uint_t status, const char *error,
    const char *title, const char *text, ngx_str_t *feature);


#endif /* _NGX_ENT_TENANT_H_INCLUDED_ */
