//! Statuses the manager acknowledged, kept so they can be sent again to the next leader.
//!
//! Why: a manager acknowledges a status report when it has queued it for its next store write,
//! not when the write is committed. If it dies in between, the new leader never hears of the
//! change (a task stays ASSIGNED in its store although it runs here), and nothing else would
//! report it again, since the task's state does not change any more. So when the session
//! moves to another manager session, every acknowledged status goes back in the queue; the
//! manager ignores those that do not move a task forward.
//!
//! Owns only that record; it must not decide states or send anything (the reporter does).

use std::collections::{HashMap, HashSet};
use swarm_api::state::is_terminal;
use swarm_api::{TaskState, TaskStatus};

#[derive(Default)]
pub(crate) struct Delivered {
    /// The newest acknowledged status per task.
    acked: HashMap<String, TaskStatus>,
    /// The session that acknowledged them.
    session: Option<String>,
    /// Final statuses already sent again once: forgotten when acknowledged a second time, so
    /// finished tasks do not accumulate here for the agent's lifetime.
    resent_final: HashSet<String>,
}

fn is_final(s: &TaskStatus) -> bool {
    is_terminal(TaskState::try_from(s.state).unwrap_or(TaskState::New))
}

impl Delivered {
    /// `session_id` acknowledged `status` for `task_id`.
    pub(crate) fn acked(&mut self, session_id: &str, task_id: &str, status: &TaskStatus) {
        if self.session.as_deref() != Some(session_id) {
            self.session = Some(session_id.to_string());
        }
        if is_final(status) && self.resent_final.remove(task_id) {
            self.acked.remove(task_id);
            return;
        }
        self.acked.insert(task_id.to_string(), status.clone());
    }

    /// When `session_id` is not the session that acknowledged what is recorded, hands every
    /// recorded status back to be sent again (and forgets them until acknowledged anew).
    pub(crate) fn take_for_new_session(&mut self, session_id: &str) -> Vec<(String, TaskStatus)> {
        if self.acked.is_empty() || self.session.as_deref() == Some(session_id) {
            return Vec::new();
        }
        self.session = Some(session_id.to_string());
        let out: Vec<(String, TaskStatus)> = self.acked.drain().collect();
        for (id, s) in &out {
            if is_final(s) {
                self.resent_final.insert(id.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(state: TaskState) -> TaskStatus {
        TaskStatus {
            state: state as i32,
            ..Default::default()
        }
    }

    /// Nothing is re-sent on the session that acknowledged it; all of it on the next one.
    #[test]
    fn a_new_session_gets_every_acknowledged_status_again() {
        let mut d = Delivered::default();
        d.acked("s1", "a", &st(TaskState::Running));
        d.acked("s1", "b", &st(TaskState::Starting));
        assert!(d.take_for_new_session("s1").is_empty());
        let mut again = d.take_for_new_session("s2");
        again.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(again.len(), 2);
        assert_eq!(again[0].1.state, TaskState::Running as i32);
        // Taken: a third session gets nothing until they are acknowledged again.
        assert!(d.take_for_new_session("s3").is_empty());
    }

    /// A finished task's status is sent to one more session, then forgotten.
    #[test]
    fn final_statuses_are_forgotten_after_one_resend() {
        let mut d = Delivered::default();
        d.acked("s1", "a", &st(TaskState::Complete));
        let again = d.take_for_new_session("s2");
        assert_eq!(again.len(), 1);
        d.acked("s2", "a", &st(TaskState::Complete));
        assert!(d.take_for_new_session("s3").is_empty());
    }
}
