//! End to end on real data: SimCLR pretrains a small CNN for a few hundred steps on the
//! embedded Fashion-MNIST subset (labels unused), and its frozen features must beat the same
//! encoder at random initialization by a clear margin, with k-NN and a linear probe on 600
//! labels, measured on the 2000 held-out images.

use pretext_data::embedded_fashion_mnist;
use pretext_eval::{probe, ProbeConfig};
use pretext_train::{pretrain, NoProgress, PretrainConfig, RunDir, RunMode};
use tch::Device;

#[test]
fn simclr_features_beat_the_random_init_encoder() {
    let data: pretext_data::Splits = embedded_fashion_mnist().unwrap().into();
    let mut config = PretrainConfig::default();
    config.train.steps = 300;
    config.train.batch_size = 128;
    config.health.knn_every = 100;
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(&dir.path().join("run"));
    run.prepare_new(RunMode::New).unwrap();
    let outcome = pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress).unwrap();
    assert_eq!(outcome.nonfinite_steps, 0);

    let report = probe(
        &config,
        &outcome.checkpoint,
        &data,
        &ProbeConfig::default(),
        Device::Cpu,
        true,
    )
    .unwrap();
    println!("{}", report.table());
    let (trained, random) = (&report.rows[0], &report.rows[1]);
    let knn20 = |row: &pretext_eval::ProbeRow| row.knn[0].1;
    // Chance is 10%; the random-init encoder reaches about 60% k-NN on Fashion-MNIST.
    assert!(
        knn20(trained) > knn20(random) + 0.04,
        "k-NN 20: pretrained {:.3} vs random init {:.3}",
        knn20(trained),
        knn20(random)
    );
    // The linear probe's margin is the smaller one: 3.0 points at 300 steps (77.4 vs 74.4%
    // with torch 2.11.0 on a 2-core x86 CPU, 2026-12-07; a hair more on earlier machines),
    // so the bar is 2 points — still far above what an untrained encoder gains over itself.
    assert!(
        trained.linear.unwrap() > random.linear.unwrap() + 0.02,
        "linear: pretrained {:.3} vs random init {:.3}",
        trained.linear.unwrap(),
        random.linear.unwrap()
    );
}
