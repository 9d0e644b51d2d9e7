//! What metrics.jsonl holds and when.

use pretext_data::embedded_fashion_mnist;
use pretext_train::metrics::read_metrics;
use pretext_train::{pretrain, NoProgress, PretrainConfig, RunDir, RunMode};
use tch::Device;

/// Regression: health signals were only computed on steps that were also multiples of
/// `train.log_every`, so `log_every = 30, health.every = 20` logged them at step 60 only.
#[test]
fn health_signals_are_logged_when_due_even_off_the_log_interval() {
    let data: pretext_data::Splits = embedded_fashion_mnist().unwrap().into();
    let mut config = PretrainConfig::default();
    config.train.batch_size = 16;
    config.train.steps = 45;
    config.train.log_every = 30;
    config.health.every = 20;
    config.health.knn_every = 25;
    config.health.knn_slice = 50;
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(&dir.path().join("run"));
    run.prepare_new(RunMode::New).unwrap();
    pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress).unwrap();

    let records = read_metrics(&run.metrics_path()).unwrap();
    let steps_with = |key: &str| -> Vec<u64> {
        records
            .iter()
            .filter(|record| record.contains_key(key))
            .map(|record| record["step"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(steps_with("loss"), vec![20, 25, 30, 40, 45]);
    assert_eq!(steps_with("effective_rank"), vec![20, 40, 45]);
    assert_eq!(steps_with("knn_accuracy"), vec![25, 45]);
    for record in &records {
        for key in [
            "loss",
            "lr",
            "grad_norm",
            "images_per_second",
            "data_wait_seconds",
            "elapsed_seconds",
            "epoch",
        ] {
            assert!(
                record.contains_key(key),
                "step {} lacks {key}",
                record["step"]
            );
        }
    }
}
