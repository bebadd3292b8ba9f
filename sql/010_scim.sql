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
        RETURN QUERY SELECT 404, jsonb_build_object('detail',
                                                    'no such User');
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
        RETURN QUERY SELECT 404, jsonb_build_object('detail',
                                                    'no such User');
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
        RETURN QUERY SELECT 404, jsonb_build_object('detail',
                                                    'no such User');
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

    EXECUTE format('SELECT count(*) FROM ent.scim_users u '
                   'WHERE u.tenant_id = $2 AND u.deleted_at IS NULL '
                   'AND (%s)', coalesce(p_where, 'true'))
       INTO v_total
      USING p_params, p_tenant;

    EXECUTE format('SELECT coalesce(jsonb_agg(ent.scim_user_json(x.u, $3) '
                   'ORDER BY x.ord), ''[]''::jsonb) '
                   'FROM (SELECT u, row_number() OVER (ORDER BY %s) ord '
                   '        FROM ent.scim_users u '
                   '       WHERE u.tenant_id = $2 AND u.deleted_at IS NULL '
                   '         AND (%s) '
                   '       ORDER BY %s OFFSET $4 LIMIT $5) x',
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
