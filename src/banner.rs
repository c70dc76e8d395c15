//! What the one command tells a person at start-up, on standard output
//! (logs go to standard error): where everything listens, the tokens, and
//! for each demo connector the grpcurl command that shows its statistics.

use std::io::Write;

use crate::args::{Args, DEV_ADMIN_TOKEN, DEV_INGEST_TOKEN, DEV_NODE_TOKEN};
use crate::demo::Demo;
use crate::system::System;

/// `token`, or a note that it came from the environment.
fn shown(token: &str, development: &str, variable: &str) -> String {
    if token == development {
        format!("{token}  (development token; set {variable} to change it)")
    } else {
        format!("<set by {variable}>")
    }
}

/// The banner's text.
pub fn text(args: &Args, system: &System, demo: Option<&Demo>) -> String {
    let addresses = &system.addresses;
    let admin = args.admin_token.expose();
    let console = if admin == DEV_ADMIN_TOKEN {
        // The fragment never reaches the server; the page takes the token
        // from it once and removes it from the address bar.
        format!(
            "http://{}{}#token={admin}",
            addresses.control_plane,
            control_plane::console::PATH
        )
    } else {
        format!(
            "http://{}{}  (sign in with ADMIN_TOKEN)",
            addresses.control_plane,
            control_plane::console::PATH
        )
    };
    let mut lines = vec![
        "Event connectors are running in one process:".to_owned(),
        format!("  console        {console}"),
        format!(
            "  control plane  {}  (ConnectorService, ConfigService; StatsService reads relayed)",
            addresses.control_plane
        ),
        format!("  ingest         {}  (IngestService)", addresses.ingest),
        format!("  statistics     {}  (StatsService)", addresses.stats),
        format!("  metrics        http://{}/metrics", args.metrics_listen),
        format!(
            "  admin token    {}",
            shown(admin, DEV_ADMIN_TOKEN, "ADMIN_TOKEN")
        ),
        format!(
            "  ingest token   {}",
            shown(args.ingest_token.expose(), DEV_INGEST_TOKEN, "INGEST_TOKEN")
        ),
        format!(
            "  node token     {}",
            shown(args.node_token.expose(), DEV_NODE_TOKEN, "NODE_TOKEN")
        ),
    ];
    match demo {
        None => lines.push("Demo off (--no-demo).".to_owned()),
        Some(demo) => {
            lines.push(format!(
                "Demo: {} events a second into workspace `demo`, delivered to the demo partner at http://{} (--no-demo turns it off).",
                args.demo_events_per_second, demo.partner
            ));
            if system.meta_to_demo {
                lines.push(
                    "  While the demo runs, every Meta Conversions API request goes to the demo partner (--no-demo sends them to Meta)."
                        .to_owned(),
                );
            }
            let token = if admin == DEV_ADMIN_TOKEN {
                admin.to_owned()
            } else {
                "$ADMIN_TOKEN".to_owned()
            };
            for connector in &demo.connectors {
                let state = if connector.active {
                    ""
                } else {
                    " (deactivated: activate it to see it flow)"
                };
                lines.push(format!("  {}{state}:", connector.name));
                lines.push(format!(
                    "    grpcurl -plaintext -H \"authorization: Bearer {token}\" -d '{{\"connector_id\": \"{}\", \"preset\": \"LAST_7_DAYS\"}}' {} eventconnectors.v1.StatsService/GetConnectorStats",
                    connector.id, addresses.stats
                ));
            }
        }
    }
    lines.push("Ctrl-C stops everything.".to_owned());
    lines.join("\n")
}

/// Prints the banner.
pub fn print(args: &Args, system: &System, demo: Option<&Demo>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text(args, system, demo));
    let _ = out.flush();
}
