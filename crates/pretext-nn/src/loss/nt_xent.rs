//! NT-Xent, the normalized temperature-scaled cross-entropy of SimCLR (Chen et al., 2020,
//! eq. 1): for each of the 2N views, the other view of the same image is the positive and
//! the 2(N-1) views of other images are the negatives:
//!
//! `l(i, j) = -log( exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ) )`, averaged over all
//! 2N ordered positive pairs, with `sim` the cosine similarity.

use tch::{Kind, Tensor};

use super::l2_normalize;

/// NT-Xent of two batches of projections `z1`, `z2`: `[N, D]` each, row `i` of both from
/// the same image. Returns a scalar.
pub fn nt_xent(z1: &Tensor, z2: &Tensor, temperature: f64) -> Tensor {
    let n = z1.size()[0];
    let z = Tensor::cat(&[z1, z2], 0); // [2N, D]
    let z = l2_normalize(&z);
    let logits = z.matmul(&z.transpose(0, 1)) / temperature; // [2N, 2N]
    let self_mask = Tensor::eye(2 * n, (Kind::Bool, z.device()));
    let logits = logits.masked_fill(&self_mask, f64::NEG_INFINITY);
    // The positive of view i is view i + N (mod 2N).
    let targets = Tensor::arange(2 * n, (Kind::Int64, z.device())).remainder(n)
        + Tensor::cat(
            &[
                Tensor::full([n], n, (Kind::Int64, z.device())),
                Tensor::zeros([n], (Kind::Int64, z.device())),
            ],
            0,
        );
    logits.log_softmax(-1, logits.kind()).nll_loss(&targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::test_rows as rows;

    /// The loss written out with loops over plain floats.
    fn brute_force(z1: &[Vec<f64>], z2: &[Vec<f64>], temperature: f64) -> f64 {
        let views: Vec<Vec<f64>> = z1.iter().chain(z2.iter()).cloned().collect();
        let normalized: Vec<Vec<f64>> = views
            .iter()
            .map(|v| {
                let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect();
        let cosine = |a: &Vec<f64>, b: &Vec<f64>| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let n = z1.len();
        let mut total = 0.0;
        for i in 0..2 * n {
            let positive = (i + n) % (2 * n);
            let mut denominator = 0.0;
            for k in 0..2 * n {
                if k != i {
                    denominator += (cosine(&normalized[i], &normalized[k]) / temperature).exp();
                }
            }
            let numerator = (cosine(&normalized[i], &normalized[positive]) / temperature).exp();
            total += -(numerator / denominator).ln();
        }
        total / (2 * n) as f64
    }

    #[test]
    fn nt_xent_matches_brute_force() {
        tch::manual_seed(7);
        for &(n, d, temperature) in &[(2, 3, 0.5), (5, 8, 0.1), (16, 4, 1.0)] {
            let z1 = Tensor::randn([n, d], (Kind::Double, tch::Device::Cpu));
            let z2 = Tensor::randn([n, d], (Kind::Double, tch::Device::Cpu));
            let got = nt_xent(&z1, &z2, temperature).double_value(&[]);
            let want = brute_force(&rows(&z1), &rows(&z2), temperature);
            assert!(
                (got - want).abs() < 1e-9,
                "n={n} d={d} τ={temperature}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn nt_xent_is_low_for_identical_views_and_high_for_swapped() {
        tch::manual_seed(1);
        let z = Tensor::randn([32, 64], (Kind::Float, tch::Device::Cpu));
        let matched = nt_xent(&z, &z, 0.1).double_value(&[]);
        let shuffled = nt_xent(&z, &z.roll([1], [0]), 0.1).double_value(&[]);
        assert!(matched < 0.5, "identical views should be easy: {matched}");
        assert!(
            shuffled > 3.0,
            "mismatched pairs should be hard: {shuffled}"
        );
    }

    #[test]
    fn nt_xent_gradient_is_finite_for_a_zero_vector() {
        let z1 = Tensor::zeros([4, 3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let z2 = Tensor::ones([4, 3], (Kind::Float, tch::Device::Cpu));
        let loss = nt_xent(&z1, &z2, 0.5);
        loss.backward();
        assert!(loss.double_value(&[]).is_finite());
        assert!(bool::try_from(z1.grad().isfinite().all()).unwrap());
    }
}
