//! Pinterest, through the Conversions API (API v5).

mod adapter;
mod catalog;

pub use catalog::PARTNER;
