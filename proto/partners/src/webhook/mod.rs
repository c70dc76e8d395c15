//! Any HTTP endpoint, signed per Standard Webhooks.

mod adapter;
mod catalog;
pub mod signature;

pub use catalog::PARTNER;
