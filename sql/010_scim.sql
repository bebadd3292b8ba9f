-- ngx_ent 010: SCIM 2.0 (RFC 7643/7644), first part: tokens and Users.
--
-- A SCIM User is a user's record in one tenant: ent.scim_users holds what
-- the IdP provisions (userName, name, emails, ...), keyed by the global
-- ent.users row it made or found, with the tenant's membership beside it
-- (source 'scim').  active=false suspends the membership; DELETE removes
-- it (the SCIM row stays, marked deleted, for the audit trail).  Every
-- change bumps the row's version (the ETag) and notifies the apps
-- (channel ent_scim: tenant, resource, id, operation, version).
--
-- Tokens: SHA-256 of the secret only; the edge looks a token up by that
-- digest and checks its tenant, expiry and revocation.

-- ent.scim_user_json() reads the Groups tables made further down
SET LOCAL check_function_bodies = false;

CREATE TABLE IF NOT EXISTS ent.scim_tokens (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES ent.tenants (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    token_sha256  bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);

CREATE INDEX IF NOT EXISTS scim_tokens_tenant ON ent.scim_tokens (tenant_id);

-- the edge's question: whose token is this, and is it good

CREATE OR REPLACE FUNCTION ent.scim_token(p_sha256 bytea)
RETURNS TABLE (id uuid, tenant_id uuid, state text)
LANGUAGE sql
STABLE
AS $$
    SELECT t.id, t.tenant_id,
           CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked'
                WHEN t.expires_at IS NOT NULL AND t.expires_at <= now()
                THEN 'expired'
                ELSE 'active' END
      FROM ent.scim_tokens t
     WHERE t.token_sha256 = p_sha256;
$$;

CREATE TABLE IF NOT EXISTS ent.scim_users (
    tenant_id      uuid NOT NULL REFERENCES ent.tenants (id) ON DELETE CASCADE,
    id             uuid NOT NULL REFERENCES ent.users (id) ON DELETE CASCADE,
    user_name      text NOT NULL CHECK (length(user_name) BETWEEN 1 AND 256),
    external_id    text CHECK (length(external_id) <= 256),
    display_name   text CHECK (length(display_name) <= 256),
    given_name     text CHECK (length(given_name) <= 256),
    family_name    text CHECK (length(family_name) <= 256),
    formatted_name text CHECK (length(formatted_name) <= 512),
    active         boolean NOT NULL DEFAULT true,
    emails         jsonb NOT NULL DEFAULT '[]'::jsonb
                   CHECK (jsonb_typeof(emails) = 'array'),
    phone_numbers  jsonb NOT NULL DEFAULT '[]'::jsonb
                   CHECK (jsonb_typeof(phone_numbers) = 'array'),
    enterprise     jsonb NOT NULL DEFAULT '{}'::jsonb
                   CHECK (jsonb_typeof(enterprise) = 'object'),
    version        bigint NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    created_by     uuid,                -- the token
    PRIMARY KEY (tenant_id, id)
);

-- userName is case-insensitive and unique that way, among live users
CREATE UNIQUE INDEX IF NOT EXISTS scim_users_user_name
    ON ent.scim_users (tenant_id, lower(user_name))
    WHERE deleted_at IS NULL;

CREATE INDEX IF NOT EXISTS scim_users_external_id
    ON ent.scim_users (tenant_id, external_id)
    WHERE deleted_at IS NULL;

-- the SCIM representation of a user

CREATE OR REPLACE FUNCTION ent.scim_user_json(u ent.scim_users, p_base text)
RETURNS jsonb
LANGUAGE sql
STABLE
AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'schemas', CASE WHEN u.enterprise = '{}'::jsonb
                        THEN jsonb_build_array(
                             'urn:ietf:params:scim:schemas:core:2.0:User')
                        ELSE jsonb_build_array(
                             'urn:ietf:params:scim:schemas:core:2.0:User',
                             'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User')
                   END,
        'id', u.id,
        'externalId', u.external_id,
        'userName', u.user_name,
        'name', nullif(jsonb_strip_nulls(jsonb_build_object(
                    'givenName', u.given_name,
                    'familyName', u.family_name,
                    'formatted', u.formatted_name)), '{}'::jsonb),
        'displayName', u.display_name,
        'active', u.active,
        'emails', nullif(u.emails, '[]'::jsonb),
        'phoneNumbers', nullif(u.phone_numbers, '[]'::jsonb),
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
            nullif(u.enterprise, '{}'::jsonb),
        -- read-only: the groups the user is a direct member of
        'groups', (SELECT jsonb_agg(jsonb_build_object(
                              'value', g.id,
                              '$ref', p_base || '/Groups/' || g.id,
                              'display', g.display_name,
                              'type', 'direct')
                          ORDER BY lower(g.display_name), g.id)
                     FROM ent.scim_group_members m
                     JOIN ent.scim_groups g
                       ON g.tenant_id = m.tenant_id AND g.id = m.group_id
                    WHERE m.tenant_id = u.tenant_id AND m.user_id = u.id
                      AND g.deleted_at IS NULL),
        'meta', jsonb_build_object(
            'resourceType', 'User',
            'created', to_char(u.created_at AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'lastModified', to_char(u.updated_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'location', p_base || '/Users/' || u.id,
            'version', 'W/"' || u.version || '"')));
$$;

-- a SCIM body's attributes into the row's columns; NULL: not valid (the
-- reason in p_error); the caller checks schemas and mutability

CREATE OR REPLACE FUNCTION ent.scim_user_fields(p_body jsonb,
    OUT user_name text, OUT external_id text, OUT display_name text,
    OUT given_name text, OUT family_name text, OUT formatted_name text,
    OUT active boolean, OUT emails jsonb, OUT phone_numbers jsonb,
    OUT enterprise jsonb, OUT error text)
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v  jsonb;
BEGIN
    error := NULL;

    v := p_body -> 'userName';
    IF v IS NULL OR jsonb_typeof(v) <> 'string' OR (v #>> '{}') = '' THEN
        error := 'userName is required and must be a string';
        RETURN;
    END IF;
    user_name := v #>> '{}';

    external_id := p_body ->> 'externalId';
    display_name := p_body ->> 'displayName';
    given_name := p_body #>> '{name,givenName}';
    family_name := p_body #>> '{name,familyName}';
    formatted_name := p_body #>> '{name,formatted}';

    v := p_body -> 'active';
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        active := true;
    ELSIF jsonb_typeof(v) = 'boolean' THEN
        active := v::boolean;
    ELSIF jsonb_typeof(v) = 'string' AND lower(v #>> '{}') IN ('true', 'false')
    THEN
        -- what some IdPs send
        active := lower(v #>> '{}') = 'true';
    ELSE
        error := 'active must be a boolean';
        RETURN;
    END IF;

    emails := coalesce(p_body -> 'emails', '[]'::jsonb);
    phone_numbers := coalesce(p_body -> 'phoneNumbers', '[]'::jsonb);

    IF jsonb_typeof(emails) <> 'array'
       OR jsonb_typeof(phone_numbers) <> 'array'
       OR jsonb_array_length(emails) > 32
       OR jsonb_array_length(phone_numbers) > 32
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(emails) e
                   WHERE jsonb_typeof(e) <> 'object'
                      OR jsonb_typeof(e -> 'value') IS DISTINCT FROM 'string')
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(phone_numbers) e
                   WHERE jsonb_typeof(e) <> 'object'
                      OR jsonb_typeof(e -> 'value') IS DISTINCT FROM 'string')
    THEN
        error := 'emails and phoneNumbers are arrays of objects with a '
                 'string value';
        RETURN;
    END IF;

    enterprise := coalesce(p_body ->
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
        '{}'::jsonb);

    IF jsonb_typeof(enterprise) <> 'object' THEN
        error := 'the enterprise extension must be an object';
        RETURN;
    END IF;

    IF length(user_name) > 256 OR length(external_id) > 256
       OR length(display_name) > 256 OR length(given_name) > 256
       OR length(family_name) > 256 OR length(formatted_name) > 512
       OR length(enterprise::text) > 16384
    THEN
        error := 'a value is too long';
        RETURN;
    END IF;
END
$$;

-- a membership follows the SCIM user's active flag

CREATE OR REPLACE FUNCTION ent.scim_user_membership(p_tenant uuid,
                                                    p_user uuid,
                                                    p_active boolean)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO ent.memberships (tenant_id, user_id, role, status, source)
    SELECT p_tenant, p_user, t.jit_role,
           CASE WHEN p_active THEN 'active' ELSE 'suspended' END, 'scim'
      FROM ent.tenants t WHERE t.id = p_tenant
    ON CONFLICT (tenant_id, user_id) DO UPDATE
       SET status = CASE WHEN p_active THEN 'active' ELSE 'suspended' END;
$$;

CREATE OR REPLACE FUNCTION ent.scim_notify(p_tenant uuid, p_resource text,
                                           p_id uuid, p_op text,
                                           p_version bigint)
RETURNS void
LANGUAGE sql
AS $$
    SELECT pg_notify('ent_scim', json_build_object(
        'tenant', p_tenant, 'resource', p_resource, 'id', p_id,
        'operation', p_op, 'version', p_version)::text);
$$;

-- POST /Users: (status, body); 201 with the resource, or an error's
-- (status, scimType, detail) in body

CREATE OR REPLACE FUNCTION ent.scim_user_create(p_tenant uuid, p_token uuid,
                                                p_body jsonb, p_base text)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    f       record;
    v_user  uuid;
    v_row   ent.scim_users;
BEGIN
    SELECT * INTO f FROM ent.scim_user_fields(p_body);

    IF f.error IS NOT NULL THEN
        RETURN QUERY SELECT 400, jsonb_build_object('scimType', 'invalidValue',
                                                    'detail', f.error);
        RETURN;
    END IF;

    IF ent.erased(p_tenant, NULL, f.user_name, f.external_id,
                  f.emails -> 0 ->> 'value')
    THEN
        RETURN QUERY SELECT 410, jsonb_build_object('detail',
            'this user was erased from the tenant');
        RETURN;
    END IF;

    IF EXISTS (SELECT 1 FROM ent.scim_users s
                WHERE s.tenant_id = p_tenant AND s.deleted_at IS NULL
                  AND lower(s.user_name) = lower(f.user_name))
    THEN
        RETURN QUERY SELECT 409, jsonb_build_object('scimType', 'uniqueness',
            'detail', 'userName is already taken in this tenant');
        RETURN;
    END IF;

    -- the same person already known to this tenant (an SSO login made
    -- them), by userName or a work email, never by other client values
    SELECT u.id INTO v_user
      FROM ent.users u JOIN ent.memberships m ON m.user_id = u.id
     WHERE m.tenant_id = p_tenant
       AND NOT EXISTS (SELECT 1 FROM ent.scim_users s
                        WHERE s.tenant_id = p_tenant AND s.id = u.id
                          AND s.deleted_at IS NULL)
       AND lower(u.email) IN (lower(f.user_name),
                              lower(f.emails -> 0 ->> 'value'))
     ORDER BY u.created_at
     LIMIT 1;

    IF v_user IS NULL THEN
        INSERT INTO ent.users (email, name)
        VALUES (coalesce((SELECT e ->> 'value'
                            FROM jsonb_array_elements(f.emails) e
                           WHERE (e ->> 'primary')::text = 'true'
                           LIMIT 1),
                         f.emails -> 0 ->> 'value',
                         CASE WHEN f.user_name LIKE '%@%' THEN f.user_name
                         END),
                coalesce(f.display_name,
                         nullif(concat_ws(' ', f.given_name, f.family_name),
                                '')))
        RETURNING id INTO v_user;
    END IF;

    DELETE FROM ent.scim_users s
     WHERE s.tenant_id = p_tenant AND s.id = v_user
       AND s.deleted_at IS NOT NULL;

    INSERT INTO ent.scim_users (tenant_id, id, user_name, external_id,
                                display_name, given_name, family_name,
                                formatted_name, active, emails,
                                phone_numbers, enterprise, created_by)
    VALUES (p_tenant, v_user, f.user_name, f.external_id, f.display_name,
            f.given_name, f.family_name, f.formatted_name, f.active,
            f.emails, f.phone_numbers, f.enterprise, p_token)
    RETURNING * INTO v_row;

    PERFORM ent.scim_user_membership(p_tenant, v_user, f.active);
    PERFORM ent.scim_notify(p_tenant, 'User', v_user, 'create', 1);
    PERFORM ent.event(p_tenant::text, v_user::text, 'scim', 'success',
                      'User created', NULL,
                      json_build_object('token', p_token)::text);

    RETURN QUERY SELECT 201, ent.scim_user_json(v_row, p_base);
END
$$;

-- GET /Users/{id}

CREATE OR REPLACE FUNCTION ent.scim_user_get(p_tenant uuid, p_id text,
                                             p_base text)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
STABLE
AS $$
#variable_conflict use_column
DECLARE
    v_row  ent.scim_users;
BEGIN
    IF p_id !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN
        RETURN QUERY SELECT 404, jsonb_build_object('detail',
                                                    'no such User');
        RETURN;
    END IF;

    SELECT * INTO v_row FROM ent.scim_users s
     WHERE s.tenant_id = p_tenant AND s.id = p_id::uuid
       AND s.deleted_at IS NULL;

    IF NOT FOUND THEN
        RETURN QUERY SELECT CASE WHEN ent.erased(p_tenant, p_id, NULL, NULL,
                                                 NULL)
                                 THEN 410 ELSE 404 END,
                            jsonb_build_object('detail', 'no such User');
        RETURN;
    END IF;

    RETURN QUERY SELECT 200, ent.scim_user_json(v_row, p_base);
END
$$;

-- PUT /Users/{id}: replaces; p_if_match the version the client saw (NULL:
-- none asked)

CREATE OR REPLACE FUNCTION ent.scim_user_replace(p_tenant uuid, p_token uuid,
                                                 p_id text, p_body jsonb,
                                                 p_if_match bigint,
                                                 p_base text)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    f      record;
    v_row  ent.scim_users;
BEGIN
    IF p_id !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN
        RETURN QUERY SELECT 404, jsonb_build_object('detail',
                                                    'no such User');
        RETURN;
    END IF;

    SELECT * INTO v_row FROM ent.scim_users s
     WHERE s.tenant_id = p_tenant AND s.id = p_id::uuid
       AND s.deleted_at IS NULL
       FOR UPDATE;

    IF NOT FOUND THEN
        RETURN QUERY SELECT CASE WHEN ent.erased(p_tenant, p_id, NULL, NULL,
                                                 NULL)
                                 THEN 410 ELSE 404 END,
                            jsonb_build_object('detail', 'no such User');
        RETURN;
    END IF;

    IF p_if_match IS NOT NULL AND p_if_match <> v_row.version THEN
        RETURN QUERY SELECT 412, jsonb_build_object('detail',
            'the User changed since that version');
        RETURN;
    END IF;

    IF p_body ? 'id' AND p_body ->> 'id' IS DISTINCT FROM p_id THEN
        RETURN QUERY SELECT 400, jsonb_build_object('scimType', 'mutability',
            'detail', 'id cannot change');
        RETURN;
    END IF;

    SELECT * INTO f FROM ent.scim_user_fields(p_body);

    IF f.error IS NOT NULL THEN
        RETURN QUERY SELECT 400, jsonb_build_object('scimType', 'invalidValue',
                                                    'detail', f.error);
        RETURN;
    END IF;

    IF EXISTS (SELECT 1 FROM ent.scim_users s
                WHERE s.tenant_id = p_tenant AND s.deleted_at IS NULL
                  AND s.id <> v_row.id
                  AND lower(s.user_name) = lower(f.user_name))
    THEN
        RETURN QUERY SELECT 409, jsonb_build_object('scimType', 'uniqueness',
            'detail', 'userName is already taken in this tenant');
        RETURN;
    END IF;

    UPDATE ent.scim_users s
       SET user_name = f.user_name, external_id = f.external_id,
           display_name = f.display_name, given_name = f.given_name,
           family_name = f.family_name, formatted_name = f.formatted_name,
           active = f.active, emails = f.emails,
           phone_numbers = f.phone_numbers, enterprise = f.enterprise,
           version = s.version + 1, updated_at = now()
     WHERE s.tenant_id = p_tenant AND s.id = v_row.id
    RETURNING * INTO v_row;

    PERFORM ent.scim_user_membership(p_tenant, v_row.id, f.active);
    PERFORM ent.scim_notify(p_tenant, 'User', v_row.id, 'replace',
                            v_row.version);
    PERFORM ent.event(p_tenant::text, v_row.id::text, 'scim', 'success',
                      CASE WHEN f.active THEN 'User replaced'
                           ELSE 'User replaced, inactive' END, NULL,
                      json_build_object('token', p_token)::text);

    RETURN QUERY SELECT 200, ent.scim_user_json(v_row, p_base);
END
$$;

-- DELETE /Users/{id}: the membership goes, the SCIM row is marked

CREATE OR REPLACE FUNCTION ent.scim_user_delete(p_tenant uuid, p_token uuid,
                                                p_id text, p_if_match bigint)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_row  ent.scim_users;
BEGIN
    IF p_id !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN
        RETURN QUERY SELECT 404, jsonb_build_object('detail',
                                                    'no such User');
        RETURN;
    END IF;

    SELECT * INTO v_row FROM ent.scim_users s
     WHERE s.tenant_id = p_tenant AND s.id = p_id::uuid
       AND s.deleted_at IS NULL
       FOR UPDATE;

    IF NOT FOUND THEN
        RETURN QUERY SELECT CASE WHEN ent.erased(p_tenant, p_id, NULL, NULL,
                                                 NULL)
                                 THEN 410 ELSE 404 END,
                            jsonb_build_object('detail', 'no such User');
        RETURN;
    END IF;

    IF p_if_match IS NOT NULL AND p_if_match <> v_row.version THEN
        RETURN QUERY SELECT 412, jsonb_build_object('detail',
            'the User changed since that version');
        RETURN;
    END IF;

    UPDATE ent.scim_users s
       SET deleted_at = now(), active = false, version = s.version + 1,
           updated_at = now()
     WHERE s.tenant_id = p_tenant AND s.id = v_row.id;

    DELETE FROM ent.memberships m
     WHERE m.tenant_id = p_tenant AND m.user_id = v_row.id;

    PERFORM ent.scim_notify(p_tenant, 'User', v_row.id, 'delete',
                            v_row.version + 1);
    PERFORM ent.event(p_tenant::text, v_row.id::text, 'scim', 'success',
                      'User deleted', NULL,
                      json_build_object('token', p_token)::text);

    RETURN QUERY SELECT 204, NULL::jsonb;
END
$$;

-- GET /Users?filter=...: p_where a boolean SQL expression made by the
-- edge's filter compiler from an allow-list (it refers to the row as "u"
-- and to the values as $1[n], never containing a value), p_params the
-- values, p_sort one of the allowed sort columns

CREATE OR REPLACE FUNCTION ent.scim_user_list(p_tenant uuid, p_where text,
                                              p_params text[],
                                              p_sort text, p_desc boolean,
                                              p_start integer,
                                              p_count integer, p_base text)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
STABLE
AS $$
#variable_conflict use_column
DECLARE
    v_total    bigint;
    v_res      jsonb;
    v_order    text;
BEGIN
    v_order := CASE p_sort
                   WHEN 'username' THEN 'lower(u.user_name)'
                   WHEN 'externalid' THEN 'u.external_id'
                   WHEN 'displayname' THEN 'lower(u.display_name)'
                   WHEN 'name.familyname' THEN 'lower(u.family_name)'
                   WHEN 'name.givenname' THEN 'lower(u.given_name)'
                   WHEN 'meta.created' THEN 'u.created_at'
                   WHEN 'meta.lastmodified' THEN 'u.updated_at'
                   ELSE 'u.created_at'
               END
               || CASE WHEN p_desc THEN ' DESC' ELSE '' END
               || ', u.id';

    IF coalesce(p_where, 'true') = 'true'
       AND to_regclass('ent.scim_counts') IS NOT NULL
    THEN
        -- unfiltered: the count the trigger keeps (migration 012)
        EXECUTE 'SELECT coalesce((SELECT c.users FROM ent.scim_counts c '
                'WHERE c.tenant_id = $1), 0)'
           INTO v_total
          USING p_tenant;
    ELSE
        EXECUTE format('SELECT count(*) FROM ent.scim_users u '
                       'WHERE u.tenant_id = $2 AND u.deleted_at IS NULL '
                       'AND (%s)', coalesce(p_where, 'true'))
           INTO v_total
          USING p_params, p_tenant;
    END IF;

    -- the page's ids first (an index-only walk when the order has an
    -- index), then only those rows
    EXECUTE format('SELECT coalesce(jsonb_agg(ent.scim_user_json(u, $3) '
                   'ORDER BY %s), ''[]''::jsonb) '
                   'FROM ent.scim_users u '
                   'WHERE u.tenant_id = $2 AND u.id IN ('
                   '  SELECT u.id FROM ent.scim_users u '
                   '   WHERE u.tenant_id = $2 AND u.deleted_at IS NULL '
                   '     AND (%s) '
                   '   ORDER BY %s OFFSET $4 LIMIT $5)',
                   v_order, coalesce(p_where, 'true'), v_order)
       INTO v_res
      USING p_params, p_tenant, p_base, greatest(p_start - 1, 0),
            greatest(p_count, 0);

    RETURN QUERY SELECT 200, jsonb_build_object(
        'schemas', jsonb_build_array(
            'urn:ietf:params:scim:api:messages:2.0:ListResponse'),
        'totalResults', v_total,
        'startIndex', greatest(p_start, 1),
        'itemsPerPage', jsonb_array_length(v_res),
        'Resources', v_res);
END
$$;

-- a revoked or expired-on-purpose token stops working on every node at once

CREATE OR REPLACE FUNCTION ent.scim_tokens_changed()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM ent.invalidate('scim_tokens');
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS scim_tokens_invalidate ON ent.scim_tokens;
CREATE TRIGGER scim_tokens_invalidate
    AFTER UPDATE OR DELETE ON ent.scim_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION ent.scim_tokens_changed();

-- Groups: a tenant's groups and their members (users of the tenant).  A
-- group's displayName is what ent.group_role_mappings names: a member of
-- a mapped group holds the mapped role (ent.authz() reads them live)

CREATE TABLE IF NOT EXISTS ent.scim_groups (
    tenant_id     uuid NOT NULL REFERENCES ent.tenants (id) ON DELETE CASCADE,
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 256),
    external_id   text CHECK (length(external_id) <= 256),
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    PRIMARY KEY (tenant_id, id)
);

CREATE UNIQUE INDEX IF NOT EXISTS scim_groups_display_name
    ON ent.scim_groups (tenant_id, lower(display_name))
    WHERE deleted_at IS NULL;

CREATE TABLE IF NOT EXISTS ent.scim_group_members (
    tenant_id   uuid NOT NULL,
    group_id    uuid NOT NULL,
    user_id     uuid NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id)
        REFERENCES ent.scim_groups (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS scim_group_members_user
    ON ent.scim_group_members (tenant_id, user_id);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['scim_groups', 'scim_group_members'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON ent.%I',
                       t || '_authz', t);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE '
                       'OR TRUNCATE ON ent.%I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION ent.authz_changed()',
                       t || '_authz', t);
    END LOOP;
END
$$;

-- the groups that select a user's group mappings: the session's IdP
-- groups and the SCIM groups the user is a member of

CREATE OR REPLACE FUNCTION ent.authz_groups(p_tenant uuid, p_user uuid,
                                            p_groups text)
RETURNS text[]
LANGUAGE sql
STABLE
AS $$
    SELECT string_to_array(coalesce(p_groups, ''), ',')
           || ARRAY(SELECT g.display_name
                      FROM ent.scim_group_members m
                      JOIN ent.scim_groups g
                        ON g.tenant_id = m.tenant_id AND g.id = m.group_id
                     WHERE m.tenant_id = p_tenant AND m.user_id = p_user
                       AND g.deleted_at IS NULL);
$$;

CREATE OR REPLACE FUNCTION ent.scim_group_json(g ent.scim_groups, p_base text,
                                               p_members boolean)
RETURNS jsonb
LANGUAGE sql
STABLE
AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'schemas', jsonb_build_array(
                       'urn:ietf:params:scim:schemas:core:2.0:Group'),
        'id', g.id,
        'externalId', g.external_id,
        'displayName', g.display_name,
        'members', CASE WHEN p_members THEN
            coalesce((SELECT jsonb_agg(jsonb_build_object(
                                 'value', m.user_id,
                                 '$ref', p_base || '/Users/' || m.user_id,
                                 'display', u.user_name)
                             ORDER BY m.added_at, m.user_id)
                        FROM ent.scim_group_members m
                        LEFT JOIN ent.scim_users u
                          ON u.tenant_id = m.tenant_id AND u.id = m.user_id
                       WHERE m.tenant_id = g.tenant_id
                         AND m.group_id = g.id), '[]'::jsonb) END,
        'meta', jsonb_build_object(
            'resourceType', 'Group',
            'created', to_char(g.created_at AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'lastModified', to_char(g.updated_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'location', p_base || '/Groups/' || g.id,
            'version', 'W/"' || g.version || '"')));
$$;

-- members: a jsonb array of {"value": "<user id>"}; an id that is not a
-- live SCIM user of the tenant is an error (its index in p_bad)

CREATE OR REPLACE FUNCTION ent.scim_group_add_members(p_tenant uuid,
                                                      p_group uuid,
                                                      p_members jsonb)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v  jsonb;
BEGIN
    IF p_members IS NULL OR jsonb_typeof(p_members) <> 'array' THEN
        RETURN 'members must be an array of {"value": id}';
    END IF;

    FOR v IN SELECT * FROM jsonb_array_elements(p_members) LOOP
        IF jsonb_typeof(v) <> 'object' OR jsonb_typeof(v -> 'value')
                                          IS DISTINCT FROM 'string'
           OR (v ->> 'value') !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
           OR NOT EXISTS (SELECT 1 FROM ent.scim_users u
                           WHERE u.tenant_id = p_tenant
                             AND u.id = (v ->> 'value')::uuid
                             AND u.deleted_at IS NULL)
        THEN
            RETURN 'a member is not a User of this tenant';
        END IF;

        INSERT INTO ent.scim_group_members (tenant_id, group_id, user_id)
        VALUES (p_tenant, p_group, (v ->> 'value')::uuid)
        ON CONFLICT DO NOTHING;
    END LOOP;

    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ent.scim_group_create(p_tenant uuid, p_token uuid,
                                                 p_body jsonb, p_base text)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_name  text;
    v_err   text;
    v_row   ent.scim_groups;
BEGIN
    v_name := p_body ->> 'displayName';

    IF jsonb_typeof(p_body -> 'displayName') IS DISTINCT FROM 'string'
       OR v_name = '' OR length(v_name) > 256
       OR length(p_body ->> 'externalId') > 256
    THEN
        RETURN QUERY SELECT 400, jsonb_build_object('scimType',
            'invalidValue', 'detail',
            'displayName is required: a string of 1 to 256 characters');
        RETURN;
    END IF;

    IF EXISTS (SELECT 1 FROM ent.scim_groups g
                WHERE g.tenant_id = p_tenant AND g.deleted_at IS NULL
                  AND lower(g.display_name) = lower(v_name))
    THEN
        RETURN QUERY SELECT 409, jsonb_build_object('scimType', 'uniqueness',
            'detail', 'displayName is already taken in this tenant');
        RETURN;
    END IF;

    INSERT INTO ent.scim_groups (tenant_id, display_name, external_id)
    VALUES (p_tenant, v_name, p_body ->> 'externalId')
    RETURNING * INTO v_row;

    IF p_body ? 'members' THEN
        v_err := ent.scim_group_add_members(p_tenant, v_row.id,
                                            p_body -> 'members');
        IF v_err IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = v_err;
        END IF;
    END IF;

    PERFORM ent.scim_notify(p_tenant, 'Group', v_row.id, 'create', 1);
    PERFORM ent.event(p_tenant::text, NULL, 'scim', 'success',
                      'Group created', NULL,
                      json_build_object('token', p_token,
                                        'group', v_row.id)::text);

    RETURN QUERY SELECT 201, ent.scim_group_json(v_row, p_base, true);
EXCEPTION WHEN raise_exception THEN
    RETURN QUERY SELECT 400, jsonb_build_object('scimType', 'invalidValue',
                                                'detail', SQLERRM);
END
$$;

CREATE OR REPLACE FUNCTION ent.scim_group_get(p_tenant uuid, p_id text,
                                              p_base text, p_members boolean)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
STABLE
AS $$
#variable_conflict use_column
DECLARE
    v_row  ent.scim_groups;
BEGIN
    IF p_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN
        SELECT * INTO v_row FROM ent.scim_groups g
         WHERE g.tenant_id = p_tenant AND g.id = p_id::uuid
           AND g.deleted_at IS NULL;
    END IF;

    IF v_row.id IS NULL THEN
        RETURN QUERY SELECT 404, jsonb_build_object('detail',
                                                    'no such Group');
        RETURN;
    END IF;

    RETURN QUERY SELECT 200, ent.scim_group_json(v_row, p_base, p_members);
END
$$;

-- PATCH and PUT of a group, as actions the edge made of the request:
-- {"displayName": x?, "externalId": x?, "replace_members": [..]?,
--  "add": [..]?, "remove": [ids]?, "remove_all": true?} — per-row member
-- changes: adding one member to a big group does not read the group

CREATE OR REPLACE FUNCTION ent.scim_group_change(p_tenant uuid, p_token uuid,
                                                 p_id text, p_actions jsonb,
                                                 p_if_match bigint,
                                                 p_base text,
                                                 p_members boolean)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_row  ent.scim_groups;
    v_err  text;
    v_name text;
BEGIN
    IF p_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN
        SELECT * INTO v_row FROM ent.scim_groups g
         WHERE g.tenant_id = p_tenant AND g.id = p_id::uuid
           AND g.deleted_at IS NULL
           FOR UPDATE;
    END IF;

    IF v_row.id IS NULL THEN
        RETURN QUERY SELECT 404, jsonb_build_object('detail',
                                                    'no such Group');
        RETURN;
    END IF;

    IF p_if_match IS NOT NULL AND p_if_match <> v_row.version THEN
        RETURN QUERY SELECT 412, jsonb_build_object('detail',
            'the Group changed since that version');
        RETURN;
    END IF;

    IF p_actions ? 'displayName' THEN
        v_name := p_actions ->> 'displayName';

        IF jsonb_typeof(p_actions -> 'displayName') <> 'string'
           OR v_name = '' OR length(v_name) > 256
        THEN
            RETURN QUERY SELECT 400, jsonb_build_object('scimType',
                'invalidValue', 'detail',
                'displayName: a string of 1 to 256 characters');
            RETURN;
        END IF;

        IF EXISTS (SELECT 1 FROM ent.scim_groups g
                    WHERE g.tenant_id = p_tenant AND g.deleted_at IS NULL
                      AND g.id <> v_row.id
                      AND lower(g.display_name) = lower(v_name))
        THEN
            RETURN QUERY SELECT 409, jsonb_build_object('scimType',
                'uniqueness', 'detail',
                'displayName is already taken in this tenant');
            RETURN;
        END IF;

        UPDATE ent.scim_groups g SET display_name = v_name
         WHERE g.tenant_id = p_tenant AND g.id = v_row.id;
    END IF;

    IF p_actions ? 'externalId' THEN
        UPDATE ent.scim_groups g
           SET external_id = left(p_actions ->> 'externalId', 256)
         WHERE g.tenant_id = p_tenant AND g.id = v_row.id;
    END IF;

    IF p_actions ? 'replace_members' OR (p_actions ->> 'remove_all') = 'true'
    THEN
        DELETE FROM ent.scim_group_members m
         WHERE m.tenant_id = p_tenant AND m.group_id = v_row.id;
    END IF;

    IF p_actions ? 'remove' THEN
        DELETE FROM ent.scim_group_members m
         WHERE m.tenant_id = p_tenant AND m.group_id = v_row.id
           AND m.user_id::text IN (SELECT jsonb_array_elements_text(
                                              p_actions -> 'remove'));
    END IF;

    IF p_actions ? 'replace_members' OR p_actions ? 'add' THEN
        v_err := ent.scim_group_add_members(p_tenant, v_row.id,
                     coalesce(p_actions -> 'replace_members', '[]'::jsonb)
                     || coalesce(p_actions -> 'add', '[]'::jsonb));
        IF v_err IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = v_err;
        END IF;
    END IF;

    UPDATE ent.scim_groups g
       SET version = g.version + 1, updated_at = now()
     WHERE g.tenant_id = p_tenant AND g.id = v_row.id
    RETURNING * INTO v_row;

    PERFORM ent.scim_notify(p_tenant, 'Group', v_row.id, 'update',
                            v_row.version);
    PERFORM ent.event(p_tenant::text, NULL, 'scim', 'success',
                      'Group changed', NULL,
                      json_build_object('token', p_token,
                                        'group', v_row.id)::text);

    RETURN QUERY SELECT 200, ent.scim_group_json(v_row, p_base, p_members);
EXCEPTION WHEN raise_exception THEN
    RETURN QUERY SELECT 400, jsonb_build_object('scimType', 'invalidValue',
                                                'detail', SQLERRM);
END
$$;

CREATE OR REPLACE FUNCTION ent.scim_group_delete(p_tenant uuid, p_token uuid,
                                                 p_id text,
                                                 p_if_match bigint)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_row  ent.scim_groups;
BEGIN
    IF p_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN
        SELECT * INTO v_row FROM ent.scim_groups g
         WHERE g.tenant_id = p_tenant AND g.id = p_id::uuid
           AND g.deleted_at IS NULL
           FOR UPDATE;
    END IF;

    IF v_row.id IS NULL THEN
        RETURN QUERY SELECT 404, jsonb_build_object('detail',
                                                    'no such Group');
        RETURN;
    END IF;

    IF p_if_match IS NOT NULL AND p_if_match <> v_row.version THEN
        RETURN QUERY SELECT 412, jsonb_build_object('detail',
            'the Group changed since that version');
        RETURN;
    END IF;

    UPDATE ent.scim_groups g
       SET deleted_at = now(), version = g.version + 1, updated_at = now()
     WHERE g.tenant_id = p_tenant AND g.id = v_row.id;

    DELETE FROM ent.scim_group_members m
     WHERE m.tenant_id = p_tenant AND m.group_id = v_row.id;

    PERFORM ent.scim_notify(p_tenant, 'Group', v_row.id, 'delete',
                            v_row.version + 1);
    PERFORM ent.event(p_tenant::text, NULL, 'scim', 'success',
                      'Group deleted', NULL,
                      json_build_object('token', p_token,
                                        'group', v_row.id)::text);

    RETURN QUERY SELECT 204, NULL::jsonb;
END
$$;

CREATE OR REPLACE FUNCTION ent.scim_group_list(p_tenant uuid, p_where text,
                                               p_params text[],
                                               p_sort text, p_desc boolean,
                                               p_start integer,
                                               p_count integer, p_base text,
                                               p_members boolean)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
STABLE
AS $$
#variable_conflict use_column
DECLARE
    v_total  bigint;
    v_res    jsonb;
    v_order  text;
BEGIN
    v_order := CASE p_sort
                   WHEN 'displayname' THEN 'lower(u.display_name)'
                   WHEN 'externalid' THEN 'u.external_id'
                   WHEN 'meta.created' THEN 'u.created_at'
                   WHEN 'meta.lastmodified' THEN 'u.updated_at'
                   ELSE 'u.created_at'
               END
               || CASE WHEN p_desc THEN ' DESC' ELSE '' END
               || ', u.id';

    EXECUTE format('SELECT count(*) FROM ent.scim_groups u '
                   'WHERE u.tenant_id = $2 AND u.deleted_at IS NULL '
                   'AND (%s)', coalesce(p_where, 'true'))
       INTO v_total
      USING p_params, p_tenant;

    EXECUTE format('SELECT coalesce(jsonb_agg(ent.scim_group_json(u, $3, '
                   '$6) ORDER BY %s), ''[]''::jsonb) '
                   'FROM ent.scim_groups u '
                   'WHERE u.tenant_id = $2 AND u.id IN ('
                   '  SELECT u.id FROM ent.scim_groups u '
                   '   WHERE u.tenant_id = $2 AND u.deleted_at IS NULL '
                   '     AND (%s) '
                   '   ORDER BY %s OFFSET $4 LIMIT $5)',
                   v_order, coalesce(p_where, 'true'), v_order)
       INTO v_res
      USING p_params, p_tenant, p_base, greatest(p_start - 1, 0),
            greatest(p_count, 0), p_members;

    RETURN QUERY SELECT 200, jsonb_build_object(
        'schemas', jsonb_build_array(
            'urn:ietf:params:scim:api:messages:2.0:ListResponse'),
        'totalResults', v_total,
        'startIndex', greatest(p_start, 1),
        'itemsPerPage', jsonb_array_length(v_res),
        'Resources', v_res);
END
$$;
