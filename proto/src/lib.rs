//! The `eventconnectors.v1` gRPC contract: the generated messages, clients
//! and servers, and the encoded descriptors reflection serves. Nothing
//! else, so a client of the contract depends on the contract alone.

/// Generated code for package `eventconnectors.v1`.
pub mod v1 {
    #![allow(missing_docs, missing_debug_implementations)]
    tonic::include_proto!("eventconnectors.v1");
}

/// Limits both sides of the contract agree on.
pub mod limits {
    /// The largest `OutcomeBatch` a stats service decodes; nodes split what
    /// they seal to stay under it.
    pub const MAX_OUTCOME_BATCH_BYTES: usize = 4 * 1024 * 1024;

    /// The longest sample message kept per outcome group, in characters.
    pub const MAX_SAMPLE_CHARS: usize = 500;
}

/// Encoded `FileDescriptorSet` of the contract, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("eventconnectors_descriptor");
