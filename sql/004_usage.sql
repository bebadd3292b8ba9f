-- ngx_ent 004: quota usage per tenant and period, for billing.
--
-- The edge writes, for each monthly quota, the count Redis holds for the
-- tenant's current period: "used" only grows (upserted with GREATEST), so
-- a repeated or late write never counts twice and a lost one is made good
-- by the next.  ent.usage_consolidated sums a tenant and all its
-- descendants: a parent's consolidated usage.

CREATE TABLE IF NOT EXISTS ent.usage (
    tenant_id     uuid NOT NULL REFERENCES ent.tenants (id) ON DELETE CASCADE,
    policy        text NOT NULL CHECK (policy ~ '^[a-z][a-z0-9_-]{0,31}$'),
    period_start  timestamptz NOT NULL,
    used          bigint NOT NULL CHECK (used >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, policy, period_start)
);

CREATE OR REPLACE FUNCTION ent.usage_record(p_tenant uuid, p_policy text,
                                            p_start bigint, p_used bigint)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO ent.usage (tenant_id, policy, period_start, used)
    VALUES (p_tenant, p_policy, to_timestamp(p_start), p_used)
    ON CONFLICT (tenant_id, policy, period_start) DO UPDATE
       SET used = GREATEST(ent.usage.used, EXCLUDED.used),
           updated_at = now()
     WHERE ent.usage.used < EXCLUDED.used;
$$;

CREATE OR REPLACE VIEW ent.usage_consolidated AS
WITH RECURSIVE tree AS (
    SELECT id AS root, id FROM ent.tenants
    UNION ALL
    SELECT tree.root, t.id FROM ent.tenants t JOIN tree ON t.parent_id = tree.id
)
SELECT tree.root AS tenant_id, u.policy, u.period_start, sum(u.used) AS used
  FROM tree JOIN ent.usage u ON u.tenant_id = tree.id
 GROUP BY tree.root, u.policy, u.period_start;
