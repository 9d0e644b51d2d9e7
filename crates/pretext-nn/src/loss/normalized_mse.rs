//! BYOL's regression loss (Grill et al., 2020, eq. 2): the mean squared error between the
//! L2-normalized prediction and target, `‖p̄ − z̄‖² = 2 − 2·cos(p, z)`, averaged over the batch.

use tch::Tensor;

use super::l2_normalize;
use crate::precision::{fp32, full_precision};

/// `2 − 2·cos(prediction, target)` per row of `[N, D]`, averaged. The target is not detached
/// here: callers pass a target network's output, computed without gradients.
///
/// Computed in float32 whatever autocast the caller runs under.
pub fn normalized_mse(prediction: &Tensor, target: &Tensor) -> Tensor {
    full_precision(|| normalized_mse_fp32(&fp32(prediction), &fp32(target)))
}

fn normalized_mse_fp32(prediction: &Tensor, target: &Tensor) -> Tensor {
    let cosine = (l2_normalize(prediction) * l2_normalize(target)).sum_dim_intlist(
        &[1i64][..],
        false,
        prediction.kind(),
    );
    (cosine * -2.0 + 2.0).mean(prediction.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn normalized_mse_matches_hand_computed_values() {
        // Row 0: same direction (loss 0). Row 1: orthogonal (loss 2). Row 2: opposite (4).
        let p = Tensor::from_slice2(&[[2.0f64, 0.0], [1.0, 0.0], [0.0, 3.0]]);
        let z = Tensor::from_slice2(&[[5.0f64, 0.0], [0.0, 7.0], [0.0, -1.0]]);
        let got = normalized_mse(&p, &z).double_value(&[]);
        assert!((got - 2.0).abs() < 1e-9, "(0 + 2 + 4) / 3 = 2, got {got}");
    }

    #[test]
    fn normalized_mse_matches_brute_force_on_random_rows() {
        tch::manual_seed(5);
        let p = Tensor::randn([6, 4], (Kind::Double, Device::Cpu));
        let z = Tensor::randn([6, 4], (Kind::Double, Device::Cpu));
        let mut want = 0.0;
        for i in 0..6 {
            let a = Vec::<f64>::try_from(p.get(i)).unwrap();
            let b = Vec::<f64>::try_from(z.get(i)).unwrap();
            let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
            want += a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x / na - y / nb).powi(2))
                .sum::<f64>();
        }
        want /= 6.0;
        let got = normalized_mse(&p, &z).double_value(&[]);
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }
}
