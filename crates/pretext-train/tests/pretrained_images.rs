//! Continued pretraining from an image checkpoint (a timm-named ResNet-18 folder): the folder
//! sets the backbone's stem and input in the resolved config; its weights go into the encoder
//! and into the method's EMA copy (BYOL's target); a short run trains from them; and the run's
//! checkpoint reloads from the saved config alone, the folder deleted.

mod common;

use std::path::Path;

use common::one_run_at_a_time as turn;
use pretext_data::embedded_fashion_mnist;
use pretext_methods::MethodName;
use pretext_nn::{
    Backbone, BackboneConfig, BackboneKind, Encoder, InputAdapterConfig, InputSpec, ResNetConfig,
    ResNetStem,
};
use pretext_train::{pretrain, Checkpoint, Model, NoProgress, PretrainConfig, RunDir, RunMode};
use tch::{nn::VarStore, Device, Kind, Tensor};

/// A random ImageNet-stem ResNet-18 saved in timm's names, with a config.json saying it
/// reads ImageNet-normalized RGB at 32 px (small, so the test is quick).
fn timm_resnet18_folder(dir: &Path) {
    let config = BackboneConfig {
        kind: BackboneKind::Resnet18,
        resnet: ResNetConfig {
            stem: ResNetStem::Imagenet,
        },
        input: InputAdapterConfig::imagenet(32),
        ..BackboneConfig::default()
    };
    tch::manual_seed(11);
    let store = VarStore::new(Device::Cpu);
    let encoder = Backbone::new(
        &(store.root() / "encoder"),
        &InputSpec::sized_image(3, 32),
        &config,
    );
    let tensors = pretext_nn::timm_state_dict(&encoder, &store, "encoder.").unwrap();
    let named: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&named, dir.join("model.safetensors")).unwrap();
    let json = pretext_nn::timm_config(&encoder).unwrap();
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
}

fn small_images() -> pretext_data::Splits {
    let data = embedded_fashion_mnist().unwrap();
    pretext_data::ImageSplits {
        name: data.name,
        train: data.train.subset(&(0..64).collect::<Vec<_>>()),
        test: data.test.subset(&(0..16).collect::<Vec<_>>()),
    }
    .into()
}

#[test]
fn byol_continues_from_a_timm_resnet_and_its_checkpoint_reloads_without_the_folder() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("resnet18-timm");
    std::fs::create_dir(&folder).unwrap();
    timm_resnet18_folder(&folder);
    let data = small_images();
    let mut config = PretrainConfig::default();
    config.method.name = MethodName::Byol;
    config.backbone.kind = BackboneKind::Resnet18;
    config.backbone.pretrained = folder.to_str().unwrap().into();
    config.train.batch_size = 8;
    config.train.steps = 2;
    config.health.every = 1;
    config.health.knn_every = 0;

    // The folder decides the stem and the pixels: ImageNet's mean and std at 32 px.
    let resolved = config.resolved_for(&data.train).unwrap();
    assert_eq!(resolved.backbone.resnet.stem, ResNetStem::Imagenet);
    assert_eq!(resolved.backbone.input, InputAdapterConfig::imagenet(32));

    // The weights go into the encoder and into BYOL's target.
    let mut model = Model::new(&resolved, &data.train, Device::Cpu);
    model.load_pretrained(&resolved).unwrap();
    let saved = Tensor::read_safetensors(folder.join("model.safetensors")).unwrap();
    let saved: std::collections::HashMap<String, Tensor> = saved.into_iter().collect();
    let (online, target) = (model.store.variables(), model.state.variables());
    for (ours, theirs) in [
        ("encoder.conv1.weight", "conv1.weight"),
        (
            "encoder.layer3.0.downsample.1.running_var",
            "layer3.0.downsample.1.running_var",
        ),
        ("encoder.layer4.1.bn2.bias", "layer4.1.bn2.bias"),
    ] {
        assert!(online[ours].equal(&saved[theirs]), "online {ours}");
        assert!(target[ours].equal(&saved[theirs]), "target {ours}");
    }

    // A short run trains from them.
    let run = RunDir::new(&dir.path().join("run"));
    run.prepare_new(RunMode::New).unwrap();
    let outcome = pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress).unwrap();
    assert!(outcome.last_loss.is_finite(), "loss {}", outcome.last_loss);

    // The saved config rebuilds the same model without the folder.
    std::fs::remove_dir_all(&folder).unwrap();
    let reread = PretrainConfig::from_toml(&resolved.to_toml()).unwrap();
    assert_eq!(reread, resolved);
    let (checkpoint, _) = Checkpoint::latest(&run.checkpoints_dir()).unwrap();
    let mut reloaded = Model::new(&reread, &data.train, Device::Cpu);
    checkpoint
        .unwrap()
        .load_weights(&reread, &mut reloaded.store)
        .unwrap();
    let images = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let features = reloaded.method.encoder().encode(&images, false);
    assert_eq!(features.size(), vec![2, 512]);
    assert!(features.isfinite().all().int64_value(&[]) == 1);
}

#[test]
fn an_image_checkpoint_for_another_backbone_or_method_is_refused_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    timm_resnet18_folder(dir.path());
    let data = small_images();
    let mut config = PretrainConfig::default();
    config.backbone.pretrained = dir.path().to_str().unwrap().into();
    // The default small CNN cannot hold a ResNet-18.
    let error = config.resolved_for(&data.train).unwrap_err().to_string();
    for needle in ["backbone.kind", "ResNet-18", "backbone.kind = \"resnet18\""] {
        assert!(error.contains(needle), "{needle}: {error}");
    }
    // MAE reconstructs the pixels it is given: it cannot resize them for the network.
    config.method.name = MethodName::Mae;
    config.backbone.kind = BackboneKind::Vit;
    config.backbone.pretrained = String::new();
    config.backbone.input = InputAdapterConfig::imagenet(56);
    config.backbone.vit.patch_size = 7;
    let error = config.resolved_for(&data.train).unwrap_err().to_string();
    for needle in ["backbone.input.resolution", "mae", "--image-size 56"] {
        assert!(error.contains(needle), "{needle}: {error}");
    }
    // backbone.input is for the backbones that load image checkpoints.
    let mut config = PretrainConfig::default();
    config.backbone.input = InputAdapterConfig::imagenet(224);
    let error = config.validate().unwrap_err().to_string();
    assert!(
        error.contains("backbone.input") && error.contains("small-cnn"),
        "{error}"
    );
}

/// The adapter undoes exactly what the image pipeline does.
#[test]
fn the_input_adapter_undoes_the_pipelines_normalization() {
    assert_eq!(
        pretext_nn::input_adapter::PIPELINE_MEAN,
        f64::from(pretext_augment::INPUT_MEAN)
    );
    assert_eq!(
        pretext_nn::input_adapter::PIPELINE_STD,
        f64::from(pretext_augment::INPUT_STD)
    );
}
