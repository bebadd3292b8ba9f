-- ngx_ent 007: SAML 2.0, the rest of a tenant's settings.
--
-- saml_cert may now hold several PEM certificates one after the other: a
-- signature by any of them is accepted (rotation: add the new one, remove
-- the old once the IdP has switched).  saml_slo_url is the IdP's
-- SingleLogoutService (HTTP-Redirect binding).  The SP side: its entity ID
-- (NULL: https://<tenant host>/_ent/saml/metadata), its signing and
-- decryption key (sealed like the OIDC client secret) and certificate, the
-- NameID format it asks for, the clock skew it allows, and two switches
-- that are off unless an operator turns them on: IdP-initiated
-- (unsolicited) login and SHA-1 signatures.

ALTER TABLE ent.identity_providers
    DROP CONSTRAINT IF EXISTS identity_providers_saml_cert_check;

ALTER TABLE ent.identity_providers
    ADD CONSTRAINT identity_providers_saml_cert_check
        CHECK (saml_cert LIKE '-----BEGIN CERTIFICATE-----%'
               AND length(saml_cert) <= 65536),
    ADD COLUMN IF NOT EXISTS saml_slo_url text
        CHECK (saml_slo_url ~ '^https://' AND length(saml_slo_url) <= 1024),
    ADD COLUMN IF NOT EXISTS saml_sp_entity_id text
        CHECK (length(saml_sp_entity_id) BETWEEN 1 AND 512
               AND saml_sp_entity_id ~ '^[\x21-\x7e]+$'),
    -- sealed with the key of "ent_sso_secret_key" (AES-256-GCM), base64url
    ADD COLUMN IF NOT EXISTS saml_sp_key_enc text
        CHECK (length(saml_sp_key_enc) <= 16384),
    ADD COLUMN IF NOT EXISTS saml_sp_cert text
        CHECK (saml_sp_cert LIKE '-----BEGIN CERTIFICATE-----%'
               AND length(saml_sp_cert) <= 16384),
    ADD COLUMN IF NOT EXISTS saml_name_id_format text
        CHECK (saml_name_id_format ~ '^urn:[\x21-\x7e]+$'
               AND length(saml_name_id_format) <= 256),
    ADD COLUMN IF NOT EXISTS saml_skew integer
        CHECK (saml_skew BETWEEN 0 AND 3600),
    ADD COLUMN IF NOT EXISTS saml_unsolicited boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS saml_allow_sha1 boolean NOT NULL DEFAULT false;

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
    saml_allow_sha1      boolean
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
           p.saml_skew, p.saml_unsolicited, p.saml_allow_sha1
      FROM ent.identity_providers p
     WHERE p.tenant_id = p_tenant AND p.enabled
     ORDER BY p.protocol
     LIMIT 1;
$$;
