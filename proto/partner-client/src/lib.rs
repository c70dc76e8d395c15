//! The HTTP client for partners: one request sent where its URL says,
//! through the destination policy, and the answer read (its start) into a
//! [`partners::adapter::PartnerResponse`] or a categorized failure. The
//! data plane delivers with it; the control plane's connector test sends
//! its one request with it, under the same policy.

pub mod client;
pub mod destinations;

pub use client::PartnerClient;
