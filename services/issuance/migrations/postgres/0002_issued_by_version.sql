-- ExportPrivateKey finds a signed certificate by its inventory version.
CREATE INDEX issued_by_version ON issued (certificate_version) WHERE certificate_version IS NOT NULL;
