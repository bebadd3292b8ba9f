-- ngx_ent 014: deep SCIM list pages without walking the whole offset.
--
-- A page at startIndex 90,000 of an unfiltered list walked 90,000 index
-- entries.  Now every 1,000th user of a tenant in the two orders IdPs use
-- (userName, and creation, the default) is kept as an anchor, with the
-- version of the tenant's users it was taken at; a page starts from the
-- anchor at or before its offset and walks at most 999 entries.  The
-- version changes with every user created, deleted or renamed (a trigger),
-- and anchors of an older version are never used: the next deep page
-- takes them again (one walk).

ALTER TABLE ent.scim_counts
    ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION ent.scim_users_counted()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    d  bigint := 0;
    t  uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        t := NEW.tenant_id;
        d := CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE 0 END;
    ELSIF TG_OP = 'DELETE' THEN
        t := OLD.tenant_id;
        d := CASE WHEN OLD.deleted_at IS NULL THEN -1 ELSE 0 END;
    ELSE
        t := NEW.tenant_id;
        d := (CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE 0 END)
             - (CASE WHEN OLD.deleted_at IS NULL THEN 1 ELSE 0 END);

        IF d = 0 AND NEW.user_name IS NOT DISTINCT FROM OLD.user_name
           AND NEW.created_at IS NOT DISTINCT FROM OLD.created_at
        THEN
            RETURN NULL;
        END IF;
    END IF;

    INSERT INTO ent.scim_counts AS c (tenant_id, users, version)
    VALUES (t, d, 1)
    ON CONFLICT (tenant_id) DO UPDATE
       SET users = c.users + d, version = c.version + 1;

    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS scim_users_count ON ent.scim_users;
CREATE TRIGGER scim_users_count
    AFTER INSERT OR DELETE OR UPDATE OF deleted_at, user_name, created_at
    ON ent.scim_users
    FOR EACH ROW EXECUTE FUNCTION ent.scim_users_counted();

CREATE TABLE IF NOT EXISTS ent.scim_anchors (
    tenant_id  uuid NOT NULL REFERENCES ent.tenants (id) ON DELETE CASCADE,
    sort       text NOT NULL CHECK (sort IN ('username', 'created')),
    version    bigint NOT NULL,
    keys       text[] NOT NULL,
    ids        uuid[] NOT NULL,
    PRIMARY KEY (tenant_id, sort)
);

-- the anchor at or before offset p_offset (0-based) of the current
-- version: its position, key and id; no row when there is none to use

CREATE OR REPLACE FUNCTION ent.scim_anchor(p_tenant uuid, p_sort text,
                                           p_offset integer)
RETURNS TABLE (pos integer, key text, id uuid)
LANGUAGE plpgsql
AS $$
DECLARE
    v_version  bigint;
    v_i        integer := p_offset / 1000;
BEGIN
    IF v_i < 1 THEN
        RETURN;
    END IF;

    SELECT c.version INTO v_version FROM ent.scim_counts c
     WHERE c.tenant_id = p_tenant;

    IF NOT FOUND THEN
        RETURN;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM ent.scim_anchors a
                    WHERE a.tenant_id = p_tenant AND a.sort = p_sort
                      AND a.version = v_version)
    THEN
        -- one walk, in one statement: the anchors and the version they
        -- belong to come from the same snapshot
        EXECUTE format(
            'INSERT INTO ent.scim_anchors AS a (tenant_id, sort, version, '
            '                                  keys, ids) '
            'SELECT $1, $2, (SELECT c.version FROM ent.scim_counts c '
            '                 WHERE c.tenant_id = $1), '
            '       coalesce(array_agg(w.k ORDER BY w.rn), ''{}''), '
            '       coalesce(array_agg(w.id ORDER BY w.rn), ''{}'') '
            '  FROM (SELECT (%1$s)::text AS k, u.id, '
            '               row_number() OVER (ORDER BY %1$s, u.id) - 1 AS rn '
            '          FROM ent.scim_users u '
            '         WHERE u.tenant_id = $1 AND u.deleted_at IS NULL) w '
            ' WHERE w.rn %% 1000 = 0 '
            'ON CONFLICT (tenant_id, sort) DO UPDATE '
            '   SET version = EXCLUDED.version, keys = EXCLUDED.keys, '
            '       ids = EXCLUDED.ids',
            CASE p_sort WHEN 'username' THEN 'lower(u.user_name)'
                        ELSE 'u.created_at' END)
        USING p_tenant, p_sort;
    END IF;

    RETURN QUERY
        SELECT (least(v_i, cardinality(a.keys) - 1) * 1000)::integer,
               a.keys[least(v_i, cardinality(a.keys) - 1) + 1],
               a.ids[least(v_i, cardinality(a.keys) - 1) + 1]
          FROM ent.scim_anchors a
          JOIN ent.scim_counts c
            ON c.tenant_id = a.tenant_id AND c.version = a.version
         WHERE a.tenant_id = p_tenant AND a.sort = p_sort
           AND cardinality(a.keys) > 1;
END
$$;

-- the list, as in 010 and 012, but a deep page of an unfiltered list by
-- userName or creation starts from its anchor

CREATE OR REPLACE FUNCTION ent.scim_user_list(p_tenant uuid, p_where text,
                                              p_params text[],
                                              p_sort text, p_desc boolean,
                                              p_start integer,
                                              p_count integer, p_base text)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_total    bigint;
    v_res      jsonb;
    v_order    text;
    v_key      text;
    v_offset   integer := greatest(p_start - 1, 0);
    v_from     text := 'true';
    v_anchor   record;
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

    IF coalesce(p_where, 'true') = 'true' THEN
        -- unfiltered: the count the trigger keeps (migration 012)
        SELECT coalesce((SELECT c.users FROM ent.scim_counts c
                          WHERE c.tenant_id = p_tenant), 0)
          INTO v_total;

        v_key := CASE WHEN p_desc THEN NULL
                      WHEN p_sort = 'username' THEN 'username'
                      WHEN p_sort IN ('meta.created', '') OR p_sort IS NULL
                           OR v_order = 'u.created_at, u.id' THEN 'created'
                 END;

        IF v_key IS NOT NULL AND v_offset >= 1000 THEN
            SELECT * INTO v_anchor FROM ent.scim_anchor(p_tenant, v_key,
                                                        v_offset);

            IF v_anchor.pos IS NOT NULL THEN
                v_from := CASE v_key
                    WHEN 'username' THEN
                        format('(lower(u.user_name), u.id) >= (%L, %L::uuid)',
                               v_anchor.key, v_anchor.id)
                    ELSE
                        format('(u.created_at, u.id) >= (%L::timestamptz, '
                               '%L::uuid)', v_anchor.key, v_anchor.id)
                    END;
                v_offset := v_offset - v_anchor.pos;
            END IF;
        END IF;
    ELSE
        EXECUTE format('SELECT count(*) FROM ent.scim_users u '
                       'WHERE u.tenant_id = $2 AND u.deleted_at IS NULL '
                       'AND (%s)', p_where)
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
                   '     AND (%s) AND (%s) '
                   '   ORDER BY %s OFFSET $4 LIMIT $5)',
                   v_order, coalesce(p_where, 'true'), v_from, v_order)
       INTO v_res
      USING p_params, p_tenant, p_base, v_offset, greatest(p_count, 0);

    RETURN QUERY SELECT 200, jsonb_build_object(
        'schemas', jsonb_build_array(
            'urn:ietf:params:scim:api:messages:2.0:ListResponse'),
        'totalResults', v_total,
        'startIndex', greatest(p_start, 1),
        'itemsPerPage', jsonb_array_length(v_res),
        'Resources', v_res);
END
$$;
