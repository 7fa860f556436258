//! What an operator types to `swarmctl`, as a library: the service flags and their value
//! parsers (durations, sizes, CPUs, mounts, labels, published ports, healthchecks, update
//! policies) and how values are shown back. Shared by the `swarmctl` binary and by the fuzz
//! targets (`crates/fuzz-targets`), which feed them the strings a user could type. Owns the
//! text syntax of flag values only; talking to a manager is the binary's.
//!
//! Errors stay `anyhow`: each is the one line the binary prints, starting with the flag's
//! name, and no caller matches on them.

pub mod flags;
pub mod ports;
pub mod units;
