/*
 * ngx_http_ent_scim_module: what its files share.
 */

#ifndef _NGX_ENT_SCIM_H_INCLUDED_
#define _NGX_ENT_SCIM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_ent_core.h"
#include "ngx_ent_scim_filter.h"


#define NGX_HTTP_ENT_SCIM_PREFIX     "/scim/v2"
#define NGX_HTTP_ENT_SCIM_MAX_BODY   (1024 * 1024)
#define NGX_HTTP_ENT_SCIM_TYPE       "application/scim+json"
#define NGX_HTTP_ENT_SCIM_USER_URN                                           \
    "urn:ietf:params:scim:schemas:core:2.0:User"

#define NGX_HTTP_ENT_SCIM_GONE       410

#define NGX_HTTP_ENT_SCIM_OP_NONE    0
#define NGX_HTTP_ENT_SCIM_OP_CREATE  1
#define NGX_HTTP_ENT_SCIM_OP_GET     2
#define NGX_HTTP_ENT_SCIM_OP_REPLACE 3
#define NGX_HTTP_ENT_SCIM_OP_DELETE  4
#define NGX_HTTP_ENT_SCIM_OP_LIST    5
#define NGX_HTTP_ENT_SCIM_OP_PATCH   6


typedef struct {
    ngx_ent_cache_t             *tokens;
    ngx_str_t                    tokens_zone;
    ngx_ent_pg_stmt_t           *token_stmt;
    ngx_ent_pg_stmt_t           *create_stmt;
    ngx_ent_pg_stmt_t           *get_stmt;
    ngx_ent_pg_stmt_t           *replace_stmt;
    ngx_ent_pg_stmt_t           *delete_stmt;
    ngx_ent_pg_stmt_t           *list_stmt;
    ngx_ent_pg_stmt_t           *gcreate_stmt;
    ngx_ent_pg_stmt_t           *gget_stmt;
    ngx_ent_pg_stmt_t           *gchange_stmt;
    ngx_ent_pg_stmt_t           *gdelete_stmt;
    ngx_ent_pg_stmt_t           *glist_stmt;
    ngx_uint_t                   max_count;
    ngx_uint_t                   rate;          /* per token, a minute */
    ngx_uint_t                   redis;
    ngx_int_t                    tenant_id_index;
    ngx_uint_t                   used;
} ngx_http_ent_scim_main_conf_t;


typedef struct {
    ngx_flag_t                   enable;
} ngx_http_ent_scim_loc_conf_t;


typedef struct {
    ngx_str_t                    tenant_id;
    ngx_str_t                    token_id;
    ngx_str_t                    digest;        /* hex SHA-256 */
    ngx_str_t                    resource;      /* "Users", ... */
    ngx_str_t                    id;
    ngx_str_t                    body;
    ngx_str_t                    base;          /* scheme://host/scim/v2 */
    ngx_uint_t                   op;
    ngx_uint_t                   phase;
    ngx_str_t                    if_match;      /* "{3,5}"; empty: none */
    ngx_int_t                    if_none_match; /* -1: none */
    ngx_int_t                    answered;      /* what sending returned */
    ngx_int_t                    retry_after;   /* -1: within the rate */
    ngx_uint_t                   status;        /* the function's */
    ngx_str_t                    result;        /* its body */
    ngx_uint_t                   tries;         /* of a PATCH */
    unsigned                     authenticated:1;
    unsigned                     counted:1;
    unsigned                     pending:1;   /* a query or command out */
} ngx_http_ent_scim_ctx_t;


extern ngx_module_t  ngx_http_ent_scim_module;


/* ngx_http_ent_scim_module.c */
ngx_int_t ngx_http_ent_scim_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *scim_type, const char *detail);
ngx_int_t ngx_http_ent_scim_version(ngx_str_t *value);
ngx_str_t *ngx_http_ent_scim_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *out);
void ngx_http_ent_scim_done(ngx_ent_op_t *op);
ngx_int_t ngx_http_ent_scim_query(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx, ngx_ent_pg_stmt_t *stmt,
    ngx_str_t *params);
ngx_int_t ngx_http_ent_scim_conditions(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx);
ngx_uint_t ngx_http_ent_scim_matches(ngx_http_ent_scim_ctx_t *ctx,
    ngx_int_t version);
ngx_int_t ngx_http_ent_scim_list(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx, ent_scim_attr_t *attrs, size_t nattrs,
    ngx_ent_pg_stmt_t *stmt, ngx_str_t *extra);

/* ngx_ent_scim_users.c */
ngx_int_t ngx_http_ent_scim_users(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx);
ngx_int_t ngx_http_ent_scim_patch_start(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx);

/* ngx_ent_scim_groups.c */
ngx_int_t ngx_http_ent_scim_groups(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx);


#endif /* _NGX_ENT_SCIM_H_INCLUDED_ */
