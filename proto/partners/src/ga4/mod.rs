//! Google Analytics 4, through the Measurement Protocol.

mod adapter;
mod catalog;

pub use catalog::PARTNER;
