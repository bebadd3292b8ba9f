-- ngx_ent 009: authorization.
--
-- Roles: the system roles (tenant_id NULL) owner 100 > admin 50 >
-- manager 30 > member 10 > viewer 5, and a tenant's custom roles with
-- their own rank.  Permissions: a catalog (data, not code) and, per role,
-- a set: a permission name, "area:*" (every permission of an area) or
-- "*" (all, present and future).  A system role's set is the platform's
-- (tenant_id NULL); a tenant may add to it or give its custom roles any
-- set.  A user's roles in a tenant: the membership's role, the roles its
-- IdP groups map to, and, when the tenant inherits roles, the active
-- memberships in its ancestors; the highest rank and the union of the
-- permissions follow.  A membership (or user) that is not active denies
-- everything.
--
-- Every change that can change an answer of ent.authz() flushes the
-- nodes' "authz" cache zone (ent.invalidate('authz')): the next request
-- of each user refills it, on every node, within a second.
--
-- Break-glass: platform admins (not a tenant role) ask for time-limited
-- access to a tenant; another platform admin approves; the grant can be
-- revoked; the edge checks it on every request.

ALTER TABLE ent.roles DROP CONSTRAINT IF EXISTS roles_rank_check;
ALTER TABLE ent.roles ADD CONSTRAINT roles_rank_check
    CHECK (rank BETWEEN 0 AND 1000);

INSERT INTO ent.roles (tenant_id, name, rank, description)
SELECT NULL, v.name, v.rank, v.description
  FROM (VALUES ('manager', 30, 'Manages people and projects'),
               ('viewer', 5, 'Reads only')) v (name, rank, description)
 WHERE NOT EXISTS (SELECT 1 FROM ent.roles r
                    WHERE r.tenant_id IS NULL AND r.name = v.name);

-- where a tenant's users start (JIT) and whether its ancestors' roles
-- count here

ALTER TABLE ent.tenants
    ADD COLUMN IF NOT EXISTS jit_role text NOT NULL DEFAULT 'member'
        CHECK (jit_role ~ '^[a-z][a-z0-9_:.-]{0,63}$'),
    ADD COLUMN IF NOT EXISTS inherit_roles boolean NOT NULL DEFAULT false;

CREATE TABLE IF NOT EXISTS ent.permissions (
    name         text PRIMARY KEY
                 CHECK (name ~ '^[a-z][a-z0-9_.-]{0,31}:[a-z][a-z0-9_.-]{0,31}$'),
    description  text CHECK (length(description) <= 256),
    created_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO ent.permissions (name, description) VALUES
    ('repositories:read', 'See repositories'),
    ('repositories:write', 'Change repositories'),
    ('repositories:admin', 'Create and delete repositories'),
    ('projects:read', 'See projects'),
    ('projects:write', 'Change projects'),
    ('projects:delete', 'Delete projects'),
    ('reports:read', 'See reports'),
    ('reports:export', 'Export reports'),
    ('members:read', 'See the members'),
    ('members:invite', 'Invite members'),
    ('members:manage', 'Change roles, suspend, remove members'),
    ('billing:read', 'See invoices and the plan'),
    ('billing:write', 'Change the plan and payment'),
    ('audit_logs:read', 'See the audit log'),
    ('audit_logs:export', 'Export the audit log'),
    ('settings:read', 'See the organization settings'),
    ('settings:write', 'Change the organization settings'),
    ('settings:sso', 'Configure single sign-on and SCIM'),
    ('api_keys:read', 'See API keys'),
    ('api_keys:write', 'Create and revoke API keys'),
    ('integrations:manage', 'Connect and remove integrations')
ON CONFLICT (name) DO NOTHING;

CREATE TABLE IF NOT EXISTS ent.role_permissions (
    tenant_id   uuid REFERENCES ent.tenants (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role ~ '^[a-z][a-z0-9_:.-]{0,63}$'),
    permission  text NOT NULL
                CHECK (permission = '*'
                       OR permission ~ '^[a-z][a-z0-9_.-]{0,31}:(\*|[a-z][a-z0-9_.-]{0,31})$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX IF NOT EXISTS role_permissions_unique
    ON ent.role_permissions
       (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'), role,
        permission);

INSERT INTO ent.role_permissions (tenant_id, role, permission)
SELECT NULL, v.role, v.permission
  FROM (VALUES ('owner', '*'),
               ('admin', 'repositories:*'), ('admin', 'projects:*'),
               ('admin', 'reports:*'), ('admin', 'members:*'),
               ('admin', 'audit_logs:*'), ('admin', 'settings:*'),
               ('admin', 'api_keys:*'), ('admin', 'integrations:manage'),
               ('admin', 'billing:read'),
               ('manager', 'repositories:read'),
               ('manager', 'repositories:write'), ('manager', 'projects:*'),
               ('manager', 'reports:*'), ('manager', 'members:read'),
               ('manager', 'members:invite'),
               ('member', 'repositories:read'),
               ('member', 'repositories:write'), ('member', 'projects:read'),
               ('member', 'projects:write'), ('member', 'reports:read'),
               ('member', 'members:read'),
               ('viewer', 'repositories:read'), ('viewer', 'projects:read'),
               ('viewer', 'reports:read')) v (role, permission)
 WHERE NOT EXISTS (SELECT 1 FROM ent.role_permissions p
                    WHERE p.tenant_id IS NULL AND p.role = v.role
                      AND p.permission = v.permission);

-- platform administrators and their break-glass grants

CREATE TABLE IF NOT EXISTS ent.settings (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
    value       text NOT NULL CHECK (length(value) <= 1024),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO ent.settings (name, value) VALUES ('breakglass_max_minutes', '60')
ON CONFLICT (name) DO NOTHING;

CREATE TABLE IF NOT EXISTS ent.platform_admins (
    user_id     uuid PRIMARY KEY REFERENCES ent.users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ent.breakglass_grants (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES ent.tenants (id)
                   ON DELETE CASCADE,
    admin_id       uuid NOT NULL REFERENCES ent.platform_admins (user_id),
    role           text NOT NULL DEFAULT 'admin'
                   CHECK (role ~ '^[a-z][a-z0-9_:.-]{0,63}$'),
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 256),
    justification  text NOT NULL
                   CHECK (length(justification) BETWEEN 1 AND 4096),
    minutes        integer NOT NULL CHECK (minutes BETWEEN 1 AND 1440),
    requested_at   timestamptz NOT NULL DEFAULT now(),
    approved_by    uuid REFERENCES ent.platform_admins (user_id),
    approved_at    timestamptz,
    expires_at     timestamptz,
    revoked_by     uuid REFERENCES ent.platform_admins (user_id),
    revoked_at     timestamptz,
    CHECK (approved_by IS NULL OR approved_by <> admin_id),
    CHECK ((approved_by IS NULL) = (approved_at IS NULL)
           AND (approved_at IS NULL) = (expires_at IS NULL))
);

CREATE INDEX IF NOT EXISTS breakglass_tenant
    ON ent.breakglass_grants (tenant_id, expires_at);

-- the answer of the edge: a user's standing in a tenant.  p_user is our
-- user id, or (with p_issuer) an IdP subject, for bearer tokens; p_groups
-- the IdP groups, comma-separated.  One row: status ('active',
-- 'suspended', 'none'), the roles (sorted, comma-separated), the highest
-- rank, the permissions (sorted, comma-separated), the user id, and for
-- a break-glass session (p_grant) the grant's end (Unix seconds; else 0):
-- its role, while the grant is approved, unrevoked, unexpired and of
-- this tenant and admin, or 'none'.

-- the group names a user's group mappings are looked up by: the IdP
-- groups of the session (SCIM groups join them in 010)

CREATE OR REPLACE FUNCTION ent.authz_groups(p_tenant uuid, p_user uuid,
                                            p_groups text)
RETURNS text[]
LANGUAGE sql
STABLE
AS $$
    SELECT string_to_array(coalesce(p_groups, ''), ',');
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
        IF p_user ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
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
                                AND p.name LIKE
                                    split_part(rp.permission, ':', 1) || ':%')
                      WHERE rp.role = ANY (v_roles)
                        AND (rp.tenant_id IS NULL
                             OR rp.tenant_id = ANY (v_tenants))), ''),
           v_user,
           v_expires;
END
$$;

-- an approved, unexpired, unrevoked grant: what the edge needs of it

CREATE OR REPLACE FUNCTION ent.breakglass(p_grant uuid)
RETURNS TABLE (tenant_id uuid, admin_id uuid, role text, expires bigint,
               email text, name text)
LANGUAGE sql
STABLE
AS $$
    SELECT g.tenant_id, g.admin_id, g.role,
           extract(epoch FROM g.expires_at)::bigint, u.email, u.name
      FROM ent.breakglass_grants g JOIN ent.users u ON u.id = g.admin_id
     WHERE g.id = p_grant AND g.approved_at IS NOT NULL
       AND g.revoked_at IS NULL AND g.expires_at > now()
       AND u.status = 'active';
$$;

-- what can change ent.authz() or ent.breakglass() flushes "authz"

CREATE OR REPLACE FUNCTION ent.authz_changed()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM ent.invalidate('authz');
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['memberships', 'roles', 'role_permissions',
                             'permissions', 'group_role_mappings', 'users',
                             'user_identities', 'breakglass_grants',
                             'platform_admins']
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON ent.%I',
                       t || '_authz', t);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE '
                       'OR TRUNCATE ON ent.%I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION ent.authz_changed()',
                       t || '_authz', t);
    END LOOP;
END
$$;

DROP TRIGGER IF EXISTS tenants_authz ON ent.tenants;
CREATE TRIGGER tenants_authz
    AFTER UPDATE OF parent_id, inherit_roles, jit_role ON ent.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION ent.authz_changed();

-- a login provisions at the tenant's jit_role (the floor is a setting now
-- that "viewer" ranks below "member")

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

        SELECT t.jit_role INTO v_role
          FROM ent.tenants t
         WHERE t.id = p_tenant;

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
