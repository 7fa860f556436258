//! libFuzzer shell of the `raft_disk` target (crates/fuzz-targets).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(t) = swarm_fuzz_targets::target("raft_disk") {
        (t.run)(data);
    }
});
