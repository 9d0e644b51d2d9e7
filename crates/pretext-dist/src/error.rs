//! What can go wrong: a launch variable that is missing or malformed, or a c10d call that
//! failed on some rank (libtorch's message included).

/// An error of pretext-dist. Launch errors name the environment variable; process-group
/// errors name the rank and the operation, e.g. `rank 1: all_reduce failed: <libtorch message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistError {
    /// A launch variable holds something that cannot be what it stands for.
    #[error("environment variable {variable}={value:?}: expected {expected}")]
    BadVariable {
        variable: String,
        value: String,
        expected: String,
    },
    /// A launch variable that the others make necessary is unset.
    #[error("environment variable {variable} is unset; {why}")]
    MissingVariable {
        variable: &'static str,
        why: &'static str,
    },
    /// libtorch (c10d, Gloo, NCCL) threw during `operation` on `rank`.
    #[error("rank {rank}: {operation} failed: {message}")]
    Operation {
        rank: usize,
        operation: &'static str,
        message: String,
    },
    /// The NCCL backend was asked for, but this build has no NCCL in it.
    #[error("rank {rank}: init failed: built without NCCL support; rebuild with --features nccl")]
    NcclNotBuilt { rank: usize },
}
