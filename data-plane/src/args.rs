//! Command-line flags, each with an environment-variable fallback.

use eventconnectors_proto::auth::Secret;
use eventconnectors_proto::serving::ServeFlags;

use std::net::SocketAddr;
use std::time::Duration;

/// Data-plane node configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "data-plane", version, about = "Event ingest and delivery node")]
pub struct Args {
    /// Address the gRPC server (ingest, health) listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50061")]
    pub listen: SocketAddr,

    /// Control-plane URLs, comma-separated; any replica will do.
    #[arg(
        long = "control-plane",
        env = "CONTROL_PLANE_URLS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50051"
    )]
    pub control_plane: Vec<String>,

    /// This node's id in ListNodes (default: the host name, which is the pod
    /// name on Kubernetes).
    #[arg(long, env = "NODE_ID")]
    pub node_id: Option<String>,

    /// Token for the control plane's configuration feed.
    #[arg(long, env = "NODE_TOKEN", hide_env_values = true)]
    pub node_token: Secret,

    /// First delay before reconnecting to the control plane.
    #[arg(long, env = "CONFIG_BACKOFF_MIN", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub config_backoff_min: Duration,

    /// Longest delay between reconnection attempts.
    #[arg(long, env = "CONFIG_BACKOFF_MAX", default_value = "10s", value_parser = humantime::parse_duration)]
    pub config_backoff_max: Duration,

    /// Shutdown and logging.
    #[command(flatten)]
    pub serve: ServeFlags,
}

impl Args {
    /// The node id: the flag, else the host name.
    pub fn node_id(&self) -> String {
        self.node_id
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "data-plane".to_owned())
    }
}
