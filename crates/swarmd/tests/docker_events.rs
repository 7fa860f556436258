//! `docker events` with the real `docker` CLI: following the swarm (`--filter
//! scope=swarm`) while a service and a secret are created and removed, each change arrives
//! as Docker prints it (`Type Action name`, a scale with its new replica count); `--since`/`--until` in the past replays what
//! happened in that window and ends, filtered by type. Skipped, with a message, where no
//! `docker` CLI is installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::*;
use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Docker's attributes of an update name what changed: the replica count here.
const FORMAT: &str = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}\
                      {{with index .Actor.Attributes \"replicas.new\"}} replicas={{.}}{{end}}";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Reads lines from `rx` until `want` has come, returning every line seen.
fn wait_line(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.iter().any(|l| l == want) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("no {want:?} event; saw {seen:?}"),
        }
    }
}

#[test]
fn docker_events_follow_the_swarm() {
    if !docker_installed() {
        return;
    }
    let s = Swarm::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v");
    std::fs::write(&file, "value").unwrap();
    let file = file.to_str().unwrap();
    let start = (unix_now() - 1).to_string();

    let mut events = s.docker_spawn(&[
        "events",
        "--since",
        &start,
        "--filter",
        "scope=swarm",
        "--format",
        FORMAT,
    ]);
    let (tx, rx) = mpsc::channel();
    let out = events.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // The probe shows once the CLI follows (replayed by --since if it came before).
    let mut seen = Vec::new();
    s.docker_ok(&["secret", "create", "probe", file]);
    wait_line(&rx, &mut seen, "secret create probe");

    s.docker_ok(&[
        "service", "create", "-d", "--name", "web", "busybox", "sleep", "1000",
    ]);
    wait_line(&rx, &mut seen, "service create web");
    s.docker_ok(&["service", "scale", "-d", "web=2"]);
    wait_line(&rx, &mut seen, "service update web replicas=2");
    s.docker_ok(&["secret", "create", "db", file]);
    wait_line(&rx, &mut seen, "secret create db");
    s.docker_ok(&["service", "rm", "web"]);
    wait_line(&rx, &mut seen, "service remove web");
    s.docker_ok(&["secret", "rm", "db"]);
    wait_line(&rx, &mut seen, "secret remove db");
    let _ = events.kill();
    let _ = events.wait();
    reader.join().unwrap();
    assert!(
        seen.iter()
            .all(|l| ["secret ", "service ", "node ", "network ", "config "]
                .iter()
                .any(|k| l.starts_with(k))),
        "only swarm events: {seen:?}"
    );

    // A window in the past: replayed, filtered, and the CLI returns by itself.
    let until = (unix_now() + 1).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let out = s.docker_within(
        Duration::from_secs(30),
        &[
            "events",
            "--since",
            &start,
            "--until",
            &until,
            "--filter",
            "type=secret",
            "--format",
            FORMAT,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l == "secret create probe"), "{text}");
    assert!(text.lines().all(|l| l.starts_with("secret ")), "{text}");
}
