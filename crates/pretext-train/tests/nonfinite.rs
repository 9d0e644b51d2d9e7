//! The non-finite guard: a step whose loss is NaN or infinite is skipped (never trained on),
//! counted, and the run stops with a clear error after too many.

mod common;

use common::Messages;
use pretext_data::embedded_fashion_mnist;
use pretext_train::{pretrain, HostReads, PretrainConfig, RunDir, RunMode, TrainError};
use tch::Device;

/// A SimCLR run whose every loss is NaN (a temperature this small overflows the logits to
/// infinity), with at most 3 non-finite steps and the host reading steps as `reads` says:
/// its error, whether it saved a checkpoint, and the messages about skipped steps.
fn all_nan_run(reads: HostReads) -> (TrainError, bool, Vec<String>) {
    let data: pretext_data::Splits = embedded_fashion_mnist().unwrap().into();
    let mut config = PretrainConfig::default();
    config.train.batch_size = 16;
    config.train.steps = 50;
    config.train.max_nonfinite_steps = 3;
    config.train.log_every = 5;
    config.train.host_reads = reads;
    config.health.knn_every = 0;
    config.method.simclr.temperature = 1e-38;
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(&dir.path().join("run"));
    run.prepare_new(RunMode::New).unwrap();
    let mut messages = Messages::default();
    let error = pretrain(&config, &run, None, Device::Cpu, &data, &mut messages).unwrap_err();
    let skipped = messages
        .0
        .into_iter()
        .filter(|message| message.contains("non-finite"))
        .collect();
    (error, run.checkpoints_dir().exists(), skipped)
}

#[test]
fn nonfinite_losses_are_skipped_counted_and_stop_the_run() {
    let (error, saved, skipped) = all_nan_run(HostReads::EveryStep);
    match &error {
        TrainError::TooManyNonFinite { count, limit } => assert_eq!((*count, *limit), (4, 3)),
        other => panic!("expected TooManyNonFinite, got {other}"),
    }
    // The message names the likely causes: learning rate, data, precision.
    for cause in ["optimizer.lr", "NaN or Inf in the data", "precision"] {
        assert!(error.to_string().contains(cause), "{cause}: {error}");
    }
    assert!(!saved, "nothing was trained, so nothing was saved");
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert_eq!(
        skipped[0],
        "step 1: non-finite loss — step skipped (1 so far)"
    );
}

/// The same with the check decided on the device (`train.host_reads = "log-steps"`, the
/// default on CUDA): the host learns of the skipped steps when it reads a step (every
/// `train.log_every` steps), and stops there.
#[test]
fn nonfinite_losses_decided_on_the_device_stop_the_run_when_read() {
    let (error, saved, skipped) = all_nan_run(HostReads::LogSteps);
    match &error {
        TrainError::TooManyNonFinite { count, limit } => assert_eq!((*count, *limit), (5, 3)),
        other => panic!("expected TooManyNonFinite, got {other}"),
    }
    assert!(!saved, "nothing was trained, so nothing was saved");
    assert_eq!(
        skipped,
        ["steps 1-5: 5 step(s) had a non-finite loss or gradient and were skipped (5 so far)"]
    );
}
