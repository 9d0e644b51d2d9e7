// c10d for pretext-dist: rendezvous through a TCPStore, a c10d::ProcessGroup with one backend
// (Gloo for CPU tensors, NCCL for CUDA tensors), and the collectives the step loop needs.
//
// Every entry point catches C++ exceptions and returns 0 on success, 1 on failure with the
// message copied into `error` (NUL-terminated, truncated to `error_len`). Tensors are tch's
// `*mut C_tensor`, i.e. `at::Tensor*`; tensors returned through `out` are new heap
// `at::Tensor`s that the caller owns.

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/Exception.h>

#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/GroupRegistry.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "backends.h"

namespace {

// One process's membership of a group: the store it met the others through, the c10d
// ProcessGroup registered under `name` (for the functional collectives), and its backend.
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> process_group;
  c10::intrusive_ptr<c10d::Backend> backend;
  std::string name;
  std::chrono::milliseconds timeout;
  int world_size;
};

constexpr int kBackendGloo = 0;
constexpr int kBackendNccl = 1;

int fail(const char* message, char* error, size_t error_len) {
  if (error != nullptr && error_len > 0) {
    std::strncpy(error, message, error_len - 1);
    error[error_len - 1] = '\0';
  }
  return 1;
}

// Runs `body`, turning any C++ exception into 1 plus its message. c10::Error's message
// without the C++ backtrace: the backtrace is libtorch's, not the caller's.
template <typename Body>
int guarded(char* error, size_t error_len, Body&& body) {
  try {
    body();
    return 0;
  } catch (const c10::Error& e) {
    return fail(e.what_without_backtrace(), error, error_len);
  } catch (const std::exception& e) {
    return fail(e.what(), error, error_len);
  } catch (...) {
    return fail("unknown C++ exception", error, error_len);
  }
}

// tch's tensors are `at::Tensor*` behind `*mut C_tensor`.
std::vector<at::Tensor> tensor_list(void* const* tensors, size_t count) {
  std::vector<at::Tensor> list;
  list.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    list.push_back(*static_cast<at::Tensor*>(tensors[i]));
  }
  return list;
}

// The identity, whose backward makes the incoming gradient contiguous. The backward of
// `_c10d_functional_autograd::all_gather_into_tensor` (a reduce-scatter) rejects
// non-contiguous gradients, and common losses produce them: `gathered.sum()` hands back an
// expanded (stride 0) gradient. Applied to the gathered tensor, this sits between the loss
// and that backward.
struct ContiguousGradient : public torch::autograd::Function<ContiguousGradient> {
  static at::Tensor forward(torch::autograd::AutogradContext* /*ctx*/, const at::Tensor& input) {
    return input;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* /*ctx*/,
                                                 torch::autograd::variable_list gradients) {
    return {gradients[0].contiguous()};
  }
};

// Waits for a collective, at most the group's timeout; rethrows the backend's error.
void wait(const Group& group, const c10::intrusive_ptr<c10d::Work>& work) {
  work->wait(group.timeout);
}

// The indices of `tensors` grouped by (device, dtype), groups in order of first appearance:
// every rank passes the same list, so every rank sees the same groups in the same order.
std::vector<std::vector<size_t>> buckets_by_device_and_dtype(const std::vector<at::Tensor>& tensors) {
  std::vector<std::vector<size_t>> buckets;
  for (size_t i = 0; i < tensors.size(); ++i) {
    bool placed = false;
    for (auto& bucket : buckets) {
      const auto& first = tensors[bucket.front()];
      if (first.device() == tensors[i].device() &&
          first.scalar_type() == tensors[i].scalar_type()) {
        bucket.push_back(i);
        placed = true;
        break;
      }
    }
    if (!placed) {
      buckets.push_back({i});
    }
  }
  return buckets;
}

// Runs `collective` (in place on one contiguous tensor) over every bucket of `tensors`: a
// lone contiguous tensor directly, several tensors through one flat buffer copied back after.
template <typename Collective>
void over_flat_buckets(const std::vector<at::Tensor>& tensors, Collective&& collective) {
  for (const auto& bucket : buckets_by_device_and_dtype(tensors)) {
    const auto& first = tensors[bucket.front()];
    if (bucket.size() == 1 && first.is_contiguous()) {
      at::Tensor tensor = first;
      collective(tensor);
      continue;
    }
    std::vector<at::Tensor> flat_parts;
    flat_parts.reserve(bucket.size());
    for (size_t index : bucket) {
      flat_parts.push_back(tensors[index].reshape({-1}));
    }
    at::Tensor flat = at::cat(flat_parts);  // [sum of numels]
    collective(flat);
    int64_t offset = 0;
    for (size_t index : bucket) {
      auto& tensor = tensors[index];
      const int64_t numel = tensor.numel();
      // `tensor` is a handle to the caller's storage: copy_ writes through to it.
      at::Tensor target = tensor;
      target.copy_(flat.narrow(0, offset, numel).view(tensor.sizes()));
      offset += numel;
    }
  }
}

void check_dense(const std::vector<at::Tensor>& tensors, const char* operation) {
  for (const auto& tensor : tensors) {
    TORCH_CHECK(tensor.defined(), operation, ": an undefined tensor");
    TORCH_CHECK(tensor.layout() == at::kStrided, operation,
                ": only dense (strided) tensors, got layout ", tensor.layout());
  }
}

c10::intrusive_ptr<c10d::Store> connect_store(const char* master_addr, uint16_t master_port,
                                              int rank, int world_size, bool agent_store,
                                              std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = master_port;
  // Under torchrun's agent store the agent hosts the server and every rank is a client;
  // otherwise rank 0 hosts it.
  options.isServer = rank == 0 && !agent_store;
  // Every rank (server or client) announces itself and the server waits for all of them:
  // the server's waitWorkers counts the other ranks' increments, so every rank must set it.
  options.numWorkers = static_cast<size_t>(world_size);
  options.waitWorkers = true;
  options.timeout = timeout;
  // A second group of the same launch in this process shares the server on that port (as
  // PyTorch's env:// rendezvous does) rather than failing to bind it again.
  options.multiTenant = true;
  return c10::make_intrusive<c10d::TCPStore>(std::string(master_addr), options);
}

// The group behind `handle`, whose connections to the other ranks must still be open.
const Group& open_group(void* handle) {
  const auto& group = *static_cast<Group*>(handle);
  if (!group.backend) {
    throw std::runtime_error(
        "this process closed its connections to the others after it failed");
  }
  return group;
}

// Unregisters the group and shuts its process group down (waiting for queued Gloo work),
// ignoring errors: a group on its way out. Nothing to do once its connections are closed.
void disconnect(Group& group) {
  if (!group.process_group) {
    return;
  }
  try {
    c10d::unregister_process_group(group.name);
  } catch (...) {
  }
  try {
    group.process_group->shutdown();
  } catch (...) {
  }
}

}  // namespace

extern "C" {

// Meets the other ranks at master_addr:master_port and builds the group's backend (0: Gloo,
// 1: NCCL on CUDA device `local_rank`); `group_name` names the group in c10d's registry.
// On success `*out` is an opaque group handle for the functions below.
int pretext_dist_init(const char* master_addr, uint16_t master_port, int rank, int world_size,
                      int local_rank, int agent_store, int backend, int64_t timeout_ms,
                      const char* group_name, void** out, char* error, size_t error_len) {
  return guarded(error, error_len, [&] {
    TORCH_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "rank ", rank,
                " is not in a world of ", world_size);
    const std::chrono::milliseconds timeout(timeout_ms);
    auto group = std::make_unique<Group>();
    group->name = group_name;
    group->timeout = timeout;
    group->world_size = world_size;
    auto tcp_store =
        connect_store(master_addr, master_port, rank, world_size, agent_store != 0, timeout);
    // Our keys under a prefix of their own: the agent's store is shared with torchrun.
    group->store = c10::make_intrusive<c10d::PrefixStore>("pretext/" + group->name, tcp_store);

    group->process_group =
        c10::make_intrusive<c10d::ProcessGroup>(group->store, rank, world_size);
    if (backend == kBackendGloo) {
      // PyTorch's own default: one device per interface in GLOO_SOCKET_IFNAME (comma
      // separated) through createDeviceForInterface, else createDefaultDevice (this host's
      // name, or the loopback address when that does not resolve); two threads per device.
      auto options = c10d::ProcessGroupGloo::Options::create_default(timeout);
      options->group_name = group->name;
      group->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(
          c10::make_intrusive<c10d::PrefixStore>("gloo/", group->store), rank, world_size,
          options);
      group->process_group->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
      group->process_group->setBackend(c10::DeviceType::CPU,
                                       c10d::ProcessGroup::BackendType::GLOO, group->backend);
    } else if (backend == kBackendNccl) {
#ifdef PRETEXT_DIST_NCCL
      group->process_group->setBoundDeviceId(
          at::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(local_rank)));
      group->backend = pretext_dist::make_nccl_backend(
          c10::make_intrusive<c10d::PrefixStore>("nccl/", group->store), rank, world_size,
          local_rank, timeout);
      group->process_group->setDefaultBackend(c10d::ProcessGroup::BackendType::NCCL);
      group->process_group->setBackend(c10::DeviceType::CUDA,
                                       c10d::ProcessGroup::BackendType::NCCL, group->backend);
#else
      (void)local_rank;
      TORCH_CHECK(false, "built without NCCL support; rebuild with --features nccl");
#endif
    } else {
      TORCH_CHECK(false, "unknown backend code ", backend);
    }
    // The functional collectives (_c10d_functional*) find process groups by name.
    group->process_group->setGroupName(group->name);
    c10d::register_process_group(group->name, group->process_group);
    *out = group.release();
  });
}

// Closes this rank's connections to the others (unregisters the group and releases the
// process group and backend) while the store stays: the others' collectives fail at once,
// and they can still read from the store the reason this rank left there. Collectives
// fail afterwards; the store functions still work.
int pretext_dist_close_connections(void* handle, char* error, size_t error_len) {
  return guarded(error, error_len, [&] {
    auto* group = static_cast<Group*>(handle);
    disconnect(*group);
    group->backend.reset();
    group->process_group.reset();
  });
}

// Unregisters the group and releases the backend, the process group and the store (the
// server's, on the rank that hosts it). Waits for queued Gloo work to finish first.
void pretext_dist_free(void* handle) {
  auto* group = static_cast<Group*>(handle);
  if (group == nullptr) {
    return;
  }
  disconnect(*group);
  try {
    delete group;
  } catch (...) {
  }
}

// Sums `count` tensors over all ranks in place: one allreduce per (device, dtype) bucket,
// through one flat buffer when the bucket holds several tensors.
int pretext_dist_all_reduce_sum(void* handle, void* const* tensors, size_t count, char* error,
                                size_t error_len) {
  return guarded(error, error_len, [&] {
    const auto& group = open_group(handle);
    at::NoGradGuard no_grad;
    auto list = tensor_list(tensors, count);
    check_dense(list, "all_reduce");
    over_flat_buckets(list, [&](at::Tensor& flat) {
      std::vector<at::Tensor> one{flat};
      c10d::AllreduceOptions options;
      options.reduceOp = c10d::ReduceOp::SUM;
      options.timeout = group.timeout;
      wait(group, group.backend->allreduce(one, options));
    });
  });
}

// Overwrites `count` tensors on every rank with rank `root`'s, in place.
int pretext_dist_broadcast(void* handle, void* const* tensors, size_t count, int root,
                           char* error, size_t error_len) {
  return guarded(error, error_len, [&] {
    const auto& group = open_group(handle);
    at::NoGradGuard no_grad;
    auto list = tensor_list(tensors, count);
    check_dense(list, "broadcast");
    over_flat_buckets(list, [&](at::Tensor& flat) {
      std::vector<at::Tensor> one{flat};
      c10d::BroadcastOptions options;
      options.rootRank = root;
      options.timeout = group.timeout;
      wait(group, group.backend->broadcast(one, options));
    });
  });
}

// Every rank's `tensor` concatenated along dim 0 in rank order, as a new tensor in `*out`.
// With `with_grad`, through `_c10d_functional_autograd::all_gather_into_tensor`: the
// gradient of the result reaches `tensor` as the reduce-scatter (sum over ranks) of it.
int pretext_dist_all_gather(void* handle, void* tensor_handle, int with_grad, void** out,
                            char* error, size_t error_len) {
  return guarded(error, error_len, [&] {
    const auto& group = open_group(handle);
    const auto& tensor = *static_cast<at::Tensor*>(tensor_handle);
    check_dense({tensor}, "all_gather");
    TORCH_CHECK(tensor.dim() >= 1, "all_gather: needs a tensor with at least one dimension");
    at::Tensor gathered;
    if (with_grad != 0) {
      static auto op =
          c10::Dispatcher::singleton()
              .findSchemaOrThrow("_c10d_functional_autograd::all_gather_into_tensor", "")
              .typed<at::Tensor(const at::Tensor&, int64_t, const std::string&)>();
      gathered = op.call(tensor.contiguous(), group.world_size, group.name);  // [W*N, ...]
      // The functional op only launches the collective; this waits for its Work (bounded by
      // the backend's timeout, which is the group's).
      c10d::wait_tensor(gathered);
      gathered = ContiguousGradient::apply(gathered);
    } else {
      at::NoGradGuard no_grad;
      at::Tensor input = tensor.detach().contiguous();
      auto sizes = input.sizes().vec();
      sizes[0] *= group.world_size;
      gathered = at::empty(sizes, input.options());  // [W*N, ...]
      c10d::AllgatherOptions options;
      options.timeout = group.timeout;
      wait(group, group.backend->_allgather_base(gathered, input, options));
    }
    *out = new at::Tensor(std::move(gathered));
  });
}

// Returns once every rank has called it (or fails after the group's timeout).
int pretext_dist_barrier(void* handle, char* error, size_t error_len) {
  return guarded(error, error_len, [&] {
    const auto& group = open_group(handle);
    c10d::BarrierOptions options;
    options.timeout = group.timeout;
    wait(group, group.backend->barrier(options));
  });
}

// Writes `value` under `key` in the group's store (the rendezvous store, under the group's
// prefix): how a failing process leaves its message for the others.
int pretext_dist_store_set(void* handle, const char* key, const char* value, char* error,
                           size_t error_len) {
  return guarded(error, error_len, [&] {
    const auto& group = *static_cast<Group*>(handle);
    const std::string text(value);
    group.store->set(key, std::vector<uint8_t>(text.begin(), text.end()));
  });
}

// `*found` = 1 and the value of `key` in `value` (NUL-terminated, truncated to `value_len`)
// when the store holds `key` now, else `*found` = 0; never waits for the key.
int pretext_dist_store_check_get(void* handle, const char* key, int* found, char* value,
                                 size_t value_len, char* error, size_t error_len) {
  return guarded(error, error_len, [&] {
    const auto& group = *static_cast<Group*>(handle);
    *found = 0;
    if (!group.store->check({std::string(key)})) {
      return;
    }
    const auto bytes = group.store->get(key);
    const std::string text(bytes.begin(), bytes.end());
    fail(text.c_str(), value, value_len);
    *found = 1;
  });
}

}  // extern "C"
