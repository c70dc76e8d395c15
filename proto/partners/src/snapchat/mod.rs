//! Snapchat, through the Conversions API v3.

mod adapter;
mod catalog;

pub use catalog::PARTNER;
