//! Image models trained elsewhere, in and out: a folder with `model.safetensors` (and
//! optionally `config.json`, `preprocessor_config.json`) in one of three layouts, mapped by
//! name onto pretext's ResNet and ViT —
//!
//! | layout | ResNet-18 / ResNet-50 | ViT (any width, depth, patch) |
//! |---|---|---|
//! | timm / torchvision | `conv1`, `bn1`, `layer1.0.conv1`, …, `downsample.0/1` (`fc.*` unused) | — |
//! | timm (and DINO's original ViT-S/16) | — | `cls_token`, `pos_embed`, `patch_embed.proj`, `blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`, `norm` (`head.*` unused) |
//! | Hugging Face `ViTModel` (facebook/dino-vits16) | — | `embeddings.{cls_token, position_embeddings, patch_embeddings.projection}`, `encoder.layer.N.{layernorm_before, attention.attention.{query,key,value}, attention.output.dense, layernorm_after, intermediate.dense, output.dense}`, `layernorm` (`vit.` prefix removed; `pooler.*` unused) |
//!
//! The layout is recognized from the names; the architecture from the tensors' shapes (ResNet
//! depth and block type from the `layerK.N` blocks, the stem from `conv1`'s kernel; a ViT's
//! width, depth, patch, MLP width and resolution from its tensors, its heads from config.json
//! — Hugging Face's `num_attention_heads`, timm's `model_args.num_heads` or its `architecture`
//! name — else the standard ones for its width: 192 → 3, 384 → 6, 768 → 12, 1024 → 16). The
//! pixels it expects (mean, std, resolution: [`crate::InputAdapterConfig`]) come from
//! `preprocessor_config.json` (`image_mean`, `image_std`), config.json (timm's
//! `pretrained_cfg` or top-level `mean`, `std`, `input_size`) or ImageNet's defaults at 224 px.
//!
//! The guarantees of [`crate::hf_bert`]: only safetensors are read (a pickle is refused with
//! how to convert it); every variable of the model is found with its exact shape, and every
//! tensor of the file has a place in the model or is a known unused one (a classifier, a
//! pooler) — otherwise one message lists what is missing, misshapen or left over; weights with
//! NaN or Inf are refused; nothing is copied unless everything fits; every error names the
//! file.
//!
//! Out: [`timm_state_dict`] gives an encoder's weights under timm's names (torchvision's for
//! a ResNet; timm's fused `qkv` for a ViT) and [`timm_config`] the config.json describing it,
//! so `timm.create_model(architecture, num_classes=0, **model_args)` loads them. The
//! CIFAR-stem ResNet-18 gets the same names, but its `conv1` is 3×3 without a max-pool after
//! it (config.json's `pretext.stem = "cifar"`): timm builds no such network, and pretext
//! reads it back.

mod error;
mod export;
mod folder;
mod load;
mod names;
#[cfg(test)]
mod tests;

pub use error::ImageCheckpointError;
pub use export::{timm_config, timm_state_dict};
pub use folder::{read_image_checkpoint, ImageArchitecture, ImageCheckpoint};
pub use load::load_image_checkpoint;
pub use names::Layout;
