//! Every method trains with every backbone: a few real steps on the embedded data, finite
//! losses, a checkpoint with the method's state, and an encoder of the backbone's width.
//! The ViT is a 1-block, 32-wide one (the shape does not change the code paths); jigsaw's
//! 14-px tiles need 7-px patches.

mod common;

use common::one_run_at_a_time as turn;
use pretext_data::embedded_fashion_mnist;
use pretext_methods::MethodName;
use pretext_nn::{BackboneKind, Encoder};
use pretext_train::{pretrain, Model, NoProgress, PretrainConfig, RunDir, RunMode};
use tch::Device;

#[test]
fn every_method_trains_with_the_small_cnn_resnet18_and_vit() {
    let _turn = turn();
    let data = embedded_fashion_mnist().unwrap();
    let data = pretext_data::ImageSplits {
        name: data.name,
        train: data.train.subset(&(0..64).collect::<Vec<_>>()),
        test: data.test.subset(&(0..16).collect::<Vec<_>>()),
    };
    let data: pretext_data::Splits = data.into();
    let dir = tempfile::tempdir().unwrap();
    for backbone in [
        BackboneKind::SmallCnn,
        BackboneKind::Resnet18,
        BackboneKind::Vit,
    ] {
        for method in MethodName::IMAGE {
            let mut config = PretrainConfig::default();
            config.method.name = method;
            config.backbone.kind = backbone;
            config.backbone.vit = pretext_nn::VitConfig {
                hidden_dim: 32,
                layers: 1,
                heads: 2,
                mlp_dim: 64,
                patch_size: if method == MethodName::Jigsaw { 7 } else { 4 },
                ..Default::default()
            };
            config.train.batch_size = 8;
            config.train.steps = 2;
            config.health.every = 1;
            config.health.knn_every = 0;
            let name = format!("{}-{}", method.as_str(), backbone.as_str());
            let run = RunDir::new(&dir.path().join(&name));
            run.prepare_new(RunMode::New).unwrap();
            let outcome = pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress)
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            assert!(
                outcome.last_loss.is_finite(),
                "{name}: loss {}",
                outcome.last_loss
            );
            assert_eq!(outcome.nonfinite_steps, 0, "{name}");
            let model = Model::new(&config, &data.train, Device::Cpu);
            assert_eq!(
                model.method.encoder().dim(),
                config.backbone.output_dim(),
                "{name}"
            );
        }
    }
}

/// MAE needs a ViT: it trains with one (its reconstructions get clearly better than guessing
/// flat patches, on real images) and is refused with the convolutional backbones, naming the
/// setting.
#[test]
fn mae_trains_with_the_vit_and_is_refused_with_cnns() {
    let _turn = turn();
    let data = embedded_fashion_mnist().unwrap();
    let data = pretext_data::ImageSplits {
        name: data.name,
        train: data.train.subset(&(0..256).collect::<Vec<_>>()),
        test: data.test.subset(&(0..16).collect::<Vec<_>>()),
    };
    let data: pretext_data::Splits = data.into();
    let dir = tempfile::tempdir().unwrap();
    let mut config = PretrainConfig::default();
    config.method.name = MethodName::Mae;
    // Raw pixels: on 4-px Fashion-MNIST patches the per-patch normalized targets leave
    // little to learn (see the reconstruction-gain verdict).
    config.method.mae.normalize_targets = false;
    config.backbone.kind = BackboneKind::Vit;
    config.backbone.vit = pretext_nn::VitConfig {
        hidden_dim: 64,
        layers: 2,
        heads: 4,
        mlp_dim: 128,
        ..Default::default()
    };
    config.train.batch_size = 64;
    config.train.steps = 100;
    config.optimizer.lr = 3e-3;
    config.optimizer.warmup_steps = 10;
    config.health.knn_every = 0;
    let run = RunDir::new(&dir.path().join("mae"));
    run.prepare_new(RunMode::New).unwrap();
    pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress).unwrap();
    let records: Vec<serde_json::Value> = std::fs::read_to_string(run.metrics_path())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|record: &serde_json::Value| record.get("reconstruction_gain").is_some())
        .collect();
    let gain = |record: &serde_json::Value| record["reconstruction_gain"].as_f64().unwrap();
    // The flat guess is a strong baseline for raw pixels (each image's mean visible pixel):
    // the first records are worse than it; by the end the loss is clearly (2× the
    // verdict's 5% threshold) below it.
    let first = gain(&records[0]);
    let last: f64 = records[records.len() - 3..].iter().map(gain).sum::<f64>() / 3.0;
    assert!(
        first < 0.0 && last > 0.1,
        "reconstruction gain {first} -> {last}"
    );

    for backbone in [BackboneKind::SmallCnn, BackboneKind::Resnet18] {
        config.backbone.kind = backbone;
        let run = RunDir::new(&dir.path().join(backbone.as_str()));
        run.prepare_new(RunMode::New).unwrap();
        let error = pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("backbone.kind") && error.contains("vit"),
            "{error}"
        );
    }
}
