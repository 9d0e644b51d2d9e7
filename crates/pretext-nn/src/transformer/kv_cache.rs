//! Generation one token at a time: the keys and values of the positions already read
//! ([`KvCache`]) and the forward pass that extends them.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::blocks::Block;
use super::Transformer;

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
