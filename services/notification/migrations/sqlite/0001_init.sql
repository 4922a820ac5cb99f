-- The notification service's tables (SQLite). Times are Unix seconds;
-- booleans are 0/1.

CREATE TABLE channels (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- The settings without secrets, as JSON.
    config TEXT NOT NULL,
    -- The secrets as JSON, sealed under the master key; NULL when none.
    sealed_secret TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    request_id TEXT UNIQUE,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL
);

CREATE TABLE routing_rules (
    id TEXT PRIMARY KEY,
    -- The rule as JSON (channels, event types, severity, owners, teams, environments).
    rule TEXT NOT NULL,
    request_id TEXT UNIQUE,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL
);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    -- An event is recorded once: a second record with the same key is dropped.
    dedup_key TEXT NOT NULL UNIQUE,
    alert_key TEXT NOT NULL,
    event_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    certificate TEXT NOT NULL,
    certificate_version TEXT NOT NULL,
    owner TEXT NOT NULL,
    team TEXT NOT NULL,
    environment TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    recipients TEXT NOT NULL,
    details TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    resolve_time INTEGER
);
CREATE INDEX notifications_by_time ON notifications (create_time, id);
CREATE INDEX notifications_open_alerts ON notifications (certificate) WHERE alert_key <> '' AND resolve_time IS NULL;

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    notification_id TEXT NOT NULL REFERENCES notifications (id),
    channel_id TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    -- Due time while pending; while an attempt runs, the end of its lease.
    next_attempt_at INTEGER,
    claim_token TEXT,
    last_error TEXT NOT NULL DEFAULT '',
    response_status INTEGER NOT NULL DEFAULT 0,
    response_excerpt TEXT NOT NULL DEFAULT '',
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    UNIQUE (notification_id, channel_id, action)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_time ON deliveries (create_time, id);

CREATE TABLE inbox_items (
    id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    notification_id TEXT NOT NULL REFERENCES notifications (id),
    certificate TEXT NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    create_time INTEGER NOT NULL,
    UNIQUE (recipient, notification_id)
);
CREATE INDEX inbox_by_recipient ON inbox_items (recipient, create_time, id);
CREATE INDEX inbox_by_certificate ON inbox_items (recipient, certificate);

-- Where followers stand, e.g. the last audit sequence read.
CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Leadership of the singleton loops: a lease a replica renews.
CREATE TABLE leaders (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL
);
