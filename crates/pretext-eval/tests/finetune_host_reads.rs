//! Fine-tuning with its steps decided on the device (the run's `train.host_reads =
//! "log-steps"`, the default on CUDA: the host reads each epoch's loss and skipped steps
//! once, at its end) trains as the host's every-step path does. Run on the CPU, where both
//! paths exist.

use pretext_data::embedded_fashion_mnist;
use pretext_eval::finetune::{finetune, FinetuneConfig};
use pretext_train::{HostReads, PretrainConfig};
use tch::Device;

fn epochs(reads: HostReads) -> (Vec<f64>, f64) {
    let data = embedded_fashion_mnist().unwrap();
    let data: pretext_data::Splits = pretext_data::ImageSplits {
        name: data.name,
        train: data.train.subset(&(0..1000).collect::<Vec<_>>()),
        test: data.test.subset(&(0..400).collect::<Vec<_>>()),
    }
    .into();
    let mut config = PretrainConfig::default();
    config.train.host_reads = reads;
    let settings = FinetuneConfig {
        labels: "400".into(),
        epochs: 6,
        lr: 3e-3,
        from_scratch: true,
        probe_init: false,
        ..FinetuneConfig::default()
    };
    let report = finetune(&config, None, &data, &settings, Device::Cpu, &mut |_| {}).unwrap();
    let losses = report.epochs.iter().map(|epoch| epoch.loss).collect();
    (losses, report.test_accuracy)
}

#[test]
fn fine_tuning_decided_on_the_device_trains_as_the_hosts_does() {
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
