//! What every server serves besides its own RPCs (`grpc.health.v1.Health`,
//! server reflection v1 and v1alpha), and serving itself: until a shutdown
//! signal, then a drain bounded by the grace period.

use tonic::service::Routes;
use tonic_health::server::HealthReporter;

/// Flags every server binary takes (flattened into its own).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeFlags {
    /// Longest wait for in-flight work after SIGTERM.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: std::time::Duration,

    /// Log one JSON object per line instead of text.
    #[arg(long, env = "LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

/// Bounds every server sets, so that no client (authenticated or not) can
/// hold more than its share.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// Requests one connection may have in progress at once.
    pub concurrency_per_connection: usize,
    /// Longest a call may take to be answered (a stream, to start).
    pub request_timeout: std::time::Duration,
    /// How long a keep-alive ping may go unanswered before the connection
    /// is closed.
    pub keepalive_timeout: std::time::Duration,
    /// Connections older than this are asked to go away (new calls move
    /// to a new connection, which a load balancer may send to a new pod).
    pub max_connection_age: Option<std::time::Duration>,
    /// Whether HTTP/1.1 is served too (browsers: gRPC-Web and pages);
    /// otherwise only HTTP/2.
    pub accept_http1: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 256,
            concurrency_per_connection: 64,
            request_timeout: std::time::Duration::from_secs(30),
            keepalive_timeout: std::time::Duration::from_secs(10),
            max_connection_age: None,
            accept_http1: false,
        }
    }
}

/// Routes with health and reflection (v1 and v1alpha) already added; the
/// caller adds its own services, whose names it lists in `served` so that
/// reflection lists exactly what this server answers. Neither health nor
/// reflection requires a token.
pub fn base_routes(served: &[&str]) -> (HealthReporter, Routes) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let routes = Routes::default()
        .add_service(health)
        .add_service(
            reflection_builder(served)
                .build_v1()
                .expect("embedded descriptor sets are valid"),
        )
        .add_service(
            reflection_builder(served)
                .build_v1alpha()
                .expect("embedded descriptor sets are valid"),
        );
    (reporter, routes)
}

fn reflection_builder(served: &[&str]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(eventconnectors_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    served
        .iter()
        .fold(builder, |builder, name| builder.with_service_name(*name))
}

/// Serves `routes` on `listener` (TLS as `tls` says) until `shutdown`
/// resolves, then reports
/// NOT_SERVING on health, stops accepting, and lets in-flight calls finish
/// for at most `grace` (long-lived streams are cut after it).
pub async fn serve(
    routes: Routes,
    listener: tokio::net::TcpListener,
    tls: &crate::tls::ServerTls,
    limits: &ServerLimits,
    health: HealthReporter,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: std::time::Duration,
) -> Result<(), tonic::transport::Error> {
    let (fired_tx, mut fired_rx) = tokio::sync::watch::channel(false);
    let graceful = async move {
        shutdown.await;
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let _ = fired_tx.send(true);
    };
    // With a caller's listener the builder's TCP options do not apply: set
    // them here. Without TCP_NODELAY a unary reply waits ~40 ms for the
    // peer's delayed ACK before its trailers leave.
    if let Ok(address) = listener.local_addr() {
        tls.warn_if_exposed(address);
    }
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut builder = tonic::transport::Server::builder();
    if let Some(config) = tls.config() {
        builder = builder.tls_config(config)?;
    }
    if let Some(age) = limits.max_connection_age {
        builder = builder
            .max_connection_age(age)
            .max_connection_age_grace(grace);
    }
    let server = builder
        .accept_http1(limits.accept_http1)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        .timeout(limits.request_timeout)
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, graceful);
    let deadline = async move {
        if fired_rx.wait_for(|fired| *fired).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!(?grace, "shutdown grace period over; closing remaining calls");
            Ok(())
        }
    }
}
