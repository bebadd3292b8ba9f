-- ngx_ent 019: a SCIM token stops working the second it expires.
--
-- ent.scim_token() says "expired" when asked, but the edge keeps its
-- answer in the "scim_tokens" cache zone (60 s by default), and nothing
-- flushes the zone when a token's expires_at passes (no statement runs):
-- an expired token kept working until its cached "active" aged out.  The
-- edge now asks ent.scim_token_auth(), which also gives the expiry (Unix
-- seconds, or NULL for none), and checks it on every request.
--
-- ent.scim_token() stays as it was, for an nginx not upgraded yet.

CREATE OR REPLACE FUNCTION ent.scim_token_auth(p_sha256 bytea)
RETURNS TABLE (id uuid, tenant_id uuid, state text, expires bigint)
LANGUAGE sql
STABLE
AS $$
    SELECT t.id, t.tenant_id,
           CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked'
                WHEN t.expires_at IS NOT NULL AND t.expires_at <= now()
                THEN 'expired'
                ELSE 'active' END,
           floor(extract(epoch FROM t.expires_at))::bigint
      FROM ent.scim_tokens t
     WHERE t.token_sha256 = p_sha256;
$$;
