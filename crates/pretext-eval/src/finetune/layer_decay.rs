//! Layer-wise learning-rate decay: the depth of each encoder parameter from its name, and the
//! learning-rate multiplier that depth gets, so the layers nearest the input (the most general
//! features) move least.

/// Depth of an encoder parameter from its name: 0 for embeddings, stems and a ViT's patch
/// embedding, [CLS] token and positions, then one per
/// block (`layer.N`, `layerN`, `convN`/`bnN`); None outside the encoder.
pub fn encoder_depth(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("encoder.")?;
    let input_layers = [
        "embeddings",
        "stem",
        "patch_embed",
        "cls_token",
        "position_embed",
    ];
    if input_layers.iter().any(|prefix| rest.starts_with(prefix)) {
        return Some(0);
    }
    let number_after = |marker: &str| -> Option<usize> {
        let start = rest.find(marker)? + marker.len();
        let digits: String = rest[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    if let Some(n) = number_after("layer.") {
        return Some(n + 1);
    }
    if let Some(n) = number_after("layer") {
        return Some(n);
    }
    if let Some(n) = number_after("conv").or_else(|| number_after("bn")) {
        return Some(n + 1);
    }
    // Final norms and anything else sit at the top of the encoder.
    Some(usize::MAX)
}

/// The learning-rate multipliers of layer-wise decay over an encoder's trained parameters: a
/// parameter at depth d of D gets decay^(D + 1 − d), one outside the encoder gets 1.
pub(super) struct LayerDecay {
    /// The deepest block among the encoder's parameters (D).
    deepest: usize,
    decay: f64,
    /// Whether the encoder is a ResNet with torchvision's names, whose stem is `conv1` and
    /// `bn1` (the small CNN's `conv1` is its second layer).
    torchvision_stem: bool,
}

impl LayerDecay {
    /// The decay over the parameters named `encoder_names`.
    pub(super) fn new(encoder_names: &[String], decay: f64) -> LayerDecay {
        let torchvision_stem = encoder_names
            .iter()
            .any(|name| name.starts_with("encoder.layer1."))
            && encoder_names
                .iter()
                .any(|name| name.starts_with("encoder.conv1."));
        let mut layer_decay = LayerDecay {
            deepest: 0,
            decay,
            torchvision_stem,
        };
        layer_decay.deepest = encoder_names
            .iter()
            .filter_map(|name| layer_decay.depth(name))
            .filter(|&depth| depth != usize::MAX)
            .max()
            .unwrap_or(0);
        layer_decay
    }

    /// [`encoder_depth`], with a torchvision ResNet's stem at 0.
    fn depth(&self, name: &str) -> Option<usize> {
        let stem = ["encoder.conv1.", "encoder.bn1."];
        if self.torchvision_stem && stem.iter().any(|prefix| name.starts_with(prefix)) {
            return Some(0);
        }
        encoder_depth(name)
    }

    /// The multiplier of the parameter `name`.
    pub(super) fn scale(&self, name: &str) -> f64 {
        match self.depth(name) {
            None => 1.0,
            Some(depth) => {
                let depth = depth.min(self.deepest + 1);
                self.decay.powi((self.deepest + 1 - depth) as i32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_follows_the_block_index_for_every_backbone() {
        assert_eq!(
            encoder_depth("encoder.embeddings.word_embeddings.weight"),
            Some(0)
        );
        assert_eq!(
            encoder_depth("encoder.encoder.layer.3.output.dense.weight"),
            Some(4)
        );
        assert_eq!(encoder_depth("encoder.layer2.0.conv1.weight"), Some(2));
        assert_eq!(encoder_depth("encoder.stem_conv.weight"), Some(0));
        // ViT: patch embedding, [CLS] and positions at the bottom (MAE's layer decay).
        assert_eq!(encoder_depth("encoder.patch_embed.weight"), Some(0));
        assert_eq!(encoder_depth("encoder.cls_token"), Some(0));
        assert_eq!(encoder_depth("encoder.position_embed"), Some(0));
        assert_eq!(
            encoder_depth("encoder.encoder.layer.11.output.dense.weight"),
            Some(12)
        );
        assert_eq!(encoder_depth("encoder.conv1.weight"), Some(2));
        assert_eq!(encoder_depth("encoder.bn0.bias"), Some(1));
        assert_eq!(encoder_depth("projector.fc0.weight"), None);
        assert_eq!(encoder_depth("finetune_head.weight"), None);
    }
    #[test]
    fn the_deepest_block_keeps_the_full_rate_and_each_block_below_decays_once_more() {
        let names: Vec<String> = [
            "encoder.embeddings.word_embeddings.weight",
            "encoder.encoder.layer.0.output.dense.weight",
            "encoder.encoder.layer.1.output.dense.weight",
            "encoder.final_norm.weight",
        ]
        .map(String::from)
        .to_vec();
        let decay = LayerDecay::new(&names, 0.5);
        let scales: Vec<f64> = names.iter().map(|name| decay.scale(name)).collect();
        assert_eq!(scales, [0.125, 0.25, 0.5, 1.0]);
        assert_eq!(decay.scale("finetune_head.weight"), 1.0);
    }

    /// An ImageNet ResNet's `conv1` / `bn1` are its stem, below `layer1`; the small CNN's
    /// `conv1` is its second layer.
    #[test]
    fn a_torchvision_resnets_stem_decays_most() {
        let resnet: Vec<String> = [
            "encoder.conv1.weight",
            "encoder.bn1.bias",
            "encoder.layer1.0.conv1.weight",
            "encoder.layer4.1.bn2.weight",
        ]
        .map(String::from)
        .to_vec();
        let decay = LayerDecay::new(&resnet, 0.5);
        let scales: Vec<f64> = resnet.iter().map(|name| decay.scale(name)).collect();
        assert_eq!(scales, [0.03125, 0.03125, 0.0625, 0.5]);
        let small_cnn: Vec<String> = ["encoder.conv0.weight", "encoder.conv1.weight"]
            .map(String::from)
            .to_vec();
        let decay = LayerDecay::new(&small_cnn, 0.5);
        assert_eq!(decay.scale("encoder.conv1.weight"), 0.5);
    }
}
