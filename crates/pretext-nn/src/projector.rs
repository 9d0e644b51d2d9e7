//! The projection head g(·) of SimCLR (and MoCo v2, BYOL's projector and predictor): an MLP
//! applied after the encoder; the loss is computed on its output, and transfer uses the
//! encoder's output before it.

use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::batch_norm::BatchNorm;

/// Sizes of the projection MLP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectorConfig {
    /// Width of the hidden layer(s).
    pub hidden_dim: i64,
    /// Width of the output, where the loss is computed.
    pub output_dim: i64,
    /// Number of linear layers (1 = a single linear map; 2 = SimCLR's Linear-BN-ReLU-Linear).
    pub layers: usize,
    /// Batch norm after each hidden linear layer (SimCLR, BYOL: yes; MoCo v2: no).
    pub batch_norm: bool,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            hidden_dim: 512,
            output_dim: 128,
            layers: 2,
            batch_norm: true,
        }
    }
}

impl ProjectorConfig {
    /// A 2-layer MLP `hidden_dim -> output_dim` with batch norm.
    pub fn mlp(hidden_dim: i64, output_dim: i64) -> ProjectorConfig {
        ProjectorConfig {
            hidden_dim,
            output_dim,
            layers: 2,
            batch_norm: true,
        }
    }
}

/// `Linear -> BN -> ReLU` (BN optional) repeated `layers - 1` times, then a final `Linear`.
#[derive(Debug)]
pub struct Projector {
    layers: nn::SequentialT,
}

impl Projector {
    pub fn new(path: &nn::Path, input_dim: i64, config: &ProjectorConfig) -> Projector {
        let mut layers = nn::seq_t();
        let mut width = input_dim;
        for index in 0..config.layers.saturating_sub(1) {
            layers = layers.add(nn::linear(
                path / format!("fc{index}"),
                width,
                config.hidden_dim,
                Default::default(),
            ));
            if config.batch_norm {
                layers = layers.add(BatchNorm::new_1d(
                    path / format!("bn{index}"),
                    config.hidden_dim,
                ));
            }
            layers = layers.add_fn(|xs| xs.relu());
            width = config.hidden_dim;
        }
        let last = config.layers.max(1) - 1;
        layers = layers.add(nn::linear(
            path / format!("fc{last}"),
            width,
            config.output_dim,
            Default::default(),
        ));
        Projector { layers }
    }

    /// `[B, input_dim] -> [B, output_dim]`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.layers.forward_t(xs, train)
    }
}
