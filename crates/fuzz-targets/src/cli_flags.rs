//! Target for what an operator types: `swarmctl service create|update` flags, parsed by clap as
//! the binary parses them, then applied to a spec through every value parser (durations,
//! sizes, CPUs, mounts, labels, env, published ports, healthchecks, update and rollback
//! policies) — and the values shown back as `service inspect` shows them.

use crate::input::{parts, text};
use clap::Parser;
use swarmctl::flags::{new_service_spec, ServiceFlags};

/// The flags as `service create` takes them.
#[derive(Parser, Debug)]
#[command(name = "create", no_binary_name = true)]
struct Create {
    #[command(flatten)]
    flags: ServiceFlags,
}

/// The arguments, cut at NUL bytes; a flag and its value may also come as `--flag=value`.
pub fn service_flags(data: &[u8]) {
    let args: Vec<String> = parts(data, 40).into_iter().map(text).collect();
    let Ok(c) = Create::try_parse_from(&args) else {
        return;
    };
    let mut spec = new_service_spec();
    if c.flags.apply(&mut spec).is_err() {
        return;
    }
    // Applied again, as `service update` applies flags over the current spec.
    let _ = c.flags.apply(&mut spec);
    if let Some(t) = spec.task.as_ref() {
        if let Some(r) = t.resources.as_ref().and_then(|r| r.limits.as_ref()) {
            let _ = swarmctl::units::cpus(r.nano_cpus);
            let _ = swarmctl::units::ibytes(r.memory_bytes);
        }
    }
    for p in spec.endpoint.iter().flat_map(|e| e.ports.iter()) {
        let _ = swarmctl::ports::port_text(p);
    }
    if let Some(u) = spec.update.as_ref() {
        let _ = swarmctl::units::duration_ms(u.delay_ms);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The seeds must parse and apply, or the fuzzer starts short of the value parsers.
    #[test]
    fn the_seeds_parse_and_apply() {
        for seed in crate::seeds::seeds("cli_flags") {
            let args: Vec<String> = parts(&seed, 80).into_iter().map(text).collect();
            let c = Create::try_parse_from(&args).unwrap();
            c.flags.apply(&mut new_service_spec()).unwrap();
        }
    }
}
