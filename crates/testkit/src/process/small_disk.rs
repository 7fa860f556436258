//! A state dir on a disk that can be filled: a small tmpfs mounted on the directory a node
//! will use, filled to the last byte on demand and freed again, unmounted when dropped. For
//! the disk-full tests and the nemesis's disk-full fault. Needs root (mount); owns the mount
//! and its filler file only, never the node using the directory.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB on `dir` (created if missing).
    pub fn mount(dir: &Path, mib: u64) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount tmpfs on {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk {
            dir: dir.to_path_buf(),
        })
    }

    fn filler(&self, n: usize) -> PathBuf {
        self.dir.join(format!("disk-filler-{n}"))
    }

    fn available(&self) -> Result<u64, String> {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.dir)
            .output()
            .map_err(|e| format!("df: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .last()
            .and_then(|l| l.trim().parse::<u64>().ok())
            .ok_or_else(|| format!("df of {}: {text:?}", self.dir.display()))
    }

    /// Takes every free byte, so the node's next write that needs a new block fails with
    /// ENOSPC (writes into space a file already holds still succeed, as on a real disk).
    /// The node keeps writing meanwhile, so what df saw may be gone by the time fallocate
    /// asks for it: then it asks again for what is left, in a new filler file.
    pub fn fill(&self) -> Result<(), String> {
        let mut last_error = String::new();
        for n in 0..32 {
            let avail = self.available()?;
            if avail == 0 {
                return Ok(());
            }
            let out = Command::new("fallocate")
                .args(["-l", &avail.to_string()])
                .arg(self.filler(n))
                .output()
                .map_err(|e| format!("fallocate: {e}"))?;
            if out.status.success() {
                return Ok(());
            }
            last_error = String::from_utf8_lossy(&out.stderr).trim().to_string();
            // A failed fallocate may leave an empty file behind; it holds no blocks.
            let _ = std::fs::remove_file(self.filler(n));
        }
        Err(format!("fallocate on {}: {last_error}", self.dir.display()))
    }

    /// Gives the space back.
    pub fn free(&self) {
        for n in 0..32 {
            let _ = std::fs::remove_file(self.filler(n));
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a process of the test may still hold a file open in it.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
    }
}
