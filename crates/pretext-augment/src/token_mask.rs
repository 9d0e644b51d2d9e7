//! BERT's masked-language-model corruption (Devlin et al., 2019, §3.1 and appendix A.1):
//! choose 15% of the token positions at random — never special tokens such as [CLS], [SEP] or
//! padding — and ask the model to predict the original token there. Of the chosen positions,
//! 80% are replaced by [MASK], 10% by a random token and 10% are left unchanged, so that the
//! model cannot learn that only [MASK] positions matter. The loss counts chosen positions
//! only; every other label is [`IGNORED_LABEL`].

use rand::Rng;
use serde::{Deserialize, Serialize};

/// The label of positions the loss must ignore (PyTorch's `ignore_index` default).
pub const IGNORED_LABEL: i64 = -100;

/// The masking rates (BERT's defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskingConfig {
    /// Probability that a non-special position is chosen for prediction.
    pub mask_probability: f64,
    /// Of the chosen positions, the share replaced by [MASK].
    pub mask_token_share: f64,
    /// Of the chosen positions, the share replaced by a random (non-special) token; the rest
    /// keep their token.
    pub random_token_share: f64,
}

impl Default for MaskingConfig {
    fn default() -> Self {
        MaskingConfig {
            mask_probability: 0.15,
            mask_token_share: 0.8,
            random_token_share: 0.1,
        }
    }
}

/// A masked sequence: what the model reads and what it must predict.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskedTokens {
    pub inputs: Vec<i64>,
    /// The original token at chosen positions, [`IGNORED_LABEL`] elsewhere.
    pub labels: Vec<i64>,
}

/// Masks `ids`. `is_special(id)` says which ids are never chosen (and never used as random
/// replacements); `vocab_size` bounds the random replacements.
pub fn mask_tokens<R: Rng + ?Sized>(
    ids: &[u32],
    is_special: impl Fn(u32) -> bool,
    mask_id: u32,
    vocab_size: u32,
    config: &MaskingConfig,
    rng: &mut R,
) -> MaskedTokens {
    let mut inputs = Vec::with_capacity(ids.len());
    let mut labels = Vec::with_capacity(ids.len());
    for &id in ids {
        // Every position draws its coins, chosen or not, so one position's fate does not
        // shift the random stream of the next.
        let choose: f64 = rng.random();
        let action: f64 = rng.random();
        let replacement = rng.random_range(0..vocab_size.max(1));
        if is_special(id) || choose >= config.mask_probability {
            inputs.push(i64::from(id));
            labels.push(IGNORED_LABEL);
            continue;
        }
        labels.push(i64::from(id));
        let new_id = if action < config.mask_token_share {
            mask_id
        } else if action < config.mask_token_share + config.random_token_share {
            random_ordinary_token(replacement, vocab_size, &is_special, rng)
        } else {
            id
        };
        inputs.push(i64::from(new_id));
    }
    MaskedTokens { inputs, labels }
}

/// `first` if it is not special, else uniform redraws until one is (a vocabulary of only
/// special tokens gives `first`).
fn random_ordinary_token<R: Rng + ?Sized>(
    first: u32,
    vocab_size: u32,
    is_special: &impl Fn(u32) -> bool,
    rng: &mut R,
) -> u32 {
    let mut candidate = first;
    for _ in 0..64 {
        if !is_special(candidate) {
            return candidate;
        }
        candidate = rng.random_range(0..vocab_size.max(1));
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MASK: u32 = 4;
    const VOCAB: u32 = 1000;
    /// 0..5 are special ([PAD] [UNK] [CLS] [SEP] [MASK]).
    fn special(id: u32) -> bool {
        id < 5
    }

    #[test]
    fn proportions_match_bert_on_a_large_sample() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        // 2000 sequences of [CLS] 100 ordinary tokens [SEP] [PAD]×20.
        let mut sequence = vec![2u32];
        sequence.extend((0..100).map(|i| 5 + (i * 7) % 900));
        sequence.push(3);
        sequence.extend(std::iter::repeat_n(0, 20));
        let (mut ordinary, mut chosen, mut masked, mut random, mut kept) = (0, 0, 0, 0, 0);
        for _ in 0..2000 {
            let out = mask_tokens(
                &sequence,
                special,
                MASK,
                VOCAB,
                &MaskingConfig::default(),
                &mut rng,
            );
            for ((&id, &input), &label) in sequence.iter().zip(&out.inputs).zip(&out.labels) {
                if special(id) {
                    assert_eq!(label, IGNORED_LABEL, "special token {id} was chosen");
                    assert_eq!(input, i64::from(id), "special token {id} was changed");
                    continue;
                }
                ordinary += 1;
                if label == IGNORED_LABEL {
                    assert_eq!(input, i64::from(id), "an unchosen token changed");
                    continue;
                }
                assert_eq!(label, i64::from(id), "the label is the original token");
                chosen += 1;
                if input == i64::from(MASK) {
                    masked += 1;
                } else if input == i64::from(id) {
                    kept += 1;
                } else {
                    assert!(
                        !special(input as u32),
                        "random replacement {input} is special"
                    );
                    random += 1;
                }
            }
        }
        // 200 000 ordinary positions: the standard error of a 15% rate is 0.08 points.
        let rate = chosen as f64 / ordinary as f64;
        assert!((rate - 0.15).abs() < 0.004, "chosen {rate}");
        let share = |n: i32| n as f64 / chosen as f64;
        assert!(
            (share(masked) - 0.8).abs() < 0.01,
            "[MASK] {}",
            share(masked)
        );
        // A random draw equal to the original token counts as kept: +0.1% expected.
        assert!(
            (share(random) - 0.1).abs() < 0.01,
            "random {}",
            share(random)
        );
        assert!((share(kept) - 0.1).abs() < 0.01, "kept {}", share(kept));
    }

    #[test]
    fn same_rng_state_same_masking() {
        let ids: Vec<u32> = (5..200).collect();
        let run = || {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
            mask_tokens(
                &ids,
                special,
                MASK,
                VOCAB,
                &MaskingConfig::default(),
                &mut rng,
            )
        };
        assert_eq!(run(), run());
    }
}
