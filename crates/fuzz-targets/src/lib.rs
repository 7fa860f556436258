//! The bodies of the fuzz targets: each takes bytes as they would arrive from outside (a peer,
//! a client, a file on disk) and hands them to the real decoder and, where one exists, the
//! real handler. Any error is a correct answer; a panic, a hang or unbounded memory is a bug.
//! Shared by the libFuzzer targets in `fuzz/` and by `tests/corpus.rs`, which replays the
//! committed corpus and mutates it for a few seconds in CI. Owns no decoder of its own.

mod ca;
mod cli_flags;
mod control;
mod dns;
mod engine_api;
mod input;
mod node_rpc;
mod raft_disk;
mod raft_rpc;
mod runtime;
pub mod seeds;
mod text;

/// A target: its name (the directory of its corpus under `fuzz/corpus/`) and its body.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "expressions",
        run: text::expressions,
    },
    Target {
        name: "tokens",
        run: text::tokens,
    },
    Target {
        name: "sealed_file",
        run: text::sealed_file,
    },
    Target {
        name: "dns_query",
        run: dns::query,
    },
    Target {
        name: "control_request",
        run: control::request,
    },
    Target {
        name: "engine_api_request",
        run: engine_api::request,
    },
    Target {
        name: "raft_rpc",
        run: raft_rpc::rpc,
    },
    Target {
        name: "ca_csr",
        run: ca::csr,
    },
    Target {
        name: "raft_disk",
        run: raft_disk::disk,
    },
    Target {
        name: "cli_flags",
        run: cli_flags::service_flags,
    },
    Target {
        name: "node_rpc",
        run: node_rpc::rpc,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
