//! The `pretext` binary from an image checkpoint: `pretrain` continues from a timm-named
//! ResNet-18 folder (random weights, its config.json asking for ImageNet-normalized RGB at
//! 32 px so the run is quick) on grey 28-px Fashion-MNIST; the run's config.toml records the
//! stem and the input adapter; `probe` reads the run; `finetune --from-pretrained` starts
//! from the folder as downloaded; and `embed` works from the run alone, the folder gone.

use std::path::Path;

use pretext_nn::{Backbone, BackboneConfig, BackboneKind, InputAdapterConfig, InputSpec};
use pretext_nn::{ResNetConfig, ResNetStem};
use tch::{nn::VarStore, Device, Tensor};

mod common;
use common::{arg, assert_succeeds, embedded_slice};

/// Runs `pretext ARGS`; panics with its output unless it succeeds. Returns stdout.
fn pretext(args: &[&str]) -> String {
    let outcome = common::pretext(args);
    assert_succeeds(&outcome, &format!("pretext {}", args.join(" ")));
    outcome.stdout
}

/// A random ImageNet-stem ResNet-18 in timm's names, with a timm config.json.
fn timm_resnet18_folder(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let config = BackboneConfig {
        kind: BackboneKind::Resnet18,
        resnet: ResNetConfig {
            stem: ResNetStem::Imagenet,
        },
        input: InputAdapterConfig::imagenet(32),
        ..BackboneConfig::default()
    };
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

#[test]
fn pretrain_probe_finetune_and_embed_from_a_timm_resnet18_folder() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("resnet18-timm");
    timm_resnet18_folder(&folder);
    let data = embedded_slice(dir.path(), 400, 200);
    let run = dir.path().join("run");
    let pretrained = format!("backbone.pretrained=\"{}\"", arg(&folder));
    pretext(&[
        "pretrain",
        "--data",
        arg(&data),
        "--out",
        arg(&run),
        "--method",
        "byol",
        "--steps",
        "2",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--set",
        "backbone.kind=\"resnet18\"",
        "--set",
        &pretrained,
        "--set",
        "health.knn_every=0",
    ]);

    // The resolved config carries what the folder said: the model rebuilds without it.
    let config: toml::Table = std::fs::read_to_string(run.join("config.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let backbone = &config["backbone"];
    assert_eq!(backbone["resnet"]["stem"].as_str(), Some("imagenet"));
    assert_eq!(backbone["input"]["resolution"].as_integer(), Some(32));
    assert_eq!(
        backbone["input"]["mean"].as_array().unwrap()[0].as_float(),
        Some(0.485)
    );

    // (Without the baselines: their cross-validated probes take minutes on two cores.)
    let probe = pretext(&[
        "probe",
        arg(&run),
        "--labels",
        "40",
        "--no-baselines",
        "--device",
        "cpu",
    ]);
    assert!(probe.contains("byol (step 2)"), "{probe}");

    let finetuned = pretext(&[
        "finetune",
        arg(&run),
        "--from-pretrained",
        "--labels",
        "40",
        "--epochs",
        "1",
        "--no-probe-init",
        "--device",
        "cpu",
    ]);
    for needle in ["resnet18-timm (as downloaded)", "test accuracy"] {
        assert!(finetuned.contains(needle), "no {needle:?} in\n{finetuned}");
    }

    // The folder gone, the run alone embeds: 512-d features of the 200 test images.
    std::fs::remove_dir_all(&folder).unwrap();
    let features = dir.path().join("features.npy");
    pretext(&[
        "embed",
        arg(&run),
        arg(&data),
        "-o",
        arg(&features),
        "--split",
        "test",
        "--device",
        "cpu",
    ]);
    let bytes = std::fs::read(&features).unwrap();
    let header = String::from_utf8_lossy(&bytes[..128.min(bytes.len())]).into_owned();
    assert!(header.contains("'shape': (200, 512"), "{header}");
}
