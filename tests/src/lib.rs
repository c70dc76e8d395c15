//! Harness for the end-to-end tests: starts real services on loopback
//! ports against a fresh database each, and hands out authenticated clients.

pub mod control_plane;
pub mod fixtures;
pub mod node;
pub mod postgres;
pub mod stats;

/// Sends the services' logs to the test's output (shown for failing tests),
/// filtered by `RUST_LOG` (default `warn`). Safe to call from every test.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}
