//! What every server binary of the platform serves and does besides its own
//! RPCs: `grpc.health.v1.Health`, server reflection (v1 and v1alpha), tracing
//! set-up and shutdown on SIGTERM / Ctrl-C.

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
        .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
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

/// Installs the global tracing subscriber: `RUST_LOG` filters (default
/// `info`), `json` selects one JSON object per line for log collectors.
pub fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves once `stop` turns true or its sender is gone: the stop signal
/// the background loops of every service watch.
pub async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Resolves on SIGTERM (what Kubernetes sends) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// Serves `routes` on `listener` until `shutdown` resolves, then reports
/// NOT_SERVING on health, stops accepting, and lets in-flight calls finish
/// for at most `grace` (long-lived streams are cut after it).
pub async fn serve(
    routes: Routes,
    listener: tokio::net::TcpListener,
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
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
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

/// Serves the process's Prometheus metrics at `http://{address}/metrics`
/// (process-wide; call once). `histograms` gives each histogram's bucket
/// bounds in seconds.
pub fn install_metrics(
    address: std::net::SocketAddr,
    histograms: &[(&str, &[f64])],
) -> Result<(), metrics_exporter_prometheus::BuildError> {
    let mut builder =
        metrics_exporter_prometheus::PrometheusBuilder::new().with_http_listener(address);
    for (name, buckets) in histograms {
        builder = builder.set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full((*name).to_owned()),
            buckets,
        )?;
    }
    builder.install()
}
