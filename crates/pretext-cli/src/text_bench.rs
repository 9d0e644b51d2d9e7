//! `pretext bench --text`: one training step of BERT masked LM on a BERT-mini encoder and of
//! GPT causal LM on the character-level GPT preset, and greedy generation speed of that GPT,
//! beside bench/reference/text_step.py, which builds the same networks in PyTorch.

use std::time::Instant;

use pretext_augment::mask_tokens;
use pretext_methods::{Gpt, Method, MethodName, MethodSetup, SamplingConfig, StepInputs};
use pretext_nn::{BackboneConfig, BackboneKind, InputSpec, Precision, TransformerConfig};
use pretext_train::PretrainConfig;
use rand::{Rng, SeedableRng};
use tch::{nn::VarStore, Device, Tensor};

use crate::method_bench::{build_method, median_step_seconds};

/// The two benchmarked language models (shapes as in text_step.py).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextModel {
    /// BERT-mini (Turc et al., 2019): 4 post-LN layers of 256, 4 heads, vocabulary 30 522;
    /// masked LM on batches of 32 × 128 tokens.
    BertMini,
    /// The character-level GPT of `configs/char-gpt.toml`: 4 pre-LN layers of 128, 4 heads,
    /// 96 characters; causal LM on batches of 32 × 128 characters.
    CharGpt,
}

/// Sequences per step and tokens per sequence of both benchmarks.
pub const BATCH: i64 = 32;
pub const SEQUENCE: i64 = 128;
/// Ids below this are special ([PAD] [UNK] [CLS] [SEP] [MASK]); [MASK] is 4.
const SPECIAL: u32 = 5;
const MASK_ID: u32 = 4;

impl TextModel {
    pub fn name(self) -> &'static str {
        match self {
            TextModel::BertMini => "bert-mini",
            TextModel::CharGpt => "char-gpt",
        }
    }

    fn method(self) -> MethodName {
        match self {
            TextModel::BertMini => MethodName::BertMlm,
            TextModel::CharGpt => MethodName::Gpt,
        }
    }

    fn transformer(self) -> TransformerConfig {
        let base = TransformerConfig {
            max_positions: 256,
            dropout: 0.1,
            ..Default::default()
        };
        match self {
            TextModel::BertMini => TransformerConfig {
                vocab_size: 30_522,
                hidden_dim: 256,
                layers: 4,
                heads: 4,
                mlp_dim: 1024,
                norm_first: false,
                ..base
            },
            TextModel::CharGpt => TransformerConfig {
                vocab_size: 96,
                hidden_dim: 128,
                layers: 4,
                heads: 4,
                mlp_dim: 512,
                type_vocab_size: 0,
                norm_first: true,
                causal: true,
                ..base
            },
        }
    }

    fn backbone(self) -> BackboneConfig {
        BackboneConfig {
            kind: BackboneKind::Transformer,
            transformer: self.transformer(),
            ..Default::default()
        }
    }
}

/// The benchmarked model, built as `pretext pretrain` builds it.
fn build(model: TextModel, device: Device) -> (VarStore, VarStore, Method) {
    let mut config = PretrainConfig::default();
    config.method.name = model.method();
    config.backbone = model.backbone();
    let setup = MethodSetup {
        input: InputSpec::tokens(config.backbone.transformer.vocab_size, 0),
        image_size: 0,
        train_len: 10_000,
        total_steps: 1000,
    };
    build_method(&config, setup, device)
}

/// Median seconds of one training step (forward, loss, backward, AdamW) of `model` on fixed
/// random token ids (BERT: masked once with BERT's rates), as text_step.py measures.
pub fn text_step_seconds(
    model: TextModel,
    device: Device,
    warmup: usize,
    iters: usize,
) -> anyhow::Result<f64> {
    let (store, _state, mut method) = build(model, device);
    let vocab = model.transformer().vocab_size;
    let inputs = match model {
        TextModel::BertMini => masked_lm_inputs(vocab, BATCH, SEQUENCE, device),
        TextModel::CharGpt => {
            let ids = random_ids(
                vocab,
                BATCH * SEQUENCE,
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
            );
            StepInputs {
                views: vec![Tensor::from_slice(
                    &ids.iter().map(|&id| i64::from(id)).collect::<Vec<_>>(),
                )
                .view([BATCH, SEQUENCE])
                .to_device(device)],
                targets: None,
            }
        }
    };
    median_step_seconds(
        &store,
        &mut method,
        &inputs,
        device,
        Precision::Fp32,
        warmup,
        iters,
    )
}

/// `count` random ordinary token ids (no special token) of a `vocab`-word vocabulary.
fn random_ids(vocab: i64, count: i64, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<u32> {
    (0..count)
        .map(|_| rng.random_range(SPECIAL..vocab as u32))
        .collect()
}

/// A masked-LM step's inputs: `batch` × `sequence` random token ids from seed 0, masked once
/// with BERT's rates (15% chosen; 80/10/10), and their labels.
pub fn masked_lm_inputs(vocab: i64, batch: i64, sequence: i64, device: Device) -> StepInputs {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let ids = random_ids(vocab, batch * sequence, &mut rng);
    let masked = mask_tokens(
        &ids,
        |id| id < SPECIAL,
        MASK_ID,
        vocab as u32,
        &Default::default(),
        &mut rng,
    );
    let as_tensor = |values: Vec<i64>| Tensor::from_slice(&values).view([batch, sequence]);
    StepInputs {
        views: vec![as_tensor(masked.inputs).to_device(device)],
        targets: Some(as_tensor(masked.labels).to_device(device)),
    }
}

/// Positions the benchmarked GPT may read (its position table; `--generate-tokens` < 256).
fn model_window() -> usize {
    TextModel::CharGpt.transformer().max_positions as usize
}

/// Tokens per second of greedy generation of `tokens` tokens (KV cache, batch 1) from a
/// one-token prompt with the char-GPT preset, after one untimed generation.
pub fn generation_tokens_per_second(device: Device, tokens: usize) -> f64 {
    let (_store, _state, method) = build(TextModel::CharGpt, device);
    let Some(gpt) = method.downcast_ref::<Gpt>() else {
        unreachable!("the char-GPT preset builds a GPT")
    };
    let config = SamplingConfig {
        temperature: 0.0,
        max_tokens: tokens,
        ..Default::default()
    };
    let window = model_window();
    let generate = |gpt: &Gpt| gpt.generate(&[7], &config, window, None, |_| true).len();
    generate(gpt);
    let started = Instant::now();
    let made = generate(gpt);
    made as f64 / started.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameters(model: TextModel) -> i64 {
        let (store, _, _) = build(model, Device::Cpu);
        store
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .map(|n| n as i64)
            .sum()
    }

    /// BERT-mini's shape, counted by hand: embeddings (30 522 words + 256 positions + 2
    /// types) × 256 + their norm, 4 layers of (4 attention projections + 2 norms + a 1024-wide
    /// MLP), and the MLM head (dense + norm + a bias per word; the decoder is tied).
    #[test]
    fn bert_mini_has_bert_minis_parameters() {
        let (h, v, mlp) = (256i64, 30_522i64, 1024i64);
        let embeddings = (v + 256 + 2) * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * 2 * h + (h * mlp + mlp) + (mlp * h + h);
        let head = (h * h + h) + 2 * h + v;
        assert_eq!(
            parameters(TextModel::BertMini),
            embeddings + 4 * layer + head
        );
    }

    #[test]
    fn both_steps_and_generation_run() {
        for model in [TextModel::BertMini, TextModel::CharGpt] {
            let seconds = text_step_seconds(model, Device::Cpu, 0, 1).unwrap();
            assert!(seconds > 0.0 && seconds.is_finite(), "{model:?}: {seconds}");
        }
        let rate = generation_tokens_per_second(Device::Cpu, 8);
        assert!(rate > 0.0 && rate.is_finite(), "{rate}");
    }
}
