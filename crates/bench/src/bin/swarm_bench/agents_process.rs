//! Simulated agents in a child process (`--agents-process`): the same `swarm_agent::Agent`s
//! with the same certificates, but in another process, so the bench process holds only the
//! managers (and the driver) and its peak RSS is the managers' own. It also makes node-loss a
//! real `SIGKILL` of the process that holds the lost nodes.
//!
//! The parent writes one JSON line to the child's stdin (managers, nodes with their PEMs) and
//! keeps stdin open; the child starts the agents, answers `ready`, and exits when stdin
//! closes (the parent finished or died). This module owns that protocol and the child's
//! counters; it starts no managers.

use super::cluster::{self, SimNode};
use super::metrics;
use anyhow::{bail, Context, Result};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;
use swarm_ca::NodeCredentials;
use tokio_util::sync::CancellationToken;

/// The hidden flag that makes swarm-bench the agents' process.
pub const CHILD_FLAG: &str = "--sim-agents-child";

#[derive(Serialize, Deserialize)]
struct Node {
    node_id: String,
    hostname: String,
    cert_pem: String,
    key_pem: String,
    root_pem: String,
}

#[derive(Serialize, Deserialize)]
struct Spec {
    managers: Vec<String>,
    /// Agents' state dirs go under here, one per node.
    dir: PathBuf,
    start_delay_ms: u64,
    threads: usize,
    nodes: Vec<Node>,
}

/// The agents' processes alive, and the CPU seconds of those killed (read just before).
static PIDS: Mutex<(Vec<u32>, f64)> = Mutex::new((Vec::new(), 0.0));

/// CPU seconds of every agents' process, killed ones included.
pub fn children_cpu_secs() -> f64 {
    let p = PIDS.lock();
    p.1 + p
        .0
        .iter()
        .map(|pid| metrics::pid_cpu_secs(*pid))
        .sum::<f64>()
}

/// Peak RSS of every agents' process still alive, summed.
pub fn children_peak_rss_bytes() -> u64 {
    PIDS.lock()
        .0
        .iter()
        .map(|p| metrics::pid_peak_rss_bytes(*p))
        .sum()
}

/// A running agents' process.
pub struct AgentsProcess {
    child: Child,
    // Held open: the child exits when it closes.
    _stdin: ChildStdin,
}

impl AgentsProcess {
    /// Starts `nodes`' agents in a new process and waits until they are all started.
    pub fn spawn(
        nodes: &[&SimNode],
        managers: &[String],
        dir: &Path,
        start_delay: Duration,
        threads: usize,
    ) -> Result<AgentsProcess> {
        let spec = Spec {
            managers: managers.to_vec(),
            dir: dir.to_path_buf(),
            start_delay_ms: start_delay.as_millis() as u64,
            threads,
            nodes: nodes
                .iter()
                .map(|n| {
                    let c = n.creds.current();
                    Node {
                        node_id: n.node_id.clone(),
                        hostname: n.hostname.clone(),
                        cert_pem: c.cert_pem,
                        key_pem: c.key_pem,
                        root_pem: c.root_pem,
                    }
                })
                .collect(),
        };
        let exe = std::env::current_exe().context("locating swarm-bench")?;
        let mut child = Command::new(exe)
            .arg(CHILD_FLAG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the agents' process")?;
        let mut stdin = child.stdin.take().context("agents' stdin")?;
        serde_json::to_writer(&mut stdin, &spec)?;
        stdin.write_all(b"\n")?;
        stdin.flush()?;
        let stdout = child.stdout.take().context("agents' stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            bail!("the agents' process did not start: {:?}", line.trim());
        }
        PIDS.lock().0.push(child.id());
        Ok(AgentsProcess {
            child,
            _stdin: stdin,
        })
    }

    /// A crash: SIGKILL, no goodbye, sockets cut by the kernel.
    pub fn kill(mut self) {
        let pid = self.child.id();
        {
            let mut p = PIDS.lock();
            p.1 += metrics::pid_cpu_secs(pid);
            p.0.retain(|x| *x != pid);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AgentsProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's side: reads the spec, runs the agents until stdin closes.
pub fn child_main() -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the agents' spec")?;
    let spec: Spec = serde_json::from_str(&line).context("parsing the agents' spec")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(spec.threads)
        .thread_name("agent")
        .enable_all()
        .build()?;
    let shutdown = CancellationToken::new();
    {
        let _in = rt.enter();
        for n in spec.nodes {
            let creds = NodeCredentials::from_pems(n.cert_pem, n.key_pem, n.root_pem)?;
            let (_swap, live) = swarm_ca::live_credentials(creds)?;
            let node = SimNode {
                node_id: n.node_id,
                hostname: n.hostname,
                creds: live,
            };
            cluster::start_agent(
                &node,
                spec.managers.clone(),
                spec.dir.join(&node.node_id),
                Duration::from_millis(spec.start_delay_ms),
                shutdown.clone(),
            )?;
        }
    }
    println!("ready");
    std::io::stdout().flush()?;
    // Wait for the parent to go (EOF) on a plain thread: the runtime keeps running meanwhile.
    let mut rest = String::new();
    while std::io::stdin().lock().read_line(&mut rest).unwrap_or(0) > 0 {
        rest.clear();
    }
    rt.shutdown_background();
    Ok(())
}
