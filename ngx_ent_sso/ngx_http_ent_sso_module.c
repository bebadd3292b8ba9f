/*
 * ngx_http_ent_sso_module: SAML 2.0 and OpenID Connect single sign-on, sessions, bearer tokens, authorization.
 *
 * A shell for now: it loads, checks that the core is loaded before it, and
 * registers no directives.  Its issue fills it in.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ent_core.h"


static ngx_int_t ngx_http_ent_sso_preconfiguration(ngx_conf_t *cf);


static ngx_http_module_t  ngx_http_ent_sso_module_ctx = {
    ngx_http_ent_sso_preconfiguration,   /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_ent_sso_module = {
    NGX_MODULE_V1,
    &ngx_http_ent_sso_module_ctx,         /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_ent_sso_preconfiguration(ngx_conf_t *cf)
{
    return ngx_ent_core_check(cf, "ngx_http_ent_sso_module");
}
