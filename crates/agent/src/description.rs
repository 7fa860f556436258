//! What this node tells the manager about itself: hostname, platform and resources, read from
//! the host. The executor adds its own part (`Executor::describe`).
//!
//! Owns nothing; reads `/proc/meminfo` and the standard library's view of the machine.

use swarm_api::{NodeDescription, Platform, Resources};

/// The host's description as the agent sees it.
pub(crate) fn host(hostname: &str) -> NodeDescription {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    NodeDescription {
        hostname: hostname.to_string(),
        platform: Some(Platform {
            os: std::env::consts::OS.to_string(),
            architecture: std::env::consts::ARCH.to_string(),
        }),
        resources: Some(Resources {
            nano_cpus: i64::try_from(cpus)
                .unwrap_or(1)
                .saturating_mul(1_000_000_000),
            memory_bytes: std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|s| mem_total(&s))
                .unwrap_or(0),
        }),
        engine: None,
    }
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn mem_total(meminfo: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total_in_bytes() {
        let text = "MemFree:  10 kB\nMemTotal:       16303472 kB\n";
        assert_eq!(mem_total(text), Some(16_303_472 * 1024));
        assert_eq!(mem_total("nothing"), None);
    }

    #[test]
    fn host_description_has_cpus_and_platform() {
        let d = host("n1");
        assert_eq!(d.hostname, "n1");
        assert!(d.resources.is_some_and(|r| r.nano_cpus >= 1_000_000_000));
        assert_eq!(
            d.platform.map(|p| p.os),
            Some(std::env::consts::OS.to_string())
        );
    }
}
