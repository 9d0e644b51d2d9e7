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
pub mod metrics_record;
pub mod monitors;
pub mod optimizer;
pub mod parallel;
pub mod progress;
pub mod resume;
pub mod run_dir;
pub mod schedule;
pub mod step;
pub mod step_log;
pub mod trainer;

pub use atomic::{is_temporary, write_atomic, write_atomic_with};
pub use checkpoint::{Checkpoint, TrainState};
pub use config::{DataConfig, HealthConfig, HostReads, LoopConfig, PretrainConfig};
pub use device::{device_name, resolve_device};
pub use error::TrainError;
pub use metrics_record::{MetricsRecord, StepNumbers};
pub use optimizer::{Optimizer, OptimizerConfig, OptimizerKind};
pub use progress::{NoProgress, ProgressSink, StepReport};
pub use resume::ensure_steps_left;
pub use run_dir::{RunDir, RunLock, RunMode, LOCK_FILE};
pub use schedule::learning_rate;
pub use step::{
    report_skipped, train_step, train_step_on_device, DeviceOutcome, StepOutcome, StepSettings,
    Stepped,
};
pub use trainer::{check_pretraining, pretrain, total_steps, Model, PretrainOutcome};
