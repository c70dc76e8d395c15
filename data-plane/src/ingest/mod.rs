//! Event intake: what the node accepts from producers, and the gRPC
//! service producers call.

mod event;
mod service;

pub use event::{DEFAULT_MAX_EVENT_BYTES, RawEvent, Rejected, parse};
pub use service::IngestApi;
