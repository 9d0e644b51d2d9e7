//! Makes the seed corpus from the project's real test data (`../shared/data`): small cuts
//! of real files, one folder per target, written by `pretext-fuzz --make-corpus DIR`.
//! `corpus/README.md` says where each seed comes from and under which license.
//!
//! Every seed is made deterministically, so rerunning gives the same bytes.

mod audio;
mod configs;
mod tables;
mod text;
mod vision;
mod weights;
mod writer;

pub use writer::make_corpus;
