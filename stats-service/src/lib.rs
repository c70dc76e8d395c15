//! Stats service: delivery outcomes into Redis counters. Built in the
//! statistics issue; this crate holds what exists.
