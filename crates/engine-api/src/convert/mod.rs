//! Translation between our objects (swarm-api protos) and Docker's JSON shapes: times, enum
//! names and units here; service specs in `spec` (the container part in `container`, the
//! warnings in `warnings`, `insertDefaults` in `defaults`), whole objects in `objects`,
//! networks and their create request in `networks`, secrets and configs in `payloads`, log lines in `logs`, events in `events`, a node's TLS section in `tls`. Pure
//! functions: nothing here calls the control API or touches the network.

mod container;
pub mod defaults;
pub mod event_changes;
pub mod events;
pub mod logs;
pub mod networks;
pub mod objects;
pub mod payloads;
pub mod ports;
pub mod spec;
pub mod tls;
mod warnings;

use swarm_api::{NodeAvailability, NodeRole, NodeState, Reachability, TaskState, UpdateState};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Go's zero `time.Time`, which Docker prints for times never set.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Unix milliseconds as RFC 3339 (UTC); 0 (never set) as Go's zero time.
pub fn rfc3339(ms: i64) -> String {
    if ms == 0 {
        return ZERO_TIME.to_string();
    }
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ZERO_TIME.to_string())
}

/// Milliseconds (ours) to nanoseconds (Go's `time.Duration`), saturating.
pub fn ms_to_ns(ms: i64) -> i64 {
    ms.saturating_mul(1_000_000)
}

/// A Docker duration (nanoseconds, not negative) as our milliseconds plus the nanoseconds
/// below the millisecond, which are stored beside them so the duration reads back exactly.
pub fn split_ns(ns: i64) -> (i64, i32) {
    (ns / 1_000_000, (ns % 1_000_000) as i32)
}

/// Milliseconds and the nanoseconds below them as one Docker duration, saturating.
pub fn join_ns(ms: i64, extra_ns: i32) -> i64 {
    ms_to_ns(ms).saturating_add(i64::from(extra_ns))
}

pub fn task_state_name(v: i32) -> &'static str {
    match TaskState::try_from(v).unwrap_or(TaskState::New) {
        TaskState::New => "new",
        TaskState::Pending => "pending",
        TaskState::Assigned => "assigned",
        TaskState::Accepted => "accepted",
        TaskState::Preparing => "preparing",
        TaskState::Ready => "ready",
        TaskState::Starting => "starting",
        TaskState::Running => "running",
        TaskState::Complete => "complete",
        TaskState::Shutdown => "shutdown",
        TaskState::Failed => "failed",
        TaskState::Rejected => "rejected",
        TaskState::Remove => "remove",
        TaskState::Orphaned => "orphaned",
    }
}

/// The task state a Docker name (any case, as the `desired-state` filter takes it) means.
pub fn task_state_from_name(name: &str) -> Option<TaskState> {
    let all = swarm_api::state::ALL_TASK_STATES;
    let lower = name.to_ascii_lowercase();
    all.into_iter()
        .find(|s| task_state_name(*s as i32) == lower)
}

pub fn node_state_name(v: i32) -> &'static str {
    match NodeState::try_from(v).unwrap_or(NodeState::Unknown) {
        NodeState::Unknown => "unknown",
        NodeState::Down => "down",
        NodeState::Ready => "ready",
        NodeState::Disconnected => "disconnected",
    }
}

pub fn role_name(v: i32) -> &'static str {
    match NodeRole::try_from(v).unwrap_or(NodeRole::Worker) {
        NodeRole::Worker => "worker",
        NodeRole::Manager => "manager",
    }
}

pub fn role_from_name(name: &str) -> Option<NodeRole> {
    match name {
        "worker" => Some(NodeRole::Worker),
        "manager" => Some(NodeRole::Manager),
        _ => None,
    }
}

pub fn availability_name(v: i32) -> &'static str {
    match NodeAvailability::try_from(v).unwrap_or(NodeAvailability::Active) {
        NodeAvailability::Active => "active",
        NodeAvailability::Pause => "pause",
        NodeAvailability::Drain => "drain",
    }
}

pub fn availability_from_name(name: &str) -> Option<NodeAvailability> {
    match name {
        "active" => Some(NodeAvailability::Active),
        "pause" => Some(NodeAvailability::Pause),
        "drain" => Some(NodeAvailability::Drain),
        _ => None,
    }
}

pub fn reachability_name(v: i32) -> &'static str {
    match Reachability::try_from(v).unwrap_or(Reachability::Unknown) {
        Reachability::Unknown => "unknown",
        Reachability::Unreachable => "unreachable",
        Reachability::Reachable => "reachable",
    }
}

/// Docker has no "unknown" update state: the caller leaves the status out instead.
pub fn update_state_name(v: i32) -> Option<&'static str> {
    match UpdateState::try_from(v).unwrap_or(UpdateState::Unknown) {
        UpdateState::Unknown => None,
        UpdateState::Updating => Some("updating"),
        UpdateState::Paused => Some("paused"),
        UpdateState::Completed => Some("completed"),
        UpdateState::RollbackStarted => Some("rollback_started"),
        UpdateState::RollbackPaused => Some("rollback_paused"),
        UpdateState::RollbackCompleted => Some("rollback_completed"),
    }
}

/// An address without its port: Docker reports a node's status address as a bare IP.
pub fn host_of(addr: &str) -> String {
    match addr.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        _ => addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_and_zero_is_gos_zero() {
        assert_eq!(rfc3339(0), ZERO_TIME);
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn task_state_names_round_trip() {
        for s in ["new", "running", "shutdown", "orphaned"] {
            let st = task_state_from_name(&s.to_uppercase()).expect(s);
            assert_eq!(task_state_name(st as i32), s);
        }
        assert!(task_state_from_name("sleeping").is_none());
    }

    #[test]
    fn durations_keep_their_nanoseconds() {
        for ns in [0, 1, 999_999, 1_000_000, 1_500_000_001, 90 * 1_000_000_000] {
            let (ms, extra) = split_ns(ns);
            assert_eq!(join_ns(ms, extra), ns);
        }
        assert_eq!(split_ns(2_000_000_500), (2_000, 500));
    }

    #[test]
    fn status_address_loses_its_port() {
        assert_eq!(host_of("10.0.0.1:4242"), "10.0.0.1");
        assert_eq!(host_of("[::1]:4242"), "::1");
        assert_eq!(host_of("host"), "host");
    }
}
