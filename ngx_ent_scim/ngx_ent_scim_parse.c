/*
 * ngx_ent SCIM: filters and PATCH paths parsed into a tree, and SCIM
 * date-times, I/O-free (see ngx_ent_scim_filter.h).  The compiler of the
 * tree into SQL is ngx_ent_scim_filter.c's.
 *
 * The input is checked whole first (length, UTF-8, NUL bytes), then read
 * by a recursive descent parser whose recursion is bounded by the nesting
 * limit.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ngx_ent_scim_int.h"


typedef struct {
    const unsigned char      *p;
    const unsigned char      *end;
    int                       depth;
    int                       ncmp;
    int                       rc;
    const char               *msg;
} ent_scim_parser_t;


static int ent_scim_check_input(const char *s, size_t len, char *err,
    size_t errlen);
static int ent_scim_utf8(const unsigned char *s, size_t len);
static void *ent_scim_fail(ent_scim_parser_t *ps, int rc, const char *msg);
static int ent_scim_name_char(int c);
static int ent_scim_is_ws(int c);
static size_t ent_scim_ws(ent_scim_parser_t *ps);
static int ent_scim_word(ent_scim_parser_t *ps, const char *kw);
static ent_scim_node_t *ent_scim_node(ent_scim_parser_t *ps, int type);
static ent_scim_node_t *ent_scim_parse_or(ent_scim_parser_t *ps, int inner);
static ent_scim_node_t *ent_scim_parse_and(ent_scim_parser_t *ps,
    int inner);
static ent_scim_node_t *ent_scim_parse_unary(ent_scim_parser_t *ps,
    int inner);
static ent_scim_node_t *ent_scim_parse_group(ent_scim_parser_t *ps,
    int inner, int close);
static ent_scim_node_t *ent_scim_parse_attr_exp(ent_scim_parser_t *ps,
    int inner);
static int ent_scim_parse_path(ent_scim_parser_t *ps, int inner,
    ent_scim_node_t *n);
static int ent_scim_attrname(const unsigned char *s, size_t len);
static int ent_scim_uri(const unsigned char *s, size_t len);
static char *ent_scim_lower(const unsigned char *s, size_t len);
static int ent_scim_parse_op(ent_scim_parser_t *ps);
static int ent_scim_parse_value(ent_scim_parser_t *ps, ent_scim_node_t *n);
static int ent_scim_parse_string(ent_scim_parser_t *ps, ent_scim_node_t *n);
static int ent_scim_hex4(const unsigned char *p, const unsigned char *end,
    unsigned *v);
static int ent_scim_number(const unsigned char *s, size_t len);
static int64_t ent_scim_days(int64_t y, int m, int d);
static int ent_scim_digits(const char *s, size_t n, int *v);


/* parsing */

int
ent_scim_filter_parse(const char *filter, size_t len,
    ent_scim_node_t **root, char *err, size_t errlen)
{
    int                 rc;
    ent_scim_node_t    *n;
    ent_scim_parser_t   ps;

    *root = NULL;

    rc = ent_scim_check_input(filter, len, err, errlen);
    if (rc != ENT_SCIM_OK) {
        return rc;
    }

    memset(&ps, 0, sizeof(ent_scim_parser_t));
    ps.p = (const unsigned char *) filter;
    ps.end = ps.p + len;

    (void) ent_scim_ws(&ps);

    if (ps.p == ps.end) {
        ent_scim_error(err, errlen, "empty filter");
        return ENT_SCIM_SYNTAX;
    }

    n = ent_scim_parse_or(&ps, 0);

    if (n != NULL) {
        (void) ent_scim_ws(&ps);

        if (ps.p != ps.end) {
            ent_scim_fail(&ps, ENT_SCIM_SYNTAX,
                          *ps.p == ')' ? "unbalanced \")\""
                          : *ps.p == ']' ? "unbalanced \"]\""
                          : "unexpected text after an expression");
        }
    }

    if (ps.rc != ENT_SCIM_OK) {
        ent_scim_node_free(n);
        ent_scim_error(err, errlen, ps.msg);
        return ps.rc;
    }

    *root = n;

    return ENT_SCIM_OK;
}


int
ent_scim_path_parse_node(const char *path, size_t len,
    ent_scim_node_t **root, char *err, size_t errlen)
{
    int                   rc;
    size_t                n;
    ent_scim_node_t      *node;
    ent_scim_parser_t     ps;
    const unsigned char  *start;

    *root = NULL;

    rc = ent_scim_check_input(path, len, err, errlen);
    if (rc != ENT_SCIM_OK) {
        return rc;
    }

    memset(&ps, 0, sizeof(ent_scim_parser_t));
    ps.p = (const unsigned char *) path;
    ps.end = ps.p + len;

    node = ent_scim_node(&ps, ENT_SCIM_N_CMP);
    if (node == NULL) {
        goto failed;
    }

    if (ps.p == ps.end) {
        ent_scim_fail(&ps, ENT_SCIM_SYNTAX, "empty path");
        goto failed;
    }

    if (ent_scim_parse_path(&ps, 0, node) != 0) {
        goto failed;
    }

    if (ps.p < ps.end && *ps.p == '[') {
        if (node->sub != NULL) {
            ent_scim_fail(&ps, ENT_SCIM_SYNTAX,
                          "a filter after a sub-attribute");
            goto failed;
        }

        node->type = ENT_SCIM_N_VALUE;
        node->left = ent_scim_parse_group(&ps, 1, ']');

        if (node->left == NULL) {
            goto failed;
        }

        if (ps.p < ps.end && *ps.p == '.') {
            ps.p++;
            start = ps.p;

            while (ps.p < ps.end && ent_scim_name_char(*ps.p)
                   && *ps.p != '.' && *ps.p != ':')
            {
                ps.p++;
            }

            n = ps.p - start;

            if (!ent_scim_attrname(start, n)) {
                ent_scim_fail(&ps, ENT_SCIM_SYNTAX,
                              "invalid sub-attribute name");
                goto failed;
            }

            node->sub = ent_scim_lower(start, n);
            if (node->sub == NULL) {
                ent_scim_fail(&ps, ENT_SCIM_INTERNAL, "out of memory");
                goto failed;
            }
        }
    }

    if (ps.p != ps.end) {
        ent_scim_fail(&ps, ENT_SCIM_SYNTAX, "unexpected text in the path");
        goto failed;
    }

    *root = node;

    return ENT_SCIM_OK;

failed:

    ent_scim_node_free(node);
    ent_scim_error(err, errlen, ps.msg);

    return ps.rc;
}


void
ent_scim_node_free(ent_scim_node_t *node)
{
    if (node == NULL) {
        return;
    }

    ent_scim_node_free(node->left);
    ent_scim_node_free(node->right);
    free(node->uri);
    free(node->attr);
    free(node->sub);
    free(node->value);
    free(node);
}


void
ent_scim_error(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", msg != NULL ? msg : "invalid filter");
    }
}


static int
ent_scim_check_input(const char *s, size_t len, char *err, size_t errlen)
{
    int  rc;

    if (s == NULL && len != 0) {
        ent_scim_error(err, errlen, "no filter");
        return ENT_SCIM_INTERNAL;
    }

    if (len > ENT_SCIM_MAX_LEN) {
        ent_scim_error(err, errlen, "filter too long");
        return ENT_SCIM_LENGTH;
    }

    rc = ent_scim_utf8((const unsigned char *) s, len);

    if (rc == -1) {
        ent_scim_error(err, errlen, "filter is not valid UTF-8");
        return ENT_SCIM_ENCODING;
    }

    if (rc == -2) {
        ent_scim_error(err, errlen, "filter contains a NUL byte");
        return ENT_SCIM_ENCODING;
    }

    return ENT_SCIM_OK;
}


/* 0, -1 for invalid UTF-8, -2 for a NUL byte */

static int
ent_scim_utf8(const unsigned char *s, size_t len)
{
    size_t    i, n, k;
    unsigned  c, cp, min;

    for (i = 0; i < len; i += n) {
        c = s[i];

        if (c == 0) {
            return -2;
        }

        if (c < 0x80) {
            n = 1;
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            cp = c & 0x1f;
            min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            cp = c & 0x0f;
            min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            cp = c & 0x07;
            min = 0x10000;

        } else {
            return -1;
        }

        if (len - i < n) {
            return -1;
        }

        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return -1;
            }

            cp = (cp << 6) | (s[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return -1;
        }
    }

    return 0;
}


/* records the first failure; returns NULL for the callers' convenience */

static void *
ent_scim_fail(ent_scim_parser_t *ps, int rc, const char *msg)
{
    if (ps->rc == ENT_SCIM_OK) {
        ps->rc = rc;
        ps->msg = msg;
    }

    return NULL;
}


static int
ent_scim_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
           || c == ':' || c == '$';
}


static int
ent_scim_is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


static size_t
ent_scim_ws(ent_scim_parser_t *ps)
{
    const unsigned char  *start;

    start = ps->p;

    while (ps->p < ps->end && ent_scim_is_ws(*ps->p)) {
        ps->p++;
    }

    return ps->p - start;
}


/* kw (lower case) at ps->p, in any case, and not followed by a name */

static int
ent_scim_word(ent_scim_parser_t *ps, const char *kw)
{
    size_t  i, n;

    n = strlen(kw);

    if ((size_t) (ps->end - ps->p) < n) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if ((ps->p[i] | 0x20) != (unsigned char) kw[i]) {
            return 0;
        }
    }

    return ps->p + n == ps->end || !ent_scim_name_char(ps->p[n]);
}


static ent_scim_node_t *
ent_scim_node(ent_scim_parser_t *ps, int type)
{
    ent_scim_node_t  *n;

    n = calloc(1, sizeof(ent_scim_node_t));
    if (n == NULL) {
        return ent_scim_fail(ps, ENT_SCIM_INTERNAL, "out of memory");
    }

    n->type = type;

    return n;
}


static ent_scim_node_t *
ent_scim_parse_or(ent_scim_parser_t *ps, int inner)
{
    ent_scim_node_t      *left, *right, *n;
    const unsigned char  *save;

    left = ent_scim_parse_and(ps, inner);

    while (left != NULL) {
        save = ps->p;

        if (ent_scim_ws(ps) == 0 || !ent_scim_word(ps, "or")) {
            ps->p = save;
            break;
        }

        ps->p += 2;

        if (ent_scim_ws(ps) == 0
            && (ps->p == ps->end || *ps->p != '('))
        {
            ent_scim_node_free(left);
            return ent_scim_fail(ps, ENT_SCIM_SYNTAX,
                                 "expected an expression after \"or\"");
        }

        right = ent_scim_parse_and(ps, inner);
        if (right == NULL) {
            ent_scim_node_free(left);
            return NULL;
        }

        n = ent_scim_node(ps, ENT_SCIM_N_OR);
        if (n == NULL) {
            ent_scim_node_free(left);
            ent_scim_node_free(right);
            return NULL;
        }

        n->left = left;
        n->right = right;
        left = n;
    }

    return left;
}


static ent_scim_node_t *
ent_scim_parse_and(ent_scim_parser_t *ps, int inner)
{
    ent_scim_node_t      *left, *right, *n;
    const unsigned char  *save;

    left = ent_scim_parse_unary(ps, inner);

    while (left != NULL) {
        save = ps->p;

        if (ent_scim_ws(ps) == 0 || !ent_scim_word(ps, "and")) {
            ps->p = save;
            break;
        }

        ps->p += 3;

        if (ent_scim_ws(ps) == 0
            && (ps->p == ps->end || *ps->p != '('))
        {
            ent_scim_node_free(left);
            return ent_scim_fail(ps, ENT_SCIM_SYNTAX,
                                 "expected an expression after \"and\"");
        }

        right = ent_scim_parse_unary(ps, inner);
        if (right == NULL) {
            ent_scim_node_free(left);
            return NULL;
        }

        n = ent_scim_node(ps, ENT_SCIM_N_AND);
        if (n == NULL) {
            ent_scim_node_free(left);
            ent_scim_node_free(right);
            return NULL;
        }

        n->left = left;
        n->right = right;
        left = n;
    }

    return left;
}


static ent_scim_node_t *
ent_scim_parse_unary(ent_scim_parser_t *ps, int inner)
{
    ent_scim_node_t      *n, *sub;
    const unsigned char  *save;

    if (ps->p == ps->end) {
        return ent_scim_fail(ps, ENT_SCIM_SYNTAX, "expression expected");
    }

    if (ent_scim_word(ps, "not")) {
        save = ps->p;
        ps->p += 3;
        (void) ent_scim_ws(ps);

        if (ps->p < ps->end && *ps->p == '(') {
            sub = ent_scim_parse_group(ps, inner, ')');
            if (sub == NULL) {
                return NULL;
            }

            n = ent_scim_node(ps, ENT_SCIM_N_NOT);
            if (n == NULL) {
                ent_scim_node_free(sub);
                return NULL;
            }

            n->left = sub;

            return n;
        }

        /* an attribute called "not" */
        ps->p = save;
    }

    if (*ps->p == '(') {
        return ent_scim_parse_group(ps, inner, ')');
    }

    return ent_scim_parse_attr_exp(ps, inner);
}


/* "(" filter ")" or "[" valFilter "]", ps->p at the opening one */

static ent_scim_node_t *
ent_scim_parse_group(ent_scim_parser_t *ps, int inner, int close)
{
    ent_scim_node_t  *n;

    if (++ps->depth > ENT_SCIM_MAX_DEPTH) {
        return ent_scim_fail(ps, ENT_SCIM_DEPTH, "filter nested too deep");
    }

    ps->p++;
    (void) ent_scim_ws(ps);

    n = ent_scim_parse_or(ps, inner);
    if (n == NULL) {
        return NULL;
    }

    (void) ent_scim_ws(ps);

    if (ps->p == ps->end || *ps->p != close) {
        ent_scim_node_free(n);
        return ent_scim_fail(ps, ENT_SCIM_SYNTAX,
                             close == ')' ? "missing \")\""
                                          : "missing \"]\"");
    }

    ps->p++;
    ps->depth--;

    return n;
}


static ent_scim_node_t *
ent_scim_parse_attr_exp(ent_scim_parser_t *ps, int inner)
{
    ent_scim_node_t  *n;

    n = ent_scim_node(ps, ENT_SCIM_N_CMP);
    if (n == NULL) {
        return NULL;
    }

    if (ent_scim_parse_path(ps, inner, n) != 0) {
        goto failed;
    }

    if (ps->p < ps->end && *ps->p == '[') {
        if (inner) {
            ent_scim_fail(ps, ENT_SCIM_SYNTAX, "a filter inside a filter");
            goto failed;
        }

        if (n->sub != NULL) {
            ent_scim_fail(ps, ENT_SCIM_SYNTAX,
                          "a filter after a sub-attribute");
            goto failed;
        }

        n->type = ENT_SCIM_N_VALUE;
        n->left = ent_scim_parse_group(ps, 1, ']');

        if (n->left == NULL) {
            goto failed;
        }

        return n;
    }

    if (ent_scim_ws(ps) == 0) {
        ent_scim_fail(ps, ENT_SCIM_SYNTAX, "operator expected");
        goto failed;
    }

    n->op = ent_scim_parse_op(ps);
    if (n->op == 0) {
        goto failed;
    }

    if (++ps->ncmp > ENT_SCIM_MAX_CMP) {
        ent_scim_fail(ps, ENT_SCIM_COUNT, "too many comparisons");
        goto failed;
    }

    if (n->op == ENT_SCIM_OP_PR) {
        return n;
    }

    if (ent_scim_ws(ps) == 0) {
        ent_scim_fail(ps, ENT_SCIM_SYNTAX, "value expected");
        goto failed;
    }

    if (ent_scim_parse_value(ps, n) != 0) {
        goto failed;
    }

    switch (n->op) {

    case ENT_SCIM_OP_CO:
    case ENT_SCIM_OP_SW:
    case ENT_SCIM_OP_EW:
        if (n->vtype != ENT_SCIM_V_STRING) {
            ent_scim_fail(ps, ENT_SCIM_TYPE,
                          "co, sw and ew need a string value");
            goto failed;
        }

        break;

    case ENT_SCIM_OP_GT:
    case ENT_SCIM_OP_GE:
    case ENT_SCIM_OP_LT:
    case ENT_SCIM_OP_LE:
        if (n->vtype == ENT_SCIM_V_TRUE || n->vtype == ENT_SCIM_V_FALSE) {
            ent_scim_fail(ps, ENT_SCIM_TYPE, "booleans have no order");
            goto failed;
        }

        break;
    }

    return n;

failed:

    ent_scim_node_free(n);

    return NULL;
}


/* attrPath, into n->uri, n->attr and n->sub */

static int
ent_scim_parse_path(ent_scim_parser_t *ps, int inner, ent_scim_node_t *n)
{
    size_t                len;
    const unsigned char  *start, *colon, *dot, *name, *q;

    start = ps->p;

    while (ps->p < ps->end && ent_scim_name_char(*ps->p)) {
        ps->p++;
    }

    len = ps->p - start;

    if (len == 0) {
        ent_scim_fail(ps, ENT_SCIM_SYNTAX, "attribute name expected");
        return -1;
    }

    if (len > ENT_SCIM_MAX_NAME) {
        ent_scim_fail(ps, ENT_SCIM_SYNTAX, "attribute name too long");
        return -1;
    }

    colon = NULL;
    dot = NULL;

    for (q = start; q < ps->p; q++) {
        if (*q == ':') {
            colon = q;
            dot = NULL;

        } else if (*q == '.' && dot == NULL) {
            dot = q;
        }
    }

    name = start;

    if (colon != NULL) {
        if (inner) {
            ent_scim_fail(ps, ENT_SCIM_SYNTAX,
                          "a URI inside a filter's brackets");
            return -1;
        }

        if (!ent_scim_uri(start, colon - start)) {
            ent_scim_fail(ps, ENT_SCIM_SYNTAX, "invalid schema URI");
            return -1;
        }

        n->uri = ent_scim_lower(start, colon - start);
        if (n->uri == NULL) {
            ent_scim_fail(ps, ENT_SCIM_INTERNAL, "out of memory");
            return -1;
        }

        name = colon + 1;
    }

    if (dot != NULL) {
        if (inner) {
            ent_scim_fail(ps, ENT_SCIM_SYNTAX,
                          "a sub-attribute inside a filter's brackets");
            return -1;
        }

        if (!ent_scim_attrname(name, dot - name)
            || !ent_scim_attrname(dot + 1, ps->p - dot - 1))
        {
            ent_scim_fail(ps, ENT_SCIM_SYNTAX, "invalid attribute name");
            return -1;
        }

        n->attr = ent_scim_lower(name, dot - name);
        n->sub = ent_scim_lower(dot + 1, ps->p - dot - 1);

        if (n->attr == NULL || n->sub == NULL) {
            ent_scim_fail(ps, ENT_SCIM_INTERNAL, "out of memory");
            return -1;
        }

        return 0;
    }

    if (!ent_scim_attrname(name, ps->p - name)) {
        ent_scim_fail(ps, ENT_SCIM_SYNTAX, "invalid attribute name");
        return -1;
    }

    n->attr = ent_scim_lower(name, ps->p - name);
    if (n->attr == NULL) {
        ent_scim_fail(ps, ENT_SCIM_INTERNAL, "out of memory");
        return -1;
    }

    return 0;
}


/* ALPHA *(ALPHA / DIGIT / "-" / "_"), or "$ref" */

static int
ent_scim_attrname(const unsigned char *s, size_t len)
{
    size_t  i;
    int     c;

    if (len == 4 && s[0] == '$' && (s[1] | 0x20) == 'r'
        && (s[2] | 0x20) == 'e' && (s[3] | 0x20) == 'f')
    {
        return 1;
    }

    if (len == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = s[i] | 0x20;

        if (c >= 'a' && c <= 'z') {
            continue;
        }

        if (i == 0) {
            return 0;
        }

        if ((s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_') {
            continue;
        }

        return 0;
    }

    return 1;
}


/* "urn:" and non-empty segments of ALPHA, DIGIT, ".", "-", "_" */

static int
ent_scim_uri(const unsigned char *s, size_t len)
{
    size_t  i, seg;
    int     c;

    if (len < 5 || (s[0] | 0x20) != 'u' || (s[1] | 0x20) != 'r'
        || (s[2] | 0x20) != 'n' || s[3] != ':')
    {
        return 0;
    }

    seg = 0;

    for (i = 4; i < len; i++) {
        c = s[i];

        if (c == ':') {
            if (seg == 0) {
                return 0;
            }

            seg = 0;
            continue;
        }

        if (c == '$') {
            return 0;
        }

        seg++;
    }

    return seg != 0;
}


static char *
ent_scim_lower(const unsigned char *s, size_t len)
{
    size_t   i;
    char    *d;

    d = malloc(len + 1);
    if (d == NULL) {
        return NULL;
    }

    for (i = 0; i < len; i++) {
        d[i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] | 0x20 : s[i];
    }

    d[len] = '\0';

    return d;
}


static int
ent_scim_parse_op(ent_scim_parser_t *ps)
{
    size_t                i, len;
    const unsigned char  *start;

    start = ps->p;

    while (ps->p < ps->end
           && ((*ps->p | 0x20) >= 'a' && (*ps->p | 0x20) <= 'z'))
    {
        ps->p++;
    }

    len = ps->p - start;

    if (len != 2) {
        ent_scim_fail(ps, ENT_SCIM_SYNTAX, "unknown operator");
        return 0;
    }

    for (i = 0; i < sizeof(ent_scim_ops) / sizeof(ent_scim_ops[0]); i++) {
        if ((start[0] | 0x20) == ent_scim_ops[i].name[0]
            && (start[1] | 0x20) == ent_scim_ops[i].name[1])
        {
            break;
        }
    }

    if (i == sizeof(ent_scim_ops) / sizeof(ent_scim_ops[0])) {
        ent_scim_fail(ps, ENT_SCIM_SYNTAX, "unknown operator");
        return 0;
    }

    if (ps->p < ps->end && !ent_scim_is_ws(*ps->p)
        && (ent_scim_ops[i].op != ENT_SCIM_OP_PR
            || (*ps->p != ')' && *ps->p != ']')))
    {
        ent_scim_fail(ps, ENT_SCIM_SYNTAX, "unknown operator");
        return 0;
    }

    return ent_scim_ops[i].op;
}


static int
ent_scim_parse_value(ent_scim_parser_t *ps, ent_scim_node_t *n)
{
    size_t                len;
    const unsigned char  *start;

    if (ps->p == ps->end) {
        ent_scim_fail(ps, ENT_SCIM_SYNTAX, "value expected");
        return -1;
    }

    if (*ps->p == '"') {
        return ent_scim_parse_string(ps, n);
    }

    start = ps->p;

    while (ps->p < ps->end && (ent_scim_name_char(*ps->p) || *ps->p == '+'))
    {
        ps->p++;
    }

    len = ps->p - start;

    if (len == 0) {
        ent_scim_fail(ps, ENT_SCIM_SYNTAX, "invalid value");
        return -1;
    }

    ps->p = start;

    if (ent_scim_word(ps, "true") && len == 4) {
        n->vtype = ENT_SCIM_V_TRUE;

    } else if (ent_scim_word(ps, "false") && len == 5) {
        n->vtype = ENT_SCIM_V_FALSE;

    } else if (ent_scim_word(ps, "null") && len == 4) {
        ent_scim_fail(ps, ENT_SCIM_TYPE,
                      "null is no value to compare with; "
                      "use \"not (attribute pr)\"");
        return -1;

    } else if (*start == '-' || (*start >= '0' && *start <= '9')) {
        if (len > ENT_SCIM_MAX_NUMBER) {
            ent_scim_fail(ps, ENT_SCIM_SYNTAX, "number too long");
            return -1;
        }

        if (!ent_scim_number(start, len)) {
            ent_scim_fail(ps, ENT_SCIM_SYNTAX, "invalid number");
            return -1;
        }

        n->value = (char *) ent_scim_lower(start, len);
        if (n->value == NULL) {
            ent_scim_fail(ps, ENT_SCIM_INTERNAL, "out of memory");
            return -1;
        }

        n->value_len = len;
        n->vtype = ENT_SCIM_V_NUMBER;

    } else {
        ent_scim_fail(ps, ENT_SCIM_SYNTAX, "invalid value");
        return -1;
    }

    ps->p = start + len;

    return 0;
}


/* a JSON string, ps->p at its opening quote; UTF-8 was checked before */

static int
ent_scim_parse_string(ent_scim_parser_t *ps, ent_scim_node_t *n)
{
    char      *d;
    size_t     len;
    unsigned   c, lo;

    ps->p++;

    d = malloc(ps->end - ps->p + 1);
    if (d == NULL) {
        ent_scim_fail(ps, ENT_SCIM_INTERNAL, "out of memory");
        return -1;
    }

    n->value = d;
    len = 0;

    for ( ;; ) {
        if (ps->p == ps->end) {
            ent_scim_fail(ps, ENT_SCIM_SYNTAX, "unterminated string");
            return -1;
        }

        c = *ps->p++;

        if (c == '"') {
            break;
        }

        if (c < 0x20) {
            ent_scim_fail(ps, ENT_SCIM_SYNTAX,
                          "control character in a string");
            return -1;
        }

        if (c != '\\') {
            d[len++] = (char) c;
            continue;
        }

        if (ps->p == ps->end) {
            ent_scim_fail(ps, ENT_SCIM_SYNTAX, "unterminated string");
            return -1;
        }

        c = *ps->p++;

        switch (c) {

        case '"':
        case '\\':
        case '/':
            d[len++] = (char) c;
            continue;

        case 'b':
            d[len++] = '\b';
            continue;

        case 'f':
            d[len++] = '\f';
            continue;

        case 'n':
            d[len++] = '\n';
            continue;

        case 'r':
            d[len++] = '\r';
            continue;

        case 't':
            d[len++] = '\t';
            continue;

        case 'u':
            break;

        default:
            ent_scim_fail(ps, ENT_SCIM_SYNTAX, "invalid escape in a string");
            return -1;
        }

        if (ent_scim_hex4(ps->p, ps->end, &c) != 0) {
            ent_scim_fail(ps, ENT_SCIM_SYNTAX, "invalid \\u escape");
            return -1;
        }

        ps->p += 4;

        if (c >= 0xdc00 && c <= 0xdfff) {
            ent_scim_fail(ps, ENT_SCIM_ENCODING, "unpaired surrogate");
            return -1;
        }

        if (c >= 0xd800 && c <= 0xdbff) {
            if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u'
                || ent_scim_hex4(ps->p + 2, ps->end, &lo) != 0
                || lo < 0xdc00 || lo > 0xdfff)
            {
                ent_scim_fail(ps, ENT_SCIM_ENCODING, "unpaired surrogate");
                return -1;
            }

            ps->p += 6;
            c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        }

        if (c == 0) {
            ent_scim_fail(ps, ENT_SCIM_ENCODING, "\\u0000 in a string");
            return -1;
        }

        /* at most 4 bytes out for at least 6 in */

        if (c < 0x80) {
            d[len++] = (char) c;

        } else if (c < 0x800) {
            d[len++] = (char) (0xc0 | (c >> 6));
            d[len++] = (char) (0x80 | (c & 0x3f));

        } else if (c < 0x10000) {
            d[len++] = (char) (0xe0 | (c >> 12));
            d[len++] = (char) (0x80 | ((c >> 6) & 0x3f));
            d[len++] = (char) (0x80 | (c & 0x3f));

        } else {
            d[len++] = (char) (0xf0 | (c >> 18));
            d[len++] = (char) (0x80 | ((c >> 12) & 0x3f));
            d[len++] = (char) (0x80 | ((c >> 6) & 0x3f));
            d[len++] = (char) (0x80 | (c & 0x3f));
        }
    }

    d[len] = '\0';
    n->value_len = len;
    n->vtype = ENT_SCIM_V_STRING;

    return 0;
}


static int
ent_scim_hex4(const unsigned char *p, const unsigned char *end, unsigned *v)
{
    int       i;
    unsigned  c, r;

    if (end - p < 4) {
        return -1;
    }

    r = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            c -= '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            c = (c | 0x20) - 'a' + 10;

        } else {
            return -1;
        }

        r = (r << 4) | c;
    }

    *v = r;

    return 0;
}


/* the JSON number grammar (RFC 8259, section 6) */

static int
ent_scim_number(const unsigned char *s, size_t len)
{
    size_t  i, n;

    i = 0;

    if (i < len && s[i] == '-') {
        i++;
    }

    if (i < len && s[i] == '0') {
        i++;

    } else if (i < len && s[i] >= '1' && s[i] <= '9') {
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }

    } else {
        return 0;
    }

    if (i < len && s[i] == '.') {
        i++;

        for (n = 0; i < len && s[i] >= '0' && s[i] <= '9'; n++) {
            i++;
        }

        if (n == 0) {
            return 0;
        }
    }

    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;

        if (i < len && (s[i] == '+' || s[i] == '-')) {
            i++;
        }

        for (n = 0; i < len && s[i] >= '0' && s[i] <= '9'; n++) {
            i++;
        }

        if (n == 0) {
            return 0;
        }
    }

    return i == len;
}


/* a JSON number (already checked) without fraction or exponent in int64 */

int
ent_scim_int64(const char *s)
{
    int       neg;
    uint64_t  v, max;

    neg = (*s == '-');
    s += neg;
    max = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;

    for (v = 0; *s; s++) {
        if (*s < '0' || *s > '9') {
            return 0;
        }

        if (v > (max - (*s - '0')) / 10) {
            return 0;
        }

        v = v * 10 + (*s - '0');
    }

    return 1;
}


/* date-time */

int
ent_scim_datetime(const char *s, size_t len, int64_t *sec, long *nsec)
{
    int      y, mo, d, h, mi, se, oh, om, mdays, n;
    long     ns, scale;
    size_t   i;
    int64_t  t;

    static const int  days[] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    if (s == NULL || len < 20
        || ent_scim_digits(s, 4, &y) != 0 || s[4] != '-'
        || ent_scim_digits(s + 5, 2, &mo) != 0 || s[7] != '-'
        || ent_scim_digits(s + 8, 2, &d) != 0
        || (s[10] != 'T' && s[10] != 't')
        || ent_scim_digits(s + 11, 2, &h) != 0 || s[13] != ':'
        || ent_scim_digits(s + 14, 2, &mi) != 0 || s[16] != ':'
        || ent_scim_digits(s + 17, 2, &se) != 0)
    {
        return -1;
    }

    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59
        || se > 60)
    {
        return -1;
    }

    mdays = days[mo - 1];

    if (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) {
        mdays = 29;
    }

    if (d > mdays) {
        return -1;
    }

    i = 19;
    ns = 0;

    if (s[i] == '.') {
        i++;
        scale = 100000000;

        for (n = 0; i < len && s[i] >= '0' && s[i] <= '9'; n++, i++) {
            if (n == 9) {
                return -1;
            }

            ns += (s[i] - '0') * scale;
            scale /= 10;
        }

        if (n == 0) {
            return -1;
        }
    }

    if (i == len) {
        return -1;
    }

    oh = 0;
    om = 0;

    if (s[i] == 'Z' || s[i] == 'z') {
        i++;

    } else if (s[i] == '+' || s[i] == '-') {
        if (len - i != 6 || ent_scim_digits(s + i + 1, 2, &oh) != 0
            || s[i + 3] != ':' || ent_scim_digits(s + i + 4, 2, &om) != 0
            || oh > 23 || om > 59)
        {
            return -1;
        }

        if (s[i] == '-') {
            oh = -oh;
            om = -om;
        }

        i += 6;

    } else {
        return -1;
    }

    if (i != len) {
        return -1;
    }

    t = ent_scim_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + se
        - (oh * 3600 + om * 60);

    if (sec != NULL) {
        *sec = t;
    }

    if (nsec != NULL) {
        *nsec = ns;
    }

    return 0;
}


/* days since 1970-01-01 of a proleptic Gregorian date, y >= 1 */

static int64_t
ent_scim_days(int64_t y, int m, int d)
{
    int64_t  era, yoe, doy, doe;

    if (m <= 2) {
        y--;
    }

    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


static int
ent_scim_digits(const char *s, size_t n, int *v)
{
    size_t  i;

    *v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        *v = *v * 10 + (s[i] - '0');
    }

    return 0;
}
