//! Resume is bit-identical on CPU: 2N steps in one go give exactly the weights, the method's
//! untrained state (EMA networks, MoCo's queue, DINO's center), the optimizer state and the
//! logged losses of N steps, a stop, and N more after `--resume`, for every method: the image
//! methods on the embedded Fashion-MNIST subset, the text, table and audio methods on small
//! files written here (what is checked is the run, not what it learns).

mod common;

use common::{data_for, one_run_at_a_time};
use pretext_methods::MethodName;
use pretext_train::{
    pretrain, Checkpoint, NoProgress, PretrainConfig, ProgressSink, RunDir, RunMode, StepReport,
};
use serde_json::Value;
use tch::Device;

fn config(steps: u64) -> PretrainConfig {
    let mut config = PretrainConfig::default();
    config.train.batch_size = 32;
    config.train.steps = steps;
    config.train.log_every = 1;
    config.train.checkpoint_every = 5;
    config.optimizer.warmup_steps = 3;
    config.health.every = 5;
    config.health.knn_every = 5;
    config.health.knn_slice = 100;
    config.seed = 11;
    config
}

/// Losses by step, from metrics.jsonl (timing fields differ between runs, losses must not).
fn losses(run: &RunDir) -> Vec<(u64, String)> {
    pretext_train::metrics::read_metrics(&run.metrics_path())
        .unwrap()
        .iter()
        .map(|record| (record["step"].as_u64().unwrap(), record["loss"].to_string()))
        .collect()
}

fn read(path: std::path::PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn resumed_simclr_run_is_bit_identical_to_an_uninterrupted_one() {
    assert_resume_is_bit_identical(MethodName::Simclr);
}

#[test]
fn resumed_moco_run_keeps_its_queue_and_key_encoder_bit_for_bit() {
    assert_resume_is_bit_identical(MethodName::Moco);
}

#[test]
fn resumed_dino_run_keeps_its_center_and_teacher_bit_for_bit() {
    assert_resume_is_bit_identical(MethodName::Dino);
}

#[test]
fn resumed_byol_run_keeps_its_target_bit_for_bit() {
    assert_resume_is_bit_identical(MethodName::Byol);
}

#[test]
fn resumed_rotation_and_jigsaw_runs_are_bit_identical() {
    assert_resume_is_bit_identical(MethodName::Rotation);
    assert_resume_is_bit_identical(MethodName::Jigsaw);
}

/// MAE draws its patch masks from libtorch's generator, re-seeded every step.
#[test]
fn resumed_mae_run_draws_the_same_masks_and_is_bit_identical() {
    assert_resume_is_bit_identical(MethodName::Mae);
}

/// BERT's masks are drawn on the host from the seeded view streams.
#[test]
fn resumed_bert_mlm_run_draws_the_same_masks_and_is_bit_identical() {
    assert_resume_is_bit_identical(MethodName::BertMlm);
}

#[test]
fn resumed_gpt_run_is_bit_identical() {
    assert_resume_is_bit_identical(MethodName::Gpt);
}

/// The table methods draw their corruptions from the training split's marginals.
#[test]
fn resumed_scarf_vime_and_corruption_runs_are_bit_identical() {
    assert_resume_is_bit_identical(MethodName::Scarf);
    assert_resume_is_bit_identical(MethodName::Vime);
    assert_resume_is_bit_identical(MethodName::Corruption);
}

/// wav2vec 2.0 keeps its codebook temperature schedule and draws its span masks and
/// distractors from the seeded streams.
#[test]
fn resumed_wav2vec2_run_is_bit_identical() {
    assert_resume_is_bit_identical(MethodName::Wav2vec2);
}

fn assert_resume_is_bit_identical(method: MethodName) {
    let _turn = one_run_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (data, base) = data_for(method, dir.path());
    // 20 steps killed after 10 for the images; 10 killed after 5 for the rest, whose data
    // is smaller.
    let total: u64 = if method.modality() == "images" {
        20
    } else {
        10
    };
    let config = |steps| {
        let mut config = config(steps);
        config.method.name = method;
        config.data = base.data.clone();
        config.backbone = base.backbone.clone();
        if method.modality() != "images" {
            config.train.batch_size = 8;
            config.health.knn_slice = 20;
        }
        config
    };

    // One run of 20 steps.
    let straight = RunDir::new(&dir.path().join("straight"));
    straight.prepare_new(RunMode::New).unwrap();
    pretrain(
        &config(total),
        &straight,
        None,
        Device::Cpu,
        &data,
        &mut NoProgress,
    )
    .unwrap();

    // The same 20-step run, killed during step 11 (after the step-10 checkpoint), resumed.
    let resumed = RunDir::new(&dir.path().join("resumed"));
    resumed.prepare_new(RunMode::New).unwrap();
    let plan = config(total);
    run_until(&plan, &resumed, &data, total / 2);
    let (checkpoint, _) = Checkpoint::latest(&resumed.checkpoints_dir()).unwrap();
    let checkpoint = checkpoint.unwrap();
    assert_eq!(checkpoint.state.step, total / 2);
    pretrain(
        &plan,
        &resumed,
        Some(checkpoint),
        Device::Cpu,
        &data,
        &mut NoProgress,
    )
    .unwrap();

    for file in [
        "weights.safetensors",
        "method_state.safetensors",
        "optimizer.safetensors",
        "state.json",
    ] {
        let a = read(
            straight
                .checkpoints_dir()
                .join(format!("step-{total}"))
                .join(file),
        );
        let b = read(
            resumed
                .checkpoints_dir()
                .join(format!("step-{total}"))
                .join(file),
        );
        assert!(
            a == b,
            "{}: {file} differs between the uninterrupted and the resumed run",
            method.as_str()
        );
    }
    let has_untrained_state = matches!(
        method,
        MethodName::Moco | MethodName::Byol | MethodName::Dino
    );
    assert!(
        losses(&straight).iter().all(|(_, loss)| loss != "null"),
        "{}: every logged loss is finite",
        method.as_str()
    );
    if has_untrained_state {
        let state = read(
            straight
                .checkpoints_dir()
                .join(format!("step-{total}"))
                .join("method_state.safetensors"),
        );
        assert!(
            state.len() > 1000,
            "{} saves its untrained state",
            method.as_str()
        );
    }
    assert_eq!(losses(&straight), losses(&resumed), "{}", method.as_str());
    assert_eq!(losses(&straight).len(), total as usize);
    let knn: Vec<Value> = pretext_train::metrics::read_metrics(&resumed.metrics_path())
        .unwrap()
        .into_iter()
        .filter_map(|record| record.get("knn_accuracy").cloned())
        .collect();
    assert_eq!(
        knn.len() as u64,
        total / 5,
        "{}: k-NN logged every 5 steps",
        method.as_str()
    );
}

/// Runs `config` from scratch but stops (as a kill would) once `stop_at` steps are done.
fn run_until(config: &PretrainConfig, run: &RunDir, data: &pretext_data::Splits, stop_at: u64) {
    struct StopAt(u64);
    impl ProgressSink for StopAt {
        fn started(&mut self, _: u64, _: u64) {}
        fn step(&mut self, report: &StepReport) {
            if report.step == self.0 + 1 {
                panic!("simulated kill");
            }
        }
        fn message(&mut self, _: &str) {}
        fn finished(&mut self) {}
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pretrain(config, run, None, Device::Cpu, data, &mut StopAt(stop_at))
    }));
    assert!(
        result.is_err(),
        "the run was meant to be killed after step {stop_at}"
    );
}

/// The data workers only change when a batch is built, never what is in it: 1 worker and 3
/// workers train to the same weights.
#[test]
fn the_number_of_data_workers_does_not_change_the_run() {
    let _turn = one_run_at_a_time();
    let data: pretext_data::Splits = pretext_data::embedded_fashion_mnist().unwrap().into();
    let dir = tempfile::tempdir().unwrap();
    let weights = |workers: usize| {
        let mut config = config(8);
        config.data.workers = workers;
        config.health.knn_every = 0;
        let run = RunDir::new(&dir.path().join(format!("workers-{workers}")));
        run.prepare_new(RunMode::New).unwrap();
        pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress).unwrap();
        read(
            run.checkpoints_dir()
                .join("step-8")
                .join("weights.safetensors"),
        )
    };
    assert!(
        weights(1) == weights(3),
        "weights differ between 1 and 3 data workers"
    );
}
