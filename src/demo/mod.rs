//! The demo, on by default in the one command: a partner on loopback that
//! answers like real ones ([`partner`]), two connectors sending to it
//! ([`connectors`]), and a trickle of realistic events ([`traffic`]). Within
//! a minute each connector's statistics show delivered and failed calls,
//! both error tabs and a series.

pub mod connectors;
pub mod partner;
pub mod traffic;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use connectors::DemoConnector;

/// A running demo.
#[derive(Debug)]
pub struct Demo {
    /// Its connectors.
    pub connectors: Vec<DemoConnector>,
    /// Where its partner listens.
    pub partner: SocketAddr,
    traffic: (watch::Sender<bool>, JoinHandle<()>),
    server: (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>),
}

/// The demo partner, listening, before anything is sent to it.
#[derive(Debug)]
pub struct DemoPartner {
    listener: tokio::net::TcpListener,
    address: SocketAddr,
}

impl DemoPartner {
    /// Binds the demo partner's address.
    pub async fn bind(address: SocketAddr) -> Result<Self, crate::system::StartError> {
        let listener = crate::system::listen(address, "--demo-partner-listen").await?;
        let address = listener.local_addr().map_err(|error| {
            crate::system::StartError::Settings(format!("the demo partner has no address: {error}"))
        })?;
        Ok(Self { listener, address })
    }

    /// The base URL of its Meta-shaped API.
    pub fn base_url(&self) -> String {
        partner::urls(self.address).1
    }
}

/// A channel to a service of this process.
fn channel(address: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .expect("a socket address is a valid URI")
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .connect_lazy()
}

impl Demo {
    /// Serves the partner, makes sure the connectors exist (through the
    /// control plane's API, with the admin token; the Meta one only when
    /// the node sends `meta` requests to the demo partner) and starts the
    /// traffic (through the node's IngestService, with the ingest token).
    pub async fn start(
        partner: DemoPartner,
        addresses: &crate::system::Addresses,
        meta: bool,
        admin_token: &str,
        ingest_token: &str,
        per_second: u32,
    ) -> Result<Self, tonic::Status> {
        let key = partners::standard_webhooks::key(connectors::SIGNING_SECRET)
            .expect("the demo secret is a whsec_ secret");
        let (stop_server, server_stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(partner::serve(
            partner.listener,
            partner::Credentials {
                signing_key: key,
                access_token: connectors::ACCESS_TOKEN.to_owned(),
            },
            async {
                let _ = server_stopped.await;
            },
        ));
        let (webhook_url, _) = partner::urls(partner.address);
        let connectors = connectors::ensure(
            channel(addresses.control_plane),
            admin_token,
            &webhook_url,
            meta,
        )
        .await?;
        let (stop_traffic, traffic_stopped) = watch::channel(false);
        let traffic = tokio::spawn(traffic::run(
            channel(addresses.ingest),
            ingest_token.to_owned(),
            per_second,
            traffic_stopped,
        ));
        Ok(Self {
            connectors,
            partner: partner.address,
            traffic: (stop_traffic, traffic),
            server: (stop_server, server),
        })
    }

    /// Stops sending events (first, before the node drains).
    pub async fn stop_traffic(&mut self) {
        let _ = self.traffic.0.send(true);
        let _ = (&mut self.traffic.1).await;
    }

    /// Stops the partner (last: the node's drain may still be sending to
    /// it).
    pub async fn stop_partner(self) {
        let (stop, server) = self.server;
        let _ = stop.send(());
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the demo partner stopped with an error"),
            Err(error) => tracing::warn!(%error, "the demo partner's task failed"),
        }
    }
}
