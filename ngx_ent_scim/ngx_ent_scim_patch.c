/*
 * ngx_ent SCIM: PATCH of a resource held as JSON, I/O-free (see
 * ngx_ent_scim_patch.h).  The operations run on a deep copy of the
 * resource, which replaces the caller's only when all of them succeed.
 * Paths and their bracket filters are ngx_ent_scim_path.c's; values, the
 * User schema, the checks after all operations and the member helpers
 * ngx_ent_scim_patch_value.c's.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ngx_ent_scim_int.h"
#include "ngx_ent_scim_path.h"


#define ENT_SCIM_PATCH_ADD        1
#define ENT_SCIM_PATCH_REPLACE    2
#define ENT_SCIM_PATCH_REMOVE     3


typedef struct {
    json_t                        **elts;       /* referenced */
    size_t                          n;
} ent_scim_patch_snap_t;


static int ent_scim_patch_body(ent_scim_patch_ctx_t *ctx, json_t *doc,
    json_t **ops);
static int ent_scim_patch_op(ent_scim_patch_ctx_t *ctx, json_t *op);
static int ent_scim_patch_no_path(ent_scim_patch_ctx_t *ctx, int kind,
    json_t *value);
static int ent_scim_patch_path(ent_scim_patch_ctx_t *ctx, int kind,
    ent_scim_path_t *p, json_t *value);
static int ent_scim_patch_urn_is(const char *name, const char *uri,
    const char *attr);
static int ent_scim_patch_target(ent_scim_patch_ctx_t *ctx, int kind,
    json_t *obj, const ent_scim_patch_attr_t *a, ent_scim_path_t *fp,
    const ent_scim_patch_attr_t *s, json_t *value);
static int ent_scim_patch_remove(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *a, ent_scim_path_t *fp,
    const ent_scim_patch_attr_t *s, json_t *value, int quiet);
static int ent_scim_patch_remove_values(ent_scim_patch_ctx_t *ctx,
    json_t *obj, const ent_scim_patch_attr_t *a, json_t *value);
static int ent_scim_patch_holds(json_t *elem, json_t *given);
static int ent_scim_patch_write(ent_scim_patch_ctx_t *ctx, int kind,
    json_t *obj, const ent_scim_patch_attr_t *a, ent_scim_path_t *fp,
    const ent_scim_patch_attr_t *s, json_t *value);
static int ent_scim_patch_write_sub(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *a, const ent_scim_patch_attr_t *s,
    json_t *norm);
static int ent_scim_patch_write_filter(ent_scim_patch_ctx_t *ctx, int kind,
    json_t *obj, const ent_scim_patch_attr_t *a, ent_scim_path_t *fp,
    const ent_scim_patch_attr_t *s, json_t *norm);
static int ent_scim_patch_from_filter(const ent_scim_patch_attr_t *a,
    const ent_scim_node_t *n, json_t *elem);
static int ent_scim_patch_append(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *a, json_t *norm);
static int ent_scim_patch_put(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *def, json_t *norm);
static int ent_scim_patch_merge(ent_scim_patch_ctx_t *ctx, json_t *dst,
    const ent_scim_patch_attr_t *def, json_t *src);
static int ent_scim_patch_budget(ent_scim_patch_ctx_t *ctx,
    const ent_scim_path_t *fp, json_t *arr);
static size_t ent_scim_patch_weight(const ent_scim_node_t *n);
static int ent_scim_patch_has_primary(const ent_scim_patch_attr_t *a);
static int ent_scim_patch_snap(json_t *obj, const ent_scim_patch_attr_t *a,
    ent_scim_patch_snap_t *snap);
static void ent_scim_patch_snap_free(ent_scim_patch_snap_t *snap);
static int ent_scim_patch_primary(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *a, ent_scim_patch_snap_t *snap);
static int ent_scim_patch_is_primary(json_t *elem);


int
ent_scim_patch_apply(json_t **resource, const char *body, size_t len,
    const ent_scim_patch_schema_t *schema, const char **scim_type,
    char *err, size_t errlen)
{
    int                    rc;
    size_t                 i;
    json_t                *doc, *ops;
    json_error_t           jerr;
    ent_scim_patch_ctx_t   ctx;

    memset(&ctx, 0, sizeof(ent_scim_patch_ctx_t));
    ctx.schema = schema;

    doc = NULL;

    if (resource == NULL || !json_is_object(*resource) || schema == NULL
        || schema->core_urn == NULL || (body == NULL && len != 0))
    {
        rc = ENT_SCIM_INTERNAL;
        ctx.text = "bad resource or schema";
        goto done;
    }

    if (len > ENT_SCIM_PATCH_MAX_BODY) {
        rc = ENT_SCIM_LENGTH;
        ctx.scim_type = "invalidSyntax";
        ctx.text = "the body is too large";
        goto done;
    }

    doc = json_loadb(body != NULL ? body : "", len, JSON_REJECT_DUPLICATES,
                     &jerr);

    if (doc == NULL) {
        switch (json_error_code(&jerr)) {

        case json_error_out_of_memory:
            rc = ENT_SCIM_INTERNAL;
            ctx.text = "out of memory";
            break;

        case json_error_invalid_utf8:
        case json_error_null_character:
            rc = ENT_SCIM_ENCODING;
            ctx.scim_type = "invalidSyntax";
            ctx.text = "the body is not UTF-8 JSON text";
            break;

        default:
            rc = ent_scim_patch_fail(&ctx, "invalidSyntax",
                                     "the body is not valid JSON");
        }

        goto done;
    }

    rc = ent_scim_patch_body(&ctx, doc, &ops);
    if (rc != ENT_SCIM_OK) {
        goto done;
    }

    ctx.res = json_deep_copy(*resource);
    if (ctx.res == NULL) {
        rc = ent_scim_patch_fail(&ctx, NULL, "out of memory");
        goto done;
    }

    for (i = 0; i < json_array_size(ops); i++) {
        rc = ent_scim_patch_op(&ctx, json_array_get(ops, i));
        if (rc != ENT_SCIM_OK) {
            goto done;
        }
    }

    rc = ent_scim_patch_finish(&ctx);

done:

    json_decref(doc);

    if (rc == ENT_SCIM_OK) {
        *resource = ctx.res;
        ctx.scim_type = NULL;
        ctx.text = "";

    } else {
        json_decref(ctx.res);
    }

    if (scim_type != NULL) {
        *scim_type = ctx.scim_type;
    }

    if (err != NULL && errlen > 0) {
        strncpy(err, ctx.text, errlen - 1);
        err[errlen - 1] = '\0';
    }

    return rc;
}


/* the result code of a scimType; NULL: an internal error */

int
ent_scim_patch_fail(ent_scim_patch_ctx_t *ctx, const char *scim_type,
    const char *text)
{
    ctx->scim_type = scim_type;
    ctx->text = text;

    if (scim_type == NULL) {
        return ENT_SCIM_INTERNAL;
    }

    if (strcmp(scim_type, "invalidSyntax") == 0) {
        return ENT_SCIM_SYNTAX;
    }

    if (strcmp(scim_type, "invalidPath") == 0
        || strcmp(scim_type, "noTarget") == 0)
    {
        return ENT_SCIM_ATTR;
    }

    if (strcmp(scim_type, "tooMany") == 0) {
        return ENT_SCIM_COUNT;
    }

    return ENT_SCIM_TYPE;
}


static int
ent_scim_patch_body(ent_scim_patch_ctx_t *ctx, json_t *doc, json_t **ops)
{
    int      found;
    size_t   i;
    json_t  *schemas, *s;

    if (!json_is_object(doc)) {
        return ent_scim_patch_fail(ctx, "invalidSyntax",
                                   "the body is not a JSON object");
    }

    if (ent_scim_patch_member(doc, "schemas", &schemas) != 0
        || ent_scim_patch_member(doc, "Operations", ops) != 0)
    {
        return ent_scim_patch_fail(ctx, "invalidSyntax",
                                   "a member is given twice");
    }

    found = 0;

    if (json_is_array(schemas)) {
        json_array_foreach(schemas, i, s) {
            if (json_is_string(s)
                && strcasecmp(json_string_value(s), ENT_SCIM_PATCH_URN) == 0)
            {
                found = 1;
            }
        }
    }

    if (!found) {
        return ent_scim_patch_fail(ctx, "invalidSyntax",
                                   "schemas must list the PatchOp URN");
    }

    if (!json_is_array(*ops) || json_array_size(*ops) == 0) {
        return ent_scim_patch_fail(ctx, "invalidSyntax",
                                   "Operations must be a non-empty array");
    }

    if (json_array_size(*ops) > ENT_SCIM_PATCH_MAX_OPS) {
        return ent_scim_patch_fail(ctx, "tooMany", "too many operations");
    }

    return ENT_SCIM_OK;
}


static int
ent_scim_patch_op(ent_scim_patch_ctx_t *ctx, json_t *op)
{
    int               rc, kind;
    char              perr[64];
    json_t           *jop, *jpath, *value;
    const char       *s;
    ent_scim_path_t   p;

    if (!json_is_object(op)) {
        return ent_scim_patch_fail(ctx, "invalidSyntax",
                                   "an operation is not an object");
    }

    if (ent_scim_patch_member(op, "op", &jop) != 0
        || ent_scim_patch_member(op, "path", &jpath) != 0
        || ent_scim_patch_member(op, "value", &value) != 0)
    {
        return ent_scim_patch_fail(ctx, "invalidSyntax",
                                   "a member of an operation is given twice");
    }

    s = json_string_value(jop);

    if (s == NULL) {
        return ent_scim_patch_fail(ctx, "invalidSyntax",
                                   "an operation has no op");
    }

    if (strcasecmp(s, "add") == 0) {
        kind = ENT_SCIM_PATCH_ADD;

    } else if (strcasecmp(s, "replace") == 0) {
        kind = ENT_SCIM_PATCH_REPLACE;

    } else if (strcasecmp(s, "remove") == 0) {
        kind = ENT_SCIM_PATCH_REMOVE;

    } else {
        return ent_scim_patch_fail(ctx, "invalidSyntax",
                                   "op is not add, replace or remove");
    }

    if (kind != ENT_SCIM_PATCH_REMOVE && value == NULL) {
        return ent_scim_patch_fail(ctx, "invalidSyntax",
                                   "add and replace need a value");
    }

    if (jpath == NULL || json_is_null(jpath)) {
        if (kind == ENT_SCIM_PATCH_REMOVE) {
            return ent_scim_patch_fail(ctx, "noTarget",
                                       "remove needs a path");
        }

        return ent_scim_patch_no_path(ctx, kind, value);
    }

    if (!json_is_string(jpath)) {
        return ent_scim_patch_fail(ctx, "invalidPath",
                                   "path is not a string");
    }

    rc = ent_scim_path_parse(json_string_value(jpath),
                             json_string_length(jpath), &p, perr,
                             sizeof(perr));

    if (rc == ENT_SCIM_INTERNAL) {
        return ent_scim_patch_fail(ctx, NULL, "out of memory");
    }

    if (rc != ENT_SCIM_OK) {
        return ent_scim_patch_fail(ctx, "invalidPath", "invalid path");
    }

    rc = ent_scim_patch_path(ctx, kind, &p, value);

    ent_scim_path_free(&p);

    return rc;
}


/* every member of the value is applied as if its name were the path */

static int
ent_scim_patch_no_path(ent_scim_patch_ctx_t *ctx, int kind, json_t *value)
{
    int               rc;
    char              perr[64];
    json_t           *v;
    const char       *key;
    ent_scim_path_t   p;

    if (!json_is_object(value)) {
        return ent_scim_patch_fail(ctx, "invalidValue",
                                   "without a path, the value must be an "
                                   "object");
    }

    json_object_foreach(value, key, v) {

        if (strcasecmp(key, "schemas") == 0) {
            continue;
        }

        if (ent_scim_patch_member(value, key, &v) != 0) {
            /* "userName" and "USERNAME": which one is meant */
            return ent_scim_patch_fail(ctx, "invalidValue",
                                       "an attribute given twice in the "
                                       "value");
        }

        rc = ent_scim_path_parse(key, strlen(key), &p, perr, sizeof(perr));

        if (rc == ENT_SCIM_INTERNAL) {
            return ent_scim_patch_fail(ctx, NULL, "out of memory");
        }

        if (rc != ENT_SCIM_OK) {
            return ent_scim_patch_fail(ctx, "invalidPath",
                                       "invalid attribute name in the value");
        }

        rc = ent_scim_patch_path(ctx, kind, &p, v);

        ent_scim_path_free(&p);

        if (rc != ENT_SCIM_OK) {
            return rc;
        }
    }

    return ENT_SCIM_OK;
}


/* resolves the path against the schema and applies the operation */

static int
ent_scim_patch_path(ent_scim_patch_ctx_t *ctx, int kind, ent_scim_path_t *p,
    json_t *value)
{
    size_t                        i;
    json_t                       *obj;
    const ent_scim_patch_attr_t  *a, *s, *x, *ext;

    a = NULL;
    ext = NULL;

    if (p->uri == NULL || strcasecmp(p->uri, ctx->schema->core_urn) == 0) {

        if (strcmp(p->attr, "schemas") == 0) {
            return ent_scim_patch_fail(ctx, "mutability",
                                       "schemas is kept by the server");
        }

        for (i = 0; i < ctx->schema->nattrs; i++) {
            x = &ctx->schema->attrs[i];

            if (!x->extension && strcasecmp(x->name, p->attr) == 0) {
                a = x;
                break;
            }
        }

    } else {
        for (i = 0; i < ctx->schema->nattrs; i++) {
            x = &ctx->schema->attrs[i];

            if (!x->extension) {
                continue;
            }

            if (p->sub == NULL && p->filter == NULL
                && ent_scim_patch_urn_is(x->name, p->uri, p->attr))
            {
                a = x;
                break;
            }

            if (strcasecmp(x->name, p->uri) == 0) {
                ext = x;
                a = ent_scim_patch_find(x->subs, x->nsubs, p->attr);
                break;
            }
        }
    }

    if (a == NULL) {
        return ent_scim_patch_fail(ctx, "invalidPath", "unknown attribute");
    }

    if (a->readonly
        && (kind == ENT_SCIM_PATCH_REMOVE || p->sub != NULL
            || p->filter != NULL))
    {
        return ent_scim_patch_fail(ctx, "mutability",
                                   "a read-only attribute cannot be "
                                   "changed");
    }

    if (p->filter != NULL && !a->multi) {
        return ent_scim_patch_fail(ctx, "invalidPath",
                                   "a filter on a single-valued attribute");
    }

    s = NULL;

    if (p->sub != NULL) {
        if (a->type != ENT_SCIM_PATCH_COMPLEX) {
            return ent_scim_patch_fail(ctx, "invalidPath",
                                       "a sub-attribute of a simple "
                                       "attribute");
        }

        s = ent_scim_patch_find(a->subs, a->nsubs, p->sub);

        if (s == NULL) {
            return ent_scim_patch_fail(ctx, "invalidPath",
                                       "unknown sub-attribute");
        }
    }

    obj = ctx->res;

    if (ext != NULL) {
        obj = ent_scim_patch_get(ctx->res, ext->name);

        if (!json_is_object(obj)) {
            if (kind == ENT_SCIM_PATCH_REMOVE) {
                return p->filter ? ent_scim_patch_fail(ctx, "noTarget",
                                       "the filter matches no value")
                                 : ENT_SCIM_OK;
            }

            obj = json_object();

            if (ent_scim_patch_set(ctx->res, ext->name, obj) != 0) {
                return ent_scim_patch_fail(ctx, NULL, "out of memory");
            }
        }
    }

    return ent_scim_patch_target(ctx, kind, obj, a, p->filter ? p : NULL, s,
                                 value);
}


/* name is uri ":" attr, case-insensitively */

static int
ent_scim_patch_urn_is(const char *name, const char *uri, const char *attr)
{
    size_t  n;

    n = strlen(uri);

    return strncasecmp(name, uri, n) == 0 && name[n] == ':'
           && strcasecmp(name + n + 1, attr) == 0;
}


static int
ent_scim_patch_target(ent_scim_patch_ctx_t *ctx, int kind, json_t *obj,
    const ent_scim_patch_attr_t *a, ent_scim_path_t *fp,
    const ent_scim_patch_attr_t *s, json_t *value)
{
    int                    rc, quiet;
    json_t                *cur;
    ent_scim_patch_snap_t  snap;

    if (a->readonly) {
        cur = ent_scim_patch_get(obj, a->name);

        if (kind != ENT_SCIM_PATCH_REMOVE && fp == NULL && s == NULL
            && cur != NULL && json_equal(cur, value))
        {
            return ENT_SCIM_OK;
        }

        return ent_scim_patch_fail(ctx, "mutability",
                                   "a read-only attribute cannot be "
                                   "changed");
    }

    /* a null value, or no values, unassigns (RFC 7643 2.5) */

    quiet = 0;

    if (kind != ENT_SCIM_PATCH_REMOVE
        && (json_is_null(value)
            || (kind == ENT_SCIM_PATCH_REPLACE && a->multi && fp == NULL
                && s == NULL && json_is_array(value)
                && json_array_size(value) == 0)))
    {
        kind = ENT_SCIM_PATCH_REMOVE;
        value = NULL;
        quiet = 1;
    }

    memset(&snap, 0, sizeof(ent_scim_patch_snap_t));

    if (ent_scim_patch_has_primary(a)
        && ent_scim_patch_snap(obj, a, &snap) != 0)
    {
        return ent_scim_patch_fail(ctx, NULL, "out of memory");
    }

    if (kind == ENT_SCIM_PATCH_REMOVE) {
        rc = ent_scim_patch_remove(ctx, obj, a, fp, s, value, quiet);

    } else {
        rc = ent_scim_patch_write(ctx, kind, obj, a, fp, s, value);
    }

    if (rc == ENT_SCIM_OK && ent_scim_patch_has_primary(a)) {
        rc = ent_scim_patch_primary(ctx, obj, a, &snap);
    }

    ent_scim_patch_snap_free(&snap);

    return rc;
}


static int
ent_scim_patch_remove(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *a, ent_scim_path_t *fp,
    const ent_scim_patch_attr_t *s, json_t *value, int quiet)
{
    int      rc;
    size_t   i, n;
    json_t  *cur, *e;

    cur = ent_scim_patch_get(obj, a->name);

    if (fp == NULL && s == NULL) {
        if (value != NULL && a->multi) {
            return ent_scim_patch_remove_values(ctx, obj, a, value);
        }

        ent_scim_patch_del(obj, a->name);

        return ENT_SCIM_OK;
    }

    if (fp == NULL) {

        /* a.sub: of the object, or of every element */

        if (a->multi && json_is_array(cur)) {
            for (i = json_array_size(cur); i-- > 0; /* void */) {
                e = json_array_get(cur, i);

                if (!json_is_object(e)) {
                    continue;
                }

                ent_scim_patch_del(e, s->name);

                if (s->required || json_object_size(e) == 0) {
                    json_array_remove(cur, i);
                }
            }

        } else if (!a->multi && json_is_object(cur)) {
            ent_scim_patch_del(cur, s->name);
        }

        ent_scim_patch_tidy(obj, a);

        return ENT_SCIM_OK;
    }

    n = 0;

    if (json_is_array(cur)) {
        rc = ent_scim_patch_budget(ctx, fp, cur);
        if (rc != ENT_SCIM_OK) {
            return rc;
        }

        for (i = json_array_size(cur); i-- > 0; /* void */) {
            e = json_array_get(cur, i);

            if (!ent_scim_path_match(fp, e)) {
                continue;
            }

            n++;

            if (s == NULL) {
                json_array_remove(cur, i);
                continue;
            }

            if (!json_is_object(e)) {
                continue;
            }

            ent_scim_patch_del(e, s->name);

            if (s->required || json_object_size(e) == 0) {
                json_array_remove(cur, i);
            }
        }
    }

    if (n == 0 && !quiet) {
        return ent_scim_patch_fail(ctx, "noTarget",
                                   "the filter matches no value");
    }

    ent_scim_patch_tidy(obj, a);

    return ENT_SCIM_OK;
}


/* removes the elements that hold all members of one of the given ones */

static int
ent_scim_patch_remove_values(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *a, json_t *value)
{
    int      rc;
    size_t   i, j;
    json_t  *norm, *cur, *e;

    rc = ent_scim_patch_norm_multi(ctx, a, value, &norm);
    if (rc != ENT_SCIM_OK) {
        return rc;
    }

    cur = ent_scim_patch_get(obj, a->name);

    if (json_is_array(cur)) {
        for (i = json_array_size(cur); i-- > 0; /* void */) {
            e = json_array_get(cur, i);

            for (j = 0; j < json_array_size(norm); j++) {
                if (ent_scim_patch_holds(e, json_array_get(norm, j))) {
                    json_array_remove(cur, i);
                    break;
                }
            }
        }
    }

    json_decref(norm);

    ent_scim_patch_tidy(obj, a);

    return ENT_SCIM_OK;
}


static int
ent_scim_patch_holds(json_t *elem, json_t *given)
{
    json_t      *v;
    const char  *key;

    if (!json_is_object(elem) || !json_is_object(given)) {
        return json_equal(elem, given);
    }

    if (json_object_size(given) == 0) {
        return 0;
    }

    json_object_foreach(given, key, v) {
        if (!json_equal(ent_scim_patch_get(elem, key), v)) {
            return 0;
        }
    }

    return 1;
}


static int
ent_scim_patch_write(ent_scim_patch_ctx_t *ctx, int kind, json_t *obj,
    const ent_scim_patch_attr_t *a, ent_scim_path_t *fp,
    const ent_scim_patch_attr_t *s, json_t *value)
{
    int      rc, flags;
    json_t  *norm;

    if (fp != NULL) {
        if (s != NULL) {
            rc = ent_scim_patch_norm(ctx, s, value, &norm);

        } else {
            flags = ENT_SCIM_PATCH_UNWRAP;

            if (kind == ENT_SCIM_PATCH_ADD) {
                flags |= ENT_SCIM_PATCH_NULLS;
            }

            rc = ent_scim_patch_norm_value(ctx, a, value, flags, &norm);
        }

        if (rc != ENT_SCIM_OK) {
            return rc;
        }

        rc = ent_scim_patch_write_filter(ctx, kind, obj, a, fp, s, norm);

        json_decref(norm);

        return rc;
    }

    if (s != NULL) {
        rc = ent_scim_patch_norm(ctx, s, value, &norm);
        if (rc != ENT_SCIM_OK) {
            return rc;
        }

        rc = ent_scim_patch_write_sub(ctx, obj, a, s, norm);

        json_decref(norm);

        return rc;
    }

    rc = ent_scim_patch_norm(ctx, a, value, &norm);
    if (rc != ENT_SCIM_OK) {
        return rc;
    }

    if (a->multi && kind == ENT_SCIM_PATCH_ADD) {
        rc = ent_scim_patch_append(ctx, obj, a, norm);

    } else {
        rc = ent_scim_patch_put(ctx, obj, a, norm);
    }

    json_decref(norm);

    ent_scim_patch_tidy(obj, a);

    return rc;
}


/* a.sub: of the object (made when absent), or of every element */

static int
ent_scim_patch_write_sub(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *a, const ent_scim_patch_attr_t *s,
    json_t *norm)
{
    int      rc;
    size_t   i;
    json_t  *cur, *e;

    cur = ent_scim_patch_get(obj, a->name);

    if (a->multi) {
        if (!json_is_array(cur) || json_array_size(cur) == 0) {
            return ent_scim_patch_fail(ctx, "noTarget",
                                       "the attribute has no value");
        }

        json_array_foreach(cur, i, e) {
            if (json_is_object(e)) {
                rc = ent_scim_patch_put(ctx, e, s, norm);
                if (rc != ENT_SCIM_OK) {
                    return rc;
                }
            }
        }

        return ENT_SCIM_OK;
    }

    if (!json_is_object(cur)) {
        cur = json_object();

        if (ent_scim_patch_set(obj, a->name, cur) != 0) {
            return ent_scim_patch_fail(ctx, NULL, "out of memory");
        }
    }

    rc = ent_scim_patch_put(ctx, cur, s, norm);

    ent_scim_patch_tidy(cur, s);
    ent_scim_patch_tidy(obj, a);

    return rc;
}


static int
ent_scim_patch_write_filter(ent_scim_patch_ctx_t *ctx, int kind,
    json_t *obj, const ent_scim_patch_attr_t *a, ent_scim_path_t *fp,
    const ent_scim_patch_attr_t *s, json_t *norm)
{
    int      rc;
    size_t   i, n;
    json_t  *cur, *e, *copy;

    cur = ent_scim_patch_get(obj, a->name);
    n = 0;

    if (json_is_array(cur)) {
        rc = ent_scim_patch_budget(ctx, fp, cur);
        if (rc != ENT_SCIM_OK) {
            return rc;
        }

        for (i = 0; i < json_array_size(cur); i++) {
            e = json_array_get(cur, i);

            if (!ent_scim_path_match(fp, e)) {
                continue;
            }

            n++;

            if (s != NULL) {
                if (json_is_object(e)) {
                    rc = ent_scim_patch_put(ctx, e, s, norm);
                    if (rc != ENT_SCIM_OK) {
                        return rc;
                    }
                }

            } else if (kind == ENT_SCIM_PATCH_ADD) {
                if (json_is_object(e) && json_is_object(norm)) {
                    rc = ent_scim_patch_merge(ctx, e, a, norm);
                    if (rc != ENT_SCIM_OK) {
                        return rc;
                    }
                }

            } else {
                copy = json_deep_copy(norm);

                if (json_array_set_new(cur, i, copy) != 0) {
                    return ent_scim_patch_fail(ctx, NULL, "out of memory");
                }
            }
        }
    }

    if (n > 0) {
        return ENT_SCIM_OK;
    }

    /* no match: make the element from the filter, but for replace a[f] */

    if (s == NULL && kind == ENT_SCIM_PATCH_REPLACE) {
        return ent_scim_patch_fail(ctx, "noTarget",
                                   "the filter matches no value");
    }

    if (a->type != ENT_SCIM_PATCH_COMPLEX) {
        return ent_scim_patch_fail(ctx, "noTarget",
                                   "the filter matches no value");
    }

    e = json_object();
    if (e == NULL) {
        return ent_scim_patch_fail(ctx, NULL, "out of memory");
    }

    if (ent_scim_patch_from_filter(a, fp->filter, e) != 0) {
        json_decref(e);
        return ent_scim_patch_fail(ctx, "noTarget",
                                   "the filter matches no value and cannot "
                                   "make one");
    }

    if (s != NULL) {
        rc = ent_scim_patch_put(ctx, e, s, norm);

    } else {
        rc = ent_scim_patch_merge(ctx, e, a, norm);
    }

    if (rc == ENT_SCIM_OK) {
        rc = ent_scim_patch_append(ctx, obj, a, e);
    }

    json_decref(e);

    return rc;
}


/* the members of an element from "sub eq value" joined by "and" */

static int
ent_scim_patch_from_filter(const ent_scim_patch_attr_t *a,
    const ent_scim_node_t *n, json_t *elem)
{
    json_t                       *v;
    const ent_scim_patch_attr_t  *s;

    if (n == NULL) {
        return -1;
    }

    if (n->type == ENT_SCIM_N_AND) {
        if (ent_scim_patch_from_filter(a, n->left, elem) != 0) {
            return -1;
        }

        return ent_scim_patch_from_filter(a, n->right, elem);
    }

    if (n->type != ENT_SCIM_N_CMP || n->op != ENT_SCIM_OP_EQ
        || n->uri != NULL || n->sub != NULL || n->attr == NULL)
    {
        return -1;
    }

    s = ent_scim_patch_find(a->subs, a->nsubs, n->attr);

    if (s == NULL || s->multi || s->readonly
        || ent_scim_patch_get(elem, s->name) != NULL)
    {
        return -1;
    }

    switch (s->type) {

    case ENT_SCIM_PATCH_STRING:
    case ENT_SCIM_PATCH_REFERENCE:
        if (n->vtype != ENT_SCIM_V_STRING || n->value == NULL
            || n->value_len > ENT_SCIM_PATCH_MAX_STRING)
        {
            return -1;
        }

        v = json_stringn(n->value, n->value_len);
        break;

    case ENT_SCIM_PATCH_BOOLEAN:
        if (n->vtype != ENT_SCIM_V_TRUE && n->vtype != ENT_SCIM_V_FALSE) {
            return -1;
        }

        v = json_boolean(n->vtype == ENT_SCIM_V_TRUE);
        break;

    default:
        return -1;
    }

    if (v == NULL) {
        return -1;
    }

    return json_object_set_new(elem, s->name, v);
}


/* appends the elements of norm (an array, or one element) but duplicates */

static int
ent_scim_patch_append(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *a, json_t *norm)
{
    size_t   i, j, n;
    json_t  *cur, *g;

    cur = ent_scim_patch_get(obj, a->name);

    if (!json_is_array(cur)) {
        cur = json_array();

        if (ent_scim_patch_set(obj, a->name, cur) != 0) {
            return ent_scim_patch_fail(ctx, NULL, "out of memory");
        }
    }

    n = json_is_array(norm) ? json_array_size(norm) : 1;

    for (i = 0; i < n; i++) {
        g = json_is_array(norm) ? json_array_get(norm, i) : norm;

        for (j = 0; j < json_array_size(cur); j++) {
            if (json_equal(json_array_get(cur, j), g)) {
                break;
            }
        }

        if (j < json_array_size(cur)) {
            continue;
        }

        if (json_array_size(cur) >= ENT_SCIM_PATCH_MAX_VALUES) {
            return ent_scim_patch_fail(ctx, "invalidValue",
                                       "too many values");
        }

        if (json_array_append_new(cur, json_deep_copy(g)) != 0) {
            return ent_scim_patch_fail(ctx, NULL, "out of memory");
        }
    }

    ent_scim_patch_tidy(obj, a);

    return ENT_SCIM_OK;
}


/* sets obj's member def->name to norm: merged for a complex single value */

static int
ent_scim_patch_put(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *def, json_t *norm)
{
    int      rc;
    json_t  *cur;

    if (def->type == ENT_SCIM_PATCH_COMPLEX && !def->multi) {
        cur = ent_scim_patch_get(obj, def->name);

        if (!json_is_object(cur)) {
            cur = json_object();

            if (ent_scim_patch_set(obj, def->name, cur) != 0) {
                return ent_scim_patch_fail(ctx, NULL, "out of memory");
            }
        }

        rc = ent_scim_patch_merge(ctx, cur, def, norm);

        ent_scim_patch_tidy(obj, def);

        return rc;
    }

    if (ent_scim_patch_set(obj, def->name, json_deep_copy(norm)) != 0) {
        return ent_scim_patch_fail(ctx, NULL, "out of memory");
    }

    return ENT_SCIM_OK;
}


/* src: normalized, its names spelled as the table has them */

static int
ent_scim_patch_merge(ent_scim_patch_ctx_t *ctx, json_t *dst,
    const ent_scim_patch_attr_t *def, json_t *src)
{
    int                           rc;
    json_t                       *v;
    const char                   *key;
    const ent_scim_patch_attr_t  *s;

    json_object_foreach(src, key, v) {
        s = ent_scim_patch_find(def->subs, def->nsubs, key);

        if (s == NULL) {
            return ent_scim_patch_fail(ctx, NULL, "bad schema");
        }

        if (json_is_null(v)) {
            ent_scim_patch_del(dst, s->name);
            continue;
        }

        rc = ent_scim_patch_put(ctx, dst, s, v);
        if (rc != ENT_SCIM_OK) {
            return rc;
        }
    }

    return ENT_SCIM_OK;
}


/*
 * Filter evaluation costs about (the filter's bytes) * (the elements'
 * bytes): "co" is a naive substring search.  The total is bounded.
 */

static int
ent_scim_patch_budget(ent_scim_patch_ctx_t *ctx, const ent_scim_path_t *fp,
    json_t *arr)
{
    size_t       i, w, b;
    json_t      *e, *v;
    const char  *key;

    w = ent_scim_patch_weight(fp->filter);
    b = 0;

    json_array_foreach(arr, i, e) {
        b += 16;

        if (json_is_string(e)) {
            b += json_string_length(e);
            continue;
        }

        json_object_foreach(e, key, v) {
            b += 16;

            if (json_is_string(v)) {
                b += json_string_length(v);
            }
        }
    }

    if (w != 0 && b > (ENT_SCIM_PATCH_MAX_COST - ctx->cost) / w) {
        return ent_scim_patch_fail(ctx, "tooMany",
                                   "the filters take too long to evaluate");
    }

    ctx->cost += w * b;

    return ENT_SCIM_OK;
}


static size_t
ent_scim_patch_weight(const ent_scim_node_t *n)
{
    if (n == NULL) {
        return 0;
    }

    return 1 + n->value_len + ent_scim_patch_weight(n->left)
           + ent_scim_patch_weight(n->right);
}


static int
ent_scim_patch_has_primary(const ent_scim_patch_attr_t *a)
{
    const ent_scim_patch_attr_t  *s;

    if (!a->multi || a->type != ENT_SCIM_PATCH_COMPLEX) {
        return 0;
    }

    s = ent_scim_patch_find(a->subs, a->nsubs, "primary");

    return s != NULL && s->type == ENT_SCIM_PATCH_BOOLEAN && !s->multi;
}


/* the elements that are primary before an operation */

static int
ent_scim_patch_snap(json_t *obj, const ent_scim_patch_attr_t *a,
    ent_scim_patch_snap_t *snap)
{
    size_t   i;
    json_t  *cur, *e;

    cur = ent_scim_patch_get(obj, a->name);

    if (!json_is_array(cur) || json_array_size(cur) == 0) {
        return 0;
    }

    snap->elts = malloc(json_array_size(cur) * sizeof(json_t *));
    if (snap->elts == NULL) {
        return -1;
    }

    json_array_foreach(cur, i, e) {
        if (ent_scim_patch_is_primary(e)) {
            snap->elts[snap->n++] = json_incref(e);
        }
    }

    return 0;
}


static void
ent_scim_patch_snap_free(ent_scim_patch_snap_t *snap)
{
    size_t  i;

    for (i = 0; i < snap->n; i++) {
        json_decref(snap->elts[i]);
    }

    free(snap->elts);
    memset(snap, 0, sizeof(ent_scim_patch_snap_t));
}


/*
 * At most one element is primary: the one the operation made primary
 * wins; when it made none (the resource had several), the first.
 */

static int
ent_scim_patch_primary(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *a, ent_scim_patch_snap_t *snap)
{
    size_t                        i, j, count, fresh;
    json_t                       *cur, *e, *win, *first;
    const ent_scim_patch_attr_t  *s;

    cur = ent_scim_patch_get(obj, a->name);

    if (!json_is_array(cur)) {
        return ENT_SCIM_OK;
    }

    count = 0;
    fresh = 0;
    win = NULL;
    first = NULL;

    json_array_foreach(cur, i, e) {
        if (!ent_scim_patch_is_primary(e)) {
            continue;
        }

        count++;

        if (first == NULL) {
            first = e;
        }

        for (j = 0; j < snap->n; j++) {
            if (snap->elts[j] == e) {
                break;
            }
        }

        if (j == snap->n) {
            fresh++;
            win = e;
        }
    }

    if (count <= 1) {
        return ENT_SCIM_OK;
    }

    if (fresh > 1) {
        return ent_scim_patch_fail(ctx, "invalidValue",
                                   "more than one primary value");
    }

    if (win == NULL) {
        win = first;
    }

    s = ent_scim_patch_find(a->subs, a->nsubs, "primary");

    json_array_foreach(cur, i, e) {
        if (e != win && ent_scim_patch_is_primary(e)
            && ent_scim_patch_set(e, s->name, json_false()) != 0)
        {
            return ent_scim_patch_fail(ctx, NULL, "out of memory");
        }
    }

    return ENT_SCIM_OK;
}


static int
ent_scim_patch_is_primary(json_t *elem)
{
    return json_is_true(ent_scim_patch_get(elem, "primary"));
}
