//! One training step, shared by pretraining and fine-tuning: non-finite guard -> backward ->
//! clip -> optimizer step -> the caller's after-step update. It is the one place where
//! gradients are made and applied, so device placement, precision and gradient averaging
//! across processes each become one line here.

use tch::Tensor;

use crate::error::TrainError;
use crate::optimizer::Optimizer;

/// What one step is asked to do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepSettings {
    /// The learning rate of this step.
    pub lr: f64,
    /// Clip the global gradient norm to this value (0 = no clipping).
    pub grad_clip: f64,
    /// Skipped steps a run tolerates; one more stops it (`TrainError::TooManyNonFinite`).
    pub max_nonfinite_steps: u64,
}

/// What one step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutcome {
    /// The loss (NaN or infinite when the step was skipped for it).
    pub loss: f64,
    /// The global gradient norm before clipping (NaN when the loss was not finite).
    pub grad_norm: f64,
    /// Whether the optimizer stepped (false: skipped for a non-finite loss or gradient).
    pub taken: bool,
}

/// Trains on `loss` once: when the loss or its gradient is not finite, the step is skipped
/// (no update, no `after_step`), counted in `nonfinite_steps` and announced through
/// `notify`, and past `settings.max_nonfinite_steps` the run stops; otherwise backward,
/// clipping to `settings.grad_clip`, one optimizer step at `settings.lr`, then
/// `after_step` (the method's update of its untrained state).
pub fn train_step(
    loss: &Tensor,
    optimizer: &mut Optimizer,
    settings: StepSettings,
    nonfinite_steps: &mut u64,
    notify: &mut dyn FnMut(&str),
    after_step: impl FnOnce(),
) -> Result<StepOutcome, TrainError> {
    // Backward runs before the loss is read, so that on a GPU the loop waits for the device
    // once per step (for the gradient norm), not also between forward and backward. A
    // non-finite loss gives non-finite gradients, and the step is skipped as before.
    optimizer.zero_grad()?;
    loss.backward();
    crate::parallel::take_layer_error()?;
    // Several processes: the gradients and the loss of the whole batch, on every process.
    let loss_value = match crate::parallel::placement().1 {
        1 => None,
        _ => Some(crate::parallel::average(&optimizer.grads(), loss)?),
    };
    let mut grad_norm = optimizer.grad_norm()?;
    let loss_value = loss_value.unwrap_or_else(|| loss.double_value(&[]));
    if !loss_value.is_finite() {
        grad_norm = f64::NAN;
    }
    let outcome = |taken| StepOutcome {
        loss: loss_value,
        grad_norm,
        taken,
    };
    if !grad_norm.is_finite() {
        *nonfinite_steps += 1;
        optimizer.zero_grad()?;
        let what = if loss_value.is_finite() {
            "gradient"
        } else {
            "loss"
        };
        notify(&format!(
            "non-finite {what} — step skipped ({nonfinite_steps} so far)"
        ));
        if *nonfinite_steps > settings.max_nonfinite_steps {
            return Err(TrainError::TooManyNonFinite {
                count: *nonfinite_steps,
                limit: settings.max_nonfinite_steps,
            });
        }
        return Ok(outcome(false));
    }
    if settings.grad_clip > 0.0 && grad_norm > settings.grad_clip {
        optimizer.scale_grads(settings.grad_clip / grad_norm)?;
    }
    optimizer.step(settings.lr)?;
    after_step();
    Ok(outcome(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::OptimizerConfig;
    use tch::nn::VarStore;
    use tch::{Device, Kind};

    /// A store with one weight `w = [1, -2, 3]` and its optimizer.
    fn model() -> (VarStore, Optimizer) {
        let store = VarStore::new(Device::Cpu);
        let _ = store
            .root()
            .var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0, 3.0]));
        let optimizer = Optimizer::new(&store, &OptimizerConfig::default());
        (store, optimizer)
    }

    fn weights(store: &VarStore) -> Vec<f32> {
        Vec::<f32>::try_from(store.variables()["w"].detach()).unwrap()
    }

    fn loss(store: &VarStore, scale: f64) -> Tensor {
        (store.variables()["w"].square() * scale).sum(Kind::Float)
    }

    const SETTINGS: StepSettings = StepSettings {
        lr: 0.1,
        grad_clip: 0.0,
        max_nonfinite_steps: 1,
    };

    #[test]
    fn a_finite_step_updates_the_weights_exactly_like_zero_grad_backward_step() {
        let (store, mut optimizer) = model();
        let (reference, mut reference_optimizer) = model();
        let (mut skipped, mut after_steps) = (0, 0);
        for _ in 0..3 {
            let outcome = train_step(
                &loss(&store, 0.5),
                &mut optimizer,
                SETTINGS,
                &mut skipped,
                &mut |notice| panic!("{notice}"),
                || after_steps += 1,
            )
            .unwrap();
            assert!(outcome.taken);
            let by_hand = loss(&reference, 0.5);
            reference_optimizer.zero_grad().unwrap();
            by_hand.backward();
            reference_optimizer.step(SETTINGS.lr).unwrap();
            assert_eq!(outcome.loss, by_hand.double_value(&[]));
        }
        assert_eq!(weights(&store), weights(&reference));
        assert_ne!(weights(&store), [1.0, -2.0, 3.0]);
        assert_eq!((skipped, after_steps), (0, 3));
    }

    #[test]
    fn clipping_scales_the_gradient_to_the_limit() {
        let (store, mut optimizer) = model();
        let clipped = StepSettings {
            grad_clip: 1.0,
            ..SETTINGS
        };
        let outcome = train_step(
            &loss(&store, 1.0),
            &mut optimizer,
            clipped,
            &mut 0,
            &mut |_| {},
            || {},
        )
        .unwrap();
        // d/dw Σ w² = 2w = [2, -4, 6], norm √56.
        assert!((outcome.grad_norm - 56f64.sqrt()).abs() < 1e-5);
        let clipped_norm = store.variables()["w"].grad().norm().double_value(&[]);
        assert!((clipped_norm - 1.0).abs() < 1e-5, "{clipped_norm}");
    }

    #[test]
    fn a_nan_loss_leaves_the_weights_untouched_counts_and_stops_past_the_limit() {
        let (store, mut optimizer) = model();
        let (mut skipped, mut notices, mut after_steps) = (0, Vec::new(), 0);
        let mut step = |notices: &mut Vec<String>| {
            train_step(
                &loss(&store, f64::NAN),
                &mut optimizer,
                SETTINGS,
                &mut skipped,
                &mut |notice| notices.push(notice.to_string()),
                || after_steps += 1,
            )
        };
        let outcome = step(&mut notices).unwrap();
        assert!(!outcome.taken && outcome.loss.is_nan() && outcome.grad_norm.is_nan());
        let error = step(&mut notices).unwrap_err();
        assert!(
            matches!(error, TrainError::TooManyNonFinite { count: 2, limit: 1 }),
            "{error}"
        );
        assert_eq!(weights(&store), [1.0, -2.0, 3.0]);
        assert_eq!((skipped, after_steps), (2, 0));
        assert_eq!(
            notices,
            [
                "non-finite loss — step skipped (1 so far)",
                "non-finite loss — step skipped (2 so far)"
            ]
        );
        assert_eq!(optimizer.steps_taken, 0);
    }
}
