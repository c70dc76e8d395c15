//! The `eventconnectors.v1` gRPC contract: the generated messages, clients
//! and servers, and the encoded descriptors reflection serves. Nothing
//! else, so a client of the contract depends on the contract alone.

/// Generated code for package `eventconnectors.v1`.
pub mod v1 {
    #![allow(missing_docs, missing_debug_implementations)]
    tonic::include_proto!("eventconnectors.v1");
}

/// Encoded `FileDescriptorSet` of the contract, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("eventconnectors_descriptor");
