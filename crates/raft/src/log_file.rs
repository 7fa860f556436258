//! The log file on disk, `log.redb`: made whole before it gets its name, and opened through
//! redb's own file backend wrapped so that it can inject one fault on purpose — a torn final
//! write. Owns the file's creation and its backend; what the log holds is `log_store`'s.
//!
//! A new log is formatted under a temporary name, synced, then renamed: a crash while it is
//! created leaves no half-made `log.redb` (redb refuses to open one whose header is torn).
//!
//! A torn write is the last write before a crash reaching the disk only in part. The nemesis
//! (issue 19) needs it and a test host has no device-mapper to make one, so the backend makes
//! it: with `SWARMD_FAULT_TEAR_LOG_WRITE=N` in swarmd's environment, the N-th write to the log
//! after the process starts lands only its first half, and the process then dies of SIGKILL at
//! once — no later write, no fsync, no clean close. The kernel keeps what was written, as a
//! disk keeps the sectors a power cut let through. Without the variable the backend is redb's.

use std::fs::{File, OpenOptions};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// The environment variable that arms the fault: the number of the write to tear, counted
/// from 1 over the process's writes to its log (a new log's formatting included).
pub const TEAR_LOG_WRITE_ENV: &str = "SWARMD_FAULT_TEAR_LOG_WRITE";

/// What happens after the torn write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterTear {
    /// The process dies of SIGKILL: the nemesis's fault.
    Kill,
    /// Every later write, resize and sync fails, so nothing more reaches the file, as if the
    /// process had died; the caller goes on. Lets a test tear each write in turn in one
    /// process.
    #[cfg(test)]
    Fail,
}

/// The fault plan of one process's life: which write to tear, counted over every log file it
/// opens (a new log is built under a temporary name first). Clones share the count. An
/// unarmed process has none, and its writes go straight to redb's backend, uncounted.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    /// The write to tear, counted from 1.
    tear_at: u64,
    after: AfterTear,
    writes: Arc<AtomicU64>,
    torn: Arc<AtomicBool>,
}

impl Fault {
    /// The fault the environment arms, if any. An unparsable value is refused, so a typo
    /// cannot silently run unarmed.
    pub(crate) fn from_env() -> std::io::Result<Option<Fault>> {
        let Ok(v) = std::env::var(TEAR_LOG_WRITE_ENV) else {
            return Ok(None);
        };
        let n = v.trim().parse::<u64>().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{TEAR_LOG_WRITE_ENV}={v:?}: not a write number: {e}"),
            )
        })?;
        tracing::warn!(
            write = n,
            "fault injection armed: write {n} to the Raft log will be torn and the process killed"
        );
        Ok(Some(Fault::new(n, AfterTear::Kill)))
    }

    pub(crate) fn new(tear_at: u64, after: AfterTear) -> Fault {
        Fault {
            tear_at,
            after,
            writes: Arc::new(AtomicU64::new(0)),
            torn: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Writes so far, counting the torn one.
    #[cfg(test)]
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// True once the armed write was torn.
    pub(crate) fn torn(&self) -> bool {
        self.torn.load(Ordering::SeqCst)
    }

    fn dead(&self) -> std::io::Result<()> {
        if self.torn() {
            return Err(std::io::Error::other("the log's write was torn on purpose"));
        }
        Ok(())
    }

    /// `data` written at `offset` through `inner`: whole, or torn if it is the armed write.
    fn write(&self, inner: &FileBackend, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.dead()?;
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.tear_at != n {
            return inner.write(offset, data);
        }
        self.torn.store(true, Ordering::SeqCst);
        inner.write(offset, &data[..landed_len(data.len())])?;
        if self.after == AfterTear::Kill {
            // SIGKILL, not exit or abort: no destructor, no close, no core dump. Should it
            // fail, the process still writes nothing more to this file (`dead`).
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        self.dead()
    }
}

#[derive(Debug)]
pub(crate) struct LogBackend {
    inner: FileBackend,
    fault: Option<Fault>,
}

impl LogBackend {
    /// The log at `path`, created first if there is none.
    pub(crate) fn open(path: &Path, fault: Option<&Fault>) -> Result<LogBackend, redb::Error> {
        if !path.exists() {
            create(path, fault)?;
        }
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        LogBackend::on(file, fault)
    }

    fn on(file: File, fault: Option<&Fault>) -> Result<LogBackend, redb::Error> {
        Ok(LogBackend {
            inner: FileBackend::new(file)?,
            fault: fault.cloned(),
        })
    }

    /// Nothing more may reach the file once its armed write was torn.
    fn check_alive(&self) -> std::io::Result<()> {
        self.fault.as_ref().map_or(Ok(()), Fault::dead)
    }
}

/// Formats an empty redb file under a temporary name, syncs it, and renames it to `path`.
fn create(path: &Path, fault: Option<&Fault>) -> Result<(), redb::Error> {
    let tmp = path.with_extension("redb.new");
    // A crash's leftover never held state: it only gets the real name once formatted.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    let db = redb::Builder::new().create_with_backend(LogBackend::on(file, fault)?)?;
    drop(db);
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// How much of a torn write lands: its first half, cut on a 512-byte sector boundary where
/// the write spans more than one sector (a disk tears between sectors), else mid-write.
fn landed_len(len: usize) -> usize {
    let half = len / 2;
    if len > 512 {
        (half / 512) * 512
    } else {
        half
    }
}

impl StorageBackend for LogBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.check_alive()?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.check_alive()?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        match &self.fault {
            None => self.inner.write(offset, data),
            Some(f) => f.write(&self.inner, offset, data),
        }
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::at_rest::DataKey;
    use crate::log_store::tests::entry;
    use crate::log_store::LogStore;
    use crate::types::Vote;
    use openraft::storage::RaftLogStorage;
    use openraft::RaftLogReader;

    const ENTRIES: u64 = 12;

    /// One life of the log: opened under `fault`, then entries appended one transaction each
    /// and a vote saved every fourth. Returns the last entry and vote whose write returned
    /// before the tear: those were acknowledged, so they must survive it.
    async fn one_life(path: &Path, fault: &Fault, key: &DataKey) -> (u64, u64) {
        let alive = || !fault.torn();
        let (mut acked, mut voted) = (0, 0);
        let Ok((mut s, _)) = LogStore::open_with(path, key.clone(), Some(fault)) else {
            assert!(!alive(), "the log failed to open without a fault");
            return (0, 0);
        };
        for i in 1..=ENTRIES {
            // Once torn, the "process" is dead: what its writes return no longer matters.
            let r = s.write_entries(vec![entry(1, i)]).await;
            if !alive() {
                break;
            }
            r.unwrap();
            acked = i;
            if i % 4 == 0 {
                let r = s.save_vote(&Vote::new(i, 1)).await;
                if !alive() {
                    break;
                }
                r.unwrap();
                voted = i;
            }
        }
        (acked, voted)
    }

    #[tokio::test]
    async fn a_torn_final_write_at_any_point_loses_nothing_acknowledged() {
        let key = DataKey::generate().unwrap();
        // How many writes a whole life makes, armed at a write it never reaches.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let counting = Fault::new(u64::MAX, AfterTear::Fail);
        assert_eq!(one_life(&path, &counting, &key).await, (ENTRIES, ENTRIES));
        let total = counting.writes();
        assert!(total > ENTRIES, "{total} writes for {ENTRIES} commits");

        for n in 1..=total {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("log.redb");
            let fault = Fault::new(n, AfterTear::Fail);
            let (acked, voted) = one_life(&path, &fault, &key).await;
            assert!(fault.torn(), "write {n} of {total} was not torn");

            // The restart: redb's own file backend, as swarmd opens it unarmed.
            let (mut s, _) = LogStore::open(&path, key.clone())
                .unwrap_or_else(|e| panic!("tear at write {n}: the log does not reopen: {e}"));
            let got: Vec<u64> = s
                .try_get_log_entries(0..=ENTRIES)
                .await
                .unwrap_or_else(|e| panic!("tear at write {n}: entries unreadable: {e}"))
                .iter()
                .map(|e| e.log_id.index)
                .collect();
            let prefix: Vec<u64> = (1..=got.len() as u64).collect();
            assert_eq!(got, prefix, "tear at write {n}: a hole in the log");
            assert!(
                got.len() as u64 >= acked,
                "tear at write {n}: entry {acked} was acknowledged, {} survived",
                got.len()
            );
            let vote = s.read_vote().await.unwrap().map(|v| v.leader_id().term);
            assert!(
                vote.unwrap_or(0) >= voted,
                "tear at write {n}: vote of term {voted} was acknowledged, {vote:?} survived"
            );
            // And it takes writes again.
            let next = got.len() as u64 + 1;
            s.write_entries(vec![entry(1, next)]).await.unwrap();
        }
    }
}
