//! Health signals of a pretraining run, computed from the representations of a batch:
//!
//! - **embedding std**: the std of each dimension of the L2-normalized representations,
//!   averaged; a collapsed encoder (every image mapped to one point) gives 0, a healthy one
//!   about 1/√D (Jing et al., 2022; SimSiam's collapse check).
//! - **effective rank** (RankMe, Garrido et al., 2023): exp of the entropy of the normalized
//!   singular values; 1 = all representations on one line, D = all directions used.
//! - **alignment** (Wang & Isola, 2020): mean squared distance between the normalized
//!   representations of two views of the same image (lower = views agree).
//! - **uniformity**: log of the mean of exp(−2·squared distance) over all pairs of images
//!   (lower = spread over the sphere; 0 = collapsed).
//! - **projection spread**: embedding std of the head's outputs (what the loss compares)
//!   times √P: ≈ 1 when spread like random directions, 0 when every image gets the same
//!   projection (BYOL without a predictor collapses here while its representations still vary).
//! - **view agreement**: the fraction of images whose first view's nearest neighbour (cosine)
//!   among the batch's second views is its own second view. Near 1 from the start = the
//!   augmentations are too weak to make the task hard; near chance (1/B) late in training =
//!   too strong, or the model is not learning.

use pretext_methods::signal;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

fn normalized(representations: &Tensor) -> Tensor {
    let x = representations.to_kind(Kind::Float);
    &x / x.norm_scalaropt_dim(2, &[1i64][..], true).clamp_min(1e-12)
}

/// Mean over dimensions of the per-dimension std of L2-normalized rows of `[B, D]`.
pub fn embedding_std(representations: &Tensor) -> f64 {
    normalized(representations)
        .std_dim(&[0i64][..], true, false)
        .mean(Kind::Float)
        .double_value(&[])
}

/// RankMe effective rank of `[B, D]`.
pub fn effective_rank(representations: &Tensor) -> f64 {
    let (_, singular, _) = representations.to_kind(Kind::Float).svd(true, false);
    let total = singular.sum(Kind::Float).double_value(&[]);
    if total <= 0.0 {
        return 0.0;
    }
    let p = singular / total + 1e-7;
    (-(&p * p.log()).sum(Kind::Float)).exp().double_value(&[])
}

/// Mean ‖f(x) − f(y)‖² over positive pairs (rows of `a` and `b`), normalized rows.
pub fn alignment(a: &Tensor, b: &Tensor) -> f64 {
    (normalized(a) - normalized(b))
        .pow_tensor_scalar(2)
        .sum_dim_intlist(&[1i64][..], false, Kind::Float)
        .mean(Kind::Float)
        .double_value(&[])
}

/// log E exp(−2‖f(x) − f(y)‖²) over all pairs of distinct rows of `[B, D]`, normalized rows.
pub fn uniformity(representations: &Tensor) -> f64 {
    let squared = normalized(representations).pdist(2.0).pow_tensor_scalar(2);
    (squared * -2.0)
        .exp()
        .mean(Kind::Float)
        .log()
        .double_value(&[])
}

/// Fraction of rows of `a` whose most similar row of `b` (cosine) is the row with the same
/// index.
pub fn view_agreement(a: &Tensor, b: &Tensor) -> f64 {
    let similarity = normalized(a).matmul(&normalized(b).transpose(0, 1)); // [B, B]
    let own = Tensor::arange(similarity.size()[0], (Kind::Int64, similarity.device()));
    similarity
        .argmax(1, false)
        .eq_tensor(&own)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[])
}

/// The batch-level signals, as logged in metrics.jsonl (NaN where the views do not allow it).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchHealth {
    pub embedding_std: f64,
    pub effective_rank: f64,
    pub alignment: f64,
    pub uniformity: f64,
    pub view_agreement: f64,
    pub projection_spread: f64,
}

impl BatchHealth {
    /// Signals from the per-view representations of one step (at least one view) and the
    /// head's outputs for the first view, when the method has a head.
    pub fn measure(views: &[Tensor], projections: Option<&Tensor>) -> BatchHealth {
        let _guard = tch::no_grad_guard();
        let first = &views[0];
        BatchHealth {
            embedding_std: embedding_std(first),
            effective_rank: effective_rank(first),
            alignment: views
                .get(1)
                .map(|second| alignment(first, second))
                .unwrap_or(f64::NAN),
            uniformity: uniformity(first),
            view_agreement: views
                .get(1)
                .map(|second| view_agreement(first, second))
                .unwrap_or(f64::NAN),
            projection_spread: projections
                .map(|p| embedding_std(p) * (p.size()[1] as f64).sqrt())
                .unwrap_or(f64::NAN),
        }
    }

    /// The signals with their metrics.jsonl keys.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, f64)> {
        [
            (signal::EMBEDDING_STD.key, self.embedding_std),
            (signal::EFFECTIVE_RANK.key, self.effective_rank),
            (signal::ALIGNMENT.key, self.alignment),
            (signal::UNIFORMITY.key, self.uniformity),
            (signal::VIEW_AGREEMENT.key, self.view_agreement),
            (signal::PROJECTION_SPREAD.key, self.projection_spread),
        ]
        .into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn collapsed_representations_score_zero_std_and_rank_one() {
        let collapsed = Tensor::ones([64, 16], (Kind::Float, Device::Cpu));
        assert!(embedding_std(&collapsed) < 1e-6);
        assert!((effective_rank(&collapsed) - 1.0).abs() < 1e-3);
        assert!(
            uniformity(&collapsed).abs() < 1e-6,
            "all distances 0 → log 1 = 0"
        );
    }

    #[test]
    fn spread_representations_are_healthy() {
        tch::manual_seed(0);
        let spread = Tensor::randn([512, 16], (Kind::Float, Device::Cpu));
        let std = embedding_std(&spread);
        assert!((std - 0.25).abs() < 0.02, "≈ 1/√16: {std}");
        assert!(effective_rank(&spread) > 14.0);
        assert!(uniformity(&spread) < -3.0);
    }

    #[test]
    fn rank_of_orthogonal_directions_is_their_count() {
        // Rows e1, e2, e3 (and repeats): singular values equal → rank 3.
        let rows = Tensor::eye(3, (Kind::Float, Device::Cpu)).repeat([4, 1]);
        assert!((effective_rank(&rows) - 3.0).abs() < 1e-3);
    }

    #[test]
    fn alignment_of_identical_views_is_zero_and_of_opposite_views_four() {
        let a = Tensor::from_slice2(&[[1.0f32, 0.0], [0.0, 2.0]]);
        assert!(alignment(&a, &a).abs() < 1e-9);
        assert!((alignment(&a, &(-&a)) - 4.0).abs() < 1e-6);
    }
}

#[cfg(test)]
mod agreement_tests {
    use super::*;

    #[test]
    fn view_agreement_counts_rows_matched_to_their_own_pair() {
        let a = Tensor::from_slice2(&[[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0]]);
        assert!((view_agreement(&a, &a) - 1.0).abs() < 1e-9);
        // Swap rows 0 and 1 of the second view: only row 2 still finds its pair.
        let b = Tensor::from_slice2(&[[0.0f32, 1.0], [1.0, 0.0], [1.0, 1.0]]);
        assert!((view_agreement(&a, &b) - 1.0 / 3.0).abs() < 1e-6);
    }
}
