-- Key custody: who generates a certificate's key, and of which type.
-- key_algorithm is '' while the profile's default applies.
ALTER TABLE certificates ADD COLUMN server_keyed BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE certificates ADD COLUMN key_algorithm TEXT NOT NULL DEFAULT '';

-- Revocations the issuance service recorded; NULL while a version is not revoked.
ALTER TABLE certificate_versions ADD COLUMN revoke_time BIGINT;
ALTER TABLE certificate_versions ADD COLUMN revocation_reason TEXT;
