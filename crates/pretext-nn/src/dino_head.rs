//! DINO's projection head (Caron et al., 2021, §3.1 and appendix): a 3-layer MLP with GELU
//! (hidden width 2048 in the paper), a bottleneck (256), L2 normalization, then a
//! weight-normalized linear layer without bias to K outputs (65536), whose weight norm g is
//! fixed to 1 (`norm_last_layer`). Defaults here are scaled for small images on CPU, and
//! the hidden layers use batch norm (the official code's `use_bn_in_head`, off for ViTs):
//! without it a small CNN's head gives nearly the same output for every image, centering
//! cancels it, and the teacher stays uniform.

use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::batch_norm::BatchNorm;
use crate::loss::l2_normalize;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DinoHeadConfig {
    /// Width of the MLP's hidden layers (paper: 2048).
    pub hidden_dim: i64,
    /// Width of the bottleneck before the last layer (paper: 256).
    pub bottleneck_dim: i64,
    /// K, the number of output dimensions (paper: 65536).
    pub output_dim: i64,
    /// Linear layers in the MLP before the bottleneck output (paper: 3).
    pub layers: usize,
    /// Batch norm after each hidden linear layer (DINO's `use_bn_in_head`).
    pub batch_norm: bool,
}

impl Default for DinoHeadConfig {
    fn default() -> Self {
        DinoHeadConfig {
            hidden_dim: 512,
            bottleneck_dim: 128,
            output_dim: 4096,
            layers: 3,
            batch_norm: true,
        }
    }
}

#[derive(Debug)]
pub struct DinoHead {
    mlp: nn::SequentialT,
    /// The direction v of the last layer's weight `w = v / ‖v‖` (one row per output), `[K, bottleneck]`.
    last_direction: Tensor,
}

impl DinoHead {
    pub fn new(path: &nn::Path, input_dim: i64, config: &DinoHeadConfig) -> DinoHead {
        let mut mlp = nn::seq_t();
        let mut width = input_dim;
        let layers = config.layers.max(1);
        for index in 0..layers {
            let out = if index + 1 == layers {
                config.bottleneck_dim
            } else {
                config.hidden_dim
            };
            mlp = mlp.add(nn::linear(
                path / format!("fc{index}"),
                width,
                out,
                Default::default(),
            ));
            if index + 1 < layers {
                if config.batch_norm {
                    mlp = mlp.add(BatchNorm::new_1d(path / format!("bn{index}"), out));
                }
                mlp = mlp.add_fn(|xs| xs.gelu("none"));
            }
            width = out;
        }
        let bound = 1.0 / (config.bottleneck_dim as f64).sqrt();
        let last_direction = path.var(
            "last_direction",
            &[config.output_dim, config.bottleneck_dim],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        DinoHead {
            mlp,
            last_direction,
        }
    }

    /// `[B, input_dim] -> [B, K]` logits.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let bottleneck = l2_normalize(&self.mlp.forward_t(xs, train)); // [B, bottleneck]
        bottleneck.matmul(&l2_normalize(&self.last_direction).transpose(0, 1)) // [B, K]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device, Kind};

    #[test]
    fn logits_are_cosines_bounded_by_one_whatever_the_weight_scale() {
        let store = VarStore::new(Device::Cpu);
        let config = DinoHeadConfig {
            hidden_dim: 8,
            bottleneck_dim: 4,
            output_dim: 16,
            layers: 3,
            batch_norm: true,
        };
        let head = DinoHead::new(&store.root(), 6, &config);
        tch::no_grad(|| {
            let _ = head.last_direction.shallow_clone().g_mul_scalar_(1000.0);
        });
        let logits = head.forward_t(
            &(Tensor::randn([5, 6], (Kind::Float, Device::Cpu)) * 50.0),
            true,
        );
        assert_eq!(logits.size(), vec![5, 16]);
        assert!(logits.abs().max().double_value(&[]) <= 1.0 + 1e-5);
    }
}
