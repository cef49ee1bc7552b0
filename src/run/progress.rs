//! What a run shows while it runs. On a terminal: a live view, with a line per call in
//! flight (indented by its depth in the tree, with its elapsed time) under a bar of
//! the counts, and each finished node printed above it. Elsewhere: a plain line per
//! event, which logs and CI read well. `-q` shows neither.
//!
//! Lines are gathered and written a batch at a time ([`Progress::flush`], which the
//! scheduler calls before it waits). Plain lines: `eprintln!` issues a `write` for every
//! piece of its format, about eleven system calls an event, which doubled the wall time
//! of a 10,000-call run whose stderr was a file. Live view: each line printed above the
//! bars redraws them all, which tripled the wall time of that run on a terminal.

use foldhash::{HashMap, HashMapExt};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::resolve::Status;

/// Lines shown for calls in flight; more are counted in the bar.
const SLOTS: usize = 8;

/// Lines held past this many bytes (plain, or finished nodes' in the live view) are
/// written without waiting for a flush.
const LINES_HELD: usize = 64 * 1024;

pub(super) enum Progress {
    Quiet,
    Lines(Lines),
    Live(Box<Live>),
}

/// Plain event lines, held until the next [`Progress::flush`].
pub(super) struct Lines {
    started: Instant,
    held: String,
    out: Box<dyn Write + Send>,
}

impl Lines {
    fn new(out: Box<dyn Write + Send>) -> Self {
        Lines {
            started: Instant::now(),
            held: String::new(),
            out,
        }
    }

    /// Holds one line: the time since the run started, then `event`'s text.
    fn line(&mut self, event: std::fmt::Arguments<'_>) {
        let seconds = self.started.elapsed().as_secs_f64();
        // Writing to a `String` cannot fail.
        let _ = writeln!(self.held, "{seconds:>8.2}s {event}");
        if self.held.len() >= LINES_HELD {
            self.flush();
        }
    }

    /// Writes the held lines in one go. A closed or full stderr loses them rather
    /// than stopping the run.
    fn flush(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let _ = self.out.write_all(self.held.as_bytes());
        let _ = self.out.flush();
        self.held.clear();
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.flush();
    }
}

pub(super) struct Live {
    multi: MultiProgress,
    /// Finished nodes' lines, printed above the bars at the next flush.
    finished: String,
    bar: ProgressBar,
    slots: Vec<ProgressBar>,
    /// Which node each slot shows.
    shown: HashMap<String, usize>,
    /// Slots showing nothing, the next to use last.
    free: Vec<usize>,
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
            return Progress::Lines(Lines::new(Box::new(std::io::stderr())));
        }
        Progress::Live(Box::new(Live::new(
            total,
            ProgressDrawTarget::stderr_with_hz(10),
        )))
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
            Progress::Lines(lines) => lines.line(format_args!("start  {id}")),
            Progress::Live(live) => {
                live.running += 1;
                if let Some(free) = live.free.pop() {
                    if let Some(slot) = live.slots.get(free) {
                        slot.set_style(busy_style());
                        slot.reset_elapsed();
                        slot.set_message(format!("{}{}", "  ".repeat(depth.saturating_sub(1)), id));
                    }
                    live.shown.insert(id.to_string(), free);
                }
            }
        }
    }

    /// The call of `id` announced by [`Progress::start`] was not made after all (a
    /// budget was reached): it is left `waiting`, and not counted as done.
    pub fn withdraw(&mut self, id: &str) {
        match self {
            Progress::Quiet => {}
            Progress::Lines(lines) => {
                lines.line(format_args!("{:<6} {id} (not started)", "waiting"))
            }
            Progress::Live(live) => {
                live.free_slot(id);
                live.running = live.running.saturating_sub(1);
                let _ = writeln!(live.finished, "… {id} (not started)");
            }
        }
    }

    /// Node `id` finished with `status`.
    pub fn finish(&mut self, id: &str, status: Status, reused: bool, counted: bool) {
        let reused = if reused { " (reused)" } else { "" };
        match self {
            Progress::Quiet => {}
            Progress::Lines(lines) => {
                lines.line(format_args!("{:<6} {id}{reused}", status.as_str()));
            }
            Progress::Live(live) => {
                live.free_slot(id);
                if counted {
                    // Started calls are counted ones (`Progress::start`), shown or not.
                    live.running = live.running.saturating_sub(1);
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
                let _ = writeln!(live.finished, "{mark} {id}{reused}");
                if live.finished.len() >= LINES_HELD {
                    live.print_finished();
                }
            }
        }
    }

    /// Writes the lines held so far; the scheduler calls this before it waits.
    pub fn flush(&mut self) {
        match self {
            Progress::Quiet => {}
            Progress::Lines(lines) => lines.flush(),
            Progress::Live(live) => live.flush(),
        }
    }

    /// The run is over: write what is held, clear the live view.
    pub fn end(&mut self) {
        self.flush();
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
    /// Empties the slot that showed `id`, if one did, for the next call.
    fn free_slot(&mut self, id: &str) {
        if let Some(free) = self.shown.remove(id) {
            if let Some(slot) = self.slots.get(free) {
                slot.set_style(idle_style());
                slot.set_message(String::new());
            }
            self.free.push(free);
        }
    }

    /// Bars drawn on `target`.
    fn new(total: u64, target: ProgressDrawTarget) -> Live {
        let multi = MultiProgress::with_draw_target(target);
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
        Live {
            multi,
            finished: String::new(),
            bar,
            slots,
            shown: HashMap::new(),
            free: (0..SLOTS).rev().collect(),
            running: 0,
            done: 0,
            failed: 0,
        }
    }

    /// Brings the counts up to date and prints the finished nodes' lines.
    fn flush(&mut self) {
        self.refresh();
        self.print_finished();
    }

    /// Prints the finished nodes' lines above the bars, all in one draw.
    fn print_finished(&mut self) {
        if self.finished.is_empty() {
            return;
        }
        let _ = self.multi.println(self.finished.trim_end_matches('\n'));
        self.finished.clear();
    }

    fn refresh(&self) {
        self.bar
            .set_message(format!("{} running · {} failed", self.running, self.failed));
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.print_finished();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A sink that keeps each `write` it receives apart.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut writes) = self.0.lock() {
                writes.push(bytes.to_vec());
            }
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Writes {
        fn taken(&self) -> Vec<String> {
            let writes = self.0.lock().map(|w| w.clone()).unwrap_or_default();
            writes
                .into_iter()
                .map(|w| String::from_utf8(w).unwrap_or_default())
                .collect()
        }
    }

    fn lines_into(sink: &Writes) -> Progress {
        Progress::Lines(Lines::new(Box::new(sink.clone())))
    }

    #[test]
    fn plain_lines_are_written_a_batch_at_a_time() {
        let sink = Writes::default();
        let mut progress = lines_into(&sink);
        for i in 0..100 {
            progress.start(&format!("flat/leaf[i{i}]"), 1);
        }
        assert!(sink.taken().is_empty(), "nothing is written before a flush");
        progress.flush();
        for i in 0..100 {
            progress.finish(&format!("flat/leaf[i{i}]"), Status::Complete, i == 0, true);
        }
        progress.end();
        let writes = sink.taken();
        assert_eq!(writes.len(), 2, "one write per flush: {writes:?}");
        let first: Vec<&str> = writes[0].lines().collect();
        assert_eq!(first.len(), 100);
        assert!(first[0].ends_with("s start  flat/leaf[i0]"), "{}", first[0]);
        let second: Vec<&str> = writes[1].lines().collect();
        assert!(
            second[0].ends_with("s complete flat/leaf[i0] (reused)"),
            "{}",
            second[0]
        );
        assert!(
            second[1].ends_with("s complete flat/leaf[i1]"),
            "{}",
            second[1]
        );
        // Seconds since the start, right-aligned in eight columns.
        assert_eq!(second[99].find("s complete"), Some(8), "{}", second[99]);
    }

    #[test]
    fn a_long_batch_is_written_before_it_grows_past_its_bound() {
        let sink = Writes::default();
        let mut progress = lines_into(&sink);
        let id = "x".repeat(1000);
        for _ in 0..(3 * LINES_HELD / 1000) {
            progress.start(&id, 1);
        }
        let writes = sink.taken();
        assert!(writes.len() >= 2, "{} writes", writes.len());
        for write in &writes {
            assert!(write.ends_with('\n'), "a write ends with a whole line");
            assert!(
                (LINES_HELD..LINES_HELD + 1100).contains(&write.len()),
                "{} bytes",
                write.len()
            );
        }
        progress.flush();
        let written: usize = sink.taken().iter().map(String::len).sum();
        let line = "    0.00s start  ".len() + id.len() + 1;
        assert_eq!(written, 3 * LINES_HELD / 1000 * line, "every line once");
    }

    #[test]
    fn lines_held_when_progress_is_dropped_are_written() {
        let sink = Writes::default();
        let mut progress = lines_into(&sink);
        progress.finish("a/b", Status::Failed, false, true);
        drop(progress);
        let writes = sink.taken();
        assert_eq!(writes.len(), 1);
        assert!(writes[0].ends_with("s failed a/b\n"), "{writes:?}");
    }

    /// A terminal that keeps every line drawn on it.
    #[derive(Clone, Debug, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, line: &str) -> std::io::Result<()> {
            self.write_str(line)
        }
        fn write_str(&self, text: &str) -> std::io::Result<()> {
            if let Ok(mut lines) = self.0.lock() {
                lines.push(text.to_string());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_live_view_prints_a_round_of_finished_nodes_in_one_draw() {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(screen.clone()), 10);
        let mut progress = Progress::Live(Box::new(Live::new(200, target)));
        for i in 0..200 {
            progress.start(&format!("flat/leaf[i{i}]"), 1);
        }
        for i in 0..200 {
            progress.finish(&format!("flat/leaf[i{i}]"), Status::Complete, false, true);
        }
        progress.flush();
        let drawn = screen.0.lock().map(|l| l.clone()).unwrap_or_default();
        let text = drawn.join("\n");
        for i in 0..200 {
            let line = format!("✓ flat/leaf[i{i}]");
            assert_eq!(
                drawn.iter().filter(|l| l.trim_end() == line).count(),
                1,
                "`{line}` is printed once:\n{text}"
            );
        }
        // Each print above the bars redraws them; a draw per finished node made a
        // 10,000-call run three times slower on a terminal.
        let bar_draws = drawn.iter().filter(|l| l.contains("calls ·")).count();
        assert!(bar_draws < 50, "{bar_draws} draws of the bar for 200 nodes");
    }

    #[test]
    fn the_live_view_counts_every_call_in_flight_not_only_those_shown() {
        let mut progress = Progress::Live(Box::new(Live::new(30, ProgressDrawTarget::hidden())));
        let counts = |progress: &Progress| match progress {
            Progress::Live(live) => (live.running, live.done, live.free.len()),
            _ => (0, 0, 0),
        };
        for i in 0..20 {
            progress.start(&format!("w/a[{i}]"), 1);
        }
        assert_eq!(
            counts(&progress),
            (20, 0, 0),
            "20 running, every slot taken"
        );
        for i in 0..20 {
            progress.finish(&format!("w/a[{i}]"), Status::Complete, false, true);
        }
        assert_eq!(
            counts(&progress),
            (0, 20, SLOTS),
            "every finished call leaves the count"
        );
    }
}
