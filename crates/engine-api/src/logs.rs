//! `GET /services/{id}/logs` and `GET /tasks/{id}/logs`: the log broker's stream of a
//! service's tasks' lines (a task's: only its own), written as Docker's server writes them
//! (see `convert::logs`) and sent as they come. The stream ends when the broker's does (not
//! following: every node has sent what it has), or when the client goes away, which drops
//! the subscription and so tells the agents to stop. Owns no buffering (one batch at a time)
//! and no task; which tasks and nodes send is the broker's business, not this module's.

use crate::backend::{Backend, LogStream};
use crate::convert::logs::{self as conv, LogOptions};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::Request;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use swarm_api::{SubscribeLogsMessage, SubscribeLogsRequest};

/// What Docker calls a framed stream; a TTY's output goes unframed.
const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
const RAW: &str = "application/vnd.docker.raw-stream";

/// The body: each batch of lines becomes one chunk.
struct LogBody {
    inner: LogStream,
    service_id: String,
    /// Only this task's lines (task logs).
    task: Option<String>,
    opts: LogOptions,
    /// A TTY's output: no frames, stdout and stderr are one.
    raw: bool,
    done: bool,
}

impl LogBody {
    fn encode(&self, batch: &SubscribeLogsMessage) -> Vec<u8> {
        let mut out = Vec::new();
        for w in &batch.warnings {
            // Not a line: the CLI would refuse a line without the swarm context.
            tracing::debug!(warning = %w, "docker API: logs");
        }
        let wanted = batch
            .messages
            .iter()
            .filter(|m| self.task.as_ref().is_none_or(|t| *t == m.task_id));
        for m in wanted {
            if let Some((stream, line)) = conv::line(m, &self.service_id, &self.opts) {
                self.put(stream, &line, &mut out);
            }
        }
        out
    }

    fn put(&self, stream: u8, data: &[u8], out: &mut Vec<u8>) {
        if self.raw {
            out.extend_from_slice(data);
        } else {
            conv::frame(stream, data, out);
        }
    }
}

impl Body for LogBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let next = match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(n) => n,
            };
            match next {
                None => return Poll::Ready(None),
                Some(Ok(batch)) => {
                    let out = this.encode(&batch);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                }
                Some(Err(status)) => {
                    // As Docker's server ends a broken log stream: a line on stderr.
                    this.done = true;
                    let msg = format!("Error grabbing logs: {}\n", status.message());
                    let mut out = Vec::new();
                    this.put(2, msg.as_bytes(), &mut out);
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                }
            }
        }
    }
}

fn tty(s: Option<&swarm_api::ServiceSpec>) -> bool {
    s.and_then(|s| s.task.as_ref())
        .and_then(|t| t.container.as_ref())
        .is_some_and(|c| c.tty)
}

async fn stream(
    b: &Backend,
    service_id: String,
    task: Option<String>,
    raw: bool,
    r: &Request,
) -> Result<Reply, ApiError> {
    let opts = conv::options(r)?;
    let inner = b
        .subscribe_logs(SubscribeLogsRequest {
            service_id: service_id.clone(),
            follow: opts.follow,
            tail: opts.tail,
        })
        .await?;
    let body = LogBody {
        inner,
        service_id,
        task,
        opts,
        raw,
        done: false,
    };
    let kind = if raw { RAW } else { MULTIPLEXED };
    Ok(Reply::stream(kind, body.boxed_unsync()))
}

pub async fn service(b: &Backend, id: &str, r: &Request) -> Result<Reply, ApiError> {
    let s = b.service(id).await?;
    let raw = tty(s.spec.as_ref());
    stream(b, s.id, None, raw, r).await
}

pub async fn task(b: &Backend, id: &str, r: &Request) -> Result<Reply, ApiError> {
    let t = b.task(id).await?;
    let raw = t
        .spec
        .as_ref()
        .and_then(|s| s.container.as_ref())
        .is_some_and(|c| c.tty);
    stream(b, t.service_id.clone(), Some(t.id), raw, r).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use swarm_api::{LogMessage, LogStream as Which};

    fn msg(task: &str, which: Which, data: &str) -> LogMessage {
        LogMessage {
            task_id: task.into(),
            node_id: "n1".into(),
            stream: which as i32,
            data: data.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    async fn collect(
        batches: Vec<Result<SubscribeLogsMessage, tonic::Status>>,
        task: Option<&str>,
        raw: bool,
    ) -> Vec<u8> {
        let q = Request::new(Some("stdout=1&stderr=1"), Bytes::new());
        let body = LogBody {
            inner: Box::pin(tokio_stream::iter(batches)),
            service_id: "s1".into(),
            task: task.map(str::to_string),
            opts: conv::options(&q).unwrap(),
            raw,
            done: false,
        };
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn batches_become_frames_and_a_broken_stream_says_so_on_stderr() {
        let batch = SubscribeLogsMessage {
            messages: vec![
                msg("t1", Which::Stdout, "out"),
                msg("t2", Which::Stderr, "err"),
            ],
            warnings: vec!["node n2 is not connected".into()],
        };
        let got = collect(
            vec![
                Ok(batch.clone()),
                Err(tonic::Status::unavailable("leader lost")),
            ],
            None,
            false,
        )
        .await;
        let mut want = Vec::new();
        conv::frame(1, b"out\n", &mut want);
        conv::frame(2, b"err\n", &mut want);
        conv::frame(2, b"Error grabbing logs: leader lost\n", &mut want);
        assert_eq!(got, want);
        // A task's logs: its lines only; a TTY's: unframed.
        let got = collect(vec![Ok(batch)], Some("t2"), true).await;
        assert_eq!(got, b"err\n");
    }
}
