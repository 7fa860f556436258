//! One healthcheck of a `process` task, run as the task's process runs: the check's command
//! with the task's environment and working directory, in the task's network namespace when it
//! has one, in a process group of its own that dies with the agent, and killed whole when its
//! timeout passes or the check is dropped.
//!
//! Owns the check's child processes only. Must not touch the task's own process group nor
//! decide what a verdict means (`health` counts failures).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// What a check prints is kept up to this many bytes (as Docker keeps it), the rest read and
/// dropped so the check never blocks on a full pipe.
const OUTPUT_LIMIT: u64 = 4096;
/// How much of the output a task's status quotes.
const QUOTED: usize = 200;

/// How to run a task's check.
#[derive(Debug, Clone)]
pub(super) struct Probe {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
    /// The task's network namespace, for a task attached to networks.
    pub netns: Option<PathBuf>,
}

/// Kills the check's whole group when dropped: a timed-out or abandoned check leaves nothing.
struct Group(Option<Pid>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // ESRCH (the group is already gone) is the normal case.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

async fn bounded(r: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let Some(mut r) = r else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let _ = (&mut r).take(OUTPUT_LIMIT).read_to_end(&mut kept).await;
    let _ = tokio::io::copy(&mut r, &mut tokio::io::sink()).await;
    kept
}

/// The output's first line-ish part, on one line, for a status message.
fn quote(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(QUOTED) {
        Some((cut, _)) => format!("{}...", &one_line[..cut]),
        None => one_line,
    }
}

impl Probe {
    /// Runs the check once: Ok when it exits 0 within `timeout`, else what went wrong.
    pub async fn run(self: Arc<Self>, timeout: Duration) -> Result<(), String> {
        let Some((program, args)) = self.argv.split_first() else {
            return Err("no command".into());
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        super::child_setup::set_parent_death_signal(&mut cmd);
        if let Some(ns) = &self.netns {
            super::child_setup::enter_netns(&mut cmd, ns).map_err(|e| e.to_string())?;
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {program:?}: {e}"))?;
        let _group = Group(
            child
                .id()
                .and_then(|p| i32::try_from(p).ok())
                .map(Pid::from_raw),
        );
        let (out, err) = (child.stdout.take(), child.stderr.take());
        let ran = async {
            let (out, err, status) = tokio::join!(bounded(out), bounded(err), child.wait());
            (out, err, status)
        };
        match tokio::time::timeout(timeout, ran).await {
            Err(_) => Err(format!("timed out after {timeout:?}")),
            Ok((_, _, Err(e))) => Err(format!("waiting for {program:?}: {e}")),
            Ok((_, _, Ok(status))) if status.success() => Ok(()),
            Ok((mut out, err, Ok(status))) => {
                out.extend_from_slice(&err);
                let code = match status.code() {
                    Some(c) => format!("exit code {c}"),
                    None => "killed by a signal".to_string(),
                };
                let said = quote(&out);
                if said.is_empty() {
                    Err(code)
                } else {
                    Err(format!("{code}: {said}"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(script: &str, dir: &std::path::Path) -> Arc<Probe> {
        Arc::new(Probe {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![("HEALTH_WORD".into(), "ready".into())],
            dir: dir.to_path_buf(),
            netns: None,
        })
    }

    #[tokio::test]
    async fn passes_fails_with_output_and_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Duration::from_secs(5);
        let env_and_dir = "test \"$HEALTH_WORD\" = ready && test \"$(pwd)\" = \"$0\"";
        let mut p = (*probe(env_and_dir, dir.path())).clone();
        p.argv.push(dir.path().display().to_string());
        assert_eq!(Arc::new(p).run(t).await, Ok(()));
        assert_eq!(
            probe("echo not  ready; exit 2", dir.path()).run(t).await,
            Err("exit code 2: not ready".to_string())
        );
        let slow = probe("sleep 30", dir.path());
        let began = std::time::Instant::now();
        assert_eq!(
            slow.run(Duration::from_millis(200)).await,
            Err("timed out after 200ms".to_string())
        );
        assert!(began.elapsed() < Duration::from_secs(10), "not waited out");
    }
}
