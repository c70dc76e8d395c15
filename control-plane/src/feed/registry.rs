//! The nodes this replica serves. Sessions record acks in memory; the
//! publisher writes what changed to the database once a second (and every
//! connected node every heartbeat), so a change acknowledged by a hundred
//! nodes costs the database a few writes, not a hundred in the path of the
//! next change.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::now_ms;
use crate::store::{NodeRecord, Rejection, Store};

#[derive(Debug)]
struct Entry {
    record: NodeRecord,
    dirty: bool,
    /// The stream this state came from: a node that reconnected before its
    /// old stream ended must not be marked gone by the old one.
    session: u64,
}

/// This replica's nodes.
#[derive(Debug)]
pub struct NodeRegistry {
    replica_id: String,
    nodes: Mutex<HashMap<String, Entry>>,
    sessions: std::sync::atomic::AtomicU64,
}

impl NodeRegistry {
    /// An empty registry for replica `replica_id`.
    pub fn new(replica_id: String) -> Self {
        Self {
            replica_id,
            nodes: Mutex::new(HashMap::new()),
            sessions: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A new stream's id.
    pub fn open_session(&self) -> u64 {
        self.sessions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// This replica's id.
    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    /// Records that `node_id`, on stream `session`, is connected and has
    /// applied `applied_version`.
    pub fn applied(
        &self,
        node_id: &str,
        session: u64,
        applied_version: u64,
        rejections: Vec<Rejection>,
    ) {
        let record = NodeRecord {
            node_id: node_id.to_owned(),
            replica_id: self.replica_id.clone(),
            connected: true,
            applied_version,
            last_seen_ms: now_ms(),
            rejections,
        };
        self.lock().insert(
            node_id.to_owned(),
            Entry {
                record,
                dirty: true,
                session,
            },
        );
    }

    /// Records that `node_id`'s stream `session` ended (ignored if the node
    /// is on a newer stream already).
    pub fn disconnected(&self, node_id: &str, session: u64) {
        if let Some(entry) = self
            .lock()
            .get_mut(node_id)
            .filter(|entry| entry.session == session)
        {
            entry.record.connected = false;
            entry.record.last_seen_ms = now_ms();
            entry.dirty = true;
        }
    }

    /// The nodes on this replica's streams, sorted by id, as held in
    /// memory (what `ListNodes` shows while the store is unavailable).
    pub fn records(&self) -> Vec<NodeRecord> {
        let mut records: Vec<NodeRecord> = self
            .lock()
            .values()
            .map(|entry| entry.record.clone())
            .collect();
        records.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        records
    }

    /// Writes what changed since the last flush; with `heartbeat`, refreshes
    /// `last_seen` of every connected node too. Disconnected nodes are
    /// written once and forgotten.
    pub async fn flush(&self, store: &Store, heartbeat: bool) {
        let now = now_ms();
        let pending: Vec<NodeRecord> = {
            let mut nodes = self.lock();
            let mut pending = Vec::new();
            for entry in nodes.values_mut() {
                if heartbeat && entry.record.connected {
                    entry.record.last_seen_ms = now;
                    entry.dirty = true;
                }
                if entry.dirty {
                    entry.dirty = false;
                    pending.push(entry.record.clone());
                }
            }
            nodes.retain(|_, entry| entry.record.connected);
            pending
        };
        for record in pending {
            let written = if record.connected {
                store.save_node(&record).await
            } else {
                store
                    .disconnect_node(&record.node_id, &self.replica_id, record.last_seen_ms)
                    .await
            };
            if let Err(error) = written {
                tracing::warn!(%error, node_id = %record.node_id, "cannot record node state; retrying");
                self.retry(record);
            }
        }
    }

    /// Puts back a record whose write failed, unless newer state arrived.
    fn retry(&self, record: NodeRecord) {
        let mut nodes = self.lock();
        nodes
            .entry(record.node_id.clone())
            .or_insert(Entry {
                record,
                dirty: true,
                session: u64::MAX,
            })
            .dirty = true;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
