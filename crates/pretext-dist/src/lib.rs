//! Multi-process training through PyTorch's own c10d, the engine PyTorch DDP runs on:
//! rendezvous through a `TCPStore`, then `ProcessGroupGloo` (CPU tensors) or, with the cargo
//! feature `nccl`, `ProcessGroupNCCL` (CUDA tensors), bound through the C++ shim in `shim/`
//! (compiled by build.rs against the headers of the libtorch tch links, with gloo's headers
//! vendored in `vendor/gloo`).
//!
//! One process per device, launched by `torchrun` or SLURM's `srun`; [`Launch::from_env`]
//! reads where this process sits and is `None` for a plain single-process run:
//!
//! ```no_run
//! use std::time::Duration;
//! use pretext_dist::{Backend, Launch, ProcessGroup};
//!
//! # fn main() -> Result<(), pretext_dist::DistError> {
//! if let Some(launch) = Launch::from_env()? {
//!     let group = ProcessGroup::init(&launch, Backend::Gloo, Duration::from_secs(300))?;
//!     let gradient = tch::Tensor::ones([4], (tch::Kind::Float, tch::Device::Cpu));
//!     group.all_reduce_sum(&[&gradient])?; // Gloo has no average: divide by world_size
//!     let _ = gradient / group.world_size() as f64;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Collectives must be called in the same order, with the same shapes and dtypes, on every
//! rank; each waits for its result, at most the timeout given to [`ProcessGroup::init`].

mod error;
mod launch;
mod process_group;

pub use error::DistError;
pub use launch::{slurm_hosts, Launch, DEFAULT_MASTER_PORT};
pub use process_group::{Backend, ProcessGroup};
