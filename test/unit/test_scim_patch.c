/*
 * Unit tests of SCIM PATCH (ngx_ent_scim_patch.c), printing TAP: every
 * operation and path form on a sample User, the bodies Entra ID and Okta
 * send, atomicity, every error class with its scimType, and hostile
 * bodies.
 *
 * JSON in this file is written with ' for " (q() swaps them back), so
 * a filter's quote is \\' here.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_scim_patch.h"
#include "tap.h"


#define ARENA_MAX  4096
#define ENT_URN    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#define CORE_URN   "urn:ietf:params:scim:schemas:core:2.0:User"


static void *keep(void *p);
static json_t *keep_json(json_t *j);
static char *str(const char *fmt, ...);
static char *q(const char *s);
static char *body(const char *ops);
static json_t *sample(void);
static json_t *run(const char *ops);
static json_t *run_on(json_t *res, const char *ops);
static const char *fails(const char *ops);
static const char *fails_raw(const char *b, size_t len, int *rc);
static json_t *at(json_t *r, const char *path);
static json_t *ext(json_t *r, const char *name);
static json_t *ext_all(json_t *r);
static int is(json_t *v, const char *json);
static int has_schema(json_t *r, const char *urn);
static int nprimary(json_t *r, const char *attr);
static void test_api(void);
static void test_canon(void);
static void test_body(void);
static void test_ops(void);
static void test_simple(void);
static void test_complex(void);
static void test_multi(void);
static void test_filter_create(void);
static void test_primary(void);
static void test_extension(void);
static void test_readonly(void);
static void test_no_path(void);
static void test_entra(void);
static void test_okta(void);
static void test_atomic(void);
static void test_hostile(void);


static void        *arena[ARENA_MAX];
static size_t       narena;
static json_t      *jarena[ARENA_MAX];
static size_t       njarena;
static char         err[128];
static const char  *scim;


static const char  user_json[] =
    "{'schemas':['" CORE_URN "','" ENT_URN "'],"
    "'id':'2819c223-7f76-453a-919d-413861904646',"
    "'externalId':'bjensen',"
    "'userName':'bjensen@example.com',"
    "'name':{'givenName':'Barbara','familyName':'Jensen',"
    "'formatted':'Ms. Barbara J Jensen'},"
    "'displayName':'Babs Jensen',"
    "'active':true,"
    "'emails':[{'value':'bjensen@example.com','type':'work','primary':true},"
    "{'value':'babs@jensen.org','type':'home'}],"
    "'phoneNumbers':[{'value':'555-555-8377','type':'work'}],"
    "'groups':[{'value':'e9e30dba-f08f-4109-8486-d5c6a331660a',"
    "'display':'Tour Guides'}],"
    "'" ENT_URN "':{'employeeNumber':'701984',"
    "'department':'Tour Operations',"
    "'manager':{'value':'26118915-6090-4610-87e4-49d8ca9f808d',"
    "'displayName':'John Smith'}},"
    "'meta':{'resourceType':'User','created':'2010-01-23T04:56:22Z',"
    "'lastModified':'2011-05-13T04:42:34Z',"
    "'version':'W/\\'3694e05e9dff591\\'',"
    "'location':'https://example.com/v2/Users/"
    "2819c223-7f76-453a-919d-413861904646'}}";


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


static json_t *
keep_json(json_t *j)
{
    if (j == NULL) {
        return NULL;
    }

    if (njarena == ARENA_MAX) {
        fprintf(stderr, "test arena: out of memory\n");
        exit(2);
    }

    jarena[njarena++] = j;

    return j;
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


/* ' to " */

static char *
q(const char *s)
{
    char  *d, *p;

    d = keep(strdup(s));

    for (p = d; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }

    return d;
}


static char *
body(const char *ops)
{
    return q(str("{'schemas':['urn:ietf:params:scim:api:messages:2.0:"
                 "PatchOp'],'Operations':[%s]}", ops));
}


static json_t *
sample(void)
{
    json_t  *j;

    j = json_loads(q(user_json), 0, NULL);
    if (j == NULL) {
        fprintf(stderr, "bad sample user\n");
        exit(2);
    }

    return keep_json(j);
}


/* the patched sample user, or NULL (scim and err set) */

static json_t *
run(const char *ops)
{
    return run_on(sample(), ops);
}


static json_t *
run_on(json_t *res, const char *ops)
{
    int      rc;
    char    *b;
    json_t  *r, *orig;

    b = body(ops);
    r = res;
    orig = keep_json(json_deep_copy(res));
    scim = NULL;
    memset(err, 0, sizeof(err));

    rc = ent_scim_patch_apply(&r, b, strlen(b), &ent_scim_patch_user_schema,
                              &scim, err, sizeof(err));

    if (rc != ENT_SCIM_OK) {
        if (r != res || !json_equal(res, orig) || scim == NULL
            || err[0] == '\0')
        {
            printf("# failure changed the resource or said nothing\n");
            scim = "BROKEN";
        }

        return NULL;
    }

    if (r == res || scim != NULL || !json_equal(res, orig)) {
        printf("# success without a new, separate resource\n");
        json_decref(r);
        return NULL;
    }

    return keep_json(r);
}


/* the scimType of a failing patch of the sample user; "ok" on success */

static const char *
fails(const char *ops)
{
    if (run(ops) != NULL) {
        return "ok";
    }

    return scim != NULL ? scim : "(null)";
}


static const char *
fails_raw(const char *b, size_t len, int *rc)
{
    json_t  *r, *res, *orig;

    res = sample();
    orig = keep_json(json_deep_copy(res));
    r = res;
    scim = NULL;
    memset(err, 0, sizeof(err));

    *rc = ent_scim_patch_apply(&r, b, len, &ent_scim_patch_user_schema,
                               &scim, err, sizeof(err));

    if (*rc == ENT_SCIM_OK) {
        keep_json(r);
        return "ok";
    }

    if (r != res || !json_equal(res, orig)) {
        return "BROKEN";
    }

    return scim != NULL ? scim : "(null)";
}


/* a member by dotted path, exact names */

static json_t *
at(json_t *r, const char *path)
{
    char  *p, *dot;

    p = keep(strdup(path));

    while (r != NULL && (dot = strchr(p, '.')) != NULL) {
        *dot = '\0';
        r = json_object_get(r, p);
        p = dot + 1;
    }

    return json_object_get(r, p);
}


static json_t *
ext(json_t *r, const char *name)
{
    return json_object_get(ext_all(r), name);
}


static json_t *
ext_all(json_t *r)
{
    return json_object_get(r, ENT_URN);
}


static int
is(json_t *v, const char *json)
{
    int      eq;
    json_t  *x;

    x = json_loads(q(json), JSON_DECODE_ANY, NULL);
    if (x == NULL) {
        printf("# bad test JSON %s\n", json);
        return 0;
    }

    eq = v != NULL && json_equal(v, x);

    if (!eq) {
        char  *d;

        d = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        printf("# got %s\n", d ? d : "(nothing)");
        free(d);
    }

    json_decref(x);

    return eq;
}


static int
has_schema(json_t *r, const char *urn)
{
    size_t   i;
    json_t  *s;

    json_array_foreach(json_object_get(r, "schemas"), i, s) {
        if (strcmp(json_string_value(s), urn) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
nprimary(json_t *r, const char *attr)
{
    int      n;
    size_t   i;
    json_t  *e;

    n = 0;

    json_array_foreach(json_object_get(r, attr), i, e) {
        n += json_is_true(json_object_get(e, "primary"));
    }

    return n;
}


static void
test_api(void)
{
    int          rc;
    char         small[8];
    char        *b;
    json_t      *r, *s;
    const char  *t;

    b = body("{'op':'replace','path':'userName','value':'x'}");

    r = NULL;
    rc = ent_scim_patch_apply(&r, b, strlen(b), &ent_scim_patch_user_schema,
                              &t, err, sizeof(err));
    check(rc == ENT_SCIM_INTERNAL && t == NULL, "api: no resource");

    s = keep_json(json_string("x"));
    r = s;
    rc = ent_scim_patch_apply(&r, b, strlen(b), &ent_scim_patch_user_schema,
                              &t, err, sizeof(err));
    check(rc == ENT_SCIM_INTERNAL && r == s, "api: resource not an object");

    r = sample();
    rc = ent_scim_patch_apply(&r, b, strlen(b), NULL, &t, err, sizeof(err));
    check(rc == ENT_SCIM_INTERNAL, "api: no schema");

    s = sample();
    r = s;
    memset(small, 'x', sizeof(small));
    rc = ent_scim_patch_apply(&r, "{", 1, &ent_scim_patch_user_schema, &t,
                              small, sizeof(small));
    check(rc == ENT_SCIM_SYNTAX && r == s && small[7] == '\0'
          && strlen(small) == 7, "api: err truncated and terminated");

    rc = ent_scim_patch_apply(&r, b, strlen(b), &ent_scim_patch_user_schema,
                              &t, NULL, 0);
    check(rc == ENT_SCIM_OK && r != s && t == NULL,
          "api: success, no err buffer");
    keep_json(r);

    check(is(at(r, "userName"), "'x'"), "api: the new resource is patched");
    check(is(at(s, "userName"), "'bjensen@example.com'"),
          "api: the old one is not");
}


static void
test_body(void)
{
    int          rc;
    char        *b, *big;
    size_t       i, n;
    const char  *t;

    t = fails_raw("", 0, &rc);
    check(strcmp(t, "invalidSyntax") == 0, "body: empty");

    t = fails_raw("{\"schemas\":", 11, &rc);
    check(strcmp(t, "invalidSyntax") == 0 && rc == ENT_SCIM_SYNTAX,
          "body: truncated JSON");

    t = fails_raw("[]", 2, &rc);
    check(strcmp(t, "invalidSyntax") == 0, "body: an array");

    b = q("{'Operations':[{'op':'add','path':'displayName','value':'x'}]}");
    t = fails_raw(b, strlen(b), &rc);
    check(strcmp(t, "invalidSyntax") == 0, "body: no schemas");

    b = q("{'schemas':['urn:ietf:params:scim:api:messages:2.0:ListResponse'],"
          "'Operations':[{'op':'add','path':'displayName','value':'x'}]}");
    t = fails_raw(b, strlen(b), &rc);
    check(strcmp(t, "invalidSyntax") == 0, "body: schemas without PatchOp");

    b = q("{'schemas':'urn:ietf:params:scim:api:messages:2.0:PatchOp',"
          "'Operations':[{'op':'add','path':'displayName','value':'x'}]}");
    t = fails_raw(b, strlen(b), &rc);
    check(strcmp(t, "invalidSyntax") == 0, "body: schemas not an array");

    b = q("{'SCHEMAS':['URN:IETF:params:scim:api:messages:2.0:patchop'],"
          "'operations':[{'OP':'add','PATH':'displayName','VALUE':'x'}]}");
    t = fails_raw(b, strlen(b), &rc);
    check(strcmp(t, "ok") == 0, "body: member names and URN in any case");

    b = q("{'schemas':['urn:ietf:params:scim:api:messages:2.0:PatchOp']}");
    t = fails_raw(b, strlen(b), &rc);
    check(strcmp(t, "invalidSyntax") == 0, "body: no Operations");

    check(strcmp(fails(""), "invalidSyntax") == 0, "body: no operation");

    b = q("{'schemas':['urn:ietf:params:scim:api:messages:2.0:PatchOp'],"
          "'Operations':{'op':'add','path':'displayName','value':'x'}}");
    t = fails_raw(b, strlen(b), &rc);
    check(strcmp(t, "invalidSyntax") == 0, "body: Operations an object");

    b = q("{'schemas':['urn:ietf:params:scim:api:messages:2.0:PatchOp'],"
          "'Operations':[],'operations':[{'op':'add','path':'displayName',"
          "'value':'x'}]}");
    t = fails_raw(b, strlen(b), &rc);
    check(strcmp(t, "invalidSyntax") == 0, "body: Operations spelled twice");

    b = q("{'schemas':['urn:ietf:params:scim:api:messages:2.0:PatchOp'],"
          "'schemas':['urn:ietf:params:scim:api:messages:2.0:PatchOp'],"
          "'Operations':[{'op':'add','path':'displayName','value':'x'}]}");
    t = fails_raw(b, strlen(b), &rc);
    check(strcmp(t, "invalidSyntax") == 0, "body: duplicate member");

    b = body("{'op':'add','path':'displayName','value':'\xff'}");
    t = fails_raw(b, strlen(b), &rc);
    check(strcmp(t, "invalidSyntax") == 0 && rc == ENT_SCIM_ENCODING,
          "body: not UTF-8");

    b = body("{'op':'add','path':'displayName','value':'\xc0\xaf'}");
    t = fails_raw(b, strlen(b), &rc);
    check(strcmp(t, "invalidSyntax") == 0, "body: overlong UTF-8");

    b = body("{'op':'add','path':'displayName','value':'a\\u0000b'}");
    t = fails_raw(b, strlen(b), &rc);
    check(strcmp(t, "invalidSyntax") == 0, "body: \\u0000");

    b = body("{'op':'add','path':'displayName','value':'x'}");
    n = strlen(b);
    b = keep(strdup(b));
    b[n - 2] = '\0';
    t = fails_raw(b, n, &rc);
    check(strcmp(t, "invalidSyntax") == 0, "body: a NUL byte");

    /* 100 operations are fine, 101 too many */

    n = 0;
    big = keep(malloc(101 * 64 + 1));
    big[0] = '\0';

    for (i = 0; i < 100; i++) {
        n += sprintf(big + n, "%s{'op':'replace','path':'displayName',"
                     "'value':'n%zu'}", i ? "," : "", i);
    }

    check(strcmp(fails(big), "ok") == 0, "body: 100 operations");

    sprintf(big + n, ",{'op':'replace','path':'displayName','value':'x'}");
    check(strcmp(fails(big), "tooMany") == 0, "body: 101 operations");

    /* over 1 MiB */

    n = ENT_SCIM_PATCH_MAX_BODY + 1;
    big = keep(malloc(n));
    memset(big, ' ', n);
    memcpy(big, "{}", 2);
    t = fails_raw(big, n, &rc);
    check(rc == ENT_SCIM_LENGTH && strcmp(t, "invalidSyntax") == 0,
          "body: over 1 MiB");

    memcpy(big, body("{'op':'add','path':'displayName','value':'x'}"),
           strlen(body("{'op':'add','path':'displayName','value':'x'}")));
    t = fails_raw(big, n - 1, &rc);
    check(rc == ENT_SCIM_OK, "body: exactly 1 MiB, mostly whitespace");
}


static void
test_ops(void)
{
    json_t  *r;

    r = run("{'op':'ADD','path':'displayName','value':'a'}");
    check(is(at(r, "displayName"), "'a'"), "op: ADD");

    r = run("{'op':'Add','path':'displayName','value':'a'}");
    check(is(at(r, "displayName"), "'a'"), "op: Add");

    r = run("{'op':'Replace','path':'displayName','value':'b'}");
    check(is(at(r, "displayName"), "'b'"), "op: Replace");

    r = run("{'op':'REPLACE','path':'displayName','value':'b'}");
    check(is(at(r, "displayName"), "'b'"), "op: REPLACE");

    r = run("{'op':'Remove','path':'displayName'}");
    check(r != NULL && at(r, "displayName") == NULL, "op: Remove");

    r = run("{'op':'rEmOvE','path':'displayName'}");
    check(r != NULL && at(r, "displayName") == NULL, "op: rEmOvE");

    r = run("{'Op':'replace','Path':'displayName','Value':'c'}");
    check(is(at(r, "displayName"), "'c'"), "op: member names in any case");

    check(strcmp(fails("{'op':'copy','path':'displayName','value':'x'}"),
                 "invalidSyntax") == 0, "op: copy");
    check(strcmp(fails("{'op':'add ','path':'displayName','value':'x'}"),
                 "invalidSyntax") == 0, "op: with a space");
    check(strcmp(fails("{'path':'displayName','value':'x'}"),
                 "invalidSyntax") == 0, "op: missing");
    check(strcmp(fails("{'op':1,'path':'displayName','value':'x'}"),
                 "invalidSyntax") == 0, "op: a number");
    check(strcmp(fails("'add'"), "invalidSyntax") == 0,
          "op: not an object");
    check(strcmp(fails("{'op':'add','OP':'add','path':'displayName',"
                       "'value':'x'}"), "invalidSyntax") == 0,
          "op: given twice");
    check(strcmp(fails("{'op':'add','path':'displayName'}"),
                 "invalidSyntax") == 0, "op: add without value");
    check(strcmp(fails("{'op':'replace','path':'displayName'}"),
                 "invalidSyntax") == 0, "op: replace without value");
    check(strcmp(fails("{'op':'add','path':7,'value':'x'}"),
                 "invalidPath") == 0, "op: path a number");
    check(strcmp(fails("{'op':'add','path':'','value':'x'}"),
                 "invalidPath") == 0, "op: empty path");
    check(strcmp(fails("{'op':'add','path':'display Name','value':'x'}"),
                 "invalidPath") == 0, "op: path syntax error");
    check(strcmp(fails("{'op':'add','path':'emails[type eq]','value':'x'}"),
                 "invalidPath") == 0, "op: bad filter in path");
    check(strcmp(fails("{'op':'remove'}"), "noTarget") == 0,
          "op: remove without path");
    check(strcmp(fails("{'op':'remove','path':null}"), "noTarget") == 0,
          "op: remove with null path");

    r = run("{'op':'replace','path':'displayName','value':'x','extra':1}");
    check(is(at(r, "displayName"), "'x'"), "op: unknown members ignored");
}


static void
test_simple(void)
{
    json_t  *r;
    char    *s;

    r = run("{'op':'replace','path':'userName','value':'babs@example.com'}");
    check(is(at(r, "userName"), "'babs@example.com'"), "simple: replace");

    r = run("{'op':'replace','path':'USERNAME','value':'b'}");
    check(is(at(r, "userName"), "'b'") && at(r, "USERNAME") == NULL,
          "simple: name in any case, written as the schema spells it");

    r = run("{'op':'replace','path':'" CORE_URN ":userName','value':'c'}");
    check(is(at(r, "userName"), "'c'"), "simple: core URN prefix");

    r = run("{'op':'replace','path':'urn:ietf:params:scim:schemas:core:2.0:"
            "user:displayName','value':'d'}");
    check(is(at(r, "displayName"), "'d'"), "simple: core URN in lower case");

    r = run("{'op':'add','path':'externalId','value':'ext-1'}");
    check(is(at(r, "externalId"), "'ext-1'"), "simple: add replaces");

    r = run("{'op':'remove','path':'externalId'}");
    check(r != NULL && at(r, "externalId") == NULL, "simple: remove");

    r = run("{'op':'remove','path':'externalId'},"
            "{'op':'remove','path':'externalId'}");
    check(r != NULL, "simple: remove of an unassigned attribute");

    r = run("{'op':'replace','path':'displayName','value':null}");
    check(r != NULL && at(r, "displayName") == NULL,
          "simple: replace with null unassigns");

    r = run("{'op':'replace','path':'active','value':'False'}");
    check(is(at(r, "active"), "false"), "simple: 'False' is false");

    r = run("{'op':'replace','path':'active','value':'TRUE'}");
    check(is(at(r, "active"), "true"), "simple: 'TRUE' is true");

    r = run("{'op':'replace','path':'active','value':false}");
    check(is(at(r, "active"), "false"), "simple: boolean");

    check(strcmp(fails("{'op':'replace','path':'active','value':'no'}"),
                 "invalidValue") == 0, "simple: 'no' is not a boolean");
    check(strcmp(fails("{'op':'replace','path':'active','value':1}"),
                 "invalidValue") == 0, "simple: 1 is not a boolean");
    check(strcmp(fails("{'op':'replace','path':'active','value':'true '}"),
                 "invalidValue") == 0, "simple: 'true ' is not a boolean");
    check(strcmp(fails("{'op':'replace','path':'userName','value':42}"),
                 "invalidValue") == 0, "simple: userName a number");
    check(strcmp(fails("{'op':'replace','path':'userName','value':true}"),
                 "invalidValue") == 0, "simple: userName a boolean");
    check(strcmp(fails("{'op':'replace','path':'userName',"
                       "'value':{'a':'b'}}"), "invalidValue") == 0,
          "simple: userName an object");
    check(strcmp(fails("{'op':'replace','path':'displayName',"
                       "'value':['a','b']}"), "invalidValue") == 0,
          "simple: two values for a single-valued attribute");
    check(strcmp(fails("{'op':'replace','path':'displayName','value':[]}"),
                 "invalidValue") == 0, "simple: [] for single-valued");
    check(strcmp(fails("{'op':'remove','path':'userName'}"),
                 "invalidValue") == 0, "simple: remove userName");
    check(strcmp(fails("{'op':'replace','path':'userName','value':''}"),
                 "invalidValue") == 0, "simple: empty userName");
    check(strcmp(fails("{'op':'replace','path':'userName','value':null}"),
                 "invalidValue") == 0, "simple: null userName");
    check(strcmp(fails("{'op':'add','path':'favouriteColour','value':'x'}"),
                 "invalidPath") == 0, "simple: unknown attribute");
    check(strcmp(fails("{'op':'remove','path':'favouriteColour'}"),
                 "invalidPath") == 0, "simple: remove unknown attribute");
    r = run("{'op':'add','path':'nickName','value':'Babs'}");
    check(r != NULL && at(r, "nickName") != NULL
          && strcmp(json_string_value(at(r, "nickName")), "Babs") == 0,
          "simple: nickName, kept (migration 015)");
    r = run("{'op':'add','path':'addresses[type eq \\'work\\'].locality',"
            "'value':'Berlin'}");
    check(r != NULL && json_array_size(at(r, "addresses")) == 1,
          "complex: a filtered address path makes the address");
    check(strcmp(fails("{'op':'add','path':'urn:example:ext:x',"
                       "'value':'x'}"), "invalidPath") == 0,
          "simple: unknown schema URN");
    check(strcmp(fails("{'op':'add','path':'userName.x','value':'x'}"),
                 "invalidPath") == 0, "simple: sub of a simple attribute");
    check(strcmp(fails("{'op':'add','path':'userName[value eq \\'x\\']',"
                       "'value':'x'}"), "invalidPath") == 0,
          "simple: filter on a single-valued attribute");

    /* what is unwrapped */

    r = run("{'op':'replace','path':'displayName','value':['a']}");
    check(is(at(r, "displayName"), "'a'"), "simple: [x] is x");

    r = run("{'op':'replace','path':'displayName','value':{'value':'b'}}");
    check(is(at(r, "displayName"), "'b'"), "simple: {value: x} is x");

    r = run("{'op':'Replace','path':'displayName',"
            "'value':[{'value':'c'}]}");
    check(is(at(r, "displayName"), "'c'"), "simple: [{value: x}] is x");

    r = run("{'op':'replace','path':'active','value':[{'value':'False'}]}");
    check(is(at(r, "active"), "false"), "simple: [{value: 'False'}]");

    check(strcmp(fails("{'op':'replace','path':'displayName',"
                       "'value':[['a']]}"), "invalidValue") == 0,
          "simple: [[x]] is not x");
    check(strcmp(fails("{'op':'replace','path':'displayName',"
                       "'value':{'value':'a','type':'b'}}"),
                 "invalidValue") == 0, "simple: {value, type} is not x");

    s = keep(malloc(ENT_SCIM_PATCH_MAX_STRING + 2));
    memset(s, 'a', ENT_SCIM_PATCH_MAX_STRING + 1);
    s[ENT_SCIM_PATCH_MAX_STRING + 1] = '\0';
    check(strcmp(fails(str("{'op':'replace','path':'displayName',"
                           "'value':'%s'}", s)), "invalidValue") == 0,
          "simple: a string too long");

    s[ENT_SCIM_PATCH_MAX_STRING] = '\0';
    check(strcmp(fails(str("{'op':'replace','path':'displayName',"
                           "'value':'%s'}", s)), "ok") == 0,
          "simple: a string of the longest length");

    r = run("{'op':'replace','path':'displayName','value':'J\\u00f6rg "
            "\\ud83d\\ude00'}");
    check(is(at(r, "displayName"), "'J\\u00f6rg \\ud83d\\ude00'"),
          "simple: non-ASCII");
}


static void
test_complex(void)
{
    json_t  *r;

    r = run("{'op':'replace','path':'name.givenName','value':'Babs'}");
    check(is(at(r, "name"), "{'givenName':'Babs','familyName':'Jensen',"
             "'formatted':'Ms. Barbara J Jensen'}"), "complex: a.sub");

    r = run("{'op':'replace','path':'NAME.GIVENNAME','value':'Babs'}");
    check(is(at(r, "name.givenName"), "'Babs'"), "complex: a.sub any case");

    r = run("{'op':'add','path':'name','value':{'givenName':'B'}}");
    check(is(at(r, "name"), "{'givenName':'B','familyName':'Jensen',"
             "'formatted':'Ms. Barbara J Jensen'}"), "complex: add merges");

    r = run("{'op':'replace','path':'name','value':{'familyName':'J'}}");
    check(is(at(r, "name"), "{'givenName':'Barbara','familyName':'J',"
             "'formatted':'Ms. Barbara J Jensen'}"),
          "complex: replace merges (RFC 7644 3.5.2.3)");

    r = run("{'op':'replace','path':'name','value':{'formatted':null}}");
    check(is(at(r, "name"), "{'givenName':'Barbara','familyName':'Jensen'}"),
          "complex: a null sub-attribute is removed");

    r = run("{'op':'replace','path':'name','value':[{'givenName':'C'}]}");
    check(is(at(r, "name.givenName"), "'C'"), "complex: [obj] is obj");

    r = run("{'op':'replace','path':'name','value':{'GIVENNAME':'D'}}");
    check(is(at(r, "name"), "{'givenName':'D','familyName':'Jensen',"
             "'formatted':'Ms. Barbara J Jensen'}"),
          "complex: value names written as the schema spells them");

    r = run("{'op':'remove','path':'name.familyName'}");
    check(is(at(r, "name"), "{'givenName':'Barbara',"
             "'formatted':'Ms. Barbara J Jensen'}"), "complex: remove a.sub");

    r = run("{'op':'remove','path':'name.familyName'},"
            "{'op':'remove','path':'name.givenName'},"
            "{'op':'remove','path':'name.formatted'}");
    check(r != NULL && at(r, "name") == NULL,
          "complex: an emptied attribute is removed");

    r = run("{'op':'remove','path':'name'},"
            "{'op':'add','path':'name.givenName','value':'E'}");
    check(is(at(r, "name"), "{'givenName':'E'}"),
          "complex: a.sub makes the attribute");

    r = run("{'op':'remove','path':'name'}");
    check(r != NULL && at(r, "name") == NULL, "complex: remove");

    r = run("{'op':'replace','path':'name','value':null}");
    check(r != NULL && at(r, "name") == NULL, "complex: null unassigns");

    check(strcmp(fails("{'op':'add','path':'name.nickName','value':'x'}"),
                 "invalidPath") == 0, "complex: unknown sub-attribute");
    check(strcmp(fails("{'op':'add','path':'name',"
                       "'value':{'nickName':'x'}}"), "invalidValue") == 0,
          "complex: unknown sub-attribute in a value");
    check(strcmp(fails("{'op':'add','path':'name','value':'Babs'}"),
                 "invalidValue") == 0, "complex: a string for name");
    check(strcmp(fails("{'op':'add','path':'name','value':{'givenName':1}}"),
                 "invalidValue") == 0, "complex: a number for a sub");
    check(strcmp(fails("{'op':'add','path':'name','value':{'givenName':'a',"
                       "'GivenName':'b'}}"), "invalidValue") == 0,
          "complex: one sub-attribute spelled twice");
    check(strcmp(fails("{'op':'add','path':'name[givenName eq \\'x\\']',"
                       "'value':'x'}"), "invalidPath") == 0,
          "complex: a filter on name");
    check(strcmp(fails("{'op':'add','path':'name.givenName',"
                       "'value':{'a':1}}"), "invalidValue") == 0,
          "complex: an object for a sub");
}


static void
test_multi(void)
{
    json_t  *r;

    r = run("{'op':'add','path':'emails','value':[{'value':'c@x.org',"
            "'type':'other'}]}");
    check(json_array_size(at(r, "emails")) == 3
          && is(json_array_get(at(r, "emails"), 2),
                "{'value':'c@x.org','type':'other'}"),
          "multi: add appends an array");

    r = run("{'op':'add','path':'emails','value':{'value':'c@x.org'}}");
    check(json_array_size(at(r, "emails")) == 3
          && is(json_array_get(at(r, "emails"), 2), "{'value':'c@x.org'}"),
          "multi: add appends one object");

    r = run("{'op':'add','path':'emails','value':'c@x.org'}");
    check(is(json_array_get(at(r, "emails"), 2), "{'value':'c@x.org'}"),
          "multi: add of a string is {value: string}");

    r = run("{'op':'add','path':'emails','value':['c@x.org','d@x.org']}");
    check(json_array_size(at(r, "emails")) == 4, "multi: add of strings");

    r = run("{'op':'add','path':'emails','value':[{'value':'babs@jensen.org',"
            "'type':'home'}]}");
    check(json_array_size(at(r, "emails")) == 2,
          "multi: add of an equal value changes nothing");

    r = run("{'op':'add','path':'emails','value':[{'Value':'c@x.org',"
            "'TYPE':'work','primary':null}]}");
    check(is(json_array_get(at(r, "emails"), 2),
             "{'value':'c@x.org','type':'work'}"),
          "multi: element names normalized, nulls dropped");

    r = run("{'op':'replace','path':'emails','value':[{'value':'z@x.org'}]}");
    check(is(at(r, "emails"), "[{'value':'z@x.org'}]"),
          "multi: replace replaces the array");

    r = run("{'op':'replace','path':'emails','value':[]}");
    check(r != NULL && at(r, "emails") == NULL,
          "multi: replace with [] unassigns");

    r = run("{'op':'add','path':'emails','value':[]}");
    check(json_array_size(at(r, "emails")) == 2, "multi: add of [] is void");

    r = run("{'op':'remove','path':'emails'}");
    check(r != NULL && at(r, "emails") == NULL, "multi: remove all");

    r = run("{'op':'remove','path':'emails[type eq \\'home\\']'}");
    check(is(at(r, "emails"), "[{'value':'bjensen@example.com',"
             "'type':'work','primary':true}]"),
          "multi: remove with a filter");

    r = run("{'op':'remove','path':'emails[type eq \\'HOME\\']'}");
    check(json_array_size(at(r, "emails")) == 1,
          "multi: filter strings compare case-insensitively");

    r = run("{'op':'remove','path':'emails[value co \\'@\\']'}");
    check(r != NULL && at(r, "emails") == NULL,
          "multi: removing every element removes the attribute");

    check(strcmp(fails("{'op':'remove','path':'emails[type eq \\'x\\']'}"),
                 "noTarget") == 0, "multi: remove, filter matches nothing");
    check(strcmp(fails("{'op':'remove','path':'emails'},"
                       "{'op':'remove','path':'emails[type eq \\'x\\']'}"),
                 "noTarget") == 0, "multi: remove, filter on no values");

    r = run("{'op':'remove','path':'emails[type eq \\'home\\'].type'}");
    check(is(json_array_get(at(r, "emails"), 1),
             "{'value':'babs@jensen.org'}"),
          "multi: remove a[f].sub");

    r = run("{'op':'remove','path':'emails[type eq \\'home\\'].value'}");
    check(json_array_size(at(r, "emails")) == 1,
          "multi: removing the required value drops the element");

    r = run("{'op':'remove','path':'emails.type'}");
    check(is(at(r, "emails"), "[{'value':'bjensen@example.com',"
             "'primary':true},{'value':'babs@jensen.org'}]"),
          "multi: remove a.sub of every element");

    r = run("{'op':'remove','path':'emails','value':[{'value':"
            "'babs@jensen.org'}]}");
    check(json_array_size(at(r, "emails")) == 1,
          "multi: remove with a value");

    r = run("{'op':'remove','path':'emails','value':[{'value':'n@x.org'}]}");
    check(json_array_size(at(r, "emails")) == 2,
          "multi: remove with a value that matches nothing");

    r = run("{'op':'replace','path':'emails[type eq \\'work\\'].value',"
            "'value':'new@example.com'}");
    check(is(json_array_get(at(r, "emails"), 0),
             "{'value':'new@example.com','type':'work','primary':true}"),
          "multi: replace a[f].sub");

    r = run("{'op':'add','path':'emails[type eq \\'home\\'].display',"
            "'value':'Home'}");
    check(is(json_array_get(at(r, "emails"), 1),
             "{'value':'babs@jensen.org','type':'home','display':'Home'}"),
          "multi: add a[f].sub");

    r = run("{'op':'replace','path':'emails[type eq \\'home\\']',"
            "'value':{'value':'h@x.org','type':'home'}}");
    check(is(json_array_get(at(r, "emails"), 1),
             "{'value':'h@x.org','type':'home'}"),
          "multi: replace a[f] replaces the element");

    r = run("{'op':'add','path':'emails[type eq \\'home\\']',"
            "'value':{'display':'H'}}");
    check(is(json_array_get(at(r, "emails"), 1),
             "{'value':'babs@jensen.org','type':'home','display':'H'}"),
          "multi: add a[f] merges into the element");

    r = run("{'op':'replace','path':'emails.type','value':'other'}");
    check(is(at(r, "emails"), "[{'value':'bjensen@example.com',"
             "'type':'other','primary':true},{'value':'babs@jensen.org',"
             "'type':'other'}]"), "multi: replace a.sub of every element");

    check(strcmp(fails("{'op':'remove','path':'emails'},"
                       "{'op':'replace','path':'emails.type','value':'x'}"),
                 "noTarget") == 0, "multi: a.sub of no element");
    check(strcmp(fails("{'op':'add','path':'emails','value':[{'type':'x'}]}"),
                 "invalidValue") == 0, "multi: an element without value");
    check(strcmp(fails("{'op':'add','path':'emails','value':[null]}"),
                 "invalidValue") == 0, "multi: a null element");
    check(strcmp(fails("{'op':'add','path':'emails','value':[{'value':'x',"
                       "'foo':'y'}]}"), "invalidValue") == 0,
          "multi: an unknown sub-attribute");
    check(strcmp(fails("{'op':'add','path':'emails','value':[7]}"),
                 "invalidValue") == 0, "multi: a number element");
    check(strcmp(fails("{'op':'add','path':'emails.foo','value':'x'}"),
                 "invalidPath") == 0, "multi: unknown a.sub");
    check(strcmp(fails("{'op':'add','path':'emails[foo eq \\'x\\'].foo',"
                       "'value':'x'}"), "invalidPath") == 0,
          "multi: unknown a[f].sub");
    check(strcmp(fails("{'op':'replace','path':'emails[type eq \\'work\\']"
                       ".primary','value':'maybe'}"), "invalidValue") == 0,
          "multi: a[f].sub type mismatch");
}


static void
test_filter_create(void)
{
    json_t  *r;

    r = run("{'op':'add','path':'phoneNumbers[type eq \\'mobile\\'].value',"
            "'value':'555'}");
    check(is(at(r, "phoneNumbers"), "[{'value':'555-555-8377',"
             "'type':'work'},{'type':'mobile','value':'555'}]"),
          "create: add a[f].sub without a match");

    r = run("{'op':'replace','path':'phoneNumbers[type eq \\'fax\\'].value',"
            "'value':'556'}");
    check(is(json_array_get(at(r, "phoneNumbers"), 1),
             "{'type':'fax','value':'556'}"),
          "create: replace a[f].sub without a match");

    r = run("{'op':'remove','path':'phoneNumbers'},"
            "{'op':'add','path':'phoneNumbers[type eq \\'work\\'].value',"
            "'value':'1'}");
    check(is(at(r, "phoneNumbers"), "[{'type':'work','value':'1'}]"),
          "create: into an unassigned attribute");

    r = run("{'op':'add','path':'emails[type eq \\'other\\' and primary eq "
            "false].value','value':'o@x.org'}");
    check(is(json_array_get(at(r, "emails"), 2),
             "{'type':'other','primary':false,'value':'o@x.org'}"),
          "create: from 'and' of eq");

    r = run("{'op':'add','path':'emails[type eq \\'other\\']',"
            "'value':{'value':'o@x.org'}}");
    check(is(json_array_get(at(r, "emails"), 2),
             "{'type':'other','value':'o@x.org'}"),
          "create: add a[f] without a match");

    r = run("{'op':'replace','path':'emails[type eq \\'work\\'].value',"
            "'value':'w@x.org'},"
            "{'op':'replace','path':'emails[type eq \\'work\\'].value',"
            "'value':'w2@x.org'}");
    check(json_array_size(at(r, "emails")) == 2
          && is(at(json_array_get(at(r, "emails"), 0), "value"),
                "'w2@x.org'"), "create: only when nothing matches");

    check(strcmp(fails("{'op':'replace','path':'emails[type eq \\'x\\']',"
                       "'value':{'value':'a@b'}}"), "noTarget") == 0,
          "create: not for replace a[f]");
    check(strcmp(fails("{'op':'add','path':'emails[type eq \\'x\\' or type "
                       "eq \\'y\\'].value','value':'a@b'}"),
                 "noTarget") == 0, "create: not from 'or'");
    check(strcmp(fails("{'op':'add','path':'emails[type ne \\'x\\']"
                       ".display','value':'a'}"), "ok") == 0,
          "create: not needed when 'ne' matches");
    check(strcmp(fails("{'op':'add','path':'emails[type ne \\'x\\' and "
                       "value eq \\'q\\'].display','value':'a'}"),
                 "noTarget") == 0, "create: not from 'ne'");
    check(strcmp(fails("{'op':'add','path':'emails[type sw \\'x\\'].value',"
                       "'value':'a@b'}"), "noTarget") == 0,
          "create: not from 'sw'");
    check(strcmp(fails("{'op':'add','path':'emails[type eq \\'a\\' and type "
                       "eq \\'b\\'].value','value':'a@b'}"),
                 "noTarget") == 0, "create: not from two values of one sub");
    check(strcmp(fails("{'op':'add','path':'emails[primary eq \\'x\\']"
                       ".value','value':'a@b'}"), "noTarget") == 0,
          "create: not from a string for a boolean");
    check(strcmp(fails("{'op':'add','path':'emails[type eq 1].value',"
                       "'value':'a@b'}"), "noTarget") == 0,
          "create: not from a number");
    check(strcmp(fails("{'op':'add','path':'emails[foo eq \\'x\\'].value',"
                       "'value':'a@b'}"), "noTarget") == 0,
          "create: not from an unknown sub-attribute");
    check(strcmp(fails("{'op':'add','path':'emails[type eq \\'x\\'].type',"
                       "'value':'y'}"), "invalidValue") == 0,
          "create: an element without value is invalid");
}


static void
test_primary(void)
{
    json_t  *r;

    r = run("{'op':'add','path':'emails','value':[{'value':'n@x.org',"
            "'primary':true}]}");
    check(nprimary(r, "emails") == 1
          && is(json_array_get(at(r, "emails"), 2),
                "{'value':'n@x.org','primary':true}")
          && is(at(json_array_get(at(r, "emails"), 0), "primary"), "false"),
          "primary: a new primary demotes the old one");

    r = run("{'op':'replace','path':'emails[type eq \\'home\\'].primary',"
            "'value':'True'}");
    check(nprimary(r, "emails") == 1
          && is(at(json_array_get(at(r, "emails"), 1), "primary"), "true"),
          "primary: set by a[f].sub, 'True'");

    check(strcmp(fails("{'op':'add','path':'emails','value':[{'value':"
                       "'a@x','primary':true},{'value':'b@x','primary':true}]"
                       "}"), "invalidValue") == 0,
          "primary: two new primaries");
    r = run("{'op':'replace','path':'emails.primary','value':true}");
    check(nprimary(r, "emails") == 1
          && is(at(json_array_get(at(r, "emails"), 1), "primary"), "true"),
          "primary: all set, the one not primary before wins");

    r = run("{'op':'replace','path':'emails','value':[{'value':'a@x',"
            "'primary':true},{'value':'b@x'}]}");
    check(nprimary(r, "emails") == 1, "primary: replace keeps one");

    r = run("{'op':'replace','path':'emails[type eq \\'work\\']',"
            "'value':{'value':'w@x','type':'work','primary':true}}");
    check(nprimary(r, "emails") == 1, "primary: re-asserted on replace");

    r = run("{'op':'add','path':'phoneNumbers[type eq \\'mobile\\'].value',"
            "'value':'1'},{'op':'add','path':'phoneNumbers[type eq "
            "\\'mobile\\'].primary','value':true},{'op':'add','path':"
            "'phoneNumbers[type eq \\'work\\'].primary','value':true}");
    check(nprimary(r, "phoneNumbers") == 1
          && is(at(json_array_get(at(r, "phoneNumbers"), 0), "primary"),
                "true"), "primary: the last one set wins");
}


static void
test_extension(void)
{
    json_t  *r, *u;

    r = run("{'op':'replace','path':'" ENT_URN ":department',"
            "'value':'Sales'}");
    check(is(ext(r, "department"), "'Sales'"), "ext: URN:attr");

    r = run("{'op':'replace','path':'urn:ietf:params:scim:schemas:extension:"
            "ENTERPRISE:2.0:user:DEPARTMENT','value':'Sales'}");
    check(is(ext(r, "department"), "'Sales'"), "ext: URN in any case");

    r = run("{'op':'add','path':'" ENT_URN ":costCenter','value':'4130'}");
    check(is(ext(r, "costCenter"), "'4130'")
          && is(ext(r, "employeeNumber"), "'701984'"), "ext: add");

    r = run("{'op':'remove','path':'" ENT_URN ":department'}");
    check(r != NULL && ext(r, "department") == NULL
          && ext(r, "employeeNumber") != NULL, "ext: remove");

    r = run("{'op':'replace','path':'" ENT_URN ":manager.value',"
            "'value':'m2'}");
    check(is(ext(r, "manager"), "{'value':'m2','displayName':'John Smith'}"),
          "ext: URN:attr.sub");

    r = run("{'op':'replace','path':'" ENT_URN ":manager','value':'m3'}");
    check(is(ext(r, "manager"), "{'value':'m3','displayName':'John Smith'}"),
          "ext: a string manager is {value: string}, merged");

    r = run("{'op':'add','path':'" ENT_URN ":manager',"
            "'value':{'value':'m4','displayName':null}}");
    check(is(ext(r, "manager"), "{'value':'m4'}"), "ext: manager object");

    r = run("{'op':'remove','path':'" ENT_URN ":manager'}");
    check(r != NULL && ext(r, "manager") == NULL, "ext: remove manager");

    r = run("{'op':'replace','path':'" ENT_URN "',"
            "'value':{'division':'EMEA','manager':{'displayName':'J S'}}}");
    check(is(ext_all(r), "{'employeeNumber':'701984','department':"
             "'Tour Operations','division':'EMEA','manager':{'value':"
             "'26118915-6090-4610-87e4-49d8ca9f808d','displayName':'J S'}}"),
          "ext: the bare URN merges into the extension");

    r = run("{'op':'remove','path':'" ENT_URN "'}");
    check(r != NULL && ext_all(r) == NULL && !has_schema(r, ENT_URN)
          && has_schema(r, CORE_URN),
          "ext: remove the extension, and its URN from schemas");

    r = run("{'op':'remove','path':'" ENT_URN ":employeeNumber'},"
            "{'op':'remove','path':'" ENT_URN ":department'},"
            "{'op':'remove','path':'" ENT_URN ":manager.value'},"
            "{'op':'remove','path':'" ENT_URN ":manager.displayName'}");
    check(r != NULL && ext_all(r) == NULL && !has_schema(r, ENT_URN),
          "ext: an emptied extension is removed");

    u = run("{'op':'remove','path':'" ENT_URN "'}");
    r = run_on(u, "{'op':'add','path':'" ENT_URN ":department',"
               "'value':'R&D'}");
    check(is(ext_all(r), "{'department':'R&D'}")
          && has_schema(r, ENT_URN), "ext: adding one adds its URN");

    r = run_on(u, "{'op':'remove','path':'" ENT_URN ":department'}");
    check(r != NULL && ext_all(r) == NULL,
          "ext: remove from an absent extension");

    check(strcmp(fails("{'op':'add','path':'" ENT_URN ":title',"
                       "'value':'x'}"), "invalidPath") == 0,
          "ext: unknown attribute");
    check(strcmp(fails("{'op':'add','path':'" ENT_URN ":manager.foo',"
                       "'value':'x'}"), "invalidPath") == 0,
          "ext: unknown manager sub-attribute");
    check(strcmp(fails("{'op':'add','path':'" ENT_URN "','value':'x'}"),
                 "invalidValue") == 0, "ext: a string for the extension");
    check(strcmp(fails("{'op':'add','path':'" ENT_URN "',"
                       "'value':{'userName':'x'}}"), "invalidValue") == 0,
          "ext: a core attribute inside the extension");
    check(strcmp(fails("{'op':'add','path':'" ENT_URN ":department',"
                       "'value':5}"), "invalidValue") == 0,
          "ext: a number for department");
    check(strcmp(fails("{'op':'add','path':'" ENT_URN ":manager',"
                       "'value':{'value':{'x':1}}}"), "invalidValue") == 0,
          "ext: an object for manager.value");
    check(strcmp(fails("{'op':'add','path':'" ENT_URN ":manager',"
                       "'value':true}"), "invalidValue") == 0,
          "ext: a boolean for manager");
    check(strcmp(fails("{'op':'add','path':'" ENT_URN ":department[value eq "
                       "\\'x\\']','value':'x'}"), "invalidPath") == 0,
          "ext: filter on a single-valued attribute");
    check(strcmp(fails("{'op':'remove','path':'" ENT_URN
                       ":manager[value eq \\'x\\']'}"), "invalidPath") == 0,
          "ext: filter on manager");
}


static void
test_readonly(void)
{
    json_t  *r;

    check(strcmp(fails("{'op':'replace','path':'id','value':'x'}"),
                 "mutability") == 0, "read-only: replace id");
    check(strcmp(fails("{'op':'remove','path':'id'}"), "mutability") == 0,
          "read-only: remove id");

    r = run("{'op':'replace','path':'id',"
            "'value':'2819c223-7f76-453a-919d-413861904646'}");
    check(r != NULL, "read-only: replace id with itself");

    check(strcmp(fails("{'op':'replace','path':'meta.version','value':'x'}"),
                 "mutability") == 0, "read-only: meta.sub");
    check(strcmp(fails("{'op':'add','path':'meta','value':{}}"),
                 "mutability") == 0, "read-only: meta");
    check(strcmp(fails("{'op':'add','path':'groups','value':[{'value':"
                       "'g'}]}"), "mutability") == 0,
          "read-only: add groups");
    check(strcmp(fails("{'op':'remove','path':'groups[value eq \\'x\\']'}"),
                 "mutability") == 0, "read-only: remove groups[f]");
    check(strcmp(fails("{'op':'replace','path':'groups[value eq "
                       "\\'e9e30dba-f08f-4109-8486-d5c6a331660a\\']"
                       ".display','value':'x'}"), "mutability") == 0,
          "read-only: groups[f].sub");
    check(strcmp(fails("{'op':'replace','path':'schemas',"
                       "'value':['" CORE_URN "']}"), "mutability") == 0,
          "read-only: schemas");
    check(strcmp(fails("{'op':'replace','value':{'id':'other'}}"),
                 "mutability") == 0, "read-only: another id, no path");
    check(strcmp(fails("{'op':'replace','value':{'meta':{'x':1}}}"),
                 "mutability") == 0, "read-only: meta, no path");
}


static void
test_no_path(void)
{
    json_t  *r;

    r = run("{'op':'replace','value':{'displayName':'X','ACTIVE':'false',"
            "'name':{'givenName':'Y'}}}");
    check(is(at(r, "displayName"), "'X'") && is(at(r, "active"), "false")
          && is(at(r, "name"), "{'givenName':'Y','familyName':'Jensen',"
                "'formatted':'Ms. Barbara J Jensen'}"),
          "no path: members applied, name merged");

    check(strcmp(fails("{'op':'add','value':{'userName':'one',"
                       "'USERNAME':'two'}}"), "invalidValue") == 0,
          "no path: one attribute in two spellings: invalidValue");

    r = run("{'op':'add','value':{'emails':[{'value':'n@x.org',"
            "'type':'other'}]}}");
    check(json_array_size(at(r, "emails")) == 3, "no path: add appends");

    r = run("{'op':'replace','value':{'emails':[{'value':'n@x.org'}]}}");
    check(is(at(r, "emails"), "[{'value':'n@x.org'}]"),
          "no path: replace replaces an array");

    r = run("{'op':'replace','value':{'name.familyName':'Z',"
            "'" ENT_URN ":department':'D','emails[type eq \\'work\\'].value':"
            "'w@x.org'}}");
    check(is(at(r, "name.familyName"), "'Z'")
          && is(ext(r, "department"), "'D'")
          && is(at(json_array_get(at(r, "emails"), 0), "value"),
                "'w@x.org'"), "no path: member names read as paths");

    r = run("{'op':'add','value':{'" ENT_URN "':{'costCenter':'C'}}}");
    check(is(ext(r, "costCenter"), "'C'")
          && is(ext(r, "department"), "'Tour Operations'"),
          "no path: the extension URN merges");

    r = run("{'op':'replace','value':{'schemas':['x'],'displayName':'S'}}");
    check(is(at(r, "displayName"), "'S'") && has_schema(r, ENT_URN),
          "no path: schemas ignored");

    r = run("{'op':'replace','value':{'id':"
            "'2819c223-7f76-453a-919d-413861904646','displayName':'T'}}");
    check(is(at(r, "displayName"), "'T'"), "no path: the same id ignored");

    r = run("{'op':'replace','value':{'displayName':null}}");
    check(r != NULL && at(r, "displayName") == NULL,
          "no path: null unassigns");

    r = run("{'op':'replace','value':{}}");
    check(r != NULL, "no path: an empty object");

    check(strcmp(fails("{'op':'replace','value':'x'}"), "invalidValue") == 0,
          "no path: a string");
    check(strcmp(fails("{'op':'replace','value':[{'displayName':'x'}]}"),
                 "invalidValue") == 0, "no path: an array");
    check(strcmp(fails("{'op':'replace','value':{'favouriteColour':'x'}}"),
                 "invalidPath") == 0, "no path: unknown attribute");
    check(strcmp(fails("{'op':'replace','value':{'bad name':'x'}}"),
                 "invalidPath") == 0, "no path: not a name");
    check(strcmp(fails("{'op':'replace','value':{'userName':null}}"),
                 "invalidValue") == 0, "no path: null userName");
}


static void
test_entra(void)
{
    json_t  *r;

    r = run("{'op':'Replace','path':'active','value':'False'}");
    check(is(at(r, "active"), "false"), "entra: disable");

    r = run("{'op':'Add','path':'emails[type eq \\'work\\'].value',"
            "'value':'x@y'}");
    check(is(json_array_get(at(r, "emails"), 0),
             "{'value':'x@y','type':'work','primary':true}"),
          "entra: add work email, existing");

    r = run("{'op':'Replace','path':'userName','value':'babs@contoso.com'},"
            "{'op':'Replace','path':'displayName','value':'Babs J'},"
            "{'op':'Add','path':'name.givenName','value':'Barb'},"
            "{'op':'Add','path':'name.familyName','value':'Jensen-Smith'},"
            "{'op':'Add','path':'emails[type eq \\'work\\'].value',"
            "'value':'babs@contoso.com'},"
            "{'op':'Add','path':'phoneNumbers[type eq \\'mobile\\'].value',"
            "'value':'+1 555 0100'},"
            "{'op':'Add','path':'" ENT_URN ":employeeNumber',"
            "'value':'E-1'},"
            "{'op':'Add','path':'" ENT_URN ":manager','value':'m-1'},"
            "{'op':'Replace','path':'externalId','value':'babs'}");
    check(is(at(r, "userName"), "'babs@contoso.com'")
          && is(at(r, "name.givenName"), "'Barb'")
          && is(json_array_get(at(r, "phoneNumbers"), 1),
                "{'type':'mobile','value':'+1 555 0100'}")
          && is(ext(r, "manager"), "{'value':'m-1','displayName':"
                "'John Smith'}")
          && is(ext(r, "employeeNumber"), "'E-1'")
          && is(at(r, "externalId"), "'babs'"),
          "entra: a provisioning update");

    r = run("{'op':'Remove','path':'phoneNumbers[type eq \\'work\\'].value'}"
            ",{'op':'Remove','path':'" ENT_URN ":manager'}");
    check(r != NULL && at(r, "phoneNumbers") == NULL
          && ext(r, "manager") == NULL, "entra: clear phone and manager");

    r = run("{'op':'Add','path':'" ENT_URN ":department',"
            "'value':[{'value':'Sales'}]}");
    check(is(ext(r, "department"), "'Sales'"),
          "entra: [{value}] for a single-valued attribute");

    r = run("{'op':'Replace','value':{'" ENT_URN ":costCenter':'CC',"
            "'name.givenName':'G','active':'True'}}");
    check(is(ext(r, "costCenter"), "'CC'") && is(at(r, "name.givenName"),
          "'G'") && is(at(r, "active"), "true"),
          "entra: no path, paths as member names");

    r = run("{'op':'Add','path':'emails[type eq \\'work\\'].primary',"
            "'value':'True'}");
    check(nprimary(r, "emails") == 1, "entra: primary 'True'");
}


static void
test_okta(void)
{
    json_t  *r;

    r = run("{'op':'replace','value':{'active':false}}");
    check(is(at(r, "active"), "false"), "okta: deactivate");

    r = run("{'op':'replace','value':{'name':{'familyName':'Smith'}}}");
    check(is(at(r, "name"), "{'givenName':'Barbara','familyName':'Smith',"
             "'formatted':'Ms. Barbara J Jensen'}"),
          "okta: partial name kept");

    r = run("{'op':'replace','value':{"
            "'id':'2819c223-7f76-453a-919d-413861904646',"
            "'userName':'barbara@example.com',"
            "'name':{'givenName':'Barbara','familyName':'Jensen'},"
            "'emails':[{'primary':true,'value':'barbara@example.com',"
            "'type':'work'}],"
            "'displayName':'Barbara Jensen','active':true}}");
    check(is(at(r, "userName"), "'barbara@example.com'")
          && is(at(r, "emails"), "[{'primary':true,'value':"
                "'barbara@example.com','type':'work'}]")
          && is(at(r, "displayName"), "'Barbara Jensen'"),
          "okta: profile push with its own id");

    r = run("{'op':'replace','path':'active','value':true}");
    check(is(at(r, "active"), "true"), "okta: reactivate");
}


static void
test_atomic(void)
{
    check(strcmp(fails("{'op':'replace','path':'displayName','value':'a'},"
                       "{'op':'remove','path':'emails'},"
                       "{'op':'add','path':'favouriteColour','value':'x'}"),
                 "invalidPath") == 0, "atomic: third op invalidPath");
    check(strcmp(fails("{'op':'replace','path':'userName','value':'a'},"
                       "{'op':'remove','path':'" ENT_URN "'},"
                       "{'op':'replace','path':'id','value':'x'}"),
                 "mutability") == 0, "atomic: third op mutability");
    check(strcmp(fails("{'op':'add','path':'emails','value':'n@x'},"
                       "{'op':'remove','path':'name'},"
                       "{'op':'remove','path':'emails[type eq \\'q\\']'}"),
                 "noTarget") == 0, "atomic: third op noTarget");
    check(strcmp(fails("{'op':'replace','path':'active','value':false},"
                       "{'op':'replace','path':'name.givenName','value':'x'},"
                       "{'op':'replace','path':'active','value':'x'}"),
                 "invalidValue") == 0, "atomic: third op invalidValue");
    check(strcmp(fails("{'op':'replace','path':'active','value':false},"
                       "{'op':'replace','path':'name.givenName','value':'x'},"
                       "{'op':'move','path':'active'}"),
                 "invalidSyntax") == 0, "atomic: third op invalidSyntax");
    check(strcmp(fails("{'op':'remove','path':'userName'},"
                       "{'op':'replace','path':'displayName','value':'x'}"),
                 "invalidValue") == 0,
          "atomic: the final check fails the whole patch");
    check(strcmp(fails("{'op':'remove','path':'userName'},"
                       "{'op':'add','path':'userName','value':'back'}"),
                 "ok") == 0, "atomic: userName checked only at the end");
}


static void
test_hostile(void)
{
    int          rc;
    char        *b, *s;
    size_t       i, n;
    const char  *t;

    /* deep nesting: jansson's parser limit, or not a value of the schema */

    n = 100000;
    s = keep(malloc(2 * n + 1));
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    b = body(str("{'op':'add','path':'displayName','value':%s}", s));
    t = fails_raw(b, strlen(b), &rc);
    check(strcmp(t, "invalidSyntax") == 0, "hostile: 100000 deep");

    n = 1000;
    s = keep(malloc(2 * n + 1));
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    check(strcmp(fails(str("{'op':'add','path':'emails','value':%s}", s)),
                 "invalidValue") == 0, "hostile: 1000 deep value");
    check(strcmp(fails(str("{'op':'replace','path':'id','value':%s}", s)),
                 "mutability") == 0, "hostile: 1000 deep for id");

    /* too many values */

    s = keep(malloc(101 * 8 + 1));
    n = 0;

    for (i = 0; i < 101; i++) {
        n += sprintf(s + n, "%s'%zu@x'", i ? "," : "", i);
    }

    check(strcmp(fails(str("{'op':'add','path':'emails','value':[%s]}", s)),
                 "invalidValue") == 0, "hostile: 101 emails");
    check(strcmp(fails(str("{'op':'replace','path':'emails','value':[%s]}",
                           s)), "invalidValue") == 0,
          "hostile: replace with 101 emails");

    s[n - 8] = '\0';
    check(strcmp(fails(str("{'op':'add','path':'emails','value':[%s]}", s)),
                 "invalidValue") == 0,
          "hostile: 2 + 99 emails in one add");
    check(strcmp(fails(str("{'op':'replace','path':'emails','value':[%s]}",
                           s)), "ok") == 0, "hostile: 100 emails");

    /* a long path, many members */

    s = keep(malloc(5000));
    memset(s, 'a', 4999);
    s[4999] = '\0';
    check(strcmp(fails(str("{'op':'add','path':'%s','value':'x'}", s)),
                 "invalidPath") == 0, "hostile: a 4999-byte path");

    n = 20000;
    s = keep(malloc(n * 40 + 1));
    i = 0;

    for (rc = 0; (size_t) rc < n; rc++) {
        i += sprintf(s + i, "%s'emails[value eq \\'%d\\'].x':1",
                     rc ? "," : "", rc);
    }

    check(strcmp(fails(str("{'op':'add','value':{'displayName':'x',%s}}", s)),
                 "invalidPath") == 0, "hostile: 20000 members, bad");

    /* filters that cost too much: long strings, "co", many operations */

    s = keep(malloc(ENT_SCIM_PATCH_MAX_STRING + 1));
    memset(s, 'a', ENT_SCIM_PATCH_MAX_STRING);
    s[ENT_SCIM_PATCH_MAX_STRING] = '\0';

    b = keep(malloc(100 * (ENT_SCIM_PATCH_MAX_STRING + 32) + 20 * 3200));
    n = sprintf(b, "{'op':'replace','path':'emails','value':[");

    for (i = 0; i < 100; i++) {
        n += sprintf(b + n, "%s{'value':'%s'}", i ? "," : "", s);
        b[n - 3] = 'a' + i % 26;
    }

    n += sprintf(b + n, "]}");

    s[3000] = '\0';

    for (i = 0; i < 20; i++) {
        n += sprintf(b + n, ",{'op':'add','path':'emails[value co \\'%sb\\']"
                     ".display','value':'x'}", s);
    }

    check(strcmp(fails(b), "tooMany") == 0, "hostile: costly filters");

    /* but ordinary ones are fine */

    b = keep(malloc(100 * 128 + 1));
    n = 0;

    for (i = 0; i < 100; i++) {
        n += sprintf(b + n, "%s{'op':'replace','path':'emails[type eq "
                     "\\'work\\' and value co \\'@\\'].display','value':"
                     "'%zu'}", i ? "," : "", i);
    }

    check(strcmp(fails(b), "ok") == 0, "hostile: 100 ordinary filters");
}


/* a POST or PUT body's names, spelled as the schema has them */

static void
test_canon(void)
{
    json_t  *r;

    r = keep_json(json_loads(q("{'Schemas':['" CORE_URN "'],'UserName':'a',"
                               "'Name':{'GivenName':'A','familyname':'B'},"
                               "'EMAILS':[{'Value':'a@x','Primary':true}],"
                               "'" ENT_URN "':{'Department':'D'},"
                               "'custom':{'Value':1}}"),
                             0, NULL));
    check(ent_scim_patch_canon(r, &ent_scim_patch_user_schema) == 0
          && is(r, "{'schemas':['" CORE_URN "'],'userName':'a',"
                   "'name':{'givenName':'A','familyName':'B'},"
                   "'emails':[{'value':'a@x','primary':true}],"
                   "'" ENT_URN "':{'department':'D'},"
                   "'custom':{'Value':1}}"),
          "canon: names at every level spelled as the schema, "
          "unknown ones left");

    r = keep_json(json_loads(q("{'userName':'a','emails':[],'Emails':[]}"),
                             0, NULL));
    check(ent_scim_patch_canon(r, &ent_scim_patch_user_schema) == -1
          && is(r, "{'userName':'a','emails':[],'Emails':[]}"),
          "canon: one attribute in two spellings: -1, nothing renamed");

    r = keep_json(json_loads(q("{'UserName':'a',"
                               "'Name':{'givenName':'a','GIVENNAME':'b'}}"),
                             0, NULL));
    check(ent_scim_patch_canon(r, &ent_scim_patch_user_schema) == -1
          && is(r, "{'UserName':'a','Name':{'givenName':'a',"
                   "'GIVENNAME':'b'}}"),
          "canon: twice inside a complex attribute: -1, nothing renamed");

    r = keep_json(json_loads(q("{'userName':'a','emails':[{'value':'x'}]}"),
                             0, NULL));
    check(ent_scim_patch_canon(r, &ent_scim_patch_user_schema) == 0
          && is(r, "{'userName':'a','emails':[{'value':'x'}]}"),
          "canon: already spelled right: unchanged");
}


int
main(void)
{
    size_t  i;

    test_api();
    test_body();
    test_ops();
    test_simple();
    test_complex();
    test_multi();
    test_filter_create();
    test_primary();
    test_extension();
    test_readonly();
    test_no_path();
    test_entra();
    test_okta();
    test_atomic();
    test_hostile();
    test_canon();

    for (i = 0; i < njarena; i++) {
        json_decref(jarena[i]);
    }

    for (i = 0; i < narena; i++) {
        free(arena[i]);
    }

    return tap_done();
}
