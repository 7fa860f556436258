//! Reading a task's output from a log file (the `process` executor's `stdout.log` and
//! `stderr.log`): the last N lines, then, when following, what is appended, found by polling.
//!
//! Owns only the reading: it never writes, truncates or removes a file. A reader task reads
//! ahead at most `BUFFER_LINES` lines; when the consumer is slower it waits (backpressure),
//! and it ends as soon as the consumer goes away.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use swarm_api::{now_ms, LogStream};
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::{LogLine, LogLines, LogOptions};

/// How often a followed file is looked at for new output. Files give no change events
/// without inotify; 200 ms is quick enough for people and costs one `stat` per tick.
const POLL: Duration = Duration::from_millis(200);
/// Bytes read at once.
const CHUNK: usize = 64 * 1024;
/// A line longer than this is sent in pieces, so one message stays small.
pub(crate) const MAX_LINE: usize = 16 * 1024;
/// Lines read ahead of the consumer.
const BUFFER_LINES: usize = 64;

/// The lines of `path` as `opts` asks, tagged `stream`. A file that does not exist yet gives
/// nothing, or when following, its lines once it appears.
pub(crate) fn lines(path: PathBuf, stream: LogStream, opts: LogOptions) -> LogLines {
    let (tx, rx) = mpsc::channel(BUFFER_LINES);
    // Ends when the reader drops the stream (the send fails) or the file ends.
    #[allow(clippy::disallowed_methods)]
    tokio::spawn(async move {
        if let Err(e) = read(&path, stream, opts, &tx).await {
            tracing::debug!(path = %path.display(), error = %e, "reading task log");
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (line, rx))
    }))
}

/// Sends one line; false when the consumer is gone.
async fn send(tx: &mpsc::Sender<LogLine>, stream: LogStream, data: Vec<u8>) -> bool {
    tx.send(LogLine {
        stream,
        timestamp_ms: now_ms(),
        data,
    })
    .await
    .is_ok()
}

async fn read(
    path: &std::path::Path,
    stream: LogStream,
    opts: LogOptions,
    tx: &mpsc::Sender<LogLine>,
) -> std::io::Result<()> {
    let mut file = loop {
        match File::open(path).await {
            Ok(f) => break f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && opts.follow => {
                // The task has not started yet: its output comes once it does.
                tokio::select! {
                    _ = tx.closed() => return Ok(()),
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    };
    let mut pos = match opts.tail {
        Some(n) => tail_offset(&mut file, n).await?,
        None => 0,
    };
    file.seek(SeekFrom::Start(pos)).await?;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).await?;
        if n > 0 {
            pos += n as u64;
            pending.extend_from_slice(&buf[..n]);
            for piece in split_lines(&mut pending) {
                if !send(tx, stream, piece).await {
                    return Ok(());
                }
            }
            continue;
        }
        if !opts.follow {
            // The last line of a file that does not end in a line feed.
            if !pending.is_empty() {
                send(tx, stream, std::mem::take(&mut pending)).await;
            }
            return Ok(());
        }
        tokio::select! {
            _ = tx.closed() => return Ok(()),
            _ = tokio::time::sleep(POLL) => {}
        }
        // A file shorter than what was read was truncated (started over): read it anew.
        if let Ok(meta) = tokio::fs::metadata(path).await {
            if meta.len() < pos {
                file = File::open(path).await?;
                pos = 0;
                pending.clear();
            }
        }
    }
}

/// Takes the complete lines (without line feeds) out of `pending`, and pieces of
/// `MAX_LINE` bytes of a line that grows longer than that; leaves the unfinished rest.
fn split_lines(pending: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(i) = pending[start..].iter().position(|b| *b == b'\n') {
        let line = &pending[start..start + i];
        out.extend(line.chunks(MAX_LINE).map(<[u8]>::to_vec));
        if line.is_empty() {
            out.push(Vec::new());
        }
        start += i + 1;
    }
    while pending.len() - start >= MAX_LINE {
        out.push(pending[start..start + MAX_LINE].to_vec());
        start += MAX_LINE;
    }
    pending.drain(..start);
    out
}

/// Where the last `n` lines of `file` begin, found by reading backwards from its end (a
/// big file is not read whole). A final line feed ends the last line; it starts none.
async fn tail_offset(file: &mut File, n: u64) -> std::io::Result<u64> {
    let len = file.metadata().await?.len();
    if n == 0 {
        return Ok(len);
    }
    let mut end = len;
    let mut found = 0;
    let mut buf = vec![0u8; CHUNK];
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let size = (end - start) as usize;
        file.seek(SeekFrom::Start(start)).await?;
        file.read_exact(&mut buf[..size]).await?;
        for i in (0..size).rev() {
            let at = start + i as u64;
            if buf[i] != b'\n' || at + 1 == len {
                continue;
            }
            found += 1;
            if found == n {
                return Ok(at + 1);
            }
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures::StreamExt;

    async fn collect(path: PathBuf, opts: LogOptions) -> Vec<String> {
        lines(path, LogStream::Stdout, opts)
            .map(|l| String::from_utf8(l.data).unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn tail_takes_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stdout.log");
        std::fs::write(&p, "a\nb\n\nc\n").unwrap();
        let all = collect(p.clone(), LogOptions::default()).await;
        assert_eq!(all, ["a", "b", "", "c"]);
        let tail = |n| LogOptions {
            follow: false,
            tail: Some(n),
        };
        assert_eq!(collect(p.clone(), tail(1)).await, ["c"]);
        assert_eq!(collect(p.clone(), tail(2)).await, ["", "c"]);
        assert_eq!(collect(p.clone(), tail(9)).await, ["a", "b", "", "c"]);
        assert!(collect(p.clone(), tail(0)).await.is_empty());
        std::fs::write(&p, "x\ny").unwrap();
        assert_eq!(collect(p.clone(), tail(1)).await, ["y"]);
        assert!(collect(dir.path().join("none"), LogOptions::default())
            .await
            .is_empty());
    }

    #[tokio::test]
    async fn tail_reads_backwards_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stdout.log");
        let text: String = (0..20_000).map(|i| format!("line-{i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        let got = collect(
            p,
            LogOptions {
                follow: false,
                tail: Some(15_000),
            },
        )
        .await;
        assert_eq!(got.len(), 15_000);
        assert_eq!(got[0], "line-5000");
        assert_eq!(got[14_999], "line-19999");
    }

    #[test]
    fn long_lines_come_in_pieces() {
        let mut p = vec![b'x'; MAX_LINE * 2 + 3];
        let out = split_lines(&mut p);
        assert_eq!(out.len(), 2);
        assert_eq!(p.len(), 3);
        p.extend_from_slice(b"\nz");
        let out = split_lines(&mut p);
        assert_eq!(out, vec![b"xxx".to_vec()]);
        assert_eq!(p, b"z");
    }

    #[tokio::test]
    async fn follow_sees_appended_lines_and_ends_with_its_reader() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stdout.log");
        std::fs::write(&p, "old\n").unwrap();
        let mut s = lines(
            p.clone(),
            LogStream::Stdout,
            LogOptions {
                follow: true,
                tail: Some(1),
            },
        );
        async fn next(s: &mut LogLines) -> Vec<u8> {
            tokio::time::timeout(Duration::from_secs(5), s.next())
                .await
                .unwrap()
                .unwrap()
                .data
        }
        assert_eq!(next(&mut s).await, b"old");
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        write!(f, "new\npart").unwrap();
        assert_eq!(next(&mut s).await, b"new");
        // Following, an unfinished line waits for its end.
        writeln!(f, "ial").unwrap();
        assert_eq!(next(&mut s).await, b"partial");
        drop(s);
    }
}
