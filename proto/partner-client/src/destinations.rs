//! Where the node may connect: every name a partner request goes to is
//! resolved here, each address checked against the destination policy,
//! and only the addresses that passed are handed to the connection pool,
//! which connects to exactly those (no second lookup, so a name cannot be
//! re-pointed between the check and the connection). Literal addresses
//! never reach a resolver: [`PartnerClient`](crate::client::PartnerClient)
//! checks them before sending.

use std::net::SocketAddr;
use std::sync::Arc;

use partners::destination::{DestinationPolicy, Refusal};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A name that resolves only to refused addresses. What it resolved to is
/// logged on the node, never put in the message (which the connector's
/// admins read): internal DNS answers are not theirs to map.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{host}` resolves only to addresses the destination policy refuses (DESTINATION_ALLOWLIST opens them)"
)]
pub struct RefusedName {
    host: String,
}

/// The resolver of the partner client.
#[derive(Debug, Clone)]
pub struct CheckedResolver {
    policy: Arc<DestinationPolicy>,
}

impl CheckedResolver {
    /// Resolves with the system resolver, keeping what `policy` allows.
    pub fn new(policy: Arc<DestinationPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusals = Vec::new();
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| match policy.check_resolved(address.ip()) {
                    Ok(()) => true,
                    Err(refusal) => {
                        refusals.push(refusal);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() && !refusals.is_empty() {
                let refused: Vec<String> = refusals.iter().map(Refusal::to_string).collect();
                tracing::warn!(%host, ?refused, "destination refused");
                return Err(Box::new(RefusedName { host }) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}
