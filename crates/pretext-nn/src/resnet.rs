//! ResNet — He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
//! (arXiv:1512.03385).
//!
//! Four stages of residual blocks (64, 128, 256, 512 channels; the first block of stages 2–4
//! halves the resolution), global average pooling → the representation.
//!
//! - ResNet-18: two basic blocks per stage (3×3, 3×3), 512-d.
//! - ResNet-50: 3, 4, 6, 3 bottleneck blocks (1×1, 3×3, 1×1 to 4× the width), 2048-d, the
//!   stride on the 3×3 convolution (torchvision's "v1.5", timm's `resnet50`).
//!
//! Two stems: `cifar` (SimCLR's small-image stem: a 3×3 stride-1 convolution and no max-pool;
//! the default, for 28–32 px images) and `imagenet` (a 7×7 stride-2 convolution, BN, ReLU and a
//! 3×3 stride-2 max-pool: 224 px → 56 px before stage 1, as torchvision and timm).
//!
//! Variable names are torchvision's and timm's (`conv1`, `bn1`, `layer1.0.conv1`, …,
//! `layer2.0.downsample.0` / `.1`), so ImageNet checkpoints load by name
//! ([`crate::image_checkpoint`]) — except the CIFAR-stem ResNet-18, which keeps the names it
//! always had (`stem_conv`, `stem_bn`, `shortcut_conv`, `shortcut_bn`) so its runs and
//! checkpoints still load.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

use crate::batch_norm::BatchNorm;
use crate::encoder::Encoder;
use crate::input_adapter::InputAdapter;

/// The first layers, before stage 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResNetStem {
    /// 3×3 stride-1 convolution, BN, ReLU; no max-pool (small images).
    Cifar,
    /// 7×7 stride-2 convolution, BN, ReLU, 3×3 stride-2 max-pool (ImageNet models).
    Imagenet,
}

impl ResNetStem {
    /// The name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            ResNetStem::Cifar => "cifar",
            ResNetStem::Imagenet => "imagenet",
        }
    }
}

/// `[backbone.resnet]`: settings shared by ResNet-18 and ResNet-50.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResNetConfig {
    /// "cifar" (3×3 stride-1 convolution, no max-pool: for 28–32 px images) or "imagenet"
    /// (7×7 stride-2 convolution and max-pool, as torchvision and timm; set from
    /// `backbone.pretrained`).
    pub stem: ResNetStem,
}

impl Default for ResNetConfig {
    fn default() -> Self {
        ResNetConfig {
            stem: ResNetStem::Cifar,
        }
    }
}

/// How deep, and with which blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResNetDepth {
    /// Basic blocks, 2 per stage, 512-d.
    ResNet18,
    /// Bottleneck blocks, 3 / 4 / 6 / 3, 2048-d.
    ResNet50,
}

impl ResNetDepth {
    fn blocks_per_stage(self) -> [usize; 4] {
        match self {
            ResNetDepth::ResNet18 => [2, 2, 2, 2],
            ResNetDepth::ResNet50 => [3, 4, 6, 3],
        }
    }

    /// Output channels of a block of width `width`.
    fn expansion(self) -> i64 {
        match self {
            ResNetDepth::ResNet18 => 1,
            ResNetDepth::ResNet50 => 4,
        }
    }

    /// Width of the representation.
    pub fn dim(self) -> i64 {
        512 * self.expansion()
    }

    /// timm's (and torchvision's) name of the architecture.
    pub fn timm_name(self) -> &'static str {
        match self {
            ResNetDepth::ResNet18 => "resnet18",
            ResNetDepth::ResNet50 => "resnet50",
        }
    }
}

/// Which names the variables get: the CIFAR ResNet-18's own, or torchvision's and timm's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Names {
    /// `stem_conv`, `stem_bn`, `shortcut_conv`, `shortcut_bn` (the CIFAR ResNet-18).
    Pretext,
    /// `conv1`, `bn1`, `downsample.0`, `downsample.1`.
    Torchvision,
}

fn conv(path: nn::Path, input: i64, output: i64, kernel: i64, stride: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding: kernel / 2,
        bias: false,
        ..Default::default()
    };
    nn::conv2d(path, input, output, kernel, config)
}

/// A residual block: convolutions each followed by BN (ReLU between them), plus the input or
/// its projection (1×1 convolution and BN), then ReLU.
#[derive(Debug)]
struct Block {
    layers: Vec<(nn::Conv2D, BatchNorm)>,
    shortcut: Option<(nn::Conv2D, BatchNorm)>,
}

impl Block {
    fn new(
        path: &nn::Path,
        depth: ResNetDepth,
        names: Names,
        (input, width, stride): (i64, i64, i64),
    ) -> Block {
        let output = width * depth.expansion();
        let shortcut = (stride != 1 || input != output).then(|| {
            let (conv_path, bn_path) = match names {
                Names::Pretext => (path / "shortcut_conv", path / "shortcut_bn"),
                Names::Torchvision => (path / "downsample" / 0, path / "downsample" / 1),
            };
            (
                conv(conv_path, input, output, 1, stride),
                BatchNorm::new_2d(bn_path, output),
            )
        });
        // (input, output, kernel, stride) of each convolution.
        let shapes = match depth {
            ResNetDepth::ResNet18 => vec![(input, width, 3, stride), (width, width, 3, 1)],
            ResNetDepth::ResNet50 => vec![
                (input, width, 1, 1),
                (width, width, 3, stride),
                (width, output, 1, 1),
            ],
        };
        let layers = shapes
            .into_iter()
            .enumerate()
            .map(|(index, (from, to, kernel, stride))| {
                let n = index + 1;
                (
                    conv(path / format!("conv{n}"), from, to, kernel, stride),
                    BatchNorm::new_2d(path / format!("bn{n}"), to),
                )
            })
            .collect();
        Block { layers, shortcut }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut ys = xs.shallow_clone();
        let last = self.layers.len() - 1;
        for (index, (conv, bn)) in self.layers.iter().enumerate() {
            ys = ys.apply(conv).apply_t(bn, train);
            if index < last {
                ys = ys.relu();
            }
        }
        let skip = match &self.shortcut {
            Some((conv, bn)) => xs.apply(conv).apply_t(bn, train),
            None => xs.shallow_clone(),
        };
        (ys + skip).relu()
    }
}

/// A built ResNet-18 or ResNet-50.
#[derive(Debug)]
pub struct ResNet {
    input: InputAdapter,
    stem: nn::Conv2D,
    stem_bn: BatchNorm,
    stem_kind: ResNetStem,
    blocks: Vec<Block>,
    depth: ResNetDepth,
}

impl ResNet {
    /// A ResNet of `depth` with `config`'s stem over the images `input` makes (its channels).
    pub fn new(
        path: &nn::Path,
        depth: ResNetDepth,
        config: &ResNetConfig,
        input: InputAdapter,
    ) -> ResNet {
        let names = match (depth, config.stem) {
            (ResNetDepth::ResNet18, ResNetStem::Cifar) => Names::Pretext,
            _ => Names::Torchvision,
        };
        // The blocks are made before the stem: the order the CIFAR ResNet-18 always drew its
        // initial weights in.
        let mut blocks = Vec::new();
        let mut channels = 64;
        for (stage, (&width, &count)) in [64i64, 128, 256, 512]
            .iter()
            .zip(&depth.blocks_per_stage())
            .enumerate()
        {
            for block in 0..count {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                let block_path = path / format!("layer{}", stage + 1) / block;
                blocks.push(Block::new(
                    &block_path,
                    depth,
                    names,
                    (channels, width, stride),
                ));
                channels = width * depth.expansion();
            }
        }
        let (stem_path, bn_path) = match names {
            Names::Pretext => (path / "stem_conv", path / "stem_bn"),
            Names::Torchvision => (path / "conv1", path / "bn1"),
        };
        let (kernel, stride) = match config.stem {
            ResNetStem::Cifar => (3, 1),
            ResNetStem::Imagenet => (7, 2),
        };
        ResNet {
            stem: conv(stem_path, input.channels(), 64, kernel, stride),
            stem_bn: BatchNorm::new_2d(bn_path, 64),
            stem_kind: config.stem,
            input,
            blocks,
            depth,
        }
    }

    pub fn depth(&self) -> ResNetDepth {
        self.depth
    }

    pub fn stem(&self) -> ResNetStem {
        self.stem_kind
    }

    /// What turns pretext's pixels into the ones the network reads.
    pub fn input(&self) -> &InputAdapter {
        &self.input
    }
}

impl Encoder for ResNet {
    fn encode(&self, images: &Tensor, train: bool) -> Tensor {
        let images = self.input.adapt(images);
        let mut xs = images
            .apply(&self.stem)
            .apply_t(&self.stem_bn, train)
            .relu(); // [B, 64, H, W] (cifar) or [B, 64, H/2, W/2] (imagenet)
        if self.stem_kind == ResNetStem::Imagenet {
            xs = xs.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false); // [B, 64, H/4, W/4]
        }
        for block in &self.blocks {
            xs = block.forward_t(&xs, train);
        }
        xs.mean_dim(&[2i64, 3][..], false, images.kind()) // [B, 512 or 2048]
    }

    fn dim(&self) -> i64 {
        self.depth.dim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device, Kind};

    fn build(depth: ResNetDepth, stem: ResNetStem) -> (VarStore, ResNet) {
        let store = VarStore::new(Device::Cpu);
        let network = ResNet::new(
            &store.root(),
            depth,
            &ResNetConfig { stem },
            InputAdapter::identity(3, 0),
        );
        (store, network)
    }

    fn parameters(store: &VarStore) -> i64 {
        store
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    /// torchvision's counts without the classifier: resnet18 11,689,512 − 513,000 and
    /// resnet50 25,557,032 − 2,049,000.
    #[test]
    fn imagenet_resnets_have_torchvisions_parameter_counts_and_names() {
        let (store, resnet18) = build(ResNetDepth::ResNet18, ResNetStem::Imagenet);
        assert_eq!(parameters(&store), 11_176_512);
        let (store50, resnet50) = build(ResNetDepth::ResNet50, ResNetStem::Imagenet);
        assert_eq!(parameters(&store50), 23_508_032);
        let names = store50.variables();
        for name in [
            "conv1.weight",
            "bn1.running_var",
            "layer1.0.conv3.weight",
            "layer1.0.downsample.0.weight",
            "layer4.2.bn3.bias",
        ] {
            assert!(names.contains_key(name), "no {name}");
        }
        assert_eq!(names["layer2.0.conv2.weight"].size(), vec![128, 128, 3, 3]);
        let images = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        assert_eq!(resnet18.encode(&images, false).size(), vec![2, 512]);
        assert_eq!(resnet50.encode(&images, false).size(), vec![2, 2048]);
    }

    #[test]
    fn the_cifar_resnet18_keeps_its_names() {
        let (store, _) = build(ResNetDepth::ResNet18, ResNetStem::Cifar);
        let names = store.variables();
        for name in [
            "stem_conv.weight",
            "stem_bn.weight",
            "layer2.0.shortcut_conv.weight",
            "layer2.0.shortcut_bn.running_mean",
            "layer1.1.conv2.weight",
        ] {
            assert!(names.contains_key(name), "no {name}");
        }
        assert!(!names.contains_key("conv1.weight"));
        assert_eq!(names["stem_conv.weight"].size(), vec![64, 3, 3, 3]);
    }
}
