use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = data_plane::args::Args::parse();
    server_kit::logs::init(args.serve.log_json);
    match data_plane::node::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "data-plane node stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
