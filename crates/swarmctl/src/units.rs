//! Printing quantities for people: durations the way Go prints them ("1m30s", "2160h0m0s"),
//! byte counts in binary units ("64 MiB") and CPU counts ("0.5").

/// A duration in milliseconds written as Go's `time.Duration` prints it.
pub fn duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < 1000 {
        return format!("{sign}{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = (ms / 60_000) % 60;
    let secs = (ms / 1000) % 60;
    let frac = ms % 1000;
    let mut seconds = secs.to_string();
    if frac != 0 {
        let f = format!("{frac:03}");
        seconds.push('.');
        seconds.push_str(f.trim_end_matches('0'));
    }
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds}s")
    } else {
        format!("{sign}{seconds}s")
    }
}

/// Bytes in binary units with one decimal below ten ("512 B", "1.5 GiB", "64 MiB").
pub fn ibytes(bytes: i64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 0 {
        return format!("{bytes} B");
    }
    if bytes < 10 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let rounded = (value * 10.0 + 0.5).floor() / 10.0;
    if rounded < 10.0 {
        format!("{rounded:.1} {}", UNITS[unit])
    } else {
        format!("{rounded:.0} {}", UNITS[unit])
    }
}

/// Nano-CPUs as a number of cores ("0.5", "2").
pub fn cpus(nano_cpus: i64) -> String {
    format!("{}", nano_cpus as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(duration_ms(0), "0s");
        assert_eq!(duration_ms(500), "500ms");
        assert_eq!(duration_ms(5_000), "5s");
        assert_eq!(duration_ms(1_500), "1.5s");
        assert_eq!(duration_ms(90_000), "1m30s");
        assert_eq!(duration_ms(3_600_000), "1h0m0s");
        assert_eq!(duration_ms(90 * 24 * 3_600_000), "2160h0m0s");
        assert_eq!(duration_ms(-10_000), "-10s");
        assert_eq!(duration_ms(i64::MIN).chars().next(), Some('-'));
    }

    #[test]
    fn bytes_print_in_binary_units() {
        assert_eq!(ibytes(0), "0 B");
        assert_eq!(ibytes(512), "512 B");
        assert_eq!(ibytes(64 << 20), "64 MiB");
        assert_eq!(ibytes(1536 << 20), "1.5 GiB");
        assert_eq!(ibytes(i64::MAX), "8.0 EiB");
    }

    #[test]
    fn cpus_print_as_cores() {
        assert_eq!(cpus(500_000_000), "0.5");
        assert_eq!(cpus(2_000_000_000), "2");
    }
}
