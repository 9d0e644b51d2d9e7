//! Losses, each a pure function of tensors, tested against brute-force references.

mod nt_xent;

pub use nt_xent::nt_xent;
