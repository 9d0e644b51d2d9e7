//! `pretext study`: for one dataset, every listed self-supervised method is pretrained once,
//! then each pretrained encoder (k-NN, linear probe, fine-tuning) and every baseline (raw
//! features, PCA and k-means with logistic regression, the random-init encoder, the same
//! encoder trained from scratch, self-training) is measured at every label budget and seed,
//! on the same labeled subsets.
//!
//! A study directory holds:
//!
//! ```text
//! study.toml            the study's settings, every default written out
//! runs/<method>/        each method's pretraining run (resumed when interrupted)
//! cells/<series>/<budget>-seed<s>.json   one measured accuracy each, written atomically
//! results.md, results.csv, cells.csv, results.json, accuracy.png, accuracy.svg, report.html
//! ```
//!
//! A cell already on disk with the same settings (its fingerprint) is not measured again,
//! so a killed study continues where it stopped and a study given one more budget or seed
//! measures only what is new.

mod cells;
mod claims;
pub mod config;
mod jobs;
pub mod plot;
pub mod report;
mod run;
mod runner;
pub mod summary;

pub use claims::Paired;
pub use config::{StudyConfig, StudyMethod, BASELINES, EVALUATIONS};
pub use report::MethodHealth;
pub use run::{run_study, write_outputs, PlannedMethod, StudyOutput, StudyPlan, StudyProgress};
pub use summary::{Budget, Cell, Series, Stat, StudyResults};
