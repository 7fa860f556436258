//! Inputs shared by the benches and the instruction-count guard (`instr-guard`): synthetic
//! cluster states at fixed sizes. Owns no timing and no measurement; it must not reach into
//! the code it feeds (it builds tables and tasks through their public types only). The
//! [`nemesis`] module is the nemesis's history and linearizability checker, kept here so they
//! are unit-tested apart from the binary that drives a cluster.

pub mod instr;
pub mod nemesis;
pub mod shapes;
