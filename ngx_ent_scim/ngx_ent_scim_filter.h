/*
 * I/O-free SCIM 2.0 filters (RFC 7644, section 3.4.2.2): a filter is
 * parsed into a small tree and compiled into a parameterized SQL boolean
 * expression over the caller's allow-list of attributes.  The same parser
 * reads the bracket filters of PATCH paths (ngx_ent_scim_path.h).  No nginx
 * headers: the unit tests and the libFuzzer targets link this file
 * directly.
 *
 * Grammar (RFC 7644's ABNF, with its case rules):
 *
 *   filter    = orExp
 *   orExp     = andExp *(SP "or" SP andExp)
 *   andExp    = unary *(SP "and" SP unary)
 *   unary     = "not" *SP "(" filter ")" / "(" filter ")" / attrExp
 *               / valuePath
 *   valuePath = attrPath "[" valFilter "]"
 *   attrExp   = attrPath SP "pr" / attrPath SP compareOp SP compValue
 *   attrPath  = [URI ":"] ATTRNAME ["." ATTRNAME]
 *   compareOp = "eq" / "ne" / "co" / "sw" / "ew" / "gt" / "ge" / "lt"
 *               / "le"
 *   compValue = "false" / "null" / "true" / number / string   (JSON)
 *
 * so "not" binds tighter than "and", and "and" tighter than "or".
 * Attribute names, operators and the words and, or, not, true, false and
 * null are case-insensitive; names come out of the parser in lower case
 * (ASCII).  SP is one or more of space, tab, CR, LF; "and", "or" may also
 * be followed directly by "(", and whitespace may surround parentheses
 * and brackets and the whole filter.
 *
 *   - ATTRNAME is ALPHA *(ALPHA / DIGIT / "-" / "_"), or "$ref";
 *   - a name with a ":" is URN-qualified: the URI is everything before
 *     the last ":", must start with "urn:" and be made of non-empty
 *     segments of ALPHA, DIGIT, ".", "-", "_";
 *   - a valFilter (inside "[...]") is the same grammar, but its attribute
 *     paths are bare sub-attribute names (no URI, no ".") and it holds no
 *     further "[...]";
 *   - strings are JSON strings: the escapes \" \\ \/ \b \f \n \r \t and
 *     \uXXXX (surrogate pairs combined); any other escape, an unpaired
 *     surrogate, \u0000 and raw control characters are errors;
 *   - numbers are JSON numbers of at most ENT_SCIM_MAX_NUMBER characters;
 *   - "pr" takes no value; "co", "sw" and "ew" need a string; "gt", "ge",
 *     "lt" and "le" do not take true or false; null is never a value
 *     (write "not (attr pr)" instead of "attr eq null").
 *
 * Limits: a filter is at most ENT_SCIM_MAX_LEN bytes of UTF-8 (strict:
 * no overlong forms, no surrogates, nothing above U+10FFFF) without NUL
 * bytes; parentheses and brackets nest at most ENT_SCIM_MAX_DEPTH deep;
 * at most ENT_SCIM_MAX_CMP comparisons (attrExp, "pr" included).
 *
 * Every failure has its own result code and a fixed error text in err;
 * nothing of the input is ever echoed.  The caller answers all but
 * ENT_SCIM_INTERNAL with 400 and scimType invalidFilter (invalidPath for a
 * PATCH path).  A failure never yields SQL.
 *
 * Memory is malloc()ed; every *_free() accepts NULL or a zeroed
 * structure.
 *
 * Files: ngx_ent_scim_parse.c holds the parser (ent_scim_filter_parse(),
 * ent_scim_path_parse_node()), ent_scim_node_free() and
 * ent_scim_datetime(); ngx_ent_scim_filter.c the compiler
 * (ent_scim_filter_compile(), ent_scim_sql_free()).
 */

#ifndef _NGX_ENT_SCIM_FILTER_H_INCLUDED_
#define _NGX_ENT_SCIM_FILTER_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define ENT_SCIM_MAX_LEN       4096     /* a filter or a PATCH path */
#define ENT_SCIM_MAX_DEPTH     16       /* nested "(" and "[" */
#define ENT_SCIM_MAX_CMP       64       /* comparisons in one filter */
#define ENT_SCIM_MAX_NAME      256      /* one attribute path */
#define ENT_SCIM_MAX_NUMBER    64       /* one number, as written */


/* results */
#define ENT_SCIM_OK            0
#define ENT_SCIM_SYNTAX        1     /* not the grammar above */
#define ENT_SCIM_ATTR          2     /* attribute not in the allow-list */
#define ENT_SCIM_TYPE          3     /* value or operator unfit */
#define ENT_SCIM_DEPTH         4     /* nested deeper than MAX_DEPTH */
#define ENT_SCIM_COUNT         5     /* more than MAX_CMP comparisons */
#define ENT_SCIM_LENGTH        6     /* longer than MAX_LEN */
#define ENT_SCIM_ENCODING      7     /* not UTF-8, a NUL byte, \u0000, an
                                        unpaired surrogate */
#define ENT_SCIM_INTERNAL      8     /* allocation failure, or a bad
                                        attribute table or prefix: the
                                        caller's fault, answer 500 */


/* operators */
#define ENT_SCIM_OP_EQ         1
#define ENT_SCIM_OP_NE         2
#define ENT_SCIM_OP_CO         3
#define ENT_SCIM_OP_SW         4
#define ENT_SCIM_OP_EW         5
#define ENT_SCIM_OP_PR         6
#define ENT_SCIM_OP_GT         7
#define ENT_SCIM_OP_GE         8
#define ENT_SCIM_OP_LT         9
#define ENT_SCIM_OP_LE         10

/* tree nodes */
#define ENT_SCIM_N_CMP         1     /* attrExp */
#define ENT_SCIM_N_AND         2
#define ENT_SCIM_N_OR          3
#define ENT_SCIM_N_NOT         4
#define ENT_SCIM_N_VALUE       5     /* valuePath: attr[left] */

/* values */
#define ENT_SCIM_V_NONE        0     /* "pr" */
#define ENT_SCIM_V_STRING      1
#define ENT_SCIM_V_NUMBER      2
#define ENT_SCIM_V_TRUE        3
#define ENT_SCIM_V_FALSE       4

/* attribute types */
#define ENT_SCIM_T_STRING      1
#define ENT_SCIM_T_BOOLEAN     2
#define ENT_SCIM_T_DATETIME    3
#define ENT_SCIM_T_INTEGER     4
#define ENT_SCIM_T_DECIMAL     5
#define ENT_SCIM_T_REFERENCE   6


typedef struct ent_scim_node_s  ent_scim_node_t;

struct ent_scim_node_s {
    int                  type;       /* ENT_SCIM_N_* */
    int                  op;         /* CMP: ENT_SCIM_OP_* */
    ent_scim_node_t     *left;       /* AND, OR, NOT; VALUE: the filter */
    ent_scim_node_t     *right;      /* AND, OR */
    char                *uri;        /* CMP, VALUE: the URI, lower case,
                                        without the last ":"; or NULL */
    char                *attr;       /* CMP, VALUE: lower case; inside a
                                        "[...]" the sub-attribute */
    char                *sub;        /* CMP: after the ".", or NULL */
    int                  vtype;      /* CMP: ENT_SCIM_V_* */
    char                *value;      /* STRING: decoded UTF-8, no NUL;
                                        NUMBER: as written, but "E" in
                                        lower case; else NULL */
    size_t               value_len;
};


/*
 * The caller's allow-list: one row per attribute a filter may name.
 *
 *   - a scalar (multi 0): path is the attribute's whole name, lower case,
 *     "username", "name.familyname", "meta.lastmodified",
 *     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:
 *     department"; sql is a SQL expression of its value: text for
 *     STRING and REFERENCE, boolean, timestamptz, an integer type or
 *     numeric for the others;
 *   - a multi-valued complex attribute (multi 1): path "emails", sql
 *     NULL, multi_sql a set-returning SQL source of jsonb elements,
 *     "jsonb_array_elements(u.emails)"; its sub-attributes are rows of
 *     their own, path "emails.value", "emails.type", whose sql reads the
 *     element, which is called e.elem: "(e.elem->>'value')",
 *     "(e.elem->>'primary')::boolean".
 *
 * A filter's name is matched whole, case-insensitively: first as
 * written (URI included), then, for the core schemas' URIs
 * (urn:ietf:params:scim:schemas:core:2.0:User and :Group), without the
 * URI, so "urn:ietf:params:scim:schemas:core:2.0:User:userName" is
 * "username".  "emails co x" compares the sub-attribute "value" (the row
 * "emails.value").  "name[givenName eq x]" on an attribute that is not
 * multi-valued is "name.givenName eq x".
 *
 * The strings of this table are trusted SQL: they are copied into the
 * output as they are.
 */
typedef struct {
    const char          *path;
    const char          *sql;
    int                  type;       /* ENT_SCIM_T_* */
    unsigned             case_exact:1;
    unsigned             multi:1;
    const char          *multi_sql;
} ent_scim_attr_t;


typedef struct {
    char                *sql;        /* a boolean SQL expression */
    size_t               nparams;
    char               **params;     /* NUL-terminated UTF-8 */
} ent_scim_sql_t;


/*
 * Parses a filter into a tree (*root, free it with ent_scim_node_free()).
 * *root is NULL on failure.
 */
int ent_scim_filter_parse(const char *filter, size_t len,
    ent_scim_node_t **root, char *err, size_t errlen);

void ent_scim_node_free(ent_scim_node_t *node);

/*
 * Parses and compiles a filter into out->sql, a boolean SQL expression
 * built only of the table's SQL strings, fixed keywords and operators,
 * and references to the parameters: the n-th value is out->params[n - 1]
 * and the SQL reads it as PREFIX[n], for a param_prefix "$2" as "$2[1]",
 * "$2[2]"... (so the caller passes params as one text[] parameter);
 * param_prefix is 1 to 16 of "$", ALPHA, DIGIT, "_".  No byte of a name
 * or a value of the filter is ever part of out->sql.
 *
 * The SQL, for X the attribute's sql and P its parameter:
 *
 *   eq ne gt ge lt le    X = P, X <> P, X > P, X >= P, X < P, X <= P
 *   co sw ew             X LIKE P ESCAPE '\', with P's "%", "_" and "\"
 *                        escaped by "\" and P wrapped as "%v%", "v%",
 *                        "%v" (needs standard_conforming_strings on, the
 *                        default)
 *   strings not          lower(X) and lower(P) instead of X and P
 *     case_exact
 *   BOOLEAN              P::boolean, eq and ne only, true or false only
 *   DATETIME             P::timestamptz, a strict RFC 3339 date-time, no
 *                        co sw ew
 *   INTEGER              P::bigint, a number without fraction or exponent
 *                        in the range of int64; no co sw ew
 *   DECIMAL              P::numeric, any number; no co sw ew
 *   pr                   (X IS NOT NULL AND X <> '') for STRING and
 *                        REFERENCE, X IS NOT NULL for the others;
 *                        EXISTS (SELECT 1 FROM M AS e(elem)) for a
 *                        multi-valued attribute (M its multi_sql)
 *   a and b, a or b      (A AND B), (A OR B)
 *   not (a)              ((A) IS NOT TRUE): an attribute without a
 *                        value fails every comparison but pr, and not
 *                        turns that into true
 *   multi-valued         EXISTS (SELECT 1 FROM M AS e(elem) WHERE C),
 *                        C the comparison of the sub-attribute, or the
 *                        whole "[...]" filter
 *
 * Returns ENT_SCIM_OK with *out filled (free it with ent_scim_sql_free()),
 * or a result code with *out zeroed and err set.
 */
int ent_scim_filter_compile(const char *filter, size_t len,
    const ent_scim_attr_t *attrs, size_t nattrs, const char *param_prefix,
    ent_scim_sql_t *out, char *err, size_t errlen);

void ent_scim_sql_free(ent_scim_sql_t *q);

/*
 * A strict RFC 3339 date-time: YYYY-MM-DD "T" hh:mm:ss [.fraction] and
 * "Z" or +hh:mm/-hh:mm ("t" and "z" too), a year from 0001, real days of
 * the month, a second of 60 allowed, 1 to 9 fraction digits.  0 and the
 * instant in seconds since the epoch and nanoseconds (either may be
 * NULL), or -1.
 */
int ent_scim_datetime(const char *s, size_t len, int64_t *sec,
    long *nsec);

/*
 * For ngx_ent_scim_path.c: parses a PATCH path (ngx_ent_scim_path.h) into
 * one VALUE node (a "[...]" filter in left) or CMP node (no filter), op
 * 0, with uri, attr and sub (after the "]" when there is a filter).
 */
int ent_scim_path_parse_node(const char *path, size_t len,
    ent_scim_node_t **root, char *err, size_t errlen);


#endif /* _NGX_ENT_SCIM_FILTER_H_INCLUDED_ */
