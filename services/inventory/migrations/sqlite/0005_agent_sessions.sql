-- What an agent and its hub report, and the agent's identity and retirement:
-- columns beside the registration document, so that the heartbeat path
-- updates thousands of agents without reading or rewriting their documents.
ALTER TABLE agents ADD COLUMN version TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN capabilities TEXT NOT NULL DEFAULT '[]';   -- JSON array
ALTER TABLE agents ADD COLUMN hub TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN last_seen_time INTEGER;                   -- NULL: never seen
ALTER TABLE agents ADD COLUMN identity_serial TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN identity_expire_time INTEGER;
ALTER TABLE agents ADD COLUMN retire_time INTEGER;                      -- NULL while not retired

-- One-time credentials agents enrol with. The secret is never stored, only
-- the hex SHA-256 of its text, which redemption looks up.
CREATE TABLE join_tokens (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    labels        TEXT NOT NULL,                  -- JSON object, copied onto the agent
    agent_id      TEXT NOT NULL,                  -- '': derived from the agent's host name
    secret_hash   TEXT NOT NULL UNIQUE,
    expire_time   INTEGER NOT NULL,
    create_time   INTEGER NOT NULL,
    redeem_time   INTEGER,                        -- NULL while unused
    agent         TEXT NOT NULL DEFAULT ''        -- agents/{id} once redeemed
);
