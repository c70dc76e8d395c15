use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = control_plane::config::Args::parse();
    eventconnectors_proto::serving::init_tracing(args.serve.log_json);
    match control_plane::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "control plane stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
