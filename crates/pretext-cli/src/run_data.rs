//! The data a command reads for an existing run: the run's own (`data.path`) or another spec
//! given with `--data`, which must be of the modality the run was pretrained on, read with
//! the run's settings and tokenizer.

use anyhow::{bail, Context};
use pretext_data::Splits;
use pretext_train::{PretrainConfig, RunDir};

/// Opens `spec` (else the run's own data) for `run`; data of another modality is refused
/// naming both, before any tokenizer is made for it.
pub fn open_for_run(
    run: &RunDir,
    config: &PretrainConfig,
    spec: Option<&str>,
) -> anyhow::Result<Splits> {
    let spec = spec.unwrap_or(&config.data.path);
    let found = pretext_data::modality(spec);
    let expected = config.method.name.modality();
    if found != expected {
        bail!(
            "`{spec}` is {found}, but {} was pretrained on {expected} (method {}); give {expected} of the same kind",
            run.root.display(),
            config.method.name.as_str()
        );
    }
    Ok(
        pretext_data::open(spec, &config.data_options(Some(&run.root)))
            .context("loading the data")?
            .splits,
    )
}

/// Refuses an empty held-out split, which every score is measured on.
pub fn require_test_split(spec: &str, data: &Splits) -> anyhow::Result<()> {
    if data.test.is_empty() {
        bail!(
            "{spec}: the test split is empty ({} training samples, none held out), so there is nothing to score on; give more samples per class, or a labeled held-out file (data.test_path)",
            data.train.len()
        );
    }
    Ok(())
}
