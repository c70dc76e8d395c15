//! Event intake: what the node accepts from producers.

pub mod event;
