//! Compiles our `.proto` files with protox, so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/types.proto",
        "proto/control.proto",
        "proto/dispatcher.proto",
        "proto/ca.proto",
        "proto/raft.proto",
        "proto/health.proto",
        "proto/logs.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Prost with small first buffers per call (src/codec.rs).
        .codec_path("crate::codec::SmallBufferCodec")
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        // Tasks and services hold their task spec through an Arc (src/shared_spec.rs).
        .extern_path(
            ".swarm.v1.SharedTaskSpec",
            "crate::shared_spec::SharedTaskSpec",
        )
        .compile_fds(fds)?;
    Ok(())
}
