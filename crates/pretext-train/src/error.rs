//! Errors of the training crate: each names the file or the setting and says what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] pretext_data::DataError),
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("invalid setting {field}: {message}")]
    Invalid { field: String, message: String },
    #[error("run directory {path} already exists; pass --resume to continue it or --overwrite to replace it")]
    RunExists { path: PathBuf },
    #[error("{path} is in use by another pretext process{}; wait for it to finish or stop it (a lock left by a killed process is cleared by the next run)", pid.map(|pid| format!(" (PID {pid})")).unwrap_or_default())]
    RunBusy { path: PathBuf, pid: Option<u32> },
    #[error("{path}: the run is already at step {done} of the {total} asked for; pass --steps (or --epochs) beyond it to train further")]
    NothingToDo {
        path: PathBuf,
        done: u64,
        total: u64,
    },
    #[error("could not write checkpoint {path}: {message}; the previous checkpoint is untouched (is the disk full?)")]
    CheckpointWrite { path: PathBuf, message: String },
    #[error("could not append to {path}: {error}; training stopped, and the checkpoints already written are intact (is the disk full?)")]
    MetricsWrite {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("checkpoint {path} is damaged: {message}")]
    BadCheckpoint { path: PathBuf, message: String },
    #[error("checkpoint {path} does not fit this run: {message}")]
    WrongCheckpoint { path: PathBuf, message: String },
    #[error("training stopped: {count} steps had a non-finite loss or gradient (limit {limit}, train.max_nonfinite_steps); the checkpoints already written are intact. Likely causes: a learning rate too high (lower optimizer.lr, keep optimizer.grad_clip on, lengthen the warmup), NaN or Inf in the data (the loaders name the file and place of those they can see), or too little precision (a temperature too low for float32: raise it)")]
    TooManyNonFinite { count: u64, limit: u64 },
    #[error(transparent)]
    Pretrained(#[from] pretext_nn::CheckpointError),
    #[error(transparent)]
    PretrainedImages(#[from] pretext_nn::ImageCheckpointError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{0}")]
    TorchExt(#[from] pretext_nn::precision::TorchError),
    /// A collective failed (starts with [`crate::parallel::DISTRIBUTED_PREFIX`]).
    #[error("data-parallel training: {0}")]
    Distributed(String),
    #[error("device `{0}` is not available: {1}")]
    Device(String, String),
}

impl TrainError {
    /// Maps an I/O error on `path` (for `map_err`).
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |error| TrainError::Io { path, error }
    }
}
