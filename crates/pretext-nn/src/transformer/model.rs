//! The token [`Transformer`]: embeddings of token ids, then the blocks; and [`mean_pool`]
//! over its hidden states.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::{TransformerBlocks, TransformerConfig};

/// Token + position (+ segment) embeddings, then layer norm (BERT) and dropout.
#[derive(Debug)]
struct Embeddings {
    words: nn::Embedding,
    positions: nn::Embedding,
    segments: Option<nn::Embedding>,
    norm: Option<nn::LayerNorm>,
}

#[derive(Debug)]
pub struct Transformer {
    embeddings: Embeddings,
    pub(super) stack: TransformerBlocks,
    /// The token embedding matrix `[V, H]`, for weight-tied output heads.
    pub word_embeddings: Tensor,
    pub config: TransformerConfig,
}

impl Transformer {
    pub fn new(path: &nn::Path, config: &TransformerConfig) -> Transformer {
        let h = config.hidden_dim;
        let norm_config = nn::LayerNormConfig {
            eps: config.layer_norm_eps,
            ..Default::default()
        };
        let embedding_config = nn::EmbeddingConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
            ..Default::default()
        };
        let e = path / "embeddings";
        let words = nn::embedding(
            &e / "word_embeddings",
            config.vocab_size,
            h,
            embedding_config,
        );
        let embeddings = Embeddings {
            positions: nn::embedding(
                &e / "position_embeddings",
                config.max_positions,
                h,
                embedding_config,
            ),
            segments: (config.type_vocab_size > 0).then(|| {
                nn::embedding(
                    &e / "token_type_embeddings",
                    config.type_vocab_size,
                    h,
                    embedding_config,
                )
            }),
            norm: (!config.norm_first)
                .then(|| nn::layer_norm(&e / "LayerNorm", vec![h], norm_config)),
            words,
        };
        let stack = TransformerBlocks::new(path, config);
        Transformer {
            word_embeddings: embeddings.words.ws.shallow_clone(),
            embeddings,
            stack,
            config: config.clone(),
        }
    }

    /// `token_ids` `[B, T]` (int64) → hidden states `[B, T, H]`. `attention_mask` `[B, T]`
    /// is 1 for real tokens and 0 for padding (padding is never attended to).
    pub fn forward_t(
        &self,
        token_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let x = self.embed(token_ids, 0).dropout(self.config.dropout, train);
        let mask = self.attention_mask(attention_mask, token_ids); // [B|1, 1, T|1, T] bool
        self.stack.forward(&x, mask.as_ref(), train)
    }

    /// Token + position (+ segment) embeddings of `token_ids` `[B, t]` placed at positions
    /// `first_position..`, normalized for post-LN models: `[B, t, H]`.
    pub(super) fn embed(&self, token_ids: &Tensor, first_position: i64) -> Tensor {
        // Positions and segments are made from the ids' own shape (a cumulative sum, zeros
        // like them), not from sizes read off them, so a traced export takes any batch and
        // length.
        let ones = token_ids.ones_like().to_kind(Kind::Int64);
        let positions = ones.cumsum(1, Kind::Int64) + (first_position - 1); // [B, t]
        let mut x = self.embeddings.words.forward(token_ids)
            + self.embeddings.positions.forward(&positions);
        if let Some(segments) = &self.embeddings.segments {
            x += segments.forward(&ones.zeros_like());
        }
        match &self.embeddings.norm {
            Some(norm) => norm.forward(&x),
            None => x,
        }
    }

    /// Boolean mask (true = may attend) combining padding and causality, or None when every
    /// position may attend everywhere.
    fn attention_mask(&self, padding: Option<&Tensor>, token_ids: &Tensor) -> Option<Tensor> {
        let padding = padding.map(|m| m.to_kind(Kind::Bool).unsqueeze(1).unsqueeze(1)); // [B, 1, 1, T]
        let causal = self.config.causal.then(|| {
            // [T, T] of ones made from the ids' shape (see `embed`), lower triangle kept.
            let row = token_ids.select(0, 0).ones_like().to_kind(Kind::Bool); // [T]
            row.unsqueeze(1)
                .logical_and(&row.unsqueeze(0))
                .tril(0)
                .unsqueeze(0)
                .unsqueeze(0) // [1, 1, T, T]
        });
        match (padding, causal) {
            (Some(p), Some(c)) => Some(p.logical_and(&c)),
            (p, c) => p.or(c),
        }
    }
}

/// Mean of `hidden` `[B, T, H]` over the positions where `attention_mask` `[B, T]` is 1.
pub fn mean_pool(hidden: &Tensor, attention_mask: &Tensor) -> Tensor {
    let mask = attention_mask.to_kind(hidden.kind()).unsqueeze(-1); // [B, T, 1]
    (hidden * &mask).sum_dim_intlist(&[1i64][..], false, hidden.kind())
        / mask
            .sum_dim_intlist(&[1i64][..], false, hidden.kind())
            .clamp_min(1e-9)
}
