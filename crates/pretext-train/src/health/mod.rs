//! Health of a pretraining run: the signals measured on a batch ([`signals`]) and the
//! plain-words verdicts drawn from them ([`verdict`]), shared by the live warnings of
//! `pretrain` and by `pretext health`.

pub mod signals;
pub mod verdict;

pub use signals::{
    alignment, effective_rank, embedding_std, uniformity, view_agreement, BatchHealth,
};
pub use verdict::{live_findings, overall, review, Codebook, Finding, HealthContext, Level};
