//! Transfer and evaluation: frozen features, weighted k-NN, linear probe, and the probe
//! protocol that compares a pretrained encoder with raw inputs (pixels, TF-IDF) and a
//! random-init encoder on the same stratified label subset.

pub mod classic;
pub mod features;
pub mod finetune;
pub mod linear_probe;
pub mod probe;
pub mod study;

pub use classic::{
    classic_baselines, regression_accuracy, ClassicConfig, ClassicFeatures, ClassicResult,
    LabeledRows, Pca,
};
pub use features::{encode_samples, raw_features, raw_features_name, tfidf_features};
pub use finetune::{
    encoder_depth, finetune, EpochRecord, FinetuneConfig, FinetuneReport, FinetuneSearch,
};
pub use linear_probe::{linear_probe_accuracy, LinearProbe, LinearProbeConfig, LinearProbeResult};
pub use probe::{
    evaluate_features, load_model, probe, probe_baselines, probe_budgets, ProbeConfig, ProbeReport,
    ProbeRow, ProbeSplit,
};
