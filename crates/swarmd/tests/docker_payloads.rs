//! Secrets and configs through the Docker API, driven by the real `docker` CLI: `secret` and
//! `config` create (with labels), ls (with filters), inspect (a secret never shows its data,
//! a config does, base64 as Docker), rm (refused in Docker's words while a service uses it),
//! and, in raw HTTP as SDKs send it, a label update at the version read, a stale one (409),
//! and a change of name or data refused naming the field. Skipped, with a message, where no
//! `docker` CLI is installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::*;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const VALUE: &str = "s3cr3t-through-the-docker-cli";

fn inspect(s: &Swarm, args: &[&str]) -> Value {
    let out = s.docker_ok(args);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v[0].clone()
}

#[test]
fn secrets_and_configs_through_the_docker_cli() {
    if !docker_installed() {
        return;
    }
    let s = Swarm::start();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("db.txt");
    std::fs::write(&secret_file, VALUE).unwrap();
    let config_file = dir.path().join("app.conf");
    std::fs::write(&config_file, "port=80\n").unwrap();

    let id = s
        .docker_ok(&[
            "secret",
            "create",
            "--label",
            "env=prod",
            "db",
            secret_file.to_str().unwrap(),
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 25, "the CLI prints the new secret's ID: {id:?}");
    s.docker_ok(&["secret", "create", "other", secret_file.to_str().unwrap()]);
    let ls = s.docker_ok(&["secret", "ls", "--format", "{{.ID}} {{.Name}}"]);
    assert!(ls.lines().any(|l| l == format!("{id} db")), "{ls}");
    assert_eq!(ls.lines().count(), 2, "{ls}");
    let by_label = s.docker_ok(&["secret", "ls", "-q", "--filter", "label=env=prod"]);
    assert_eq!(by_label.trim(), id, "{by_label}");
    let by_name = s.docker_ok(&["secret", "ls", "-q", "--filter", "name=oth"]);
    assert_eq!(by_name.lines().count(), 1, "{by_name}");
    assert_ne!(by_name.trim(), id);

    for key in ["db", id.as_str(), &id[..8]] {
        let got = inspect(&s, &["secret", "inspect", key]);
        assert_eq!(got["ID"], id.as_str(), "{got}");
        assert_eq!(got["Spec"]["Name"], "db");
        assert_eq!(got["Spec"]["Labels"]["env"], "prod");
        assert!(got["Spec"].get("Data").is_none(), "{got}");
        assert!(!got.to_string().contains(VALUE));
    }
    let pretty = s.docker_ok(&["secret", "inspect", "--pretty", "db"]);
    assert!(
        pretty
            .lines()
            .any(|l| l.starts_with("Name:") && l.ends_with(" db")),
        "{pretty}"
    );
    let missing = s.docker(&["secret", "inspect", "nope"]);
    assert!(!missing.status.success());

    s.docker_ok(&[
        "config",
        "create",
        "app.conf",
        config_file.to_str().unwrap(),
    ]);
    let conf = inspect(&s, &["config", "inspect", "app.conf"]);
    assert_eq!(conf["Spec"]["Data"], "cG9ydD04MAo=", "{conf}");
    let pretty = s.docker_ok(&["config", "inspect", "--pretty", "app.conf"]);
    assert!(pretty.contains("port=80"), "{pretty}");
    let ls = s.docker_ok(&["config", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls.trim(), "app.conf");

    // A label update as an SDK sends it: the spec read back, at the version read.
    let v = conf["Version"]["Index"].as_u64().unwrap();
    let conf_id = conf["ID"].as_str().unwrap();
    let mut spec = conf["Spec"].clone();
    spec["Labels"] = json!({"tier": "web"});
    let path = format!("/v1.41/configs/{conf_id}/update?version={v}");
    let (code, body) = api(&s.docker_sock, "POST", &path, &spec);
    assert_eq!(code, 200, "{body}");
    let conf = inspect(&s, &["config", "inspect", "app.conf"]);
    assert_eq!(conf["Spec"]["Labels"]["tier"], "web", "{conf}");
    assert_eq!(conf["Spec"]["Data"], "cG9ydD04MAo=");
    // The same version again is stale now.
    let (code, body) = api(&s.docker_sock, "POST", &path, &spec);
    assert_eq!(code, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("update out of sequence"),
        "{body}"
    );
    let sv = inspect(&s, &["secret", "inspect", "db"])["Version"]["Index"]
        .as_u64()
        .unwrap();
    let secret_path = format!("/secrets/{id}/update?version={sv}");
    for (body, field) in [
        (json!({"Name": "db2"}), "name:"),
        (json!({"Name": "db", "Data": "bmV3"}), "data:"),
        (
            json!({"Name": "db", "Driver": {"Name": "vault"}}),
            "Driver:",
        ),
    ] {
        let (code, answer) = api(&s.docker_sock, "POST", &secret_path, &body);
        assert_eq!(code, 400, "{body}: {answer}");
        let msg = answer["message"].as_str().unwrap();
        assert!(msg.starts_with(field), "{body}: {msg}");
    }
    let (code, answer) = api(
        &s.docker_sock,
        "POST",
        &secret_path,
        &json!({"Name": "db", "Labels": {"env": "dev"}}),
    );
    assert_eq!(code, 200, "{answer}");
    let got = inspect(&s, &["secret", "inspect", "db"]);
    assert_eq!(got["Spec"]["Labels"], json!({"env": "dev"}));

    // In use: refused in Docker's words, and nothing is removed.
    s.docker_ok(&[
        "service", "create", "-d", "--name", "app", "--secret", "db", "--config", "app.conf",
        "busybox", "sleep", "1000",
    ]);
    let out = s.docker(&["secret", "rm", "db"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("secret 'db' is in use by the following service: app"),
        "{err}"
    );
    let out = s.docker(&["config", "rm", "app.conf"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is in use by the following service: app")
    );
    assert_eq!(s.docker_ok(&["secret", "ls", "-q"]).lines().count(), 2);

    // Once the service and its tasks are gone, both go.
    s.docker_ok(&["service", "rm", "app"]);
    wait_for("the secret removed", Duration::from_secs(30), || {
        s.docker(&["secret", "rm", "db"])
            .status
            .success()
            .then_some(())
    });
    s.docker_ok(&["config", "rm", "app.conf"]);
    let left = s.docker_ok(&["secret", "ls", "--format", "{{.Name}}"]);
    assert_eq!(left.trim(), "other");
    assert!(s.docker_ok(&["config", "ls", "-q"]).trim().is_empty());
}
