//! NT-Xent, the normalized temperature-scaled cross-entropy of SimCLR (Chen et al., 2020,
//! eq. 1): for each of the 2N views, the other view of the same image is the positive and
//! the 2(N-1) views of other images are the negatives:
//!
//! `l(i, j) = -log( exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ) )`, averaged over all
//! 2N ordered positive pairs, with `sim` the cosine similarity.

use tch::{Kind, Tensor};

use super::l2_normalize;
use crate::precision::{fp32, full_precision};

/// NT-Xent of two batches of projections `z1`, `z2`: `[N, D]` each, row `i` of both from
/// the same image. Returns a scalar.
///
/// Computed in float32 whatever autocast the caller runs under.
pub fn nt_xent(z1: &Tensor, z2: &Tensor, temperature: f64) -> Tensor {
    full_precision(|| nt_xent_fp32(&fp32(z1), &fp32(z2), temperature))
}

fn nt_xent_fp32(z1: &Tensor, z2: &Tensor, temperature: f64) -> Tensor {
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

/// NT-Xent over the whole batch of a data-parallel run, as this process's share.
/// `z1_all`, `z2_all` are every process's `[n, D]` rows of each view, in rank order
/// (`[W·n, D]`, gathered with their gradient); `rank` is this process. The rows are ordered
/// as one process would hold the whole batch (all first views, then all second views);
/// this process's 2n rows are the queries, every row of the batch the candidates. The mean
/// over the processes of what this returns is [`nt_xent`] of the whole batch.
pub fn nt_xent_share(
    z1_all: &Tensor,
    z2_all: &Tensor,
    rank: usize,
    rows_per_rank: i64,
    temperature: f64,
) -> Tensor {
    full_precision(|| {
        let (z1_all, z2_all) = (fp32(z1_all), fp32(z2_all));
        let (total, n, device) = (z1_all.size()[0], rows_per_rank, z1_all.device());
        let z = l2_normalize(&Tensor::cat(&[&z1_all, &z2_all], 0)); // [2N, D]
        let start = rank as i64 * n;
        // This process's rows among the 2N: its first views, then its second views.
        let own = Tensor::cat(
            &[
                Tensor::arange_start(start, start + n, (Kind::Int64, device)),
                Tensor::arange_start(total + start, total + start + n, (Kind::Int64, device)),
            ],
            0,
        );
        let logits = z.index_select(0, &own).matmul(&z.transpose(0, 1)) / temperature;
        let self_mask = Tensor::zeros([2 * n, 2 * total], (Kind::Bool, device)).scatter_value(
            1,
            &own.unsqueeze(1),
            1,
        );
        let logits = logits.masked_fill(&self_mask, f64::NEG_INFINITY);
        // The positive of row i is row i + N (mod 2N).
        let targets = (&own + total).remainder(2 * total);
        logits.log_softmax(-1, logits.kind()).nll_loss(&targets)
    })
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

    /// Two processes' shares, averaged, are the loss of the whole batch.
    #[test]
    fn the_mean_of_the_shares_is_the_loss_of_the_whole_batch() {
        tch::manual_seed(1);
        let z1 = Tensor::randn([6, 5], (Kind::Double, tch::Device::Cpu));
        let z2 = Tensor::randn([6, 5], (Kind::Double, tch::Device::Cpu));
        let whole = nt_xent(&z1, &z2, 0.5).double_value(&[]);
        let shares: f64 = (0..2)
            .map(|rank| nt_xent_share(&z1, &z2, rank, 3, 0.5).double_value(&[]))
            .sum();
        assert!(
            (shares / 2.0 - whole).abs() < 1e-12,
            "{} vs {whole}",
            shares / 2.0
        );
        let one = nt_xent_share(&z1, &z2, 0, 6, 0.5).double_value(&[]);
        assert!((one - whole).abs() < 1e-12);
    }
}
