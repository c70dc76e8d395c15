-- Connectors and the durable record of deletions whose statistics must be
-- erased. Mappings and filters are stored as protobuf; secrets sealed with
-- AES-256-GCM (the key never reaches the database).
CREATE TABLE connectors (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL,
    name              TEXT NOT NULL,
    partner           TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')),
    settings          TEXT NOT NULL,   -- JSON object: name -> value
    secrets           BLOB  NOT NULL,  -- sealed JSON object: name -> value
    secret_names      TEXT NOT NULL,   -- JSON array, so reads never decrypt
    mappings          BLOB  NOT NULL,  -- protobuf: repeated FieldMapping
    filter            BLOB ,           -- protobuf: EventFilter, NULL = all events
    version           BIGINT NOT NULL,
    create_request_id TEXT,
    created_at_ms     BIGINT NOT NULL,
    updated_at_ms     BIGINT NOT NULL,
    UNIQUE (workspace_id, create_request_id)
);

CREATE INDEX connectors_by_workspace ON connectors (workspace_id, id);

CREATE TABLE connector_deletions (
    connector_id       TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL,
    deleted_at_ms      BIGINT NOT NULL,
    stats_erased_at_ms BIGINT          -- NULL until the stats service confirmed the erase
);

CREATE INDEX connector_deletions_pending ON connector_deletions (deleted_at_ms) WHERE stats_erased_at_ms IS NULL;
