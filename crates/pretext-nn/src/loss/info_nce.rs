//! InfoNCE with a bank of negatives, as in MoCo (He et al., 2020, eq. 1; MoCo v2 keeps it):
//!
//! `L_q = -log( exp(q·k₊/τ) / (exp(q·k₊/τ) + Σ_{k₋ ∈ queue} exp(q·k₋/τ)) )`
//!
//! for a query q, its positive key k₊ (the other view of the same image, from the momentum
//! encoder) and the K negative keys of the queue, all L2-normalized. The positive is logit 0
//! of a (1 + K)-way softmax; the loss is averaged over the batch.

use tch::{Kind, Tensor};

use super::l2_normalize;
use crate::precision::{fp32, full_precision};

/// InfoNCE of queries `[N, D]` against their positive keys `[N, D]` and the negatives
/// `[K, D]` (all rows normalized here). Returns `(loss, accuracy)`: the scalar loss and the
/// fraction of queries whose positive scored above every negative (a scalar tensor, left on
/// the device).
///
/// Computed in float32 whatever autocast the caller runs under.
pub fn info_nce(
    queries: &Tensor,
    positive_keys: &Tensor,
    negatives: &Tensor,
    temperature: f64,
) -> (Tensor, Tensor) {
    full_precision(|| {
        info_nce_fp32(
            &fp32(queries),
            &fp32(positive_keys),
            &fp32(negatives),
            temperature,
        )
    })
}

fn info_nce_fp32(
    queries: &Tensor,
    positive_keys: &Tensor,
    negatives: &Tensor,
    temperature: f64,
) -> (Tensor, Tensor) {
    let q = l2_normalize(queries);
    let k = l2_normalize(positive_keys);
    let negatives = l2_normalize(negatives);
    let positive_logits = (&q * &k).sum_dim_intlist(&[1i64][..], true, q.kind()); // [N, 1]
    let negative_logits = q.matmul(&negatives.transpose(0, 1)); // [N, K]
    let logits = Tensor::cat(&[positive_logits, negative_logits], 1) / temperature; // [N, 1+K]
    let targets = Tensor::zeros([q.size()[0]], (Kind::Int64, q.device()));
    let accuracy = logits
        .argmax(1, false)
        .eq(0)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .detach();
    (
        logits.log_softmax(-1, logits.kind()).nll_loss(&targets),
        accuracy,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::test_rows as rows;
    use tch::Device;

    fn unit(v: &[f64]) -> Vec<f64> {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter().map(|x| x / norm).collect()
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn brute_force(q: &[Vec<f64>], k: &[Vec<f64>], queue: &[Vec<f64>], tau: f64) -> f64 {
        let mut total = 0.0;
        for (q, k) in q.iter().zip(k) {
            let (q, k) = (unit(q), unit(k));
            let positive = (dot(&q, &k) / tau).exp();
            let negatives: f64 = queue.iter().map(|n| (dot(&q, &unit(n)) / tau).exp()).sum();
            total += -(positive / (positive + negatives)).ln();
        }
        total / q.len() as f64
    }

    #[test]
    fn info_nce_matches_brute_force() {
        tch::manual_seed(3);
        for &(n, k, d, tau) in &[(2, 3, 4, 0.2), (8, 16, 5, 0.07), (5, 1, 3, 1.0)] {
            let options = (Kind::Double, Device::Cpu);
            let q = Tensor::randn([n, d], options);
            let keys = Tensor::randn([n, d], options);
            let queue = Tensor::randn([k, d], options);
            let (loss, _) = info_nce(&q, &keys, &queue, tau);
            let want = brute_force(&rows(&q), &rows(&keys), &rows(&queue), tau);
            let got = loss.double_value(&[]);
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
    }

    #[test]
    fn accuracy_counts_queries_whose_positive_wins() {
        let q = Tensor::from_slice2(&[[1.0f32, 0.0], [0.0, 1.0]]);
        let keys = Tensor::from_slice2(&[[1.0f32, 0.0], [1.0, 0.0]]);
        let queue = Tensor::from_slice2(&[[0.0f32, 1.0]]);
        // Query 0's positive matches it exactly; query 1's negative matches it exactly.
        let (_, accuracy) = info_nce(&q, &keys, &queue, 0.2);
        assert!((accuracy.double_value(&[]) - 0.5).abs() < 1e-9);
    }
}
