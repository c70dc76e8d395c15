-- API keys. Only each key's SHA-256 is kept (hex); the key itself is shown
-- once, at creation. Creating or revoking a key is a configuration change
-- like a connector's: it takes a version and is logged in config_changes
-- with kind 'key', so nodes and the stats service learn of it at once.
CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    prefix          TEXT NOT NULL,         -- the key's first characters, for people
    sha256          TEXT NOT NULL UNIQUE,
    scope           TEXT NOT NULL,         -- operator | workspace:<id>:admin | workspace:<id>:ingest
    workspace_id    TEXT,                  -- the scope's workspace; NULL for operator keys
    description     TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    last_used_at_ms BIGINT,
    revoked_at_ms   BIGINT
);

CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id, created_at_ms);

ALTER TABLE config_changes ADD COLUMN kind TEXT NOT NULL DEFAULT 'connector';
