//! The process's open-files limit, raised at start from the soft to the hard limit (as
//! dockerd does): every operator client, agent session, peer and task log holds a descriptor,
//! and the common soft default of 1,024 would refuse connections long before the machine
//! runs short.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft limit to the hard one; returns the limit now in force, or why not.
pub fn raise() -> Result<u64, nix::Error> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard.max(soft))
}
