//! A transformer over token sequences (Vaswani et al., 2017): token, position and (optional)
//! segment embeddings, then blocks of multi-head self-attention and an MLP, each wrapped in
//! a residual connection and layer norm. One module serves BERT-style encoders (post-LN,
//! bidirectional, Devlin et al., 2019) and GPT-style decoders (pre-LN with a final norm,
//! causal mask, Radford et al., 2019); attention runs through libtorch's
//! `scaled_dot_product_attention` (flash / memory-efficient kernels where available).
//!
//! Parameter names follow Hugging Face's `BertModel` (`embeddings.word_embeddings.weight`,
//! `encoder.layer.N.attention.self.query.weight`, …), so BERT-family checkpoints load by
//! name ([`crate::hf_bert`]).

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Shape and behaviour of a [`Transformer`].
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

/// Token + position (+ segment) embeddings, then layer norm (BERT) and dropout.
#[derive(Debug)]
struct Embeddings {
    words: nn::Embedding,
    positions: nn::Embedding,
    segments: Option<nn::Embedding>,
    norm: Option<nn::LayerNorm>,
}

/// One block: self-attention and MLP, each a residual branch with layer norm.
#[derive(Debug)]
struct Block {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    attention_out: nn::Linear,
    attention_norm: nn::LayerNorm,
    mlp_in: nn::Linear,
    mlp_out: nn::Linear,
    mlp_norm: nn::LayerNorm,
}

/// The stack of blocks (and the final norm of pre-LN models) without embeddings: shared by
/// the token [`Transformer`] and the vision transformer, which embeds patches instead.
#[derive(Debug)]
pub struct TransformerBlocks {
    blocks: Vec<Block>,
    final_norm: Option<nn::LayerNorm>,
    config: TransformerConfig,
}

#[derive(Debug)]
pub struct Transformer {
    embeddings: Embeddings,
    stack: TransformerBlocks,
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
        let length = token_ids.size()[1];
        let device = token_ids.device();
        let x = self.embed(token_ids, 0).dropout(self.config.dropout, train);
        let mask = self.attention_mask(attention_mask, length, device); // [B|1, 1, T|1, T] bool
        self.stack.forward(&x, mask.as_ref(), train)
    }

    /// Token + position (+ segment) embeddings of `token_ids` `[B, t]` placed at positions
    /// `first_position..`, normalized for post-LN models: `[B, t, H]`.
    fn embed(&self, token_ids: &Tensor, first_position: i64) -> Tensor {
        let (batch, length) = token_ids.size2().expect("token ids are [B, t]");
        let device = token_ids.device();
        let positions = Tensor::arange_start(
            first_position,
            first_position + length,
            (Kind::Int64, device),
        )
        .unsqueeze(0); // [1, t]
        let mut x = self.embeddings.words.forward(token_ids)
            + self.embeddings.positions.forward(&positions);
        if let Some(segments) = &self.embeddings.segments {
            x += segments.forward(&Tensor::zeros([batch, length], (Kind::Int64, device)));
        }
        match &self.embeddings.norm {
            Some(norm) => norm.forward(&x),
            None => x,
        }
    }

    /// Boolean mask (true = may attend) combining padding and causality, or None when every
    /// position may attend everywhere.
    fn attention_mask(
        &self,
        padding: Option<&Tensor>,
        length: i64,
        device: tch::Device,
    ) -> Option<Tensor> {
        let padding = padding.map(|m| m.to_kind(Kind::Bool).unsqueeze(1).unsqueeze(1)); // [B, 1, 1, T]
        let causal = self.config.causal.then(|| {
            Tensor::ones([length, length], (Kind::Bool, device))
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

    fn block_forward(
        &self,
        block: &Block,
        x: &Tensor,
        mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let dropout = if train { self.config.dropout } else { 0.0 };
        let attend = |input: &Tensor| {
            let (b, t, h) = input.size3().expect("[B, T, H]");
            let heads = self.config.heads;
            let split = |projection: &nn::Linear| {
                projection
                    .forward(input)
                    .view([b, t, heads, h / heads])
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
            let merged = context.transpose(1, 2).contiguous().view([b, t, h]);
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

/// Keys and values of the positions a causal model has already read, per block, so that
/// generation computes each new token's states in one pass over one position.
#[derive(Debug, Default)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
}

impl KvCache {
    /// Positions cached so far.
    pub fn len(&self) -> i64 {
        self.layers.first().map_or(0, |(keys, _)| keys.size()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Transformer {
    /// Hidden states `[B, t, H]` of `token_ids` `[B, t]` that continue the sequence held in
    /// `cache` (empty: a new sequence), appending their keys and values to it. Only for causal
    /// models; gives the same states as [`Transformer::forward_t`] over the whole sequence.
    pub fn forward_cached(&self, token_ids: &Tensor, cache: &mut KvCache) -> Tensor {
        assert!(self.config.causal, "a KV cache needs a causal model");
        let length = token_ids.size()[1];
        let device = token_ids.device();
        let past = cache.len();
        let mut x = self.embed(token_ids, past);
        // New position i (absolute past + i) sees absolute positions 0..=past + i.
        let mask = Tensor::ones([length, past + length], (Kind::Bool, device))
            .tril(past)
            .unsqueeze(0)
            .unsqueeze(0);
        let mut updated = Vec::with_capacity(self.stack.blocks.len());
        for (index, block) in self.stack.blocks.iter().enumerate() {
            let previous = cache.layers.get(index);
            let (next, keys, values) = self.cached_block(block, &x, previous, &mask);
            x = next;
            updated.push((keys, values));
        }
        cache.layers = updated;
        match &self.stack.final_norm {
            Some(norm) => norm.forward(&x),
            None => x,
        }
    }

    fn cached_block(
        &self,
        block: &Block,
        x: &Tensor,
        previous: Option<&(Tensor, Tensor)>,
        mask: &Tensor,
    ) -> (Tensor, Tensor, Tensor) {
        let heads = self.config.heads;
        let attend = |input: &Tensor| {
            let (b, t, h) = input.size3().expect("[B, t, H]");
            let split = |projection: &nn::Linear| {
                projection
                    .forward(input)
                    .view([b, t, heads, h / heads])
                    .transpose(1, 2) // [B, heads, t, d]
            };
            let (mut keys, mut values) = (split(&block.key), split(&block.value));
            if let Some((past_keys, past_values)) = previous {
                keys = Tensor::cat(&[past_keys, &keys], 2);
                values = Tensor::cat(&[past_values, &values], 2);
            }
            let context = Tensor::scaled_dot_product_attention(
                &split(&block.query),
                &keys,
                &values,
                Some(mask),
                0.0,
                false,
                None,
                false,
            );
            let merged = context.transpose(1, 2).contiguous().view([b, t, h]);
            (block.attention_out.forward(&merged), keys, values)
        };
        let mlp = |input: &Tensor| {
            block
                .mlp_out
                .forward(&block.mlp_in.forward(input).gelu("none"))
        };
        if self.config.norm_first {
            let (attended, keys, values) = attend(&block.attention_norm.forward(x));
            let x = x + attended;
            (&x + mlp(&block.mlp_norm.forward(&x)), keys, values)
        } else {
            let (attended, keys, values) = attend(x);
            let x = block.attention_norm.forward(&(x + attended));
            (block.mlp_norm.forward(&(&x + mlp(&x))), keys, values)
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device};

    fn tiny(causal: bool, norm_first: bool) -> (VarStore, Transformer) {
        let store = VarStore::new(Device::Cpu);
        let config = TransformerConfig {
            vocab_size: 50,
            max_positions: 16,
            hidden_dim: 8,
            layers: 2,
            heads: 2,
            mlp_dim: 16,
            dropout: 0.0,
            causal,
            norm_first,
            ..Default::default()
        };
        let model = Transformer::new(&store.root(), &config);
        (store, model)
    }

    #[test]
    fn names_follow_hugging_face_bert() {
        let (store, _) = tiny(false, false);
        let names = store.variables();
        for name in [
            "embeddings.word_embeddings.weight",
            "embeddings.LayerNorm.bias",
            "encoder.layer.1.attention.self.query.weight",
            "encoder.layer.0.attention.output.LayerNorm.weight",
            "encoder.layer.0.intermediate.dense.weight",
            "encoder.layer.1.output.dense.bias",
        ] {
            assert!(names.contains_key(name), "missing {name}");
        }
    }

    #[test]
    fn causal_model_output_at_a_position_ignores_later_tokens() {
        tch::manual_seed(0);
        let (_, model) = tiny(true, true);
        let a = Tensor::from_slice2(&[[1i64, 2, 3, 4, 5]]);
        let b = Tensor::from_slice2(&[[1i64, 2, 3, 9, 9]]);
        let (ha, hb) = (
            model.forward_t(&a, None, false),
            model.forward_t(&b, None, false),
        );
        let prefix = |h: &Tensor| h.narrow(1, 0, 3);
        assert!(prefix(&ha).allclose(&prefix(&hb), 1e-6, 1e-6, false));
        assert!(!ha
            .narrow(1, 3, 1)
            .allclose(&hb.narrow(1, 3, 1), 1e-6, 1e-6, false));
    }

    #[test]
    fn cached_generation_gives_the_states_of_a_full_forward() {
        tch::manual_seed(0);
        let (_, model) = tiny(true, true);
        let ids = Tensor::from_slice2(&[[1i64, 2, 3, 4, 5, 6]]);
        let full = model.forward_t(&ids, None, false);
        let mut cache = KvCache::default();
        let prefix = model.forward_cached(&ids.narrow(1, 0, 4), &mut cache);
        assert_eq!(cache.len(), 4);
        let fifth = model.forward_cached(&ids.narrow(1, 4, 1), &mut cache);
        let sixth = model.forward_cached(&ids.narrow(1, 5, 1), &mut cache);
        let stepped = Tensor::cat(&[prefix, fifth, sixth], 1);
        assert!(
            stepped.allclose(&full, 1e-5, 1e-5, false),
            "cached states differ"
        );
    }

    #[test]
    fn padding_does_not_change_the_real_tokens() {
        tch::manual_seed(0);
        let (_, model) = tiny(false, false);
        let short = Tensor::from_slice2(&[[7i64, 8, 9]]);
        let padded = Tensor::from_slice2(&[[7i64, 8, 9, 0, 0]]);
        let mask = Tensor::from_slice2(&[[1i64, 1, 1, 0, 0]]);
        let h_short = model.forward_t(&short, None, false);
        let h_padded = model.forward_t(&padded, Some(&mask), false).narrow(1, 0, 3);
        assert!(h_short.allclose(&h_padded, 1e-5, 1e-5, false));
        let pooled = mean_pool(&model.forward_t(&padded, Some(&mask), false), &mask);
        assert!(pooled.allclose(
            &h_short.mean_dim(&[1i64][..], false, Kind::Float),
            1e-5,
            1e-5,
            false
        ));
    }

    /// The probabilities `last_attention` returns are the ones the fused attention of the last
    /// block uses: they weigh that block's values into exactly SDPA's output, and every row
    /// sums to 1 (pre-LN and post-LN).
    #[test]
    fn last_attention_weighs_values_as_the_fused_attention_does() {
        for norm_first in [true, false] {
            tch::manual_seed(1);
            let (_, model) = tiny(false, norm_first);
            let stack = &model.stack;
            let x = Tensor::randn([2, 5, 8], (Kind::Float, Device::Cpu));
            let weights = stack.last_attention(&x, None); // [2, 2, 5, 5]
            assert_eq!(weights.size(), vec![2, 2, 5, 5]);
            let sums = weights.sum_dim_intlist(&[-1i64][..], false, Kind::Float);
            assert!(sums.allclose(&Tensor::ones_like(&sums), 1e-5, 1e-5, false));

            let before = stack.block_forward(&stack.blocks[0], &x, None, false);
            let last = &stack.blocks[1];
            let input = if norm_first {
                last.attention_norm.forward(&before)
            } else {
                before
            };
            let split = |projection: &nn::Linear| {
                projection
                    .forward(&input)
                    .view([2, 5, 2, 4])
                    .transpose(1, 2)
            };
            let (query, key, value) = (split(&last.query), split(&last.key), split(&last.value));
            let fused = Tensor::scaled_dot_product_attention(
                &query,
                &key,
                &value,
                None::<&Tensor>,
                0.0,
                false,
                None,
                false,
            );
            assert!(weights.matmul(&value).allclose(&fused, 1e-5, 1e-5, false));
        }
    }
}
