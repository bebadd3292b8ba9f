/*
 * I/O-free helpers of the SSO module: the cookie parser, the post-login
 * redirect validator, session sealing (AEAD), PKCE, safe header values and
 * claim mapping.  No nginx headers: unit tests and fuzz targets link this
 * file directly.  Every function bounds what it reads by the length given
 * (inputs are not NUL-terminated).
 */

#ifndef _NGX_ENT_SSO_UTIL_H_INCLUDED_
#define _NGX_ENT_SSO_UTIL_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>


#define ENT_COOKIE_MAX_LEN     8192   /* one Cookie header value */
#define ENT_RETURN_TO_MAX_LEN  2048


/*
 * The value of the cookie "name" in one Cookie header value (RFC 6265
 * "cookie-string": pairs separated by ";" and optional spaces).  Values may
 * be DQUOTE-wrapped (the quotes are removed).  Returns 0 (found; *val
 * points into hdr), 1 (absent), -1 (malformed: control bytes, a pair
 * without "=", an over-long header, the name present twice; a session
 * cookie sent twice is an attack or a bug, and never guessed at).
 */
int ent_cookie_find(const unsigned char *hdr, size_t len,
    const unsigned char *name, size_t nlen,
    const unsigned char **val, size_t *vlen);

/*
 * 1 when p is a safe post-login target on the same host: a path that
 * starts with exactly one "/", followed by something other than "/" or
 * "\", with no "\" anywhere, no scheme, no bytes < 0x21 or >= 0x7f (so no
 * CR/LF/NUL/space), no "%" escape that decodes to "/", "\", a control byte
 * or "%" (so "/%2f%2fevil", "/%5cevil" and double encodings fail), and at
 * most ENT_RETURN_TO_MAX_LEN bytes.  0 otherwise.
 */
int ent_return_to_ok(const unsigned char *p, size_t len);

/*
 * AES-256-GCM.  out receives a 12-byte random IV, the ciphertext and the
 * 16-byte tag: ENT_AEAD_OVERHEAD + len bytes.  aad binds the ciphertext to
 * its context (tenant id, session id).  seal returns the length written or
 * -1; open returns the plaintext length or -1 (tampered, wrong key, wrong
 * aad, too short).
 */
#define ENT_AEAD_KEY_LEN       32
#define ENT_AEAD_OVERHEAD      28
int ent_aead_seal(const unsigned char *key, const unsigned char *aad,
    size_t aadlen, const unsigned char *pt, size_t len, unsigned char *out);
int ent_aead_open(const unsigned char *key, const unsigned char *aad,
    size_t aadlen, const unsigned char *in, size_t len, unsigned char *out);

/* n random bytes (OpenSSL's CSPRNG) as base64url: 0 or -1 */
int ent_random_token(unsigned char *dst, size_t nbytes);

/* RFC 7636 S256: base64url(SHA-256(verifier)), 43 bytes written */
#define ENT_PKCE_CHALLENGE_LEN 43
void ent_pkce_s256(const unsigned char *verifier, size_t len,
    unsigned char *out);

/* constant-time equality of two byte strings (lengths may differ) */
int ent_ct_equal(const unsigned char *a, size_t alen, const unsigned char *b,
    size_t blen);

/*
 * A header value safe to send upstream: bytes < 0x20, 0x7f, "%" and bytes
 * >= 0x80 become %XX (so UTF-8 names survive, percent-encoded, and nothing
 * can split a header).  dst must hold ent_header_escape_len(src) bytes.
 */
size_t ent_header_escape_len(const unsigned char *src, size_t len);
size_t ent_header_escape(unsigned char *dst, const unsigned char *src,
    size_t len);

/*
 * Claim mapping.  path is a claim name or a dotted path into nested
 * objects ("realm_access.roles"); a claim whose own name contains a dot is
 * found first as a whole.  ent_claim_string: a string (or a number or
 * boolean, printed) into out, NUL-terminated; 0, or -1 when absent, of
 * another type, or longer than outlen - 1.  ent_claim_list: a string or an
 * array of strings, joined with ","; an element containing "," or a
 * control byte is skipped; at most outlen - 1 bytes (elements that do not
 * fit are dropped whole); returns the number of elements written, -1 when
 * the claim is absent or of another type.
 */
int ent_claim_string(json_t *claims, const char *path, char *out,
    size_t outlen);
int ent_claim_list(json_t *claims, const char *path, char *out,
    size_t outlen);

/*
 * 1 when s can be an item of such a list (read back split at ","): not
 * empty, no ",", no control byte; SAML's groups are filtered the same way
 */
int ent_sso_list_ok(const char *s, size_t len);

/*
 * 1 when email is "local@domain" with domain (case-insensitive) equal to
 * one of the comma-separated domains in list; 0 otherwise (no "@", two
 * "@", empty parts, a subdomain of a listed domain).
 */
int ent_email_domain_in(const char *email, const char *list);


#endif /* _NGX_ENT_SSO_UTIL_H_INCLUDED_ */
