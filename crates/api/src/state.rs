//! Task-state ordering and names as the CLI prints them.

use crate::v1::{NodeAvailability, NodeState, Task, TaskState};

/// Every task state, in order.
pub const ALL_TASK_STATES: [TaskState; 14] = [
    TaskState::New,
    TaskState::Pending,
    TaskState::Assigned,
    TaskState::Accepted,
    TaskState::Preparing,
    TaskState::Ready,
    TaskState::Starting,
    TaskState::Running,
    TaskState::Complete,
    TaskState::Shutdown,
    TaskState::Failed,
    TaskState::Rejected,
    TaskState::Remove,
    TaskState::Orphaned,
];

/// The states a task goes through up to RUNNING, in order.
pub const UP_TO_RUNNING: [TaskState; 8] = [
    TaskState::New,
    TaskState::Pending,
    TaskState::Assigned,
    TaskState::Accepted,
    TaskState::Preparing,
    TaskState::Ready,
    TaskState::Starting,
    TaskState::Running,
];

/// A task's observed state; NEW when it has no status, or one this build does not know.
pub fn observed(t: &Task) -> TaskState {
    t.status
        .as_ref()
        .and_then(|s| TaskState::try_from(s.state).ok())
        .unwrap_or(TaskState::New)
}

/// A task's observed state as its number, NEW when it has no status; a state this build does
/// not know keeps its place in the order (for comparisons that must not lose it).
pub fn observed_number(t: &Task) -> i32 {
    t.status.as_ref().map_or(TaskState::New as i32, |s| s.state)
}

/// States only move forward: an update to an earlier state is ignored.
pub fn can_advance(from: TaskState, to: TaskState) -> bool {
    (to as i32) > (from as i32)
}

/// A task in this observed state will not run again.
pub fn is_terminal(s: TaskState) -> bool {
    (s as i32) > (TaskState::Running as i32)
}

/// Upper-case state name as the walkthrough's tables show it ("RUNNING").
pub fn task_state_name(s: TaskState) -> &'static str {
    match s {
        TaskState::New => "NEW",
        TaskState::Pending => "PENDING",
        TaskState::Assigned => "ASSIGNED",
        TaskState::Accepted => "ACCEPTED",
        TaskState::Preparing => "PREPARING",
        TaskState::Ready => "READY",
        TaskState::Starting => "STARTING",
        TaskState::Running => "RUNNING",
        TaskState::Complete => "COMPLETE",
        TaskState::Shutdown => "SHUTDOWN",
        TaskState::Failed => "FAILED",
        TaskState::Rejected => "REJECTED",
        TaskState::Remove => "REMOVE",
        TaskState::Orphaned => "ORPHANED",
    }
}

pub fn node_state_name(s: NodeState) -> &'static str {
    match s {
        NodeState::Unknown => "UNKNOWN",
        NodeState::Down => "DOWN",
        NodeState::Ready => "READY",
        NodeState::Disconnected => "DISCONNECTED",
    }
}

pub fn availability_name(a: NodeAvailability) -> &'static str {
    match a {
        NodeAvailability::Active => "ACTIVE",
        NodeAvailability::Pause => "PAUSE",
        NodeAvailability::Drain => "DRAIN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_matches_lifecycle() {
        assert!(can_advance(TaskState::New, TaskState::Pending));
        assert!(can_advance(TaskState::Running, TaskState::Failed));
        assert!(!can_advance(TaskState::Failed, TaskState::Running));
        assert!(!can_advance(TaskState::Running, TaskState::Running));
        assert!(is_terminal(TaskState::Complete));
        assert!(!is_terminal(TaskState::Running));
    }
}
