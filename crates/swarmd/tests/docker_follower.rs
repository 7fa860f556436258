//! The Docker API of a follower manager: its writes reach the leader (forwarded control
//! calls), and its event stream (the control API's `Watch`, forwarded too) carries what
//! happens through the leader. Two managers (sim executor), raw HTTP on the follower's
//! socket: a secret created there shows on the leader's, and `/events` there carries live
//! removals (which a replay cannot give) made through the leader.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::*;
use common::swarm::*;
use common::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_followers_docker_api_forwards_calls_and_events() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let start = |name: &str, join: Option<(&str, &str)>| {
        let addr = format!("127.0.0.1:{}", free_port());
        let ctl = Ctl {
            socket: root.join(format!("{name}.sock")),
        };
        let docker = root.join(format!("{name}-docker.sock"));
        let mut args = manager_args(&root.join(name), name, &ctl.socket, &addr, join);
        args.extend(["--listen-docker-api".into(), docker.display().to_string()]);
        let node = Node::start(name, &root.join(name), &args);
        wait_for(&format!("{name} serving"), Duration::from_secs(60), || {
            ctl.run(&["node", "ls"]).status.success().then_some(())
        });
        (node, ctl, docker, addr)
    };
    let (_m1, ctl1, docker1, addr1) = start("m1", None);
    let manager_token = token(&ctl1, "Manager:");
    let (_m2, ctl2, docker2, _) = start("m2", Some((&addr1, &manager_token)));
    wait_for("two reachable managers", Duration::from_secs(30), || {
        let t = ctl2.ok(&["node", "ls"]);
        (t.matches("REACHABLE").count() == 2 && !t.contains("UNREACHABLE")).then_some(())
    });
    assert_eq!(leader_name(&ctl1).as_deref(), Some("m1"));

    // A write through the follower's Docker API lands in the leader's store.
    let (code, body) = api(
        &docker2,
        "POST",
        "/v1.41/secrets/create",
        &json!({"Name": "via-follower", "Data": "eA=="}),
    );
    assert_eq!(code, 201, "{body}");
    let (code, listed) = api(&docker1, "GET", "/v1.41/secrets", &Value::Null);
    assert_eq!(code, 200);
    assert_eq!(listed[0]["Spec"]["Name"], "via-follower", "{listed}");

    // Events on the follower while secrets come and go through the leader. A removal
    // cannot be replayed, so one arriving shows the live stream was forwarded.
    let until = unix_now() + 10;
    let done = AtomicBool::new(false);
    let events = std::thread::scope(|sc| {
        let reader = sc.spawn(|| {
            let path = format!(
                "/v1.41/events?until={until}&filters=%7B%22type%22%3A%5B%22secret%22%5D%7D"
            );
            let out = raw(&docker2, "GET", &path, "");
            done.store(true, Ordering::SeqCst);
            out
        });
        let mut i = 0;
        while !done.load(Ordering::SeqCst) {
            i += 1;
            let name = format!("late-{i}");
            let body = json!({"Name": name, "Data": "eA=="});
            let (code, _) = api(&docker1, "POST", "/v1.41/secrets/create", &body);
            assert_eq!(code, 201);
            let (code, _) = api(
                &docker1,
                "DELETE",
                &format!("/v1.41/secrets/{name}"),
                &Value::Null,
            );
            assert_eq!(code, 204);
            std::thread::sleep(Duration::from_millis(300));
        }
        reader.join().unwrap()
    });
    let (code, body) = events;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(r#""Type":"secret","Action":"remove""#) && body.contains("late-"),
        "{body}"
    );
    assert!(
        !body.contains(r#""Type":"service""#),
        "filtered by type: {body}"
    );
}
