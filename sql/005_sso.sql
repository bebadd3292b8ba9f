-- ngx_ent 005: identity providers, users, memberships, roles, and the
-- events the edge records (logins, failures, logouts, provisioning, quota
-- thresholds) until the audit trail takes them over.
--
-- Users are global (one person may belong to several tenants); what a user
-- may do in a tenant is a membership.  An identity is an (issuer, subject)
-- pair of an identity provider, linked to one user.

-- built-in roles have no tenant; rank orders them: JIT provisioning gives
-- the lowest, and only a group mapping grants more

CREATE TABLE IF NOT EXISTS ent.roles (
    tenant_id    uuid REFERENCES ent.tenants (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_:.-]{0,63}$'),
    rank         integer NOT NULL DEFAULT 0,
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX IF NOT EXISTS roles_name
    ON ent.roles (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'),
                  name);

INSERT INTO ent.roles (tenant_id, name, rank, description)
SELECT NULL, v.name, v.rank, v.description
  FROM (VALUES ('member', 10, 'Uses the application'),
               ('admin', 50, 'Manages the organization'),
               ('owner', 100, 'Owns the organization')) v (name, rank, description)
 WHERE NOT EXISTS (SELECT 1 FROM ent.roles r
                    WHERE r.tenant_id IS NULL AND r.name = v.name);

-- the email domains a tenant has proven it owns; only these may decide
-- membership at login

CREATE TABLE IF NOT EXISTS ent.email_domains (
    tenant_id    uuid NOT NULL REFERENCES ent.tenants (id) ON DELETE CASCADE,
    domain       text NOT NULL
                 CHECK (domain = lower(domain) AND length(domain) <= 253
                        AND domain ~ '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$'),
    verified_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, domain)
);

CREATE TABLE IF NOT EXISTS ent.identity_providers (
    tenant_id          uuid NOT NULL REFERENCES ent.tenants (id)
                       ON DELETE CASCADE,
    protocol           text NOT NULL CHECK (protocol IN ('oidc', 'saml')),
    enabled            boolean NOT NULL DEFAULT true,
    issuer             text NOT NULL CHECK (issuer ~ '^https?://'
                                            AND length(issuer) <= 512),
    client_id          text CHECK (length(client_id) <= 256),
    -- sealed with the key of "ent_sso_secret_key" (AES-256-GCM), base64url
    client_secret_enc  text,
    token_auth         text NOT NULL DEFAULT 'client_secret_basic'
                       CHECK (token_auth IN ('client_secret_basic',
                                             'client_secret_post')),
    scopes             text NOT NULL DEFAULT 'openid email profile'
                       CHECK (length(scopes) <= 512
                              AND scopes ~ '^[\x21\x23-\x5b\x5d-\x7e ]+$'),
    claim_email        text NOT NULL DEFAULT 'email',
    claim_name         text NOT NULL DEFAULT 'name',
    claim_groups       text NOT NULL DEFAULT 'groups',
    claim_roles        text,
    allowed_domains    text[] NOT NULL DEFAULT '{}',
    enforce_sso        boolean NOT NULL DEFAULT false,
    api_audience       text,
    api_scopes         text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, protocol)
);

CREATE TABLE IF NOT EXISTS ent.users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text CHECK (length(email) <= 320),
    name           text CHECK (length(name) <= 256),
    status         text NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'suspended')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz
);

CREATE INDEX IF NOT EXISTS users_email ON ent.users (lower(email));

CREATE TABLE IF NOT EXISTS ent.user_identities (
    issuer      text NOT NULL,
    subject     text NOT NULL CHECK (length(subject) <= 255),
    user_id     uuid NOT NULL REFERENCES ent.users (id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES ent.tenants (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, issuer, subject)
);

CREATE TABLE IF NOT EXISTS ent.memberships (
    tenant_id   uuid NOT NULL REFERENCES ent.tenants (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES ent.users (id) ON DELETE CASCADE,
    role        text NOT NULL DEFAULT 'member',
    status      text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'suspended')),
    source      text NOT NULL DEFAULT 'jit'
                CHECK (source IN ('jit', 'scim', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

CREATE INDEX IF NOT EXISTS memberships_user ON ent.memberships (user_id);

-- an IdP group that grants a role in a tenant

CREATE TABLE IF NOT EXISTS ent.group_role_mappings (
    tenant_id   uuid NOT NULL REFERENCES ent.tenants (id) ON DELETE CASCADE,
    idp_group   text NOT NULL CHECK (length(idp_group) <= 256),
    role        text NOT NULL,
    PRIMARY KEY (tenant_id, idp_group, role)
);

-- what the edge records, written asynchronously; the audit issue turns
-- this into the partitioned, tamper-evident audit log

CREATE TABLE IF NOT EXISTS ent.events (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    tenant_id   uuid,
    user_id     uuid,
    kind        text NOT NULL CHECK (length(kind) <= 64),
    outcome     text NOT NULL CHECK (outcome IN ('success', 'failure',
                                                  'info')),
    reason      text CHECK (length(reason) <= 256),
    client_ip   text CHECK (length(client_ip) <= 64),
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX IF NOT EXISTS events_tenant_at ON ent.events (tenant_id, at);

CREATE OR REPLACE FUNCTION ent.event(p_tenant text, p_user text, p_kind text,
                                     p_outcome text, p_reason text,
                                     p_ip text, p_detail text)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO ent.events (tenant_id, user_id, kind, outcome, reason,
                            client_ip, detail)
    VALUES (nullif(p_tenant, '')::uuid, nullif(p_user, '')::uuid, p_kind,
            p_outcome, left(p_reason, 256), left(p_ip, 64),
            coalesce(nullif(p_detail, '')::jsonb, '{}'::jsonb));
$$;

-- the edge's per-tenant IdP record: one row, the allowed domains reduced
-- to the verified ones

CREATE OR REPLACE FUNCTION ent.sso_idp(p_tenant uuid)
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
    api_scopes      text
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
           p.enforce_sso, p.api_audience, p.api_scopes
      FROM ent.identity_providers p
     WHERE p.tenant_id = p_tenant AND p.enabled
     ORDER BY p.protocol
     LIMIT 1;
$$;

-- a login: finds (or, when p_jit, creates) the user and the membership,
-- and returns the outcome and the roles.  Outcomes: 'ok', 'no_account'
-- (unknown and not provisionable), 'suspended' (the user or the
-- membership).  A provisioned user gets the lowest-ranked role; a group
-- mapping may add more; the IdP's word alone never does.

CREATE OR REPLACE FUNCTION ent.sso_login(p_tenant uuid, p_issuer text,
                                         p_subject text, p_email text,
                                         p_name text, p_groups text,
                                         p_jit boolean)
RETURNS TABLE (outcome text, user_id uuid, roles text, created boolean)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_user     uuid;
    v_status   text;
    v_mstatus  text;
    v_role     text;
    v_created  boolean := false;
BEGIN
    SELECT i.user_id INTO v_user
      FROM ent.user_identities i
     WHERE i.tenant_id = p_tenant AND i.issuer = p_issuer
       AND i.subject = p_subject;

    IF v_user IS NULL AND p_email IS NOT NULL AND p_email <> ''
       AND EXISTS (SELECT 1 FROM ent.email_domains d
                    WHERE d.tenant_id = p_tenant
                      AND d.verified_at IS NOT NULL
                      AND d.domain = lower(split_part(p_email, '@', 2)))
    THEN
        -- provisioned before (SCIM, an admin) with this email, of a domain
        -- the tenant has verified: link it
        SELECT u.id INTO v_user
          FROM ent.users u JOIN ent.memberships m ON m.user_id = u.id
         WHERE m.tenant_id = p_tenant AND lower(u.email) = lower(p_email)
         ORDER BY u.created_at
         LIMIT 1;
    END IF;

    IF v_user IS NULL THEN
        IF NOT p_jit THEN
            RETURN QUERY SELECT 'no_account'::text, NULL::uuid, ''::text,
                                false;
            RETURN;
        END IF;

        INSERT INTO ent.users (email, name)
        VALUES (nullif(p_email, ''), nullif(p_name, ''))
        RETURNING id INTO v_user;
        v_created := true;
    END IF;

    INSERT INTO ent.user_identities (issuer, subject, user_id, tenant_id)
    VALUES (p_issuer, p_subject, v_user, p_tenant)
    ON CONFLICT (tenant_id, issuer, subject) DO NOTHING;

    -- a concurrent first login of the same identity won the insert
    SELECT i.user_id INTO v_user
      FROM ent.user_identities i
     WHERE i.tenant_id = p_tenant AND i.issuer = p_issuer
       AND i.subject = p_subject;

    SELECT u.status INTO v_status FROM ent.users u WHERE u.id = v_user;

    SELECT m.status, m.role INTO v_mstatus, v_role
      FROM ent.memberships m
     WHERE m.tenant_id = p_tenant AND m.user_id = v_user;

    IF v_mstatus IS NULL THEN
        IF NOT p_jit THEN
            RETURN QUERY SELECT 'no_account'::text, v_user, ''::text, false;
            RETURN;
        END IF;

        SELECT r.name INTO v_role
          FROM ent.roles r
         WHERE r.tenant_id IS NULL OR r.tenant_id = p_tenant
         ORDER BY r.rank, r.name
         LIMIT 1;

        INSERT INTO ent.memberships (tenant_id, user_id, role, source)
        VALUES (p_tenant, v_user, coalesce(v_role, 'member'), 'jit')
        ON CONFLICT (tenant_id, user_id) DO NOTHING;

        SELECT m.status, m.role INTO v_mstatus, v_role
          FROM ent.memberships m
         WHERE m.tenant_id = p_tenant AND m.user_id = v_user;
        v_created := true;
    END IF;

    IF v_status <> 'active' OR v_mstatus <> 'active' THEN
        RETURN QUERY SELECT 'suspended'::text, v_user, ''::text, false;
        RETURN;
    END IF;

    -- the name and email are global: only a tenant that alone has the
    -- user may change them
    UPDATE ent.users
       SET last_login_at = now(),
           name = CASE WHEN NOT EXISTS (SELECT 1 FROM ent.memberships m
                                         WHERE m.user_id = v_user
                                           AND m.tenant_id <> p_tenant)
                       THEN coalesce(nullif(p_name, ''), name)
                       ELSE name END,
           email = coalesce(email, nullif(p_email, ''))
     WHERE id = v_user;

    RETURN QUERY
    SELECT 'ok'::text, v_user,
           (SELECT string_agg(DISTINCT x.role, ',' ORDER BY x.role)
              FROM (SELECT v_role AS role
                    UNION ALL
                    SELECT g.role
                      FROM ent.group_role_mappings g
                     WHERE g.tenant_id = p_tenant
                       AND g.idp_group = ANY (string_to_array(p_groups, ',')))
                   x),
           v_created;
END
$$;

-- a change to an IdP or the verified domains reaches the nodes' "sso"
-- cache (keyed by tenant id) at once

CREATE OR REPLACE FUNCTION ent.sso_changed()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM ent.invalidate('sso', OLD.tenant_id::text);
    ELSE
        PERFORM ent.invalidate('sso', NEW.tenant_id::text);
        IF TG_OP = 'UPDATE' AND OLD.tenant_id <> NEW.tenant_id THEN
            PERFORM ent.invalidate('sso', OLD.tenant_id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['identity_providers', 'email_domains'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON ent.%I',
                       t || '_invalidate', t);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE '
                       'ON ent.%I FOR EACH ROW '
                       'EXECUTE FUNCTION ent.sso_changed()',
                       t || '_invalidate', t);
    END LOOP;

    FOREACH t IN ARRAY ARRAY['identity_providers', 'users', 'memberships']
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON ent.%I',
                       t || '_updated_at', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON ent.%I '
                       'FOR EACH ROW EXECUTE FUNCTION ent.touch_updated_at()',
                       t || '_updated_at', t);
    END LOOP;
END
$$;
