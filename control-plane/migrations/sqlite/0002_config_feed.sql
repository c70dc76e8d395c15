-- The configuration feed. Every connector change takes the next version
-- from config_state (its row lock serializes writers, so versions commit in
-- order and a reader that sees version V has seen every change up to V) and
-- logs which connector changed. A node at version v gets the connectors that
-- changed after v, read in their current state.
CREATE TABLE config_state (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    version            BIGINT NOT NULL,
    compacted_through  BIGINT NOT NULL   -- changes up to here were pruned
);
INSERT INTO config_state (id, version, compacted_through) VALUES (1, 0, 0);

CREATE TABLE config_changes (
    version       BIGINT PRIMARY KEY,
    connector_id  TEXT NOT NULL,
    changed_at_ms BIGINT NOT NULL
);

-- Data-plane nodes as the replicas they are connected to report them.
CREATE TABLE config_nodes (
    node_id          TEXT PRIMARY KEY,
    replica_id       TEXT NOT NULL,
    connected        BIGINT NOT NULL,   -- 1 while its stream is open (0/1: portable)
    applied_version  BIGINT NOT NULL,
    last_seen_ms     BIGINT NOT NULL,
    rejections       TEXT NOT NULL      -- JSON array of {connector_id, reason}
);
