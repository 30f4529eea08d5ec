-- Submit in one round trip (issue 18): the whole turn is one call of easel_submit(), one
-- statement and so one transaction, with no BEGIN/COMMIT and no lock held between round
-- trips. It does what core/submit.py did in five: store the turn (user, starter grant,
-- session, message), check the limits under the account lock, switch the model, open
-- the compare, reserve the credits and queue each generation, record the uploads.
--
-- Python plans the generations (model, size, cost, seed) from what it assumes of the
-- thread (`assumed`: the session's model and head, the parent's fields the plan used).
-- The function compares that with the thread as it is, under the session's row lock, and
-- when they differ raises EA000 with the facts, so Python plans again with them. Every
-- refusal is an error, so a refused turn leaves nothing behind:
--   EA000 replan (DETAIL: the facts as JSON)   EA001 duplicate (DETAIL: its generation)
--   EA002 too many active   EA003 rate limited  EA004 insufficient (DETAIL: available, HINT: cost)
CREATE FUNCTION easel_submit(t jsonb, assumed jsonb, plan jsonb,
                             OUT sid bigint, OUT ids bigint[])
LANGUAGE plpgsql AS $$
DECLARE
    uid bigint; smodel text; shead bigint; mid bigint;
    pid bigint; facts jsonb; found_id bigint; n int := jsonb_array_length(plan);
    avail bigint; item jsonb; gid bigint; rid bigint;
BEGIN
    ids := '{}';
    WITH u AS (
        INSERT INTO users (platform, workspace, external_id, display_name)
        VALUES (t->>'user_platform', t->>'user_workspace', t->>'external_id', t->>'display_name')
        ON CONFLICT (platform, workspace, external_id)
        DO UPDATE SET display_name = CASE WHEN EXCLUDED.display_name = ''
                                          THEN users.display_name
                                          ELSE EXCLUDED.display_name END
        RETURNING id
    ), a AS (
        INSERT INTO accounts (user_id, granted, available)
        SELECT id, (t->>'starter')::bigint, (t->>'starter')::bigint FROM u
        ON CONFLICT (user_id) DO NOTHING
        RETURNING user_id
    ), l AS (
        INSERT INTO ledger (user_id, kind, amount, reason, idempotency_key)
        SELECT user_id, 'grant', (t->>'starter')::bigint, 'starter grant', 'starter:' || user_id
        FROM a
    ), s AS (
        INSERT INTO sessions (platform, workspace, channel, thread, model, created_by)
        SELECT t->>'platform', t->>'workspace', t->>'channel', t->>'thread',
               t->>'default_model', id FROM u
        ON CONFLICT (platform, workspace, channel, thread) DO UPDATE SET deleted_at = NULL
        RETURNING id, model, head_generation_id
    ), m AS (
        INSERT INTO messages (session_id, role, user_id, text, attachments, platform_message_id)
        SELECT s.id, 'user', u.id, t->>'text', t->'attachments', t->>'platform_message_id'
        FROM u, s
        RETURNING id
    )
    SELECT u.id, s.id, s.model, s.head_generation_id, m.id
    INTO uid, sid, smodel, shead, mid FROM u, s, m;

    -- The session's row is locked now: its model and head stay as read until commit.
    pid := coalesce((t->>'target_id')::bigint, shead);
    facts := jsonb_build_object('model', smodel, 'head', shead, 'parent', (
        SELECT jsonb_build_object('id', p.id, 'model', p.model, 'user_prompt', p.user_prompt,
            'aspect_ratio', p.params->'aspect_ratio', 'resolution', p.params->'resolution',
            'seed', p.params->'seed')
        FROM generations p WHERE p.id = pid));
    IF plan IS NULL OR facts IS DISTINCT FROM assumed THEN
        RAISE EXCEPTION 'easel: plan again' USING ERRCODE = 'EA000', DETAIL = (facts
            || jsonb_build_object('existing', (SELECT id FROM generations
                WHERE platform = t->>'platform' AND source_event = t->>'event0'))
            )::text;
    END IF;

    -- The limits, under the account lock (the same counts as core.submit.LIMITS).
    SELECT available INTO avail FROM accounts WHERE user_id = uid FOR UPDATE;
    SELECT id INTO found_id FROM generations
    WHERE platform = t->>'platform' AND source_event = t->>'event0';
    IF found_id IS NOT NULL THEN
        RAISE EXCEPTION 'easel: duplicate' USING ERRCODE = 'EA001', DETAIL = found_id::text;
    END IF;
    IF (SELECT count(*) FROM generations g WHERE g.user_id = uid
          AND g.status IN ('queued', 'running', 'waiting')) + n > (t->>'max_active')::int THEN
        RAISE EXCEPTION 'easel: too many active' USING ERRCODE = 'EA002';
    END IF;
    IF (SELECT count(*) FROM generations g WHERE g.user_id = uid
          AND g.created_at > now() - interval '1 minute') + n > (t->>'rate')::int THEN
        RAISE EXCEPTION 'easel: rate limited' USING ERRCODE = 'EA003';
    END IF;

    IF t->>'set_model' IS NOT NULL THEN
        UPDATE sessions SET model = t->>'set_model' WHERE id = sid;
    END IF;
    IF t->'compare' IS NOT NULL AND jsonb_typeof(t->'compare') = 'object' THEN
        INSERT INTO compare_groups (id, session_id, platform, models, cost, status_message)
        SELECT t->'compare'->>'id', sid, t->>'platform',
               ARRAY(SELECT jsonb_array_elements_text(t->'compare'->'models')),
               (t->'compare'->>'cost')::bigint, nullif(t->'status_message', 'null');
    END IF;

    -- Each generation: debit only what is there, then the generation, its reservation and
    -- the reservation's ledger entry (as core.credits composes them for RESERVE).
    FOR item IN SELECT value FROM jsonb_array_elements(plan) LOOP
        UPDATE accounts SET available = available - (item->>'cost')::bigint,
            reserved = reserved + (item->>'cost')::bigint, updated_at = now()
        WHERE user_id = uid AND available >= (item->>'cost')::bigint
        RETURNING available INTO avail;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'easel: insufficient' USING ERRCODE = 'EA004', DETAIL = (
                SELECT available FROM accounts WHERE user_id = uid)::text,
                HINT = item->>'cost';
        END IF;
        -- One statement: the generation and its reservation refer to each other.
        rid := nextval(pg_get_serial_sequence('reservations', 'id'));
        gid := NULL;
        WITH g AS (
            INSERT INTO generations (session_id, message_id, user_id, platform, source_event,
                model, params, intent, user_prompt, parent_id, compare_group, max_attempts,
                deadline_at, reservation_id, cost, status_message)
            VALUES (sid, mid, uid, t->>'platform', item->>'event', item->>'model',
                item->'params', item->>'intent', item->>'user_prompt',
                (item->>'parent_id')::bigint, t->>'group', (t->>'max_attempts')::int,
                now() + make_interval(secs => (t->>'timeout_s')::float8), rid,
                (item->>'cost')::bigint, nullif(t->'status_message', 'null'))
            ON CONFLICT (platform, source_event) DO NOTHING
            RETURNING id
        ), r AS (
            INSERT INTO reservations (id, user_id, amount, expires_at, generation_id)
            SELECT rid, uid, (item->>'cost')::bigint,
                   now() + make_interval(secs => (t->>'ttl_s')::float8), g.id FROM g
        ), e AS (
            INSERT INTO ledger (user_id, kind, amount, reason, reservation_id, generation_id,
                                idempotency_key)
            SELECT uid, 'reserve', (item->>'cost')::bigint, item->>'reason', rid, g.id,
                   'reserve:' || rid FROM g
        )
        SELECT id INTO gid FROM g;
        IF gid IS NULL THEN  -- the same event was queued a moment ago by someone else
            RAISE EXCEPTION 'easel: duplicate' USING ERRCODE = 'EA001', DETAIL = (
                SELECT id FROM generations WHERE platform = t->>'platform'
                AND source_event = item->>'event')::text;
        END IF;
        PERFORM pg_notify(t->>'notify', gid::text);
        ids := ids || gid;
    END LOOP;
    UPDATE messages SET generation_id = ids[n] WHERE id = mid;

    IF jsonb_array_length(coalesce(t->'uploads', '[]')) > 0 THEN
        INSERT INTO assets (message_id, kind, idx, object_key, content_type, size_bytes, sha256)
        SELECT mid, 'upload', ord - 1, u->>'key', u->>'content_type',
               (u->>'size_bytes')::bigint, u->>'sha256'
        FROM jsonb_array_elements(t->'uploads') WITH ORDINALITY AS x(u, ord)
        ON CONFLICT (object_key) DO NOTHING;
    END IF;
END
$$;
