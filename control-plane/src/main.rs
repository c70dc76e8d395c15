use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = control_plane::config::Args::parse();
    server_kit::logs::init(args.serve.log_json);
    match control_plane::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "control plane stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
