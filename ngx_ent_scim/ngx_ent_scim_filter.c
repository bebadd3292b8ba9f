/*
 * ngx_ent SCIM: filters compiled into parameterized SQL, I/O-free (see
 * ngx_ent_scim_filter.h).  The parser, whose tree this walks, is
 * ngx_ent_scim_parse.c's.
 *
 * The compiler walks the tree, whose depth is bounded by the comparison
 * and nesting limits.  The SQL is written only from the caller's table,
 * the fixed texts below and parameter numbers.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ngx_ent_scim_int.h"


#define ENT_SCIM_MAX_PREFIX    16
#define ENT_SCIM_CORE_USER     "urn:ietf:params:scim:schemas:core:2.0:user"
#define ENT_SCIM_CORE_GROUP    "urn:ietf:params:scim:schemas:core:2.0:group"


typedef struct {
    char                     *data;
    size_t                    len;
    size_t                    size;
    unsigned                  failed:1;
} ent_scim_buf_t;


typedef struct {
    ent_scim_buf_t            sql;
    char                    **params;
    size_t                    nparams;
    const ent_scim_attr_t    *attrs;
    size_t                    nattrs;
    const char               *prefix;
    int                       rc;
    const char               *msg;
} ent_scim_compiler_t;


static void ent_scim_buf_add(ent_scim_buf_t *b, const char *s);
static int ent_scim_cfail(ent_scim_compiler_t *c, int rc, const char *msg);
static int ent_scim_prefix_ok(const char *prefix);
static const ent_scim_attr_t *ent_scim_find(ent_scim_compiler_t *c,
    const char *base, const char *sub);
static int ent_scim_known_base(ent_scim_compiler_t *c, const char *base);
static int ent_scim_base(const ent_scim_node_t *n, int i, char *base,
    size_t size);
static int ent_scim_emit(ent_scim_compiler_t *c, const ent_scim_node_t *n,
    const char *base);
static int ent_scim_emit_attr(ent_scim_compiler_t *c,
    const ent_scim_node_t *n);
static int ent_scim_emit_value(ent_scim_compiler_t *c,
    const ent_scim_node_t *n);
static int ent_scim_emit_exists(ent_scim_compiler_t *c,
    const ent_scim_attr_t *m, const ent_scim_node_t *n,
    const ent_scim_attr_t *row, const char *base);
static int ent_scim_emit_cmp(ent_scim_compiler_t *c,
    const ent_scim_node_t *n, const ent_scim_attr_t *row);
static int ent_scim_param(ent_scim_compiler_t *c, const ent_scim_node_t *n,
    int like);


/* the comparison operators and their SQL; pr is written apart */
const ent_scim_op_t  ent_scim_ops[ENT_SCIM_NOPS] = {
    { "eq", ENT_SCIM_OP_EQ, " = " },
    { "ne", ENT_SCIM_OP_NE, " <> " },
    { "co", ENT_SCIM_OP_CO, " LIKE " },
    { "sw", ENT_SCIM_OP_SW, " LIKE " },
    { "ew", ENT_SCIM_OP_EW, " LIKE " },
    { "pr", ENT_SCIM_OP_PR, NULL },
    { "gt", ENT_SCIM_OP_GT, " > " },
    { "ge", ENT_SCIM_OP_GE, " >= " },
    { "lt", ENT_SCIM_OP_LT, " < " },
    { "le", ENT_SCIM_OP_LE, " <= " }
};


/* compiling */

int
ent_scim_filter_compile(const char *filter, size_t len,
    const ent_scim_attr_t *attrs, size_t nattrs, const char *param_prefix,
    ent_scim_sql_t *out, char *err, size_t errlen)
{
    int                   rc;
    size_t                i;
    ent_scim_node_t      *root;
    ent_scim_compiler_t   c;

    memset(out, 0, sizeof(ent_scim_sql_t));

    if ((attrs == NULL && nattrs != 0) || !ent_scim_prefix_ok(param_prefix))
    {
        ent_scim_error(err, errlen, "bad attribute table or prefix");
        return ENT_SCIM_INTERNAL;
    }

    rc = ent_scim_filter_parse(filter, len, &root, err, errlen);
    if (rc != ENT_SCIM_OK) {
        return rc;
    }

    memset(&c, 0, sizeof(ent_scim_compiler_t));
    c.attrs = attrs;
    c.nattrs = nattrs;
    c.prefix = param_prefix;

    c.params = calloc(ENT_SCIM_MAX_CMP, sizeof(char *));
    if (c.params == NULL) {
        ent_scim_node_free(root);
        ent_scim_error(err, errlen, "out of memory");
        return ENT_SCIM_INTERNAL;
    }

    if (ent_scim_emit(&c, root, NULL) == 0 && c.sql.failed) {
        ent_scim_cfail(&c, ENT_SCIM_INTERNAL, "out of memory");
    }

    ent_scim_node_free(root);

    if (c.rc != ENT_SCIM_OK) {
        for (i = 0; i < c.nparams; i++) {
            free(c.params[i]);
        }

        free(c.params);
        free(c.sql.data);
        ent_scim_error(err, errlen, c.msg);

        return c.rc;
    }

    out->sql = c.sql.data;
    out->params = c.params;
    out->nparams = c.nparams;

    return ENT_SCIM_OK;
}


void
ent_scim_sql_free(ent_scim_sql_t *q)
{
    size_t  i;

    if (q == NULL) {
        return;
    }

    for (i = 0; i < q->nparams; i++) {
        free(q->params[i]);
    }

    free(q->params);
    free(q->sql);
    memset(q, 0, sizeof(ent_scim_sql_t));
}


static void
ent_scim_buf_add(ent_scim_buf_t *b, const char *s)
{
    char    *d;
    size_t   n, size;

    if (b->failed) {
        return;
    }

    n = strlen(s);

    if (b->len + n + 1 > b->size) {
        size = b->size ? b->size : 256;

        while (b->len + n + 1 > size) {
            size *= 2;
        }

        d = realloc(b->data, size);
        if (d == NULL) {
            b->failed = 1;
            return;
        }

        b->data = d;
        b->size = size;
    }

    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
}


static int
ent_scim_cfail(ent_scim_compiler_t *c, int rc, const char *msg)
{
    if (c->rc == ENT_SCIM_OK) {
        c->rc = rc;
        c->msg = msg;
    }

    return -1;
}


static int
ent_scim_prefix_ok(const char *prefix)
{
    size_t  i;
    int     ch;

    if (prefix == NULL) {
        return 0;
    }

    for (i = 0; prefix[i]; i++) {
        ch = prefix[i];

        if (i == ENT_SCIM_MAX_PREFIX
            || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
                 || (ch >= '0' && ch <= '9') || ch == '$' || ch == '_'))
        {
            return 0;
        }
    }

    return i != 0;
}


/* the table's row of "base" or "base.sub", case-insensitively */

static const ent_scim_attr_t *
ent_scim_find(ent_scim_compiler_t *c, const char *base, const char *sub)
{
    size_t       i, n;
    const char  *path;

    n = strlen(base);

    for (i = 0; i < c->nattrs; i++) {
        path = c->attrs[i].path;

        if (path == NULL || strncasecmp(path, base, n) != 0) {
            continue;
        }

        if (sub == NULL) {
            if (path[n] == '\0') {
                return &c->attrs[i];
            }

            continue;
        }

        if (path[n] == '.' && strcasecmp(path + n + 1, sub) == 0) {
            return &c->attrs[i];
        }
    }

    return NULL;
}


/* "base" is a row, or the start of one: "base." */

static int
ent_scim_known_base(ent_scim_compiler_t *c, const char *base)
{
    size_t       i, n;
    const char  *path;

    n = strlen(base);

    for (i = 0; i < c->nattrs; i++) {
        path = c->attrs[i].path;

        if (path != NULL && strncasecmp(path, base, n) == 0
            && (path[n] == '\0' || path[n] == '.'))
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The names to look up for a node: 0, as written ("uri:attr" or "attr");
 * 1, "attr" for a core schema URI.  0 when there is no such name.
 */

static int
ent_scim_base(const ent_scim_node_t *n, int i, char *base, size_t size)
{
    if (i == 0) {
        if (n->uri != NULL) {
            snprintf(base, size, "%s:%s", n->uri, n->attr);

        } else {
            snprintf(base, size, "%s", n->attr);
        }

        return 1;
    }

    if (n->uri != NULL && (strcmp(n->uri, ENT_SCIM_CORE_USER) == 0
                           || strcmp(n->uri, ENT_SCIM_CORE_GROUP) == 0))
    {
        snprintf(base, size, "%s", n->attr);
        return 1;
    }

    return 0;
}


/* base: NULL at the top, the attribute of a "[...]" inside it */

static int
ent_scim_emit(ent_scim_compiler_t *c, const ent_scim_node_t *n,
    const char *base)
{
    const ent_scim_attr_t  *row;

    switch (n->type) {

    case ENT_SCIM_N_AND:
    case ENT_SCIM_N_OR:
        ent_scim_buf_add(&c->sql, "(");

        if (ent_scim_emit(c, n->left, base) != 0) {
            return -1;
        }

        ent_scim_buf_add(&c->sql,
                         n->type == ENT_SCIM_N_AND ? " AND " : " OR ");

        if (ent_scim_emit(c, n->right, base) != 0) {
            return -1;
        }

        ent_scim_buf_add(&c->sql, ")");

        return 0;

    case ENT_SCIM_N_NOT:
        ent_scim_buf_add(&c->sql, "((");

        if (ent_scim_emit(c, n->left, base) != 0) {
            return -1;
        }

        ent_scim_buf_add(&c->sql, ") IS NOT TRUE)");

        return 0;

    case ENT_SCIM_N_CMP:
        if (base == NULL) {
            return ent_scim_emit_attr(c, n);
        }

        row = ent_scim_find(c, base, n->attr);

        if (row == NULL || row->multi) {
            return ent_scim_cfail(c, ENT_SCIM_ATTR, "unknown attribute");
        }

        return ent_scim_emit_cmp(c, n, row);

    case ENT_SCIM_N_VALUE:
        if (base == NULL) {
            return ent_scim_emit_value(c, n);
        }

        /* fall through */

    default:
        return ent_scim_cfail(c, ENT_SCIM_INTERNAL, "invalid filter tree");
    }
}


/* a comparison at the top: a scalar, or a multi-valued attribute's */

static int
ent_scim_emit_attr(ent_scim_compiler_t *c, const ent_scim_node_t *n)
{
    int                     i;
    char                    base[2 * ENT_SCIM_MAX_NAME + 2];
    const ent_scim_attr_t  *row, *m;

    for (i = 0; i < 2; i++) {
        if (!ent_scim_base(n, i, base, sizeof(base))) {
            continue;
        }

        if (n->sub != NULL) {
            row = ent_scim_find(c, base, n->sub);
            if (row == NULL) {
                continue;
            }

            if (row->multi) {
                break;
            }

            m = ent_scim_find(c, base, NULL);

            if (m != NULL && m->multi) {
                return ent_scim_emit_exists(c, m, n, row, NULL);
            }

            return ent_scim_emit_cmp(c, n, row);
        }

        row = ent_scim_find(c, base, NULL);
        if (row == NULL) {
            continue;
        }

        if (!row->multi) {
            return ent_scim_emit_cmp(c, n, row);
        }

        if (n->op == ENT_SCIM_OP_PR) {
            return ent_scim_emit_exists(c, row, NULL, NULL, NULL);
        }

        m = row;
        row = ent_scim_find(c, base, "value");

        if (row == NULL || row->multi) {
            break;
        }

        return ent_scim_emit_exists(c, m, n, row, NULL);
    }

    return ent_scim_cfail(c, ENT_SCIM_ATTR, "unknown attribute");
}


/* attr[filter] at the top */

static int
ent_scim_emit_value(ent_scim_compiler_t *c, const ent_scim_node_t *n)
{
    int                     i;
    char                    base[2 * ENT_SCIM_MAX_NAME + 2];
    const ent_scim_attr_t  *m;

    for (i = 0; i < 2; i++) {
        if (!ent_scim_base(n, i, base, sizeof(base))
            || !ent_scim_known_base(c, base))
        {
            continue;
        }

        m = ent_scim_find(c, base, NULL);

        if (m != NULL && m->multi) {
            return ent_scim_emit_exists(c, m, n->left, NULL, base);
        }

        return ent_scim_emit(c, n->left, base);
    }

    return ent_scim_cfail(c, ENT_SCIM_ATTR, "unknown attribute");
}


/*
 * EXISTS over the elements of m: with n and row, the comparison n of the
 * sub-attribute row; with n and base, the filter n inside "[...]"; with
 * neither, any element at all
 */

static int
ent_scim_emit_exists(ent_scim_compiler_t *c, const ent_scim_attr_t *m,
    const ent_scim_node_t *n, const ent_scim_attr_t *row, const char *base)
{
    if (m->multi_sql == NULL) {
        return ent_scim_cfail(c, ENT_SCIM_INTERNAL,
                              "multi-valued attribute without multi_sql");
    }

    ent_scim_buf_add(&c->sql, "EXISTS (SELECT 1 FROM ");
    ent_scim_buf_add(&c->sql, m->multi_sql);
    ent_scim_buf_add(&c->sql, " AS e(elem)");

    if (n != NULL) {
        ent_scim_buf_add(&c->sql, " WHERE ");

        if (row != NULL) {
            if (ent_scim_emit_cmp(c, n, row) != 0) {
                return -1;
            }

        } else if (ent_scim_emit(c, n, base) != 0) {
            return -1;
        }
    }

    ent_scim_buf_add(&c->sql, ")");

    return 0;
}


static int
ent_scim_emit_cmp(ent_scim_compiler_t *c, const ent_scim_node_t *n,
    const ent_scim_attr_t *row)
{
    int          ci, like;
    size_t       i;
    const char  *x, *cast, *optext;

    x = row->sql;

    if (x == NULL) {
        return ent_scim_cfail(c, ENT_SCIM_INTERNAL, "attribute without sql");
    }

    like = (n->op == ENT_SCIM_OP_CO || n->op == ENT_SCIM_OP_SW
            || n->op == ENT_SCIM_OP_EW);

    if (n->op == ENT_SCIM_OP_PR) {
        switch (row->type) {

        case ENT_SCIM_T_STRING:
        case ENT_SCIM_T_REFERENCE:
            ent_scim_buf_add(&c->sql, "(");
            ent_scim_buf_add(&c->sql, x);
            ent_scim_buf_add(&c->sql, " IS NOT NULL AND ");
            ent_scim_buf_add(&c->sql, x);
            ent_scim_buf_add(&c->sql, " <> '')");
            return 0;

        case ENT_SCIM_T_BOOLEAN:
        case ENT_SCIM_T_DATETIME:
        case ENT_SCIM_T_INTEGER:
        case ENT_SCIM_T_DECIMAL:
            ent_scim_buf_add(&c->sql, x);
            ent_scim_buf_add(&c->sql, " IS NOT NULL");
            return 0;

        default:
            return ent_scim_cfail(c, ENT_SCIM_INTERNAL,
                                  "attribute of an unknown type");
        }
    }

    ci = 0;

    switch (row->type) {

    case ENT_SCIM_T_STRING:
    case ENT_SCIM_T_REFERENCE:
        if (n->vtype != ENT_SCIM_V_STRING) {
            return ent_scim_cfail(c, ENT_SCIM_TYPE,
                                  "a string attribute needs a string");
        }

        ci = !row->case_exact;
        cast = "";
        break;

    case ENT_SCIM_T_BOOLEAN:
        if (n->vtype != ENT_SCIM_V_TRUE && n->vtype != ENT_SCIM_V_FALSE) {
            return ent_scim_cfail(c, ENT_SCIM_TYPE,
                                  "a boolean attribute needs true or false");
        }

        if (n->op != ENT_SCIM_OP_EQ && n->op != ENT_SCIM_OP_NE) {
            return ent_scim_cfail(c, ENT_SCIM_TYPE,
                                  "a boolean attribute takes eq and ne only");
        }

        cast = "::boolean";
        break;

    case ENT_SCIM_T_DATETIME:
        if (n->vtype != ENT_SCIM_V_STRING
            || ent_scim_datetime(n->value, n->value_len, NULL, NULL) != 0)
        {
            return ent_scim_cfail(c, ENT_SCIM_TYPE,
                                  "a dateTime attribute needs an RFC 3339 "
                                  "date-time");
        }

        cast = "::timestamptz";
        break;

    case ENT_SCIM_T_INTEGER:
        if (n->vtype != ENT_SCIM_V_NUMBER || !ent_scim_int64(n->value)) {
            return ent_scim_cfail(c, ENT_SCIM_TYPE,
                                  "an integer attribute needs an integer");
        }

        cast = "::bigint";
        break;

    case ENT_SCIM_T_DECIMAL:
        if (n->vtype != ENT_SCIM_V_NUMBER) {
            return ent_scim_cfail(c, ENT_SCIM_TYPE,
                                  "a decimal attribute needs a number");
        }

        cast = "::numeric";
        break;

    default:
        return ent_scim_cfail(c, ENT_SCIM_INTERNAL,
                              "attribute of an unknown type");
    }

    if (like && row->type != ENT_SCIM_T_STRING
        && row->type != ENT_SCIM_T_REFERENCE)
    {
        return ent_scim_cfail(c, ENT_SCIM_TYPE,
                              "co, sw and ew compare strings only");
    }

    optext = NULL;

    for (i = 0; i < sizeof(ent_scim_ops) / sizeof(ent_scim_ops[0]); i++) {
        if (ent_scim_ops[i].op == n->op) {
            optext = ent_scim_ops[i].sql;
        }
    }

    if (optext == NULL) {
        return ent_scim_cfail(c, ENT_SCIM_INTERNAL, "invalid filter tree");
    }

    ent_scim_buf_add(&c->sql, ci ? "lower(" : "");
    ent_scim_buf_add(&c->sql, x);
    ent_scim_buf_add(&c->sql, ci ? ")" : "");
    ent_scim_buf_add(&c->sql, optext);
    ent_scim_buf_add(&c->sql, ci ? "lower(" : "");

    if (ent_scim_param(c, n, like) != 0) {
        return -1;
    }

    ent_scim_buf_add(&c->sql, ci ? ")" : "");
    ent_scim_buf_add(&c->sql, cast);
    ent_scim_buf_add(&c->sql, like ? " ESCAPE '\\'" : "");

    return 0;
}


/* the value as the next parameter, and its reference: PREFIX[n] */

static int
ent_scim_param(ent_scim_compiler_t *c, const ent_scim_node_t *n, int like)
{
    char        *v, ref[ENT_SCIM_MAX_PREFIX + 24];
    size_t       i, len;
    const char  *s;

    if (c->nparams == ENT_SCIM_MAX_CMP) {
        return ent_scim_cfail(c, ENT_SCIM_COUNT, "too many comparisons");
    }

    switch (n->vtype) {

    case ENT_SCIM_V_TRUE:
        s = "true";
        len = 4;
        break;

    case ENT_SCIM_V_FALSE:
        s = "false";
        len = 5;
        break;

    default:
        s = n->value;
        len = n->value_len;
    }

    if (s == NULL) {
        return ent_scim_cfail(c, ENT_SCIM_INTERNAL, "invalid filter tree");
    }

    /* escaped, every byte at worst doubled, and two "%" */

    v = malloc(2 * len + 3);
    if (v == NULL) {
        return ent_scim_cfail(c, ENT_SCIM_INTERNAL, "out of memory");
    }

    c->params[c->nparams++] = v;

    if (!like) {
        memcpy(v, s, len);
        v[len] = '\0';

    } else {
        if (n->op != ENT_SCIM_OP_SW) {
            *v++ = '%';
        }

        for (i = 0; i < len; i++) {
            if (s[i] == '%' || s[i] == '_' || s[i] == '\\') {
                *v++ = '\\';
            }

            *v++ = s[i];
        }

        if (n->op != ENT_SCIM_OP_EW) {
            *v++ = '%';
        }

        *v = '\0';
    }

    snprintf(ref, sizeof(ref), "%s[%zu]", c->prefix, c->nparams);
    ent_scim_buf_add(&c->sql, ref);

    return 0;
}
