-- ngx_ent 017: the replication heartbeat, for reads from replicas.
--
-- With ent_postgres_replica, worker 0 of each nginx node stamps this row
-- on the primary every second (ent.heartbeat()); every worker reads it on
-- its replica (ent.replica_lag()): how far behind the replica is, in
-- milliseconds, whatever the primary was doing.  A replica whose lag is
-- past the directive's max_lag (or unknown) is not read from.

CREATE TABLE IF NOT EXISTS ent.heartbeat (
    id  boolean PRIMARY KEY DEFAULT true CHECK (id),
    at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO ent.heartbeat DEFAULT VALUES ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION ent.heartbeat()
RETURNS void
LANGUAGE sql
AS $$
    UPDATE ent.heartbeat SET at = clock_timestamp() WHERE id;
$$;

CREATE OR REPLACE FUNCTION ent.replica_lag()
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
    SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0
                ELSE greatest(0, (extract(epoch FROM clock_timestamp() - at)
                                  * 1000)::bigint) END
      FROM ent.heartbeat;
$$;
