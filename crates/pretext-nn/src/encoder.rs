//! The `Encoder` trait: what transfer (probe, k-NN, fine-tuning) needs of a backbone.

use tch::Tensor;

/// An input batch `[B, C, H, W]` to a representation `[B, dim]`.
pub trait Encoder {
    /// Runs the encoder; `train` switches batch-norm to batch statistics.
    fn encode(&self, images: &Tensor, train: bool) -> Tensor;
    /// Width of the representation.
    fn dim(&self) -> i64;
}
