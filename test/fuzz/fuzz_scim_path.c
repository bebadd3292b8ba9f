/*
 * libFuzzer target: SCIM PATCH paths, and the evaluation of their bracket
 * filters against JSON elements.
 *
 * The input is a path and, after the first NUL byte, a JSON document: an
 * array of elements (or one element) to match the path's filter against;
 * without a NUL, a few fixed elements are used.
 *
 * Checks: a result code from the set and a NUL-terminated error text, an
 * empty structure on failure; lower-case names; matching gives 0 or 1,
 * "not (f)" the opposite of f, with and without case_exact.  A path
 * "attr[f]" is also a filter, and the filter parser must read it to the
 * same tree.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_scim_path.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_path(const char *path, size_t len, json_t *elems);
static void fuzz_match(ent_scim_path_t *p, json_t *elem);
static void fuzz_lower(const char *s);
static int fuzz_same(const ent_scim_node_t *a, const ent_scim_node_t *b);
static int fuzz_same_str(const char *a, const char *b);


static const char  fuzz_elems[] =
    "[{\"value\":\"bjensen@example.com\",\"type\":\"work\",\"primary\":true},"
    "{\"Value\":\"BJ@Example.org\",\"TYPE\":\"Home\",\"primary\":false,"
    "\"display\":\"\"},"
    "{\"value\":\"2819c223-7f76-453a-919d-413861904646\","
    "\"$ref\":\"https://example.com/v2/Users/2819c223\",\"n\":42,"
    "\"x\":1.5,\"when\":\"2011-05-13T04:42:34Z\"},"
    "\"urn:ietf:params:scim:schemas:core:2.0:User\", 7, null, [], {}]";


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *copy;
    size_t          n;
    json_t         *elems;
    const uint8_t  *nul;

    nul = memchr(data, '\0', size);
    n = nul ? (size_t) (nul - data) : size;

    elems = NULL;

    if (nul != NULL) {
        elems = json_loadb((const char *) nul + 1, size - n - 1,
                           JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    }

    if (elems == NULL) {
        elems = json_loads(fuzz_elems, 0, NULL);
        if (elems == NULL) {
            abort();
        }
    }

    /* an exact-size heap copy, so that ASan sees every overread */

    copy = malloc(n ? n : 1);
    if (copy == NULL) {
        json_decref(elems);
        return 0;
    }

    memcpy(copy, data, n);

    fuzz_path(copy, n, elems);

    free(copy);
    json_decref(elems);

    return 0;
}


static void
fuzz_path(const char *path, size_t len, json_t *elems)
{
    int               rc, frc;
    char              err[64];
    size_t            i;
    json_t           *e;
    ent_scim_path_t   p;
    ent_scim_node_t  *root;

    memset(err, 'x', sizeof(err));

    rc = ent_scim_path_parse(path, len, &p, err, sizeof(err));

    if (rc < ENT_SCIM_OK || rc >= ENT_SCIM_INTERNAL) {
        abort();
    }

    if (rc != ENT_SCIM_OK) {
        if (p.uri != NULL || p.attr != NULL || p.sub != NULL
            || p.filter != NULL || memchr(err, '\0', sizeof(err)) == NULL
            || err[0] == '\0')
        {
            abort();
        }

        return;
    }

    if (p.attr == NULL) {
        abort();
    }

    fuzz_lower(p.uri);
    fuzz_lower(p.attr);
    fuzz_lower(p.sub);

    if (json_is_array(elems)) {
        json_array_foreach(elems, i, e) {
            fuzz_match(&p, e);
        }

    } else {
        fuzz_match(&p, elems);
    }

    /* "attr[f]" is a filter too, with the same tree */

    if (p.filter != NULL && p.sub == NULL) {
        frc = ent_scim_filter_parse(path, len, &root, err, sizeof(err));

        if (frc != ENT_SCIM_OK || root->type != ENT_SCIM_N_VALUE
            || !fuzz_same_str(root->uri, p.uri)
            || !fuzz_same_str(root->attr, p.attr)
            || !fuzz_same(root->left, p.filter))
        {
            abort();
        }

        ent_scim_node_free(root);
    }

    ent_scim_path_free(&p);

    if (p.attr != NULL || p.filter != NULL) {
        abort();
    }
}


static void
fuzz_match(ent_scim_path_t *p, json_t *elem)
{
    int              m, mx, mn;
    ent_scim_node_t  not;

    p->case_exact = 0;
    m = ent_scim_path_match(p, elem);

    p->case_exact = 1;
    mx = ent_scim_path_match(p, elem);

    if ((m != 0 && m != 1) || (mx != 0 && mx != 1)) {
        abort();
    }

    if (p->filter == NULL) {
        if (!m) {
            abort();
        }

        return;
    }

    memset(&not, 0, sizeof(ent_scim_node_t));
    not.type = ENT_SCIM_N_NOT;
    not.left = p->filter;

    mn = ent_scim_node_match(&not, elem, 0);

    if (mn == m) {
        abort();
    }

    mn = ent_scim_node_match(&not, elem, 1);

    if (mn == mx) {
        abort();
    }
}


static void
fuzz_lower(const char *s)
{
    if (s == NULL) {
        return;
    }

    for ( ; *s; s++) {
        if (*s >= 'A' && *s <= 'Z') {
            abort();
        }
    }
}


static int
fuzz_same(const ent_scim_node_t *a, const ent_scim_node_t *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }

    return a->type == b->type && a->op == b->op && a->vtype == b->vtype
           && a->value_len == b->value_len
           && fuzz_same_str(a->uri, b->uri)
           && fuzz_same_str(a->attr, b->attr)
           && fuzz_same_str(a->sub, b->sub)
           && fuzz_same_str(a->value, b->value)
           && fuzz_same(a->left, b->left) && fuzz_same(a->right, b->right);
}


static int
fuzz_same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }

    return strcmp(a, b) == 0;
}
