-- restorebox stand-in for pgmq (Supabase Queues), written from pgmq's public API docs.
-- A queue is two tables in schema pgmq: q_<name> (messages) and a_<name> (archived).
-- Dumps of Supabase projects carry those tables themselves (the platform detaches them
-- from the extension so logical backups hold the messages), so the stand-in only has to
-- give the catalogue, the record types and the functions applications call. Queue tables
-- made here are not extension members either, for the same reason.
CREATE TABLE pgmq.meta (
    queue_name varchar UNIQUE NOT NULL,
    is_partitioned boolean NOT NULL DEFAULT false,
    is_unlogged boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('pgmq.meta', '');

CREATE TYPE pgmq.message_record AS (
    msg_id bigint, read_ct integer, enqueued_at timestamptz, vt timestamptz, message jsonb
);
CREATE TYPE pgmq.queue_record AS (
    queue_name varchar, is_partitioned boolean, is_unlogged boolean, created_at timestamptz
);

-- The queue's table name, checked: letters, digits and _ only (it is spliced into SQL).
CREATE FUNCTION pgmq._table(queue_name text, prefix text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF queue_name !~ '^[A-Za-z0-9_]{1,47}$' THEN
        RAISE EXCEPTION 'queue name % is not letters, digits and _ (at most 47)', queue_name;
    END IF;
    RETURN prefix || '_' || lower(queue_name);
END $$;

CREATE FUNCTION pgmq._create(queue_name text, unlogged boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    kind text := CASE WHEN unlogged THEN 'UNLOGGED ' ELSE '' END;
BEGIN
    EXECUTE format(
        'CREATE %sTABLE IF NOT EXISTS pgmq.%I (
            msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
            read_ct integer NOT NULL DEFAULT 0,
            enqueued_at timestamptz NOT NULL DEFAULT now(),
            vt timestamptz NOT NULL,
            message jsonb)', kind, pgmq._table(queue_name, 'q'));
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS pgmq.%I (
            msg_id bigint PRIMARY KEY,
            read_ct integer NOT NULL DEFAULT 0,
            enqueued_at timestamptz NOT NULL DEFAULT now(),
            archived_at timestamptz NOT NULL DEFAULT now(),
            vt timestamptz NOT NULL,
            message jsonb)', pgmq._table(queue_name, 'a'));
    INSERT INTO pgmq.meta (queue_name, is_unlogged) VALUES (queue_name, unlogged)
    ON CONFLICT DO NOTHING;
END $$;

CREATE FUNCTION pgmq.create(queue_name text) RETURNS void
LANGUAGE sql AS $$ SELECT pgmq._create(queue_name, false) $$;
CREATE FUNCTION pgmq.create_unlogged(queue_name text) RETURNS void
LANGUAGE sql AS $$ SELECT pgmq._create(queue_name, true) $$;

CREATE FUNCTION pgmq.drop_queue(queue_name text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS pgmq.%I, pgmq.%I',
                   pgmq._table(queue_name, 'q'), pgmq._table(queue_name, 'a'));
    DELETE FROM pgmq.meta m WHERE m.queue_name = drop_queue.queue_name;
    RETURN true;
END $$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer DEFAULT 0)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'INSERT INTO pgmq.%I (vt, message)
         SELECT now() + make_interval(secs => $1), m FROM unnest($2) AS m
         RETURNING msg_id', pgmq._table(queue_name, 'q'))
    USING delay, msgs;
END $$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer DEFAULT 0)
RETURNS SETOF bigint LANGUAGE sql AS $$
    SELECT pgmq.send_batch(queue_name, ARRAY[msg], delay)
$$;

-- Read up to qty visible messages and hide them for vt seconds.
CREATE FUNCTION pgmq.read(queue_name text, vt integer, qty integer)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH due AS (
             SELECT msg_id FROM pgmq.%1$I WHERE vt <= now()
             ORDER BY msg_id LIMIT $2 FOR UPDATE SKIP LOCKED)
         UPDATE pgmq.%1$I q SET vt = now() + make_interval(secs => $1),
                               read_ct = q.read_ct + 1
         FROM due WHERE q.msg_id = due.msg_id
         RETURNING q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message',
        pgmq._table(queue_name, 'q'))
    USING vt, qty;
END $$;

CREATE FUNCTION pgmq.pop(queue_name text)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH due AS (
             SELECT msg_id FROM pgmq.%1$I WHERE vt <= now()
             ORDER BY msg_id LIMIT 1 FOR UPDATE SKIP LOCKED)
         DELETE FROM pgmq.%1$I q USING due WHERE q.msg_id = due.msg_id
         RETURNING q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message',
        pgmq._table(queue_name, 'q'));
END $$;

CREATE FUNCTION pgmq.delete(queue_name text, msg_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    found bigint;
BEGIN
    EXECUTE format('DELETE FROM pgmq.%I WHERE msg_id = $1 RETURNING msg_id',
                   pgmq._table(queue_name, 'q'))
    INTO found USING msg_id;
    RETURN found IS NOT NULL;
END $$;

CREATE FUNCTION pgmq.archive(queue_name text, msg_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    found bigint;
BEGIN
    EXECUTE format(
        'WITH gone AS (DELETE FROM pgmq.%I WHERE msg_id = $1 RETURNING *)
         INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, vt, message)
         SELECT msg_id, read_ct, enqueued_at, vt, message FROM gone RETURNING msg_id',
        pgmq._table(queue_name, 'q'), pgmq._table(queue_name, 'a'))
    INTO found USING msg_id;
    RETURN found IS NOT NULL;
END $$;

CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'UPDATE pgmq.%I SET vt = now() + make_interval(secs => $2) WHERE msg_id = $1
         RETURNING msg_id, read_ct, enqueued_at, vt, message', pgmq._table(queue_name, 'q'))
    USING msg_id, vt;
END $$;

CREATE FUNCTION pgmq.purge_queue(queue_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    gone bigint;
BEGIN
    EXECUTE format('DELETE FROM pgmq.%I', pgmq._table(queue_name, 'q'));
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END $$;

-- The catalogue, and queues whose tables a dump brought without their catalogue row.
CREATE FUNCTION pgmq.list_queues() RETURNS SETOF pgmq.queue_record
LANGUAGE sql STABLE AS $$
    SELECT queue_name, is_partitioned, is_unlogged, created_at FROM pgmq.meta
    UNION ALL
    SELECT substr(c.relname, 3)::varchar, c.relkind = 'p', c.relpersistence = 'u', NULL
    FROM pg_class c
    WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relkind IN ('r', 'p')
      AND c.relname LIKE 'q\_%'
      AND NOT EXISTS (SELECT FROM pgmq.meta m WHERE m.queue_name = substr(c.relname, 3))
    ORDER BY 1
$$;
