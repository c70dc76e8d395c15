//! The pieces of delivery that decide, apart from any I/O: when to retry
//! and after how long, and when to stop sending to a failing partner.

pub mod breaker;
pub mod retry;
