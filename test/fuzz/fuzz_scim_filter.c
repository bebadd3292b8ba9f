/*
 * libFuzzer target: SCIM filters, parsed and compiled into SQL against a
 * fixed attribute table like the User resource's.
 *
 * Whatever the input, the result is one of the ENT_SCIM_* codes with a
 * NUL-terminated error text and no SQL, or SQL that is made only of the
 * table's strings, the compiler's fixed texts and parameter references
 * numbered 1..n in order, one per parameter: no byte of the filter can
 * reach the SQL text.  A parsed filter is printed back in canonical form,
 * which must parse to the same tree and compile to the same SQL and
 * parameters (this checks string escapes and precedence both ways).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_scim_filter.h"


#define FUZZ_PREFIX   "$2"
#define FUZZ_OUT_MAX  (4 * ENT_SCIM_MAX_LEN)

#define fuzz_str(b, s)  fuzz_add(b, s, strlen(s))


typedef struct {
    char      *data;
    size_t     len;
    size_t     size;
    unsigned   failed:1;
} fuzz_buf_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_sql(const ent_scim_sql_t *q);
static int fuzz_piece_at(const char *s, size_t len, size_t i);
static void fuzz_roundtrip(const ent_scim_node_t *root,
    const ent_scim_sql_t *q);
static void fuzz_add(fuzz_buf_t *b, const char *s, size_t n);
static void fuzz_print(fuzz_buf_t *b, const ent_scim_node_t *n);
static void fuzz_print_child(fuzz_buf_t *b, const ent_scim_node_t *parent,
    const ent_scim_node_t *n, int right);
static void fuzz_print_string(fuzz_buf_t *b, const char *s, size_t len);
static int fuzz_same(const ent_scim_node_t *a, const ent_scim_node_t *b);
static int fuzz_same_str(const char *a, const char *b);


static const ent_scim_attr_t  fuzz_attrs[] = {
    { "username", "u.user_name", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "externalid", "u.external_id", ENT_SCIM_T_STRING, 1, 0, NULL },
    { "id", "u.id::text", ENT_SCIM_T_STRING, 1, 0, NULL },
    { "name.familyname", "u.family_name", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "name.givenname", "u.given_name", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "active", "u.active", ENT_SCIM_T_BOOLEAN, 0, 0, NULL },
    { "meta.lastmodified", "u.updated_at", ENT_SCIM_T_DATETIME, 0, 0,
      NULL },
    { "meta.version", "u.version", ENT_SCIM_T_INTEGER, 0, 0, NULL },
    { "x-score", "u.score", ENT_SCIM_T_DECIMAL, 0, 0, NULL },
    { "emails", NULL, ENT_SCIM_T_STRING, 0, 1,
      "jsonb_array_elements(u.emails)" },
    { "emails.value", "(e.elem->>'value')", ENT_SCIM_T_STRING, 0, 0,
      NULL },
    { "emails.type", "(e.elem->>'type')", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "emails.primary", "(e.elem->>'primary')::boolean",
      ENT_SCIM_T_BOOLEAN, 0, 0, NULL },
    { "members", NULL, ENT_SCIM_T_STRING, 0, 1,
      "jsonb_array_elements(g.members)" },
    { "members.$ref", "(e.elem->>'$ref')", ENT_SCIM_T_REFERENCE, 1, 0,
      NULL },
    { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:"
      "department", "(u.enterprise->>'department')", ENT_SCIM_T_STRING, 0,
      0, NULL },
    { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:"
      "manager.value", "(u.enterprise->'manager'->>'value')",
      ENT_SCIM_T_STRING, 1, 0, NULL }
};

#define FUZZ_NATTRS  (sizeof(fuzz_attrs) / sizeof(fuzz_attrs[0]))


/* everything the compiler may write besides the table and $2[n] */
static const char  *const fuzz_fixed[] = {
    "(", ")", " AND ", " OR ", "((", ") IS NOT TRUE)",
    "EXISTS (SELECT 1 FROM ", " AS e(elem)", " WHERE ",
    " IS NOT NULL AND ", " <> '')", " IS NOT NULL", "lower(",
    " = ", " <> ", " > ", " >= ", " < ", " <= ", " LIKE ",
    "::boolean", "::timestamptz", "::bigint", "::numeric",
    " ESCAPE '\\'"
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int               rc, prc;
    char              err[64];
    char             *copy;
    ent_scim_sql_t    q;
    ent_scim_node_t  *root;

    /* an exact-size heap copy, so that ASan sees every overread */

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);
    memset(err, 'x', sizeof(err));

    rc = ent_scim_filter_compile(copy, size, fuzz_attrs, FUZZ_NATTRS,
                                 FUZZ_PREFIX, &q, err, sizeof(err));

    if (rc < ENT_SCIM_OK || rc >= ENT_SCIM_INTERNAL) {
        abort();
    }

    if (rc != ENT_SCIM_OK) {
        if (q.sql != NULL || q.params != NULL || q.nparams != 0
            || memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
        {
            abort();
        }

    } else {
        fuzz_check_sql(&q);
    }

    prc = ent_scim_filter_parse(copy, size, &root, err, sizeof(err));

    /* compiling fails where parsing does, with the same result */

    if ((prc != ENT_SCIM_OK && prc != rc)
        || (prc == ENT_SCIM_OK) != (root != NULL)
        || (rc == ENT_SCIM_OK && prc != ENT_SCIM_OK)
        || (prc == ENT_SCIM_OK && rc != ENT_SCIM_OK && rc != ENT_SCIM_ATTR
            && rc != ENT_SCIM_TYPE))
    {
        abort();
    }

    if (root != NULL) {
        fuzz_roundtrip(root, rc == ENT_SCIM_OK ? &q : NULL);
    }

    ent_scim_node_free(root);
    ent_scim_sql_free(&q);
    free(copy);

    return 0;
}


static void
fuzz_check_sql(const ent_scim_sql_t *q)
{
    char        *reach;
    size_t       i, j, m, len, next;
    const char  *s;

    if (q->sql == NULL || q->nparams > ENT_SCIM_MAX_CMP
        || (q->nparams != 0 && q->params == NULL))
    {
        abort();
    }

    for (i = 0; i < q->nparams; i++) {
        if (q->params[i] == NULL) {
            abort();
        }
    }

    /*
     * the SQL is a concatenation of the allowed pieces: every end of a
     * piece that starts at a reached position is reached
     */

    len = strlen(q->sql);
    reach = calloc(len + 1, 1);
    if (reach == NULL) {
        abort();
    }

    next = 1;
    reach[0] = 1;

    for (i = 0; i < len; i++) {
        if (!reach[i]) {
            continue;
        }

        for (j = 0; j < FUZZ_NATTRS; j++) {
            s = fuzz_attrs[j].sql;

            if (s != NULL && strncmp(q->sql + i, s, strlen(s)) == 0) {
                reach[i + strlen(s)] = 1;
            }

            s = fuzz_attrs[j].multi_sql;

            if (s != NULL && strncmp(q->sql + i, s, strlen(s)) == 0) {
                reach[i + strlen(s)] = 1;
            }
        }

        for (j = 0; j < sizeof(fuzz_fixed) / sizeof(fuzz_fixed[0]); j++) {
            m = strlen(fuzz_fixed[j]);

            if (strncmp(q->sql + i, fuzz_fixed[j], m) == 0) {
                reach[i + m] = 1;
            }
        }

        m = fuzz_piece_at(q->sql, len, i);

        if (m != 0) {
            /* a parameter reference, numbered in order */

            if ((size_t) atoi(q->sql + i + 3) != next++) {
                abort();
            }

            reach[i + m] = 1;
        }
    }

    if (!reach[len] || next != q->nparams + 1) {
        abort();
    }

    free(reach);
}


/* the length of "$2[n]" at i, or 0 */

static int
fuzz_piece_at(const char *s, size_t len, size_t i)
{
    size_t  j;

    if (len - i < 5 || strncmp(s + i, FUZZ_PREFIX "[", 3) != 0
        || s[i + 3] < '1' || s[i + 3] > '9')
    {
        return 0;
    }

    for (j = i + 4; j < len && s[j] >= '0' && s[j] <= '9'; j++) {
        /* void */
    }

    if (j == len || s[j] != ']') {
        return 0;
    }

    return (int) (j + 1 - i);
}


static void
fuzz_roundtrip(const ent_scim_node_t *root, const ent_scim_sql_t *q)
{
    int               rc;
    char              err[64];
    size_t            i;
    fuzz_buf_t        b;
    ent_scim_sql_t    q2;
    ent_scim_node_t  *again;

    memset(&b, 0, sizeof(fuzz_buf_t));
    fuzz_print(&b, root);

    if (b.failed) {
        free(b.data);
        return;
    }

    if (b.len > ENT_SCIM_MAX_LEN) {
        /* "not(" became "not (" and the like */
        free(b.data);
        return;
    }

    rc = ent_scim_filter_parse(b.data, b.len, &again, err, sizeof(err));

    if (rc != ENT_SCIM_OK || !fuzz_same(root, again)) {
        fprintf(stderr, "round trip: \"%.*s\" rc %d\n", (int) b.len,
                b.data, rc);
        abort();
    }

    ent_scim_node_free(again);

    if (q != NULL) {
        rc = ent_scim_filter_compile(b.data, b.len, fuzz_attrs,
                                     FUZZ_NATTRS, FUZZ_PREFIX, &q2, err,
                                     sizeof(err));

        if (rc != ENT_SCIM_OK || strcmp(q->sql, q2.sql) != 0
            || q->nparams != q2.nparams)
        {
            abort();
        }

        for (i = 0; i < q->nparams; i++) {
            if (strcmp(q->params[i], q2.params[i]) != 0) {
                abort();
            }
        }

        ent_scim_sql_free(&q2);
    }

    free(b.data);
}


static void
fuzz_add(fuzz_buf_t *b, const char *s, size_t n)
{
    char  *d;

    if (b->failed) {
        return;
    }

    if (b->len + n > FUZZ_OUT_MAX) {
        b->failed = 1;
        return;
    }

    if (b->len + n + 1 > b->size) {
        d = realloc(b->data, FUZZ_OUT_MAX + 1);
        if (d == NULL) {
            b->failed = 1;
            return;
        }

        b->data = d;
        b->size = FUZZ_OUT_MAX + 1;
    }

    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}


static void
fuzz_print(fuzz_buf_t *b, const ent_scim_node_t *n)
{
    static const char  *const ops[] = {
        "", "eq", "ne", "co", "sw", "ew", "pr", "gt", "ge", "lt", "le"
    };

    switch (n->type) {

    case ENT_SCIM_N_AND:
    case ENT_SCIM_N_OR:
        fuzz_print_child(b, n, n->left, 0);
        fuzz_str(b, n->type == ENT_SCIM_N_AND ? " and " : " or ");
        fuzz_print_child(b, n, n->right, 1);
        return;

    case ENT_SCIM_N_NOT:
        fuzz_str(b, "not(");
        fuzz_print(b, n->left);
        fuzz_str(b, ")");
        return;

    case ENT_SCIM_N_VALUE:
    case ENT_SCIM_N_CMP:
        if (n->uri != NULL) {
            fuzz_str(b, n->uri);
            fuzz_str(b, ":");
        }

        fuzz_str(b, n->attr);

        if (n->sub != NULL) {
            fuzz_str(b, ".");
            fuzz_str(b, n->sub);
        }

        if (n->type == ENT_SCIM_N_VALUE) {
            fuzz_str(b, "[");
            fuzz_print(b, n->left);
            fuzz_str(b, "]");
            return;
        }

        if (n->op < 1 || n->op > 10) {
            abort();
        }

        fuzz_str(b, " ");
        fuzz_str(b, ops[n->op]);

        switch (n->vtype) {

        case ENT_SCIM_V_NONE:
            return;

        case ENT_SCIM_V_TRUE:
            fuzz_str(b, " true");
            return;

        case ENT_SCIM_V_FALSE:
            fuzz_str(b, " false");
            return;

        case ENT_SCIM_V_NUMBER:
            fuzz_str(b, " ");
            fuzz_str(b, n->value);
            return;

        case ENT_SCIM_V_STRING:
            fuzz_str(b, " ");
            fuzz_print_string(b, n->value, n->value_len);
            return;
        }

        /* fall through */

    default:
        abort();
    }
}


/* parentheses where the tree needs them: lower precedence, or the right */

static void
fuzz_print_child(fuzz_buf_t *b, const ent_scim_node_t *parent,
    const ent_scim_node_t *n, int right)
{
    int  paren;

    paren = (parent->type == ENT_SCIM_N_AND && n->type == ENT_SCIM_N_OR)
            || (right && n->type == parent->type);

    if (paren) {
        fuzz_str(b, "(");
    }

    fuzz_print(b, n);

    if (paren) {
        fuzz_str(b, ")");
    }
}


static void
fuzz_print_string(fuzz_buf_t *b, const char *s, size_t len)
{
    char    hex[8];
    size_t  i;

    if (strlen(s) != len) {
        abort();
    }

    fuzz_str(b, "\"");

    for (i = 0; i < len; i++) {
        switch (s[i]) {

        case '"':
            fuzz_str(b, "\\\"");
            break;

        case '\\':
            fuzz_str(b, "\\\\");
            break;

        case '\n':
            fuzz_str(b, "\\n");
            break;

        case '\r':
            fuzz_str(b, "\\r");
            break;

        case '\t':
            fuzz_str(b, "\\t");
            break;

        case '\b':
            fuzz_str(b, "\\b");
            break;

        case '\f':
            fuzz_str(b, "\\f");
            break;

        default:
            if ((unsigned char) s[i] < 0x20) {
                snprintf(hex, sizeof(hex), "\\u%04x", s[i]);
                fuzz_str(b, hex);

            } else {
                fuzz_add(b, s + i, 1);
            }
        }
    }

    fuzz_str(b, "\"");
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
