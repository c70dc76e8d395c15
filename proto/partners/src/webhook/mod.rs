//! Any HTTP endpoint, signed per Standard Webhooks.

mod adapter;
mod catalog;

pub use catalog::PARTNER;
