-- Certificate policies (rules certificates must keep), stored as documents
-- like renewal policies. Their violations are computed on read.
CREATE TABLE policies (id TEXT COLLATE "C" PRIMARY KEY, body TEXT NOT NULL, create_time BIGINT NOT NULL, update_time BIGINT NOT NULL);
