//! Generates the eventconnectors.v1 messages, clients and servers with a
//! vendored protoc, so a fresh machine needs no system install.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = [
        "proto/eventconnectors/v1/api_keys.proto",
        "proto/eventconnectors/v1/connectors.proto",
        "proto/eventconnectors/v1/config.proto",
        "proto/eventconnectors/v1/ingest.proto",
        "proto/eventconnectors/v1/stats.proto",
    ];

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Ordered maps make encodings deterministic (stable snapshots, hashes).
    config.btree_map(["."]);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("eventconnectors_descriptor.bin"))
        .compile_with_config(
            config,
            &protos.map(PathBuf::from),
            &[PathBuf::from("proto"), protoc_bin_vendored::include_path()?],
        )?;
    Ok(())
}
