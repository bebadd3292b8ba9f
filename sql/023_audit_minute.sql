-- ngx_ent 023: a rate-limit rejection count is filed under the minute it
-- counts.
--
-- ent.audit_write() keyed a merged event (one row per tenant, policy and
-- minute) on the minute of the time it was written: a worker sends a
-- minute's count when the minute is over, or earlier when it exits (a
-- reload) or its slots are full, so one minute's count was split between
-- its own row and the next minute's, and that row mixed two minutes.  The
-- row is now keyed on the event's details.minute.

CREATE OR REPLACE FUNCTION ent.audit_write(p_batch jsonb)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_month  timestamp;
    v_n      integer;
    v_m      integer := 0;
    v_e      jsonb;
    v_id     uuid;
    v_at     timestamptz;
    v_min    timestamptz;
BEGIN
    FOR v_month IN
        SELECT DISTINCT date_trunc('month', (e ->> 'at')::timestamptz
                                            AT TIME ZONE 'UTC')
          FROM jsonb_array_elements(p_batch) e
    LOOP
        PERFORM ent.audit_partition(v_month AT TIME ZONE 'UTC');
    END LOOP;

    INSERT INTO ent.audit (id, at, tenant_id, user_id, actor, actor_type,
                           action, category, target_type, target_id, result,
                           reason, client_ip, user_agent, request_id,
                           details)
    SELECT (e ->> 'id')::uuid, (e ->> 'at')::timestamptz,
           ent.audit_uuid(e ->> 'tenant'), ent.audit_uuid(e ->> 'user'),
           left(nullif(e ->> 'actor', ''), 256),
           coalesce(nullif(e ->> 'actor_type', ''), 'system'),
           left(e ->> 'action', 64),
           coalesce(nullif(e ->> 'category', ''),
                    ent.audit_category(e ->> 'action')),
           left(nullif(e ->> 'target_type', ''), 32),
           left(nullif(e ->> 'target_id', ''), 256),
           e ->> 'result', left(nullif(e ->> 'reason', ''), 256),
           left(nullif(e ->> 'ip', ''), 64), left(nullif(e ->> 'ua', ''), 512),
           left(nullif(e ->> 'rid', ''), 64),
           coalesce(e -> 'details', '{}'::jsonb)
      FROM jsonb_array_elements(p_batch) e
     WHERE NOT coalesce((e ->> 'merge')::boolean, false)
       AND (e ->> 'if_other_issuer' IS NULL
            OR EXISTS (SELECT 1 FROM ent.identity_providers p
                        WHERE p.issuer = e ->> 'if_other_issuer'
                          AND p.tenant_id IS DISTINCT FROM
                              ent.audit_uuid(e ->> 'tenant')))
    ON CONFLICT (id, at) DO NOTHING;

    GET DIAGNOSTICS v_n = ROW_COUNT;

    FOR v_e IN
        SELECT e FROM jsonb_array_elements(p_batch) e
         WHERE coalesce((e ->> 'merge')::boolean, false)
    LOOP
        INSERT INTO ent.audit_parts (id) VALUES ((v_e ->> 'id')::uuid)
        ON CONFLICT DO NOTHING;

        CONTINUE WHEN NOT FOUND;

        v_at := date_trunc('minute', (v_e ->> 'at')::timestamptz);

        /*
         * the minute counted in, not the one the count was sent in (the
         * end of its minute, or earlier when a worker exits): one row per
         * minute whenever each part was sent.  Within a day before the
         * time it was written, or it is not one
         */

        IF jsonb_typeof(v_e -> 'details' -> 'minute') = 'number' THEN
            v_min := date_trunc('minute',
                         to_timestamp((v_e -> 'details' ->> 'minute')
                                      ::double precision));

            IF v_min BETWEEN v_at - interval '1 day' AND v_at THEN
                v_at := v_min;
            END IF;
        END IF;

        PERFORM ent.audit_partition(v_at);
        v_id := md5(concat_ws('|', v_e ->> 'tenant', v_e ->> 'action',
                              v_e ->> 'target_id', v_at::text))::uuid;

        INSERT INTO ent.audit AS a (id, at, tenant_id, actor, actor_type,
                                    action, category, target_type,
                                    target_id, result, reason, details)
        VALUES (v_id, v_at, ent.audit_uuid(v_e ->> 'tenant'), NULL, 'system',
                left(v_e ->> 'action', 64),
                ent.audit_category(v_e ->> 'action'),
                left(nullif(v_e ->> 'target_type', ''), 32),
                left(nullif(v_e ->> 'target_id', ''), 256),
                v_e ->> 'result', left(nullif(v_e ->> 'reason', ''), 256),
                coalesce(v_e -> 'details', '{}'::jsonb))
        ON CONFLICT (id, at) DO UPDATE
           SET details = jsonb_set(a.details, '{count}',
                   to_jsonb(coalesce((a.details ->> 'count')::bigint, 0)
                            + coalesce((EXCLUDED.details ->> 'count')::bigint,
                                       0)));

        v_m := v_m + 1;
    END LOOP;

    RETURN v_n + v_m;
END
$$;
