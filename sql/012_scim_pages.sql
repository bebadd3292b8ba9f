-- ngx_ent 012: SCIM list pages that do not sort the whole tenant.
--
-- The orders a list may ask for, each with the id as the tiebreaker (a
-- stable order across pages), as indexes of the live rows; and the list
-- functions sort and aggregate only the page.

CREATE INDEX IF NOT EXISTS scim_users_by_name
    ON ent.scim_users (tenant_id, lower(user_name), id)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS scim_users_by_created
    ON ent.scim_users (tenant_id, created_at, id)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS scim_groups_by_name
    ON ent.scim_groups (tenant_id, lower(display_name), id)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS scim_groups_by_created
    ON ent.scim_groups (tenant_id, created_at, id)
    WHERE deleted_at IS NULL;
