-- doorman's PostgreSQL contract: how an application's database gives doorman
-- its entities and tells it what changed.
--
-- Run this once per database (it is idempotent), then define the view
-- `doorman.entities` over your own tables and call `doorman.record_change`
-- from triggers on them. `sql/example-bundled.sql` does both for the bundled
-- team-workspace model; the README walks through it.
--
--   doorman serve --entities 'postgres://doorman@db.internal/app' ...
--
-- What doorman reads (all of it read-only; grant it SELECT on the doorman
-- schema's objects and USAGE on the schema):
--
--   doorman.entities (uid_type text, uid_id text, attrs jsonb, parents jsonb)
--     One row per entity, in Cedar's entity JSON: `attrs` an object,
--     `parents` an array of {"type": ..., "id": ...}. Entity references in
--     attributes may use the short {"type", "id"} form; values are read
--     against the Cedar schema, as entity files are. A view you define.
--
--   doorman.entity_changes
--     One row per changed entity, written by doorman.record_change in the
--     same transaction as the change itself. doorman reads it by
--     transaction id (`xid`), not by `seq`: a sequence number is handed out
--     at insert time, so a transaction that commits late would be skipped by
--     a reader that only looks past the highest `seq` it has seen.
--
--   doorman.entity_changes_pruned
--     How far doorman.prune_changes has deleted the log. A doorman whose
--     position is older (it was away for longer than the retention) reads
--     doorman.entities in full again instead.

CREATE SCHEMA IF NOT EXISTS doorman;

CREATE TABLE IF NOT EXISTS doorman.entity_changes (
    seq      bigserial   PRIMARY KEY,
    uid_type text        NOT NULL,
    uid_id   text        NOT NULL,
    -- 'upsert' or 'delete'; informational: doorman reads the entity's
    -- current row either way (no row means the entity is gone).
    op       text        NOT NULL CHECK (op IN ('upsert', 'delete')),
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    xid      xid8        NOT NULL DEFAULT pg_current_xact_id()
);

CREATE INDEX IF NOT EXISTS entity_changes_xid ON doorman.entity_changes (xid);
CREATE INDEX IF NOT EXISTS entity_changes_at ON doorman.entity_changes (at);

CREATE TABLE IF NOT EXISTS doorman.entity_changes_pruned (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    -- The newest transaction id whose change rows may have been deleted.
    through  xid8    NOT NULL
);

-- Records that an entity changed, and wakes every doorman following the
-- database (at commit; a rolled-back change wakes nobody and leaves no row).
-- Call it from your triggers: once per entity whose row in doorman.entities
-- the statement changes (a member's row when an assignment table changes,
-- a company's row when its admin count does).
CREATE OR REPLACE FUNCTION doorman.record_change(uid_type text, uid_id text, op text DEFAULT 'upsert')
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO doorman.entity_changes (uid_type, uid_id, op) VALUES (uid_type, uid_id, op);
    -- An empty payload: PostgreSQL folds identical notifications of one
    -- transaction into one, so a bulk update wakes each doorman once.
    PERFORM pg_notify('doorman_entities', '');
END;
$$;

-- Deletes change rows older than `keep` and records how far it went.
-- Schedule it (pg_cron, or your own job); a doorman away for longer than
-- `keep` catches up with a full read rather than missing changes.
CREATE OR REPLACE FUNCTION doorman.prune_changes(keep interval DEFAULT interval '1 day')
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    newest xid8;
    removed bigint;
BEGIN
    SELECT max(xid) INTO newest FROM doorman.entity_changes WHERE at < clock_timestamp() - keep;
    IF newest IS NULL THEN
        RETURN 0;
    END IF;
    -- Recorded first, in the same transaction: a reader never sees rows
    -- gone without the horizon that says so.
    INSERT INTO doorman.entity_changes_pruned (only_row, through) VALUES (true, newest)
    ON CONFLICT (only_row) DO UPDATE SET through = greatest(doorman.entity_changes_pruned.through, excluded.through);
    DELETE FROM doorman.entity_changes WHERE xid <= newest;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END;
$$;
