use clap::Parser;

// The event path allocates and frees many small buffers per event (parsed
// JSON, prepared bodies); mimalloc spends about half the CPU glibc's malloc
// does on them (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = data_plane::args::Args::parse();
    eventconnectors_proto::serving::init_tracing(args.serve.log_json);
    match data_plane::node::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "data-plane node stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
