//! Mixed precision: `train.precision = "bf16"` runs the forward pass under libtorch's
//! bfloat16 autocast (matrix multiplies and convolutions in bf16, weights and optimizer state
//! in float32), while every loss, softmax with a temperature and statistic computes in
//! float32 inside [`full_precision`].

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

pub use pretext_sys::{full_precision, set_tf32, tf32_enabled, TorchError};

/// The arithmetic of the forward pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Float32 throughout (TF32 matrix multiplies on CUDA unless `train.tf32 = false`).
    #[default]
    Fp32,
    /// bfloat16 autocast on CUDA and on the CPU; losses and statistics in float32.
    Bf16,
}

impl Precision {
    /// Runs `f` (a forward pass and loss) in this precision on `device`.
    pub fn run<T>(self, device: Device, f: impl FnOnce() -> T) -> Result<T, TorchError> {
        match self {
            Precision::Fp32 => Ok(f()),
            Precision::Bf16 => pretext_sys::bf16_autocast(device, f),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }
}

/// `t` in at least float32: bf16 and f16 tensors as float32, any other the same tensor
/// (float64 stays float64, integer indices stay integers).
pub fn fp32(t: &Tensor) -> Tensor {
    match t.kind() {
        Kind::BFloat16 | Kind::Half => t.to_kind(Kind::Float),
        _ => t.shallow_clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_reads_and_writes_lowercase_names() {
        #[derive(Deserialize, Serialize)]
        struct Holder {
            precision: Precision,
        }
        let read: Holder = toml::from_str("precision = \"bf16\"").unwrap();
        assert_eq!(read.precision, Precision::Bf16);
        assert!(toml::from_str::<Holder>("precision = \"fp16\"").is_err());
    }

    #[test]
    fn bf16_runs_a_linear_layer_in_bf16_and_fp32_in_float() {
        let x = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
        let w = Tensor::ones([4, 3], (Kind::Float, Device::Cpu));
        let kind = |precision: Precision| {
            precision
                .run(Device::Cpu, || x.linear::<Tensor>(&w, None).kind())
                .unwrap()
        };
        assert_eq!(kind(Precision::Fp32), Kind::Float);
        assert_eq!(kind(Precision::Bf16), Kind::BFloat16);
    }
}
