//! Showing convergence progress on stderr: `indicatif` bars when stderr is a terminal, plain
//! lines (printed only when something changed) when it is not. Owns only the drawing; what to
//! draw comes from `converge.rs`. stdout is left to the service ID so `id=$(swarmctl service
//! create …)` keeps working while the progress is still visible.

use std::io::{IsTerminal, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::converge::{Assessment, STEPS};

pub trait Display {
    fn show(&mut self, a: &Assessment);
    /// The last words: "verify: Service converged", or nothing on failure (main prints it).
    fn finish(&mut self, converged: bool);
}

/// The display for this process: bars on a terminal, lines otherwise, nothing when quiet.
pub fn for_stderr(quiet: bool) -> Box<dyn Display> {
    if quiet {
        Box::new(Quiet)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(Lines::default())
    }
}

struct Quiet;

impl Display for Quiet {
    fn show(&mut self, _: &Assessment) {}
    fn finish(&mut self, _: bool) {}
}

/// Plain lines: each slot's state and the overall count, whenever they change.
#[derive(Default)]
pub struct Lines {
    last: Vec<String>,
    last_overall: String,
    pub printed: Vec<String>,
    /// Tests collect instead of writing to stderr.
    pub collect: bool,
}

impl Lines {
    fn emit(&mut self, line: String) {
        if self.collect {
            self.printed.push(line);
        } else {
            // A closed stderr must not stop the wait.
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
}

impl Display for Lines {
    fn show(&mut self, a: &Assessment) {
        let overall = format!("overall progress: {}", a.overall);
        if overall != self.last_overall {
            self.last_overall = overall.clone();
            self.emit(overall);
        }
        self.last.resize(a.lines.len(), String::new());
        for (i, l) in a.lines.iter().enumerate() {
            let text = format!("{}: {}", l.label, l.text);
            if self.last[i] != text {
                self.last[i] = text.clone();
                self.emit(text);
            }
        }
    }

    fn finish(&mut self, converged: bool) {
        if converged {
            self.emit("verify: Service converged".into());
        }
    }
}

/// `docker service create`-like bars: an overall line, then one bar per slot or node.
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    bars: Vec<ProgressBar>,
    style: ProgressStyle,
}

impl Bars {
    fn new() -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let style = ProgressStyle::with_template("{prefix}: {msg:<12} [{bar:50}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        Bars {
            multi,
            overall,
            bars: Vec::new(),
            style,
        }
    }
}

impl Display for Bars {
    fn show(&mut self, a: &Assessment) {
        self.overall
            .set_message(format!("overall progress: {}", a.overall));
        while self.bars.len() < a.lines.len() {
            let bar = self.multi.add(ProgressBar::new(STEPS.len() as u64));
            bar.set_style(self.style.clone());
            self.bars.push(bar);
        }
        let width = a.lines.iter().map(|l| l.label.len()).max().unwrap_or(0);
        for (bar, l) in self.bars.iter().zip(&a.lines) {
            bar.set_prefix(format!("{:>width$}", l.label));
            bar.set_message(l.text.clone());
            bar.set_position(l.step as u64);
        }
    }

    fn finish(&mut self, converged: bool) {
        for bar in &self.bars {
            bar.abandon();
        }
        self.overall.abandon();
        if converged {
            let _ = self.multi.println("verify: Service converged");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::converge::{Line, Outcome};

    fn assessment(states: &[&str], overall: &str) -> Assessment {
        Assessment {
            lines: states
                .iter()
                .enumerate()
                .map(|(i, s)| Line {
                    label: format!("{}/{}", i + 1, states.len()),
                    step: 0,
                    text: s.to_string(),
                    done: false,
                })
                .collect(),
            overall: overall.into(),
            outcome: Outcome::Waiting,
        }
    }

    #[test]
    fn plain_lines_print_only_changes() {
        let mut lines = Lines {
            collect: true,
            ..Default::default()
        };
        lines.show(&assessment(&["pending", "pending"], "0 out of 2 tasks"));
        lines.show(&assessment(&["pending", "pending"], "0 out of 2 tasks"));
        lines.show(&assessment(&["running", "pending"], "1 out of 2 tasks"));
        lines.finish(true);
        assert_eq!(
            lines.printed,
            [
                "overall progress: 0 out of 2 tasks",
                "1/2: pending",
                "2/2: pending",
                "overall progress: 1 out of 2 tasks",
                "1/2: running",
                "verify: Service converged",
            ]
        );
    }
}
