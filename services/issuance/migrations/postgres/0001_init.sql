-- The issuance service's tables. CA and server-generated private keys are
-- stored only sealed under the master key (see certctl_common::secret).

-- Which master key this database was sealed with, as a sealed canary that
-- start-up opens before touching anything else.
CREATE TABLE master_key_check (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    key_id  TEXT NOT NULL,
    canary  TEXT NOT NULL
);

CREATE TABLE issuers (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    display_name       TEXT NOT NULL,
    kind               TEXT NOT NULL,
    config             TEXT NOT NULL,            -- JSON, never secrets
    issuing_authority  TEXT NOT NULL,
    create_time        BIGINT NOT NULL
);

CREATE TABLE authorities (
    issuer_id        TEXT NOT NULL REFERENCES issuers (id),
    id               TEXT NOT NULL,
    role             TEXT NOT NULL,              -- root | intermediate | imported
    parent_id        TEXT,                       -- the authority that signed it, if ours
    certificate_pem  TEXT NOT NULL,
    chain_pem        TEXT NOT NULL,              -- its certificate up to the root
    sealed_key       TEXT,                       -- NULL when the key is not held here
    key_algorithm    TEXT NOT NULL,
    serial_number    TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    subject          TEXT NOT NULL,
    not_before       BIGINT NOT NULL,
    not_after        BIGINT NOT NULL,
    issuing          BOOLEAN NOT NULL,
    create_time      BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, id)
);

CREATE TABLE profiles (
    id           TEXT COLLATE "C" PRIMARY KEY,
    body         TEXT NOT NULL,                  -- JSON
    create_time  BIGINT NOT NULL,
    update_time  BIGINT NOT NULL
);

CREATE TABLE issued (
    issuer_id            TEXT NOT NULL,
    serial               TEXT COLLATE "C" NOT NULL, -- lower-case hex of the DER INTEGER
    authority_id         TEXT NOT NULL,
    pem_chain            TEXT NOT NULL,
    common_name          TEXT NOT NULL,
    sans                 TEXT NOT NULL,          -- JSON array
    profile_id           TEXT NOT NULL,
    certificate_id       TEXT,                   -- the managed certificate, if any
    certificate_version  TEXT,                   -- its inventory version once recorded
    request_id           TEXT UNIQUE,
    not_before           BIGINT NOT NULL,
    not_after            BIGINT NOT NULL,
    sealed_key           TEXT,                   -- server-keyed, until exported
    server_keyed         BOOLEAN NOT NULL,
    revoke_time          BIGINT,
    revocation_reason    BIGINT,
    revocation_synced    BOOLEAN NOT NULL DEFAULT TRUE,
    create_time          BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, serial)
);
CREATE INDEX issued_revoked ON issued (issuer_id, authority_id, revoke_time) WHERE revoke_time IS NOT NULL;
-- What still has to reach the inventory: a version not yet recorded, or a
-- revocation the inventory has not heard of.
CREATE INDEX issued_unsynced ON issued (create_time)
    WHERE certificate_id IS NOT NULL AND (certificate_version IS NULL OR NOT revocation_synced);

CREATE TABLE crls (
    issuer_id     TEXT NOT NULL,
    authority_id  TEXT NOT NULL,
    number        BIGINT NOT NULL,
    der           BYTEA NOT NULL,
    this_update   BIGINT NOT NULL,
    next_update   BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, authority_id)
);

CREATE TABLE outbox (
    id     BIGSERIAL PRIMARY KEY,
    event  TEXT NOT NULL
);
