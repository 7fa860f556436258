//! Process measurements: CPU time per group of threads (from `/proc/self/task/*/stat`, so the
//! manager's runtime can be told apart from the agents' in one process), whole-process CPU
//! (getrusage), peak RSS (VmHWM), the same for a child process by pid, bytes on disk, and
//! latency percentiles.

use std::path::Path;
use std::time::Duration;

/// Linux reports thread CPU in clock ticks of USER_HZ, which is 100 on every mainstream
/// kernel configuration.
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system) of the live threads whose name starts with `prefix`.
/// Threads that have exited are not counted: the bench keeps its runtimes' threads alive.
pub fn thread_cpu_secs(prefix: &str) -> f64 {
    let Ok(rd) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for e in rd.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        if let Some((comm, t)) = parse_stat(&stat) {
            if comm.starts_with(prefix) {
                ticks += t;
            }
        }
    }
    ticks as f64 / USER_HZ
}

/// CPU seconds (user + system) of another process (`/proc/<pid>/stat`); 0 once it is gone.
pub fn pid_cpu_secs(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| parse_stat(&stat).map(|(_, t)| t))
        .map_or(0.0, |t| t as f64 / USER_HZ)
}

/// The command name and user + system CPU ticks of one `stat` line.
fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    // "pid (comm) state ..." — comm may contain spaces, so split at the last ')'.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    // After ')': state is field 3; utime and stime are fields 14 and 15.
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |n: usize| {
        rest.get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some((&stat[open + 1..close], field(14) + field(15)))
}

/// CPU seconds (user + system) of the whole process, from getrusage.
pub fn process_cpu_secs() -> f64 {
    match nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => 0.0,
    }
}

/// Peak resident set size of the process in bytes (VmHWM).
pub fn peak_rss_bytes() -> u64 {
    status_kb("self", "VmHWM:") * 1024
}

/// Peak resident set size of another process in bytes (VmHWM); 0 once it is gone.
pub fn pid_peak_rss_bytes(pid: u32) -> u64 {
    status_kb(&pid.to_string(), "VmHWM:") * 1024
}

/// Current resident set size of the process in bytes (VmRSS).
pub fn rss_bytes() -> u64 {
    status_kb("self", "VmRSS:") * 1024
}

/// A `kB` field of `/proc/<proc>/status`.
fn status_kb(proc: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{proc}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes of the regular files under `p`.
pub fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Nearest-rank percentile of sorted milliseconds.
pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}
