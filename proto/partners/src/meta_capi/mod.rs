//! Meta (Facebook, Instagram), through the Conversions API.

mod adapter;
mod catalog;

pub use catalog::PARTNER;
