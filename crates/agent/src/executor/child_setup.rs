//! How the agent's child processes are set up between fork and exec: a task's process (the
//! `process` executor) and a healthcheck's probe both enter the task's network namespace and
//! die with the agent. Owns only those `pre_exec` steps; spawning and waiting are the
//! callers'.

use std::fs::File;
use std::path::Path;

use nix::sys::signal::Signal;
use tokio::process::Command;

use super::ExecutorError;

/// Makes the child enter the task's network namespace before it runs the program, and see
/// the namespace's resolver file (`/etc/netns/<ns>/resolv.conf`) as `/etc/resolv.conf`, as
/// `ip netns exec` shows it.
pub(crate) fn enter_netns(cmd: &mut Command, path: &Path) -> Result<(), ExecutorError> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::CloneFlags;
    let ns = File::open(path)
        .map_err(|e| ExecutorError::io(format_args!("opening {}", path.display()), e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let resolv = crate::network::netns_etc_dir(&name).join("resolv.conf");
    // Why this is sound: setns, unshare and mount are plain syscalls on a descriptor and paths
    // made before the fork (short paths are converted on the stack); nothing else runs.
    #[allow(unsafe_code)] // pre_exec is the only way to enter a namespace in the child alone.
    unsafe {
        cmd.pre_exec(move || {
            use std::os::fd::AsFd;
            nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)?;
            // Our mounts must not reach the node's namespace.
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None::<&str>,
            )
            .map_err(std::io::Error::from)?;
            // Best effort: a host without /etc/resolv.conf leaves the task without a resolver
            // file rather than without its process.
            let _ = mount(
                Some(resolv.as_path()),
                "/etc/resolv.conf",
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            );
            Ok(())
        });
    }
    Ok(())
}

/// Makes the child die with the agent (SIGKILL when the spawning thread exits), so a
/// `kill -9` of swarmd leaves no orphaned tasks behind.
pub(crate) fn set_parent_death_signal(cmd: &mut Command) {
    let parent = nix::unistd::getpid();
    // Why this is sound: the closure runs between fork and exec in the child, where only
    // async-signal-safe calls are allowed; prctl and getppid are plain syscalls and nothing
    // allocates.
    #[allow(unsafe_code)] // pre_exec is the only way to set PR_SET_PDEATHSIG for the child.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The agent may have died between fork and prctl: then no signal will come.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other(
                    "agent exited while starting the task",
                ));
            }
            Ok(())
        });
    }
}
