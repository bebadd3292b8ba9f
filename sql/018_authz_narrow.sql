-- ngx_ent 018: provisioning does not flush every node's "authz" zone.
--
-- 009 flushed the zone on any statement touching ent.users or
-- ent.memberships, so a SCIM client creating users (Okta's first sync:
-- thousands) emptied every signed-in user's cached standing on every
-- node, again and again: each request refilled it from PostgreSQL, and
-- with PostgreSQL away meanwhile, signed-in users got 503.
--
-- And every login flushed it too (ent.sso_login() stamps last_login_at,
-- and inserts its identity with ON CONFLICT DO NOTHING).
--
-- A user created in this transaction cannot have a cached standing: an
-- insert or delete of only such users and their memberships no longer
-- flushes; an update flushes only when it changed what ent.authz() reads
-- (a user's status, a membership's role or status).  Any other insert or
-- delete, and a truncate, still do.

CREATE OR REPLACE FUNCTION ent.authz_user_created()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM set_config('ent.authz_new_users',
                       coalesce(current_setting('ent.authz_new_users', true),
                                '') || NEW.id::text || ',', true);
    RETURN NULL;
END
$$;

-- the rows of the statement (its transition table "rows"): a flush unless
-- it changed none, or only rows of users created in this transaction

CREATE OR REPLACE FUNCTION ent.authz_rows_changed()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_new text := coalesce(current_setting('ent.authz_new_users', true), '');
BEGIN
    IF EXISTS (SELECT 1 FROM rows r
                WHERE position(coalesce(to_jsonb(r) ->> 'user_id',
                                        to_jsonb(r) ->> 'id') || ','
                               IN v_new) = 0)
    THEN
        PERFORM ent.invalidate('authz');
    END IF;

    RETURN NULL;
END
$$;

-- an update flushes when it changed what ent.authz() reads: a user's
-- status, a membership's role or status (not last_login_at, names, ...)

CREATE OR REPLACE FUNCTION ent.authz_rows_updated()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        IF EXISTS (SELECT 1 FROM rows n JOIN old_rows o ON o.id = n.id
                    WHERE n.status IS DISTINCT FROM o.status)
           OR (SELECT count(*) FROM rows)
              <> (SELECT count(*) FROM rows n JOIN old_rows o ON o.id = n.id)
        THEN
            PERFORM ent.invalidate('authz');
        END IF;

    ELSIF EXISTS (SELECT 1 FROM rows n JOIN old_rows o
                     ON o.tenant_id = n.tenant_id AND o.user_id = n.user_id
                  WHERE (n.role, n.status) IS DISTINCT FROM (o.role, o.status))
          OR (SELECT count(*) FROM rows)
             <> (SELECT count(*) FROM rows n JOIN old_rows o
                    ON o.tenant_id = n.tenant_id AND o.user_id = n.user_id)
    THEN
        PERFORM ent.invalidate('authz');
    END IF;

    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'memberships']
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON ent.%I',
                       t || '_authz', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON ent.%I',
                       t || '_authz_upd', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON ent.%I',
                       t || '_authz_del', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON ent.%I',
                       t || '_authz_trunc', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON ent.%I '
                       'REFERENCING OLD TABLE AS old_rows NEW TABLE AS rows '
                       'FOR EACH STATEMENT '
                       'EXECUTE FUNCTION ent.authz_rows_updated()',
                       t || '_authz_upd', t);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON ent.%I '
                       'REFERENCING OLD TABLE AS rows FOR EACH STATEMENT '
                       'EXECUTE FUNCTION ent.authz_rows_changed()',
                       t || '_authz_del', t);
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON ent.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION '
                       'ent.authz_changed()', t || '_authz_trunc', t);
    END LOOP;
END
$$;

DROP TRIGGER IF EXISTS users_authz_created ON ent.users;
CREATE TRIGGER users_authz_created AFTER INSERT ON ent.users
    FOR EACH ROW EXECUTE FUNCTION ent.authz_user_created();

DROP TRIGGER IF EXISTS memberships_authz_ins ON ent.memberships;
CREATE TRIGGER memberships_authz_ins AFTER INSERT ON ent.memberships
    REFERENCING NEW TABLE AS rows FOR EACH STATEMENT
    EXECUTE FUNCTION ent.authz_rows_changed();

-- users: an insert never flushes (it records the new user for the above)

-- user_identities: every login runs INSERT ... ON CONFLICT DO NOTHING,
-- which fired the statement trigger with nothing inserted

DROP TRIGGER IF EXISTS user_identities_authz ON ent.user_identities;
DROP TRIGGER IF EXISTS user_identities_authz_ins ON ent.user_identities;
DROP TRIGGER IF EXISTS user_identities_authz_upd ON ent.user_identities;
DROP TRIGGER IF EXISTS user_identities_authz_del ON ent.user_identities;
DROP TRIGGER IF EXISTS user_identities_authz_trunc ON ent.user_identities;
CREATE TRIGGER user_identities_authz_ins AFTER INSERT ON ent.user_identities
    REFERENCING NEW TABLE AS rows FOR EACH STATEMENT
    EXECUTE FUNCTION ent.authz_rows_changed();
CREATE TRIGGER user_identities_authz_upd AFTER UPDATE ON ent.user_identities
    REFERENCING NEW TABLE AS rows FOR EACH STATEMENT
    EXECUTE FUNCTION ent.authz_rows_changed();
CREATE TRIGGER user_identities_authz_del AFTER DELETE ON ent.user_identities
    REFERENCING OLD TABLE AS rows FOR EACH STATEMENT
    EXECUTE FUNCTION ent.authz_rows_changed();
CREATE TRIGGER user_identities_authz_trunc AFTER TRUNCATE
    ON ent.user_identities
    FOR EACH STATEMENT EXECUTE FUNCTION ent.authz_changed();
