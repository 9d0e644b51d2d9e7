//! libtorch functions that tch 0.24 does not bind, through the C++ shim in
//! `shim/torch_ext.cpp` (compiled by build.rs against the headers of the libtorch tch links):
//! autocast with a chosen dtype on CPU and CUDA, and TF32 for float32 matrix multiplies.
//!
//! Autocast is per thread in libtorch: a region opened here covers the calling thread only,
//! which is the thread that runs the forward pass.

use std::ffi::{c_char, c_int, CStr};

use tch::{Device, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn pretext_set_autocast(
        device: c_int,
        enabled: c_int,
        bf16: c_int,
        previous: *mut c_int,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn pretext_autocast_enter();
    fn pretext_autocast_exit();
    fn pretext_autocast_enabled(device: c_int) -> c_int;
    fn pretext_set_tf32(enabled: c_int, error: *mut c_char, error_len: usize) -> c_int;
    fn pretext_tf32_enabled() -> c_int;
    fn pretext_fused_adamw(
        params: *const *mut C_tensor,
        grads: *const *mut C_tensor,
        exp_avgs: *const *mut C_tensor,
        exp_avg_sqs: *const *mut C_tensor,
        count: usize,
        step: f64,
        steps: *mut C_tensor,
        found_inf: *mut C_tensor,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn pretext_total_norm(
        tensors: *const *mut C_tensor,
        count: usize,
        out: *mut *mut C_tensor,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn pretext_to_cuda_pinned(
        tensor: *mut C_tensor,
        device_index: c_int,
        out: *mut *mut C_tensor,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn pretext_zero_all(
        tensors: *const *mut C_tensor,
        count: usize,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn pretext_scale_all(
        tensors: *const *mut C_tensor,
        count: usize,
        factor: f64,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn pretext_scale_all_by(
        tensors: *const *mut C_tensor,
        count: usize,
        factor: *mut C_tensor,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
}

/// A libtorch call of the shim that threw: the operation and libtorch's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchError {
    pub operation: &'static str,
    pub message: String,
}

impl std::fmt::Display for TorchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "libtorch {}: {}", self.operation, self.message)
    }
}

impl std::error::Error for TorchError {}

/// The shim's device code: 0 for the CPU, 1 for any CUDA device.
fn device_code(device: Device) -> c_int {
    c_int::from(device.is_cuda())
}

/// Calls a shim function that reports failure as 1 plus a message in a buffer.
fn checked(
    operation: &'static str,
    call: impl FnOnce(*mut c_char, usize) -> c_int,
) -> Result<(), TorchError> {
    let mut buffer = [0 as c_char; 512];
    if call(buffer.as_mut_ptr(), buffer.len()) == 0 {
        return Ok(());
    }
    // SAFETY: the shim NUL-terminates whatever it writes, within the buffer's length, and the
    // buffer starts zeroed.
    let message = unsafe { CStr::from_ptr(buffer.as_ptr()) };
    Err(TorchError {
        operation,
        message: message.to_string_lossy().into_owned(),
    })
}

/// Sets autocast on `device`'s type and returns whether it was on before.
fn set_autocast(device: Device, enabled: bool) -> Result<bool, TorchError> {
    let mut previous: c_int = 0;
    checked("set_autocast", |error, len| {
        // SAFETY: `previous` and the error buffer outlive the call.
        unsafe {
            pretext_set_autocast(
                device_code(device),
                c_int::from(enabled),
                1,
                &mut previous,
                error,
                len,
            )
        }
    })?;
    Ok(previous != 0)
}

/// Whether autocast is on for `device`'s type on this thread.
pub fn autocast_enabled(device: Device) -> bool {
    // SAFETY: a query without arguments to keep alive.
    unsafe { pretext_autocast_enabled(device_code(device)) != 0 }
}

/// Restores autocast on leaving a region, also when the region panics.
struct Restore {
    device: Device,
    previous: bool,
    opened: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if self.opened {
            // SAFETY: pairs the enter of the region this guard closes.
            unsafe { pretext_autocast_exit() };
        }
        // Turning autocast off, or back on with the dtype already set, cannot throw.
        let _ = set_autocast(self.device, self.previous);
    }
}

/// Runs `f` with bfloat16 autocast on `device` (CPU or CUDA): matrix multiplies and
/// convolutions compute in bf16, the ops libtorch lists as needing float32 stay in it, and
/// the weights themselves stay float32.
pub fn bf16_autocast<T>(device: Device, f: impl FnOnce() -> T) -> Result<T, TorchError> {
    let previous = set_autocast(device, true)?;
    // SAFETY: the guard below pairs it with an exit.
    unsafe { pretext_autocast_enter() };
    let _restore = Restore {
        device,
        previous,
        opened: true,
    };
    Ok(f())
}

/// Runs `f` in full precision: autocast off on the CPU and on CUDA for the region (a loss, a
/// softmax with a temperature, a health signal), whatever the caller had on.
pub fn full_precision<T>(f: impl FnOnce() -> T) -> T {
    let restores: Vec<Restore> = [Device::Cpu, Device::Cuda(0)]
        .into_iter()
        .filter(|&device| autocast_enabled(device))
        .filter_map(|device| {
            set_autocast(device, false).ok().map(|previous| Restore {
                device,
                previous,
                opened: false,
            })
        })
        .collect();
    let result = f();
    drop(restores);
    result
}

/// Lets cuBLAS and cuDNN use TF32 for float32 matrix multiplies and convolutions (PyTorch's
/// `torch.backends.cuda.matmul.allow_tf32` and `torch.backends.cudnn.allow_tf32`).
pub fn set_tf32(enabled: bool) -> Result<(), TorchError> {
    checked("set_tf32", |error, len| {
        // SAFETY: the error buffer outlives the call.
        unsafe { pretext_set_tf32(c_int::from(enabled), error, len) }
    })
}

/// Whether cuBLAS may use TF32 for float32 matrix multiplies.
pub fn tf32_enabled() -> bool {
    // SAFETY: a query without arguments to keep alive.
    unsafe { pretext_tf32_enabled() != 0 }
}

/// The libtorch handles of `tensors`, for the shim's tensor lists. The shim copies each
/// `at::Tensor` (a reference-counted handle) before using it, and the tensors outlive the call.
fn handles(tensors: &[&Tensor]) -> Vec<*mut C_tensor> {
    tensors
        .iter()
        .map(|tensor| tensor.as_ptr() as *mut C_tensor)
        .collect()
}

/// Where a fused AdamW update gets its number from, and whether it happens.
#[derive(Clone, Copy, Debug)]
pub enum UpdateCount<'a> {
    /// The update's number, from 1 (bias correction), known on the host; always applied.
    Host(u64),
    /// Decided on the device, never read by the host: `steps` (a float32 scalar on the
    /// parameters' device) holds the update's number, and the whole update is skipped where
    /// `found_inf` (the same) is 1 (PyTorch's `found_inf` of `AdamW(fused=True)`).
    Device {
        steps: &'a Tensor,
        found_inf: &'a Tensor,
    },
}

/// Hyper-parameters of one AdamW update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamwStep {
    pub lr: f64,
    pub betas: (f64, f64),
    pub weight_decay: f64,
    pub eps: f64,
}

/// One AdamW update of `params` (with their `grads` and moment buffers, all float32 on one
/// device) by libtorch's fused kernel, PyTorch's `AdamW(fused=True)`: the same rule as
/// `torch.optim.AdamW`, in a few kernel launches instead of a dozen per parameter.
pub fn fused_adamw(
    params: &[&Tensor],
    grads: &[&Tensor],
    exp_avgs: &[&Tensor],
    exp_avg_sqs: &[&Tensor],
    hyper: AdamwStep,
    count: UpdateCount,
) -> Result<(), TorchError> {
    let len = params.len();
    assert!(
        grads.len() == len && exp_avgs.len() == len && exp_avg_sqs.len() == len,
        "fused_adamw takes one gradient and two moments per parameter"
    );
    let (params, grads) = (handles(params), handles(grads));
    let (exp_avgs, exp_avg_sqs) = (handles(exp_avgs), handles(exp_avg_sqs));
    let (step, steps, found_inf) = match count {
        UpdateCount::Host(step) => (step as f64, std::ptr::null_mut(), std::ptr::null_mut()),
        UpdateCount::Device { steps, found_inf } => (
            0.0,
            steps.as_ptr() as *mut C_tensor,
            found_inf.as_ptr() as *mut C_tensor,
        ),
    };
    checked("fused AdamW", |error, error_len| {
        // SAFETY: four arrays of `len` live tensor handles, the step tensors when given, and
        // the error buffer outlive the call.
        unsafe {
            pretext_fused_adamw(
                params.as_ptr(),
                grads.as_ptr(),
                exp_avgs.as_ptr(),
                exp_avg_sqs.as_ptr(),
                len,
                step,
                steps,
                found_inf,
                hyper.lr,
                hyper.betas.0,
                hyper.betas.1,
                hyper.weight_decay,
                hyper.eps,
                error,
                error_len,
            )
        }
    })
}

/// The L2 norm of all `tensors` together (a float32 scalar on their device), computed by one
/// multi-tensor kernel.
pub fn total_norm(tensors: &[&Tensor]) -> Result<Tensor, TorchError> {
    let list = handles(tensors);
    let mut out: *mut C_tensor = std::ptr::null_mut();
    checked("total norm", |error, len| {
        // SAFETY: `list` holds live handles; the shim writes a new tensor into `out`.
        unsafe { pretext_total_norm(list.as_ptr(), list.len(), &mut out, error, len) }
    })?;
    // SAFETY: on success the shim stored a heap-allocated `at::Tensor` that we now own.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// Multiplies every tensor in `tensors` by `factor` in place (one multi-tensor kernel).
pub fn scale_all(tensors: &[&Tensor], factor: f64) -> Result<(), TorchError> {
    let list = handles(tensors);
    checked("scale", |error, len| {
        // SAFETY: `list` holds live handles and the error buffer outlives the call.
        unsafe { pretext_scale_all(list.as_ptr(), list.len(), factor, error, len) }
    })
}

/// Multiplies every tensor in `tensors` in place by `factor`, a scalar tensor on their
/// device (one multi-tensor kernel; the host never reads the factor).
pub fn scale_all_by(tensors: &[&Tensor], factor: &Tensor) -> Result<(), TorchError> {
    let list = handles(tensors);
    checked("scale", |error, len| {
        // SAFETY: `list` and `factor` are live handles and the error buffer outlives the call.
        unsafe {
            pretext_scale_all_by(
                list.as_ptr(),
                list.len(),
                factor.as_ptr() as *mut C_tensor,
                error,
                len,
            )
        }
    })
}

/// `tensor` (on the host) on CUDA device `index`, through page-locked memory and a
/// non-blocking copy: the host does not wait for the transfer, which is queued on the
/// device's current stream ahead of the kernels that read it. Fails (no GPU, no pinned
/// memory left) with libtorch's message.
pub fn to_cuda_pinned(tensor: &Tensor, index: usize) -> Result<Tensor, TorchError> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    let index = c_int::try_from(index).unwrap_or(c_int::MAX);
    checked("pinned copy to CUDA", |error, len| {
        // SAFETY: `tensor` is alive; the shim writes a new tensor into `out` on success.
        unsafe {
            pretext_to_cuda_pinned(
                tensor.as_ptr() as *mut C_tensor,
                index,
                &mut out,
                error,
                len,
            )
        }
    })?;
    // SAFETY: on success the shim stored a heap-allocated `at::Tensor` that we now own.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// Sets every tensor in `tensors` to zero in place (one multi-tensor kernel).
pub fn zero_all(tensors: &[&Tensor]) -> Result<(), TorchError> {
    let list = handles(tensors);
    checked("zero", |error, len| {
        // SAFETY: `list` holds live handles and the error buffer outlives the call.
        unsafe { pretext_zero_all(list.as_ptr(), list.len(), error, len) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn bf16_autocast_multiplies_in_bf16_and_restores_the_previous_state() {
        let a = Tensor::ones([4, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::ones([8, 2], (Kind::Float, Device::Cpu));
        assert!(!autocast_enabled(Device::Cpu));
        let inside = bf16_autocast(Device::Cpu, || {
            assert!(autocast_enabled(Device::Cpu));
            a.matmul(&b).kind()
        })
        .unwrap();
        assert_eq!(inside, Kind::BFloat16);
        assert!(!autocast_enabled(Device::Cpu));
        assert_eq!(a.matmul(&b).kind(), Kind::Float);
    }

    #[test]
    fn a_pinned_copy_to_cuda_arrives_whole_or_fails_cleanly_without_a_gpu() {
        let host = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        match to_cuda_pinned(&host, 0) {
            Ok(copied) => {
                assert!(copied.device().is_cuda());
                let back = Vec::<f32>::try_from(copied.to_device(Device::Cpu)).unwrap();
                assert_eq!(back, [1.0, 2.0, 3.0]);
            }
            Err(error) => {
                assert!(!tch::Cuda::is_available(), "{error}");
                assert!(error.to_string().contains("pinned copy to CUDA"), "{error}");
            }
        }
    }

    #[test]
    fn full_precision_turns_autocast_off_inside_an_autocast_region_only() {
        let a = Tensor::ones([4, 8], (Kind::Float, Device::Cpu));
        let kinds = bf16_autocast(Device::Cpu, || {
            let inner = full_precision(|| a.matmul(&a.tr()).kind());
            (inner, a.matmul(&a.tr()).kind())
        })
        .unwrap();
        assert_eq!(kinds, (Kind::Float, Kind::BFloat16));
    }

    #[test]
    fn a_panic_inside_the_region_still_restores_autocast() {
        let caught = std::panic::catch_unwind(|| {
            bf16_autocast(Device::Cpu, || panic!("inside")).unwrap();
        });
        assert!(caught.is_err());
        assert!(!autocast_enabled(Device::Cpu));
    }

    /// The fused kernel against AdamW written out: two steps with weight decay.
    #[test]
    fn fused_adamw_follows_the_adamw_rule() {
        tch::manual_seed(0);
        let options = (Kind::Float, Device::Cpu);
        let param = Tensor::randn([3, 4], options);
        let (m, v) = (
            Tensor::zeros([3, 4], options),
            Tensor::zeros([3, 4], options),
        );
        let (mut p_ref, mut m_ref, mut v_ref) = (param.copy(), m.copy(), v.copy());
        let (lr, wd, (b1, b2), eps) = (0.01, 0.1, (0.9, 0.999), 1e-8);
        let hyper = AdamwStep {
            lr,
            betas: (b1, b2),
            weight_decay: wd,
            eps,
        };
        // The first update numbered on the host, the second on the device.
        let steps = Tensor::from(1.0f32);
        let found_inf = Tensor::from(0.0f32);
        for step in 1..=2u64 {
            let grad = Tensor::randn([3, 4], options);
            let count = match step {
                1 => UpdateCount::Host(1),
                _ => {
                    let _ = steps.shallow_clone().fill_(2.0);
                    UpdateCount::Device {
                        steps: &steps,
                        found_inf: &found_inf,
                    }
                }
            };
            fused_adamw(&[&param], &[&grad], &[&m], &[&v], hyper, count).unwrap();
            p_ref = &p_ref * (1.0 - lr * wd);
            m_ref = &m_ref * b1 + &grad * (1.0 - b1);
            v_ref = &v_ref * b2 + (&grad * &grad) * (1.0 - b2);
            let (c1, c2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
            p_ref = &p_ref - (&m_ref / (v_ref.sqrt() / c2.sqrt() + eps)) * (lr / c1);
        }
        let gap = (&param - &p_ref).abs().max().double_value(&[]);
        assert!(gap < 1e-6, "{gap}");
        // found_inf = 1: a NaN gradient leaves the parameter and both moments as they were.
        let before = (param.copy(), m.copy(), v.copy());
        let nan = Tensor::full([3, 4], f64::NAN, options);
        let _ = found_inf.shallow_clone().fill_(1.0);
        let count = UpdateCount::Device {
            steps: &steps,
            found_inf: &found_inf,
        };
        fused_adamw(&[&param], &[&nan], &[&m], &[&v], hyper, count).unwrap();
        assert!(param.equal(&before.0) && m.equal(&before.1) && v.equal(&before.2));
        assert!((&v - &v_ref).abs().max().double_value(&[]) < 1e-9);
    }

    #[test]
    fn total_norm_and_scale_all_act_on_every_tensor() {
        let a = Tensor::from_slice(&[3.0f32, 0.0]);
        let b = Tensor::from_slice(&[4.0f32]);
        assert_eq!(total_norm(&[&a, &b]).unwrap().double_value(&[]), 5.0);
        scale_all(&[&a, &b], 0.5).unwrap();
        assert_eq!(Vec::<f32>::try_from(&a).unwrap(), vec![1.5, 0.0]);
        assert_eq!(Vec::<f32>::try_from(&b).unwrap(), vec![2.0]);
        scale_all_by(&[&a, &b], &Tensor::from(2.0f32)).unwrap();
        assert_eq!(Vec::<f32>::try_from(&a).unwrap(), vec![3.0, 0.0]);
        assert_eq!(Vec::<f32>::try_from(&b).unwrap(), vec![4.0]);
        let nan = Tensor::from_slice(&[f32::NAN]);
        zero_all(&[&a, &nan]).unwrap();
        assert_eq!(Vec::<f32>::try_from(&nan).unwrap(), vec![0.0]);
    }

    #[test]
    fn tf32_can_be_set_and_read_back_without_a_gpu() {
        set_tf32(true).unwrap();
        assert!(tf32_enabled());
        set_tf32(false).unwrap();
        assert!(!tf32_enabled());
    }
}
