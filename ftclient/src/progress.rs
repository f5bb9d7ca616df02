//! Progress bars on stderr, drawn with indicatif only for a person at a terminal: one bar per
//! file (bytes done of total, rate, ETA) and, with several files, an overall bar. Lines
//! printed through [`Bars`] never get mixed up with a bar being drawn.

use std::cell::{Cell, OnceCell};
use std::io::Write;

use ftlib::Progress;
use ftlib::text::escape;
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::shorten;

const FILE_TEMPLATE: &str =
    "{prefix:24} [{wide_bar}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}  ETA {eta:>3}";
const OVERALL_TEMPLATE: &str = "{prefix:24} [{wide_bar}] {pos}/{len} files, {msg}, {elapsed}";
const TREE_TEMPLATE: &str =
    "{prefix:9} [{wide_bar}] {bytes:>9}/{total_bytes:<9} {bytes_per_sec:>11} ETA {eta:>3}  {msg}";

/// The bars of one invocation; with drawing off, nothing is ever drawn.
#[derive(Debug)]
pub(crate) struct Bars {
    multi: MultiProgress,
    /// Drawn only with several files; set once by [`Bars::start`].
    overall: OnceCell<ProgressBar>,
    /// Bytes moved by the files finished so far.
    moved: Cell<u64>,
    /// For a tree: files done and to do (the overall bar then counts bytes).
    tree: Cell<Option<(usize, usize)>>,
}

impl Bars {
    /// Bars drawn on stderr when `draw`, or never drawn.
    pub(crate) fn new(draw: bool) -> Bars {
        let target = if draw {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
            overall: OnceCell::new(),
            moved: Cell::new(0),
            tree: Cell::new(None),
        }
    }

    /// Starts the overall bar when more than one file is to be moved.
    pub(crate) fn start(&self, files: usize) {
        if files > 1 && !self.multi.is_hidden() && self.overall.get().is_none() {
            let bar = ProgressBar::new(files as u64)
                .with_style(style(OVERALL_TEMPLATE))
                .with_prefix("all files")
                .with_message(HumanBytes(0).to_string());
            let bar = self.multi.add(bar);
            // Drawn now, not only once the first file is done.
            bar.tick();
            // Empty, as checked above.
            let _ = self.overall.set(bar);
        }
    }

    /// Starts the overall bar of a tree: `bytes` in all (with rate and time left), and
    /// files done of `files`.
    pub(crate) fn start_tree(&self, files: usize, bytes: u64) {
        if self.multi.is_hidden() || self.overall.get().is_some() {
            return;
        }
        self.tree.set(Some((0, files)));
        let bar = ProgressBar::new(bytes)
            .with_style(style(TREE_TEMPLATE))
            .with_prefix("all files")
            .with_message(format!("0/{files} files"));
        let bar = self.multi.add(bar);
        bar.tick();
        let _ = self.overall.set(bar);
    }

    /// The bar of one file, drawn once its size is known.
    pub(crate) fn file(&self, name: &str) -> FileBar<'_> {
        FileBar {
            bars: self,
            label: shorten(&escape(name), 24),
            bar: None,
            moved: 0,
        }
    }

    /// Clears every bar; call before the process ends.
    pub(crate) fn finish(&self) {
        if let Some(overall) = self.overall.get() {
            overall.finish_and_clear();
        }
        let _ = self.multi.clear();
    }

    /// Prints `line` on stdout, above the bars.
    pub(crate) fn out(&self, line: &str) {
        self.multi.suspend(|| {
            // A closed stdout must not stop the other transfers.
            let _ = writeln!(std::io::stdout().lock(), "{line}");
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

    fn file_finished(&self, moved: u64) {
        self.moved.set(self.moved.get() + moved);
        if let Some((done, files)) = self.tree.get() {
            self.tree.set(Some((done + 1, files)));
            if let Some(overall) = self.overall.get() {
                overall.set_message(format!("{}/{files} files", done + 1));
            }
            return;
        }
        if let Some(overall) = self.overall.get() {
            overall.set_message(HumanBytes(self.moved.get()).to_string());
            overall.inc(1);
        }
    }
}

/// One file's bar; records how many bytes moved, for the overall bar.
#[derive(Debug)]
pub(crate) struct FileBar<'a> {
    bars: &'a Bars,
    label: String,
    bar: Option<ProgressBar>,
    moved: u64,
}

impl FileBar<'_> {
    /// The library's progress callback.
    pub(crate) fn update(&mut self, progress: Progress) {
        if self.bars.tree.get().is_some() {
            if let Some(overall) = self.bars.overall.get() {
                overall.inc(progress.done.saturating_sub(self.moved));
            }
        }
        self.moved = progress.done;
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(progress.total)
                .with_style(style(FILE_TEMPLATE))
                .with_prefix(self.label.clone());
            match self.bars.overall.get() {
                Some(overall) => self.bars.multi.insert_before(overall, bar),
                None => self.bars.multi.add(bar),
            }
        });
        bar.set_length(progress.total);
        bar.set_position(progress.done);
    }

    /// Removes the bar and counts the file, with the bytes its last progress said, in the
    /// overall bar.
    pub(crate) fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            self.bars.multi.remove(bar);
        }
        self.bars.file_finished(self.moved);
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the templates are constant and valid")
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_valid_and_hidden_bars_record_progress() {
        let bars = Bars::new(false);
        bars.start(3);
        assert!(
            bars.overall.get().is_none(),
            "nothing is drawn, so no overall bar"
        );
        let mut file = bars.file("a\x1bb");
        assert_eq!(file.label, "\"a\\u{1b}b\"");
        file.update(Progress { done: 0, total: 10 });
        file.update(Progress { done: 7, total: 10 });
        file.finish();
        assert_eq!(bars.moved.get(), 7);
        bars.finish();
        style(FILE_TEMPLATE);
        style(OVERALL_TEMPLATE);
        style(TREE_TEMPLATE);
    }
}
