//! Image checkpoints made by PyTorch load into pretext and give PyTorch's features to 1e-5.
//!
//! `tests/reference/image_checkpoints.py` builds ResNet-18, the real ResNet-50 and ViT-S/16
//! (and ViT-B/16's width with 2 blocks) in plain PyTorch, exactly as timm and torchvision
//! define them, saves random weights (batch-norm statistics and layer-norm weights included)
//! in timm's names, the ViT-S also in Hugging Face ViTModel's, and writes each network's
//! pre-logits features of two RGB 224-px images and of two grey 28-px images (repeated to RGB,
//! resized bilinearly to 224 px, normalized). Here each folder goes through what `pretext
//! pretrain --set backbone.pretrained=DIR` does (read the folder, configure the backbone,
//! build it, load the weights), and pretext's encoder, given the images in pretext's own
//! normalization, must give those features: the input adapter does the channels, the resize
//! and the normalization. The network alone, given PyTorch's own input, must give them too
//! (that pins the names and the architecture apart from the adapter's rounding), and
//! exporting it with `timm_state_dict` gives back the timm file's names and tensors.
//!
//! It needs `python3` with torch on PATH (the venv `./x` makes); without it the test says so
//! and passes, except under PRETEXT_REQUIRE_DATA=1 (CI), where it fails.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use pretext_data::test_data::data_required;
use pretext_nn::image_checkpoint::Layout;
use pretext_nn::{
    load_image_checkpoint, read_image_checkpoint, timm_state_dict, Backbone, BackboneConfig,
    BackboneKind, Encoder, InputAdapterConfig, InputSpec,
};
use tch::{nn::VarStore, Device, Tensor};

/// The largest feature difference allowed (float32 rounding; measured values in the
/// assertion message).
const TOLERANCE: f64 = 1e-5;

/// The folders the script writes, the backbone kind each needs, and what pretext must read
/// from it.
const CASES: [(&str, BackboneKind, &str); 5] = [
    (
        "resnet18_timm",
        BackboneKind::Resnet18,
        "ResNet-18 (imagenet stem)",
    ),
    (
        "resnet50_torchvision",
        BackboneKind::Resnet50,
        "ResNet-50 (imagenet stem)",
    ),
    (
        "vit_s16_timm",
        BackboneKind::Vit,
        "ViT (12 blocks of 384, 6 heads, 16-px patches, 224 px)",
    ),
    (
        "vit_s16_hf",
        BackboneKind::Vit,
        "ViT (12 blocks of 384, 6 heads, 16-px patches, 224 px)",
    ),
    (
        "vit_b16_2blocks",
        BackboneKind::Vit,
        "ViT (2 blocks of 768, 12 heads, 16-px patches, 224 px)",
    ),
];

/// None (after a note) when python3 with torch is missing, unless PRETEXT_REQUIRE_DATA=1.
fn python_with_torch() -> Option<()> {
    let found = Command::new("python3")
        .args(["-c", "import torch"])
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false);
    if found {
        return Some(());
    }
    assert!(
        !data_required(),
        "python3 with torch is not on PATH, and PRETEXT_REQUIRE_DATA=1 says this machine can \
         run the PyTorch references (./x env puts the venv's python3 first)"
    );
    eprintln!("skipped: python3 with torch is not on PATH");
    None
}

/// Runs the reference script into `out`.
fn write_references(out: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/image_checkpoints.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(out)
        .output()
        .expect("python3 starts");
    assert!(
        output.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The encoder of `backbone` for images of `channels` × `side` px with the variables of
/// `loaded` (every backbone here has the same ones: the adapter makes 3-channel 224-px
/// images of any input).
fn rebuilt(loaded: &VarStore, backbone: &BackboneConfig, channels: i64, side: i64) -> Backbone {
    let mut store = VarStore::new(Device::Cpu);
    let encoder = Backbone::new(
        &(store.root() / "encoder"),
        &InputSpec::sized_image(channels, side),
        backbone,
    );
    store.copy(loaded).unwrap();
    encoder
}

fn largest_difference(features: &Tensor, expected: &Tensor) -> f64 {
    assert_eq!(features.size(), expected.size());
    (features - expected).abs().max().double_value(&[])
}

/// The RGB images normalized as the script normalized them, `(x − mean) / std`: the same
/// float32 operations, so the same bits.
fn pytorch_input(pixels: &Tensor, input: &InputAdapterConfig) -> Tensor {
    let column = |values: &[f64]| {
        let values: Vec<f32> = values.iter().map(|&value| value as f32).collect();
        Tensor::from_slice(&values).view([1, 3, 1, 1])
    };
    (pixels - column(&input.mean)) / column(&input.std)
}

/// `timm_state_dict` of the loaded encoder gives back the timm file: the same names (the
/// classifier aside) and the same tensors (batch norms' batch counters aside, which pretext
/// does not keep and writes as 0).
fn assert_exports_the_file(dir: &Path, encoder: &Backbone, store: &VarStore) {
    let file: HashMap<String, Tensor> = Tensor::read_safetensors(dir.join("model.safetensors"))
        .unwrap()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("fc.") && !name.starts_with("head."))
        .collect();
    let exported = timm_state_dict(encoder, store, "encoder.").unwrap();
    assert_eq!(exported.len(), file.len(), "{}", dir.display());
    for (name, tensor) in exported {
        let original = file
            .get(&name)
            .unwrap_or_else(|| panic!("{}: exported `{name}` is not in the file", dir.display()));
        assert!(
            name.ends_with("num_batches_tracked") || tensor.equal(original),
            "{}: exported `{name}` differs from the file's",
            dir.display()
        );
    }
}

#[test]
fn timm_torchvision_and_hugging_face_checkpoints_give_pytorchs_features() {
    if python_with_torch().is_none() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    write_references(out.path());
    let reference: HashMap<String, Tensor> =
        Tensor::read_safetensors(out.path().join("reference.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let mut measured = Vec::new();
    for (name, kind, described) in CASES {
        let dir = out.path().join(name);
        let checkpoint = read_image_checkpoint(&dir).unwrap();
        assert_eq!(checkpoint.describe(), described, "{name}");
        assert_eq!(checkpoint.input.resolution, 224, "{name}");
        let backbone = checkpoint
            .configure(&BackboneConfig {
                kind,
                ..BackboneConfig::default()
            })
            .unwrap();
        // The network alone, without the input adapter, on PyTorch's own RGB input: the
        // names and the architecture, apart from the adapter's rounding.
        let network = BackboneConfig {
            input: InputAdapterConfig::default(),
            ..backbone.clone()
        };
        let store = VarStore::new(Device::Cpu);
        let alone = Backbone::new(
            &(store.root() / "encoder"),
            &InputSpec::sized_image(3, 224),
            &network,
        );
        load_image_checkpoint(&dir, &store, "encoder.").unwrap();
        let rgb = &reference["rgb_pixels"];
        let network_alone = largest_difference(
            &alone.encode(&pytorch_input(rgb, &checkpoint.input), false),
            &reference[&format!("{name}.rgb")],
        );
        let line = format!("{name}: {network_alone:.1e} on PyTorch's input");
        eprintln!("{line}");
        measured.push(line);
        assert!(
            network_alone < TOLERANCE,
            "{name} differs from PyTorch by more than {TOLERANCE:e}:\n{}",
            measured.join("\n")
        );
        if checkpoint.layout != Layout::HuggingFaceVit {
            assert_exports_the_file(&dir, &alone, &store);
        }
        for input in ["rgb", "grey"] {
            let pixels = &reference[&format!("{input}_pixels")];
            let expected = &reference[&format!("{name}.{input}")];
            let float32_error =
                reference[&format!("{name}.{input}.float32_error")].double_value(&[0]);
            let (_, channels, side, _) = pixels.size4().unwrap();
            // What pretext computes: the images in its own normalization, in their own
            // channels and size, through the adapter.
            let adapted = rebuilt(&store, &backbone, channels, side);
            let through_adapter =
                largest_difference(&adapted.encode(&((pixels - 0.5) / 0.5), false), expected);
            let line = format!(
                "{name} {input}: {through_adapter:.1e} through the adapter (PyTorch's own \
                 float32 error: {float32_error:.1e})"
            );
            eprintln!("{line}");
            measured.push(line);
            assert!(
                through_adapter < TOLERANCE,
                "{name} ({input}) differs from PyTorch by more than {TOLERANCE:e}:\n{}",
                measured.join("\n")
            );
        }
    }
}
