-- Work waiting for an agent: a job awaiting one names it in its payload
-- (`payload.agent`, with the command in `payload.command`). The column is
-- derived so that no write path changes; the partial index serves a hub's
-- "what is waiting for this agent" lookup.
ALTER TABLE jobs ADD COLUMN agent TEXT GENERATED ALWAYS AS (json_extract(payload, '$.agent')) VIRTUAL;
CREATE INDEX jobs_awaiting_agent ON jobs (agent, id) WHERE state = 'awaiting_agent';
