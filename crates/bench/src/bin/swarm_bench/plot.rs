//! A hand-written SVG line plot of tasks RUNNING over time, one line per phase (x: seconds
//! since the phase's request). Pure formatting: it reads the series it is given, nothing else.

use std::fmt::Write;

const W: f64 = 720.0;
const H: f64 = 400.0;
/// Left, right, top and bottom margins (room for tick labels and the legend).
const L: f64 = 70.0;
const R: f64 = 20.0;
const T: f64 = 40.0;
const B: f64 = 50.0;
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// A "nice" step (1, 2 or 5 × 10^k) giving about five ticks up to `max`.
fn tick_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// The SVG document for `lines` (name, points of (seconds, tasks RUNNING)).
pub fn svg(title: &str, lines: &[(String, Vec<(f64, usize)>)]) -> String {
    let xmax = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(t, _)| *t))
        .fold(0.0, f64::max)
        .max(0.1);
    let ymax = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, n)| *n as f64))
        .fold(0.0, f64::max)
        .max(1.0);
    let x = |t: f64| L + t / xmax * (W - L - R);
    let y = |n: f64| H - B - n / ymax * (H - T - B);
    let mut s = String::new();
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    let (x0, y0) = (x(0.0), y(0.0));
    let _ = writeln!(
        s,
        r#"<path d="M{L} {T} L{L} {y0} L{} {y0}" stroke="black" fill="none"/>"#,
        W - R
    );
    let xs = tick_step(xmax);
    let mut t = 0.0;
    while t <= xmax + 1e-9 {
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{y0}" x2="{0}" y2="{1}" stroke="black"/><text x="{0}" y="{2}" text-anchor="middle">{3}</text>"#,
            x(t),
            y0 + 5.0,
            y0 + 18.0,
            fmt_num(t)
        );
        t += xs;
    }
    let ys = tick_step(ymax);
    let mut n = 0.0;
    while n <= ymax + 1e-9 {
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{0}" x2="{1}" y2="{0}" stroke="#ddd"/><text x="{2}" y="{3}" text-anchor="end">{4}</text>"##,
            y(n),
            W - R,
            x0 - 6.0,
            y(n) + 4.0,
            fmt_num(n)
        );
        n += ys;
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds since the request</text>"#,
        (L + W - R) / 2.0,
        H - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">tasks RUNNING</text>"#,
        (T + H - B) / 2.0,
        (T + H - B) / 2.0
    );
    for (i, (name, points)) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let pts: Vec<String> = points
            .iter()
            .map(|(t, n)| format!("{:.1},{:.1}", x(*t), y(*n as f64)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
            pts.join(" ")
        );
        let ly = T + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{2}" y="{3}">{4}</text>"#,
            L + 10.0,
            L + 30.0,
            L + 36.0,
            ly + 4.0,
            escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_num(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
