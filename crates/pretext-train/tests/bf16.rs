//! `train.precision = "bf16"` on the CPU (autocast works the same way there as on CUDA):
//! every method trains with finite losses and saves float32 checkpoints, and SimCLR learns
//! as well as in float32.

mod common;

use common::{data_for, one_run_at_a_time as turn, simclr_150_steps};
use pretext_methods::MethodName;
use pretext_nn::Precision;
use pretext_train::{pretrain, NoProgress, PretrainConfig, RunDir, RunMode};
use tch::{Device, Kind, Tensor};

#[test]
fn every_method_trains_in_bf16_and_saves_float32_checkpoints() {
    let _turn = turn();
    for method in MethodName::ALL {
        let dir = tempfile::tempdir().unwrap();
        let (data, base) = data_for(method, dir.path());
        let mut config = PretrainConfig {
            data: base.data.clone(),
            backbone: base.backbone.clone(),
            ..PretrainConfig::default()
        };
        config.method.name = method;
        config.train.precision = Precision::Bf16;
        config.train.steps = 3;
        config.train.batch_size = if method.modality() == "images" { 32 } else { 8 };
        config.health.every = 3;
        config.health.knn_every = 0;
        let name = method.as_str();
        let run = RunDir::new(&dir.path().join("run"));
        run.prepare_new(RunMode::New).unwrap();
        let outcome = pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(
            outcome.last_loss.is_finite(),
            "{name}: {}",
            outcome.last_loss
        );
        assert_eq!(outcome.nonfinite_steps, 0, "{name}");
        let step = outcome.checkpoint.state.step;
        let folder = run.checkpoints_dir().join(format!("step-{step}"));
        for file in ["weights", "method_state", "optimizer"] {
            let path = folder.join(format!("{file}.safetensors"));
            for (tensor_name, tensor) in Tensor::read_safetensors(&path).unwrap() {
                assert!(
                    !matches!(tensor.kind(), Kind::BFloat16 | Kind::Half),
                    "{name}: {tensor_name} in {file} is {:?}",
                    tensor.kind()
                );
            }
        }
    }
}

/// bf16 changes the arithmetic, not what is learned: SimCLR's k-NN accuracy after the same
/// steps is within 3 points of float32's, both far above the 10% of chance.
#[test]
fn simclr_learns_as_well_in_bf16_as_in_float32() {
    let _turn = turn();
    let knn = |precision| simclr_150_steps(|config| config.train.precision = precision).1;
    let (fp32, bf16) = (knn(Precision::Fp32), knn(Precision::Bf16));
    eprintln!("k-NN accuracy after 150 steps: fp32 {fp32:.4}, bf16 {bf16:.4}");
    assert!(fp32 > 0.5 && bf16 > 0.5, "fp32 {fp32}, bf16 {bf16}");
    assert!((fp32 - bf16).abs() < 0.03, "fp32 {fp32}, bf16 {bf16}");
}
