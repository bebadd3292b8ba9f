/*
 * libFuzzer target: SCIM PATCH (ngx_ent_scim_patch.c).  The input is a
 * PatchOp body, applied to a fixed sample User.
 *
 * Checks: a result code from the set, a NUL-terminated error text and a
 * scimType on failure, the resource then untouched; on success a new
 * object with a non-empty userName, id, meta and groups as they were, at
 * most one primary email and phone number, no empty arrays or complex
 * values, "schemas" listing the enterprise URN exactly when the
 * extension is there, and JSON that dumps and loads back equal.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_scim_patch.h"


#define FUZZ_ENT  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_failed(int rc, const char *scim_type, const char *err,
    json_t *res, json_t *orig, json_t *before);
static void fuzz_patched(json_t *res, json_t *orig);
static void fuzz_same(json_t *a, json_t *b, const char *name);
static void fuzz_primary(json_t *res, const char *name);
static void fuzz_no_empty(json_t *obj);
static int fuzz_lists(json_t *schemas, const char *urn);


static const char  fuzz_user[] =
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\","
    "\"" FUZZ_ENT "\"],"
    "\"id\":\"2819c223-7f76-453a-919d-413861904646\","
    "\"externalId\":\"bjensen\",\"userName\":\"bjensen@example.com\","
    "\"name\":{\"givenName\":\"Barbara\",\"familyName\":\"Jensen\","
    "\"formatted\":\"Ms. Barbara J Jensen\"},"
    "\"displayName\":\"Babs Jensen\",\"active\":true,"
    "\"emails\":[{\"value\":\"bjensen@example.com\",\"type\":\"work\","
    "\"primary\":true},{\"value\":\"babs@jensen.org\",\"type\":\"home\"}],"
    "\"phoneNumbers\":[{\"value\":\"555-555-8377\",\"type\":\"work\"}],"
    "\"groups\":[{\"value\":\"e9e30dba-f08f-4109-8486-d5c6a331660a\","
    "\"display\":\"Tour Guides\"}],"
    "\"" FUZZ_ENT "\":{\"employeeNumber\":\"701984\","
    "\"department\":\"Tour Operations\",\"manager\":{\"value\":"
    "\"26118915-6090-4610-87e4-49d8ca9f808d\",\"displayName\":"
    "\"John Smith\"}},"
    "\"meta\":{\"resourceType\":\"User\","
    "\"created\":\"2010-01-23T04:56:22Z\","
    "\"lastModified\":\"2011-05-13T04:42:34Z\","
    "\"version\":\"W/\\\"3694e05e9dff591\\\"\"}}";


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          rc;
    char        *copy, err[48];
    json_t      *res, *orig, *before;
    const char  *scim_type;

    orig = json_loads(fuzz_user, 0, NULL);
    if (orig == NULL) {
        abort();
    }

    before = json_deep_copy(orig);

    /* an exact-size heap copy, so that ASan sees every overread */

    copy = malloc(size ? size : 1);
    if (copy == NULL || before == NULL) {
        free(copy);
        json_decref(orig);
        json_decref(before);
        return 0;
    }

    memcpy(copy, data, size);
    memset(err, 'x', sizeof(err));
    scim_type = "unset";

    res = orig;
    rc = ent_scim_patch_apply(&res, copy, size, &ent_scim_patch_user_schema,
                              &scim_type, err, sizeof(err));

    free(copy);

    if (rc == ENT_SCIM_OK) {
        if (res == orig || scim_type != NULL || !json_equal(orig, before)) {
            abort();
        }

        fuzz_patched(res, orig);
        json_decref(res);

    } else {
        fuzz_failed(rc, scim_type, err, res, orig, before);
    }

    json_decref(orig);
    json_decref(before);

    return 0;
}


static void
fuzz_failed(int rc, const char *scim_type, const char *err, json_t *res,
    json_t *orig, json_t *before)
{
    static const char  *types[] = {
        "invalidSyntax", "invalidPath", "invalidValue", "noTarget",
        "mutability", "tooMany"
    };

    size_t  i;

    if (res != orig || !json_equal(orig, before)
        || memchr(err, '\0', 48) == NULL || err[0] == '\0')
    {
        abort();
    }

    /* nothing here runs out of memory, so no internal error */

    if (rc == ENT_SCIM_INTERNAL || scim_type == NULL) {
        abort();
    }

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(scim_type, types[i]) == 0) {
            break;
        }
    }

    if (i == sizeof(types) / sizeof(types[0])) {
        abort();
    }

    if (rc != ENT_SCIM_SYNTAX && rc != ENT_SCIM_ATTR && rc != ENT_SCIM_TYPE
        && rc != ENT_SCIM_COUNT && rc != ENT_SCIM_LENGTH
        && rc != ENT_SCIM_ENCODING)
    {
        abort();
    }
}


static void
fuzz_patched(json_t *res, json_t *orig)
{
    char    *dump;
    json_t  *back, *user, *ext;

    if (!json_is_object(res)) {
        abort();
    }

    user = json_object_get(res, "userName");

    if (!json_is_string(user) || json_string_length(user) == 0) {
        abort();
    }

    fuzz_same(res, orig, "id");
    fuzz_same(res, orig, "meta");
    fuzz_same(res, orig, "groups");
    fuzz_primary(res, "emails");
    fuzz_primary(res, "phoneNumbers");
    fuzz_no_empty(res);

    ext = json_object_get(res, FUZZ_ENT);

    if (ext != NULL) {
        if (!json_is_object(ext)) {
            abort();
        }

        fuzz_no_empty(ext);
    }

    if ((ext != NULL) != fuzz_lists(json_object_get(res, "schemas"),
                                    FUZZ_ENT))
    {
        abort();
    }

    dump = json_dumps(res, JSON_COMPACT);
    if (dump == NULL) {
        abort();
    }

    back = json_loads(dump, JSON_REJECT_DUPLICATES, NULL);

    if (back == NULL || !json_equal(back, res)) {
        abort();
    }

    json_decref(back);
    free(dump);
}


static void
fuzz_same(json_t *a, json_t *b, const char *name)
{
    if (!json_equal(json_object_get(a, name), json_object_get(b, name))) {
        abort();
    }
}


static void
fuzz_primary(json_t *res, const char *name)
{
    size_t   i, n;
    json_t  *arr, *e;

    arr = json_object_get(res, name);

    if (arr == NULL) {
        return;
    }

    if (!json_is_array(arr) || json_array_size(arr) == 0
        || json_array_size(arr) > ENT_SCIM_PATCH_MAX_VALUES)
    {
        abort();
    }

    n = 0;

    json_array_foreach(arr, i, e) {
        if (!json_is_object(e)
            || !json_is_string(json_object_get(e, "value")))
        {
            abort();
        }

        n += json_is_true(json_object_get(e, "primary"));
    }

    if (n > 1) {
        abort();
    }
}


static void
fuzz_no_empty(json_t *obj)
{
    json_t      *v;
    const char  *key;

    json_object_foreach(obj, key, v) {
        if ((json_is_array(v) && json_array_size(v) == 0)
            || (json_is_object(v) && json_object_size(v) == 0)
            || json_is_null(v))
        {
            abort();
        }
    }
}


static int
fuzz_lists(json_t *schemas, const char *urn)
{
    size_t   i, n;
    json_t  *s;

    n = 0;

    json_array_foreach(schemas, i, s) {
        n += json_is_string(s) && strcmp(json_string_value(s), urn) == 0;
    }

    if (n > 1) {
        abort();
    }

    return n == 1;
}
