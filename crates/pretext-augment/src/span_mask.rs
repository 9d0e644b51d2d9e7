//! wav2vec 2.0's span masking (Baevski et al., "wav2vec 2.0: A Framework for Self-Supervised
//! Learning of Speech Representations", NeurIPS 2020, §3.1 "Masking"): per utterance of `T`
//! encoder frames, sample `round(p·T)` distinct starting frames among `0..=T−M` and mask the
//! `M` frames from each (spans may overlap and merge). Paper: p = 0.065, M = 10, which masks
//! about 49% of the frames ([`SpanMaskConfig`]).
//!
//! Drawn on the host from a caller-seeded rng, like every other augmentation: the waveform
//! recipe draws each clip's mask from its view stream, and the network swaps the masked
//! frames for its mask embedding.

use rand::Rng;
use serde::{Deserialize, Serialize};

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

impl SpanMaskConfig {
    /// How many spans an utterance of `frames` frames gets: `round(p·T)`, at least
    /// `min_spans`, at most the `T − span + 1` possible starts (0 when `span` is 0 or longer
    /// than `T`).
    pub fn span_count(&self, frames: usize) -> usize {
        if self.span == 0 || self.span > frames {
            return 0;
        }
        let possible_starts = frames - self.span + 1;
        let drawn = (self.start_probability.max(0.0) * frames as f64).round() as usize;
        drawn.max(self.min_spans).min(possible_starts)
    }

    /// [`Self::span_count`] distinct span starts in `0..=frames − span`, drawn uniformly
    /// without replacement, in increasing order.
    pub fn sample_starts<R: Rng + ?Sized>(&self, frames: usize, rng: &mut R) -> Vec<usize> {
        let count = self.span_count(frames);
        if count == 0 {
            return Vec::new();
        }
        let possible_starts = frames - self.span + 1;
        let mut starts = rand::seq::index::sample(rng, possible_starts, count).into_vec();
        starts.sort_unstable();
        starts
    }

    /// The span mask of one utterance of `frames` frames: `true` where the frame is replaced
    /// by the mask embedding (and where the contrastive loss is computed). It has
    /// [`Self::span_count`] distinct starts ([`Self::sample_starts`]) and masks `span`
    /// frames from each; overlapping spans merge, so every masked run is at least `span`
    /// long.
    ///
    /// With the paper's p = 0.065 and M = 10, the expected masked share is 0.4851 for T = 50
    /// frames (1 s at 20 ms: 3 spans) and 0.5049 for T = 150 (10 spans); the paper quotes
    /// "about 49%". Utterances shorter than `span` are left unmasked.
    pub fn mask<R: Rng + ?Sized>(&self, frames: usize, rng: &mut R) -> Vec<bool> {
        let starts = self.sample_starts(frames, rng);
        span_mask_from_starts(frames, self.span, &starts)
    }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn config(start_probability: f64, span: usize, min_spans: usize) -> SpanMaskConfig {
        SpanMaskConfig {
            start_probability,
            span,
            min_spans,
        }
    }

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
        assert_eq!(config(0.065, 10, 1).span_count(50), 3); // round(3.25)
        assert_eq!(config(0.065, 10, 1).span_count(150), 10); // round(9.75)
        assert_eq!(config(0.0, 10, 2).span_count(50), 2); // at least min_spans
        assert_eq!(config(0.9, 10, 1).span_count(12), 3); // at most T − M + 1 starts
        assert_eq!(config(0.5, 10, 2).span_count(9), 0); // no span fits
        assert_eq!(config(0.5, 0, 2).span_count(9), 0);
    }

    #[test]
    fn sampled_starts_are_distinct_in_range_and_runs_at_least_a_span() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for &(frames, p, span, min_spans) in
            &[(50, 0.065, 10, 1), (30, 0.3, 4, 2), (12, 0.9, 10, 1)]
        {
            let masking = config(p, span, min_spans);
            for _ in 0..200 {
                let starts = masking.sample_starts(frames, &mut rng);
                assert_eq!(starts.len(), masking.span_count(frames));
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
        assert_eq!(
            config(0.9, 10, 1).sample_starts(12, &mut rng),
            vec![0, 1, 2]
        );
        assert_eq!(config(0.5, 10, 2).mask(9, &mut rng), vec![false; 9]);
    }

    /// The exact expected masked share for `k` starts drawn without replacement from the
    /// `N = T − M + 1` possible ones: frame f is masked unless none of the `w_f` starts that
    /// cover it is drawn, which happens with probability C(N − w_f, k) / C(N, k).
    pub(crate) fn expected_masked_share(frames: usize, span: usize, spans: usize) -> f64 {
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
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for &(frames, utterances, want) in &[(50, 4000, 0.485_065_7), (150, 2000, 0.504_891_8)] {
            let masking = config(0.065, 10, 1);
            let exact = expected_masked_share(frames, 10, masking.span_count(frames));
            assert!((exact - want).abs() < 1e-6, "T = {frames}: exact {exact}");
            let masked: usize = (0..utterances)
                .map(|_| {
                    masking
                        .mask(frames, &mut rng)
                        .iter()
                        .filter(|&&m| m)
                        .count()
                })
                .sum();
            let share = masked as f64 / (utterances * frames) as f64;
            assert!(
                (share - exact).abs() < 0.01,
                "T = {frames}: {share} vs {exact}"
            );
        }
    }

    #[test]
    fn span_mask_config_defaults_are_the_papers() {
        let config: SpanMaskConfig = toml::from_str("").unwrap();
        assert_eq!((config.start_probability, config.span), (0.065, 10));
        assert!(toml::from_str::<SpanMaskConfig>("ratio = 0.5").is_err());
    }
}
