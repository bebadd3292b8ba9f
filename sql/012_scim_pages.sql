-- ngx_ent 012: SCIM list pages that do not sort the whole tenant.
--
-- The orders a list may ask for, each with the id as the tiebreaker (a
-- stable order across pages), as indexes of the live rows; and the list
-- functions sort and aggregate only the page.

-- the user_name itself INCLUDEd: an index-only walk of the offset
CREATE INDEX IF NOT EXISTS scim_users_by_name
    ON ent.scim_users (tenant_id, lower(user_name), id) INCLUDE (user_name)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS scim_users_by_created
    ON ent.scim_users (tenant_id, created_at, id)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS scim_groups_by_name
    ON ent.scim_groups (tenant_id, lower(display_name), id)
    INCLUDE (display_name) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS scim_groups_by_created
    ON ent.scim_groups (tenant_id, created_at, id)
    WHERE deleted_at IS NULL;

-- a tenant's live users, kept by a trigger: the totalResults of an
-- unfiltered list without counting 100,000 rows on every page

CREATE TABLE IF NOT EXISTS ent.scim_counts (
    tenant_id  uuid PRIMARY KEY REFERENCES ent.tenants (id)
               ON DELETE CASCADE,
    users      bigint NOT NULL DEFAULT 0
);

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
    END IF;

    IF d <> 0 THEN
        INSERT INTO ent.scim_counts AS c (tenant_id, users) VALUES (t, d)
        ON CONFLICT (tenant_id) DO UPDATE SET users = c.users + d;
    END IF;

    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS scim_users_count ON ent.scim_users;
CREATE TRIGGER scim_users_count
    AFTER INSERT OR DELETE OR UPDATE OF deleted_at ON ent.scim_users
    FOR EACH ROW EXECUTE FUNCTION ent.scim_users_counted();

INSERT INTO ent.scim_counts (tenant_id, users)
SELECT s.tenant_id, count(*) FROM ent.scim_users s
 WHERE s.deleted_at IS NULL GROUP BY s.tenant_id
ON CONFLICT (tenant_id) DO UPDATE SET users = EXCLUDED.users;
