/*
 * Unit tests of the SSO module's I/O-free helpers (ngx_ent_sso_util.c),
 * printing TAP.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_ent_sso_util.h"
#include "tap.h"


#define S(s)  (const unsigned char *) s, sizeof(s) - 1


static int cookie(const unsigned char *hdr, size_t len, const char *name,
    const char *want);
static int redirect(const char *p);
static int b64url_only(const unsigned char *s, size_t len);
static int contains(const unsigned char *s, size_t len, const char *sub);
static int escaped(const unsigned char *src, size_t len, const char *want);
static int claim(json_t *claims, const char *path, const char *want);
static int list(json_t *claims, const char *path, size_t outlen,
    const char *want);
static void test_cookie(void);
static void test_redirect(void);
static void test_aead(void);
static void test_token(void);
static void test_pkce(void);
static void test_ct_equal(void);
static void test_header_escape(void);
static void test_claims(void);
static void test_email(void);


/*
 * ent_cookie_find()'s result, or 99 when it found a value other than want
 * (or one that does not point into the header).
 */

static int
cookie(const unsigned char *hdr, size_t len, const char *name,
    const char *want)
{
    int                   rc;
    size_t                vlen;
    const unsigned char  *val;

    val = NULL;
    vlen = 0;

    rc = ent_cookie_find(hdr, len, (const unsigned char *) name, strlen(name),
                         &val, &vlen);
    if (rc != 0) {
        return rc;
    }

    if (val < hdr || val + vlen > hdr + len || vlen != strlen(want)
        || memcmp(val, want, vlen) != 0)
    {
        return 99;
    }

    return 0;
}


static int
redirect(const char *p)
{
    return ent_return_to_ok((const unsigned char *) p, strlen(p));
}


static int
b64url_only(const unsigned char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


static int
contains(const unsigned char *s, size_t len, const char *sub)
{
    size_t  i, n;

    n = strlen(sub);

    for (i = 0; i + n <= len; i++) {
        if (memcmp(s + i, sub, n) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
escaped(const unsigned char *src, size_t len, const char *want)
{
    size_t         n, m;
    unsigned char  buf[256];

    n = ent_header_escape_len(src, len);
    if (n > sizeof(buf)) {
        return 0;
    }

    m = ent_header_escape(buf, src, len);

    return n == m && m == strlen(want) && memcmp(buf, want, m) == 0;
}


/* 1 when ent_claim_string() gives want (or -1 when want is NULL) */

static int
claim(json_t *claims, const char *path, const char *want)
{
    int   rc;
    char  out[64];

    memset(out, 'X', sizeof(out));

    rc = ent_claim_string(claims, path, out, sizeof(out));

    if (want == NULL) {
        return rc == -1 && out[0] == '\0';
    }

    return rc == 0 && strcmp(out, want) == 0;
}


/* ent_claim_list()'s count, or 99 when the list is not want */

static int
list(json_t *claims, const char *path, size_t outlen, const char *want)
{
    int   rc;
    char  out[64];

    memset(out, 'X', sizeof(out));

    rc = ent_claim_list(claims, path, out, outlen);

    if (rc >= 0 && (strlen(out) >= outlen || strcmp(out, want) != 0)) {
        return 99;
    }

    return rc;
}


static void
test_cookie(void)
{
    size_t                n, vlen;
    unsigned char        *big;
    const unsigned char  *val;

    /* positions */

    check(cookie(S("sid=abc"), "sid", "abc") == 0, "cookie alone");
    check(cookie(S("sid=abc; a=1; b=2"), "sid", "abc") == 0, "cookie first");
    check(cookie(S("a=1; sid=abc; b=2"), "sid", "abc") == 0, "cookie middle");
    check(cookie(S("a=1; b=2; sid=abc"), "sid", "abc") == 0, "cookie last");

    /* values */

    check(cookie(S("a=1; sid=\"abc\"; b=2"), "sid", "abc") == 0,
          "quotes removed");
    check(cookie(S("sid=\"\""), "sid", "") == 0, "quoted empty value");
    check(cookie(S("a=1; sid=; b=2"), "sid", "") == 0, "empty value");
    check(cookie(S("sid="), "sid", "") == 0, "empty value, last");
    check(cookie(S("sid=YWJj=="), "sid", "YWJj==") == 0,
          "\"=\" inside a value");
    check(cookie(S("sid=a b"), "sid", "") == -1, "space inside the value");
    check(cookie(S("sid=a,b"), "sid", "") == -1, "comma inside the value");
    check(cookie(S("sid=a\\b"), "sid", "") == -1,
          "backslash inside the value");
    check(cookie(S("sid=\"abc"), "sid", "") == -1, "unbalanced quote");
    check(cookie(S("sid=\""), "sid", "") == -1, "a lone quote");
    check(cookie(S("sid=\"a\"b\""), "sid", "") == -1, "quote inside quotes");
    check(cookie(S("sid=caf\xc3\xa9"), "sid", "") == -1,
          "UTF-8 in the value asked for");
    check(cookie(S("a=caf\xc3\xa9; sid=abc"), "sid", "abc") == 0,
          "UTF-8 in another cookie");
    check(cookie(S("a=x y,z; sid=abc"), "sid", "abc") == 0,
          "another cookie's value is not judged");

    /* absent */

    check(cookie(S("a=1; b=2"), "sid", "") == 1, "absent");
    check(cookie(S(""), "sid", "") == 1, "empty header");
    check(cookie(S(" ; ;"), "sid", "") == 1, "only separators");
    check(cookie(S("sidx=1; xsid=2; si=3"), "sid", "") == 1,
          "names that contain the name");
    check(cookie(S("sidx=1; sid=2"), "sid", "2") == 0,
          "a longer name before");
    check(cookie(S("sid=2; sidx=1"), "sid", "2") == 0, "a longer name after");
    check(cookie(S("SID=1"), "sid", "") == 1, "names are case-sensitive");
    check(cookie(S("a=sid=1"), "sid", "") == 1, "the name inside a value");

    /* whitespace */

    check(cookie(S("a=1;sid=abc"), "sid", "abc") == 0, "no space after ;");
    check(cookie(S("a=1;    sid=abc"), "sid", "abc") == 0,
          "spaces after ;");
    check(cookie(S("a=1;\tsid=abc"), "sid", "abc") == 0, "tab after ;");
    check(cookie(S("  sid=abc  "), "sid", "abc") == 0,
          "spaces around the header");
    check(cookie(S("a=1 ; sid=abc ;b=2"), "sid", "abc") == 0,
          "spaces before ;");
    check(cookie(S("sid = abc"), "sid", "abc") == 0, "spaces around =");
    check(cookie(S("a=1; sid=abc;"), "sid", "abc") == 0, "trailing ;");
    check(cookie(S("a=1;; sid=abc"), "sid", "abc") == 0, "empty pair");

    /* control bytes */

    check(cookie(S("a=1; sid=abc\r\n"), "sid", "") == -1, "CR LF");
    check(cookie(S("a=1\0; sid=abc"), "sid", "") == -1, "NUL elsewhere");
    check(cookie(S("sid=a\x01" "b"), "sid", "") == -1, "control byte");
    check(cookie(S("a=\x7f; sid=abc"), "sid", "") == -1, "DEL elsewhere");
    check(cookie(S("a=1;\x0bsid=abc"), "sid", "") == -1,
          "vertical tab is no whitespace");

    /* duplicates and malformed pairs */

    check(cookie(S("sid=abc; sid=def"), "sid", "") == -1, "name twice");
    check(cookie(S("sid=abc; a=1; sid=abc"), "sid", "") == -1,
          "name twice, same value");
    check(cookie(S("sid=abc; sid =def"), "sid", "") == -1,
          "name twice, one with a space");
    check(cookie(S("a=1; a=2; sid=abc"), "sid", "abc") == 0,
          "another name twice is fine");
    /*
     * nameless cookies (RFC 6265bis: a value without "=", or an empty
     * name), which a sibling domain can set: skipped, not a reason to
     * ignore the header (that locked users out)
     */
    check(cookie(S("a; sid=abc"), "sid", "abc") == 0,
          "a nameless cookie before");
    check(cookie(S("sid=abc; foo"), "sid", "abc") == 0,
          "a nameless cookie after");
    check(cookie(S("sid"), "sid", "") == 1,
          "a nameless cookie whose value is the name: not it");
    check(cookie(S("=abc; sid=x"), "sid", "x") == 0, "an empty name");
    check(cookie(S("=sid; sid=x; =y"), "sid", "x") == 0,
          "empty names around");
    check(cookie(S("a; sid=abc; sid"), "sid", "abc") == 0,
          "a nameless \"sid\" is no second sid");

    /* length */

    big = malloc(ENT_COOKIE_MAX_LEN + 1);
    if (big == NULL) {
        check(0, "malloc");
        return;
    }

    memcpy(big, "sid=", 4);
    memset(big + 4, 'a', ENT_COOKIE_MAX_LEN + 1 - 4);

    n = ENT_COOKIE_MAX_LEN;
    check(ent_cookie_find(big, n, S("sid"), &val, &vlen) == 0
          && val == big + 4 && vlen == n - 4, "a header of the maximum length");
    n++;
    check(ent_cookie_find(big, n, S("sid"), &val, &vlen) == -1,
          "an over-long header");

    free(big);
}


static void
test_redirect(void)
{
    int   i;
    char  buf[ENT_RETURN_TO_MAX_LEN + 2];

    /* benign */

    check(redirect("/") == 1, "/ alone");
    check(redirect("/app") == 1, "a path");
    check(redirect("/app/page?x=1&y=2#top") == 1, "query and fragment");
    check(redirect("/a?b=//c") == 1, "// in the query");
    check(redirect("/a/b//c") == 1, "// after the first segment");
    check(redirect("/caf%C3%A9") == 1, "escaped UTF-8");
    check(redirect("/my%20docs") == 1, "an escaped space");
    check(redirect("/%2e%2e/x") == 1, "escaped dots");
    check(redirect("/a%2Bb%3d") == 1, "escapes of either case");
    check(redirect("/~user/a;b=c") == 1, "tilde and semicolon");
    check(redirect("/@evil.example") == 1, "@ in a path stays a path");
    check(redirect("/javascript:alert(1)") == 1,
          "a scheme-like first segment after / is a path");

    /* network-path references */

    check(redirect("//evil.example") == 0, "//host");
    check(redirect("//") == 0, "// alone");
    check(redirect("/\\evil.example") == 0, "/\\host");
    check(redirect("\\/evil.example") == 0, "\\/host");
    check(redirect("\\\\evil.example") == 0, "\\\\host");
    check(redirect("/a\\b") == 0, "backslash anywhere");

    /* schemes and relative references */

    check(redirect("https://evil.example/") == 0, "absolute URL");
    check(redirect("http:/evil.example") == 0, "scheme, one slash");
    check(redirect("javascript:alert(1)") == 0, "javascript:");
    check(redirect("data:text/html,x") == 0, "data:");
    check(redirect("evil.example") == 0, "relative path");
    check(redirect("./x") == 0, "dot-relative path");
    check(redirect("?x=1") == 0, "query only");
    check(redirect("#x") == 0, "fragment only");
    check(redirect("") == 0, "empty");

    /* escapes */

    check(redirect("/%2f/evil.example") == 0, "/%2f/");
    check(redirect("/%2F%2Fevil.example") == 0, "/%2F%2F");
    check(redirect("%2f%2fevil.example") == 0, "%2f%2f");
    check(redirect("/%5cevil.example") == 0, "/%5c");
    check(redirect("/%5Cevil.example") == 0, "/%5C");
    check(redirect("/a?next=%2F%2Fevil") == 0, "%2F anywhere");
    check(redirect("/%252f%252fevil") == 0, "double encoding");
    check(redirect("/%25") == 0, "an escaped %");
    check(redirect("/%00") == 0, "escaped NUL");
    check(redirect("/%0d%0aSet-Cookie:%20x=1") == 0, "escaped CR LF");
    check(redirect("/%09/evil") == 0, "escaped tab");
    check(redirect("/%1F") == 0, "escaped control byte");
    check(redirect("/%7f") == 0, "escaped DEL");
    check(redirect("/%") == 0, "% at the end");
    check(redirect("/%2") == 0, "% and one digit");
    check(redirect("/%zz") == 0, "% and no hex");
    check(redirect("/%%32f") == 0, "%%32f");
    check(redirect("/%g0") == 0, "% and a non-hex first digit");
    check(redirect("/%0g") == 0, "% and a non-hex second digit");
    check(redirect("/%41") == 1, "an escaped letter");
    check(ent_return_to_ok((const unsigned char *) "/%41", 3) == 0,
          "an escape cut short by the length");

    /* raw bytes */

    check(redirect("/\t/evil.example") == 0, "tab");
    check(redirect("/ /evil.example") == 0, "space");
    check(redirect(" /x") == 0, "leading space");
    check(redirect("/a b") == 0, "inner space");
    check(redirect("/a\r\nSet-Cookie: x=1") == 0, "CR LF injection");
    check(redirect("/a\nb") == 0, "LF");
    check(redirect("/\x0b/evil.example") == 0, "vertical tab");
    check(ent_return_to_ok(S("/\0evil")) == 0, "NUL");
    check(ent_return_to_ok(S("/x\0")) == 0, "trailing NUL");
    check(redirect("/caf\xc3\xa9") == 0, "raw UTF-8");
    check(redirect("/\x7f") == 0, "DEL");
    check(redirect("/\xff") == 0, "0xff");

    /* length */

    buf[0] = '/';

    for (i = 1; i < ENT_RETURN_TO_MAX_LEN + 1; i++) {
        buf[i] = 'a';
    }

    check(ent_return_to_ok((unsigned char *) buf, ENT_RETURN_TO_MAX_LEN) == 1,
          "the maximum length");
    check(ent_return_to_ok((unsigned char *) buf, ENT_RETURN_TO_MAX_LEN + 1)
          == 0, "one byte over");
}


static void
test_aead(void)
{
    int                  n, m, bad, i, bit;
    unsigned char        key[ENT_AEAD_KEY_LEN], key2[ENT_AEAD_KEY_LEN];
    unsigned char        sealed[4096 + ENT_AEAD_OVERHEAD + 1];
    unsigned char        other[64], out[4096], pt[4096];
    static const char    aad[] = "tenant:acme|sid:1";
    static const char    msg[] = "hello world";

#define AAD  (const unsigned char *) aad, sizeof(aad) - 1

    for (i = 0; i < ENT_AEAD_KEY_LEN; i++) {
        key[i] = (unsigned char) i;
        key2[i] = (unsigned char) i;
    }

    key2[31] ^= 1;

    n = ent_aead_seal(key, AAD, S(msg), sealed);
    check(n == (int) sizeof(msg) - 1 + ENT_AEAD_OVERHEAD, "sealed length");

    m = ent_aead_open(key, AAD, sealed, n, out);
    check(m == (int) sizeof(msg) - 1 && memcmp(out, msg, m) == 0,
          "round trip");

    check(!contains(sealed, n, msg),
          "no plaintext in the sealed bytes");

    check(ent_aead_seal(key, AAD, S(msg), other) == n
          && memcmp(other, sealed, n) != 0
          && memcmp(other, sealed, 12) != 0, "a fresh IV each time");

    /* every bit of every byte */

    for (bad = 0, i = 0; i < 12; i++) {
        for (bit = 0; bit < 8; bit++) {
            sealed[i] ^= 1 << bit;
            bad += ent_aead_open(key, AAD, sealed, n, out) != -1;
            sealed[i] ^= 1 << bit;
        }
    }

    check(bad == 0, "each bit of the IV flipped fails");

    for (bad = 0, i = 12; i < n - 16; i++) {
        for (bit = 0; bit < 8; bit++) {
            sealed[i] ^= 1 << bit;
            bad += ent_aead_open(key, AAD, sealed, n, out) != -1;
            sealed[i] ^= 1 << bit;
        }
    }

    check(bad == 0, "each bit of the ciphertext flipped fails");

    for (bad = 0, i = n - 16; i < n; i++) {
        for (bit = 0; bit < 8; bit++) {
            sealed[i] ^= 1 << bit;
            bad += ent_aead_open(key, AAD, sealed, n, out) != -1;
            sealed[i] ^= 1 << bit;
        }
    }

    check(bad == 0, "each bit of the tag flipped fails");

    check(ent_aead_open(key, AAD, sealed, n, out) == m,
          "untouched after the flips");

    memset(out, 0xaa, sizeof(out));
    sealed[20] ^= 1;
    check(ent_aead_open(key, AAD, sealed, n, out) == -1 && out[0] == 0
          && out[m - 1] == 0, "no unauthenticated plaintext left behind");
    sealed[20] ^= 1;

    check(ent_aead_open(key2, AAD, sealed, n, out) == -1, "wrong key");
    check(ent_aead_open(key, S("tenant:acme|sid:2"), sealed, n, out) == -1,
          "wrong aad");
    check(ent_aead_open(key, NULL, 0, sealed, n, out) == -1, "aad missing");
    check(ent_aead_open(key, AAD, sealed, n - 1, out) == -1, "truncated");
    check(ent_aead_open(key, AAD, sealed + 1, n - 1, out) == -1,
          "first byte missing");
    sealed[n] = 0;
    check(ent_aead_open(key, AAD, sealed, n + 1, out) == -1, "one byte added");
    check(ent_aead_open(key, AAD, sealed, ENT_AEAD_OVERHEAD - 1, out) == -1,
          "shorter than the overhead");
    check(ent_aead_open(key, AAD, sealed, 0, out) == -1, "nothing");

    /* zero-length plaintext */

    n = ent_aead_seal(key, AAD, NULL, 0, sealed);
    check(n == ENT_AEAD_OVERHEAD, "empty plaintext sealed");
    check(ent_aead_open(key, AAD, sealed, n, out) == 0,
          "empty plaintext opens");
    sealed[n - 1] ^= 0x80;
    check(ent_aead_open(key, AAD, sealed, n, out) == -1,
          "empty plaintext, tag flipped");

    /* no aad, a large plaintext */

    for (i = 0; i < (int) sizeof(pt); i++) {
        pt[i] = (unsigned char) (i * 7);
    }

    n = ent_aead_seal(key, NULL, 0, pt, sizeof(pt), sealed);
    m = ent_aead_open(key, NULL, 0, sealed, n, out);
    check(n == (int) sizeof(pt) + ENT_AEAD_OVERHEAD && m == (int) sizeof(pt)
          && memcmp(out, pt, sizeof(pt)) == 0, "4 KB round trip, no aad");
    check(ent_aead_open(key, AAD, sealed, n, out) == -1,
          "aad given where none was bound");
}


static void
test_token(void)
{
    unsigned char  a[200], b[200];

    memset(a, '#', sizeof(a));
    memset(b, '#', sizeof(b));

    check(ent_random_token(a, 32) == 0 && b64url_only(a, 43) && a[43] == '#',
          "32 bytes: 43 base64url characters, no padding, no NUL");
    check(ent_random_token(b, 32) == 0 && memcmp(a, b, 43) != 0,
          "two tokens differ");

    /* the last character of a tail carries 2 or 4 bits, zeros below */

    memset(a, '#', sizeof(a));
    check(ent_random_token(a, 1) == 0 && b64url_only(a, 2) && a[2] == '#'
          && strchr("AQgw", a[1]) != NULL, "1 byte: 2 characters");
    check(ent_random_token(a, 2) == 0 && b64url_only(a, 3) && a[3] == '#'
          && strchr("AEIMQUYcgkosw048", a[2]) != NULL,
          "2 bytes: 3 characters");
    check(ent_random_token(a, 3) == 0 && b64url_only(a, 4) && a[4] == '#',
          "3 bytes: 4 characters");
    memset(a, '#', sizeof(a));
    check(ent_random_token(a, 0) == 0 && a[0] == '#', "0 bytes: nothing");
    check(ent_random_token(a, 100) == 0 && b64url_only(a, 134)
          && a[134] == '#' && strchr("AQgw", a[133]) != NULL,
          "100 bytes: 134 characters, several rounds");
}


static void
test_pkce(void)
{
    unsigned char  out[ENT_PKCE_CHALLENGE_LEN + 1];

    /* RFC 7636, Appendix B */

    out[ENT_PKCE_CHALLENGE_LEN] = '#';
    ent_pkce_s256(S("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), out);
    check(memcmp(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", 43) == 0,
          "RFC 7636 Appendix B");
    check(out[ENT_PKCE_CHALLENGE_LEN] == '#', "43 bytes written");

    ent_pkce_s256(S("abc"), out);
    check(memcmp(out, "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0", 43) == 0,
          "SHA-256 of \"abc\"");

    ent_pkce_s256(S(""), out);
    check(memcmp(out, "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", 43) == 0,
          "SHA-256 of nothing");
}


static void
test_ct_equal(void)
{
    check(ent_ct_equal(S("secret-token"), S("secret-token")) == 1, "equal");
    check(ent_ct_equal(S("secret-token"), S("secret-tokem")) == 0,
          "last byte differs");
    check(ent_ct_equal(S("secret-token"), S("Secret-token")) == 0,
          "first byte differs");
    check(ent_ct_equal(S("secret"), S("secret-token")) == 0,
          "a prefix is not equal");
    check(ent_ct_equal(S("secret-token"), S("secret")) == 0,
          "longer than the other");
    check(ent_ct_equal(S(""), S("")) == 1, "both empty");
    check(ent_ct_equal(S(""), S("x")) == 0, "one empty");
    check(ent_ct_equal(NULL, 0, NULL, 0) == 1, "no pointers, no bytes");
    check(ent_ct_equal(S("a\0b"), S("a\0c")) == 0, "past a NUL");

    /* eight octets a step: a difference in every word and in the tail */
    {
        int            ok;
        size_t         len, i, bit;
        unsigned char  a[43], b[43];

        ok = 1;

        for (len = 0; len <= sizeof(a); len++) {
            for (i = 0; i < len; i++) {
                a[i] = (unsigned char) (i * 7 + 1);
                b[i] = a[i];
            }

            ok &= ent_ct_equal(a, len, b, len) == 1;

            for (i = 0; i < len; i++) {
                for (bit = 0; bit < 8; bit++) {
                    b[i] ^= (unsigned char) (1u << bit);
                    ok &= ent_ct_equal(a, len, b, len) == 0;
                    b[i] ^= (unsigned char) (1u << bit);
                }
            }
        }

        check(ok, "every length to 43: equal, and unequal for each flipped "
              "bit of each octet");
    }
}


static void
test_header_escape(void)
{
    int            ok;
    size_t         i, want;
    unsigned int   c, pos;
    unsigned char  buf[19];

    check(escaped(S("plain text-1.2_~"), "plain text-1.2_~"),
          "plain bytes unchanged");
    check(escaped(S("a\r\nX-Admin: 1"), "a%0D%0AX-Admin: 1"), "CR LF");
    check(escaped(S("a\0b"), "a%00b"), "NUL");
    check(escaped(S("Jos\xc3\xa9"), "Jos%C3%A9"), "UTF-8");
    check(escaped(S("100%"), "100%25"), "%");
    check(escaped(S("%25"), "%2525"), "an escape is escaped again");
    check(escaped(S("\t\x7f\xff"), "%09%7F%FF"), "tab, DEL, 0xff");
    check(escaped(S(""), ""), "empty");
    check(ent_header_escape_len(S("\r\n")) == 6, "length of an escape");

    /*
     * Each octet value at each place of a 19-octet plain value (two steps
     * of eight and a tail), and beside each other octet: the length agrees
     * with an octet-by-octet count
     */

    ok = 1;

    for (c = 0; c < 256; c++) {
        for (pos = 0; pos < 19; pos++) {
            memcpy(buf, "abcdefghijklmnopqrs", 19);
            buf[pos] = (unsigned char) c;
            buf[(pos + 7) % 19] = (unsigned char) (255 - c);

            want = 19;

            for (i = 0; i < 19; i++) {
                if (buf[i] < 0x20 || buf[i] == '%' || buf[i] >= 0x7f) {
                    want += 2;
                }
            }

            if (ent_header_escape_len(buf, 19) != want) {
                ok = 0;
            }
        }
    }

    check(ok, "every octet at every place, counted as one by one");
}


static void
test_claims(void)
{
    int            rc;
    char           out[16];
    json_t        *c, *arr;
    json_error_t   err;

    c = json_loads("{"
        "\"sub\": \"u-1\","
        "\"realm_access\": {\"roles\": [\"admin\", \"user\"]},"
        "\"a.b\": \"whole\","
        "\"a\": {\"b\": \"nested\", \"c\": \"only-nested\"},"
        "\"x\": {\"y.z\": \"dotted\", \"y\": {\"z\": \"deeper\"}},"
        "\"l1\": {\"l2\": {\"l3\": \"three\"}},"
        "\"https://acme.example/claims\": {\"groups\": [\"g1\", \"g2\"]},"
        "\"n\": 42, \"neg\": -7, \"big\": 9007199254740993,"
        "\"r\": 1.5, \"tenth\": 0.1, \"r17\": 0.30000000000000004, \"t\": true, \"f\": false,"
        "\"nul\": null, \"obj\": {\"k\": \"v\"}, \"empty\": [],"
        "\"arr\": [\"a\", 1, \"b,c\", true, \"d\", null, {\"x\": 1},"
        "          [\"y\"], \"e\\u0001f\", \"\", \"h\\u007fi\", \"g\"],"
        "\"single\": \"one\", \"comma\": \"a,b\", \"nulbyte\": \"a\\u0000b\","
        "\"ten\": \"0123456789\", \"utf\": \"Jos\\u00e9\","
        "\"sized\": [\"aaaa\", \"bbbbbbbbbb\", \"cc\", \"dd\"]"
        "}", JSON_ALLOW_NUL, &err);

    if (c == NULL) {
        check(0, "claims fixture parses");
        return;
    }

    /* ent_claim_string */

    check(claim(c, "sub", "u-1"), "a top-level claim");
    check(claim(c, "a.b", "whole"), "a dotted name is found whole first");
    check(claim(c, "a.c", "only-nested"), "then as a path");
    check(claim(c, "x.y.z", "dotted"), "whole first at each level");
    check(claim(c, "l1.l2.l3", "three"), "three levels");
    check(claim(c, "n", "42"), "an integer");
    check(claim(c, "neg", "-7"), "a negative integer");
    check(claim(c, "big", "9007199254740993"), "a 64-bit integer, exact");
    check(claim(c, "r", "1.5"), "a real");
    check(claim(c, "tenth", "0.1"), "a real, shortest form");
    check(claim(c, "r17", "0.30000000000000004"), "a real, 17 digits");
    check(claim(c, "t", "true"), "true");
    check(claim(c, "f", "false"), "false");
    check(claim(c, "utf", "Jos\xc3\xa9"), "UTF-8 string");
    check(claim(c, "nul", NULL), "null is another type");
    check(claim(c, "obj", NULL), "an object is another type");
    check(claim(c, "realm_access.roles", NULL), "an array is another type");
    check(claim(c, "nulbyte", NULL), "a string holding NUL");
    check(claim(c, "missing", NULL), "absent");
    check(claim(c, "a.missing", NULL), "absent below an object");
    check(claim(c, "sub.x", NULL), "a path through a string");
    check(claim(c, "", NULL), "empty path");
    check(claim(c, ".", NULL), "a lone dot");

    check(ent_claim_string(c, "ten", out, 11) == 0
          && strcmp(out, "0123456789") == 0, "exactly fits");
    out[0] = 'X';
    check(ent_claim_string(c, "ten", out, 10) == -1 && out[0] == '\0',
          "one byte short");
    check(ent_claim_string(c, "n", out, 2) == -1, "a number too long");
    check(ent_claim_string(c, "ten", out, 0) == -1, "no room at all");

    arr = json_array();
    check(ent_claim_string(arr, "sub", out, sizeof(out)) == -1,
          "claims that are not an object");
    check(ent_claim_list(arr, "sub", out, sizeof(out)) == -1,
          "claims that are not an object (list)");
    json_decref(arr);

    /* ent_claim_list */

    check(list(c, "realm_access.roles", 64, "admin,user") == 2, "roles");
    check(list(c, "https://acme.example/claims.groups", 64, "g1,g2") == 2,
          "a namespaced claim with dots, then a path");
    check(list(c, "arr", 64, "a,d,g") == 3,
          "non-strings, commas, control bytes and empty strings skipped");
    check(list(c, "single", 64, "one") == 1, "a string is one element");
    check(list(c, "comma", 64, "") == 0, "a string with a comma");
    check(list(c, "empty", 64, "") == 0, "an empty array");
    check(list(c, "sized", 8, "aaaa,cc") == 2,
          "elements that do not fit are dropped whole");
    check(list(c, "sized", 5, "aaaa") == 1, "the first exactly fits");
    check(list(c, "sized", 1, "") == 0, "room for the NUL only");
    check(list(c, "n", 64, "") == -1, "a number is another type");
    check(list(c, "obj", 64, "") == -1, "an object is another type");
    check(list(c, "nul", 64, "") == -1, "null is another type");
    check(list(c, "missing", 64, "") == -1, "absent");

    rc = ent_claim_list(c, "arr", out, 0);
    check(rc == -1, "no room at all (list)");

    json_decref(c);
}


static void
test_email(void)
{
    check(ent_email_domain_in("ann@example.com", "example.com") == 1,
          "the domain");
    check(ent_email_domain_in("ann@EXAMPLE.Com", "example.com") == 1,
          "case of the address");
    check(ent_email_domain_in("ann@example.com", "Example.COM") == 1,
          "case of the list");
    check(ent_email_domain_in("ann@example.com", "a.example,example.com")
          == 1, "the second in the list");
    check(ent_email_domain_in("ann@a.example", "a.example,example.com") == 1,
          "the first in the list");
    check(ent_email_domain_in("ann@example.com", "a.example,,example.com,")
          == 1, "empty entries skipped");
    check(ent_email_domain_in("ann@sub.example.com", "example.com") == 0,
          "a subdomain");
    check(ent_email_domain_in("ann@example.com.evil.example", "example.com")
          == 0, "the domain as a prefix");
    check(ent_email_domain_in("ann@evilexample.com", "example.com") == 0,
          "the domain as a suffix");
    check(ent_email_domain_in("ann@example.co", "example.com") == 0,
          "shorter");
    check(ent_email_domain_in("a@evil.example@example.com", "example.com")
          == 0, "two @");
    check(ent_email_domain_in("ann@b@example.com", "b@example.com") == 0,
          "two @, whatever the list");
    check(ent_email_domain_in("@example.com", "example.com") == 0,
          "empty local part");
    check(ent_email_domain_in("ann@", "example.com") == 0, "empty domain");
    check(ent_email_domain_in("ann", "example.com") == 0, "no @");
    check(ent_email_domain_in("", "example.com") == 0, "empty address");
    check(ent_email_domain_in("ann@example.com ", "example.com") == 0,
          "a trailing space");
    check(ent_email_domain_in("ann@example.com", "a.example, example.com")
          == 0, "the list has no spaces");
    check(ent_email_domain_in("ann@example.com", "") == 0, "empty list");
    check(ent_email_domain_in("ann@example.com", ",") == 0,
          "a list of nothing");
    check(ent_email_domain_in(NULL, "example.com") == 0, "no address");
    check(ent_email_domain_in("ann@example.com", NULL) == 0, "no list");
}


int
main(void)
{
    test_cookie();
    test_redirect();
    test_aead();
    test_token();
    test_pkce();
    test_ct_equal();
    test_header_escape();
    test_claims();
    test_email();

    return tap_done();
}
