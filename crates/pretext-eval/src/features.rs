//! Frozen features of a set of samples, and the raw-input baselines: pixels for images,
//! TF-IDF for text, columns for tables, a pooled log-mel spectrogram for audio.

use std::collections::BTreeMap;

use pretext_data::logmel::{log_mel_features, LogMelConfig};
use pretext_data::{Samples, TokenSet};
use pretext_methods::samples_to_tensor;
use pretext_nn::Encoder;
use tch::{Device, Kind, Tensor};

/// Encodes every sample of `samples` (eval mode, no gradients) into `[N, D]` on the CPU
/// (`[0, D]` when there are none).
pub fn encode_samples(
    encoder: &dyn Encoder,
    samples: &Samples,
    device: Device,
    batch_size: usize,
) -> Tensor {
    let _guard = tch::no_grad_guard();
    let indices: Vec<usize> = (0..samples.len()).collect();
    let chunks: Vec<Tensor> = indices
        .chunks(batch_size.max(1))
        .map(|chunk| {
            encoder
                .encode(&samples_to_tensor(samples, chunk, device), false)
                .to_device(Device::Cpu)
        })
        .collect();
    if chunks.is_empty() {
        return Tensor::zeros([0, encoder.dim()], (Kind::Float, Device::Cpu));
    }
    Tensor::cat(&chunks, 0)
}

/// The raw-input baseline's name for a modality.
pub fn raw_features_name(samples: &Samples) -> &'static str {
    match samples {
        Samples::Images(_) => "raw pixels",
        Samples::Tokens(_) => "TF-IDF",
        Samples::Table(_) => "raw columns",
        Samples::Audio(_) => "log-mel",
    }
}

/// Raw-input features of the `labeled` samples and of `test`: the normalized pixels
/// `[N, C·H·W]`, the packed table rows `[N, 2W]` (standardized values, 0 where missing, then
/// the missing flags), TF-IDF over the tokens of the labeled samples (see
/// [`tfidf_features`]), or each clip's log-mel spectrogram (40 bands of 25 ms windows every
/// 10 ms) averaged over 10 equal spans of time, `[N, 400]`.
pub fn raw_features(labeled: &Samples, test: &Samples) -> (Tensor, Tensor) {
    match (labeled, test) {
        (Samples::Tokens(labeled), Samples::Tokens(test)) => tfidf_features(labeled, test),
        (Samples::Audio(labeled), Samples::Audio(test)) => {
            let config = LogMelConfig::default();
            let features = |set: &pretext_data::AudioSet| {
                let values = log_mel_features(set, &config);
                let width = (config.mel_bands * config.time_bins) as i64;
                Tensor::from_slice(&values).view([set.len as i64, width])
            };
            (features(labeled), features(test))
        }
        _ => {
            let all = |samples: &Samples| {
                let indices: Vec<usize> = (0..samples.len()).collect();
                samples_to_tensor(samples, &indices, Device::Cpu)
                    .to_kind(Kind::Float)
                    .flatten(1, -1)
            };
            (all(labeled), all(test))
        }
    }
}

/// TF-IDF features: one column per token id that occurs in the labeled sequences (special
/// tokens and padding excluded), term frequency × smoothed inverse document frequency
/// `ln((1 + n) / (1 + df)) + 1` fitted on the labeled sequences only (scikit-learn's
/// `TfidfVectorizer` defaults), rows L2-normalized.
pub fn tfidf_features(labeled: &TokenSet, test: &TokenSet) -> (Tensor, Tensor) {
    let ordinary = |set: &TokenSet, index: usize| -> Vec<u32> {
        set.sequence(index)
            .iter()
            .copied()
            .filter(|&id| id != set.pad_id && !set.is_special(id))
            .collect()
    };
    let mut document_frequency: BTreeMap<u32, f64> = BTreeMap::new();
    for index in 0..labeled.len {
        let mut seen = ordinary(labeled, index);
        seen.sort_unstable();
        seen.dedup();
        for id in seen {
            *document_frequency.entry(id).or_default() += 1.0;
        }
    }
    let columns: BTreeMap<u32, usize> = document_frequency
        .keys()
        .enumerate()
        .map(|(column, &id)| (id, column))
        .collect();
    let n = labeled.len as f64;
    let idf: Vec<f32> = document_frequency
        .values()
        .map(|&df| (((1.0 + n) / (1.0 + df)).ln() + 1.0) as f32)
        .collect();
    let matrix = |set: &TokenSet| {
        let width = columns.len().max(1);
        let mut values = vec![0f32; set.len * width];
        for index in 0..set.len {
            let row = &mut values[index * width..(index + 1) * width];
            for id in ordinary(set, index) {
                if let Some(&column) = columns.get(&id) {
                    row[column] += idf[column];
                }
            }
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
        Tensor::from_slice(&values).view([set.len as i64, width as i64])
    };
    (matrix(labeled), matrix(test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretext_data::Vocabulary;

    #[test]
    fn tfidf_matches_a_hand_computed_case() {
        let vocabulary = Vocabulary {
            size: 20,
            pad_id: 0,
            mask_id: None,
            special_ids: vec![0, 1],
        };
        // Labeled docs: [5 5 6], [6 7]; test: [5 9] (9 unseen in the labeled docs).
        let labeled = TokenSet::from_sequences(
            &[vec![1, 5, 5, 6], vec![1, 6, 7]],
            4,
            &vocabulary,
            None,
            vec![],
        );
        let test = TokenSet::from_sequences(&[vec![5, 9]], 4, &vocabulary, None, vec![]);
        let (a, b) = tfidf_features(&labeled, &test);
        assert_eq!(a.size(), vec![2, 3]);
        // idf: token 5 and 7 occur in 1 of 2 docs: ln(3/2)+1; token 6 in both: 1.
        let rare = (1.5f64).ln() + 1.0;
        let row0 = [2.0 * rare, 1.0, 0.0];
        let norm = (row0[0] * row0[0] + 1.0f64).sqrt();
        let got = Vec::<f64>::try_from(a.get(0).to_kind(Kind::Double)).unwrap();
        for (g, w) in got.iter().zip(row0.iter().map(|v| v / norm)) {
            assert!((g - w).abs() < 1e-5, "{got:?}");
        }
        let got = Vec::<f64>::try_from(b.get(0).to_kind(Kind::Double)).unwrap();
        assert!((got[0] - 1.0).abs() < 1e-6 && got[1] == 0.0 && got[2] == 0.0);
    }
}
