//! The one command: the control plane, one data-plane node and the stats
//! service in one process, on their usual ports with the embedded stores,
//! and a demo that shows events flowing and failing. The separate binaries
//! (`-p control-plane`, `-p data-plane`, `-p stats-service`) are the same
//! crates, deployed apart.

mod args;
mod banner;
mod demo;
mod system;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Args;
use crate::demo::{Demo, DemoPartner};
use crate::system::System;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    server_kit::logs::init(args.serve.log_json);
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            ExitCode::FAILURE
        }
    }
}

/// Starts everything, runs until SIGTERM, Ctrl-C or a service ending on its
/// own, then stops it all in order: the demo's traffic, the node, the
/// control plane, the stats service, the demo partner. `Ok(false)`: a
/// service failed.
async fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    args.check_tokens()?;
    let partner = match args.no_demo {
        true => None,
        false => Some(DemoPartner::bind(args.demo_partner_listen).await?),
    };
    let mut system = System::start(&args, partner.as_ref().map(DemoPartner::base_url)).await?;
    let mut demo = None;
    if let Some(partner) = partner {
        let started = Demo::start(
            partner,
            &system.addresses,
            system.meta_to_demo,
            args.admin_token.expose(),
            args.ingest_token.expose(),
            args.demo_events_per_second,
        )
        .await;
        match started {
            Ok(started) => demo = Some(started),
            Err(status) => {
                system.stop().await;
                return Err(format!("the demo could not create its connectors: {status}").into());
            }
        }
    }
    banner::print(&args, &system, demo.as_ref());

    let mut clean = true;
    tokio::select! {
        () = server_kit::shutdown::shutdown_signal() => {}
        service = system.failed() => {
            tracing::error!(service, "stopped on its own; stopping the others");
            clean = false;
        }
    }
    if let Some(demo) = demo.as_mut() {
        demo.stop_traffic().await;
    }
    clean &= system.stop().await;
    if let Some(demo) = demo {
        demo.stop_partner().await;
    }
    tracing::info!("stopped");
    Ok(clean)
}
