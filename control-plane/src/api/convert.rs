//! Stored connectors as the API shows them: secrets never leave.

use eventconnectors_proto::v1::{Connector, ConnectorStatus as ProtoStatus};

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

/// A protobuf timestamp from unix milliseconds.
pub fn timestamp(unix_ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: unix_ms.div_euclid(1000),
        nanos: i32::try_from(unix_ms.rem_euclid(1000) * 1_000_000).expect("below one second"),
    }
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
