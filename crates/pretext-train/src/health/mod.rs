//! Health of a pretraining run: the signals measured on a batch ([`signals`]) and the
//! plain-words verdicts drawn from them ([`verdict`]) by the rows of
//! [`pretext_methods::signal`], shared by the live warnings of `pretrain` and by
//! `pretext health` ([`judge`]).

mod collapse;
pub mod judge;
mod learning;
mod pretext_task;
mod series;
pub mod signals;
pub mod verdict;
#[cfg(test)]
mod verdict_tests;

pub use judge::{live_findings, review};
pub use signals::{
    alignment, effective_rank, embedding_std, uniformity, view_agreement, BatchHealth,
};
pub use verdict::{overall, Codebook, Finding, HealthContext, Level};
