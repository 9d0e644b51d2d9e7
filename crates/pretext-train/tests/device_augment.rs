//! `data.augment = "device"` on the CPU: SimCLR trains on views made by batched tensor ops
//! from the host path's seeded draws, and learns as well as with the host's views.

mod common;

use common::one_run_at_a_time as turn;
use pretext_data::{embedded_fashion_mnist, AugmentPlace};
use pretext_train::{pretrain, NoProgress, PretrainConfig, RunDir, RunMode};
use tch::Device;

/// The losses of every step and the final monitoring k-NN accuracy of 150 SimCLR steps on
/// 2000 embedded images, with views made where `augment` says.
fn simclr(augment: AugmentPlace) -> (Vec<f64>, f64) {
    let data = embedded_fashion_mnist().unwrap();
    let data: pretext_data::Splits = pretext_data::ImageSplits {
        name: data.name,
        train: data.train.subset(&(0..2000).collect::<Vec<_>>()),
        test: data.test.subset(&(0..16).collect::<Vec<_>>()),
    }
    .into();
    let mut config = PretrainConfig::default();
    config.data.augment = augment;
    config.train.steps = 150;
    config.train.batch_size = 64;
    config.health.knn_every = 150;
    config.health.knn_slice = 1000;
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(&dir.path().join("run"));
    run.prepare_new(RunMode::New).unwrap();
    pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress).unwrap();
    let records = pretext_train::metrics::read_metrics(&run.metrics_path()).unwrap();
    let losses = records
        .iter()
        .filter_map(|record| record["loss"].as_f64())
        .collect();
    let knn = records
        .iter()
        .rev()
        .find_map(|record| record["knn_accuracy"].as_f64())
        .expect("the last step logs the k-NN accuracy");
    (losses, knn)
}

/// The device's views come from the same draws: the first logged losses agree to float
/// rounding (the views differ by at most ~1e-6), and after 150 steps the k-NN accuracy is
/// within 1 point of the host path's, far above the 10% of chance.
#[test]
fn simclr_learns_as_well_with_views_made_on_the_device() {
    let _turn = turn();
    let (host_losses, host) = simclr(AugmentPlace::Host);
    let (device_losses, device) = simclr(AugmentPlace::Device);
    eprintln!("k-NN accuracy after 150 steps: host views {host:.4}, device views {device:.4}");
    eprintln!("losses: host {host_losses:?}\n device {device_losses:?}");
    assert_eq!(host_losses.len(), device_losses.len());
    let (first_host, first_device) = (host_losses[0], device_losses[0]);
    assert!(
        ((first_host - first_device) / first_host).abs() < 1e-5,
        "first logged loss: host {first_host}, device {first_device}"
    );
    assert!(host > 0.5 && device > 0.5, "host {host}, device {device}");
    assert!(
        (host - device).abs() <= 0.01,
        "host {host}, device {device}"
    );
}
