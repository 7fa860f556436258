//! Clients of the Docker API socket that break its limits (`engine-api`'s `limits` module): a
//! body declared far too large is refused before any of it is read, a body over the cap is
//! refused with 413, and clients that stop sending in the middle of their headers or body are
//! cut off — after all of which the socket still answers everyone else. One real swarmd.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::docker::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Everything the server sends until it closes the connection (or `wait` runs out, which the
/// callers treat as the server still holding the connection).
fn read_until_closed(c: &mut UnixStream, wait: Duration) -> std::io::Result<String> {
    c.set_read_timeout(Some(wait))?;
    let mut out = Vec::new();
    // A server that closes with our bytes still unread resets the connection: what it sent
    // before is read first, the reset comes after it and ends the answer like a close.
    if let Err(e) = c.read_to_end(&mut out) {
        if e.kind() != std::io::ErrorKind::ConnectionReset {
            return Err(e);
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn status(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn pings(s: &Swarm) {
    let (code, body) = try_raw(&s.docker_sock, "GET", "/_ping", "").unwrap();
    assert_eq!((code, body.as_str()), (200, "OK"));
}

#[test]
fn bodies_over_the_limits_are_refused_without_waiting_for_them() {
    let s = Swarm::start();
    // 99 GB declared, none of it sent: the answer comes without the body, and the connection
    // ends with it. Waiting for the body (as before) leaves this read timing out.
    let mut c = UnixStream::connect(&s.docker_sock).unwrap();
    write!(
        c,
        "POST /v1.41/services/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 99000000000\r\n\r\n{{"
    )
    .unwrap();
    let answer = read_until_closed(&mut c, Duration::from_secs(20))
        .expect("no answer to a 99 GB Content-Length without its body");
    assert_eq!(status(&answer), 413, "{answer}");
    assert!(answer.contains("body: 99000000000 bytes"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );

    // Over the 4 MiB cap but sent whole: read to its end (the sender sees our answer, not a
    // broken pipe) and refused as too large, naming the body.
    let huge = "x".repeat(5 << 20);
    let (code, answer) = try_raw(&s.docker_sock, "POST", "/v1.41/services/create", &huge)
        .unwrap_or_else(|e| panic!("a 5 MiB body: {e}"));
    assert_eq!(code, 413, "{answer}");
    assert!(answer.contains("larger than the 4 MiB"), "{answer}");
    // Nothing was created by either.
    let (code, body) = try_raw(&s.docker_sock, "GET", "/v1.41/services", "").unwrap();
    assert_eq!((code, body.trim()), (200, "[]"));
    pings(&s);
}

#[test]
fn slow_clients_are_cut_off_and_the_socket_keeps_answering() {
    let s = Swarm::start();
    // Half a request line and headers, then silence: a slow-loris client.
    let mut loris = UnixStream::connect(&s.docker_sock).unwrap();
    write!(loris, "GET /_ping HTTP/1.1\r\nHost: docker\r\nX-Slow: ").unwrap();
    // A body that stops after 10 of its 100 declared bytes.
    let mut stalled = UnixStream::connect(&s.docker_sock).unwrap();
    write!(
        stalled,
        "POST /v1.41/services/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"Name\":\"x"
    )
    .unwrap();
    let started = Instant::now();

    // Meanwhile everyone else is served.
    pings(&s);

    // Both are closed by the server well before our own patience (60 s) runs out; the stalled
    // body is told why.
    let cut = read_until_closed(&mut loris, Duration::from_secs(60))
        .expect("a client that never finishes its headers is held open");
    assert!(
        status(&cut) == 0 || status(&cut) == 408,
        "the slow-loris got an answer: {cut}"
    );
    let answer = read_until_closed(&mut stalled, Duration::from_secs(60))
        .expect("a client that stops in the middle of its body is held open");
    assert_eq!(status(&answer), 408, "{answer}");
    assert!(answer.contains("body: nothing received"), "{answer}");
    eprintln!("both slow clients cut off after {:?}", started.elapsed());
    let (code, body) = try_raw(&s.docker_sock, "GET", "/v1.41/services", "").unwrap();
    assert_eq!((code, body.trim()), (200, "[]"));

    // A request line and headers over 64 KiB: refused, hyper's 431.
    let big = format!("X-Big: {}\r\n", "y".repeat(70 << 10));
    let mut c = UnixStream::connect(&s.docker_sock).unwrap();
    // The server may answer and close before all 70 KiB are written: the write then fails
    // with a broken pipe, and the answer is still there to read.
    let _ = write!(c, "GET /_ping HTTP/1.1\r\nHost: docker\r\n{big}\r\n");
    let answer = read_until_closed(&mut c, Duration::from_secs(20)).unwrap();
    assert_eq!(status(&answer), 431, "{answer}");
    pings(&s);
}
