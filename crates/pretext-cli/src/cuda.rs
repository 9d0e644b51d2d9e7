//! Loading libtorch's CUDA library. The linker drops `libtorch_cuda.so` as unused (nothing
//! references its symbols directly; it registers CUDA kernels from static initializers), so
//! without this `--device cuda` would find no GPU. We dlopen it from the folder the already
//! loaded `libtorch_cpu.so` came from.

use std::ffi::CString;

use std::path::PathBuf;
use tch::Device;

/// Loads libtorch_cuda.so beside libtorch_cpu.so when present; returns whether it loaded.
pub fn load_torch_cuda() -> bool {
    let Some(dir) = loaded_torch_dir() else {
        return false;
    };
    let library = dir.join("libtorch_cuda.so");
    if !library.exists() {
        return false;
    }
    let Ok(path) = CString::new(library.to_string_lossy().as_bytes()) else {
        return false;
    };
    // SAFETY: dlopen with a valid NUL-terminated path; the handle is intentionally leaked so
    // the library stays loaded for the life of the process.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    !handle.is_null()
}

fn loaded_torch_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))
        .and_then(|path| PathBuf::from(path).parent().map(PathBuf::from))
}

/// Resolves a device name, loading the CUDA library first when a GPU may be wanted.
pub fn device(name: &str) -> anyhow::Result<tch::Device> {
    if name != "cpu" {
        load_torch_cuda();
    }
    Ok(pretext_train::resolve_device(name)?)
}

/// Under torchrun or SLURM: joins the other processes (on CUDA, this process drives the GPU
/// of its local rank) and returns the device to train on.
pub fn join_launch(device: Device) -> anyhow::Result<Device> {
    match pretext_train::parallel::launch()? {
        Some(launch) => join(&launch, device),
        None => Ok(device),
    }
}

/// [`join_launch`], also for a launch of one process (a group of one); an error outside
/// torchrun or SLURM.
pub fn join_any_launch(device: Device) -> anyhow::Result<Device> {
    match pretext_train::parallel::launch_of_any_size()? {
        Some(launch) => join(&launch, device),
        None => anyhow::bail!("expected to be started by torchrun or srun (RANK and WORLD_SIZE, or SLURM_PROCID and SLURM_NTASKS, are unset)"),
    }
}

fn join(launch: &pretext_train::parallel::Launch, device: Device) -> anyhow::Result<Device> {
    let device = match device {
        Device::Cuda(_) => Device::Cuda(launch.local_rank),
        other => other,
    };
    pretext_train::parallel::join(launch, device)?;
    Ok(device)
}
