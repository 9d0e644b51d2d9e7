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
