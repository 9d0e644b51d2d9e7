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

pub mod config;
pub mod plot;
pub mod report;
pub mod summary;

use std::path::{Path, PathBuf};
use std::time::Instant;

use pretext_data::{open, parse_label_budget, OpenedData, Splits};
use pretext_train::health::{overall, review, Level};
use pretext_train::metrics::read_metrics;
use pretext_train::{
    pretrain, total_steps, write_atomic, Checkpoint, PretrainConfig, ProgressSink, RunDir, RunMode,
    TrainError,
};
use sha2::{Digest, Sha256};
use tch::Device;

use crate::classic::ClassicConfig;
use crate::finetune::{finetune, FinetuneConfig};
use crate::linear_probe::LinearProbeConfig;
use crate::probe::{probe_baselines, probe_budgets, ProbeConfig};

pub use config::{StudyConfig, StudyMethod, BASELINES, EVALUATIONS};
pub use report::MethodHealth;
pub use summary::{Budget, Cell, Series, Stat, StudyResults};

/// A method of the study with its pretrain config (defaults, the study's `[pretrain]`, the
/// method's own config file and settings, already layered by the caller).
#[derive(Clone, Debug)]
pub struct PlannedMethod {
    pub label: String,
    pub config: PretrainConfig,
}

/// Everything a study needs.
#[derive(Clone, Debug)]
pub struct StudyPlan {
    pub study: StudyConfig,
    pub methods: Vec<PlannedMethod>,
    /// The baselines' encoder and data: the first method's config (or the study's
    /// `[pretrain]` settings when no method is listed).
    pub baseline: PretrainConfig,
    /// The study directory.
    pub out: PathBuf,
}

/// Progress of a whole study, in jobs (a pretraining run, the probes of one encoder and
/// seed, one fine-tuning...).
pub trait StudyProgress {
    /// The number of jobs, done or not.
    fn planned(&mut self, jobs: usize);
    /// A job starts; `reused` when its results are already on disk (it ends at once).
    fn job(&mut self, description: &str, reused: bool);
    /// The job started last has finished.
    fn job_done(&mut self);
    /// A line for the user.
    fn message(&mut self, text: &str);
    /// Where a pretraining job reports its steps.
    fn pretraining(&mut self) -> &mut dyn ProgressSink;
    fn finished(&mut self);
}

/// What a finished study wrote.
pub struct StudyOutput {
    pub results: StudyResults,
    /// The files written, report.html last.
    pub files: Vec<PathBuf>,
    /// Cells measured in this invocation, and cells found already measured.
    pub measured: usize,
    pub reused: usize,
}

/// Runs (or continues) a study and writes its tables, plots and report.
pub fn run_study(
    plan: &StudyPlan,
    device: Device,
    progress: &mut dyn StudyProgress,
) -> Result<StudyOutput, TrainError> {
    let invalid = |field: &str, message: String| TrainError::Invalid {
        field: field.into(),
        message,
    };
    plan.study
        .validate()
        .map_err(|message| invalid("study", message))?;
    for method in &plan.methods {
        if !same_data(&method.config, &plan.baseline) {
            return Err(invalid(
                "study methods",
                format!(
                    "{} reads other data than {} ([data] differs); a study compares methods on one dataset and one set of label subsets",
                    method.label, plan.methods[0].label
                ),
            ));
        }
    }
    let settings_path = plan.out.join("study.toml");
    // Never spill a study into a folder that holds something else.
    let out = RunDir::new(&plan.out);
    if plan.out.exists() && !plan.out.is_dir() {
        return Err(TrainError::Config {
            path: plan.out.clone(),
            message: "exists and is not a folder; choose another --out".into(),
        });
    }
    if out.is_occupied()? && !settings_path.exists() {
        return Err(TrainError::Config {
            path: plan.out.clone(),
            message: "not a study directory (no study.toml) and not empty; choose another --out"
                .into(),
        });
    }
    // One process at a time: the lock is held until the study returns.
    let lock = out.lock()?;
    if let Some(pid) = lock.stale_pid {
        progress.message(&format!(
            "cleared a stale lock: process {pid} stopped without finishing this study"
        ));
    }
    std::fs::create_dir_all(plan.out.join("cells")).map_err(TrainError::io(&plan.out))?;
    write_atomic(
        &settings_path,
        format!(
            "# The study's settings, every default written out.\n{}",
            plan.study.to_toml()
        ),
    )?;
    let mut runner = Runner {
        plan,
        device,
        progress,
        budgets: Vec::new(),
        cells: Vec::new(),
        measured: 0,
        reused: 0,
    };
    runner.progress.planned(runner.job_count());
    let mut health = Vec::new();
    let mut dataset = None;
    let mut raw_features = None;
    // The baselines use the first method's config and data: kept, not read again.
    let mut first = None;
    for (index, method) in plan.methods.iter().enumerate() {
        let (config, checkpoint, data) = runner.pretrain(method)?;
        runner.resolve_budgets(&data)?;
        health.push(method_health(method, &config, &checkpoint, &data)?);
        runner.evaluate_method(index, &config, &checkpoint, &data)?;
        dataset.get_or_insert_with(|| (data.name.clone(), data.train.len(), data.test.len()));
        raw_features.get_or_insert(crate::features::raw_features_name(&data.test));
        if index == 0 && !plan.study.baselines.is_empty() {
            first = Some((config, data));
        }
    }
    if !plan.study.baselines.is_empty() {
        let (config, data) = match first {
            Some(first) => first,
            None => {
                let data =
                    open(&plan.baseline.data.path, &plan.baseline.data_options(None))?.splits;
                (plan.baseline.resolved_for(&data.train)?, data)
            }
        };
        runner.resolve_budgets(&data)?;
        runner.evaluate_baselines(&config, &data)?;
        dataset.get_or_insert_with(|| (data.name.clone(), data.train.len(), data.test.len()));
        raw_features.get_or_insert(crate::features::raw_features_name(&data.test));
    }
    runner.progress.finished();
    let (name, train_size, test_size) = dataset.expect("a study has methods or baselines");
    let title = if plan.study.title.is_empty() {
        format!("Label efficiency on {name}")
    } else {
        plan.study.title.clone()
    };
    let name = dataset_label(
        name,
        raw_features.filter(|_| plan.study.has_baseline("raw")),
    );
    let results = StudyResults::new(
        title,
        name,
        (train_size, test_size),
        runner.series(),
        runner.budgets.clone(),
        plan.study.seeds.clone(),
        std::mem::take(&mut runner.cells),
    );
    let files = write_outputs(&results, &health, &plan.out, &plan.study.to_toml())?;
    Ok(StudyOutput {
        results,
        files,
        measured: runner.measured,
        reused: runner.reused,
    })
}

/// Writes the tables, the plots and the HTML report into `out`.
pub fn write_outputs(
    results: &StudyResults,
    health: &[MethodHealth],
    out: &Path,
    settings: &str,
) -> Result<Vec<PathBuf>, TrainError> {
    let mut files = Vec::new();
    let mut write = |name: &str, text: &str| {
        let path = out.join(name);
        write_atomic(&path, text)?;
        files.push(path);
        Ok::<_, TrainError>(())
    };
    write("results.md", &results.markdown())?;
    write("results.csv", &results.summary_csv())?;
    write("cells.csv", &results.cells_csv())?;
    write(
        "results.json",
        &(serde_json::to_string_pretty(results).expect("results serialize") + "\n"),
    )?;
    let plot_error = |message| TrainError::Invalid {
        field: "study plot".into(),
        message,
    };
    let (png, svg) = (out.join("accuracy.png"), out.join("accuracy.svg"));
    let accuracy_svg = plot::accuracy_plot(results, &png, &svg).map_err(plot_error)?;
    files.push(png);
    files.push(svg);
    let html = report::html_report(results, &accuracy_svg, health, settings).map_err(plot_error)?;
    let path = out.join("report.html");
    write_atomic(&path, &html)?;
    files.push(path);
    Ok(files)
}

/// The dataset as the results name it: with the raw baseline's features when they are a
/// transform of the input (TF-IDF, log-mel), not the raw pixels or columns themselves.
fn dataset_label(name: String, raw_features: Option<&str>) -> String {
    match raw_features {
        Some(raw) if !raw.starts_with("raw") => format!("{name} (raw = {raw})"),
        _ => name,
    }
}

/// `config` without what changes only where and how fast it runs (the device, the data
/// workers and prefetch): what a result depends on.
fn without_placement(config: &PretrainConfig) -> PretrainConfig {
    let mut config = config.clone();
    config.device = String::new();
    config.data.workers = 0;
    config.data.prefetch = 0;
    config
}

/// Whether two configs read the same data the same way.
fn same_data(a: &PretrainConfig, b: &PretrainConfig) -> bool {
    without_placement(a).data == without_placement(b).data
}

/// Whether a saved run config trains exactly as `wanted` does.
fn same_training(saved: &PretrainConfig, wanted: &PretrainConfig) -> bool {
    without_placement(saved) == without_placement(wanted)
}

/// The config as TOML, placement aside: the part of a cell's fingerprint that says which
/// model it measured.
fn training_print(config: &PretrainConfig) -> String {
    without_placement(config).to_toml()
}

fn fingerprint(parts: &[&str]) -> String {
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
fn slug(text: &str) -> String {
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

/// The baselines read from the frozen-feature probe: the study's name for each, its series,
/// its evaluation and the probe row it reads. Listed in table order.
const PROBE_BASELINES: [(&str, &str, &str, &str); 4] = [
    (
        "raw",
        "raw + LR",
        "logistic regression",
        "raw + logistic regression",
    ),
    (
        "pca",
        "PCA + LR",
        "logistic regression",
        "PCA + logistic regression",
    ),
    (
        "kmeans",
        "k-means + LR",
        "logistic regression",
        "k-means + logistic regression",
    ),
    (
        "random-init",
        "random-init · linear",
        "linear",
        "random-init encoder",
    ),
];

struct Runner<'a> {
    plan: &'a StudyPlan,
    device: Device,
    progress: &'a mut dyn StudyProgress,
    budgets: Vec<Budget>,
    cells: Vec<Cell>,
    measured: usize,
    reused: usize,
}

/// A cell a job must produce: its series, budget index and seed.
type Wanted = (String, usize, u64);

/// A measured cell: series, budget index, seed and accuracy.
type Measured = (String, usize, u64, f64);

/// The work of a job: measures the missing cells it is given.
type Work<'w> = dyn FnMut(&[Wanted]) -> Result<Vec<Measured>, TrainError> + 'w;

impl Runner<'_> {
    fn study(&self) -> &StudyConfig {
        &self.plan.study
    }

    fn knn_series(&self, model: &str) -> String {
        format!("{model} · k-NN {}", self.study().knn_k)
    }

    fn probes(&self) -> bool {
        self.study().evaluates("knn") || self.study().evaluates("linear")
    }

    fn probe_baselines_wanted(&self) -> bool {
        PROBE_BASELINES
            .iter()
            .any(|(baseline, ..)| self.study().has_baseline(baseline))
    }

    fn supervised_wanted(&self) -> bool {
        self.study().has_baseline("scratch") || self.study().has_baseline("self-training")
    }

    fn job_count(&self) -> usize {
        let seeds = self.study().seeds.len();
        let budgets = self.study().labels.len();
        let per_method = 1
            + seeds * usize::from(self.probes())
            + seeds * budgets * usize::from(self.study().evaluates("finetune"));
        let baselines = seeds * usize::from(self.probe_baselines_wanted())
            + seeds * budgets * usize::from(self.supervised_wanted());
        self.plan.methods.len() * per_method + baselines
    }

    /// The rows of the tables, in order: each method's evaluations, then the baselines.
    fn series(&self) -> Vec<Series> {
        let study = self.study();
        let mut rows = Vec::new();
        let mut add = |name: String, model: &str, evaluation: &str, pretrained: bool| {
            rows.push(Series {
                name,
                model: model.into(),
                evaluation: evaluation.into(),
                pretrained,
            })
        };
        for method in &self.plan.methods {
            let label = &method.label;
            if study.evaluates("knn") {
                let evaluation = format!("k-NN {}", study.knn_k);
                add(self.knn_series(label), label, &evaluation, true);
            }
            if study.evaluates("linear") {
                add(format!("{label} · linear"), label, "linear", true);
            }
            if study.evaluates("finetune") {
                add(format!("{label} · fine-tuned"), label, "fine-tuned", true);
            }
        }
        if study.has_baseline("raw") && study.evaluates("knn") {
            let evaluation = format!("k-NN {}", study.knn_k);
            add(self.knn_series("raw"), "raw", &evaluation, false);
        }
        for (baseline, series, evaluation, _) in PROBE_BASELINES {
            if study.has_baseline(baseline) {
                add(series.into(), baseline, evaluation, false);
            }
        }
        if study.has_baseline("scratch") {
            add("scratch".into(), "scratch", "supervised", false);
        }
        if study.has_baseline("self-training") {
            add(
                "self-training".into(),
                "self-training",
                "self-training",
                false,
            );
        }
        rows
    }

    /// The label counts of the budgets on this data (the same for every method: they share
    /// the data).
    fn resolve_budgets(&mut self, data: &Splits) -> Result<(), TrainError> {
        let budgets = self
            .study()
            .labels
            .iter()
            .map(|budget| {
                Ok(Budget {
                    budget: budget.clone(),
                    labels: parse_label_budget(budget, data.train.len())?,
                })
            })
            .collect::<Result<Vec<_>, TrainError>>()?;
        self.budgets = budgets;
        Ok(())
    }

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
    fn job(
        &mut self,
        description: &str,
        print: &str,
        wanted: Vec<Wanted>,
        work: &mut Work<'_>,
    ) -> Result<(), TrainError> {
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
        let measured = work(&missing)?;
        let seconds = started.elapsed().as_secs_f64() / measured.len().max(1) as f64;
        for (series, budget, seed, accuracy) in measured {
            let cell = Cell {
                series: series.clone(),
                budget: self.budgets[budget].budget.clone(),
                labels: self.budgets[budget].labels,
                seed,
                accuracy,
                seconds,
                fingerprint: print.to_string(),
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

    /// Pretrains one method, or resumes its interrupted run, or finds it finished; returns
    /// its resolved config, final checkpoint and data.
    fn pretrain(
        &mut self,
        method: &PlannedMethod,
    ) -> Result<(PretrainConfig, Checkpoint, Splits), TrainError> {
        let run = RunDir::new(&self.plan.out.join("runs").join(slug(&method.label)));
        let existing = run.is_run();
        let run_dir = existing.then_some(run.root.as_path());
        let OpenedData {
            splits: data,
            tokenizer,
        } = open(
            &method.config.data.path,
            &method.config.data_options(run_dir),
        )?;
        method.config.validate()?;
        method.config.check_data(&data.train)?;
        let config = method.config.resolved_for(&data.train)?;
        let total = total_steps(&config, data.train.len())?;
        let description = format!("pretraining {} ({total} steps)", method.label);
        let mut resume_from = None;
        if existing {
            let saved = run.read_config()?;
            if same_training(&saved, &config) {
                let (checkpoint, passed_over) = Checkpoint::latest(&run.checkpoints_dir())?;
                for reason in passed_over {
                    self.progress
                        .message(&format!("warning: skipping {reason}"));
                }
                match checkpoint {
                    Some(checkpoint) if checkpoint.state.step >= total => {
                        self.progress.job(&description, true);
                        return Ok((config, checkpoint, data));
                    }
                    Some(checkpoint) => {
                        self.progress.message(&format!(
                            "{}: resuming pretraining at step {} of {total}",
                            method.label, checkpoint.state.step
                        ));
                        resume_from = Some(checkpoint);
                    }
                    None => {}
                }
            } else {
                self.progress.message(&format!(
                    "{}: its settings changed since {} was made; pretraining it again",
                    method.label,
                    run.root.display()
                ));
            }
        }
        self.progress.job(&description, false);
        let (config, data) = if resume_from.is_some() {
            (config, data)
        } else {
            run.check_new(RunMode::Overwrite)?;
            run.prepare_new(RunMode::Overwrite)?;
            // Start from fresh data when an old run's tokenizer was read.
            let (data, tokenizer) = if existing {
                let fresh = open(&method.config.data.path, &method.config.data_options(None))?;
                (fresh.splits, fresh.tokenizer)
            } else {
                (data, tokenizer)
            };
            let config = method.config.resolved_for(&data.train)?;
            // config.toml first, so a kill during the set-up leaves a run to overwrite.
            run.write_config(&config)?;
            run.write_data_files(tokenizer.as_ref(), &data.train)?;
            (config, data)
        };
        let outcome = pretrain(
            &config,
            &run,
            resume_from,
            self.device,
            &data,
            self.progress.pretraining(),
        )?;
        self.progress.message(&format!(
            "{}: pretrained {} steps in {:.0} s, final loss {:.4}",
            method.label, outcome.steps_run, outcome.seconds, outcome.last_loss
        ));
        self.progress.job_done();
        Ok((config, outcome.checkpoint, data))
    }

    fn evaluate_method(
        &mut self,
        index: usize,
        config: &PretrainConfig,
        checkpoint: &Checkpoint,
        data: &Splits,
    ) -> Result<(), TrainError> {
        let study = self.study().clone();
        let label = self.plan.methods[index].label.clone();
        let model_print = format!("{}step {}", training_print(config), checkpoint.state.step);
        let budgets = 0..self.budgets.len();
        for &seed in &study.seeds {
            if self.probes() {
                let probe = self.probe_config(seed);
                let print = fingerprint(&[
                    &model_print,
                    "probe",
                    &serde_json::to_string(&probe).expect("serializes"),
                ]);
                let (knn, linear) = (self.knn_series(&label), format!("{label} · linear"));
                let mut wanted = Vec::new();
                for budget in budgets.clone() {
                    if study.evaluates("knn") {
                        wanted.push((knn.clone(), budget, seed));
                    }
                    if study.evaluates("linear") {
                        wanted.push((linear.clone(), budget, seed));
                    }
                }
                let budget_names: Vec<String> =
                    self.budgets.iter().map(|b| b.budget.clone()).collect();
                let device = self.device;
                self.job(
                    &format!("probing {label}, seed {seed}"),
                    &print,
                    wanted,
                    &mut |missing| {
                        let (indices, configs) = budget_probes(missing, &budget_names, &probe);
                        let reports =
                            probe_budgets(config, checkpoint, data, &configs, device, false)?;
                        let mut out = Vec::new();
                        for (&budget, report) in indices.iter().zip(&reports) {
                            let row = &report.rows[0];
                            out.push((knn.clone(), budget, seed, row.knn[0].1));
                            out.push((linear.clone(), budget, seed, row.linear));
                        }
                        Ok(keep_missing(out, missing))
                    },
                )?;
            }
            if study.evaluates("finetune") {
                for budget in budgets.clone() {
                    let settings = self.finetune_config(budget, seed);
                    let print = fingerprint(&[
                        &model_print,
                        "finetune",
                        &serde_json::to_string(&settings).expect("serializes"),
                    ]);
                    let series = format!("{label} · fine-tuned");
                    let device = self.device;
                    let description = format!(
                        "fine-tuning {label} on {} labels, seed {seed}",
                        self.budgets[budget].labels
                    );
                    self.job(
                        &description,
                        &print,
                        vec![(series.clone(), budget, seed)],
                        &mut |_| {
                            let report = finetune(
                                config,
                                Some(checkpoint),
                                data,
                                &settings,
                                device,
                                &mut |_| {},
                            )?;
                            Ok(vec![(series.clone(), budget, seed, report.test_accuracy)])
                        },
                    )?;
                }
            }
        }
        Ok(())
    }

    fn evaluate_baselines(
        &mut self,
        config: &PretrainConfig,
        data: &Splits,
    ) -> Result<(), TrainError> {
        let study = self.study().clone();
        let model_print = training_print(config);
        let budgets = 0..self.budgets.len();
        let knn_raw = self.knn_series("raw");
        for &seed in &study.seeds {
            if self.probe_baselines_wanted() {
                // PCA, k-means and the raw-feature regression come from one classic pass.
                let classic = PROBE_BASELINES[..3]
                    .iter()
                    .any(|(baseline, ..)| study.has_baseline(baseline));
                let probe = ProbeConfig {
                    classic,
                    ..self.probe_config(seed)
                };
                let classic_config = ClassicConfig {
                    seed,
                    ..Default::default()
                };
                let print = fingerprint(&[
                    &model_print,
                    "baseline probes",
                    &serde_json::to_string(&probe).expect("serializes"),
                    &format!("{classic_config:?}"),
                ]);
                // (series, the probe row it reads, whether it is the k-NN)
                let raw_name = crate::features::raw_features_name(&data.test);
                let mut reads: Vec<(String, &str, bool)> = Vec::new();
                if study.has_baseline("raw") && study.evaluates("knn") {
                    reads.push((knn_raw.clone(), raw_name, true));
                }
                for (baseline, series, _, row) in PROBE_BASELINES {
                    if study.has_baseline(baseline) {
                        reads.push((series.into(), row, false));
                    }
                }
                let wanted: Vec<Wanted> = budgets
                    .clone()
                    .flat_map(|budget| reads.iter().map(move |r| (r.0.clone(), budget, seed)))
                    .collect();
                let budget_names: Vec<String> =
                    self.budgets.iter().map(|b| b.budget.clone()).collect();
                let device = self.device;
                self.job(
                    &format!("baselines on frozen features, seed {seed}"),
                    &print,
                    wanted,
                    &mut |missing| {
                        let (indices, configs) = budget_probes(missing, &budget_names, &probe);
                        let reports = probe_baselines(config, data, &configs, device)?;
                        let mut out = Vec::new();
                        for (&budget, report) in indices.iter().zip(&reports) {
                            for (series, row_name, knn) in &reads {
                                let row = report
                                    .rows
                                    .iter()
                                    .find(|row| row.name == *row_name)
                                    .expect("every baseline row is computed");
                                let accuracy = if *knn { row.knn[0].1 } else { row.linear };
                                out.push((series.clone(), budget, seed, accuracy));
                            }
                        }
                        Ok(keep_missing(out, missing))
                    },
                )?;
            }
            if self.supervised_wanted() {
                for budget in budgets.clone() {
                    let labels = self.budgets[budget].labels;
                    // Self-training needs unlabeled examples: none are left at 100%.
                    let self_train =
                        study.has_baseline("self-training") && labels < data.train.len();
                    // A random encoder has nothing to protect: every layer at the full
                    // learning rate, none frozen.
                    let settings = FinetuneConfig {
                        from_scratch: true,
                        layer_decay: 1.0,
                        freeze_epochs: 0,
                        self_training_rounds: if self_train {
                            study.self_training_rounds
                        } else {
                            0
                        },
                        pseudo_label_threshold: study.pseudo_label_threshold,
                        ..self.finetune_config(budget, seed)
                    };
                    // Scratch cells keep one fingerprint whether or not self-training ran
                    // beside them: the first training is the same.
                    let print = fingerprint(&[
                        &model_print,
                        "supervised",
                        &serde_json::to_string(&FinetuneConfig {
                            self_training_rounds: 0,
                            ..settings.clone()
                        })
                        .expect("serializes"),
                        &format!(
                            "{} {}",
                            study.self_training_rounds, study.pseudo_label_threshold
                        ),
                    ]);
                    let mut wanted = Vec::new();
                    if study.has_baseline("scratch") {
                        wanted.push(("scratch".to_string(), budget, seed));
                    }
                    if self_train {
                        wanted.push(("self-training".to_string(), budget, seed));
                    }
                    if wanted.is_empty() {
                        // Self-training alone at 100%: nothing to measure.
                        self.progress
                            .job("self-training (no unlabeled examples)", true);
                        continue;
                    }
                    let device = self.device;
                    let description = if self_train {
                        format!(
                            "training from scratch + self-training on {labels} labels, seed {seed}"
                        )
                    } else {
                        format!("training from scratch on {labels} labels, seed {seed}")
                    };
                    self.job(&description, &print, wanted, &mut |missing| {
                        // Only self-training missing still needs the first training; only
                        // scratch missing skips the rounds.
                        let settings = if missing.iter().all(|m| m.0 == "scratch") {
                            FinetuneConfig {
                                self_training_rounds: 0,
                                ..settings.clone()
                            }
                        } else {
                            settings.clone()
                        };
                        let report = finetune(config, None, data, &settings, device, &mut |_| {})?;
                        let first = report.before_self_training.unwrap_or(report.test_accuracy);
                        let mut out = vec![("scratch".to_string(), budget, seed, first)];
                        if settings.self_training_rounds > 0 {
                            out.push((
                                "self-training".to_string(),
                                budget,
                                seed,
                                report.test_accuracy,
                            ));
                        }
                        Ok(keep_missing(out, missing))
                    })?;
                }
            }
        }
        Ok(())
    }

    fn probe_config(&self, seed: u64) -> ProbeConfig {
        ProbeConfig {
            labels: String::new(),
            seed,
            knn_k: vec![self.study().knn_k],
            linear: LinearProbeConfig::default(),
            ..Default::default()
        }
    }

    fn finetune_config(&self, budget: usize, seed: u64) -> FinetuneConfig {
        FinetuneConfig {
            labels: self.budgets[budget].budget.clone(),
            seed,
            from_scratch: false,
            from_pretrained: false,
            self_training_rounds: 0,
            ..self.study().finetune.clone()
        }
    }
}

/// The distinct budget indices of `missing`, in order, and `probe` at each of them.
fn budget_probes(
    missing: &[Wanted],
    budget_names: &[String],
    probe: &ProbeConfig,
) -> (Vec<usize>, Vec<ProbeConfig>) {
    let mut indices: Vec<usize> = missing.iter().map(|m| m.1).collect();
    indices.sort_unstable();
    indices.dedup();
    let configs = indices
        .iter()
        .map(|&budget| ProbeConfig {
            labels: budget_names[budget].clone(),
            ..probe.clone()
        })
        .collect();
    (indices, configs)
}

/// The measured results that were asked for.
fn keep_missing(measured: Vec<Measured>, missing: &[Wanted]) -> Vec<Measured> {
    measured
        .into_iter()
        .filter(|(series, budget, seed, _)| {
            missing
                .iter()
                .any(|m| &m.0 == series && m.1 == *budget && m.2 == *seed)
        })
        .collect()
}

/// A method's pretraining health for the report.
fn method_health(
    method: &PlannedMethod,
    config: &PretrainConfig,
    checkpoint: &Checkpoint,
    data: &Splits,
) -> Result<MethodHealth, TrainError> {
    let run_root = checkpoint
        .dir
        .parent()
        .and_then(Path::parent)
        .expect("RUN/checkpoints/step-N");
    let records = read_metrics(&RunDir::new(run_root).metrics_path())?;
    let planned = total_steps(config, data.train.len())?;
    let context = config.health_context(config.backbone.output_dim(), planned);
    let findings = review(&records, &context);
    Ok(MethodHealth {
        label: method.label.clone(),
        description: format!(
            "{} on a {} backbone, {} steps of batch {}; run directory {}",
            config.method.name.as_str(),
            config.backbone.kind.as_str(),
            checkpoint.state.step,
            config.train.batch_size,
            run_root.display()
        ),
        verdict: overall(&findings),
        findings: findings
            .iter()
            .map(|finding| {
                let level = match finding.level {
                    Level::Ok => "OK",
                    Level::Warning => "WARNING",
                };
                (
                    level.to_string(),
                    finding.signal.to_string(),
                    finding.message.clone(),
                )
            })
            .collect(),
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transformed_raw_baseline_is_named_with_the_dataset() {
        assert_eq!(
            dataset_label("spoken-words".into(), Some("log-mel")),
            "spoken-words (raw = log-mel)"
        );
        assert_eq!(
            dataset_label("austen".into(), Some("TF-IDF")),
            "austen (raw = TF-IDF)"
        );
        assert_eq!(dataset_label("fmnist".into(), Some("raw pixels")), "fmnist");
        assert_eq!(
            dataset_label("letters".into(), Some("raw columns")),
            "letters"
        );
        assert_eq!(dataset_label("fmnist".into(), None), "fmnist");
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("simclr · k-NN 20"), "simclr-k-nn-20");
        assert_eq!(slug("10%"), "10pct");
        assert_eq!(slug("PCA + LR"), "pca-lr");
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
