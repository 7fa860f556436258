//! `swarmctl service logs`: prints a service's tasks' output as the managers' log broker
//! streams it, each line prefixed with `<task name>@<node> | `; the tasks' stderr goes to
//! stderr. Owns only the printing: which tasks and lines come is the broker's business.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use swarm_api::logs_client::LogsClient;
use swarm_api::{ListNodesRequest, LogMessage, LogStream, SubscribeLogsRequest};

use super::node_names;
use crate::{client, resolve};

/// Runs until the stream ends (every task's output sent, not following), or, following,
/// until interrupted or the manager goes away.
pub async fn run(socket: &Path, service: &str, follow: bool, tail: Option<u64>) -> Result<()> {
    let mut c = client::connect(socket).await?;
    let svc = resolve::service(&mut c, service).await?;
    let names = node_names(&c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes);
    let mut logs = LogsClient::new(client::channel(socket).await?);
    let mut stream = logs
        .subscribe_logs(SubscribeLogsRequest {
            service_id: svc.id.clone(),
            follow,
            tail: tail.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        })
        .await?
        .into_inner();
    while let Some(batch) = stream.message().await? {
        for w in &batch.warnings {
            let _ = writeln!(std::io::stderr(), "warning: {w}");
        }
        if !print(&batch.messages, &names)? {
            // Our reader is gone (`… | head`): nothing more to do.
            return Ok(());
        }
    }
    Ok(())
}

/// `web.1@node-2 | ` before a line.
fn prefix(m: &LogMessage, names: &HashMap<String, String>) -> String {
    let node = names
        .get(&m.node_id)
        .filter(|n| !n.is_empty())
        .unwrap_or(&m.node_id);
    let task = if m.task_name.is_empty() {
        &m.task_id
    } else {
        &m.task_name
    };
    format!("{task}@{node} | ")
}

/// Prints a batch; false when stdout is a closed pipe.
fn print(messages: &[LogMessage], names: &HashMap<String, String>) -> Result<bool> {
    let mut out = Vec::new();
    let mut err = Vec::new();
    for m in messages {
        let buf = if m.stream() == LogStream::Stderr {
            &mut err
        } else {
            &mut out
        };
        buf.extend_from_slice(prefix(m, names).as_bytes());
        buf.extend_from_slice(&m.data);
        buf.push(b'\n');
    }
    if !err.is_empty() {
        let _ = std::io::stderr().write_all(&err);
    }
    let mut stdout = std::io::stdout().lock();
    // Flushed per batch, so a follower sees each line as it comes.
    match stdout.write_all(&out).and_then(|_| stdout.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_names_task_and_node() {
        let names = HashMap::from([("n1".to_string(), "node-2".to_string())]);
        let m = LogMessage {
            task_id: "t".into(),
            task_name: "redis.1".into(),
            node_id: "n1".into(),
            ..Default::default()
        };
        assert_eq!(prefix(&m, &names), "redis.1@node-2 | ");
        let gone = LogMessage {
            task_id: "t".into(),
            node_id: "n9".into(),
            ..Default::default()
        };
        assert_eq!(prefix(&gone, &names), "t@n9 | ");
    }
}
