//! Progress display: a bar with loss, learning rate, throughput (images/s or sequences/s) and
//! ETA on a terminal; plain lines every 10% otherwise (logs, CI).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use pretext_data::Samples;
use pretext_train::{ProgressSink, StepReport};

pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    started: std::time::Instant,
    /// Throughput unit: "img/s" or "seq/s".
    unit: &'static str,
}

impl Progress {
    /// Progress of training on images.
    pub fn new() -> Progress {
        Progress {
            bar: None,
            total: 0,
            started: std::time::Instant::now(),
            unit: "img/s",
        }
    }

    /// Progress of training on `samples`: images, sequences, rows or clips per second.
    pub fn for_samples(samples: &Samples) -> Progress {
        Progress {
            unit: match samples {
                Samples::Images(_) => "img/s",
                Samples::Tokens(_) => "seq/s",
                Samples::Table(_) => "rows/s",
                Samples::Audio(_) => "clips/s",
            },
            ..Progress::new()
        }
    }
}

impl ProgressSink for Progress {
    fn started(&mut self, first_step: u64, total_steps: u64) {
        self.total = total_steps;
        self.started = std::time::Instant::now();
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total_steps).with_position(first_step);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ETA {eta}",
                )
                .expect("the template is valid"),
            );
            bar.reset_eta();
            self.bar = Some(bar);
        } else {
            eprintln!("pretraining: steps {}..{}", first_step + 1, total_steps);
        }
    }

    fn step(&mut self, report: &StepReport) {
        let message = format!(
            "{}lr {:.2e} {:.0} {}",
            report.loss_text(),
            report.lr,
            report.images_per_second,
            self.unit
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(report.step);
                bar.set_message(message);
            }
            None => {
                let tenth = (self.total / 10).max(1);
                if report.step.is_multiple_of(tenth) || report.step == self.total {
                    eprintln!(
                        "step {}/{} {} ({:.0} s)",
                        report.step,
                        self.total,
                        message,
                        self.started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }

    fn message(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn finished(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

/// Progress through a known number of items (texts embedded, samples checked): a bar on a
/// terminal; otherwise a line every 10% when there are 1,000 items or more.
pub struct ItemProgress {
    bar: Option<ProgressBar>,
    what: &'static str,
    done: u64,
    total: u64,
    started: std::time::Instant,
}

impl ItemProgress {
    /// Progress through `total` items, each called `what` ("texts", "samples").
    pub fn new(what: &'static str, total: u64) -> ItemProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ETA {eta}",
                )
                .expect("the template is valid"),
            );
            bar.set_message(what);
            bar
        });
        ItemProgress {
            bar,
            what,
            done: 0,
            total,
            started: std::time::Instant::now(),
        }
    }

    /// `count` more items are done.
    pub fn advance(&mut self, count: u64) {
        let before = self.done;
        self.done = (self.done + count).min(self.total);
        match &self.bar {
            Some(bar) => bar.set_position(self.done),
            // Short work prints nothing in logs; long work a line per tenth.
            None if self.total < 1000 => {}
            None => {
                let tenth = self.total / 10;
                if self.done / tenth > before / tenth || self.done == self.total {
                    eprintln!(
                        "{}/{} {} ({:.0} s)",
                        self.done,
                        self.total,
                        self.what,
                        self.started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }

    /// Clears the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
