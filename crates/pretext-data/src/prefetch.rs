//! Builds batches on worker threads while the model computes.
//!
//! Workers claim steps in increasing order, at most `depth` steps ahead of the consumer
//! (counting steps being built and steps built but not yet taken), and send each result
//! tagged with its step; the consumer reorders them, so the output is exactly
//! `make(start), make(start + 1), ...` whatever the thread timing.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

type PanicPayload = Box<dyn Any + Send>;
type Produced<T> = (u64, Result<T, PanicPayload>);

/// Shared between the consumer and the workers: which step to claim next and how far
/// ahead workers may go.
struct Window {
    state: Mutex<WindowState>,
    changed: Condvar,
}

struct WindowState {
    /// The next step a worker will build.
    next_to_claim: u64,
    /// The next step the consumer will take.
    next_to_consume: u64,
    /// Set when the prefetcher is dropped or a worker panicked: workers exit.
    stopped: bool,
}

impl Window {
    fn lock(&self) -> MutexGuard<'_, WindowState> {
        // `make` never runs under the lock, so poisoning cannot happen; recover anyway.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }
}

/// Produces `make(step)` for `step` in `start..end`, in order, computed by worker threads
/// up to `depth` batches ahead.
///
/// Deterministic: the output for a step depends only on `make` and the step. Dropping the
/// prefetcher stops the workers (each finishes the `make` call it is in, then exits) and
/// joins them. If `make` panics, `next()` panics with the step and the message when it
/// reaches that step, instead of waiting forever.
pub struct Prefetcher<T> {
    results: Receiver<Produced<T>>,
    /// Results that arrived ahead of their turn, by step.
    arrived: BTreeMap<u64, Result<T, PanicPayload>>,
    next_step: u64,
    end: u64,
    window: Arc<Window>,
    workers: Vec<JoinHandle<()>>,
    waited: Duration,
}

impl<T: Send + 'static> Prefetcher<T> {
    /// Starts `workers` threads (at least 1) building `make(step)` for `step` in `start..end`,
    /// at most `depth` (at least 1) steps ahead of the consumer.
    pub fn new<F>(start: u64, end: u64, workers: usize, depth: usize, make: F) -> Self
    where
        F: Fn(u64) -> T + Send + Sync + 'static,
    {
        let window = Arc::new(Window {
            state: Mutex::new(WindowState {
                next_to_claim: start,
                next_to_consume: start,
                stopped: false,
            }),
            changed: Condvar::new(),
        });
        let (sender, results) = crossbeam_channel::unbounded();
        let make = Arc::new(make);
        let depth = depth.max(1) as u64;
        let handles = (0..workers.max(1))
            .map(|worker| {
                let (window, sender, make) =
                    (Arc::clone(&window), sender.clone(), Arc::clone(&make));
                std::thread::Builder::new()
                    .name(format!("pretext-prefetch-{worker}"))
                    .spawn(move || run_worker(&window, &sender, &*make, end, depth))
                    .expect("spawning a prefetch worker thread")
            })
            .collect();
        Prefetcher {
            results,
            arrived: BTreeMap::new(),
            next_step: start,
            end,
            window,
            workers: handles,
            waited: Duration::ZERO,
        }
    }

    /// The next step's value, in step order; `None` after `end`. Panics if `make` panicked
    /// on this step.
    #[allow(clippy::should_implement_trait)] // also implemented as `Iterator::next` below
    pub fn next(&mut self) -> Option<T> {
        if self.next_step >= self.end {
            return None;
        }
        let step = self.next_step;
        let result = loop {
            if let Some(result) = self.arrived.remove(&step) {
                break result;
            }
            let started = Instant::now();
            let received = self.results.recv();
            self.waited += started.elapsed();
            match received {
                Ok((arrived_step, result)) => {
                    self.arrived.insert(arrived_step, result);
                }
                Err(_) => panic!("prefetch workers exited before producing step {step}"),
            }
        };
        self.next_step += 1;
        self.window.lock().next_to_consume = self.next_step;
        self.window.changed.notify_all();
        match result {
            Ok(value) => Some(value),
            Err(payload) => {
                self.window.stop();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|text| text.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_string());
                panic!("prefetch: make({step}) panicked: {message}");
            }
        }
    }

    /// Total time `next()` spent blocked waiting for a worker (the "step waits on data" time).
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl<T: Send + 'static> Iterator for Prefetcher<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        Prefetcher::next(self)
    }
}

impl<T> Drop for Prefetcher<T> {
    fn drop(&mut self) {
        self.window.stop();
        for handle in self.workers.drain(..) {
            // A worker never panics (make's panics are caught), so join only fails if the
            // thread was killed; nothing to do then.
            let _ = handle.join();
        }
    }
}

fn run_worker<T, F: Fn(u64) -> T>(
    window: &Window,
    sender: &Sender<Produced<T>>,
    make: &F,
    end: u64,
    depth: u64,
) {
    loop {
        let step = {
            let mut state = window.lock();
            loop {
                if state.stopped || state.next_to_claim >= end {
                    return;
                }
                if state.next_to_claim < state.next_to_consume.saturating_add(depth) {
                    break;
                }
                state = window
                    .changed
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            state.next_to_claim += 1;
            state.next_to_claim - 1
        };
        let result = catch_unwind(AssertUnwindSafe(|| make(step)));
        let panicked = result.is_err();
        if sender.send((step, result)).is_err() || panicked {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A deterministic, uneven amount of work per step so that workers finish out of order.
    fn slow_square(step: u64) -> u64 {
        std::thread::sleep(Duration::from_micros((step * 7919) % 5 * 400));
        step * step
    }

    #[test]
    fn output_order_equals_sequential() {
        let expected: Vec<u64> = (10..110).map(|step| step * step).collect();
        for (workers, depth) in [(1, 1), (4, 8), (8, 2), (3, 100)] {
            let prefetcher = Prefetcher::new(10, 110, workers, depth, slow_square);
            let produced: Vec<u64> = prefetcher.collect();
            assert_eq!(produced, expected, "workers {workers}, depth {depth}");
        }
    }

    #[test]
    fn next_returns_none_after_end_and_for_empty_ranges() {
        let mut prefetcher = Prefetcher::new(0, 2, 2, 2, |step| step);
        assert_eq!(
            (prefetcher.next(), prefetcher.next(), prefetcher.next()),
            (Some(0), Some(1), None)
        );
        assert_eq!(prefetcher.next(), None);
        assert_eq!(Prefetcher::new(5, 5, 2, 2, |step| step).next(), None);
    }

    #[test]
    fn waited_counts_blocking_time_only() {
        // One worker, 20 ms per batch, a consumer that never pauses: it waits ~5 x 20 ms.
        let started = Instant::now();
        let mut slow = Prefetcher::new(0, 5, 1, 2, |step| {
            std::thread::sleep(Duration::from_millis(20));
            step
        });
        while slow.next().is_some() {}
        assert!(
            slow.waited() >= Duration::from_millis(60),
            "{:?}",
            slow.waited()
        );
        assert!(slow.waited() <= started.elapsed());

        // Fast batches and a consumer that takes 20 ms per step: the data is always ready.
        let mut fast = Prefetcher::new(0, 5, 2, 4, |step| step);
        std::thread::sleep(Duration::from_millis(20));
        while fast.next().is_some() {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            fast.waited() < Duration::from_millis(20),
            "{:?}",
            fast.waited()
        );
    }

    #[test]
    fn workers_stay_within_depth_and_drop_stops_them() {
        let calls = Arc::new(AtomicU64::new(0));
        let tracker = Arc::new(());
        let (calls_in_make, tracker_in_make) = (Arc::clone(&calls), Arc::clone(&tracker));
        let mut prefetcher = Prefetcher::new(0, u64::MAX, 4, 3, move |step| {
            let _alive = &tracker_in_make;
            calls_in_make.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
            step
        });
        for expected in 0..10 {
            assert_eq!(prefetcher.next(), Some(expected));
        }
        std::thread::sleep(Duration::from_millis(30));
        // 10 taken, at most 3 ahead.
        assert!(
            calls.load(Ordering::SeqCst) <= 13,
            "{}",
            calls.load(Ordering::SeqCst)
        );
        drop(prefetcher);
        // Every worker has exited: the closure (and its tracker clone) is gone.
        assert_eq!(Arc::strong_count(&tracker), 1);
        let after_drop = calls.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(calls.load(Ordering::SeqCst), after_drop);
    }

    #[test]
    fn panic_in_make_propagates_instead_of_hanging() {
        let (done, finished) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let mut prefetcher = Prefetcher::new(0, 100, 3, 4, |step| {
                    if step == 3 {
                        panic!("bad sample at step 3");
                    }
                    step
                });
                (0..10).map(|_| prefetcher.next()).collect::<Vec<_>>()
            }));
            let message = match outcome {
                Ok(values) => format!("no panic: {values:?}"),
                Err(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default(),
            };
            let _ = done.send(message);
        });
        let message = finished
            .recv_timeout(Duration::from_secs(10))
            .expect("next() hung after a panic in make");
        assert_eq!(message, "prefetch: make(3) panicked: bad sample at step 3");
    }
}
