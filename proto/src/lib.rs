//! The `eventconnectors.v1` gRPC contract shared by every service: generated
//! messages, clients and servers; the partner catalog that ListPartners
//! serves and that the data plane delivers by; and the plumbing each server
//! binary needs at its edge (bearer-token auth, health, reflection, shutdown).

pub mod auth;
pub mod catalog;
pub mod datatype;
pub mod serving;
pub mod validation;

/// Generated code for package `eventconnectors.v1`.
pub mod v1 {
    #![allow(missing_docs, missing_debug_implementations)]
    tonic::include_proto!("eventconnectors.v1");
}

/// Encoded `FileDescriptorSet` of the contract, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("eventconnectors_descriptor");
