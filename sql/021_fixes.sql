-- ngx_ent 021: three fixes to earlier functions.
--
-- 1. ent.authz() looked a bearer token's subject up as one of our user ids
--    when it had the form of one, before the identities: an IdP whose
--    subjects are UUIDs (and whose administrators can choose them) could
--    issue a token for another user's id and get that user's standing.
--    A subject is now looked up only as an identity of its issuer; the
--    user id form is for sessions (no issuer passed).
-- 2. A permission area grant ("audit_logs:*") matched names with LIKE,
--    where "_" matches any character: it also granted "audit-logs:read"
--    or "auditXlogs:read".  The areas are now compared as text.
-- 3. ent.tenant_for_host(): a feature's rollout bucket was
--    abs(hashtext(...)) % 100, and abs() of the one integer hashtext() can
--    return whose absolute value does not fit (-2147483648) raises an
--    error: that tenant could not be resolved at all.  Computed in bigint
--    now; every other tenant keeps its bucket.

CREATE OR REPLACE FUNCTION ent.tenant_for_host(p_host text, p_code text)
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
                    AND abs(hashtext(t.id::text || ':' || f.key)::bigint) % 100
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

CREATE OR REPLACE FUNCTION ent.authz(p_tenant uuid, p_user text,
                                     p_issuer text, p_groups text,
                                     p_grant uuid DEFAULT NULL)
RETURNS TABLE (status text, roles text, rank integer, permissions text,
               user_id uuid, expires bigint)
LANGUAGE plpgsql
STABLE
AS $$
#variable_conflict use_column
DECLARE
    v_user     uuid;
    v_ustatus  text;
    v_mstatus  text;
    v_roles    text[];
    v_tenants  uuid[] := ARRAY[p_tenant];
    v_expires  bigint := 0;
BEGIN
    IF p_grant IS NOT NULL THEN
        -- break-glass: the grant's role, nothing else
        SELECT ARRAY[b.role], b.expires, b.admin_id
          INTO v_roles, v_expires, v_user
          FROM ent.breakglass(p_grant) b
         WHERE b.tenant_id = p_tenant AND b.admin_id::text = p_user;

        IF v_roles IS NULL THEN
            RETURN QUERY SELECT 'none'::text, ''::text, 0, ''::text,
                                NULL::uuid, 0::bigint;
            RETURN;
        END IF;

    ELSE
        -- a session's user id; never a bearer token's subject (an IdP's
        -- subject that looks like one of our ids is not that user)
        IF p_issuer IS NULL
           AND p_user ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        THEN
            SELECT u.id, u.status INTO v_user, v_ustatus
              FROM ent.users u WHERE u.id = p_user::uuid;
        END IF;

        IF v_user IS NULL AND p_issuer IS NOT NULL THEN
            SELECT u.id, u.status INTO v_user, v_ustatus
              FROM ent.user_identities i JOIN ent.users u ON u.id = i.user_id
             WHERE i.tenant_id = p_tenant AND i.issuer = p_issuer
               AND i.subject = p_user;
        END IF;

        IF v_user IS NULL THEN
            RETURN QUERY SELECT 'none'::text, ''::text, 0, ''::text,
                                NULL::uuid, 0::bigint;
            RETURN;
        END IF;

        SELECT m.status INTO v_mstatus
          FROM ent.memberships m
         WHERE m.tenant_id = p_tenant AND m.user_id = v_user;

        IF v_ustatus <> 'active'
           OR (v_mstatus IS NOT NULL AND v_mstatus <> 'active')
        THEN
            RETURN QUERY SELECT 'suspended'::text, ''::text, 0, ''::text,
                                v_user, 0::bigint;
            RETURN;
        END IF;

        SELECT array_agg(DISTINCT x.role COLLATE "C"
                         ORDER BY x.role COLLATE "C") INTO v_roles
          FROM (
            -- the membership
            SELECT m.role FROM ent.memberships m
             WHERE m.tenant_id = p_tenant AND m.user_id = v_user
               AND m.status = 'active'
            UNION ALL
            -- the IdP groups, for a member
            SELECT g.role FROM ent.group_role_mappings g
             WHERE v_mstatus IS NOT NULL AND g.tenant_id = p_tenant
               AND g.idp_group = ANY (ent.authz_groups(p_tenant, v_user,
                                                       p_groups))
            UNION ALL
            -- the ancestors', when this tenant inherits them (each level
            -- must inherit from the next one up)
            SELECT m.role
              FROM (WITH RECURSIVE up (id, parent_id, inherit, depth) AS (
                        SELECT t.id, t.parent_id, t.inherit_roles, 0
                          FROM ent.tenants t WHERE t.id = p_tenant
                        UNION ALL
                        SELECT t.id, t.parent_id, t.inherit_roles,
                               up.depth + 1
                          FROM ent.tenants t JOIN up ON t.id = up.parent_id
                         WHERE up.inherit AND up.depth < 5)
                    SELECT up.id FROM up WHERE up.depth > 0) a
              JOIN ent.memberships m ON m.tenant_id = a.id
             WHERE m.user_id = v_user AND m.status = 'active'
          ) x;

        IF v_roles IS NULL THEN
            RETURN QUERY SELECT 'none'::text, ''::text, 0, ''::text, v_user,
                                0::bigint;
            RETURN;
        END IF;

        -- an inherited custom role is defined by the ancestor that has it
        SELECT v_tenants || coalesce(array_agg(a.id), '{}') INTO v_tenants
          FROM (WITH RECURSIVE up (id, parent_id, inherit, depth) AS (
                    SELECT t.id, t.parent_id, t.inherit_roles, 0
                      FROM ent.tenants t WHERE t.id = p_tenant
                    UNION ALL
                    SELECT t.id, t.parent_id, t.inherit_roles, up.depth + 1
                      FROM ent.tenants t JOIN up ON t.id = up.parent_id
                     WHERE up.inherit AND up.depth < 5)
                SELECT up.id FROM up WHERE up.depth > 0) a;
    END IF;

    RETURN QUERY
    SELECT 'active'::text,
           array_to_string(v_roles, ','),
           coalesce((SELECT max(r.rank) FROM ent.roles r
                      WHERE r.name = ANY (v_roles)
                        AND (r.tenant_id IS NULL
                             OR r.tenant_id = ANY (v_tenants))),
                    0),
           coalesce((SELECT string_agg(DISTINCT p.name COLLATE "C", ','
                                       ORDER BY p.name COLLATE "C")
                       FROM ent.role_permissions rp
                       JOIN ent.permissions p
                         ON rp.permission = '*'
                            OR rp.permission = p.name
                            OR (rp.permission LIKE '%:*'
                                AND split_part(p.name, ':', 1)
                                    = split_part(rp.permission, ':', 1))
                      WHERE rp.role = ANY (v_roles)
                        AND (rp.tenant_id IS NULL
                             OR rp.tenant_id = ANY (v_tenants))), ''),
           v_user,
           v_expires;
END
$$;
