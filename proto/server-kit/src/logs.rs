//! Logs: `tracing` to standard error, as text or one JSON object per line.

/// Installs the global tracing subscriber: `RUST_LOG` filters (default
/// `info`), `json` selects one JSON object per line for log collectors.
pub fn init(json: bool) {
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
