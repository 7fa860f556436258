//! The multi-process harness: tests drive the built `swarmd` and `swarmctl` binaries exactly
//! as a user does — real processes, real sockets, real TLS and Raft — on loopback or on test
//! hosts made of network namespaces ([`netns`]). The binaries are found next to the running
//! test's executable (`target/<profile>/`), so the workspace's binaries must be built first
//! (`scripts/test.sh` does).

pub mod docker;
pub mod dockerd;
pub mod netns;
pub mod overlay;
pub mod small_disk;
pub mod swarm;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A workspace binary, from `target/<profile>/`: a test runs from `target/<profile>/deps/`, a
/// binary using the kit (the nemesis) from `target/<profile>/` itself.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let own_dir = exe.parent().expect("the executable's directory");
    let profile_dir = if own_dir.join(name).exists() {
        own_dir
    } else {
        own_dir
            .parent()
            .expect("the test runs from target/<profile>/deps")
    };
    let p = profile_dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

pub fn swarmd_bin() -> PathBuf {
    workspace_bin("swarmd")
}

pub fn swarmctl_bin() -> PathBuf {
    workspace_bin("swarmctl")
}

/// Runs `cmd` to its end: its standard output, or an error naming `what` with its stderr.
pub(crate) fn stdout_of(cmd: &mut Command, what: &str) -> Result<Vec<u8>, String> {
    let out = cmd.output().map_err(|e| format!("running {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// `swarmd inspect-state -d <dir> --format json` of a stopped node's state dir: its store as
/// replayed from disk, or the command's error.
pub fn inspect_state_json(dir: &Path) -> Result<serde_json::Value, String> {
    let mut cmd = Command::new(swarmd_bin());
    cmd.arg("inspect-state")
        .arg("-d")
        .arg(dir)
        .args(["--format", "json"]);
    let out = stdout_of(&mut cmd, "swarmd inspect-state")?;
    serde_json::from_slice(&out).map_err(|e| format!("inspect-state's JSON: {e}"))
}

/// A directory for one test's nodes; kept (and named on stderr) when SWARM_TEST_KEEP is set,
/// to read the nodes' logs after a failure.
pub fn test_dir() -> tempfile::TempDir {
    let keep = std::env::var_os("SWARM_TEST_KEEP").is_some();
    let dir = tempfile::Builder::new()
        .prefix("swarmd-test-")
        .disable_cleanup(keep)
        .tempdir()
        .unwrap();
    if keep {
        eprintln!("keeping test dir {}", dir.path().display());
    }
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `swarmd` process; killed when dropped.
pub struct Node {
    pub name: String,
    pub dir: PathBuf,
    pub args: Vec<String>,
    pub child: Option<Child>,
    /// Runs swarmd through this command (e.g. `ip netns exec NS`).
    pub prefix: Vec<String>,
    /// Set in the environment of the next [`Node::spawn`] only (a fault to arm).
    pub env_once: Vec<(String, String)>,
}

impl Node {
    pub fn start(name: &str, dir: &Path, args: &[String]) -> Node {
        Node::start_in(Vec::new(), name, dir, args)
    }

    /// Starts swarmd through `prefix` (e.g. `ip netns exec NS` to run it on a test host).
    pub fn start_in(prefix: Vec<String>, name: &str, dir: &Path, args: &[String]) -> Node {
        let mut n = Node {
            name: name.into(),
            dir: dir.to_path_buf(),
            args: args.to_vec(),
            child: None,
            prefix,
            env_once: Vec::new(),
        };
        n.spawn();
        n
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.with_extension("log"))
            .unwrap();
        let mut cmd = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(swarmd_bin());
                c
            }
            None => Command::new(swarmd_bin()),
        };
        let child = cmd
            .envs(std::mem::take(&mut self.env_once))
            .args(&self.args)
            .arg("--log-level")
            .arg("info,swarm_manager=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// How the process ended, if it has (it is then reaped and the node holds no child).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.with_extension("log")).unwrap_or_default()
    }
}

impl Node {
    /// Removes what the node's data plane recorded as its own (namespaces, resolver files,
    /// the egress bridge, its nftables tables): a killed swarmd cannot, and the next test
    /// must not find them.
    fn remove_network_leftovers(&self) {
        let owned = self.dir.join("worker/network/owned");
        let Ok(entries) = std::fs::read_dir(&owned) else {
            return;
        };
        let mut any = false;
        let mut gateway = false;
        let mut mesh_tables = Vec::new();
        for e in entries.flatten() {
            any = true;
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "gateway" {
                gateway = true;
                continue;
            }
            // The routing mesh's sandbox: its node table is named for the node.
            if let Some(node) = name.strip_prefix("swing-") {
                let id: String = node.chars().filter(char::is_ascii_alphanumeric).collect();
                mesh_tables.push(format!("swarmd_mesh_{id}"));
            }
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&name));
            let _ = std::fs::remove_file(e.path());
        }
        // In the node's own namespace (its host's, or the machine's).
        let in_node = |args: &[&str]| {
            let mut cmd = match self.prefix.split_first() {
                Some((first, rest)) => {
                    let mut c = Command::new(first);
                    c.args(rest);
                    c
                }
                None => Command::new(args[0]),
            };
            if self.prefix.is_empty() {
                cmd.args(&args[1..]);
            } else {
                cmd.args(args);
            }
            let _ = cmd.output();
        };
        for table in &mesh_tables {
            in_node(&["nft", "delete", "table", "ip", table]);
        }
        if gateway {
            // The agent's own rule list: a killed swarmd cannot take its rules back.
            for rule in swarm_agent::network::forward_rules() {
                let mut delete = vec!["iptables", "-D"];
                delete.extend(rule);
                in_node(&delete);
            }
            in_node(&["ip", "link", "del", "swgw0"]);
            in_node(&["nft", "delete", "table", "ip", "swarmd_nat"]);
        }
        if any {
            in_node(&["nft", "delete", "table", "inet", "swarmd"]);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
        self.remove_network_leftovers();
    }
}

pub struct Ctl {
    pub socket: PathBuf,
}

impl Ctl {
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(swarmctl_bin())
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "swarmctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and requires failure with one `Error: …` line on stderr; returns that line.
    pub fn error(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "swarmctl {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert_eq!(
            err.lines().count(),
            1,
            "swarmctl {args:?}: one line expected: {err:?}"
        );
        assert!(err.starts_with("Error: "), "swarmctl {args:?}: {err}");
        err
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }
}

/// Every file under `root` (symlinks not followed): what a "nothing on disk reveals X" check
/// reads.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// One manager with the docker executor and 100 ms Raft ticks in `root/n`, its control socket
/// at `root/ctl.sock`; returns it with its node ID once registered.
pub fn start_docker_node(root: &Path, hostname: &str) -> (Node, Ctl, String) {
    let dir = root.join("n");
    let socket = root.join("ctl.sock");
    let addr = format!("127.0.0.1:{}", free_port());
    let args: Vec<String> = [
        "-d",
        dir.to_str().unwrap(),
        "--listen-control-api",
        socket.to_str().unwrap(),
        "--listen-remote-api",
        &addr,
        "--hostname",
        hostname,
        "--executor",
        "docker",
        "--tick-ms",
        "100",
    ]
    .map(String::from)
    .to_vec();
    let node = Node::start(hostname, &dir, &args);
    let ctl = Ctl { socket };
    let node_id = wait_for("the node to register", Duration::from_secs(60), || {
        let out = ctl.run(&["node", "ls", "--format", "json"]);
        let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        nodes.as_array()?.first()?["id"].as_str().map(String::from)
    });
    (node, ctl, node_id)
}

/// Runs swarmd until it exits by itself; returns (success, stderr).
pub fn swarmd_exits(args: &[String], within: Duration) -> (bool, String) {
    let mut child = Command::new(swarmd_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("swarmd {args:?} did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Polls `f` until it returns Some, or panics naming `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// PIDs of processes whose working directory lies under `root`: the process executor runs
/// each task in its own directory inside the node's state dir, so these are the tasks.
pub fn task_processes_under(root: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        if cwd.starts_with(root) && comm.trim() == "sleep" {
            pids.push(pid);
        }
    }
    pids
}
