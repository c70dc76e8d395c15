//! Harness for the end-to-end tests: starts real services on loopback
//! ports against a fresh database each, and hands out authenticated clients.

pub mod bench;
pub mod control_plane;
pub mod event_log;
pub mod fixtures;
pub mod grpc_web;
pub mod metrics;
pub mod node;
pub mod partners;
pub mod pki;
pub mod platform;
pub mod postgres;
pub mod processes;
pub mod proxy;
pub mod redis_cluster;
pub mod server_task;
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

/// Runs `work` to completion on a thread of its own, with a runtime of its
/// own: for clean-up in `Drop`, which may run inside a runtime.
pub fn run_detached<F>(work: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future,
{
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(work());
        Some(())
    })
    .join();
}

/// `message` with `authorization: Bearer <token>` metadata.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    server_kit::auth::bearer(message, token).expect("a token gRPC metadata can carry")
}

/// Generates one `#[tokio::test]` per case and backend: for
/// `[postgres => super::Db::Postgres, ...]` and cases `[a, b]`, module
/// `postgres` gets tests `a` and `b` calling `super::a(super::Db::Postgres)`.
#[macro_export]
macro_rules! each_backend {
    ([$($module:ident => $value:expr),+ $(,)?], $cases:tt) => {
        $($crate::__backend_module!($module, $value, $cases);)+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __backend_module {
    ($module:ident, $value:expr, [$($case:ident),* $(,)?]) => {
        mod $module {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case($value).await;
            })*
        }
    };
}
