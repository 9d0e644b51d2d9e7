//! The wav2vec 2.0 network (Baevski et al., NeurIPS 2020, §2), scaled for CPU: it reads raw
//! waveforms and is the `wav2vec` backbone.
//!
//! - **Feature encoder**: a stack of 1-D convolutions without bias, each followed by GELU;
//!   the first also by a group norm with one group per channel (fairseq's "default"
//!   extractor). The paper's kernels (10, 3, 3, 3, 3, 2, 2) and strides (5, 2, 2, 2, 2, 2, 2)
//!   are kept: a receptive field of 400 samples (25 ms at 16 kHz) every 320 samples (20 ms),
//!   so a 1 s clip gives 49 frames. Only the width is smaller (128 channels, paper 512).
//!   Every waveform is first standardized on its own (zero mean, unit variance), so loudness
//!   does not matter.
//! - **Feature projection**: layer norm over the frame features, then a linear map to the
//!   transformer's width.
//! - **Context network**: relative positions from a grouped convolution over time (kernel 31
//!   frames, 16 groups, paper 128 and 16; odd, so it needs no trimming) whose GELU output is
//!   added to the frames, then pre-LN [`TransformerBlocks`] with a final norm (as wav2vec 2.0
//!   Large; 4 blocks of 128 here, Base has 12 of 768 post-LN).
//!
//! The representation for transfer is the mean of the context states over the frames.
//!
//! Parameter names put the feature encoder under `stem.N`, the projection and position
//! convolution under `embeddings`, and the blocks under `encoder.layer.N`, so fine-tuning's
//! layer-wise learning-rate decay gives the convolutions the smallest rate, as wav2vec 2.0's
//! fine-tuning (which freezes them) intends.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::encoder::Encoder;
use crate::transformer::{TransformerBlocks, TransformerConfig};

/// Shape of a [`Wav2VecEncoder`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Wav2VecConfig {
    /// Channels of each feature-encoder convolution.
    pub conv_channels: Vec<i64>,
    /// Kernel of each convolution, in samples (first) or frames.
    pub conv_kernels: Vec<i64>,
    /// Stride of each convolution; their product is the frame hop in samples.
    pub conv_strides: Vec<i64>,
    /// Width of the context network.
    pub hidden_dim: i64,
    /// Transformer blocks of the context network.
    pub layers: usize,
    /// Attention heads per block (hidden_dim must be a multiple).
    pub heads: i64,
    /// Width of the MLP inside each block.
    pub mlp_dim: i64,
    /// Dropout in the blocks and on the projected features while training.
    pub dropout: f64,
    /// Kernel of the positional convolution, in frames (odd).
    pub position_kernel: i64,
    /// Groups of the positional convolution (hidden_dim must be a multiple).
    pub position_groups: i64,
}

impl Default for Wav2VecConfig {
    /// The paper's 20 ms feature encoder at 128 channels, and 4 pre-LN blocks of 128.
    fn default() -> Self {
        Wav2VecConfig {
            conv_channels: vec![128; 7],
            conv_kernels: vec![10, 3, 3, 3, 3, 2, 2],
            conv_strides: vec![5, 2, 2, 2, 2, 2, 2],
            hidden_dim: 128,
            layers: 4,
            heads: 4,
            mlp_dim: 512,
            dropout: 0.1,
            position_kernel: 31,
            position_groups: 16,
        }
    }
}

impl Wav2VecConfig {
    /// Checks the shapes; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let layers = self.conv_channels.len();
        if layers == 0 {
            return Err("conv_channels: the feature encoder needs at least one convolution".into());
        }
        if self.conv_kernels.len() != layers || self.conv_strides.len() != layers {
            return Err(format!(
                "conv_kernels and conv_strides: expected one per convolution ({layers}), found {} and {}",
                self.conv_kernels.len(),
                self.conv_strides.len()
            ));
        }
        let positive = |values: &[i64]| values.iter().all(|&v| v > 0);
        if !positive(&self.conv_channels)
            || !positive(&self.conv_kernels)
            || !positive(&self.conv_strides)
        {
            return Err(
                "conv_channels, conv_kernels, conv_strides: every entry must be above 0".into(),
            );
        }
        if self.hidden_dim <= 0 || self.heads <= 0 || self.hidden_dim % self.heads != 0 {
            return Err(format!(
                "hidden_dim: {} must be a positive multiple of heads ({})",
                self.hidden_dim, self.heads
            ));
        }
        if self.position_groups <= 0 || self.hidden_dim % self.position_groups != 0 {
            return Err(format!(
                "position_groups: hidden_dim ({}) must be a multiple of {}",
                self.hidden_dim, self.position_groups
            ));
        }
        if self.position_kernel <= 0 || self.position_kernel % 2 == 0 {
            return Err(format!(
                "position_kernel: expected an odd number of frames, found {}",
                self.position_kernel
            ));
        }
        if self.layers == 0 || self.mlp_dim <= 0 {
            return Err(
                "layers, mlp_dim: expected at least one block with a positive MLP width".into(),
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout: expected [0, 1), found {}", self.dropout));
        }
        Ok(())
    }

    /// Samples between two frames (the product of the strides).
    pub fn hop(&self) -> i64 {
        self.conv_strides.iter().product()
    }

    /// Samples one frame sees.
    pub fn receptive_field(&self) -> i64 {
        let mut field = 1;
        let mut jump = 1;
        for (kernel, stride) in self.conv_kernels.iter().zip(&self.conv_strides) {
            field += (kernel - 1) * jump;
            jump *= stride;
        }
        field
    }

    /// Frames the feature encoder makes of `samples` samples (0 when too short for one).
    pub fn frames(&self, samples: i64) -> i64 {
        self.conv_kernels.iter().zip(&self.conv_strides).fold(
            samples,
            |length, (kernel, stride)| {
                if length < *kernel {
                    0
                } else {
                    (length - kernel) / stride + 1
                }
            },
        )
    }

    /// Width of the feature encoder's output (its last convolution's channels).
    pub fn feature_dim(&self) -> i64 {
        self.conv_channels.last().copied().unwrap_or(0)
    }
}

/// One convolution of the feature encoder.
#[derive(Debug)]
struct ConvLayer {
    conv: nn::Conv1D,
    norm: Option<nn::GroupNorm>,
}

/// The wav2vec 2.0 network over raw waveforms `[B, L]`.
#[derive(Debug)]
pub struct Wav2VecEncoder {
    conv_layers: Vec<ConvLayer>,
    feature_norm: nn::LayerNorm,
    projection: nn::Linear,
    position_conv: nn::Conv1D,
    blocks: TransformerBlocks,
    pub config: Wav2VecConfig,
}

impl Wav2VecEncoder {
    pub fn new(path: &nn::Path, config: &Wav2VecConfig) -> Wav2VecEncoder {
        let mut input = 1;
        let conv_layers = config
            .conv_channels
            .iter()
            .zip(config.conv_kernels.iter().zip(&config.conv_strides))
            .enumerate()
            .map(|(index, (&channels, (&kernel, &stride)))| {
                let layer = path / "stem" / index;
                let conv = nn::conv1d(
                    &layer / "conv",
                    input,
                    channels,
                    kernel,
                    nn::ConvConfig {
                        stride,
                        bias: false,
                        ws_init: nn::init::DEFAULT_KAIMING_NORMAL,
                        ..Default::default()
                    },
                );
                let norm = (index == 0).then(|| {
                    nn::group_norm(&layer / "norm", channels, channels, Default::default())
                });
                input = channels;
                ConvLayer { conv, norm }
            })
            .collect();
        let embeddings = path / "embeddings";
        let h = config.hidden_dim;
        let feature_dim = config.feature_dim();
        let position_conv = nn::conv1d(
            &embeddings / "position_conv",
            h,
            h,
            config.position_kernel,
            nn::ConvConfig {
                padding: config.position_kernel / 2,
                groups: config.position_groups,
                // fairseq: N(0, 4 / (kernel · width)).
                ws_init: nn::Init::Randn {
                    mean: 0.0,
                    stdev: (4.0 / (config.position_kernel * h) as f64).sqrt(),
                },
                bs_init: nn::Init::Const(0.0),
                ..Default::default()
            },
        );
        Wav2VecEncoder {
            conv_layers,
            feature_norm: nn::layer_norm(
                &embeddings / "layer_norm",
                vec![feature_dim],
                Default::default(),
            ),
            projection: nn::linear(
                &embeddings / "projection",
                feature_dim,
                h,
                Default::default(),
            ),
            position_conv,
            blocks: TransformerBlocks::new(
                path,
                &TransformerConfig {
                    vocab_size: 1,
                    max_positions: 1,
                    type_vocab_size: 0,
                    hidden_dim: h,
                    layers: config.layers,
                    heads: config.heads,
                    mlp_dim: config.mlp_dim,
                    dropout: config.dropout,
                    layer_norm_eps: 1e-5,
                    norm_first: true,
                    causal: false,
                },
            ),
            config: config.clone(),
        }
    }

    /// The feature encoder: waveforms `[B, L]` → frame features `[B, T, C]`, before the
    /// layer norm (wav2vec 2.0's feature penalty is taken here).
    pub fn features(&self, waveforms: &Tensor) -> Tensor {
        let waveforms = waveforms.to_kind(Kind::Float);
        let mean = waveforms.mean_dim(&[-1i64][..], true, Kind::Float);
        let variance = waveforms.var_dim(&[-1i64][..], false, true);
        let mut x = ((waveforms - mean) / (variance + 1e-5).sqrt()).unsqueeze(1); // [B, 1, L]
        for layer in &self.conv_layers {
            x = layer.conv.forward(&x);
            if let Some(norm) = &layer.norm {
                x = norm.forward(&x);
            }
            x = x.gelu("none");
        }
        x.transpose(1, 2) // [B, T, C]
    }

    /// Frame features `[B, T, C]` → layer-normed features `[B, T, C]` (the quantizer's input)
    /// and their projection to the context width `[B, T, H]`.
    pub fn project(&self, features: &Tensor, train: bool) -> (Tensor, Tensor) {
        let normed = self.feature_norm.forward(features);
        let projected = self
            .projection
            .forward(&normed)
            .dropout(self.config.dropout, train);
        (normed, projected)
    }

    /// The context network: projected (possibly masked) frames `[B, T, H]` → context states
    /// `[B, T, H]`.
    pub fn context(&self, frames: &Tensor, train: bool) -> Tensor {
        let positions = self
            .position_conv
            .forward(&frames.transpose(1, 2))
            .gelu("none")
            .transpose(1, 2);
        self.blocks.forward(&(frames + positions), None, train)
    }

    /// Context states `[B, T, H]` of waveforms `[B, L]`, unmasked.
    pub fn states(&self, waveforms: &Tensor, train: bool) -> Tensor {
        let (_, projected) = self.project(&self.features(waveforms), train);
        self.context(&projected, train)
    }

    /// The feature encoder's parameters (for its gradient-scale health signal).
    pub fn feature_encoder_parameters(&self) -> Vec<Tensor> {
        let mut parameters = Vec::new();
        for layer in &self.conv_layers {
            parameters.push(layer.conv.ws.shallow_clone());
            if let Some(norm) = &layer.norm {
                parameters.extend(norm.ws.iter().map(Tensor::shallow_clone));
                parameters.extend(norm.bs.iter().map(Tensor::shallow_clone));
            }
        }
        parameters
    }
}

impl Encoder for Wav2VecEncoder {
    /// The mean of the context states over the frames.
    fn encode(&self, waveforms: &Tensor, train: bool) -> Tensor {
        self.states(waveforms, train)
            .mean_dim(&[1i64][..], false, Kind::Float)
    }

    fn dim(&self) -> i64 {
        self.config.hidden_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn the_paper_feature_encoder_makes_49_frames_of_20_ms_from_one_second() {
        let config = Wav2VecConfig::default();
        assert_eq!(config.hop(), 320); // 20 ms at 16 kHz
        assert_eq!(config.receptive_field(), 400); // 25 ms
        assert_eq!(config.frames(16_000), 49);
        assert_eq!(config.frames(48_000), 149);
        assert_eq!(config.frames(399), 0);
        assert_eq!(config.frames(400), 1);
    }

    #[test]
    fn frames_and_states_have_the_computed_shapes() {
        let store = nn::VarStore::new(Device::Cpu);
        let config = Wav2VecConfig {
            conv_channels: vec![16; 7],
            hidden_dim: 32,
            layers: 1,
            heads: 2,
            mlp_dim: 64,
            position_groups: 4,
            ..Default::default()
        };
        let encoder = Wav2VecEncoder::new(&store.root(), &config);
        let waves = Tensor::randn([3, 16_000], (Kind::Float, Device::Cpu));
        assert_eq!(encoder.features(&waves).size(), vec![3, 49, 16]);
        assert_eq!(encoder.states(&waves, false).size(), vec![3, 49, 32]);
        assert_eq!(encoder.encode(&waves, false).size(), vec![3, 32]);
        // Loudness does not matter: the waveform is standardized first.
        let louder = encoder.encode(&(&waves * 7.5), false);
        let diff = (louder - encoder.encode(&waves, false))
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-4, "{diff}");
        // The parameters sit where layer-wise decay expects them.
        let names: Vec<String> = store.variables().into_keys().collect();
        assert!(names.iter().any(|n| n == "stem.0.conv.weight"), "{names:?}");
        assert!(names.iter().any(|n| n == "stem.0.norm.weight"), "{names:?}");
        assert!(names.iter().any(|n| n == "embeddings.position_conv.weight"));
        assert!(names.iter().any(|n| n.starts_with("encoder.layer.0.")));
    }

    #[test]
    fn bad_shapes_are_named() {
        let bad = |config: Wav2VecConfig, field: &str| {
            let error = config.validate().unwrap_err();
            assert!(error.contains(field), "{error}");
        };
        bad(
            Wav2VecConfig {
                conv_kernels: vec![10, 3],
                ..Default::default()
            },
            "conv_kernels",
        );
        bad(
            Wav2VecConfig {
                position_kernel: 32,
                ..Default::default()
            },
            "position_kernel",
        );
        bad(
            Wav2VecConfig {
                position_groups: 3,
                ..Default::default()
            },
            "position_groups",
        );
        bad(
            Wav2VecConfig {
                heads: 5,
                ..Default::default()
            },
            "hidden_dim",
        );
        assert!(Wav2VecConfig::default().validate().is_ok());
    }
}
