/*
 * ngx_http_ent_sso_module: what its files share.
 *
 *   ngx_http_ent_sso_module.c  directives, variables, the access handler,
 *                              identity to the upstream, answers
 *   ngx_ent_sso_fetch.c        outbound HTTP through nginx (subrequests to
 *                              the fetch location), discovery and JWKS
 *                              documents cached in shared memory and parsed
 *                              once per worker
 *   ngx_ent_sso_oidc.c         OpenID Connect: login redirect, callback,
 *                              bearer tokens, back-channel logout
 *   ngx_ent_sso_session.c      sessions in Redis, /_ent/session, logout
 *   ngx_ent_jwt.c, ngx_ent_sso_util.c
 *                              I/O-free JOSE and helpers (unit-tested)
 */

#ifndef _NGX_ENT_SSO_H_INCLUDED_
#define _NGX_ENT_SSO_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ent_core.h"
#include "ngx_ent_jwt.h"
#include "ngx_ent_sso_util.h"

#include <openssl/pem.h>
#include <openssl/rand.h>


#define NGX_HTTP_ENT_SSO_OFF        0
#define NGX_HTTP_ENT_SSO_REQUIRED   1
#define NGX_HTTP_ENT_SSO_OPTIONAL   2

/* the endpoints, under any location where ent_sso is on */
#define NGX_HTTP_ENT_SSO_EP_NONE        0
#define NGX_HTTP_ENT_SSO_EP_CALLBACK    1
#define NGX_HTTP_ENT_SSO_EP_SESSION     2
#define NGX_HTTP_ENT_SSO_EP_LOGOUT      3
#define NGX_HTTP_ENT_SSO_EP_BACKCHANNEL 4
#define NGX_HTTP_ENT_SSO_EP_LOGIN       5
#define NGX_HTTP_ENT_SSO_EP_SAML_ACS    6
#define NGX_HTTP_ENT_SSO_EP_SAML_META   7
#define NGX_HTTP_ENT_SSO_EP_SAML_SLO    8
#define NGX_HTTP_ENT_SSO_EP_BREAKGLASS  9

/* the issuer of a break-glass session; its subject is the grant's id */
#define NGX_HTTP_ENT_SSO_BREAKGLASS_ISS "urn:ent:breakglass"

#define NGX_HTTP_ENT_SSO_SID_LEN    16     /* random bytes of a session id */
#define NGX_HTTP_ENT_SSO_SID_B64    22
#define NGX_HTTP_ENT_SSO_COOKIE_B64 64     /* sid + key, base64url */
#define NGX_HTTP_ENT_SSO_BLOB_MAX   16384  /* a sealed session */

/* ctx kinds: a subrequest's context is not a request's */
#define NGX_HTTP_ENT_SSO_CTX_REQUEST  0x65735251
#define NGX_HTTP_ENT_SSO_CTX_FETCH    0x65734654

#define NGX_HTTP_ENT_SSO_FETCH_NONE   0
#define NGX_HTTP_ENT_SSO_FETCH_DISC   1
#define NGX_HTTP_ENT_SSO_FETCH_JWKS   2
#define NGX_HTTP_ENT_SSO_FETCH_TOKEN  3


typedef struct {
    ngx_ent_cache_t             *cache;       /* IdP records, by tenant id */
    ngx_ent_cache_t             *docs;        /* discovery, JWKS */
    ngx_ent_pg_stmt_t           *idp_stmt;
    ngx_ent_pg_stmt_t           *login_stmt;
    ngx_ent_cache_t             *authz_cache;
    ngx_ent_pg_stmt_t           *authz_stmt;
    ngx_ent_pg_stmt_t           *bg_stmt;
    ngx_str_t                    authz_zone;

    ngx_str_t                    zone;
    ngx_str_t                    docs_zone;
    ngx_str_t                    secret_file;
    u_char                       secret[ENT_AEAD_KEY_LEN];
    ngx_flag_t                   has_secret;

    ngx_str_t                    assertion_key_file;
    ngx_str_t                    assertion_kid;
    EVP_PKEY                    *assertion_key;
    unsigned                     assertion_alg;

    ngx_str_t                    fetch_uri;
    ngx_str_t                    prefix;      /* "/_ent/" */
    ngx_str_t                    cookie;      /* session cookie name */
    ngx_str_t                    state_cookie;

    time_t                       idle;
    time_t                       absolute;
    time_t                       state_ttl;
    time_t                       skew;
    time_t                       docs_ttl;
    ngx_msec_t                   jwks_throttle;
    time_t                       clock_offset;  /* tests: an injected clock */
    ngx_msec_t                   session_cache;

    ngx_uint_t                   algs;
    ngx_flag_t                   events;
    ngx_uint_t                   used;        /* ent_sso on somewhere */
    ngx_int_t                    tenant_id_index;
    ngx_int_t                    tenant_code_index;
} ngx_http_ent_sso_main_conf_t;


typedef struct {
    ngx_uint_t                   mode;
    ngx_flag_t                   bearer;
    ngx_array_t                 *bearer_scopes;  /* of ngx_str_t */
    ngx_flag_t                   assertion;
    ngx_array_t                 *enforce_paths;  /* of ngx_str_t */
    ngx_str_t                    h_user_id;
    ngx_str_t                    h_email;
    ngx_str_t                    h_name;
    ngx_str_t                    h_groups;
    ngx_str_t                    h_roles;
    ngx_str_t                    h_session;
    ngx_str_t                    h_assertion;
    ngx_str_t                    h_permissions;
    ngx_str_t                    h_breakglass;
    ngx_array_t                 *authz;          /* of rules (authz.c) */
    ngx_flag_t                   authz_on;
} ngx_http_ent_sso_loc_conf_t;


/* a tenant's IdP record, strings into the request pool */
typedef struct {
    ngx_str_t                    protocol;
    ngx_str_t                    issuer;
    ngx_str_t                    client_id;
    ngx_str_t                    client_secret;   /* sealed */
    ngx_str_t                    token_auth;
    ngx_str_t                    scopes;
    ngx_str_t                    claim_email;
    ngx_str_t                    claim_name;
    ngx_str_t                    claim_groups;
    ngx_str_t                    claim_roles;
    ngx_str_t                    domains;
    ngx_str_t                    api_audience;
    ngx_str_t                    api_scopes;
    ngx_str_t                    saml_sso_url;
    ngx_str_t                    saml_cert;       /* one or more PEMs */
    ngx_str_t                    saml_slo_url;
    ngx_str_t                    saml_sp_entity_id;
    ngx_str_t                    saml_sp_key;     /* sealed */
    ngx_str_t                    saml_sp_cert;
    ngx_str_t                    saml_name_id_format;
    ngx_int_t                    saml_skew;       /* -1: the directive's */
    ngx_str_t                    claim_attrs;     /* JSON: name -> claim */
    unsigned                     enforce:1;
    unsigned                     saml:1;
    unsigned                     saml_unsolicited:1;
    unsigned                     saml_allow_sha1:1;
    unsigned                     trust_email:1;   /* without email_verified */
} ngx_http_ent_sso_idp_t;


/* the discovery document, parsed once per worker */
typedef struct {
    ngx_str_t                    issuer;
    ngx_str_t                    authorization;
    ngx_str_t                    token;
    ngx_str_t                    jwks_uri;
    ngx_str_t                    end_session;
    unsigned                     iss_param:1;
} ngx_http_ent_sso_discovery_t;


/*
 * the strings of an identity, in the order of a sealed session's cells
 * (sessions made before the attrs cell have 11)
 */
#define NGX_HTTP_ENT_SSO_FIELDS     12
#define NGX_HTTP_ENT_SSO_ATTRS_MAX  4096   /* "name=value\n"... */

typedef struct {
    ngx_str_t                    user_id;
    ngx_str_t                    email;
    ngx_str_t                    name;
    ngx_str_t                    groups;
    ngx_str_t                    roles;
    ngx_str_t                    iss;
    ngx_str_t                    sub;
    ngx_str_t                    op_sid;
    ngx_str_t                    id_token;
    ngx_str_t                    attrs;        /* "name=value\n"... */
    time_t                       created;
    time_t                       expires;      /* absolute end */
} ngx_http_ent_sso_identity_t;


typedef struct ngx_http_ent_sso_ctx_s  ngx_http_ent_sso_ctx_t;

struct ngx_http_ent_sso_ctx_s {
    ngx_uint_t                   kind;
    ngx_http_request_t          *request;

    ngx_uint_t                   endpoint;
    ngx_str_t                    tenant_id;
    ngx_str_t                    tenant_code;

    ngx_http_ent_sso_idp_t       idp;
    ngx_http_ent_sso_discovery_t *disc;
    ent_jwks_t                  *jwks;

    /* the session cookie, decoded */
    u_char                       sid[NGX_HTTP_ENT_SSO_SID_B64];
    u_char                       sid_raw[NGX_HTTP_ENT_SSO_SID_LEN];
    u_char                       skey[ENT_AEAD_KEY_LEN];
    u_char                       key_md[32];   /* SHA-256 of skey, tagged */
    ngx_http_ent_sso_identity_t  id;

    /* a subrequest's answer */
    ngx_uint_t                   fetch_status;
    ngx_str_t                    fetch_body;

    /* the callback */
    ngx_str_t                    code;
    ngx_str_t                    nonce;
    ngx_str_t                    verifier;
    ngx_str_t                    return_to;
    ngx_str_t                    state;

    ngx_str_t                    bearer;
    ngx_str_t                    token_body;
    ngx_str_t                    cookie_value;  /* set once the session is */
    ngx_str_t                    saml_state;    /* the SAML state cookie */
    ngx_uint_t                   phase;
    ngx_str_t                    logout_token;
    json_t                      *claims;       /* freed by the cleanup */

    ngx_int_t                    status;       /* the decision */
    ngx_uint_t                   fetch_what;
    ngx_uint_t                   nsessions;
    ngx_str_t                   *sessions;
    ngx_str_t                    index;
    ngx_str_t                    jti;          /* an IdP logout's, spent */
    void                        *authz_conf;   /* the rules passed: whose */
    const char                  *sso_status;   /* $ent_sso_status */

    /* authorization: the user's standing, live */
    ngx_str_t                    az_roles;
    ngx_str_t                    az_perms;
    ngx_int_t                    az_rank;
    time_t                       az_expires;   /* break-glass: its end */
    time_t                       expires_cap;  /* a session's end, at most */

    unsigned                     idp_done:1;
    unsigned                     idp_none:1;
    unsigned                     disc_done:1;
    unsigned                     jwks_done:1;
    unsigned                     jwks_refetched:1;
    unsigned                     waiting:1;
    unsigned                     fetched:1;
    unsigned                     has_cookie:1;
    unsigned                     session_done:1;
    unsigned                     authenticated:1;
    unsigned                     state_done:1;
    unsigned                     token_done:1;
    unsigned                     login_done:1;
    unsigned                     created_done:1;
    unsigned                     logout_done:1;
    unsigned                     body_done:1;
    unsigned                     decided:1;
    unsigned                     headers_set:1;
    unsigned                     identity_from_bearer:1;
    unsigned                     enforce:1;
    unsigned                     replay_done:1;
    unsigned                     expired:1;
    unsigned                     partial:1;
    unsigned                     jti_spent:1;
    unsigned                     key_md_done:1;
    unsigned                     answered:1;
    unsigned                     anonymous:1;
    unsigned                     authz_done:1;
    unsigned                     breakglass:1;
};


extern ngx_module_t  ngx_http_ent_sso_module;


/* ngx_http_ent_sso_module.c */
time_t ngx_http_ent_sso_now(ngx_http_request_t *r);
ngx_int_t ngx_http_ent_sso_answer(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_uint_t status, const char *error,
    const char *text);
ngx_int_t ngx_http_ent_sso_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, u_char *body, size_t len);
ngx_int_t ngx_http_ent_sso_redirect(ngx_http_request_t *r, ngx_str_t *url);
ngx_int_t ngx_http_ent_sso_set_cookie(ngx_http_request_t *r, ngx_str_t *name,
    u_char *value, size_t len, time_t max_age);
void ngx_http_ent_sso_wake(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx);
void ngx_http_ent_sso_event(ngx_http_request_t *r, ngx_http_ent_sso_ctx_t *ctx,
    const char *kind, const char *outcome, const char *reason,
    ngx_str_t *user_id);
ngx_int_t ngx_http_ent_sso_seal(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, const char *purpose, json_t *js,
    ngx_str_t *out);
json_t *ngx_http_ent_sso_unseal(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, const char *purpose, ngx_str_t *in);
ngx_int_t ngx_http_ent_sso_body(ngx_http_request_t *r, size_t max,
    ngx_str_t *out);
json_t *ngx_http_ent_sso_attrs_map(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_attr_find(ngx_str_t *attrs, u_char *name,
    size_t len, ngx_str_t *value);
ngx_int_t ngx_http_ent_sso_attrs_add(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, const char *name, const char *value);
ngx_int_t ngx_http_ent_sso_secret_open(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, const char *purpose, ngx_str_t *in,
    ngx_str_t *out);
ngx_int_t ngx_http_ent_sso_base_url(ngx_http_request_t *r, ngx_str_t *out,
    const char *path);
ngx_str_t *ngx_http_ent_sso_arg(ngx_http_request_t *r, ngx_str_t *args,
    const char *name, ngx_str_t *value);

/* ngx_ent_sso_fetch.c */
ngx_int_t ngx_http_ent_sso_fetch(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *url, ngx_str_t *body,
    ngx_str_t *authorization);
ngx_int_t ngx_http_ent_sso_need_discovery(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_need_jwks(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_jwks_refetch(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_fetch_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
void ngx_http_ent_sso_docs_exit(void);

/* ngx_ent_sso_oidc.c */
ngx_int_t ngx_http_ent_sso_login(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_callback(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_bearer(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_backchannel(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
void ngx_http_ent_sso_bearers_exit(void);
ngx_int_t ngx_http_ent_sso_provision(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_uint_t jit);
void ngx_http_ent_sso_body_read(ngx_http_request_t *r);

/* ngx_ent_sso_saml.c */
ngx_int_t ngx_http_ent_sso_saml_login(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_saml_acs(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_saml_metadata(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_saml_slo(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_saml_slo_done(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_uint_t revoked);
ngx_int_t ngx_http_ent_sso_saml_logout(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
void ngx_http_ent_sso_saml_exit(void);
ngx_int_t ngx_http_ent_sso_verify(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *token, const char *aud,
    const char *nonce, ent_jwt_t *jwt, const char **reason);

/* ngx_ent_sso_authz.c */
char *ngx_http_ent_sso_authz_rule(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ent_sso_authz(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_breakglass(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_permissions_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
void ngx_http_ent_sso_authz_exit(void);

/* ngx_ent_sso_session.c */
ngx_int_t ngx_http_ent_sso_session_load(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_session_create(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_session_endpoint(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_logout(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx);
ngx_int_t ngx_http_ent_sso_revoke(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, ngx_str_t *index_key);
u_char *ngx_http_ent_sso_key_md(ngx_http_ent_sso_ctx_t *ctx);
void ngx_http_ent_sso_cache_drop(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, u_char *sid);
size_t ngx_http_ent_sso_key(ngx_http_request_t *r,
    ngx_http_ent_sso_ctx_t *ctx, u_char *buf, size_t size,
    const char *kind, u_char *suffix, size_t len);


#endif /* _NGX_ENT_SSO_H_INCLUDED_ */
