//! A control plane on a loopback port, with its own database.

use std::net::SocketAddr;
use std::path::PathBuf;

use control_plane::config::Args;
use control_plane::store::Store;
use eventconnectors_proto::v1::connector_service_client::ConnectorServiceClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::postgres::TestDatabase;

/// The admin token every test control plane accepts.
pub const ADMIN_TOKEN: &str = "test-admin-token";
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
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), control_plane::StartError>>>,
    _postgres: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

fn add_admin_token(mut request: Request<()>) -> Result<Request<()>, Status> {
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().expect("ascii"),
    );
    Ok(request)
}

impl ControlPlaneHandle {
    /// Starts a control plane on 127.0.0.1:0 with a fresh store.
    pub async fn start(db: Db) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (postgres, database_url) = match db {
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
        let args = Args {
            listen: "127.0.0.1:0".parse().expect("addr"),
            database_url: database_url.clone(),
            database_max_connections: 5,
            admin_token: ADMIN_TOKEN.to_owned(),
            secrets_key: Some(SECRETS_KEY.to_owned()),
            secrets_key_file: PathBuf::from("unused.key"),
            shutdown_grace: std::time::Duration::from_secs(2),
            log_json: false,
        };
        let control_plane = control_plane::ControlPlane::start(&args)
            .await
            .expect("control plane starts");
        let listener = TcpListener::bind(args.listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(control_plane.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            database_url,
            shutdown: Some(shutdown),
            task: Some(task),
            _postgres: postgres,
            _dir: dir,
        }
    }

    /// A channel to the server.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect to control plane")
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
    pub async fn stop(mut self) -> Result<(), control_plane::StartError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for ControlPlaneHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
