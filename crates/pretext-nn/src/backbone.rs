//! Choosing a backbone by name in configs.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::encoder::Encoder;
use crate::resnet::ResNet18;
use crate::small_cnn::{SmallCnn, SmallCnnConfig};

/// Which network encodes the images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackboneKind {
    /// [`SmallCnn`]: a few conv-BN-ReLU layers, for 28–32 px images on CPU.
    SmallCnn,
    /// [`ResNet18`] with the small-image (CIFAR) stem.
    Resnet18,
}

impl BackboneKind {
    /// The name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            BackboneKind::SmallCnn => "small-cnn",
            BackboneKind::Resnet18 => "resnet18",
        }
    }
}

/// The backbone section of a run's config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackboneConfig {
    /// "small-cnn" or "resnet18".
    pub kind: BackboneKind,
    /// Layers of the small CNN (ignored by resnet18).
    pub small_cnn: SmallCnnConfig,
}

impl Default for BackboneConfig {
    fn default() -> Self {
        BackboneConfig {
            kind: BackboneKind::SmallCnn,
            small_cnn: SmallCnnConfig::default(),
        }
    }
}

impl BackboneConfig {
    /// Width of the representation the backbone built from this config outputs.
    pub fn output_dim(&self) -> i64 {
        match self.kind {
            BackboneKind::SmallCnn => self.small_cnn.widths.last().copied().unwrap_or(0),
            BackboneKind::Resnet18 => 512,
        }
    }
}

/// A built backbone.
#[derive(Debug)]
pub enum Backbone {
    SmallCnn(SmallCnn),
    Resnet18(Box<ResNet18>),
}

impl Backbone {
    pub fn new(path: &nn::Path, in_channels: i64, config: &BackboneConfig) -> Backbone {
        match config.kind {
            BackboneKind::SmallCnn => {
                Backbone::SmallCnn(SmallCnn::new(path, in_channels, &config.small_cnn))
            }
            BackboneKind::Resnet18 => {
                Backbone::Resnet18(Box::new(ResNet18::new(path, in_channels)))
            }
        }
    }
}

impl Encoder for Backbone {
    fn encode(&self, images: &Tensor, train: bool) -> Tensor {
        match self {
            Backbone::SmallCnn(network) => network.encode(images, train),
            Backbone::Resnet18(network) => network.encode(images, train),
        }
    }

    fn dim(&self) -> i64 {
        match self {
            Backbone::SmallCnn(network) => network.dim(),
            Backbone::Resnet18(network) => network.dim(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn small_cnn_maps_28px_grayscale_to_128_dims() {
        let store = nn::VarStore::new(Device::Cpu);
        let backbone = Backbone::new(&store.root(), 1, &BackboneConfig::default());
        let images = Tensor::randn([4, 1, 28, 28], (Kind::Float, Device::Cpu));
        assert_eq!(backbone.encode(&images, true).size(), vec![4, 128]);
        assert_eq!(backbone.dim(), 128);
    }

    #[test]
    fn resnet18_maps_32px_rgb_to_512_dims_with_11m_parameters() {
        let store = nn::VarStore::new(Device::Cpu);
        let config = BackboneConfig {
            kind: BackboneKind::Resnet18,
            ..Default::default()
        };
        let backbone = Backbone::new(&store.root(), 3, &config);
        let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(backbone.encode(&images, false).size(), vec![2, 512]);
        let parameters: i64 = store
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        // The CIFAR ResNet-18 has 11,168,832 parameters without its classifier.
        assert_eq!(parameters, 11_168_832);
    }
}
