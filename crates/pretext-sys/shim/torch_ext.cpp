// libtorch settings that tch 0.24 does not bind: autocast per device type with its dtype,
// and TF32 for cuBLAS / cuDNN. Every function catches C++ exceptions and returns 0 on
// success, 1 on failure with the message copied into `error` (NUL-terminated, truncated).

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/Context.h>

#include <cstring>
#include <exception>
#include <optional>
#include <vector>

namespace {

c10::DeviceType device_type(int device) {
  return device == 1 ? c10::DeviceType::CUDA : c10::DeviceType::CPU;
}

int fail(const char* message, char* error, size_t error_len) {
  if (error != nullptr && error_len > 0) {
    std::strncpy(error, message, error_len - 1);
    error[error_len - 1] = '\0';
  }
  return 1;
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

}  // namespace

extern "C" {

// Turns autocast on (in bfloat16 when bf16 = 1, else float16) or off for `device` (0: CPU,
// 1: CUDA) on the calling thread; `previous` receives whether it was on.
int pretext_set_autocast(int device, int enabled, int bf16, int* previous, char* error,
                         size_t error_len) {
  try {
    auto type = device_type(device);
    *previous = at::autocast::is_autocast_enabled(type) ? 1 : 0;
    if (enabled) {
      at::autocast::set_autocast_dtype(type, bf16 ? at::kBFloat16 : at::kHalf);
    }
    at::autocast::set_autocast_enabled(type, enabled != 0);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what(), error, error_len);
  }
}

// Counts one more autocast region open (the cache of cast weights lives while any is).
void pretext_autocast_enter() { at::autocast::increment_nesting(); }

// Closes an autocast region; the outermost frees the cached casts of the weights.
void pretext_autocast_exit() {
  if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
}

// Whether autocast is on for `device` on the calling thread.
int pretext_autocast_enabled(int device) {
  try {
    return at::autocast::is_autocast_enabled(device_type(device)) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

// TF32 for float32 matrix multiplies (cuBLAS) and convolutions (cuDNN), process-wide.
int pretext_set_tf32(int enabled, char* error, size_t error_len) {
  try {
    at::globalContext().setAllowTF32CuBLAS(enabled != 0);
    at::globalContext().setAllowTF32CuDNN(enabled != 0);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what(), error, error_len);
  }
}

// Whether cuBLAS may use TF32 for float32 matrix multiplies.
int pretext_tf32_enabled() {
  try {
    return at::globalContext().allowTF32CuBLAS() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

// One AdamW update of `count` parameters in one fused kernel per device (PyTorch's
// `AdamW(fused=True)`): p <- p(1 - lr wd); m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
// p <- p - lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
// `steps` null: the update's number is `step`. Otherwise `steps` (a float32 scalar on the
// parameters' device) holds it and `found_inf` (the same) skips the whole update where it is
// 1, both read by the kernel on the device, so the host never waits for them.
int pretext_fused_adamw(void* const* params, void* const* grads, void* const* exp_avgs,
                        void* const* exp_avg_sqs, size_t count, double step, void* steps,
                        void* found_inf, double lr, double beta1, double beta2,
                        double weight_decay, double eps, char* error, size_t error_len) {
  try {
    if (count == 0) {
      return 0;
    }
    auto p = tensor_list(params, count);
    auto steps_value = steps != nullptr
                           ? *static_cast<at::Tensor*>(steps)
                           : at::full({}, step, p[0].options().dtype(at::kFloat));
    std::optional<at::Tensor> skip;
    if (found_inf != nullptr) {
      skip = *static_cast<at::Tensor*>(found_inf);
    }
    std::vector<at::Tensor> step_list(count, steps_value);
    at::_fused_adamw_(p, tensor_list(grads, count), tensor_list(exp_avgs, count),
                      tensor_list(exp_avg_sqs, count), {}, step_list, lr, beta1, beta2,
                      weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false,
                      /*grad_scale=*/std::nullopt, skip);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what(), error, error_len);
  }
}

// The L2 norm of all `count` tensors together, as a new float32 scalar tensor in `*out`
// (one multi-tensor kernel instead of one reduction per tensor).
int pretext_total_norm(void* const* tensors, size_t count, void** out, char* error,
                       size_t error_len) {
  try {
    auto norms = at::_foreach_norm(tensor_list(tensors, count), 2);
    auto total = at::linalg_vector_norm(at::stack(norms).to(at::kFloat), 2);
    *out = new at::Tensor(total);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what(), error, error_len);
  }
}

// Multiplies `count` tensors in place by `factor` (one multi-tensor kernel).
int pretext_scale_all(void* const* tensors, size_t count, double factor, char* error,
                      size_t error_len) {
  try {
    auto list = tensor_list(tensors, count);
    at::_foreach_mul_(list, factor);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what(), error, error_len);
  }
}

// Multiplies `count` tensors in place by `factor`, a scalar tensor on their device (one
// multi-tensor kernel; the host does not read the factor).
int pretext_scale_all_by(void* const* tensors, size_t count, void* factor, char* error,
                         size_t error_len) {
  try {
    auto list = tensor_list(tensors, count);
    at::_foreach_mul_(list, *static_cast<at::Tensor*>(factor));
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what(), error, error_len);
  }
}

// Sets `count` tensors to zero in place (one multi-tensor kernel).
int pretext_zero_all(void* const* tensors, size_t count, char* error, size_t error_len) {
  try {
    auto list = tensor_list(tensors, count);
    at::_foreach_zero_(list);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what(), error, error_len);
  }
}

// `tensor` (on the host) copied to CUDA device `device_index` through page-locked memory,
// without waiting for the copy: it is queued on the device's current stream, ahead of the
// kernels that read it, and the caching host allocator keeps the pinned buffer until it has
// run. `pin_memory()` without a device argument (the argument is deprecated and warns on
// every call, which tch's binding always passes).
int pretext_to_cuda_pinned(void* tensor, int device_index, void** out, char* error,
                           size_t error_len) {
  try {
    const auto& host = *static_cast<at::Tensor*>(tensor);
    auto pinned = host.is_pinned() ? host : host.pin_memory();
    auto copied = pinned.to(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_index)),
                            /*non_blocking=*/true);
    *out = new at::Tensor(std::move(copied));
    return 0;
  } catch (const c10::Error& e) {
    return fail(e.what_without_backtrace(), error, error_len);
  } catch (const std::exception& e) {
    return fail(e.what(), error, error_len);
  }
}

}  // extern "C"
