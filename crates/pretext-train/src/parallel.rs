//! Data parallelism over PyTorch's c10d (pretext-dist): one process per device, launched by
//! torchrun or SLURM. `train.batch_size` is the global batch: every process takes its
//! contiguous share of each step's examples (the same epoch permutation everywhere), starts
//! from rank 0's weights and untrained state, and after backward the gradients are summed
//! over the processes and divided by their number, so every process takes the same optimizer
//! step. Layers and losses that need the whole batch (batch norm, SimCLR's negatives) see
//! the other processes through [`pretext_nn::Collective`]. Only rank 0 writes the run
//! directory and prints.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use pretext_dist::Launch;
use pretext_dist::{Backend, DistError, ProcessGroup};
use pretext_methods::StepOutput;
use tch::{nn::VarStore, Device, Tensor};

use crate::error::TrainError;

static GROUP: OnceLock<Mutex<ProcessGroup>> = OnceLock::new();
/// What layers and losses see of the group (kept to restore it after [`alone`]).
static COLLECTIVE: OnceLock<pretext_nn::Collective> = OnceLock::new();
/// Inside [`alone`]: this process works by itself.
static ALONE: AtomicBool = AtomicBool::new(false);
/// Nanoseconds this process has spent in the gradient all-reduce ([`average`]).
static AVERAGING_NANOS: AtomicU64 = AtomicU64::new(0);

/// How [`TrainError::Distributed`] messages start.
pub const DISTRIBUTED_PREFIX: &str = "data-parallel training: ";

/// How long a collective may wait for the other processes before the run stops:
/// `PRETEXT_DIST_TIMEOUT_S`, else 10 minutes.
fn timeout() -> Duration {
    let seconds = std::env::var("PRETEXT_DIST_TIMEOUT_S")
        .ok()
        .and_then(|value| value.parse::<u64>().ok())
        .filter(|&seconds| seconds > 0)
        .unwrap_or(600);
    Duration::from_secs(seconds)
}

/// A collective's error as a run error. When another process left the reason it stopped
/// ([`report_failure`]), that reason leads: a broken connection is only how this process
/// heard of it.
fn distributed(error: DistError) -> TrainError {
    stopped_elsewhere(error.to_string())
}

fn stopped_elsewhere(own: String) -> TrainError {
    match failure_elsewhere() {
        Elsewhere::Reason(rank, reason) => stopped_with(rank, &reason, &own),
        // Rank 0 hosted the store: when it stops, its reason goes with it.
        Elsewhere::StoreGone => match RANK_ZERO_STORE.get() {
            Some(address) if placement().0 != 0 => TrainError::Distributed(format!(
                "rank 0 cannot be reached: the rendezvous store it hosts at {address} is \
                 gone, so rank 0 has most likely stopped, and its own output says why \
                 (here: {own})"
            )),
            _ => TrainError::Distributed(own),
        },
        Elsewhere::Nothing => TrainError::Distributed(own),
    }
}

/// Process `rank` stopped with `reason`, as this process (`here`) reports it.
fn stopped_with(rank: usize, reason: &str, here: &str) -> TrainError {
    TrainError::Distributed(format!("rank {rank} stopped: {reason} (here: {here})"))
}

/// What the store says about the other processes.
enum Elsewhere {
    /// A process left its reason for stopping.
    Reason(usize, String),
    /// The store cannot be reached.
    StoreGone,
    /// No process left a reason.
    Nothing,
}

/// `MASTER_ADDR:MASTER_PORT` when rank 0 hosts the rendezvous store (SLURM, plain
/// variables; under torchrun its agent does).
static RANK_ZERO_STORE: OnceLock<String> = OnceLock::new();

/// Where a process leaves the reason it stops, in the group's store.
fn failure_key(rank: usize) -> String {
    format!("failure/{rank}")
}

/// Where process `reader` notes that it has read the reason process `failed` left.
fn seen_key(failed: usize, reader: usize) -> String {
    format!("failure-seen/{failed}/{reader}")
}

/// The first other process's reason for stopping, if one left it in the store (which must
/// still be reachable: its host is rank 0, or torchrun's agent). Marks it read, for a rank
/// 0 that waits before taking its store away ([`report_failure`]).
fn failure_elsewhere() -> Elsewhere {
    with_group(|group| {
        let mut unreachable = false;
        for rank in (0..group.world_size()).filter(|&rank| rank != group.rank()) {
            match group.store_get(&failure_key(rank)) {
                Ok(Some(reason)) => {
                    let _ = group.store_set(&seen_key(rank, group.rank()), "1");
                    return Elsewhere::Reason(rank, reason);
                }
                Ok(None) => {}
                Err(_) => unreachable = true,
            }
        }
        match unreachable {
            true => Elsewhere::StoreGone,
            false => Elsewhere::Nothing,
        }
    })
    .unwrap_or(Elsewhere::Nothing)
}

/// This process is stopping with `message`, in a run of several: leaves it in the group's
/// store, so that the others, whose next collective fails when this process exits, report it
/// rather than the broken connection; and under torchrun in torchelastic's error file, so
/// that torchrun's failure summary shows it (also for a process that stopped before it
/// joined the others). Does nothing for a single process.
///
/// `own`: the failure is this process's (its data, its settings), not a collective's that
/// another process broke. Then rank 0 hosting the store (SLURM, plain variables), whose
/// store would go with it, first hands its reason over ([`hand_over`]).
pub fn report_failure(message: &str, own: bool) {
    let rank = with_group(|group| {
        let _ = group.store_set(&failure_key(group.rank()), message);
        group.rank()
    })
    // Stopped before joining the others (a refused setting): torchrun's RANK still says who.
    .or_else(|| std::env::var("RANK").ok()?.parse::<usize>().ok());
    if let Some(file) = std::env::var_os("TORCHELASTIC_ERROR_FILE").filter(|f| !f.is_empty()) {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let message = match rank {
            Some(rank) => format!("rank {rank}: {message}"),
            None => message.to_string(),
        };
        let record = serde_json::json!({ "message": message, "timestamp": timestamp });
        let _ = std::fs::write(file, record.to_string());
    }
    if own {
        hand_over();
    }
}

/// How long a failing rank 0 keeps its store up for the others to read why it stopped.
const HAND_OVER: Duration = Duration::from_secs(30);

/// On rank 0 hosting the store, after leaving its reason there: closes its connections, so
/// that the others' collectives fail at once and they read the reason from the store, then
/// waits until each has read it or stopped for its own reason (at most [`HAND_OVER`], or
/// the collective timeout if shorter) before this process exits and the store with it.
fn hand_over() {
    let (rank, world) = placement();
    if RANK_ZERO_STORE.get().is_none() || rank != 0 || world < 2 {
        return;
    }
    if !matches!(with_group(|group| group.close_connections()), Some(Ok(()))) {
        return;
    }
    let deadline = Instant::now() + HAND_OVER.min(timeout());
    while Instant::now() < deadline {
        let all_know = with_group(|group| {
            (1..world).all(|other| {
                let set = |key: String| matches!(group.store_get(&key), Ok(Some(_)));
                set(seen_key(0, other)) || set(failure_key(other))
            })
        });
        if all_know != Some(false) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The launch this process is part of (torchrun's or SLURM's variables), when there are
/// several processes; `None` for a single process.
pub fn launch() -> Result<Option<Launch>, TrainError> {
    Ok(Launch::from_env()
        .map_err(distributed)?
        .filter(|launch| launch.world_size > 1))
}

/// The launch this process is part of, even a launch of one process (`pretext bench
/// --allreduce 1` times NCCL's path with a group of one); `None` outside any launcher.
pub fn launch_of_any_size() -> Result<Option<Launch>, TrainError> {
    Launch::from_env().map_err(distributed)
}

/// Joins the other processes of `launch` (Gloo on the CPU, NCCL on CUDA), once per process,
/// and shows them to layers and losses.
pub fn join(launch: &Launch, device: Device) -> Result<(), TrainError> {
    if GROUP.get().is_some() {
        return Ok(());
    }
    let backend = if device.is_cuda() {
        Backend::Nccl
    } else {
        Backend::Gloo
    };
    let group = ProcessGroup::init(launch, backend, timeout()).map_err(distributed)?;
    if !launch.agent_store {
        let _ = RANK_ZERO_STORE.set(format!("{}:{}", launch.master_addr, launch.master_port));
    }
    let (rank, world_size) = (group.rank(), group.world_size());
    let _ = GROUP.set(Mutex::new(group));
    let _ = COLLECTIVE.set(pretext_nn::Collective {
        rank,
        world_size,
        gather: Arc::new(move |tensor: &Tensor| {
            match with_group(|group| group.all_gather_with_grad(tensor)) {
                Some(result) => result.map_err(|error| error.to_string()),
                None => Err(format!("rank {rank}: all_gather outside the process group")),
            }
        }),
    });
    pretext_nn::set_collective(COLLECTIVE.get().cloned());
    Ok(())
}

/// Runs `f` as if this process were alone: no gradient averaging, no synchronized batch
/// norm, no barrier (a study's cells, each measured by one process).
pub fn alone<T>(f: impl FnOnce() -> T) -> T {
    if GROUP.get().is_none() || ALONE.swap(true, Ordering::SeqCst) {
        return f();
    }
    pretext_nn::set_collective(None);
    struct Rejoin;
    impl Drop for Rejoin {
        fn drop(&mut self) {
            pretext_nn::set_collective(COLLECTIVE.get().cloned());
            ALONE.store(false, Ordering::SeqCst);
        }
    }
    let _rejoin = Rejoin;
    f()
}

fn with_group<T>(f: impl FnOnce(&ProcessGroup) -> T) -> Option<T> {
    if ALONE.load(Ordering::SeqCst) {
        return None;
    }
    let group = GROUP.get()?;
    let group = group
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Some(f(&group))
}

/// `(rank, world size)` of this process; `(0, 1)` alone.
pub fn placement() -> (usize, usize) {
    with_group(|group| (group.rank(), group.world_size())).unwrap_or((0, 1))
}

/// Whether this process writes the run directory, logs and progress (rank 0, or alone).
pub fn is_writer() -> bool {
    placement().0 == 0
}

/// This process's share of a step's examples: the `rank`-th of `world` contiguous parts,
/// equal when `world` divides the count (pretraining checks that it does; fine-tuning's last
/// batch of an epoch may leave parts one apart).
pub fn share<T: Clone>(items: &[T], rank: usize, world: usize) -> Vec<T> {
    let world = world.max(1);
    items[rank * items.len() / world..(rank + 1) * items.len() / world].to_vec()
}

/// Overwrites every variable of `stores` with rank 0's (in name order: the order of
/// `VarStore::variables()` differs between processes).
pub fn broadcast_from_first(stores: &[&VarStore]) -> Result<(), TrainError> {
    let tensors: Vec<Tensor> = stores
        .iter()
        .flat_map(|store| {
            let mut named: Vec<(String, Tensor)> = store.variables().into_iter().collect();
            named.sort_by(|a, b| a.0.cmp(&b.0));
            named.into_iter().map(|(_, tensor)| tensor)
        })
        .collect();
    let _guard = tch::no_grad_guard();
    with_group(|group| group.broadcast(&tensors.iter().collect::<Vec<_>>(), 0))
        .unwrap_or(Ok(()))
        .map_err(distributed)
}

/// Sums `grads` and `loss` over the processes, then divides by their number (Gloo has no
/// average): every process then holds the gradient and loss of the whole batch. `loss`
/// comes back as the mean loss.
pub fn average(grads: &[Tensor], loss: &Tensor) -> Result<f64, TrainError> {
    let (sum, world) = sum_grads_and_loss(grads, loss)?;
    Ok(sum.double_value(&[0]) / world)
}

/// [`average`], with the averaged loss left on the device as a one-element float32 tensor
/// (the host does not wait for the all-reduce).
pub fn average_on_device(grads: &[Tensor], loss: &Tensor) -> Result<Tensor, TrainError> {
    let (sum, world) = sum_grads_and_loss(grads, loss)?;
    Ok(sum / world)
}

/// Sums `grads` (then divided by the number of processes) and a copy of `loss` over the
/// processes: the summed loss as a one-element float32 tensor, and the number of processes.
fn sum_grads_and_loss(grads: &[Tensor], loss: &Tensor) -> Result<(Tensor, f64), TrainError> {
    let _guard = tch::no_grad_guard();
    let loss = loss.detach().to_kind(tch::Kind::Float).reshape([1]).copy();
    let started = std::time::Instant::now();
    let Some(result) = with_group(|group| {
        let mut all: Vec<&Tensor> = grads.iter().collect();
        all.push(&loss);
        group.all_reduce_sum(&all).map(|()| group.world_size())
    }) else {
        return Ok((loss, 1.0));
    };
    AVERAGING_NANOS.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    let world = result.map_err(distributed)? as f64;
    for grad in grads {
        let _ = grad.shallow_clone().g_div_scalar_(world);
    }
    Ok((loss, world))
}

/// Sums `tensors` over the processes, in place (no average); alone, leaves them as they are.
pub fn all_reduce_sum(tensors: &[&Tensor]) -> Result<(), TrainError> {
    with_group(|group| group.all_reduce_sum(tensors))
        .unwrap_or(Ok(()))
        .map_err(distributed)
}

/// Seconds this process has spent in the gradient all-reduce so far, waiting for the slowest
/// process included (on a GPU, until the all-reduce is queued: NCCL runs it on the stream).
pub fn averaging_seconds() -> f64 {
    AVERAGING_NANOS.load(Ordering::Relaxed) as f64 * 1e-9
}

/// `output` with its representations and projections gathered from every process (rank
/// order, no gradient): what one process would have seen of the whole batch.
pub fn whole_batch(output: StepOutput) -> Result<StepOutput, TrainError> {
    let gather = |tensor: &Tensor| -> Result<Tensor, TrainError> {
        with_group(|group| group.all_gather(&tensor.detach().contiguous()))
            .unwrap_or_else(|| Ok(tensor.shallow_clone()))
            .map_err(distributed)
    };
    Ok(StepOutput {
        representations: output
            .representations
            .iter()
            .map(gather)
            .collect::<Result<_, _>>()?,
        projections: output.projections.as_ref().map(gather).transpose()?,
        ..output
    })
}

/// `count` summed over the processes (`count` alone).
pub fn sum_count(count: usize) -> Result<usize, TrainError> {
    let total = Tensor::from_slice(&[count as i64]);
    with_group(|group| group.all_reduce_sum(&[&total]))
        .unwrap_or(Ok(()))
        .map_err(distributed)?;
    Ok(total.int64_value(&[0]) as usize)
}

/// Waits until every process gets here.
pub fn barrier() -> Result<(), TrainError> {
    with_group(|group| group.barrier())
        .unwrap_or(Ok(()))
        .map_err(distributed)
}

/// How many times this process has called [`wait_for_all`] (the same count on every process,
/// which all call it at the same points).
static WAITS: AtomicU64 = AtomicU64::new(0);

/// Waits until every process gets here, for as long as that takes: for work of unequal
/// length between collectives (a study's cells: one process may fine-tune for an hour while
/// another is done), which a [`barrier`] would cut at `PRETEXT_DIST_TIMEOUT_S`. Each process
/// marks its arrival in the rendezvous store and polls the others' marks. A process that
/// stopped with an error stops this one with its reason; a store that can no longer be
/// reached (rank 0 hosted it and stopped) stops it too. A process that dies without a word
/// is left to the launcher (torchrun, `srun --kill-on-bad-exit`), which stops the others.
pub fn wait_for_all() -> Result<(), TrainError> {
    let (rank, world) = placement();
    if world < 2 {
        return Ok(());
    }
    let wait = WAITS.fetch_add(1, Ordering::SeqCst);
    let arrived = |rank: usize| format!("arrived/{wait}/{rank}");
    with_group(|group| group.store_set(&arrived(rank), "1"))
        .unwrap_or(Ok(()))
        .map_err(distributed)?;
    let mut pending: Vec<usize> = (0..world).filter(|&other| other != rank).collect();
    let mut pause = Duration::from_millis(10);
    while !pending.is_empty() {
        let mut still = Vec::new();
        for other in pending {
            let mark = with_group(|group| group.store_get(&arrived(other)))
                .unwrap_or(Ok(Some(String::new())))
                .map_err(distributed)?;
            if mark.is_none() {
                still.push(other);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if let Elsewhere::Reason(other, reason) = failure_elsewhere() {
            let here = format!("rank {rank}, waiting for the others");
            return Err(stopped_with(other, &reason, &here));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
    Ok(())
}

/// The error of a collective inside a layer or loss since the last step, as a run error.
pub fn take_layer_error() -> Result<(), TrainError> {
    match pretext_nn::take_collective_error() {
        Some(message) => Err(stopped_elsewhere(message)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_contiguous_equal_parts_in_rank_order() {
        let items: Vec<usize> = (0..8).collect();
        assert_eq!(share(&items, 0, 2), vec![0, 1, 2, 3]);
        assert_eq!(share(&items, 1, 2), vec![4, 5, 6, 7]);
        assert_eq!(share(&items, 0, 1), items);
        let uneven: Vec<Vec<usize>> = (0..3).map(|rank| share(&items, rank, 3)).collect();
        assert_eq!(uneven, vec![vec![0, 1], vec![2, 3, 4], vec![5, 6, 7]]);
    }

    #[test]
    fn distributed_errors_start_with_their_prefix() {
        let error = TrainError::Distributed("rank 1: all_reduce failed".into());
        assert!(error.to_string().starts_with(DISTRIBUTED_PREFIX));
    }

    #[test]
    fn alone_this_process_is_rank_0_of_1_and_writes() {
        assert_eq!(placement(), (0, 1));
        assert!(is_writer());
    }
}
