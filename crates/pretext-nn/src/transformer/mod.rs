//! A transformer over token sequences (Vaswani et al., 2017): token, position and (optional)
//! segment embeddings, then blocks of multi-head self-attention and an MLP, each wrapped in
//! a residual connection and layer norm. One module serves BERT-style encoders (post-LN,
//! bidirectional, Devlin et al., 2019) and GPT-style decoders (pre-LN with a final norm,
//! causal mask, Radford et al., 2019); attention runs through libtorch's
//! `scaled_dot_product_attention` (flash / memory-efficient kernels where available).
//!
//! Parameter names follow Hugging Face's `BertModel` (`embeddings.word_embeddings.weight`,
//! `encoder.layer.N.attention.self.query.weight`, …), so BERT-family checkpoints load by
//! name ([`crate::hf_bert`]).

mod blocks;
mod config;
mod kv_cache;
mod model;
#[cfg(test)]
mod tests;

pub use blocks::TransformerBlocks;
pub use config::TransformerConfig;
pub use kv_cache::KvCache;
pub use model::{mean_pool, Transformer};
