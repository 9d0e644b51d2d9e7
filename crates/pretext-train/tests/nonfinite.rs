//! The non-finite guard: a step whose loss is NaN or infinite is skipped (never trained on),
//! counted, and the run stops with a clear error after too many.

use pretext_data::embedded_fashion_mnist;
use pretext_train::{
    pretrain, HostReads, NoProgress, PretrainConfig, ProgressSink, RunDir, RunMode, TrainError,
};
use tch::Device;

#[test]
fn nonfinite_losses_are_skipped_counted_and_stop_the_run() {
    let data: pretext_data::Splits = embedded_fashion_mnist().unwrap().into();
    let mut config = PretrainConfig::default();
    config.train.batch_size = 16;
    config.train.steps = 50;
    config.train.max_nonfinite_steps = 3;
    config.health.knn_every = 0;
    // A temperature this small overflows the logits to infinity: every loss is NaN.
    config.method.simclr.temperature = 1e-38;
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(&dir.path().join("run"));
    run.prepare_new(RunMode::New).unwrap();
    let error = pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress).unwrap_err();
    match &error {
        TrainError::TooManyNonFinite { count, limit } => assert_eq!((*count, *limit), (4, 3)),
        other => panic!("expected TooManyNonFinite, got {other}"),
    }
    // The message names the likely causes: learning rate, data, precision.
    for cause in ["optimizer.lr", "NaN or Inf in the data", "precision"] {
        assert!(error.to_string().contains(cause), "{cause}: {error}");
    }
    assert!(
        !run.checkpoints_dir().exists(),
        "nothing was trained, so nothing was saved"
    );
}

/// The same with the check decided on the device (`train.host_reads = "log-steps"`, the
/// default on CUDA): the host learns of the skipped steps when it reads a step (every
/// `train.log_every` steps), and stops there.
#[test]
fn nonfinite_losses_decided_on_the_device_stop_the_run_when_read() {
    let data: pretext_data::Splits = embedded_fashion_mnist().unwrap().into();
    let mut config = PretrainConfig::default();
    config.train.batch_size = 16;
    config.train.steps = 50;
    config.train.max_nonfinite_steps = 3;
    config.train.log_every = 5;
    config.train.host_reads = HostReads::LogSteps;
    config.health.knn_every = 0;
    config.method.simclr.temperature = 1e-38;
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(&dir.path().join("run"));
    run.prepare_new(RunMode::New).unwrap();
    let mut messages = Messages::default();
    let error = pretrain(&config, &run, None, Device::Cpu, &data, &mut messages).unwrap_err();
    match &error {
        TrainError::TooManyNonFinite { count, limit } => assert_eq!((*count, *limit), (5, 3)),
        other => panic!("expected TooManyNonFinite, got {other}"),
    }
    let skipped: Vec<&String> = messages
        .0
        .iter()
        .filter(|m| m.contains("non-finite"))
        .collect();
    assert_eq!(
        skipped,
        ["steps 1-5: 5 step(s) had a non-finite loss or gradient and were skipped (5 so far)"]
    );
    assert!(!run.checkpoints_dir().exists());
}

/// The progress messages of a run.
#[derive(Default)]
struct Messages(Vec<String>);

impl ProgressSink for Messages {
    fn started(&mut self, _: u64, _: u64) {}
    fn step(&mut self, _: &pretext_train::StepReport) {}
    fn message(&mut self, text: &str) {
        self.0.push(text.to_string());
    }
    fn finished(&mut self) {}
}
