//! Harness for the end-to-end tests: starts real services on loopback
//! ports against a fresh database each, and hands out authenticated clients.

pub mod control_plane;
pub mod postgres;
