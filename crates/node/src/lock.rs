//! One swarmd per state dir: an exclusive lock on `<state-dir>/swarmd.lock`, held for the
//! process's life (the OS drops it if the process dies).

use crate::error::{bail, Context, Result};
use std::fs::File;
use std::path::Path;

pub struct StateDirLock {
    _file: File,
}

impl StateDirLock {
    pub fn acquire(dir: &Path) -> Result<StateDirLock> {
        let path = dir.join("swarmd.lock");
        let file =
            File::create(&path).with_context(|| format!("state dir lock {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(StateDirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                bail!("state dir {} is in use by another swarmd", dir.display())
            }
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).context(format!("locking {}", path.display()))
            }
        }
    }
}
