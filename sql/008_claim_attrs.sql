-- ngx_ent 008: custom attributes of the identity.
--
-- claim_attrs maps a name (what the upstream sees: X-Ent-User-Attr-<name>,
-- $ent_user_attr_<name>) to the OIDC claim (a name or a dotted path) or
-- the SAML attribute (its Name) that carries it, e.g.
-- {"department": "urn:oid:2.5.4.11", "cost-center": "costCenter"}.
-- At most 16 names, each [a-z0-9-], 1 to 32 bytes.

ALTER TABLE ent.identity_providers
    ADD COLUMN IF NOT EXISTS claim_attrs jsonb NOT NULL DEFAULT '{}'::jsonb;

CREATE OR REPLACE FUNCTION ent.claim_attrs_ok(p jsonb)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT jsonb_typeof(p) = 'object'
       AND (SELECT count(*) FROM jsonb_object_keys(p)) <= 16
       AND NOT EXISTS (SELECT 1 FROM jsonb_each(p) e
                        WHERE e.key !~ '^[a-z0-9][a-z0-9-]{0,31}$'
                           OR jsonb_typeof(e.value) <> 'string'
                           OR length(e.value #>> '{}') NOT BETWEEN 1 AND 256);
$$;

ALTER TABLE ent.identity_providers
    DROP CONSTRAINT IF EXISTS identity_providers_claim_attrs_check;

ALTER TABLE ent.identity_providers
    ADD CONSTRAINT identity_providers_claim_attrs_check
        CHECK (ent.claim_attrs_ok(claim_attrs));

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
    claim_attrs          text
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
                ELSE p.claim_attrs::text END
      FROM ent.identity_providers p
     WHERE p.tenant_id = p_tenant AND p.enabled
     ORDER BY p.protocol
     LIMIT 1;
$$;
