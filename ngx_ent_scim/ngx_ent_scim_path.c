/*
 * ngx_ent SCIM: PATCH paths and the evaluation of their bracket filters
 * against JSON elements, I/O-free (see ngx_ent_scim_path.h).  The parsing
 * is ngx_ent_scim_parse.c's.
 */


#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ngx_ent_scim_path.h"


static int ent_scim_match_cmp(const ent_scim_node_t *n, json_t *elem,
    int ce);
static int ent_scim_match_value(const ent_scim_node_t *n, json_t *v,
    int ce);
static int ent_scim_match_string(const ent_scim_node_t *n, const char *a,
    size_t alen, int ce);
static int ent_scim_match_number(const ent_scim_node_t *n, json_t *v);
static int ent_scim_order(int op, int cmp);
static int ent_scim_fold(int c, int ce);
static int ent_scim_bytes_cmp(const char *a, size_t alen, const char *b,
    size_t blen, int ce);
static int ent_scim_bytes_eq(const char *a, const char *b, size_t n,
    int ce);


int
ent_scim_path_parse(const char *path, size_t len, ent_scim_path_t *out,
    char *err, size_t errlen)
{
    int               rc;
    ent_scim_node_t  *node;

    memset(out, 0, sizeof(ent_scim_path_t));

    rc = ent_scim_path_parse_node(path, len, &node, err, errlen);
    if (rc != ENT_SCIM_OK) {
        return rc;
    }

    out->uri = node->uri;
    out->attr = node->attr;
    out->sub = node->sub;
    out->filter = node->left;

    node->uri = NULL;
    node->attr = NULL;
    node->sub = NULL;
    node->left = NULL;
    ent_scim_node_free(node);

    return ENT_SCIM_OK;
}


void
ent_scim_path_free(ent_scim_path_t *p)
{
    if (p == NULL) {
        return;
    }

    free(p->uri);
    free(p->attr);
    free(p->sub);
    ent_scim_node_free(p->filter);
    memset(p, 0, sizeof(ent_scim_path_t));
}


int
ent_scim_path_match(const ent_scim_path_t *p, json_t *elem)
{
    if (p->filter == NULL) {
        return 1;
    }

    return ent_scim_node_match(p->filter, elem, p->case_exact);
}


int
ent_scim_node_match(const ent_scim_node_t *n, json_t *elem, int case_exact)
{
    if (n == NULL) {
        return 0;
    }

    switch (n->type) {

    case ENT_SCIM_N_AND:
        return ent_scim_node_match(n->left, elem, case_exact)
               && ent_scim_node_match(n->right, elem, case_exact);

    case ENT_SCIM_N_OR:
        return ent_scim_node_match(n->left, elem, case_exact)
               || ent_scim_node_match(n->right, elem, case_exact);

    case ENT_SCIM_N_NOT:
        return !ent_scim_node_match(n->left, elem, case_exact);

    case ENT_SCIM_N_CMP:
        if (n->uri != NULL || n->sub != NULL) {
            return 0;
        }

        return ent_scim_match_cmp(n, elem, case_exact);

    default:
        return 0;
    }
}


/* any member of that name (case-insensitively) that compares */

static int
ent_scim_match_cmp(const ent_scim_node_t *n, json_t *elem, int ce)
{
    json_t      *v;
    const char  *key;

    if (elem == NULL || n->attr == NULL) {
        return 0;
    }

    if (!json_is_object(elem)) {
        return strcmp(n->attr, "value") == 0
               && ent_scim_match_value(n, elem, ce);
    }

    json_object_foreach(elem, key, v) {
        if (strcasecmp(key, n->attr) == 0
            && ent_scim_match_value(n, v, ce))
        {
            return 1;
        }
    }

    return 0;
}


static int
ent_scim_match_value(const ent_scim_node_t *n, json_t *v, int ce)
{
    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    if (n->op == ENT_SCIM_OP_PR) {
        if (json_is_string(v)) {
            return json_string_length(v) > 0;
        }

        if (json_is_array(v)) {
            return json_array_size(v) > 0;
        }

        if (json_is_object(v)) {
            return json_object_size(v) > 0;
        }

        return 1;
    }

    switch (n->vtype) {

    case ENT_SCIM_V_STRING:
        if (!json_is_string(v) || n->value == NULL) {
            return 0;
        }

        return ent_scim_match_string(n, json_string_value(v),
                                     json_string_length(v), ce);

    case ENT_SCIM_V_TRUE:
    case ENT_SCIM_V_FALSE:
        if (!json_is_boolean(v)) {
            return 0;
        }

        if (n->op == ENT_SCIM_OP_EQ) {
            return json_is_true(v) == (n->vtype == ENT_SCIM_V_TRUE);
        }

        if (n->op == ENT_SCIM_OP_NE) {
            return json_is_true(v) != (n->vtype == ENT_SCIM_V_TRUE);
        }

        return 0;

    case ENT_SCIM_V_NUMBER:
        if (!json_is_number(v) || n->value == NULL) {
            return 0;
        }

        return ent_scim_match_number(n, v);

    default:
        return 0;
    }
}


static int
ent_scim_match_string(const ent_scim_node_t *n, const char *a, size_t alen,
    int ce)
{
    int          cmp;
    long         ans, bns;
    size_t       i, blen;
    int64_t      as, bs;
    const char  *b;

    b = n->value;
    blen = n->value_len;

    switch (n->op) {

    case ENT_SCIM_OP_CO:
        if (blen > alen) {
            return 0;
        }

        for (i = 0; i + blen <= alen; i++) {
            if (ent_scim_bytes_eq(a + i, b, blen, ce)) {
                return 1;
            }
        }

        return 0;

    case ENT_SCIM_OP_SW:
        return blen <= alen && ent_scim_bytes_eq(a, b, blen, ce);

    case ENT_SCIM_OP_EW:
        return blen <= alen && ent_scim_bytes_eq(a + alen - blen, b, blen,
                                                 ce);
    }

    if (ent_scim_datetime(a, alen, &as, &ans) == 0
        && ent_scim_datetime(b, blen, &bs, &bns) == 0)
    {
        cmp = (as > bs) - (as < bs);

        if (cmp == 0) {
            cmp = (ans > bns) - (ans < bns);
        }

    } else {
        cmp = ent_scim_bytes_cmp(a, alen, b, blen, ce);
    }

    return ent_scim_order(n->op, cmp);
}


static int
ent_scim_match_number(const ent_scim_node_t *n, json_t *v)
{
    int          cmp;
    char        *end;
    double       a, b;
    long long    bi;
    json_int_t   ai;

    if (json_is_integer(v) && strpbrk(n->value, ".eE") == NULL) {
        errno = 0;
        bi = strtoll(n->value, &end, 10);

        if (errno == 0 && *end == '\0') {
            ai = json_integer_value(v);
            cmp = (ai > bi) - (ai < bi);

            return ent_scim_order(n->op, cmp);
        }
    }

    a = json_number_value(v);
    b = strtod(n->value, &end);

    if (*end != '\0' || a != a || b != b) {
        return 0;
    }

    cmp = (a > b) - (a < b);

    return ent_scim_order(n->op, cmp);
}


/* the comparison's answer for "element <op> value" given their order */

static int
ent_scim_order(int op, int cmp)
{
    switch (op) {

    case ENT_SCIM_OP_EQ:
        return cmp == 0;

    case ENT_SCIM_OP_NE:
        return cmp != 0;

    case ENT_SCIM_OP_GT:
        return cmp > 0;

    case ENT_SCIM_OP_GE:
        return cmp >= 0;

    case ENT_SCIM_OP_LT:
        return cmp < 0;

    case ENT_SCIM_OP_LE:
        return cmp <= 0;

    default:
        return 0;
    }
}


static int
ent_scim_fold(int c, int ce)
{
    c &= 0xff;

    if (!ce && c >= 'A' && c <= 'Z') {
        c |= 0x20;
    }

    return c;
}


static int
ent_scim_bytes_cmp(const char *a, size_t alen, const char *b, size_t blen,
    int ce)
{
    int     x, y;
    size_t  i;

    for (i = 0; i < alen && i < blen; i++) {
        x = ent_scim_fold(a[i], ce);
        y = ent_scim_fold(b[i], ce);

        if (x != y) {
            return x < y ? -1 : 1;
        }
    }

    return (alen > blen) - (alen < blen);
}


static int
ent_scim_bytes_eq(const char *a, const char *b, size_t n, int ce)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (ent_scim_fold(a[i], ce) != ent_scim_fold(b[i], ce)) {
            return 0;
        }
    }

    return 1;
}
