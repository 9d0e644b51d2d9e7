//! What a layer or a loss needs to know about the other processes of a data-parallel run:
//! this process's rank, their number, and a differentiable all-gather. The data-parallel
//! step loop installs one ([`set_collective`]) before training; without one, every layer
//! and loss computes over this process's batch alone, exactly as before.
//!
//! Gradient convention: each process computes a loss over its own rows whose mean over the
//! processes is the loss of the whole batch; the gather's backward sums over the processes
//! the gradient reaching each process's rows, and the step loop averages the parameter
//! gradients. Together they give the whole batch's gradient on every process.

use std::sync::{Arc, Mutex, RwLock};

use tch::Tensor;

/// Gathers a tensor of the same shape from every process into their concatenation along
/// dimension 0, in rank order, keeping the gradient.
pub type RowGather = dyn Fn(&Tensor) -> Result<Tensor, String> + Send + Sync;

/// The processes of a data-parallel run, as layers and losses see them.
#[derive(Clone)]
pub struct Collective {
    pub rank: usize,
    pub world_size: usize,
    pub gather: Arc<RowGather>,
}

impl std::fmt::Debug for Collective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Collective(rank {} of {})", self.rank, self.world_size)
    }
}

impl Collective {
    /// [`Collective::gather`], recording a failure (see [`take_collective_error`]) and
    /// giving None so that the caller can go on with its local rows; the step loop then
    /// stops with the message.
    pub fn gather_rows(&self, tensor: &Tensor) -> Option<Tensor> {
        match (self.gather)(tensor) {
            Ok(gathered) => Some(gathered),
            Err(message) => {
                record_error(message);
                None
            }
        }
    }
}

static CURRENT: RwLock<Option<Arc<Collective>>> = RwLock::new(None);
static ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Installs (Some) or removes (None) the collective every layer and loss uses.
pub fn set_collective(collective: Option<Collective>) {
    *CURRENT
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = collective.map(Arc::new);
}

/// The installed collective, when this is one process of several.
pub fn collective() -> Option<Arc<Collective>> {
    CURRENT
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
        .filter(|collective| collective.world_size > 1)
}

fn record_error(message: String) {
    ERROR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get_or_insert(message);
}

/// The first failure of a collective inside a layer or loss since the last call.
pub fn take_collective_error() -> Option<String> {
    ERROR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take()
}
