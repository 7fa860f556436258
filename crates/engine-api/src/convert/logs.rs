//! Log lines as Docker's server writes them for `service logs` and `task logs`: the query's
//! options, each line as `[timestamp ]  [details ]line\n` (details are the swarm context,
//! `com.docker.swarm.node.id=…,com.docker.swarm.service.id=…,com.docker.swarm.task.id=…`,
//! which the CLI parses to name the task and node), and the multiplexed framing (an 8-byte
//! header: the stream, 1 stdout or 2 stderr, then the length, big-endian). Pure functions.

use crate::error::ApiError;
use crate::request::Request;
use swarm_api::{LogMessage, LogStream};

/// What a logs request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    pub details: bool,
    /// The last N lines of each task; None for all.
    pub tail: Option<i64>,
    /// Only lines read at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
}

pub fn options(r: &Request) -> Result<LogOptions, ApiError> {
    let stdout = r.go_bool("stdout")?;
    let stderr = r.go_bool("stderr")?;
    if !stdout && !stderr {
        // Docker's words.
        return Err(ApiError::BadRequest(
            "Bad parameters: you must choose at least one stream".into(),
        ));
    }
    if r.param("until").is_some_and(|v| !v.is_empty()) {
        return Err(ApiError::BadRequest(
            "until: not supported for service and task logs".into(),
        ));
    }
    let tail = match r.param("tail").unwrap_or("") {
        "" | "all" => None,
        v => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            Ok(_) => None,
            Err(_) => {
                return Err(ApiError::BadRequest(format!(
                    "tail: {v:?} is not a number of lines or \"all\""
                )))
            }
        },
    };
    let since_ms = match r.param("since").filter(|v| !v.is_empty() && *v != "0") {
        Some(v) => Some(super::events::parse_time("since", v)?),
        None => None,
    };
    Ok(LogOptions {
        follow: r.go_bool("follow")?,
        stdout,
        stderr,
        timestamps: r.go_bool("timestamps")?,
        details: r.go_bool("details")?,
        tail,
        since_ms,
    })
}

/// Go's `RFC3339NanoFixed`, which Docker stamps lines with: always nine fraction digits.
pub fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

/// `url.QueryEscape`, which Docker applies to each detail's key and value.
fn query_escape(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One line as Docker writes it, or None when its stream or time is not wanted.
pub fn line(m: &LogMessage, service_id: &str, o: &LogOptions) -> Option<(u8, Vec<u8>)> {
    let stream = if m.stream() == LogStream::Stderr {
        if !o.stderr {
            return None;
        }
        2
    } else {
        if !o.stdout {
            return None;
        }
        1
    };
    if o.since_ms.is_some_and(|s| m.timestamp_ms < s) {
        return None;
    }
    let mut out = Vec::with_capacity(m.data.len() + 128);
    if o.timestamps {
        out.extend_from_slice(timestamp(m.timestamp_ms).as_bytes());
        out.push(b' ');
    }
    if o.details {
        // Sorted by key, as Docker sorts them.
        let attrs = [
            ("com.docker.swarm.node.id", m.node_id.as_str()),
            ("com.docker.swarm.service.id", service_id),
            ("com.docker.swarm.task.id", m.task_id.as_str()),
        ];
        let joined: Vec<String> = attrs
            .iter()
            .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
            .collect();
        out.extend_from_slice(joined.join(",").as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(&m.data);
    out.push(b'\n');
    Some((stream, out))
}

/// One frame of the multiplexed stream.
pub fn frame(stream: u8, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload[..len as usize]);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn opts(q: &str) -> Result<LogOptions, ApiError> {
        options(&Request::new(Some(q), bytes::Bytes::new()))
    }

    #[test]
    fn the_clis_query_reads() {
        let o = opts("details=1&follow=1&stderr=1&stdout=1&tail=all&timestamps=0").unwrap();
        assert!(o.follow && o.details && o.stdout && o.stderr && !o.timestamps);
        assert_eq!(o.tail, None);
        assert_eq!(opts("stdout=1&tail=5").unwrap().tail, Some(5));
        assert_eq!(
            opts("stdout=1&since=1700000000.25").unwrap().since_ms,
            Some(1_700_000_000_250)
        );
        for (q, field) in [
            ("tail=5", "Bad parameters"),
            ("stdout=1&tail=x", "tail:"),
            ("stdout=1&follow=maybe", "follow:"),
            ("stdout=1&since=yesterday", "since:"),
            ("stdout=1&until=5", "until:"),
        ] {
            let e = opts(q).unwrap_err();
            assert_eq!(e.status().as_u16(), 400);
            assert!(e.to_string().starts_with(field), "{q}: {e}");
        }
    }

    #[test]
    fn lines_carry_timestamp_details_and_stream_as_dockers() {
        let m = LogMessage {
            task_id: "t1".into(),
            node_id: "n1".into(),
            stream: LogStream::Stderr as i32,
            timestamp_ms: 1_700_000_000_123,
            data: b"hello".to_vec(),
            ..Default::default()
        };
        let all = opts("stdout=1&stderr=1&details=1&timestamps=1").unwrap();
        let (s, l) = line(&m, "s1", &all).unwrap();
        assert_eq!(s, 2);
        assert_eq!(
            String::from_utf8(l).unwrap(),
            "2023-11-14T22:13:20.123000000Z com.docker.swarm.node.id=n1,\
             com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 hello\n"
        );
        let plain = opts("stderr=1").unwrap();
        assert_eq!(line(&m, "s1", &plain).unwrap().1, b"hello\n");
        assert!(line(&m, "s1", &opts("stdout=1").unwrap()).is_none());
        let later = opts("stderr=1&since=1700000001").unwrap();
        assert!(line(&m, "s1", &later).is_none());
    }

    #[test]
    fn frames_have_dockers_header() {
        let mut out = Vec::new();
        frame(1, b"abc\n", &mut out);
        assert_eq!(out, [1, 0, 0, 0, 0, 0, 0, 4, b'a', b'b', b'c', b'\n']);
    }
}
