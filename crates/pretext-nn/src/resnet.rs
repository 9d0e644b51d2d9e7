//! ResNet-18 (He et al., 2016) with the small-image stem used for CIFAR in SimCLR:
//! a 3x3 stride-1 first convolution and no max-pool, then four stages of two basic blocks
//! (64, 128, 256, 512 channels), global average pooling -> 512-d representation.

use tch::nn;
use tch::Tensor;

use crate::batch_norm::BatchNorm;
use crate::encoder::Encoder;

fn conv3x3(path: nn::Path, in_channels: i64, out_channels: i64, stride: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding: 1,
        bias: false,
        ..Default::default()
    };
    nn::conv2d(path, in_channels, out_channels, 3, config)
}

#[derive(Debug)]
struct BasicBlock {
    conv1: nn::Conv2D,
    bn1: BatchNorm,
    conv2: nn::Conv2D,
    bn2: BatchNorm,
    shortcut: Option<(nn::Conv2D, BatchNorm)>,
}

impl BasicBlock {
    fn new(path: &nn::Path, in_channels: i64, out_channels: i64, stride: i64) -> BasicBlock {
        let shortcut = (stride != 1 || in_channels != out_channels).then(|| {
            let config = nn::ConvConfig {
                stride,
                bias: false,
                ..Default::default()
            };
            (
                nn::conv2d(path / "shortcut_conv", in_channels, out_channels, 1, config),
                BatchNorm::new_2d(path / "shortcut_bn", out_channels),
            )
        });
        BasicBlock {
            conv1: conv3x3(path / "conv1", in_channels, out_channels, stride),
            bn1: BatchNorm::new_2d(path / "bn1", out_channels),
            conv2: conv3x3(path / "conv2", out_channels, out_channels, 1),
            bn2: BatchNorm::new_2d(path / "bn2", out_channels),
            shortcut,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = xs.apply(&self.conv1).apply_t(&self.bn1, train).relu();
        let ys = ys.apply(&self.conv2).apply_t(&self.bn2, train);
        let skip = match &self.shortcut {
            Some((conv, bn)) => xs.apply(conv).apply_t(bn, train),
            None => xs.shallow_clone(),
        };
        (ys + skip).relu()
    }
}

/// ResNet-18 with the small-image stem.
#[derive(Debug)]
pub struct ResNet18 {
    stem: nn::Conv2D,
    stem_bn: BatchNorm,
    blocks: Vec<BasicBlock>,
}

impl ResNet18 {
    pub fn new(path: &nn::Path, in_channels: i64) -> ResNet18 {
        let mut blocks = Vec::new();
        let mut channels = 64;
        for (stage, &width) in [64i64, 128, 256, 512].iter().enumerate() {
            for block in 0..2 {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                let block_path = path / format!("layer{}", stage + 1) / block;
                blocks.push(BasicBlock::new(&block_path, channels, width, stride));
                channels = width;
            }
        }
        ResNet18 {
            stem: conv3x3(path / "stem_conv", in_channels, 64, 1),
            stem_bn: BatchNorm::new_2d(path / "stem_bn", 64),
            blocks,
        }
    }
}

impl Encoder for ResNet18 {
    fn encode(&self, images: &Tensor, train: bool) -> Tensor {
        let mut xs = images
            .apply(&self.stem)
            .apply_t(&self.stem_bn, train)
            .relu(); // [B, 64, H, W]
        for block in &self.blocks {
            xs = block.forward_t(&xs, train);
        }
        xs.mean_dim(&[2i64, 3][..], false, images.kind()) // [B, 512]
    }

    fn dim(&self) -> i64 {
        512
    }
}
