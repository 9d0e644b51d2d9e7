//! Fine-tuning with its steps decided on the device (the run's `train.host_reads =
//! "log-steps"`, the default on CUDA: the host reads each epoch's loss and skipped steps
//! once, at its end) trains as the host's every-step path does. Run on the CPU, where both
//! paths exist.

use pretext_data::embedded_fashion_mnist;
use pretext_eval::finetune::{finetune, FinetuneConfig};
use pretext_train::{HostReads, PretrainConfig};
use tch::Device;

/// One fine-tuning at a time: both draw from libtorch's global generator, so two running
/// at once would change each other's draws (and the paths' comparison).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// 1000 training and 400 held-out images of the embedded Fashion-MNIST subset.
fn small_data() -> pretext_data::Splits {
    let data = embedded_fashion_mnist().unwrap();
    pretext_data::ImageSplits {
        name: data.name,
        train: data.train.subset(&(0..1000).collect::<Vec<_>>()),
        test: data.test.subset(&(0..400).collect::<Vec<_>>()),
    }
    .into()
}

fn epochs(reads: HostReads) -> (Vec<f64>, f64) {
    let data = small_data();
    let mut config = PretrainConfig::default();
    config.train.host_reads = reads;
    let settings = FinetuneConfig {
        labels: "400".into(),
        epochs: 6,
        lr: 3e-3,
        from_scratch: true,
        augment: true,
        probe_init: false,
        ..FinetuneConfig::default()
    };
    let report = finetune(&config, None, &data, &settings, Device::Cpu, &mut |_| {}).unwrap();
    let losses = report.epochs.iter().map(|epoch| epoch.loss).collect();
    (losses, report.test_accuracy)
}

#[test]
fn fine_tuning_decided_on_the_device_trains_as_the_hosts_does() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (host, host_accuracy) = epochs(HostReads::EveryStep);
    let (device, device_accuracy) = epochs(HostReads::LogSteps);
    eprintln!("epoch losses {host:?} vs {device:?}; accuracy {host_accuracy} vs {device_accuracy}");
    assert_eq!(host.len(), 6);
    for (epoch, (a, b)) in host.iter().zip(&device).enumerate() {
        assert!((a - b).abs() < 1e-3 * a.abs(), "epoch {epoch}: {a} vs {b}");
    }
    // It learned (10 classes: chance is 10%), both ways alike.
    assert!(host_accuracy > 0.25, "{host_accuracy}");
    assert!(
        (host_accuracy - device_accuracy).abs() < 0.01,
        "{host_accuracy} vs {device_accuracy}"
    );
}

/// A learning rate that blows the weights up makes every later step non-finite: both paths
/// skip those steps and stop past `train.max_nonfinite_steps` with the same error; the
/// device path says where, once the epoch's numbers are read.
#[test]
fn both_paths_skip_non_finite_steps_and_stop_past_the_limit() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let data = small_data();
    for reads in [HostReads::EveryStep, HostReads::LogSteps] {
        let mut config = PretrainConfig::default();
        config.train.host_reads = reads;
        config.train.max_nonfinite_steps = 3;
        let settings = FinetuneConfig {
            labels: "400".into(),
            epochs: 6,
            lr: 1e35,
            warmup_fraction: 0.0,
            cross_validate: false,
            from_scratch: true,
            probe_init: false,
            ..FinetuneConfig::default()
        };
        let mut said = Vec::new();
        let error = finetune(&config, None, &data, &settings, Device::Cpu, &mut |line| {
            said.push(line.to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(error.contains("non-finite"), "{reads:?}: {error}");
        assert!(error.contains("(limit 3,"), "{reads:?}: {error}");
        let skipped = said.iter().any(|line| {
            line.starts_with("epoch ") && line.contains("non-finite") && line.contains("skipped")
        });
        assert!(
            skipped,
            "{reads:?}: nothing said of the skipped steps: {said:?}"
        );
    }
}
