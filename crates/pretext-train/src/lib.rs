//! The pretext step loop and everything it needs: optimizers and learning-rate schedules
//! with savable state, atomic checkpoints, the metrics log, health signals and the
//! non-finite guard.

pub mod atomic;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod error;
pub mod health;
pub mod metrics;
pub mod optimizer;
pub mod run_dir;
pub mod schedule;
pub mod trainer;

pub use atomic::{is_temporary, write_atomic, write_atomic_with};
pub use checkpoint::{Checkpoint, TrainState};
pub use config::{DataConfig, HealthConfig, LoopConfig, PretrainConfig};
pub use device::{device_name, resolve_device};
pub use error::TrainError;
pub use optimizer::{Optimizer, OptimizerConfig, OptimizerKind};
pub use run_dir::{RunDir, RunLock, RunMode, LOCK_FILE};
pub use schedule::learning_rate;
pub use trainer::{
    ensure_steps_left, pretrain, total_steps, Model, NoProgress, PretrainOutcome, ProgressSink,
    StepReport,
};
