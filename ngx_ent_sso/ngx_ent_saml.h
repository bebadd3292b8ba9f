/*
 * I/O-free SAML 2.0 for the SSO module, service provider side: checking a
 * Response received by the HTTP-POST binding (Web Browser SSO profile),
 * decrypting its EncryptedAssertion, building an AuthnRequest, building and
 * checking the Single Logout messages, the SP metadata document, and
 * reading an IdP's metadata.  No nginx headers: the unit tests and the
 * libFuzzer target link this file directly.
 *
 * The code, split by concern, sharing the private ngx_ent_saml_int.h (all
 * of it linked by the tests and the fuzz target):
 *   ngx_ent_saml.c           init and shutdown, the safe parse, the
 *                            shared helpers (elements, text, base64,
 *                            times, output buffers);
 *   ngx_ent_saml_response.c  the Response check and its result;
 *   ngx_ent_saml_sig.c       the pinned IdP certificates, signatures;
 *   ngx_ent_saml_enc.c       the SP's key, the EncryptedAssertion;
 *   ngx_ent_saml_logout.c    LogoutRequest and LogoutResponse;
 *   ngx_ent_saml_md.c        the AuthnRequest, the SP's and the IdP's
 *                            metadata.
 *
 * Rules, whatever the document says:
 *   - no DOCTYPE at all (hence no entities, no XXE, no billion laughs), no
 *     network, no xml:id, libxml2's default limits (no XML_PARSE_HUGE);
 *   - trust is the pinned IdP certificates only (several for a rotation:
 *     a signature that verifies with any one of them is good): KeyInfo is
 *     never read;
 *   - exactly one Assertion in the whole document, a direct child of the
 *     Response, or exactly one EncryptedAssertion there and no Assertion
 *     anywhere;
 *   - an EncryptedAssertion is refused (ENT_SAML_UNSUPPORTED) unless the
 *     SP's RSA private key is given.  Then the Response's signature, if
 *     any, is verified first (it covers the EncryptedAssertion); the
 *     EncryptedAssertion holds one xenc:EncryptedData and its key is an
 *     xenc:EncryptedKey inside the EncryptedData's ds:KeyInfo or next to
 *     the EncryptedData (each one is tried; RetrievalMethod, KeyName and
 *     any other key in the message are never used); key transport is
 *     RSA-OAEP only (xmlenc#rsa-oaep-mgf1p, xmlenc11#rsa-oaep; digest
 *     SHA-1/256/384/512, MGF1 with SHA-1/224/256/384/512), never
 *     rsa-1_5; data encryption is AES-128/256-GCM or AES-128/256-CBC
 *     inline in a CipherValue (no CipherReference).  Any failure from the
 *     ciphertext to a well-formed plaintext (OAEP, key size, padding, GCM
 *     tag, not well-formed XML) is the one ENT_SAML_DECRYPT "cannot
 *     decrypt the assertion"; a well-formed plaintext that is not exactly
 *     one saml:Assertion element is ENT_SAML_MALFORMED.  The decrypted
 *     Assertion replaces the EncryptedAssertion and every rule here then
 *     applies to it, its own signature included;
 *   - a signature is exclusive c14n, RSA-SHA256/384/512 or
 *     ECDSA-SHA256/384 (RSA-SHA1 and the SHA-1 digest only with
 *     allow_sha1), exactly one Reference whose URI is "#" and the ID of
 *     the element that carries the signature (enveloped), transforms
 *     enveloped-signature and exclusive c14n only, digest SHA-256/384/512;
 *   - only the signed element's ID is registered as an ID, and it must be
 *     unique among the document's ID attributes;
 *   - everything returned comes from the verified element's own subtree.
 *
 * Logout messages arrive by the HTTP-Redirect binding, whose signature is
 * over the query string: the caller verifies it, and a ds:Signature in the
 * XML is neither trusted nor required.  Metadata is read for the admin CLI
 * under the same parser rules, up to ENT_SAML_MAX_METADATA_LEN.
 *
 * Strings in the results are malloc()ed; the *_free() functions accept a
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
#define ENT_SAML_MAX_CERTS       16        /* pinned or in metadata */
#define ENT_SAML_MAX_SESSION_INDEXES  16   /* of a LogoutRequest */
#define ENT_SAML_MAX_METADATA_LEN     1048576


/* results */
#define ENT_SAML_OK              0
#define ENT_SAML_MALFORMED       1    /* not base64, not XML, not SAML */
#define ENT_SAML_STATUS          2    /* the IdP answered with an error */
#define ENT_SAML_SIGNATURE       3    /* unsigned, bad or refused signature */
#define ENT_SAML_INVALID         4    /* a protocol check failed (issuer,
                                         audience, times, recipient...) */
#define ENT_SAML_UNSUPPORTED     5    /* encrypted assertion without a
                                         key, encrypted NameID */
#define ENT_SAML_INTERNAL        6    /* allocation or library failure, a
                                         key or certificate that does not
                                         load */
#define ENT_SAML_DECRYPT         7    /* the EncryptedAssertion cannot be
                                         decrypted or uses an algorithm
                                         that is not allowed */


/*
 * Parsed keys, to be kept per process: the IdP's pinned certificates
 * (ent_saml_keys_load()) or the SP's private key (ent_saml_sp_key_load());
 * one kind cannot be used for the other.
 */
typedef struct ent_saml_keys_s  ent_saml_keys_t;


typedef struct {
    const char          *acs_url;        /* required: Destination and
                                            Recipient must equal it */
    const char          *sp_entity_id;   /* required: an Audience */
    const char          *idp_entity_id;  /* required: the Issuers */
    const char          *idp_cert_pem;   /* the pinned certificates, PEM,
                                            one or several concatenated;
                                            required without idp_keys */
    size_t               idp_cert_len;   /* 0: strlen(idp_cert_pem) */
    const ent_saml_keys_t  *idp_keys;    /* when set, used instead of
                                            idp_cert_pem */
    const char          *request_id;     /* the AuthnRequest's ID, or NULL
                                            when none is outstanding */
    time_t               now;
    long                 skew;           /* seconds, both directions */
    const char          *name_id_format; /* NULL: any; else the NameID's
                                            Format must equal it (absent
                                            is "unspecified") */
    const char          *sp_key_pem;     /* the SP's private key, PEM,
                                            unencrypted, loaded only when
                                            an EncryptedAssertion comes:
                                            NULL or an EC key refuses one
                                            (ENT_SAML_UNSUPPORTED) */
    size_t               sp_key_len;     /* 0: strlen(sp_key_pem) */
    const ent_saml_keys_t  *sp_keys;     /* when set, used instead of
                                            sp_key_pem */
    unsigned             allow_idp_initiated:1;
    unsigned             require_signed_assertion:1;
    unsigned             allow_sha1:1;   /* RSA-SHA1 and the SHA-1 digest */
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
    time_t               expires;           /* the Conditions' NotOnOrAfter,
                                               or the latest NotOnOrAfter of
                                               a bearer confirmation that
                                               holds or may hold later, if
                                               earlier: the replay cache's
                                               TTL ends here */
    time_t               issue_instant;     /* the Assertion's */
    time_t               authn_instant;
    time_t               session_not_on_or_after;   /* 0 when absent */
    size_t               nattrs;
    ent_saml_attr_t     *attrs;
    unsigned             response_signed:1;     /* and verified */
    unsigned             assertion_signed:1;    /* and verified */
    unsigned             assertion_encrypted:1;
} ent_saml_result_t;


/* an incoming LogoutRequest or LogoutResponse */

typedef struct {
    char                *id;
    char                *issuer;
    char                *name_id;           /* LogoutRequest */
    char                *name_id_format;    /* NULL when absent */
    size_t               nsession_indexes;
    char               **session_indexes;
    char                *in_response_to;    /* LogoutResponse */
    char                *status;            /* LogoutResponse: the top-level
                                               StatusCode Value, printable
                                               ASCII */
    time_t               issue_instant;
    time_t               not_on_or_after;   /* LogoutRequest; 0: absent */
    unsigned             success:1;         /* status is Success */
} ent_saml_logout_t;


/* an IdP's metadata, for the admin CLI */

typedef struct {
    char                *entity_id;
    char                *sso_url;          /* SingleSignOnService,
                                              HTTP-Redirect binding */
    char                *slo_url;          /* SingleLogoutService,
                                              HTTP-Redirect; NULL: none */
    char                *slo_response_url; /* its ResponseLocation, NULL
                                              when absent */
    size_t               ncerts;
    char               **certs;            /* full PEM, one each */
    time_t              *not_after;        /* each certificate's expiry */
    unsigned             want_authn_requests_signed:1;
} ent_saml_idp_metadata_t;


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

/*
 * The IdP's certificates: PEM, one or several concatenated (a rotation);
 * blocks that do not load are skipped, none loadable is an error (NULL,
 * err set).  At most ENT_SAML_MAX_CERTS.
 */
ent_saml_keys_t *ent_saml_keys_load(const char *pem, size_t len, char *err,
    size_t errlen);

/*
 * the SP's private key, PEM (PKCS#1 or PKCS#8), not encrypted: RSA, or EC
 * (which only signs: an EncryptedAssertion is then ENT_SAML_UNSUPPORTED)
 */
ent_saml_keys_t *ent_saml_sp_key_load(const char *pem, size_t len,
    char *err, size_t errlen);

void ent_saml_keys_free(ent_saml_keys_t *keys);

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
 * The same for a list read back split at "," (groups): values that are
 * empty or hold a "," or a control character are left out.
 */
char *ent_saml_attr_list(const ent_saml_result_t *res, const char *name);

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
 * The AuthnRequest's plain XML (not deflated, no XML declaration), for a
 * caller that signs it for the HTTP-Redirect binding.  The NameIDPolicy's
 * Format is name_id_format, emailAddress when NULL, none when "";
 * force_authn adds ForceAuthn="true".  Otherwise as above.  0 or -1.
 */
int ent_saml_authn_request_xml(const char *sp_entity_id, const char *acs_url,
    const char *idp_sso_url, const char *id, time_t issue_instant,
    const char *name_id_format, int force_authn, char **out, size_t *outlen);

/*
 * A LogoutRequest's plain XML: ID, IssueInstant, Destination, Issuer, the
 * NameID (with Format when name_id_format is not NULL) and a SessionIndex
 * when session_index is not NULL.  0 or -1.
 */
int ent_saml_logout_request_xml(const char *sp_entity_id,
    const char *destination, const char *id, time_t issue_instant,
    const char *name_id, const char *name_id_format,
    const char *session_index, char **out, size_t *outlen);

/*
 * A LogoutResponse's plain XML: status Success, or Responder when
 * !success; in_response_to NULL leaves InResponseTo out.  0 or -1.
 */
int ent_saml_logout_response_xml(const char *sp_entity_id,
    const char *destination, const char *id, const char *in_response_to,
    time_t issue_instant, int success, char **out, size_t *outlen);

/*
 * Checks an incoming LogoutRequest (decoded XML; the binding's signature
 * already verified by the caller): Version 2.0, a valid ID, the Issuer,
 * Destination absent or slo_url, IssueInstant not after now + skew,
 * NotOnOrAfter not passed, exactly one NameID (an EncryptedID is
 * ENT_SAML_UNSUPPORTED, a BaseID ENT_SAML_INVALID), at most
 * ENT_SAML_MAX_SESSION_INDEXES SessionIndex values.  ENT_SAML_OK with *out
 * filled, or another ENT_SAML_* with err set.  *out must be freed with
 * ent_saml_logout_free() whatever the result.
 */
int ent_saml_logout_request_check(const unsigned char *xml, size_t len,
    const char *idp_entity_id, const char *slo_url, time_t now, long skew,
    ent_saml_logout_t *out, char *err, size_t errlen);

/*
 * Checks an incoming LogoutResponse: Version 2.0, a valid ID, the Issuer,
 * Destination absent or slo_url, InResponseTo equal to request_id,
 * IssueInstant not after now + skew, a Status.  A status other than
 * Success is ENT_SAML_OK with out->success 0 and out->status set.
 */
int ent_saml_logout_response_check(const unsigned char *xml, size_t len,
    const char *idp_entity_id, const char *slo_url, const char *request_id,
    time_t now, long skew, ent_saml_logout_t *out, char *err, size_t errlen);

void ent_saml_logout_free(ent_saml_logout_t *lo);

/*
 * The SP's metadata: an EntityDescriptor with an SPSSODescriptor
 * (AuthnRequestsSigned="false", WantAssertionsSigned="true"), NameIDFormat
 * emailAddress and the HTTP-POST AssertionConsumerService.  0 or -1.
 */
int ent_saml_sp_metadata(const char *sp_entity_id, const char *acs_url,
    char **out, size_t *outlen);

/*
 * The same with options: a SingleLogoutService (HTTP-Redirect) when
 * slo_url is not NULL; when sp_cert_pem is not NULL, KeyDescriptors
 * use="signing" and (an RSA key only) use="encryption" with its first
 * certificate and, in the latter, the EncryptionMethods accepted;
 * NameIDFormat name_id_format (NULL: emailAddress); AuthnRequestsSigned.
 * 0 or -1.
 */
int ent_saml_sp_metadata_ex(const char *sp_entity_id, const char *acs_url,
    const char *slo_url, const char *sp_cert_pem, const char *name_id_format,
    int authn_requests_signed, char **out, size_t *outlen);

/*
 * Reads an IdP's metadata: an EntityDescriptor, or an EntitiesDescriptor
 * (nested ones included) in which the EntityDescriptor is entity_id, or
 * the only one with a SAML 2.0 IDPSSODescriptor when entity_id is NULL.
 * The signing certificates are those of the KeyDescriptors with
 * use="signing" or without use, each parsed as X.509, duplicates dropped.
 * The metadata's own signature and validUntil are not checked.
 * ENT_SAML_OK with *out filled, or another ENT_SAML_* with a precise err
 * for a human.  *out must be freed with ent_saml_idp_metadata_free().
 */
int ent_saml_idp_metadata_parse(const unsigned char *xml, size_t len,
    const char *entity_id, ent_saml_idp_metadata_t *out, char *err,
    size_t errlen);

void ent_saml_idp_metadata_free(ent_saml_idp_metadata_t *md);

/*
 * A strict xs:dateTime in UTC: YYYY-MM-DDThh:mm:ss[.fraction]Z, years
 * 1970-9999; the fraction is dropped.  0 or -1.
 */
int ent_saml_parse_time(const char *s, time_t *t);

/* the same form, without fraction; buf needs 21 bytes */
void ent_saml_format_time(time_t t, char *buf);


#endif /* _NGX_ENT_SAML_H_INCLUDED_ */
