//! Rate per window of a phase: for each tenth of the tasks, how fast that tenth was placed
//! (or reached RUNNING), read off the polled series. It answers issue 7's "placement rate
//! flat within 20 % as the cluster fills". Pure arithmetic over the series it is given.

use serde_json::{json, Value};

/// How many equal windows the total is cut into.
pub const WINDOWS: usize = 10;

/// First time (seconds since the phase started) each `k * want / WINDOWS` count was reached,
/// for k = 1..=WINDOWS; `None` when never reached.
fn crossings(series: &[(f64, usize)], want: usize) -> Vec<Option<f64>> {
    (1..=WINDOWS)
        .map(|k| {
            // Rounded up so the last window ends exactly at `want`.
            let mark = (k * want).div_ceil(WINDOWS);
            series.iter().find(|(_, n)| *n >= mark).map(|(t, _)| *t)
        })
        .collect()
}

/// Tasks per second in each window. Window 1 starts at the phase's request, so it also holds
/// the start-up latency (task creation, the first passes); windows 2.. are the steady rate.
pub fn rates(series: &[(f64, usize)], want: usize) -> Vec<Option<f64>> {
    let per = want as f64 / WINDOWS as f64;
    let mut prev = Some(0.0);
    crossings(series, want)
        .into_iter()
        .map(|at| {
            let r = match (prev, at) {
                // Two crossings seen in the same poll: too fast to resolve.
                (Some(a), Some(b)) if b > a => Some((per / (b - a)).round()),
                _ => None,
            };
            prev = at;
            r
        })
        .collect()
}

/// Lowest steady window rate (windows 2..) over the highest: 1.0 is perfectly flat; issue 7
/// wants ≥ 0.8.
pub fn flatness(rates: &[Option<f64>]) -> Option<f64> {
    let steady: Vec<f64> = rates.iter().skip(1).flatten().copied().collect();
    let max = steady.iter().copied().fold(f64::NAN, f64::max);
    let min = steady.iter().copied().fold(f64::NAN, f64::min);
    (steady.len() >= 2 && max > 0.0).then(|| (min / max * 100.0).round() / 100.0)
}

/// Rate from 10 % to 50 % of the tasks and from 50 % to 100 %: the early and late halves of
/// the steady part. Less noisy than single windows, which hold only a couple of the
/// scheduler's 2,000-task writes each; their ratio is the figure to read for "flat".
pub fn halves(series: &[(f64, usize)], want: usize) -> (Option<f64>, Option<f64>) {
    let c = crossings(series, want);
    let rate = |from: usize, to: usize| match (c[from - 1], c[to - 1]) {
        (Some(a), Some(b)) if b > a => {
            Some(((to - from) as f64 * want as f64 / WINDOWS as f64 / (b - a)).round())
        }
        _ => None,
    };
    (rate(1, 5), rate(5, 10))
}

/// The JSON block for one series.
pub fn report(series: &[(f64, usize)], want: usize) -> Value {
    let r = rates(series, want);
    let (early, late) = halves(series, want);
    json!({
        "per_s": r,
        "steady_min_over_max": flatness(&r),
        "from_10_to_50_pct_per_s": early,
        "from_50_to_100_pct_per_s": late,
        "late_over_early": early.zip(late).map(|(e, l)| (l / e * 100.0).round() / 100.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_series_is_flat() {
        let series: Vec<(f64, usize)> = (0..=100).map(|i| (i as f64 * 0.1, i * 10)).collect();
        let r = rates(&series, 1000);
        assert_eq!(r.len(), WINDOWS);
        assert!(r.iter().all(|x| *x == Some(100.0)), "{r:?}");
        assert_eq!(flatness(&r), Some(1.0));
    }

    #[test]
    fn slowing_series_is_not_flat() {
        // Second half at half the rate.
        let mut series = Vec::new();
        for i in 0..=50 {
            series.push((i as f64 * 0.1, i * 10));
        }
        for i in 1..=50 {
            series.push((5.0 + i as f64 * 0.2, 500 + i * 10));
        }
        let r = rates(&series, 1000);
        assert_eq!(r[1], Some(100.0));
        assert_eq!(r[9], Some(50.0));
        assert_eq!(flatness(&r), Some(0.5));
        assert_eq!(halves(&series, 1000), (Some(100.0), Some(50.0)));
    }

    #[test]
    fn unreached_windows_are_none() {
        let series = vec![(0.5, 300)];
        let r = rates(&series, 1000);
        assert_eq!(r[0], Some(200.0));
        assert_eq!(r[1], None);
        assert_eq!(r[3], None);
    }
}
