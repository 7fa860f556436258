//! Value parsers for the command-line flags: lists, numbers, durations, sizes, CPUs, mounts,
//! labels, secret and config references. Every error is one line that starts with the flag's
//! name.
//!
//! Owns the text syntax of flag values only. Must not know about specs or services: callers
//! put the parsed values where they belong.

use anyhow::{anyhow, bail, Result};
use swarm_api::{Mount, MountType, RestartCondition};

/// Splits each value on commas, as SwarmKit's list flags do; a field in double quotes may hold
/// commas (`""` inside it is one quote).
pub fn split_lists(values: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for v in values {
        out.extend(split_csv(v)?);
    }
    Ok(out)
}

fn split_csv(value: &str) -> Result<Vec<String>> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut fields = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => bail!("unterminated quote in {value:?}"),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => bail!("unexpected {c:?} after a closing quote in {value:?}"),
            }
        } else {
            loop {
                match chars.next() {
                    Some(',') => break,
                    Some(c) => field.push(c),
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                }
            }
            fields.push(field);
        }
    }
}

/// A whole non-negative number.
pub fn parse_u64(flag: &str, s: &str) -> Result<u64> {
    s.trim().parse::<u64>().map_err(|e| anyhow!("{flag}: {e}"))
}

/// A duration such as "0", "10s", "1m30s" or "500ms"; never negative.
pub fn parse_duration(flag: &str, s: &str) -> Result<std::time::Duration> {
    let t = s.trim();
    if t.starts_with('-') {
        bail!("{flag}: duration {s:?} must not be negative");
    }
    if t == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    humantime::parse_duration(t).map_err(|e| anyhow!("{flag}: invalid duration {s:?}: {e}"))
}

/// [`parse_duration`] in milliseconds.
pub fn parse_duration_ms(flag: &str, s: &str) -> Result<i64> {
    let d = parse_duration(flag, s)?;
    i64::try_from(d.as_millis()).map_err(|_| anyhow!("{flag}: duration {s:?} is too long"))
}

/// A byte count: plain bytes or a number with a binary unit, as Docker reads memory sizes:
/// "1024", "64m", "64MiB", "64mb", "1.5g" (k, m, g, t, p are all powers of 1024).
pub fn parse_memory(flag: &str, s: &str) -> Result<i64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "p" | "pb" | "pib" => 50,
        _ => bail!("{flag}: invalid size {s:?} (use bytes or a unit such as 64MiB, 512m, 1g)"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| anyhow!("{flag}: invalid size {s:?}"))?;
    let bytes = (value * (1u64 << shift) as f64).floor();
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        bail!("{flag}: size {s:?} is too large");
    }
    Ok(bytes as i64)
}

/// CPU cores as a decimal ("0.5", "2") in nano-CPUs; at most 9 decimal places.
pub fn parse_cpus(flag: &str, s: &str) -> Result<i64> {
    let t = s.trim();
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) => (w, f),
        None => (t, ""),
    };
    let digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        bail!("{flag}: invalid number of CPUs {s:?}");
    }
    if frac.len() > 9 {
        bail!("{flag}: {s:?} has more than 9 decimal places");
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| anyhow!("{flag}: {s:?} is too large"))?
    };
    let frac_nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}")
            .parse()
            .map_err(|_| anyhow!("{flag}: invalid number of CPUs {s:?}"))?
    };
    whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(|| anyhow!("{flag}: {s:?} is too large"))
}

/// `type=bind,source=/data,target=/data,readonly` (Docker's `--mount` syntax, the keys
/// `type`, `source`/`src`, `target`/`dst`/`destination` and `readonly`/`ro`).
pub fn parse_mount(spec: &str) -> Result<Mount> {
    // Docker's default type.
    let mut m = Mount {
        r#type: MountType::Volume as i32,
        ..Default::default()
    };
    for field in spec.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (field, None),
        };
        match (key, value) {
            ("type", Some(t)) => {
                m.r#type = match t {
                    "bind" => MountType::Bind,
                    "volume" => MountType::Volume,
                    "tmpfs" => MountType::Tmpfs,
                    other => bail!("mount: type {other:?} is not one of bind, volume, tmpfs"),
                } as i32
            }
            ("source" | "src", Some(v)) => m.source = v.to_string(),
            ("target" | "dst" | "destination", Some(v)) => m.target = v.to_string(),
            ("readonly" | "ro", None | Some("true" | "1")) => m.read_only = true,
            ("readonly" | "ro", Some("false" | "0")) => m.read_only = false,
            _ => bail!("mount: {field:?} is not type=, source=, target= or readonly"),
        }
    }
    if !m.target.starts_with('/') {
        bail!("mount: target must be an absolute path in {spec:?}");
    }
    if m.r#type() == MountType::Bind && m.source.is_empty() {
        bail!("mount: a bind mount needs a source in {spec:?}");
    }
    Ok(m)
}

/// `NAME[:TARGET]` of `--secret`/`--config`: the target (file name the task sees) defaults to
/// the name; the manager resolves the name and checks the target.
pub fn parse_file_ref(flag: &str, s: &str) -> Result<(String, String)> {
    let (name, target) = match s.split_once(':') {
        Some((n, t)) => (n, t),
        None => (s, s),
    };
    if name.is_empty() || target.is_empty() {
        bail!("{flag}: {s:?} is not NAME or NAME:TARGET");
    }
    if target.contains('/') {
        bail!("{flag}: target {target:?} must be a file name, not a path");
    }
    Ok((name.to_string(), target.to_string()))
}

/// An environment entry must be KEY=VALUE with a non-empty key.
pub fn check_env(e: &str) -> Result<()> {
    match e.split_once('=') {
        Some((k, _)) if !k.trim().is_empty() => Ok(()),
        _ => bail!("env: {e:?} is not KEY=VALUE"),
    }
}

/// The `--label` values given (repeatable and comma-separated), as a map.
pub fn parse_labels(values: &[String]) -> Result<std::collections::HashMap<String, String>> {
    split_lists(values)?
        .iter()
        .map(|l| parse_label("label", l))
        .collect()
}

/// A label "key=value" (or just "key", with an empty value); the key must not be empty.
pub fn parse_label(flag: &str, l: &str) -> Result<(String, String)> {
    let (k, v) = l.split_once('=').unwrap_or((l, ""));
    let k = k.trim();
    if k.is_empty() {
        bail!("{flag}: {l:?} has an empty key");
    }
    Ok((k.to_string(), v.trim().to_string()))
}

pub fn parse_restart_condition(c: &str) -> Result<RestartCondition> {
    Ok(match c {
        "none" => RestartCondition::None,
        "on-failure" | "failure" => RestartCondition::OnFailure,
        "any" => RestartCondition::Any,
        other => bail!("restart-condition: {other:?} is not one of none, on-failure, any"),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn msg<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Ok(v) => format!("unexpectedly ok: {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn mounts_parse_like_dockers() {
        let m = parse_mount("type=bind,source=/data,target=/srv,readonly").expect("valid");
        assert_eq!(m.r#type(), MountType::Bind);
        assert_eq!((m.source.as_str(), m.target.as_str()), ("/data", "/srv"));
        assert!(m.read_only);
        let v = parse_mount("target=/cache").expect("valid");
        assert_eq!(v.r#type(), MountType::Volume);
        assert!(msg(parse_mount("type=bind,target=/x")).starts_with("mount: "));
        assert!(msg(parse_mount("type=nfs,target=/x")).starts_with("mount: "));
        assert!(msg(parse_mount("type=tmpfs,target=rel")).starts_with("mount: "));
    }

    #[test]
    fn numbers_name_their_flag() {
        assert_eq!(parse_u64("replicas", "6").ok(), Some(6));
        assert_eq!(
            msg(parse_u64("replicas", "x")),
            "replicas: invalid digit found in string"
        );
        assert_eq!(
            msg(parse_u64("replicas", "-1")),
            "replicas: invalid digit found in string"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("d", "10s").ok(), Some(10_000));
        assert_eq!(parse_duration_ms("d", "1m30s").ok(), Some(90_000));
        assert_eq!(parse_duration_ms("d", "500ms").ok(), Some(500));
        assert_eq!(parse_duration_ms("d", "1.5s").ok(), Some(1_500));
        assert_eq!(parse_duration_ms("d", "0").ok(), Some(0));
        assert_eq!(parse_duration_ms("d", "0s").ok(), Some(0));
        assert!(msg(parse_duration_ms("update-delay", "-5s")).starts_with("update-delay: "));
        assert!(msg(parse_duration_ms("restart-delay", "soon")).starts_with("restart-delay: "));
        assert!(msg(parse_duration_ms("restart-delay", "10")).starts_with("restart-delay: "));
        assert!(parse_duration_ms("d", "99999999999999999999y").is_err());
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("m", "64MiB").ok(), Some(64 << 20));
        assert_eq!(parse_memory("m", "64m").ok(), Some(64 << 20));
        assert_eq!(parse_memory("m", "64mb").ok(), Some(64 << 20));
        assert_eq!(parse_memory("m", "1g").ok(), Some(1 << 30));
        assert_eq!(parse_memory("m", "1.5G").ok(), Some(3 << 29));
        assert_eq!(parse_memory("m", "1024").ok(), Some(1024));
        assert_eq!(parse_memory("m", "1024b").ok(), Some(1024));
        assert!(msg(parse_memory("memory-reservation", "lots")).starts_with("memory-reservation: "));
        assert!(parse_memory("m", "-1g").is_err());
        assert!(parse_memory("m", "").is_err());
        assert!(parse_memory("m", "64x").is_err());
        assert!(parse_memory("m", "99999999999p").is_err());
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("c", "0.5").ok(), Some(500_000_000));
        assert_eq!(parse_cpus("c", "2").ok(), Some(2_000_000_000));
        assert_eq!(parse_cpus("c", ".25").ok(), Some(250_000_000));
        assert_eq!(parse_cpus("c", "0.000000001").ok(), Some(1));
        assert!(parse_cpus("c", "0.0000000001").is_err());
        assert!(parse_cpus("c", "-1").is_err());
        assert!(parse_cpus("c", ".").is_err());
        assert!(parse_cpus("c", "1e3").is_err());
        assert!(parse_cpus("c", "99999999999999999999").is_err());
    }

    #[test]
    fn env_and_labels() {
        assert!(check_env("A=1").is_ok());
        assert!(check_env("A=").is_ok());
        assert!(check_env("A=b=c").is_ok());
        assert_eq!(msg(check_env("A")), "env: \"A\" is not KEY=VALUE");
        assert!(check_env("=x").is_err());
        assert_eq!(
            parse_label("label-add", "k=v").ok(),
            Some(("k".to_string(), "v".to_string()))
        );
        assert_eq!(
            parse_label("label-add", "k").ok(),
            Some(("k".to_string(), String::new()))
        );
        assert!(parse_label("label-add", "=v").is_err());
    }

    #[test]
    fn lists_split_on_commas_outside_quotes() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(split_lists(&v(&["sh"])).ok(), Some(v(&["sh"])));
        assert_eq!(
            split_lists(&v(&["-c", "a,b"])).ok(),
            Some(v(&["-c", "a", "b"]))
        );
        assert_eq!(
            split_lists(&v(&["\"echo a, b\",x"])).ok(),
            Some(v(&["echo a, b", "x"]))
        );
        assert_eq!(
            split_lists(&v(&["\"say \"\"hi\"\"\""])).ok(),
            Some(v(&["say \"hi\""]))
        );
        assert_eq!(split_lists(&v(&[""])).ok(), Some(vec![]));
        assert!(split_lists(&v(&["\"open"])).is_err());
    }
}
