-- ngx_ent 006: SAML 2.0 identity providers.
--
-- A tenant's IdP row with protocol 'saml': issuer is the IdP's entity ID,
-- saml_sso_url its SingleSignOnService (HTTP-Redirect binding), saml_cert
-- the signing certificate (PEM) the edge pins.  The claim_* columns name
-- the attributes that carry email, name and groups.

ALTER TABLE ent.identity_providers
    ADD COLUMN IF NOT EXISTS saml_sso_url text
        CHECK (saml_sso_url ~ '^https://' AND length(saml_sso_url) <= 1024),
    ADD COLUMN IF NOT EXISTS saml_cert text
        CHECK (saml_cert LIKE '-----BEGIN CERTIFICATE-----%'
               AND length(saml_cert) <= 16384);

DROP FUNCTION IF EXISTS ent.sso_idp(uuid);

CREATE FUNCTION ent.sso_idp(p_tenant uuid)
RETURNS TABLE (
    protocol        text,
    issuer          text,
    client_id       text,
    client_secret   text,
    token_auth      text,
    scopes          text,
    claim_email     text,
    claim_name      text,
    claim_groups    text,
    claim_roles     text,
    domains         text,
    enforce_sso     boolean,
    api_audience    text,
    api_scopes      text,
    saml_sso_url    text,
    saml_cert       text
)
LANGUAGE sql
STABLE
AS $$
    SELECT p.protocol, p.issuer, p.client_id, p.client_secret_enc,
           p.token_auth, p.scopes, p.claim_email, p.claim_name,
           p.claim_groups, p.claim_roles,
           coalesce((SELECT string_agg(d.domain, ',' ORDER BY d.domain)
                       FROM ent.email_domains d
                      WHERE d.tenant_id = p.tenant_id
                        AND d.verified_at IS NOT NULL
                        AND d.domain = ANY (p.allowed_domains)), ''),
           p.enforce_sso, p.api_audience, p.api_scopes, p.saml_sso_url,
           p.saml_cert
      FROM ent.identity_providers p
     WHERE p.tenant_id = p_tenant AND p.enabled
     ORDER BY p.protocol
     LIMIT 1;
$$;
