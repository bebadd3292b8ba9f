-- ngx_ent 020: three fixes to earlier functions.
--
-- 1. A tenant with SCIM users could not be deleted: the cascade removed
--    its ent.scim_counts row, then the count trigger of the cascaded
--    ent.scim_users deletes inserted it again, for a tenant that no longer
--    exists (a foreign key violation, and the whole delete rolled back).
--    The trigger now leaves a tenant being deleted alone.
-- 2. ent.user_erase() kept scim_users.extra (the attributes kept as the IdP
--    sent them since 015: addresses, nickName, photos, ...): it is emptied
--    with the rest.
-- 3. The 5-level limit of the tenant hierarchy counted the ancestors of a
--    tenant being moved, not its own descendants: a subtree moved under
--    another could end deeper than 5 levels, where inheritance (status,
--    plan, allow-lists) does not reach.  The depth of the moved subtree
--    now counts too.

CREATE OR REPLACE FUNCTION ent.scim_users_counted()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    d  bigint := 0;
    t  uuid;
BEGIN
    IF TG_OP = 'DELETE'
       AND NOT EXISTS (SELECT 1 FROM ent.tenants WHERE id = OLD.tenant_id)
    THEN
        -- the tenant is being deleted: its count goes with it
        RETURN NULL;
    END IF;

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

CREATE OR REPLACE FUNCTION ent.user_erase(p_tenant uuid, p_who text)
RETURNS TABLE (user_id uuid, outcome text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_user   uuid;
    v_scim   ent.scim_users;
    v_email  text;
BEGIN
    IF p_who ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN
        v_user := p_who::uuid;
    END IF;

    SELECT * INTO v_scim FROM ent.scim_users s
     WHERE s.tenant_id = p_tenant
       AND (s.id = v_user OR lower(s.user_name) = lower(p_who))
     ORDER BY s.deleted_at NULLS FIRST
     LIMIT 1;

    IF v_scim.id IS NOT NULL THEN
        v_user := v_scim.id;
    END IF;

    IF v_user IS NULL THEN
        SELECT u.id INTO v_user
          FROM ent.users u JOIN ent.memberships m ON m.user_id = u.id
         WHERE m.tenant_id = p_tenant AND lower(u.email) = lower(p_who)
         LIMIT 1;
    END IF;

    IF v_user IS NULL AND ent.erased(p_tenant, p_who, p_who, NULL, p_who)
    THEN
        RETURN QUERY SELECT NULL::uuid, 'already_erased'::text;
        RETURN;
    END IF;

    IF v_user IS NULL
       OR (v_scim.id IS NULL
           AND NOT EXISTS (SELECT 1 FROM ent.memberships m
                            WHERE m.tenant_id = p_tenant
                              AND m.user_id = v_user))
    THEN
        RETURN QUERY SELECT NULL::uuid, 'not_found'::text;
        RETURN;
    END IF;

    IF EXISTS (SELECT 1 FROM ent.erasures e
                WHERE e.tenant_id = p_tenant AND e.user_id = v_user)
    THEN
        RETURN QUERY SELECT v_user, 'already_erased'::text;
        RETURN;
    END IF;

    SELECT u.email INTO v_email FROM ent.users u WHERE u.id = v_user;

    INSERT INTO ent.erasures (tenant_id, user_id, user_name_sha256,
                              external_id_sha256, email_sha256)
    VALUES (p_tenant, v_user,
            sha256(convert_to(lower(v_scim.user_name), 'UTF8')),
            sha256(convert_to(v_scim.external_id, 'UTF8')),
            sha256(convert_to(lower(coalesce(v_email,
                                   v_scim.emails -> 0 ->> 'value')), 'UTF8')));

    UPDATE ent.scim_users s
       SET user_name = 'erased-' || s.id, external_id = NULL,
           display_name = NULL, given_name = NULL, family_name = NULL,
           formatted_name = NULL, emails = '[]', phone_numbers = '[]',
           enterprise = '{}', extra = '{}', active = false,
           deleted_at = coalesce(s.deleted_at, now()),
           version = s.version + 1, updated_at = now()
     WHERE s.tenant_id = p_tenant AND s.id = v_user;

    DELETE FROM ent.scim_group_members m
     WHERE m.tenant_id = p_tenant AND m.user_id = v_user;
    DELETE FROM ent.memberships m
     WHERE m.tenant_id = p_tenant AND m.user_id = v_user;
    DELETE FROM ent.user_identities i
     WHERE i.tenant_id = p_tenant AND i.user_id = v_user;

    -- the person itself, when no other tenant knows them
    IF NOT EXISTS (SELECT 1 FROM ent.memberships m WHERE m.user_id = v_user)
    THEN
        UPDATE ent.users u
           SET email = NULL, name = NULL, status = 'suspended'
         WHERE u.id = v_user;
    END IF;

    PERFORM ent.scim_notify(p_tenant, 'User', v_user, 'delete',
                            coalesce(v_scim.version + 1, 0));
    PERFORM ent.event(p_tenant::text, v_user::text, 'erasure', 'success',
                      'personal data erased', NULL, NULL);

    RETURN QUERY SELECT v_user, 'erased'::text;
END
$$;

CREATE OR REPLACE FUNCTION ent.tenants_check_parent()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    cur    uuid := NEW.parent_id;
    depth  integer := 1;
    below  integer := 0;
BEGIN
    WHILE cur IS NOT NULL LOOP
        IF cur = NEW.id THEN
            RAISE EXCEPTION 'tenant "%" cannot be its own ancestor', NEW.code
                USING ERRCODE = 'check_violation';
        END IF;
        depth := depth + 1;
        IF depth > 5 THEN
            RAISE EXCEPTION 'tenant "%" would be more than 5 levels deep',
                NEW.code USING ERRCODE = 'check_violation';
        END IF;
        SELECT parent_id INTO cur FROM ent.tenants WHERE id = cur;
    END LOOP;

    -- the levels under the tenant move with it (an existing tenant only;
    -- a cycle was refused above, and the walk is bounded anyway)
    IF TG_OP = 'UPDATE' THEN
        WITH RECURSIVE sub (id, level) AS (
            SELECT t.id, 1 FROM ent.tenants t WHERE t.parent_id = NEW.id
            UNION ALL
            SELECT t.id, s.level + 1
              FROM ent.tenants t JOIN sub s ON t.parent_id = s.id
             WHERE s.level < 6
        )
        SELECT coalesce(max(level), 0) INTO below FROM sub;

        IF depth + below > 5 THEN
            RAISE EXCEPTION 'tenant "%" and the % level(s) under it would '
                'be more than 5 levels deep', NEW.code, below
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;

    RETURN NEW;
END
$$;
