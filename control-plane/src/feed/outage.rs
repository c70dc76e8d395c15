//! Whether this replica can read the configuration store, as the feed last
//! found it: an outage begins at the first failed read (publisher poll,
//! node catch-up, node listing) and ends at the next successful one. Both
//! edges are logged once, and `ListNodes` reports an ongoing outage.

use std::sync::Mutex;

use crate::clock::now_ms;
use crate::store::StoreError;

/// An ongoing outage.
#[derive(Debug, Clone)]
pub struct Outage {
    /// When it began (unix ms).
    pub since_ms: i64,
    /// The last error.
    pub reason: String,
}

/// The store's availability to this replica.
#[derive(Debug, Default)]
pub struct StoreHealth {
    outage: Mutex<Option<Outage>>,
}

impl StoreHealth {
    /// A read failed with `error`; `serving` is the version of the snapshot
    /// held in memory (served to nodes that connect meanwhile), if any.
    pub fn failed(&self, error: &StoreError, serving: Option<u64>) {
        let mut outage = self.lock();
        match outage.as_mut() {
            Some(outage) => outage.reason = error.to_string(),
            None => {
                match serving {
                    Some(version) => {
                        tracing::warn!(%error, version, "configuration store unavailable: serving the last snapshot from memory to nodes that connect; changes wait for the store")
                    }
                    None => {
                        tracing::warn!(%error, "configuration store unavailable and no snapshot held in memory: nodes that connect get nothing until it is back")
                    }
                }
                *outage = Some(Outage {
                    since_ms: now_ms(),
                    reason: error.to_string(),
                });
            }
        }
    }

    /// A read succeeded.
    pub fn recovered(&self) {
        if let Some(outage) = self.lock().take() {
            let seconds = (now_ms() - outage.since_ms) as f64 / 1000.0;
            tracing::info!(seconds, "configuration store available again");
        }
    }

    /// The ongoing outage, if any.
    pub fn outage(&self) -> Option<Outage> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Outage>> {
        self.outage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
