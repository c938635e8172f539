//! Progress bars for long-running steps (loading a full release, training): drawn on stderr when
//! it is a terminal, and nothing at all otherwise (pipes, files, CI logs stay clean).
//!
//! A step asks for a bar with [`Progress::bytes`], passing whether the caller wants one at all
//! (the library's options default to no bar; the CLI turns them on). The stages of a training
//! each get a line of their own ([`Stage`], while a [`StageLines`] lives).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A progress bar, or nothing when stderr is not a terminal or no bar was asked for. Cheap to
/// update from any thread (`&self`); dropping it clears the bar.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar counting `total` bytes, labelled `label`; hidden unless `wanted` and stderr is a
    /// terminal.
    pub fn bytes(total: u64, label: &str, wanted: bool) -> Progress {
        Progress::new(
            total,
            label,
            wanted,
            "{msg:<24} [{bar:32}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} eta {eta}",
        )
    }

    /// A bar that is never drawn.
    pub fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    fn new(total: u64, label: &str, wanted: bool, template: &str) -> Progress {
        if !(wanted && std::io::stderr().is_terminal()) {
            return Progress::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        Progress { bar }
    }

    /// Whether anything is drawn.
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Advances by `n` bytes or steps.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Changes the label (e.g. to the file being read).
    pub fn set_label(&self, label: &str) {
        if self.is_visible() {
            self.bar.set_message(label.to_string());
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // An error path included: no half-drawn bar is left behind.
        if self.is_visible() && !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

/// Whether [`Stage`]s draw their line: on while a [`StageLines`] guard lives (a `train` asked
/// for bars, and stderr is a terminal).
static STAGE_LINES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The terminal lines of the stages running or done: concurrent stages (the tuning beside the
/// embedding models) each keep a line of their own.
fn stage_board() -> &'static indicatif::MultiProgress {
    static BOARD: std::sync::OnceLock<indicatif::MultiProgress> = std::sync::OnceLock::new();
    BOARD.get_or_init(|| indicatif::MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// Turns the stages' lines on for as long as it lives (when `wanted` and stderr is a terminal).
#[derive(Debug)]
pub struct StageLines {
    on: bool,
}

impl StageLines {
    /// Lines for the stages started from now on, if `wanted` and stderr is a terminal.
    pub fn show(wanted: bool) -> StageLines {
        let on = wanted && std::io::stderr().is_terminal();
        if on {
            STAGE_LINES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        StageLines { on }
    }
}

impl Drop for StageLines {
    fn drop(&mut self) {
        if self.on {
            STAGE_LINES.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// One stage of a long run (a model's fit, an index build, writing a file): on a terminal, a
/// line of its own that shows it running with its time so far, and then what it took and the
/// memory after it; in the log (`MOVIEREC_LOG=movierec=info`), the same when it ends.
#[derive(Debug)]
pub struct Stage {
    label: String,
    started: std::time::Instant,
    bar: ProgressBar,
}

impl Stage {
    /// Starts stage `label`.
    pub fn start(label: impl Into<String>) -> Stage {
        Stage::new(label.into(), true)
    }

    /// Starts stage `label`, logged when it ends but given no line of its own (the fits of the
    /// tuning's validation split, inside its line).
    pub fn start_unlined(label: impl Into<String>) -> Stage {
        Stage::new(label.into(), false)
    }

    fn new(label: String, line: bool) -> Stage {
        let bar = if line && STAGE_LINES.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            let bar = stage_board().add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg:<36} {elapsed:>4}") {
                bar.set_style(style);
            }
            bar.set_message(label.clone());
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        Stage {
            label,
            started: std::time::Instant::now(),
            bar,
        }
    }

    /// Says how many steps the stage has (movies, batches): its line becomes a bar of them.
    pub fn set_total(&self, total: u64) {
        if !self.bar.is_hidden() {
            let template = "{spinner} {msg:<36} {elapsed:>4} [{bar:24}] {percent:>3}% eta {eta}";
            if let Ok(style) = ProgressStyle::with_template(template) {
                self.bar.set_style(style.progress_chars("=> "));
            }
        }
        self.bar.set_length(total);
    }

    /// Counts `steps` more done (from any thread).
    pub fn inc(&self, steps: u64) {
        self.bar.inc(steps);
    }

    /// The steps counted so far.
    pub fn done_steps(&self) -> u64 {
        self.bar.position()
    }

    /// Ends the stage: logs it, leaves its line with its time and the memory after it, and
    /// returns its time.
    pub fn done(self) -> std::time::Duration {
        let took = self.started.elapsed();
        crate::memory::release_freed_memory();
        let memory = memory_note();
        tracing::info!("{} in {:.2?}{memory}", self.label, took);
        if !self.bar.is_hidden() {
            if let Ok(style) = ProgressStyle::with_template("  {msg}") {
                self.bar.set_style(style);
            }
            self.bar.finish_with_message(format!(
                "{:<36} {:>7.1} s{memory}",
                self.label,
                took.as_secs_f64()
            ));
        }
        took
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // A stage cut short by an error leaves no spinning line.
        if !self.bar.is_hidden() && !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

/// The `kB` figures of `/proc/self/status` named by `keys` (Linux), in that order; `None` for
/// each the system does not give.
fn status_kib<const N: usize>(keys: [&str; N]) -> [Option<u64>; N] {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    keys.map(|key| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    })
}

/// The process's peak resident memory so far, in bytes: `VmHWM` of `/proc/self/status` (Linux);
/// `None` where the system does not say.
pub fn peak_resident_bytes() -> Option<u64> {
    let [peak] = status_kib(["VmHWM"]);
    peak.map(|kib| kib * 1024)
}

/// ` (resident N MB, peak M MB)` now (`VmRSS`, `VmHWM`), for the stage lines of the training
/// log (`MOVIEREC_LOG=movierec=info`): which stage sets the peak. Empty where the system does
/// not say.
pub fn memory_note() -> String {
    match status_kib(["VmRSS", "VmHWM"]) {
        [Some(now), Some(peak)] => {
            format!(" (resident {} MB, peak {} MB)", now / 1024, peak / 1024)
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_stage_times_itself_and_draws_nothing_off_a_terminal() {
        use std::io::IsTerminal;
        let lines = super::StageLines::show(true);
        assert_eq!(lines.on, std::io::stderr().is_terminal());
        let stage = super::Stage::start("waiting");
        assert_eq!(stage.bar.is_hidden(), !lines.on);
        std::thread::sleep(std::time::Duration::from_millis(30));
        let took = stage.done();
        assert!(took >= std::time::Duration::from_millis(30), "{took:?}");
        let quiet = super::Stage::start_unlined("quiet");
        assert!(quiet.bar.is_hidden());
        // Steps are counted whether or not a line is drawn (what the models report).
        quiet.set_total(10);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| (0..3).for_each(|_| quiet.inc(1)));
            }
        });
        assert_eq!(quiet.done_steps(), 6);
    }

    #[test]
    fn the_peak_resident_memory_covers_what_was_touched() {
        let Some(before) = super::peak_resident_bytes() else {
            return; // not Linux: nothing to read
        };
        let block = vec![1u8; 64 << 20];
        let after = super::peak_resident_bytes().expect("read once, read again");
        assert!(after >= before.max(64 << 20), "{before} then {after}");
        assert_eq!(block.iter().map(|&b| u64::from(b)).sum::<u64>(), 64 << 20);
        let note = super::memory_note();
        assert!(note.contains("resident") && note.contains("peak"), "{note}");
    }
}
