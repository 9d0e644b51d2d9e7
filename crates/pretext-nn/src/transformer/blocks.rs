//! The stack of attention + MLP blocks ([`TransformerBlocks`]) that the token, vision and
//! audio transformers share.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::TransformerConfig;

/// One block: self-attention and MLP, each a residual branch with layer norm.
#[derive(Debug)]
pub(super) struct Block {
    pub(super) query: nn::Linear,
    pub(super) key: nn::Linear,
    pub(super) value: nn::Linear,
    pub(super) attention_out: nn::Linear,
    pub(super) attention_norm: nn::LayerNorm,
    pub(super) mlp_in: nn::Linear,
    pub(super) mlp_out: nn::Linear,
    pub(super) mlp_norm: nn::LayerNorm,
}

/// The stack of blocks (and the final norm of pre-LN models) without embeddings: shared by
/// the token [`Transformer`](super::Transformer) and the vision transformer, which embeds
/// patches instead.
#[derive(Debug)]
pub struct TransformerBlocks {
    pub(super) blocks: Vec<Block>,
    pub(super) final_norm: Option<nn::LayerNorm>,
    config: TransformerConfig,
}

impl TransformerBlocks {
    /// `config.layers` blocks under `path/encoder/layer/N` and, for pre-LN models, a final
    /// norm at `path/final_layer_norm` (Hugging Face BERT's names).
    pub fn new(path: &nn::Path, config: &TransformerConfig) -> TransformerBlocks {
        let h = config.hidden_dim;
        let norm_config = nn::LayerNormConfig {
            eps: config.layer_norm_eps,
            ..Default::default()
        };
        let linear = |p: nn::Path, i, o| nn::linear(p, i, o, Default::default());
        let blocks = (0..config.layers)
            .map(|index| {
                let b = path / "encoder" / "layer" / index;
                Block {
                    query: linear(&b / "attention" / "self" / "query", h, h),
                    key: linear(&b / "attention" / "self" / "key", h, h),
                    value: linear(&b / "attention" / "self" / "value", h, h),
                    attention_out: linear(&b / "attention" / "output" / "dense", h, h),
                    attention_norm: nn::layer_norm(
                        &b / "attention" / "output" / "LayerNorm",
                        vec![h],
                        norm_config,
                    ),
                    mlp_in: linear(&b / "intermediate" / "dense", h, config.mlp_dim),
                    mlp_out: linear(&b / "output" / "dense", config.mlp_dim, h),
                    mlp_norm: nn::layer_norm(&b / "output" / "LayerNorm", vec![h], norm_config),
                }
            })
            .collect();
        let final_norm = config
            .norm_first
            .then(|| nn::layer_norm(path / "final_layer_norm", vec![h], norm_config));
        TransformerBlocks {
            blocks,
            final_norm,
            config: config.clone(),
        }
    }

    /// Hidden states `[B, T, H]` → `[B, T, H]` through every block (and the final norm);
    /// `mask` is a boolean SDPA mask (true = may attend) or None.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>, train: bool) -> Tensor {
        let mut x = x.shallow_clone();
        for block in &self.blocks {
            x = self.block_forward(block, &x, mask, train);
        }
        match &self.final_norm {
            Some(norm) => norm.forward(&x),
            None => x,
        }
    }

    /// The attention probabilities `[B, heads, T, T]` of the **last** block for hidden
    /// states `x` `[B, T, H]` entering the stack (every earlier block runs first, without
    /// dropout): row `i` says how much position `i` reads from each position. This is the
    /// softmax that [`Self::forward`]'s fused attention computes internally and never returns;
    /// DINO's attention maps are its [CLS] rows. `mask` as in [`Self::forward`].
    pub fn last_attention(&self, x: &Tensor, mask: Option<&Tensor>) -> Tensor {
        let (last, earlier) = self.blocks.split_last().expect("at least one block");
        let mut x = x.shallow_clone();
        for block in earlier {
            x = self.block_forward(block, &x, mask, false);
        }
        let input = if self.config.norm_first {
            last.attention_norm.forward(&x)
        } else {
            x
        };
        let (b, t, h) = input.size3().expect("[B, T, H]");
        let heads = self.config.heads;
        let split = |projection: &nn::Linear| {
            projection
                .forward(&input)
                .view([b, t, heads, h / heads])
                .transpose(1, 2) // [B, heads, T, d]
        };
        let scores = split(&last.query).matmul(&split(&last.key).transpose(-2, -1))
            / ((h / heads) as f64).sqrt();
        let scores = match mask {
            Some(mask) => scores.masked_fill(&mask.logical_not(), f64::NEG_INFINITY),
            None => scores,
        };
        scores.softmax(-1, Kind::Float)
    }

    pub(super) fn block_forward(
        &self,
        block: &Block,
        x: &Tensor,
        mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let dropout = if train { self.config.dropout } else { 0.0 };
        // Shapes come from the tensors themselves (unflatten/flatten, never a view to
        // [B, T, …] read off the sizes), so a traced export takes any batch and length.
        let attend = |input: &Tensor| {
            let heads = self.config.heads;
            let head_dim = self.config.hidden_dim / heads;
            let split = |projection: &nn::Linear| {
                projection
                    .forward(input)
                    .unflatten(-1, [heads, head_dim])
                    .transpose(1, 2) // [B, heads, T, d]
            };
            let context = Tensor::scaled_dot_product_attention(
                &split(&block.query),
                &split(&block.key),
                &split(&block.value),
                mask,
                dropout,
                false,
                None,
                false,
            ); // [B, heads, T, d]
            let merged = context.transpose(1, 2).flatten(2, 3); // [B, T, H]
            block
                .attention_out
                .forward(&merged)
                .dropout(self.config.dropout, train)
        };
        let mlp = |input: &Tensor| {
            block
                .mlp_out
                .forward(&block.mlp_in.forward(input).gelu("none"))
                .dropout(self.config.dropout, train)
        };
        if self.config.norm_first {
            let x = x + attend(&block.attention_norm.forward(x));
            &x + mlp(&block.mlp_norm.forward(&x))
        } else {
            let x = block.attention_norm.forward(&(x + attend(x)));
            block.mlp_norm.forward(&(&x + mlp(&x)))
        }
    }
}
