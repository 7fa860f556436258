//! Failover time with the real binaries: three managers on loopback; a client creates
//! services through a follower in a loop; the leader is killed with SIGKILL; the time until
//! the next write is accepted is one sample. Repeated `--runs` times on fresh clusters.
//!
//! Each run also prints a timeline of the takeover, read from the survivors' logs as the lines
//! arrive (each line is timestamped by this process on arrival, so no clock parsing):
//! kill → a survivor campaigns (`raft role changed … role=Candidate`) → one wins
//! (`role=Leader`) → its leader components run (`leader components started`) → the first
//! write accepted. `--log-openraft` also reads openraft's own lines ("new candidate", "a quorum
//! granted my vote"), which lets the same timeline be taken from binaries that predate ours.
//!
//! `--load-threads N` keeps N threads spinning for the whole run (a loaded machine);
//! `--watch-secs S` watches each healthy cluster for S seconds before the kill and counts the
//! elections that happen without one (there should be none).
//!
//!   cargo build --bins && \
//!   target/debug/failover-bench --runs 10

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Clusters to start, each losing its leader once.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Raft tick passed to every manager (`swarmd --tick-ms`); swarmd's default when absent.
    #[arg(long = "tick-ms")]
    tick_ms: Option<u64>,
    /// Where swarmd and swarmctl are (default: next to this binary).
    #[arg(long = "bin-dir")]
    bin_dir: Option<PathBuf>,
    /// Also write the samples as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Threads spinning on the CPU for the whole run, to measure on a loaded machine.
    #[arg(long = "load-threads", default_value_t = 0)]
    load_threads: usize,
    /// Before each kill, watch the healthy cluster this long and count elections (expected 0).
    #[arg(long = "watch-secs", default_value_t = 0)]
    watch_secs: u64,
    /// Also log openraft at info and read its election lines (for binaries without ours).
    #[arg(long = "log-openraft")]
    log_openraft: bool,
}

/// Log lines of one manager, each with the instant it arrived here.
type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

struct Manager {
    child: Option<Child>,
    socket: PathBuf,
    lines: Lines,
}

impl Drop for Manager {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads a manager's stderr until it closes, timestamping each line. Draining it also keeps
/// the manager from blocking on a full pipe.
fn collect(stderr: ChildStderr, lines: Lines) {
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let at = Instant::now();
            if let Ok(mut v) = lines.lock() {
                v.push((at, line));
            }
        }
    });
}

/// Markers of the takeover in a manager's log. Ours first; openraft's as the fallback.
#[derive(Clone, Copy)]
enum Mark {
    Campaign,
    Won,
    ComponentsUp,
    /// What binaries without `ComponentsUp` log as they start them.
    ComponentsStarting,
}

impl Mark {
    fn matches(self, line: &str) -> bool {
        let ours = line.contains("raft role changed");
        match self {
            Mark::Campaign => {
                (ours && line.contains("role=Candidate")) || line.contains("new candidate")
            }
            Mark::Won => {
                (ours && line.contains("role=Leader")) || line.contains("a quorum granted my vote")
            }
            Mark::ComponentsUp => line.contains("leader components started"),
            Mark::ComponentsStarting => line.contains("became leader: starting"),
        }
    }
}

/// First instant after `since`, across `ms`, at which a line matching `mark` arrived.
fn first_mark(ms: &[Manager], since: Instant, mark: Mark) -> Option<Instant> {
    ms.iter()
        .filter_map(|m| {
            let v = m.lines.lock().ok()?;
            v.iter()
                .find(|(at, l)| *at >= since && mark.matches(l))
                .map(|(at, _)| *at)
        })
        .min()
}

/// Lines matching `mark` across `ms` that arrived between `from` and `to`.
fn count_marks(ms: &[Manager], from: Instant, to: Instant, mark: Mark) -> usize {
    ms.iter()
        .map(|m| {
            m.lines.lock().map_or(0, |v| {
                v.iter()
                    .filter(|(at, l)| *at >= from && *at <= to && mark.matches(l))
                    .count()
            })
        })
        .sum()
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

/// One run's figures, in seconds after the kill (phases `None` when their line was not seen).
struct Sample {
    campaign: Option<f64>,
    won: Option<f64>,
    components: Option<f64>,
    write: f64,
    /// Elections seen while watching the healthy cluster (`--watch-secs`).
    watched_elections: Option<usize>,
}

fn start_cluster(bin: &Path, args: &Args, dir: &Path) -> Result<Vec<Manager>> {
    let mut ms: Vec<Manager> = Vec::new();
    let mut first_addr = String::new();
    let mut token = String::new();
    let mut log_level = String::from("warn,swarm_raft=info,swarm_manager::leader=info");
    if args.log_openraft {
        log_level.push_str(",openraft=info");
    }
    for i in 1..=3 {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let socket = dir.join(format!("m{i}.sock"));
        let mut cmd = Command::new(bin.join("swarmd"));
        cmd.arg("-d").arg(dir.join(format!("m{i}")));
        cmd.args([
            "--hostname",
            &format!("m{i}"),
            "--listen-remote-api",
            &addr,
            "--executor",
            "sim",
        ]);
        if let Some(t) = args.tick_ms {
            cmd.args(["--tick-ms", &t.to_string()]);
        }
        cmd.args(["--log-level", &log_level]);
        cmd.arg("--listen-control-api").arg(&socket);
        if i > 1 {
            cmd.args(["--join-addr", &first_addr, "--join-token", &token]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting swarmd")?;
        let lines = Lines::default();
        if let Some(e) = child.stderr.take() {
            collect(e, lines.clone());
        }
        ms.push(Manager {
            child: Some(child),
            socket: socket.clone(),
            lines,
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
    Ok(ms)
}

fn create(bin: &Path, m: &Manager, name: &str) -> Option<String> {
    ctl(
        bin,
        &m.socket,
        &[
            "service",
            "create",
            "--name",
            name,
            "--image",
            "x",
            "--replicas",
            "0",
        ],
    )
}

fn one_run(bin: &Path, args: &Args, run: usize) -> Result<Sample> {
    let dir = tempfile::tempdir()?;
    let mut ms = start_cluster(bin, args, dir.path())?;
    let agreed = || {
        let seen: Vec<Option<usize>> = (0..3).map(|i| leader(bin, &ms, i)).collect();
        let table = ctl(bin, &ms[0].socket, &["node", "ls"])?;
        (seen.iter().all(|x| x.is_some() && *x == seen[0])
            && table.matches("REACHABLE").count() == 3
            && !table.contains("UNREACHABLE"))
        .then(|| seen[0])
        .flatten()
    };
    let mut l = wait("one leader seen by all", Duration::from_secs(60), agreed)?;
    let mut watched_elections = None;
    if args.watch_secs > 0 {
        // Let the joins' own elections settle before the watch starts.
        std::thread::sleep(Duration::from_secs(2));
        let from = Instant::now();
        let until = from + Duration::from_secs(args.watch_secs);
        let mut n = 0;
        while Instant::now() < until {
            // Writes keep the log moving, as a working cluster's would.
            n += 1;
            let _ = create(bin, &ms[(l + 1) % 3], &format!("watch{n}"));
            std::thread::sleep(Duration::from_millis(200));
        }
        watched_elections = Some(count_marks(&ms, from, Instant::now(), Mark::Campaign));
        l = wait("one leader seen by all", Duration::from_secs(60), agreed)?;
    }
    let follower = (l + 1) % 3;
    create(bin, &ms[follower], "warm").context("warm-up write")?;
    let killed = Instant::now();
    if let Some(mut c) = ms[l].child.take() {
        c.kill()?;
        c.wait()?;
    }
    let mut n = 0;
    wait("a write after the kill", Duration::from_secs(180), || {
        n += 1;
        create(bin, &ms[follower], &format!("r{run}-{n}"))
    })?;
    let write = killed.elapsed().as_secs_f64();
    // The leader's components log their start right after the write that marks the leader;
    // a client write may overtake it, so give the line a moment to arrive.
    std::thread::sleep(Duration::from_millis(300));
    let survivors: Vec<Manager> = ms
        .drain(..)
        .enumerate()
        .filter_map(|(i, m)| (i != l).then_some(m))
        .collect();
    let at =
        |mark| first_mark(&survivors, killed, mark).map(|t| t.duration_since(killed).as_secs_f64());
    Ok(Sample {
        campaign: at(Mark::Campaign),
        won: at(Mark::Won),
        components: at(Mark::ComponentsUp).or_else(|| at(Mark::ComponentsStarting)),
        write,
        watched_elections,
    })
}

/// One phase's time in a sample.
type Phase = fn(&Sample) -> Option<f64>;

fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "   ?  ".into(), |v| format!("{v:5.2}s"))
}

/// Median and max of the values present.
fn median_max(mut v: Vec<f64>) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    // The upper middle of an even count, as the figures in docs/benchmarks.md were taken.
    Some((v[v.len() / 2], v[v.len() - 1]))
}

/// Keeps `n` threads spinning until dropped.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(n: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x: u64 = 1;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary dir")?
            .to_path_buf(),
    };
    let _load = Load::start(args.load_threads);
    let mut samples = Vec::new();
    for run in 0..args.runs {
        let s = one_run(&bin, &args, run)?;
        let watched = s.watched_elections.map_or(String::new(), |n| {
            format!("; {n} elections in {} s before the kill", args.watch_secs)
        });
        eprintln!(
            "run {:2}/{}: campaign {} → leader {} → components {} → write accepted {:5.2}s{watched}",
            run + 1,
            args.runs,
            secs(s.campaign),
            secs(s.won),
            secs(s.components),
            s.write,
        );
        samples.push(s);
    }
    let tick = args
        .tick_ms
        .map_or("swarmd's default".to_string(), |t| format!("{t} ms"));
    println!(
        "tick {tick}, {} runs, {} load threads (seconds after SIGKILL, median / max):",
        samples.len(),
        args.load_threads
    );
    let phases: [(&str, Phase); 4] = [
        ("a survivor campaigns", |s| s.campaign),
        ("a new leader is elected", |s| s.won),
        ("its leader components run", |s| s.components),
        ("first write accepted", |s| Some(s.write)),
    ];
    let mut summary = serde_json::Map::new();
    for (name, f) in phases {
        let v: Vec<f64> = samples.iter().filter_map(f).collect();
        let seen = v.len();
        if let Some((med, max)) = median_max(v) {
            println!("  {name:<28} {med:5.2} / {max:5.2}  ({seen} runs)");
            summary.insert(
                name.into(),
                serde_json::json!({ "median_s": med, "max_s": max }),
            );
        }
    }
    let watched: Vec<usize> = samples.iter().filter_map(|s| s.watched_elections).collect();
    if !watched.is_empty() {
        println!(
            "  elections without a kill: {} in {} s of watching",
            watched.iter().sum::<usize>(),
            args.watch_secs * watched.len() as u64
        );
    }
    if let Some(p) = &args.json {
        let runs: Vec<serde_json::Value> = samples
            .iter()
            .map(|s| {
                serde_json::json!({
                    "campaign_s": s.campaign, "leader_s": s.won,
                    "components_s": s.components, "write_s": s.write,
                    "watched_elections": s.watched_elections,
                })
            })
            .collect();
        let v = serde_json::json!({
            "tick_ms": args.tick_ms, "load_threads": args.load_threads,
            "watch_secs": args.watch_secs, "runs": runs, "summary": summary,
        });
        std::fs::write(p, serde_json::to_string_pretty(&v)?)?;
    }
    Ok(())
}
