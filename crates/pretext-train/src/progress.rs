//! How a run reports its progress: a sink the CLI draws as a bar and tests ignore.

/// What the progress display gets after each step.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// Steps done (1-based).
    pub step: u64,
    pub total_steps: u64,
    /// The loss of the last step the host read: this one, or with `train.host_reads =
    /// "log-steps"` the last logged one (None before the first).
    pub loss: Option<f64>,
    pub lr: f64,
    pub images_per_second: f64,
}

impl StepReport {
    /// "loss 2.9419 " for a progress line, or nothing before the host has read a loss.
    pub fn loss_text(&self) -> String {
        self.loss
            .map(|loss| format!("loss {loss:.4} "))
            .unwrap_or_default()
    }
}

/// Receives progress; the CLI draws a bar, tests ignore it.
pub trait ProgressSink {
    fn started(&mut self, first_step: u64, total_steps: u64);
    fn step(&mut self, report: &StepReport);
    /// A line for the user (warnings, checkpoint notices).
    fn message(&mut self, text: &str);
    fn finished(&mut self);
}

/// Shows nothing: for tests and library callers that do not want progress.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn started(&mut self, _: u64, _: u64) {}
    fn step(&mut self, _: &StepReport) {}
    fn message(&mut self, _: &str) {}
    fn finished(&mut self) {}
}
