-- ngx_ent 005: billing anchor days, for monthly quotas.
--
-- A monthly quota resets on the tenant's billing anchor day (1..28, at
-- 00:00 UTC), not every 30 days.  NULL inherits the parent's (so a group's
-- subsidiaries share the group's billing cycle); the default is the 1st.

ALTER TABLE ent.tenants
    ADD COLUMN IF NOT EXISTS billing_anchor_day smallint
        CHECK (billing_anchor_day BETWEEN 1 AND 28);

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
