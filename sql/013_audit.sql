-- ngx_ent 013: the audit trail.
--
-- ent.audit, partitioned by month (UTC), holds one row per event: who
-- (actor, actor_type) did what (action, category) to what (target_type,
-- target_id), with which result, from where (client_ip, user_agent,
-- request_id), and details (JSON, never a secret).  Each event carries the
-- id its producer gave it: the edge writes batches that it may have to
-- send again (after an outage, or when a worker died after the commit but
-- before it noted it), and (id, at) makes the second copy a no-op.
--
-- ent.events (migration 005) becomes a view of ent.audit with its old
-- columns, so what read it keeps working; ent.event() writes ent.audit.

CREATE TABLE IF NOT EXISTS ent.audit (
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    id           uuid NOT NULL,
    at           timestamptz NOT NULL,
    tenant_id    uuid,
    user_id      uuid,
    actor        text CHECK (length(actor) <= 256),
    actor_type   text NOT NULL DEFAULT 'system'
                 CHECK (actor_type IN ('user', 'token', 'platform_admin',
                                       'system', 'anonymous')),
    action       text NOT NULL CHECK (length(action) <= 64),
    category     text NOT NULL CHECK (length(category) <= 32),
    target_type  text CHECK (length(target_type) <= 32),
    target_id    text CHECK (length(target_id) <= 256),
    result       text NOT NULL CHECK (result IN ('success', 'failure',
                                                 'info')),
    reason       text CHECK (length(reason) <= 256),
    client_ip    text CHECK (length(client_ip) <= 64),
    user_agent   text CHECK (length(user_agent) <= 512),
    request_id   text CHECK (length(request_id) <= 64),
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);

CREATE INDEX IF NOT EXISTS audit_tenant_at ON ent.audit (tenant_id, at);
CREATE INDEX IF NOT EXISTS audit_seq ON ent.audit (seq);

-- how long each category is kept: a tenant's own row (an enterprise
-- contract) wins over the default (tenant_id NULL); category '*' is the
-- rest

CREATE TABLE IF NOT EXISTS ent.audit_retention (
    tenant_id  uuid REFERENCES ent.tenants (id) ON DELETE CASCADE,
    category   text NOT NULL CHECK (length(category) <= 32),
    keep       interval NOT NULL CHECK (keep >= interval '1 month'),
    UNIQUE NULLS NOT DISTINCT (tenant_id, category)
);

INSERT INTO ent.audit_retention (tenant_id, category, keep)
VALUES (NULL, 'authentication', interval '7 years'),
       (NULL, 'admin', interval '7 years'),
       (NULL, '*', interval '2 years')
ON CONFLICT DO NOTHING;

-- the category of an action

CREATE OR REPLACE FUNCTION ent.audit_category(p_action text)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE split_part(p_action, '.', 1)
        WHEN 'login' THEN 'authentication'
        WHEN 'logout' THEN 'authentication'
        WHEN 'provision' THEN 'provisioning'
        WHEN 'scim' THEN 'provisioning'
        WHEN 'authz' THEN 'authorization'
        WHEN 'ip' THEN 'authorization'
        WHEN 'breakglass' THEN 'authorization'
        WHEN 'cross_tenant' THEN 'security'
        WHEN 'ratelimit' THEN 'ratelimit'
        WHEN 'quota_threshold' THEN 'ratelimit'
        WHEN 'sla' THEN 'sla'
        ELSE 'admin'
    END
$$;

-- the month partition that holds ts, made when missing (the edge calls
-- this for each month of a batch; two writers serialize on a lock)

CREATE OR REPLACE FUNCTION ent.audit_partition(p_at timestamptz)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_from  timestamptz;
    v_name  text;
BEGIN
    v_from := date_trunc('month', p_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    v_name := 'audit_' || to_char(v_from AT TIME ZONE 'UTC', 'YYYYMM');

    IF to_regclass('ent.' || v_name) IS NOT NULL THEN
        RETURN v_name;
    END IF;

    PERFORM pg_advisory_xact_lock(hashtext('ent.audit_partition'));

    IF to_regclass('ent.' || v_name) IS NULL THEN
        EXECUTE format('CREATE TABLE ent.%I PARTITION OF ent.audit '
                       'FOR VALUES FROM (%L) TO (%L)', v_name, v_from,
                       v_from + interval '1 month');
    END IF;

    RETURN v_name;
END
$$;

-- a uuid, or NULL for anything else (a batch is never refused for one
-- malformed field)

CREATE OR REPLACE FUNCTION ent.audit_uuid(p text)
RETURNS uuid
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE WHEN p ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
                        '[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
                THEN p::uuid END
$$;

-- a batch of events from the edge, a JSON array of objects; those already
-- written are skipped.  Returns how many rows were new.
--
-- An event with "merge" is one producer's count of something aggregated
-- (rate-limit rejections of a tenant, policy and minute): its part is
-- recorded once under its own id, and its count added to the one row of
-- that key (whose id is derived from the key), so that a key has one row
-- however many workers and nodes counted it, and a part sent twice counts
-- once.
--
-- An event with "if_other_issuer" is kept only when that issuer is an
-- identity provider of another tenant (a refused bearer token that names
-- it: the edge cannot tell from the token alone).

CREATE TABLE IF NOT EXISTS ent.audit_parts (
    id     uuid PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now()
);

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

-- one event from SQL (entctl, the SCIM functions), written in the caller's
-- transaction

CREATE OR REPLACE FUNCTION ent.audit_log(p_tenant uuid, p_actor text,
                                         p_actor_type text, p_action text,
                                         p_target_type text,
                                         p_target_id text, p_result text,
                                         p_reason text, p_details jsonb)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM ent.audit_partition(now());

    INSERT INTO ent.audit (id, at, tenant_id, actor, actor_type, action,
                           category, target_type, target_id, result, reason,
                           details)
    VALUES (gen_random_uuid(), now(), p_tenant, left(p_actor, 256),
            coalesce(p_actor_type, 'system'), p_action,
            ent.audit_category(p_action), p_target_type,
            left(p_target_id, 256), p_result, left(p_reason, 256),
            coalesce(p_details, '{}'::jsonb));
END
$$;

-- migration 005's table, moved into ent.audit

DO $$
DECLARE
    v_month  timestamp;
BEGIN
    IF to_regclass('ent.events') IS NOT NULL
       AND (SELECT relkind FROM pg_class
             WHERE oid = to_regclass('ent.events')) = 'r'
    THEN
        FOR v_month IN
            SELECT DISTINCT date_trunc('month', at AT TIME ZONE 'UTC')
              FROM ent.events
        LOOP
            PERFORM ent.audit_partition(v_month AT TIME ZONE 'UTC');
        END LOOP;

        INSERT INTO ent.audit (id, at, tenant_id, user_id, actor, actor_type,
                               action, category, target_type, target_id,
                               result, reason, client_ip, details)
        SELECT gen_random_uuid(), at, tenant_id, user_id, user_id::text,
               CASE WHEN user_id IS NULL THEN 'system' ELSE 'user' END,
               kind, ent.audit_category(kind), NULL, NULL, outcome, reason,
               client_ip, detail
          FROM ent.events ORDER BY id;

        DROP TABLE ent.events;
    END IF;
END
$$;

SELECT ent.audit_partition(now());
SELECT ent.audit_partition(now() + interval '1 month');

CREATE OR REPLACE VIEW ent.events AS
    SELECT seq AS id, at, tenant_id, user_id,
           split_part(action, '.', 1) AS kind, result AS outcome, reason,
           client_ip, details AS detail
      FROM ent.audit;

-- the old entry point, kept for its callers (SCIM functions, erasure,
-- entctl): the SCIM changes become scim.<user|group>.<what> with the token
-- as the actor

CREATE OR REPLACE FUNCTION ent.event(p_tenant text, p_user text, p_kind text,
                                     p_outcome text, p_reason text,
                                     p_ip text, p_detail text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_detail  jsonb := coalesce(nullif(p_detail, '')::jsonb, '{}'::jsonb);
    v_action  text := p_kind;
    v_ttype   text;
    v_tid     text := nullif(p_user, '');
    v_actor   text := nullif(p_user, '');
    v_atype   text := CASE WHEN nullif(p_user, '') IS NULL THEN 'system'
                           ELSE 'user' END;
BEGIN
    IF p_kind = 'scim' THEN
        v_ttype := CASE WHEN p_reason LIKE 'Group%' THEN 'group'
                        ELSE 'user' END;
        v_tid := coalesce(v_detail ->> 'group', nullif(p_user, ''));
        v_action := 'scim.' || v_ttype || '.'
                    || CASE WHEN p_reason LIKE '%created' THEN 'create'
                            WHEN p_reason LIKE '%deleted' THEN 'delete'
                            WHEN p_reason LIKE '%inactive' THEN 'deactivate'
                            ELSE 'update' END;
        v_actor := v_detail ->> 'token';
        v_atype := CASE WHEN v_actor IS NULL THEN 'system' ELSE 'token' END;
    ELSIF p_kind = 'erasure' THEN
        v_ttype := 'user';
        v_actor := NULL;
        v_atype := 'platform_admin';
    END IF;

    PERFORM ent.audit_partition(now());

    INSERT INTO ent.audit (id, at, tenant_id, user_id, actor, actor_type,
                           action, category, target_type, target_id, result,
                           reason, client_ip, details)
    VALUES (gen_random_uuid(), now(), ent.audit_uuid(p_tenant),
            ent.audit_uuid(p_user), left(v_actor, 256), v_atype, v_action,
            ent.audit_category(v_action), v_ttype, left(v_tid, 256),
            p_outcome, left(p_reason, 256), left(p_ip, 64), v_detail);
END
$$;

-- contract targets of a tenant's service level, evaluated at the edge

CREATE TABLE IF NOT EXISTS ent.sla_targets (
    tenant_id     uuid PRIMARY KEY REFERENCES ent.tenants (id)
                  ON DELETE CASCADE,
    p99_ms        integer NOT NULL CHECK (p99_ms BETWEEN 1 AND 600000),
    error_ratio   numeric NOT NULL DEFAULT 1
                  CHECK (error_ratio >= 0 AND error_ratio <= 1),
    min_requests  integer NOT NULL DEFAULT 20
                  CHECK (min_requests BETWEEN 1 AND 1000000)
);

CREATE OR REPLACE FUNCTION ent.sla_all()
RETURNS TABLE (tenant_id uuid, code text, p99_ms integer,
               error_ratio numeric, min_requests integer)
LANGUAGE sql
STABLE
AS $$
    SELECT s.tenant_id, t.code, s.p99_ms, s.error_ratio, s.min_requests
      FROM ent.sla_targets s JOIN ent.tenants t ON t.id = s.tenant_id
     ORDER BY t.code
$$;

-- changes made by administrators (entctl, or SQL by hand): one event per
-- row changed, with the names of the columns that changed and their new
-- values, except secrets (sealed keys, token digests) and long texts
-- (certificates), which are named only.  entctl sets "ent.actor" to who
-- ran it; by hand, the event names the database user.

CREATE OR REPLACE FUNCTION ent.audit_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_old      jsonb;
    v_new      jsonb;
    v_row      jsonb;
    v_changed  jsonb := '{}'::jsonb;
    v_key      text;
    v_val      jsonb;
    v_what     text;
    v_actor    text := nullif(current_setting('ent.actor', true), '');
    v_tenant   uuid;
    v_target   text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        v_old := to_jsonb(OLD);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        v_new := to_jsonb(NEW);
    END IF;
    v_row := coalesce(v_new, v_old);

    FOR v_key IN SELECT jsonb_object_keys(v_row) LOOP
        CONTINUE WHEN v_key IN ('last_used_at', 'updated_at', 'created_at',
                                'version');
        CONTINUE WHEN TG_OP = 'UPDATE'
                      AND v_new -> v_key IS NOT DISTINCT FROM v_old -> v_key;
        CONTINUE WHEN TG_OP = 'DELETE' AND v_key NOT IN ('id', 'code',
                                                         'name', 'role');

        v_val := v_row -> v_key;

        IF v_key ~ '(secret|_enc$|sha256|password|key)'
           OR (jsonb_typeof(v_val) = 'string' AND length(v_val #>> '{}') > 200)
        THEN
            v_val := to_jsonb('(changed)'::text);
        END IF;

        v_changed := v_changed || jsonb_build_object(v_key, v_val);
    END LOOP;

    IF TG_OP = 'UPDATE' AND v_changed = '{}'::jsonb THEN
        RETURN NULL;
    END IF;

    v_what := CASE TG_OP WHEN 'INSERT' THEN 'create'
                         WHEN 'UPDATE' THEN 'update' ELSE 'delete' END;

    IF TG_TABLE_NAME = 'scim_tokens' AND TG_OP = 'UPDATE'
       AND v_changed ? 'revoked_at' AND v_new ->> 'revoked_at' IS NOT NULL
    THEN
        v_what := 'revoke';
    END IF;

    IF TG_TABLE_NAME = 'tenants' THEN
        v_tenant := (v_row ->> 'id')::uuid;
        v_target := v_row ->> 'code';
    ELSE
        v_tenant := ent.audit_uuid(v_row ->> 'tenant_id');
        v_target := coalesce(v_row ->> 'id', v_row ->> 'domain',
                             v_row ->> 'code', v_row ->> 'name',
                             v_row ->> 'role', v_row ->> 'category',
                             v_row ->> 'tenant_id');
    END IF;

    PERFORM ent.audit_log(v_tenant, coalesce(v_actor, session_user::text),
                          CASE WHEN v_actor IS NULL THEN 'system'
                               ELSE 'platform_admin' END,
                          TG_ARGV[0] || '.' || v_what, TG_ARGV[1], v_target,
                          'success', NULL,
                          jsonb_build_object('table', TG_TABLE_NAME,
                                             'changed', v_changed));
    RETURN NULL;
END
$$;

DO $$
DECLARE
    v_t  text[];
BEGIN
    FOREACH v_t SLICE 1 IN ARRAY ARRAY[
        ['tenants', 'tenant', 'tenant'],
        ['tenant_domains', 'tenant.domain', 'domain'],
        ['plans', 'plan', 'plan'],
        ['features', 'feature', 'feature'],
        ['ratelimit_overrides', 'tenant.ratelimit', 'policy'],
        ['identity_providers', 'sso.config', 'identity_provider'],
        ['email_domains', 'sso.domain', 'domain'],
        ['group_role_mappings', 'authz.group_role', 'group'],
        ['roles', 'authz.role', 'role'],
        ['role_permissions', 'authz.role_permission', 'role'],
        ['permissions', 'authz.permission', 'permission'],
        ['settings', 'tenant.settings', 'tenant'],
        ['platform_admins', 'platform_admin', 'platform_admin'],
        ['scim_tokens', 'scim_token', 'scim_token'],
        ['sla_targets', 'tenant.sla', 'tenant'],
        ['audit_retention', 'audit.retention', 'category']]
    LOOP
        IF to_regclass('ent.' || v_t[1]) IS NULL THEN
            CONTINUE;
        END IF;

        EXECUTE format('DROP TRIGGER IF EXISTS audit_change ON ent.%I',
                       v_t[1]);
        EXECUTE format('CREATE TRIGGER audit_change AFTER INSERT OR UPDATE '
                       'OR DELETE ON ent.%I FOR EACH ROW EXECUTE FUNCTION '
                       'ent.audit_change(%L, %L)', v_t[1], v_t[2], v_t[3]);
    END LOOP;
END
$$;

-- how long a row of a tenant and category is kept

CREATE OR REPLACE FUNCTION ent.audit_keep(p_tenant uuid, p_category text)
RETURNS interval
LANGUAGE sql
STABLE
AS $$
    SELECT coalesce(
        (SELECT keep FROM ent.audit_retention
          WHERE tenant_id = p_tenant AND category = p_category),
        (SELECT keep FROM ent.audit_retention
          WHERE tenant_id = p_tenant AND category = '*'),
        (SELECT keep FROM ent.audit_retention
          WHERE tenant_id IS NULL AND category = p_category),
        (SELECT keep FROM ent.audit_retention
          WHERE tenant_id IS NULL AND category = '*'),
        interval '2 years')
$$;

-- entctl audit prune: a month partition goes once every row in it has
-- passed the longest retention of any tenant and category; in the months
-- kept, the rows whose own retention has passed are deleted.  Returns
-- what it did (or would do, p_dry), and records it.

CREATE OR REPLACE FUNCTION ent.audit_prune(p_dry boolean, p_actor text)
RETURNS TABLE (part text, what text, rows bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    v_longest  interval;
    v_p        record;
    v_n        bigint;
    v_done     jsonb := '[]'::jsonb;
BEGIN
    SELECT max(keep) INTO v_longest FROM ent.audit_retention;
    v_longest := greatest(coalesce(v_longest, interval '2 years'),
                          interval '1 month');

    FOR v_p IN
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                             'TO \(''([^'']+)''\)'))[1]::timestamptz AS upto
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'ent.audit'::regclass
         ORDER BY c.relname
    LOOP
        IF v_p.upto <= now() - v_longest THEN
            EXECUTE format('SELECT count(*) FROM ent.%I', v_p.relname)
               INTO v_n;
            IF NOT p_dry THEN
                EXECUTE format('DROP TABLE ent.%I', v_p.relname);
            END IF;
            part := v_p.relname; what := 'dropped'; rows := v_n;
            v_done := v_done || jsonb_build_object('partition', part,
                                                   'dropped', v_n);
            RETURN NEXT;
            CONTINUE;
        END IF;

        IF p_dry THEN
            EXECUTE format('SELECT count(*) FROM ent.%I a WHERE a.at < now() '
                           '- ent.audit_keep(a.tenant_id, a.category)',
                           v_p.relname) INTO v_n;
        ELSE
            EXECUTE format('DELETE FROM ent.%I a WHERE a.at < now() '
                           '- ent.audit_keep(a.tenant_id, a.category)',
                           v_p.relname);
            GET DIAGNOSTICS v_n = ROW_COUNT;
        END IF;

        IF v_n > 0 THEN
            part := v_p.relname; what := 'rows expired'; rows := v_n;
            v_done := v_done || jsonb_build_object('partition', part,
                                                   'deleted', v_n);
            RETURN NEXT;
        END IF;
    END LOOP;

    DELETE FROM ent.audit_parts WHERE at < now() - interval '7 days';

    IF NOT p_dry THEN
        PERFORM ent.audit_log(NULL, p_actor, 'platform_admin', 'audit.prune',
                              NULL, NULL, 'success', NULL,
                              jsonb_build_object('pruned', v_done));
    END IF;
END
$$;
