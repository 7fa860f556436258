//! The nemesis (`nemesis` binary): a real cluster under a recorded workload while faults are
//! injected, then a linearizability check of what the clients saw. This module holds what can
//! be tested without a cluster: the history's vocabulary ([`history`]) and the checker
//! ([`checker`]). It must not start processes or touch the network; the driver that does lives
//! with the binary.

pub mod checker;
pub mod history;
pub mod schedule;
