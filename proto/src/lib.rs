//! The `eventconnectors.v1` gRPC contract: the generated messages, clients
//! and servers, and the encoded descriptors reflection serves. Nothing
//! else, so a client of the contract depends on the contract alone.

/// Generated code for package `eventconnectors.v1`.
pub mod v1 {
    #![allow(missing_docs, missing_debug_implementations)]
    tonic::include_proto!("eventconnectors.v1");
}

/// ConfigService's server with updates encoded once: a snapshot or change
/// fanned out to many node streams is serialized once, and every stream
/// holds a reference to the same bytes instead of a copy of the message.
/// Nodes decode the same wire bytes as a plain [`v1::ConfigUpdate`].
pub mod shared {
    use prost::Message;
    use prost::bytes::{Buf, BufMut, Bytes};
    use prost::encoding::{DecodeContext, WireType};

    use crate::v1::ConfigUpdate;

    /// A `ConfigUpdate` already encoded; clones share the bytes.
    #[derive(Clone, Default, PartialEq, Eq)]
    pub struct EncodedConfigUpdate {
        version: u64,
        encoded: Bytes,
    }

    impl EncodedConfigUpdate {
        /// `update`, encoded.
        pub fn new(update: &ConfigUpdate) -> Self {
            Self {
                version: update.version,
                encoded: Bytes::from(update.encode_to_vec()),
            }
        }

        /// The version the update brings a stream to.
        pub fn version(&self) -> u64 {
            self.version
        }

        /// The encoded message.
        pub fn bytes(&self) -> &Bytes {
            &self.encoded
        }
    }

    impl std::fmt::Debug for EncodedConfigUpdate {
        // Never the bytes: a node update carries partner credentials.
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("EncodedConfigUpdate")
                .field("version", &self.version)
                .field("bytes", &self.encoded.len())
                .finish()
        }
    }

    impl Message for EncodedConfigUpdate {
        fn encode_raw(&self, buf: &mut impl BufMut) {
            buf.put_slice(&self.encoded);
        }

        /// Only sent, never received: what a peer would send is skipped.
        fn merge_field(
            &mut self,
            tag: u32,
            wire_type: WireType,
            buf: &mut impl Buf,
            ctx: DecodeContext,
        ) -> Result<(), prost::DecodeError> {
            prost::encoding::skip_field(wire_type, tag, buf, ctx)
        }

        fn encoded_len(&self) -> usize {
            self.encoded.len()
        }

        fn clear(&mut self) {
            *self = Self::default();
        }
    }

    /// The generated ConfigService server over [`EncodedConfigUpdate`].
    #[allow(missing_docs, missing_debug_implementations, dead_code)]
    mod generated {
        include!(concat!(env!("OUT_DIR"), "/shared/eventconnectors.v1.rs"));
    }
    pub use generated::config_service_server;

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::v1::{ConnectorConfig, KeyGrant};

        #[test]
        fn a_shared_update_decodes_as_the_message_it_was_made_from() {
            let update = ConfigUpdate {
                version: 42,
                full_snapshot: true,
                upserts: vec![ConnectorConfig {
                    id: "c1".into(),
                    partner: "webhook".into(),
                    ..ConnectorConfig::default()
                }],
                removed_connector_ids: vec!["gone".into()],
                key_upserts: vec![KeyGrant {
                    id: "k".into(),
                    ..KeyGrant::default()
                }],
                revoked_key_ids: Vec::new(),
            };
            let shared = EncodedConfigUpdate::new(&update);
            assert_eq!(shared.version(), 42);
            let wire = shared.encode_to_vec();
            assert_eq!(wire.len(), shared.encoded_len());
            assert_eq!(
                ConfigUpdate::decode(wire.as_slice()).expect("decodes"),
                update
            );
            assert!(!format!("{shared:?}").contains("c1"), "no content in Debug");
        }
    }
}

/// Limits both sides of the contract agree on.
pub mod limits {
    /// The largest `OutcomeBatch` a stats service decodes; nodes split what
    /// they seal to stay under it.
    pub const MAX_OUTCOME_BATCH_BYTES: usize = 4 * 1024 * 1024;

    /// The longest sample message kept per outcome group, in characters.
    pub const MAX_SAMPLE_CHARS: usize = 500;

    /// Failed events kept per connector (its recent failures), and the
    /// most a node reports per connector in one batch.
    pub const RECENT_FAILURES: usize = 100;

    /// The longest failed-event message kept, in characters.
    pub const MAX_FAILURE_MESSAGE_CHARS: usize = 500;

    /// The longest event id listed among recent failures, in bytes.
    pub const MAX_FAILED_EVENT_ID_BYTES: usize = 256;

    /// `message` as recent failures keep it: cut to
    /// [`MAX_FAILURE_MESSAGE_CHARS`] characters.
    pub fn failure_message(message: &str) -> &str {
        match message.char_indices().nth(MAX_FAILURE_MESSAGE_CHARS) {
            Some((end, _)) => &message[..end],
            None => message,
        }
    }

    /// `event_id` as recent failures list it: cut to
    /// [`MAX_FAILED_EVENT_ID_BYTES`], on a character boundary.
    pub fn failed_event_id(event_id: &str) -> &str {
        let mut end = event_id.len().min(MAX_FAILED_EVENT_ID_BYTES);
        while !event_id.is_char_boundary(end) {
            end -= 1;
        }
        &event_id[..end]
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn texts_are_cut_on_character_boundaries() {
            let long = "é".repeat(MAX_FAILURE_MESSAGE_CHARS + 3);
            assert_eq!(
                failure_message(&long).chars().count(),
                MAX_FAILURE_MESSAGE_CHARS
            );
            assert_eq!(failure_message("short"), "short");
            let id = "é".repeat(MAX_FAILED_EVENT_ID_BYTES);
            assert_eq!(failed_event_id(&id).len(), MAX_FAILED_EVENT_ID_BYTES);
            assert_eq!(failed_event_id("evt-1"), "evt-1");
        }
    }
}

/// Encoded `FileDescriptorSet` of the contract, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("eventconnectors_descriptor");
