//! An encoder's weights and architecture in timm's terms, for `pretext export --format
//! safetensors`.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::error::ImageCheckpointError;
use super::names::Layout;
use crate::backbone::{Backbone, Pooling};
use crate::encoder::Encoder;
use crate::input_adapter::InputAdapter;
use crate::resnet::ResNetStem;
use crate::vit::PositionEmbedding;

/// The layout an encoder exports to, or why it has none.
fn timm_layout(encoder: &Backbone) -> Result<Layout, ImageCheckpointError> {
    if encoder.resnet().is_some() {
        Ok(Layout::TimmResNet)
    } else if encoder.vit().is_some() {
        Ok(Layout::TimmVit)
    } else {
        Err(ImageCheckpointError::Export(
            "only ResNet-18, ResNet-50 and ViT encoders have timm names".into(),
        ))
    }
}

/// The weights of `encoder` — built under `prefix` (`"encoder."` in a run's store) of `store` —
/// under timm's names, sorted, float32 on the CPU, ready for `Tensor::write_safetensors`:
///
/// - ResNet-18 / ResNet-50: torchvision's and timm's names (`conv1.weight`, `bn1.running_mean`,
///   `layer1.0.conv1.weight`, `layer2.0.downsample.0.weight`, …), batch norms with a
///   `num_batches_tracked` of 0 as PyTorch keeps one; no `fc.*` (config.json says
///   `num_classes: 0`). The CIFAR-stem ResNet-18's `stem_conv` / `shortcut_conv` become
///   `conv1` / `downsample.0` too, but its `conv1` is 3×3 with no max-pool after it
///   ([`timm_config`] says `pretext.stem = "cifar"`): timm's resnet18 will not take it.
/// - ViT: `cls_token`, `pos_embed` (the fixed sine-cosine table for MAE's), `patch_embed.proj`,
///   `blocks.N.{norm1, attn.qkv (query, key and value stacked), attn.proj, norm2, mlp.fc1,
///   mlp.fc2}`, `norm`; no `head.*`.
///
/// The input adapter has no weights: [`timm_config`] records the normalization and
/// resolution. [`super::load_image_checkpoint`] reads the result back into the same encoder.
pub fn timm_state_dict(
    encoder: &Backbone,
    store: &VarStore,
    prefix: &str,
) -> Result<Vec<(String, Tensor)>, ImageCheckpointError> {
    let layout = timm_layout(encoder)?;
    let mut whole = BTreeMap::new();
    let mut fused: BTreeMap<String, Vec<(i64, Tensor)>> = BTreeMap::new();
    let value = |tensor: &Tensor| {
        tensor
            .detach()
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
    };
    for (name, tensor) in store.variables() {
        let Some(ours) = name.strip_prefix(prefix) else {
            continue;
        };
        let slot = layout.slot(ours).ok_or_else(|| {
            ImageCheckpointError::Export(format!(
                "the encoder's `{ours}` has no timm name ({})",
                layout.describe()
            ))
        })?;
        match slot.part {
            None => {
                if let Some(bn) = slot.name.strip_suffix(".running_var") {
                    let counter = Tensor::zeros([], (Kind::Int64, Device::Cpu));
                    whole.insert(format!("{bn}.num_batches_tracked"), counter);
                }
                whole.insert(slot.name, value(&tensor));
            }
            Some((index, _)) => fused
                .entry(slot.name)
                .or_default()
                .push((index, value(&tensor))),
        }
    }
    for (name, mut parts) in fused {
        parts.sort_by_key(|(index, _)| *index);
        let parts: Vec<Tensor> = parts.into_iter().map(|(_, tensor)| tensor).collect();
        whole.insert(name, Tensor::cat(&parts, 0));
    }
    if let Some(vit) = encoder.vit() {
        if vit.config.positions == PositionEmbedding::SinCos {
            whole.insert("pos_embed".into(), value(vit.position_table()));
        }
    }
    if whole.is_empty() {
        return Err(ImageCheckpointError::Export(format!(
            "the store has no variables under `{prefix}`"
        )));
    }
    Ok(whole.into_iter().collect())
}

/// The `config.json` of a timm folder holding [`timm_state_dict`]'s weights: `architecture`
/// (`resnet18`, `resnet50`, `vit_small_patch16_224`, …), `num_classes: 0`, `num_features`,
/// `global_pool`, the `model_args` that make timm build this exact shape (`in_chans`; for a
/// ViT `img_size`, `patch_size`, `embed_dim`, `depth`, `num_heads`, `mlp_ratio`), and
/// `pretrained_cfg` with the pixels it reads: `input_size`, `mean` and `std` — the input
/// adapter's, or pretext's own (0.5, 0.5) for an encoder trained on pretext's normalization.
/// A `pretext` object adds what timm cannot express (the CIFAR stem; a layer-norm epsilon
/// other than timm's 1e-6). [`super::read_image_checkpoint`] reads it back.
pub fn timm_config(encoder: &Backbone) -> Result<Value, ImageCheckpointError> {
    timm_layout(encoder)?;
    let (architecture, input, global_pool, mut model_args, pretext) =
        match (encoder.resnet(), encoder.vit()) {
            (Some(resnet), _) => {
                let stem = resnet.stem();
                let mut pretext = json!({ "stem": stem.as_str() });
                if stem == ResNetStem::Cifar {
                    pretext["note"] = json!(
                        "conv1 is 3x3 stride 1 with no max-pool after it (the CIFAR stem): \
                         timm's resnet builds a 7x7 stem and cannot load these weights"
                    );
                }
                (
                    resnet.depth().timm_name().to_string(),
                    resnet.input(),
                    "avg",
                    json!({}),
                    pretext,
                )
            }
            (None, Some(vit)) => {
                let config = &vit.config;
                let width_name = match config.hidden_dim {
                    192 => "tiny",
                    384 => "small",
                    1024 => "large",
                    _ => "base",
                };
                let pool = match config.pooling {
                    Pooling::Mean => "avg",
                    _ => "token",
                };
                let mut model_args = json!({
                    "img_size": vit.grid() * config.patch_size,
                    "patch_size": config.patch_size,
                    "embed_dim": config.hidden_dim,
                    "depth": config.layers,
                    "num_heads": config.heads,
                    "mlp_ratio": config.mlp_dim as f64 / config.hidden_dim as f64,
                    "global_pool": pool,
                });
                if config.pooling == Pooling::Mean {
                    // timm normalizes every token before averaging only without fc_norm.
                    model_args["fc_norm"] = json!(false);
                }
                let mut pretext = json!({ "layer_norm_eps": config.layer_norm_eps });
                if config.layer_norm_eps != 1e-6 {
                    pretext["note"] = json!(
                        "timm's ViT uses a layer-norm epsilon of 1e-6; this model was trained \
                         with layer_norm_eps"
                    );
                }
                (
                    format!("vit_{width_name}_patch16_224"),
                    vit.input(),
                    pool,
                    model_args,
                    pretext,
                )
            }
            (None, None) => unreachable!("timm_layout refused it"),
        };
    model_args["in_chans"] = json!(input.channels());
    Ok(json!({
        "architecture": architecture,
        "num_classes": 0,
        "num_features": encoder.dim(),
        "global_pool": global_pool,
        "model_args": model_args,
        "pretrained_cfg": pretrained_cfg(input),
        "pretext": pretext,
    }))
}

/// timm's `pretrained_cfg` for the pixels `input` gives the network.
fn pretrained_cfg(input: &InputAdapter) -> Value {
    let (mean, std) = input.normalization();
    let side = input.image_size();
    let mut cfg = json!({
        "mean": mean,
        "std": std,
        "interpolation": "bilinear",
        "crop_pct": 1.0,
        "num_classes": 0,
    });
    if side > 0 {
        cfg["input_size"] = json!([input.channels(), side, side]);
    }
    cfg
}
