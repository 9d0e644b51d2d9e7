//! Vision transformer — Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
//! Image Recognition at Scale", ICLR 2021 (arXiv:2010.11929).
//!
//! The image is cut into non-overlapping `patch_size` × `patch_size` patches, each linearly
//! embedded (a convolution with stride = kernel = patch size); a learned [CLS] token is
//! prepended; position embeddings are added — learned (ViT, DINO) or fixed 2-D sine-cosine
//! (MAE, He et al. 2022) —; then pre-LN transformer blocks, the same [`TransformerBlocks`] as
//! the text encoder, and a final norm. The representation is the [CLS] state (or the mean of
//! the patch states).
//!
//! Shapes: the default is ViT-Tiny (192 wide, 12 blocks, 3 heads, MLP 768) on 4-px patches
//! for 28–32 px images; ViT-S/16 is 384 / 12 / 6 / 1536 on 16-px patches and ViT-B/16 is
//! 768 / 12 / 12 / 3072 (`VitConfig::small`, `VitConfig::base`). Views of another size than
//! the one the model was built for (DINO's local crops) get the learned position embeddings
//! resized bicubically to their patch grid, as DINO does.
//!
//! With learned positions and [CLS] pooling the forward pass is timm's `VisionTransformer`
//! (and Hugging Face's `ViTModel`): the [CLS] state after the final norm is timm's pre-logits
//! feature, exact GELU, layer-norm epsilon `layer_norm_eps`; timm's fused `qkv` projection is
//! held here as separate query, key and value projections. Checkpoints of both load by name
//! ([`crate::image_checkpoint`]).

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::backbone::Pooling;
use crate::encoder::Encoder;
use crate::input_adapter::InputAdapter;
use crate::transformer::{TransformerBlocks, TransformerConfig};

/// How patches know where they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PositionEmbedding {
    /// One learned vector per patch position and one for [CLS] (ViT, DeiT, DINO).
    Learned,
    /// Fixed 2-D sine-cosine of the patch's row and column, zeros for [CLS] (MAE).
    SinCos,
}

/// Shape of a [`Vit`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VitConfig {
    /// Side of the square patches, in pixels; must divide every view's size.
    pub patch_size: i64,
    /// Width of every token's hidden state.
    pub hidden_dim: i64,
    /// Number of transformer blocks.
    pub layers: usize,
    /// Attention heads per block (hidden_dim must be a multiple).
    pub heads: i64,
    /// Width of the MLP inside each block.
    pub mlp_dim: i64,
    /// Dropout on embeddings, attention weights and residual branches while training.
    pub dropout: f64,
    /// "learned" or "sin-cos".
    pub positions: PositionEmbedding,
    /// The representation: "cls" (the [CLS] token's state) or "mean" (of the patch states).
    pub pooling: Pooling,
    /// Epsilon of every layer norm (timm's 1e-6; Hugging Face's ViT checkpoints say 1e-12).
    pub layer_norm_eps: f64,
}

impl Default for VitConfig {
    /// ViT-Tiny on 4-px patches (28 px images: 7 × 7 patches + [CLS]).
    fn default() -> Self {
        VitConfig {
            patch_size: 4,
            hidden_dim: 192,
            layers: 12,
            heads: 3,
            mlp_dim: 768,
            dropout: 0.0,
            positions: PositionEmbedding::Learned,
            pooling: Pooling::Cls,
            layer_norm_eps: 1e-6,
        }
    }
}

impl VitConfig {
    /// ViT-S/16 (Touvron et al. 2021; DINO's main model).
    pub fn small() -> VitConfig {
        VitConfig {
            patch_size: 16,
            hidden_dim: 384,
            heads: 6,
            mlp_dim: 1536,
            ..VitConfig::default()
        }
    }

    /// ViT-B/16 (Dosovitskiy et al. 2021; MAE's smallest model).
    pub fn base() -> VitConfig {
        VitConfig {
            patch_size: 16,
            hidden_dim: 768,
            heads: 12,
            mlp_dim: 3072,
            ..VitConfig::default()
        }
    }

    /// Checks what would fail at build or run time; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.patch_size <= 0 {
            return Err(format!(
                "patch_size must be above 0, found {}",
                self.patch_size
            ));
        }
        if self.positions == PositionEmbedding::SinCos && self.hidden_dim % 4 != 0 {
            return Err(format!(
                "sin-cos positions need hidden_dim divisible by 4, found {}",
                self.hidden_dim
            ));
        }
        if self.pooling == Pooling::Last {
            return Err("pooling must be \"cls\" or \"mean\" for a ViT".into());
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return Err(format!(
                "layer_norm_eps must be above 0, found {}",
                self.layer_norm_eps
            ));
        }
        self.blocks().validate()
    }

    /// The settings of the shared transformer blocks (pre-LN, bidirectional).
    fn blocks(&self) -> TransformerConfig {
        TransformerConfig {
            vocab_size: 1,
            max_positions: 1,
            type_vocab_size: 0,
            hidden_dim: self.hidden_dim,
            layers: self.layers,
            heads: self.heads,
            mlp_dim: self.mlp_dim,
            dropout: self.dropout,
            layer_norm_eps: self.layer_norm_eps,
            norm_first: true,
            causal: false,
        }
    }
}

/// A built vision transformer.
#[derive(Debug)]
pub struct Vit {
    /// What turns pretext's pixels into the ones the network reads (the identity unless
    /// `backbone.input` says otherwise).
    input: InputAdapter,
    patch_embed: nn::Conv2D,
    cls_token: Tensor,
    /// Positions of [CLS] and the native patch grid, `[1, 1 + grid², H]`: a variable when
    /// learned, a fixed table (computed once) for sin-cos.
    position_embed: Tensor,
    /// Patches per side of the images the model is built for.
    grid: i64,
    blocks: TransformerBlocks,
    pub config: VitConfig,
}

impl Vit {
    /// A ViT for `channels`-channel images of `image_size` pixels (a multiple of the patch).
    pub fn new(path: &nn::Path, channels: i64, image_size: i64, config: &VitConfig) -> Vit {
        Vit::with_input(path, InputAdapter::identity(channels, image_size), config)
    }

    /// A ViT for the images `input` makes of pretext's (its channels, and its resolution,
    /// which sizes the position table), `input` being the first thing it computes.
    pub fn with_input(path: &nn::Path, input: InputAdapter, config: &VitConfig) -> Vit {
        let (channels, image_size) = (input.channels(), input.image_size());
        let h = config.hidden_dim;
        let patch_embed = nn::conv2d(
            path / "patch_embed",
            channels,
            h,
            config.patch_size,
            nn::ConvConfig {
                stride: config.patch_size,
                ..Default::default()
            },
        );
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let cls_token = path.var("cls_token", &[1, 1, h], init);
        let grid = (image_size / config.patch_size).max(1);
        let position_embed = match config.positions {
            PositionEmbedding::Learned => {
                path.var("position_embed", &[1, 1 + grid * grid, h], init)
            }
            PositionEmbedding::SinCos => sincos_positions(h, grid, path.device()),
        };
        Vit {
            input,
            patch_embed,
            cls_token,
            position_embed,
            grid,
            blocks: TransformerBlocks::new(path, &config.blocks()),
            config: config.clone(),
        }
    }

    /// What turns pretext's pixels into the ones the network reads.
    pub fn input(&self) -> &InputAdapter {
        &self.input
    }

    /// Patches per side of the full-size images the network reads.
    pub fn grid(&self) -> i64 {
        self.grid
    }

    /// Patches per side of images of `side` px, as the network sees them (after the input
    /// adapter's resize).
    pub fn grid_for(&self, side: i64) -> i64 {
        self.input.side_for(side) / self.config.patch_size
    }

    /// The native position table `[1, 1 + grid², H]` ([CLS] first): the learned variable, or
    /// the fixed sine-cosine table.
    pub fn position_table(&self) -> &Tensor {
        &self.position_embed
    }

    /// Position embeddings `[1, 1 + g², H]` for a `g` × `g` patch grid.
    fn positions(&self, g: i64) -> Tensor {
        let h = self.config.hidden_dim;
        let native = &self.position_embed;
        if g == self.grid {
            return native.shallow_clone();
        }
        match self.config.positions {
            PositionEmbedding::Learned => {
                let cls = native.narrow(1, 0, 1);
                let patches = native
                    .narrow(1, 1, self.grid * self.grid)
                    .view([1, self.grid, self.grid, h])
                    .permute([0, 3, 1, 2]) // [1, H, G, G]
                    .upsample_bicubic2d([g, g], false, None, None)
                    .permute([0, 2, 3, 1])
                    .reshape([1, g * g, h]);
                Tensor::cat(&[cls, patches], 1)
            }
            PositionEmbedding::SinCos => sincos_positions(h, g, native.device()),
        }
    }

    /// Images `[B, C, S, S]` → token states `[B, 1 + (S/p)², H]` ([CLS] first).
    pub fn states(&self, images: &Tensor, train: bool) -> Tensor {
        self.states_of(images, None, train)
    }

    /// Token states `[B, 1 + K, H]` of [CLS] and only the patches at `visible` `[B, K]` (row-
    /// major patch indices), each with its own position: a masked autoencoder's encoder.
    pub fn visible_states(&self, images: &Tensor, visible: &Tensor, train: bool) -> Tensor {
        self.states_of(images, Some(visible), train)
    }

    /// The last block's attention probabilities `[B, heads, 1 + N, 1 + N]` for images
    /// `[B, C, S, S]` (inference: no dropout); row 0 is what [CLS] reads from itself and from
    /// each patch in row-major order — DINO's attention maps.
    pub fn last_attention(&self, images: &Tensor) -> Tensor {
        self.blocks
            .last_attention(&self.tokens(images, None, false), None)
    }

    fn states_of(&self, images: &Tensor, visible: Option<&Tensor>, train: bool) -> Tensor {
        self.blocks
            .forward(&self.tokens(images, visible, train), None, train)
    }

    /// [CLS] and the (visible) patch embeddings, with their positions, after dropout.
    fn tokens(&self, images: &Tensor, visible: Option<&Tensor>, train: bool) -> Tensor {
        let images = self.input.adapt(images);
        let patches = self.patch_embed.forward(&images); // [B, H, g, g]
        let (_, _, g, g_w) = patches.size4().expect("[B, H, g, g]");
        assert_eq!(g, g_w, "ViT views must be square");
        let positions = self.positions(g); // [1, 1 + g², H]
        let mut patches = patches.flatten(2, 3).transpose(1, 2) + positions.narrow(1, 1, g * g);
        if let Some(visible) = visible {
            patches = crate::patches::gather_tokens(&patches, visible);
        }
        // Broadcast over the batch by adding zeros shaped like one token per image (not
        // expanded to a batch size read off the tensor), so a traced export takes any batch.
        let cls =
            (&self.cls_token + positions.narrow(1, 0, 1)) + patches.narrow(1, 0, 1).zeros_like(); // [B, 1, H]
        Tensor::cat(&[cls, patches], 1).dropout(self.config.dropout, train)
    }
}

impl Encoder for Vit {
    fn encode(&self, images: &Tensor, train: bool) -> Tensor {
        let states = self.states(images, train);
        match self.config.pooling {
            Pooling::Mean => {
                let patches = states.size()[1] - 1;
                states
                    .narrow(1, 1, patches)
                    .mean_dim(&[1i64][..], false, Kind::Float)
            }
            _ => states.select(1, 0),
        }
    }

    fn dim(&self) -> i64 {
        self.config.hidden_dim
    }
}

/// [`sincos_2d`] of a `g` × `g` grid after a zero row for [CLS], as `[1, 1 + g², dim]` on
/// `device` (MAE's encoder and decoder positions).
pub fn sincos_positions(dim: i64, g: i64, device: tch::Device) -> Tensor {
    let cls = Tensor::zeros([1, dim], (Kind::Float, tch::Device::Cpu));
    Tensor::cat(&[cls, sincos_2d(dim, g)], 0)
        .unsqueeze(0)
        .to_device(device)
}

/// Fixed 2-D sine-cosine position embeddings `[g², dim]` of a `g` × `g` grid, row by row:
/// the first half of the dimensions encodes the patch's column, the second half its row, each
/// as `[sin(p·ω_i), cos(p·ω_i)]` with `ω_i = 10000^(−i/(dim/4))` (MAE's
/// `get_2d_sincos_pos_embed`). `dim` must be divisible by 4.
pub fn sincos_2d(dim: i64, g: i64) -> Tensor {
    let quarter = dim / 4;
    let omega = Tensor::arange(quarter, (Kind::Float, tch::Device::Cpu))
        .divide_scalar(quarter as f64)
        .multiply_scalar(-(10_000f64.ln()))
        .exp(); // [D/4]
    let one_axis = |positions: &Tensor| {
        let angles = positions.unsqueeze(1) * omega.unsqueeze(0); // [g², D/4]
        Tensor::cat(&[angles.sin(), angles.cos()], 1) // [g², D/2]
    };
    let index = Tensor::arange(g * g, (Kind::Float, tch::Device::Cpu));
    let rows = index.divide_scalar_mode(g as f64, "floor");
    let columns = index.remainder(g as f64);
    Tensor::cat(&[one_axis(&columns), one_axis(&rows)], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device};

    /// A 2-block, 32-wide ViT on 4-px patches.
    fn tiny(positions: PositionEmbedding) -> VitConfig {
        VitConfig {
            hidden_dim: 32,
            layers: 2,
            heads: 2,
            mlp_dim: 64,
            positions,
            ..Default::default()
        }
    }

    fn parameters(store: &VarStore) -> i64 {
        store
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    /// ViT-Tiny/4 on 1×28×28, counted by hand: patch embedding 16·192 + 192, [CLS] 192,
    /// positions 50·192, 12 blocks of (4 attention projections + 2 norms + MLP 768), final norm.
    #[test]
    fn vit_tiny_has_the_hand_counted_parameters_and_shapes() {
        let store = VarStore::new(Device::Cpu);
        let vit = Vit::new(&store.root(), 1, 28, &VitConfig::default());
        let (h, m) = (192i64, 768i64);
        let block = 4 * (h * h + h) + 2 * 2 * h + (h * m + m) + (m * h + h);
        let expected = (16 * h + h) + h + 50 * h + 12 * block + 2 * h;
        assert_eq!(parameters(&store), expected);
        let images = Tensor::randn([2, 1, 28, 28], (Kind::Float, Device::Cpu));
        assert_eq!(vit.states(&images, false).size(), vec![2, 50, 192]);
        assert_eq!(vit.encode(&images, false).size(), vec![2, 192]);
    }

    #[test]
    fn smaller_views_get_resized_positions_and_the_native_grid_the_learned_ones() {
        let store = VarStore::new(Device::Cpu);
        let vit = Vit::new(&store.root(), 1, 28, &tiny(PositionEmbedding::Learned));
        let learned = &vit.position_embed;
        assert!(vit.positions(7).equal(learned));
        assert_eq!(vit.positions(3).size(), vec![1, 10, 32]);
        // The [CLS] position is kept as is.
        assert!(vit
            .positions(3)
            .narrow(1, 0, 1)
            .equal(&learned.narrow(1, 0, 1)));
        let crops = Tensor::randn([3, 1, 12, 12], (Kind::Float, Device::Cpu));
        assert_eq!(vit.encode(&crops, true).size(), vec![3, 32]);
    }

    #[test]
    fn visible_states_of_every_patch_in_order_are_the_full_states() {
        let store = VarStore::new(Device::Cpu);
        let vit = Vit::new(&store.root(), 1, 28, &tiny(PositionEmbedding::SinCos));
        let images = Tensor::randn([2, 1, 28, 28], (Kind::Float, Device::Cpu));
        let all = Tensor::arange(49, (Kind::Int64, Device::Cpu))
            .unsqueeze(0)
            .expand([2, 49], false);
        let full = vit.states(&images, false);
        assert!(vit
            .visible_states(&images, &all, false)
            .allclose(&full, 1e-5, 1e-5, false));
        // Fewer patches: [CLS] + 12 tokens, and the result depends on which ones.
        let first = all.narrow(1, 0, 12);
        let last = all.narrow(1, 37, 12);
        let a = vit.visible_states(&images, &first, false);
        assert_eq!(a.size(), vec![2, 13, 32]);
        assert!(!a.allclose(
            &vit.visible_states(&images, &last, false),
            1e-5,
            1e-5,
            false
        ));
    }

    /// [CLS] and 49 patches per head; each row is a distribution over the 50 tokens.
    #[test]
    fn last_attention_has_a_distribution_per_head_and_token() {
        let store = VarStore::new(Device::Cpu);
        let vit = Vit::new(&store.root(), 1, 28, &tiny(PositionEmbedding::Learned));
        let images = Tensor::randn([2, 1, 28, 28], (Kind::Float, Device::Cpu));
        let attention = vit.last_attention(&images);
        assert_eq!(attention.size(), vec![2, 2, 50, 50]);
        let sums = attention.sum_dim_intlist(&[-1i64][..], false, Kind::Float);
        assert!(sums.allclose(&Tensor::ones_like(&sums), 1e-5, 1e-5, false));
    }

    /// Hand-computed: position 0 is sin 0 = 0 / cos 0 = 1; the patch at row 1, column 2 of a
    /// 3×3 grid has column angle 2·ω_i in its first half and row angle 1·ω_i in its second.
    #[test]
    fn sincos_positions_encode_column_then_row() {
        let table = sincos_2d(8, 3); // ω = [1, 0.01]
        assert_eq!(table.size(), vec![9, 8]);
        let row = |i: i64| Vec::<f32>::try_from(table.get(i)).unwrap();
        let first = row(0);
        assert_eq!(first, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
        let patch = row(5); // row 1, column 2
        let expected = [
            2f32.sin(),
            0.02f32.sin(),
            2f32.cos(),
            0.02f32.cos(),
            1f32.sin(),
            0.01f32.sin(),
            1f32.cos(),
            0.01f32.cos(),
        ];
        for (a, b) in patch.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{patch:?} vs {expected:?}");
        }
    }

    #[test]
    fn invalid_shapes_are_named() {
        let odd = VitConfig {
            hidden_dim: 30,
            heads: 3,
            positions: PositionEmbedding::SinCos,
            ..Default::default()
        };
        assert!(odd.validate().unwrap_err().contains("divisible by 4"));
        assert!(VitConfig::small().validate().is_ok() && VitConfig::base().validate().is_ok());
    }
}
