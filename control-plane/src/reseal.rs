//! Re-sealing every connector's credentials with the current key: the step
//! of a key rotation after every replica runs with the new SECRETS_KEY and
//! the old one in SECRETS_PREVIOUS_KEYS (see `secrets`).

use crate::secrets::SecretBox;
use crate::store::{Store, StoreError};

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Connectors whose credentials were re-sealed with the current key.
    pub resealed: u64,
    /// Connectors already sealed with it.
    pub current: u64,
    /// Connectors changed while the pass ran (their new blob was sealed by
    /// whichever key the writing replica had: run again to check).
    pub raced: u64,
    /// Connectors whose credentials open with no configured key (logged by
    /// id; their credentials are unusable until the right key is given).
    pub unreadable: u64,
}

/// Re-seals, with `secrets`' current key, every connector sealed with
/// another key; with `dry_run`, only counts them.
pub async fn reseal_all(
    store: &Store,
    secrets: &SecretBox,
    dry_run: bool,
) -> Result<ResealReport, StoreError> {
    let mut report = ResealReport::default();
    for record in store.all_connectors().await? {
        if !secrets.needs_reseal(&record.sealed_secrets) {
            report.current += 1;
            continue;
        }
        let opened = match secrets.open(&record.id, &record.sealed_secrets) {
            Ok(opened) => opened,
            Err(error) => {
                tracing::error!(%error, connector_id = %record.id, "cannot re-seal");
                report.unreadable += 1;
                continue;
            }
        };
        if dry_run {
            report.resealed += 1;
            continue;
        }
        let sealed = secrets.seal(&record.id, &opened);
        if store
            .replace_sealed(&record.id, &record.sealed_secrets, &sealed)
            .await?
        {
            report.resealed += 1;
        } else {
            report.raced += 1;
        }
    }
    Ok(report)
}
