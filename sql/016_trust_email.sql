-- ngx_ent 016: an OpenID Provider's email trusted without email_verified.
--
-- Entra ID and OneLogin send no email_verified claim; an email that is not
-- verified decides nothing (no membership by email, no provisioning).
-- trust_email (off by default) takes the email of such an IdP as verified
-- when, and only when, its domain is one of the tenant's verified domains
-- allowed for that IdP (ent.email_domains, allowed_domains): the tenant
-- proved it owns the domain, and its IdP vouches for the address.
-- ent.sso_idp() gains the column at the end (the edge reads 25 or 26).

ALTER TABLE ent.identity_providers
    ADD COLUMN IF NOT EXISTS trust_email boolean NOT NULL DEFAULT false;

DROP FUNCTION IF EXISTS ent.sso_idp(uuid);

CREATE FUNCTION ent.sso_idp(p_tenant uuid)
RETURNS TABLE (
    protocol             text,
    issuer               text,
    client_id            text,
    client_secret        text,
    token_auth           text,
    scopes               text,
    claim_email          text,
    claim_name           text,
    claim_groups         text,
    claim_roles          text,
    domains              text,
    enforce_sso          boolean,
    api_audience         text,
    api_scopes           text,
    saml_sso_url         text,
    saml_cert            text,
    saml_slo_url         text,
    saml_sp_entity_id    text,
    saml_sp_key          text,
    saml_sp_cert         text,
    saml_name_id_format  text,
    saml_skew            integer,
    saml_unsolicited     boolean,
    saml_allow_sha1      boolean,
    claim_attrs          text,
    trust_email          boolean
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
           p.saml_cert, p.saml_slo_url, p.saml_sp_entity_id,
           p.saml_sp_key_enc, p.saml_sp_cert, p.saml_name_id_format,
           p.saml_skew, p.saml_unsolicited, p.saml_allow_sha1,
           CASE WHEN p.claim_attrs = '{}'::jsonb THEN NULL
                ELSE p.claim_attrs::text END,
           p.trust_email
      FROM ent.identity_providers p
     WHERE p.tenant_id = p_tenant AND p.enabled
     ORDER BY p.protocol
     LIMIT 1;
$$;
