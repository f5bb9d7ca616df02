//! Progress bars on stderr, drawn with indicatif only for a person at a terminal: one bar per
//! file and, with several files, an overall bar below them (files done of the total), all in
//! one layout: bytes done of the total, rate, time left. Rates count only the bytes this run
//! moved, not a resumed file's offset. Lines printed through [`Bars`] never get mixed up
//! with a bar being drawn.

use std::cell::{Cell, OnceCell};
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use ftlib::Progress;
use ftlib::text::escape;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::output::{human_size, shorten};

/// Every bar's layout. Each column has the same width in every bar, whatever it shows
/// (sizes are at most 8 characters: `1023 KiB`), so that the bars line up.
const TEMPLATE: &str = "{prefix:24!} [{wide_bar}] {amount} {rate:>10} {left:>12}";
const LABEL: usize = 24;

/// What a bar's position counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counts {
    /// Bytes of a known total.
    Bytes,
    /// Files, when the bytes to move are not known up front (gets).
    Files,
}

/// The bytes one bar saw move in this run and since when: its rate. A bar's position can
/// jump without anything moving (a resumed file starts at its offset, a skipped file counts
/// whole in the overall bar), so the rate is not read from the position.
#[derive(Debug, Default)]
struct Meter {
    moved: AtomicU64,
    since: OnceLock<Instant>,
}

impl Meter {
    /// Starts the clock, if not yet started.
    fn start(&self) {
        self.since.get_or_init(Instant::now);
    }

    fn add(&self, bytes: u64) {
        self.moved.fetch_add(bytes, Ordering::Relaxed);
    }

    fn moved(&self) -> u64 {
        self.moved.load(Ordering::Relaxed)
    }

    /// Bytes per second since the clock started, once something moved.
    fn rate(&self, now: Instant) -> Option<f64> {
        let secs = now
            .saturating_duration_since(*self.since.get()?)
            .as_secs_f64();
        let moved = self.moved();
        (moved > 0 && secs > 0.0).then(|| moved as f64 / secs)
    }
}

/// The bars of one invocation; with drawing off, nothing is ever drawn.
#[derive(Debug)]
pub(crate) struct Bars {
    multi: MultiProgress,
    /// Drawn only with several files; set once by [`Bars::start`] or [`Bars::start_sized`].
    overall: OnceCell<Overall>,
}

impl Bars {
    /// Bars drawn on stderr when `draw`, or never drawn.
    pub(crate) fn new(draw: bool) -> Bars {
        Bars::drawn_on(if draw {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        })
    }

    fn drawn_on(target: ProgressDrawTarget) -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(target),
            overall: OnceCell::new(),
        }
    }

    /// Whether bars are drawn at all.
    pub(crate) fn shown(&self) -> bool {
        !self.multi.is_hidden()
    }

    /// Starts the overall bar when more than one file is to be moved, their sizes unknown:
    /// it counts files, and shows the bytes moved and the rate.
    pub(crate) fn start(&self, files: usize) {
        self.start_overall(Counts::Files, files, files as u64);
    }

    /// Starts the overall bar when more than one file is to be moved, `bytes` in all: it
    /// counts bytes, with rate and time left, and shows files done of `files`.
    pub(crate) fn start_sized(&self, files: usize, bytes: u64) {
        self.start_overall(Counts::Bytes, files, bytes);
    }

    fn start_overall(&self, counts: Counts, files: usize, length: u64) {
        if files < 2 || self.multi.is_hidden() || self.overall.get().is_some() {
            return;
        }
        let meter = Arc::new(Meter::default());
        let bar = ProgressBar::new(length)
            .with_style(style(&meter, counts))
            .with_prefix(files_done(0, files));
        let bar = self.multi.add(bar);
        // Drawn now, not only once the first file moves.
        bar.tick();
        // Empty, as checked above.
        let _ = self.overall.set(Overall {
            bar,
            meter,
            counts,
            files,
            done: Cell::new(0),
        });
    }

    /// The bar of one file, drawn once its size is known.
    pub(crate) fn file(&self, name: &str) -> FileBar<'_> {
        FileBar {
            bars: self,
            label: shorten(&escape(name), LABEL),
            bar: None,
            meter: Arc::new(Meter::default()),
            first: None,
            last: 0,
            total: None,
        }
    }

    /// Clears every bar; call before the process ends.
    pub(crate) fn finish(&self) {
        if let Some(overall) = self.overall.get() {
            overall.bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }

    /// Prints `line` on stdout, above the bars.
    pub(crate) fn out(&self, line: &str) {
        self.multi.suspend(|| {
            stdout_written(writeln!(std::io::stdout().lock(), "{line}"));
        });
    }

    /// Prints `line` on stderr, above the bars (a closed stderr loses it rather than
    /// panicking, which in the signal handler would lose the interrupt).
    pub(crate) fn err(&self, line: &str) {
        self.multi.suspend(|| {
            let _ = writeln!(std::io::stderr(), "{line}");
        });
    }

    /// [`Bars::err`] for another thread, such as a signal handler.
    pub(crate) fn err_printer(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let multi = self.multi.clone();
        move |line| {
            multi.suspend(|| {
                let _ = writeln!(std::io::stderr(), "{line}");
            });
        }
    }
}

/// The bar under the file bars.
#[derive(Debug)]
struct Overall {
    bar: ProgressBar,
    meter: Arc<Meter>,
    counts: Counts,
    files: usize,
    done: Cell<usize>,
}

impl Overall {
    /// A file starts at `offset` (0 unless resumed): the offset is done, not moved now.
    fn begin(&self, offset: u64) {
        self.meter.start();
        self.skipped(offset);
    }

    fn moved(&self, bytes: u64) {
        self.meter.add(bytes);
        match self.counts {
            Counts::Bytes => self.bar.inc(bytes),
            // Redrawn for the bytes column, as often as indicatif allows.
            Counts::Files => self.bar.inc(0),
        }
    }

    /// Bytes that count as done without having moved in this run.
    fn skipped(&self, bytes: u64) {
        if self.counts == Counts::Bytes {
            self.bar.inc(bytes);
        }
    }

    fn file_done(&self) {
        let done = self.done.get() + 1;
        self.done.set(done);
        self.bar.set_prefix(files_done(done, self.files));
        if self.counts == Counts::Files {
            self.bar.inc(1);
        }
    }
}

/// One file's bar; tells the overall bar what moved.
#[derive(Debug)]
pub(crate) struct FileBar<'a> {
    bars: &'a Bars,
    label: String,
    bar: Option<ProgressBar>,
    meter: Arc<Meter>,
    /// Where this run started: the first progress (a resumed file's offset).
    first: Option<u64>,
    /// The last progress.
    last: u64,
    /// The file's size, once a progress said it.
    total: Option<u64>,
}

impl FileBar<'_> {
    /// The library's progress callback: the first call says where the transfer starts.
    pub(crate) fn update(&mut self, progress: Progress) {
        let overall = self.bars.overall.get();
        if self.first.is_none() {
            self.first = Some(progress.done);
            self.meter.start();
            if let Some(overall) = overall {
                overall.begin(progress.done);
            }
        } else {
            let moved = progress.done.saturating_sub(self.last);
            self.meter.add(moved);
            if let Some(overall) = overall {
                overall.moved(moved);
            }
        }
        self.last = progress.done;
        self.total = Some(progress.total);
        if self.bars.multi.is_hidden() {
            // Nothing to draw: no bar is made (a tree of thousands of small files made one
            // each, a sixth of the client's CPU).
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(progress.total)
                .with_style(style(&self.meter, Counts::Bytes))
                .with_prefix(self.label.clone());
            match overall {
                Some(overall) => self.bars.multi.insert_before(&overall.bar, bar),
                None => self.bars.multi.add(bar),
            }
        });
        bar.set_position(progress.done);
        // set_length draws at once: only when it changes, and with the position set.
        if bar.length() != Some(progress.total) {
            bar.set_length(progress.total);
        }
    }

    /// Removes the bar and counts the file as done in the overall bar: `moved` is what a
    /// successful transfer moved in all (progress does not tell every byte: a small file
    /// sent in a pipeline reports only its start); the rest of the file, if its size is
    /// known, counts as done without moving (skipped, failed, or resumed from an offset).
    pub(crate) fn finish(self, moved: Option<u64>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            self.bars.multi.remove(bar);
        }
        let Some(overall) = self.bars.overall.get() else {
            return;
        };
        let told = self.last.saturating_sub(self.first.unwrap_or(0));
        let untold = moved.unwrap_or(0).saturating_sub(told);
        match self.total {
            Some(total) => {
                let untold = untold.min(total.saturating_sub(self.last));
                overall.moved(untold);
                overall.skipped(total.saturating_sub(self.last + untold));
            }
            None => overall.moved(untold),
        }
        overall.file_done();
    }
}

fn files_done(done: usize, files: usize) -> String {
    format!("{done}/{files} files")
}

/// The style of a bar counting `counts`, whose rate `meter` knows.
fn style(meter: &Arc<Meter>, counts: Counts) -> ProgressStyle {
    let (amount_meter, rate_meter, left_meter) = (meter.clone(), meter.clone(), meter.clone());
    ProgressStyle::with_template(TEMPLATE)
        .expect("the template is constant and valid")
        .progress_chars("=> ")
        .with_key(
            "amount",
            move |state: &ProgressState, w: &mut dyn fmt::Write| {
                let _ = w.write_str(&amount(state, counts, &amount_meter));
            },
        )
        .with_key("rate", move |_: &ProgressState, w: &mut dyn fmt::Write| {
            if let Some(rate) = rate_meter.rate(Instant::now()) {
                let _ = write!(w, "{}/s", human_size(rate as u64));
            }
        })
        .with_key(
            "left",
            move |state: &ProgressState, w: &mut dyn fmt::Write| {
                if counts == Counts::Bytes {
                    let (len, pos) = (state.len().unwrap_or(0), state.pos());
                    let _ = w.write_str(&time_left(len, pos, &left_meter));
                }
            },
        )
}

/// `done/total` of a bar counting bytes, the bytes moved of one counting files; as wide
/// either way.
fn amount(state: &ProgressState, counts: Counts, meter: &Meter) -> String {
    match counts {
        Counts::Bytes => format!(
            "{:>8}/{:<8}",
            human_size(state.pos()),
            human_size(state.len().unwrap_or(0))
        ),
        Counts::Files => format!("{:>8} {:<8}", human_size(meter.moved()), ""),
    }
}

/// `ETA M:SS` (or `H:MM:SS`) for `pos` of `len` at the rate so far, once there is one and
/// it says less than 100 hours.
fn time_left(len: u64, pos: u64, meter: &Meter) -> String {
    let Some(rate) = meter.rate(Instant::now()) else {
        return String::new();
    };
    let secs = (len.saturating_sub(pos) as f64 / rate).ceil();
    if secs >= 100.0 * 3600.0 {
        return String::new();
    }
    format!("ETA {}", clock(secs as u64))
}

/// `M:SS`, or `H:MM:SS` from an hour on.
fn clock(secs: u64) -> String {
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// The first error writing to stdout other than a closed pipe, if any.
static STDOUT_FAILED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Notes the outcome of a write to stdout. A failure does not stop the transfers (the
/// other lines, the files, still matter), but the command fails once they are done
/// ([`stdout_failure`]): a listing or reports lost on a full disk must not look complete.
/// A closed pipe (`ftclient … list | head`) is not a failure: the reader had enough.
pub(crate) fn stdout_written(result: std::io::Result<()>) {
    if let Err(e) = result {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let mut failed = STDOUT_FAILED.lock().unwrap_or_else(|p| p.into_inner());
            failed.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Flushes stdout and says why writing to it failed, if it did ([`stdout_written`]).
pub(crate) fn stdout_failure() -> Option<String> {
    stdout_written(std::io::stdout().lock().flush());
    STDOUT_FAILED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Mutex;
    use std::thread::sleep;
    use std::time::Duration;

    use indicatif::TermLike;

    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    /// A 100-column terminal that keeps every bar line drawn on it.
    #[derive(Clone, Debug, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl Screen {
        fn bars(&self) -> Vec<String> {
            let lines = self.0.lock().expect("not poisoned");
            lines
                .iter()
                .filter(|line| line.contains(" [") && line.contains("] "))
                .cloned()
                .collect()
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            100
        }
        fn move_cursor_up(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            self.0.lock().expect("not poisoned").push(s.to_owned());
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    fn on_screen() -> (Bars, Screen) {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        (Bars::drawn_on(target), screen)
    }

    fn overall(bars: &Bars) -> &Overall {
        bars.overall.get().expect("an overall bar")
    }

    #[test]
    fn hidden_bars_draw_nothing_and_still_count() {
        let bars = Bars::new(false);
        bars.start(3);
        bars.start_sized(3, 30);
        assert!(
            bars.overall.get().is_none(),
            "nothing is drawn, so no overall bar"
        );
        let mut file = bars.file("a\x1bb");
        assert_eq!(file.label, "\"a\\u{1b}b\"");
        file.update(Progress { done: 0, total: 10 });
        file.update(Progress { done: 7, total: 10 });
        assert_eq!(file.meter.moved(), 7);
        file.finish(None);
        bars.finish();
    }

    #[test]
    fn one_file_has_no_overall_bar() {
        let (bars, _) = on_screen();
        bars.start(1);
        bars.start_sized(1, 10);
        assert!(bars.overall.get().is_none());
    }

    /// A file resumed at 1 GiB of 2 GiB: its bar starts at the offset, and its rate (and the
    /// overall bar's) counts only the MiB moved since, not the GiB already there.
    #[test]
    fn a_resumed_file_rates_only_the_bytes_moved_now() {
        let (bars, _) = on_screen();
        bars.start_sized(2, 3 * GIB);
        let mut file = bars.file("big.bin");
        file.update(Progress {
            done: GIB,
            total: 2 * GIB,
        });
        let bar = file.bar.clone().expect("drawn");
        assert_eq!(bar.position(), GIB);
        sleep(Duration::from_millis(100));
        file.update(Progress {
            done: GIB + MIB,
            total: 2 * GIB,
        });
        // 1 MiB in at least 100 ms: at most 10 MiB/s (the offset would make it GiB/s).
        for meter in [&file.meter, &overall(&bars).meter] {
            assert_eq!(meter.moved(), MIB);
            let rate = meter.rate(Instant::now()).expect("a rate");
            assert!(rate > 0.0 && rate <= 10.0 * MIB as f64, "{rate}");
        }
        assert_eq!(overall(&bars).bar.position(), GIB + MIB);
        let left = time_left(2 * GIB, bar.position(), &file.meter);
        let secs: Vec<u64> = left
            .trim_start_matches("ETA ")
            .split(':')
            .map(|part| part.parse().expect("a clock"))
            .collect();
        assert!(secs[0] >= 1, "{left}: (1 GiB - 1 MiB) at <= 10 MiB/s");

        // Cut short: the rest of it counts as done in the overall bar, not as moved.
        file.finish(None);
        assert_eq!(overall(&bars).bar.position(), 2 * GIB);
        assert_eq!(overall(&bars).meter.moved(), MIB);

        // A small file sent in a pipeline reports its start only; its report says it moved.
        let mut small = bars.file("small.txt");
        small.update(Progress {
            done: 0,
            total: GIB,
        });
        small.finish(Some(GIB));
        assert_eq!(overall(&bars).bar.position(), 3 * GIB);
        assert_eq!(overall(&bars).meter.moved(), MIB + GIB);
        assert_eq!(overall(&bars).bar.prefix(), "2/2 files");
    }

    #[test]
    fn downloads_of_unknown_total_count_files_and_show_bytes() {
        let (bars, screen) = on_screen();
        bars.start(2);
        let mut file = bars.file("a.bin");
        file.update(Progress {
            done: 0,
            total: 4 * MIB,
        });
        file.update(Progress {
            done: 4 * MIB,
            total: 4 * MIB,
        });
        file.finish(Some(4 * MIB));
        let overall = overall(&bars);
        assert_eq!((overall.bar.position(), overall.bar.length()), (1, Some(2)));
        overall.bar.tick();
        let last = screen.bars().pop().expect("drawn");
        assert!(last.starts_with("1/2 files "), "{last:?}");
        assert!(last.contains("4.0 MiB"), "{last:?}");
        assert!(last.contains("B/s"), "{last:?}");
    }

    /// File bars and the overall bar, counting bytes or files, start and end their columns
    /// at the same places.
    #[test]
    fn all_bars_line_up() {
        for sized in [true, false] {
            let (bars, screen) = on_screen();
            if sized {
                bars.start_sized(2, 5 * GIB);
            } else {
                bars.start(2);
            }
            let mut short = bars.file("a");
            let mut long = bars.file("a-name-much-longer-than-twenty-four-columns.bin");
            let mut wide = bars.file("日本語のファイル名はとても長いです.txt");
            for (i, file) in [&mut short, &mut long, &mut wide].into_iter().enumerate() {
                file.update(Progress {
                    done: 0,
                    total: 2 * GIB,
                });
                sleep(Duration::from_millis(5));
                file.update(Progress {
                    done: 512 * MIB + i as u64,
                    total: 2 * GIB,
                });
            }
            for bar in [&short, &long, &wide].iter().filter_map(|f| f.bar.as_ref()) {
                bar.tick();
            }
            overall(&bars).bar.tick();
            let lines = screen.bars();
            assert!(lines.len() >= 4, "{lines:?}");
            let columns = |line: &str| {
                let chars: Vec<char> = line.chars().collect();
                let width = console_width(line);
                let open = chars.iter().position(|&c| c == '[');
                let close = chars.iter().rposition(|&c| c == ']');
                let lead = console_width(&chars[..open.unwrap_or(0)].iter().collect::<String>());
                let tail = chars.len() - close.unwrap_or(0);
                (width, lead, tail)
            };
            let first = columns(&lines[0]);
            assert_eq!(first.0, 100, "{lines:?}");
            for line in &lines {
                assert_eq!(columns(line), first, "sized {sized}: {line:?} in {lines:?}");
            }
        }
    }

    /// Terminal columns of `text`: two for the CJK characters the test uses.
    fn console_width(text: &str) -> usize {
        text.chars()
            .map(|c| if c > '\u{2e80}' { 2 } else { 1 })
            .sum()
    }

    /// Sizes, rates and times left never outgrow their columns, so bars stay aligned.
    #[test]
    fn columns_never_grow() {
        for shift in 0..64 {
            for bytes in [(1u64 << shift) - 1, 1 << shift, (1 << shift) + 1] {
                for near in [bytes, bytes / 1000 * 1023, bytes / 100 * 99] {
                    let size = human_size(near);
                    assert!(size.chars().count() <= 8, "{near}: {size}");
                }
            }
        }
        assert_eq!(human_size(u64::MAX), "16 EiB");
        assert_eq!(format!("ETA {}", clock(100 * 3600 - 1)), "ETA 99:59:59");
        let meter = Meter::default();
        meter.start();
        meter.add(1);
        sleep(Duration::from_millis(2));
        assert_eq!(
            time_left(u64::MAX, 0, &meter),
            "",
            "over 100 hours: not shown"
        );
    }

    #[test]
    fn clock_reads_minutes_then_hours() {
        assert_eq!(clock(0), "0:00");
        assert_eq!(clock(65), "1:05");
        assert_eq!(clock(3600 + 2 * 60 + 3), "1:02:03");
    }
}
