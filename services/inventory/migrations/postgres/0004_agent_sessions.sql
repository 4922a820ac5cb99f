-- What an agent and its hub report, and the agent's identity and retirement:
-- columns beside the registration document, so that the heartbeat path
-- updates thousands of agents without reading or rewriting their documents.
ALTER TABLE agents ADD COLUMN version TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN capabilities TEXT NOT NULL DEFAULT '[]';   -- JSON array
ALTER TABLE agents ADD COLUMN hub TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN last_seen_time BIGINT;                    -- NULL: never seen
ALTER TABLE agents ADD COLUMN identity_serial TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN identity_expire_time BIGINT;
ALTER TABLE agents ADD COLUMN retire_time BIGINT;                       -- NULL while not retired

-- One-time credentials agents enrol with. The secret is never stored, only
-- the hex SHA-256 of its text, which redemption looks up.
CREATE TABLE join_tokens (
    id            TEXT COLLATE "C" PRIMARY KEY,
    display_name  TEXT NOT NULL,
    labels        TEXT NOT NULL,                  -- JSON object, copied onto the agent
    agent_id      TEXT NOT NULL,                  -- '': derived from the agent's host name
    secret_hash   TEXT NOT NULL UNIQUE,
    expire_time   BIGINT NOT NULL,
    create_time   BIGINT NOT NULL,
    redeem_time   BIGINT,                         -- NULL while unused
    agent         TEXT NOT NULL DEFAULT ''        -- agents/{id} once redeemed
);
