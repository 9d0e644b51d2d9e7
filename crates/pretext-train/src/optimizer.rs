//! Optimizers as small Rust structs over tensors, so their state can be checkpointed and a
//! resumed run continues bit for bit (tch's built-in optimizers keep their state inside
//! libtorch, out of reach). Updates follow PyTorch's `torch.optim.AdamW` / `SGD` and the
//! LARS of You et al. (2017) as used by SimCLR. Biases and normalization parameters
//! (every tensor with fewer than 2 dimensions) get no weight decay and no LARS adaptation.

use std::collections::BTreeMap;

use pretext_sys::TorchError;
use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Tensor};

/// Which update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Adamw,
    Sgd,
    Lars,
}

/// The `[optimizer]` section, with the learning-rate schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    /// "adamw", "sgd" (with momentum) or "lars".
    pub kind: OptimizerKind,
    /// Peak learning rate, reached at the end of warmup.
    pub lr: f64,
    /// Decoupled (AdamW) or L2 (SGD, LARS) weight decay on weights with ≥ 2 dimensions.
    pub weight_decay: f64,
    /// Adam's β1 and β2.
    pub betas: (f64, f64),
    /// Adam's ε.
    pub eps: f64,
    /// Momentum of SGD and LARS.
    pub momentum: f64,
    /// LARS trust coefficient η.
    pub trust_coefficient: f64,
    /// Steps of linear warmup from 0 to `lr`.
    pub warmup_steps: u64,
    /// The cosine schedule ends at `lr · final_lr_ratio`.
    pub final_lr_ratio: f64,
    /// Clip the global gradient norm to this value (0 disables clipping).
    pub grad_clip: f64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Adamw,
            // Measured on the quickstart (1200 steps, batch 256): 4e-3 gave +2 points of k-NN
            // and linear accuracy over 2e-3 (BENCHMARKS.md, README).
            lr: 4e-3,
            weight_decay: 1e-4,
            betas: (0.9, 0.999),
            eps: 1e-8,
            momentum: 0.9,
            trust_coefficient: 0.001,
            warmup_steps: 50,
            final_lr_ratio: 0.01,
            grad_clip: 5.0,
        }
    }
}

/// A parameter in a fused update: its name, the tensor and its gradient.
type Member = (String, Tensor, Tensor);

/// One trained tensor with its settings.
#[derive(Debug)]
struct Param {
    name: String,
    tensor: Tensor,
    decay: bool,
    /// Multiplies the learning rate for this parameter (layer-wise decay; 0 = frozen).
    lr_scale: f64,
}

/// An optimizer over the trainable variables of a VarStore, with savable state.
#[derive(Debug)]
pub struct Optimizer {
    config: OptimizerConfig,
    params: Vec<Param>,
    /// Per-parameter state tensors keyed by "<slot>/<param name>" (exp_avg, exp_avg_sq, momentum).
    state: BTreeMap<String, Tensor>,
    /// Number of updates applied so far (Adam's bias correction uses it). While steps are
    /// decided on the device, [`Optimizer::updates`] has the current count.
    pub steps_taken: u64,
    /// Steps decided on the device: the number of updates applied so far, as a float32 scalar
    /// on the parameters' device (what the fused kernel reads), or None.
    device_updates: Option<Tensor>,
}

impl Optimizer {
    /// Takes every variable of `store` that requires gradients, in name order.
    pub fn new(store: &VarStore, config: &OptimizerConfig) -> Optimizer {
        let mut named: Vec<(String, Tensor)> = store
            .variables()
            .into_iter()
            .filter(|(_, tensor)| tensor.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let params = named
            .into_iter()
            .map(|(name, tensor)| Param {
                decay: tensor.dim() >= 2,
                name,
                tensor,
                lr_scale: 1.0,
            })
            .collect();
        Optimizer {
            config: config.clone(),
            params,
            state: BTreeMap::new(),
            steps_taken: 0,
            device_updates: None,
        }
    }

    /// Sets each parameter's learning-rate multiplier from its name (layer-wise learning-rate
    /// decay, freezing with 0). Parameters with multiplier 0 are not updated at all.
    pub fn set_lr_scales(&mut self, scale: impl Fn(&str) -> f64) {
        for param in &mut self.params {
            param.lr_scale = scale(&param.name);
        }
    }

    /// Whether the parameters live on a CUDA device, where multi-tensor kernels replace
    /// the per-parameter loops (the CPU keeps the loops its recorded results came from).
    fn on_cuda(&self) -> bool {
        self.params
            .first()
            .is_some_and(|param| param.tensor.device().is_cuda())
    }

    /// The gradients that exist (a parameter the loss did not reach has none).
    pub(crate) fn grads(&self) -> Vec<Tensor> {
        self.params
            .iter()
            .map(|param| param.tensor.grad())
            .filter(Tensor::defined)
            .collect()
    }

    pub fn zero_grad(&mut self) -> Result<(), TorchError> {
        if self.on_cuda() {
            let grads = self.grads();
            return pretext_sys::zero_all(&grads.iter().collect::<Vec<_>>());
        }
        for param in &mut self.params {
            let mut grad = param.tensor.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
        }
        Ok(())
    }

    /// The global L2 norm of all gradients.
    pub fn grad_norm(&self) -> Result<f64, TorchError> {
        let _guard = tch::no_grad_guard();
        if self.on_cuda() {
            return Ok(self.grad_norm_tensor()?.double_value(&[]));
        }
        let squares: Vec<Tensor> = self
            .params
            .iter()
            .map(|param| param.tensor.grad())
            .filter(|grad| grad.defined())
            .map(|grad| grad.pow_tensor_scalar(2).sum(tch::Kind::Float))
            .collect();
        if squares.is_empty() {
            return Ok(0.0);
        }
        Ok(Tensor::stack(&squares, 0)
            .sum(tch::Kind::Float)
            .sqrt()
            .double_value(&[]))
    }

    /// Scales all gradients by `factor` (gradient clipping).
    pub fn scale_grads(&mut self, factor: f64) -> Result<(), TorchError> {
        let _guard = tch::no_grad_guard();
        if self.on_cuda() {
            let grads = self.grads();
            return pretext_sys::scale_all(&grads.iter().collect::<Vec<_>>(), factor);
        }
        for param in &self.params {
            let mut grad = param.tensor.grad();
            if grad.defined() {
                let scaled = &grad * factor;
                grad.copy_(&scaled);
            }
        }
        Ok(())
    }

    /// Scales all gradients by `factor`, a scalar tensor on their device that the host never
    /// reads.
    pub fn scale_grads_by(&mut self, factor: &Tensor) -> Result<(), TorchError> {
        let _guard = tch::no_grad_guard();
        let grads = self.grads();
        pretext_sys::scale_all_by(&grads.iter().collect::<Vec<_>>(), factor)
    }

    /// The global L2 norm of all gradients, as a float32 scalar on their device (not read).
    pub fn grad_norm_tensor(&self) -> Result<Tensor, TorchError> {
        let _guard = tch::no_grad_guard();
        let grads = self.grads();
        match grads.first() {
            None => Ok(Tensor::zeros([], (tch::Kind::Float, self.device()))),
            Some(_) => pretext_sys::total_norm(&grads.iter().collect::<Vec<_>>()),
        }
    }

    /// Where the parameters live (the CPU for an optimizer without parameters).
    fn device(&self) -> tch::Device {
        self.params
            .first()
            .map_or(tch::Device::Cpu, |param| param.tensor.device())
    }

    /// Updates applied so far (read from the device while steps are decided there).
    pub fn updates(&self) -> u64 {
        match &self.device_updates {
            Some(count) => count.double_value(&[]) as u64,
            None => self.steps_taken,
        }
    }

    /// One AdamW update at `lr`, applied only where `taken` (a float32 scalar on the device:
    /// 1 = apply, 0 = skip) is 1, without the host reading it: libtorch's fused kernel with
    /// PyTorch's `found_inf`, on the CPU as on CUDA. The update count lives on the device.
    pub fn step_where(&mut self, lr: f64, taken: &Tensor) -> Result<(), TorchError> {
        assert_eq!(
            self.config.kind,
            OptimizerKind::Adamw,
            "steps decided on the device need AdamW (PretrainConfig::validate says so)"
        );
        let _guard = tch::no_grad_guard();
        let device = self.device();
        let count = self.steps_taken as f64;
        let updates = self
            .device_updates
            .get_or_insert_with(|| Tensor::full([], count, (tch::Kind::Float, device)))
            .shallow_clone();
        let _ = updates.shallow_clone().g_add_(taken);
        let found_inf = taken.ones_like() - taken;
        self.fused_adamw_step(
            lr,
            pretext_sys::UpdateCount::Device {
                steps: &updates,
                found_inf: &found_inf,
            },
        )
    }

    fn slot(&mut self, slot: &str, name: &str, like: &Tensor) -> Tensor {
        self.state
            .entry(format!("{slot}/{name}"))
            .or_insert_with(|| like.zeros_like())
            .shallow_clone()
    }

    /// Applies one update with learning rate `lr`.
    pub fn step(&mut self, lr: f64) -> Result<(), TorchError> {
        let _guard = tch::no_grad_guard();
        self.steps_taken += 1;
        if self.config.kind == OptimizerKind::Adamw && self.on_cuda() {
            return self.fused_adamw_step(lr, pretext_sys::UpdateCount::Host(self.steps_taken));
        }
        let config = self.config.clone();
        let names_and_tensors: Vec<(String, Tensor, bool, f64)> = self
            .params
            .iter()
            .map(|param| {
                (
                    param.name.clone(),
                    param.tensor.shallow_clone(),
                    param.decay,
                    param.lr_scale,
                )
            })
            .collect();
        let base_lr = lr;
        for (name, mut param, decay, lr_scale) in names_and_tensors {
            let grad = param.grad();
            if !grad.defined() || lr_scale == 0.0 {
                continue;
            }
            let lr = base_lr * lr_scale;
            let weight_decay = if decay { config.weight_decay } else { 0.0 };
            match config.kind {
                OptimizerKind::Adamw => {
                    // PyTorch AdamW: p ← p(1 − lr·λ); m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
                    // p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)
                    let (beta1, beta2) = config.betas;
                    let mut exp_avg = self.slot("exp_avg", &name, &param);
                    let mut exp_avg_sq = self.slot("exp_avg_sq", &name, &param);
                    if weight_decay != 0.0 {
                        let decayed = &param * (1.0 - lr * weight_decay);
                        param.copy_(&decayed);
                    }
                    exp_avg.copy_(&(&exp_avg * beta1 + &grad * (1.0 - beta1)));
                    exp_avg_sq.copy_(&(&exp_avg_sq * beta2 + (&grad * &grad) * (1.0 - beta2)));
                    let t = self.steps_taken as i32;
                    let bias_correction1 = 1.0 - beta1.powi(t);
                    let bias_correction2 = 1.0 - beta2.powi(t);
                    let denom = exp_avg_sq.sqrt() / bias_correction2.sqrt() + config.eps;
                    let update = (&exp_avg / denom) * (lr / bias_correction1);
                    param.copy_(&(&param - update));
                }
                OptimizerKind::Sgd => {
                    // PyTorch SGD: g ← g + λp; b ← μb + g (b = g at the first step); p ← p − lr·b
                    let grad = if weight_decay != 0.0 {
                        &grad + &param * weight_decay
                    } else {
                        grad
                    };
                    let mut buffer = self.slot("momentum", &name, &param);
                    let next = if self.steps_taken == 1 {
                        grad
                    } else {
                        &buffer * config.momentum + grad
                    };
                    buffer.copy_(&next);
                    param.copy_(&(&param - &buffer * lr));
                }
                OptimizerKind::Lars => {
                    // LARS: g ← g + λp; trust = η‖p‖ / ‖g‖ (1 for excluded parameters or zero norms);
                    // b ← μb + lr·trust·g; p ← p − b
                    let grad = if weight_decay != 0.0 {
                        &grad + &param * weight_decay
                    } else {
                        grad
                    };
                    let trust = if decay {
                        let param_norm = param.norm().double_value(&[]);
                        let grad_norm = grad.norm().double_value(&[]);
                        if param_norm > 0.0 && grad_norm > 0.0 {
                            config.trust_coefficient * param_norm / grad_norm
                        } else {
                            1.0
                        }
                    } else {
                        1.0
                    };
                    let mut buffer = self.slot("momentum", &name, &param);
                    buffer.copy_(&(&buffer * config.momentum + grad * (lr * trust)));
                    param.copy_(&(&param - &buffer));
                }
            }
        }
        Ok(())
    }

    /// AdamW by libtorch's fused kernel (on CUDA, and wherever steps are decided on the
    /// device), once per group of parameters that share a
    /// learning rate and weight decay (the same rule as the loop, a few launches in all).
    fn fused_adamw_step(
        &mut self,
        lr: f64,
        count: pretext_sys::UpdateCount,
    ) -> Result<(), TorchError> {
        let config = self.config.clone();
        // Keyed by (learning-rate multiplier's bits, decayed): (name, parameter, gradient).
        let mut groups: BTreeMap<(u64, bool), Vec<Member>> = BTreeMap::new();
        for param in &self.params {
            let grad = param.tensor.grad();
            if grad.defined() && param.lr_scale != 0.0 {
                groups
                    .entry((param.lr_scale.to_bits(), param.decay))
                    .or_default()
                    .push((param.name.clone(), param.tensor.shallow_clone(), grad));
            }
        }
        for ((lr_scale, decay), members) in groups {
            let mut moments = Vec::with_capacity(members.len());
            for (name, tensor, _) in &members {
                moments.push((
                    self.slot("exp_avg", name, tensor),
                    self.slot("exp_avg_sq", name, tensor),
                ));
            }
            let params: Vec<&Tensor> = members.iter().map(|(_, tensor, _)| tensor).collect();
            let grads: Vec<&Tensor> = members.iter().map(|(_, _, grad)| grad).collect();
            let exp_avgs: Vec<&Tensor> = moments.iter().map(|(m, _)| m).collect();
            let exp_avg_sqs: Vec<&Tensor> = moments.iter().map(|(_, v)| v).collect();
            let hyper = pretext_sys::AdamwStep {
                lr: lr * f64::from_bits(lr_scale),
                betas: config.betas,
                weight_decay: if decay { config.weight_decay } else { 0.0 },
                eps: config.eps,
            };
            pretext_sys::fused_adamw(&params, &grads, &exp_avgs, &exp_avg_sqs, hyper, count)?;
        }
        Ok(())
    }

    /// State tensors to checkpoint, keyed by "<slot>/<param name>".
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.state
            .iter()
            .map(|(name, tensor)| (name.clone(), tensor.shallow_clone()))
            .collect()
    }

    /// Restores state saved by [`Optimizer::state_tensors`].
    pub fn load_state(
        &mut self,
        tensors: Vec<(String, Tensor)>,
        steps_taken: u64,
        device: tch::Device,
    ) {
        self.state = tensors
            .into_iter()
            .map(|(name, tensor)| (name, tensor.to_device(device)))
            .collect();
        self.steps_taken = steps_taken;
        self.device_updates = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// One weight matrix [[1, 2], [3, 4]] and a bias [0.5, -0.5], gradient of sum(w²) + sum(b).
    fn store_with_grads() -> (VarStore, Tensor, Tensor) {
        let store = VarStore::new(Device::Cpu);
        let root = store.root();
        let weight = root.var_copy(
            "w",
            &Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0])
                .view([2, 2])
                .to_kind(Kind::Float),
        );
        let bias = root.var_copy("b", &Tensor::from_slice(&[0.5f32, -0.5]));
        let loss = weight.pow_tensor_scalar(2).sum(Kind::Float) + bias.sum(Kind::Float);
        loss.backward();
        (store, weight, bias)
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    fn assert_close(got: &[f32], want: &[f64]) {
        for (g, w) in got.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn adamw_first_step_matches_pytorch() {
        // torch.optim.AdamW(lr=0.1, weight_decay=0.01) on the same tensors, one step:
        // p ← p(1 − 0.001), then p − 0.1·sign(g) (first Adam step is lr·g/(|g|+ε)).
        let (store, weight, bias) = store_with_grads();
        let config = OptimizerConfig {
            lr: 0.1,
            weight_decay: 0.01,
            ..Default::default()
        };
        let mut optimizer = Optimizer::new(&store, &config);
        optimizer.step(0.1).unwrap();
        assert_close(&values(&weight), &[0.899, 1.898, 2.897, 3.896]);
        // The bias is excluded from weight decay.
        assert_close(&values(&bias), &[0.4, -0.6]);
    }

    #[test]
    fn adamw_second_step_uses_bias_correction() {
        let (store, weight, _) = store_with_grads();
        let config = OptimizerConfig {
            weight_decay: 0.0,
            ..Default::default()
        };
        let mut optimizer = Optimizer::new(&store, &config);
        optimizer.step(0.1).unwrap();
        // Same gradient again: m = 0.19g, v = 0.001999g²; m̂ = g, v̂ = g² → step of lr again.
        optimizer.step(0.1).unwrap();
        assert_close(&values(&weight), &[0.8, 1.8, 2.8, 3.8]);
    }

    #[test]
    fn sgd_momentum_matches_pytorch() {
        let (store, weight, bias) = store_with_grads();
        let config = OptimizerConfig {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            weight_decay: 0.0,
            ..Default::default()
        };
        let mut optimizer = Optimizer::new(&store, &config);
        optimizer.step(0.1).unwrap(); // b = g = 2w → w − 0.2w
        assert_close(&values(&weight), &[0.8, 1.6, 2.4, 3.2]);
        optimizer.step(0.1).unwrap(); // b = 0.9·2w₀ + 2w₀ (same grad tensor) = 3.8w₀ → w − 0.38w₀
        assert_close(&values(&weight), &[0.42, 0.84, 1.26, 1.68]);
        assert_close(&values(&bias), &[0.5 - 0.1 - 0.19, -0.5 - 0.1 - 0.19]);
    }

    #[test]
    fn lars_scales_by_the_trust_ratio() {
        let (store, weight, bias) = store_with_grads();
        let config = OptimizerConfig {
            kind: OptimizerKind::Lars,
            weight_decay: 0.0,
            trust_coefficient: 0.001,
            ..Default::default()
        };
        let mut optimizer = Optimizer::new(&store, &config);
        optimizer.step(1.0).unwrap();
        // ‖w‖ = √30, ‖g‖ = 2√30 → trust = 0.0005; w ← w − 0.0005·2w = 0.999w
        assert_close(&values(&weight), &[0.999, 1.998, 2.997, 3.996]);
        // Bias: no adaptation, plain momentum SGD with lr 1: b − 1.
        assert_close(&values(&bias), &[-0.5, -1.5]);
    }

    #[test]
    fn state_round_trips() {
        let (store, _, _) = store_with_grads();
        let mut optimizer = Optimizer::new(&store, &OptimizerConfig::default());
        optimizer.step(0.1).unwrap();
        let saved = optimizer.state_tensors();
        assert_eq!(saved.len(), 4, "exp_avg and exp_avg_sq for w and b");
        let mut restored = Optimizer::new(&store, &OptimizerConfig::default());
        restored.load_state(saved, optimizer.steps_taken, Device::Cpu);
        assert_eq!(restored.steps_taken, 1);
        assert_eq!(restored.state_tensors().len(), 4);
    }
}
