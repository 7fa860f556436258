//! `swarmctl service …`: create, update, ls, inspect, rm and logs (in `../logs.rs`).
//!
//! This file owns the subcommand line and the dispatch; the work is split by command:
//! `create_update` (create and update, which share the flags and the wait), `ls` (the
//! `service ls` table) and `inspect` (the `service inspect` layout). Rm is small enough to
//! stay here. Must not parse flag values: `crate::flags` does.

mod create_update;
#[cfg(test)]
mod fixtures;
mod inspect;
mod ls;

use std::path::Path;

use anyhow::Result;
use clap::{Args, Subcommand};
use swarm_api::RemoveServiceRequest;

use super::{out, FormatArg};
use crate::client;
use crate::flags::ServiceFlags;
use crate::resolve;

#[derive(Subcommand, Debug)]
pub enum ServiceCmd {
    /// Create a service, print its ID and wait for its tasks to run
    Create {
        #[command(flatten)]
        wait: WaitArgs,
        #[command(flatten)]
        flags: ServiceFlags,
    },
    /// Change a service: only the named flags change
    Update {
        /// Service name, ID or ID prefix
        service: String,
        /// Restart every task even if nothing else changed
        #[arg(long)]
        force: bool,
        /// Go back to the previous spec (with the rollback config)
        #[arg(long, conflicts_with = "force")]
        rollback: bool,
        /// Move tasks so they are spread evenly over the nodes again (new nodes included),
        /// within the update parallelism and delay
        #[arg(long, conflicts_with = "rollback")]
        rebalance: bool,
        #[command(flatten)]
        wait: WaitArgs,
        #[command(flatten)]
        flags: ServiceFlags,
    },
    /// List services
    #[command(visible_alias = "list")]
    Ls {
        /// Only print IDs
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show a service and its tasks
    Inspect {
        /// Service name, ID or ID prefix
        service: String,
        /// Also show tasks that are no longer meant to run
        #[arg(short, long)]
        all: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Remove a service
    #[command(visible_alias = "remove")]
    Rm {
        /// Service name, ID or ID prefix
        service: String,
    },
    /// Print the output of a service's tasks, each line prefixed with its task and node
    Logs {
        /// Service name, ID or ID prefix
        service: String,
        /// Keep printing output as it is written
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines of each task
        #[arg(long, value_name = "N")]
        tail: Option<u64>,
    },
}

/// How `create` and `update` end: at once, or once the service has converged.
#[derive(Args, Debug, Clone, Copy)]
pub struct WaitArgs {
    /// Return once the manager accepted the change instead of waiting for the tasks
    #[arg(short, long)]
    detach: bool,
    /// Wait without showing progress
    #[arg(short, long)]
    quiet: bool,
}

impl ServiceCmd {
    pub async fn run(self, socket: &Path) -> Result<()> {
        match self {
            ServiceCmd::Create { wait: w, flags } => create_update::create(socket, w, flags).await,
            ServiceCmd::Update {
                service,
                force,
                rollback,
                rebalance,
                wait: w,
                flags,
            } => {
                create_update::update(socket, &service, force, rollback, rebalance, w, flags).await
            }
            ServiceCmd::Ls { quiet, format } => ls::run(socket, quiet, format).await,
            ServiceCmd::Inspect {
                service,
                all,
                format,
            } => inspect::run(socket, &service, all, format).await,
            ServiceCmd::Rm { service } => {
                let mut c = client::connect(socket).await?;
                let svc = resolve::service(&mut c, &service).await?;
                c.remove_service(RemoveServiceRequest {
                    service_id: svc.id.clone(),
                })
                .await?;
                out(&format!("{service}\n"))
            }
            ServiceCmd::Logs {
                service,
                follow,
                tail,
            } => super::logs::run(socket, &service, follow, tail).await,
        }
    }
}
