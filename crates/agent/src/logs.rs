//! The agent's side of the log broker: listens, on the current dispatcher session's
//! connection, for log subscriptions addressed to this node's tasks, and publishes those tasks'
//! output for each one, read through the executor.
//!
//! Owns the open subscriptions and their publishing streams; all of them end when the session
//! does (a new session brings the open subscriptions again). Must not touch the task table or
//! task states, and sends only what the broker asked for: the broker checks it anyway.
//!
//! Memory stays bounded end to end: each publishing stream queues at most `PUBLISH_BUFFER`
//! messages of at most `BATCH_LINES` lines, and the executor's readers read ahead a small
//! bounded buffer; a slow reader at the far end (the operator's terminal) slows the gRPC
//! stream, which slows the reading here (backpressure, nothing is dropped).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::SelectAll;
use futures::{FutureExt, StreamExt};
use swarm_api::log_broker_client::LogBrokerClient;
use swarm_api::{ListenSubscriptionsRequest, LogMessage, LogSubscription, PublishLogsMessage};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::executor::{Executor, LogLines, LogOptions};
use crate::reporter::SessionLink;

/// Messages waiting to go out on one publishing stream.
const PUBLISH_BUFFER: usize = 4;
/// Lines per published message at most.
const BATCH_LINES: usize = 64;
/// Wait before listening again after the broker refused or the stream broke.
const RETRY: Duration = Duration::from_secs(1);
/// Subscription updates (more tasks) waiting for a publisher; more are dropped, as the
/// broker sends the whole task list every time.
const UPDATES_BUFFER: usize = 4;

/// Serves log subscriptions on whatever session is current, until `stop`.
pub(crate) async fn run(
    executor: Arc<dyn Executor>,
    mut link: watch::Receiver<Option<SessionLink>>,
    stop: CancellationToken,
) {
    loop {
        let current = link.borrow_and_update().clone();
        if let Some(l) = current {
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                // A new session (or none): what was open ends with the old one.
                r = link.changed() => if r.is_err() { return } else { continue },
                r = listen(&executor, &l) => r,
            };
            match result {
                Ok(()) => tracing::debug!("log subscriptions stream ended"),
                Err(s) if s.code() == tonic::Code::Unimplemented => {
                    // A manager without a log broker: nothing to do until the next session.
                    tracing::debug!("the manager has no log broker");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        r = link.changed() => if r.is_err() { return },
                    }
                    continue;
                }
                Err(s) => tracing::debug!(error = %s, "log subscriptions stream failed"),
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            r = link.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(RETRY), if link.borrow().is_some() => {}
        }
    }
}

/// A publisher's handle: cancels it, or hands it a subscription's new task list.
struct Running {
    cancel: CancellationToken,
    updates: mpsc::Sender<Vec<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// One subscriptions stream: a publisher per subscription, all ended when this returns.
async fn listen(executor: &Arc<dyn Executor>, link: &SessionLink) -> Result<(), tonic::Status> {
    let client = LogBrokerClient::new(link.channel.clone());
    let mut subs = client
        .clone()
        .listen_subscriptions(ListenSubscriptionsRequest {
            session_id: link.session_id.clone(),
        })
        .await?
        .into_inner();
    let mut running: HashMap<String, Running> = HashMap::new();
    // Dropping the set (when this returns) aborts every publisher.
    let mut publishers: JoinSet<String> = JoinSet::new();
    loop {
        tokio::select! {
            m = subs.message() => {
                let Some(sub) = m? else { return Ok(()) };
                if sub.close {
                    running.remove(&sub.id);
                    continue;
                }
                if let Some(r) = running.get(&sub.id) {
                    // Full means updates are already waiting; the next one has every task.
                    let _ = r.updates.try_send(sub.task_ids);
                    continue;
                }
                let cancel = CancellationToken::new();
                let (tx, rx) = mpsc::channel(UPDATES_BUFFER);
                running.insert(sub.id.clone(), Running { cancel: cancel.clone(), updates: tx });
                publishers.spawn(publish(executor.clone(), client.clone(), sub, cancel, rx));
            }
            Some(done) = publishers.join_next(), if !publishers.is_empty() => {
                if let Ok(id) = done {
                    running.remove(&id);
                }
            }
        }
    }
}

/// Lines of several tasks, each tagged with its task's ID.
type Tagged = SelectAll<futures::stream::BoxStream<'static, (String, swarm_api::LogMessage)>>;

/// Adds `task_id`'s output to `lines`, once.
async fn open(
    executor: &Arc<dyn Executor>,
    task_id: &str,
    opts: LogOptions,
    lines: &mut Tagged,
    known: &mut HashSet<String>,
) {
    if !known.insert(task_id.to_string()) {
        return;
    }
    let stream: LogLines = match executor.logs(task_id, opts).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(task = %task_id, error = %e, "no logs for the task");
            return;
        }
    };
    let id = task_id.to_string();
    lines.push(Box::pin(stream.map(move |l| {
        (
            id.clone(),
            LogMessage {
                task_id: id.clone(),
                stream: l.stream as i32,
                timestamp_ms: l.timestamp_ms,
                data: l.data,
                ..Default::default()
            },
        )
    })));
}

/// Publishes one subscription's lines until they end (not following), the broker closes it,
/// or the stream breaks. Returns the subscription's ID.
async fn publish(
    executor: Arc<dyn Executor>,
    mut client: LogBrokerClient<Channel>,
    sub: LogSubscription,
    cancel: CancellationToken,
    mut updates: mpsc::Receiver<Vec<String>>,
) -> String {
    let id = sub.id.clone();
    let opts = LogOptions {
        follow: sub.follow,
        tail: sub.tail.map(|n| u64::try_from(n).unwrap_or(0)),
    };
    let (tx, rx) = mpsc::channel::<PublishLogsMessage>(PUBLISH_BUFFER);
    let outgoing =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let produce = async move {
        let mut lines: Tagged = SelectAll::new();
        let mut known = HashSet::new();
        for task_id in &sub.task_ids {
            open(&executor, task_id, opts, &mut lines, &mut known).await;
        }
        loop {
            let first = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tx.closed() => return,
                Some(ids) = updates.recv() => {
                    for task_id in &ids {
                        open(&executor, task_id, opts, &mut lines, &mut known).await;
                    }
                    continue;
                }
                l = lines.next(), if !lines.is_empty() => l,
                // Not following and nothing (left) to read: done. Following, wait for more
                // tasks or the end.
                _ = std::future::ready(()), if lines.is_empty() && !sub.follow => None,
            };
            let Some((_, first)) = first else {
                if sub.follow {
                    continue;
                }
                // Everything there was is sent: say so, so the reader's stream can end.
                let _ = tx
                    .send(PublishLogsMessage {
                        subscription_id: sub.id.clone(),
                        messages: Vec::new(),
                        close: true,
                    })
                    .await;
                return;
            };
            let mut messages = vec![first];
            // Whatever else is ready goes in the same message.
            while messages.len() < BATCH_LINES {
                match lines.next().now_or_never() {
                    Some(Some((_, m))) => messages.push(m),
                    _ => break,
                }
            }
            let msg = PublishLogsMessage {
                subscription_id: sub.id.clone(),
                messages,
                close: false,
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    };
    let (_, result) = tokio::join!(produce, client.publish_logs(outgoing));
    if let Err(e) = result {
        tracing::debug!(subscription = %id, error = %e, "publishing logs");
    }
    id
}
