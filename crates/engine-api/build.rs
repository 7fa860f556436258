//! Build facts `/version` reports as Docker's GitCommit, BuildTime and GoVersion: the commit
//! built, its date (so the same commit always builds the same answer) and the compiler.
//! Outside a git checkout they read "unknown".

use std::path::PathBuf;
use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let unknown = || "unknown".to_string();
    let commit = run("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(unknown);
    let date = run("git", &["log", "-1", "--format=%cI"]).unwrap_or_else(unknown);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let compiler = run(&rustc, &["--version"]).unwrap_or_else(unknown);
    println!("cargo:rustc-env=SWARMD_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=SWARMD_COMMIT_DATE={date}");
    println!("cargo:rustc-env=SWARMD_RUSTC={compiler}");
    println!("cargo:rerun-if-changed=build.rs");
    // A new commit or branch: HEAD and the branch's ref change (worktrees keep HEAD apart
    // from the shared refs).
    if let Some(dir) = run("git", &["rev-parse", "--git-dir"]) {
        println!(
            "cargo:rerun-if-changed={}",
            PathBuf::from(dir).join("HEAD").display()
        );
    }
    if let (Some(common), Some(head)) = (
        run("git", &["rev-parse", "--git-common-dir"]),
        run("git", &["symbolic-ref", "-q", "HEAD"]),
    ) {
        let loose = PathBuf::from(common).join(head);
        if loose.exists() {
            println!("cargo:rerun-if-changed={}", loose.display());
        }
    }
}
