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
        // A store object is a pointer, not the largest of its kinds inline (a Service is
        // 720 bytes): every write moves objects through undo records, watch events and
        // results, and the stream of a 100,000-task batch was 200 MB of copies.
        .boxed(".swarm.v1.StoreObject.object.node")
        .boxed(".swarm.v1.StoreObject.object.service")
        .boxed(".swarm.v1.StoreObject.object.task")
        .boxed(".swarm.v1.StoreObject.object.cluster")
        .boxed(".swarm.v1.StoreObject.object.secret")
        .boxed(".swarm.v1.StoreObject.object.config")
        .boxed(".swarm.v1.StoreObject.object.network")
        .compile_fds(fds)?;
    Ok(())
}
