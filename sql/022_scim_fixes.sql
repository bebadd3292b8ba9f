-- ngx_ent 022: SCIM fixes.
--
-- 1. Deleting a User left its group memberships: the group kept listing
--    the deleted user, a members filter still matched it, and when the
--    same person came back (a JIT SSO login, or a SCIM POST linking by
--    email, reuse the ent.users row) the roles of the old groups came back
--    with them.  ent.scim_user_delete() now removes the user's memberships,
--    each group a new version and a notification, as any member change;
--    the memberships already left behind are removed here.  A group's
--    members and ent.authz_groups() read only live SCIM users as well, so
--    a member added while the user was being deleted is not one.
-- 2. If-Match may be a list of ETags (RFC 7232 3.1): the edge sends the
--    versions as an array, ent.scim_if_match() makes of it the one
--    version the functions compare.
-- 3. Two requests making the same userName or group displayName at once
--    both passed the EXISTS check; the second's INSERT failed on the
--    unique index and the client got a 503.  That unique_violation is now
--    the check's own 409 uniqueness (a User's in the 015 wrappers).

CREATE OR REPLACE FUNCTION ent.scim_user_delete(p_tenant uuid, p_token uuid,
                                                p_id text, p_if_match bigint)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_row    ent.scim_users;
    v_group  record;
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

    -- its groups: a member change each (the members' statement trigger
    -- flushes the authz cache)
    FOR v_group IN
        WITH gone AS (
            DELETE FROM ent.scim_group_members m
             WHERE m.tenant_id = p_tenant AND m.user_id = v_row.id
            RETURNING m.group_id)
        UPDATE ent.scim_groups g
           SET version = g.version + 1, updated_at = now()
          FROM gone
         WHERE g.tenant_id = p_tenant AND g.id = gone.group_id
           AND g.deleted_at IS NULL
        RETURNING g.id, g.version
    LOOP
        PERFORM ent.scim_notify(p_tenant, 'Group', v_group.id, 'update',
                                v_group.version);
    END LOOP;

    PERFORM ent.scim_notify(p_tenant, 'User', v_row.id, 'delete',
                            v_row.version + 1);
    PERFORM ent.event(p_tenant::text, v_row.id::text, 'scim', 'success',
                      'User deleted', NULL,
                      json_build_object('token', p_token)::text);

    RETURN QUERY SELECT 204, NULL::jsonb;
END
$$;

-- the memberships deleted Users left before this migration

WITH gone AS (
    DELETE FROM ent.scim_group_members m
     WHERE NOT EXISTS (SELECT 1 FROM ent.scim_users s
                        WHERE s.tenant_id = m.tenant_id
                          AND s.id = m.user_id AND s.deleted_at IS NULL)
    RETURNING m.tenant_id, m.group_id)
UPDATE ent.scim_groups g
   SET version = g.version + 1, updated_at = now()
  FROM (SELECT DISTINCT tenant_id, group_id FROM gone) d
 WHERE g.tenant_id = d.tenant_id AND g.id = d.group_id;

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
                      JOIN ent.scim_users u
                        ON u.tenant_id = m.tenant_id AND u.id = m.user_id
                     WHERE m.tenant_id = p_tenant AND m.user_id = p_user
                       AND g.deleted_at IS NULL AND u.deleted_at IS NULL);
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
                        JOIN ent.scim_users u
                          ON u.tenant_id = m.tenant_id AND u.id = m.user_id
                       WHERE m.tenant_id = g.tenant_id
                         AND m.group_id = g.id
                         AND u.deleted_at IS NULL), '[]'::jsonb) END,
        'meta', jsonb_build_object(
            'resourceType', 'Group',
            'created', to_char(g.created_at AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'lastModified', to_char(g.updated_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'location', p_base || '/Groups/' || g.id,
            'version', 'W/"' || g.version || '"')));
$$;

-- If-Match's versions (NULL: no condition) as the one version the
-- functions compare: the only one, or the resource's current version when
-- the list has it, or -1, which no version is.  A change between this
-- read and the function's locked one is a 412, as for a single version.

CREATE OR REPLACE FUNCTION ent.scim_if_match(p_tenant uuid, p_resource text,
                                             p_id text, p_versions bigint[])
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
    SELECT CASE
        WHEN p_versions IS NULL THEN NULL
        WHEN cardinality(p_versions) = 1 THEN p_versions[1]
        WHEN p_id !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        THEN -1
        ELSE coalesce(
            CASE p_resource
                WHEN 'User' THEN
                    (SELECT s.version FROM ent.scim_users s
                      WHERE s.tenant_id = p_tenant AND s.id = p_id::uuid
                        AND s.deleted_at IS NULL
                        AND s.version = ANY (p_versions))
                WHEN 'Group' THEN
                    (SELECT g.version FROM ent.scim_groups g
                      WHERE g.tenant_id = p_tenant AND g.id = p_id::uuid
                        AND g.deleted_at IS NULL
                        AND g.version = ANY (p_versions))
            END, -1)
    END;
$$;

-- the 015 wrappers of User create and replace: the same userName (or
-- person) made by a concurrent request, after the check, is the check's
-- 409, not an error

CREATE OR REPLACE FUNCTION ent.scim_user_uniqueness(p_con text)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT 409, jsonb_build_object('scimType', 'uniqueness', 'detail',
               CASE WHEN p_con = 'scim_users_user_name'
                    THEN 'userName is already taken in this tenant'
                    ELSE 'this person is already a User of this tenant'
               END);
$$;

CREATE OR REPLACE FUNCTION ent.scim_user_create(p_tenant uuid, p_token uuid,
                                                p_body jsonb, p_base text)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    x      record;
    r      record;
    v_con  text;
BEGIN
    SELECT * INTO x FROM ent.scim_user_extra(p_body);

    IF x.error IS NOT NULL THEN
        RETURN QUERY SELECT 400, jsonb_build_object('scimType', 'invalidValue',
                                                    'detail', x.error);
        RETURN;
    END IF;

    FOR r IN SELECT * FROM ent.scim_user_create_core(p_tenant, p_token,
                                                      p_body, p_base)
    LOOP
        RETURN QUERY SELECT r.status,
            ent.scim_user_keep_extra(p_tenant, r.status, r.body, x.extra,
                                     p_base);
    END LOOP;
EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS v_con = CONSTRAINT_NAME;
    IF v_con IS NULL
       OR v_con NOT IN ('scim_users_user_name', 'scim_users_pkey')
    THEN
        RAISE;
    END IF;
    RETURN QUERY SELECT * FROM ent.scim_user_uniqueness(v_con);
END
$$;

CREATE OR REPLACE FUNCTION ent.scim_user_replace(p_tenant uuid, p_token uuid,
                                                 p_id text, p_body jsonb,
                                                 p_if_match bigint,
                                                 p_base text)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    x      record;
    r      record;
    v_con  text;
BEGIN
    SELECT * INTO x FROM ent.scim_user_extra(p_body);

    IF x.error IS NOT NULL THEN
        RETURN QUERY SELECT 400, jsonb_build_object('scimType', 'invalidValue',
                                                    'detail', x.error);
        RETURN;
    END IF;

    FOR r IN SELECT * FROM ent.scim_user_replace_core(p_tenant, p_token, p_id,
                                                       p_body, p_if_match,
                                                       p_base)
    LOOP
        RETURN QUERY SELECT r.status,
            ent.scim_user_keep_extra(p_tenant, r.status, r.body, x.extra,
                                     p_base);
    END LOOP;
EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS v_con = CONSTRAINT_NAME;
    IF v_con IS DISTINCT FROM 'scim_users_user_name' THEN
        RAISE;
    END IF;
    RETURN QUERY SELECT * FROM ent.scim_user_uniqueness(v_con);
END
$$;

-- 010's Group create and change, the same way

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
    v_con   text;
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
WHEN unique_violation THEN
    -- the same name made by a concurrent request, after the check
    GET STACKED DIAGNOSTICS v_con = CONSTRAINT_NAME;
    IF v_con IS DISTINCT FROM 'scim_groups_display_name' THEN
        RAISE;
    END IF;
    RETURN QUERY SELECT 409, jsonb_build_object('scimType', 'uniqueness',
        'detail', 'displayName is already taken in this tenant');
END
$$;

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
    v_con  text;
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
WHEN unique_violation THEN
    -- the same name made by a concurrent request, after the check
    GET STACKED DIAGNOSTICS v_con = CONSTRAINT_NAME;
    IF v_con IS DISTINCT FROM 'scim_groups_display_name' THEN
        RAISE;
    END IF;
    RETURN QUERY SELECT 409, jsonb_build_object('scimType', 'uniqueness',
        'detail', 'displayName is already taken in this tenant');
END
$$;
