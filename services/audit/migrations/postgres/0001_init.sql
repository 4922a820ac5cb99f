-- Audit trail (PostgreSQL). Times are microseconds since the Unix epoch.
--
-- Append-only: the triggers below refuse UPDATE, DELETE and TRUNCATE, so even
-- a bug or a hand-typed statement cannot rewrite history through the normal
-- path. Someone who disables the triggers can, and VerifyChain then names the
-- first event whose hash no longer matches.
--
-- Text columns use the "C" collation so that ordering and the resource prefix
-- filter (a byte-wise range) behave exactly as on SQLite, whatever the
-- database's default locale.
CREATE TABLE audit_events (
    sequence       BIGINT PRIMARY KEY,           -- position in the chain, from 1
    actor          TEXT COLLATE "C" NOT NULL,
    action         TEXT COLLATE "C" NOT NULL,
    resource       TEXT COLLATE "C" NOT NULL,
    event_time     BIGINT NOT NULL,
    request_id     TEXT COLLATE "C" NOT NULL,
    details        TEXT NOT NULL,                -- JSON, exactly the text that was hashed; not JSONB, which would renormalise it
    source         TEXT COLLATE "C" NOT NULL,
    source_id      TEXT COLLATE "C" NOT NULL,
    previous_hash  TEXT NOT NULL,
    hash           TEXT NOT NULL
);
-- Appending is idempotent on (source, source_id).
CREATE UNIQUE INDEX audit_events_by_source ON audit_events (source, source_id);
-- Filters are combined with keyset pagination on sequence.
CREATE INDEX audit_events_by_time ON audit_events (event_time, sequence);
CREATE INDEX audit_events_by_actor ON audit_events (actor, sequence);
CREATE INDEX audit_events_by_action ON audit_events (action, sequence);
CREATE INDEX audit_events_by_resource ON audit_events (resource, sequence);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- The end of the chain. Every append updates this row first, and the row lock
-- serialises appenders across connections and replicas; VerifyChain compares
-- it with the last event to notice a truncated tail.
CREATE TABLE chain_head (
    id        SMALLINT PRIMARY KEY CHECK (id = 1),
    sequence  BIGINT NOT NULL,
    hash      TEXT NOT NULL
);
INSERT INTO chain_head (id, sequence, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION chain_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        RAISE EXCEPTION 'the audit chain head cannot be deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.sequence < OLD.sequence OR NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'the audit chain head only moves forward' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER chain_head_forward_only BEFORE UPDATE OR DELETE ON chain_head
    FOR EACH ROW EXECUTE FUNCTION chain_head_forward_only();
CREATE TRIGGER chain_head_no_truncate BEFORE TRUNCATE ON chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION chain_head_forward_only();
