-- The latest deployment of each certificate on each target: which version
-- went there and how that went. One row per (certificate, target), replaced
-- by every report, and deleted with its certificate, version or target.
CREATE TABLE deployments (
    certificate_id      TEXT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    target_id           TEXT NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    version             INTEGER NOT NULL,
    state               TEXT NOT NULL,          -- PENDING, DEPLOYED, VERIFIED, MISMATCH or FAILED
    served_fingerprint  TEXT NOT NULL,          -- '' when no endpoint was checked
    message             TEXT NOT NULL,
    deploy_time         INTEGER,
    verify_time         INTEGER,
    update_time         INTEGER NOT NULL,
    job                 TEXT NOT NULL,          -- jobs/{id}, or ''
    PRIMARY KEY (certificate_id, target_id),
    FOREIGN KEY (certificate_id, version) REFERENCES certificate_versions (certificate_id, version) ON DELETE CASCADE
);
-- Listings walk (certificate_id, target_id); these serve the target and state filters.
CREATE INDEX deployments_by_target ON deployments (target_id, certificate_id);
CREATE INDEX deployments_by_state ON deployments (state, certificate_id, target_id);
