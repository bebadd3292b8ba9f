/*
 * I/O-free SAML 2.0 for the SSO module, service provider side: checking a
 * Response received by the HTTP-POST binding (Web Browser SSO profile),
 * building an AuthnRequest for the HTTP-Redirect binding, and the SP
 * metadata document.  No nginx headers: the unit tests and the libFuzzer
 * target link this file directly.
 *
 * Rules, whatever the document says:
 *   - no DOCTYPE at all (hence no entities, no XXE, no billion laughs), no
 *     network, no xml:id, libxml2's default limits (no XML_PARSE_HUGE);
 *   - trust is the pinned IdP certificate only: KeyInfo is never read;
 *   - exactly one Assertion in the whole document, a direct child of the
 *     Response; an EncryptedAssertion is refused;
 *   - a signature is exclusive c14n, RSA-SHA256/384/512 or
 *     ECDSA-SHA256/384, exactly one Reference whose URI is "#" and the ID
 *     of the element that carries the signature (enveloped), transforms
 *     enveloped-signature and exclusive c14n only, digest SHA-256/384/512;
 *   - only the signed element's ID is registered as an ID, and it must be
 *     unique among the document's ID attributes;
 *   - everything returned comes from the verified element's own subtree.
 *
 * Strings in the result are malloc()ed; ent_saml_result_free() accepts a
 * zeroed or partially filled result.  The library is not thread-safe (nor
 * need it be: nginx workers are single-threaded).
 */

#ifndef _NGX_ENT_SAML_H_INCLUDED_
#define _NGX_ENT_SAML_H_INCLUDED_


#include <stddef.h>
#include <time.h>


#define ENT_SAML_MAX_LEN         262144    /* a decoded Response */
#define ENT_SAML_MAX_B64_LEN     (ENT_SAML_MAX_LEN / 3 * 4 + 65536)
#define ENT_SAML_MAX_ATTRS       64
#define ENT_SAML_MAX_VALUES      256       /* values of one attribute */
#define ENT_SAML_MAX_NAME_LEN    256       /* an attribute's Name */
#define ENT_SAML_MAX_VALUE_LEN   4096      /* a value, a NameID, an ID... */


/* results */
#define ENT_SAML_OK              0
#define ENT_SAML_MALFORMED       1    /* not base64, not XML, not SAML */
#define ENT_SAML_STATUS          2    /* the IdP answered with an error */
#define ENT_SAML_SIGNATURE       3    /* unsigned, bad or refused signature */
#define ENT_SAML_INVALID         4    /* a protocol check failed (issuer,
                                         audience, times, recipient...) */
#define ENT_SAML_UNSUPPORTED     5    /* encrypted assertion or NameID */
#define ENT_SAML_INTERNAL        6    /* allocation or library failure */


typedef struct {
    const char          *acs_url;        /* required: Destination and
                                            Recipient must equal it */
    const char          *sp_entity_id;   /* required: an Audience */
    const char          *idp_entity_id;  /* required: the Issuers */
    const char          *idp_cert_pem;   /* required: the pinned
                                            certificate, PEM */
    size_t               idp_cert_len;   /* 0: strlen(idp_cert_pem) */
    const char          *request_id;     /* the AuthnRequest's ID, or NULL
                                            when none is outstanding */
    time_t               now;
    long                 skew;           /* seconds, both directions */
    unsigned             allow_idp_initiated:1;
    unsigned             require_signed_assertion:1;
} ent_saml_expect_t;


typedef struct {
    char                *name;
    size_t               nvalues;
    char               **values;
} ent_saml_attr_t;


typedef struct {
    char                *name_id;
    char                *name_id_format;    /* NULL when absent */
    char                *session_index;     /* NULL when absent */
    char                *assertion_id;      /* for the replay cache */
    char                *response_id;
    time_t               expires;           /* the earliest NotOnOrAfter of
                                               the Conditions and of the
                                               bearer confirmation: the
                                               replay cache's TTL ends here */
    time_t               issue_instant;     /* the Assertion's */
    time_t               authn_instant;
    time_t               session_not_on_or_after;   /* 0 when absent */
    size_t               nattrs;
    ent_saml_attr_t     *attrs;
    unsigned             response_signed:1;     /* and verified */
    unsigned             assertion_signed:1;    /* and verified */
} ent_saml_result_t;


/*
 * Once per process, before anything else (libxml2, xmlsec and its OpenSSL
 * backend; libxml2's and xmlsec's error printing is silenced); 0 or -1.
 * Calling it again is harmless.  ent_saml_shutdown() undoes it.
 */
int ent_saml_init(void);
void ent_saml_shutdown(void);

/*
 * Checks a SAMLResponse form value (standard base64 after URL decoding;
 * CR and LF are skipped).  Returns ENT_SAML_OK with *out filled, or another
 * ENT_SAML_* with err set (a fixed text; only a non-Success status code,
 * reduced to printable ASCII, is taken from the document).  *out must be
 * freed whatever the result.
 */
int ent_saml_response_check(const unsigned char *b64, size_t len,
    const ent_saml_expect_t *expect, ent_saml_result_t *out, char *err,
    size_t errlen);

/* the same on the decoded XML: for the tests and the fuzzer */
int ent_saml_response_check_xml(const unsigned char *xml, size_t len,
    const ent_saml_expect_t *expect, ent_saml_result_t *out, char *err,
    size_t errlen);

void ent_saml_result_free(ent_saml_result_t *res);

/* the first attribute with that Name, or NULL */
const ent_saml_attr_t *ent_saml_attr(const ent_saml_result_t *res,
    const char *name);

/*
 * The values of the first attribute with that Name joined with ",", a
 * malloc()ed string ("" for an attribute without values), or NULL when
 * there is no such attribute or on allocation failure.
 */
char *ent_saml_attr_join(const ent_saml_result_t *res, const char *name);

/*
 * A SAMLRequest query value for the HTTP-Redirect binding: a minimal
 * AuthnRequest (ID, IssueInstant, Destination, AssertionConsumerServiceURL,
 * ProtocolBinding HTTP-POST, Issuer, NameIDPolicy AllowCreate), raw
 * DEFLATE, base64, percent-encoded.  It is not signed: the binding's
 * SigAlg/Signature query parameters are optional and not produced (the
 * caller appends RelayState).  id must be an xs:ID (a letter or "_", then
 * letters, digits, "_", "-", "."), e.g. "_" and random hex.  *out is
 * malloc()ed and NUL-terminated.  0 or -1.
 */
int ent_saml_authn_request(const char *sp_entity_id, const char *acs_url,
    const char *idp_sso_url, const char *id, time_t issue_instant,
    char **out, size_t *outlen);

/*
 * The SP's metadata: an EntityDescriptor with an SPSSODescriptor
 * (AuthnRequestsSigned="false", WantAssertionsSigned="true"), NameIDFormat
 * emailAddress and the HTTP-POST AssertionConsumerService.  0 or -1.
 */
int ent_saml_sp_metadata(const char *sp_entity_id, const char *acs_url,
    char **out, size_t *outlen);

/*
 * A strict xs:dateTime in UTC: YYYY-MM-DDThh:mm:ss[.fraction]Z, years
 * 1970-9999; the fraction is dropped.  0 or -1.
 */
int ent_saml_parse_time(const char *s, time_t *t);

/* the same form, without fraction; buf needs 21 bytes */
void ent_saml_format_time(time_t t, char *buf);


#endif /* _NGX_ENT_SAML_H_INCLUDED_ */
