//! `swarmctl cluster …`: ls, inspect (settings and join tokens) and update (certificate
//! expiry, join token rotation). Each setting is printed as `Label: value` on one line, so
//! `grep Worker | awk '{print $2}'` yields the worker token.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Result};
use clap::{Subcommand, ValueEnum};
use swarm_api::{defaults, Cluster, ClusterRotation, ListClustersRequest, UpdateClusterRequest};

use super::{out, out_json, Format, FormatArg};
use crate::client;
use crate::flags::parse_duration_ms;
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
    /// Change a cluster's settings or rotate its join tokens
    Update {
        /// Cluster name or ID ("default")
        cluster: String,
        /// Replace a join token with a new one; the old one stops working at once
        /// (repeatable: worker, manager)
        #[arg(long = "rotate-join-token", value_enum, value_name = "ROLE")]
        rotate_join_token: Vec<TokenRole>,
        /// Replace the root CA: a new root, cross-signed by the current one; every node gets a
        /// certificate from it, then the old root is dropped (progress in `cluster inspect`)
        #[arg(long = "rotate-root-ca")]
        rotate_root_ca: bool,
        /// Seal managers' keys with an unlock key (printed); a restarted manager then waits
        /// for `swarmctl cluster unlock` or `swarmd --unlock-key`
        #[arg(long = "autolock", value_name = "BOOL", action = clap::ArgAction::Set)]
        autolock: Option<bool>,
        /// Life of node certificates issued from now on (at least 1h), e.g. 2160h
        #[arg(long = "cert-expiry", value_name = "DURATION")]
        cert_expiry: Option<String>,
        /// Old tasks kept per slot (or node, for global services)
        #[arg(
            long = "task-history-limit",
            value_name = "N",
            allow_hyphen_values = true
        )]
        task_history_limit: Option<String>,
        /// How often agents heartbeat; a node is DOWN after three missed periods, e.g. 5s
        #[arg(
            long = "dispatcher-heartbeat",
            value_name = "DURATION",
            allow_hyphen_values = true
        )]
        dispatcher_heartbeat: Option<String>,
    },
    /// Show the autolock unlock key, or replace it with --rotate
    UnlockKey {
        /// Replace the key; managers re-seal their keys with the new one
        #[arg(long)]
        rotate: bool,
        /// Print the key only
        #[arg(short, long)]
        quiet: bool,
    },
    /// Unlock a manager waiting locked (autolock): the key is read from standard input
    /// unless given with --unlock-key
    Unlock {
        #[arg(
            long = "unlock-key",
            value_name = "KEY",
            env = "SWARM_UNLOCK_KEY",
            hide_env_values = true
        )]
        unlock_key: Option<String>,
    },
}

/// Whose join token `--rotate-join-token` replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenRole {
    Worker,
    Manager,
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
            ClusterCmd::Update {
                cluster,
                rotate_join_token,
                rotate_root_ca,
                autolock,
                cert_expiry,
                task_history_limit,
                dispatcher_heartbeat,
            } => {
                let expiry = cert_expiry.map(|s| parse_cert_expiry(&s)).transpose()?;
                let history = task_history_limit
                    .map(|s| crate::flags::parse_u64("task-history-limit", &s))
                    .transpose()?;
                let heartbeat = dispatcher_heartbeat
                    .map(|s| crate::flags::parse_duration_ms("dispatcher-heartbeat", &s))
                    .transpose()?;
                if heartbeat.is_some_and(|ms| ms < 1_000) {
                    bail!("dispatcher-heartbeat: must be at least 1s");
                }
                if expiry.is_none()
                    && rotate_join_token.is_empty()
                    && !rotate_root_ca
                    && autolock.is_none()
                    && history.is_none()
                    && heartbeat.is_none()
                {
                    bail!("no changes for cluster {cluster}: give --cert-expiry, --rotate-join-token, --rotate-root-ca, --autolock, --task-history-limit or --dispatcher-heartbeat");
                }
                let mut c = client::connect(socket).await?;
                let found = resolve::cluster(&mut c, &cluster).await?;
                let mut spec = found.spec.clone().unwrap_or_default();
                if let Some(ms) = expiry {
                    spec.ca_config
                        .get_or_insert_with(Default::default)
                        .node_cert_expiry_ms = ms;
                }
                let was_locked = spec
                    .encryption
                    .as_ref()
                    .is_some_and(|e| e.auto_lock_managers);
                if let Some(on) = autolock {
                    spec.encryption
                        .get_or_insert_with(Default::default)
                        .auto_lock_managers = on;
                }
                if let Some(n) = history {
                    spec.orchestration
                        .get_or_insert_with(Default::default)
                        .task_history_retention_limit = n as i64;
                }
                if let Some(ms) = heartbeat {
                    spec.dispatcher
                        .get_or_insert_with(Default::default)
                        .heartbeat_period_ms = ms;
                }
                let rotation = ClusterRotation {
                    worker_join_token: rotate_join_token.contains(&TokenRole::Worker),
                    manager_join_token: rotate_join_token.contains(&TokenRole::Manager),
                    root_ca: rotate_root_ca,
                    manager_unlock_key: false,
                };
                let updated = c
                    .update_cluster(UpdateClusterRequest {
                        cluster_id: found.id.clone(),
                        cluster_version: found.meta.as_ref().map(|m| m.version).unwrap_or(0),
                        spec: Some(spec),
                        rotation: Some(rotation),
                    })
                    .await?
                    .into_inner()
                    .cluster
                    .unwrap_or(found);
                // Like SwarmKit's swarmctl: the ID of what was updated.
                out(&format!("{}\n", updated.id))?;
                if autolock == Some(true) && !was_locked {
                    let key = unlock_key(&mut c).await?;
                    out(&unlock_key_message(&key))?;
                }
                Ok(())
            }
            ClusterCmd::UnlockKey { rotate, quiet } => {
                let mut c = client::connect(socket).await?;
                if rotate {
                    let found = resolve::cluster(&mut c, "default").await?;
                    c.update_cluster(UpdateClusterRequest {
                        cluster_id: found.id.clone(),
                        cluster_version: found.meta.as_ref().map(|m| m.version).unwrap_or(0),
                        spec: found.spec.clone(),
                        rotation: Some(ClusterRotation {
                            manager_unlock_key: true,
                            ..Default::default()
                        }),
                    })
                    .await?;
                }
                let key = unlock_key(&mut c).await?;
                if key.is_empty() {
                    bail!("autolock is off: there is no unlock key (turn it on with `swarmctl cluster update default --autolock true`)");
                }
                if quiet {
                    out(&format!("{key}\n"))
                } else {
                    out(&unlock_key_message(&key))
                }
            }
            ClusterCmd::Unlock { unlock_key } => {
                let key = match unlock_key {
                    Some(k) => k,
                    None => {
                        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                            eprint!("Please enter unlock key: ");
                        }
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line)?;
                        line
                    }
                };
                let key = key.trim().to_string();
                if key.is_empty() {
                    bail!("unlock key: none given");
                }
                let ch = client::channel(socket).await?;
                swarm_api::lock_client::LockClient::new(ch)
                    .unlock(swarm_api::UnlockRequest { unlock_key: key })
                    .await?;
                Ok(())
            }
        }
    }
}

async fn unlock_key(c: &mut client::Client) -> Result<String> {
    Ok(c.get_unlock_key(swarm_api::GetUnlockKeyRequest {})
        .await?
        .into_inner()
        .unlock_key)
}

/// What operators are told along with the key (as `docker swarm unlock-key` does).
fn unlock_key_message(key: &str) -> String {
    format!(
        "To unlock a swarm manager after it restarts, run `swarmctl cluster unlock` and\n\
         provide the following key:\n\n    {key}\n\n\
         Remember to store this key in a password manager: without it a restarted manager\n\
         cannot serve.\n"
    )
}

/// `--cert-expiry`: a duration of at least an hour, checked here so the mistake is named
/// before anything is sent (the manager checks it again).
fn parse_cert_expiry(s: &str) -> Result<i64> {
    let ms = parse_duration_ms("cert-expiry", s)?;
    if ms < defaults::MIN_NODE_CERT_EXPIRY_MS {
        bail!("cert-expiry: {s} is too short; node certificates must last at least 1h");
    }
    Ok(ms)
}

/// The root CA's private key never belongs on an operator's terminal, whatever the server sent.
fn redact(mut c: Cluster) -> Cluster {
    if let Some(ca) = c.root_ca.as_mut() {
        ca.ca_key.clear();
        if let Some(rot) = ca.root_rotation.as_mut() {
            rot.ca_key.clear();
        }
    }
    c.manager_unlock_key.clear();
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
    if let Some(rot) = &root.root_rotation {
        let _ = writeln!(
            w,
            "  Root CA rotation: in progress, {}/{} nodes on the new root",
            rot.nodes_done, rot.nodes_total
        );
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
    fn cert_expiry_must_be_an_hour_or_more() {
        assert_eq!(parse_cert_expiry("1h").expect("1h"), 3_600_000);
        assert_eq!(
            parse_cert_expiry("2160h").expect("90 days"),
            90 * 24 * 3_600_000
        );
        let err = parse_cert_expiry("30m").expect_err("too short").to_string();
        assert!(err.starts_with("cert-expiry: "), "{err}");
        assert!(err.contains("at least 1h"), "{err}");
        assert!(parse_cert_expiry("soon").is_err());
    }

    #[test]
    fn the_ca_key_is_dropped() {
        let c = redact(cluster());
        assert!(c.root_ca.map(|r| r.ca_key.is_empty()).unwrap_or(false));
    }
}
