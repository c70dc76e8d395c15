//! The control plane: connector lifecycle and API keys over Postgres or an
//! embedded SQLite store, with health and reflection.

pub mod api;
pub mod clock;
pub mod config;
pub mod console;
pub mod feed;
pub mod reseal;
pub mod secrets;
pub mod stats_eraser;
pub mod stats_relay;
pub mod store;

use std::future::Future;

use eventconnectors_proto::shared::config_service_server::{self, ConfigServiceServer};
use eventconnectors_proto::v1::api_key_service_server::{self, ApiKeyServiceServer};
use eventconnectors_proto::v1::connector_service_server::{self, ConnectorServiceServer};
use eventconnectors_proto::v1::stats_service_server;
use server_kit::auth::{BearerAuth, EmptyToken};
use server_kit::gate::Gated;
use server_kit::{serving, shutdown};
use tokio::net::TcpListener;
use tonic_web::GrpcWebLayer;
use tower_layer::Layer;

use crate::api::{Access, ConnectorApi, KeyApi};
use crate::config::Args;
use crate::feed::{ConfigApi, ConfigFeed, FeedAuth, FeedGate, FeedSettings};
use crate::secrets::{KeyError, SecretBox};
use crate::store::{Backend, Store, StoreError};
use partners::destination::DestinationPolicy;

/// Largest admin request: a connector with every header, mapping and
/// filter its limits allow is a few tens of KiB.
const MAX_ADMIN_MESSAGE_BYTES: usize = 1024 * 1024;
/// Largest message a node sends on its feed (a nack listing many
/// connectors with their reasons).
const MAX_NODE_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Why the control plane could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A token is unusable.
    #[error(transparent)]
    Token(#[from] EmptyToken),
    /// The secrets key is missing or unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A Postgres deployment without an explicit key.
    #[error(
        "no secrets key: set SECRETS_KEY or SECRETS_KEY_FILE (every replica sharing the database needs the same key)"
    )]
    MissingKey,
    /// STATS_URL without a credential for it.
    #[error(
        "STATS_URL is set but STATS_ADMIN_TOKEN is not: set it to the stats service's ADMIN_TOKEN (or an operator API key)"
    )]
    MissingStatsToken,
    /// The stats service's directory token would open the node feed.
    #[error(
        "DIRECTORY_TOKEN must differ from NODE_TOKEN: the stats service would hold the credential that reads partner credentials"
    )]
    SharedDirectoryToken,
    /// DESTINATION_ALLOWLIST does not parse.
    #[error(transparent)]
    Allowlist(#[from] partners::destination::AllowlistError),
    /// PARTNER_BASE_URLS names an unknown partner or one twice.
    #[error(transparent)]
    BaseUrls(#[from] partners::base_urls::BaseUrlError),
    /// The partner HTTP client cannot be built.
    #[error("partner client: {0}")]
    PartnerClient(#[from] reqwest::Error),
    /// A TLS file is unusable.
    #[error(transparent)]
    Tls(#[from] server_kit::tls::TlsFileError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    /// The server failed.
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
}

/// A control plane ready to serve.
#[derive(Debug)]
pub struct ControlPlane {
    store: Store,
    secrets: SecretBox,
    access: Access,
    feed_auth: FeedAuth,
    feed: ConfigFeed,
    feed_settings: FeedSettings,
    eraser: Option<stats_eraser::EraserSettings>,
    tls: server_kit::tls::ServerTls,
    destinations: DestinationPolicy,
    tester: api::Tester,
    grace: std::time::Duration,
}

impl ControlPlane {
    /// Opens the store (running migrations) and loads the keys.
    pub async fn start(args: &Args) -> Result<Self, StartError> {
        let feed_auth = FeedAuth {
            node: BearerAuth::new("node", args.node_token.expose())?,
            directory: args
                .directory_token
                .as_ref()
                .map(|token| BearerAuth::new("directory", token.expose()))
                .transpose()?,
        };
        let database_url = args.database_url.expose();
        let backend = Backend::of_url(database_url)?;
        let secrets = match &args.secrets_key {
            Some(key) => SecretBox::from_base64(key.expose())?,
            None if backend == Backend::Postgres && !args.secrets_key_file.exists() => {
                return Err(StartError::MissingKey);
            }
            // The embedded store is one process on one machine: a key file
            // beside it is created on first start.
            None => SecretBox::load_or_create(&args.secrets_key_file, backend == Backend::Sqlite)?,
        };
        let secrets = match &args.secrets_previous_keys {
            Some(previous) => secrets.with_previous(previous.expose())?,
            None => secrets,
        };
        tracing::info!(key_id = %secrets.key_id(), "sealing partner credentials");
        let store = Store::connect(database_url, args.database_max_connections).await?;
        let access = Access::new(store.clone(), args.admin_token.expose())?;
        tracing::info!(database = %config::redact_url(database_url), ?backend, "store ready");
        let replica_id = args.replica_id.clone().unwrap_or_else(default_replica_id);
        let feed = ConfigFeed::new(store.clone(), secrets.clone(), replica_id).await?;
        let feed_settings = FeedSettings {
            database_url: args.database_url.clone(),
            listen_notify: args.config_listen_notify,
            poll_interval: args.config_poll_interval,
            keep_changes: args.config_keep_changes,
        };
        let eraser = match (&args.stats_url, &args.stats_admin_token) {
            (None, _) => None,
            (Some(_), None) => return Err(StartError::MissingStatsToken),
            (Some(url), Some(token)) => Some(stats_eraser::EraserSettings {
                url: url.clone(),
                token: token.clone(),
                interval: args.stats_erase_interval,
                tls: server_kit::tls::UpstreamTls::from_flags(&args.upstream)?,
            }),
        };
        if let Some(directory) = &args.directory_token
            && directory.expose().trim() == args.node_token.expose().trim()
        {
            return Err(StartError::SharedDirectoryToken);
        }
        if eraser.is_none() {
            tracing::warn!(
                "no STATS_URL: statistics of deleted connectors stay pending until one is configured"
            );
        }
        let destinations = DestinationPolicy::with_allowlist(&args.destination_allowlist)?;
        Ok(Self {
            store,
            secrets,
            access,
            feed_auth,
            feed,
            feed_settings,
            eraser,
            tls: server_kit::tls::ServerTls::from_flags(&args.tls)?,
            destinations: destinations.clone(),
            tester: api::Tester::new(
                partners::base_urls::BaseUrls::with_overrides(
                    args.partner_base_urls
                        .iter()
                        .map(|(partner, url)| (partner.as_str(), url.as_str())),
                )?,
                partner_client::PartnerClient::new(args.test_timeout, destinations)?,
            ),
            grace: args.serve.shutdown_grace,
        })
    }

    /// The connector store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until `shutdown` resolves, then drains (see
    /// [`serving::serve`]) and closes the store.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (health, routes) = serving::base_routes(&[
            api_key_service_server::SERVICE_NAME,
            connector_service_server::SERVICE_NAME,
            config_service_server::SERVICE_NAME,
            stats_service_server::SERVICE_NAME,
        ]);
        // Streams end on `stop` so nodes reconnect to another replica at once
        // instead of holding the drain for the whole grace period.
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let publisher = tokio::spawn(
            self.feed
                .clone()
                .run_publisher(self.feed_settings.clone(), stop.clone()),
        );
        let bookkeeping = tokio::spawn(self.feed.clone().run_node_bookkeeping(stop.clone()));
        let eraser = self.eraser.clone().map(|settings| {
            tokio::spawn(stats_eraser::run(
                self.store.clone(),
                settings,
                stop.clone(),
            ))
        });
        let connectors = ConnectorApi::new(
            self.store.clone(),
            self.secrets.clone(),
            self.access.clone(),
            self.destinations.clone(),
            self.tester.clone(),
        );
        let keys = KeyApi::new(self.store.clone(), self.access.clone());
        let config = ConfigApi::new(
            self.feed.clone(),
            self.store.clone(),
            self.feed_auth.clone(),
            self.access.clone(),
            self.tls.clone(),
            stop,
        );
        health
            .set_serving::<ConnectorServiceServer<ConnectorApi>>()
            .await;
        health.set_serving::<ConfigServiceServer<ConfigApi>>().await;
        health.set_serving::<ApiKeyServiceServer<KeyApi>>().await;
        // Credentials are checked (keys looked up) before a request is
        // decoded: a stranger cannot make the server read a message.
        let feed_gate = FeedGate {
            feed: self.feed_auth.clone(),
            access: self.access.clone(),
        };
        let stats = stats_relay::StatsRelay::new(self.eraser.as_ref().and_then(|settings| {
            match server_kit::upstream::endpoint(&settings.url, &settings.tls) {
                Ok(endpoint) => Some(endpoint.connect_lazy()),
                Err(error) => {
                    tracing::error!(%error, url = %settings.url, "invalid STATS_URL: statistics reads are not relayed");
                    None
                }
            }
        }));
        // The admin services also answer gRPC-Web (the console), through
        // the same gate; the refusal is translated like any answer.
        let web = GrpcWebLayer::new();
        let routes = routes
            .add_service(
                web.layer(Gated::new(
                    ConnectorServiceServer::new(connectors)
                        .max_decoding_message_size(MAX_ADMIN_MESSAGE_BYTES),
                    self.access.clone(),
                )),
            )
            .add_service(web.layer(Gated::new(
                ApiKeyServiceServer::new(keys).max_decoding_message_size(MAX_ADMIN_MESSAGE_BYTES),
                self.access.clone(),
            )))
            .add_service(web.layer(Gated::new(stats, self.access.clone())))
            .add_service(Gated::new(
                ConfigServiceServer::new(config)
                    .max_decoding_message_size(MAX_NODE_MESSAGE_BYTES)
                    .max_encoding_message_size(usize::MAX),
                feed_gate,
            ));
        let shutdown = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let routes =
            tonic::service::Routes::from(routes.into_axum_router().merge(console::router()));
        let limits = serving::ServerLimits {
            accept_http1: true,
            ..serving::ServerLimits::default()
        };
        let result = serving::serve(
            routes, listener, &self.tls, &limits, health, shutdown, self.grace,
        )
        .await;
        let _ = publisher.await;
        let _ = bookkeeping.await;
        if let Some(eraser) = eraser {
            let _ = eraser.await;
        }
        self.feed.flush_nodes().await;
        self.store.close().await;
        Ok(result?)
    }
}

/// Host name plus a random suffix: unique even when pods share a name.
fn default_replica_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "control-plane".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..8])
}

/// Starts the control plane on `args.listen` and serves until SIGTERM.
pub async fn run(args: Args) -> Result<(), StartError> {
    tracing::info!(?args, "starting control plane");
    let control_plane = ControlPlane::start(&args).await?;
    let listener = TcpListener::bind(args.listen).await?;
    tracing::info!(address = %listener.local_addr()?, "serving gRPC");
    control_plane
        .serve(listener, shutdown::shutdown_signal())
        .await?;
    tracing::info!("control plane stopped");
    Ok(())
}
