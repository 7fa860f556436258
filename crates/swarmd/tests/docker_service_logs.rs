//! `docker service logs` with the real `docker` CLI against services whose tasks (process
//! executor) print known lines: every line with the CLI's `name.slot.task@node | ` prefix
//! (which it builds from the swarm context Docker's server puts in each line), stderr on
//! stderr, `--tail`, `--timestamps`, `-f` showing lines written after the call started,
//! the logs of one task by its ID, and in raw HTTP the multiplexed frames of `/tasks/{id}/logs`
//! and the refusal of a request for no stream. Skipped, with a message, where no `docker`
//! CLI is installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::*;
use common::*;
use std::time::Duration;

fn logs(s: &Swarm, args: &[&str]) -> (String, String) {
    let mut a = vec!["service", "logs"];
    a.extend_from_slice(args);
    let out = s.docker_within(Duration::from_secs(60), &a);
    assert!(
        out.status.success(),
        "docker {a:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn service_logs_through_the_docker_cli() {
    if !docker_installed() {
        return;
    }
    let s = Swarm::start();
    s.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "printer",
        "--replicas",
        "2",
        "busybox",
        "sh",
        "-c",
        "echo line-1; echo line-2; echo line-3; echo oops >&2; exec sleep 1000",
    ]);
    s.wait_running(2, "busybox:latest");

    // Every line of both tasks, prefixed as the CLI prefixes them (it resolves the task and
    // node from each line's context). The tasks may still be starting: wait for all six.
    let out = wait_for("six lines from printer", Duration::from_secs(30), || {
        let (out, err) = logs(&s, &["printer"]);
        (out.lines().count() == 6 && err.lines().count() == 2).then_some((out, err))
    });
    let (stdout, stderr) = out;
    for l in stdout.lines() {
        let (prefix, line) = l.split_once(" | ").unwrap_or_else(|| panic!("{l}"));
        assert!(
            prefix.starts_with("printer.") && prefix.trim_end().ends_with("@m1"),
            "{l}"
        );
        assert!(["line-1", "line-2", "line-3"].contains(&line), "{l}");
    }
    assert!(stderr.lines().all(|l| l.ends_with("| oops")), "{stderr}");
    for slot in ["printer.1.", "printer.2."] {
        assert_eq!(stdout.matches(slot).count(), 3, "{stdout}");
    }

    // --tail: the last line of each task (per stream); --timestamps: Docker's fixed form.
    let (tail, _) = logs(&s, &["--tail", "1", "printer"]);
    let mut lines: Vec<&str> = tail
        .lines()
        .map(|l| l.rsplit(" | ").next().unwrap())
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, ["line-3", "line-3"], "{tail}");
    let (stamped, _) = logs(&s, &["--timestamps", "--tail", "1", "printer"]);
    for l in stamped.lines() {
        let ts = l.split(' ').next().unwrap();
        assert!(
            ts.len() == 30 && ts.starts_with("20") && ts.ends_with('Z'),
            "{l}"
        );
    }
    // --raw drops the prefix.
    let (raw_out, _) = logs(&s, &["--raw", "--tail", "1", "printer"]);
    assert_eq!(raw_out, "line-3\nline-3\n");

    // One task's logs, by its ID (the CLI finds no service of that name, then the task).
    let task = s.live_tasks().into_iter().find(|t| t["slot"] == 1).unwrap();
    let task_id = task["id"].as_str().unwrap().to_string();
    let (one, _) = logs(&s, &[&task_id]);
    assert_eq!(one.lines().count(), 3, "{one}");
    assert!(one.lines().all(|l| l.starts_with("printer.1.")), "{one}");

    // Raw HTTP: Docker's frames (stream 1, three zero bytes, the length) of that task only.
    let path = format!("/v1.41/tasks/{task_id}/logs?stdout=1&stderr=1");
    let (code, body) = raw(&s.docker_sock, "GET", &path, "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\u{1}\0\0\0\0\0\0\u{7}line-1\n"), "{body:?}");
    assert!(body.contains("\u{2}\0\0\0\0\0\0\u{5}oops\n"), "{body:?}");
    let (code, body) = raw(
        &s.docker_sock,
        "GET",
        &path.replace("stdout=1&stderr=1", ""),
        "",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("at least one stream"), "{body}");

    // -f: lines written after the call started arrive (the CLI is stopped after a while).
    s.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 1; done",
    ]);
    wait_for("ticker's first line", Duration::from_secs(30), || {
        logs(&s, &["ticker"]).0.contains("tick-1").then_some(())
    });
    let out = s.docker_within(
        Duration::from_secs(6),
        &["service", "logs", "-f", "--tail", "0", "ticker"],
    );
    let followed = String::from_utf8_lossy(&out.stdout);
    assert!(
        !followed.contains("| tick-1\n") && followed.lines().count() >= 2,
        "{followed}"
    );
    assert!(
        followed.lines().all(|l| l.contains("| tick-")),
        "{followed}"
    );
}
