//! DINO's center (Caron et al., 2021, §3.1, eq. 4): an exponential moving average of the
//! teacher's batch-mean output, `c ← m · c + (1 − m) · mean_i g_θt(x_i)`, subtracted from the
//! teacher's logits before sharpening so that no single dimension can dominate. Untrained
//! state, saved with every checkpoint.

use tch::{nn, Kind, Tensor};

#[derive(Debug)]
pub struct Center {
    value: Tensor,
    momentum: f64,
}

impl Center {
    /// A zero center of `dim` entries registered as `center` under `path`.
    pub fn new(path: &nn::Path, dim: i64, momentum: f64) -> Center {
        let value = path.add(
            "center",
            Tensor::zeros([1, dim], (Kind::Float, path.device())),
            false,
        );
        Center { value, momentum }
    }

    /// The current center, `[1, K]`.
    pub fn value(&self) -> &Tensor {
        &self.value
    }

    /// Moves the center toward the mean over the rows of every tensor in `teacher_outputs`.
    /// `taken`: None when the step's update was taken; `Some(flag)` when the device decided
    /// (a float32 scalar, 1 = taken, 0 = skipped, never read by the host): the center moves
    /// by `(1 − m) · flag` of the way.
    pub fn update(&mut self, teacher_outputs: &[Tensor], taken: Option<&Tensor>) {
        let _guard = tch::no_grad_guard();
        let mut batch_center =
            Tensor::cat(teacher_outputs, 0)
                .detach()
                .mean_dim(&[0i64][..], true, Kind::Float);
        // Several processes (equal shares): the mean over the whole batch, so that every
        // process keeps the same center.
        if let Some(collective) = crate::collective::collective() {
            if let Some(all) = collective.gather_rows(&batch_center) {
                batch_center = all.mean_dim(&[0i64][..], true, Kind::Float);
            }
        }
        match taken {
            None => {
                let _ = self.value.g_mul_scalar_(self.momentum);
                let _ = self.value.g_add_(&(batch_center * (1.0 - self.momentum)));
            }
            Some(taken) => {
                let weight = taken * (1.0 - self.momentum);
                let _ = self.value.lerp_tensor_(&batch_center, &weight);
            }
        }
    }

    /// L2 norm of the center.
    pub fn norm(&self) -> f64 {
        self.value.norm().double_value(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device};

    #[test]
    fn center_moves_toward_the_batch_mean() {
        let store = VarStore::new(Device::Cpu);
        let mut center = Center::new(&store.root(), 2, 0.9);
        let a = Tensor::from_slice2(&[[1.0f32, 2.0], [3.0, 6.0]]); // mean [2, 4]
        let b = Tensor::from_slice2(&[[2.0f32, 4.0]]);
        center.update(&[a, b], None); // mean over 3 rows: [2, 4] → c = 0.1 · [2, 4]
        let value = Vec::<f32>::try_from(center.value().view([-1])).unwrap();
        assert!((value[0] - 0.2).abs() < 1e-6 && (value[1] - 0.4).abs() < 1e-6);
        center.update(&[Tensor::from_slice2(&[[0.0f32, 0.0]])], None); // c = 0.9 · c
        let value = Vec::<f32>::try_from(center.value().view([-1])).unwrap();
        assert!((value[0] - 0.18).abs() < 1e-6 && (value[1] - 0.36).abs() < 1e-6);
        assert!((center.norm() - (0.18f64.powi(2) + 0.36f64.powi(2)).sqrt()).abs() < 1e-6);
        // Decided on the device: a skipped step keeps the center, a taken one moves it.
        let far = || [Tensor::from_slice2(&[[10.0f32, 10.0]])];
        center.update(&far(), Some(&Tensor::from(0.0f32)));
        let value = Vec::<f32>::try_from(center.value().view([-1])).unwrap();
        assert!((value[0] - 0.18).abs() < 1e-6 && (value[1] - 0.36).abs() < 1e-6);
        center.update(&far(), Some(&Tensor::from(1.0f32)));
        let value = Vec::<f32>::try_from(center.value().view([-1])).unwrap();
        assert!((value[0] - 1.162).abs() < 1e-5 && (value[1] - 1.324).abs() < 1e-5);
    }
}
