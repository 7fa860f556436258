//! libFuzzer shell of the `engine_api_request` target (crates/fuzz-targets).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(t) = swarm_fuzz_targets::target("engine_api_request") {
        (t.run)(data);
    }
});
