//! Refusals (pickle, a missing, misshapen, left-over or non-finite tensor, a folder that is
//! not an image model, the wrong backbone kind) and the round trip through timm's names.
//! `tests/image_checkpoints.rs` compares the loaded networks with PyTorch references.

use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::*;
use crate::backbone::{Backbone, BackboneConfig, BackboneKind, InputSpec, Pooling};
use crate::encoder::Encoder;
use crate::input_adapter::InputAdapterConfig;
use crate::resnet::{ResNetConfig, ResNetStem};
use crate::vit::VitConfig;

/// A backbone built under `encoder.` with every variable random (running variances
/// positive), as a trained network's would be.
fn random_backbone(config: &BackboneConfig, input: InputSpec, seed: i64) -> (VarStore, Backbone) {
    tch::manual_seed(seed);
    let store = VarStore::new(Device::Cpu);
    let backbone = Backbone::new(&(store.root() / "encoder"), &input, config);
    tch::no_grad(|| {
        for (name, mut variable) in store.variables() {
            let noise = if name.ends_with("running_var") {
                variable.rand_like() + 0.5
            } else {
                variable.randn_like() * 0.05
            };
            variable.copy_(&noise);
        }
    });
    (store, backbone)
}

fn kind(kind: BackboneKind) -> BackboneConfig {
    BackboneConfig {
        kind,
        ..BackboneConfig::default()
    }
}

/// A tiny ViT: 2 blocks of 32 (2 heads), 4-px patches, 28 px.
fn tiny_vit(pooling: Pooling) -> BackboneConfig {
    BackboneConfig {
        vit: VitConfig {
            hidden_dim: 32,
            layers: 2,
            heads: 2,
            mlp_dim: 64,
            pooling,
            ..VitConfig::default()
        },
        ..kind(BackboneKind::Vit)
    }
}

/// Writes `tensors` as `dir/model.safetensors` (and `config` as config.json when given).
fn write_folder(dir: &Path, tensors: &[(String, Tensor)], config: Option<&serde_json::Value>) {
    let named: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&named, dir.join("model.safetensors")).unwrap();
    if let Some(config) = config {
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    }
}

/// An exported random encoder in a temporary folder, and its weights under timm's names.
fn exported(
    config: &BackboneConfig,
    input: InputSpec,
) -> (tempfile::TempDir, Vec<(String, Tensor)>, VarStore, Backbone) {
    let (store, backbone) = random_backbone(config, input, 7);
    let tensors = timm_state_dict(&backbone, &store, "encoder.").unwrap();
    let config = timm_config(&backbone).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path(), &tensors, Some(&config));
    (dir, tensors, store, backbone)
}

/// Reads the folder as `pretext pretrain --set backbone.pretrained=…` does: its config, a
/// backbone built from it, its weights loaded.
fn loaded(
    dir: &Path,
    backbone: &BackboneConfig,
    input: InputSpec,
) -> Result<(VarStore, Backbone), String> {
    let checkpoint = read_image_checkpoint(dir).map_err(|error| error.to_string())?;
    let config = checkpoint
        .configure(backbone)
        .map_err(|(field, message)| format!("{field}: {message}"))?;
    let store = VarStore::new(Device::Cpu);
    let network = Backbone::new(&(store.root() / "encoder"), &input, &config);
    load_image_checkpoint(dir, &store, "encoder.").map_err(|error| error.to_string())?;
    Ok((store, network))
}

fn error_of(result: Result<(VarStore, Backbone), String>) -> String {
    match result {
        Ok(_) => panic!("expected the checkpoint to be refused"),
        Err(error) => error,
    }
}

fn assert_mentions(error: &str, needles: &[&str]) {
    for needle in needles {
        assert!(error.contains(needle), "{needle:?} not in: {error}");
    }
}

/// Exported, read back into a fresh model: every variable identical, the same features.
fn assert_round_trip(config: &BackboneConfig, input: InputSpec) {
    let (dir, tensors, store, backbone) = exported(config, input);
    assert!(
        tensors.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "sorted"
    );
    let (reloaded_store, reloaded) = loaded(dir.path(), config, input).unwrap();
    let reloaded_variables = reloaded_store.variables();
    for (name, variable) in store.variables() {
        assert!(
            variable.equal(&reloaded_variables[&name]),
            "{name} differs after the round trip"
        );
    }
    let images = Tensor::randn(
        [2, input.channels, input.image_size, input.image_size],
        (Kind::Float, Device::Cpu),
    );
    assert!(backbone
        .encode(&images, false)
        .equal(&reloaded.encode(&images, false)));
}

#[test]
fn resnets_and_vits_round_trip_through_timms_names() {
    let imagenet = BackboneConfig {
        resnet: ResNetConfig {
            stem: ResNetStem::Imagenet,
        },
        ..kind(BackboneKind::Resnet18)
    };
    assert_round_trip(&imagenet, InputSpec::sized_image(3, 32));
    // The CIFAR ResNet-18 on one channel: its own names become timm's and back.
    assert_round_trip(&kind(BackboneKind::Resnet18), InputSpec::sized_image(1, 28));
    let resnet50 = BackboneConfig {
        resnet: imagenet.resnet.clone(),
        ..kind(BackboneKind::Resnet50)
    };
    assert_round_trip(&resnet50, InputSpec::sized_image(3, 32));
    assert_round_trip(&tiny_vit(Pooling::Cls), InputSpec::sized_image(1, 28));
    assert_round_trip(&tiny_vit(Pooling::Mean), InputSpec::sized_image(3, 28));
}

#[test]
fn exported_names_and_config_are_timms() {
    let imagenet = BackboneConfig {
        resnet: ResNetConfig {
            stem: ResNetStem::Imagenet,
        },
        input: InputAdapterConfig::imagenet(224),
        ..kind(BackboneKind::Resnet18)
    };
    let (store, backbone) = random_backbone(&imagenet, InputSpec::sized_image(1, 28), 1);
    let tensors = timm_state_dict(&backbone, &store, "encoder.").unwrap();
    let names: Vec<&str> = tensors.iter().map(|(name, _)| name.as_str()).collect();
    for name in [
        "conv1.weight",
        "bn1.num_batches_tracked",
        "layer2.0.downsample.0.weight",
        "layer4.1.bn2.running_var",
    ] {
        assert!(names.contains(&name), "no {name}");
    }
    let config = timm_config(&backbone).unwrap();
    assert_eq!(config["architecture"], "resnet18");
    assert_eq!(config["num_features"], 512);
    assert_eq!(
        config["pretrained_cfg"]["input_size"],
        serde_json::json!([3, 224, 224])
    );
    assert_eq!(config["pretrained_cfg"]["mean"][0], 0.485);

    let (store, backbone) =
        random_backbone(&tiny_vit(Pooling::Cls), InputSpec::sized_image(1, 28), 2);
    let tensors = timm_state_dict(&backbone, &store, "encoder.").unwrap();
    let qkv = tensors
        .iter()
        .find(|(name, _)| name == "blocks.1.attn.qkv.weight")
        .map(|(_, tensor)| tensor)
        .unwrap();
    assert_eq!(qkv.size(), vec![96, 32]);
    let key = &store.variables()["encoder.encoder.layer.1.attention.self.key.weight"];
    assert!(qkv.narrow(0, 32, 32).equal(key));
    let config = timm_config(&backbone).unwrap();
    assert_eq!(config["model_args"]["img_size"], 28);
    assert_eq!(config["model_args"]["num_heads"], 2);
    assert_eq!(config["pretrained_cfg"]["mean"], serde_json::json!([0.5]));

    let (store, backbone) =
        random_backbone(&BackboneConfig::default(), InputSpec::sized_image(1, 28), 3);
    let error = timm_state_dict(&backbone, &store, "encoder.").unwrap_err();
    assert_mentions(&error.to_string(), &["ResNet-18, ResNet-50 and ViT"]);
}

#[test]
fn hugging_face_vit_names_with_a_vit_prefix_load_like_timms() {
    let config = tiny_vit(Pooling::Cls);
    let input = InputSpec::sized_image(3, 28);
    let (store, backbone) = random_backbone(&config, input, 5);
    let mut hf: Vec<(String, Tensor)> = store
        .variables()
        .iter()
        .map(|(name, tensor)| {
            let ours = name.strip_prefix("encoder.").unwrap();
            let slot = Layout::HuggingFaceVit.slot(ours).unwrap();
            (format!("vit.{}", slot.name), tensor.detach().copy())
        })
        .collect();
    let zeros = |shape: &[i64]| Tensor::zeros(shape, (Kind::Float, Device::Cpu));
    hf.push(("classifier.weight".into(), zeros(&[10, 32])));
    hf.push(("vit.pooler.dense.bias".into(), zeros(&[32])));
    let dir = tempfile::tempdir().unwrap();
    let hf_config = serde_json::json!({
        "model_type": "vit", "hidden_size": 32, "num_attention_heads": 2,
        "layer_norm_eps": 1e-6, "hidden_act": "gelu"
    });
    write_folder(dir.path(), &hf, Some(&hf_config));
    // Pixels normalized as pretext's own: the adapter is then exactly the identity.
    std::fs::write(
        dir.path().join("preprocessor_config.json"),
        r#"{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "size": 28}"#,
    )
    .unwrap();
    let checkpoint = read_image_checkpoint(dir.path()).unwrap();
    assert_eq!(checkpoint.layout, Layout::HuggingFaceVit);
    assert_eq!(checkpoint.input.mean, vec![0.5; 3]);
    assert_eq!(checkpoint.input.resolution, 28);
    let (_, reloaded) = loaded(dir.path(), &config, input).unwrap();
    let images = Tensor::randn([2, 3, 28, 28], (Kind::Float, Device::Cpu));
    assert!(reloaded
        .encode(&images, false)
        .equal(&backbone.encode(&images, false)));
    // Without config.json the heads are the standard ones of the width: 32 has none.
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let error = read_image_checkpoint(dir.path()).unwrap_err().to_string();
    assert_mentions(
        &error,
        &["config.json", "how many attention heads", "32-wide"],
    );
}

#[test]
fn a_pickle_checkpoint_is_refused_with_how_to_convert_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dino_deitsmall16_pretrain.pth"),
        b"\x80\x02cos\nsystem\n",
    )
    .unwrap();
    let error = read_image_checkpoint(dir.path()).unwrap_err().to_string();
    assert_mentions(
        &error,
        &[
            "dino_deitsmall16_pretrain.pth",
            "pickle",
            "never loaded",
            "save_file",
            "model.safetensors",
        ],
    );
    let empty = tempfile::tempdir().unwrap();
    let error = read_image_checkpoint(empty.path()).unwrap_err().to_string();
    assert_mentions(&error, &["model.safetensors", "not found"]);
}

#[test]
fn a_missing_tensor_is_named_and_nothing_is_copied() {
    let config = kind(BackboneKind::Resnet18);
    let input = InputSpec::sized_image(1, 28);
    let (dir, mut tensors, _, _) = exported(&config, input);
    tensors.retain(|(name, _)| name != "layer3.1.bn2.running_var");
    write_folder(dir.path(), &tensors, None);
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"pretrained_cfg": {"mean": [0.5], "std": [0.5]}}"#,
    )
    .unwrap();
    let checkpoint = read_image_checkpoint(dir.path()).unwrap();
    let store = VarStore::new(Device::Cpu);
    let _ = Backbone::new(
        &(store.root() / "encoder"),
        &input,
        &checkpoint.configure(&config).unwrap(),
    );
    let before: Vec<(String, Tensor)> = store
        .variables()
        .into_iter()
        .map(|(name, tensor)| (name, tensor.copy()))
        .collect();
    let error = load_image_checkpoint(dir.path(), &store, "encoder.")
        .unwrap_err()
        .to_string();
    assert_mentions(
        &error,
        &["model.safetensors", "no tensor `layer3.1.bn2.running_var`"],
    );
    let after = store.variables();
    assert!(before
        .iter()
        .all(|(name, tensor)| tensor.equal(&after[name])));
}

#[test]
fn a_misshapen_left_over_or_non_finite_tensor_is_named() {
    let config = tiny_vit(Pooling::Cls);
    let input = InputSpec::sized_image(1, 28);
    let (dir, tensors, _, _) = exported(&config, input);
    let replaced = |name: &str, tensor: Tensor| -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = tensors
            .iter()
            .filter(|(n, _)| n != name)
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        out.push((name.into(), tensor));
        out
    };
    let config_json = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    let config_json: serde_json::Value = serde_json::from_str(&config_json).unwrap();
    let wrong = replaced(
        "blocks.0.attn.qkv.weight",
        Tensor::zeros([90, 32], (Kind::Float, Device::Cpu)),
    );
    write_folder(dir.path(), &wrong, Some(&config_json));
    let error = error_of(loaded(dir.path(), &config, input));
    assert_mentions(
        &error,
        &[
            "model.safetensors",
            "`blocks.0.attn.qkv.weight` has shape [90, 32], the model expects [96, 32]",
        ],
    );

    let scale = Tensor::ones([32], (Kind::Float, Device::Cpu));
    let layer_scale = replaced("blocks.0.ls1.gamma", scale);
    write_folder(dir.path(), &layer_scale, Some(&config_json));
    let error = error_of(loaded(dir.path(), &config, input));
    assert_mentions(
        &error,
        &[
            "1 tensors have no place in the model",
            "`blocks.0.ls1.gamma`",
        ],
    );

    let norm = Tensor::ones([32], (Kind::Float, Device::Cpu));
    let _ = norm.get(3).fill_(f64::NAN);
    let nan = replaced("norm.weight", norm);
    write_folder(dir.path(), &nan, Some(&config_json));
    let error = error_of(loaded(dir.path(), &config, input));
    assert_mentions(
        &error,
        &["`norm.weight` holds 1 NaN or infinite values", "index 3"],
    );
}

#[test]
fn a_folder_that_is_not_an_image_model_says_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu));
    write_folder(
        dir.path(),
        &[
            (
                "embeddings.word_embeddings.weight".to_string(),
                zeros.shallow_clone(),
            ),
            ("encoder.layer.0.output.dense.weight".to_string(), zeros),
        ],
        None,
    );
    let error = read_image_checkpoint(dir.path()).unwrap_err().to_string();
    assert_mentions(
        &error,
        &[
            "model.safetensors",
            "not an image model",
            "embeddings.word_embeddings.weight",
            "text model",
        ],
    );
    let file = dir.path().join("model.safetensors");
    let error = read_image_checkpoint(&file).unwrap_err().to_string();
    assert_mentions(&error, &["not a folder"]);
}

#[test]
fn the_wrong_backbone_kind_is_refused_naming_the_right_one() {
    let resnet50 = BackboneConfig {
        resnet: ResNetConfig {
            stem: ResNetStem::Imagenet,
        },
        ..kind(BackboneKind::Resnet50)
    };
    let (dir, _, _, _) = exported(&resnet50, InputSpec::sized_image(3, 32));
    let checkpoint = read_image_checkpoint(dir.path()).unwrap();
    assert_eq!(checkpoint.describe(), "ResNet-50 (imagenet stem)");
    for wrong in [
        BackboneKind::Resnet18,
        BackboneKind::Vit,
        BackboneKind::SmallCnn,
    ] {
        let (field, message) = checkpoint.configure(&kind(wrong)).unwrap_err();
        assert_eq!(field, "backbone.kind");
        assert_mentions(&message, &["ResNet-50", "backbone.kind = \"resnet50\""]);
    }
    let configured = checkpoint.configure(&kind(BackboneKind::Resnet50)).unwrap();
    assert_eq!(configured.resnet.stem, ResNetStem::Imagenet);
    assert_eq!(configured.input.resolution, 32);
    // A ViT's resolution is its position table's.
    let (dir, _, _, _) = exported(&tiny_vit(Pooling::Cls), InputSpec::sized_image(1, 28));
    let checkpoint = read_image_checkpoint(dir.path()).unwrap();
    let mut config = tiny_vit(Pooling::Cls);
    config.input.resolution = 56;
    let (field, message) = checkpoint.configure(&config).unwrap_err();
    assert_eq!(field, "backbone.input.resolution");
    assert_mentions(&message, &["positions for 28 px"]);
}
