//! The Docker executor tests' image, built here because nothing can be pulled on our machines:
//! `FROM scratch` plus Debian's static busybox (package `busybox-static`, which
//! `scripts/test.sh` installs), imported with `docker import` under two tags whose content
//! differs (`/version` holds 1 or 2), so an image update really changes the image.
//!
//! Shared by the agent's and swarmd's Docker tests (`#[path]`-included). Owns the
//! `swarmd-test/busybox` images only; removes nothing else.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub const IMAGE_1: &str = "swarmd-test/busybox:1";
pub const IMAGE_2: &str = "swarmd-test/busybox:2";
const BUSYBOX: &str = "/bin/busybox";
/// Bumped whenever `build` changes what goes into the images: an image with another value is
/// rebuilt, one with this value is reused (repeated imports would leave dangling images).
const RECIPE: &str = "1";
const RECIPE_LABEL: &str = "swarmd.test.recipe";
/// Applets the tests call by name.
const APPLETS: &[&str] = &[
    "sh", "sleep", "true", "false", "echo", "cat", "env", "ls", "kill",
];

/// True when a Docker engine answers; otherwise prints the visible skip line the issue asks
/// for (tests call this first and return when it is false).
pub fn engine_or_skip(test: &str) -> bool {
    let answered = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !answered {
        println!("SKIPPED: no Docker engine answers (docker version failed): {test}");
        eprintln!("SKIPPED: no Docker engine answers (docker version failed): {test}");
    }
    answered
}

/// Builds both test images once per test process.
pub fn ensure_images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        assert!(
            is_static_elf(Path::new(BUSYBOX)),
            "{BUSYBOX} is missing or not statically linked: the Docker tests need Debian's \
             busybox-static (scripts/test.sh installs it; or `apt-get install busybox-static`)"
        );
        for (tag, version) in [(IMAGE_1, "1"), (IMAGE_2, "2")] {
            let format = format!("{{{{index .Config.Labels \"{RECIPE_LABEL}\"}}}}");
            if docker(&["image", "inspect", "--format", &format, tag]).as_deref() != Ok(RECIPE) {
                build(tag, version);
            }
        }
    });
}

fn build(tag: &str, version: &str) {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(root.path().join("tmp")).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    std::fs::write(root.path().join("version"), version).unwrap();
    let tar = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["--owner=0", "--group=0", "-cf", "-", "."])
        .output()
        .unwrap();
    assert!(
        tar.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&tar.stderr)
    );
    let mut import = Command::new("docker")
        .args(["import", "--change", "CMD [\"sh\"]", "--change"])
        .arg(format!("LABEL {RECIPE_LABEL}={RECIPE}"))
        .args(["-", tag])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    import.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    let out = import.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker import {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ELF executable with no program interpreter (PT_INTERP) needs no shared libraries.
fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).all(|i| {
        let at = phoff + i * size;
        b.get(at..at + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().unwrap()) != 3)
    })
}

/// `docker <args>`; stdout when it succeeds.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker").args(args).output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// IDs of the containers (running or not) carrying `label` (`key=value`).
pub fn containers_with(label: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label={label}"),
    ])
    .unwrap_or_default()
    .lines()
    .map(str::to_string)
    .collect()
}

/// Removes (killing) every container carrying `label`: the tests' cleanup, also on failure.
pub fn remove_with(label: &str) {
    let ids = containers_with(label);
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(ids.iter().map(String::as_str));
        let _ = docker(&args);
    }
}

/// Removes the containers of `label` when dropped (a test that panics still cleans up).
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_with(&self.0);
    }
}
