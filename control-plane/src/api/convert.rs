//! Stored connectors as the API shows them: secrets never leave.

use eventconnectors_proto::v1::{Connector, ConnectorStatus as ProtoStatus};

use crate::clock::timestamp;
use crate::store::{ConnectorRecord, ConnectorStatus};

/// The connector as every admin RPC returns it: `secrets` is always empty.
pub fn to_proto(record: &ConnectorRecord) -> Connector {
    Connector {
        id: record.id.clone(),
        workspace_id: record.workspace_id.clone(),
        name: record.name.clone(),
        partner: record.partner.clone(),
        status: proto_status(record.status) as i32,
        settings: record.settings.clone(),
        secrets: Default::default(),
        secret_names: record.secret_names.clone(),
        mappings: record.mappings.clone(),
        filter: record.filter.clone(),
        version: record.version,
        create_time: Some(timestamp(record.created_at_ms)),
        update_time: Some(timestamp(record.updated_at_ms)),
    }
}

/// The API's status value.
pub fn proto_status(status: ConnectorStatus) -> ProtoStatus {
    match status {
        ConnectorStatus::Active => ProtoStatus::Active,
        ConnectorStatus::Inactive => ProtoStatus::Inactive,
    }
}
