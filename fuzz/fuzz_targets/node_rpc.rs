//! libFuzzer shell of the `node_rpc` target (crates/fuzz-targets).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(t) = swarm_fuzz_targets::target("node_rpc") {
        (t.run)(data);
    }
});
