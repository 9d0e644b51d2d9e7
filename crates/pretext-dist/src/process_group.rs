//! A c10d process group: this process's handle on the others, and the collectives the step
//! loop needs, each a call into `shim/c10d.cpp`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tch::Tensor;
use torch_sys::C_tensor;

use crate::{DistError, Launch};

extern "C" {
    fn pretext_dist_init(
        master_addr: *const c_char,
        master_port: u16,
        rank: c_int,
        world_size: c_int,
        local_rank: c_int,
        agent_store: c_int,
        backend: c_int,
        timeout_ms: i64,
        group_name: *const c_char,
        out: *mut *mut c_void,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn pretext_dist_free(group: *mut c_void);
    fn pretext_dist_close_connections(
        group: *mut c_void,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn pretext_dist_all_reduce_sum(
        group: *mut c_void,
        tensors: *const *mut C_tensor,
        count: usize,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn pretext_dist_broadcast(
        group: *mut c_void,
        tensors: *const *mut C_tensor,
        count: usize,
        root: c_int,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn pretext_dist_all_gather(
        group: *mut c_void,
        tensor: *mut C_tensor,
        with_grad: c_int,
        out: *mut *mut C_tensor,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn pretext_dist_barrier(group: *mut c_void, error: *mut c_char, error_len: usize) -> c_int;
    fn pretext_dist_store_set(
        group: *mut c_void,
        key: *const c_char,
        value: *const c_char,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn pretext_dist_store_check_get(
        group: *mut c_void,
        key: *const c_char,
        found: *mut c_int,
        value: *mut c_char,
        value_len: usize,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
}

/// The longest value [`ProcessGroup::store_get`] reads back (longer ones are cut).
const STORE_VALUE_LEN: usize = 4096;

/// The communication library under a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Gloo over TCP, for CPU tensors; always built.
    Gloo,
    /// NCCL, for CUDA tensors on device `local_rank`; needs the cargo feature `nccl`.
    Nccl,
}

/// Process groups made so far in this process: each gets the next name, so groups made in
/// the same order on every rank have the same name everywhere (their store keys use it).
static GROUPS_MADE: AtomicUsize = AtomicUsize::new(0);

/// This process's membership of a c10d process group (a `c10d::ProcessGroup` with one
/// backend), registered by name in c10d's GroupRegistry for the functional collectives.
///
/// Every collective must be called by every rank, in the same order, with tensors of the same
/// shapes and dtypes; each returns once its result is in (or fails after the group's timeout).
/// A group may move between threads but is used from one at a time.
#[derive(Debug)]
pub struct ProcessGroup {
    handle: NonNull<c_void>,
    rank: usize,
    world_size: usize,
    backend: Backend,
    name: String,
}

// SAFETY: the shim's group owns heap objects (store, c10d process group, backend) that are not
// tied to the thread that made them; `&self` methods only read the handle, and the type is not
// `Sync`, so the handle is used by one thread at a time.
unsafe impl Send for ProcessGroup {}

impl ProcessGroup {
    /// Meets the other ranks through a TCPStore at `launch.master_addr:master_port` (hosted by
    /// rank 0, or by torchrun's agent when `launch.agent_store`; every rank announces itself
    /// and the host waits for all of them), then connects the `backend`. `timeout` bounds the
    /// rendezvous and every collective after it.
    ///
    /// Gloo binds to the interfaces in `GLOO_SOCKET_IFNAME` (comma-separated) when it is set,
    /// else to the address this host's name resolves to, as PyTorch does. NCCL drives CUDA
    /// device `launch.local_rank` and fails with an error when libtorch sees no GPU.
    ///
    /// More than one group may be made from one launch (they share the store); every rank must
    /// make its groups in the same order, which is what pairs them up across ranks.
    pub fn init(
        launch: &Launch,
        backend: Backend,
        timeout: Duration,
    ) -> Result<ProcessGroup, DistError> {
        let rank = launch.rank;
        let fail = |message: String| DistError::Operation {
            rank,
            operation: "init",
            message,
        };
        if backend == Backend::Nccl && !cfg!(feature = "nccl") {
            return Err(DistError::NcclNotBuilt { rank });
        }
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        if timeout_ms < 1 {
            return Err(fail(format!(
                "the timeout must be at least 1 ms, not {timeout:?}"
            )));
        }
        let as_int = |value: usize, what: &str| {
            c_int::try_from(value).map_err(|_| fail(format!("{what} {value} is too large")))
        };
        let (c_rank, world_size, local_rank) = (
            as_int(rank, "rank")?,
            as_int(launch.world_size, "world size")?,
            as_int(launch.local_rank, "local rank")?,
        );
        let master_addr = CString::new(launch.master_addr.as_str()).map_err(|_| {
            fail(format!(
                "MASTER_ADDR {:?} holds a NUL byte",
                launch.master_addr
            ))
        })?;
        let name = format!("pretext{}", GROUPS_MADE.fetch_add(1, Ordering::Relaxed));
        let c_name = CString::new(name.as_str()).expect("group names have no NUL byte");
        let mut handle: *mut c_void = std::ptr::null_mut();
        checked(rank, "init", |error, len| {
            // SAFETY: the strings, `handle` and the error buffer outlive the call; the shim
            // copies the strings.
            unsafe {
                pretext_dist_init(
                    master_addr.as_ptr(),
                    launch.master_port,
                    c_rank,
                    world_size,
                    local_rank,
                    c_int::from(launch.agent_store),
                    match backend {
                        Backend::Gloo => 0,
                        Backend::Nccl => 1,
                    },
                    timeout_ms,
                    c_name.as_ptr(),
                    &mut handle,
                    error,
                    len,
                )
            }
        })?;
        Ok(ProcessGroup {
            handle: NonNull::new(handle).expect("the shim returns a group on success"),
            rank,
            world_size: launch.world_size,
            backend,
            name,
        })
    }

    /// This process's rank in the group, `0..world_size()`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// How many processes are in the group.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// The backend the group was made with.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The group's name in c10d's GroupRegistry (what the functional collectives take).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sums the tensors over all ranks, in place: one all-reduce per (device, dtype) bucket,
    /// through one flat buffer when a bucket holds several tensors (a lone contiguous tensor
    /// is reduced where it is). There is no average (Gloo has none): divide by
    /// [`world_size`](Self::world_size). Autograd does not see the write.
    pub fn all_reduce_sum(&self, tensors: &[&Tensor]) -> Result<(), DistError> {
        let list = handles(tensors);
        checked(self.rank, "all_reduce", |error, len| {
            // SAFETY: the group is alive, `list` holds live tensor handles, and the error
            // buffer outlives the call.
            unsafe {
                pretext_dist_all_reduce_sum(self.handle(), list.as_ptr(), list.len(), error, len)
            }
        })
    }

    /// Overwrites the tensors on every rank with rank `root`'s, in place (bucketed like
    /// [`all_reduce_sum`](Self::all_reduce_sum)); parameters that require grad may be passed.
    pub fn broadcast(&self, tensors: &[&Tensor], root: usize) -> Result<(), DistError> {
        if root >= self.world_size {
            return Err(self.invalid("broadcast", format!("root {root} is not a rank")));
        }
        let list = handles(tensors);
        checked(self.rank, "broadcast", |error, len| {
            // SAFETY: as in `all_reduce_sum`; `root` is below the world size, which fits a
            // c_int.
            unsafe {
                pretext_dist_broadcast(
                    self.handle(),
                    list.as_ptr(),
                    list.len(),
                    root as c_int,
                    error,
                    len,
                )
            }
        })
    }

    /// Every rank's `tensor` (the same shape everywhere, at least one dimension),
    /// concatenated along dim 0 in rank order: `[N, ...]` on each rank gives
    /// `[world_size * N, ...]`. The result has no gradient.
    pub fn all_gather(&self, tensor: &Tensor) -> Result<Tensor, DistError> {
        self.gather(tensor, false, "all_gather")
    }

    /// [`all_gather`](Self::all_gather) that autograd sees through: the gradient reaching
    /// the gathered tensor flows back to `tensor` as the sum over ranks of the gradient of
    /// this rank's slice (libtorch's `_c10d_functional_autograd::all_gather_into_tensor`,
    /// whose backward is a reduce-scatter). Every rank must run the backward pass too.
    pub fn all_gather_with_grad(&self, tensor: &Tensor) -> Result<Tensor, DistError> {
        self.gather(tensor, true, "all_gather_with_grad")
    }

    /// Returns once every rank has reached it.
    pub fn barrier(&self) -> Result<(), DistError> {
        checked(self.rank, "barrier", |error, len| {
            // SAFETY: the group is alive and the error buffer outlives the call.
            unsafe { pretext_dist_barrier(self.handle(), error, len) }
        })
    }

    /// Closes this rank's connections to the others while the store stays: their pending
    /// and later collectives fail at once (as if this process had exited), and they can
    /// still read what this rank left in the store, which a store hosted here would take
    /// with it on exit. This rank's collectives fail from then on; the store still works.
    pub fn close_connections(&self) -> Result<(), DistError> {
        checked(self.rank, "close_connections", |error, len| {
            // SAFETY: the group is alive and the error buffer outlives the call.
            unsafe { pretext_dist_close_connections(self.handle(), error, len) }
        })
    }

    /// Writes `value` under `key` in the group's rendezvous store (kept apart from other
    /// groups' and torchrun's keys), where every rank can read it while the store's host
    /// (rank 0, or torchrun's agent) runs. NUL bytes in either are dropped.
    pub fn store_set(&self, key: &str, value: &str) -> Result<(), DistError> {
        let (key, value) = (c_text(key), c_text(value));
        checked(self.rank, "store_set", |error, len| {
            // SAFETY: the group is alive; the strings and the error buffer outlive the call.
            unsafe {
                pretext_dist_store_set(self.handle(), key.as_ptr(), value.as_ptr(), error, len)
            }
        })
    }

    /// The value under `key` in the group's store if it is there now (no waiting); values
    /// are cut at 4095 bytes (at a character boundary).
    pub fn store_get(&self, key: &str) -> Result<Option<String>, DistError> {
        let key = c_text(key);
        let mut found: c_int = 0;
        let mut value = vec![0 as c_char; STORE_VALUE_LEN];
        checked(self.rank, "store_get", |error, len| {
            // SAFETY: the group is alive; `found`, `value` (of the length passed) and the
            // error buffer outlive the call.
            unsafe {
                pretext_dist_store_check_get(
                    self.handle(),
                    key.as_ptr(),
                    &mut found,
                    value.as_mut_ptr(),
                    value.len(),
                    error,
                    len,
                )
            }
        })?;
        if found == 0 {
            return Ok(None);
        }
        // SAFETY: the shim NUL-terminates what it writes within the buffer.
        let bytes = unsafe { CStr::from_ptr(value.as_ptr()) }.to_bytes();
        // A value cut inside a character loses that character's first bytes too.
        let whole = match std::str::from_utf8(bytes) {
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            _ => bytes.len(),
        };
        Ok(Some(String::from_utf8_lossy(&bytes[..whole]).into_owned()))
    }

    fn gather(
        &self,
        tensor: &Tensor,
        with_grad: bool,
        operation: &'static str,
    ) -> Result<Tensor, DistError> {
        let mut out: *mut C_tensor = std::ptr::null_mut();
        checked(self.rank, operation, |error, len| {
            // SAFETY: the group and `tensor` are alive; the shim writes a new tensor into
            // `out` on success.
            unsafe {
                pretext_dist_all_gather(
                    self.handle(),
                    tensor.as_ptr() as *mut C_tensor,
                    c_int::from(with_grad),
                    &mut out,
                    error,
                    len,
                )
            }
        })?;
        // SAFETY: on success the shim stored a heap-allocated `at::Tensor` that we now own.
        Ok(unsafe { Tensor::from_ptr(out) })
    }

    fn handle(&self) -> *mut c_void {
        self.handle.as_ptr()
    }

    fn invalid(&self, operation: &'static str, message: String) -> DistError {
        DistError::Operation {
            rank: self.rank,
            operation,
            message,
        }
    }
}

impl Drop for ProcessGroup {
    /// Unregisters the group, shuts its backend down (after queued work finishes) and closes
    /// the store (the server too, on the rank that hosts it).
    fn drop(&mut self) {
        // SAFETY: the handle came from `pretext_dist_init` and is freed exactly once, here.
        unsafe { pretext_dist_free(self.handle()) }
    }
}

/// The libtorch handles of `tensors`. The shim copies each `at::Tensor` (a reference-counted
/// handle) before using it, and the tensors outlive the call.
fn handles(tensors: &[&Tensor]) -> Vec<*mut C_tensor> {
    tensors
        .iter()
        .map(|tensor| tensor.as_ptr() as *mut C_tensor)
        .collect()
}

/// `text` for C, without its NUL bytes.
fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', "")).expect("NUL bytes were removed")
}

/// Calls a shim function that reports failure as 1 plus a message in a buffer.
fn checked(
    rank: usize,
    operation: &'static str,
    call: impl FnOnce(*mut c_char, usize) -> c_int,
) -> Result<(), DistError> {
    let mut buffer = vec![0 as c_char; 4096];
    if call(buffer.as_mut_ptr(), buffer.len()) == 0 {
        return Ok(());
    }
    // SAFETY: the shim NUL-terminates whatever it writes, within the buffer's length, and the
    // buffer starts zeroed.
    let message = unsafe { CStr::from_ptr(buffer.as_ptr()) };
    Err(DistError::Operation {
        rank,
        operation,
        message: message.to_string_lossy().trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use tch::{Device, Kind};

    use super::*;

    /// The launch of a group of one: rank 0 hosts the store on a free port.
    fn launch_alone() -> Launch {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        Launch {
            rank: 0,
            world_size: 1,
            local_rank: 0,
            master_addr: "127.0.0.1".to_owned(),
            master_port: port,
            agent_store: false,
        }
    }

    /// A Gloo group of one.
    fn alone() -> ProcessGroup {
        ProcessGroup::init(&launch_alone(), Backend::Gloo, Duration::from_secs(20)).unwrap()
    }

    #[test]
    fn a_group_of_one_leaves_values_alone_and_passes_the_gradient_through() {
        let group = alone();
        assert_eq!((group.rank(), group.world_size()), (0, 1));
        let (a, b) = (
            Tensor::from_slice(&[1.0f32, 2.0]),
            Tensor::from_slice(&[7i64]),
        );
        group.all_reduce_sum(&[&a, &b]).unwrap();
        assert_eq!(Vec::<f32>::try_from(&a).unwrap(), [1.0, 2.0]);
        assert_eq!(Vec::<i64>::try_from(&b).unwrap(), [7]);
        group.broadcast(&[&a], 0).unwrap();
        group.barrier().unwrap();

        let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0])
            .view([3, 1])
            .set_requires_grad(true);
        let gathered = group.all_gather_with_grad(&x).unwrap();
        assert_eq!(gathered.size(), [3, 1]);
        (&gathered * Tensor::from_slice(&[2.0f32, 3.0, 4.0]).view([3, 1]))
            .sum(Kind::Float)
            .backward();
        assert_eq!(
            Vec::<f32>::try_from(&x.grad().view([-1])).unwrap(),
            [2.0, 3.0, 4.0]
        );
        assert!(!group.all_gather(&x).unwrap().requires_grad());
    }

    #[test]
    fn the_store_holds_what_a_rank_leaves_and_nothing_else() {
        let group = alone();
        assert_eq!(group.store_get("failure/0").unwrap(), None);
        group
            .store_set("failure/0", "loading the data: x.png is trunc\0ated")
            .unwrap();
        assert_eq!(
            group.store_get("failure/0").unwrap().as_deref(),
            Some("loading the data: x.png is truncated")
        );
        let long = "é".repeat(3000);
        let read = group.store_get("long").unwrap();
        assert_eq!(read, None);
        group.store_set("long", &long).unwrap();
        let read = group.store_get("long").unwrap().unwrap();
        assert_eq!(read, "é".repeat(2047));
    }

    #[test]
    fn two_groups_of_one_launch_share_the_store_and_work_apart() {
        let launch = launch_alone();
        let first = ProcessGroup::init(&launch, Backend::Gloo, Duration::from_secs(20)).unwrap();
        let second = ProcessGroup::init(&launch, Backend::Gloo, Duration::from_secs(20)).unwrap();
        assert_ne!(first.name(), second.name());
        let tensor = Tensor::from_slice(&[3.0f32]);
        first.all_reduce_sum(&[&tensor]).unwrap();
        second.all_reduce_sum(&[&tensor]).unwrap();
        drop(first);
        second.barrier().unwrap();
        assert_eq!(Vec::<f32>::try_from(&tensor).unwrap(), [3.0]);
    }

    #[test]
    fn bad_arguments_are_errors_naming_the_rank_and_operation() {
        let group = alone();
        let error = group.broadcast(&[], 1).unwrap_err().to_string();
        assert!(
            error.starts_with("rank 0: broadcast failed: root 1"),
            "{error}"
        );
        let scalar = Tensor::from(1.0f32);
        let error = group.all_gather(&scalar).unwrap_err().to_string();
        assert!(error.starts_with("rank 0: all_gather failed:"), "{error}");
        assert!(error.contains("at least one dimension"), "{error}");
        let sparse = Tensor::ones([2, 2], (Kind::Float, Device::Cpu)).to_sparse_sparse_dim(2);
        let error = group.all_reduce_sum(&[&sparse]).unwrap_err().to_string();
        assert!(error.contains("dense"), "{error}");
        // The group still works after the errors.
        group.barrier().unwrap();
    }

    #[test]
    fn a_rendezvous_nobody_hosts_times_out_with_an_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let launch = Launch {
            rank: 1,
            world_size: 2,
            local_rank: 0,
            master_addr: "127.0.0.1".to_owned(),
            master_port: port,
            agent_store: false,
        };
        let error = ProcessGroup::init(&launch, Backend::Gloo, Duration::from_secs(2))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("rank 1: init failed:"), "{error}");
    }

    #[cfg(not(feature = "nccl"))]
    #[test]
    fn nccl_without_the_feature_says_how_to_get_it() {
        let launch = Launch {
            rank: 0,
            world_size: 2,
            local_rank: 0,
            master_addr: "127.0.0.1".to_owned(),
            master_port: 1,
            agent_store: false,
        };
        let error = ProcessGroup::init(&launch, Backend::Nccl, Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "rank 0: init failed: built without NCCL support; rebuild with --features nccl"
        );
    }

    #[cfg(feature = "nccl")]
    #[test]
    fn nccl_without_a_gpu_is_an_error_not_a_crash() {
        if tch::Cuda::is_available() {
            return; // nccl_group_of_one_reduces_and_gathers_on_the_gpu covers this machine
        }
        let error = ProcessGroup::init(&launch_alone(), Backend::Nccl, Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("rank 0: init failed:"), "{error}");
        assert!(error.contains("needs a CUDA GPU"), "{error}");
    }

    /// One rank on GPU 0 (NCCL refuses two ranks on one GPU, so a single-GPU machine can
    /// only check a group of one); skipped without a GPU.
    #[cfg(feature = "nccl")]
    #[test]
    fn nccl_group_of_one_reduces_and_gathers_on_the_gpu() {
        if !tch::Cuda::is_available() {
            eprintln!("no CUDA GPU: skipping the NCCL group of one");
            return;
        }
        let group =
            ProcessGroup::init(&launch_alone(), Backend::Nccl, Duration::from_secs(60)).unwrap();
        let cuda = (Kind::Float, Device::Cuda(0));
        let (a, b) = (
            Tensor::ones([3], cuda),
            Tensor::ones([2, 2], (Kind::Int64, Device::Cuda(0))),
        );
        group.all_reduce_sum(&[&a, &b]).unwrap();
        group.broadcast(&[&a], 0).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&a.to_device(Device::Cpu)).unwrap(),
            [1.0; 3]
        );
        let x = Tensor::ones([2, 3], cuda).set_requires_grad(true);
        group
            .all_gather_with_grad(&x)
            .unwrap()
            .sum(Kind::Float)
            .backward();
        let gradient = x.grad().to_device(Device::Cpu).view([-1]);
        assert_eq!(Vec::<f32>::try_from(&gradient).unwrap(), [1.0; 6]);
        assert_eq!(group.all_gather(&x).unwrap().size(), [2, 3]);
        group.barrier().unwrap();
    }
}
