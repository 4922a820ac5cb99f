-- Inventory schema (PostgreSQL). Times are Unix seconds. Text that is sorted or
-- compared for pagination uses the "C" collation: byte order, as on SQLite,
-- whatever locale the cluster was created with.
CREATE TABLE certificates (
    id               TEXT COLLATE "C" PRIMARY KEY,
    display_name     TEXT NOT NULL,
    common_name      TEXT NOT NULL,
    sans             TEXT NOT NULL,              -- JSON array
    owner            TEXT NOT NULL,              -- '' when unset
    team             TEXT NOT NULL,
    environment      TEXT NOT NULL,
    issuer           TEXT NOT NULL,
    profile          TEXT NOT NULL,
    renewal_policy   TEXT NOT NULL,
    targets          TEXT NOT NULL,              -- JSON array
    labels           TEXT NOT NULL,              -- JSON object
    metadata         TEXT NOT NULL,              -- JSON object
    search_text      TEXT NOT NULL,              -- lower-case CN and SANs, space separated
    current_version  BIGINT,                    -- NULL while pending
    serial_number    TEXT NOT NULL DEFAULT '',
    fingerprint      TEXT NOT NULL DEFAULT '',
    not_before       BIGINT,
    expiry_key       BIGINT NOT NULL,           -- not_after, or i64::MAX while pending
    expiring_at      BIGINT,                    -- expiry_key - alert_lead_secs
    alert_lead_secs  BIGINT NOT NULL,
    revoked          BOOLEAN NOT NULL DEFAULT FALSE,
    create_time      BIGINT NOT NULL,
    update_time      BIGINT NOT NULL
);
CREATE INDEX certificates_by_expiry ON certificates (expiry_key, id);
CREATE INDEX certificates_by_owner ON certificates (owner, expiry_key, id);
CREATE INDEX certificates_by_team ON certificates (team, expiry_key, id);
CREATE INDEX certificates_by_environment ON certificates (environment, expiry_key, id);
CREATE INDEX certificates_by_issuer ON certificates (issuer, expiry_key, id);
CREATE INDEX certificates_by_policy ON certificates (renewal_policy);
CREATE INDEX certificates_by_create_time ON certificates (create_time, id);
CREATE INDEX certificates_by_expiring_at ON certificates (expiring_at);

CREATE TABLE certificate_versions (
    certificate_id   TEXT COLLATE "C" NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    version          BIGINT NOT NULL,
    pem_chain        TEXT NOT NULL,
    serial_number    TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    subject          TEXT NOT NULL,
    issuer_dn        TEXT NOT NULL,
    common_name      TEXT NOT NULL,
    sans             TEXT NOT NULL,
    key_algorithm    TEXT NOT NULL,
    key_size         BIGINT NOT NULL,
    not_before       BIGINT NOT NULL,
    not_after        BIGINT NOT NULL,
    create_time      BIGINT NOT NULL,
    PRIMARY KEY (certificate_id, version)
);
CREATE INDEX certificate_versions_by_fingerprint ON certificate_versions (fingerprint);

CREATE TABLE owners (id TEXT COLLATE "C" PRIMARY KEY, body TEXT NOT NULL, create_time BIGINT NOT NULL, update_time BIGINT NOT NULL);
CREATE TABLE teams (id TEXT COLLATE "C" PRIMARY KEY, body TEXT NOT NULL, create_time BIGINT NOT NULL, update_time BIGINT NOT NULL);
CREATE TABLE targets (id TEXT COLLATE "C" PRIMARY KEY, body TEXT NOT NULL, create_time BIGINT NOT NULL, update_time BIGINT NOT NULL);
CREATE TABLE agents (id TEXT COLLATE "C" PRIMARY KEY, body TEXT NOT NULL, create_time BIGINT NOT NULL, update_time BIGINT NOT NULL);
CREATE TABLE renewal_policies (id TEXT COLLATE "C" PRIMARY KEY, body TEXT NOT NULL, create_time BIGINT NOT NULL, update_time BIGINT NOT NULL);

-- Audit events waiting for the relay, committed with the mutation they describe.
CREATE TABLE outbox (
    id     BIGSERIAL PRIMARY KEY,
    event  TEXT NOT NULL
);

-- request_id of idempotent creates and what they created.
CREATE TABLE request_ids (
    request_id   TEXT PRIMARY KEY,
    resource     TEXT NOT NULL,
    create_time  BIGINT NOT NULL
);

-- Substring search over common names and SANs.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE INDEX certificates_search ON certificates USING gin (search_text public.gin_trgm_ops);
