//! The partners: each one a folder holding its catalog entry
//! (`catalog.rs`: settings, secrets, mappable fields, batch limit, default
//! base URL) beside its adapter (`adapter.rs`: the exact requests, and the
//! reading of the exact responses). Registering a partner is its module
//! line and its entry in [`PARTNERS`], below.
//!
//! Around them, what every connector is checked and converted by:
//! [`validation`] against the catalog, [`datatype`] conversion, the
//! [`normalize`] rules personal identifiers are hashed by, and the
//! [`transform`] of a raw event into a partner's fields. Nothing here does
//! I/O: the control plane validates and previews with it, the data plane
//! transforms, builds and reads requests with it.

pub mod adapter;
pub mod base_urls;
pub mod catalog;
pub mod datatype;
pub mod destination;
mod http;
pub mod normalize;
pub mod preview;
pub mod redact;
pub mod test_event;
pub mod transform;
pub mod validation;

mod ga4;
mod meta_capi;
mod pinterest;
mod snapchat;
mod tiktok;
mod webhook;

pub use webhook::signature as standard_webhooks;

use catalog::PartnerSpec;

/// Every partner, sorted by id.
pub static PARTNERS: &[&PartnerSpec] = &[
    &ga4::PARTNER,
    &meta_capi::PARTNER,
    &pinterest::PARTNER,
    &snapchat::PARTNER,
    &tiktok::PARTNER,
    &webhook::PARTNER,
];

/// The partner with this id.
pub fn partner(id: &str) -> Option<&'static PartnerSpec> {
    PARTNERS.iter().copied().find(|p| p.id == id)
}
