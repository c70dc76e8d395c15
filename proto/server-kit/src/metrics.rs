//! The Prometheus endpoint every service exposes.

/// Serves the process's Prometheus metrics at `http://{address}/metrics`
/// (process-wide; call once). `histograms` gives each histogram's bucket
/// bounds in seconds.
pub fn install(
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
