//! The non-finite guard: a step whose loss is NaN or infinite is skipped (never trained on),
//! counted, and the run stops with a clear error after too many.

use pretext_data::embedded_fashion_mnist;
use pretext_train::{pretrain, NoProgress, PretrainConfig, RunDir, RunMode, TrainError};
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
