//! glibc malloc settings for training.
//!
//! Activations of a training step are large (tens of MB) and are freed and allocated again at
//! every step. By default glibc serves allocations above its mmap threshold (at most 32 MB)
//! with fresh `mmap`s and returns them with `munmap`, so each step page-faults and zeroes its
//! activations anew: on 2 cores a third of the CPU time of a SimCLR step went to the kernel.
//! Serving every allocation of the main thread from the heap and never trimming it keeps the
//! pages mapped from one step to the next (measured in BENCHMARKS.md). Other threads' arenas
//! still fall back to mmap for requests their heaps cannot hold, so nothing fails.

/// Applies the settings; call once at start-up, before any large allocation.
pub fn tune_for_training() {
    // SAFETY: mallopt only changes allocator parameters; both values are valid for glibc.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
