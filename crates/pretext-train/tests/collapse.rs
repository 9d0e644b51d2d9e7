//! The collapse detector fires on a run built to collapse and stays quiet on a healthy one,
//! both trained for real on the embedded Fashion-MNIST subset.
//!
//! The collapsing run is BYOL stripped of everything that prevents collapse: no predictor,
//! no batch norm in the projector, and a target that copies the online network at every step
//! (momentum 0) — SimSiam without its predictor, which Chen & He (2021, fig. 1) show collapse
//! within a few epochs. The healthy run is BYOL with its defaults.

mod common;

use common::Messages;
use pretext_data::embedded_fashion_mnist;
use pretext_methods::MethodName;
use pretext_train::health::{review, Finding};
use pretext_train::{pretrain, PretrainConfig, RunDir, RunMode};
use tch::Device;

static ONE_RUN_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn byol(steps: u64) -> PretrainConfig {
    let mut config = PretrainConfig::default();
    config.method.name = MethodName::Byol;
    config.train.batch_size = 64;
    config.train.steps = steps;
    config.train.checkpoint_every = 0;
    config.health.every = 10;
    config.health.knn_every = 0;
    config
}

fn train_and_review(config: &PretrainConfig, messages: &mut Messages) -> Vec<Finding> {
    let data: pretext_data::Splits = embedded_fashion_mnist().unwrap().into();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(&dir.path().join("run"));
    run.prepare_new(RunMode::New).unwrap();
    let outcome = pretrain(config, &run, None, Device::Cpu, &data, messages).unwrap();
    let records = pretext_train::metrics::read_metrics(&run.metrics_path()).unwrap();
    let context = config.health_context(config.backbone.output_dim(), outcome.steps_run);
    review(&records, &context)
}

#[test]
fn byol_without_predictor_batch_norm_or_momentum_is_flagged_as_collapsed() {
    let _turn = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut config = byol(80);
    config.method.byol.use_predictor = false;
    config.method.byol.projector.batch_norm = false;
    config.method.byol.base_momentum = 0.0;
    let mut messages = Messages::default();
    let findings = train_and_review(&config, &mut messages);
    let collapsed: Vec<&Finding> = findings.iter().filter(|f| f.collapse).collect();
    assert!(!collapsed.is_empty(), "not flagged: {findings:#?}");
    assert!(
        collapsed.iter().any(|f| f.signal == "projection spread"),
        "{collapsed:#?}"
    );
    assert!(
        messages.0.iter().any(|m| m.contains("COLLAPSE")),
        "pretrain printed no live warning: {:?}",
        messages.0
    );
}

#[test]
fn healthy_byol_is_not_flagged() {
    let _turn = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let findings = train_and_review(&byol(80), &mut Messages::default());
    let collapsed: Vec<&Finding> = findings.iter().filter(|f| f.collapse).collect();
    assert!(collapsed.is_empty(), "false alarm: {collapsed:#?}");
    assert!(findings.iter().any(|f| f.signal == "projection spread"));
}
