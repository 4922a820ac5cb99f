-- Scheduler schema (PostgreSQL). Times are Unix seconds. Every text column
-- that is indexed uses the "C" collation: byte order, as on SQLite, so pages
-- match across backends, and index maintenance compares bytes instead of
-- calling strcoll.
CREATE TABLE jobs (
    id                TEXT COLLATE "C" PRIMARY KEY,   -- 32 hex digits
    kind              TEXT COLLATE "C" NOT NULL,
    state             TEXT COLLATE "C" NOT NULL,
    certificate       TEXT COLLATE "C",               -- certificates/{id}, NULL when none
    idempotency_key   TEXT COLLATE "C" NOT NULL UNIQUE,
    payload           TEXT NOT NULL,                  -- JSON
    result            TEXT,                           -- JSON, once succeeded
    error_code        TEXT,
    error_message     TEXT,
    attempts          BIGINT NOT NULL DEFAULT 0,
    max_attempts      BIGINT NOT NULL,
    run_at            BIGINT NOT NULL,
    lease_owner       TEXT,
    lease_token       TEXT,
    lease_expires_at  BIGINT,
    -- When the job next becomes claimable: run_at while pending, the lease's
    -- expiry while running, the agent timeout while awaiting one; NULL when
    -- nothing will make it runnable. One column so claiming is one range scan.
    due_at            BIGINT,
    create_time       BIGINT NOT NULL,
    update_time       BIGINT NOT NULL
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
    seq          BIGSERIAL PRIMARY KEY,
    job_id       TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    time         BIGINT NOT NULL,
    from_state   TEXT,                                -- NULL for the creation
    to_state     TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    message      TEXT NOT NULL
);
CREATE INDEX job_events_by_job ON job_events (job_id, seq);

-- Audit events waiting for the relay, committed with the change they
-- describe. The same shape as every service's outbox, so one relay serves all.
CREATE TABLE outbox (
    id     BIGSERIAL PRIMARY KEY,
    event  TEXT NOT NULL
);
