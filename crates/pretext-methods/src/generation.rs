//! Text generation from a causal language model: temperature, top-k and nucleus (top-p)
//! sampling (Holtzman et al., 2020), one token at a time through the transformer's KV cache,
//! handed to the caller as soon as it is drawn. Draws come from a seeded Rust stream, so the
//! same seed gives the same text.

use pretext_data::rng_stream;
use pretext_nn::KvCache;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::gpt::Gpt;

/// How the next token is drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Divides the logits; 0 = always the most likely token (greedy).
    pub temperature: f64,
    /// Keep only the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches p (1 = all).
    pub top_p: f64,
    /// Tokens to generate after the prompt.
    pub max_tokens: usize,
    /// Seed of the draws.
    pub seed: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            temperature: 0.8,
            top_k: 50,
            top_p: 0.95,
            max_tokens: 200,
            seed: 0,
        }
    }
}

impl SamplingConfig {
    /// Checks the settings; the error is (field, what was expected and found).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            let found = self.temperature;
            return Err((
                "temperature",
                format!("expected 0 (greedy) or more, found {found}"),
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            let found = self.top_p;
            return Err((
                "top_p",
                format!("expected a probability in (0, 1], found {found}"),
            ));
        }
        if self.max_tokens == 0 {
            return Err(("max_tokens", "expected at least 1 token, found 0".into()));
        }
        Ok(())
    }
}

/// The probabilities of the next token after temperature, top-k and top-p, `[V]`, as f64.
pub fn next_token_probabilities(logits: &Tensor, config: &SamplingConfig) -> Vec<f64> {
    let logits = Vec::<f64>::try_from(logits.to_kind(Kind::Double).view([-1]))
        .expect("logits are a float vector");
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let mut probabilities = vec![0.0; logits.len()];
    if config.temperature <= 0.0 {
        probabilities[order[0]] = 1.0;
        return probabilities;
    }
    let keep_k = if config.top_k == 0 {
        order.len()
    } else {
        config.top_k.min(order.len())
    };
    let kept = &order[..keep_k];
    let max = logits[kept[0]] / config.temperature;
    let weights: Vec<f64> = kept
        .iter()
        .map(|&i| (logits[i] / config.temperature - max).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    // Nucleus: the shortest prefix of the sorted tokens whose mass reaches top_p.
    let mut mass = 0.0;
    let mut chosen = 0;
    for weight in &weights {
        mass += weight / total;
        chosen += 1;
        if mass >= config.top_p {
            break;
        }
    }
    let nucleus: f64 = weights[..chosen].iter().sum();
    for (&index, weight) in kept[..chosen].iter().zip(&weights) {
        probabilities[index] = weight / nucleus;
    }
    probabilities
}

/// Tag of the sampling stream.
const SAMPLING_STREAM: u64 = 0x5341_4d50; // "SAMP"

impl Gpt {
    /// Continues `prompt` (token ids, at least one) with up to `config.max_tokens` tokens,
    /// calling `on_token` with each as it is drawn; stops early at `stop` or when `on_token`
    /// returns false. Returns the new tokens.
    ///
    /// The model reads at most `window` positions (the sequence length it was trained on:
    /// later position embeddings were never trained); when the window is full it starts again
    /// from the most recent half of the text.
    pub fn generate(
        &self,
        prompt: &[u32],
        config: &SamplingConfig,
        window: usize,
        stop: Option<u32>,
        mut on_token: impl FnMut(u32) -> bool,
    ) -> Vec<u32> {
        let _guard = tch::no_grad_guard();
        let text = self.encoder.text().expect("gpt has a transformer");
        let transformer = &text.transformer;
        let device = transformer.word_embeddings.device();
        let window = window.clamp(2, transformer.config.max_positions as usize);
        let mut rng = rng_stream(config.seed, &[SAMPLING_STREAM]);
        let mut context: Vec<u32> = prompt.to_vec();
        let mut generated = Vec::new();
        let mut cache = KvCache::default();
        let mut pending: Vec<u32> = context[context.len().saturating_sub(window)..].to_vec();
        for _ in 0..config.max_tokens {
            if cache.len() as usize + pending.len() > window {
                // The window is full: start again from the most recent half of the context.
                cache = KvCache::default();
                pending = context[context.len() - window / 2..].to_vec();
            }
            let ids: Vec<i64> = pending.iter().map(|&id| i64::from(id)).collect();
            let input = Tensor::from_slice(&ids).view([1, -1]).to_device(device);
            let states = transformer.forward_cached(&input, &mut cache); // [1, t, H]
            let last = states.select(1, states.size()[1] - 1); // [1, H]
            let logits = last.matmul(&transformer.word_embeddings.transpose(0, 1)); // [1, V]
            let probabilities = next_token_probabilities(&logits, config);
            let draw: f64 = rng.random();
            let mut cumulative = 0.0;
            let mut token = probabilities.len() - 1;
            for (index, p) in probabilities.iter().enumerate() {
                cumulative += p;
                if *p > 0.0 && draw < cumulative {
                    token = index;
                    break;
                }
            }
            let token = token as u32;
            generated.push(token);
            context.push(token);
            pending = vec![token];
            if Some(token) == stop || !on_token(token) {
                break;
            }
        }
        generated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Tensor {
        Tensor::from_slice(&[2.0f32, 1.0, 0.0, -1.0])
    }

    /// Regression: generation once read up to `max_positions` positions although the model
    /// was trained on shorter sequences; past the training length the text turned to noise.
    #[test]
    fn generation_never_reads_positions_beyond_the_window() {
        use pretext_nn::{BackboneConfig, BackboneKind, InputSpec, TransformerConfig};
        tch::manual_seed(0);
        let store = tch::nn::VarStore::new(tch::Device::Cpu);
        let backbone = BackboneConfig {
            kind: BackboneKind::Transformer,
            transformer: TransformerConfig {
                vocab_size: 50,
                max_positions: 32,
                hidden_dim: 16,
                layers: 1,
                heads: 2,
                mlp_dim: 32,
                dropout: 0.0,
                ..Default::default()
            },
            ..Default::default()
        };
        let gpt = Gpt::new(&store.root(), &InputSpec::tokens(50, 0), &backbone);
        let greedy = SamplingConfig {
            temperature: 0.0,
            max_tokens: 30,
            ..Default::default()
        };
        let window = 8;
        let clean = gpt.generate(&[5, 6, 7], &greedy, window, None, |_| true);
        // Poison every position the window excludes: reading one would make the logits NaN.
        let variables = store.variables();
        let (_, positions) = variables
            .iter()
            .find(|(name, _)| name.ends_with("position_embeddings.weight"))
            .expect("a position table");
        tch::no_grad(|| {
            let _ = positions
                .narrow(0, window as i64, 32 - window as i64)
                .fill_(f64::NAN);
        });
        let poisoned = gpt.generate(&[5, 6, 7], &greedy, window, None, |_| true);
        assert_eq!(clean.len(), 30);
        assert_eq!(clean, poisoned);
        // The poison does bite when the window allows those positions.
        let wide = gpt.generate(&[5, 6, 7], &greedy, 32, None, |_| true);
        assert_ne!(clean, wide);
    }

    #[test]
    fn greedy_takes_the_most_likely_token() {
        let config = SamplingConfig {
            temperature: 0.0,
            ..Default::default()
        };
        assert_eq!(
            next_token_probabilities(&logits(), &config),
            vec![1.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn top_k_and_top_p_keep_the_right_tokens_with_renormalized_mass() {
        let softmax = |xs: &[f64]| {
            let total: f64 = xs.iter().map(|x| x.exp()).sum();
            xs.iter().map(|x| x.exp() / total).collect::<Vec<_>>()
        };
        let top2 = SamplingConfig {
            temperature: 1.0,
            top_k: 2,
            top_p: 1.0,
            ..Default::default()
        };
        let p = next_token_probabilities(&logits(), &top2);
        let want = softmax(&[2.0, 1.0]);
        assert!((p[0] - want[0]).abs() < 1e-9 && (p[1] - want[1]).abs() < 1e-9);
        assert_eq!((p[2], p[3]), (0.0, 0.0));
        // Full softmax of [2, 1, 0, -1] is [0.644, 0.237, 0.087, 0.032]: p = 0.85 keeps 2
        // tokens (0.881 ≥ 0.85), p = 0.9 keeps 3.
        let nucleus = |top_p| SamplingConfig {
            temperature: 1.0,
            top_k: 0,
            top_p,
            ..Default::default()
        };
        let kept = |p: Vec<f64>| p.iter().filter(|&&x| x > 0.0).count();
        assert_eq!(kept(next_token_probabilities(&logits(), &nucleus(0.85))), 2);
        assert_eq!(kept(next_token_probabilities(&logits(), &nucleus(0.9))), 3);
        let total: f64 = next_token_probabilities(&logits(), &nucleus(0.9))
            .iter()
            .sum();
        assert!((total - 1.0).abs() < 1e-12);
    }
}
