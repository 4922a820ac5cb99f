-- Certificates agents found on their hosts, once per fingerprint, with the
-- PEM a claim imports. state: NEW, CLAIMED (certificate names the managed
-- certificate) or DISMISSED.
CREATE TABLE discovered_certificates (
    id               TEXT COLLATE "C" PRIMARY KEY,  -- the first 32 hex digits of the fingerprint
    fingerprint      TEXT NOT NULL UNIQUE,          -- hex SHA-256 of the DER
    subject          TEXT NOT NULL,
    dns_names        TEXT NOT NULL,                 -- JSON array
    issuer_dn        TEXT NOT NULL,
    serial_number    TEXT NOT NULL,
    not_before       BIGINT NOT NULL,
    not_after        BIGINT NOT NULL,
    pem              TEXT NOT NULL,
    state            TEXT NOT NULL,
    certificate      TEXT NOT NULL,                 -- certificates/{id} once claimed, else ''
    first_seen_time  BIGINT NOT NULL,
    last_seen_time   BIGINT NOT NULL
);
CREATE INDEX discovered_certificates_by_state ON discovered_certificates (state, id);
CREATE INDEX discovered_certificates_by_certificate ON discovered_certificates (certificate);

-- Every place a discovered certificate was seen, and when last.
CREATE TABLE discovery_locations (
    discovered_id   TEXT COLLATE "C" NOT NULL REFERENCES discovered_certificates (id) ON DELETE CASCADE,
    agent           TEXT COLLATE "C" NOT NULL,      -- agents/{id}
    path            TEXT COLLATE "C" NOT NULL,
    last_seen_time  BIGINT NOT NULL,
    PRIMARY KEY (discovered_id, agent, path)
);
CREATE INDEX discovery_locations_by_time ON discovery_locations (discovered_id, last_seen_time);
