//! `swarmd inspect-state`: prints what a stopped manager's state dir holds (Raft membership, log
//! positions, the current objects, optionally the log) for operators recovering a cluster.
//!
//! Owns the presentation and the redaction only: reading and replaying the Raft state is
//! `swarm_raft::inspect`'s. It must not change the state dir, and must not start while a swarmd
//! uses it. What it prints may be pasted into tickets, so the CA key and secret data are never
//! printed and join tokens are masked, in every format.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use swarm_api::defaults;
#[cfg(test)]
use swarm_api::{store_object::Object, StoreActionKind, StoreBatch, StoreObject, Task};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// State directory of a stopped manager.
    #[arg(short = 'd', long = "state-dir", default_value = defaults::STATE_DIR)]
    pub state_dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also list every log entry after the snapshot (text format; JSON always has them).
    #[arg(long)]
    pub log: bool,
    /// Unlock key of an autolocked manager's state dir.
    #[arg(long = "unlock-key", env = "SWARM_UNLOCK_KEY", hide_env_values = true)]
    pub unlock_key: Option<String>,
}

/// Runs the subcommand; errors go to stderr on one line.
pub fn main(args: &InspectArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", swarm_node::one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run(args: &InspectArgs) -> Result<()> {
    let dir = &args.state_dir;
    // Held while reading, so a swarmd cannot start on this dir halfway through.
    let _guard = refuse_if_in_use(dir)?;
    let mut report = match swarm_node::read_data_key(dir, args.unlock_key.as_deref())? {
        Some(key) => swarm_raft::inspect_with_key(dir, &key)?,
        None => swarm_raft::inspect(dir)?,
    };
    redact_report(&mut report);
    let out = match args.format {
        Format::Json => {
            let mut s = report.to_json()?;
            s.push('\n');
            s
        }
        Format::Text => render_text(&report, args.log),
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // `| head` closing the pipe early is not an error of ours.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing output"),
        _ => Ok(()),
    }
}

/// A running swarmd holds an exclusive lock on `<dir>/swarmd.lock` (see `lock.rs`); take a
/// shared one. The file is opened, never created: inspecting must not change the dir.
fn refuse_if_in_use(dir: &Path) -> Result<Option<File>> {
    let path = dir.join("swarmd.lock");
    let file = match File::open(&path) {
        Ok(f) => f,
        // No lock file: no swarmd ever ran here (or it is not a state dir; inspect says so).
        Err(_) => return Ok(None),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "state dir {} is in use by a running swarmd; stop it first",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

// ---- redaction ----

mod redact;
mod text;

use redact::redact_report;
use text::render_text;
#[cfg(test)]
use {redact::mask_token, text::batch_summary};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_secret_part_of_join_tokens() {
        let digest = "3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl";
        let secret = "1s4t2cjfqqyvkmzkhm1yfqwxr";
        let masked = mask_token(&format!("SWMTKN-1-{digest}-{secret}"));
        assert_eq!(masked, "SWMTKN-1-3pu6hszj…-****");
        assert_eq!(mask_token("not-a-token"), "****");
        assert_eq!(mask_token(""), "");
    }

    #[test]
    fn large_batches_are_counted() {
        let task = |i: usize| swarm_api::StoreAction {
            kind: StoreActionKind::Update as i32,
            object: Some(StoreObject {
                object: Some(Object::Task(Box::new(Task {
                    id: format!("t{i}"),
                    ..Default::default()
                }))),
            }),
        };
        let small = StoreBatch {
            actions: (0..2).map(task).collect(),
            timestamp: 0,
        };
        assert_eq!(batch_summary(&small), "update task t0, update task t1");
        let big = StoreBatch {
            actions: (0..9).map(task).collect(),
            timestamp: 0,
        };
        assert_eq!(batch_summary(&big), "update task ×9");
    }
}
