//! Cell files: where each measured cell is saved, the fingerprint that says whether a saved
//! cell still holds (the config as TOML, placement aside), and the job that measures only
//! the cells missing.

use std::path::PathBuf;
use std::time::Instant;

use pretext_train::{write_atomic, HostReads, PretrainConfig, TrainError};
use sha2::{Digest, Sha256};

use super::runner::Runner;
use super::Cell;

/// `config` without what changes only where and how fast it runs (the device, the data
/// workers and prefetch, when the host reads a step's numbers): what a result depends on.
fn without_placement(config: &PretrainConfig) -> PretrainConfig {
    let mut config = config.clone();
    config.device = String::new();
    config.data.workers = 0;
    config.data.prefetch = 0;
    config.train.host_reads = HostReads::Auto;
    config
}

/// Whether two configs read the same data the same way.
pub(super) fn same_data(a: &PretrainConfig, b: &PretrainConfig) -> bool {
    without_placement(a).data == without_placement(b).data
}

/// Whether a saved run config trains exactly as `wanted` does.
pub(super) fn same_training(saved: &PretrainConfig, wanted: &PretrainConfig) -> bool {
    without_placement(saved) == without_placement(wanted)
}

/// The config as TOML, placement aside: the part of a cell's fingerprint that says which
/// model it measured.
pub(super) fn training_print(config: &PretrainConfig) -> String {
    // `train.host_reads` came after studies had measured cells; its line is left out so
    // that their fingerprints still hold.
    without_placement(config)
        .to_toml()
        .lines()
        .filter(|line| *line != HOST_READS_LINE)
        .flat_map(|line| [line, "\n"])
        .collect()
}

/// The TOML line of `train.host_reads` once placement is set aside.
const HOST_READS_LINE: &str = "host_reads = \"auto\"";

pub(super) fn fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(12)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A file-name-safe form of a series name or budget ("simclr · k-NN 20" → "simclr-k-nn-20").
pub(super) fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.replace('%', "pct").chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// A cell a job must produce: its series, budget index and seed.
pub(super) type Wanted = (String, usize, u64);

/// A measured cell: series, budget index, seed, accuracy and what the measurement chose.
pub(super) struct Measured {
    pub(super) series: String,
    pub(super) budget: usize,
    pub(super) seed: u64,
    pub(super) accuracy: f64,
    pub(super) note: String,
    /// Why it could not be measured.
    pub(super) unmeasured: Option<String>,
}

impl Measured {
    pub(super) fn new(series: &str, budget: usize, seed: u64, accuracy: f64) -> Measured {
        Measured {
            series: series.to_string(),
            budget,
            seed,
            accuracy,
            note: String::new(),
            unmeasured: None,
        }
    }

    pub(super) fn noted(self, note: impl Into<String>) -> Measured {
        Measured {
            note: note.into(),
            ..self
        }
    }
}

/// Whether an error is the cell's own (its settings do not fit its labels or data): the
/// cell is marked unmeasured and the study goes on. Anything else (the disk, the device,
/// another process) stops the study.
pub(super) fn cell_level(error: &TrainError) -> bool {
    matches!(
        error,
        TrainError::Data(_)
            | TrainError::Invalid { .. }
            | TrainError::TooManyNonFinite { .. }
            | TrainError::Torch(_)
    )
}

/// The work of a job: measures the missing cells it is given.
pub(super) type Work<'w> = dyn FnMut(&[Wanted]) -> Result<Vec<Measured>, TrainError> + 'w;

impl Runner<'_> {
    fn cell_path(&self, series: &str, budget: usize, seed: u64) -> PathBuf {
        self.plan.out.join("cells").join(slug(series)).join(format!(
            "{}-seed{seed}.json",
            slug(&self.budgets[budget].budget)
        ))
    }

    /// The cell on disk, when it exists with this fingerprint.
    fn saved_cell(&self, series: &str, budget: usize, seed: u64, print: &str) -> Option<Cell> {
        let text = std::fs::read_to_string(self.cell_path(series, budget, seed)).ok()?;
        let cell: Cell = serde_json::from_str(&text).ok()?;
        (cell.fingerprint == print && cell.labels == self.budgets[budget].labels).then_some(cell)
    }

    /// Runs a job unless every cell it would produce is on disk; `work` gets the wanted
    /// cells still missing and returns (series, budget index, seed, accuracy) for them.
    pub(super) fn job(
        &mut self,
        description: &str,
        print: &str,
        wanted: Vec<Wanted>,
        work: &mut Work<'_>,
    ) -> Result<(), TrainError> {
        if let Some((rank, world)) = self.spread {
            let number = self.jobs_seen;
            self.jobs_seen += 1;
            if number % world != rank {
                return Ok(());
            }
        }
        let mut missing = Vec::new();
        for (series, budget, seed) in wanted {
            match self.saved_cell(&series, budget, seed, print) {
                Some(cell) => {
                    self.cells.push(cell);
                    self.reused += 1;
                }
                None => missing.push((series, budget, seed)),
            }
        }
        if missing.is_empty() {
            self.progress.job(description, true);
            return Ok(());
        }
        self.progress.job(description, false);
        let started = Instant::now();
        // A cell is one process's work, also when several share the study.
        let measured = match pretext_train::parallel::alone(|| work(&missing)) {
            Ok(measured) => measured,
            Err(error) if cell_level(&error) => {
                self.progress.message(&format!(
                    "could not measure {description}: {error}; the results mark it n/a and the study goes on"
                ));
                missing
                    .iter()
                    .map(|(series, budget, seed)| Measured {
                        unmeasured: Some(error.to_string()),
                        ..Measured::new(series, *budget, *seed, 0.0)
                    })
                    .collect()
            }
            Err(error) => return Err(error),
        };
        let seconds = started.elapsed().as_secs_f64() / measured.len().max(1) as f64;
        for measured in measured {
            let Measured {
                series,
                budget,
                seed,
                accuracy,
                note,
                unmeasured,
            } = measured;
            let cell = Cell {
                series: series.clone(),
                budget: self.budgets[budget].budget.clone(),
                labels: self.budgets[budget].labels,
                seed,
                accuracy,
                seconds,
                fingerprint: print.to_string(),
                note,
                unmeasured,
            };
            let path = self.cell_path(&series, budget, seed);
            let parent = path.parent().expect("cells/<series>/file");
            std::fs::create_dir_all(parent).map_err(TrainError::io(parent))?;
            write_atomic(
                &path,
                serde_json::to_string_pretty(&cell).expect("a cell serializes") + "\n",
            )?;
            self.cells.push(cell);
            self.measured += 1;
        }
        self.progress.job_done();
        Ok(())
    }
}

/// The measured results that were asked for.
pub(super) fn keep_missing(measured: Vec<Measured>, missing: &[Wanted]) -> Vec<Measured> {
    measured
        .into_iter()
        .filter(|cell| {
            missing
                .iter()
                .any(|m| m.0 == cell.series && m.1 == cell.budget && m.2 == cell.seed)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("simclr · k-NN 20"), "simclr-k-nn-20");
        assert_eq!(slug("10%"), "10pct");
        assert_eq!(slug("PCA + LR"), "pca-lr");
    }

    #[test]
    fn the_training_print_leaves_out_only_the_host_reads_line() {
        let mut config = PretrainConfig::default();
        config.train.host_reads = pretext_train::HostReads::LogSteps;
        let print = training_print(&config);
        assert!(!print.contains("host_reads"), "{print}");
        let whole = without_placement(&config).to_toml();
        assert_eq!(print.len() + HOST_READS_LINE.len() + 1, whole.len());
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
        assert_eq!(fingerprint(&["x"]), fingerprint(&["x"]));
        assert_eq!(fingerprint(&["x"]).len(), 24);
    }

    #[test]
    fn device_and_workers_do_not_change_training() {
        let a = PretrainConfig::default();
        let mut b = a.clone();
        b.device = "cuda".into();
        b.data.workers = 7;
        assert!(same_training(&b, &a) && same_data(&a, &b));
        b.train.steps += 1;
        assert!(!same_training(&b, &a));
        b.data.path = "elsewhere".into();
        assert!(!same_data(&a, &b));
    }
}
