/*
 * I/O-free SAML 2.0 HTTP-Redirect binding (SAML 2.0 Bindings, section 3.4,
 * DEFLATE encoding 3.4.4.1): the query string that carries a SAMLRequest
 * or a SAMLResponse, encoded and signed, or decoded and verified.  Nothing
 * here parses XML: the caller hands the inflated message to its own
 * checks.  No nginx headers: the unit tests and the libFuzzer target link
 * this file directly.
 *
 * Encoding, all in one query string:
 *
 *   SAMLRequest=V[&RelayState=R][&SigAlg=A&Signature=S]
 *
 * V is the message raw-DEFLATEd (RFC 1951, no zlib or gzip wrapper),
 * standard base64 with padding, percent-encoded; R and A are
 * percent-encoded; S is the base64 signature, percent-encoded.  The
 * percent-encoding keeps RFC 3986's unreserved characters (ALPHA, DIGIT,
 * "-", ".", "_", "~") and writes every other byte as %XX, upper case.  The
 * signature is over exactly the octets "SAMLRequest=V&RelayState=R&SigAlg=A"
 * (RelayState only when present) as they appear in the query.
 *
 * Rules of the decoder, whatever the query says:
 *   - the query is at most ENT_SAML_REDIRECT_MAX_QUERY bytes; parameters
 *     are separated by "&" (never ";"), a name is matched exactly and
 *     before any decoding ("SAMLRequest", "SAMLResponse", "RelayState",
 *     "SigAlg", "Signature"); other parameters are ignored; exactly one of
 *     SAMLRequest and SAMLResponse, at most one of each other; none of the
 *     five may be empty;
 *   - a value is decoded as application/x-www-form-urlencoded: "%" and two
 *     hex digits (either case) is that byte, "+" is a space, any other byte
 *     is itself, a "%" not followed by two hex digits is an error.  So a
 *     base64 "+" must arrive as "%2B": a bare "+" becomes a space, which
 *     the base64 decoder skips, and the message then fails to decode or to
 *     verify;
 *   - base64 is strict: the standard alphabet, padding to a multiple of
 *     four, "=" only at the end, unused bits zero; CR, LF, TAB and space
 *     anywhere are skipped (some IdPs wrap lines);
 *   - the message is raw DEFLATE only: a zlib- or gzip-wrapped stream is
 *     refused (with its own error text).  The stream must end (its final
 *     block), with nothing after it.  Inflating stops as soon as the output
 *     exceeds ENT_SAML_REDIRECT_MAX_XML, or ENT_SAML_REDIRECT_RATIO_FLOOR
 *     plus ENT_SAML_REDIRECT_MAX_RATIO times the compressed length when
 *     that is smaller (a deflate bomb costs at most that much output and
 *     time); the result may not contain a NUL byte;
 *   - RelayState, decoded, is 1 to ENT_SAML_REDIRECT_MAX_RELAY bytes
 *     without control characters (0x00-0x1f, 0x7f); longer than the
 *     specification's 80 bytes is allowed, since IdPs send them;
 *   - when certificates are given and a Signature is present, it is
 *     verified before anything is inflated: SigAlg (percent-decoded) must
 *     be one of rsa-sha256, rsa-sha384, rsa-sha512, ecdsa-sha256,
 *     ecdsa-sha384 (xmldsig-more), or rsa-sha1 (xmldsig) when allow_sha1;
 *     the signed octets are rebuilt from the values exactly as received
 *     (never re-encoded: IdPs differ in percent-encoding case), in the
 *     order SAMLRequest|SAMLResponse, RelayState, SigAlg, whatever their
 *     order in the query; only a key of the algorithm's type is tried (an
 *     RSA certificate never verifies an ECDSA SigAlg); any one certificate
 *     of the list verifying is enough;
 *   - Signature without SigAlg or SigAlg without Signature is a signature
 *     error, and so is a missing Signature when one is required.
 *
 * ECDSA signatures: XML Signature (RFC 4051 3.3, XMLDSig 1.1 6.4.3)
 * defines the value as r and s, each big-endian and padded to the size of
 * the curve's order, concatenated; Shibboleth and OpenSAML sign the
 * Redirect binding that way.  The encoder emits that form.  The decoder
 * accepts it, and also the DER SEQUENCE of two INTEGERs that OpenSSL
 * itself produces (e.g. "openssl dgst -sha256 -sign"), which some SAML
 * stacks send.
 *
 * Keys: RSA of 2048 to 8192 bits, or EC on P-256 or P-384.  An RSA key
 * signs with rsa-sha256, a P-256 key with ecdsa-sha256, a P-384 key with
 * ecdsa-sha384.  A certificate is a pinned key: its validity dates, issuer
 * and extensions are not looked at.
 *
 * Memory is malloc()ed; ent_saml_redirect_free() accepts a zeroed or
 * partially filled structure.  Error texts in err are fixed: nothing of
 * the input is ever echoed.  OpenSSL's error queue is left empty.
 */

#ifndef _NGX_ENT_SAML_REDIRECT_H_INCLUDED_
#define _NGX_ENT_SAML_REDIRECT_H_INCLUDED_


#include <stddef.h>

#include "ngx_ent_saml.h"


#define ENT_SAML_REDIRECT_MAX_XML      65536  /* an inflated message */
#define ENT_SAML_REDIRECT_MAX_QUERY    16384  /* a whole query string; nginx
                                                 refuses longer request
                                                 lines by default anyway */
#define ENT_SAML_REDIRECT_MAX_RELAY    1024   /* a decoded RelayState */
#define ENT_SAML_REDIRECT_MAX_RATIO    100    /* inflated : deflated ... */
#define ENT_SAML_REDIRECT_RATIO_FLOOR  4096   /* ... plus this many bytes */
#define ENT_SAML_REDIRECT_MAX_CERTS    16     /* in one rkey */
#define ENT_SAML_REDIRECT_MAX_PEM      1048576

#define ENT_SAML_ALG_RSA_SHA1                                                 \
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
#define ENT_SAML_ALG_RSA_SHA256                                               \
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define ENT_SAML_ALG_RSA_SHA384                                               \
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
#define ENT_SAML_ALG_RSA_SHA512                                               \
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
#define ENT_SAML_ALG_ECDSA_SHA256                                             \
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
#define ENT_SAML_ALG_ECDSA_SHA384                                             \
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"


/*
 * A parsed key set, made once (e.g. per process at configuration time)
 * and used for any number of messages: either one private key (it signs,
 * and can also verify) or one to ENT_SAML_REDIRECT_MAX_CERTS public keys
 * taken from certificates (they verify).
 */
typedef struct ent_saml_rkey_s  ent_saml_rkey_t;


typedef struct {
    char                *xml;          /* NUL-terminated, no NUL inside */
    size_t               xml_len;
    char                *relay_state;  /* NUL-terminated; NULL when
                                          absent */
    unsigned             is_request:1; /* SAMLRequest, not SAMLResponse */
    unsigned             is_signed:1;  /* a Signature was present and
                                          verified */
} ent_saml_redirect_t;


/*
 * A private key, PEM ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY";
 * other PEM blocks before it are skipped; an encrypted key is refused, no
 * passphrase is ever asked for).  len 0 means strlen(pem).  NULL with err
 * set on failure.
 */
ent_saml_rkey_t *ent_saml_rkey_load_private(const char *pem, size_t len,
    char *err, size_t errlen);

/*
 * One or more concatenated "CERTIFICATE" PEMs (certificate rotation: the
 * old and the new one); text between them is skipped.  Every certificate
 * must carry a usable key (see above); there must be at least one.  len 0
 * means strlen(pem).  NULL with err set on failure.
 */
ent_saml_rkey_t *ent_saml_rkey_load_certs(const char *pem, size_t len,
    char *err, size_t errlen);

/* accepts NULL */
void ent_saml_rkey_free(ent_saml_rkey_t *rkey);

/*
 * A query string for the HTTP-Redirect binding.  param is "SAMLRequest" or
 * "SAMLResponse"; xml is 1 to ENT_SAML_REDIRECT_MAX_XML bytes without a
 * NUL byte (and must not compress better than the decoder's ratio guard
 * allows); relay_state is NULL (none) or a string the decoder would
 * accept; key is NULL (unsigned) or a private key set.  *out is malloc()ed
 * and NUL-terminated, at most ENT_SAML_REDIRECT_MAX_QUERY bytes.
 *
 * Returns ENT_SAML_OK; ENT_SAML_MALFORMED for an argument out of those
 * bounds or a result too long; ENT_SAML_SIGNATURE when key holds no
 * private key; ENT_SAML_INTERNAL on allocation or library failure.  *out
 * is NULL on failure.
 */
int ent_saml_redirect_encode_rkey(const char *param, const char *xml,
    size_t xml_len, const char *relay_state, const ent_saml_rkey_t *key,
    char **out, size_t *outlen);

/*
 * The same with a PEM private key (key_len 0: strlen(key_pem)), parsed for
 * this call only; key_pem NULL: unsigned.  A key that does not load is
 * ENT_SAML_SIGNATURE.
 */
int ent_saml_redirect_encode(const char *param, const char *xml,
    size_t xml_len, const char *relay_state, const char *key_pem,
    size_t key_len, char **out, size_t *outlen);

/*
 * Decodes the raw query string (as received: r->args in nginx, still
 * percent-encoded).  With idp_certs, a Signature present is always
 * checked, and a bad one fails the message even when require_signature is
 * 0; without a Signature and with require_signature 0 the message passes
 * with is_signed 0, which the caller must then look at.  idp_certs NULL:
 * SigAlg and Signature are neither checked nor decoded, is_signed stays 0,
 * and require_signature fails every message.  allow_sha1 admits rsa-sha1.
 *
 * Returns ENT_SAML_OK with *out filled, or ENT_SAML_MALFORMED (the query,
 * its encodings, sizes, the DEFLATE stream, RelayState),
 * ENT_SAML_SIGNATURE (SigAlg or Signature missing, alone, malformed or
 * not allowed, no certificate of the key type, does not verify) or
 * ENT_SAML_INTERNAL (allocation or library failure), with err set and *out
 * zeroed.  *out may be freed whatever the result.
 */
int ent_saml_redirect_decode(const char *query, size_t len,
    const ent_saml_rkey_t *idp_certs, int require_signature, int allow_sha1,
    ent_saml_redirect_t *out, char *err, size_t errlen);

void ent_saml_redirect_free(ent_saml_redirect_t *msg);


#endif /* _NGX_ENT_SAML_REDIRECT_H_INCLUDED_ */
