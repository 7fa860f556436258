//! The cluster under test: managers and workers as real `swarmd` processes on test hosts
//! (network namespaces, `swarm_testkit::process::netns`), and the faults done to it. Owns the
//! processes, the namespaces and the temporary directory, and removes them all when dropped
//! (also on an error or a panic); it must not issue workload operations. Each manager's state
//! dir is a small tmpfs ([`SmallDisk`]) so that its disk can fill; `--keep` keeps the nodes'
//! logs, not those state dirs.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use swarm_bench::nemesis::schedule::{FaultKind, Planned};
use swarm_raft::TEAR_LOG_WRITE_ENV;
use swarm_testkit::process::netns::Mesh;
use swarm_testkit::process::small_disk::SmallDisk;
use swarm_testkit::process::{self, swarm, Ctl, Node};

pub struct Cluster {
    pub managers: Vec<Node>,
    pub workers: Vec<Node>,
    pub sockets: Vec<PathBuf>,
    mesh: Mesh,
    /// Dropped (unmounted) before `root` is removed.
    disks: Vec<SmallDisk>,
    /// Managers whose disk was filled by the fault in force or just healed: one that stops
    /// now stopped on its full disk, and is started again as its supervisor would.
    filled: Vec<bool>,
    root: tempfile::TempDir,
}

/// A manager's state dir: room for a long run's log and snapshots, small enough to fill fast.
const MANAGER_DISK_MIB: u64 = 256;

/// A fault in force, and what undoes it.
pub struct Injected {
    pub kind: FaultKind,
    pub target: String,
    undo: Undo,
}

enum Undo {
    Restart(Vec<usize>),
    Continue(usize),
    Heal(usize),
    /// Free the manager's disk, and start it again if it stopped.
    Free(usize),
    /// Promote the (demoted) manager back.
    Promote(usize),
    /// Wait for the armed manager to die of its torn write, then start it unarmed.
    Torn(usize),
}

/// How long an armed manager is given, past the hold, to reach the write it tears.
const TEAR_PATIENCE: Duration = Duration::from_secs(20);

/// The armed write is drawn from `1..=TEAR_WRITES`: from its first start-up writes to a
/// second or so of the workload's appends (a commit is about seven writes).
const TEAR_WRITES: u64 = 300;

impl Cluster {
    /// `keep`: leave the state directory (with every node's log) in place, for a post-mortem.
    pub fn start(managers: usize, workers: usize, keep: bool) -> Result<Cluster> {
        if managers == 0 {
            bail!("--managers must be at least 1");
        }
        let mesh = Mesh::new(managers + workers)
            .map_err(|e| anyhow::anyhow!("test hosts (network namespaces; run as root): {e}"))?;
        let root = tempfile::Builder::new()
            .prefix("nemesis-")
            .disable_cleanup(keep)
            .tempdir()
            .context("temporary directory")?;
        let disks = (0..managers)
            .map(|i| {
                SmallDisk::mount(
                    &root.path().join(Cluster::manager_name(i)),
                    MANAGER_DISK_MIB,
                )
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| anyhow::anyhow!("a manager's small disk: {e}"))?;
        let (ms, sockets) = swarm::start_managers(&mesh, root.path(), managers);
        let ctl = Ctl {
            socket: sockets[0].clone(),
        };
        let ws = swarm::start_workers(&mesh, root.path(), managers, workers, &ctl, "process");
        Ok(Cluster {
            managers: ms,
            workers: ws,
            sockets,
            mesh,
            disks,
            filled: vec![false; managers],
            root,
        })
    }

    pub fn manager_name(i: usize) -> String {
        format!("m{}", i + 1)
    }

    /// The manager index of hostname `mN`.
    pub fn manager_index(name: &str) -> Option<usize> {
        name.strip_prefix('m')?
            .parse::<usize>()
            .ok()?
            .checked_sub(1)
    }

    /// Injects `plan`; `leader` is who leads now, if known.
    pub fn inject(&mut self, plan: &Planned, leader: Option<usize>) -> Result<Injected> {
        self.filled.fill(false);
        let n = self.managers.len();
        let leader_or_any = leader.unwrap_or((plan.pick % n as u64) as usize);
        let follower = {
            let others: Vec<usize> = (0..n).filter(|i| Some(*i) != leader).collect();
            others
                .get((plan.pick % others.len().max(1) as u64) as usize)
                .copied()
                .unwrap_or(0)
        };
        let name = Cluster::manager_name;
        let (target, undo) = match plan.kind {
            FaultKind::KillLeader | FaultKind::KillFollower => {
                let i = if plan.kind == FaultKind::KillLeader {
                    leader_or_any
                } else {
                    follower
                };
                self.managers[i].kill9();
                (name(i), Undo::Restart(vec![i]))
            }
            FaultKind::PauseLeader | FaultKind::PauseFollower => {
                let i = if plan.kind == FaultKind::PauseLeader {
                    leader_or_any
                } else {
                    follower
                };
                self.signal(i, Signal::SIGSTOP)?;
                (name(i), Undo::Continue(i))
            }
            FaultKind::IsolateLeader | FaultKind::IsolateFollower => {
                let i = if plan.kind == FaultKind::IsolateLeader {
                    leader_or_any
                } else {
                    follower
                };
                self.mesh.isolate(i + 1);
                (name(i), Undo::Heal(i))
            }
            FaultKind::OneWay => {
                let i = (plan.pick % n as u64) as usize;
                let j = (i + 1 + (plan.pick2 % (n as u64 - 1).max(1)) as usize) % n;
                if i == j {
                    bail!("a one-way cut needs two managers");
                }
                self.mesh
                    .drop_from(i + 1, j + 1)
                    .map_err(|e| anyhow::anyhow!("one-way cut: {e}"))?;
                (format!("{}<-{}", name(i), name(j)), Undo::Heal(i))
            }
            FaultKind::RestartAll => {
                for m in &mut self.managers {
                    m.kill9();
                }
                ("all".to_string(), Undo::Restart((0..n).collect()))
            }
            FaultKind::DiskFull => {
                let i = (plan.pick % n as u64) as usize;
                self.disks[i]
                    .fill()
                    .map_err(|e| anyhow::anyhow!("filling {}'s disk: {e}", name(i)))?;
                self.filled[i] = true;
                (name(i), Undo::Free(i))
            }
            FaultKind::Demote => {
                let i = if plan.pick2.is_multiple_of(2) {
                    leader_or_any
                } else {
                    follower
                };
                // A refusal (the last manager; quorum would be lost) is an outcome too.
                let target = match self.role_change(i, "demote") {
                    Ok(()) => name(i),
                    Err(why) => format!("{} (refused: {why})", name(i)),
                };
                (target, Undo::Promote(i))
            }
            FaultKind::TornWrite => {
                let i = (plan.pick % n as u64) as usize;
                let write = 1 + plan.pick2 % TEAR_WRITES;
                let m = &mut self.managers[i];
                m.kill9();
                m.env_once = vec![(TEAR_LOG_WRITE_ENV.to_string(), write.to_string())];
                m.spawn();
                (format!("{} (write {write})", name(i)), Undo::Torn(i))
            }
        };
        Ok(Injected {
            kind: plan.kind,
            target,
            undo,
        })
    }

    /// Undoes the fault; a torn write's outcome is added to its target.
    pub fn heal(&mut self, f: &mut Injected) -> Result<()> {
        match &f.undo {
            Undo::Restart(who) => {
                for &i in who {
                    self.managers[i].spawn();
                }
            }
            Undo::Continue(i) => self.signal(*i, Signal::SIGCONT)?,
            Undo::Heal(i) => self.mesh.heal(i + 1),
            Undo::Free(i) => {
                self.disks[*i].free();
                self.restart_stopped_on_full_disk();
            }
            Undo::Promote(i) => {
                // Through whichever manager answers: the demoted leader's successor may
                // still be being elected. What does not come back shows in convergence.
                let deadline = Instant::now() + Duration::from_secs(30);
                while let Err(why) = self.role_change(*i, "promote") {
                    if Instant::now() > deadline {
                        eprintln!("m{}: promoting it back failed for 30 s: {why}", i + 1);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
            Undo::Torn(i) => {
                let outcome = self.await_tear(*i);
                f.target.push_str(&format!(": {outcome}"));
                self.managers[*i].spawn();
            }
        }
        Ok(())
    }

    /// Waits for armed manager `i` to die of its torn write (SIGKILL, which nothing else
    /// sends it now), or kills it after [`TEAR_PATIENCE`]; says which.
    fn await_tear(&mut self, i: usize) -> String {
        let m = &mut self.managers[i];
        let deadline = Instant::now() + TEAR_PATIENCE;
        loop {
            if let Some(status) = m.exited() {
                return match status.signal() {
                    Some(9) => "torn".to_string(),
                    _ => format!("stopped otherwise ({status})"),
                };
            }
            if Instant::now() > deadline {
                m.kill9();
                return format!("not torn within {TEAR_PATIENCE:?}; killed");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `swarmctl node demote|promote mN` through the first other manager that accepts it;
    /// the last refusal otherwise.
    fn role_change(&self, i: usize, verb: &str) -> Result<(), String> {
        let name = Cluster::manager_name(i);
        let mut why = String::from("no other manager");
        for (j, socket) in self.sockets.iter().enumerate() {
            if j == i {
                continue;
            }
            let out = Ctl {
                socket: socket.clone(),
            }
            .run(&["node", verb, &name]);
            let err = String::from_utf8_lossy(&out.stderr);
            // Already so: a refused demotion leaves nothing to promote back.
            if out.status.success() || err.contains("is already a") {
                return Ok(());
            }
            why = err.lines().last().unwrap_or("").trim().to_string();
        }
        Err(why)
    }

    /// Starts again a manager that stopped on its full disk, as its supervisor (systemd's
    /// `Restart=on-failure`) would once there is room. Called at healing and while settling:
    /// the write that fails may still be in flight when the disk is freed.
    pub fn restart_stopped_on_full_disk(&mut self) {
        for (i, m) in self.managers.iter_mut().enumerate() {
            if !self.filled[i] {
                continue;
            }
            let Some(status) = m.exited() else {
                continue;
            };
            eprintln!(
                "m{} had stopped on its full disk ({status}): starting it again",
                i + 1
            );
            m.spawn();
            self.filled[i] = false;
        }
    }

    fn signal(&self, i: usize, sig: Signal) -> Result<()> {
        let pid = i32::try_from(self.managers[i].pid()).context("pid")?;
        if pid == 0 {
            bail!("m{} is not running", i + 1);
        }
        kill(Pid::from_raw(pid), sig).with_context(|| format!("{sig} to m{}", i + 1))
    }

    /// Where the nodes' state and logs (`m1.log`, `w1.log`, …) are.
    pub fn dir(&self) -> PathBuf {
        self.root.path().to_path_buf()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stopped processes die of SIGKILL too; the workers' tasks (`sleep` processes in
        // their state dirs) outlive a killed worker, so they go explicitly.
        for n in self.managers.iter_mut().chain(self.workers.iter_mut()) {
            n.kill9();
        }
        for pid in process::task_processes_under(self.root.path()) {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        // Then the fields: each Node's drop removes its network leftovers, the mesh its
        // namespaces, the TempDir the state.
    }
}
