//! Rolling updates through the built binaries (process executor, real processes): a failing
//! update rolls back on its own, `--rollback` returns to the previous spec, and task history
//! stays bounded after 20 forced updates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const ROLLBACK_COMPLETED: i64 = 6;

fn one_manager(tmp: &std::path::Path) -> (Node, Ctl) {
    let socket = tmp.join("m.sock");
    let args: Vec<String> = vec![
        "-d".into(),
        tmp.join("m").display().to_string(),
        "--listen-control-api".into(),
        socket.display().to_string(),
        "--listen-remote-api".into(),
        format!("127.0.0.1:{}", free_port()),
        "--hostname".into(),
        "m".into(),
        "--executor".into(),
        "process".into(),
    ];
    let node = Node::start("m", &tmp.join("m"), &args);
    let ctl = Ctl { socket };
    wait_for("manager", Duration::from_secs(30), || {
        ctl.run(&["node", "ls"]).status.success().then_some(())
    });
    (node, ctl)
}

fn running_args(ctl: &Ctl) -> Vec<String> {
    let tasks = ctl.json(&["task", "ls"]);
    let mut v: Vec<String> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["desired_state"].as_i64() == Some(512) && t["status"]["state"].as_i64() == Some(512)
        })
        .map(|t| t["spec"]["container"]["args"].to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn a_failing_update_rolls_back_and_rollback_returns_to_the_previous_spec() {
    let tmp = test_dir();
    let (_m, ctl) = one_manager(tmp.path());
    let created = ctl.run(&[
        "service",
        "create",
        "--name",
        "web",
        "--image",
        "busybox",
        "--command",
        "sleep",
        "--args",
        "3600",
        "--replicas",
        "3",
        "--update-parallelism",
        "1",
        "--update-monitor",
        "1s",
        "--update-failure-action",
        "rollback",
    ]);
    // `create` waits: the ID alone on stdout, plain progress on stderr (not a terminal).
    let progress = String::from_utf8_lossy(&created.stderr);
    assert!(created.status.success(), "{progress}");
    assert_eq!(String::from_utf8_lossy(&created.stdout).trim().len(), 25);
    assert!(progress.contains("\n3/3: running\n"), "{progress}");
    assert!(
        progress.contains("overall progress: 3 out of 3 tasks\n"),
        "{progress}"
    );
    assert_eq!(progress.lines().last(), Some("verify: Service converged"));
    assert_eq!(running_args(&ctl).len(), 3, "converged means running");

    // `sleep` with a bad argument exits at once: the update fails and rolls back by itself,
    // and the waiting `service update` says so in one line and a non-zero exit.
    let failed = ctl.run(&["service", "update", "web", "--args", "not-a-number"]);
    assert!(
        !failed.status.success(),
        "a failed update waited to success"
    );
    let stderr = String::from_utf8_lossy(&failed.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("Error: ") && (last.contains("rolled back") || last.contains("failed")),
        "{stderr}"
    );
    assert_eq!(stderr.matches("Error: ").count(), 1, "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&failed.stdout).trim().len(),
        25,
        "the ID first"
    );
    let svc: Value = wait_for("rollback completed", Duration::from_secs(60), || {
        let s = ctl.json(&["service", "inspect", "web"]);
        (s["update_status"]["state"].as_i64() == Some(ROLLBACK_COMPLETED)).then_some(s)
    });
    assert_eq!(
        svc["spec"]["task"]["container"]["args"][0], "3600",
        "the spec went back"
    );
    assert!(
        svc["update_status"]["message"]
            .as_str()
            .unwrap()
            .contains("completed"),
        "{svc}"
    );
    wait_for("3 running the old spec", Duration::from_secs(30), || {
        (running_args(&ctl) == vec!["[\"3600\"]".to_string(); 3]).then_some(())
    });
    let text = ctl.ok(&["service", "inspect", "web"]);
    assert!(
        text.to_lowercase().contains("rollback"),
        "service inspect shows the update status:\n{text}"
    );

    // A good update, then a manual rollback to the spec before it.
    ctl.ok(&["service", "update", "web", "--args", "1800"]);
    wait_for("3 running 1800", Duration::from_secs(60), || {
        (running_args(&ctl) == vec!["[\"1800\"]".to_string(); 3]).then_some(())
    });
    ctl.ok(&["service", "update", "web", "--rollback"]);
    wait_for("3 running 3600 again", Duration::from_secs(60), || {
        (running_args(&ctl) == vec!["[\"3600\"]".to_string(); 3]).then_some(())
    });

    // Bad update and placement options are refused before anything changes.
    let before = ctl.json(&["service", "inspect", "web"]);
    for bad in [
        vec!["--update-order", "sideways"],
        vec!["--update-max-failure-ratio", "2"],
        vec!["--rollback-failure-action", "rollback"],
        vec!["--replicas-max-per-node", "-1"],
        vec!["--placement-pref", "spread=node.nonsense"],
        vec!["--placement-pref", "pack=node.labels.zone"],
    ] {
        let mut args = vec!["service", "update", "web"];
        args.extend(bad.iter());
        let out = ctl.run(&args);
        assert!(!out.status.success(), "{bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(bad[0].trim_start_matches("--")),
            "{bad:?}: {err}"
        );
    }
    let after = ctl.json(&["service", "inspect", "web"]);
    assert_eq!(
        before["meta"]["version"], after["meta"]["version"],
        "nothing changed"
    );
}

#[test]
fn history_stays_bounded_after_20_updates() {
    let tmp = test_dir();
    let (_m, ctl) = one_manager(tmp.path());
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "h",
        "--image",
        "busybox",
        "--command",
        "sleep",
        "--args",
        "3600",
    ]);
    wait_for("running", Duration::from_secs(30), || {
        (running_args(&ctl).len() == 1).then_some(())
    });
    let out = ctl.run(&["cluster", "update", "default", "--task-history-limit", "-1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("task-history-limit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ctl.ok(&["cluster", "update", "default", "--task-history-limit", "3"]);
    assert!(ctl
        .ok(&["cluster", "inspect", "default"])
        .contains("Task history retention limit: 3"));
    for _ in 0..20 {
        ctl.ok(&["service", "update", "-d", "h", "--force"]);
        std::thread::sleep(Duration::from_millis(150));
    }
    wait_for(
        "history at most 3 tasks in the slot",
        Duration::from_secs(60),
        || {
            let all = ctl.json(&["task", "ls", "-a"]);
            let n = all.as_array().unwrap().len();
            (n <= 3 && running_args(&ctl).len() == 1).then_some(())
        },
    );
    assert_eq!(
        task_processes_under(tmp.path()).len(),
        1,
        "one process left running"
    );
}

#[test]
fn a_replicated_job_completes_and_runs_again_on_force() {
    let tmp = test_dir();
    let (_m, ctl) = one_manager(tmp.path());
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "batch",
        "--image",
        "busybox",
        "--mode",
        "replicated-job",
        "--replicas",
        "4",
        "--max-concurrent",
        "2",
        "--command",
        "sh",
        "--args",
        "-c",
        "--args",
        "sleep 0.3",
    ]);
    let row = |ctl: &Ctl| {
        ctl.ok(&["service", "ls"])
            .lines()
            .find(|l| l.contains(" batch "))
            .unwrap_or("")
            .to_string()
    };
    wait_for("4/4 completions", Duration::from_secs(60), || {
        row(&ctl).contains("4/4 (0 running)").then_some(())
    });
    let completed = |ctl: &Ctl| {
        ctl.json(&["task", "ls", "-a"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["status"]["state"].as_i64() == Some(576))
            .count()
    };
    assert_eq!(completed(&ctl), 4);
    ctl.ok(&["service", "update", "batch", "--force"]);
    wait_for("a second run of 4", Duration::from_secs(60), || {
        (completed(&ctl) == 8).then_some(())
    });
    wait_for("4/4 again", Duration::from_secs(30), || {
        row(&ctl).contains("4/4 (0 running)").then_some(())
    });

    let out = ctl.run(&[
        "service",
        "create",
        "--name",
        "bad",
        "--image",
        "x",
        "--mode",
        "replicated-job",
        "--update-parallelism",
        "2",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("update"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
