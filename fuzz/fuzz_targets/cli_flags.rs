//! libFuzzer shell of the `cli_flags` target (crates/fuzz-targets).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(t) = swarm_fuzz_targets::target("cli_flags") {
        (t.run)(data);
    }
});
