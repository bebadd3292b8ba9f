/*
 * Unit tests of the SCIM filter compiler (ngx_ent_scim_filter.c), printing
 * TAP.  The SQL and the parameters are compared whole, for every operator,
 * type, the logic and its precedence, complex attributes and URNs; then
 * every class of error, and injection attempts, whose values must land in
 * the parameters and nowhere in the SQL.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_scim_filter.h"
#include "tap.h"


#define ARENA_MAX  4096

#define UN         "lower(u.user_name)"
#define P1         "lower($2[1])"
#define EXISTS_E   "EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) " \
                   "AS e(elem)"


static void *keep(void *p);
static char *str(const char *fmt, ...);
static char *repeat(const char *s, size_t n);
static int compile(const char *f, size_t len, ent_scim_sql_t *q);
static int sql_is(const char *f, const char *sql, size_t n, ...);
static int rc_of(const char *f);
static int rc_len(const char *f, size_t len);
static void test_operators(void);
static void test_types(void);
static void test_logic(void);
static void test_multi(void);
static void test_urn(void);
static void test_strings(void);
static void test_injection(void);
static void test_syntax(void);
static void test_limits(void);
static void test_encoding(void);
static void test_table(void);
static void test_tree(void);
static void test_datetime(void);


static const ent_scim_attr_t  attrs[] = {
    { "username", "u.user_name", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "externalid", "u.external_id", ENT_SCIM_T_STRING, 1, 0, NULL },
    { "name.familyname", "u.family_name", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "name.givenname", "u.given_name", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "active", "u.active", ENT_SCIM_T_BOOLEAN, 0, 0, NULL },
    { "meta.lastmodified", "u.updated_at", ENT_SCIM_T_DATETIME, 0, 0,
      NULL },
    { "meta.version", "u.version", ENT_SCIM_T_INTEGER, 0, 0, NULL },
    { "score", "u.score", ENT_SCIM_T_DECIMAL, 0, 0, NULL },
    { "profileurl", "u.profile_url", ENT_SCIM_T_REFERENCE, 1, 0, NULL },
    { "emails", NULL, ENT_SCIM_T_STRING, 0, 1,
      "jsonb_array_elements(u.emails)" },
    { "emails.value", "(e.elem->>'value')", ENT_SCIM_T_STRING, 0, 0,
      NULL },
    { "emails.type", "(e.elem->>'type')", ENT_SCIM_T_STRING, 0, 0, NULL },
    { "emails.primary", "(e.elem->>'primary')::boolean",
      ENT_SCIM_T_BOOLEAN, 0, 0, NULL },
    { "groups", NULL, ENT_SCIM_T_STRING, 0, 1,
      "jsonb_array_elements(u.groups)" },
    { "groups.display", "(e.elem->>'display')", ENT_SCIM_T_STRING, 0, 0,
      NULL },
    { "members", NULL, ENT_SCIM_T_STRING, 0, 1,
      "jsonb_array_elements(g.members)" },
    { "members.value", "(e.elem->>'value')", ENT_SCIM_T_STRING, 1, 0,
      NULL },
    { "members.$ref", "(e.elem->>'$ref')", ENT_SCIM_T_REFERENCE, 1, 0,
      NULL },
    { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:"
      "department", "(u.ent->>'department')", ENT_SCIM_T_STRING, 0, 0,
      NULL },
    { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:"
      "manager.value", "(u.ent->'manager'->>'value')", ENT_SCIM_T_STRING,
      1, 0, NULL }
};

#define NATTRS  (sizeof(attrs) / sizeof(attrs[0]))


static void    *arena[ARENA_MAX];
static size_t   narena;
static char     err[128];


static void *
keep(void *p)
{
    if (p == NULL || narena == ARENA_MAX) {
        fprintf(stderr, "test arena: out of memory\n");
        exit(2);
    }

    arena[narena++] = p;

    return p;
}


static char *
str(const char *fmt, ...)
{
    int      n;
    char    *s, one[1];
    va_list  ap;

    if (fmt == NULL) {
        exit(2);
    }

    va_start(ap, fmt);
    n = vsnprintf(one, sizeof(one), fmt, ap);
    va_end(ap);

    s = keep(malloc(n + 1));

    va_start(ap, fmt);
    vsnprintf(s, n + 1, fmt, ap);
    va_end(ap);

    return s;
}


static char *
repeat(const char *s, size_t n)
{
    char    *d;
    size_t   i, len;

    len = strlen(s);
    d = keep(malloc(len * n + 1));

    for (i = 0; i < n; i++) {
        memcpy(d + i * len, s, len);
    }

    d[len * n] = '\0';

    return d;
}


static int
compile(const char *f, size_t len, ent_scim_sql_t *q)
{
    memset(err, 0, sizeof(err));

    return ent_scim_filter_compile(f, len, attrs, NATTRS, "$2", q, err,
                                   sizeof(err));
}


/* compiles f: the SQL must be sql and the parameters the n strings after */

static int
sql_is(const char *f, const char *sql, size_t n, ...)
{
    int             rc, ok;
    size_t          i;
    va_list         ap;
    const char     *p;
    ent_scim_sql_t  q;

    rc = compile(f, strlen(f), &q);

    if (rc != ENT_SCIM_OK) {
        printf("# %s: rc %d (%s)\n", f, rc, err);
        return 0;
    }

    ok = strcmp(q.sql, sql) == 0 && q.nparams == n;

    if (!ok) {
        printf("# %s:\n#  got \"%s\" (%zu)\n#  not \"%s\" (%zu)\n", f, q.sql,
               q.nparams, sql, n);
    }

    va_start(ap, n);

    for (i = 0; ok && i < n; i++) {
        p = va_arg(ap, const char *);

        if (strcmp(q.params[i], p) != 0) {
            printf("# %s: param %zu \"%s\", not \"%s\"\n", f, i + 1,
                   q.params[i], p);
            ok = 0;
        }
    }

    va_end(ap);

    ent_scim_sql_free(&q);

    return ok;
}


static int
rc_of(const char *f)
{
    return rc_len(f, strlen(f));
}


/* the result, and nothing output on failure */

static int
rc_len(const char *f, size_t len)
{
    int             rc;
    ent_scim_sql_t  q;

    memset(&q, 0xa5, sizeof(ent_scim_sql_t));

    rc = compile(f, len, &q);

    if (rc != ENT_SCIM_OK
        && (q.sql != NULL || q.params != NULL || q.nparams != 0
            || err[0] == '\0'))
    {
        printf("# failure with output or without error text\n");
        return -1;
    }

    ent_scim_sql_free(&q);

    return rc;
}


static void
test_operators(void)
{
    check(sql_is("userName eq \"bjensen\"", UN " = " P1, 1, "bjensen"),
          "eq, case-insensitive: lower() on both sides");
    check(sql_is("userName ne \"bjensen\"", UN " <> " P1, 1, "bjensen"),
          "ne");
    check(sql_is("userName co \"jen\"", UN " LIKE " P1 " ESCAPE '\\'", 1,
                 "%jen%"), "co: LIKE %v%");
    check(sql_is("userName sw \"bj\"", UN " LIKE " P1 " ESCAPE '\\'", 1,
                 "bj%"), "sw: LIKE v%");
    check(sql_is("userName ew \"sen\"", UN " LIKE " P1 " ESCAPE '\\'", 1,
                 "%sen"), "ew: LIKE %v");
    check(sql_is("userName gt \"b\"", UN " > " P1, 1, "b"), "gt");
    check(sql_is("userName ge \"b\"", UN " >= " P1, 1, "b"), "ge");
    check(sql_is("userName lt \"b\"", UN " < " P1, 1, "b"), "lt");
    check(sql_is("userName le \"b\"", UN " <= " P1, 1, "b"), "le");
    check(sql_is("userName pr",
                 "(u.user_name IS NOT NULL AND u.user_name <> '')", 0),
          "pr on a string: not null and not empty");

    check(sql_is("externalId eq \"X1\"", "u.external_id = $2[1]", 1, "X1"),
          "caseExact: plain =");
    check(sql_is("externalId co \"X\"",
                 "u.external_id LIKE $2[1] ESCAPE '\\'", 1, "%X%"),
          "caseExact: plain LIKE");
    check(sql_is("externalId le \"X\"", "u.external_id <= $2[1]", 1, "X"),
          "caseExact: plain <=");
    check(sql_is("profileUrl sw \"https://\"",
                 "u.profile_url LIKE $2[1] ESCAPE '\\'", 1, "https://%"),
          "reference: like a string");

    check(sql_is("userName EQ \"a\"", UN " = " P1, 1, "a"),
          "operators are case-insensitive");
    check(sql_is("USERNAME Pr",
                 "(u.user_name IS NOT NULL AND u.user_name <> '')", 0),
          "names are case-insensitive");
    check(sql_is("userName co \"50%_\\\\x\"", UN " LIKE " P1 " ESCAPE '\\'",
                 1, "%50\\%\\_\\\\x%"),
          "LIKE wildcards and the escape character escaped in co");
    check(sql_is("userName sw \"%\"", UN " LIKE " P1 " ESCAPE '\\'", 1,
                 "\\%%"), "... in sw");
    check(sql_is("userName ew \"_\"", UN " LIKE " P1 " ESCAPE '\\'", 1,
                 "%\\_"), "... in ew");
    check(sql_is("userName eq \"50%_\"", UN " = " P1, 1, "50%_"),
          "... and not in eq");
    check(sql_is("userName co \"\"", UN " LIKE " P1 " ESCAPE '\\'", 1,
                 "%%"), "co with an empty string");
}


static void
test_types(void)
{
    check(sql_is("active eq true", "u.active = $2[1]::boolean", 1, "true"),
          "boolean eq true");
    check(sql_is("active ne FALSE", "u.active <> $2[1]::boolean", 1,
                 "false"), "boolean ne false, literal in any case");
    check(sql_is("active pr", "u.active IS NOT NULL", 0),
          "pr on a boolean: not null only");
    check(rc_of("active eq \"true\"") == ENT_SCIM_TYPE,
          "a string for a boolean: type error");
    check(rc_of("active eq 1") == ENT_SCIM_TYPE, "a number for a boolean");
    check(rc_of("active gt true") == ENT_SCIM_TYPE, "booleans: no gt");
    check(rc_of("active le false") == ENT_SCIM_TYPE, "booleans: no le");
    check(rc_of("active co \"t\"") == ENT_SCIM_TYPE, "booleans: no co");

    check(sql_is("meta.lastModified gt \"2011-05-13T04:42:34Z\"",
                 "u.updated_at > $2[1]::timestamptz", 1,
                 "2011-05-13T04:42:34Z"), "dateTime gt");
    check(sql_is("meta.lastModified le \"2011-05-13T04:42:34.5+02:00\"",
                 "u.updated_at <= $2[1]::timestamptz", 1,
                 "2011-05-13T04:42:34.5+02:00"), "dateTime le, offset");
    check(sql_is("meta.lastModified pr", "u.updated_at IS NOT NULL", 0),
          "dateTime pr");
    check(rc_of("meta.lastModified gt \"2011-05-13\"") == ENT_SCIM_TYPE,
          "a date is not a date-time");
    check(rc_of("meta.lastModified gt \"2011-05-13 04:42:34Z\"")
          == ENT_SCIM_TYPE, "a space for T");
    check(rc_of("meta.lastModified gt \"2011-05-13T04:42:34\"")
          == ENT_SCIM_TYPE, "no offset");
    check(rc_of("meta.lastModified gt \"2011-02-29T04:42:34Z\"")
          == ENT_SCIM_TYPE, "no 29 February in 2011");
    check(rc_of("meta.lastModified gt \"yesterday\"") == ENT_SCIM_TYPE,
          "not a date-time at all");
    check(rc_of("meta.lastModified eq 1305261754") == ENT_SCIM_TYPE,
          "a number for a dateTime");
    check(rc_of("meta.lastModified co \"2011\"") == ENT_SCIM_TYPE,
          "dateTime: no co");
    check(rc_of("meta.lastModified sw \"2011-05-13T04:42:34Z\"")
          == ENT_SCIM_TYPE, "dateTime: no sw even with a date-time");

    check(sql_is("meta.version ge 3", "u.version >= $2[1]::bigint", 1, "3"),
          "integer ge");
    check(sql_is("meta.version eq -9223372036854775808",
                 "u.version = $2[1]::bigint", 1, "-9223372036854775808"),
          "integer: the least int64");
    check(sql_is("meta.version eq 9223372036854775807",
                 "u.version = $2[1]::bigint", 1, "9223372036854775807"),
          "integer: the greatest int64");
    check(rc_of("meta.version eq 9223372036854775808") == ENT_SCIM_TYPE,
          "integer: out of int64");
    check(rc_of("meta.version eq 1.5") == ENT_SCIM_TYPE,
          "integer: no fraction");
    check(rc_of("meta.version eq 1e3") == ENT_SCIM_TYPE,
          "integer: no exponent");
    check(rc_of("meta.version eq \"3\"") == ENT_SCIM_TYPE,
          "integer: not a string");
    check(rc_of("meta.version co \"3\"") == ENT_SCIM_TYPE,
          "integer: no co");
    check(sql_is("meta.version pr", "u.version IS NOT NULL", 0),
          "integer pr");

    check(sql_is("score lt -1.5E+3", "u.score < $2[1]::numeric", 1,
                 "-1.5e+3"), "decimal lt, exponent");
    check(sql_is("score eq 0", "u.score = $2[1]::numeric", 1, "0"),
          "decimal eq an integer");
    check(rc_of("score eq \"1\"") == ENT_SCIM_TYPE, "decimal: not a string");
    check(rc_of("score ew \"1\"") == ENT_SCIM_TYPE, "decimal: no ew");

    check(rc_of("userName eq 5") == ENT_SCIM_TYPE, "a number for a string");
    check(rc_of("userName eq true") == ENT_SCIM_TYPE,
          "a boolean for a string");
    check(rc_of("userName eq null") == ENT_SCIM_TYPE, "eq null: an error");
    check(rc_of("userName ne NULL") == ENT_SCIM_TYPE, "ne null: an error");
    check(rc_of("userName co 5") == ENT_SCIM_TYPE, "co with a number");
    check(rc_of("userName gt false") == ENT_SCIM_TYPE,
          "gt with a boolean, whatever the attribute");
}


static void
test_logic(void)
{
    const char  *a, *b, *c;

    a = "(u.user_name IS NOT NULL AND u.user_name <> '')";
    b = "u.active = $2[1]::boolean";
    c = "u.version = $2[2]::bigint";

    check(sql_is("userName pr and active eq true", str("(%s AND %s)", a, b),
                 1, "true"), "and");
    check(sql_is("userName pr or active eq true", str("(%s OR %s)", a, b),
                 1, "true"), "or");
    check(sql_is("not (userName pr)", str("((%s) IS NOT TRUE)", a), 0),
          "not: IS NOT TRUE");
    check(sql_is("not(userName pr)", str("((%s) IS NOT TRUE)", a), 0),
          "not( without a space");
    check(sql_is("userName pr or active eq true and meta.version eq 1",
                 str("(%s OR (%s AND %s))", a, b, c), 2, "true", "1"),
          "and binds tighter than or (right)");
    check(sql_is("active eq true and meta.version eq 1 or userName pr",
                 str("((%s AND %s) OR %s)",
                     "u.active = $2[1]::boolean", "u.version = $2[2]::bigint",
                     a), 2, "true", "1"),
          "and binds tighter than or (left)");
    check(sql_is("(userName pr or active eq true) and meta.version eq 1",
                 str("((%s OR %s) AND %s)", a, b, c), 2, "true", "1"),
          "parentheses override precedence");
    check(sql_is("not (userName pr) and active eq true",
                 str("(((%s) IS NOT TRUE) AND %s)", a, b), 1, "true"),
          "not binds tighter than and");
    check(sql_is("not (userName pr or active eq true)",
                 str("(((%s OR %s)) IS NOT TRUE)", a, b), 1, "true"),
          "not of a group");
    check(sql_is("userName pr or userName pr or userName pr",
                 str("((%s OR %s) OR %s)", a, a, a), 0),
          "or is left-associative");
    check(sql_is("userName pr AND active eq true", str("(%s AND %s)", a, b),
                 1, "true"), "AND in upper case");
    check(sql_is("userName pr Or active eq true", str("(%s OR %s)", a, b),
                 1, "true"), "Or in mixed case");
    check(sql_is("NOT (userName pr)", str("((%s) IS NOT TRUE)", a), 0),
          "NOT in upper case");
    check(sql_is("((userName pr))", a, 0), "redundant parentheses");
    check(sql_is(" \t( userName pr )\r\n", a, 0),
          "whitespace around and inside parentheses");
    check(sql_is("userName pr\tand\nactive eq true",
                 str("(%s AND %s)", a, b), 1, "true"),
          "tab and newline as SP");
    check(sql_is("userName pr and(active eq true)",
                 str("(%s AND %s)", a, b), 1, "true"),
          "\"and(\" without a space");
    check(sql_is("userName eq \"a\" or userName eq \"b\" or userName eq \"c\"",
                 "((" UN " = lower($2[1]) OR " UN " = lower($2[2])) OR "
                 UN " = lower($2[3]))", 3, "a", "b", "c"),
          "parameters numbered in order");
}


static void
test_multi(void)
{
    ent_scim_sql_t  q;
    int             rc;

    check(sql_is("emails co \"@example.com\"",
                 EXISTS_E " WHERE lower((e.elem->>'value')) LIKE lower($2[1])"
                 " ESCAPE '\\')", 1, "%@example.com%"),
          "multi-valued without sub-attribute: its value, in EXISTS");
    check(sql_is("emails pr", EXISTS_E ")", 0),
          "pr on multi-valued: any element");
    check(sql_is("not (emails pr)", "((" EXISTS_E ")) IS NOT TRUE)", 0),
          "no element");
    check(sql_is("emails.value eq \"a@b\"",
                 EXISTS_E " WHERE lower((e.elem->>'value')) = lower($2[1]))",
                 1, "a@b"), "emails.value eq: EXISTS");
    check(sql_is("emails.primary eq true",
                 EXISTS_E " WHERE (e.elem->>'primary')::boolean = "
                 "$2[1]::boolean)", 1, "true"), "boolean sub-attribute");
    check(sql_is("emails[type eq \"work\" and value co \"@x\"]",
                 EXISTS_E " WHERE (lower((e.elem->>'type')) = lower($2[1])"
                 " AND lower((e.elem->>'value')) LIKE lower($2[2])"
                 " ESCAPE '\\'))", 2, "work", "%@x%"),
          "complex filter: one element satisfying both");
    check(sql_is("emails[type eq \"work\"] and emails[value co \"@x\"]",
                 "(" EXISTS_E " WHERE lower((e.elem->>'type')) = lower($2[1]))"
                 " AND " EXISTS_E " WHERE lower((e.elem->>'value')) LIKE "
                 "lower($2[2]) ESCAPE '\\'))", 2, "work", "%@x%"),
          "two complex filters: each its own EXISTS");
    check(sql_is("emails[not (primary eq true) or type pr]",
                 EXISTS_E " WHERE ((((e.elem->>'primary')::boolean = "
                 "$2[1]::boolean) IS NOT TRUE) OR ((e.elem->>'type') IS NOT "
                 "NULL AND (e.elem->>'type') <> '')))", 1, "true"),
          "not, or and pr inside brackets");
    check(sql_is("emails[ type eq \"work\" ]",
                 EXISTS_E " WHERE lower((e.elem->>'type')) = lower($2[1]))",
                 1, "work"), "spaces inside brackets");
    check(sql_is("Emails[TYPE eq \"work\"]",
                 EXISTS_E " WHERE lower((e.elem->>'type')) = lower($2[1]))",
                 1, "work"), "names in brackets case-insensitive");
    check(sql_is("members[$ref ew \"/Users/1\"]",
                 "EXISTS (SELECT 1 FROM jsonb_array_elements(g.members) AS "
                 "e(elem) WHERE (e.elem->>'$ref') LIKE $2[1] ESCAPE '\\')", 1,
                 "%/Users/1"), "$ref, caseExact");
    check(sql_is("members eq \"2819c223\"",
                 "EXISTS (SELECT 1 FROM jsonb_array_elements(g.members) AS "
                 "e(elem) WHERE (e.elem->>'value') = $2[1])", 1, "2819c223"),
          "members eq: caseExact value");
    check(sql_is("name[givenName eq \"Barbara\"]",
                 "lower(u.given_name) = lower($2[1])", 1, "Barbara"),
          "brackets on a single-valued complex attribute: its columns");
    check(sql_is("name[givenName pr and familyName eq \"J\"]",
                 "((u.given_name IS NOT NULL AND u.given_name <> '') AND "
                 "lower(u.family_name) = lower($2[1]))", 1, "J"),
          "... with and");

    check(rc_of("emails[foo eq \"x\"]") == ENT_SCIM_ATTR,
          "unknown sub-attribute in brackets");
    check(rc_of("emails.foo eq \"x\"") == ENT_SCIM_ATTR,
          "unknown sub-attribute");
    check(rc_of("groups eq \"x\"") == ENT_SCIM_ATTR,
          "multi-valued without a value sub-attribute");
    check(rc_of("groups[display eq \"x\"]") == ENT_SCIM_OK,
          "... but its sub-attributes work");
    check(rc_of("emails[emails.type eq \"x\"]") == ENT_SCIM_SYNTAX,
          "a dotted name in brackets");
    check(rc_of("emails[type eq \"x\"].value eq \"y\"") == ENT_SCIM_SYNTAX,
          "a sub-attribute after brackets: PATCH only");
    check(rc_of("emails[groups[display pr]]") == ENT_SCIM_SYNTAX,
          "brackets inside brackets");
    check(rc_of("emails[]") == ENT_SCIM_SYNTAX, "empty brackets");
    check(rc_of("emails[type eq \"x\"") == ENT_SCIM_SYNTAX,
          "unclosed bracket");
    check(rc_of("name.givenName[type pr]") == ENT_SCIM_SYNTAX,
          "brackets after a sub-attribute");
    check(rc_of("username[type pr]") == ENT_SCIM_ATTR,
          "brackets on a scalar");
    check(rc_of("emails[value eq \"x\"] or emails[foo pr]") == ENT_SCIM_ATTR,
          "an unknown name in the second filter");

    rc = compile("emails[type eq \"work\"]", 22, &q);
    check(rc == ENT_SCIM_OK && strstr(q.sql, "work") == NULL,
          "the value is a parameter only");
    ent_scim_sql_free(&q);
}


static void
test_urn(void)
{
    check(sql_is("urn:ietf:params:scim:schemas:core:2.0:User:userName sw "
                 "\"J\"", UN " LIKE " P1 " ESCAPE '\\'", 1, "J%"),
          "core User URN: the bare name");
    check(sql_is("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:USERNAME pr",
                 "(u.user_name IS NOT NULL AND u.user_name <> '')", 0),
          "URN in upper case");
    check(sql_is("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName"
                 " eq \"J\"", "lower(u.family_name) = " P1, 1, "J"),
          "core URN and a sub-attribute");
    check(sql_is("urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "
                 "\"work\"]",
                 EXISTS_E " WHERE lower((e.elem->>'type')) = lower($2[1]))",
                 1, "work"), "core URN and brackets");
    check(sql_is("urn:ietf:params:scim:schemas:core:2.0:Group:members pr",
                 "EXISTS (SELECT 1 FROM jsonb_array_elements(g.members) AS "
                 "e(elem))", 0), "core Group URN");
    check(sql_is("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:"
                 "department eq \"Sales\"",
                 "lower((u.ent->>'department')) = " P1, 1, "Sales"),
          "enterprise extension attribute");
    check(sql_is("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:"
                 "manager.value eq \"26118915\"",
                 "(u.ent->'manager'->>'value') = $2[1]", 1, "26118915"),
          "enterprise manager.value");
    check(rc_of("department eq \"Sales\"") == ENT_SCIM_ATTR,
          "an extension attribute without its URN: as the table says");
    check(rc_of("urn:ietf:params:scim:schemas:extension:other:2.0:User:"
                "department eq \"x\"") == ENT_SCIM_ATTR,
          "another schema's attribute");
    check(rc_of("urn:ietf:params:scim:schemas:core:2.0:Users:userName pr")
          == ENT_SCIM_ATTR, "not a core schema: no stripping");
    check(rc_of("foo:userName pr") == ENT_SCIM_SYNTAX,
          "a URI that is not a URN");
    check(rc_of("urn::userName pr") == ENT_SCIM_SYNTAX,
          "an empty URN segment");
    check(rc_of(":userName pr") == ENT_SCIM_SYNTAX, "an empty URI");
    check(rc_of("urn:x:userName.$x pr") == ENT_SCIM_SYNTAX,
          "an invalid sub-attribute after a URN");
    check(rc_of("emails[urn:ietf:params:scim:schemas:core:2.0:User:type pr]")
          == ENT_SCIM_SYNTAX, "a URN inside brackets");
}


static void
test_strings(void)
{
    check(sql_is("userName eq \"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
                 UN " = " P1, 1, "a\"b\\c/d\b\f\n\r\t"),
          "the JSON escapes");
    check(sql_is("userName eq \"\\u00e9\\u00E9\"", UN " = " P1, 1,
                 "\xc3\xa9\xc3\xa9"), "\\u escapes, either case");
    check(sql_is("userName eq \"\\u20ac\"", UN " = " P1, 1,
                 "\xe2\x82\xac"), "\\u escape, three bytes");
    check(sql_is("userName eq \"\\ud83d\\ude00\"", UN " = " P1, 1,
                 "\xf0\x9f\x98\x80"), "a surrogate pair");
    check(sql_is("userName eq \"\xc3\xa9\xf0\x9f\x98\x80\"", UN " = " P1, 1,
                 "\xc3\xa9\xf0\x9f\x98\x80"), "raw UTF-8");
    check(sql_is("userName eq \"\"", UN " = " P1, 1, ""), "empty string");
    check(rc_of("userName eq \"\\ud83d\"") == ENT_SCIM_ENCODING,
          "a lone high surrogate");
    check(rc_of("userName eq \"\\ude00\"") == ENT_SCIM_ENCODING,
          "a lone low surrogate");
    check(rc_of("userName eq \"\\ud83d\\u0041\"") == ENT_SCIM_ENCODING,
          "a high surrogate and no low one");
    check(rc_of("userName eq \"\\ud83dx\"") == ENT_SCIM_ENCODING,
          "a high surrogate and text");
    check(rc_of("userName eq \"\\u0000\"") == ENT_SCIM_ENCODING,
          "\\u0000");
    check(rc_of("userName eq \"\\x41\"") == ENT_SCIM_SYNTAX,
          "an unknown escape");
    check(rc_of("userName eq \"\\'\"") == ENT_SCIM_SYNTAX, "\\' escape");
    check(rc_of("userName eq \"\\u12g4\"") == ENT_SCIM_SYNTAX,
          "a bad \\u escape");
    check(rc_of("userName eq \"\\u12\"") == ENT_SCIM_SYNTAX,
          "a short \\u escape");
    check(rc_of("userName eq \"a\nb\"") == ENT_SCIM_SYNTAX,
          "a raw control character");
    check(rc_of("userName eq \"abc") == ENT_SCIM_SYNTAX,
          "an unterminated string");
    check(rc_of("userName eq \"abc\\") == ENT_SCIM_SYNTAX,
          "a backslash at the end");
    check(rc_of("userName eq 'abc'") == ENT_SCIM_SYNTAX,
          "single quotes are no strings");

    check(sql_is("score eq -0.5e-3", "u.score = $2[1]::numeric", 1,
                 "-0.5e-3"), "a negative fraction and exponent");
    check(rc_of("score eq 01") == ENT_SCIM_SYNTAX, "a leading zero");
    check(rc_of("score eq 1.") == ENT_SCIM_SYNTAX, "no fraction digits");
    check(rc_of("score eq .5") == ENT_SCIM_SYNTAX, "no integer part");
    check(rc_of("score eq +1") == ENT_SCIM_SYNTAX, "a plus sign");
    check(rc_of("score eq 1e") == ENT_SCIM_SYNTAX, "no exponent digits");
    check(rc_of("score eq -") == ENT_SCIM_SYNTAX, "a bare minus");
    check(rc_of("score eq 0x10") == ENT_SCIM_SYNTAX, "hexadecimal");
    check(rc_of("score eq NaN") == ENT_SCIM_SYNTAX, "NaN");
    check(rc_of(str("score eq 1%s", repeat("0", ENT_SCIM_MAX_NUMBER))) ==
          ENT_SCIM_SYNTAX, "a number too long");
    check(rc_of("active eq truex") == ENT_SCIM_SYNTAX, "truex");
}


static void
test_injection(void)
{
    int              rc;
    size_t           i;
    ent_scim_sql_t   q;

    static const char  *const tries[] = {
        "userName eq \"x\\\" or 1=1 --\"",
        "userName eq \"a'); DROP TABLE x; --\"",
        "userName eq \"' OR '1'='1\"",
        "userName co \"%' OR 1=1; --\"",
        "emails[value eq \"$2[1]) OR (TRUE\"]",
        "userName eq \"\\u0027; DELETE FROM u; --\"",
        "userName eq \"x\\\\\" or userName pr"
    };

    check(sql_is(tries[0], UN " = " P1, 1, "x\" or 1=1 --"),
          "an escaped quote stays in the value");
    check(sql_is(tries[1], UN " = " P1, 1, "a'); DROP TABLE x; --"),
          "quotes and a statement stay in the value");

    /* the last one has pr, whose SQL has quotes of its own */

    for (i = 0; i < sizeof(tries) / sizeof(tries[0]) - 1; i++) {
        rc = compile(tries[i], strlen(tries[i]), &q);

        check(rc == ENT_SCIM_OK && strstr(q.sql, "$2[2]") == NULL
              && strstr(q.sql, "--") == NULL && strstr(q.sql, ";") == NULL
              && strstr(q.sql, "DROP") == NULL
              && strstr(q.sql, "DELETE") == NULL
              && strstr(q.sql, "1=1") == NULL
              && strstr(q.sql, "'1'") == NULL
              && strstr(q.sql, "OR (TRUE") == NULL,
              str("no byte of the value in the SQL: %s", tries[i]));

        ent_scim_sql_free(&q);
    }

    check(sql_is(tries[6], "(" UN " = " P1 " OR (u.user_name IS NOT NULL AND"
                 " u.user_name <> ''))", 1, "x\\"),
          "an escaped backslash ends the string where JSON does");

    check(rc_of("userName eq \"x\" or 1=1") == ENT_SCIM_SYNTAX,
          "or 1=1 after a filter");
    check(rc_of("userName eq \"x\"; DROP TABLE x") == ENT_SCIM_SYNTAX,
          "a statement after a filter");
    check(rc_of("userName eq \"x\" --") == ENT_SCIM_SYNTAX, "a comment");
    check(rc_of("userName) OR (1=1") == ENT_SCIM_SYNTAX,
          "parentheses to break out");
    check(rc_of("user'name eq \"x\"") == ENT_SCIM_SYNTAX, "a quote in a name");
    check(rc_of("u.user_name eq \"x\"") == ENT_SCIM_ATTR,
          "a column name is no attribute");
    check(rc_of("lower(userName) eq \"x\"") == ENT_SCIM_SYNTAX,
          "a function call");
    check(rc_of("userName eq x") == ENT_SCIM_SYNTAX, "a bare word value");
    check(rc_of("userName eq \"x\" or true") == ENT_SCIM_SYNTAX,
          "or true");
    check(rc_of("true") == ENT_SCIM_SYNTAX, "true alone");
    check(rc_of("userName eq $1") == ENT_SCIM_SYNTAX, "a placeholder value");
    check(rc_of("userName eq \"x\" or userName eq \"y\"/*") == ENT_SCIM_SYNTAX,
          "a comment opener");
}


static void
test_syntax(void)
{
    size_t       i;

    static const char  *const bad[] = {
        "", "   ", "userName", "userName eq", "userName eq ",
        "userName eq \"x\" and", "userName eq \"x\" and ",
        "userName eq \"x\" or", "and userName pr", "userName xx \"x\"",
        "userName e \"x\"", "userName eqq \"x\"", "userName eq\"x\"",
        "userName  eq\t\"x\"z", "userNameeq \"x\"", "userName pr pr",
        "userName pr and", "(userName pr", "userName pr)", "()",
        "(userName pr))", "((userName pr)", "not userName pr",
        "not (userName pr", "userName pr not (active pr)",
        "userName pr and and active pr", "userName pr andactive pr",
        "userName pr\"and\" active pr", "userName eq \"x\"and active pr",
        "userName pr and(active pr", "name..givenName pr",
        "name.givenName.x pr", ".name pr", "name. pr", "1name pr",
        "_name pr", "-name pr", "na$me pr", "$ref eq \"x\" x",
        "user@name pr", "userName eq \"x\" \"y\"", "userName eq 1 2",
        "userName eq [1]", "userName eq {}", "userName eq -",
        "[type pr]", "emails[]", "emails[type pr] x", "emails [type pr]",
        "userName pr,", "userName pr or or active pr", "not", "not ()",
        "userName\x01 pr"
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        check(rc_of(bad[i]) == ENT_SCIM_SYNTAX,
              str("syntax error: \"%s\"", bad[i]));
    }

    check(rc_of("userName pr") == ENT_SCIM_OK
          && rc_of("userName pr ") == ENT_SCIM_OK,
          "trailing whitespace");
    check(rc_of("not eq \"x\"") == ENT_SCIM_ATTR,
          "\"not\" not followed by \"(\" is a name");
    check(rc_of("and eq \"x\"") == ENT_SCIM_ATTR, "so is \"and\"");
    check(rc_of("userName pr and not(active pr)") == ENT_SCIM_OK,
          "and not(");
    check(rc_of("(userName pr)and (active pr)") == ENT_SCIM_SYNTAX,
          "no space before and");

    rc_of("userName eq \"x\" and");
    check(strcmp(err, "expected an expression after \"and\"") == 0,
          "a fixed error text");
    rc_of("zzz eq \"x\"");
    check(strcmp(err, "unknown attribute") == 0 && strstr(err, "zzz") == NULL,
          "the unknown attribute is not echoed");
}


static void
test_limits(void)
{
    char            *f, *g;
    size_t           n;
    ent_scim_sql_t   q;

    f = str("%suserName pr%s", repeat("(", ENT_SCIM_MAX_DEPTH),
            repeat(")", ENT_SCIM_MAX_DEPTH));
    check(sql_is(f, "(u.user_name IS NOT NULL AND u.user_name <> '')", 0),
          "16 nested parentheses");

    f = str("%suserName pr%s", repeat("(", ENT_SCIM_MAX_DEPTH + 1),
            repeat(")", ENT_SCIM_MAX_DEPTH + 1));
    check(rc_of(f) == ENT_SCIM_DEPTH, "17: too deep");

    f = str("%suserName pr%s", repeat("not (", ENT_SCIM_MAX_DEPTH + 1),
            repeat(")", ENT_SCIM_MAX_DEPTH + 1));
    check(rc_of(f) == ENT_SCIM_DEPTH, "17 nested not: too deep");

    f = str("%semails[type pr]%s", repeat("(", ENT_SCIM_MAX_DEPTH - 1),
            repeat(")", ENT_SCIM_MAX_DEPTH - 1));
    check(rc_of(f) == ENT_SCIM_OK, "15 parentheses and brackets: 16");

    f = str("%semails[type pr]%s", repeat("(", ENT_SCIM_MAX_DEPTH),
            repeat(")", ENT_SCIM_MAX_DEPTH));
    check(rc_of(f) == ENT_SCIM_DEPTH, "16 parentheses and brackets: 17");

    f = str("%s", repeat("(", ENT_SCIM_MAX_LEN));
    check(rc_of(f) == ENT_SCIM_DEPTH, "4096 \"(\": too deep, not a crash");

    f = str("userName pr%s", repeat(" and userName pr", ENT_SCIM_MAX_CMP - 1));
    check(rc_of(f) == ENT_SCIM_OK, "64 comparisons");

    f = str("userName pr%s", repeat(" and userName pr", ENT_SCIM_MAX_CMP));
    check(rc_of(f) == ENT_SCIM_COUNT, "65 comparisons: too many");

    f = str("emails[type pr%s]", repeat(" or type pr", ENT_SCIM_MAX_CMP));
    check(rc_of(f) == ENT_SCIM_COUNT, "65 inside brackets");

    f = str("userName eq \"x\"%s", repeat(" or userName eq \"x\"",
                                          ENT_SCIM_MAX_CMP - 1));
    check(compile(f, strlen(f), &q) == ENT_SCIM_OK && q.nparams == 64
          && strstr(q.sql, "$2[64]") != NULL && strcmp(q.params[63], "x") == 0,
          "64 parameters");
    ent_scim_sql_free(&q);

    /* exactly 4096 bytes, and one more */

    n = ENT_SCIM_MAX_LEN - strlen("userName eq \"\"");
    f = str("userName eq \"%s\"", repeat("a", n));
    g = str("userName eq \"%s\"", repeat("a", n + 1));

    check(strlen(f) == ENT_SCIM_MAX_LEN && rc_of(f) == ENT_SCIM_OK,
          "4096 bytes");
    check(rc_of(g) == ENT_SCIM_LENGTH, "4097 bytes: too long");

    f = repeat("userName pr and ", 65536);
    check(rc_of(f) == ENT_SCIM_LENGTH, "a megabyte: too long");

    f = str("%s pr", repeat("a", ENT_SCIM_MAX_NAME + 1));
    check(rc_of(f) == ENT_SCIM_SYNTAX, "a name too long");
    f = str("%s pr", repeat("a", ENT_SCIM_MAX_NAME));
    check(rc_of(f) == ENT_SCIM_ATTR, "a long name: just unknown");
}


static void
test_encoding(void)
{
    check(rc_len("userName eq \"a\0b\"", 17) == ENT_SCIM_ENCODING,
          "a NUL byte in a string");
    check(rc_len("userName pr\0", 12) == ENT_SCIM_ENCODING,
          "a NUL byte at the end");
    check(rc_len("\0", 1) == ENT_SCIM_ENCODING, "only a NUL byte");
    check(rc_of("userName eq \"\xff\"") == ENT_SCIM_ENCODING, "0xff");
    check(rc_of("userName eq \"\xc0\xaf\"") == ENT_SCIM_ENCODING,
          "an overlong \"/\"");
    check(rc_of("userName eq \"\xe0\x80\xaf\"") == ENT_SCIM_ENCODING,
          "an overlong three-byte form");
    check(rc_of("userName eq \"\xed\xa0\x80\"") == ENT_SCIM_ENCODING,
          "an encoded surrogate");
    check(rc_of("userName eq \"\xf4\x90\x80\x80\"") == ENT_SCIM_ENCODING,
          "above U+10FFFF");
    check(rc_of("userName eq \"\xe2\x82\"") == ENT_SCIM_ENCODING,
          "a truncated sequence");
    check(rc_of("userName eq \"\x80\"") == ENT_SCIM_ENCODING,
          "a lone continuation byte");
    check(rc_of("userName eq \"\xe2\x82") == ENT_SCIM_ENCODING,
          "a truncated sequence at the end");
    check(rc_of("us\xc3\xa9rName pr") == ENT_SCIM_SYNTAX,
          "UTF-8 in a name: a syntax error");
    check(rc_len(NULL, 0) == ENT_SCIM_SYNTAX, "NULL, 0: empty");
}


static void
test_table(void)
{
    int              rc;
    ent_scim_sql_t   q;

    static const ent_scim_attr_t  broken[] = {
        { "nosql", NULL, ENT_SCIM_T_STRING, 0, 0, NULL },
        { "notype", "x", 99, 0, 0, NULL },
        { "nomulti", NULL, ENT_SCIM_T_STRING, 0, 1, NULL },
        { "nomulti.value", "y", ENT_SCIM_T_STRING, 0, 0, NULL }
    };

    rc = ent_scim_filter_compile("userName eq \"a\"", 15, attrs, NATTRS, "$7",
                                 &q, err, sizeof(err));
    check(rc == ENT_SCIM_OK
          && strcmp(q.sql, "lower(u.user_name) = lower($7[1])") == 0,
          "the prefix is the caller's");
    ent_scim_sql_free(&q);

    check(ent_scim_filter_compile("userName pr", 11, attrs, NATTRS, NULL, &q,
                                  err, sizeof(err)) == ENT_SCIM_INTERNAL
          && q.sql == NULL, "no prefix");
    check(ent_scim_filter_compile("userName pr", 11, attrs, NATTRS, "", &q,
                                  err, sizeof(err)) == ENT_SCIM_INTERNAL,
          "an empty prefix");
    check(ent_scim_filter_compile("userName pr", 11, attrs, NATTRS, "$2)", &q,
                                  err, sizeof(err)) == ENT_SCIM_INTERNAL,
          "a prefix with SQL in it");
    check(ent_scim_filter_compile("userName pr", 11, attrs, NATTRS,
                                  "$12345678901234567", &q, err, sizeof(err))
          == ENT_SCIM_INTERNAL, "a prefix too long");
    check(ent_scim_filter_compile("userName pr", 11, NULL, 0, "$2", &q,
                                  err, sizeof(err)) == ENT_SCIM_ATTR,
          "an empty table: every name unknown");
    check(ent_scim_filter_compile("nosql pr", 8, broken, 4, "$2", &q,
                                  err, sizeof(err)) == ENT_SCIM_INTERNAL,
          "a row without sql");
    check(ent_scim_filter_compile("notype pr", 9, broken, 4, "$2", &q,
                                  err, sizeof(err)) == ENT_SCIM_INTERNAL,
          "a row of an unknown type");
    check(ent_scim_filter_compile("nomulti pr", 10, broken, 4, "$2", &q,
                                  err, sizeof(err)) == ENT_SCIM_INTERNAL
          && q.sql == NULL, "a multi-valued row without multi_sql");
    check(ent_scim_filter_compile("nomulti[value pr]", 17, broken, 4, "$2",
                                  &q, err, sizeof(err)) == ENT_SCIM_INTERNAL,
          "... with brackets");
    check(ent_scim_filter_compile("nosql pr", 8, broken, 4, "$2", &q, NULL, 0)
          == ENT_SCIM_INTERNAL, "no error buffer");
    ent_scim_sql_free(NULL);
}


static void
test_tree(void)
{
    int               rc;
    ent_scim_node_t  *n;

    rc = ent_scim_filter_parse("Emails[Type eq \"work\"] or not (A.B pr)",
                               38, &n, err, sizeof(err));
    check(rc == ENT_SCIM_OK && n->type == ENT_SCIM_N_OR
          && n->left->type == ENT_SCIM_N_VALUE
          && strcmp(n->left->attr, "emails") == 0
          && n->left->left->type == ENT_SCIM_N_CMP
          && strcmp(n->left->left->attr, "type") == 0
          && n->left->left->op == ENT_SCIM_OP_EQ
          && n->left->left->vtype == ENT_SCIM_V_STRING
          && strcmp(n->left->left->value, "work") == 0
          && n->right->type == ENT_SCIM_N_NOT
          && strcmp(n->right->left->attr, "a") == 0
          && strcmp(n->right->left->sub, "b") == 0
          && n->right->left->op == ENT_SCIM_OP_PR,
          "the tree, names in lower case");
    ent_scim_node_free(n);

    rc = ent_scim_filter_parse("urn:X:Y:a.b eq 1E5", 18, &n, err,
                               sizeof(err));
    check(rc == ENT_SCIM_OK && strcmp(n->uri, "urn:x:y") == 0
          && strcmp(n->attr, "a") == 0 && strcmp(n->sub, "b") == 0
          && n->vtype == ENT_SCIM_V_NUMBER && strcmp(n->value, "1e5") == 0,
          "a URN split at the last colon");
    ent_scim_node_free(n);

    rc = ent_scim_filter_parse("x eq", 4, &n, err, sizeof(err));
    check(rc == ENT_SCIM_SYNTAX && n == NULL, "no tree on failure");
}


static void
test_datetime(void)
{
    long     ns;
    int64_t  s;

    check(ent_scim_datetime("1970-01-01T00:00:00Z", 20, &s, &ns) == 0
          && s == 0 && ns == 0, "the epoch");
    check(ent_scim_datetime("2011-05-13T04:42:34Z", 20, &s, NULL) == 0
          && s == 1305261754, "a date-time");
    check(ent_scim_datetime("2011-05-13T06:42:34.25+02:00", 28, &s, &ns)
          == 0 && s == 1305261754 && ns == 250000000,
          "an offset and a fraction");
    check(ent_scim_datetime("2011-05-12t23:12:34.123456789-05:30", 35, &s,
                            &ns) == 0 && s == 1305261754 && ns == 123456789,
          "lower-case t, a negative offset, nine digits");
    check(ent_scim_datetime("2000-02-29T00:00:00z", 20, &s, NULL) == 0
          && s == 951782400, "29 February 2000, z");
    check(ent_scim_datetime("0001-01-01T00:00:00Z", 20, &s, NULL) == 0
          && s == -62135596800LL, "the first year");
    check(ent_scim_datetime("2016-12-31T23:59:60Z", 20, NULL, NULL) == 0,
          "a leap second");
    check(ent_scim_datetime("1900-02-29T00:00:00Z", 20, NULL, NULL) == -1,
          "no 29 February 1900");
    check(ent_scim_datetime("0000-01-01T00:00:00Z", 20, NULL, NULL) == -1,
          "no year 0");
    check(ent_scim_datetime("2011-13-01T00:00:00Z", 20, NULL, NULL) == -1,
          "month 13");
    check(ent_scim_datetime("2011-04-31T00:00:00Z", 20, NULL, NULL) == -1,
          "31 April");
    check(ent_scim_datetime("2011-05-13T24:00:00Z", 20, NULL, NULL) == -1,
          "hour 24");
    check(ent_scim_datetime("2011-05-13T04:42:34.Z", 21, NULL, NULL) == -1,
          "a dot without digits");
    check(ent_scim_datetime("2011-05-13T04:42:34.1234567890Z", 31, NULL,
                            NULL) == -1, "ten fraction digits");
    check(ent_scim_datetime("2011-05-13T04:42:34+0200", 24, NULL, NULL)
          == -1, "an offset without colon");
    check(ent_scim_datetime("2011-05-13T04:42:34+24:00", 25, NULL, NULL)
          == -1, "an offset of 24 hours");
    check(ent_scim_datetime("2011-05-13T04:42:34Zx", 21, NULL, NULL) == -1,
          "text after");
    check(ent_scim_datetime("2011-5-13T04:42:34Z", 19, NULL, NULL) == -1,
          "a one-digit month");
    check(ent_scim_datetime("+011-05-13T04:42:34Z", 20, NULL, NULL) == -1,
          "a sign in the year");
}


int
main(void)
{
    int     rc;
    size_t  i;

    test_operators();
    test_types();
    test_logic();
    test_multi();
    test_urn();
    test_strings();
    test_injection();
    test_syntax();
    test_limits();
    test_encoding();
    test_table();
    test_tree();
    test_datetime();

    rc = tap_done();

    for (i = 0; i < narena; i++) {
        free(arena[i]);
    }

    return rc;
}
