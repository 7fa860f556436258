//! A one-manager swarm (process executor, so tasks are real `sleep` processes) with its
//! Docker API socket, and the two ways tests talk to it: the real `docker` CLI, with a config
//! dir of its own, and raw HTTP requests shaped as clients send them.

use super::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub const RUNNING: i64 = 512;

pub fn docker_installed() -> bool {
    let found = Command::new("docker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED: no `docker` CLI on this machine; the Docker API test needs it");
    }
    found
}

/// The manager and the two clients that talk to it.
/// Fields drop in this order: the node (killed, its leftovers removed from what its state
/// dir records), then its test host, then the directory.
pub struct Swarm {
    pub node: Node,
    /// The manager runs on a test host of its own, so what its data plane makes (VXLAN
    /// port, egress bridge, nftables tables) never meets another test's swarm.
    _host: super::netns::Mesh,
    pub state: PathBuf,
    pub ctl: Ctl,
    pub docker_sock: PathBuf,
    pub docker_config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Swarm {
    pub fn start() -> Swarm {
        let dir = test_dir();
        let state = dir.path().join("m1");
        let ctl = Ctl {
            socket: dir.path().join("ctl.sock"),
        };
        let docker_sock = dir.path().join("docker.sock");
        let docker_config = dir.path().join("docker-config");
        std::fs::create_dir_all(&docker_config).unwrap();
        let args: Vec<String> = vec![
            "-d".into(),
            state.display().to_string(),
            "--hostname".into(),
            "m1".into(),
            "--listen-control-api".into(),
            ctl.socket.display().to_string(),
            "--listen-docker-api".into(),
            docker_sock.display().to_string(),
            "--listen-remote-api".into(),
            format!("127.0.0.1:{}", free_port()),
            "--executor".into(),
            "process".into(),
        ];
        let host = super::netns::Mesh::new(1).expect("a test host (needs root and iproute2)");
        let node = Node::start_in(host.enter_prefix(1), "m1", &state, &args);
        let s = Swarm {
            _dir: dir,
            state,
            node,
            ctl,
            docker_sock,
            docker_config,
            _host: host,
        };
        // Raw HTTP, so tests that do without the CLI can use this swarm too.
        wait_for("the Docker API to answer", Duration::from_secs(30), || {
            try_raw(&s.docker_sock, "GET", "/_ping", "")
                .ok()
                .filter(|(code, _)| *code == 200)
                .map(|_| ())
        });
        s
    }

    /// Runs `docker -H unix://SOCK ARGS`, with a config dir of its own so no user setting
    /// (context, host, pinned API version) gets in the way.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_in(Command::new("docker"), args)
    }

    /// `docker`, killed after `limit` (a CLI following a job that never ends fails the test
    /// instead of hanging it).
    pub fn docker_within(&self, limit: Duration, args: &[&str]) -> Output {
        let mut timeout = Command::new("timeout");
        timeout.arg(limit.as_secs().to_string()).arg("docker");
        self.docker_in(timeout, args)
    }

    fn docker_in(&self, mut cmd: Command, args: &[&str]) -> Output {
        self.configure(&mut cmd).args(args).output().unwrap()
    }

    /// `docker ARGS` started with its stdout piped, for commands that follow (`events`,
    /// `logs -f`): the test reads their lines as they come and kills them.
    pub fn docker_spawn(&self, args: &[&str]) -> std::process::Child {
        self.configure(&mut Command::new("docker"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn configure<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        configure_docker(cmd, &self.docker_sock, &self.docker_config)
    }

    /// Runs and requires success; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}{}\n--- swarmd log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.node.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Live tasks (desired RUNNING) as swarmctl sees them.
    pub fn live_tasks(&self) -> Vec<Value> {
        self.ctl
            .json(&["task", "ls"])
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t["desired_state"].as_i64() == Some(RUNNING))
            .collect()
    }

    /// Waits until exactly `n` live tasks run `image`, as `n` real processes.
    pub fn wait_running(&self, n: usize, image: &str) {
        wait_for(
            &format!("{n} running tasks of {image}"),
            Duration::from_secs(60),
            || {
                let live = self.live_tasks();
                let ok = live.len() == n
                    && live.iter().all(|t| {
                        t["status"]["state"].as_i64() == Some(RUNNING)
                            && t["spec"]["container"]["image"].as_str() == Some(image)
                    })
                    && task_processes_under(&self.state).len() == n;
                ok.then_some(())
            },
        );
    }
}

/// Points a `docker` command at the Docker API socket `sock`, with `config` as its config dir
/// so no user setting (context, host, pinned API version) gets in the way.
pub fn configure_docker<'a>(cmd: &'a mut Command, sock: &Path, config: &Path) -> &'a mut Command {
    cmd.env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_TLS_VERIFY")
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
}

pub fn row<'a>(table: &'a str, name: &str) -> Option<&'a str> {
    table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
}

/// One raw HTTP/1.1 request on the socket; returns the status code and the body.
pub fn raw(sock: &Path, method: &str, path: &str, body: &str) -> (u16, String) {
    try_raw(sock, method, path, body).unwrap()
}

/// `raw`, with the errors of the connection (a broken pipe while the body is written).
pub fn try_raw(
    sock: &Path,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut c = std::os::unix::net::UnixStream::connect(sock)?;
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    c.write_all(body.as_bytes())?;
    let mut out = String::new();
    c.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

/// A JSON request; returns the status and the JSON answer (Null when the body is not JSON).
pub fn api(sock: &Path, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (code, answer) = raw(sock, method, path, &text);
    (code, serde_json::from_str(&answer).unwrap_or(Value::Null))
}
