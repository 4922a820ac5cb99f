-- When each certificate's next version is due (Certificate::next_issue_time):
-- NULL for certificates certctl does not issue (no issuer, or revoked). The
-- scheduler's renewal scan reads only the due range of this index, which
-- covers the columns of the basic view (store/sql.rs BASIC_COLUMNS) so that
-- the scan never visits the table.
ALTER TABLE certificates ADD COLUMN renew_time INTEGER;
CREATE INDEX certificates_by_renew_time
    ON certificates (renew_time, id, issuer, revoked, current_version, not_before, expiry_key, alert_lead_secs,
                     create_time, update_time)
    WHERE renew_time IS NOT NULL;

-- Work that SQL alone cannot do and the service finishes at start (the
-- renewal time needs each policy and a per-version jitter computed in Rust).
-- A row is deleted in the transaction that completes its work.
CREATE TABLE data_migrations (name TEXT PRIMARY KEY);
INSERT INTO data_migrations (name) VALUES ('renew_time');
