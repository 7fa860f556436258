//! Secrets and configs in Docker containers, end to end (issues 4 and 5): the built `swarmd`
//! (`--executor docker`) and `swarmctl` on a one-node swarm against the real engine, with the
//! locally built busybox image. A container reads its secret at `/run/secrets/<name>` (mode
//! 0444, read-only) and its config at `/<name>`, as its log shows through `service logs`; the
//! secret's file is on the tmpfs, no file under the state dir holds the value while the task
//! runs, and the file is gone once the service is. Skipped with a visible `SKIPPED:` line when
//! no engine answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../agent/tests/support/docker_image.rs"]
mod image;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const VALUE: &str = "dock3r-S3cretValue-0a1b2c3d";
const WAIT: Duration = Duration::from_secs(60);

fn holds_value(p: &Path) -> bool {
    std::fs::read(p)
        .unwrap_or_default()
        .windows(VALUE.len())
        .any(|w| w == VALUE.as_bytes())
}

#[test]
fn container_reads_its_secret_and_config() {
    if !image::engine_or_skip("container_reads_its_secret_and_config") {
        return;
    }
    image::ensure_images();
    let tmp = test_dir();
    let root = tmp.path();
    let (node, ctl, node_id) = start_docker_node(root, "docker-secrets");
    let dir = root.join("n");
    let _cleanup = image::Cleanup(format!("swarmd.node.id={node_id}"));

    let file = root.join("db.txt");
    std::fs::write(&file, VALUE).unwrap();
    ctl.ok(&["secret", "create", "db", "-f", file.to_str().unwrap()]);
    ctl.ok(&["config", "create", "app.conf", "--data", "port=80"]);
    ctl.ok(&[
        "service",
        "create",
        "--name",
        "reader",
        "--image",
        image::IMAGE_1,
        "--secret",
        "db",
        "--config",
        "app.conf",
        "--stop-grace-period",
        "1s",
        "--command",
        "sh",
        "--args",
        "-c",
        "--args",
        "echo secret=$(cat /run/secrets/db); echo config=$(cat /app.conf); \
         echo mode=$(busybox stat -c %a /run/secrets/db); \
         echo > /run/secrets/db 2>/dev/null || echo readonly=yes; exec sleep 3600",
    ]);
    let logs = wait_for("the container's report in service logs", WAIT, || {
        let out = ctl.run(&["service", "logs", "reader"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("readonly=").then_some(text)
    });
    assert!(logs.contains(&format!("secret={VALUE}")), "{logs}");
    assert!(logs.contains("config=port=80"), "{logs}");
    assert!(logs.contains("mode=444"), "{logs}");
    assert!(logs.contains("readonly=yes"), "{logs}");

    // The staged file is on the tmpfs, in this node's directory; nothing in the state dir
    // holds the value while the container runs.
    let shm = PathBuf::from(format!("/dev/shm/swarmd-{node_id}"));
    let on_tmpfs = std::process::Command::new("stat")
        .args(["-f", "-c", "%T", "/dev/shm"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "tmpfs");
    if on_tmpfs {
        let staged: Vec<PathBuf> = files_under(&shm)
            .into_iter()
            .filter(|p| holds_value(p))
            .collect();
        assert_eq!(staged.len(), 1, "{staged:?}");
        assert!(staged[0].ends_with("secrets/db"), "{staged:?}");
        let in_state: Vec<PathBuf> = files_under(&dir)
            .into_iter()
            .filter(|p| holds_value(p))
            .collect();
        assert!(
            in_state.is_empty(),
            "the state dir holds the secret: {in_state:?}"
        );
    } else {
        eprintln!("/dev/shm is not a tmpfs here: secret files are in the state dir");
    }

    // Gone with the service: the container and the staged files.
    ctl.ok(&["service", "rm", "reader"]);
    wait_for("the staged secret gone", WAIT, || {
        (image::containers_with(&format!("swarmd.node.id={node_id}")).is_empty()
            && !files_under(&shm).iter().any(|p| holds_value(p))
            && !files_under(&dir)
                .iter()
                .any(|p| p.ends_with("configs/app.conf")))
        .then_some(())
    });
    let log = node.log();
    assert!(!log.is_empty());
    assert!(!log.contains(VALUE), "swarmd logged the secret");
}
