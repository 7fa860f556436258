//! `swarmctl cluster …`: ls and inspect (settings and join tokens). Each setting is printed as
//! `Label: value` on one line, so `grep Worker | awk '{print $2}'` yields the worker token.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use clap::Subcommand;
use swarm_api::{Cluster, ListClustersRequest};

use super::{out, out_json, Format, FormatArg};
use crate::client;
use crate::resolve;
use crate::table::{self, LIST};
use crate::units;

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// List clusters (there is one: "default")
    #[command(visible_alias = "list")]
    Ls {
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show a cluster's settings and join tokens
    Inspect {
        /// Cluster name or ID ("default")
        cluster: String,
        #[command(flatten)]
        format: FormatArg,
    },
}

impl ClusterCmd {
    pub async fn run(self, socket: &Path) -> Result<()> {
        match self {
            ClusterCmd::Ls { format } => {
                let mut c = client::connect(socket).await?;
                let mut clusters: Vec<Cluster> = c
                    .list_clusters(ListClustersRequest {})
                    .await?
                    .into_inner()
                    .clusters
                    .into_iter()
                    .map(redact)
                    .collect();
                clusters.sort_by(|a, b| a.id.cmp(&b.id));
                if format.format == Format::Json {
                    return out_json(&clusters);
                }
                let rows: Vec<Vec<String>> = clusters
                    .iter()
                    .map(|c| vec![c.id.clone(), cluster_name(c).to_string()])
                    .collect();
                out(&table::table(LIST, &["ID", "Name"], &rows))
            }
            ClusterCmd::Inspect { cluster, format } => {
                let mut c = client::connect(socket).await?;
                let found = redact(resolve::cluster(&mut c, &cluster).await?);
                if format.format == Format::Json {
                    return out_json(&found);
                }
                out(&render_inspect(&found))
            }
        }
    }
}

/// The root CA's private key never belongs on an operator's terminal, whatever the server sent.
fn redact(mut c: Cluster) -> Cluster {
    if let Some(ca) = c.root_ca.as_mut() {
        ca.ca_key.clear();
    }
    c
}

fn cluster_name(c: &Cluster) -> &str {
    c.spec
        .as_ref()
        .and_then(|s| s.annotations.as_ref())
        .map(|a| a.name.as_str())
        .unwrap_or("")
}

/// `cluster inspect`.
pub fn render_inspect(c: &Cluster) -> String {
    let spec = c.spec.clone().unwrap_or_default();
    let orchestration = spec.orchestration.unwrap_or_default();
    let raft = spec.raft.unwrap_or_default();
    let dispatcher = spec.dispatcher.unwrap_or_default();
    let ca = spec.ca_config.unwrap_or_default();
    let encryption = spec.encryption.unwrap_or_default();
    let root = c.root_ca.clone().unwrap_or_default();
    let tokens = root.join_tokens.unwrap_or_default();
    let mut w = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(w, "ID: {}", c.id);
    let _ = writeln!(w, "Name: {}", cluster_name(c));
    let _ = writeln!(w, "Orchestration:");
    let _ = writeln!(
        w,
        "  Task history retention limit: {}",
        orchestration.task_history_retention_limit
    );
    let _ = writeln!(w, "Raft:");
    let _ = writeln!(w, "  Snapshot interval: {}", raft.snapshot_interval);
    let _ = writeln!(
        w,
        "  Log entries for slow followers: {}",
        raft.log_entries_for_slow_followers
    );
    let _ = writeln!(w, "  Heartbeat tick: {}", raft.heartbeat_tick);
    let _ = writeln!(w, "  Election tick: {}", raft.election_tick);
    let _ = writeln!(w, "Dispatcher:");
    let _ = writeln!(
        w,
        "  Heartbeat period: {}",
        units::duration_ms(dispatcher.heartbeat_period_ms)
    );
    let _ = writeln!(w, "Certificate Authority:");
    let _ = writeln!(
        w,
        "  Node certificate expiry: {}",
        units::duration_ms(ca.node_cert_expiry_ms)
    );
    if !root.ca_cert_hash.is_empty() {
        let _ = writeln!(w, "  Root CA digest: {}", root.ca_cert_hash);
    }
    let _ = writeln!(w, "Encryption:");
    let _ = writeln!(w, "  Autolock: {}", encryption.auto_lock_managers);
    let _ = writeln!(w, "Join Tokens:");
    let _ = writeln!(w, "  Worker: {}", tokens.worker);
    let _ = writeln!(w, "  Manager: {}", tokens.manager);
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::{
        Annotations, CaConfig, ClusterSpec, DispatcherConfig, JoinTokens, OrchestrationConfig,
        RaftConfig, RootCa,
    };

    fn cluster() -> Cluster {
        Cluster {
            id: "4ndfo1bhnxdfaxbbuyfavq3ie".into(),
            spec: Some(ClusterSpec {
                annotations: Some(Annotations {
                    name: "default".into(),
                    labels: Default::default(),
                }),
                orchestration: Some(OrchestrationConfig {
                    task_history_retention_limit: 5,
                }),
                raft: Some(RaftConfig {
                    snapshot_interval: 10_000,
                    log_entries_for_slow_followers: 500,
                    heartbeat_tick: 1,
                    election_tick: 10,
                }),
                dispatcher: Some(DispatcherConfig {
                    heartbeat_period_ms: 5_000,
                }),
                ca_config: Some(CaConfig {
                    node_cert_expiry_ms: 90 * 24 * 3_600_000,
                }),
                encryption: None,
            }),
            root_ca: Some(RootCa {
                ca_key: b"secret".to_vec(),
                join_tokens: Some(JoinTokens {
                    worker: "SWMTKN-1-aaa-www".into(),
                    manager: "SWMTKN-1-aaa-mmm".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn tokens_sit_on_their_label_lines_worker_first() {
        let out = render_inspect(&cluster());
        let token_lines: Vec<&str> = out.lines().filter(|l| l.contains("SWMTKN")).collect();
        assert_eq!(
            token_lines,
            vec!["  Worker: SWMTKN-1-aaa-www", "  Manager: SWMTKN-1-aaa-mmm"]
        );
        // No other line mentions the roles, so grep finds exactly one of each.
        assert_eq!(out.lines().filter(|l| l.contains("Worker")).count(), 1);
        assert_eq!(out.lines().filter(|l| l.contains("Manager")).count(), 1);
        let worker = out
            .lines()
            .find(|l| l.contains("Worker"))
            .and_then(|l| l.split_whitespace().nth(1));
        assert_eq!(worker, Some("SWMTKN-1-aaa-www"));
    }

    #[test]
    fn settings_are_printed() {
        let out = render_inspect(&cluster());
        for want in [
            "ID: 4ndfo1bhnxdfaxbbuyfavq3ie",
            "Name: default",
            "  Task history retention limit: 5",
            "  Heartbeat period: 5s",
            "  Node certificate expiry: 2160h0m0s",
            "  Snapshot interval: 10000",
        ] {
            assert!(out.lines().any(|l| l == want), "missing {want:?} in\n{out}");
        }
    }

    #[test]
    fn the_ca_key_is_dropped() {
        let c = redact(cluster());
        assert!(c.root_ca.map(|r| r.ca_key.is_empty()).unwrap_or(false));
    }
}
