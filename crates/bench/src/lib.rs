//! Inputs shared by the benches and the instruction-count guard (`instr-guard`): synthetic
//! cluster states at fixed sizes. Owns no timing and no measurement; it must not reach into
//! the code it feeds (it builds tables and tasks through their public types only).

pub mod instr;
pub mod shapes;
