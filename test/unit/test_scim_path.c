/*
 * Unit tests of SCIM PATCH paths (ngx_ent_scim_path.c), printing TAP: the
 * forms of RFC 7644 3.5.2, their errors, and the evaluation of bracket
 * filters against JSON elements.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_scim_path.h"
#include "tap.h"


#define ARENA_MAX  256


static void *keep(void *p);
static char *str(const char *fmt, ...);
static char *repeat(const char *s, size_t n);
static int parse(const char *path, ent_scim_path_t *p);
static int rc_of(const char *path);
static int rc_len(const char *path, size_t len);
static int same(const char *a, const char *b);
static int match(const char *path, const char *json);
static int match_exact(const char *path, const char *json);
static void test_forms(void);
static void test_errors(void);
static void test_limits(void);
static void test_match_strings(void);
static void test_match_other(void);
static void test_match_logic(void);


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
parse(const char *path, ent_scim_path_t *p)
{
    memset(err, 0, sizeof(err));

    return ent_scim_path_parse(path, strlen(path), p, err, sizeof(err));
}


static int
rc_of(const char *path)
{
    return rc_len(path, strlen(path));
}


static int
rc_len(const char *path, size_t len)
{
    int              rc;
    ent_scim_path_t  p;

    memset(err, 0, sizeof(err));

    rc = ent_scim_path_parse(path, len, &p, err, sizeof(err));

    if (rc != ENT_SCIM_OK
        && (p.uri != NULL || p.attr != NULL || p.sub != NULL
            || p.filter != NULL || err[0] == '\0'))
    {
        printf("# failure with output or without error text\n");
        rc = -1;
    }

    ent_scim_path_free(&p);

    return rc;
}


static int
same(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }

    return strcmp(a, b) == 0;
}


static int
match(const char *path, const char *json)
{
    int              m;
    json_t          *elem;
    ent_scim_path_t  p;

    elem = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    if (elem == NULL || parse(path, &p) != ENT_SCIM_OK) {
        printf("# %s: %s\n", path, err);
        json_decref(elem);
        return -1;
    }

    m = ent_scim_path_match(&p, elem);

    ent_scim_path_free(&p);
    json_decref(elem);

    return m;
}


static int
match_exact(const char *path, const char *json)
{
    int              m;
    json_t          *elem;
    ent_scim_path_t  p;

    elem = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    if (elem == NULL || parse(path, &p) != ENT_SCIM_OK) {
        json_decref(elem);
        return -1;
    }

    p.case_exact = 1;
    m = ent_scim_path_match(&p, elem);

    ent_scim_path_free(&p);
    json_decref(elem);

    return m;
}


static void
test_forms(void)
{
    ent_scim_path_t   p;
    ent_scim_node_t  *f;

    check(parse("userName", &p) == ENT_SCIM_OK && p.uri == NULL
          && same(p.attr, "username") && p.sub == NULL && p.filter == NULL,
          "userName");
    ent_scim_path_free(&p);

    check(parse("name.givenName", &p) == ENT_SCIM_OK
          && same(p.attr, "name") && same(p.sub, "givenname")
          && p.filter == NULL, "name.givenName");
    ent_scim_path_free(&p);

    check(parse("emails[type eq \"work\"]", &p) == ENT_SCIM_OK
          && same(p.attr, "emails") && p.sub == NULL && p.filter != NULL
          && p.filter->type == ENT_SCIM_N_CMP && same(p.filter->attr, "type")
          && p.filter->op == ENT_SCIM_OP_EQ
          && p.filter->vtype == ENT_SCIM_V_STRING
          && same(p.filter->value, "work"), "emails[type eq \"work\"]");
    ent_scim_path_free(&p);

    check(parse("emails[type eq \"work\"].value", &p) == ENT_SCIM_OK
          && same(p.attr, "emails") && same(p.sub, "value")
          && p.filter != NULL && same(p.filter->value, "work"),
          "emails[type eq \"work\"].value");
    ent_scim_path_free(&p);

    check(parse("members[value eq \"2819c223-7f76-453a-919d-413861904646\"]",
                &p) == ENT_SCIM_OK && same(p.attr, "members")
          && same(p.filter->attr, "value")
          && same(p.filter->value, "2819c223-7f76-453a-919d-413861904646"),
          "members[value eq id]");
    ent_scim_path_free(&p);

    check(parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:"
                "department", &p) == ENT_SCIM_OK
          && same(p.uri, "urn:ietf:params:scim:schemas:extension:"
                         "enterprise:2.0:user")
          && same(p.attr, "department") && p.sub == NULL,
          "an enterprise attribute: URI and name");
    ent_scim_path_free(&p);

    check(parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:"
                "manager.value", &p) == ENT_SCIM_OK
          && same(p.uri, "urn:ietf:params:scim:schemas:extension:"
                         "enterprise:2.0:user")
          && same(p.attr, "manager") && same(p.sub, "value"),
          "manager.value with its URN");
    ent_scim_path_free(&p);

    check(parse("urn:ietf:params:scim:schemas:core:2.0:User:emails[Type eq "
                "\"Work\"].Display", &p) == ENT_SCIM_OK
          && same(p.uri, "urn:ietf:params:scim:schemas:core:2.0:user")
          && same(p.attr, "emails") && same(p.sub, "display")
          && same(p.filter->attr, "type") && same(p.filter->value, "Work"),
          "a URN, brackets and a sub-attribute; names lowered, values not");
    ent_scim_path_free(&p);

    check(parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                &p) == ENT_SCIM_OK
          && same(p.uri, "urn:ietf:params:scim:schemas:extension:"
                         "enterprise:2.0")
          && same(p.attr, "user"), "a bare schema URN: the last segment");
    ent_scim_path_free(&p);

    check(parse("members[$ref eq \"x\"].$ref", &p) == ENT_SCIM_OK
          && same(p.sub, "$ref") && same(p.filter->attr, "$ref"),
          "$ref");
    ent_scim_path_free(&p);

    check(parse("emails[type eq \"work\" and (primary eq true or not (value "
                "pr))]", &p) == ENT_SCIM_OK
          && (f = p.filter) != NULL && f->type == ENT_SCIM_N_AND
          && f->right->type == ENT_SCIM_N_OR
          && f->right->right->type == ENT_SCIM_N_NOT
          && f->right->left->vtype == ENT_SCIM_V_TRUE,
          "a filter tree with and, or, not");
    ent_scim_path_free(&p);

    check(parse("emails[ type eq \"work\" ]", &p) == ENT_SCIM_OK,
          "whitespace inside brackets");
    ent_scim_path_free(&p);

    check(parse("emails[value eq \"a\\\"b\\u00e9\"]", &p) == ENT_SCIM_OK
          && same(p.filter->value, "a\"b\xc3\xa9"), "escapes decoded");
    ent_scim_path_free(&p);

    ent_scim_path_free(NULL);
}


static void
test_errors(void)
{
    size_t  i;

    static const char  *const bad[] = {
        "", " userName", "userName ", "user name", "userName.", ".userName",
        "name.givenName.x", "name..x", "1abc", "emails[", "emails[]",
        "emails[type eq \"work\"", "emails[type eq \"work\"].",
        "emails[type eq \"work\"].value.x", "emails[type eq \"work\"]x",
        "emails[type eq \"work\"] ", "emails [type eq \"work\"]",
        "emails[type eq \"work\"][value pr]",
        "emails[type eq \"work\"].urn:x:y",
        "name.givenName[type pr]", "emails[emails[type pr]]",
        "emails[emails.type pr]", "emails[urn:x:type pr]", "emails[type]",
        "emails[type eq]", "emails[type eq work]", "emails[type xx \"w\"]",
        "emails[type eq \"w\" and]", "emails[(type pr]", "emails[type pr)]",
        "foo:bar", "urn:", "urn::x", "urn:x:", "emails[type eq \"w\\q\"]",
        "emails[type eq \"w\"]]", "emails]", "userName eq \"x\"",
        "emails[value eq 01]", "a$b"
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        check(rc_of(bad[i]) == ENT_SCIM_SYNTAX,
              str("syntax error: \"%s\"", bad[i]));
    }

    check(rc_of("emails[value eq null]") == ENT_SCIM_TYPE, "eq null");
    check(rc_of("emails[value co 1]") == ENT_SCIM_TYPE, "co a number");
    check(rc_of("emails[primary gt true]") == ENT_SCIM_TYPE, "gt true");
    check(rc_of("emails[value eq \"\\ud800\"]") == ENT_SCIM_ENCODING,
          "an unpaired surrogate");
    check(rc_of("emails[value eq \"\\u0000\"]") == ENT_SCIM_ENCODING,
          "\\u0000");
    check(rc_len("userName\0", 9) == ENT_SCIM_ENCODING, "a NUL byte");
    check(rc_of("emails[value eq \"\xc3\"]") == ENT_SCIM_ENCODING,
          "invalid UTF-8");
    check(rc_of("emails[value eq \"\xed\xbf\xbf\"]") == ENT_SCIM_ENCODING,
          "an encoded surrogate");
    check(rc_len(NULL, 0) == ENT_SCIM_SYNTAX, "NULL, 0: empty");

    rc_of("emails[type eq \"w\" and]");
    check(strstr(err, "emails") == NULL && err[0] != '\0',
          "a fixed error text");
}


static void
test_limits(void)
{
    char  *f;

    f = str("emails[%stype pr%s]", repeat("(", ENT_SCIM_MAX_DEPTH - 1),
            repeat(")", ENT_SCIM_MAX_DEPTH - 1));
    check(rc_of(f) == ENT_SCIM_OK, "brackets and 15 parentheses: 16 deep");

    f = str("emails[%stype pr%s]", repeat("(", ENT_SCIM_MAX_DEPTH),
            repeat(")", ENT_SCIM_MAX_DEPTH));
    check(rc_of(f) == ENT_SCIM_DEPTH, "17 deep");

    f = str("emails[%s]", repeat("(", ENT_SCIM_MAX_LEN - 8));
    check(rc_of(f) == ENT_SCIM_DEPTH, "thousands of \"(\"");

    f = str("emails[type pr%s]", repeat(" or type pr", ENT_SCIM_MAX_CMP - 1));
    check(rc_of(f) == ENT_SCIM_OK, "64 comparisons");

    f = str("emails[type pr%s]", repeat(" or type pr", ENT_SCIM_MAX_CMP));
    check(rc_of(f) == ENT_SCIM_COUNT, "65 comparisons");

    f = str("emails[value eq \"%s\"]", repeat("a", ENT_SCIM_MAX_LEN - 19));
    check(strlen(f) == ENT_SCIM_MAX_LEN && rc_of(f) == ENT_SCIM_OK,
          "4096 bytes");

    f = str("emails[value eq \"%s\"]", repeat("a", ENT_SCIM_MAX_LEN - 18));
    check(rc_of(f) == ENT_SCIM_LENGTH, "4097 bytes");

    f = str("%s", repeat("a", ENT_SCIM_MAX_NAME + 1));
    check(rc_of(f) == ENT_SCIM_SYNTAX, "a name too long");
}


static void
test_match_strings(void)
{
    const char  *e;

    e = "{\"value\":\"BJensen@Example.com\",\"type\":\"work\","
        "\"display\":\"\",\"primary\":true}";

    check(match("emails", e) == 1, "no filter: every element");
    check(match("emails[type eq \"work\"]", e) == 1, "eq");
    check(match("emails[type eq \"WORK\"]", e) == 1, "eq, case folded");
    check(match_exact("emails[type eq \"WORK\"]", e) == 0,
          "eq, case_exact");
    check(match_exact("emails[type eq \"work\"]", e) == 1,
          "eq, case_exact, same case");
    check(match("emails[type eq \"home\"]", e) == 0, "eq, different");
    check(match("emails[type ne \"home\"]", e) == 1, "ne");
    check(match("emails[type ne \"Work\"]", e) == 0, "ne, case folded");
    check(match("emails[value co \"@example.\"]", e) == 1, "co");
    check(match("emails[value co \"@example.org\"]", e) == 0, "co, not");
    check(match_exact("emails[value co \"@example.\"]", e) == 0,
          "co, case_exact");
    check(match("emails[value co \"\"]", e) == 1, "co the empty string");
    check(match("emails[value sw \"bjensen@\"]", e) == 1, "sw");
    check(match("emails[value sw \"jensen\"]", e) == 0, "sw, not");
    check(match("emails[value ew \".COM\"]", e) == 1, "ew");
    check(match("emails[value ew \"example\"]", e) == 0, "ew, not");
    check(match("emails[value ew \"xBJensen@Example.com\"]", e) == 0,
          "ew, longer than the value");
    check(match("emails[value pr]", e) == 1, "pr");
    check(match("emails[display pr]", e) == 0, "pr, empty string");
    check(match("emails[nothing pr]", e) == 0, "pr, absent");
    check(match("emails[type gt \"v\"]", e) == 1, "gt");
    check(match("emails[type gt \"work\"]", e) == 0, "gt, equal");
    check(match("emails[type ge \"WORK\"]", e) == 1, "ge, case folded");
    check(match("emails[type lt \"x\"]", e) == 1, "lt");
    check(match("emails[type le \"wor\"]", e) == 0, "le, a prefix is less");
    check(match("emails[TYPE eq \"work\"]", "{\"Type\":\"work\"}") == 1,
          "member names case-insensitive");
    check(match("emails[nothing eq \"x\"]", e) == 0, "absent: false");
    check(match("emails[nothing ne \"x\"]", e) == 0, "absent: ne false too");
    check(match("emails[value eq \"x\"]", "{\"value\":null}") == 0,
          "null: false");
    check(match("emails[value pr]", "{\"value\":null}") == 0,
          "null: not present");
    check(match("emails[value pr]", "{\"value\":[]}") == 0,
          "empty array: not present");
    check(match("emails[value pr]", "{\"value\":{}}") == 0,
          "empty object: not present");
    check(match("emails[value pr]", "{\"value\":0}") == 1,
          "zero: present");
    check(match("emails[value eq \"\xc3\xa9\"]",
                "{\"value\":\"\\u00e9\"}") == 1, "non-ASCII, equal bytes");
    check(match("emails[value eq \"a\\u0000b\"]",
                "{\"value\":\"a\"}") == -1, "\\u0000 does not parse");
    check(match("emails[value eq \"a\"]", "{\"value\":\"a\\u0000b\"}") == 0,
          "a NUL inside the element's string: compared whole");
    check(match("schemas[value eq \"urn:x\"]", "\"URN:X\"") == 1,
          "a simple element is its own value");
    check(match("schemas[type eq \"urn:x\"]", "\"urn:x\"") == 0,
          "... and has no other member");
}


static void
test_match_other(void)
{
    const char  *e;

    e = "{\"n\":42,\"x\":1.5,\"big\":9007199254740993,\"primary\":true,"
        "\"no\":false,\"s\":\"42\","
        "\"when\":\"2011-05-13T04:42:34Z\"}";

    check(match("a[n eq 42]", e) == 1, "integer eq");
    check(match("a[n eq 42.0]", e) == 1, "integer eq a decimal");
    check(match("a[n ne 41]", e) == 1, "integer ne");
    check(match("a[n gt 41]", e) == 1 && match("a[n gt 42]", e) == 0, "gt");
    check(match("a[n ge 42]", e) == 1 && match("a[n ge 43]", e) == 0, "ge");
    check(match("a[n lt 4.2e1]", e) == 0 && match("a[n lt 43]", e) == 1,
          "lt");
    check(match("a[n le -1]", e) == 0, "le a negative");
    check(match("a[x gt 1]", e) == 1 && match("a[x eq 1.5]", e) == 1,
          "a real");
    check(match("a[big eq 9007199254740993]", e) == 1
          && match("a[big eq 9007199254740992]", e) == 0,
          "big integers compared exactly");
    check(match("a[s eq 42]", e) == 0, "a string is no number");
    check(match("a[n eq \"42\"]", e) == 0, "a number is no string");
    check(match("a[primary eq true]", e) == 1, "boolean eq true");
    check(match("a[primary eq false]", e) == 0, "boolean eq false");
    check(match("a[primary ne false]", e) == 1, "boolean ne");
    check(match("a[no eq false]", e) == 1, "false eq false");
    check(match("a[s eq true]", e) == 0, "a string is no boolean");
    check(match("a[primary eq \"true\"]", e) == 0,
          "a boolean is no string");
    check(match("a[when eq \"2011-05-13T06:42:34+02:00\"]", e) == 1,
          "date-times compared as instants");
    check(match("a[when gt \"2011-05-13T04:42:33.999Z\"]", e) == 1,
          "gt a fraction earlier");
    check(match("a[when lt \"2011-05-13T04:42:34.001Z\"]", e) == 1,
          "lt a fraction later");
    check(match("a[when ge \"2011-05-13T00:00:00-05:00\"]", e) == 0,
          "ge, an offset making it later");
    check(match("a[when co \"05-13\"]", e) == 1, "co on a date-time: text");
}


static void
test_match_logic(void)
{
    const char  *e;

    e = "{\"value\":\"a@x\",\"type\":\"work\",\"primary\":true}";

    check(match("e[type eq \"work\" and primary eq true]", e) == 1, "and");
    check(match("e[type eq \"work\" and primary eq false]", e) == 0,
          "and, one false");
    check(match("e[type eq \"home\" or primary eq true]", e) == 1, "or");
    check(match("e[type eq \"home\" or primary eq false]", e) == 0,
          "or, both false");
    check(match("e[not (type eq \"home\")]", e) == 1, "not");
    check(match("e[not (type eq \"work\")]", e) == 0, "not, false");
    check(match("e[not (nothing eq \"x\")]", e) == 1,
          "not of an absent member: true");
    check(match("e[type eq \"home\" or type eq \"work\" and primary eq "
                "false]", e) == 0, "and binds tighter than or");
    check(match("e[(type eq \"home\" or type eq \"work\") and primary eq "
                "true]", e) == 1, "parentheses");
    check(match("e[type eq \"work\"]", "[1,2]") == 0, "an array element");
    check(match("e[type eq \"work\"]", "null") == 0, "a null element");
}


int
main(void)
{
    int     rc;
    size_t  i;

    test_forms();
    test_errors();
    test_limits();
    test_match_strings();
    test_match_other();
    test_match_logic();

    rc = tap_done();

    for (i = 0; i < narena; i++) {
        free(arena[i]);
    }

    return rc;
}
