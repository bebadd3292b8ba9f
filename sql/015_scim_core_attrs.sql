-- ngx_ent 015: the rest of the core User schema (RFC 7643 section 4.1).
--
-- What Entra ID, Okta and OneLogin send by default beyond the attributes
-- ngx_ent acts on: nickName, profileUrl, title, userType,
-- preferredLanguage, locale, timezone, name.middleName,
-- name.honorificPrefix, name.honorificSuffix, and the multi-valued
-- addresses, ims, photos, entitlements, roles and x509Certificates.  They
-- are kept as the IdP sent them (in scim_users.extra) and returned, never
-- acted on: SCIM "roles" grant nothing at the edge (roles come from
-- memberships and group mappings).

ALTER TABLE ent.scim_users
    ADD COLUMN IF NOT EXISTS extra jsonb NOT NULL DEFAULT '{}'::jsonb;

-- the extra attributes of a body, checked; error set when they are not
-- acceptable

CREATE OR REPLACE FUNCTION ent.scim_user_extra(p_body jsonb,
                                               OUT extra jsonb,
                                               OUT error text)
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    k      text;
    v      jsonb;
    e      jsonb;
    sub    text;
    name   jsonb := '{}'::jsonb;
BEGIN
    extra := '{}'::jsonb;
    error := NULL;

    FOREACH k IN ARRAY ARRAY['nickName', 'profileUrl', 'title', 'userType',
                             'preferredLanguage', 'locale', 'timezone'] LOOP
        v := p_body -> k;
        CONTINUE WHEN v IS NULL OR jsonb_typeof(v) = 'null';

        IF jsonb_typeof(v) <> 'string' OR length(v #>> '{}') > 512 THEN
            error := k || ' must be a string of at most 512 characters';
            RETURN;
        END IF;

        extra := extra || jsonb_build_object(k, v);
    END LOOP;

    IF jsonb_typeof(p_body -> 'name') = 'object' THEN
        FOREACH k IN ARRAY ARRAY['middleName', 'honorificPrefix',
                                 'honorificSuffix'] LOOP
            v := p_body -> 'name' -> k;
            CONTINUE WHEN v IS NULL OR jsonb_typeof(v) = 'null';

            IF jsonb_typeof(v) <> 'string' OR length(v #>> '{}') > 256 THEN
                error := 'name.' || k || ' must be a string of at most 256 '
                         'characters';
                RETURN;
            END IF;

            name := name || jsonb_build_object(k, v);
        END LOOP;

        IF name <> '{}'::jsonb THEN
            extra := extra || jsonb_build_object('name', name);
        END IF;
    END IF;

    FOREACH k IN ARRAY ARRAY['addresses', 'ims', 'photos', 'entitlements',
                             'roles', 'x509Certificates'] LOOP
        v := p_body -> k;
        CONTINUE WHEN v IS NULL OR jsonb_typeof(v) = 'null'
                      OR v = '[]'::jsonb;

        IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) > 32
           OR length(v::text) > 16384
        THEN
            error := k || ' must be an array of at most 32 values';
            RETURN;
        END IF;

        FOR e IN SELECT * FROM jsonb_array_elements(v) LOOP
            IF jsonb_typeof(e) <> 'object' THEN
                error := 'the values of ' || k || ' are objects';
                RETURN;
            END IF;

            FOR sub IN SELECT jsonb_object_keys(e) LOOP
                IF (k = 'addresses'
                    AND sub NOT IN ('formatted', 'streetAddress', 'locality',
                                    'region', 'postalCode', 'country',
                                    'type', 'primary'))
                   OR (k <> 'addresses'
                       AND sub NOT IN ('value', 'display', 'type',
                                       'primary'))
                THEN
                    error := k || '.' || sub || ' is not an attribute';
                    RETURN;
                END IF;

                IF sub = 'primary'
                   AND jsonb_typeof(e -> sub) NOT IN ('boolean', 'null')
                   AND NOT (jsonb_typeof(e -> sub) = 'string'
                            AND lower(e ->> sub) IN ('true', 'false'))
                THEN
                    error := k || '.primary must be a boolean';
                    RETURN;
                END IF;

                IF sub <> 'primary'
                   AND jsonb_typeof(e -> sub) NOT IN ('string', 'null')
                THEN
                    error := k || '.' || sub || ' must be a string';
                    RETURN;
                END IF;
            END LOOP;
        END LOOP;

        extra := extra || jsonb_build_object(k, v);
    END LOOP;
END
$$;

-- a User as SCIM JSON (migration 010's, with the extra attributes)

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
                    'formatted', u.formatted_name)
                    || coalesce(u.extra -> 'name', '{}'::jsonb)),
                    '{}'::jsonb),
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
            'version', 'W/"' || u.version || '"'))
        || (u.extra - 'name'));
$$;

-- create and replace keep the extra attributes: 010's functions, wrapped

ALTER FUNCTION ent.scim_user_create(uuid, uuid, jsonb, text)
    RENAME TO scim_user_create_core;
ALTER FUNCTION ent.scim_user_replace(uuid, uuid, text, jsonb, bigint, text)
    RENAME TO scim_user_replace_core;

CREATE OR REPLACE FUNCTION ent.scim_user_keep_extra(p_tenant uuid,
                                                    p_status integer,
                                                    p_body jsonb,
                                                    p_extra jsonb,
                                                    p_base text)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    v_row  ent.scim_users;
BEGIN
    IF p_status NOT IN (200, 201) OR p_body ->> 'id' IS NULL
       OR (p_status = 201 AND p_extra = '{}'::jsonb)
    THEN
        -- nothing to keep (a new row's extra is already empty)
        RETURN p_body;
    END IF;

    UPDATE ent.scim_users s SET extra = p_extra
     WHERE s.tenant_id = p_tenant AND s.id = (p_body ->> 'id')::uuid
       AND s.extra IS DISTINCT FROM p_extra
    RETURNING * INTO v_row;

    IF NOT FOUND THEN
        RETURN p_body;
    END IF;

    RETURN ent.scim_user_json(v_row, p_base);
END
$$;

CREATE OR REPLACE FUNCTION ent.scim_user_create(p_tenant uuid, p_token uuid,
                                                p_body jsonb, p_base text)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    x  record;
    r  record;
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
    x  record;
    r  record;
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
END
$$;
