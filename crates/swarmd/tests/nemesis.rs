//! The nemesis end to end: the built `nemesis` binary runs a real cluster (3 managers, 2
//! workers on test hosts) under its recorded workload through 20 seeded faults, and its checker
//! must find no linearizability anomaly and no lost write. Exit code 2 (only convergence
//! failed: something did not come back within the bound) is a liveness finding the nemesis
//! prints in detail; it is reported here but does not fail CI, which guards safety. Needs root
//! (network namespaces). The 100-fault run: `cargo test -p swarmd --test nemesis -- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

/// Runs the nemesis and checks its verdict line; returns its whole output (the fault lines
/// are on stderr). `strict`: a fault the cluster did not converge after fails the test too.
fn nemesis(faults: usize, seed: u64, kinds: Option<&str>, strict: bool) -> String {
    // One cluster at a time: two on a 2-core machine would slow each other past the bound.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let kinds_args: Vec<&str> = kinds.map(|k| vec!["--kinds", k]).unwrap_or_default();
    let out = Command::new(common::workspace_bin("nemesis"))
        .args([
            "--managers",
            "3",
            "--workers",
            "2",
            "--faults",
            &faults.to_string(),
            "--seed",
            &seed.to_string(),
            // A fault that does not converge costs this bound: 30 s (convergence normally
            // takes under 10 s) keeps the 20-fault run near 150 s even then.
            "--settle-secs",
            "30",
        ])
        .args(&kinds_args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("{stderr}{stdout}");
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(2)),
        "nemesis exited with {code:?} (1: anomalies or lost writes, 3: could not run)"
    );
    assert!(
        !(strict && code == Some(2)),
        "the cluster did not converge after every fault (see above)"
    );
    if code == Some(2) {
        eprintln!("LIVENESS FINDING: the cluster did not converge after every fault (see above)");
    }
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let field = |name: &str| -> u64 {
        last.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in the final line {last:?}"))
    };
    assert_eq!(field("faults"), faults as u64, "{last}");
    assert_eq!(field("anomalies"), 0, "{last}");
    assert_eq!(field("lost"), 0, "{last}");
    assert!(
        field("operations") > 100,
        "too few operations to mean anything: {last}"
    );
    format!("{stderr}{stdout}")
}

/// Every kind comes once in the first faults of a run, a torn log write among them: it must
/// have torn (the manager died of it), or the run proved nothing about torn writes.
#[test]
fn twenty_faults_leave_the_history_linearizable_and_nothing_lost() {
    let out = nemesis(20, 19, None, false);
    let torn: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("fault ") && l.contains(" torn-write "))
        .collect();
    assert!(!torn.is_empty(), "no torn-write fault in the run");
    for l in torn {
        assert!(
            l.contains("): torn:"),
            "a torn write that did not tear: {l}"
        );
    }
}

/// A manager demoted and promoted back 1.5–3.5 s later, six times: this seed, and seed 4,
/// left a manager outside the Raft group or unable to replay the log (docs/reliability.md,
/// "Demotion raced by promotion"), and that manager's store, read from disk at the end,
/// lacked what the others had acknowledged (9 to 18 lost writes a run). The last causes were
/// a promoted manager's fresh Raft state coming back under its old member ID, and members
/// refusing a leader by a record their lagging store showed.
#[test]
fn demotions_undone_by_promotions_lose_nothing() {
    nemesis(6, 3, Some("demote"), false);
}

#[test]
#[ignore = "long: 100 faults, about 15 minutes"]
fn a_hundred_faults_leave_the_history_linearizable_and_nothing_lost() {
    nemesis(100, 7, None, false);
}
