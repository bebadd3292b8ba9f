/*
 * What the tenant module offers the other ngx_ent modules.  Declared weak:
 * a module loaded without the tenant module (or before it) sees NULL and
 * answers on its own.
 */

#ifndef _NGX_ENT_TENANT_API_H_INCLUDED_
#define _NGX_ENT_TENANT_API_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#ifdef NGX_ENT_TENANT_SELF
#define NGX_ENT_TENANT_API
#else
#define NGX_ENT_TENANT_API  __attribute__((weak))
#endif


/*
 * The tenant's white-label HTML page (display name, brand colour, logo,
 * all HTML-escaped) for an error another module decided: a 429, a login
 * error.  NGX_DECLINED when the request wants JSON (an API path or
 * Accept), when ent_tenant is off in the server, or when the tenant module
 * is not loaded: the caller then answers in its own JSON.  Otherwise what
 * a phase handler returns (the status when an error_page of the location
 * takes over, NGX_DONE or an error once the page is sent).
 */
ngx_int_t ngx_http_ent_tenant_html_page(ngx_http_request_t *r,
    ngx_uint_t status, const char *error, const char *title,
    const char *text) NGX_ENT_TENANT_API;

#define ngx_http_ent_tenant_html(r, status, error, title, text)              \
    (ngx_http_ent_tenant_html_page == NULL ? NGX_DECLINED                    \
     : ngx_http_ent_tenant_html_page(r, status, error, title, text))


#endif /* _NGX_ENT_TENANT_API_H_INCLUDED_ */
