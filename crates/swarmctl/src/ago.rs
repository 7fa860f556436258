//! Relative times as the tables print them ("2 seconds ago", "About an hour ago"), with the
//! same thresholds as Docker's `HumanDuration`.

/// How long ago `then_ms` was, seen from `now_ms` (both unix milliseconds), e.g.
/// "2 seconds ago". A time in the future (clock skew between hosts) reads as just now.
pub fn ago(now_ms: i64, then_ms: i64) -> String {
    let elapsed = now_ms.saturating_sub(then_ms).max(0);
    format!("{} ago", human_duration_ms(elapsed))
}

/// A duration in words with its first letter as Docker writes it ("Less than a second",
/// "1 second", "3 minutes", "About an hour", "2 days").
pub fn human_duration_ms(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Hours are rounded to the nearest one, as Docker does.
    let hours = ms.max(0).saturating_add(1_800_000) / 3_600_000;
    if hours == 1 {
        return "About an hour".to_string();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", ms.max(0) / 3_600_000 / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;
    const D: i64 = 24 * H;

    #[test]
    fn thresholds_match_docker() {
        let cases = [
            (0, "Less than a second"),
            (999, "Less than a second"),
            (S, "1 second"),
            (2 * S, "2 seconds"),
            (59 * S + 999, "59 seconds"),
            (60 * S, "About a minute"),
            (119 * S, "About a minute"),
            (2 * M, "2 minutes"),
            (59 * M, "59 minutes"),
            (60 * M, "About an hour"),
            (89 * M, "About an hour"),
            (90 * M, "2 hours"),
            (47 * H, "47 hours"),
            (48 * H, "2 days"),
            (13 * D, "13 days"),
            (14 * D, "2 weeks"),
            (59 * D, "8 weeks"),
            (60 * D, "2 months"),
            (729 * D, "24 months"),
            (730 * D, "2 years"),
        ];
        for (ms, want) in cases {
            assert_eq!(human_duration_ms(ms), want, "{ms} ms");
        }
    }

    #[test]
    fn ago_reads_like_the_walkthrough() {
        assert_eq!(ago(10_000, 8_000), "2 seconds ago");
        assert_eq!(ago(10_000, 9_500), "Less than a second ago");
        // Future timestamps (skewed clocks) never print a negative duration.
        assert_eq!(ago(10_000, 50_000), "Less than a second ago");
        assert_eq!(ago(i64::MAX, i64::MIN), "292471208 years ago");
    }
}
