//! Losses, each a pure function of tensors, tested against brute-force references.

mod dino;
mod info_nce;
mod normalized_mse;
mod nt_xent;

pub use dino::{dino_loss, DinoLossParts};
pub use info_nce::info_nce;
pub use normalized_mse::normalized_mse;
pub use nt_xent::{nt_xent, nt_xent_share};

use tch::Tensor;

/// Rows of `[N, D]` scaled to unit L2 norm (a zero row stays zero).
pub fn l2_normalize(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, &[1i64][..], true).clamp_min(1e-12)
}

/// The rows of a 2-D tensor as plain floats, for brute-force reference losses in tests.
#[cfg(test)]
pub(crate) fn test_rows(t: &Tensor) -> Vec<Vec<f64>> {
    let t = t.to_kind(tch::Kind::Double);
    (0..t.size()[0])
        .map(|i| Vec::<f64>::try_from(t.get(i)).unwrap())
        .collect()
}
