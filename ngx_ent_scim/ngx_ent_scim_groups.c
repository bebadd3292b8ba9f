/*
 * ngx_http_ent_scim_module: /Groups.
 *
 * A PUT or a PATCH becomes a small set of actions for PostgreSQL
 * (ent.scim_group_change): a new displayName or externalId, members to
 * add, members to remove, all members to replace or drop.  Member changes
 * are row operations there: adding one member to a large group does not
 * read the group.  excludedAttributes=members (or attributes without it)
 * never loads the members.
 */


#include "ngx_ent_scim.h"
#include "ngx_ent_scim_path.h"
#include "ngx_ent_scim_patch.h"


/* a Group's attributes as spelled, for a PUT body's names */

static const ent_scim_patch_attr_t  ngx_http_ent_scim_group_member[] = {
    { "value", ENT_SCIM_PATCH_STRING, 0, 0, 1, 0, NULL, 0 },
    { "display", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "$ref", ENT_SCIM_PATCH_REFERENCE, 0, 0, 0, 0, NULL, 0 },
    { "type", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
};


static const ent_scim_patch_attr_t  ngx_http_ent_scim_group[] = {
    { "id", ENT_SCIM_PATCH_STRING, 0, 1, 0, 0, NULL, 0 },
    { "meta", ENT_SCIM_PATCH_COMPLEX, 0, 1, 0, 0, NULL, 0 },
    { "externalId", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "displayName", ENT_SCIM_PATCH_STRING, 0, 0, 1, 0, NULL, 0 },
    { "members", ENT_SCIM_PATCH_COMPLEX, 1, 0, 0, 0,
      ngx_http_ent_scim_group_member,
      sizeof(ngx_http_ent_scim_group_member)
      / sizeof(ent_scim_patch_attr_t) },
};


static const ent_scim_patch_schema_t  ngx_http_ent_scim_group_schema = {
    "urn:ietf:params:scim:schemas:core:2.0:Group",
    ngx_http_ent_scim_group,
    sizeof(ngx_http_ent_scim_group) / sizeof(ent_scim_patch_attr_t)
};


#define NGX_HTTP_ENT_SCIM_GROUP_URN                                          \
    "urn:ietf:params:scim:schemas:core:2.0:Group"
#define NGX_HTTP_ENT_SCIM_PATCH_URN                                          \
    "urn:ietf:params:scim:api:messages:2.0:PatchOp"


static ngx_int_t ngx_http_ent_scim_group_actions(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx, json_t *body, json_t **actions,
    const char **scim_type, const char **detail);
static ngx_int_t ngx_http_ent_scim_group_op(json_t *actions, const char *op,
    const char *path, json_t *value, const char **scim_type,
    const char **detail);
static ngx_uint_t ngx_http_ent_scim_members_ok(json_t *value);
static ngx_int_t ngx_http_ent_scim_group_attr(json_t *actions,
    const char *op, const char *name, json_t *value, const char **scim_type,
    const char **detail);
static void ngx_http_ent_scim_forget(json_t *actions, const char *key,
    const char *id);
static void ngx_http_ent_scim_append(json_t *actions, const char *key,
    json_t *members);
static ngx_uint_t ngx_http_ent_scim_members_wanted(ngx_http_request_t *r);


static ent_scim_attr_t  ngx_http_ent_scim_group_attrs[] = {
    { "id", "u.id::text", ENT_SCIM_T_STRING, 1, 0, NULL },
    { "externalid", "u.external_id", ENT_SCIM_T_STRING, 1, 0, NULL },
    { "displayname", "u.display_name", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "members", NULL, ENT_SCIM_T_STRING, 1, 1,
      "(SELECT jsonb_build_object('value', m.user_id::text) "
      "FROM ent.scim_group_members m JOIN ent.scim_users mu "
      "ON mu.tenant_id = m.tenant_id AND mu.id = m.user_id "
      "WHERE m.tenant_id = u.tenant_id AND m.group_id = u.id "
      "AND mu.deleted_at IS NULL)" },
    { "members.value", "(e.elem ->> 'value')", ENT_SCIM_T_STRING, 1, 0,
      NULL },
    /* to the millisecond, as meta shows them: eq of a value read matches */
    { "meta.created", "date_trunc('milliseconds', u.created_at)",
      ENT_SCIM_T_DATETIME, 0, 0, NULL },
    { "meta.lastmodified", "date_trunc('milliseconds', u.updated_at)",
      ENT_SCIM_T_DATETIME, 0, 0, NULL },
};


ngx_int_t
ngx_http_ent_scim_groups(ngx_http_request_t *r, ngx_http_ent_scim_ctx_t *ctx)
{
    char                           *s;
    json_t                         *js, *actions;
    ngx_int_t                       rc;
    ngx_str_t                      *params, members;
    const char                     *scim_type, *detail;
    json_error_t                    jerr;
    ngx_http_ent_scim_main_conf_t  *scmf;

    scmf = ngx_http_get_module_main_conf(r, ngx_http_ent_scim_module);

    if (ngx_http_ent_scim_members_wanted(r)) {
        ngx_str_set(&members, "true");

    } else {
        ngx_str_set(&members, "false");
    }

    if ((r->method == NGX_HTTP_GET && ctx->id.len == 0)
        || (r->method == NGX_HTTP_POST && ctx->id.len == 7
            && ngx_strncmp(ctx->id.data, ".search", 7) == 0))
    {
        ctx->op = NGX_HTTP_ENT_SCIM_OP_LIST;

        return ngx_http_ent_scim_list(r, ctx, ngx_http_ent_scim_group_attrs,
                                      sizeof(ngx_http_ent_scim_group_attrs)
                                    / sizeof(ngx_http_ent_scim_group_attrs[0]),
                                      scmf->glist_stmt, &members);
    }

    rc = ngx_http_ent_scim_conditions(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    params = ngx_pcalloc(r->pool, 7 * sizeof(ngx_str_t));
    if (params == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    params[0] = ctx->tenant_id;

    params[5] = ctx->if_match;

    switch (r->method) {

    case NGX_HTTP_GET:
        ctx->op = NGX_HTTP_ENT_SCIM_OP_GET;
        params[1] = ctx->id;
        params[2] = ctx->base;
        params[3] = members;
        return ngx_http_ent_scim_query(r, ctx, scmf->gget_stmt, params);

    case NGX_HTTP_DELETE:
        if (ctx->id.len == 0) {
            break;
        }

        ctx->op = NGX_HTTP_ENT_SCIM_OP_DELETE;
        params[1] = ctx->token_id;
        params[2] = ctx->id;
        params[3] = params[5];
        ngx_str_null(&params[5]);
        return ngx_http_ent_scim_query(r, ctx, scmf->gdelete_stmt, params);

    case NGX_HTTP_POST:
    case NGX_HTTP_PUT:
    case NGX_HTTP_PATCH:
        if ((r->method == NGX_HTTP_POST) != (ctx->id.len == 0)) {
            break;
        }

        js = json_loadb((char *) ctx->body.data, ctx->body.len,
                        JSON_REJECT_DUPLICATES, &jerr);

        if (!json_is_object(js)) {
            json_decref(js);
            return ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalidSyntax",
                                           "The body is not a JSON object.");
        }

        if (r->method == NGX_HTTP_POST) {
            ctx->op = NGX_HTTP_ENT_SCIM_OP_CREATE;

            /* spelled as PostgreSQL reads it: "Members" is members */

            if (ent_scim_patch_canon(js, &ngx_http_ent_scim_group_schema)
                != 0)
            {
                json_decref(js);
                return ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST,
                                               "invalidValue",
                                               "An attribute is given "
                                               "twice, in two spellings.");
            }

            s = json_dumps(js, JSON_COMPACT);
            json_decref(js);

            if (s == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ctx->body.len = ngx_strlen(s);
            ctx->body.data = ngx_pnalloc(r->pool, ctx->body.len);

            if (ctx->body.data == NULL) {
                free(s);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_memcpy(ctx->body.data, s, ctx->body.len);
            free(s);

            params[1] = ctx->token_id;
            params[2] = ctx->body;
            params[3] = ctx->base;
            return ngx_http_ent_scim_query(r, ctx, scmf->gcreate_stmt,
                                           params);
        }

        ctx->op = NGX_HTTP_ENT_SCIM_OP_REPLACE;
        scim_type = "invalidValue";
        detail = "The request is not valid.";

        rc = ngx_http_ent_scim_group_actions(r, ctx, js, &actions,
                                             &scim_type, &detail);
        json_decref(js);

        if (rc != NGX_OK) {
            return ngx_http_ent_scim_error(r, NGX_HTTP_BAD_REQUEST,
                                           scim_type, detail);
        }

        s = json_dumps(actions, JSON_COMPACT);
        json_decref(actions);

        if (s == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        params[3].len = ngx_strlen(s);
        params[3].data = ngx_pnalloc(r->pool, params[3].len);
        if (params[3].data == NULL) {
            free(s);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(params[3].data, s, params[3].len);
        free(s);

        params[1] = ctx->token_id;
        params[2] = ctx->id;
        params[4] = params[5];
        params[5] = ctx->base;
        params[6] = members;

        return ngx_http_ent_scim_query(r, ctx, scmf->gchange_stmt, params);

    default:
        break;
    }

    return ngx_http_ent_scim_error(r, NGX_HTTP_NOT_ALLOWED, NULL,
                                   "Method not allowed here.");
}


/*
 * PUT: the whole group (displayName required, members replaced); PATCH:
 * its operations, tolerant of what IdPs send (any case of op, a single
 * member not in an array, Entra's removal by a members list, Okta's rename
 * with no path and the same id)
 */

static ngx_int_t
ngx_http_ent_scim_group_actions(ngx_http_request_t *r,
    ngx_http_ent_scim_ctx_t *ctx, json_t *body, json_t **actions,
    const char **scim_type, const char **detail)
{
    size_t       i;
    json_t      *a, *ops, *op, *v, *p, *value, *schemas;
    ngx_uint_t   found;
    const char  *name, *path;

    a = json_object();
    if (a == NULL) {
        return NGX_ERROR;
    }

    *actions = a;

    if (r->method == NGX_HTTP_PUT) {
        /* names are case-insensitive: "Members" is members */

        if (ent_scim_patch_canon(body, &ngx_http_ent_scim_group_schema)
            != 0)
        {
            *scim_type = "invalidValue";
            *detail = "An attribute is given twice, in two spellings.";
            goto failed;
        }

        v = json_object_get(body, "displayName");

        if (!json_is_string(v)) {
            *detail = "displayName is required.";
            goto failed;
        }

        (void) json_object_set(a, "displayName", v);

        v = json_object_get(body, "externalId");
        if (json_is_string(v)) {
            (void) json_object_set(a, "externalId", v);
        }

        v = json_object_get(body, "id");
        if (v && (!json_is_string(v)
                  || ngx_strlen(json_string_value(v)) != ctx->id.len
                  || ngx_strncmp(json_string_value(v), ctx->id.data,
                                 ctx->id.len) != 0))
        {
            *scim_type = "mutability";
            *detail = "id cannot change.";
            goto failed;
        }

        v = json_object_get(body, "members");

        if (v && !json_is_null(v)
            && !(json_is_array(v) && ngx_http_ent_scim_members_ok(v)))
        {
            *scim_type = "invalidValue";
            *detail = "members takes a list of {\"value\": id}.";
            goto failed;
        }

        (void) json_object_set_new(a, "replace_members",
                                   json_is_array(v) ? json_incref(v)
                                                    : json_array());
        return NGX_OK;
    }

    /*
     * PATCH: member names and the URN read as a User's PATCH reads them,
     * case-insensitively ("operations" from some IdPs)
     */

    if (ent_scim_patch_member(body, "schemas", &schemas) != 0
        || ent_scim_patch_member(body, "Operations", &ops) != 0)
    {
        *scim_type = "invalidSyntax";
        *detail = "A member is given twice, in two spellings.";
        goto failed;
    }

    found = 0;

    json_array_foreach(schemas, i, v) {
        if (json_is_string(v)
            && ngx_strcasecmp((u_char *) json_string_value(v),
                              (u_char *) NGX_HTTP_ENT_SCIM_PATCH_URN)
               == 0)
        {
            found = 1;
        }
    }

    if (!found || !json_is_array(ops) || json_array_size(ops) == 0
        || json_array_size(ops) > 1000)
    {
        *scim_type = "invalidSyntax";
        *detail = "A PatchOp with 1 to 1000 Operations is expected.";
        goto failed;
    }

    /* the group's own id, for an "id" among the values (then removed) */

    v = json_stringn((char *) ctx->id.data, ctx->id.len);
    if (v == NULL || json_object_set_new(a, "_id", v) != 0) {
        goto failed;
    }

    json_array_foreach(ops, i, op) {
        if (ent_scim_patch_member(op, "op", &v) != 0
            || ent_scim_patch_member(op, "path", &p) != 0
            || ent_scim_patch_member(op, "value", &value) != 0)
        {
            *scim_type = "invalidSyntax";
            *detail = "A member of an operation is given twice.";
            goto failed;
        }

        name = json_is_string(v) ? json_string_value(v) : NULL;
        path = json_is_string(p) ? json_string_value(p) : NULL;

        /* "path": null is no path, as for Users */

        if (name == NULL || (p && !json_is_null(p) && path == NULL)) {
            *scim_type = "invalidSyntax";
            *detail = "Every operation needs an op, and a string path if "
                      "any.";
            goto failed;
        }

        if (ngx_http_ent_scim_group_op(a, name, path, value, scim_type,
                                       detail)
            != NGX_OK)
        {
            goto failed;
        }
    }

    (void) json_object_del(a, "_id");

    return NGX_OK;

failed:

    json_decref(a);
    *actions = NULL;

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_ent_scim_group_op(json_t *actions, const char *op, const char *path,
    json_t *value, const char **scim_type, const char **detail)
{
    int               rc;
    json_t           *v, *ids;
    const char       *key;
    ent_scim_path_t   p;
    ent_scim_node_t  *f;
    char              err[128];

    if (ngx_strcasecmp((u_char *) op, (u_char *) "add") != 0
        && ngx_strcasecmp((u_char *) op, (u_char *) "replace") != 0
        && ngx_strcasecmp((u_char *) op, (u_char *) "remove") != 0)
    {
        *scim_type = "invalidSyntax";
        *detail = "op is add, replace or remove.";
        return NGX_ERROR;
    }

    if (path == NULL) {
        /* no path: an object of attributes */

        if (ngx_strcasecmp((u_char *) op, (u_char *) "remove") == 0
            || !json_is_object(value))
        {
            *scim_type = "noTarget";
            *detail = "An operation without a path needs an object value.";
            return NGX_ERROR;
        }

        json_object_foreach(value, key, v) {
            if (ngx_http_ent_scim_group_attr(actions, op, key, v, scim_type,
                                             detail)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        return NGX_OK;
    }

    ngx_memzero(&p, sizeof(ent_scim_path_t));
    rc = ent_scim_path_parse(path, ngx_strlen(path), &p, err, sizeof(err));

    if (rc != ENT_SCIM_OK) {
        ent_scim_path_free(&p);
        *scim_type = "invalidPath";
        *detail = "The path is not valid.";
        return NGX_ERROR;
    }

    if (p.filter == NULL || p.sub) {
        rc = (p.sub == NULL)
             ? ngx_http_ent_scim_group_attr(actions, op, p.attr, value,
                                            scim_type, detail)
             : NGX_ERROR;

        if (p.sub) {
            *scim_type = "invalidPath";
            *detail = "Groups have no sub-attributes to patch.";
        }

        ent_scim_path_free(&p);
        return rc;
    }

    /* members[value eq "<id>"]: that member */

    f = p.filter;

    if (ngx_strcmp(p.attr, "members") != 0
        || ngx_strcasecmp((u_char *) op, (u_char *) "remove") != 0
        || f->type != ENT_SCIM_N_CMP || f->op != ENT_SCIM_OP_EQ
        || f->attr == NULL || ngx_strcmp(f->attr, "value") != 0
        || f->vtype != ENT_SCIM_V_STRING)
    {
        ent_scim_path_free(&p);
        *scim_type = "invalidPath";
        *detail = "Only members[value eq \"id\"] may be removed by a filter.";
        return NGX_ERROR;
    }

    ids = json_object_get(actions, "remove");
    if (ids == NULL) {
        ids = json_array();
        (void) json_object_set_new(actions, "remove", ids);
    }

    /* in the order of the operations: an earlier add of it is undone */
    ngx_http_ent_scim_forget(actions, "add", f->value);
    ngx_http_ent_scim_forget(actions, "replace_members", f->value);

    (void) json_array_append_new(ids, json_string(f->value));

    ent_scim_path_free(&p);

    return NGX_OK;
}


/* one attribute of a group: displayName, externalId, members, id */

static ngx_int_t
ngx_http_ent_scim_group_attr(json_t *actions, const char *op,
    const char *name, json_t *value, const char **scim_type,
    const char **detail)
{
    size_t   i;
    json_t  *m, *ids;

    if (ngx_strcasecmp((u_char *) name, (u_char *) "displayName") == 0
        || ngx_strcasecmp((u_char *) name, (u_char *) "externalId") == 0)
    {
        if (ngx_strcasecmp((u_char *) op, (u_char *) "remove") == 0
            || !json_is_string(value))
        {
            *scim_type = "invalidValue";
            *detail = "displayName and externalId take a string.";
            return NGX_ERROR;
        }

        (void) json_object_set(actions,
                               ngx_strcasecmp((u_char *) name,
                                              (u_char *) "displayName") == 0
                               ? "displayName" : "externalId", value);
        return NGX_OK;
    }

    if (ngx_strcasecmp((u_char *) name, (u_char *) "id") == 0) {
        /* Okta renames a group with its own id among the values: fine */

        if (json_is_string(value)
            && ngx_strcasecmp((u_char *) json_string_value(value),
                              (u_char *) json_string_value(
                                  json_object_get(actions, "_id")))
               == 0)
        {
            return NGX_OK;
        }

        *scim_type = "mutability";
        *detail = "id cannot change.";
        return NGX_ERROR;
    }

    if (ngx_strcasecmp((u_char *) name, (u_char *) "members") != 0) {
        *scim_type = "invalidPath";
        *detail = "Groups have displayName, externalId and members.";
        return NGX_ERROR;
    }

    if (ngx_strcasecmp((u_char *) op, (u_char *) "remove") == 0) {
        if (value == NULL || json_is_null(value)) {
            /* what earlier operations did to members no longer matters */
            (void) json_object_del(actions, "add");
            (void) json_object_del(actions, "remove");
            (void) json_object_del(actions, "replace_members");
            (void) json_object_set_new(actions, "remove_all", json_true());
            return NGX_OK;
        }

        /* Entra ID: the members to remove as a value list */

        if (!ngx_http_ent_scim_members_ok(value)) {
            *scim_type = "invalidValue";
            *detail = "members takes a list of {\"value\": id}.";
            return NGX_ERROR;
        }

        ids = json_object_get(actions, "remove");
        if (ids == NULL) {
            ids = json_array();
            (void) json_object_set_new(actions, "remove", ids);
        }

        if (json_is_object(value)) {
            value = json_pack("[O]", value);

        } else {
            json_incref(value);
        }

        json_array_foreach(value, i, m) {
            if (json_is_string(json_object_get(m, "value"))) {
                ngx_http_ent_scim_forget(actions, "add",
                    json_string_value(json_object_get(m, "value")));
                ngx_http_ent_scim_forget(actions, "replace_members",
                    json_string_value(json_object_get(m, "value")));
                (void) json_array_append(ids, json_object_get(m, "value"));
            }
        }

        json_decref(value);
        return NGX_OK;
    }

    if (!ngx_http_ent_scim_members_ok(value)) {
        *scim_type = "invalidValue";
        *detail = "members takes a list of {\"value\": id}.";
        return NGX_ERROR;
    }

    if (json_is_object(value)) {
        value = json_pack("[O]", value);

    } else if (json_is_array(value)) {
        json_incref(value);

    } else {
        *scim_type = "invalidValue";
        *detail = "members takes a list of {\"value\": id}.";
        return NGX_ERROR;
    }

    if (ngx_strcasecmp((u_char *) op, (u_char *) "replace") == 0) {
        (void) json_object_del(actions, "add");
        (void) json_object_del(actions, "remove");
        (void) json_object_set_new(actions, "replace_members", value);
        return NGX_OK;
    }

    /* in the order of the operations: an earlier remove of it is undone */

    json_array_foreach(value, i, m) {
        if (json_is_string(json_object_get(m, "value"))) {
            ngx_http_ent_scim_forget(actions, "remove",
                json_string_value(json_object_get(m, "value")));
        }
    }

    ngx_http_ent_scim_append(actions, "add", value);
    json_decref(value);

    return NGX_OK;
}


/* a member {"value": id}, or a list of them: nothing is skipped silently */

static ngx_uint_t
ngx_http_ent_scim_members_ok(json_t *value)
{
    size_t   i;
    json_t  *m;

    if (json_is_object(value)) {
        return json_is_string(json_object_get(value, "value"));
    }

    if (!json_is_array(value)) {
        return 0;
    }

    json_array_foreach(value, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "value")))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * A member out of a list of the actions ("add" and "replace_members" hold
 * {"value": id}, "remove" the ids), so that a later operation on it wins
 */

static void
ngx_http_ent_scim_forget(json_t *actions, const char *key, const char *id)
{
    size_t   i;
    json_t  *list, *e, *v;

    list = json_object_get(actions, key);

    if (!json_is_array(list)) {
        return;
    }

    for (i = json_array_size(list); i > 0; i--) {
        e = json_array_get(list, i - 1);
        v = json_is_object(e) ? json_object_get(e, "value") : e;

        if (json_is_string(v)
            && ngx_strcasecmp((u_char *) json_string_value(v), (u_char *) id)
               == 0)
        {
            (void) json_array_remove(list, i - 1);
        }
    }
}


static void
ngx_http_ent_scim_append(json_t *actions, const char *key, json_t *members)
{
    json_t  *list;

    list = json_object_get(actions, key);

    if (list == NULL) {
        (void) json_object_set(actions, key, members);
        return;
    }

    (void) json_array_extend(list, members);
}


/* members are loaded unless the request leaves them out */

static ngx_uint_t
ngx_http_ent_scim_members_wanted(ngx_http_request_t *r)
{
    ngx_str_t  v;

    if (ngx_http_ent_scim_arg(r, "excludedAttributes", &v)
        && ngx_strlcasestrn(v.data, v.data + v.len, (u_char *) "members",
                            7 - 1))
    {
        return 0;
    }

    if (ngx_http_ent_scim_arg(r, "attributes", &v) && v.len
        && ngx_strlcasestrn(v.data, v.data + v.len, (u_char *) "members",
                            7 - 1) == NULL)
    {
        return 0;
    }

    return 1;
}
