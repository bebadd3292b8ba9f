-- ngx_ent 011: erasure (the right to be forgotten) of a tenant's user.
--
-- ent.user_erase() pseudonymizes what the tenant holds of the person (the
-- SCIM record; the global user too when no other tenant has them),
-- removes the membership and the IdP identities of that tenant, and keeps
-- a tombstone of digests only: a SCIM request that would create or
-- revive that user (the same userName, externalId or email; the erased
-- id) is answered 410 Gone.  Events keep ids, never the erased values.

CREATE TABLE IF NOT EXISTS ent.erasures (
    tenant_id           uuid NOT NULL REFERENCES ent.tenants (id)
                        ON DELETE CASCADE,
    user_id             uuid NOT NULL,
    user_name_sha256    bytea,
    external_id_sha256  bytea,
    email_sha256        bytea,
    erased_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

CREATE INDEX IF NOT EXISTS erasures_user_name
    ON ent.erasures (tenant_id, user_name_sha256);
CREATE INDEX IF NOT EXISTS erasures_external_id
    ON ent.erasures (tenant_id, external_id_sha256);
CREATE INDEX IF NOT EXISTS erasures_email
    ON ent.erasures (tenant_id, email_sha256);

-- was this person erased from the tenant: by id, userName, externalId or
-- email (any may be NULL)

CREATE OR REPLACE FUNCTION ent.erased(p_tenant uuid, p_id text,
                                      p_user_name text, p_external_id text,
                                      p_email text)
RETURNS boolean
LANGUAGE sql
STABLE
AS $$
    SELECT EXISTS (
        SELECT 1 FROM ent.erasures e
         WHERE e.tenant_id = p_tenant
           AND ((p_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                 AND e.user_id = p_id::uuid)
                OR e.user_name_sha256 = sha256(convert_to(lower(p_user_name),
                                                          'UTF8'))
                OR e.external_id_sha256 = sha256(convert_to(p_external_id,
                                                            'UTF8'))
                OR e.email_sha256 = sha256(convert_to(lower(p_email),
                                                      'UTF8'))));
$$;

-- p_who: the user's id, email or SCIM userName in that tenant

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
           enterprise = '{}', active = false,
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

-- SCIM: an erased user is Gone

CREATE OR REPLACE FUNCTION ent.scim_gone(p_tenant uuid, p_id text,
                                         p_body jsonb)
RETURNS TABLE (status integer, body jsonb)
LANGUAGE sql
STABLE
AS $$
    SELECT 410, jsonb_build_object('detail',
                                   'this user was erased from the tenant')
     WHERE ent.erased(p_tenant, p_id, p_body ->> 'userName',
                      p_body ->> 'externalId',
                      p_body #>> '{emails,0,value}');
$$;
