-- ngx_ent 002: plans (tiers), tenants and their domains.

CREATE TABLE IF NOT EXISTS ent.plans (
    id          text PRIMARY KEY
                CHECK (id ~ '^[a-z][a-z0-9_-]{0,31}$'),
    name        text NOT NULL,
    rank        integer NOT NULL DEFAULT 0,
    features    jsonb NOT NULL DEFAULT '{}'::jsonb,
    limits      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO ent.plans (id, name, rank) VALUES
    ('free', 'Free', 0),
    ('team', 'Team', 10),
    ('business', 'Business', 20),
    ('enterprise', 'Enterprise', 30),
    ('custom', 'Custom', 40)
ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS ent.tenants (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code          text NOT NULL UNIQUE
                  CHECK (code ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    display_name  text NOT NULL CHECK (length(display_name) <= 200),
    status        text NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'suspended', 'deactivated',
                                    'maintenance')),
    plan_id       text REFERENCES ent.plans (id),
    region        text CHECK (region ~ '^[a-z][a-z0-9-]{0,15}$'),
    upstream      text CHECK (upstream ~ '^[A-Za-z0-9_.-]{1,64}$'),
    parent_id     uuid REFERENCES ent.tenants (id),
    settings      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id IS NULL OR parent_id <> id)
);

CREATE INDEX IF NOT EXISTS tenants_parent ON ent.tenants (parent_id);

CREATE TABLE IF NOT EXISTS ent.tenant_domains (
    domain      text PRIMARY KEY
                CHECK (domain = lower(domain) AND length(domain) <= 253
                       AND domain ~ '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$'),
    tenant_id   uuid NOT NULL REFERENCES ent.tenants (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS tenant_domains_tenant
    ON ent.tenant_domains (tenant_id);

-- a change to any of these flushes the nodes' tenant cache; they are rare

CREATE OR REPLACE FUNCTION ent.tenants_changed()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM ent.invalidate('tenants');
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['plans', 'tenants', 'tenant_domains'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON ent.%I',
                       t || '_invalidate', t);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE '
                       'ON ent.%I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION ent.tenants_changed()',
                       t || '_invalidate', t);
    END LOOP;

    FOREACH t IN ARRAY ARRAY['plans', 'tenants'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON ent.%I',
                       t || '_updated_at', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON ent.%I '
                       'FOR EACH ROW EXECUTE FUNCTION ent.touch_updated_at()',
                       t || '_updated_at', t);
    END LOOP;
END
$$;
