//! Steps decided on the device (`train.host_reads = "log-steps"`, the default on CUDA: the
//! non-finite check, clipping, the AdamW update and the methods' EMA, queue and center
//! updates run without the host reading anything between log steps) train as the host's
//! every-step path does. Run here on the CPU, where both paths exist.

mod common;

use common::{data_for, one_run_at_a_time as turn};
use pretext_methods::MethodName;
use pretext_train::{pretrain, HostReads, NoProgress, RunDir, RunMode};
use tch::Device;

/// The losses logged every 5 steps of a 20-step run, and what the checkpoint says.
fn run(method: MethodName, reads: HostReads) -> (Vec<f64>, Vec<String>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (data, mut config) = data_for(method, dir.path());
    config.method.name = method;
    config.train.batch_size = 16;
    config.train.steps = 20;
    config.train.log_every = 5;
    config.train.host_reads = reads;
    config.health.every = 10;
    config.health.knn_every = 0;
    let run = RunDir::new(&dir.path().join("run"));
    run.prepare_new(RunMode::New).unwrap();
    let outcome = pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress).unwrap();
    assert_eq!(outcome.nonfinite_steps, 0);
    let records = pretext_train::metrics::read_metrics(&run.metrics_path()).unwrap();
    let losses = records.iter().filter_map(|r| r["loss"].as_f64()).collect();
    let keys = records.last().unwrap().keys().cloned().collect();
    (losses, keys, outcome.checkpoint.state.optimizer_steps)
}

#[test]
fn steps_decided_on_the_device_train_as_the_hosts_do() {
    let _turn = turn();
    for method in [
        MethodName::Simclr,
        MethodName::Moco,
        MethodName::Byol,
        MethodName::Dino,
        MethodName::Rotation,
    ] {
        let (host, host_keys, host_updates) = run(method, HostReads::EveryStep);
        let (device, device_keys, device_updates) = run(method, HostReads::LogSteps);
        let name = method.as_str();
        assert_eq!(host.len(), 4, "{name}: {host:?}");
        // The fused AdamW kernel and PyTorch's clipping rule round differently from the
        // host's loop: the same training, not the same bits.
        let mut largest = 0f64;
        for (step, (a, b)) in host.iter().zip(&device).enumerate() {
            let gap = (a - b).abs() / a.abs();
            assert!(gap < 1e-3, "{name}, record {step}: {a} vs {b}");
            largest = largest.max(gap);
        }
        eprintln!("{name}: losses within {largest:.1e} of the host path's");
        assert_eq!(
            host_keys, device_keys,
            "{name}: the same numbers are logged"
        );
        assert_eq!((host_updates, device_updates), (20, 20), "{name}");
    }
}
