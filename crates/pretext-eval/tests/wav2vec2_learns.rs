//! End to end on real audio: wav2vec 2.0 (continuous targets) pretrains a small wav2vec network for a few hundred
//! steps on the shared spoken keywords (labels unused) plus the unlabeled spoken sentences,
//! and its frozen features must beat the same network at random initialization by a clear
//! margin with a linear probe on 240 labels (20 per word), measured on the 306 held-out clips
//! of other speakers. Skipped with a note when ../shared/data/audio is absent.

use pretext_eval::{probe, ProbeConfig};
use pretext_methods::MethodName;
use pretext_nn::{BackboneKind, Wav2VecConfig};
use pretext_train::{pretrain, NoProgress, PretrainConfig, RunDir, RunMode};
use tch::Device;

#[test]
fn wav2vec2_features_beat_the_random_init_network_on_keywords() {
    let Some(audio) = pretext_data::test_data::shared_data("audio") else {
        return;
    };
    let mut config = PretrainConfig::default();
    config.data.path = audio.join("spoken-words").to_string_lossy().into_owned();
    config.data.unlabeled = vec![audio
        .join("spoken-sentences")
        .to_string_lossy()
        .into_owned()];
    config.method.name = MethodName::Wav2vec2;
    config.method.wav2vec2.negatives = 50;
    // Continuous targets: the quantized ones sit at chance for the first ~1100 steps at this
    // scale (BENCHMARKS.md §10).
    config.method.wav2vec2.quantize_targets = false;
    config.backbone.kind = BackboneKind::Wav2vec;
    config.backbone.wav2vec = Wav2VecConfig {
        conv_channels: vec![32; 7],
        hidden_dim: 64,
        layers: 2,
        heads: 4,
        mlp_dim: 128,
        position_groups: 8,
        ..Wav2VecConfig::default()
    };
    config.optimizer.lr = 1e-3;
    config.optimizer.warmup_steps = 30;
    config.train.steps = TRAIN_STEPS;
    config.train.batch_size = 16;
    config.train.checkpoint_every = 0;
    config.health.knn_every = 0;
    let data = pretext_data::open(&config.data.path, &config.data_options(None))
        .unwrap()
        .splits;
    assert_eq!((data.train.len(), data.test.len()), (1494, 306));

    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(&dir.path().join("run"));
    run.prepare_new(RunMode::New).unwrap();
    let outcome = pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress).unwrap();
    assert_eq!(outcome.nonfinite_steps, 0);

    let probe_config = ProbeConfig {
        labels: "240".into(),
        ..ProbeConfig::default()
    };
    let report = probe(
        &config,
        &outcome.checkpoint,
        &data,
        &probe_config,
        Device::Cpu,
        true,
    )
    .unwrap();
    println!("{}", report.table());
    let (trained, random) = (&report.rows[0], &report.rows[1]);
    // Chance is 8.3%.
    assert!(
        trained.linear.unwrap() > random.linear.unwrap() + MARGIN,
        "linear: pretrained {:.3} vs random init {:.3}",
        trained.linear.unwrap(),
        random.linear.unwrap()
    );
}

/// Pretraining steps of the test.
const TRAIN_STEPS: u64 = 600;
/// Linear-probe points the pretrained network must gain over the random one.
const MARGIN: f64 = 0.15;
