-- Scheduler schema (SQLite). Times are Unix seconds.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,               -- 32 hex digits
    kind              TEXT NOT NULL,
    state             TEXT NOT NULL,
    certificate       TEXT,                           -- certificates/{id}, NULL when none
    idempotency_key   TEXT NOT NULL UNIQUE,
    payload           TEXT NOT NULL,                  -- JSON
    result            TEXT,                           -- JSON, once succeeded
    error_code        TEXT,
    error_message     TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    run_at            INTEGER NOT NULL,
    lease_owner       TEXT,
    lease_token       TEXT,
    lease_expires_at  INTEGER,
    -- When the job next becomes claimable: run_at while pending, the lease's
    -- expiry while running, the agent timeout while awaiting one; NULL when
    -- nothing will make it runnable. One column so claiming is one range scan.
    due_at            INTEGER,
    create_time       INTEGER NOT NULL,
    update_time       INTEGER NOT NULL
);
-- Indexes cost every bulk enqueue: claims need jobs_due, listings their
-- order, by state (the rare ones: failed, running) and by certificate (its
-- job history). A kind filter rides on the creation order.
CREATE INDEX jobs_due ON jobs (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX jobs_by_create_time ON jobs (create_time, id);
CREATE INDEX jobs_by_state ON jobs (state, create_time, id);
CREATE INDEX jobs_by_certificate ON jobs (certificate, create_time, id) WHERE certificate IS NOT NULL;

-- Every transition of every job, for the job's timeline. The creation is not
-- stored here: it is read from the job row, so a bulk enqueue writes one row
-- per job, not two.
CREATE TABLE job_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    time         INTEGER NOT NULL,
    from_state   TEXT,                                -- NULL for the creation
    to_state     TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    message      TEXT NOT NULL
);
CREATE INDEX job_events_by_job ON job_events (job_id, seq);

-- Audit events waiting for the relay, committed with the change they
-- describe. The same shape as every service's outbox, so one relay serves all.
CREATE TABLE outbox (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    event  TEXT NOT NULL
);
