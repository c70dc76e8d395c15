//! A control plane on a loopback port, with its own database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use control_plane::config::Args;
use control_plane::store::Store;
use eventconnectors_proto::v1::connector_service_client::ConnectorServiceClient;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::postgres::TestDatabase;
use crate::server_task::{ServerTask, signalled};

/// The admin token every test control plane accepts.
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// The node token every test control plane accepts.
pub const NODE_TOKEN: &str = "test-node-token";

/// The secrets key every test control plane seals with (32 bytes of 0x2a).
pub const SECRETS_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// A fresh database on the Postgres server.
    Postgres,
    /// A fresh SQLite file in a temporary directory.
    Sqlite,
}

/// A database for one test, shared by every control-plane replica of it;
/// dropped with the last handle.
#[derive(Debug)]
pub struct TestStore {
    /// Its URL.
    pub url: String,
    _postgres: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl TestStore {
    /// A fresh, empty store.
    pub async fn new(db: Db) -> Arc<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (postgres, url) = match db {
            Db::Postgres => {
                let database = TestDatabase::create().await;
                let url = database.url().to_owned();
                (Some(database), url)
            }
            Db::Sqlite => (
                None,
                format!("sqlite://{}?mode=rwc", dir.path().join("cp.db").display()),
            ),
        };
        Arc::new(Self {
            url,
            _postgres: postgres,
            _dir: dir,
        })
    }
}

/// How a test control plane is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on (default: a free loopback port).
    pub addr: SocketAddr,
    /// Version poll interval.
    pub poll_interval: Duration,
    /// Whether to LISTEN for other replicas' NOTIFY.
    pub listen_notify: bool,
    /// StatsService URL for erasing deleted connectors' statistics.
    pub stats_url: Option<String>,
    /// The server's TLS (default: plaintext).
    pub tls: server_kit::tls::ServerTlsFlags,
    /// The sealing key (default: [`SECRETS_KEY`]).
    pub secrets_key: Option<String>,
    /// Earlier sealing keys, comma-separated.
    pub secrets_previous_keys: Option<String>,
    /// DESTINATION_ALLOWLIST (default: loopback, where the fake partners
    /// listen).
    pub destination_allowlist: String,
    /// Partner base URLs (partner, URL) for connector tests and previews
    /// (default: the catalog's).
    pub partner_base_urls: Vec<(String, String)>,
    /// A password put into a Postgres URL (the test server trusts every
    /// connection, so any password works): a secret for logs to keep.
    pub database_password: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:0".parse().expect("addr"),
            poll_interval: Duration::from_secs(1),
            listen_notify: true,
            stats_url: None,
            tls: server_kit::tls::ServerTlsFlags::default(),
            secrets_key: None,
            secrets_previous_keys: None,
            database_password: None,
            destination_allowlist: "127.0.0.0/8".to_owned(),
            partner_base_urls: Vec::new(),
        }
    }
}

/// An authenticated ConnectorService client.
pub type AdminClient = ConnectorServiceClient<
    InterceptedService<Channel, fn(Request<()>) -> Result<Request<()>, Status>>,
>;

/// A running control plane; stopped (and its database dropped) on drop.
#[derive(Debug)]
pub struct ControlPlaneHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its database URL.
    pub database_url: String,
    /// Its store, to start more replicas on.
    pub test_store: Arc<TestStore>,
    server: ServerTask<control_plane::StartError>,
}

fn add_admin_token(mut request: Request<()>) -> Result<Request<()>, Status> {
    server_kit::auth::insert_bearer(request.metadata_mut(), ADMIN_TOKEN)
        .expect("the test token is ASCII");
    Ok(request)
}

impl ControlPlaneHandle {
    /// Starts a control plane on 127.0.0.1:0 with a fresh store.
    pub async fn start(db: Db) -> Self {
        Self::start_with(TestStore::new(db).await, Options::default()).await
    }

    /// Starts a replica on `store` (shared with other replicas).
    pub async fn start_with(store: Arc<TestStore>, options: Options) -> Self {
        crate::init_logs();
        let database_url = match (&options.database_password, store.url.split_once('@')) {
            (Some(password), Some((user, host))) => format!("{user}:{password}@{host}"),
            _ => store.url.clone(),
        };
        let args = Args {
            listen: options.addr,
            database_url: database_url.as_str().into(),
            database_max_connections: 5,
            admin_token: ADMIN_TOKEN.into(),
            node_token: NODE_TOKEN.into(),
            directory_token: Some(crate::stats::DIRECTORY_TOKEN.into()),
            destination_allowlist: options.destination_allowlist.clone(),
            partner_base_urls: options.partner_base_urls.clone(),
            test_timeout: Duration::from_secs(3),
            config_poll_interval: options.poll_interval,
            config_listen_notify: options.listen_notify,
            config_keep_changes: 100_000,
            replica_id: None,
            stats_url: options.stats_url.clone(),
            stats_admin_token: Some(crate::stats::STATS_ADMIN_TOKEN.into()),
            stats_erase_interval: Duration::from_millis(200),
            secrets_key: Some(options.secrets_key.as_deref().unwrap_or(SECRETS_KEY).into()),
            secrets_previous_keys: options.secrets_previous_keys.as_deref().map(Into::into),
            secrets_key_file: PathBuf::from("unused.key"),
            tls: options.tls.clone(),
            upstream: server_kit::tls::UpstreamTlsFlags::default(),
            serve: server_kit::serving::ServeFlags {
                shutdown_grace: Duration::from_secs(2),
                log_json: false,
            },
        };
        let control_plane = control_plane::ControlPlane::start(&args)
            .await
            .expect("control plane starts");
        let listener = TcpListener::bind(args.listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = ServerTask::spawn(|stopped| control_plane.serve(listener, signalled(stopped)));
        Self {
            addr,
            database_url: store.url.clone(),
            test_store: store,
            server,
        }
    }

    /// The URL nodes use to reach it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A channel to the server.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect to control plane")
    }

    /// A new API key of `scope` (e.g. `workspace:shop:admin`), made by
    /// the operator: its secret.
    pub async fn api_key(&self, scope: &str) -> String {
        eventconnectors_proto::v1::api_key_service_client::ApiKeyServiceClient::new(
            self.channel().await,
        )
        .create_api_key(crate::with_token(
            eventconnectors_proto::v1::CreateApiKeyRequest {
                scope: scope.to_owned(),
                description: format!("test key {scope}"),
            },
            ADMIN_TOKEN,
        ))
        .await
        .unwrap_or_else(|status| panic!("create a {scope} key: {status:?}"))
        .into_inner()
        .secret
    }

    /// A ConnectorService client sending the admin token.
    pub async fn admin(&self) -> AdminClient {
        ConnectorServiceClient::with_interceptor(
            self.channel().await,
            add_admin_token as fn(_) -> _,
        )
    }

    /// A second handle on the same database, to check what is stored.
    pub async fn store(&self) -> Store {
        Store::connect(&self.database_url, 2)
            .await
            .expect("open store")
    }

    /// Sends the shutdown signal and waits for the server to finish.
    pub async fn stop(self) -> Result<(), control_plane::StartError> {
        self.server.stop().await
    }
}
