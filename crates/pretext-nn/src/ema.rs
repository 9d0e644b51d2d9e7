//! Exponential moving average of a network's weights: the momentum (key) encoder of MoCo,
//! the target network of BYOL, the teacher of DINO. After each optimizer step,
//!
//! `θ_target ← m · θ_target + (1 − m) · θ_online`
//!
//! for every parameter. The target lives in its own `VarStore` (untrained state: it never
//! gets gradients and the optimizer never sees it); its variables are paired with the online
//! ones by name, so a target built with the same constructors under the same path names
//! mirrors the online network. Batch-norm running statistics are buffers, not parameters:
//! the target keeps its own, updated by its own forward passes.

use tch::nn::VarStore;
use tch::Tensor;

/// Pairs of (target, online) parameters, updated in place.
#[derive(Debug)]
pub struct Ema {
    pairs: Vec<(String, Tensor, Tensor)>,
}

impl Ema {
    /// Pairs every parameter of `online` whose name starts with one of `prefixes` (e.g.
    /// `"encoder."`) with the variable of the same name in `target`, and copies the online
    /// values into the target (MoCo, BYOL and DINO all start the target as a copy).
    ///
    /// Panics when a name or a shape has no twin: that is a bug in how the method built its
    /// two networks, not a user error.
    pub fn new(target: &VarStore, online: &VarStore, prefixes: &[&str]) -> Ema {
        let target_vars = target.variables();
        let mut pairs: Vec<(String, Tensor, Tensor)> = online
            .variables()
            .into_iter()
            .filter(|(name, tensor)| {
                tensor.requires_grad() && prefixes.iter().any(|p| name.starts_with(p))
            })
            .map(|(name, online)| {
                let target = target_vars
                    .get(&name)
                    .unwrap_or_else(|| panic!("EMA target has no variable `{name}`"))
                    .shallow_clone();
                assert_eq!(
                    target.size(),
                    online.size(),
                    "EMA shapes differ for `{name}`"
                );
                (name, target, online)
            })
            .collect();
        assert!(
            !pairs.is_empty(),
            "EMA found no parameters under {prefixes:?}"
        );
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let ema = Ema { pairs };
        ema.update(0.0);
        ema
    }

    /// `target ← momentum · target + (1 − momentum) · online` for every pair.
    pub fn update(&self, momentum: f64) {
        let _guard = tch::no_grad_guard();
        for (_, target, online) in &self.pairs {
            let mut target = target.shallow_clone();
            let _ = target.g_mul_scalar_(momentum);
            let _ = target.g_add_(&(online * (1.0 - momentum)));
        }
    }

    /// [`Ema::update`] after a step whose update may have been skipped: `taken` None means
    /// it was taken; `Some(flag)` is a float32 scalar on the device, 1 when the optimizer
    /// stepped and 0 when it skipped the step, which the host never reads (the target moves
    /// by `(1 − momentum) · flag` of the way to the online network).
    pub fn update_after(&self, momentum: f64, taken: Option<&Tensor>) {
        let Some(taken) = taken else {
            return self.update(momentum);
        };
        let _guard = tch::no_grad_guard();
        let weight = taken * (1.0 - momentum);
        for (_, target, online) in &self.pairs {
            let _ = target.shallow_clone().lerp_tensor_(online, &weight);
        }
    }

    /// ‖θ_online − θ_target‖ / ‖θ_online‖ over all pairs: how far the target trails the
    /// online network (0 = identical).
    pub fn relative_distance(&self) -> f64 {
        let _guard = tch::no_grad_guard();
        let (mut difference, mut norm) = (0.0, 0.0);
        for (_, target, online) in &self.pairs {
            difference += (online - target)
                .square()
                .sum(tch::Kind::Double)
                .double_value(&[]);
            norm += online.square().sum(tch::Kind::Double).double_value(&[]);
        }
        (difference / norm.max(1e-30)).sqrt()
    }

    /// Number of paired parameter tensors.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// BYOL's and DINO's momentum schedule: from `base` at step 0 up to 1 at the last step along
/// a cosine, `1 − (1 − base) · (cos(π k / K) + 1) / 2`.
pub fn cosine_momentum(base: f64, step: u64, total_steps: u64) -> f64 {
    let progress = step as f64 / total_steps.max(1) as f64;
    1.0 - (1.0 - base) * ((std::f64::consts::PI * progress).cos() + 1.0) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    fn pair_of_stores() -> (VarStore, VarStore) {
        let online = VarStore::new(Device::Cpu);
        let target = VarStore::new(Device::Cpu);
        let _ = nn::linear(online.root() / "encoder", 2, 1, Default::default());
        let _ = nn::linear(target.root() / "encoder", 2, 1, Default::default());
        (online, target)
    }

    #[test]
    fn ema_starts_as_a_copy_then_moves_by_one_minus_momentum() {
        let (online, mut target) = pair_of_stores();
        target.freeze();
        let ema = Ema::new(&target, &online, &["encoder."]);
        assert_eq!(ema.len(), 2, "weight and bias");
        let weight = |store: &VarStore| {
            Vec::<f64>::try_from(
                store.variables()["encoder.weight"]
                    .to_kind(Kind::Double)
                    .view([-1]),
            )
            .unwrap()
        };
        assert_eq!(weight(&online), weight(&target));
        assert!(ema.relative_distance() < 1e-12);

        // Online weight [w0, w1] → set to [1, 3]; target was [w0, w1].
        let before = weight(&target);
        tch::no_grad(|| {
            online.variables()["encoder.weight"]
                .shallow_clone()
                .copy_(&Tensor::from_slice2(&[[1.0f32, 3.0]]))
        });
        ema.update(0.9);
        let after = weight(&target);
        for (i, online_value) in [1.0, 3.0].iter().enumerate() {
            let want = 0.9 * before[i] + 0.1 * online_value;
            assert!((after[i] - want).abs() < 1e-6, "{} vs {want}", after[i]);
        }
        // Decided on the device: a skipped step (0) keeps the target, a taken one (1) moves it
        // as the host's update does.
        ema.update_after(0.9, Some(&Tensor::from(0.0f32)));
        assert_eq!(weight(&target), after);
        ema.update_after(0.9, Some(&Tensor::from(1.0f32)));
        let moved = weight(&target);
        for (i, online_value) in [1.0, 3.0].iter().enumerate() {
            let want = 0.9 * after[i] + 0.1 * online_value;
            assert!((moved[i] - want).abs() < 1e-6, "{} vs {want}", moved[i]);
        }
        // Momentum 1 keeps the target; momentum 0 copies the online network.
        ema.update(1.0);
        assert_eq!(weight(&target), moved);
        ema.update(0.0);
        assert_eq!(weight(&target), vec![1.0, 3.0]);
    }

    #[test]
    fn cosine_momentum_rises_from_base_to_one() {
        assert!((cosine_momentum(0.996, 0, 100) - 0.996).abs() < 1e-12);
        assert!((cosine_momentum(0.996, 50, 100) - 0.998).abs() < 1e-12);
        assert!((cosine_momentum(0.996, 100, 100) - 1.0).abs() < 1e-12);
    }
}
