// ProcessGroupNCCL for pretext-dist (cargo feature `nccl`): a translation unit of its own,
// because ProcessGroupNCCL.hpp includes the CUDA runtime and NCCL headers. Its symbols live in
// libtorch_cuda.so, which build.rs links when the feature is on.

#include <ATen/Context.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/util/Exception.h>

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include "backends.h"

namespace pretext_dist {

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int world_size, int local_rank,
                                                    std::chrono::milliseconds timeout) {
  // Checked before anything touches CUDA, so that a machine without a GPU (or a CPU-only
  // libtorch) gets an error rather than a crash.
  TORCH_CHECK(at::globalContext().hasCUDA(),
              "the NCCL backend needs a CUDA GPU, and libtorch sees none (no GPU or driver, "
              "or a CPU-only libtorch); use the Gloo backend on CPUs");
  const auto devices = static_cast<int>(c10::cuda::device_count());
  TORCH_CHECK(local_rank >= 0 && local_rank < devices, "LOCAL_RANK ", local_rank,
              " has no CUDA device: this machine has ", devices,
              " (one process per GPU: launch at most that many per node)");
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(local_rank));
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, options);
}

}  // namespace pretext_dist
