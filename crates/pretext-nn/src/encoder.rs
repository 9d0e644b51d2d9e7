//! The `Encoder` trait: what transfer (probe, k-NN, fine-tuning) needs of a backbone.

use tch::Tensor;

/// An input batch (images `[B, C, H, W]` or token ids `[B, T]`) to a representation `[B, dim]`.
pub trait Encoder {
    /// Runs the encoder; `train` switches batch norm to batch statistics and dropout on.
    fn encode(&self, inputs: &Tensor, train: bool) -> Tensor;
    /// Width of the representation.
    fn dim(&self) -> i64;
}
