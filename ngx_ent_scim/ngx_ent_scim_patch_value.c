/*
 * ngx_ent SCIM: PATCH values, I/O-free (see ngx_ent_scim_patch.h): the
 * User schema, a value normalized to an attribute's definition, the
 * checks of the resource after all operations, and case-insensitive
 * member helpers.  The operations are ngx_ent_scim_patch.c's.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ngx_ent_scim_int.h"


static int ent_scim_patch_norm_complex(ent_scim_patch_ctx_t *ctx,
    const ent_scim_patch_attr_t *def, json_t *v, int flags, json_t **out);
static int ent_scim_patch_norm_simple(ent_scim_patch_ctx_t *ctx,
    const ent_scim_patch_attr_t *def, json_t *v, json_t **out);
static int ent_scim_patch_check(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *a);
static int ent_scim_patch_schemas(ent_scim_patch_ctx_t *ctx);


static const ent_scim_patch_attr_t  ent_scim_patch_user_name[] = {
    { "givenName", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "familyName", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "formatted", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "middleName", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "honorificPrefix", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "honorificSuffix", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
};


/* kept and returned, never acted on (migration 015) */

static const ent_scim_patch_attr_t  ent_scim_patch_user_address[] = {
    { "formatted", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "streetAddress", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "locality", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "region", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "postalCode", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "country", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "type", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "primary", ENT_SCIM_PATCH_BOOLEAN, 0, 0, 0, 0, NULL, 0 },
};


/* ims, photos, entitlements, roles, x509Certificates */

static const ent_scim_patch_attr_t  ent_scim_patch_user_plural[] = {
    { "value", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "display", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "type", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "primary", ENT_SCIM_PATCH_BOOLEAN, 0, 0, 0, 0, NULL, 0 },
};

#define ent_scim_patch_plural(name)                                          \
    { name, ENT_SCIM_PATCH_COMPLEX, 1, 0, 0, 0, ent_scim_patch_user_plural,  \
      sizeof(ent_scim_patch_user_plural) / sizeof(ent_scim_patch_attr_t) }


/* emails and phoneNumbers */

static const ent_scim_patch_attr_t  ent_scim_patch_user_contact[] = {
    { "value", ENT_SCIM_PATCH_STRING, 0, 0, 1, 0, NULL, 0 },
    { "type", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "primary", ENT_SCIM_PATCH_BOOLEAN, 0, 0, 0, 0, NULL, 0 },
    { "display", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
};


static const ent_scim_patch_attr_t  ent_scim_patch_user_group[] = {
    { "value", ENT_SCIM_PATCH_STRING, 0, 1, 0, 0, NULL, 0 },
    { "$ref", ENT_SCIM_PATCH_REFERENCE, 0, 1, 0, 0, NULL, 0 },
    { "display", ENT_SCIM_PATCH_STRING, 0, 1, 0, 0, NULL, 0 },
    { "type", ENT_SCIM_PATCH_STRING, 0, 1, 0, 0, NULL, 0 },
};


static const ent_scim_patch_attr_t  ent_scim_patch_user_manager[] = {
    { "value", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "$ref", ENT_SCIM_PATCH_REFERENCE, 0, 0, 0, 0, NULL, 0 },
    { "displayName", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
};


static const ent_scim_patch_attr_t  ent_scim_patch_user_enterprise[] = {
    { "employeeNumber", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "costCenter", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "organization", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "division", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "department", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "manager", ENT_SCIM_PATCH_COMPLEX, 0, 0, 0, 0,
      ent_scim_patch_user_manager,
      sizeof(ent_scim_patch_user_manager) / sizeof(ent_scim_patch_attr_t) },
};


static const ent_scim_patch_attr_t  ent_scim_patch_user[] = {
    { "id", ENT_SCIM_PATCH_STRING, 0, 1, 0, 0, NULL, 0 },
    { "meta", ENT_SCIM_PATCH_COMPLEX, 0, 1, 0, 0, NULL, 0 },
    { "externalId", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "userName", ENT_SCIM_PATCH_STRING, 0, 0, 1, 0, NULL, 0 },
    { "name", ENT_SCIM_PATCH_COMPLEX, 0, 0, 0, 0, ent_scim_patch_user_name,
      sizeof(ent_scim_patch_user_name) / sizeof(ent_scim_patch_attr_t) },
    { "displayName", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "nickName", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "profileUrl", ENT_SCIM_PATCH_REFERENCE, 0, 0, 0, 0, NULL, 0 },
    { "title", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "userType", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "preferredLanguage", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "locale", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "timezone", ENT_SCIM_PATCH_STRING, 0, 0, 0, 0, NULL, 0 },
    { "active", ENT_SCIM_PATCH_BOOLEAN, 0, 0, 0, 0, NULL, 0 },
    { "addresses", ENT_SCIM_PATCH_COMPLEX, 1, 0, 0, 0,
      ent_scim_patch_user_address,
      sizeof(ent_scim_patch_user_address) / sizeof(ent_scim_patch_attr_t) },
    ent_scim_patch_plural("ims"),
    ent_scim_patch_plural("photos"),
    ent_scim_patch_plural("entitlements"),
    ent_scim_patch_plural("roles"),
    ent_scim_patch_plural("x509Certificates"),
    { "emails", ENT_SCIM_PATCH_COMPLEX, 1, 0, 0, 0,
      ent_scim_patch_user_contact,
      sizeof(ent_scim_patch_user_contact) / sizeof(ent_scim_patch_attr_t) },
    { "phoneNumbers", ENT_SCIM_PATCH_COMPLEX, 1, 0, 0, 0,
      ent_scim_patch_user_contact,
      sizeof(ent_scim_patch_user_contact) / sizeof(ent_scim_patch_attr_t) },
    { "groups", ENT_SCIM_PATCH_COMPLEX, 1, 1, 0, 0,
      ent_scim_patch_user_group,
      sizeof(ent_scim_patch_user_group) / sizeof(ent_scim_patch_attr_t) },
    { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
      ENT_SCIM_PATCH_COMPLEX, 0, 0, 0, 1, ent_scim_patch_user_enterprise,
      sizeof(ent_scim_patch_user_enterprise)
      / sizeof(ent_scim_patch_attr_t) },
};


const ent_scim_patch_schema_t  ent_scim_patch_user_schema = {
    "urn:ietf:params:scim:schemas:core:2.0:User",
    ent_scim_patch_user,
    sizeof(ent_scim_patch_user) / sizeof(ent_scim_patch_attr_t)
};


/* a whole value of def: an array for a multi-valued one */

int
ent_scim_patch_norm(ent_scim_patch_ctx_t *ctx,
    const ent_scim_patch_attr_t *def, json_t *v, json_t **out)
{
    int  flags;

    if (def->multi) {
        return ent_scim_patch_norm_multi(ctx, def, v, out);
    }

    flags = ENT_SCIM_PATCH_UNWRAP;

    if (def->type == ENT_SCIM_PATCH_COMPLEX) {
        flags |= ENT_SCIM_PATCH_NULLS;
    }

    return ent_scim_patch_norm_value(ctx, def, v, flags, out);
}


int
ent_scim_patch_norm_multi(ent_scim_patch_ctx_t *ctx,
    const ent_scim_patch_attr_t *def, json_t *v, json_t **out)
{
    int      rc;
    size_t   i, n;
    json_t  *arr, *e, *norm;

    *out = NULL;

    n = json_is_array(v) ? json_array_size(v) : 1;

    if (n > ENT_SCIM_PATCH_MAX_VALUES) {
        return ent_scim_patch_fail(ctx, "invalidValue", "too many values");
    }

    arr = json_array();
    if (arr == NULL) {
        return ent_scim_patch_fail(ctx, NULL, "out of memory");
    }

    for (i = 0; i < n; i++) {
        e = json_is_array(v) ? json_array_get(v, i) : v;

        if (json_is_null(e)) {
            json_decref(arr);
            return ent_scim_patch_fail(ctx, "invalidValue",
                                       "a null value in an array");
        }

        rc = ent_scim_patch_norm_value(ctx, def, e, 0, &norm);

        if (rc != ENT_SCIM_OK) {
            json_decref(arr);
            return rc;
        }

        if (json_array_append_new(arr, norm) != 0) {
            json_decref(arr);
            return ent_scim_patch_fail(ctx, NULL, "out of memory");
        }
    }

    *out = arr;

    return ENT_SCIM_OK;
}


/* one value of def's type (an element, for a multi-valued def) */

int
ent_scim_patch_norm_value(ent_scim_patch_ctx_t *ctx,
    const ent_scim_patch_attr_t *def, json_t *v, int flags, json_t **out)
{
    json_t  *inner;

    *out = NULL;

    if ((flags & ENT_SCIM_PATCH_UNWRAP) && json_is_array(v)) {
        if (json_array_size(v) != 1) {
            return ent_scim_patch_fail(ctx, "invalidValue",
                                       "an array for a single-valued "
                                       "attribute");
        }

        v = json_array_get(v, 0);
    }

    if (def->type == ENT_SCIM_PATCH_COMPLEX) {
        return ent_scim_patch_norm_complex(ctx, def, v, flags, out);
    }

    if ((flags & ENT_SCIM_PATCH_UNWRAP) && json_is_object(v)
        && json_object_size(v) == 1)
    {
        inner = ent_scim_patch_get(v, "value");

        if (inner != NULL) {
            v = inner;
        }
    }

    return ent_scim_patch_norm_simple(ctx, def, v, out);
}


static int
ent_scim_patch_norm_complex(ent_scim_patch_ctx_t *ctx,
    const ent_scim_patch_attr_t *def, json_t *v, int flags, json_t **out)
{
    int                           rc;
    void                         *iter, *next;
    json_t                       *obj, *m, *norm, *tmp;
    const char                   *key;
    const ent_scim_patch_attr_t  *s;

    tmp = NULL;

    if (json_is_string(v)) {
        s = ent_scim_patch_find(def->subs, def->nsubs, "value");

        if (s == NULL || s->multi || s->type == ENT_SCIM_PATCH_COMPLEX) {
            return ent_scim_patch_fail(ctx, "invalidValue",
                                       "an object is expected");
        }

        tmp = json_object();

        if (tmp == NULL || json_object_set(tmp, s->name, v) != 0) {
            json_decref(tmp);
            return ent_scim_patch_fail(ctx, NULL, "out of memory");
        }

        v = tmp;
    }

    if (!json_is_object(v) || def->subs == NULL) {
        json_decref(tmp);
        return ent_scim_patch_fail(ctx, "invalidValue",
                                   "an object is expected");
    }

    obj = json_object();
    if (obj == NULL) {
        json_decref(tmp);
        return ent_scim_patch_fail(ctx, NULL, "out of memory");
    }

    rc = ENT_SCIM_OK;

    json_object_foreach(v, key, m) {
        s = ent_scim_patch_find(def->subs, def->nsubs, key);

        if (s == NULL) {
            rc = ent_scim_patch_fail(ctx, "invalidValue",
                                     "unknown sub-attribute in a value");
            break;
        }

        if (json_object_get(obj, s->name) != NULL) {
            rc = ent_scim_patch_fail(ctx, "invalidValue",
                                     "a sub-attribute is given twice");
            break;
        }

        if (s->readonly) {
            rc = ent_scim_patch_fail(ctx, "mutability",
                                     "a read-only attribute cannot be "
                                     "changed");
            break;
        }

        if (json_is_null(m)) {
            norm = json_null();

        } else if (s->multi) {
            rc = ent_scim_patch_norm_multi(ctx, s, m, &norm);

        } else {
            rc = ent_scim_patch_norm_value(ctx, s, m,
                                           ENT_SCIM_PATCH_UNWRAP
                                           | (flags & ENT_SCIM_PATCH_NULLS),
                                           &norm);
        }

        if (rc != ENT_SCIM_OK) {
            break;
        }

        if (json_object_set_new(obj, s->name, norm) != 0) {
            rc = ent_scim_patch_fail(ctx, NULL, "out of memory");
            break;
        }
    }

    json_decref(tmp);

    if (rc != ENT_SCIM_OK) {
        json_decref(obj);
        return rc;
    }

    if (!(flags & ENT_SCIM_PATCH_NULLS)) {
        iter = json_object_iter(obj);

        while (iter != NULL) {
            next = json_object_iter_next(obj, iter);

            if (json_is_null(json_object_iter_value(iter))) {
                json_object_del(obj, json_object_iter_key(iter));
            }

            iter = next;
        }
    }

    *out = obj;

    return ENT_SCIM_OK;
}


static int
ent_scim_patch_norm_simple(ent_scim_patch_ctx_t *ctx,
    const ent_scim_patch_attr_t *def, json_t *v, json_t **out)
{
    const char  *s;

    switch (def->type) {

    case ENT_SCIM_PATCH_STRING:
    case ENT_SCIM_PATCH_REFERENCE:
    case ENT_SCIM_PATCH_DATETIME:
        if (!json_is_string(v)) {
            return ent_scim_patch_fail(ctx, "invalidValue",
                                       "a string is expected");
        }

        if (json_string_length(v) > ENT_SCIM_PATCH_MAX_STRING) {
            return ent_scim_patch_fail(ctx, "invalidValue",
                                       "a string is too long");
        }

        if (def->type == ENT_SCIM_PATCH_DATETIME
            && ent_scim_datetime(json_string_value(v), json_string_length(v),
                                 NULL, NULL) != 0)
        {
            return ent_scim_patch_fail(ctx, "invalidValue",
                                       "a date-time is expected");
        }

        *out = json_incref(v);
        break;

    case ENT_SCIM_PATCH_BOOLEAN:
        if (json_is_boolean(v)) {
            *out = json_incref(v);
            break;
        }

        /* "True" and "False", as Entra sends them */

        s = json_string_value(v);

        if (s != NULL && json_string_length(v) == strlen(s)
            && (strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0))
        {
            *out = json_boolean(s[0] == 't' || s[0] == 'T');
            break;
        }

        return ent_scim_patch_fail(ctx, "invalidValue",
                                   "a boolean is expected");

    case ENT_SCIM_PATCH_INTEGER:
        if (!json_is_integer(v)) {
            return ent_scim_patch_fail(ctx, "invalidValue",
                                       "an integer is expected");
        }

        *out = json_incref(v);
        break;

    case ENT_SCIM_PATCH_DECIMAL:
        if (!json_is_number(v)) {
            return ent_scim_patch_fail(ctx, "invalidValue",
                                       "a number is expected");
        }

        *out = json_incref(v);
        break;

    default:
        return ent_scim_patch_fail(ctx, NULL, "bad schema");
    }

    if (*out == NULL) {
        return ent_scim_patch_fail(ctx, NULL, "out of memory");
    }

    return ENT_SCIM_OK;
}


/* after all operations: empty values gone, required ones there, schemas */

int
ent_scim_patch_finish(ent_scim_patch_ctx_t *ctx)
{
    int                           rc;
    size_t                        i, j;
    json_t                       *ext;
    const ent_scim_patch_attr_t  *a;

    for (i = 0; i < ctx->schema->nattrs; i++) {
        a = &ctx->schema->attrs[i];

        if (a->readonly) {
            continue;
        }

        if (!a->extension) {
            rc = ent_scim_patch_check(ctx, ctx->res, a);
            if (rc != ENT_SCIM_OK) {
                return rc;
            }

            continue;
        }

        ext = ent_scim_patch_get(ctx->res, a->name);

        if (json_is_object(ext)) {
            for (j = 0; j < a->nsubs; j++) {
                rc = ent_scim_patch_check(ctx, ext, &a->subs[j]);
                if (rc != ENT_SCIM_OK) {
                    return rc;
                }
            }
        }

        ent_scim_patch_tidy(ctx->res, a);
    }

    return ent_scim_patch_schemas(ctx);
}


static int
ent_scim_patch_check(ent_scim_patch_ctx_t *ctx, json_t *obj,
    const ent_scim_patch_attr_t *a)
{
    size_t   i, j;
    json_t  *cur, *e, *m;

    cur = ent_scim_patch_get(obj, a->name);

    if (a->type == ENT_SCIM_PATCH_COMPLEX && !a->multi
        && json_is_object(cur))
    {
        for (i = 0; i < a->nsubs; i++) {
            ent_scim_patch_tidy(cur, &a->subs[i]);
        }
    }

    ent_scim_patch_tidy(obj, a);

    cur = ent_scim_patch_get(obj, a->name);

    if (a->required && !a->multi
        && (cur == NULL || json_is_null(cur)
            || (a->type == ENT_SCIM_PATCH_STRING
                && (!json_is_string(cur) || json_string_length(cur) == 0))))
    {
        return ent_scim_patch_fail(ctx, "invalidValue",
                                   "a required attribute has no value");
    }

    if (!a->multi || a->type != ENT_SCIM_PATCH_COMPLEX
        || !json_is_array(cur))
    {
        return ENT_SCIM_OK;
    }

    json_array_foreach(cur, i, e) {
        for (j = 0; j < a->nsubs; j++) {
            if (!a->subs[j].required) {
                continue;
            }

            m = ent_scim_patch_get(e, a->subs[j].name);

            if (m == NULL || json_is_null(m)
                || (json_is_string(m) && json_string_length(m) == 0))
            {
                return ent_scim_patch_fail(ctx, "invalidValue",
                                           "a value lacks a required "
                                           "sub-attribute");
            }
        }
    }

    return ENT_SCIM_OK;
}


/* "schemas" lists exactly the extensions present */

static int
ent_scim_patch_schemas(ent_scim_patch_ctx_t *ctx)
{
    int                           present;
    size_t                        i, j;
    json_t                       *schemas, *e;
    const ent_scim_patch_attr_t  *a;

    schemas = ent_scim_patch_get(ctx->res, "schemas");

    if (!json_is_array(schemas)) {
        return ENT_SCIM_OK;
    }

    for (i = 0; i < ctx->schema->nattrs; i++) {
        a = &ctx->schema->attrs[i];

        if (!a->extension) {
            continue;
        }

        present = json_is_object(ent_scim_patch_get(ctx->res, a->name));

        for (j = json_array_size(schemas); j-- > 0; /* void */) {
            e = json_array_get(schemas, j);

            if (json_is_string(e)
                && strcasecmp(json_string_value(e), a->name) == 0)
            {
                if (present) {
                    break;
                }

                json_array_remove(schemas, j);
            }
        }

        if (present && j == (size_t) -1
            && json_array_append_new(schemas, json_string(a->name)) != 0)
        {
            return ent_scim_patch_fail(ctx, NULL, "out of memory");
        }
    }

    return ENT_SCIM_OK;
}


/* an empty array, or an empty object of a complex attribute, is no value */

void
ent_scim_patch_tidy(json_t *obj, const ent_scim_patch_attr_t *a)
{
    json_t  *cur;

    cur = ent_scim_patch_get(obj, a->name);

    if ((json_is_array(cur) && json_array_size(cur) == 0)
        || (a->type == ENT_SCIM_PATCH_COMPLEX && !a->multi
            && json_is_object(cur) && json_object_size(cur) == 0))
    {
        ent_scim_patch_del(obj, a->name);
    }
}


const ent_scim_patch_attr_t *
ent_scim_patch_find(const ent_scim_patch_attr_t *defs, size_t n,
    const char *name)
{
    size_t  i;

    if (defs == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        if (strcasecmp(defs[i].name, name) == 0) {
            return &defs[i];
        }
    }

    return NULL;
}


/* the resource's members spelled as the schema has them */

static int ent_scim_patch_canon_obj(json_t *obj,
    const ent_scim_patch_attr_t *defs, size_t n, int top, int rename);


int
ent_scim_patch_canon(json_t *obj, const ent_scim_patch_schema_t *schema)
{
    if (!json_is_object(obj)) {
        return 0;
    }

    /* a pass that only checks, then the one that renames: all or none */

    if (ent_scim_patch_canon_obj(obj, schema->attrs, schema->nattrs, 1, 0)
        != 0)
    {
        return -1;
    }

    return ent_scim_patch_canon_obj(obj, schema->attrs, schema->nattrs, 1, 1);
}


static int
ent_scim_patch_canon_obj(json_t *obj, const ent_scim_patch_attr_t *defs,
    size_t n, int top, int rename)
{
    size_t                        i, j, k, nkeys;
    json_t                       *v, *e, *have;
    const char                   *key, *name, **keys;
    const ent_scim_patch_attr_t  *def;

    nkeys = json_object_size(obj);

    if (nkeys == 0) {
        return 0;
    }

    /* the keys first: renaming changes the object */

    keys = malloc(nkeys * sizeof(char *));
    if (keys == NULL) {
        return -1;
    }

    k = 0;

    json_object_foreach(obj, key, v) {
        keys[k++] = key;
    }

    for (i = 0; i < k; i++) {
        key = keys[i];
        v = json_object_get(obj, key);

        def = ent_scim_patch_find(defs, n, key);

        if (def != NULL) {
            name = def->name;

        } else if (top && strcasecmp(key, "schemas") == 0) {
            name = "schemas";

        } else {
            continue;
        }

        if (!rename && ent_scim_patch_member(obj, name, &have) != 0) {
            /* "emails" and "Emails" */
            free(keys);
            return -1;
        }

        if (rename && strcmp(key, name) != 0) {
            json_incref(v);

            if (json_object_set_new(obj, name, v) != 0) {
                free(keys);
                return -1;
            }

            (void) json_object_del(obj, key);
        }

        if (def == NULL || def->subs == NULL) {
            continue;
        }

        if (json_is_object(v)
            && ent_scim_patch_canon_obj(v, def->subs, def->nsubs, 0, rename)
               != 0)
        {
            free(keys);
            return -1;
        }

        if (json_is_array(v)) {
            json_array_foreach(v, j, e) {
                if (json_is_object(e)
                    && ent_scim_patch_canon_obj(e, def->subs, def->nsubs, 0,
                                                rename)
                       != 0)
                {
                    free(keys);
                    return -1;
                }
            }
        }
    }

    free(keys);

    return 0;
}


/* the member of that name, case-insensitively; -1: it is there twice */

int
ent_scim_patch_member(json_t *obj, const char *name, json_t **value)
{
    json_t      *v;
    const char  *key;

    *value = NULL;

    json_object_foreach(obj, key, v) {
        if (strcasecmp(key, name) == 0) {
            if (*value != NULL) {
                return -1;
            }

            *value = v;
        }
    }

    return 0;
}


json_t *
ent_scim_patch_get(json_t *obj, const char *name)
{
    json_t      *v;
    const char  *key;

    if (!json_is_object(obj)) {
        return NULL;
    }

    v = json_object_get(obj, name);
    if (v != NULL) {
        return v;
    }

    json_object_foreach(obj, key, v) {
        if (strcasecmp(key, name) == 0) {
            return v;
        }
    }

    return NULL;
}


/*
 * Sets the member under this spelling, in its place when it is there,
 * other spellings removed; steals value.
 */

int
ent_scim_patch_set(json_t *obj, const char *name, json_t *value)
{
    void        *iter, *next;
    const char  *key;

    if (value == NULL) {
        return -1;
    }

    iter = json_object_iter(obj);

    while (iter != NULL) {
        next = json_object_iter_next(obj, iter);
        key = json_object_iter_key(iter);

        if (strcasecmp(key, name) == 0 && strcmp(key, name) != 0) {
            json_object_del(obj, key);
        }

        iter = next;
    }

    return json_object_set_new(obj, name, value);
}


void
ent_scim_patch_del(json_t *obj, const char *name)
{
    void  *iter, *next;

    iter = json_object_iter(obj);

    while (iter != NULL) {
        next = json_object_iter_next(obj, iter);

        if (strcasecmp(json_object_iter_key(iter), name) == 0) {
            json_object_del(obj, json_object_iter_key(iter));
        }

        iter = next;
    }
}
