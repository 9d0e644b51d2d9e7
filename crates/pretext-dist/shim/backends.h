// Backends that live in their own translation unit because their headers need more than
// libtorch's own (ProcessGroupNCCL.hpp needs the CUDA runtime and NCCL headers).

#pragma once

#include <chrono>

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

namespace pretext_dist {

#ifdef PRETEXT_DIST_NCCL
// A ProcessGroupNCCL on CUDA device `local_rank` (made current for the calling thread), or a
// c10::Error when libtorch sees no usable GPU for it.
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int world_size, int local_rank,
                                                    std::chrono::milliseconds timeout);
#endif

}  // namespace pretext_dist
