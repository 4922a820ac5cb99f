-- Audit trail (SQLite). Times are microseconds since the Unix epoch.
--
-- Append-only: the triggers below refuse UPDATE and DELETE, so even a bug or
-- a hand-typed statement cannot rewrite history through the normal path.
-- Someone who drops the triggers can, and VerifyChain then names the first
-- event whose hash no longer matches.
CREATE TABLE audit_events (
    sequence       INTEGER PRIMARY KEY,         -- position in the chain, from 1
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    resource       TEXT NOT NULL,
    event_time     INTEGER NOT NULL,
    request_id     TEXT NOT NULL,
    details        TEXT NOT NULL,               -- JSON, exactly the value that was hashed
    source         TEXT NOT NULL,
    source_id      TEXT NOT NULL,
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

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only: UPDATE is not allowed');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only: DELETE is not allowed');
END;

-- The end of the chain. Every append writes this row first, which takes the
-- database's write lock and so serialises appenders; VerifyChain compares it
-- with the last event to notice a truncated tail.
CREATE TABLE chain_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    sequence  INTEGER NOT NULL,
    hash      TEXT NOT NULL
);
INSERT INTO chain_head (id, sequence, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TRIGGER chain_head_forward_only BEFORE UPDATE ON chain_head
WHEN NEW.sequence < OLD.sequence OR NEW.id <> OLD.id
BEGIN
    SELECT RAISE(ABORT, 'the audit chain head only moves forward');
END;

CREATE TRIGGER chain_head_no_delete BEFORE DELETE ON chain_head
BEGIN
    SELECT RAISE(ABORT, 'the audit chain head cannot be deleted');
END;
