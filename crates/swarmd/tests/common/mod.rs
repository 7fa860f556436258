//! The multi-process harness is the shared test kit's (`swarm_testkit::process`); the tests
//! reach it under the name they have always used.
#![allow(unused_imports)]

pub use swarm_testkit::process::*;
