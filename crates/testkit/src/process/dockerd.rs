//! A Docker engine of a test's own on one test host ([`super::netns`]): `dockerd` entered into
//! the host's network namespace only (`nsenter --net`, so it keeps the machine's mounts and
//! cgroups), with every piece of its state (config, data root, exec root, pidfile, socket, log)
//! under one directory the test gives. Several engines make several container hosts.
//!
//! Owns that directory, the daemon it started and what that daemon made (its containerd, its
//! containers, its mounts); when dropped it stops them and leaves nothing on the machine. It
//! must not touch the machine's own engine beyond reading images from it (`docker save`), nor
//! any mount or process outside its directory.

use super::netns::Mesh;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh engine may take to answer (its containerd starts first).
const START: Duration = Duration::from_secs(60);
/// How long a stopping engine gets before SIGKILL.
const STOP: Duration = Duration::from_secs(10);
/// The machine's engine configuration: its storage driver is the one that works here.
const MACHINE_CONFIG: &str = "/etc/docker/daemon.json";
/// Keys of the machine's configuration the flags below set: dockerd refuses a directive given
/// both as a flag and in the file.
const FLAG_KEYS: &[&str] = &[
    "data-root",
    "exec-root",
    "pidfile",
    "hosts",
    "bridge",
    "iptables",
    "ip6tables",
];

pub struct TestEngine {
    dir: PathBuf,
    /// The engine's API socket (the path, without `unix://`).
    pub socket: PathBuf,
    child: Option<Child>,
}

/// An engine on each of mesh hosts 1..=`n` (state in `root/e<i>`), each with `image` loaded;
/// `None`, after printing why with `SKIPPED:` and the test's name, when one cannot start.
pub fn start_engines(
    mesh: &Mesh,
    root: &Path,
    n: usize,
    image: &str,
    test: &str,
) -> Option<Vec<TestEngine>> {
    let mut engines = Vec::new();
    for i in 1..=n {
        match TestEngine::start(mesh, i, &root.join(format!("e{i}"))) {
            Ok(e) => {
                if let Err(why) = e.load(image) {
                    panic!("loading {image} into host {i}'s engine: {why}");
                }
                engines.push(e);
            }
            Err(e) => {
                println!("SKIPPED: dockerd cannot start in a test host ({e}): {test}");
                eprintln!("SKIPPED: dockerd cannot start in a test host ({e}): {test}");
                return None;
            }
        }
    }
    Some(engines)
}

impl TestEngine {
    /// Starts a dockerd on mesh host `i` with its state in `dir` (created; keep it short: the
    /// engine's and its containerd's sockets live under it). Says why when it cannot start,
    /// so a test can skip.
    pub fn start(mesh: &Mesh, i: usize, dir: &Path) -> Result<TestEngine, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let config = dir.join("daemon.json");
        std::fs::write(&config, engine_config()).map_err(|e| format!("config: {e}"))?;
        let log = std::fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?;
        let err_log = log.try_clone().map_err(|e| e.to_string())?;
        let socket = dir.join("d.sock");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", mesh.ns(i)))
            .arg("dockerd")
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            // The host's namespace is the swarm's to wire: no engine bridge, no firewall rules.
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log);
        let child = cmd.spawn().map_err(|e| format!("nsenter dockerd: {e}"))?;
        // From here on Drop cleans up, whatever happens next.
        let mut engine = TestEngine {
            dir: dir.to_path_buf(),
            socket,
            child: Some(child),
        };
        let deadline = Instant::now() + START;
        loop {
            if engine.answers() {
                return Ok(engine);
            }
            let exited = engine
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                engine.child = None;
                return Err(format!(
                    "dockerd exited ({status}) in {}: {}",
                    mesh.ns(i),
                    tail(&engine.log())
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "dockerd did not answer within {START:?} in {}: {}",
                    mesh.ns(i),
                    tail(&engine.log())
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The address clients give (`unix:///…/d.sock`), e.g. swarmd's `--engine-addr`.
    pub fn addr(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn answers(&self) -> bool {
        Command::new("docker")
            .arg("-H")
            .arg(self.addr())
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `docker -H <this engine> ARGS`; stdout when it succeeds, stderr when not.
    pub fn docker(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("docker")
            .arg("-H")
            .arg(self.addr())
            .args(args)
            .output()
            .map_err(|e| format!("docker: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Copies `image` from the machine's engine into this one (`docker save | docker load`):
    /// nothing can be pulled here.
    pub fn load(&self, image: &str) -> Result<(), String> {
        let saved = super::stdout_of(
            Command::new("docker").args(["save", image]),
            &format!("docker save {image}"),
        )?;
        let mut load = Command::new("docker")
            .arg("-H")
            .arg(self.addr())
            .args(["load", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("docker load: {e}"))?;
        if let Some(mut stdin) = load.stdin.take() {
            stdin
                .write_all(&saved)
                .map_err(|e| format!("docker load: {e}"))?;
        }
        let out = load
            .wait_with_output()
            .map_err(|e| format!("docker load: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "docker load {image}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            // Containers first: a daemon stopped with running containers leaves their shims.
            if let Ok(ids) = self.docker(&["ps", "-aq"]) {
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "-f", "-v"];
                    args.extend(ids);
                    let _ = self.docker(&args);
                }
            }
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + STOP;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        self.stop();
        // What a daemon killed mid-way leaves running: its containerd and shims, which name
        // our directory on their command lines.
        for pid in processes_naming(&self.dir) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The machine's engine configuration without what the flags set (or `{}` when it has none).
fn engine_config() -> String {
    let mut config = std::fs::read_to_string(MACHINE_CONFIG)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(map) = config.as_object_mut() {
        for key in FLAG_KEYS {
            map.remove(*key);
        }
    }
    config.to_string()
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// PIDs of processes (other than this one) whose command line mentions `dir`.
pub fn processes_naming(dir: &Path) -> Vec<u32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if pid != me && cmdline.windows(needle.len()).any(|w| w == needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Mount points under `dir`, as /proc/self/mountinfo lists them (octal escapes undone).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect()
}

fn unescape(field: &str) -> String {
    let mut out = Vec::new();
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 8).ok())
        });
        match (b[i], octal) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts everything under `dir`, deepest first (a lazy unmount when a plain one is refused),
/// until nothing is left or a pass changes nothing.
fn unmount_under(dir: &Path) {
    for _ in 0..5 {
        let mut mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for m in mounts {
            let plain = Command::new("umount")
                .arg(&m)
                .stderr(Stdio::null())
                .status();
            if !plain.is_ok_and(|s| s.success()) {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(&m)
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
