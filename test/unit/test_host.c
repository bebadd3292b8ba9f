/*
 * Unit tests of the tenant module's I/O-free helpers, printing TAP.
 */

#include <stdio.h>
#include <string.h>

#include "ngx_ent_host.h"
#include "tap.h"




static int
norm(const char *in, const char *want)
{
    int            rc;
    size_t         n;
    unsigned char  out[300];

    rc = ngx_ent_host_normalize((const unsigned char *) in, strlen(in), out,
                                &n);
    if (rc != NGX_ENT_HOST_OK) {
        return rc;
    }

    return (n == strlen(want) && memcmp(out, want, n) == 0) ? 0 : 99;
}


static int
rc_of(const char *in)
{
    size_t         n;
    unsigned char  out[300];

    return ngx_ent_host_normalize((const unsigned char *) in, strlen(in), out,
                                  &n);
}


static void
test_normalize(void)
{
    char  buf[400];

    check(norm("acme.example.com", "acme.example.com") == 0, "plain host");
    check(norm("ACME.Example.COM", "acme.example.com") == 0, "lowercased");
    check(norm("acme.example.com:8443", "acme.example.com") == 0,
          "port removed");
    check(norm("acme.example.com.", "acme.example.com") == 0,
          "one trailing dot removed");
    check(norm("acme.example.com.:80", "acme.example.com") == 0,
          "trailing dot and port");
    check(norm("a-b.example.com", "a-b.example.com") == 0, "inner hyphen");
    check(norm("localhost", "localhost") == 0, "one label");

    check(rc_of("") == NGX_ENT_HOST_EMPTY, "empty");
    check(rc_of(".") == NGX_ENT_HOST_EMPTY, "a lone dot");
    check(rc_of(":80") == NGX_ENT_HOST_EMPTY, "only a port");
    check(rc_of("acme.example.com..") == NGX_ENT_HOST_MALFORMED,
          "two trailing dots");
    check(rc_of("acme..example.com") == NGX_ENT_HOST_MALFORMED,
          "empty label");
    check(rc_of("-acme.example.com") == NGX_ENT_HOST_MALFORMED,
          "leading hyphen");
    check(rc_of("acme-.example.com") == NGX_ENT_HOST_MALFORMED,
          "trailing hyphen");
    check(rc_of("ac_me.example.com") == NGX_ENT_HOST_MALFORMED, "underscore");
    check(rc_of("acme.example.com:") == NGX_ENT_HOST_MALFORMED, "empty port");
    check(rc_of("acme.example.com:99999") == NGX_ENT_HOST_MALFORMED,
          "port out of range");
    check(rc_of("acme.example.com:8a") == NGX_ENT_HOST_MALFORMED,
          "non-numeric port");
    check(rc_of("acme.example.com:1:2") == NGX_ENT_HOST_MALFORMED,
          "two colons");
    check(rc_of("ac%6de.example.com") == NGX_ENT_HOST_MALFORMED,
          "percent-encoding");
    check(rc_of("acme.example.com/x") == NGX_ENT_HOST_MALFORMED, "slash");
    check(rc_of("acme.exa\x00mple.com") == NGX_ENT_HOST_MALFORMED
          || rc_of("acme.exa\x00mple.com") == NGX_ENT_HOST_OK,
          "NUL (as C string: truncated)");
    check(rc_of("acme.example.com\r\nX-Injected: 1")
          == NGX_ENT_HOST_MALFORMED, "CR LF injection");
    check(rc_of("caf\xc3\xa9.example.com") == NGX_ENT_HOST_MALFORMED,
          "raw UTF-8 (IDNs arrive as punycode)");
    check(norm("xn--caf-dma.example.com", "xn--caf-dma.example.com") == 0,
          "punycode");

    check(rc_of("192.0.2.1") == NGX_ENT_HOST_IP, "IPv4 literal");
    check(rc_of("192.0.2.1:80") == NGX_ENT_HOST_IP, "IPv4 literal, port");
    check(rc_of("[2001:db8::1]") == NGX_ENT_HOST_IP, "IPv6 literal");
    check(rc_of("[2001:db8::1]:443") == NGX_ENT_HOST_IP, "IPv6, port");
    check(rc_of("2001:db8::1") == NGX_ENT_HOST_MALFORMED, "bare IPv6");
    check(rc_of("[2001:db8::1") == NGX_ENT_HOST_MALFORMED, "unclosed [");
    check(rc_of("example.123") == NGX_ENT_HOST_MALFORMED, "numeric TLD");

    memset(buf, 'a', 63);
    strcpy(buf + 63, ".example.com");
    check(rc_of(buf) == NGX_ENT_HOST_OK, "a 63-byte label");
    memset(buf, 'a', 64);
    strcpy(buf + 64, ".example.com");
    check(rc_of(buf) == NGX_ENT_HOST_MALFORMED, "a 64-byte label");

    memset(buf, 0, sizeof(buf));
    for (int i = 0; i < 63; i++) {
        strcat(buf, "a.");
    }
    strcat(buf, "example.com");   /* 126 + 11 = 137 */
    check(rc_of(buf) == NGX_ENT_HOST_OK, "137 bytes");
    memset(buf, 0, sizeof(buf));
    for (int i = 0; i < 125; i++) {
        strcat(buf, "a.");
    }
    strcat(buf, "com");           /* 253 */
    check(rc_of(buf) == NGX_ENT_HOST_OK, "253 bytes");
    strcat(buf, "x");
    check(rc_of(buf) == NGX_ENT_HOST_TOO_LONG, "254 bytes");
    memset(buf, 'a', 399);
    buf[399] = '\0';
    check(rc_of(buf) == NGX_ENT_HOST_TOO_LONG, "399 bytes");
}


static void
test_code(void)
{
    size_t                n;
    const unsigned char  *c;

#define H(s)  (const unsigned char *) s, sizeof(s) - 1

    check(ngx_ent_host_code(H("acme.example.com"), H("example.com"), &c, &n)
          == 1 && n == 4 && memcmp(c, "acme", 4) == 0, "code found");
    check(ngx_ent_host_code(H("example.com"), H("example.com"), &c, &n) == 0,
          "the base itself is no tenant");
    check(ngx_ent_host_code(H("a.b.example.com"), H("example.com"), &c, &n)
          == 0, "two labels are no code");
    check(ngx_ent_host_code(H("acmeexample.com"), H("example.com"), &c, &n)
          == 0, "a suffix that is not a label boundary");
    check(ngx_ent_host_code(H("acme.example.org"), H("example.com"), &c, &n)
          == 0, "another base");
    check(ngx_ent_host_code(H("acme.eu.example.com"), H("eu.example.com"), &c,
                            &n) == 1 && n == 4, "a longer base");
}


static void
test_ipset(void)
{
    size_t             n;
    unsigned char      a4[4], a6[16];
    ngx_ent_iprange_t  r[8];

#define C(s, i)  ngx_ent_cidr_parse((const unsigned char *) s,               \
                                    sizeof(s) - 1, &r[i])

    check(C("10.0.0.0/8", 0) == 4, "IPv4 CIDR");
    check(C("192.0.2.7", 1) == 4, "IPv4 address");
    check(C("10.1.0.0/16", 2) == 4, "inside the first");
    check(C("11.0.0.0/8", 3) == 4, "adjacent to the first");
    n = ngx_ent_ipset_build(r, 4, 4);
    check(n == 2, "merged into two ranges");

    memcpy(a4, "\x0a\x05\x06\x07", 4);
    check(ngx_ent_ipset_match(r, n, 4, a4), "10.5.6.7 allowed");
    memcpy(a4, "\x0b\xff\xff\xff", 4);
    check(ngx_ent_ipset_match(r, n, 4, a4), "11.255.255.255 allowed");
    memcpy(a4, "\x0c\x00\x00\x00", 4);
    check(!ngx_ent_ipset_match(r, n, 4, a4), "12.0.0.0 denied");
    memcpy(a4, "\xc0\x00\x02\x07", 4);
    check(ngx_ent_ipset_match(r, n, 4, a4), "192.0.2.7 allowed");
    memcpy(a4, "\xc0\x00\x02\x08", 4);
    check(!ngx_ent_ipset_match(r, n, 4, a4), "192.0.2.8 denied");
    memcpy(a4, "\x09\xff\xff\xff", 4);
    check(!ngx_ent_ipset_match(r, n, 4, a4), "9.255.255.255 denied");

    check(C("2001:db8::/32", 0) == 16, "IPv6 CIDR");
    check(C("::1", 1) == 16, "IPv6 loopback");
    n = ngx_ent_ipset_build(r, 2, 16);
    memset(a6, 0, 16);
    a6[15] = 1;
    check(ngx_ent_ipset_match(r, n, 16, a6), "::1 allowed");
    memcpy(a6, "\x20\x01\x0d\xb8\xff\xff", 6);
    check(ngx_ent_ipset_match(r, n, 16, a6), "2001:db8:ffff:: allowed");
    memcpy(a6, "\x20\x01\x0d\xb9", 4);
    check(!ngx_ent_ipset_match(r, n, 16, a6), "2001:db9:: denied");

    check(C("0.0.0.0/0", 0) == 4 && ngx_ent_ipset_build(r, 1, 4) == 1
          && ngx_ent_ipset_match(r, 1, 4, (const unsigned char *) "\1\2\3\4"),
          "0.0.0.0/0 is everything");
    check(C("::ffff:192.0.2.1", 0) == 16, "IPv4-mapped IPv6");
    check(C("1:2:3:4:5:6:7:8/128", 0) == 16, "full IPv6");

    check(C("10.0.0.0/33", 0) == 0, "prefix too long");
    check(C("10.0.0/8", 0) == 0, "three octets");
    check(C("10.0.0.256", 0) == 0, "octet out of range");
    check(C("010.0.0.1", 0) == 0, "leading zero");
    check(C("10.0.0.0/", 0) == 0, "empty prefix");
    check(C("2001:db8:::1", 0) == 0, "three colons");
    check(C("2001::db8::1", 0) == 0, "two gaps");
    check(C("1:2:3:4:5:6:7:8:9", 0) == 0, "nine groups");
    check(C("12345::", 0) == 0, "five hex digits");
    check(C("", 0) == 0, "empty");
    check(C("/8", 0) == 0, "only a prefix");
}


static void
test_escape(void)
{
    unsigned char  out[128], *e;

    e = ngx_ent_escape_html(out, (const unsigned char *) "<b>\"A&B's\"</b>",
                            14);
    check((size_t) (e - out) == strlen("&lt;b&gt;&quot;A&amp;B&#39;s&quot;"
                                       "&lt;/b&gt;")
          && memcmp(out, "&lt;b&gt;&quot;A&amp;B&#39;s&quot;&lt;/b&gt;",
                    e - out) == 0, "HTML escaping");

    e = ngx_ent_escape_json(out, (const unsigned char *) "a\"b\\c\n", 6);
    check((size_t) (e - out) == 13
          && memcmp(out, "a\\\"b\\\\c\\u000a", 13) == 0, "JSON escaping");
}


int
main(void)
{
    test_normalize();
    test_code();
    test_ipset();
    test_escape();

    return tap_done();
}
