//! Group commit: transactions proposed while earlier entries are still being committed wait in
//! one queue and go into the log together, as one entry carrying each of them (see
//! `types::Proposal`). N concurrent writers then cost one append, one fsync per member and one
//! replication round instead of N: openraft 0.9 appends and flushes every `client_write` on its
//! own, so without this the leader's serial fsyncs cap throughput whatever the concurrency.
//!
//! Each proposer still gets its own answer: the state machine applies every transaction of an
//! entry on its own (`Store::apply_group`) and returns its result in its place.
//!
//! Owns the queue and the entries in flight. Must not look inside transactions, and leaves
//! deadlines and the quorum check to each caller (`RaftNode::propose`).

use std::collections::VecDeque;
use std::sync::Mutex;

use futures::stream::{FuturesUnordered, StreamExt};
use openraft::error::ClientWriteError;
use prost::Message;
use swarm_api::{StoreBatch, StoreObject};
use swarm_store::WriteError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::types::{NodeId, OpenRaft, Proposal};

/// Proposals that may wait for the queue before callers are held back.
const QUEUE: usize = 8192;

/// How a caller's transaction ended.
pub(crate) type Outcome = Result<Vec<StoreObject>, WriteError>;

/// Limits of one group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Entries handed to openraft and not yet answered. While they are, new proposals gather
    /// into the next group; more in flight means smaller groups but a fuller pipeline.
    pub(crate) in_flight: usize,
    /// A group closes before its encoded transactions pass this size (one larger transaction
    /// goes alone), so an entry stays well inside a peer's message limit.
    pub(crate) max_bytes: usize,
    /// And before it holds this many transactions.
    pub(crate) max_len: usize,
}

struct Waiting {
    batch: StoreBatch,
    reply: oneshot::Sender<Outcome>,
}

/// The queue's handle; the task behind it ends when this is dropped or [`GroupCommit::stop`]ped.
pub(crate) struct GroupCommit {
    tx: mpsc::Sender<Waiting>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl GroupCommit {
    pub(crate) fn start(raft: OpenRaft, limits: Limits) -> GroupCommit {
        let (tx, rx) = mpsc::channel(QUEUE);
        // Owned by the GroupCommit (so by its RaftNode): stopped on shutdown, and it also ends
        // by itself once every sender is gone and nothing is in flight.
        #[allow(clippy::disallowed_methods)]
        let task = tokio::spawn(run(raft, limits, rx));
        GroupCommit {
            tx,
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues `batch` and waits for its own result.
    pub(crate) async fn propose(&self, batch: StoreBatch) -> Outcome {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Waiting { batch, reply }).await.is_err() {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Stops the task; queued callers are answered "stopped".
    pub(crate) fn stop(&self) {
        if let Ok(mut t) = self.task.lock() {
            if let Some(t) = t.take() {
                t.abort();
            }
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stopped() -> WriteError {
    WriteError::Unavailable("raft stopped".into())
}

async fn run(raft: OpenRaft, limits: Limits, mut rx: mpsc::Receiver<Waiting>) {
    let mut queue: VecDeque<Waiting> = VecDeque::new();
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    while open || !queue.is_empty() || !in_flight.is_empty() {
        tokio::select! {
            // Answers were already sent by the finished write itself.
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            got = rx.recv(), if open => match got {
                Some(w) => queue.push_back(w),
                None => open = false,
            },
            // Unreachable while the loop's condition holds (a non-empty queue always leaves a
            // group in flight), but select! must not be left without a branch.
            else => break,
        }
        // Everything that arrived meanwhile joins the queue before groups are cut.
        while let Ok(w) = rx.try_recv() {
            queue.push_back(w);
        }
        while in_flight.len() < limits.in_flight.max(1) {
            let group = next_group(&mut queue, limits);
            if group.is_empty() {
                break;
            }
            in_flight.push(write(raft.clone(), group));
        }
    }
}

/// Takes the next group off the front of the queue, skipping callers that already gave up
/// (their deadline passed: nobody waits for the answer, so the write is not worth making).
fn next_group(queue: &mut VecDeque<Waiting>, limits: Limits) -> Vec<Waiting> {
    let mut group = Vec::new();
    let mut bytes = 0;
    while let Some(front) = queue.front() {
        if front.reply.is_closed() {
            queue.pop_front();
            continue;
        }
        let size = front.batch.encoded_len();
        let full = group.len() >= limits.max_len.max(1) || bytes + size > limits.max_bytes;
        if !group.is_empty() && full {
            break;
        }
        bytes += size;
        if let Some(w) = queue.pop_front() {
            group.push(w);
        }
    }
    group
}

/// Commits one group and answers each of its callers.
async fn write(raft: OpenRaft, group: Vec<Waiting>) {
    let (batches, replies): (Vec<StoreBatch>, Vec<oneshot::Sender<Outcome>>) =
        group.into_iter().map(|w| (w.batch, w.reply)).unzip();
    let n = batches.len();
    match raft.client_write(Proposal(batches)).await {
        Ok(resp) if resp.data.len() == n => {
            for (reply, result) in replies.into_iter().zip(resp.data) {
                // A caller that gave up meanwhile is not an error.
                let _ = reply.send(result.map_err(WriteError::Refused));
            }
        }
        Ok(resp) => {
            // The state machine answers every transaction; anything else is a bug here.
            let e = WriteError::Unavailable(format!(
                "internal: {} results for a group of {n}",
                resp.data.len()
            ));
            tracing::error!(error = %e, "group commit");
            answer_all(replies, e);
        }
        Err(e) => answer_all(replies, write_error(e)),
    }
}

fn answer_all(replies: Vec<oneshot::Sender<Outcome>>, e: WriteError) {
    for reply in replies {
        let _ = reply.send(Err(e.clone()));
    }
}

fn write_error(
    e: openraft::error::RaftError<NodeId, ClientWriteError<NodeId, openraft::BasicNode>>,
) -> WriteError {
    match e {
        openraft::error::RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            WriteError::NotLeader {
                leader_id: f.leader_id,
                leader: f.leader_node.map(|n| n.addr),
            }
        }
        e => WriteError::Unavailable(e.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn waiting(ts: i64, payload: usize) -> (Waiting, oneshot::Receiver<Outcome>) {
        let (reply, rx) = oneshot::channel();
        let batch = StoreBatch {
            actions: vec![swarm_api::StoreAction {
                kind: 1,
                object: Some(StoreObject {
                    object: Some(swarm_api::store_object::Object::Service(Box::new(
                        swarm_api::Service {
                            id: "x".repeat(payload),
                            ..Default::default()
                        },
                    ))),
                }),
            }],
            timestamp: ts,
        };
        (Waiting { batch, reply }, rx)
    }

    fn limits(max_bytes: usize, max_len: usize) -> Limits {
        Limits {
            in_flight: 1,
            max_bytes,
            max_len,
        }
    }

    fn stamps(g: &[Waiting]) -> Vec<i64> {
        g.iter().map(|w| w.batch.timestamp).collect()
    }

    #[test]
    fn groups_keep_order_and_respect_their_limits() {
        let mut q = VecDeque::new();
        let mut keep = Vec::new();
        for ts in 0..7 {
            let (w, rx) = waiting(ts, 100);
            q.push_back(w);
            keep.push(rx);
        }
        assert_eq!(stamps(&next_group(&mut q, limits(1 << 20, 3))), [0, 1, 2]);
        // ~110 bytes each: two fit under 250.
        assert_eq!(stamps(&next_group(&mut q, limits(250, 100))), [3, 4]);
        assert_eq!(stamps(&next_group(&mut q, limits(1 << 20, 100))), [5, 6]);
        assert!(next_group(&mut q, limits(1 << 20, 100)).is_empty());
    }

    #[test]
    fn a_transaction_over_the_size_limit_goes_alone() {
        let mut q = VecDeque::new();
        let (big, _a) = waiting(0, 5000);
        let (small, _b) = waiting(1, 10);
        q.push_back(big);
        q.push_back(small);
        assert_eq!(stamps(&next_group(&mut q, limits(1000, 100))), [0]);
        assert_eq!(stamps(&next_group(&mut q, limits(1000, 100))), [1]);
    }

    #[test]
    fn callers_that_gave_up_are_not_written() {
        let mut q = VecDeque::new();
        let (w0, rx0) = waiting(0, 10);
        let (w1, _rx1) = waiting(1, 10);
        q.push_back(w0);
        q.push_back(w1);
        drop(rx0);
        assert_eq!(stamps(&next_group(&mut q, limits(1 << 20, 100))), [1]);
    }
}
