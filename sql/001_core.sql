-- ngx_ent 001: the schema and the invalidation channel.
--
-- Every nginx node keeps caches of these tables in shared memory.  A
-- change reaches them through NOTIFY on the channel "ent_invalidate"; the
-- payload names a cache zone and a key ("tenants:acme.example.com"), a
-- whole zone ("tenants:*") or everything ("*").

CREATE SCHEMA IF NOT EXISTS ent;

CREATE OR REPLACE FUNCTION ent.invalidate(zone text, key text DEFAULT NULL)
RETURNS void
LANGUAGE sql
AS $$
    SELECT pg_notify('ent_invalidate',
                     CASE WHEN zone = '*' THEN '*'
                          ELSE zone || ':' || coalesce(key, '*') END);
$$;

CREATE OR REPLACE FUNCTION ent.touch_updated_at()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
