/*
 * ngx_http_ent_tenant_module: what the edge says itself.
 *
 * Pages: short, white-label (the tenant's name, brand colour and logo,
 * HTML-escaped), JSON for API clients; an error_page wins.  Security
 * headers: added by a header filter to every response, each merged on its
 * own across levels, the upstream's copies kept or replaced.
 */


#include "ngx_ent_tenant.h"
#define NGX_ENT_TENANT_SELF
#include "ngx_ent_tenant_api.h"


#define NGX_HTTP_ENT_PAGE_CSP                                                 \
    "default-src 'none'; img-src https:; style-src 'unsafe-inline'; "        \
    "frame-ancestors 'none'"


static ngx_uint_t ngx_http_ent_tenant_wants_json(ngx_http_request_t *r);
static ngx_uint_t ngx_http_ent_tenant_platform_host(ngx_http_request_t *r,
    ngx_http_ent_tenant_ctx_t *ctx);
static ngx_int_t ngx_http_ent_tenant_header_filter(ngx_http_request_t *r);
typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    value;
} ngx_http_ent_tenant_hdr_t;


static void ngx_http_ent_tenant_add(ngx_http_ent_tenant_hdr_t *hdrs,
    ngx_uint_t *n, const char *name, size_t len, ngx_str_t *value);
static ngx_int_t ngx_http_ent_tenant_emit(ngx_http_request_t *r,
    ngx_http_ent_tenant_loc_conf_t *tlcf, ngx_http_ent_tenant_hdr_t *hdrs,
    ngx_uint_t n);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


void
ngx_http_ent_tenant_output_init(void)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ent_tenant_header_filter;
}


ngx_int_t
ngx_http_ent_tenant_page(ngx_http_request_t *r, ngx_http_ent_tenant_ctx_t *ctx,
    ngx_uint_t status, const char *error, const char *title, const char *text,
    ngx_str_t *feature)
{
    u_char                          *p;
    size_t                           len;
    ngx_int_t                        rc;
    ngx_str_t                        name, code, color, logo;
    ngx_buf_t                       *b;
    ngx_uint_t                       i, json;
    ngx_chain_t                      out;
    ngx_table_elt_t                 *h;
    ngx_http_err_page_t             *err;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_ent_tenant_srv_conf_t  *tscf;
    ngx_http_ent_tenant_main_conf_t *tmcf;

    tscf = ngx_http_get_module_srv_conf(r, ngx_http_ent_tenant_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_ent_tenant_module);

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");

        h->value.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (h->value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->value.len = ngx_sprintf(h->value.data, "%ui",
                                   ngx_strcmp(error, "maintenance") == 0
                                   ? (tmcf->maintenance > 1
                                      ? tmcf->maintenance
                                      : tscf->retry_after)
                                   : 5)
                       - h->value.data;
    }

    /* the operator's error_page wins */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->error_pages) {
        err = clcf->error_pages->elts;

        for (i = 0; i < clcf->error_pages->nelts; i++) {
            if (err[i].status == (ngx_int_t) status) {
                return status;
            }
        }
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    ngx_str_null(&name);
    ngx_str_null(&code);
    ngx_str_null(&color);
    ngx_str_null(&logo);

    if (ctx && ctx->state == NGX_HTTP_ENT_TENANT_RESOLVED) {
        name = ctx->tenant.name;
        code = ctx->tenant.code;
        color = ctx->tenant.brand_color;
        logo = ctx->tenant.logo_url;
    }

    /* a feature gate's answer names the feature and the tier: JSON */

    json = feature || ngx_http_ent_tenant_wants_json(r);

    /*
     * every piece as often as it is written, escaped at its worst: the
     * name twice (title and heading), the title twice, 512 for the markup
     */

    len = 512 + 2 * ngx_strlen(title) + ngx_strlen(text)
          + 2 * ngx_ent_escape_html_size(name.data, name.len)
          + ngx_ent_escape_json_size(code.data, code.len)
          + ngx_ent_escape_html_size(color.data, color.len)
          + ngx_ent_escape_html_size(logo.data, logo.len)
          + (feature ? feature->len
                       + ngx_ent_escape_json_size(ctx->tenant.tier.data,
                                                  ctx->tenant.tier.len)
                     : 0);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;

    if (json) {
        p = ngx_sprintf(p, "{\"error\":\"%s\",\"message\":\"%s\"",
                        error, text);

        if (feature) {
            p = ngx_sprintf(p, ",\"feature\":\"%V\",\"tier\":\"",
                            feature);
            p = (u_char *) ngx_ent_escape_json(p, ctx->tenant.tier.data,
                                               ctx->tenant.tier.len);
            *p++ = '"';
        }

        if (code.len) {
            p = ngx_sprintf(p, ",\"tenant\":\"");
            p = (u_char *) ngx_ent_escape_json(p, code.data, code.len);
            *p++ = '"';
        }

        p = ngx_sprintf(p, "}\n");

        ngx_str_set(&r->headers_out.content_type, "application/json");

    } else {
        p = ngx_sprintf(p, "<!DOCTYPE html>\n<html><head>"
                           "<meta charset=\"utf-8\"><title>");
        if (name.len) {
            p = (u_char *) ngx_ent_escape_html(p, name.data, name.len);
            p = ngx_sprintf(p, " - ");
        }

        p = ngx_sprintf(p, "%s</title></head>\n<body style=\"font-family:"
                           "sans-serif;margin:3em\">", title);

        if (logo.len) {
            p = ngx_sprintf(p, "<img src=\"");
            p = (u_char *) ngx_ent_escape_html(p, logo.data, logo.len);
            p = ngx_sprintf(p, "\" alt=\"\" height=\"48\">");
        }

        p = ngx_sprintf(p, "<h1 style=\"color:");

        if (color.len) {
            p = (u_char *) ngx_ent_escape_html(p, color.data, color.len);

        } else {
            p = ngx_sprintf(p, "#333");
        }

        p = ngx_sprintf(p, "\">");

        if (name.len) {
            p = (u_char *) ngx_ent_escape_html(p, name.data, name.len);
            p = ngx_sprintf(p, ": ");
        }

        p = ngx_sprintf(p, "%s</h1>\n<p>%s</p></body></html>\n", title, text);

        ngx_str_set(&r->headers_out.content_type, "text/html");
    }

    if (p > b->end) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ent tenant: page buffer overrun");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    if (ctx) {
        ctx->page = 1;
    }

    r->headers_out.status = status;
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.charset.len = 0;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_ent_tenant_html_page(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *title, const char *text)
{
    ngx_int_t                        rc;
    ngx_http_ent_tenant_srv_conf_t  *tscf;

    tscf = ngx_http_get_module_srv_conf(r, ngx_http_ent_tenant_module);

    if (tscf == NULL || !tscf->enable
        || ngx_http_ent_tenant_wants_json(r))
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_ent_tenant_page(r, ngx_http_ent_tenant_get_ctx(r), status,
                                  error, title, text, NULL);

    if (rc == (ngx_int_t) status) {
        /* an error_page of the location takes over */
        return rc;
    }

    /* sent (or failed): in PREACCESS and ACCESS, NGX_OK would go on */

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


static ngx_uint_t
ngx_http_ent_tenant_wants_json(ngx_http_request_t *r)
{
    u_char                          *accept, *last;
    ngx_str_t                       *pre;
    ngx_uint_t                       i;
    ngx_list_part_t                 *part;
    ngx_table_elt_t                 *h;
    ngx_http_ent_tenant_srv_conf_t  *tscf;

    tscf = ngx_http_get_module_srv_conf(r, ngx_http_ent_tenant_module);

    pre = tscf->json_prefixes->elts;

    for (i = 0; i < tscf->json_prefixes->nelts; i++) {
        if (r->uri.len >= pre[i].len
            && ngx_strncmp(r->uri.data, pre[i].data, pre[i].len) == 0)
        {
            return 1;
        }
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

        if (h[i].key.len != sizeof("Accept") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Accept",
                               sizeof("Accept") - 1) != 0)
        {
            continue;
        }

        accept = h[i].value.data;
        last = accept + h[i].value.len;

        /* a browser asks for HTML first; an API client for JSON */

        if (ngx_strlcasestrn(accept, last, (u_char *) "text/html", 9 - 1)) {
            return 0;
        }

        return ngx_strlcasestrn(accept, last, (u_char *) "json", 4 - 1)
               != NULL;
    }

    return 0;
}


/*
 * Without a tenant (PostgreSQL away, nginx's own error before the phases):
 * the platform's own host may get HSTS preload, a host that may be a
 * tenant's custom domain may not
 */

static ngx_uint_t
ngx_http_ent_tenant_platform_host(ngx_http_request_t *r,
    ngx_http_ent_tenant_ctx_t *ctx)
{
    size_t                           n;
    ngx_str_t                       *b;
    ngx_uint_t                       i;
    ngx_http_ent_tenant_srv_conf_t  *tscf;

    tscf = ngx_http_get_module_srv_conf(r, ngx_http_ent_tenant_module);

    if (!tscf->enable) {
        /* a server without tenants: the operator's own */
        return 1;
    }

    if (ctx == NULL || ctx->host.len == 0 || tscf->bases == NULL) {
        return 0;
    }

    b = tscf->bases->elts;

    for (i = 0; i < tscf->bases->nelts; i++) {
        if (ctx->host.len < b[i].len) {
            continue;
        }

        n = ctx->host.len - b[i].len;

        if (ngx_strncmp(ctx->host.data + n, b[i].data, b[i].len) == 0
            && (n == 0 || ctx->host.data[n - 1] == '.'))
        {
            return 1;
        }
    }

    return 0;
}


/* security headers, on every response */


static ngx_int_t
ngx_http_ent_tenant_header_filter(ngx_http_request_t *r)
{
    u_char                          *p;
    ngx_str_t                        csp;
    ngx_uint_t                       report_only, preload, n;
    ngx_http_ent_tenant_t           *t;
    ngx_http_ent_tenant_hdr_t        hdrs[8];
    ngx_http_ent_tenant_ctx_t       *ctx;
    ngx_http_ent_tenant_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ent_tenant_module);

    if (!tlcf->headers || r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_ent_tenant_get_ctx(r);
    t = (ctx && ctx->state == NGX_HTTP_ENT_TENANT_RESOLVED) ? &ctx->tenant
                                                            : NULL;
    n = 0;

    /* Content-Security-Policy, or -Report-Only */

    if (ctx && ctx->page) {
        ngx_str_set(&csp, NGX_HTTP_ENT_PAGE_CSP);

    } else if (tlcf->csp_default) {
        /* the default policy, without the script engine */

        if (t == NULL || t->csp_sources.len == 0) {
            ngx_str_set(&csp, NGX_HTTP_ENT_CSP_HEAD NGX_HTTP_ENT_CSP_TAIL);

        } else {
            csp.len = sizeof(NGX_HTTP_ENT_CSP_HEAD " ") - 1
                      + t->csp_sources.len
                      + sizeof(NGX_HTTP_ENT_CSP_TAIL) - 1;

            csp.data = ngx_pnalloc(r->pool, csp.len);
            if (csp.data == NULL) {
                return NGX_ERROR;
            }

            p = ngx_cpymem(csp.data, NGX_HTTP_ENT_CSP_HEAD " ",
                           sizeof(NGX_HTTP_ENT_CSP_HEAD " ") - 1);
            p = ngx_cpymem(p, t->csp_sources.data, t->csp_sources.len);
            ngx_memcpy(p, NGX_HTTP_ENT_CSP_TAIL,
                       sizeof(NGX_HTTP_ENT_CSP_TAIL) - 1);
        }

    } else if (ngx_http_complex_value(r, tlcf->csp, &csp) != NGX_OK) {
        return NGX_ERROR;
    }

    if (csp.len && !(csp.len == 3 && ngx_strncmp(csp.data, "off", 3) == 0)) {
        report_only = tlcf->csp_report_only || (t && t->csp_report_only);

        if ((t && t->csp_report_uri.len) || tlcf->csp_report_uri.len) {
            p = ngx_pnalloc(r->pool, csp.len + sizeof("; report-uri ") - 1
                                     + tlcf->csp_report_uri.len
                                     + (t ? t->csp_report_uri.len : 0));
            if (p == NULL) {
                return NGX_ERROR;
            }

            csp.data = ngx_cpymem(p, csp.data, csp.len);
            csp.data = ngx_cpymem(csp.data, "; report-uri ",
                                  sizeof("; report-uri ") - 1);
            csp.data = (t && t->csp_report_uri.len)
                       ? ngx_cpymem(csp.data, t->csp_report_uri.data,
                                    t->csp_report_uri.len)
                       : ngx_cpymem(csp.data, tlcf->csp_report_uri.data,
                                    tlcf->csp_report_uri.len);
            csp.len = csp.data - p;
            csp.data = p;
        }

        if (report_only) {
            ngx_http_ent_tenant_add(hdrs, &n,
                                    "Content-Security-Policy-Report-Only",
                                    sizeof("Content-Security-Policy-Report-"
                                           "Only") - 1, &csp);

        } else {
            ngx_http_ent_tenant_add(hdrs, &n, "Content-Security-Policy",
                                    sizeof("Content-Security-Policy") - 1,
                                    &csp);
        }
    }

    /* HSTS: over HTTPS only; preload never on a custom domain unasked */

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        preload = tlcf->hsts_preload
                  && (t ? !t->custom_domain || t->hsts_preload
                        : ngx_http_ent_tenant_platform_host(r, ctx));

        ngx_http_ent_tenant_add(hdrs, &n, "Strict-Transport-Security",
                                sizeof("Strict-Transport-Security") - 1,
                                preload ? &tlcf->hsts_preloaded
                                        : &tlcf->hsts);
    }
#else
    (void) preload;
#endif

    ngx_http_ent_tenant_add(hdrs, &n, "X-Frame-Options",
                            sizeof("X-Frame-Options") - 1,
                            &tlcf->frame_options);
    ngx_http_ent_tenant_add(hdrs, &n, "X-Content-Type-Options",
                            sizeof("X-Content-Type-Options") - 1,
                            &tlcf->content_type_options);
    ngx_http_ent_tenant_add(hdrs, &n, "Referrer-Policy",
                            sizeof("Referrer-Policy") - 1,
                            &tlcf->referrer_policy);
    ngx_http_ent_tenant_add(hdrs, &n, "Permissions-Policy",
                            sizeof("Permissions-Policy") - 1,
                            &tlcf->permissions_policy);
    ngx_http_ent_tenant_add(hdrs, &n, "Cross-Origin-Opener-Policy",
                            sizeof("Cross-Origin-Opener-Policy") - 1,
                            &tlcf->coop);
    ngx_http_ent_tenant_add(hdrs, &n, "Cross-Origin-Resource-Policy",
                            sizeof("Cross-Origin-Resource-Policy") - 1,
                            &tlcf->corp);

    if (ngx_http_ent_tenant_emit(r, tlcf, hdrs, n) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static void
ngx_http_ent_tenant_add(ngx_http_ent_tenant_hdr_t *hdrs, ngx_uint_t *n,
    const char *name, size_t len, ngx_str_t *value)
{
    if (value->len == 0) {
        return;
    }

    hdrs[*n].name.data = (u_char *) name;
    hdrs[*n].name.len = len;
    hdrs[*n].value = *value;
    (*n)++;
}


static ngx_int_t
ngx_http_ent_tenant_emit(ngx_http_request_t *r,
    ngx_http_ent_tenant_loc_conf_t *tlcf, ngx_http_ent_tenant_hdr_t *hdrs,
    ngx_uint_t n)
{
    ngx_uint_t        i, k;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    /*
     * One of each: the upstream's copies are kept or replaced, in one pass
     * over its headers; nginx's own responses carry none of these.
     */

    if (r->upstream) {
        part = &r->headers_out.headers.part;
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

            for (k = 0; k < n; k++) {
                if (h[i].key.len != hdrs[k].name.len
                    || ngx_strncasecmp(h[i].key.data, hdrs[k].name.data,
                                       hdrs[k].name.len) != 0)
                {
                    continue;
                }

                if (tlcf->upstream_headers == NGX_HTTP_ENT_UPSTREAM_KEEP) {
                    hdrs[k].value.len = 0;

                } else {
                    h[i].hash = 0;
                }

                break;
            }
        }
    }

    for (k = 0; k < n; k++) {
        if (hdrs[k].value.len == 0) {
            continue;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        h->key = hdrs[k].name;
        h->value = hdrs[k].value;
    }

    return NGX_OK;
}
