//! One task's life on this node: the per-task state machine ACCEPTED → PREPARING → READY →
//! STARTING → RUNNING → COMPLETE | FAILED | SHUTDOWN, driven through an executor `Controller`;
//! or, for a task a previous run of the agent started, its adoption: from RUNNING on. A task
//! whose work has a healthcheck stays STARTING until the first passing check, and FAILS when
//! the check finds it unhealthy (the work is stopped); the checks run only while it runs.
//!
//! Owns its task's controller and the task's observed state as this node reports it. Told what
//! to do by the worker through a `watch` of `Directive`s; tells the manager what happened
//! through the reporter. Must not touch the task table or other tasks.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use swarm_api::state::can_advance;
use swarm_api::{now_ms, HealthState, Task, TaskState, TaskStatus, TaskStatusUpdate};
use tokio::sync::watch;

use crate::executor::{
    Adopted, Controller, Executor, ExecutorError, ExitStatus, Health, HealthChecks, Started,
};
use crate::reporter::StatusTx;

/// What the worker wants of a task right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Directive {
    /// The task's desired state from the latest assignment.
    Desired(TaskState),
    /// The task left this node's assignments: stop it without reporting, then clean up.
    Remove,
    /// The agent is shutting down: stop the task and report it.
    AgentShutdown,
    /// The agent is shutting down and the work outlives it (containers): leave running work
    /// alone for the next run to adopt; work not started yet is stopped as for `AgentShutdown`.
    Detach,
}

/// The message of a task reported lost after an agent restart.
pub(crate) const LOST_MESSAGE: &str = "task lost: agent restarted";

/// How a stop request is to be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Report(&'static str),
    Silent,
    /// Leave the work running, unreported (see `Directive::Detach`).
    Detach,
}

fn stop_of(d: Directive) -> Option<Stop> {
    match d {
        Directive::Desired(s) if (s as i32) > (TaskState::Running as i32) => {
            Some(Stop::Report("shutdown requested"))
        }
        Directive::Desired(_) => None,
        Directive::Remove => Some(Stop::Silent),
        Directive::AgentShutdown => Some(Stop::Report("agent shut down")),
        Directive::Detach => Some(Stop::Detach),
    }
}

/// Resolves when the directive asks the task to stop. A gone worker counts as a silent stop.
async fn stop_requested(rx: &mut watch::Receiver<Directive>) -> Stop {
    loop {
        if let Some(stop) = stop_of(*rx.borrow_and_update()) {
            return stop;
        }
        if rx.changed().await.is_err() {
            return Stop::Silent;
        }
    }
}

/// Resolves when the task may start (desired RUNNING), or with the stop that came first.
/// Desired READY means "prepare but do not start yet" (a start-first update's new task).
async fn start_allowed(rx: &mut watch::Receiver<Directive>) -> Result<(), Stop> {
    loop {
        let d = *rx.borrow_and_update();
        if let Some(stop) = stop_of(d) {
            return Err(stop);
        }
        if d == Directive::Desired(TaskState::Running) {
            return Ok(());
        }
        if rx.changed().await.is_err() {
            return Err(Stop::Silent);
        }
    }
}

/// Sends this task's status changes, forward only.
struct Reports {
    task_id: String,
    last: TaskState,
    tx: StatusTx,
    /// Carried in every status once known, so terminal states still name the container.
    container_id: String,
}

impl Reports {
    /// Starts from the state the manager last saw.
    fn new(task: &Task, tx: StatusTx) -> Reports {
        let last = task
            .status
            .as_ref()
            .and_then(|s| TaskState::try_from(s.state).ok())
            .unwrap_or(TaskState::Assigned);
        Reports {
            task_id: task.id.clone(),
            last,
            tx,
            container_id: String::new(),
        }
    }

    fn send(&mut self, state: TaskState, message: &str, fill: impl FnOnce(&mut TaskStatus)) {
        if !can_advance(self.last, state) {
            return;
        }
        self.last = state;
        let mut status = TaskStatus {
            timestamp: now_ms(),
            state: state as i32,
            message: message.to_string(),
            container_id: self.container_id.clone(),
            ..Default::default()
        };
        fill(&mut status);
        // The reporter outlives every runner; if it is gone the agent is going down anyway.
        let _ = self.tx.send(TaskStatusUpdate {
            task_id: self.task_id.clone(),
            status: Some(status),
        });
    }

    fn state(&mut self, state: TaskState, message: &str) {
        self.send(state, message, |_| {});
    }

    fn error(&mut self, state: TaskState, err: &ExecutorError) {
        let text = err.to_string();
        self.send(state, &text, |s| s.err = text.clone());
    }
}

/// The stop grace period of the task's spec; 0 means the default.
fn task_grace(task: &Task) -> Duration {
    let ms = task
        .spec
        .as_ref()
        .and_then(|s| s.container.as_ref())
        .map(|c| c.stop_grace_period_ms)
        .filter(|&ms| ms > 0)
        .unwrap_or(swarm_api::defaults::STOP_GRACE_PERIOD_MS);
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Runs the task to its end, then waits to be removed to free what the executor prepared.
pub(crate) async fn run(
    task: Task,
    ctl: Result<Box<dyn Controller>, ExecutorError>,
    mut directive: watch::Receiver<Directive>,
    tx: StatusTx,
) {
    let mut reports = Reports::new(&task, tx);
    let mut ctl = match ctl {
        Ok(ctl) => ctl,
        Err(e) => {
            reports.error(TaskState::Rejected, &e);
            return;
        }
    };
    reports.state(TaskState::Accepted, "accepted");
    let stopped = drive(&task, ctl.as_mut(), &mut directive, &mut reports).await;
    finish(&task, ctl, stopped, directive, reports).await;
}

/// Takes over a task the manager saw start on this node before the agent restarted: through
/// `Executor::adopt` when its work outlived the agent, else reports it lost (the orchestrator
/// replaces it; running it again here would double the replica).
pub(crate) async fn adopt(
    task: Task,
    executor: Arc<dyn Executor>,
    mut directive: watch::Receiver<Directive>,
    tx: StatusTx,
) {
    let mut reports = Reports::new(&task, tx);
    let lost = |why: String| ExecutorError::Failed(why);
    let Adopted {
        controller: mut ctl,
        started,
    } = match executor.adopt(&task).await {
        Ok(Some(adopted)) => adopted,
        Ok(None) => {
            reports.error(TaskState::Failed, &lost(LOST_MESSAGE.into()));
            return;
        }
        Err(e) => {
            reports.error(TaskState::Failed, &lost(format!("{LOST_MESSAGE}: {e}")));
            return;
        }
    };
    tracing::info!(task = %task.id, container = %started.container_id, "adopted a running task");
    reports.container_id = started.container_id.clone();
    let health = ctl.health();
    let work = Work {
        pid: started.pid,
        running: "adopted after an agent restart",
        health,
    };
    let stopped = supervise(
        task_grace(&task),
        ctl.as_mut(),
        &mut directive,
        &mut reports,
        work,
    )
    .await;
    finish(&task, ctl, stopped, directive, reports).await;
}

/// After the task's end: reports a requested stop, keeps what the task left until the manager
/// lets go of it, then frees it.
async fn finish(
    task: &Task,
    mut ctl: Box<dyn Controller>,
    stopped: Option<Stop>,
    mut directive: watch::Receiver<Directive>,
    mut reports: Reports,
) {
    match stopped {
        Some(Stop::Report(why)) => reports.state(TaskState::Shutdown, why),
        // Left running for the next run of the agent: nothing to report or free.
        Some(Stop::Detach) => return,
        Some(Stop::Silent) | None => {}
    }
    // Keep what the task left (logs, directory, container) until the manager lets go of it.
    if stopped != Some(Stop::Silent) {
        loop {
            match *directive.borrow_and_update() {
                Directive::Remove => break,
                Directive::AgentShutdown | Directive::Detach => return,
                Directive::Desired(_) => {}
            }
            if directive.changed().await.is_err() {
                return;
            }
        }
    }
    if *directive.borrow() == Directive::Remove {
        if let Err(e) = ctl.remove().await {
            tracing::warn!(task = %task.id, error = %e, "cleaning up a removed task failed");
        }
    }
}

/// The steps up to the task's end. Returns the stop that ended it, if one did; terminal
/// states other than SHUTDOWN are reported here.
async fn drive(
    task: &Task,
    ctl: &mut dyn Controller,
    directive: &mut watch::Receiver<Directive>,
    reports: &mut Reports,
) -> Option<Stop> {
    reports.state(TaskState::Preparing, "preparing");
    // Preparing may be slow (an image pull): a stop request cuts it short.
    let prepared = tokio::select! {
        stop = stop_requested(directive) => return Some(not_started(stop)),
        r = ctl.prepare() => r,
    };
    if let Err(e) = prepared {
        let state = if e.is_rejection() {
            TaskState::Rejected
        } else {
            TaskState::Failed
        };
        reports.error(state, &e);
        return None;
    }
    reports.state(TaskState::Ready, "prepared");
    if let Err(stop) = start_allowed(directive).await {
        return Some(not_started(stop));
    }
    let health = ctl.health();
    let checked = health.is_some();
    reports.send(TaskState::Starting, "starting", |s| {
        if checked {
            s.health = HealthState::Starting as i32;
        }
    });
    // Start is not raced with stop: a half-started task would be left unknown.
    let Started { pid, container_id } = match ctl.start().await {
        Ok(started) => started,
        Err(e) => {
            reports.error(TaskState::Failed, &e);
            return None;
        }
    };
    reports.container_id = container_id;
    let work = Work {
        pid,
        running: "started",
        health,
    };
    supervise(task_grace(task), ctl, directive, reports, work).await
}

/// Started work as `supervise` watches it.
struct Work {
    pid: u32,
    /// The message of its RUNNING status.
    running: &'static str,
    /// Its healthcheck: RUNNING waits for the first passing check.
    health: Option<HealthChecks>,
}

/// How supervised work ended.
enum End {
    Exited(Result<ExitStatus, ExecutorError>),
    Stopped(Stop),
    Unhealthy(String),
}

/// The next verdict of the healthcheck; never, without one (or once it has ended).
async fn next_health(health: &mut Option<HealthChecks>) -> Option<Health> {
    match health.as_mut() {
        Some(checks) => checks.next().await,
        None => std::future::pending().await,
    }
}

/// Watches the work until it exits, is asked to stop, or its healthcheck finds it unhealthy,
/// reporting RUNNING when it runs (at once, or at the first passing check).
async fn watch_work(
    ctl: &mut dyn Controller,
    directive: &mut watch::Receiver<Directive>,
    reports: &mut Reports,
    work: &mut Work,
) -> End {
    let pid = work.pid;
    let running = |reports: &mut Reports, health: HealthState| {
        reports.send(TaskState::Running, work.running, |s| {
            s.pid = pid;
            s.health = health as i32;
        });
    };
    if work.health.is_none() {
        running(reports, HealthState::None);
    }
    // One wait for the whole watch (kept across verdicts); the checks are polled beside it.
    let mut wait = ctl.wait();
    loop {
        tokio::select! {
            r = &mut wait => return End::Exited(r),
            stop = stop_requested(directive) => return End::Stopped(stop),
            verdict = next_health(&mut work.health) => match verdict {
                Some(Health::Healthy) => running(reports, HealthState::Healthy),
                Some(Health::Unhealthy(why)) => return End::Unhealthy(why),
                // The checks ended without a verdict (the work is going): its exit tells.
                None => work.health = None,
            },
        }
    }
}

/// A stop that came before the work started: there is nothing to leave running, so a detach
/// is an ordinary, reported shutdown.
fn not_started(stop: Stop) -> Stop {
    match stop {
        Stop::Detach => Stop::Report("agent shut down"),
        other => other,
    }
}

/// Watches started work to its end, stopping it when asked (unless asked to leave it
/// running) or when its healthcheck finds it unhealthy. Returns the stop that ended it, if one
/// did; reports COMPLETE or FAILED otherwise. The healthcheck ends with it.
async fn supervise(
    grace: Duration,
    ctl: &mut dyn Controller,
    directive: &mut watch::Receiver<Directive>,
    reports: &mut Reports,
    mut work: Work,
) -> Option<Stop> {
    let end = watch_work(ctl, directive, reports, &mut work).await;
    // No check runs past this point, whatever comes next.
    drop(work.health.take());
    let pid = work.pid;
    let exit = match end {
        End::Exited(r) => r,
        End::Stopped(Stop::Detach) => return Some(Stop::Detach),
        End::Stopped(stop) => {
            if let Err(e) = ctl.stop(grace).await {
                tracing::warn!(task = %reports.task_id, error = %e, "stopping the task failed");
            }
            let _ = ctl.wait().await;
            return Some(stop);
        }
        End::Unhealthy(why) => {
            tracing::info!(task = %reports.task_id, reason = %why, "stopping an unhealthy task");
            if let Err(e) = ctl.stop(grace).await {
                tracing::warn!(task = %reports.task_id, error = %e, "stopping the task failed");
            }
            let exit = ctl.wait().await.ok();
            let text = format!("unhealthy: {why}");
            reports.send(TaskState::Failed, &text, |s| {
                s.err = text.clone();
                s.health = HealthState::Unhealthy as i32;
                s.exit_code = exit.map_or(0, ExitStatus::code);
                s.pid = pid;
            });
            return None;
        }
    };
    match exit {
        Ok(exit) if exit.success() => reports.send(TaskState::Complete, "finished", |s| {
            s.pid = pid;
        }),
        Ok(exit) => {
            let text = match exit {
                ExitStatus::Code(c) => format!("exit code {c}"),
                ExitStatus::Signal(s) => format!("exit code {} (killed by signal {s})", 128 + s),
            };
            reports.send(TaskState::Failed, &text, |s| {
                s.err = text.clone();
                s.exit_code = exit.code();
                s.pid = pid;
            });
        }
        Err(e) => reports.error(TaskState::Failed, &e),
    }
    None
}

#[cfg(test)]
mod tests {
    //! The state machine driven through the real `process` and `sim` executors.

    use super::*;
    use crate::executor::process::ProcessExecutor;
    use crate::executor::sim::SimExecutor;
    use crate::executor::Executor;
    use swarm_api::{ContainerSpec, HealthState, TaskSpec};
    use tokio::sync::mpsc;

    fn task(command: &[&str], env: &[&str]) -> Task {
        Task {
            id: swarm_api::ids::new_id(),
            spec: Some(
                TaskSpec {
                    container: Some(ContainerSpec {
                        image: "busybox".into(),
                        command: command.iter().map(|s| s.to_string()).collect(),
                        env: env.iter().map(|s| s.to_string()).collect(),
                        stop_grace_period_ms: 2_000,
                        ..Default::default()
                    }),
                    ..Default::default()
                }
                .into(),
            ),
            desired_state: TaskState::Running as i32,
            ..Default::default()
        }
    }

    struct Running {
        statuses: mpsc::UnboundedReceiver<TaskStatusUpdate>,
        directive: watch::Sender<Directive>,
        handle: tokio::task::JoinHandle<()>,
    }

    fn spawn(executor: &dyn Executor, task: Task) -> Running {
        let (tx, statuses) = mpsc::unbounded_channel();
        let (directive, rx) = watch::channel(Directive::Desired(TaskState::Running));
        let ctl = executor.controller(&task);
        // Owned by the runner's `Running` entry, which awaits the handle when the task ends.
        #[allow(clippy::disallowed_methods)]
        let handle = tokio::spawn(run(task, ctl, rx, tx));
        Running {
            statuses,
            directive,
            handle,
        }
    }

    impl Running {
        /// Statuses up to and including the first one in `until` (or any terminal one).
        async fn until(&mut self, until: TaskState) -> Vec<TaskStatus> {
            let mut seen = Vec::new();
            loop {
                let u = tokio::time::timeout(Duration::from_secs(10), self.statuses.recv())
                    .await
                    .expect("a status within 10 s")
                    .expect("runner alive");
                let s = u.status.expect("status set");
                let done = s.state() == until || swarm_api::state::is_terminal(s.state());
                seen.push(s);
                if done {
                    return seen;
                }
            }
        }

        async fn remove(self) {
            self.directive.send_replace(Directive::Remove);
            self.handle.await.expect("runner finished");
        }
    }

    fn states(s: &[TaskStatus]) -> Vec<TaskState> {
        s.iter().map(|s| s.state()).collect()
    }

    fn proc_alive(pid: u32) -> bool {
        // A zombie is dead for our purpose: it only waits for its parent to reap it.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn true_goes_through_every_state_to_complete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ex = ProcessExecutor::new(dir.path(), "test", None);
        let mut r = spawn(&ex, task(&["true"], &[]));
        let seen = r.until(TaskState::Complete).await;
        assert_eq!(
            states(&seen),
            vec![
                TaskState::Accepted,
                TaskState::Preparing,
                TaskState::Ready,
                TaskState::Starting,
                TaskState::Running,
                TaskState::Complete
            ]
        );
        assert!(seen[4].pid > 0, "RUNNING carries the pid");
        assert!(seen.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        r.remove().await;
    }

    #[tokio::test]
    async fn exit_code_3_fails_with_exit_code() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ex = ProcessExecutor::new(dir.path(), "test", None);
        let mut r = spawn(&ex, task(&["sh", "-c", "exit 3"], &[]));
        let last = r.until(TaskState::Failed).await.pop().expect("a status");
        assert_eq!(last.state(), TaskState::Failed);
        assert_eq!(last.exit_code, 3);
        assert_eq!(last.message, "exit code 3");
        r.remove().await;
    }

    #[tokio::test]
    async fn missing_program_fails_with_the_os_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ex = ProcessExecutor::new(dir.path(), "test", None);
        let mut r = spawn(&ex, task(&["/nonexistent/swarm-no-such-program"], &[]));
        let last = r.until(TaskState::Failed).await.pop().expect("a status");
        assert_eq!(last.state(), TaskState::Failed);
        assert!(
            last.message.contains("No such file or directory"),
            "{}",
            last.message
        );
        assert_eq!(last.err, last.message);
        r.remove().await;
    }

    #[tokio::test]
    async fn env_and_working_directory_reach_the_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ex = ProcessExecutor::new(dir.path(), "test", None);
        let t = task(
            &["sh", "-c", "test \"$GREETING\" = hi && test -f stdout.log"],
            &["GREETING=hi"],
        );
        let mut r = spawn(&ex, t);
        let last = r.until(TaskState::Complete).await.pop().expect("a status");
        assert_eq!(last.state(), TaskState::Complete, "{}", last.message);
        r.remove().await;
    }

    #[tokio::test]
    async fn shutdown_request_stops_sleep_and_reports_shutdown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ex = ProcessExecutor::new(dir.path(), "test", None);
        let t = task(&["sleep", "30"], &[]);
        let task_dir = dir.path().join("tasks").join(&t.id);
        let mut r = spawn(&ex, t);
        let running = r.until(TaskState::Running).await.pop().expect("a status");
        assert_eq!(running.state(), TaskState::Running);
        assert!(proc_alive(running.pid));
        r.directive
            .send_replace(Directive::Desired(TaskState::Shutdown));
        let last = r.until(TaskState::Shutdown).await.pop().expect("a status");
        assert_eq!(last.state(), TaskState::Shutdown);
        assert!(!proc_alive(running.pid), "pid {} still alive", running.pid);
        assert!(task_dir.exists(), "kept until removed");
        r.remove().await;
        assert!(!task_dir.exists(), "removed with the task");
    }

    #[tokio::test]
    async fn only_image_runs_a_placeholder_until_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ex = ProcessExecutor::new(dir.path(), "test", None);
        let mut r = spawn(&ex, task(&[], &[]));
        let running = r.until(TaskState::Running).await.pop().expect("a status");
        assert_eq!(running.state(), TaskState::Running);
        r.directive.send_replace(Directive::AgentShutdown);
        let last = r.until(TaskState::Shutdown).await.pop().expect("a status");
        assert_eq!(last.state(), TaskState::Shutdown);
        assert!(!proc_alive(running.pid));
        r.handle.await.expect("runner finished");
    }

    fn with_check(mut t: Task, test: &[&str], interval_ms: i64, retries: i32) -> Task {
        if let Some(c) = t.spec.as_mut().and_then(|s| s.container.as_mut()) {
            c.healthcheck = Some(swarm_api::HealthCheck {
                test: test.iter().map(|s| s.to_string()).collect(),
                interval_ns: interval_ms * 1_000_000,
                timeout_ns: 2_000_000_000,
                start_period_ns: 0,
                retries,
            });
        }
        t
    }

    #[tokio::test]
    async fn a_health_cmd_holds_the_task_starting_until_it_passes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ex = ProcessExecutor::new(dir.path(), "test", None);
        let t = with_check(
            task(&["sleep", "30"], &[]),
            &["CMD-SHELL", "test -f ready"],
            100,
            1_000,
        );
        let ready = dir.path().join("tasks").join(&t.id).join("ready");
        let mut r = spawn(&ex, t);
        let starting = r.until(TaskState::Starting).await.pop().expect("a status");
        assert_eq!(starting.state(), TaskState::Starting);
        assert_eq!(starting.health(), HealthState::Starting);
        // Several failed checks later, still STARTING (and not failed: retries are many).
        let early = tokio::time::timeout(Duration::from_millis(600), r.statuses.recv()).await;
        assert!(
            early.is_err(),
            "nothing past STARTING while the check fails"
        );
        std::fs::write(&ready, "").expect("marker");
        let running = r.until(TaskState::Running).await.pop().expect("a status");
        assert_eq!(running.state(), TaskState::Running);
        assert_eq!(running.health(), HealthState::Healthy);
        assert!(proc_alive(running.pid));
        r.remove().await;
    }

    #[tokio::test]
    async fn a_check_that_always_fails_fails_the_task_after_the_retries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ex = ProcessExecutor::new(dir.path(), "test", None);
        let t = with_check(
            task(&["sleep", "30"], &[]),
            &["CMD-SHELL", "echo not yet; exit 3"],
            50,
            3,
        );
        let mut r = spawn(&ex, t);
        let seen = r.until(TaskState::Failed).await;
        assert!(!states(&seen).contains(&TaskState::Running), "{seen:?}");
        let last = seen.last().expect("a status");
        assert_eq!(last.state(), TaskState::Failed);
        assert_eq!(last.health(), HealthState::Unhealthy);
        assert_eq!(
            last.err,
            "unhealthy: 3 failed health checks in a row, the last: exit code 3: not yet"
        );
        assert!(
            last.pid > 0 && !proc_alive(last.pid),
            "the task was stopped"
        );
        r.remove().await;
    }

    #[tokio::test]
    async fn the_checks_stop_with_the_task() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ex = ProcessExecutor::new(dir.path(), "test", None);
        let log = dir.path().join("checks");
        let t = with_check(
            task(&["sleep", "30"], &[]),
            &["CMD", "sh", "-c", &format!("echo x >> {}", log.display())],
            50,
            3,
        );
        let mut r = spawn(&ex, t);
        let running = r.until(TaskState::Running).await.pop().expect("a status");
        assert_eq!(running.health(), HealthState::Healthy);
        r.directive
            .send_replace(Directive::Desired(TaskState::Shutdown));
        let last = r.until(TaskState::Shutdown).await.pop().expect("a status");
        assert_eq!(last.state(), TaskState::Shutdown);
        let count = || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .count()
        };
        let after_stop = count();
        assert!(after_stop >= 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(count(), after_stop, "no check ran after the task stopped");
        r.remove().await;
    }

    #[tokio::test]
    async fn desired_ready_prepares_without_starting() {
        let ex = SimExecutor::new(Duration::ZERO);
        let mut r = spawn(&ex, task(&[], &[]));
        r.directive
            .send_replace(Directive::Desired(TaskState::Ready));
        let seen = r.until(TaskState::Ready).await;
        assert_eq!(seen.last().map(|s| s.state()), Some(TaskState::Ready));
        let early = tokio::time::timeout(Duration::from_millis(200), r.statuses.recv()).await;
        assert!(early.is_err(), "nothing past READY until desired RUNNING");
        r.directive
            .send_replace(Directive::Desired(TaskState::Running));
        let last = r.until(TaskState::Running).await.pop().expect("a status");
        assert_eq!(last.state(), TaskState::Running);
        r.remove().await;
    }

    #[tokio::test]
    async fn sim_runs_after_its_delay_and_can_be_told_to_fail() {
        let ex = SimExecutor::new(Duration::from_millis(100));
        let started = tokio::time::Instant::now();
        let mut r = spawn(&ex, task(&[], &["SIM_FAIL_AFTER_MS=100"]));
        let running = r.until(TaskState::Running).await.pop().expect("a status");
        assert_eq!(running.state(), TaskState::Running);
        assert!(started.elapsed() >= Duration::from_millis(100));
        let last = r.until(TaskState::Failed).await.pop().expect("a status");
        assert_eq!(last.state(), TaskState::Failed);
        assert_eq!(last.exit_code, 1);
        r.remove().await;
    }
}
