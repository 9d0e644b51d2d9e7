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

/// Steps decided on the device, once the host has read them: says where `new` skipped steps
/// were (`place`, e.g. "steps 31-40" or "epoch 3") and how many there have been in all
/// (`so_far`), and stops past `limit`.
pub fn report_skipped(
    new: u64,
    so_far: u64,
    limit: u64,
    place: &str,
    notify: &mut dyn FnMut(&str),
) -> Result<(), TrainError> {
    if new > 0 {
        notify(&format!(
            "{place}: {new} step(s) had a non-finite loss or gradient and were skipped \
             ({so_far} so far)"
        ));
    }
    if so_far > limit {
        return Err(TrainError::TooManyNonFinite {
            count: so_far,
            limit,
        });
    }
    Ok(())
}

/// A step decided on the device ([`train_step_on_device`]): its numbers, not yet read.
#[derive(Debug)]
pub struct DeviceOutcome {
    /// The loss (averaged over the processes), a float32 scalar.
    pub loss: Tensor,
    /// The global gradient norm before clipping.
    pub grad_norm: Tensor,
    /// 1 when the optimizer stepped, 0 when the step was skipped.
    pub taken: Tensor,
}

impl DeviceOutcome {
    /// The numbers on the host (one read: the host waits for the step here).
    pub fn read(&self) -> StepOutcome {
        let numbers = Tensor::stack(
            &[
                self.loss.reshape([]).to_kind(tch::Kind::Float),
                self.grad_norm.to_kind(tch::Kind::Float),
                self.taken.to_kind(tch::Kind::Float),
            ],
            0,
        );
        let numbers = Vec::<f32>::try_from(numbers.to_device(tch::Device::Cpu))
            .expect("three float32 numbers");
        let loss = f64::from(numbers[0]);
        StepOutcome {
            loss,
            grad_norm: if loss.is_finite() {
                f64::from(numbers[1])
            } else {
                f64::NAN
            },
            taken: numbers[2] > 0.5,
        }
    }
}

/// What a step did: read on the host ([`train_step`]) or still on the device.
#[derive(Debug)]
pub enum Stepped {
    Host(StepOutcome),
    Device(DeviceOutcome),
}

impl Stepped {
    /// The numbers, read from the device if they are still there.
    pub fn read(&self) -> StepOutcome {
        match self {
            Stepped::Host(outcome) => *outcome,
            Stepped::Device(outcome) => outcome.read(),
        }
    }

    /// The numbers if the host has them already.
    pub fn known(&self) -> Option<StepOutcome> {
        match self {
            Stepped::Host(outcome) => Some(*outcome),
            Stepped::Device(_) => None,
        }
    }
}

/// [`train_step`] without the host reading anything, for a device that should never wait
/// for it (AdamW only): backward, the gradients averaged over the processes, then on the
/// device: whether the loss and the gradient norm are finite (`taken`), clipping by
/// `min(1, grad_clip / (norm + 1e-6))` as PyTorch's `clip_grad_norm_`, one fused AdamW
/// update skipped where `taken` is 0 (PyTorch's `found_inf`), and `after_step(taken)`,
/// which must leave the method's state as it was where `taken` is 0. Skipped steps are
/// counted by the optimizer's update count (steps minus updates) when the host reads it.
pub fn train_step_on_device(
    loss: &Tensor,
    optimizer: &mut Optimizer,
    settings: StepSettings,
    after_step: impl FnOnce(&Tensor),
) -> Result<DeviceOutcome, TrainError> {
    optimizer.zero_grad()?;
    loss.backward();
    crate::parallel::take_layer_error()?;
    let loss = match crate::parallel::placement().1 {
        1 => loss.detach().to_kind(tch::Kind::Float),
        _ => crate::parallel::average_on_device(&optimizer.grads(), loss)?.reshape([]),
    };
    let grad_norm = optimizer.grad_norm_tensor()?;
    let taken = {
        let _guard = tch::no_grad_guard();
        loss.isfinite()
            .logical_and(&grad_norm.isfinite())
            .to_kind(tch::Kind::Float)
    };
    if settings.grad_clip > 0.0 {
        let _guard = tch::no_grad_guard();
        let factor = (settings.grad_clip / (&grad_norm + 1e-6)).clamp_max(1.0);
        optimizer.scale_grads_by(&factor)?;
    }
    optimizer.step_where(settings.lr, &taken)?;
    after_step(&taken);
    Ok(DeviceOutcome {
        loss,
        grad_norm,
        taken,
    })
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

    #[test]
    fn a_step_decided_on_the_device_tracks_the_host_step() {
        let (store, mut optimizer) = model();
        let (reference, mut reference_optimizer) = model();
        let clipped = StepSettings {
            grad_clip: 1.0,
            ..SETTINGS
        };
        let mut after_steps = Vec::new();
        for _ in 0..3 {
            let outcome =
                train_step_on_device(&loss(&store, 1.0), &mut optimizer, clipped, |taken| {
                    after_steps.push(taken.double_value(&[]))
                })
                .unwrap()
                .read();
            let host = train_step(
                &loss(&reference, 1.0),
                &mut reference_optimizer,
                clipped,
                &mut 0,
                &mut |notice| panic!("{notice}"),
                || {},
            )
            .unwrap();
            assert!(outcome.taken);
            assert!((outcome.loss - host.loss).abs() <= 1e-6 * host.loss.abs());
            assert!((outcome.grad_norm - host.grad_norm).abs() <= 1e-6 * host.grad_norm);
        }
        // Clipped to norm 1 on the device too: the fused update equals the loop's.
        for (device, host) in weights(&store).iter().zip(weights(&reference)) {
            assert!((device - host).abs() < 1e-6, "{device} vs {host}");
        }
        assert_ne!(weights(&store), [1.0, -2.0, 3.0]);
        assert_eq!(after_steps, [1.0, 1.0, 1.0]);
        assert_eq!(optimizer.updates(), 3);
    }

    #[test]
    fn a_nan_step_decided_on_the_device_changes_nothing_and_is_not_counted_as_an_update() {
        let (store, mut optimizer) = model();
        let mut after_steps = Vec::new();
        let outcome =
            train_step_on_device(&loss(&store, f64::NAN), &mut optimizer, SETTINGS, |taken| {
                after_steps.push(taken.double_value(&[]))
            })
            .unwrap()
            .read();
        assert!(!outcome.taken && outcome.loss.is_nan() && outcome.grad_norm.is_nan());
        assert_eq!(weights(&store), [1.0, -2.0, 3.0]);
        assert_eq!(optimizer.updates(), 0);
        // The next finite step is AdamW's first (bias correction of update 1): lr · sign(g).
        let outcome = train_step_on_device(&loss(&store, 1.0), &mut optimizer, SETTINGS, |taken| {
            after_steps.push(taken.double_value(&[]))
        })
        .unwrap()
        .read();
        assert!(outcome.taken);
        // (A vector gets no weight decay.)
        let want = [0.9, -1.9, 2.9];
        for (got, want) in weights(&store).iter().zip(want) {
            assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert_eq!(after_steps, [0.0, 1.0]);
        assert_eq!(optimizer.updates(), 1);
    }
}
