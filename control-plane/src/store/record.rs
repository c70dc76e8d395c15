//! A connector as stored, and its conversions to and from table rows.

use std::collections::BTreeMap;

use eventconnectors_proto::v1::{ConnectorConfig, EventFilter, FieldMapping};
use prost::Message;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::StoreError;

/// Whether a connector transmits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorStatus {
    /// Transmitting.
    Active,
    /// Stopped.
    Inactive,
}

impl ConnectorStatus {
    /// The value stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ACTIVE" => Some(Self::Active),
            "INACTIVE" => Some(Self::Inactive),
            _ => None,
        }
    }
}

/// A stored connector. Secrets stay sealed; only their names are in clear.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorRecord {
    /// Identifier (UUIDv7: sorts by creation time).
    pub id: String,
    /// Owning workspace.
    pub workspace_id: String,
    /// Human-readable name.
    pub name: String,
    /// Partner id.
    pub partner: String,
    /// Active or not.
    pub status: ConnectorStatus,
    /// Non-secret settings.
    pub settings: BTreeMap<String, String>,
    /// Secrets sealed by [`crate::secrets::SecretBox`].
    pub sealed_secrets: Vec<u8>,
    /// Names of the sealed secrets.
    pub secret_names: Vec<String>,
    /// Field mappings.
    pub mappings: Vec<FieldMapping>,
    /// Event filter; `None` = every event.
    pub filter: Option<EventFilter>,
    /// Incremented on every change.
    pub version: i64,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// Last change, unix milliseconds.
    pub updated_at_ms: i64,
}

/// A connector to insert, with its optional idempotency key.
#[derive(Debug, Clone)]
pub struct NewConnector {
    /// The connector (version 1, ACTIVE).
    pub record: ConnectorRecord,
    /// Idempotency key, unique per workspace.
    pub request_id: Option<String>,
}

/// Filters of a connector listing.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this workspace.
    pub workspace_id: Option<String>,
    /// Only this status.
    pub status: Option<ConnectorStatus>,
}

/// Mappings as stored: protobuf, exactly what the API received.
#[derive(Clone, PartialEq, prost::Message)]
struct StoredMappings {
    #[prost(message, repeated, tag = "1")]
    mappings: Vec<FieldMapping>,
}

pub(super) const COLUMNS: &str = "id, workspace_id, name, partner, status, settings, secrets, secret_names, \
     mappings, filter, version, created_at_ms, updated_at_ms";

/// Column values of a record in [`COLUMNS`] order, ready to bind.
pub(super) struct EncodedRecord {
    pub settings: String,
    pub secret_names: String,
    pub mappings: Vec<u8>,
    pub filter: Option<Vec<u8>>,
}

impl ConnectorRecord {
    /// The connector as nodes deliver by it, with its secrets `opened`.
    pub fn config(&self, opened: BTreeMap<String, String>) -> ConnectorConfig {
        ConnectorConfig {
            id: self.id.clone(),
            workspace_id: self.workspace_id.clone(),
            partner: self.partner.clone(),
            settings: self.settings.clone(),
            secrets: opened,
            mappings: self.mappings.clone(),
            filter: self.filter.clone(),
            connector_version: self.version,
        }
    }

    pub(super) fn encode(&self) -> EncodedRecord {
        EncodedRecord {
            settings: serde_json::to_string(&self.settings).expect("string maps serialize"),
            secret_names: serde_json::to_string(&self.secret_names)
                .expect("string lists serialize"),
            mappings: StoredMappings {
                mappings: self.mappings.clone(),
            }
            .encode_to_vec(),
            filter: self.filter.as_ref().map(Message::encode_to_vec),
        }
    }

    pub(super) fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let id: String = row.try_get("id")?;
        let corrupt = |reason: String| StoreError::Corrupt {
            id: id.clone(),
            reason,
        };
        let status: String = row.try_get("status")?;
        let settings: String = row.try_get("settings")?;
        let secret_names: String = row.try_get("secret_names")?;
        let mappings: Vec<u8> = row.try_get("mappings")?;
        let filter: Option<Vec<u8>> = row.try_get("filter")?;
        Ok(Self {
            workspace_id: row.try_get("workspace_id")?,
            name: row.try_get("name")?,
            partner: row.try_get("partner")?,
            status: ConnectorStatus::parse(&status)
                .ok_or_else(|| corrupt(format!("status `{status}`")))?,
            settings: serde_json::from_str(&settings)
                .map_err(|e| corrupt(format!("settings: {e}")))?,
            sealed_secrets: row.try_get("secrets")?,
            secret_names: serde_json::from_str(&secret_names)
                .map_err(|e| corrupt(format!("secret_names: {e}")))?,
            mappings: StoredMappings::decode(mappings.as_slice())
                .map_err(|e| corrupt(format!("mappings: {e}")))?
                .mappings,
            filter: filter
                .map(|bytes| EventFilter::decode(bytes.as_slice()))
                .transpose()
                .map_err(|e| corrupt(format!("filter: {e}")))?,
            version: row.try_get("version")?,
            created_at_ms: row.try_get("created_at_ms")?,
            updated_at_ms: row.try_get("updated_at_ms")?,
            id,
        })
    }
}
