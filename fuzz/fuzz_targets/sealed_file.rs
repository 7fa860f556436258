//! libFuzzer shell of the `sealed_file` target (crates/fuzz-targets).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(t) = swarm_fuzz_targets::target("sealed_file") {
        (t.run)(data);
    }
});
