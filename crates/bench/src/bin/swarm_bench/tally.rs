//! Counting a phase's tasks from the store's watch stream: each task's share (placed, running,
//! old version still running) is kept per task ID and updated from the task events, so one
//! poll costs the changes since the last poll, not a scan of every task.
//!
//! Why not scan: at 50,000 tasks a scan every 20 ms held the store's read lock for about half
//! of the phase (8.4 s of 14.4 s, summed over 270 polls), so the bench slowed down the very
//! writes it times, more so the fuller the cluster. Reads the store only.

use std::collections::HashMap;
use std::ops::{AddAssign, SubAssign};
use std::sync::Arc;
use swarm_api::{store_object::Object, Task};
use swarm_store::{Change, EventKind, Store};
use tokio::sync::{broadcast, watch};

/// What one task adds to a phase's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub placed: usize,
    pub running: usize,
    /// Tasks of an older spec version still RUNNING (the update phase waits for none).
    pub old_running: usize,
}

impl Tally {
    fn is_zero(&self) -> bool {
        *self == Tally::default()
    }
}

impl AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.placed += o.placed;
        self.running += o.running;
        self.old_running += o.old_running;
    }
}

impl SubAssign for Tally {
    fn sub_assign(&mut self, o: Tally) {
        self.placed -= o.placed;
        self.running -= o.running;
        self.old_running -= o.old_running;
    }
}

/// Running totals of `classify` over every task in the store, kept by a task that drains the
/// watch stream as it arrives (so the stream's batches are freed at once and the manager's
/// heap figures are not inflated by the bench holding them).
pub struct TaskCounts {
    totals: watch::Receiver<(Tally, usize)>,
    stop: tokio::task::AbortHandle,
}

impl TaskCounts {
    /// Starts counting on the current runtime.
    pub fn spawn(store: &Store, classify: impl Fn(&Task) -> Tally + Send + 'static) -> Self {
        let (by_task, rx) = store.view_and_watch(|t| count_all(t, &classify));
        let total = sum(&by_task);
        let (tx, totals) = watch::channel((total, 0));
        let mut c = Counter {
            store: store.clone(),
            classify,
            by_task,
            total,
            rx,
            recounts: 0,
        };
        // Awaited by `finish`.
        #[allow(clippy::disallowed_methods)]
        let stop = tokio::spawn(async move {
            loop {
                let change = c.rx.recv().await;
                match change {
                    Ok(change) => c.apply(&change),
                    Err(broadcast::error::RecvError::Lagged(_)) => c.recount(),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                let _ = tx.send((c.total, c.recounts));
            }
        })
        .abort_handle();
        TaskCounts { totals, stop }
    }

    /// The totals as of the latest change seen.
    pub fn current(&self) -> Tally {
        self.totals.borrow().0
    }

    /// Full recounts after falling behind the stream (reported: each one is a scan).
    pub fn recounts(&self) -> usize {
        self.totals.borrow().1
    }
}

impl Drop for TaskCounts {
    fn drop(&mut self) {
        self.stop.abort();
    }
}

struct Counter<F> {
    store: Store,
    classify: F,
    by_task: HashMap<String, Tally>,
    total: Tally,
    rx: broadcast::Receiver<Arc<Change>>,
    recounts: usize,
}

impl<F: Fn(&Task) -> Tally> Counter<F> {
    fn apply(&mut self, change: &Change) {
        match change {
            Change::Batch { events, .. } => {
                for e in events {
                    if let Some(Object::Task(x)) = &e.object.object {
                        let new = if e.kind == EventKind::Remove {
                            Tally::default()
                        } else {
                            (self.classify)(x)
                        };
                        self.set(&x.id, new);
                    }
                }
            }
            Change::Restored => self.recount(),
        }
    }

    fn set(&mut self, id: &str, new: Tally) {
        let old = if new.is_zero() {
            self.by_task.remove(id)
        } else {
            self.by_task.insert(id.to_string(), new)
        };
        if let Some(old) = old {
            self.total -= old;
        }
        self.total += new;
    }

    fn recount(&mut self) {
        self.recounts += 1;
        let (by_task, rx) = self.store.view_and_watch(|t| count_all(t, &self.classify));
        self.by_task = by_task;
        self.rx = rx;
        self.total = sum(&self.by_task);
    }
}

fn count_all(t: &swarm_store::Tables, classify: impl Fn(&Task) -> Tally) -> HashMap<String, Tally> {
    t.tasks
        .iter()
        .map(|x| (x.id.clone(), classify(x)))
        .filter(|(_, c)| !c.is_zero())
        .collect()
}

fn sum(by_task: &HashMap<String, Tally>) -> Tally {
    let mut total = Tally::default();
    for c in by_task.values() {
        total += *c;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_api::{StoreAction, StoreActionKind, StoreBatch, StoreObject, TaskState, TaskStatus};

    fn task(id: &str, state: TaskState) -> Task {
        Task {
            id: id.into(),
            status: Some(TaskStatus {
                state: state as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn write(store: &Store, index: u64, kind: StoreActionKind, mut x: Task) {
        // Updates and removes name the version they replace, as every writer must.
        x.meta = store.view(|t| t.tasks.get(&x.id).and_then(|old| old.meta));
        let batch = StoreBatch {
            actions: vec![StoreAction {
                kind: kind as i32,
                object: Some(StoreObject {
                    object: Some(Object::Task(Box::new(x))),
                }),
            }],
            ..Default::default()
        };
        store.apply(index, &batch).expect("apply");
    }

    fn running(x: &Task) -> Tally {
        Tally {
            running: usize::from(
                x.status.as_ref().map(|s| s.state) == Some(TaskState::Running as i32),
            ),
            ..Default::default()
        }
    }

    /// Lets the counting task catch up with what was written.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn follows_creates_updates_and_removes_without_scanning() {
        let store = Store::new();
        write(
            &store,
            1,
            StoreActionKind::Create,
            task("a", TaskState::Running),
        );
        let c = TaskCounts::spawn(&store, running);
        assert_eq!(c.current().running, 1);
        write(
            &store,
            2,
            StoreActionKind::Create,
            task("b", TaskState::Pending),
        );
        write(
            &store,
            3,
            StoreActionKind::Update,
            task("b", TaskState::Running),
        );
        settle().await;
        assert_eq!(c.current().running, 2);
        // A task leaving RUNNING takes its share with it, and so does a removed one.
        write(
            &store,
            4,
            StoreActionKind::Update,
            task("a", TaskState::Failed),
        );
        settle().await;
        assert_eq!(c.current().running, 1);
        write(
            &store,
            5,
            StoreActionKind::Remove,
            task("b", TaskState::Running),
        );
        settle().await;
        assert_eq!(c.current().running, 0);
        assert_eq!(c.recounts(), 0);
    }
}
