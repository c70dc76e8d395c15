//! Data-plane nodes: ingest raw events and deliver them to partners. The
//! node is built in the data-plane issues; this crate holds what exists.
