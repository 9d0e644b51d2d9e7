//! The "log" stage of the step loop: progress after every step and, when due, one metrics
//! record (the method's numbers, health signals, the k-NN and held-out monitors) that the
//! live health check reads before it is appended to metrics.jsonl.

use std::collections::HashSet;
use std::time::Instant;

use pretext_data::Splits;
use pretext_methods::StepOutput;
use pretext_nn::Encoder;

use crate::config::PretrainConfig;
use crate::error::TrainError;
use crate::health::{live_findings, BatchHealth, HealthContext};
use crate::metrics::MetricsLog;
use crate::metrics_record::{MetricsRecord, StepNumbers};
use crate::monitors::{HeldOutMonitor, KnnMonitor};
use crate::progress::{ProgressSink, StepReport};
use crate::run_dir::RunDir;
use crate::step::Stepped;
use crate::trainer::Model;

/// One finished step, as the log sees it.
pub(crate) struct FinishedStep<'a> {
    /// Steps done (1-based).
    pub done: u64,
    pub epoch: u64,
    /// Examples in the step's batch.
    pub examples: usize,
    pub lr: f64,
    /// On the host, or still on the device when nothing read it (then the progress line
    /// shows the last loss read, and a record reads it).
    pub outcome: &'a Stepped,
    pub output: &'a StepOutput,
    pub nonfinite_steps: u64,
    pub data_wait_seconds: f64,
}

/// The metrics log of a run with the monitors and warnings that go into it.
pub(crate) struct StepLog<'a> {
    config: &'a PretrainConfig,
    total: u64,
    metrics: MetricsLog,
    knn: Option<KnnMonitor>,
    held_out: Option<HeldOutMonitor>,
    health_context: HealthContext,
    /// Signals already warned about: each warns once, the first time it crosses its threshold.
    warned: HashSet<&'static str>,
    /// When the log was opened, just before the first step: `elapsed_seconds` counts from it.
    started: Instant,
    /// Throughput since the last record.
    window_start: Instant,
    window_examples: usize,
    /// The loss of the last step read on the host (the progress line's, between reads).
    last_loss: Option<f64>,
}

impl<'a> StepLog<'a> {
    /// Opens the run's metrics log (dropping what was logged after `resumed_at`) and puts
    /// the monitors' data on `device`.
    pub(crate) fn open(
        config: &'a PretrainConfig,
        run: &RunDir,
        resumed_at: Option<u64>,
        data: &Splits,
        model: &Model,
        total: u64,
    ) -> Result<StepLog<'a>, TrainError> {
        let device = model.store.device();
        Ok(StepLog {
            config,
            total,
            metrics: MetricsLog::open(&run.metrics_path(), resumed_at)?,
            knn: KnnMonitor::new(&data.train, config, device),
            held_out: HeldOutMonitor::new(&data.test, config, device),
            health_context: config.health_context(model.method.encoder().dim(), total),
            warned: HashSet::new(),
            started: Instant::now(),
            window_start: Instant::now(),
            window_examples: 0,
            last_loss: None,
        })
    }

    /// Reports `step` to `progress` and, when a record is due, measures what is due, warns
    /// about signals that crossed their thresholds and appends the record.
    pub(crate) fn step(
        &mut self,
        step: &FinishedStep,
        model: &Model,
        progress: &mut dyn ProgressSink,
    ) -> Result<(), TrainError> {
        let (config, done, total) = (self.config, step.done, self.total);
        self.window_examples += step.examples;
        let images_per_second =
            self.window_examples as f64 / self.window_start.elapsed().as_secs_f64().max(1e-9);
        if let Some(outcome) = step.outcome.known() {
            self.last_loss = Some(outcome.loss);
        }
        progress.step(&StepReport {
            step: done,
            total_steps: total,
            loss: self.last_loss,
            lr: step.lr,
            images_per_second,
        });
        let health_due = due(done, config.health.every, total);
        let knn_due = self.knn.is_some() && due(done, config.health.knn_every, total);
        let held_out_due =
            self.held_out.is_some() && due(done, config.health.held_out_every, total);
        if !(due(done, config.train.log_every, total) || health_due || knn_due || held_out_due) {
            return Ok(());
        }
        let outcome = step.outcome.read();
        self.last_loss = Some(outcome.loss);
        let mut record = MetricsRecord::new(&StepNumbers {
            step: done,
            epoch: step.epoch,
            loss: outcome.loss,
            lr: step.lr,
            grad_norm: outcome.grad_norm,
            images_per_second,
            data_wait_seconds: step.data_wait_seconds,
            elapsed_seconds: self.started.elapsed().as_secs_f64(),
            nonfinite_steps: step.nonfinite_steps,
        });
        record.add_named(
            step.output
                .metrics
                .iter()
                .map(|(name, metric)| (name.clone(), metric.value())),
        );
        if health_due {
            let output = step.output;
            let health = BatchHealth::measure(&output.representations, output.projections.as_ref());
            let named = health
                .named()
                .map(|(name, value)| (name.to_string(), value));
            record.add_named(named.chain(model.method.health_metrics()));
        }
        if let (true, Some(knn)) = (knn_due, &self.knn) {
            record.add_knn(knn.accuracy(model.method.encoder()), knn.chance());
        }
        if let (true, Some(held_out)) = (held_out_due, &self.held_out) {
            if let Some(value) = held_out.loss(model) {
                record.add_held_out_loss(value);
                progress.message(&format!(
                    "step {done}: held-out loss {value:.4} (training loss {:.4})",
                    outcome.loss
                ));
            }
        }
        for finding in live_findings(record.fields(), &self.health_context) {
            if self.warned.insert(finding.signal) {
                progress.message(&format!(
                    "step {done}: WARNING {}: {}",
                    finding.signal, finding.message
                ));
            }
        }
        self.metrics.write(record.fields())?;
        self.window_start = Instant::now();
        self.window_examples = 0;
        Ok(())
    }
}

/// Whether an action every `every` steps (0 = never) is due after `done` of `total` steps;
/// the last step is always due.
pub(crate) fn due(done: u64, every: u64, total: u64) -> bool {
    every > 0 && (done.is_multiple_of(every) || done == total)
}
