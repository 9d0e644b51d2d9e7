//! A small CNN for 28–32 px images: `conv3x3 -> BN -> ReLU [-> maxpool 2]` per layer, then
//! global average pooling. Fast enough to pretrain on two CPU cores in minutes.

use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::batch_norm::BatchNorm;
use crate::encoder::Encoder;

/// Layer widths and where to pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmallCnnConfig {
    /// Output channels of each 3x3 convolution, in order.
    pub widths: Vec<i64>,
    /// Zero-based indices of the layers followed by a 2x2 max-pool.
    pub pool_after: Vec<usize>,
}

impl Default for SmallCnnConfig {
    fn default() -> Self {
        // 28x28 -> 14x14 -> 7x7 -> 7x7, 128-d representation (~7.4 M multiply-adds per image).
        SmallCnnConfig {
            widths: vec![32, 64, 128],
            pool_after: vec![0, 1],
        }
    }
}

impl SmallCnnConfig {
    /// Checks what would fail at build or run time; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.widths.is_empty() || self.widths.iter().any(|&width| width <= 0) {
            return Err(format!(
                "widths must be one or more positive channel counts, found {:?}",
                self.widths
            ));
        }
        if let Some(index) = self.pool_after.iter().find(|&&i| i >= self.widths.len()) {
            return Err(format!(
                "pool_after names layer {index}, but there are {} layers (0-based)",
                self.widths.len()
            ));
        }
        Ok(())
    }

    /// The smallest image side the network takes: each 2x2 max-pool halves it, and the last
    /// one needs at least 2 pixels.
    pub fn min_image_size(&self) -> usize {
        let pools = (0..self.widths.len())
            .filter(|index| self.pool_after.contains(index))
            .count();
        1 << pools.min(16)
    }
}

/// The network built from a [`SmallCnnConfig`].
#[derive(Debug)]
pub struct SmallCnn {
    layers: nn::SequentialT,
    dim: i64,
}

impl SmallCnn {
    pub fn new(path: &nn::Path, in_channels: i64, config: &SmallCnnConfig) -> SmallCnn {
        let mut layers = nn::seq_t();
        let mut channels = in_channels;
        for (index, &width) in config.widths.iter().enumerate() {
            let conv_config = nn::ConvConfig {
                padding: 1,
                ..Default::default()
            };
            layers = layers
                .add(nn::conv2d(
                    path / format!("conv{index}"),
                    channels,
                    width,
                    3,
                    conv_config,
                ))
                .add(BatchNorm::new_2d(path / format!("bn{index}"), width))
                .add_fn(|xs| xs.relu());
            if config.pool_after.contains(&index) {
                layers = layers.add_fn(|xs| xs.max_pool2d_default(2));
            }
            channels = width;
        }
        SmallCnn {
            layers,
            dim: channels,
        }
    }
}

impl Encoder for SmallCnn {
    fn encode(&self, images: &Tensor, train: bool) -> Tensor {
        // [B, C, H, W] -> [B, D, h, w] -> [B, D]
        self.layers
            .forward_t(images, train)
            .mean_dim(&[2i64, 3][..], false, images.kind())
    }

    fn dim(&self) -> i64 {
        self.dim
    }
}
