/*
 * ngx_http_ent_scim_module: /Users.
 */


#include "ngx_ent_scim.h"
#include "ngx_ent_scim_patch.h"


static void ngx_http_ent_scim_patch_read(ngx_ent_op_t *op);


/* the users' attributes a filter may name, and their SQL */

static ent_scim_attr_t  ngx_http_ent_scim_user_attrs[] = {
    { "id", "u.id::text", ENT_SCIM_T_STRING, 1, 0, NULL },
    { "externalid", "u.external_id", ENT_SCIM_T_STRING, 1, 0, NULL },
    { "username", "u.user_name", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "displayname", "u.display_name", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "name.givenname", "u.given_name", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "name.familyname", "u.family_name", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "name.formatted", "u.formatted_name", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "active", "u.active", ENT_SCIM_T_BOOLEAN, 0, 0, NULL },
    { "emails", NULL, ENT_SCIM_T_STRING, 0, 1,
      "jsonb_array_elements(u.emails)" },
    { "emails.value", "(e.elem ->> 'value')", ENT_SCIM_T_STRING, 0, 0,
      NULL },
    { "emails.type", "(e.elem ->> 'type')", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "emails.primary", "(e.elem ->> 'primary')::boolean",
      ENT_SCIM_T_BOOLEAN, 0, 0, NULL },
    { "phonenumbers", NULL, ENT_SCIM_T_STRING, 0, 1,
      "jsonb_array_elements(u.phone_numbers)" },
    { "phonenumbers.value", "(e.elem ->> 'value')", ENT_SCIM_T_STRING, 0, 0,
      NULL },
    { "phonenumbers.type", "(e.elem ->> 'type')", ENT_SCIM_T_STRING, 0, 0,
      NULL },
    /* to the millisecond, as meta shows them: eq of a value read matches */
    { "meta.created", "date_trunc('milliseconds', u.created_at)",
      ENT_SCIM_T_DATETIME, 0, 0, NULL },
    { "meta.lastmodified", "date_trunc('milliseconds', u.updated_at)",
      ENT_SCIM_T_DATETIME, 0, 0, NULL },
    { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:"
      "employeenumber", "(u.enterprise ->> 'employeeNumber')",
      ENT_SCIM_T_STRING, 1, 0, NULL },
    { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:"
      "department", "(u.enterprise ->> 'department')",
      ENT_SCIM_T_STRING, 0, 0, NULL },
    { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:"
      "costcenter", "(u.enterprise ->> 'costCenter')",
      ENT_SCIM_T_STRING, 0, 0, NULL },
    { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:"
      "organization", "(u.enterprise ->> 'organization')",
      ENT_SCIM_T_STRING, 0, 0, NULL },
    { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:"
      "division", "(u.enterprise ->> 'division')",
      ENT_SCIM_T_STRING, 0, 0, NULL },
};


ngx_int_t
ngx_http_ent_scim_users(ngx_http_request_t *r, ngx_http_ent_scim_ctx_t *ctx)
{
    char                           *out;
    json_t                         *js, *schemas, *v;
    size_t                          i;
    ngx_int_t                       rc;
    ngx_str_t                      *params;
    ngx_uint_t                      found;
    ngx_ent_pg_stmt_t              *stmt;
    json_error_t                    jerr;
    ngx_http_ent_scim_main_conf_t  *scmf;

    scmf = ngx_http_get_module_main_conf(r, ngx_http_ent_scim_module);

    if (ctx->phase == 1) {
        /* the query's answer was sent by its handler */
        return NGX_DONE;
    }

    switch (r->method) {

    case NGX_HTTP_GET:
        ctx->op = ctx->id.len ? NGX_HTTP_ENT_SCIM_OP_GET
                              : NGX_HTTP_ENT_SCIM_OP_LIST;
        break;

    case NGX_HTTP_POST:
        if (ctx->id.len == 7 && ngx_strncmp(ctx->id.data, ".search", 7) == 0)
        {
            ctx->op = NGX_HTTP_ENT_SCIM_OP_LIST;
            break;
        }

        ctx->op = ctx->id.len ? NGX_HTTP_ENT_SCIM_OP_NONE
                              : NGX_HTTP_ENT_SCIM_OP_CREATE;
        break;

    case NGX_HTTP_PUT:
        ctx->op = ctx->id.len ? NGX_HTTP_ENT_SCIM_OP_REPLACE
                              : NGX_HTTP_ENT_SCIM_OP_NONE;
        break;

    case NGX_HTTP_DELETE:
        ctx->op = ctx->id.len ? NGX_HTTP_ENT_SCIM_OP_DELETE
                              : NGX_HTTP_ENT_SCIM_OP_NONE;
        break;

    case NGX_HTTP_PATCH:
        if (ctx->id.len == 0) {
            ctx->op = NGX_HTTP_ENT_SCIM_OP_NONE;
            break;
        }

        rc = ngx_http_ent_scim_conditions(r, ctx);
        if (rc != NGX_OK) {
            return rc;
        }

        ctx->op = NGX_HTTP_ENT_SCIM_OP_PATCH;

        return ngx_http_ent_scim_patch_start(r, ctx);

    default:
        ctx->op = NGX_HTTP_ENT_SCIM_OP_NONE;
        break;
    }

    if (ctx->op == NGX_HTTP_ENT_SCIM_OP_NONE) {
        return ngx_http_ent_scim_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                                       "Method not allowed here.");
    }

    if (ctx->op == NGX_HTTP_ENT_SCIM_OP_LIST) {
        return ngx_http_ent_scim_list(r, ctx, ngx_http_ent_scim_user_attrs,
                                      sizeof(ngx_http_ent_scim_user_attrs)
                                      / sizeof(ngx_http_ent_scim_user_attrs[0]),
                                      scmf->list_stmt, NULL);
    }

    rc = ngx_http_ent_scim_conditions(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->op == NGX_HTTP_ENT_SCIM_OP_CREATE
        || ctx->op == NGX_HTTP_ENT_SCIM_OP_REPLACE)
    {
        /* a JSON object of the User schema, before PostgreSQL sees it */

        js = json_loadb((char *) ctx->body.data, ctx->body.len,
                        JSON_REJECT_DUPLICATES, &jerr);

        if (!json_is_object(js)) {
            json_decref(js);
            return ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalidSyntax",
                                           "The body is not a JSON object.");
        }

        /*
         * attribute names are case-insensitive: spelled as PostgreSQL
         * reads them ("Emails" was no emails, and a PUT cleared them)
         */

        if (ent_scim_patch_canon(js, &ent_scim_patch_user_schema) != 0) {
            json_decref(js);
            return ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalidValue",
                                           "An attribute is given twice, "
                                           "in two spellings.");
        }

        out = json_dumps(js, JSON_COMPACT);

        if (out == NULL) {
            json_decref(js);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->body.len = ngx_strlen(out);
        ctx->body.data = ngx_pnalloc(r->pool, ctx->body.len);

        if (ctx->body.data == NULL) {
            free(out);
            json_decref(js);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ctx->body.data, out, ctx->body.len);
        free(out);

        schemas = json_object_get(js, "schemas");
        found = 0;

        if (json_is_array(schemas)) {
            json_array_foreach(schemas, i, v) {
                if (json_is_string(v)
                    && ngx_strcmp(json_string_value(v),
                                  NGX_HTTP_ENT_SCIM_USER_URN) == 0)
                {
                    found = 1;
                }
            }
        }

        json_decref(js);

        if (!found) {
            return ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalidValue",
                                           "schemas must include "
                                           NGX_HTTP_ENT_SCIM_USER_URN ".");
        }
    }

    params = ngx_pcalloc(r->pool, 6 * sizeof(ngx_str_t));
    if (params == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    params[0] = ctx->tenant_id;

    switch (ctx->op) {

    case NGX_HTTP_ENT_SCIM_OP_CREATE:
        stmt = scmf->create_stmt;
        params[1] = ctx->token_id;
        params[2] = ctx->body;
        params[3] = ctx->base;
        break;

    case NGX_HTTP_ENT_SCIM_OP_GET:
        stmt = scmf->get_stmt;
        params[1] = ctx->id;
        params[2] = ctx->base;
        break;

    case NGX_HTTP_ENT_SCIM_OP_REPLACE:
        stmt = scmf->replace_stmt;
        params[1] = ctx->token_id;
        params[2] = ctx->id;
        params[3] = ctx->body;

        params[4] = ctx->if_match;

        params[5] = ctx->base;
        break;

    default: /* NGX_HTTP_ENT_SCIM_OP_DELETE */
        stmt = scmf->delete_stmt;
        params[1] = ctx->token_id;
        params[2] = ctx->id;

        params[3] = ctx->if_match;

        break;
    }

    return ngx_http_ent_scim_query(r, ctx, stmt, params);
}


/*
 * PATCH /Users/{id}: the User is read, the operations applied to it here
 * (all or none, ngx_ent_scim_patch.c), and the result stored as a PUT
 * would, on the condition that the User is still the version read: a
 * concurrent change makes the PATCH start again, once.
 */

ngx_int_t
ngx_http_ent_scim_patch_start(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx)
{
    ngx_str_t                      *params;
    ngx_http_ent_scim_main_conf_t  *scmf;

    scmf = ngx_http_get_module_main_conf(r, ngx_http_ent_scim_module);

    params = ngx_pcalloc(r->pool, 3 * sizeof(ngx_str_t));
    if (params == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    params[0] = ctx->tenant_id;
    params[1] = ctx->id;
    params[2] = ctx->base;

    if (ngx_ent_pg_query(r, scmf->get_stmt, params,
                         ngx_http_ent_scim_patch_read, r)
        != NGX_AGAIN)
    {
        return ngx_http_ent_scim_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, NULL,
                                       "Provisioning is unavailable right "
                                       "now.");
    }

    ctx->tries++;
    r->main->count++;
    ctx->pending = 1;

    return NGX_AGAIN;
}


static void
ngx_http_ent_scim_patch_read(ngx_ent_op_t *op)
{
    int                             rv;
    char                           *out;
    size_t                          len;
    json_t                         *js, *orig;
    ngx_int_t                       rc, status, version;
    ngx_str_t                      *params, v;
    const char                     *scim_type;
    const u_char                   *data;
    json_error_t                    jerr;
    ngx_http_request_t             *r;
    ngx_http_ent_scim_ctx_t        *ctx;
    char                            err[160];
    ngx_http_ent_scim_main_conf_t  *scmf;

    r = op->data;
    r->main->count--;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ent_scim_module);
    ctx->pending = 0;
    scmf = ngx_http_get_module_main_conf(r, ngx_http_ent_scim_module);

    if (op->status != NGX_ENT_OK || op->rows.nrows != 1
        || op->rows.ncols != 2)
    {
        rc = ngx_http_ent_scim_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, NULL,
                                     "Provisioning is unavailable right "
                                     "now.");
        ngx_http_finalize_request(r, rc);
        return;
    }

    (void) ngx_ent_rows_cell(&op->rows, 0, 0, &data, &len);
    status = data ? ngx_atoi((u_char *) data, len) : NGX_ERROR;

    (void) ngx_ent_rows_cell(&op->rows, 0, 1, &data, &len);

    if (status != NGX_HTTP_OK || data == NULL) {
        rc = ngx_http_ent_scim_error(r, status == NGX_HTTP_ENT_SCIM_GONE
                                        ? NGX_HTTP_ENT_SCIM_GONE : NGX_HTTP_NOT_FOUND,
                                     NULL, "no such User");
        ngx_http_finalize_request(r, rc);
        return;
    }

    js = json_loadb((char *) data, len, 0, &jerr);

    /* the version read: the condition of the write */

    v.data = (u_char *) json_string_value(
                 json_object_get(json_object_get(js, "meta"), "version"));
    v.len = v.data ? ngx_strlen(v.data) : 0;
    version = v.len ? ngx_http_ent_scim_version(&v) : NGX_ERROR;

    if (version == NGX_ERROR) {
        json_decref(js);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (!ngx_http_ent_scim_matches(ctx, version)) {
        json_decref(js);
        rc = ngx_http_ent_scim_error(r, NGX_HTTP_PRECONDITION_FAILED, NULL,
                                     "the User changed since that version");
        ngx_http_finalize_request(r, rc);
        return;
    }

    scim_type = "invalidValue";
    err[0] = '\0';

    orig = js;

    rv = ent_scim_patch_apply(&js, (char *) ctx->body.data, ctx->body.len,
                              &ent_scim_patch_user_schema, &scim_type, err,
                              sizeof(err));

    if (rv == ENT_SCIM_OK) {
        /* js is the patched copy */
        json_decref(orig);
    }

    if (rv != ENT_SCIM_OK) {
        json_decref(js);

        if (rv == ENT_SCIM_INTERNAL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        out = ngx_pnalloc(r->pool, ngx_strlen(err) + 1);
        if (out) {
            ngx_cpystrn((u_char *) out, (u_char *) err, ngx_strlen(err) + 1);
        }

        rc = ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST, scim_type,
                                     out && out[0] ? out
                                                   : "The PATCH is not "
                                                     "valid.");
        ngx_http_finalize_request(r, rc);
        return;
    }

    out = json_dumps(js, JSON_COMPACT);
    json_decref(js);

    params = ngx_pcalloc(r->pool, 6 * sizeof(ngx_str_t));

    if (out == NULL || params == NULL) {
        free(out);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    params[3].len = ngx_strlen(out);
    params[3].data = ngx_pnalloc(r->pool, params[3].len);
    params[4].data = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 2);

    if (params[3].data == NULL || params[4].data == NULL) {
        free(out);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(params[3].data, out, params[3].len);
    free(out);

    params[0] = ctx->tenant_id;
    params[1] = ctx->token_id;
    params[2] = ctx->id;
    params[4].len = ngx_sprintf(params[4].data, "{%i}", version)
                    - params[4].data;
    params[5] = ctx->base;

    rc = ngx_http_ent_scim_query(r, ctx, scmf->replace_stmt, params);

    if (rc != NGX_AGAIN) {
        ngx_http_finalize_request(r, rc);
    }
}
