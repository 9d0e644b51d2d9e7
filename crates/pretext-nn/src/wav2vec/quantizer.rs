//! wav2vec 2.0's quantization module (§2) and diversity loss (§3.2, eq. 4): G codebooks of
//! V entries; a linear map turns a frame into G·V logits, a hard Gumbel-softmax
//! (straight-through) picks one entry per codebook, and the G entries are concatenated.
//! Paper: G = 2, V = 320, τ annealed from 2 to 0.5 by a factor 0.999995 per update. The
//! Gumbel noise comes from libtorch's generator.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Sizes of the product quantizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GumbelQuantizerConfig {
    /// Codebooks `G` (paper: 2).
    pub groups: i64,
    /// Entries per codebook `V` (paper: 320).
    pub entries: i64,
    /// Width `d` of the quantized output, the concatenation of `G` entries of `d/G` each
    /// (fairseq's base model: 256). Must be a multiple of `groups`.
    pub code_dim: i64,
}

impl Default for GumbelQuantizerConfig {
    fn default() -> Self {
        GumbelQuantizerConfig {
            groups: 2,
            entries: 320,
            code_dim: 256,
        }
    }
}

/// The Gumbel-softmax temperature after `step` updates: `max(end, start · decay^step)`
/// (paper: start 2, end 0.5, decay 0.999995, so τ reaches 0.5 after about 277k updates).
pub fn gumbel_temperature(step: u64, start: f64, end: f64, decay: f64) -> f64 {
    (start * decay.powf(step as f64)).max(end)
}

/// Hard Gumbel-softmax with the straight-through estimator over the last dimension of
/// `logits`, with the Gumbel `noise` given (same shape): the value is exactly the one-hot of
/// `argmax((logits + noise) / τ)`, the gradient that of `softmax((logits + noise) / τ)`.
pub fn hard_gumbel_softmax(logits: &Tensor, noise: &Tensor, temperature: f64) -> Tensor {
    let soft = ((logits + noise) / temperature).softmax(-1, Kind::Float);
    let hard = soft
        .argmax(-1, false)
        .one_hot(soft.size()[soft.dim() - 1])
        .to_kind(Kind::Float);
    // `soft − soft.detach()` is exactly zero, so the value stays exactly one-hot.
    hard + (&soft - soft.detach())
}

/// What [`GumbelQuantizer::forward_t`] returns.
#[derive(Debug)]
pub struct Quantized {
    /// The quantized frames `[..., d]`: per codebook, the chosen entry, concatenated.
    pub codes: Tensor,
    /// The chosen entry of each codebook `[..., G]` (int64, in `0..V`).
    pub indices: Tensor,
    /// `Σ_g exp(H(p̄_g))`, p̄_g the softmax of the logits (no noise, no temperature) averaged
    /// over the batch: from `G` (every frame picks the same entries) to `G·V` (uniform use).
    pub perplexity: Tensor,
    /// The diversity loss `(G·V − perplexity) / (G·V)`, in `[0, 1)`.
    pub diversity_loss: Tensor,
}

/// wav2vec 2.0's quantization module: a linear map to `G·V` logits and a codebook
/// `[G·V, d/G]` (rows `g·V..(g+1)·V` belong to codebook g). Initialized as fairseq: the
/// linear weights from N(0, 1), biases 0, codebook entries from U(0, 1).
#[derive(Debug)]
pub struct GumbelQuantizer {
    to_logits: nn::Linear,
    codebook: Tensor,
    groups: i64,
    entries: i64,
}

impl GumbelQuantizer {
    /// A quantizer of `input_dim`-wide frames. `config.code_dim` must be a multiple of
    /// `config.groups`.
    pub fn new(path: &nn::Path, input_dim: i64, config: &GumbelQuantizerConfig) -> Self {
        assert!(
            config.groups > 0 && config.entries > 0 && config.code_dim % config.groups == 0,
            "the quantizer's code_dim ({}) must be a multiple of its groups ({})",
            config.code_dim,
            config.groups
        );
        let to_logits = nn::linear(
            path / "weight_proj",
            input_dim,
            config.groups * config.entries,
            nn::LinearConfig {
                ws_init: nn::Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
                bs_init: Some(nn::Init::Const(0.0)),
                bias: true,
            },
        );
        let codebook = path.var(
            "codebook",
            &[
                config.groups * config.entries,
                config.code_dim / config.groups,
            ],
            nn::Init::Uniform { lo: 0.0, up: 1.0 },
        );
        GumbelQuantizer {
            to_logits,
            codebook,
            groups: config.groups,
            entries: config.entries,
        }
    }

    /// Quantizes frames `[..., C]`. In training, one entry per codebook is picked by
    /// [`hard_gumbel_softmax`] at `temperature` with fresh Gumbel noise; in evaluation, by
    /// the argmax of the logits.
    pub fn forward_t(&self, frames: &Tensor, temperature: f64, train: bool) -> Quantized {
        if train {
            let shape = self.logits_shape(frames);
            let noise = -Tensor::empty(shape, (Kind::Float, frames.device()))
                .exponential_(1.0)
                .log();
            self.quantize(frames, Some(&noise), temperature)
        } else {
            self.quantize(frames, None, temperature)
        }
    }

    /// [`Self::forward_t`] with the Gumbel noise `[N, G, V]` given (`N` the number of frames;
    /// `None`: evaluation, plain argmax).
    pub fn quantize(&self, frames: &Tensor, noise: Option<&Tensor>, temperature: f64) -> Quantized {
        let size = frames.size();
        let leading = &size[..size.len() - 1];
        let logits = self
            .to_logits
            .forward(&frames.reshape([-1, size[size.len() - 1]]))
            .view([-1, self.groups, self.entries]) // [N, G, V]
            .to_kind(Kind::Float);
        let weights = match noise {
            Some(noise) => hard_gumbel_softmax(&logits, noise, temperature),
            None => logits
                .argmax(-1, false)
                .one_hot(self.entries)
                .to_kind(Kind::Float),
        }; // [N, G, V], one-hot in value
        let codebook = self.codebook.view([self.groups, self.entries, -1]); // [G, V, d/G]
        let codes = Tensor::einsum("ngv,gvd->ngd", &[&weights, &codebook], None::<&[i64]>);
        let mut code_shape = leading.to_vec();
        code_shape.push(-1);
        let mut index_shape = leading.to_vec();
        index_shape.push(self.groups);
        let perplexity = code_perplexity(&logits);
        let total = (self.groups * self.entries) as f64;
        let diversity_loss = (-&perplexity + total) / total;
        Quantized {
            codes: codes.reshape(code_shape.as_slice()),
            indices: weights
                .detach()
                .argmax(-1, false)
                .reshape(index_shape.as_slice()),
            perplexity,
            diversity_loss,
        }
    }

    fn logits_shape(&self, frames: &Tensor) -> Vec<i64> {
        let size = frames.size();
        let count: i64 = size[..size.len() - 1].iter().product();
        vec![count, self.groups, self.entries]
    }
}

/// The perplexity of logits `[N, G, V]`: per group, `exp(−Σ_v p̄_v log p̄_v)` of the softmax
/// averaged over the N frames, summed over the groups. (fairseq adds 1e-7 inside the log;
/// here `0 · log 0` counts as 0, so the hand values G, 2G, G·V come out exactly.)
pub fn code_perplexity(logits: &Tensor) -> Tensor {
    let average = logits
        .softmax(-1, Kind::Float)
        .mean_dim(&[0i64][..], false, Kind::Float); // [G, V]
    let entropy = -(&average * average.clamp_min(1e-12).log()).sum_dim_intlist(
        &[-1i64][..],
        false,
        Kind::Float,
    ); // [G]
    entropy.exp().sum(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn temperature_schedule_by_hand() {
        assert_eq!(gumbel_temperature(0, 2.0, 0.5, 0.999995), 2.0);
        // 2 · 0.999995^100000 = 2 · e^(−0.5000013) ≈ 1.21306.
        let t = gumbel_temperature(100_000, 2.0, 0.5, 0.999995);
        assert!((t - 1.213_06).abs() < 1e-5, "{t}");
        // 2 · 0.999995^200000 ≈ 0.73576; the floor 0.5 takes over after ≈ 277258 steps.
        let t = gumbel_temperature(200_000, 2.0, 0.5, 0.999995);
        assert!((t - 0.735_76).abs() < 1e-5, "{t}");
        assert_eq!(gumbel_temperature(277_259, 2.0, 0.5, 0.999995), 0.5);
        assert_eq!(gumbel_temperature(10_000_000, 2.0, 0.5, 0.999995), 0.5);
    }

    /// Logits `[N, 2, 320]` whose softmax puts all mass on `codes[n]` in both groups.
    fn peaked_logits(codes: &[i64]) -> Tensor {
        let logits = Tensor::full(
            [codes.len() as i64, 2, 320],
            -1e4,
            (Kind::Float, Device::Cpu),
        );
        for (n, &code) in codes.iter().enumerate() {
            for g in 0..2 {
                let _ = logits.get(n as i64).get(g).get(code).fill_(0.0);
            }
        }
        logits
    }

    #[test]
    fn perplexity_and_diversity_on_hand_made_logits() {
        let diversity = |perplexity: f64| (640.0 - perplexity) / 640.0;
        // Every frame on code 7 in both groups: 1 per group.
        let one = code_perplexity(&peaked_logits(&[7, 7, 7])).double_value(&[]);
        assert!((one - 2.0).abs() < 1e-5, "{one}");
        assert!((diversity(one) - 0.996_875).abs() < 1e-7);
        // Half the frames on code 0, half on code 1: 2 per group.
        let two = code_perplexity(&peaked_logits(&[0, 1, 0, 1])).double_value(&[]);
        assert!((two - 4.0).abs() < 1e-5, "{two}");
        assert!((diversity(two) - 0.993_75).abs() < 1e-7);
        // Uniform logits: V per group, diversity loss 0.
        let uniform = code_perplexity(&Tensor::zeros([3, 2, 320], (Kind::Float, Device::Cpu)))
            .double_value(&[]);
        assert!((uniform - 640.0).abs() < 1e-2, "{uniform}");
        assert!(diversity(uniform).abs() < 1e-5);
    }

    #[test]
    fn quantizer_reports_diversity_of_its_own_perplexity() {
        tch::manual_seed(2);
        let store = nn::VarStore::new(Device::Cpu);
        let quantizer = GumbelQuantizer::new(&store.root(), 6, &GumbelQuantizerConfig::default());
        let out = quantizer.forward_t(
            &Tensor::randn([2, 5, 6], (Kind::Float, Device::Cpu)),
            2.0,
            true,
        );
        assert_eq!(out.codes.size(), vec![2, 5, 256]);
        assert_eq!(out.indices.size(), vec![2, 5, 2]);
        let perplexity = out.perplexity.double_value(&[]);
        assert!((2.0..=640.0).contains(&perplexity), "{perplexity}");
        let want = (640.0 - perplexity) / 640.0;
        assert!((out.diversity_loss.double_value(&[]) - want).abs() < 1e-6);
    }

    #[test]
    fn straight_through_value_is_one_hot_and_gradient_is_the_softs() {
        tch::manual_seed(4);
        let options = (Kind::Float, Device::Cpu);
        let logits = Tensor::randn([4, 2, 5], options).set_requires_grad(true);
        let noise = -Tensor::empty([4, 2, 5], options).exponential_(1.0).log();
        let weights = Tensor::randn([4, 2, 5], options);
        let hard = hard_gumbel_softmax(&logits, &noise, 0.7);
        let want_hard = (&logits + &noise)
            .argmax(-1, false)
            .one_hot(5)
            .to_kind(Kind::Float);
        assert!(hard.detach().equal(&want_hard));
        (&hard * &weights).sum(Kind::Float).backward();
        let straight_through = logits.grad().copy();
        let _ = logits.grad().zero_();
        let soft = ((&logits + &noise) / 0.7).softmax(-1, Kind::Float);
        (&soft * &weights).sum(Kind::Float).backward();
        let manual = logits.grad();
        assert!(straight_through.abs().sum(Kind::Float).double_value(&[]) > 1e-3);
        assert!(straight_through.allclose(&manual, 1e-6, 1e-7, false));
    }

    #[test]
    fn quantized_frames_are_codebook_rows_with_gradients_through_the_logits() {
        tch::manual_seed(6);
        let store = nn::VarStore::new(Device::Cpu);
        let config = GumbelQuantizerConfig {
            groups: 2,
            entries: 4,
            code_dim: 6,
        };
        let quantizer = GumbelQuantizer::new(&store.root(), 3, &config);
        let frames = Tensor::randn([5, 3], (Kind::Float, Device::Cpu));
        let noise = -Tensor::empty([5, 2, 4], (Kind::Float, Device::Cpu))
            .exponential_(1.0)
            .log();
        for (noise, temperature) in [(Some(&noise), 0.5), (None, 1.0)] {
            let out = quantizer.quantize(&frames, noise, temperature);
            assert_eq!(out.codes.size(), vec![5, 6]);
            // Exactly entry indices[n, g] of codebook g, for every frame and group.
            for n in 0..5 {
                for g in 0..2 {
                    let index = out.indices.int64_value(&[n, g]);
                    let row = quantizer.codebook.get(g * 4 + index);
                    assert!(out.codes.get(n).narrow(0, g * 3, 3).equal(&row));
                }
            }
            // Evaluation picks the argmax of the noiseless logits.
            if noise.is_none() {
                let logits = quantizer.to_logits.forward(&frames).view([5, 2, 4]);
                assert!(out.indices.equal(&logits.argmax(-1, false)));
            }
        }
        // Training: the loss reaches the logits' weights through the soft probabilities.
        let out = quantizer.quantize(&frames, Some(&noise), 0.5);
        out.codes.square().sum(Kind::Float).backward();
        let weight_grad = quantizer
            .to_logits
            .ws
            .grad()
            .abs()
            .sum(Kind::Float)
            .double_value(&[]);
        assert!(weight_grad > 0.0, "{weight_grad}");
    }
}
