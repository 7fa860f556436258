//! Autolock on this node: the keys the state dir holds — the TLS private key
//! (`certificates/swarm-node.key`) and the seed of the Raft key-encryption key
//! (`certificates/swarm-raft.kek`) — sealed with the cluster's unlock key while autolock is on,
//! so a copied or stolen state dir (or a restarted manager) reveals nothing until someone gives
//! the key: `swarmd --unlock-key`, or `swarmctl cluster unlock` against the control socket of a
//! manager waiting locked.
//!
//! Owns: those two files whenever they are read or written after start-up, and the unlock key
//! in force on this node ([`LocalKeys`], one per process, one writer lock around the files).
//! Must not touch: the unlock key in the cluster object (the control API makes and rotates it;
//! [`follow`] only reads it) or the Raft data key's own file (the raft crate's).

use crate::config::NodeConfig;
use crate::error::{Context, Result};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use swarm_api::lock_server::{Lock, LockServer};
use swarm_api::*;
use swarm_ca::{is_sealed, NodeCredentials, UnlockKey};
use swarm_raft::{DataKey, KeyEncryptionKey, RaftNode, KEK_SEED_FILE};
use swarm_store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

const CERT_DIR: &str = "certificates";
const SEED_LEN: usize = 32;

/// What the operator is told when a call reaches a locked manager.
pub const LOCKED: &str =
    "this manager is locked (autolock): unlock it with `swarmctl cluster unlock` or restart it with --unlock-key";

/// The node's sealable keys and the unlock key in force (None: autolock off here).
pub struct LocalKeys {
    state_dir: PathBuf,
    key: Mutex<Option<UnlockKey>>,
}

impl LocalKeys {
    fn new(state_dir: &Path, key: Option<UnlockKey>) -> Arc<LocalKeys> {
        Arc::new(LocalKeys {
            state_dir: state_dir.to_path_buf(),
            key: Mutex::new(key),
        })
    }

    /// The unlock key in force.
    pub fn current(&self) -> Option<UnlockKey> {
        self.key.lock().clone()
    }

    /// The node's credentials, opened with the unlock key in force.
    pub fn load_credentials(&self) -> Result<Option<NodeCredentials>> {
        let key = self.key.lock();
        Ok(NodeCredentials::load_with(&self.state_dir, key.as_ref())?)
    }

    /// Saves credentials (a renewal, a role change), sealed if autolock is on.
    pub fn save_credentials(&self, creds: &NodeCredentials) -> Result<()> {
        let key = self.key.lock();
        creds.save_with(&self.state_dir, key.as_ref())?;
        Ok(())
    }

    /// The Raft data key, unwrapped with the KEK from the (possibly sealed) seed; seed and
    /// data key are created with a new Raft dir.
    pub fn data_key(&self) -> Result<DataKey> {
        let key = self.key.lock();
        let seed = read_or_create_seed(&self.state_dir, key.as_ref())?;
        let raft_dir = self.state_dir.join("raft");
        std::fs::create_dir_all(&raft_dir).with_context(|| raft_dir.display().to_string())?;
        Ok(DataKey::load_or_create(
            &raft_dir,
            &KeyEncryptionKey::derive(seed.as_slice()),
        )?)
    }

    /// Seals the keys with `next` (autolock turned on, or the key rotated), or writes them in
    /// the clear (`None`: autolock turned off). Each file is replaced atomically.
    pub fn set_key(&self, next: Option<UnlockKey>) -> Result<()> {
        let mut key = self.key.lock();
        if *key == next {
            return Ok(());
        }
        let creds = NodeCredentials::load_with(&self.state_dir, key.as_ref())?
            .context("no node credentials to seal")?;
        let seed = read_or_create_seed(&self.state_dir, key.as_ref())?;
        write_seed(&self.state_dir, &seed, next.as_ref())?;
        creds.save_with(&self.state_dir, next.as_ref())?;
        *key = next;
        Ok(())
    }
}

fn seed_path(state_dir: &Path) -> PathBuf {
    state_dir.join(CERT_DIR).join(KEK_SEED_FILE)
}

fn read_or_create_seed(state_dir: &Path, key: Option<&UnlockKey>) -> Result<Zeroizing<Vec<u8>>> {
    let path = seed_path(state_dir);
    let raw = match std::fs::read(&path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = Zeroizing::new(vec![0u8; SEED_LEN]);
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut_slice());
            write_seed(state_dir, &seed, key)?;
            return Ok(seed);
        }
        Err(e) => return Err(e).with_context(|| path.display().to_string()),
    };
    if !is_sealed(&raw) {
        return Ok(raw);
    }
    let key = key.context(LOCKED)?;
    Ok(key.open(KEK_SEED_FILE, &raw)?)
}

fn write_seed(state_dir: &Path, seed: &[u8], key: Option<&UnlockKey>) -> Result<()> {
    let dir = state_dir.join(CERT_DIR);
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    match key {
        Some(k) => {
            swarm_ca::write_file_durably(&dir, KEK_SEED_FILE, &k.seal(KEK_SEED_FILE, seed)?, 0o600)?
        }
        None => swarm_ca::write_file_durably(&dir, KEK_SEED_FILE, seed, 0o600)?,
    }
    Ok(())
}

/// Whether the state dir's keys are sealed.
fn is_locked(state_dir: &Path) -> bool {
    NodeCredentials::is_locked(state_dir)
        || std::fs::read(seed_path(state_dir)).is_ok_and(|b| is_sealed(&b))
}

/// Checks `key` against the sealed files: it must open both.
fn check(state_dir: &Path, key: &UnlockKey) -> Result<(), swarm_ca::CaError> {
    NodeCredentials::load_with(state_dir, Some(key))?;
    if let Ok(raw) = std::fs::read(seed_path(state_dir)) {
        if is_sealed(&raw) {
            key.open(KEK_SEED_FILE, &raw)?;
        }
    }
    Ok(())
}

/// At start-up: the node's keys, unlocked. A locked state dir takes the key from
/// `--unlock-key` (a wrong one is an error), or else waits, serving only the unlock call on
/// the control socket, until an operator gives the right one. None when `shutdown` comes first.
pub async fn open(
    cfg: &NodeConfig,
    shutdown: &CancellationToken,
) -> Result<Option<Arc<LocalKeys>>> {
    let dir = &cfg.state_dir;
    if !is_locked(dir) {
        return Ok(Some(LocalKeys::new(dir, None)));
    }
    if let Some(text) = &cfg.unlock_key {
        let key = UnlockKey::parse(text).context("--unlock-key")?;
        check(dir, &key).context("--unlock-key")?;
        tracing::info!("unlocked with --unlock-key");
        return Ok(Some(LocalKeys::new(dir, Some(key))));
    }
    tracing::warn!(socket = %cfg.control_socket.path().display(), "{LOCKED}");
    let Some(key) = wait_for_unlock(cfg, shutdown).await? else {
        return Ok(None);
    };
    tracing::info!("unlocked through the control socket");
    Ok(Some(LocalKeys::new(dir, Some(key))))
}

async fn wait_for_unlock(
    cfg: &NodeConfig,
    shutdown: &CancellationToken,
) -> Result<Option<UnlockKey>> {
    let listener =
        crate::sockets::bind_unix_socket("--listen-control-api", cfg.control_socket.path()).await?;
    let (tx, mut rx) = mpsc::channel(1);
    let done = shutdown.child_token();
    let server = tonic::transport::Server::builder()
        .add_service(LockServer::new(Unlocker {
            state_dir: cfg.state_dir.clone(),
            tx,
        }))
        .add_service(LockedControl)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::UnixListenerStream::new(listener),
            done.clone().cancelled_owned(),
        );
    // Owned here: stopped below once the key is in, so the manager can bind the socket again.
    let tasks = swarm_tasks::TaskOwner::new();
    tasks.spawn(server);
    let key = tokio::select! {
        k = rx.recv() => k,
        _ = shutdown.cancelled() => None,
    };
    // Give the unlock call its answer before the socket goes (the manager binds it again).
    tokio::time::sleep(Duration::from_millis(100)).await;
    done.cancel();
    tasks.stop().await;
    Ok(key)
}

/// The unlock call of a locked manager.
struct Unlocker {
    state_dir: PathBuf,
    tx: mpsc::Sender<UnlockKey>,
}

#[tonic::async_trait]
impl Lock for Unlocker {
    async fn unlock(
        &self,
        req: tonic::Request<UnlockRequest>,
    ) -> Result<tonic::Response<UnlockResponse>, tonic::Status> {
        let key = UnlockKey::parse(&req.into_inner().unlock_key)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        check(&self.state_dir, &key).map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        self.tx
            .send(key)
            .await
            .map_err(|_| tonic::Status::unavailable("the manager is stopping"))?;
        Ok(tonic::Response::new(UnlockResponse {}))
    }
}

/// The unlock call of a manager that is running: there is nothing to unlock.
pub struct AlreadyUnlocked;

#[tonic::async_trait]
impl Lock for AlreadyUnlocked {
    async fn unlock(
        &self,
        _req: tonic::Request<UnlockRequest>,
    ) -> Result<tonic::Response<UnlockResponse>, tonic::Status> {
        Err(tonic::Status::failed_precondition(
            "this manager is not locked",
        ))
    }
}

pub fn already_unlocked() -> LockServer<AlreadyUnlocked> {
    LockServer::new(AlreadyUnlocked)
}

/// Every Control call on a locked manager: refused with [`LOCKED`], so `swarmctl node ls`
/// says what is wrong instead of "unimplemented".
#[derive(Clone)]
struct LockedControl;

impl tonic::server::NamedService for LockedControl {
    const NAME: &'static str = "swarm.v1.Control";
}

impl tower::Service<http::Request<tonic::body::Body>> for LockedControl {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: http::Request<tonic::body::Body>) -> Self::Future {
        std::future::ready(Ok(tonic::Status::failed_precondition(LOCKED).into_http()))
    }
}

/// The unlock key the cluster object asks for: Some(None) autolock off, Some(Some(k)) on with
/// key k, None when there is no cluster object (yet) or its key does not parse.
fn desired(store: &Store) -> Option<Option<UnlockKey>> {
    store.view(|t| {
        let c = t.default_cluster()?;
        let on = c
            .spec
            .as_ref()
            .and_then(|s| s.encryption.as_ref())
            .is_some_and(|e| e.auto_lock_managers);
        if !on {
            return Some(None);
        }
        UnlockKey::parse(&c.manager_unlock_key).ok().map(Some)
    })
}

/// While this manager runs: seals its keys when autolock is turned on or the key rotated,
/// and unseals them when it is turned off. Unsealing waits until the local log has been
/// replayed, so an old "autolock off" state seen during start-up never writes keys in the
/// clear.
pub async fn follow(store: Store, raft: RaftNode, keys: Arc<LocalKeys>, stop: CancellationToken) {
    let target = raft.status().last_log_index;
    let started = tokio::time::Instant::now();
    let mut rx = store.watch();
    loop {
        let caught_up =
            raft.status().last_applied >= target || started.elapsed() > Duration::from_secs(30);
        if let Some(want) = desired(&store) {
            if want != keys.current() && (want.is_some() || caught_up) {
                let on = want.is_some();
                match keys.set_key(want) {
                    Ok(()) if on => tracing::info!(
                        "autolock: this manager's keys are sealed with the unlock key"
                    ),
                    Ok(()) => {
                        tracing::info!("autolock off: this manager's keys are stored unsealed")
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "autolock: re-sealing this manager's keys")
                    }
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            r = rx.recv() => if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) { return },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// For offline readers (`inspect-state`): the Raft data key of a state dir whose seed autolock
/// sealed, opened with `unlock_key`; None when the seed is not sealed (the raft crate reads it
/// itself). Reads only: nothing is created.
pub fn read_data_key(state_dir: &Path, unlock_key: Option<&str>) -> Result<Option<DataKey>> {
    let path = seed_path(state_dir);
    let Ok(raw) = std::fs::read(&path) else {
        return Ok(None);
    };
    if !is_sealed(&raw) {
        return Ok(None);
    }
    let text = unlock_key.context("this state dir is locked (autolock): give --unlock-key")?;
    let key = UnlockKey::parse(text).context("--unlock-key")?;
    let seed = key.open(KEK_SEED_FILE, &raw).context("--unlock-key")?;
    let raft_dir = state_dir.join("raft");
    DataKey::load(&raft_dir, &KeyEncryptionKey::derive(seed.as_slice()))?
        .with_context(|| format!("{}: no data key", raft_dir.display()))
        .map(Some)
}
