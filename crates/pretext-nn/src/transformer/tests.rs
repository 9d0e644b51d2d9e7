//! The transformer against Hugging Face's names, causality, padding, the KV cache and the
//! fused attention.

use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};

use super::*;

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
