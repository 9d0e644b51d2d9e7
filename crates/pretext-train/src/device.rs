//! `--device auto|cpu|cuda[:N]`.

use tch::Device;

use crate::error::TrainError;

/// Resolves a device name; `auto` picks CUDA when libtorch sees a GPU.
pub fn resolve_device(name: &str) -> Result<Device, TrainError> {
    match name {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        _ if name == "cuda" || name.starts_with("cuda:") => {
            let index: usize = match name.strip_prefix("cuda:") {
                Some(number) => number.parse().map_err(|_| {
                    TrainError::Device(name.into(), "expected cuda or cuda:N".into())
                })?,
                None => 0,
            };
            if !tch::Cuda::is_available() {
                return Err(TrainError::Device(
                    name.into(),
                    "libtorch reports no CUDA device (is the CUDA build of libtorch 2.11 on LD_LIBRARY_PATH?)".into(),
                ));
            }
            let count = tch::Cuda::device_count() as usize;
            if index >= count {
                return Err(TrainError::Device(
                    name.into(),
                    format!("only {count} CUDA device(s)"),
                ));
            }
            Ok(Device::Cuda(index))
        }
        _ => Err(TrainError::Device(
            name.into(),
            "expected auto, cpu, cuda or cuda:N".into(),
        )),
    }
}

/// The name `--device` would take for `device` ("cpu", "cuda:0", ...).
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(index) => format!("cuda:{index}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
