//! The platform as separate processes (the built binaries) for fault tests:
//! a control plane on a fresh Postgres database, a stats service on Redis
//! under a prefix of its own, and data-plane nodes in the durable mode on a
//! stream of their own. Any service can be killed (SIGKILL), stopped
//! (SIGTERM) and started again on the same port.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use eventconnectors_proto::v1::config_service_client::ConfigServiceClient;
use eventconnectors_proto::v1::connector_service_client::ConnectorServiceClient;
use eventconnectors_proto::v1::stats_service_client::StatsServiceClient;
use eventconnectors_proto::v1::{
    Connector, IngestResponse, ListNodesRequest, ListNodesResponse, OutcomeTotals,
};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::control_plane::{ADMIN_TOKEN, NODE_TOKEN, SECRETS_KEY};
use crate::event_log::TestLog;
use crate::node::{INGEST_TOKEN, IngestClient};
use crate::postgres::TestDatabase;
use crate::proxy::CuttableProxy;
use crate::stats::{Backend, DIRECTORY_TOKEN, OUTCOMES_TOKEN, RedisPrefix, STATS_ADMIN_TOKEN};
use crate::with_token;

/// The path of binary `name` built beside the test binary.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{}: build the binaries first (`cargo build --workspace`; the README's test command does)",
        path.display()
    );
    path
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// One service process, killed on drop; its output goes to a log file.
#[derive(Debug)]
pub struct Service {
    name: String,
    binary: PathBuf,
    args: Vec<String>,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts `binary` as `name`, its gRPC server on `port`, with `args`.
    pub fn start(name: &str, binary: &str, port: u16, args: Vec<String>) -> Self {
        Self::program(name, crate::processes::binary(binary), port, args)
    }

    /// Starts `program` as `name`, listening on `port`, with `args`.
    pub fn program(name: &str, program: PathBuf, port: u16, args: Vec<String>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut service = Self {
            name: name.to_owned(),
            binary: program,
            args,
            port,
            log: dir.path().join(format!("{name}.log")),
            child: None,
            _dir: dir,
        };
        service.spawn();
        service
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the log file");
        // `{dir}` in a flag is the service's own directory.
        let dir = self._dir.path().display().to_string();
        let args = self.args.iter().map(|arg| arg.replace("{dir}", &dir));
        let child = Command::new(&self.binary)
            .args(args)
            .env("RUST_LOG", "info")
            .current_dir(self._dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("{}: cannot start: {error}", self.name));
        self.child = Some(child);
    }

    /// Its gRPC URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it logged so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its readiness says SERVING; panics (with its log) after
    /// `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) {
        self.wait_readiness(ServingStatus::Serving, timeout).await;
    }

    /// Waits until its readiness says `status`; panics (with its log) after
    /// `timeout`.
    pub async fn wait_readiness(&self, status: ServingStatus, timeout: Duration) {
        let started = Instant::now();
        loop {
            if health(&self.url()).await == Some(status) {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "{} not {status:?} after {timeout:?}; its log:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until something accepts connections on its port.
    pub async fn wait_listening(&self, timeout: Duration) {
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < timeout,
                "{} not listening after {timeout:?}; its log:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A directory that lives as long as the service (for its data).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// SIGKILL: the process ends at once, nothing flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for it to exit (SIGKILL after `timeout`).
    pub async fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not stop within {timeout:?} of SIGTERM; its log:\n{}",
                    self.name,
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts it again, same flags, same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn health(url: &str) -> Option<ServingStatus> {
    let channel = Channel::from_shared(url.to_owned())
        .ok()?
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .ok()?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(reply.into_inner().status).ok()
}

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_owned())
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

/// The machine's `name` program (Debian installs some in `/usr/sbin`,
/// outside a user's `PATH`), else `name` as the `PATH` finds it.
pub fn system_program(name: &str) -> PathBuf {
    ["/usr/bin", "/usr/local/bin", "/usr/sbin"]
        .into_iter()
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A NATS server with JetStream of a test's own on a free port, its store
/// in its own directory (kept across restarts).
pub async fn nats_server() -> Service {
    let port = free_port();
    let server = Service::program(
        "nats-server",
        system_program("nats-server"),
        port,
        strings(&[
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-sd",
            "{dir}/jetstream",
        ]),
    );
    server.wait_listening(Duration::from_secs(10)).await;
    server
}

/// The platform in processes.
#[derive(Debug)]
pub struct Stack {
    /// The control plane.
    pub control_plane: Service,
    /// The stats service.
    pub stats: Service,
    /// The nodes, in start order.
    pub nodes: Vec<Service>,
    /// The nodes' stream.
    pub log: TestLog,
    /// The control plane's way to its database: cut it to take Postgres
    /// away from the control plane alone.
    pub database: CuttableProxy,
    node_flags: Vec<String>,
    _db: TestDatabase,
    _prefix: RedisPrefix,
}

impl Stack {
    /// Starts a control plane and a stats service, and `nodes` nodes on
    /// `log` with `node_flags` besides the harness's (outcomes flushed
    /// every 100 ms, fast reconnects, loopback partners allowed).
    pub async fn start(log: TestLog, nodes: usize, node_flags: &[&str]) -> Self {
        Self::start_with_stats(Backend::Redis, log, nodes, node_flags).await
    }

    /// Like [`Stack::start`], the stats service's counters on `stats`:
    /// the standalone Redis or the shared Redis Cluster.
    pub async fn start_with_stats(
        stats: Backend,
        log: TestLog,
        nodes: usize,
        node_flags: &[&str],
    ) -> Self {
        let db = TestDatabase::create().await;
        let mut url = url::Url::parse(db.url()).expect("a database URL");
        let upstream = (
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(5432),
        );
        let upstream = tokio::net::lookup_host(upstream)
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .expect("the database's address");
        let database = CuttableProxy::start(upstream).await;
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(database.addr().port())).expect("port");
        let prefix = RedisPrefix::new();
        let (cp_port, stats_port) = (free_port(), free_port());
        let control_plane = Service::start(
            "control-plane",
            "control-plane",
            cp_port,
            strings(&[
                "--listen",
                &format!("127.0.0.1:{cp_port}"),
                "--database-url",
                url.as_str(),
                "--admin-token",
                ADMIN_TOKEN,
                "--node-token",
                NODE_TOKEN,
                "--directory-token",
                DIRECTORY_TOKEN,
                "--secrets-key",
                SECRETS_KEY,
                "--stats-url",
                &format!("http://127.0.0.1:{stats_port}"),
                "--stats-admin-token",
                STATS_ADMIN_TOKEN,
                "--destination-allowlist",
                "127.0.0.0/8",
            ]),
        );
        let mut stats_args = strings(&[
            "--listen",
            &format!("127.0.0.1:{stats_port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--redis-url",
            &stats.redis_url().expect("a Redis backend"),
            "--redis-prefix",
            &prefix.0,
            "--admin-token",
            STATS_ADMIN_TOKEN,
            "--outcomes-token",
            OUTCOMES_TOKEN,
            "--control-plane",
            &format!("http://127.0.0.1:{cp_port}"),
            "--directory-token",
            DIRECTORY_TOKEN,
        ]);
        if stats == Backend::RedisCluster {
            stats_args.push("--redis-cluster".to_owned());
        }
        let stats = Service::start("stats-service", "stats-service", stats_port, stats_args);
        control_plane.wait_ready(Duration::from_secs(30)).await;
        stats.wait_ready(Duration::from_secs(30)).await;
        let mut node_flags: Vec<String> = strings(node_flags);
        node_flags.extend(log.flags("2s"));
        let mut stack = Self {
            control_plane,
            stats,
            nodes: Vec::new(),
            log,
            database,
            node_flags,
            _db: db,
            _prefix: prefix,
        };
        for _ in 0..nodes {
            stack.add_node().await;
        }
        stack
    }

    /// Starts one more node and waits until it is ready; returns its index.
    pub async fn add_node(&mut self) -> usize {
        let index = self.nodes.len();
        let port = free_port();
        let mut args = strings(&[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--node-id",
            &format!("node-{index}"),
            "--control-plane",
            &self.control_plane.url(),
            "--node-token",
            NODE_TOKEN,
            "--ingest-token",
            INGEST_TOKEN,
            "--stats",
            &self.stats.url(),
            "--outcomes-token",
            OUTCOMES_TOKEN,
            "--outcome-flush-interval",
            "100ms",
            "--config-backoff-min",
            "50ms",
            "--config-backoff-max",
            "500ms",
            "--retry-backoff",
            "20ms",
            "--destination-allowlist",
            "127.0.0.0/8",
        ]);
        args.extend(self.node_flags.iter().cloned());
        let node = Service::start(&format!("node-{index}"), "data-plane", port, args);
        node.wait_ready(Duration::from_secs(30)).await;
        self.nodes.push(node);
        index
    }

    /// Creates `connector` through the admin API.
    pub async fn create(&self, connector: Connector) -> Connector {
        let mut admin = ConnectorServiceClient::new(channel(&self.control_plane.url()).await);
        admin
            .create_connector(with_token(crate::fixtures::create(connector), ADMIN_TOKEN))
            .await
            .expect("create connector")
            .into_inner()
    }

    /// `ListNodes` of the control plane, with the admin token.
    pub async fn list_nodes(&self) -> Result<ListNodesResponse, tonic::Status> {
        let mut config = ConfigServiceClient::new(channel(&self.control_plane.url()).await);
        config
            .list_nodes(with_token(ListNodesRequest {}, ADMIN_TOKEN))
            .await
            .map(tonic::Response::into_inner)
    }

    /// An ingest client of node `index`.
    pub async fn ingest_client(&self, index: usize) -> IngestClient {
        IngestClient::new(channel(&self.nodes[index].url()).await)
    }

    /// Sends `events` to node `index` in one call.
    pub async fn ingest(
        &self,
        index: usize,
        events: &[String],
    ) -> Result<IngestResponse, tonic::Status> {
        self.ingest_client(index)
            .await
            .ingest(crate::node::ingest_request(events.to_vec()))
            .await
            .map(tonic::Response::into_inner)
    }

    /// The connector's outcome totals over the last 7 days (`None` while
    /// the stats service does not answer).
    pub async fn totals(&self, connector_id: &str) -> Option<OutcomeTotals> {
        let channel = Channel::from_shared(self.stats.url())
            .ok()?
            .connect()
            .await
            .ok()?;
        StatsServiceClient::new(channel)
            .get_connector_stats(crate::stats::last_7_days(connector_id))
            .await
            .ok()?
            .into_inner()
            .totals
    }

    /// Waits until `condition` holds for the connector's totals; returns
    /// them. Panics after `timeout` with the last totals seen.
    pub async fn wait_for_totals(
        &self,
        connector_id: &str,
        timeout: Duration,
        condition: impl Fn(&OutcomeTotals) -> bool,
    ) -> OutcomeTotals {
        let started = Instant::now();
        loop {
            let totals = self.totals(connector_id).await;
            if let Some(totals) = &totals
                && condition(totals)
            {
                return *totals;
            }
            assert!(
                started.elapsed() < timeout,
                "{connector_id}: totals {totals:?} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}
