/*
 * ngx_ent tenant: I/O-free helpers (unit-tested, fuzzed).
 *
 * Host normalization: lowercase, port and one trailing dot removed, then
 * checked as a DNS name (labels of 1..63 letters, digits and inner
 * hyphens, 253 bytes at most).  IP literals are refused: a tenant is never
 * addressed by IP.
 *
 * IP sets: CIDRs turned into sorted, merged address ranges, searched by
 * binary search (no scan per request), IPv4 and IPv6 apart.
 */

#ifndef _NGX_ENT_HOST_H_INCLUDED_
#define _NGX_ENT_HOST_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_ENT_HOST_OK          0
#define NGX_ENT_HOST_EMPTY       1
#define NGX_ENT_HOST_TOO_LONG    2
#define NGX_ENT_HOST_MALFORMED   3
#define NGX_ENT_HOST_IP          4

#define NGX_ENT_HOST_MAX         253


/* out must hold len bytes; *out_len is set on NGX_ENT_HOST_OK */
int ngx_ent_host_normalize(const unsigned char *in, size_t len,
    unsigned char *out, size_t *out_len);

/*
 * host = "<code>.<base>" with a single-label code: 1 and the code, else 0
 */
int ngx_ent_host_code(const unsigned char *host, size_t hlen,
    const unsigned char *base, size_t blen,
    const unsigned char **code, size_t *clen);


/* an IP range, addresses in network byte order */
typedef struct {
    unsigned char   start[16];
    unsigned char   end[16];
} ngx_ent_iprange_t;

/*
 * one CIDR ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7") to a range:
 * 4 or 16 (the family's address length), or 0 when malformed
 */
int ngx_ent_cidr_parse(const unsigned char *s, size_t len,
    ngx_ent_iprange_t *range);

/* sorts and merges in place; returns the new count */
size_t ngx_ent_ipset_build(ngx_ent_iprange_t *ranges, size_t n,
    size_t alen);

/* 1 when addr (alen bytes) is in one of the n sorted, merged ranges */
int ngx_ent_ipset_match(const ngx_ent_iprange_t *ranges, size_t n,
    size_t alen, const unsigned char *addr);


/* escaping: size first (worst case), then write; returns the end */
size_t ngx_ent_escape_html_size(const unsigned char *s, size_t len);
unsigned char *ngx_ent_escape_html(unsigned char *out,
    const unsigned char *s, size_t len);
size_t ngx_ent_escape_json_size(const unsigned char *s, size_t len);
unsigned char *ngx_ent_escape_json(unsigned char *out,
    const unsigned char *s, size_t len);


#endif /* _NGX_ENT_HOST_H_INCLUDED_ */
