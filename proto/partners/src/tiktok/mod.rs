//! TikTok, through the Events API v1.3.

mod adapter;
mod catalog;

pub use catalog::PARTNER;
