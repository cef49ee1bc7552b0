//! What a run shows while it runs. On a terminal: a live view, with a line per call in
//! flight (indented by its depth in the tree, with its elapsed time) under a bar of
//! the counts, and each finished node printed above it. Elsewhere: a plain line per
//! event, which logs and CI read well. `-q` shows neither.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::resolve::Status;

/// Lines shown for calls in flight; more are counted in the bar.
const SLOTS: usize = 8;

pub(super) enum Progress {
    Quiet,
    Lines { started: Instant },
    Live(Box<Live>),
}

pub(super) struct Live {
    multi: MultiProgress,
    bar: ProgressBar,
    slots: Vec<ProgressBar>,
    /// Which node each slot shows.
    shown: HashMap<String, usize>,
    running: usize,
    done: u64,
    failed: u64,
}

impl Progress {
    /// The live view on a terminal, plain lines elsewhere, nothing when `quiet`.
    pub fn new(quiet: bool, total: u64) -> Progress {
        if quiet {
            return Progress::Quiet;
        }
        if !std::io::stderr().is_terminal() || std::env::var_os("TERM").is_some_and(|t| t == "dumb")
        {
            return Progress::Lines {
                started: Instant::now(),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let bar = multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {bar:30} {pos}/{len} calls · {msg} · {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        let slots = (0..SLOTS)
            .map(|_| {
                let slot = multi.add(ProgressBar::new_spinner());
                slot.set_style(idle_style());
                slot
            })
            .collect();
        Progress::Live(Box::new(Live {
            multi,
            bar,
            slots,
            shown: HashMap::new(),
            running: 0,
            done: 0,
            failed: 0,
        }))
    }

    /// The plan grew: an expansion point made `more` calls.
    pub fn grow(&mut self, more: u64) {
        if let Progress::Live(live) = self {
            live.bar.inc_length(more);
        }
    }

    /// A call of `id`, at `depth` in the tree, started.
    pub fn start(&mut self, id: &str, depth: usize) {
        match self {
            Progress::Quiet => {}
            Progress::Lines { started } => {
                eprintln!("{:>8.2}s start  {id}", started.elapsed().as_secs_f64());
            }
            Progress::Live(live) => {
                live.running += 1;
                let used: Vec<usize> = live.shown.values().copied().collect();
                if let Some(free) = (0..live.slots.len()).find(|i| !used.contains(i)) {
                    if let Some(slot) = live.slots.get(free) {
                        slot.set_style(busy_style());
                        slot.reset_elapsed();
                        slot.set_message(format!("{}{}", "  ".repeat(depth.saturating_sub(1)), id));
                    }
                    live.shown.insert(id.to_string(), free);
                }
                live.refresh();
            }
        }
    }

    /// Node `id` finished with `status`.
    pub fn finish(&mut self, id: &str, status: Status, reused: bool, counted: bool) {
        let reused = if reused { " (reused)" } else { "" };
        match self {
            Progress::Quiet => {}
            Progress::Lines { started } => {
                eprintln!(
                    "{:>8.2}s {:<6} {id}{reused}",
                    started.elapsed().as_secs_f64(),
                    status.as_str()
                );
            }
            Progress::Live(live) => {
                if let Some(slot) = live.shown.remove(id).and_then(|i| live.slots.get(i)) {
                    slot.set_style(idle_style());
                    slot.set_message(String::new());
                    live.running = live.running.saturating_sub(1);
                }
                if counted {
                    live.done += 1;
                    live.bar.inc(1);
                }
                if status == Status::Failed {
                    live.failed += 1;
                }
                let mark = match status {
                    Status::Complete => "✓",
                    Status::Failed => "✗",
                    Status::Partial => "◐",
                    Status::Waiting => "…",
                    Status::Skipped => "–",
                };
                let _ = live.multi.println(format!("{mark} {id}{reused}"));
                live.refresh();
            }
        }
    }

    /// The run is over: clear the live view.
    pub fn end(&mut self) {
        if let Progress::Live(live) = self {
            for slot in &live.slots {
                slot.finish_and_clear();
            }
            live.bar.finish_and_clear();
            let _ = live.multi.clear();
        }
    }
}

/// A slot showing a call in flight: its id, indented by depth, and its time so far.
fn busy_style() -> ProgressStyle {
    ProgressStyle::with_template("  {msg} {elapsed:.dim}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// A free slot: nothing.
fn idle_style() -> ProgressStyle {
    ProgressStyle::with_template("").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Live {
    fn refresh(&self) {
        self.bar
            .set_message(format!("{} running · {} failed", self.running, self.failed));
    }
}
