//! Failover time with the real binaries: three managers on loopback; a client creates
//! services through a follower in a loop; the leader is killed with SIGKILL; the time until
//! the next write is accepted is one sample. Repeated `--runs` times on fresh clusters.
//!
//!   cargo build --release --bins && \
//!   target/release/failover-bench --runs 20 --tick-ms 1000

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Clusters to start, each losing its leader once.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Raft tick passed to every manager (`swarmd --tick-ms`).
    #[arg(long = "tick-ms", default_value_t = 1000)]
    tick_ms: u64,
    /// Where swarmd and swarmctl are (default: next to this binary).
    #[arg(long = "bin-dir")]
    bin_dir: Option<PathBuf>,
    /// Also write the samples as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

struct Manager {
    child: Option<Child>,
    socket: PathBuf,
}

impl Drop for Manager {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn ctl(bin: &Path, socket: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(bin.join("swarmctl"))
        .arg("-s")
        .arg(socket)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

fn wait<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Index of the leader (`*` in `node ls`), as manager `via` sees it.
fn leader(bin: &Path, ms: &[Manager], via: usize) -> Option<usize> {
    let t = ctl(bin, &ms[via].socket, &["node", "ls"])?;
    let line = t.lines().find(|l| l.trim_end().ends_with('*'))?;
    let name = line.split_whitespace().nth(1)?;
    name.trim_start_matches('m')
        .parse::<usize>()
        .ok()
        .map(|i| i - 1)
}

fn one_run(bin: &Path, tick_ms: u64, run: usize) -> Result<Duration> {
    let dir = tempfile::tempdir()?;
    let mut ms: Vec<Manager> = Vec::new();
    let mut first_addr = String::new();
    let mut token = String::new();
    for i in 1..=3 {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let socket = dir.path().join(format!("m{i}.sock"));
        let mut cmd = Command::new(bin.join("swarmd"));
        cmd.arg("-d").arg(dir.path().join(format!("m{i}")));
        cmd.args([
            "--hostname",
            &format!("m{i}"),
            "--listen-remote-api",
            &addr,
            "--executor",
            "sim",
        ]);
        cmd.args(["--tick-ms", &tick_ms.to_string(), "--log-level", "warn"]);
        cmd.arg("--listen-control-api").arg(&socket);
        if i > 1 {
            cmd.args(["--join-addr", &first_addr, "--join-token", &token]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting swarmd")?;
        ms.push(Manager {
            child: Some(child),
            socket: socket.clone(),
        });
        wait("a manager serving", Duration::from_secs(60), || {
            ctl(bin, &socket, &["node", "ls"])
        })?;
        if i == 1 {
            first_addr = addr;
            let out =
                ctl(bin, &socket, &["cluster", "inspect", "default"]).context("cluster inspect")?;
            token = out
                .lines()
                .find(|l| l.contains("Manager:"))
                .and_then(|l| l.split_whitespace().last())
                .context("manager token")?
                .to_string();
        }
    }
    let l = wait("one leader seen by all", Duration::from_secs(60), || {
        let seen: Vec<Option<usize>> = (0..3).map(|i| leader(bin, &ms, i)).collect();
        let table = ctl(bin, &ms[0].socket, &["node", "ls"])?;
        (seen.iter().all(|x| x.is_some() && *x == seen[0])
            && table.matches("REACHABLE").count() == 3
            && !table.contains("UNREACHABLE"))
        .then(|| seen[0])
        .flatten()
    })?;
    let follower = (l + 1) % 3;
    ctl(
        bin,
        &ms[follower].socket,
        &[
            "service",
            "create",
            "--name",
            "warm",
            "--image",
            "x",
            "--replicas",
            "0",
        ],
    )
    .context("warm-up write")?;
    if let Some(mut c) = ms[l].child.take() {
        c.kill()?;
        c.wait()?;
    }
    let killed = Instant::now();
    let mut n = 0;
    wait("a write after the kill", Duration::from_secs(180), || {
        n += 1;
        ctl(
            bin,
            &ms[follower].socket,
            &[
                "service",
                "create",
                "--name",
                &format!("r{run}-{n}"),
                "--image",
                "x",
                "--replicas",
                "0",
            ],
        )
    })?;
    Ok(killed.elapsed())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = match args.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()?
            .parent()
            .context("binary dir")?
            .to_path_buf(),
    };
    let mut samples = Vec::new();
    for run in 0..args.runs {
        let d = one_run(&bin, args.tick_ms, run)?;
        eprintln!(
            "run {}/{}: first write accepted {:.2} s after the leader was killed",
            run + 1,
            args.runs,
            d.as_secs_f64()
        );
        samples.push(d.as_secs_f64());
    }
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    println!(
        "tick {} ms, {} runs: failover median {:.2} s, min {:.2} s, max {:.2} s",
        args.tick_ms,
        samples.len(),
        pick(0.5),
        pick(0.0),
        pick(1.0)
    );
    if let Some(p) = args.json {
        let v = serde_json::json!({ "tick_ms": args.tick_ms, "samples_s": samples, "median_s": pick(0.5) });
        std::fs::write(p, serde_json::to_string_pretty(&v)?)?;
    }
    Ok(())
}
