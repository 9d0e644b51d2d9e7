//! Reading an image checkpoint folder: its tensors (safetensors only), their layout, the
//! architecture they describe and the pixels the model expects.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tch::Tensor;

use super::error::ImageCheckpointError;
use super::names::Layout;
use crate::backbone::{BackboneConfig, BackboneKind, Pooling};
use crate::input_adapter::{InputAdapterConfig, IMAGENET_MEAN, IMAGENET_STD};
use crate::resnet::{ResNetDepth, ResNetStem};
use crate::vit::{PositionEmbedding, VitConfig};

/// The weights file of a checkpoint folder.
pub(crate) const WEIGHTS: &str = "model.safetensors";

/// The network a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageArchitecture {
    /// A ResNet of this depth and stem.
    ResNet {
        depth: ResNetDepth,
        stem: ResNetStem,
    },
    /// A ViT of this shape (learned positions; dropout 0).
    Vit(VitConfig),
}

/// What an image checkpoint folder holds, read from its files.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageCheckpoint {
    /// The `model.safetensors` read.
    pub path: PathBuf,
    pub layout: Layout,
    pub architecture: ImageArchitecture,
    /// Channels of the images the network reads.
    pub channels: i64,
    /// The pixels it expects: mean and std per channel, and its resolution.
    pub input: InputAdapterConfig,
}

impl ImageCheckpoint {
    /// The network in words: "ResNet-50 (imagenet stem)", "ViT (12 blocks of 384, 6 heads,
    /// 16-px patches, 224 px)".
    pub fn describe(&self) -> String {
        match &self.architecture {
            ImageArchitecture::ResNet { depth, stem } => format!(
                "ResNet-{} ({} stem)",
                match depth {
                    ResNetDepth::ResNet18 => 18,
                    ResNetDepth::ResNet50 => 50,
                },
                stem.as_str()
            ),
            ImageArchitecture::Vit(vit) => format!(
                "ViT ({} blocks of {}, {} heads, {}-px patches, {} px)",
                vit.layers, vit.hidden_dim, vit.heads, vit.patch_size, self.input.resolution
            ),
        }
    }

    /// `backbone` set up to hold this checkpoint: the ResNet's stem or the ViT's shape (its
    /// dropout kept), and `input`'s settings left at their defaults filled from the checkpoint.
    /// Refused, with the field to change, when `backbone.kind` is not this network or `input`
    /// contradicts it.
    pub fn configure(
        &self,
        backbone: &BackboneConfig,
    ) -> Result<BackboneConfig, (&'static str, String)> {
        let mut configured = backbone.clone();
        let wanted = match &self.architecture {
            ImageArchitecture::ResNet { depth, .. } => depth.timm_name(),
            ImageArchitecture::Vit(_) => "vit",
        };
        match (&self.architecture, backbone.kind) {
            (ImageArchitecture::ResNet { depth, stem }, kind)
                if kind.resnet_depth() == Some(*depth) =>
            {
                configured.resnet.stem = *stem;
            }
            (ImageArchitecture::Vit(vit), BackboneKind::Vit) => {
                configured.vit = VitConfig {
                    dropout: backbone.vit.dropout,
                    ..vit.clone()
                };
            }
            (_, kind) => {
                return Err((
                    "backbone.kind",
                    format!(
                        "`{}` holds a {}, not a `{}`; set backbone.kind = \"{wanted}\"",
                        self.path.display(),
                        self.describe(),
                        kind.as_str()
                    ),
                ))
            }
        }
        let input = &mut configured.input;
        if input.mean.is_empty() && input.std.is_empty() {
            input.mean = self.input.mean.clone();
            input.std = self.input.std.clone();
        }
        if input.mean.len() as i64 != self.channels {
            return Err((
                "backbone.input.mean",
                format!(
                    "has {} values, but `{}` reads {}-channel images",
                    input.mean.len(),
                    self.path.display(),
                    self.channels
                ),
            ));
        }
        let native = self.input.resolution;
        match (&self.architecture, input.resolution) {
            (_, 0) => input.resolution = native,
            (ImageArchitecture::Vit(_), resolution) if resolution != native => {
                return Err((
                    "backbone.input.resolution",
                    format!(
                        "{resolution} px, but the ViT of `{}` has positions for {native} px; \
                         leave it 0",
                        self.path.display()
                    ),
                ))
            }
            _ => {}
        }
        Ok(configured)
    }
}

/// A folder's tensors (a `vit.` prefix removed) and their layout.
pub(crate) struct CheckpointTensors {
    pub(crate) path: PathBuf,
    pub(crate) tensors: BTreeMap<String, Tensor>,
    pub(crate) layout: Layout,
}

impl CheckpointTensors {
    fn shape(&self, name: &str) -> Result<Vec<i64>, ImageCheckpointError> {
        self.tensors
            .get(name)
            .map(Tensor::size)
            .ok_or_else(|| self.refuse(format!("no tensor `{name}`")))
    }

    fn refuse(&self, message: String) -> ImageCheckpointError {
        ImageCheckpointError::file(&self.path, message)
    }

    /// The distinct block indices N of names `{prefix}N.…`, in order.
    fn blocks(&self, prefix: &str) -> BTreeSet<usize> {
        self.tensors
            .keys()
            .filter_map(|name| name.strip_prefix(prefix)?.split('.').next()?.parse().ok())
            .collect()
    }
}

/// Reads `dir/model.safetensors` and recognizes its layout. A pickle checkpoint beside or
/// instead of it is refused with how to convert it; a folder that holds no image model says
/// what it holds.
pub(crate) fn read_tensors(dir: &Path) -> Result<CheckpointTensors, ImageCheckpointError> {
    if !dir.is_dir() {
        return Err(ImageCheckpointError::file(
            dir,
            "not a folder; backbone.pretrained names the folder that holds model.safetensors \
             (and config.json)",
        ));
    }
    let path = dir.join(WEIGHTS);
    if !path.is_file() {
        return Err(match pickle_in(dir) {
            Some(pickle) => ImageCheckpointError::file(
                &pickle,
                format!(
                    "pickle checkpoints are never loaded (they can run code); convert it to \
                     {WEIGHTS} in the same folder with `python -c \"import torch; from \
                     safetensors.torch import save_file; w = torch.load('{}', \
                     map_location='cpu', weights_only=True); w = w.get('state_dict', w); \
                     save_file({{k: v.contiguous() for k, v in w.items()}}, '{}')\"`",
                    pickle.display(),
                    path.display()
                ),
            ),
            None => ImageCheckpointError::file(
                &path,
                "not found: an image checkpoint folder holds model.safetensors (timm, \
                 torchvision or Hugging Face names) and optionally config.json",
            ),
        });
    }
    let read = Tensor::read_safetensors(&path)
        .map_err(|error| ImageCheckpointError::file(&path, error.to_string()))?;
    let tensors: BTreeMap<String, Tensor> = read
        .into_iter()
        .map(|(name, tensor)| {
            let name = name
                .strip_prefix("vit.")
                .map(str::to_string)
                .unwrap_or(name);
            (name, tensor)
        })
        .collect();
    let names: Vec<&str> = tensors.keys().map(String::as_str).collect();
    let Some(layout) = Layout::detect(&names) else {
        return Err(ImageCheckpointError::file(
            &path,
            not_an_image_model(&names),
        ));
    };
    Ok(CheckpointTensors {
        path,
        tensors,
        layout,
    })
}

/// The first pickle-format weights file in `dir`, by name.
fn pickle_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| {
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            ["bin", "pth", "pt", "ckpt", "pkl"].contains(&extension)
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

fn not_an_image_model(names: &[&str]) -> String {
    let shown: Vec<&str> = names.iter().copied().take(5).collect();
    let what = if names.contains(&"embeddings.word_embeddings.weight")
        || names.contains(&"bert.embeddings.word_embeddings.weight")
    {
        " (a text model: it starts a backbone.kind = \"transformer\")".to_string()
    } else if names.iter().any(|name| name.contains("embedder.embedder")) {
        " (a Hugging Face ResNetModel, whose names pretext does not map: use timm's or \
         torchvision's ResNet)"
            .to_string()
    } else {
        String::new()
    };
    format!(
        "not an image model pretext can load: expected the names of a timm / torchvision \
         ResNet (conv1.weight, layer1.0.conv1.weight, …), a timm ViT (cls_token, pos_embed, \
         patch_embed.proj.weight, blocks.0.attn.qkv.weight, …) or a Hugging Face ViTModel \
         (embeddings.cls_token, encoder.layer.0.attention.attention.query.weight, …); it holds \
         {} tensors such as {}{what}",
        names.len(),
        shown.join(", ")
    )
}

/// A JSON file of the folder, if there.
fn read_json(path: &Path) -> Result<Option<Value>, ImageCheckpointError> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|error| ImageCheckpointError::file(path, error.to_string()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| ImageCheckpointError::file(path, format!("not valid JSON: {error}")))
}

/// The configs beside the weights (each `Value::Null` when absent).
struct Configs {
    config_path: PathBuf,
    config: Value,
    preprocessor_path: PathBuf,
    preprocessor: Value,
}

impl Configs {
    fn read(dir: &Path) -> Result<Configs, ImageCheckpointError> {
        let config_path = dir.join("config.json");
        let preprocessor_path = dir.join("preprocessor_config.json");
        Ok(Configs {
            config: read_json(&config_path)?.unwrap_or(Value::Null),
            preprocessor: read_json(&preprocessor_path)?.unwrap_or(Value::Null),
            config_path,
            preprocessor_path,
        })
    }

    /// timm's `pretrained_cfg.<key>`, else its top-level `<key>`.
    fn timm(&self, key: &str) -> Option<&Value> {
        self.config
            .get("pretrained_cfg")
            .and_then(|cfg| cfg.get(key))
            .or_else(|| self.config.get(key))
    }

    /// config.json's `architecture` (timm), without a `.tag` (`resnet50.a1_in1k`).
    fn timm_architecture(&self) -> Option<&str> {
        let name = self.config.get("architecture")?.as_str()?;
        Some(name.split('.').next().unwrap_or(name))
    }

    /// A list of numbers at `value`, or an error naming `file` and `key`.
    fn numbers(value: &Value, file: &Path, key: &str) -> Result<Vec<f64>, ImageCheckpointError> {
        let numbers: Option<Vec<f64>> = match value {
            Value::Array(items) => items.iter().map(Value::as_f64).collect(),
            Value::Number(number) => number.as_f64().map(|x| vec![x]),
            _ => None,
        };
        numbers.ok_or_else(|| {
            ImageCheckpointError::file(file, format!("`{key}` must be a list of numbers"))
        })
    }

    /// The mean and std of the pixels the model expects, `channels` long.
    fn normalization(
        &self,
        channels: i64,
        weights: &Path,
    ) -> Result<(Vec<f64>, Vec<f64>), ImageCheckpointError> {
        let found = if let (Some(mean), Some(std)) = (
            self.preprocessor.get("image_mean"),
            self.preprocessor.get("image_std"),
        ) {
            let file = &self.preprocessor_path;
            Some((
                Self::numbers(mean, file, "image_mean")?,
                Self::numbers(std, file, "image_std")?,
                file,
            ))
        } else if let (Some(mean), Some(std)) = (self.timm("mean"), self.timm("std")) {
            let file = &self.config_path;
            Some((
                Self::numbers(mean, file, "mean")?,
                Self::numbers(std, file, "std")?,
                file,
            ))
        } else {
            None
        };
        let Some((mean, std, file)) = found else {
            return match channels {
                3 => Ok((IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec())),
                _ => Err(ImageCheckpointError::file(
                    weights,
                    format!(
                        "reads {channels}-channel images, and no config.json \
                         (pretrained_cfg.mean / std) or preprocessor_config.json (image_mean / \
                         image_std) says how they are normalized"
                    ),
                )),
            };
        };
        let fit = |values: Vec<f64>, key: &str| match values.len() as i64 {
            1 => Ok(vec![values[0]; channels as usize]),
            n if n == channels => Ok(values),
            n => Err(ImageCheckpointError::file(
                file,
                format!("`{key}` has {n} values, but the model reads {channels} channels"),
            )),
        };
        Ok((fit(mean, "mean")?, fit(std, "std")?))
    }

    /// The resolution a convolutional network expects: timm's `input_size`, Hugging Face's
    /// `crop_size` or `size`, else 224.
    fn resolution(&self) -> i64 {
        let side = |value: &Value| -> Option<i64> {
            match value {
                Value::Number(number) => number.as_i64(),
                Value::Array(items) => items.last()?.as_i64(),
                Value::Object(_) => ["height", "shortest_edge"]
                    .iter()
                    .find_map(|key| value.get(*key)?.as_i64()),
                _ => None,
            }
        };
        self.timm("input_size")
            .and_then(side)
            .or_else(|| self.preprocessor.get("crop_size").and_then(side))
            .or_else(|| self.preprocessor.get("size").and_then(side))
            .filter(|&side| side > 0)
            .unwrap_or(224)
    }
}

/// Reads the checkpoint folder `dir`: the layout of `model.safetensors`, the network it holds
/// and the pixels that network expects (see the module's documentation for where each comes
/// from). Errors name the file.
pub fn read_image_checkpoint(dir: &Path) -> Result<ImageCheckpoint, ImageCheckpointError> {
    let tensors = read_tensors(dir)?;
    let configs = Configs::read(dir)?;
    let (architecture, channels, native) = match tensors.layout {
        Layout::TimmResNet => resnet_architecture(&tensors, &configs)?,
        Layout::TimmVit | Layout::HuggingFaceVit => vit_architecture(&tensors, &configs)?,
    };
    let (mean, std) = configs.normalization(channels, &tensors.path)?;
    Ok(ImageCheckpoint {
        path: tensors.path,
        layout: tensors.layout,
        architecture,
        channels,
        input: InputAdapterConfig {
            mean,
            std,
            resolution: native.unwrap_or_else(|| configs.resolution()),
        },
    })
}

/// A ResNet's depth (from its blocks), stem (from `conv1`'s kernel) and channels.
fn resnet_architecture(
    tensors: &CheckpointTensors,
    configs: &Configs,
) -> Result<(ImageArchitecture, i64, Option<i64>), ImageCheckpointError> {
    let counts: Vec<usize> = (1..=4)
        .map(|stage| tensors.blocks(&format!("layer{stage}.")).len())
        .collect();
    let bottleneck = tensors.tensors.contains_key("layer1.0.conv3.weight");
    let depth = match (counts.as_slice(), bottleneck) {
        ([2, 2, 2, 2], false) => ResNetDepth::ResNet18,
        ([3, 4, 6, 3], true) => ResNetDepth::ResNet50,
        (counts, _) => {
            return Err(tensors.refuse(format!(
                "holds a ResNet of {counts:?} {} blocks per stage; pretext builds ResNet-18 \
                 ([2, 2, 2, 2] basic) and ResNet-50 ([3, 4, 6, 3] bottleneck)",
                if bottleneck { "bottleneck" } else { "basic" }
            )))
        }
    };
    let stem_shape = tensors.shape("conv1.weight")?;
    let stem = match stem_shape.as_slice() {
        [64, _, 7, 7] => ResNetStem::Imagenet,
        [64, _, 3, 3] => ResNetStem::Cifar,
        shape => {
            return Err(tensors.refuse(format!(
                "`conv1.weight` has shape {shape:?}; expected [64, C, 7, 7] (ImageNet stem) or \
                 [64, C, 3, 3] (CIFAR stem)"
            )))
        }
    };
    if let Some(named) = configs.timm_architecture() {
        if named != depth.timm_name() {
            return Err(ImageCheckpointError::file(
                &configs.config_path,
                format!(
                    "says architecture `{named}`, but {} holds a {}",
                    tensors.path.display(),
                    depth.timm_name()
                ),
            ));
        }
    }
    Ok((
        ImageArchitecture::ResNet { depth, stem },
        stem_shape[1],
        None,
    ))
}

/// A ViT's shape, channels and resolution from its tensors, its heads and norm epsilon from
/// its config.
fn vit_architecture(
    tensors: &CheckpointTensors,
    configs: &Configs,
) -> Result<(ImageArchitecture, i64, Option<i64>), ImageCheckpointError> {
    let layout = tensors.layout;
    let shape_of = |ours: &str| {
        let slot = layout.slot(ours).expect("a ViT variable");
        tensors.shape(&slot.name).map(|shape| (slot.name, shape))
    };
    let (cls_name, cls) = shape_of("cls_token")?;
    let (patch_name, patch) = shape_of("patch_embed.weight")?;
    let (positions_name, positions) = shape_of("position_embed")?;
    let (hidden, channels, patch_size) = match (cls.as_slice(), patch.as_slice()) {
        ([1, 1, h], [h2, c, p, p2]) if h == h2 && p == p2 => (*h, *c, *p),
        _ => {
            return Err(tensors.refuse(format!(
                "`{cls_name}` {cls:?} and `{patch_name}` {patch:?} are not [1, 1, H] and \
                 [H, C, P, P]"
            )))
        }
    };
    let count = match positions.as_slice() {
        [1, n, h] if *h == hidden => *n,
        _ => {
            return Err(tensors.refuse(format!(
                "`{positions_name}` has shape {positions:?}; expected [1, N, {hidden}]"
            )))
        }
    };
    let grid = ((count - 1).max(0) as f64).sqrt().round() as i64;
    if grid * grid + 1 != count {
        return Err(tensors.refuse(format!(
            "`{positions_name}` holds {count} positions, not one for [CLS] and a square grid of \
             patches (models with register tokens or without a class token are not supported)"
        )));
    }
    let block_prefix = match layout {
        Layout::TimmVit => "blocks.",
        _ => "encoder.layer.",
    };
    let layers = tensors.blocks(block_prefix).len();
    if layers == 0 {
        return Err(tensors.refuse(format!("holds no transformer blocks `{block_prefix}N.…`")));
    }
    let (_, mlp) = shape_of("encoder.layer.0.intermediate.dense.weight")?;
    let heads = vit_heads(hidden, configs)?;
    let config = &configs.config;
    let (layer_norm_eps, pooling) = match layout {
        Layout::HuggingFaceVit => {
            if let Some(activation) = config.get("hidden_act").and_then(Value::as_str) {
                if activation != "gelu" {
                    return Err(ImageCheckpointError::file(
                        &configs.config_path,
                        format!("hidden_act `{activation}` (supported: gelu)"),
                    ));
                }
            }
            let eps = config.get("layer_norm_eps").and_then(Value::as_f64);
            (eps.unwrap_or(1e-12), Pooling::Cls)
        }
        _ => {
            let pool = config
                .get("global_pool")
                .or_else(|| config.get("model_args").and_then(|a| a.get("global_pool")))
                .and_then(Value::as_str);
            let pooling = match pool {
                None | Some("token") => Pooling::Cls,
                Some("avg") => Pooling::Mean,
                Some(other) => {
                    return Err(ImageCheckpointError::file(
                        &configs.config_path,
                        format!("global_pool `{other}` (supported: token, avg)"),
                    ))
                }
            };
            (1e-6, pooling)
        }
    };
    let vit = VitConfig {
        patch_size,
        hidden_dim: hidden,
        layers,
        heads,
        mlp_dim: mlp[0],
        dropout: 0.0,
        positions: PositionEmbedding::Learned,
        pooling,
        layer_norm_eps,
    };
    vit.validate().map_err(|message| tensors.refuse(message))?;
    Ok((
        ImageArchitecture::Vit(vit),
        channels,
        Some(grid * patch_size),
    ))
}

/// A ViT's attention heads: config.json's `num_attention_heads` (Hugging Face) or
/// `model_args.num_heads` (timm), the size in its timm `architecture` name, else the standard
/// heads of its width.
fn vit_heads(hidden: i64, configs: &Configs) -> Result<i64, ImageCheckpointError> {
    let config = &configs.config;
    let written = config
        .get("num_attention_heads")
        .or_else(|| config.get("model_args").and_then(|a| a.get("num_heads")))
        .or_else(|| config.get("num_heads"))
        .and_then(Value::as_i64);
    let named = configs.timm_architecture().and_then(|name| {
        [
            ("tiny", 3),
            ("small", 6),
            ("base", 12),
            ("large", 16),
            ("huge", 16),
        ]
        .iter()
        .find(|(size, _)| name.contains(&format!("_{size}_")))
        .map(|&(_, heads)| heads)
    });
    let standard = match hidden {
        192 => Some(3),
        384 => Some(6),
        768 => Some(12),
        1024 => Some(16),
        _ => None,
    };
    written.or(named).or(standard).ok_or_else(|| {
        ImageCheckpointError::file(
            &configs.config_path,
            format!(
                "cannot tell how many attention heads the {hidden}-wide ViT has: add \
                 num_attention_heads (Hugging Face) or model_args.num_heads (timm)"
            ),
        )
    })
}
