-- Certificate policies (rules certificates must keep), stored as documents
-- like renewal policies. Their violations are computed on read.
CREATE TABLE policies (id TEXT PRIMARY KEY, body TEXT NOT NULL, create_time INTEGER NOT NULL, update_time INTEGER NOT NULL);
