//! Where a task's time goes between creation and RUNNING: when each task created during a
//! phase was first seen NEW (orchestrator), PENDING (allocator), ASSIGNED (scheduler) and
//! RUNNING (agent's report, written by the dispatcher), read off the watch stream as the
//! commits arrive. Reports each step's p50/p99/max. Reads the store only.
//!
//! The times are when the bench saw the commit, not the components' clocks: all on one
//! monotonic clock, so the steps add up to created → RUNNING.

use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use swarm_api::{store_object::Object, TaskState};
use swarm_store::{Change, EventKind, Store};
use tokio::sync::broadcast::error::RecvError;

/// The steps, in pipeline order; a task's stamp for each is the first commit showing it.
const STEPS: [TaskState; 4] = [
    TaskState::New,
    TaskState::Pending,
    TaskState::Assigned,
    TaskState::Running,
];

type Stamps = [Option<f64>; 4];

pub struct Stages {
    seen: Arc<Mutex<HashMap<String, Stamps>>>,
    stop: tokio::task::AbortHandle,
}

impl Drop for Stages {
    fn drop(&mut self) {
        self.stop.abort();
    }
}

impl Stages {
    /// Starts watching on the current runtime; only tasks created from now on are followed.
    pub fn spawn(store: &Store) -> Stages {
        let seen: Arc<Mutex<HashMap<String, Stamps>>> = Arc::default();
        let mut rx = store.watch();
        let s = seen.clone();
        let t0 = Instant::now();
        // Awaited by `finish`.
        #[allow(clippy::disallowed_methods)]
        let stop = tokio::spawn(async move {
            loop {
                let change = match rx.recv().await {
                    Ok(c) => c,
                    // Missed commits leave gaps: those tasks drop out of the figures.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                };
                let Change::Batch { events, .. } = &*change else {
                    continue;
                };
                let now = t0.elapsed().as_secs_f64();
                let mut seen = s.lock();
                for e in events {
                    let Some(Object::Task(x)) = &e.object.object else {
                        continue;
                    };
                    let state = x
                        .status
                        .as_ref()
                        .and_then(|st| TaskState::try_from(st.state).ok())
                        .unwrap_or(TaskState::New);
                    let Some(step) = STEPS.iter().position(|s| *s == state) else {
                        continue;
                    };
                    let stamps = if e.kind == EventKind::Create {
                        seen.entry(x.id.clone()).or_default()
                    } else {
                        match seen.get_mut(&x.id) {
                            Some(st) => st,
                            None => continue,
                        }
                    };
                    stamps[step].get_or_insert(now);
                }
            }
        })
        .abort_handle();
        Stages { seen, stop }
    }

    /// p50/p99/max (ms) of each step, over the tasks seen through every step.
    pub fn report(&self) -> Value {
        let seen = self.seen.lock();
        let names = [
            "new_to_pending",
            "pending_to_assigned",
            "assigned_to_running",
        ];
        let mut out = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            let mut d: Vec<i64> = seen
                .values()
                .filter_map(|st| Some(((st[i + 1]? - st[i]?) * 1000.0).round() as i64))
                .collect();
            d.sort_unstable();
            out.insert(
                name.to_string(),
                json!({
                    "n": d.len(),
                    "p50_ms": super::metrics::percentile(&d, 50.0),
                    "p99_ms": super::metrics::percentile(&d, 99.0),
                    "max_ms": d.last().copied().unwrap_or(0),
                }),
            );
        }
        Value::Object(out)
    }
}
