//! The building blocks of wav2vec 2.0 (Baevski et al., "wav2vec 2.0: A Framework for
//! Self-Supervised Learning of Speech Representations", NeurIPS 2020):
//!
//! - [`span_mask`] (§3.1, "Masking"): per utterance, sample `round(p·T)` distinct starting
//!   frames among `0..=T−M` and mask the `M` frames from each (spans may overlap). Paper:
//!   p = 0.065, M = 10, which masks about 49% of the frames ([`SpanMaskConfig`]).
//! - [`GumbelQuantizer`] (§2, "Quantization module"): G codebooks of V entries each; a
//!   linear map turns a frame into G·V logits, a hard Gumbel-softmax (straight-through)
//!   picks one entry per codebook, and the G entries are concatenated. Paper: G = 2,
//!   V = 320, τ annealed from 2 to 0.5 by a factor 0.999995 per update
//!   ([`gumbel_temperature`]).
//! - The diversity loss (§3.2, eq. 4): `L_d = (GV − Σ_g exp(H(p̄_g))) / GV`, with p̄_g the
//!   batch-averaged softmax over codebook g's entries (returned by the quantizer).
//! - The contrastive loss (§3.2, eq. 3): for each masked frame t, with context c_t and
//!   quantized target q_t, `L_m = −log( exp(sim(c_t, q_t)/κ) / Σ_{q̃ ∈ Q_t} exp(sim(c_t, q̃)/κ) )`,
//!   where Q_t is q_t plus K distractors drawn from the other masked frames of the same
//!   utterance and sim is the cosine similarity. Paper: K = 100, κ = 0.1
//!   ([`contrastive_loss`], [`contrastive_loss_with_negatives`]).
//!
//! Randomness (mask starts, Gumbel noise, distractors) comes from libtorch's generator, as
//! in [`crate::patches::random_masking`]: seed it with `tch::manual_seed` (this crate does
//! not depend on `rand`).

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::loss::l2_normalize;

// ---------------------------------------------------------------------------------------
// Span masking

/// How wav2vec 2.0 masks the feature-encoder frames before the context network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpanMaskConfig {
    /// Share `p` of the frames drawn as span starts (paper: 0.065).
    pub start_probability: f64,
    /// Frames masked from each start, `M` (paper: 10).
    pub span: usize,
    /// Fewest spans per utterance, whatever `p·T` says (fairseq: 2, so that every utterance
    /// has distractors for the contrastive loss).
    pub min_spans: usize,
}

impl Default for SpanMaskConfig {
    fn default() -> Self {
        SpanMaskConfig {
            start_probability: 0.065,
            span: 10,
            min_spans: 2,
        }
    }
}

/// How many spans an utterance of `frames` frames gets: `round(p·T)`, at least `min_spans`,
/// at most the `T − span + 1` possible starts (0 when `span` is 0 or longer than `T`).
pub fn span_count(frames: usize, start_probability: f64, span: usize, min_spans: usize) -> usize {
    if span == 0 || span > frames {
        return 0;
    }
    let possible_starts = frames - span + 1;
    let drawn = (start_probability.max(0.0) * frames as f64).round() as usize;
    drawn.max(min_spans).min(possible_starts)
}

/// [`span_count`] distinct span starts in `0..=frames − span`, drawn uniformly without
/// replacement (a prefix of a `randperm`), in increasing order.
pub fn sample_span_starts(
    frames: usize,
    start_probability: f64,
    span: usize,
    min_spans: usize,
) -> Vec<usize> {
    let count = span_count(frames, start_probability, span, min_spans);
    if count == 0 {
        return Vec::new();
    }
    let possible_starts = (frames - span + 1) as i64;
    let permutation = Tensor::randperm(possible_starts, (Kind::Int64, Device::Cpu));
    let mut starts: Vec<usize> = Vec::<i64>::try_from(permutation.narrow(0, 0, count as i64))
        .unwrap_or_default()
        .into_iter()
        .map(|start| start as usize)
        .collect();
    starts.sort_unstable();
    starts
}

/// The mask of one utterance of `frames` frames: the `span` frames from each start are
/// `true` (spans running past the end are cut there).
pub fn span_mask_from_starts(frames: usize, span: usize, starts: &[usize]) -> Vec<bool> {
    let mut mask = vec![false; frames];
    for &start in starts {
        let end = start.saturating_add(span).min(frames);
        for masked in mask.iter_mut().take(end).skip(start) {
            *masked = true;
        }
    }
    mask
}

/// wav2vec 2.0's span mask for `batch` utterances of `frames` frames each: `mask[b][t]` is
/// `true` where frame `t` of utterance `b` is replaced by the mask embedding (and where the
/// contrastive loss is computed). Every utterance gets [`span_count`] distinct starts (see
/// [`sample_span_starts`]) and masks `span` frames from each; overlapping spans merge, so
/// every masked run is at least `span` long.
///
/// With the paper's p = 0.065 and M = 10, the expected masked share is 0.4851 for T = 50
/// frames (1 s at 20 ms: 3 spans) and 0.5049 for T = 150 (10 spans); the paper quotes
/// "about 49%". Utterances shorter than `span` are left unmasked.
pub fn span_mask(
    batch: usize,
    frames: usize,
    start_probability: f64,
    span: usize,
    min_spans: usize,
) -> Vec<Vec<bool>> {
    (0..batch)
        .map(|_| {
            let starts = sample_span_starts(frames, start_probability, span, min_spans);
            span_mask_from_starts(frames, span, &starts)
        })
        .collect()
}

/// A mask from [`span_mask`] as a `[B, T]` bool tensor (all utterances must have the same
/// length), e.g. to swap masked frames for the mask embedding with `where_self`.
pub fn mask_tensor(mask: &[Vec<bool>], device: Device) -> Tensor {
    let frames = mask.first().map_or(0, Vec::len) as i64;
    let flat: Vec<bool> = mask.iter().flatten().copied().collect();
    Tensor::from_slice(&flat)
        .view([mask.len() as i64, frames])
        .to_device(device)
}

// ---------------------------------------------------------------------------------------
// Gumbel product quantizer

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

// ---------------------------------------------------------------------------------------
// Contrastive loss

/// One masked frame's prediction task: find the target of frame `frame` of utterance
/// `utterance` among it and the targets of the `distractors` frames (same utterance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskedFrame {
    /// Utterance index `b`.
    pub utterance: usize,
    /// Frame index `t` (a masked frame).
    pub frame: usize,
    /// Frames of the same utterance whose targets serve as distractors.
    pub distractors: Vec<usize>,
}

/// For every masked frame of every utterance, `num_negatives` distractor frames drawn
/// uniformly with replacement from the *other* masked frames of the same utterance (as
/// fairseq's `sample_negatives`: draw in `0..n−1`, shift draws at or past the frame's own
/// position up by one). A masked frame that is its utterance's only masked frame has no
/// possible distractor and is skipped (fairseq would fail there; its masks always have at
/// least two spans). Frames come in utterance order, then frame order.
pub fn sample_negatives(mask: &[Vec<bool>], num_negatives: usize) -> Vec<MaskedFrame> {
    let mut tasks = Vec::new();
    for (utterance, frames) in mask.iter().enumerate() {
        let masked: Vec<usize> = (0..frames.len()).filter(|&t| frames[t]).collect();
        let count = masked.len();
        if count < 2 {
            continue;
        }
        let draws = Tensor::randint(
            count as i64 - 1,
            [(count * num_negatives) as i64],
            (Kind::Int64, Device::Cpu),
        );
        let draws = Vec::<i64>::try_from(draws).unwrap_or_default();
        for (position, &frame) in masked.iter().enumerate() {
            let distractors = draws[position * num_negatives..(position + 1) * num_negatives]
                .iter()
                .map(|&draw| {
                    let draw = draw as usize;
                    masked[if draw >= position { draw + 1 } else { draw }]
                })
                .collect();
            tasks.push(MaskedFrame {
                utterance,
                frame,
                distractors,
            });
        }
    }
    tasks
}

/// wav2vec 2.0's contrastive loss (eq. 3) on context vectors `[B, T, D]` and quantized
/// targets `[B, T, D]`, for the given prediction tasks (every task must have the same number
/// K of distractors). Per task, the logits are the cosine similarity of the context to the
/// true target, then to each distractor's target, divided by `temperature` κ; a distractor
/// whose target equals the true target exactly (the same code) gets logit −∞, as in fairseq.
/// The loss is the cross-entropy with class 0, averaged over the tasks.
///
/// Returns `(loss, accuracy)`, accuracy being the share of tasks whose true target scored
/// strictly above every distractor. With no task at all, the loss is a zero attached to
/// `context`'s graph and the accuracy 0.
pub fn contrastive_loss_with_negatives(
    context: &Tensor,
    targets: &Tensor,
    tasks: &[MaskedFrame],
    temperature: f64,
) -> (Tensor, f64) {
    let (_, frames, width) = context.size3().expect("context is [B, T, D]");
    if tasks.is_empty() {
        return (context.sum(Kind::Float) * 0.0, 0.0);
    }
    let negatives = tasks[0].distractors.len() as i64;
    let device = context.device();
    let flat_index = |utterance: usize, frame: usize| utterance as i64 * frames + frame as i64;
    let anchors: Vec<i64> = tasks
        .iter()
        .map(|task| flat_index(task.utterance, task.frame))
        .collect();
    let distractors: Vec<i64> = tasks
        .iter()
        .flat_map(|task| {
            task.distractors
                .iter()
                .map(|&d| flat_index(task.utterance, d))
        })
        .collect();
    let anchors = Tensor::from_slice(&anchors).to_device(device); // [M]
    let distractors = Tensor::from_slice(&distractors).to_device(device); // [M·K]
    let context = context.reshape([-1, width]).to_kind(Kind::Float);
    let targets = targets.reshape([-1, width]).to_kind(Kind::Float);
    let queries = l2_normalize(&context.index_select(0, &anchors)); // [M, D]
    let positives = targets.index_select(0, &anchors); // [M, D]
    let negative_targets = targets
        .index_select(0, &distractors)
        .view([-1, negatives, width]); // [M, K, D]
    let duplicate = negative_targets
        .eq_tensor(&positives.unsqueeze(1))
        .all_dim(-1, false); // [M, K]
    let positive_logits =
        (&queries * l2_normalize(&positives)).sum_dim_intlist(&[1i64][..], true, Kind::Float); // [M, 1]
    let negative_logits = (queries.unsqueeze(1)
        * l2_normalize(&negative_targets.view([-1, width])).view([-1, negatives, width]))
    .sum_dim_intlist(&[-1i64][..], false, Kind::Float)
    .masked_fill(&duplicate, f64::NEG_INFINITY); // [M, K]
    let logits = Tensor::cat(&[&positive_logits, &negative_logits], 1) / temperature; // [M, 1+K]
    let accuracy = if negatives == 0 {
        1.0
    } else {
        positive_logits
            .squeeze_dim(1)
            .gt_tensor(&negative_logits.amax(&[1i64][..], false))
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[])
    };
    let classes = Tensor::zeros([tasks.len() as i64], (Kind::Int64, device));
    let loss = logits.log_softmax(-1, Kind::Float).nll_loss(&classes);
    (loss, accuracy)
}

/// [`contrastive_loss_with_negatives`] with `num_negatives` distractors per masked frame
/// drawn by [`sample_negatives`] from `mask` (paper: K = 100, κ = 0.1).
pub fn contrastive_loss(
    context: &Tensor,
    targets: &Tensor,
    mask: &[Vec<bool>],
    num_negatives: usize,
    temperature: f64,
) -> (Tensor, f64) {
    let tasks = sample_negatives(mask, num_negatives);
    contrastive_loss_with_negatives(context, targets, &tasks, temperature)
}

#[cfg(test)]
mod tests {
    use super::*;

    // -- span masking ---------------------------------------------------------------------

    /// The masked runs (start, length) of one utterance.
    fn runs(mask: &[bool]) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        let mut t = 0;
        while t < mask.len() {
            if mask[t] {
                let start = t;
                while t < mask.len() && mask[t] {
                    t += 1;
                }
                runs.push((start, t - start));
            } else {
                t += 1;
            }
        }
        runs
    }

    #[test]
    fn spans_from_hand_picked_starts() {
        // Starts 0 and 2 overlap into one run 0..5; 7 runs to 10.
        let mask = span_mask_from_starts(10, 3, &[0, 2, 7]);
        let expected: Vec<bool> = [1, 1, 1, 1, 1, 0, 0, 1, 1, 1]
            .iter()
            .map(|&m| m == 1)
            .collect();
        assert_eq!(mask, expected);
        assert_eq!(runs(&mask), vec![(0, 5), (7, 3)]);
        assert_eq!(span_mask_from_starts(4, 3, &[]), vec![false; 4]);
    }

    #[test]
    fn span_count_rounds_and_clamps() {
        assert_eq!(span_count(50, 0.065, 10, 1), 3); // round(3.25)
        assert_eq!(span_count(150, 0.065, 10, 1), 10); // round(9.75)
        assert_eq!(span_count(50, 0.0, 10, 2), 2); // at least min_spans
        assert_eq!(span_count(12, 0.9, 10, 1), 3); // at most T − M + 1 starts
        assert_eq!(span_count(9, 0.5, 10, 2), 0); // no span fits
        assert_eq!(span_count(9, 0.5, 0, 2), 0);
    }

    #[test]
    fn sampled_starts_are_distinct_in_range_and_runs_at_least_a_span() {
        tch::manual_seed(11);
        for &(frames, p, span, min_spans) in
            &[(50, 0.065, 10, 1), (30, 0.3, 4, 2), (12, 0.9, 10, 1)]
        {
            for _ in 0..200 {
                let starts = sample_span_starts(frames, p, span, min_spans);
                assert_eq!(starts.len(), span_count(frames, p, span, min_spans));
                assert!(
                    starts.windows(2).all(|pair| pair[0] < pair[1]),
                    "{starts:?}"
                );
                assert!(starts.iter().all(|&s| s + span <= frames));
                let mask = span_mask_from_starts(frames, span, &starts);
                assert!(runs(&mask).iter().all(|&(_, length)| length >= span));
            }
        }
        // Every possible start drawn: 12 − 10 + 1 = 3 starts cover the whole utterance.
        assert_eq!(sample_span_starts(12, 0.9, 10, 1), vec![0, 1, 2]);
        let masks = span_mask(3, 9, 0.5, 10, 2);
        assert_eq!(masks, vec![vec![false; 9]; 3]);
        assert_eq!(mask_tensor(&masks, Device::Cpu).size(), vec![3, 9]);
    }

    /// The exact expected masked share for `k` starts drawn without replacement from the
    /// `N = T − M + 1` possible ones: frame f is masked unless none of the `w_f` starts that
    /// cover it is drawn, which happens with probability C(N − w_f, k) / C(N, k).
    fn expected_masked_share(frames: usize, span: usize, spans: usize) -> f64 {
        let possible = frames - span + 1;
        let choose = |n: usize, k: usize| -> f64 {
            if k > n {
                return 0.0;
            }
            (0..k).map(|i| (n - i) as f64 / (k - i) as f64).product()
        };
        let total: f64 = (0..frames)
            .map(|f| {
                let first = f.saturating_sub(span - 1);
                let last = f.min(possible - 1);
                let covering = if last >= first { last - first + 1 } else { 0 };
                1.0 - choose(possible - covering, spans) / choose(possible, spans)
            })
            .sum();
        total / frames as f64
    }

    #[test]
    fn masked_share_matches_the_exact_expectation() {
        tch::manual_seed(5);
        for &(frames, utterances, want) in &[(50, 4000, 0.485_065_7), (150, 2000, 0.504_891_8)] {
            let spans = span_count(frames, 0.065, 10, 1);
            let exact = expected_masked_share(frames, 10, spans);
            assert!((exact - want).abs() < 1e-6, "T = {frames}: exact {exact}");
            let masks = span_mask(utterances, frames, 0.065, 10, 1);
            let masked = masks.iter().flatten().filter(|&&m| m).count();
            let share = masked as f64 / (utterances * frames) as f64;
            println!("T = {frames}: realized masked share {share:.4}, exact {exact:.4}");
            assert!(
                (share - exact).abs() < 0.01,
                "T = {frames}: {share} vs {exact}"
            );
        }
    }

    #[test]
    fn span_mask_config_defaults_are_the_papers() {
        let config: SpanMaskConfig = serde_json::from_str("{}").unwrap();
        assert_eq!((config.start_probability, config.span), (0.065, 10));
        assert!(serde_json::from_str::<SpanMaskConfig>(r#"{"ratio": 0.5}"#).is_err());
    }

    // -- quantizer ------------------------------------------------------------------------

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

    // -- contrastive loss -----------------------------------------------------------------

    fn cosine(a: &[f64], b: &[f64]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        dot / (norm(a) * norm(b))
    }

    /// Eq. 3 in plain f64, over `[B][T][D]` nested vectors.
    fn brute_force(
        context: &[Vec<Vec<f64>>],
        targets: &[Vec<Vec<f64>>],
        tasks: &[MaskedFrame],
        kappa: f64,
    ) -> (f64, f64) {
        let (mut loss, mut correct) = (0.0, 0.0);
        for task in tasks {
            let c = &context[task.utterance][task.frame];
            let q = &targets[task.utterance][task.frame];
            let positive = cosine(c, q) / kappa;
            let negatives: Vec<f64> = task
                .distractors
                .iter()
                .map(|&d| &targets[task.utterance][d])
                .filter(|candidate| *candidate != q)
                .map(|candidate| cosine(c, candidate) / kappa)
                .collect();
            let denominator: f64 = positive.exp() + negatives.iter().map(|l| l.exp()).sum::<f64>();
            loss += -(positive.exp() / denominator).ln();
            if negatives.iter().all(|&l| positive > l) {
                correct += 1.0;
            }
        }
        (loss / tasks.len() as f64, correct / tasks.len() as f64)
    }

    fn nested(t: &Tensor) -> Vec<Vec<Vec<f64>>> {
        let t = t.to_kind(Kind::Double);
        (0..t.size()[0])
            .map(|b| crate::loss::test_rows(&t.get(b)))
            .collect()
    }

    fn task(utterance: usize, frame: usize, distractors: &[usize]) -> MaskedFrame {
        MaskedFrame {
            utterance,
            frame,
            distractors: distractors.to_vec(),
        }
    }

    #[test]
    fn contrastive_loss_matches_brute_force() {
        tch::manual_seed(8);
        let context = Tensor::randn([2, 6, 4], (Kind::Float, Device::Cpu));
        let targets = Tensor::randn([2, 6, 4], (Kind::Float, Device::Cpu));
        // Utterance 0 masks frames 1..4, utterance 1 frames 0, 2, 5; repeats allowed.
        let tasks = vec![
            task(0, 1, &[2, 3, 3]),
            task(0, 2, &[1, 1, 3]),
            task(0, 3, &[2, 1, 2]),
            task(1, 0, &[2, 5, 5]),
            task(1, 2, &[0, 5, 0]),
            task(1, 5, &[2, 2, 0]),
        ];
        for kappa in [0.1, 0.5, 1.0] {
            let (loss, accuracy) =
                contrastive_loss_with_negatives(&context, &targets, &tasks, kappa);
            let (want, want_accuracy) =
                brute_force(&nested(&context), &nested(&targets), &tasks, kappa);
            let got = loss.double_value(&[]);
            assert!((got - want).abs() < 1e-5, "κ = {kappa}: {got} vs {want}");
            assert!(
                (accuracy - want_accuracy).abs() < 1e-6,
                "{accuracy} vs {want_accuracy}"
            );
        }
    }

    /// Context equal to the targets, targets one-hot (so distractors are orthogonal): the
    /// true logit is 1/κ, each of the K distractors 0, and the loss `ln(1 + K·e^(−1/κ))`.
    #[test]
    fn orthogonal_distractors_give_the_hand_formula() {
        let targets = Tensor::eye(4, (Kind::Float, Device::Cpu)).unsqueeze(0); // [1, 4, 4]
        let tasks: Vec<MaskedFrame> = (0..4)
            .map(|t| task(0, t, &[(t + 1) % 4, (t + 2) % 4, (t + 3) % 4]))
            .collect();
        let (loss, accuracy) = contrastive_loss_with_negatives(&targets, &targets, &tasks, 0.1);
        let want = (1.0 + 3.0 * (-10.0f64).exp()).ln();
        assert!((loss.double_value(&[]) - want).abs() < 1e-7);
        assert_eq!(accuracy, 1.0);
    }

    /// fairseq's rule: a distractor with exactly the true target's code is left out (−∞).
    #[test]
    fn distractor_equal_to_the_target_is_ignored() {
        let targets = Tensor::from_slice2(&[[1.0f32, 0.0], [1.0, 0.0], [0.0, 1.0]]).unsqueeze(0);
        let context = Tensor::from_slice2(&[[1.0f32, 1.0], [1.0, 0.0], [0.0, 1.0]]).unsqueeze(0);
        let with_copy = [task(0, 0, &[1, 2])];
        let without = [task(0, 0, &[2])];
        let (loss, accuracy) = contrastive_loss_with_negatives(&context, &targets, &with_copy, 0.5);
        let (want, _) = contrastive_loss_with_negatives(&context, &targets, &without, 0.5);
        assert!(loss.equal(&want));
        // cos = 1/√2 for both candidates: a tie, which is not counted as correct.
        assert_eq!(accuracy, 0.0);
    }

    #[test]
    fn negatives_come_from_other_masked_frames_of_the_same_utterance() {
        tch::manual_seed(9);
        let mask = span_mask(6, 40, 0.1, 3, 2);
        let tasks = sample_negatives(&mask, 20);
        let masked_total = mask.iter().flatten().filter(|&&m| m).count();
        assert_eq!(tasks.len(), masked_total);
        for task in &tasks {
            assert!(mask[task.utterance][task.frame]);
            assert_eq!(task.distractors.len(), 20);
            for &d in &task.distractors {
                assert_ne!(d, task.frame);
                assert!(mask[task.utterance][d], "frame {d} is not masked");
            }
        }
        // Over many draws, every other masked frame shows up.
        let mask = vec![vec![true, false, true, true, false]];
        let tasks = sample_negatives(&mask, 200);
        let mut seen: Vec<usize> = tasks[0].distractors.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, vec![2, 3]);
    }

    #[test]
    fn lone_masked_frame_is_skipped() {
        tch::manual_seed(10);
        let context = Tensor::randn([2, 4, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let targets = Tensor::randn([2, 4, 3], (Kind::Float, Device::Cpu));
        // Utterance 0 has one masked frame (skipped), utterance 1 two.
        let mask = vec![
            vec![false, true, false, false],
            vec![true, false, false, true],
        ];
        let tasks = sample_negatives(&mask, 5);
        assert_eq!(tasks.len(), 2);
        assert!(tasks.iter().all(|task| task.utterance == 1));
        let (loss, _) = contrastive_loss(&context, &targets, &mask, 5, 0.1);
        assert!(loss.double_value(&[]).is_finite());
        // Nothing to predict at all: a zero loss that still backpropagates.
        let lonely = vec![vec![false, true, false, false]; 2];
        let (loss, accuracy) = contrastive_loss(&context, &targets, &lonely, 5, 0.1);
        assert_eq!((loss.double_value(&[]), accuracy), (0.0, 0.0));
        loss.backward();
        assert!(context.grad().defined());
    }
}
