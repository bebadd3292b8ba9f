-- ngx_ent 003: what the edge needs to know about a tenant.
--
-- Per tenant: branding, feature overrides, IP allow-list, security header
-- settings, rate-limit overrides, the billing anchor day of monthly quotas
-- (1..28, 00:00 UTC).  NULL means "inherit from the parent" (up to 5
-- levels); the plan (tier) is inherited the same way.  ent.features is the platform's
-- feature registry: a kill switch and a rollout percentage per feature.
-- ent.tenant_for_host() resolves a Host to one row with every inherited
-- value computed: one query per cache fill, none per request.

ALTER TABLE ent.tenants
    ADD COLUMN IF NOT EXISTS brand_color text
        CHECK (brand_color ~ '^#[0-9a-fA-F]{6}$'),
    ADD COLUMN IF NOT EXISTS logo_url text
        CHECK (logo_url ~ '^https://[^[:space:]"''<>\\]+$'
               AND length(logo_url) <= 500),
    ADD COLUMN IF NOT EXISTS features jsonb NOT NULL DEFAULT '{}'::jsonb
        CHECK (jsonb_typeof(features) = 'object'),
    ADD COLUMN IF NOT EXISTS allow_cidrs cidr[],
    ADD COLUMN IF NOT EXISTS csp_sources text
        CHECK (csp_sources ~ '^[A-Za-z0-9 :/.*_''+-]*$'
               AND length(csp_sources) <= 1000),
    ADD COLUMN IF NOT EXISTS csp_report_only boolean,
    ADD COLUMN IF NOT EXISTS csp_report_uri text
        CHECK (csp_report_uri ~ '^https://[^[:space:];,"''<>\\]+$'
               AND length(csp_report_uri) <= 500),
    ADD COLUMN IF NOT EXISTS hsts_preload boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS billing_anchor_day smallint
        CHECK (billing_anchor_day BETWEEN 1 AND 28);

CREATE TABLE IF NOT EXISTS ent.features (
    name             text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
    description      text NOT NULL DEFAULT '',
    enabled          boolean NOT NULL DEFAULT true,
    rollout_percent  integer NOT NULL DEFAULT 100
                     CHECK (rollout_percent BETWEEN 0 AND 100),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

INSERT INTO ent.features (name, description) VALUES
    ('sso', 'single sign-on'),
    ('scim', 'SCIM provisioning'),
    ('api_ai', 'AI API'),
    ('advanced_analytics', 'advanced analytics'),
    ('audit_export', 'audit log export')
ON CONFLICT (name) DO NOTHING;

UPDATE ent.plans SET features = v.f FROM (VALUES
    ('free', '{"api_ai": true}'::jsonb),
    ('team', '{"api_ai": true, "sso": true}'::jsonb),
    ('business', '{"api_ai": true, "sso": true, "scim": true,
                   "advanced_analytics": true}'::jsonb),
    ('enterprise', '{"api_ai": true, "sso": true, "scim": true,
                     "advanced_analytics": true, "audit_export": true}'::jsonb))
    AS v (id, f)
WHERE ent.plans.id = v.id AND ent.plans.features = '{}'::jsonb;

-- hierarchies: no cycles, at most 5 levels

CREATE OR REPLACE FUNCTION ent.tenants_check_parent()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    cur    uuid := NEW.parent_id;
    depth  integer := 1;
BEGIN
    WHILE cur IS NOT NULL LOOP
        IF cur = NEW.id THEN
            RAISE EXCEPTION 'tenant "%" cannot be its own ancestor', NEW.code
                USING ERRCODE = 'check_violation';
        END IF;
        depth := depth + 1;
        IF depth > 5 THEN
            RAISE EXCEPTION 'tenant "%" would be more than 5 levels deep',
                NEW.code USING ERRCODE = 'check_violation';
        END IF;
        SELECT parent_id INTO cur FROM ent.tenants WHERE id = cur;
    END LOOP;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS tenants_check_parent ON ent.tenants;
CREATE TRIGGER tenants_check_parent
    BEFORE INSERT OR UPDATE OF parent_id ON ent.tenants
    FOR EACH ROW EXECUTE FUNCTION ent.tenants_check_parent();

DROP TRIGGER IF EXISTS features_invalidate ON ent.features;
CREATE TRIGGER features_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON ent.features
    FOR EACH STATEMENT EXECUTE FUNCTION ent.tenants_changed();

-- rate-limit overrides: a contract may raise (an admin lower) one
-- tenant's limit for a policy; NULL is unlimited; children inherit

CREATE TABLE IF NOT EXISTS ent.ratelimit_overrides (
    tenant_id    uuid NOT NULL REFERENCES ent.tenants (id) ON DELETE CASCADE,
    policy       text NOT NULL CHECK (policy ~ '^[a-z][a-z0-9_-]{0,31}$'),
    limit_value  integer CHECK (limit_value IS NULL OR limit_value >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, policy)
);

DROP TRIGGER IF EXISTS ratelimit_overrides_invalidate
    ON ent.ratelimit_overrides;
CREATE TRIGGER ratelimit_overrides_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON ent.ratelimit_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION ent.tenants_changed();

-- the effective record for a Host: a custom domain first, else the code

DROP FUNCTION IF EXISTS ent.tenant_for_host(text, text);

CREATE FUNCTION ent.tenant_for_host(p_host text, p_code text)
RETURNS TABLE (
    id               uuid,
    code             text,
    display_name     text,
    status           text,
    tier             text,
    region           text,
    upstream         text,
    features         text,
    allow_cidrs      text,
    csp_sources      text,
    csp_report_only  boolean,
    csp_report_uri   text,
    hsts_preload     boolean,
    brand_color      text,
    logo_url         text,
    custom_domain    boolean,
    parent_id        uuid,
    ratelimits       text,
    billing_anchor   smallint
)
LANGUAGE sql
STABLE
AS $$
WITH RECURSIVE
target AS (
    SELECT t.id, true AS custom
      FROM ent.tenant_domains d JOIN ent.tenants t ON t.id = d.tenant_id
     WHERE d.domain = p_host
    UNION ALL
    SELECT t.id, false
      FROM ent.tenants t
     WHERE p_code IS NOT NULL AND t.code = p_code
       AND NOT EXISTS (SELECT 1 FROM ent.tenant_domains d
                        WHERE d.domain = p_host)
    LIMIT 1
),
chain AS (
    SELECT t.id, t.parent_id, t.status, t.plan_id, t.region, t.upstream,
           t.features, t.allow_cidrs, t.csp_sources, t.csp_report_only,
           t.csp_report_uri, t.brand_color, t.logo_url, t.billing_anchor_day,
           0 AS depth
      FROM ent.tenants t JOIN target ON t.id = target.id
    UNION ALL
    SELECT p.id, p.parent_id, p.status, p.plan_id, p.region, p.upstream,
           p.features, p.allow_cidrs, p.csp_sources, p.csp_report_only,
           p.csp_report_uri, p.brand_color, p.logo_url, p.billing_anchor_day,
           c.depth + 1
      FROM ent.tenants p JOIN chain c ON p.id = c.parent_id
     WHERE c.depth < 5
),
eff AS (
    SELECT coalesce((SELECT plan_id FROM chain WHERE plan_id IS NOT NULL
                      ORDER BY depth LIMIT 1), 'free') AS tier
),
flags AS (
    SELECT k.key,
           coalesce((SELECT (c.features ->> k.key)::boolean FROM chain c
                      WHERE c.features ? k.key ORDER BY c.depth LIMIT 1),
                    (pl.features ->> k.key)::boolean, false) AS on
      FROM eff JOIN ent.plans pl ON pl.id = eff.tier,
           LATERAL (SELECT jsonb_object_keys(c.features) AS key FROM chain c
                    UNION
                    SELECT jsonb_object_keys(pl.features)) k
)
SELECT t.id, t.code, t.display_name,
       CASE WHEN EXISTS (SELECT 1 FROM chain WHERE depth > 0
                          AND status = 'deactivated') THEN 'deactivated'
            WHEN t.status = 'deactivated' THEN 'deactivated'
            WHEN EXISTS (SELECT 1 FROM chain WHERE depth > 0
                          AND status = 'suspended') THEN 'suspended'
            ELSE t.status END,
       eff.tier,
       (SELECT region FROM chain WHERE region IS NOT NULL
         ORDER BY depth LIMIT 1),
       (SELECT upstream FROM chain WHERE upstream IS NOT NULL
         ORDER BY depth LIMIT 1),
       coalesce((SELECT string_agg(f.key, ',' ORDER BY f.key)
                   FROM flags f LEFT JOIN ent.features pf ON pf.name = f.key
                  WHERE f.on
                    AND coalesce(pf.enabled, true)
                    AND abs(hashtext(t.id::text || ':' || f.key)) % 100
                        < coalesce(pf.rollout_percent, 100)), ''),
       (SELECT array_to_string(allow_cidrs, ',') FROM chain
         WHERE allow_cidrs IS NOT NULL ORDER BY depth LIMIT 1),
       (SELECT csp_sources FROM chain WHERE csp_sources IS NOT NULL
         ORDER BY depth LIMIT 1),
       coalesce((SELECT csp_report_only FROM chain
                  WHERE csp_report_only IS NOT NULL ORDER BY depth LIMIT 1),
                false),
       (SELECT csp_report_uri FROM chain WHERE csp_report_uri IS NOT NULL
         ORDER BY depth LIMIT 1),
       t.hsts_preload,
       (SELECT brand_color FROM chain WHERE brand_color IS NOT NULL
         ORDER BY depth LIMIT 1),
       (SELECT logo_url FROM chain WHERE logo_url IS NOT NULL
         ORDER BY depth LIMIT 1),
       target.custom,
       t.parent_id,
       (SELECT string_agg(o.policy || '=' || coalesce(o.limit_value::text,
                                                       'unlimited'),
                          ',' ORDER BY o.policy)
          FROM (SELECT DISTINCT ON (r.policy) r.policy, r.limit_value
                  FROM chain c JOIN ent.ratelimit_overrides r
                       ON r.tenant_id = c.id
                 ORDER BY r.policy, c.depth) o),
       coalesce((SELECT billing_anchor_day FROM chain
                  WHERE billing_anchor_day IS NOT NULL
                  ORDER BY depth LIMIT 1), 1)::smallint
  FROM target JOIN ent.tenants t ON t.id = target.id, eff
$$;
