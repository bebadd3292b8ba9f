/*
 * ngx_ent tenant: I/O-free helpers (see ngx_ent_host.h).
 */


#include <stdlib.h>
#include <string.h>

#include "ngx_ent_host.h"


static int ngx_ent_ipv4_parse(const unsigned char *s, size_t len,
    unsigned char *addr);
static int ngx_ent_ipv6_parse(const unsigned char *s, size_t len,
    unsigned char *addr);
static int ngx_ent_range_cmp(const void *a, const void *b);
static void ngx_ent_addr_inc(unsigned char *a, size_t alen, int *carry);


int
ngx_ent_host_normalize(const unsigned char *in, size_t len, unsigned char *out,
    size_t *out_len)
{
    size_t          i, n, label, colon, port;
    int             digits_only, last_digits, all_numeric, labels;
    unsigned char   c;

    if (len == 0) {
        return NGX_ENT_HOST_EMPTY;
    }

    if (len > NGX_ENT_HOST_MAX + 1 + 6) {
        return NGX_ENT_HOST_TOO_LONG;
    }

    if (in[0] == '[') {
        /* an IPv6 literal, perhaps with a port */
        for (i = 1; i < len && in[i] != ']'; i++) {
            c = in[i];

            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
                  || (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
            {
                return NGX_ENT_HOST_MALFORMED;
            }
        }

        return (i < len) ? NGX_ENT_HOST_IP : NGX_ENT_HOST_MALFORMED;
    }

    /* the port */

    colon = len;

    for (i = 0; i < len; i++) {
        if (in[i] == ':') {
            if (colon != len) {
                /* a bare IPv6 address, or garbage */
                return NGX_ENT_HOST_MALFORMED;
            }

            colon = i;
        }
    }

    if (colon != len) {
        port = 0;

        if (colon + 1 == len || len - colon - 1 > 5) {
            return NGX_ENT_HOST_MALFORMED;
        }

        for (i = colon + 1; i < len; i++) {
            if (in[i] < '0' || in[i] > '9') {
                return NGX_ENT_HOST_MALFORMED;
            }

            port = port * 10 + (in[i] - '0');
        }

        if (port > 65535) {
            return NGX_ENT_HOST_MALFORMED;
        }

        len = colon;
    }

    if (len && in[len - 1] == '.') {
        len--;
    }

    if (len == 0) {
        return NGX_ENT_HOST_EMPTY;
    }

    if (len > NGX_ENT_HOST_MAX) {
        return NGX_ENT_HOST_TOO_LONG;
    }

    /* labels */

    n = 0;
    label = 0;
    labels = 0;
    digits_only = 1;
    last_digits = 1;
    all_numeric = 1;

    for (i = 0; i <= len; i++) {

        if (i == len || in[i] == '.') {
            if (label == 0 || label > 63 || out[n - 1] == '-') {
                return NGX_ENT_HOST_MALFORMED;
            }

            if (!digits_only) {
                all_numeric = 0;
            }

            last_digits = digits_only;
            labels++;

            if (i < len) {
                out[n++] = '.';
            }

            label = 0;
            digits_only = 1;
            continue;
        }

        c = in[i];

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c >= '0' && c <= '9') {
            /* a digit */

        } else if ((c >= 'a' && c <= 'z') || (c == '-' && label > 0)) {
            digits_only = 0;

        } else {
            return NGX_ENT_HOST_MALFORMED;
        }

        out[n++] = c;
        label++;
    }

    if (last_digits) {
        /* the last label, a top-level domain, is never all digits */
        return (all_numeric && labels == 4) ? NGX_ENT_HOST_IP
                                            : NGX_ENT_HOST_MALFORMED;
    }

    *out_len = n;

    return NGX_ENT_HOST_OK;
}


int
ngx_ent_host_code(const unsigned char *host, size_t hlen,
    const unsigned char *base, size_t blen, const unsigned char **code,
    size_t *clen)
{
    size_t  i, n;

    if (blen == 0 || hlen < blen + 2) {
        return 0;
    }

    n = hlen - blen - 1;

    if (host[n] != '.' || memcmp(host + n + 1, base, blen) != 0) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (host[i] == '.') {
            return 0;
        }
    }

    *code = host;
    *clen = n;

    return 1;
}


static int
ngx_ent_ipv4_parse(const unsigned char *s, size_t len, unsigned char *addr)
{
    size_t    i, octets, digits;
    unsigned  v;

    octets = 0;
    digits = 0;
    v = 0;

    for (i = 0; i <= len; i++) {

        if (i == len || s[i] == '.') {
            if (digits == 0 || octets == 4 || v > 255) {
                return 0;
            }

            addr[octets++] = (unsigned char) v;
            v = 0;
            digits = 0;
            continue;
        }

        if (s[i] < '0' || s[i] > '9' || digits == 3) {
            return 0;
        }

        if (digits == 1 && v == 0) {
            /* no leading zeros: "010" is ambiguous */
            return 0;
        }

        v = v * 10 + (s[i] - '0');
        digits++;
    }

    return octets == 4;
}


static int
ngx_ent_ipv6_parse(const unsigned char *s, size_t len, unsigned char *addr)
{
    size_t          i, n, gap, digits;
    unsigned        v;
    unsigned char   c, tmp[16];

    memset(tmp, 0, sizeof(tmp));

    n = 0;
    gap = 16 + 1;    /* none */
    i = 0;

    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        i = 2;

        if (len == 2) {
            memset(addr, 0, 16);
            return 1;
        }

    } else if (len && s[0] == ':') {
        return 0;
    }

    while (i < len) {

        if (n == 16) {
            return 0;
        }

        /* an embedded IPv4 address at the end */

        if (n <= 12 && memchr(s + i, ':', len - i) == NULL
            && memchr(s + i, '.', len - i) != NULL)
        {
            if (!ngx_ent_ipv4_parse(s + i, len - i, tmp + n)) {
                return 0;
            }

            n += 4;
            i = len;
            break;
        }

        v = 0;
        digits = 0;

        while (i < len && s[i] != ':') {
            c = s[i];

            if (c >= '0' && c <= '9') {
                c -= '0';

            } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
                c = (c | 0x20) - 'a' + 10;

            } else {
                return 0;
            }

            if (++digits > 4) {
                return 0;
            }

            v = (v << 4) | c;
            i++;
        }

        if (digits == 0) {
            return 0;
        }

        tmp[n++] = (unsigned char) (v >> 8);
        tmp[n++] = (unsigned char) v;

        if (i == len) {
            break;
        }

        /* s[i] == ':' */
        i++;

        if (i < len && s[i] == ':') {
            if (gap != 16 + 1) {
                return 0;
            }

            gap = n;
            i++;

            if (i == len) {
                break;
            }

        } else if (i == len) {
            return 0;
        }
    }

    if (gap == 16 + 1) {
        if (n != 16) {
            return 0;
        }

        memcpy(addr, tmp, 16);
        return 1;
    }

    if (n == 16) {
        return 0;
    }

    memset(addr, 0, 16);
    memcpy(addr, tmp, gap);
    memcpy(addr + 16 - (n - gap), tmp + gap, n - gap);

    return 1;
}


int
ngx_ent_cidr_parse(const unsigned char *s, size_t len,
    ngx_ent_iprange_t *range)
{
    size_t          i, alen, slash;
    unsigned        bits, prefix;
    unsigned char   addr[16];

    slash = len;

    for (i = 0; i < len; i++) {
        if (s[i] == '/') {
            slash = i;
            break;
        }
    }

    memset(addr, 0, sizeof(addr));

    if (memchr(s, ':', slash) != NULL) {
        if (!ngx_ent_ipv6_parse(s, slash, addr)) {
            return 0;
        }

        alen = 16;

    } else {
        if (!ngx_ent_ipv4_parse(s, slash, addr)) {
            return 0;
        }

        alen = 4;
    }

    prefix = (unsigned) alen * 8;

    if (slash < len) {
        if (len - slash - 1 == 0 || len - slash - 1 > 3) {
            return 0;
        }

        bits = 0;

        for (i = slash + 1; i < len; i++) {
            if (s[i] < '0' || s[i] > '9') {
                return 0;
            }

            bits = bits * 10 + (s[i] - '0');
        }

        if (bits > prefix) {
            return 0;
        }

        prefix = bits;
    }

    memset(range, 0, sizeof(ngx_ent_iprange_t));

    for (i = 0; i < alen; i++) {
        if (prefix >= (i + 1) * 8) {
            range->start[i] = addr[i];
            range->end[i] = addr[i];

        } else if (prefix <= i * 8) {
            range->start[i] = 0;
            range->end[i] = 0xff;

        } else {
            bits = 0xffu << (8 - (prefix - i * 8));
            range->start[i] = addr[i] & (unsigned char) bits;
            range->end[i] = addr[i] | (unsigned char) ~bits;
        }
    }

    return (int) alen;
}


static int
ngx_ent_range_cmp(const void *a, const void *b)
{
    const ngx_ent_iprange_t  *ra = a, *rb = b;

    /* both families are zero-padded to 16 bytes */
    return memcmp(ra->start, rb->start, 16);
}


static void
ngx_ent_addr_inc(unsigned char *a, size_t alen, int *carry)
{
    size_t  i;

    for (i = alen; i > 0; i--) {
        if (++a[i - 1] != 0) {
            *carry = 0;
            return;
        }
    }

    *carry = 1;
}


size_t
ngx_ent_ipset_build(ngx_ent_iprange_t *ranges, size_t n, size_t alen)
{
    int            carry;
    size_t         i, m;
    unsigned char  next[16];

    if (n == 0) {
        return 0;
    }

    qsort(ranges, n, sizeof(ngx_ent_iprange_t), ngx_ent_range_cmp);

    m = 0;

    for (i = 1; i < n; i++) {

        /* merge when the next range starts within or right after */

        memcpy(next, ranges[m].end, alen);
        ngx_ent_addr_inc(next, alen, &carry);

        if (carry || memcmp(ranges[i].start, next, alen) <= 0) {
            if (memcmp(ranges[i].end, ranges[m].end, alen) > 0) {
                memcpy(ranges[m].end, ranges[i].end, alen);
            }

            continue;
        }

        ranges[++m] = ranges[i];
    }

    return m + 1;
}


int
ngx_ent_ipset_match(const ngx_ent_iprange_t *ranges, size_t n, size_t alen,
    const unsigned char *addr)
{
    size_t  lo, hi, mid;

    lo = 0;
    hi = n;

    /* the last range that starts at or before addr */

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (memcmp(ranges[mid].start, addr, alen) <= 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    if (lo == 0) {
        return 0;
    }

    return memcmp(addr, ranges[lo - 1].end, alen) <= 0;
}


size_t
ngx_ent_escape_html_size(const unsigned char *s, size_t len)
{
    (void) s;

    return len * 6;
}


unsigned char *
ngx_ent_escape_html(unsigned char *out, const unsigned char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        switch (s[i]) {
        case '<': memcpy(out, "&lt;", 4); out += 4; break;
        case '>': memcpy(out, "&gt;", 4); out += 4; break;
        case '&': memcpy(out, "&amp;", 5); out += 5; break;
        case '"': memcpy(out, "&quot;", 6); out += 6; break;
        case '\'': memcpy(out, "&#39;", 5); out += 5; break;
        default:
            *out++ = (s[i] < 0x20 || s[i] == 0x7f) ? ' ' : s[i];
        }
    }

    return out;
}


size_t
ngx_ent_escape_json_size(const unsigned char *s, size_t len)
{
    (void) s;

    return len * 6;
}


unsigned char *
ngx_ent_escape_json(unsigned char *out, const unsigned char *s, size_t len)
{
    size_t                i;
    static const char     hex[] = "0123456789abcdef";

    for (i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            *out++ = '\\';
            *out++ = s[i];

        } else if (s[i] < 0x20 || s[i] == 0x7f) {
            *out++ = '\\';
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = hex[s[i] >> 4];
            *out++ = hex[s[i] & 0xf];

        } else {
            *out++ = s[i];
        }
    }

    return out;
}
