//! Where a task's secret and config files live while it runs, for every executor that
//! delivers them (process, docker).
//!
//! Owns two places and nothing else: the secrets root, `/dev/shm/swarmd-<node id>/` when
//! `/dev/shm` is a tmpfs (so a secret never reaches a disk, nor the state dir), holding
//! `<task id>/secrets/`; and `<tasks dir>/<task id>/configs/` for configs, which are not
//! secret. Without a tmpfs, secrets fall back to `<tasks dir>/<task id>/secrets/` with a logged
//! warning. Files are written with their final mode from the start, deleted when the task
//! ends, and leftovers of tasks no longer assigned are swept at agent start. Must not touch
//! anything else under either root (a process task's logs share its task dir).

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{ExecutorError, TaskFile, TaskFiles};

/// Where a tmpfs is looked for.
pub const SHM_DIR: &str = "/dev/shm";
const SECRETS_DIR: &str = "secrets";
const CONFIGS_DIR: &str = "configs";

/// The file modes an executor gives a task's files.
#[derive(Debug, Clone, Copy)]
pub struct Modes {
    pub secret: u32,
    pub config: u32,
}

/// A node's staging area for task files.
#[derive(Debug, Clone)]
pub struct TaskFileStore {
    /// Parent of each task's `secrets/` (the per-node tmpfs dir, or the tasks dir).
    secrets_root: PathBuf,
    /// Parent of each task's `configs/`.
    tasks_dir: PathBuf,
    on_tmpfs: bool,
    modes: Modes,
}

impl TaskFileStore {
    /// Secrets under `/dev/shm/swarmd-<node_id>/` when that is a tmpfs, else (warned) under
    /// `tasks_dir`; configs under `tasks_dir`.
    pub fn new(tasks_dir: &Path, node_id: &str, modes: Modes) -> TaskFileStore {
        TaskFileStore::with_shm(Path::new(SHM_DIR), tasks_dir, node_id, modes)
    }

    /// As `new`, looking for the tmpfs at `shm` (tests point it elsewhere).
    pub fn with_shm(shm: &Path, tasks_dir: &Path, node_id: &str, modes: Modes) -> TaskFileStore {
        // The node ID names a directory: anything but an ID's characters could climb out.
        let safe: String = node_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        // Absolute, because the Docker executor hands these paths to the engine as mount
        // sources (a relative `-d` would otherwise be resolved by the engine, not by us).
        let tasks_dir = std::path::absolute(tasks_dir).unwrap_or_else(|_| tasks_dir.to_path_buf());
        let tasks_dir = tasks_dir.as_path();
        let on_tmpfs = is_tmpfs(shm);
        let secrets_root = if on_tmpfs {
            shm.join(format!("swarmd-{safe}"))
        } else {
            tracing::warn!(
                shm = %shm.display(),
                dir = %tasks_dir.display(),
                "no tmpfs for secret files: they are written under the state dir"
            );
            tasks_dir.to_path_buf()
        };
        TaskFileStore {
            secrets_root,
            tasks_dir: tasks_dir.to_path_buf(),
            on_tmpfs,
            modes,
        }
    }

    /// True when secrets go to a tmpfs.
    pub fn on_tmpfs(&self) -> bool {
        self.on_tmpfs
    }

    /// The directory holding the task's secret files.
    pub fn secrets_dir(&self, task_id: &str) -> PathBuf {
        self.secrets_root.join(task_id).join(SECRETS_DIR)
    }

    /// The directory holding the task's config files.
    pub fn configs_dir(&self, task_id: &str) -> PathBuf {
        self.tasks_dir.join(task_id).join(CONFIGS_DIR)
    }

    /// Writes the task's files (nothing is made for a kind it has none of). Errors name the
    /// path, never the content.
    pub fn stage(&self, task_id: &str, files: &TaskFiles) -> Result<(), ExecutorError> {
        if files.is_empty() {
            return Ok(());
        }
        check_id(task_id)?;
        files.check()?;
        // The agent's own directory, which may not exist yet for this executor.
        std::fs::create_dir_all(&self.tasks_dir).map_err(|e| failed(&self.tasks_dir, e))?;
        if !files.secrets.is_empty() {
            // The per-node root is private too: nobody else lists which tasks hold secrets.
            if self.on_tmpfs {
                make_dir(&self.secrets_root, 0o700)?;
            }
            make_dir(&self.secrets_root.join(task_id), 0o700)?;
            write_files(
                &self.secrets_dir(task_id),
                &files.secrets,
                0o700,
                self.modes.secret,
            )?;
        }
        if !files.configs.is_empty() {
            make_dir(&self.tasks_dir.join(task_id), 0o755)?;
            write_files(
                &self.configs_dir(task_id),
                &files.configs,
                0o755,
                self.modes.config,
            )?;
        }
        Ok(())
    }

    /// Deletes the task's secret files (and, on the tmpfs, its directory there). Best effort:
    /// a failure is logged, and the next agent start sweeps again.
    pub fn remove_secrets(&self, task_id: &str) {
        if check_id(task_id).is_err() {
            return;
        }
        let dir = if self.on_tmpfs {
            self.secrets_root.join(task_id)
        } else {
            self.secrets_dir(task_id)
        };
        remove_dir(&dir, "deleting secret files");
    }

    /// Deletes the task's secret and config files.
    pub fn remove_all(&self, task_id: &str) {
        if check_id(task_id).is_err() {
            return;
        }
        self.remove_secrets(task_id);
        remove_dir(&self.configs_dir(task_id), "deleting config files");
    }

    /// Deletes the secret files of every task not in `keep` (left by an earlier run of the
    /// agent killed before it could). With `configs`, their config files too.
    pub fn sweep(&self, keep: &HashSet<String>, configs: bool) {
        let mut ids = HashSet::new();
        for root in [&self.secrets_root, &self.tasks_dir] {
            let entries = match std::fs::read_dir(root) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!(dir = %root.display(), error = %e, "listing leftover task files");
                    continue;
                }
            };
            ids.extend(
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|id| !keep.contains(id) && check_id(id).is_ok()),
            );
        }
        for id in ids {
            if configs {
                self.remove_all(&id);
            } else {
                self.remove_secrets(&id);
            }
        }
    }
}

/// True when `path` is on a tmpfs (statfs magic); false when it is not or cannot be read.
pub fn is_tmpfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}

/// A task ID names a directory: refuse what could climb out of the root or name it.
fn check_id(task_id: &str) -> Result<(), ExecutorError> {
    if task_id.is_empty() || task_id == "." || task_id == ".." || task_id.contains(['/', '\0']) {
        return Err(ExecutorError::Rejected(format!(
            "invalid task ID {task_id:?}"
        )));
    }
    Ok(())
}

fn failed(path: &Path, e: std::io::Error) -> ExecutorError {
    ExecutorError::io(format_args!("writing {}", path.display()), e)
}

/// Creates `dir` with `mode` (umask aside) unless it exists.
fn make_dir(dir: &Path, mode: u32) -> Result<(), ExecutorError> {
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(dir)
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        })
        .map_err(|e| failed(dir, e))
}

fn remove_dir(dir: &Path, what: &str) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "{what}"),
    }
}

/// Writes `files` into `dir` (made with `dir_mode`), each file created with `file_mode` from
/// the start, so no other user can open one between creation and a chmod.
fn write_files(
    dir: &Path,
    files: &[TaskFile],
    dir_mode: u32,
    file_mode: u32,
) -> Result<(), ExecutorError> {
    make_dir(dir, dir_mode)?;
    for f in files {
        let path = dir.join(f.staged_name());
        // A leftover from an earlier attempt is read-only: replace it rather than open it.
        let _ = std::fs::remove_file(&path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(file_mode)
            .open(&path)
            .map_err(|e| failed(&path, e))?;
        file.write_all(&f.data).map_err(|e| failed(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const MODES: Modes = Modes {
        secret: 0o400,
        config: 0o444,
    };

    fn files() -> TaskFiles {
        TaskFiles {
            secrets: vec![TaskFile {
                target: "db".into(),
                data: b"s3cret".to_vec(),
            }],
            configs: vec![TaskFile {
                target: "app.conf".into(),
                data: b"port=80".to_vec(),
            }],
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn secrets_go_to_the_tmpfs_and_configs_to_the_task_dir() {
        if !is_tmpfs(Path::new(SHM_DIR)) {
            eprintln!("SKIPPED: {SHM_DIR} is not a tmpfs here");
            return;
        }
        let state = tempfile::tempdir().unwrap();
        let node = format!("unit{}", std::process::id());
        let store = TaskFileStore::new(state.path(), &node, MODES);
        assert!(store.on_tmpfs());
        store.stage("t1", &files()).unwrap();
        let secret = store.secrets_dir("t1").join("db");
        assert!(secret.starts_with(SHM_DIR), "{}", secret.display());
        assert_eq!(std::fs::read(&secret).unwrap(), b"s3cret");
        assert_eq!(mode(&secret), 0o400);
        assert_eq!(mode(secret.parent().unwrap()), 0o700);
        let config = store.configs_dir("t1").join("app.conf");
        assert!(config.starts_with(state.path()));
        assert_eq!(mode(&config), 0o444);

        // The sweep keeps what is listed and deletes the rest.
        store.stage("t2", &files()).unwrap();
        store.sweep(&HashSet::from(["t1".to_string()]), true);
        assert!(secret.exists());
        assert!(!store.secrets_dir("t2").exists());
        assert!(!store.configs_dir("t2").exists());
        store.remove_all("t1");
        assert!(!secret.exists() && !config.exists());
        let _ = std::fs::remove_dir(store.secrets_root.clone());
    }

    #[test]
    fn without_a_tmpfs_secrets_fall_back_to_the_task_dir() {
        let state = tempfile::tempdir().unwrap();
        let not_tmpfs = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        if is_tmpfs(not_tmpfs.path()) {
            eprintln!("SKIPPED: the source tree is on a tmpfs here");
            return;
        }
        let store = TaskFileStore::with_shm(not_tmpfs.path(), state.path(), "n1", MODES);
        assert!(!store.on_tmpfs());
        store.stage("t1", &files()).unwrap();
        assert!(store.secrets_dir("t1").starts_with(state.path()));
        assert!(store.secrets_dir("t1").join("db").exists());
        store.remove_secrets("t1");
        assert!(!store.secrets_dir("t1").exists());
        assert!(store.configs_dir("t1").join("app.conf").exists());
    }

    #[test]
    fn bad_names_are_refused() {
        let state = tempfile::tempdir().unwrap();
        let store = TaskFileStore::with_shm(state.path(), state.path(), "n1", MODES);
        assert!(store.stage("../x", &files()).is_err());
        let mut bad = files();
        bad.secrets[0].target = "../../etc/passwd".into();
        assert!(store.stage("t1", &bad).is_err());
        // A secret stays in /run/secrets; a config may name an absolute path, never one
        // that climbs.
        let mut bad = files();
        bad.secrets[0].target = "/etc/passwd".into();
        assert!(store.stage("t1", &bad).is_err());
        let mut bad = files();
        bad.configs[0].target = "/etc/../root/x".into();
        assert!(store.stage("t1", &bad).is_err());
    }

    #[test]
    fn a_config_at_an_absolute_path_is_staged_as_one_file() {
        let state = tempfile::tempdir().unwrap();
        let store = TaskFileStore::with_shm(state.path(), state.path(), "n1", MODES);
        let mut f = files();
        f.configs[0].target = "/etc/nginx/nginx.conf".into();
        store.stage("t1", &f).unwrap();
        let staged = store.configs_dir("t1").join("%2Fetc%2Fnginx%2Fnginx.conf");
        assert!(staged.is_file(), "{}", staged.display());
        assert_eq!(f.configs[0].config_path(), "/etc/nginx/nginx.conf");
        assert_eq!(files().configs[0].config_path(), "/app.conf");
    }
}
