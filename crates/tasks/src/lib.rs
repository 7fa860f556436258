//! Who owns a running task. Every long-lived task of a node (a role's servers, the dispatcher's
//! writers and streams, the leader components) is spawned through a [`TaskOwner`], and the
//! owner's [`TaskOwner::stop`] cancels them all and waits until the last one has ended. A node
//! that changes role stops the old role's owner, so nothing of the old role (its store, its
//! dispatcher) outlives it.
//!
//! This crate owns only spawning, cancellation and waiting; it knows nothing of what runs.
//! A bare `tokio::spawn` elsewhere is refused by clippy (`disallowed-methods` in
//! `clippy.toml`): it would start a task nobody stops.

use std::future::Future;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The tasks of one scope (a node role, a component) and the signal that stops them.
/// Clones share the same tasks and signal.
#[derive(Clone, Debug, Default)]
pub struct TaskOwner {
    tracker: TaskTracker,
    token: CancellationToken,
}

impl TaskOwner {
    /// An owner of its own, stopped only by [`TaskOwner::stop`].
    pub fn new() -> TaskOwner {
        TaskOwner::default()
    }

    /// An owner that stops when `token` is cancelled (or by its own `stop`).
    pub fn with_token(token: CancellationToken) -> TaskOwner {
        TaskOwner {
            tracker: TaskTracker::new(),
            token,
        }
    }

    /// An owner of a part of this scope: it stops with this one (whose `stop` also waits for
    /// its tasks), or on its own without touching this one.
    pub fn child(&self) -> TaskOwner {
        let child = TaskOwner::with_token(self.token.child_token());
        let (tracker, token) = (child.tracker.clone(), child.token.clone());
        self.tracker.spawn(async move {
            token.cancelled().await;
            tracker.close();
            tracker.wait().await;
        });
        child
    }

    /// The signal every task of this owner must end on.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Whether stopping has begun.
    pub fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once stopping has begun.
    pub async fn stopping(&self) {
        self.token.cancelled().await
    }

    /// Runs `fut`, which ends by itself once [`TaskOwner::token`] is cancelled (it watches
    /// the token, or something that ends with it). Use this for tasks with a clean shutdown.
    #[allow(clippy::disallowed_methods)]
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(fut)
    }

    /// Runs `fut` until it ends or this owner stops, whichever is first; on stop it is
    /// dropped where it waits.
    pub fn spawn_until_stopped<F>(&self, fut: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let token = self.token.clone();
        self.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = fut => {}
            }
        })
    }

    /// Tasks of this owner still running (a child owner counts as one until it has stopped).
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Cancels every task of this owner and its children, then waits until all have ended.
    /// Tasks spawned after this are cancelled at once.
    pub async fn stop(&self) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn stop_waits_for_every_task_and_child() {
        let owner = TaskOwner::new();
        let child = owner.child();
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let token = child.token().clone();
        child.spawn(async move {
            token.cancelled().await;
            // A slow shutdown: stop() must wait for it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            d.store(true, Ordering::SeqCst);
        });
        owner.spawn_until_stopped(std::future::pending());
        assert_eq!(owner.running(), 2);
        owner.stop().await;
        assert!(done.load(Ordering::SeqCst));
        assert_eq!(owner.running(), 0);
        assert_eq!(child.running(), 0);
    }

    #[tokio::test]
    async fn a_child_stops_alone() {
        let owner = TaskOwner::new();
        let child = owner.child();
        child.spawn_until_stopped(std::future::pending());
        owner.spawn_until_stopped(std::future::pending());
        child.stop().await;
        assert_eq!(child.running(), 0);
        assert!(!owner.is_stopping());
        // The child's stop also ended the owner's watch over it.
        tokio::time::timeout(Duration::from_secs(1), async {
            while owner.running() != 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the child's entry in its parent ends");
        owner.stop().await;
    }

    #[tokio::test]
    async fn the_token_stops_it() {
        let token = CancellationToken::new();
        let owner = TaskOwner::with_token(token.clone());
        let h = owner.spawn_until_stopped(std::future::pending());
        token.cancel();
        tokio::time::timeout(Duration::from_secs(1), h)
            .await
            .expect("ended on the token")
            .expect("not panicked");
    }
}
