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

    let includes = [PathBuf::from("proto"), protoc_bin_vendored::include_path()?];
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("eventconnectors_descriptor.bin"))
        .compile_with_config(config, &protos.map(PathBuf::from), &includes)?;

    // ConfigService's server once more, sending `ConfigUpdate`s encoded
    // once and shared by every stream (`crate::shared`); every other type is
    // the one generated above.
    let shared = out_dir.join("shared");
    std::fs::create_dir_all(&shared)?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_client(false)
        .out_dir(&shared)
        .extern_path(
            ".eventconnectors.v1.ConfigUpdate",
            "crate::shared::EncodedConfigUpdate",
        )
        .extern_path(".eventconnectors.v1", "crate::v1")
        .compile_with_config(
            config,
            &[PathBuf::from("proto/eventconnectors/v1/config.proto")],
            &includes,
        )?;
    Ok(())
}
