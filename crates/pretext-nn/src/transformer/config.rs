//! The shape and behaviour of a transformer ([`TransformerConfig`]), with its defaults.

use serde::{Deserialize, Serialize};

/// Shape and behaviour of a [`Transformer`](super::Transformer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerConfig {
    /// Tokens in the vocabulary.
    pub vocab_size: i64,
    /// Longest sequence (learned position embeddings).
    pub max_positions: i64,
    /// Segment (token type) embeddings; 0 = none.
    pub type_vocab_size: i64,
    /// Width of every token's hidden state.
    pub hidden_dim: i64,
    /// Number of blocks.
    pub layers: usize,
    /// Attention heads per block (hidden_dim must be a multiple).
    pub heads: i64,
    /// Width of the MLP inside each block.
    pub mlp_dim: i64,
    /// Dropout on embeddings, attention weights and residual branches while training.
    pub dropout: f64,
    /// Epsilon of every layer norm.
    pub layer_norm_eps: f64,
    /// Pre-LN blocks and a final norm (GPT-2, ViT; the default: it trains from scratch
    /// without BERT's long warmup) instead of post-LN (BERT; set when loading a BERT
    /// checkpoint).
    pub norm_first: bool,
    /// Each position attends only to itself and earlier positions (GPT).
    pub causal: bool,
}

impl Default for TransformerConfig {
    /// A small encoder for CPU runs (4 pre-LN layers of 128, 4 heads; about 0.11 s per
    /// masked-LM step of 32 × 64 tokens on two cores).
    fn default() -> Self {
        TransformerConfig {
            vocab_size: 8000,
            max_positions: 256,
            type_vocab_size: 2,
            hidden_dim: 128,
            layers: 4,
            heads: 4,
            mlp_dim: 512,
            dropout: 0.1,
            layer_norm_eps: 1e-12,
            norm_first: true,
            causal: false,
        }
    }
}

impl TransformerConfig {
    /// Checks what would fail at build or run time; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.hidden_dim <= 0 || self.heads <= 0 || self.hidden_dim % self.heads != 0 {
            return Err(format!(
                "hidden_dim ({}) must be a positive multiple of heads ({})",
                self.hidden_dim, self.heads
            ));
        }
        if self.vocab_size <= 0 || self.max_positions <= 0 || self.layers == 0 || self.mlp_dim <= 0
        {
            return Err("vocab_size, max_positions, layers and mlp_dim must be above 0".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout must be in [0, 1), found {}", self.dropout));
        }
        Ok(())
    }
}
