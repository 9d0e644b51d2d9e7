//! MoCo's queue of negative keys (He et al., 2020, §3.1): a first-in-first-out dictionary of
//! the K most recent keys from the momentum encoder. Each step enqueues the current batch's
//! keys over the oldest entries. Untrained state: it lives in the method's state store and is
//! saved with every checkpoint (the write position too), so a resumed run sees the same
//! negatives.

use tch::{nn, Kind, Tensor};

use crate::loss::l2_normalize;

/// `keys`: `[K, D]` L2-normalized rows; `position`: the next row to overwrite.
#[derive(Debug)]
pub struct NegativeQueue {
    keys: Tensor,
    position: Tensor,
}

impl NegativeQueue {
    /// A queue of `size` random unit vectors of `dim` (MoCo's initialization), registered as
    /// `keys` and `position` under `path` (not trainable).
    pub fn new(path: &nn::Path, size: i64, dim: i64) -> NegativeQueue {
        let initial = l2_normalize(&Tensor::randn([size, dim], (Kind::Float, path.device())));
        let keys = path.add("keys", initial, false);
        let position = path.add(
            "position",
            Tensor::zeros([1], (Kind::Int64, path.device())),
            false,
        );
        NegativeQueue { keys, position }
    }

    /// The negatives, `[K, D]` (a view: do not keep it across an `enqueue`).
    pub fn keys(&self) -> &Tensor {
        &self.keys
    }

    pub fn len(&self) -> i64 {
        self.keys.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `new_keys` (`[B, D]`, normalized here) over the oldest rows, wrapping around,
    /// on the device (the host never reads the write position). `taken`: None when the
    /// step's update was taken; `Some(flag)` when the device decided (a float32 scalar, 1 =
    /// taken, 0 = skipped): a skipped step leaves the queue and its position as they were.
    pub fn enqueue(&mut self, new_keys: &Tensor, taken: Option<&Tensor>) {
        let _guard = tch::no_grad_guard();
        let new_keys = l2_normalize(&crate::fp32(&new_keys.detach()));
        let size = self.len();
        let batch = new_keys.size()[0];
        // Only the last `size` keys survive a batch larger than the queue.
        let skip = (batch - size).max(0);
        let kept = new_keys.narrow(0, skip, batch - skip);
        let rows = (Tensor::arange_start(skip, batch, (Kind::Int64, self.keys.device()))
            + &self.position)
            .remainder(size);
        let (kept, next) = match taken {
            None => (kept, &self.position + batch),
            Some(taken) => (
                kept.where_self(&taken.gt(0.5), &self.keys.index_select(0, &rows)),
                &self.position + taken.to_kind(Kind::Int64) * batch,
            ),
        };
        let _ = self.keys.index_copy_(0, &rows, &kept);
        let next = next.remainder(size);
        self.position.copy_(&next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device};

    #[test]
    fn enqueue_overwrites_oldest_rows_and_wraps() {
        let store = VarStore::new(Device::Cpu);
        let mut queue = NegativeQueue::new(&store.root(), 5, 2);
        let batch = |values: &[f32]| {
            Tensor::from_slice(&values.iter().flat_map(|&v| [v, 0.0]).collect::<Vec<_>>())
                .view([-1, 2])
        };
        // Rows hold (±1, 0) after normalization; we track the sign pattern via keys.
        queue.enqueue(&batch(&[1.0, 1.0, 1.0]), None);
        queue.enqueue(&batch(&[-1.0, -1.0, -1.0]), None);
        // 3 positive rows at 0..3, then negatives at 3, 4 and (wrapped) 0.
        let first = Vec::<f32>::try_from(queue.keys().select(1, 0)).unwrap();
        assert_eq!(first, vec![-1.0, 1.0, 1.0, -1.0, -1.0]);
        assert_eq!(queue.position.int64_value(&[0]), 1);
        let names: Vec<String> = store.variables().into_keys().collect();
        assert!(names.contains(&"keys".to_string()) && names.contains(&"position".to_string()));
        assert!(store.trainable_variables().is_empty());
    }

    #[test]
    fn a_skipped_step_leaves_the_queue_and_a_taken_one_enqueues() {
        let store = VarStore::new(Device::Cpu);
        let mut queue = NegativeQueue::new(&store.root(), 4, 2);
        let rows = |values: &[f32]| {
            Tensor::from_slice(&values.iter().flat_map(|&v| [v, 0.0]).collect::<Vec<_>>())
                .view([-1, 2])
        };
        let signs =
            |queue: &NegativeQueue| Vec::<f32>::try_from(queue.keys().select(1, 0)).unwrap();
        queue.enqueue(&rows(&[1.0, 1.0, 1.0, 1.0]), None);
        queue.enqueue(&rows(&[-1.0, -1.0]), Some(&Tensor::from(0.0f32)));
        assert_eq!(signs(&queue), vec![1.0; 4]);
        assert_eq!(queue.position.int64_value(&[0]), 0);
        queue.enqueue(&rows(&[-1.0, -1.0]), Some(&Tensor::from(1.0f32)));
        assert_eq!(signs(&queue), vec![-1.0, -1.0, 1.0, 1.0]);
        assert_eq!(queue.position.int64_value(&[0]), 2);
        // A batch larger than the queue: its last 4 keys, from the write position on.
        queue.enqueue(&rows(&[1.0, -1.0, 1.0, 1.0, -1.0, -1.0]), None);
        assert_eq!(signs(&queue), vec![1.0, 1.0, -1.0, -1.0]);
        assert_eq!(queue.position.int64_value(&[0]), 0);
    }
}
