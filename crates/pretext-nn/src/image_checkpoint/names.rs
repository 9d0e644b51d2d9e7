//! Where each of pretext's encoder variables lives in the three layouts image checkpoints come
//! in: one table per architecture, read one way to load a checkpoint and the other to export
//! one, so the two cannot disagree.

/// How a checkpoint names its tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// torchvision's and timm's ResNet: `conv1`, `bn1`, `layer1.0.conv1`, …,
    /// `layer2.0.downsample.0` / `.1`; the classifier `fc.*` is not used.
    TimmResNet,
    /// timm's `VisionTransformer`, which is also DINO's original ViT: `cls_token`,
    /// `pos_embed`, `patch_embed.proj`, `blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1,
    /// mlp.fc2}`, `norm`; the classifier `head.*` is not used.
    TimmVit,
    /// Hugging Face's `ViTModel` (facebook/dino-vits16, google/vit-*): `embeddings.*`,
    /// `encoder.layer.N.*`, `layernorm`, with any `vit.` prefix removed; `pooler.*`,
    /// `classifier.*` and `embeddings.mask_token` are not used.
    HuggingFaceVit,
}

/// Where one variable's values are in a checkpoint: a whole tensor, or block `part.0` of the
/// `part.1` equal row blocks of a fused one (timm's `qkv`: query, key, value stacked on dim 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) part: Option<(i64, i64)>,
}

impl Slot {
    fn whole(name: String) -> Slot {
        Slot { name, part: None }
    }
}

/// A ViT's variables outside the blocks: (pretext, timm, Hugging Face). A name matches as is
/// or followed by `.weight` / `.bias`.
const VIT_OUTSIDE_BLOCKS: [(&str, &str, &str); 4] = [
    ("cls_token", "cls_token", "embeddings.cls_token"),
    (
        "position_embed",
        "pos_embed",
        "embeddings.position_embeddings",
    ),
    (
        "patch_embed",
        "patch_embed.proj",
        "embeddings.patch_embeddings.projection",
    ),
    ("final_layer_norm", "norm", "layernorm"),
];

/// A timm block's module, whole or one third of the fused `attn.qkv`.
#[derive(Clone, Copy)]
enum TimmModule {
    Whole(&'static str),
    Qkv(i64),
}

/// A ViT block's modules: (pretext under `encoder.layer.N.`, timm under `blocks.N.`, Hugging
/// Face under `encoder.layer.N.`).
const VIT_BLOCK: [(&str, TimmModule, &str); 8] = [
    (
        "attention.self.query",
        TimmModule::Qkv(0),
        "attention.attention.query",
    ),
    (
        "attention.self.key",
        TimmModule::Qkv(1),
        "attention.attention.key",
    ),
    (
        "attention.self.value",
        TimmModule::Qkv(2),
        "attention.attention.value",
    ),
    (
        "attention.output.dense",
        TimmModule::Whole("attn.proj"),
        "attention.output.dense",
    ),
    (
        "attention.output.LayerNorm",
        TimmModule::Whole("norm1"),
        "layernorm_before",
    ),
    (
        "intermediate.dense",
        TimmModule::Whole("mlp.fc1"),
        "intermediate.dense",
    ),
    ("output.dense", TimmModule::Whole("mlp.fc2"), "output.dense"),
    (
        "output.LayerNorm",
        TimmModule::Whole("norm2"),
        "layernorm_after",
    ),
];

impl Layout {
    /// The layout's name in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Layout::TimmResNet => "timm / torchvision ResNet",
            Layout::TimmVit => "timm ViT",
            Layout::HuggingFaceVit => "Hugging Face ViTModel",
        }
    }

    /// The layout of a checkpoint holding `names` (a `vit.` prefix already removed), if any.
    pub(crate) fn detect(names: &[&str]) -> Option<Layout> {
        let has = |name: &str| names.contains(&name);
        if has("conv1.weight") && names.iter().any(|name| name.starts_with("layer1.")) {
            Some(Layout::TimmResNet)
        } else if has("cls_token") && has("pos_embed") && has("patch_embed.proj.weight") {
            Some(Layout::TimmVit)
        } else if has("embeddings.cls_token")
            && has("embeddings.position_embeddings")
            && has("embeddings.patch_embeddings.projection.weight")
        {
            Some(Layout::HuggingFaceVit)
        } else {
            None
        }
    }

    /// Whether the checkpoint's tensor `name` is one pretext does not use: a classifier, a
    /// pooler, batch norm's batch counter.
    pub(crate) fn unused(self, name: &str) -> bool {
        match self {
            Layout::TimmResNet => name.starts_with("fc.") || name.ends_with(".num_batches_tracked"),
            Layout::TimmVit => name.starts_with("head."),
            Layout::HuggingFaceVit => {
                name.starts_with("pooler.")
                    || name.starts_with("classifier.")
                    || name == "embeddings.mask_token"
            }
        }
    }

    /// Where pretext's encoder variable `ours` (its name under the encoder) is in this
    /// layout; None when it has no place there.
    pub(crate) fn slot(self, ours: &str) -> Option<Slot> {
        match self {
            Layout::TimmResNet => Some(Slot::whole(resnet_name(ours))),
            Layout::TimmVit | Layout::HuggingFaceVit => self.vit_slot(ours),
        }
    }

    fn vit_slot(self, ours: &str) -> Option<Slot> {
        let timm = self == Layout::TimmVit;
        for (pretext, timm_name, hf_name) in VIT_OUTSIDE_BLOCKS {
            if let Some(rest) = after(ours, pretext) {
                let theirs = if timm { timm_name } else { hf_name };
                return Some(Slot::whole(format!("{theirs}{rest}")));
            }
        }
        let within = ours.strip_prefix("encoder.layer.")?;
        let (block, module) = within.split_once('.')?;
        let block: usize = block.parse().ok()?;
        for (pretext, timm_module, hf_module) in VIT_BLOCK {
            let Some(rest) = after(module, pretext) else {
                continue;
            };
            return Some(match (timm, timm_module) {
                (true, TimmModule::Whole(name)) => {
                    Slot::whole(format!("blocks.{block}.{name}{rest}"))
                }
                (true, TimmModule::Qkv(index)) => Slot {
                    name: format!("blocks.{block}.attn.qkv{rest}"),
                    part: Some((index, 3)),
                },
                (false, _) => Slot::whole(format!("encoder.layer.{block}.{hf_module}{rest}")),
            });
        }
        None
    }
}

/// What follows `module` in `name` when `name` is `module` itself or one of its parameters
/// (`""`, `".weight"`, `".bias"`).
fn after<'a>(name: &'a str, module: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(module)?;
    (rest.is_empty() || rest.starts_with('.')).then_some(rest)
}

/// The torchvision / timm name of a ResNet variable: the CIFAR ResNet-18's own stem and
/// shortcut names become `conv1`, `bn1`, `downsample.0` and `downsample.1`; the others are
/// already torchvision's.
fn resnet_name(ours: &str) -> String {
    if let Some(rest) = ours.strip_prefix("stem_conv.") {
        return format!("conv1.{rest}");
    }
    if let Some(rest) = ours.strip_prefix("stem_bn.") {
        return format!("bn1.{rest}");
    }
    ours.replacen(".shortcut_conv.", ".downsample.0.", 1)
        .replacen(".shortcut_bn.", ".downsample.1.", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(layout: Layout, ours: &str) -> (String, Option<(i64, i64)>) {
        let slot = layout
            .slot(ours)
            .unwrap_or_else(|| panic!("no slot for {ours}"));
        (slot.name, slot.part)
    }

    #[test]
    fn vit_names_map_to_timm_and_hugging_face() {
        use Layout::{HuggingFaceVit as Hf, TimmVit as Timm};
        let cases = [
            ("cls_token", "cls_token", "embeddings.cls_token"),
            (
                "position_embed",
                "pos_embed",
                "embeddings.position_embeddings",
            ),
            (
                "patch_embed.weight",
                "patch_embed.proj.weight",
                "embeddings.patch_embeddings.projection.weight",
            ),
            ("final_layer_norm.bias", "norm.bias", "layernorm.bias"),
            (
                "encoder.layer.11.attention.output.LayerNorm.weight",
                "blocks.11.norm1.weight",
                "encoder.layer.11.layernorm_before.weight",
            ),
            (
                "encoder.layer.3.output.LayerNorm.bias",
                "blocks.3.norm2.bias",
                "encoder.layer.3.layernorm_after.bias",
            ),
            (
                "encoder.layer.0.intermediate.dense.weight",
                "blocks.0.mlp.fc1.weight",
                "encoder.layer.0.intermediate.dense.weight",
            ),
            (
                "encoder.layer.0.output.dense.bias",
                "blocks.0.mlp.fc2.bias",
                "encoder.layer.0.output.dense.bias",
            ),
            (
                "encoder.layer.2.attention.output.dense.weight",
                "blocks.2.attn.proj.weight",
                "encoder.layer.2.attention.output.dense.weight",
            ),
        ];
        for (ours, timm, hf) in cases {
            assert_eq!(slot(Timm, ours), (timm.to_string(), None), "{ours}");
            assert_eq!(slot(Hf, ours), (hf.to_string(), None), "{ours}");
        }
        for (index, projection) in ["query", "key", "value"].iter().enumerate() {
            let ours = format!("encoder.layer.5.attention.self.{projection}.bias");
            assert_eq!(
                slot(Timm, &ours),
                (
                    "blocks.5.attn.qkv.bias".to_string(),
                    Some((index as i64, 3))
                )
            );
            assert_eq!(
                slot(Hf, &ours).0,
                format!("encoder.layer.5.attention.attention.{projection}.bias")
            );
        }
        assert!(Timm.slot("encoder.layer.x.output.dense.bias").is_none());
        assert!(Timm.slot("cls_tokens").is_none());
    }

    #[test]
    fn the_cifar_resnet18s_names_map_to_torchvisions() {
        for (ours, theirs) in [
            ("stem_conv.weight", "conv1.weight"),
            ("stem_bn.running_mean", "bn1.running_mean"),
            (
                "layer2.0.shortcut_conv.weight",
                "layer2.0.downsample.0.weight",
            ),
            ("layer2.0.shortcut_bn.bias", "layer2.0.downsample.1.bias"),
            ("layer3.1.bn2.weight", "layer3.1.bn2.weight"),
            ("conv1.weight", "conv1.weight"),
            (
                "layer4.0.downsample.1.running_var",
                "layer4.0.downsample.1.running_var",
            ),
        ] {
            assert_eq!(slot(Layout::TimmResNet, ours), (theirs.to_string(), None));
        }
    }

    #[test]
    fn layouts_are_told_apart_by_their_names() {
        let resnet = [
            "conv1.weight",
            "bn1.weight",
            "layer1.0.conv1.weight",
            "fc.weight",
        ];
        assert_eq!(Layout::detect(&resnet), Some(Layout::TimmResNet));
        let timm = [
            "cls_token",
            "pos_embed",
            "patch_embed.proj.weight",
            "head.weight",
        ];
        assert_eq!(Layout::detect(&timm), Some(Layout::TimmVit));
        let hf = [
            "embeddings.cls_token",
            "embeddings.position_embeddings",
            "embeddings.patch_embeddings.projection.weight",
        ];
        assert_eq!(Layout::detect(&hf), Some(Layout::HuggingFaceVit));
        let bert = [
            "embeddings.word_embeddings.weight",
            "encoder.layer.0.output.dense.weight",
        ];
        assert_eq!(Layout::detect(&bert), None);
        assert!(Layout::TimmResNet.unused("layer1.0.bn1.num_batches_tracked"));
        assert!(Layout::TimmVit.unused("head.weight") && !Layout::TimmVit.unused("fc_norm.weight"));
        assert!(Layout::HuggingFaceVit.unused("pooler.dense.weight"));
    }
}
