//! [`run_study`]: a study from its plan to its written results, and the files it writes.

use std::path::{Path, PathBuf};

use pretext_data::{open, Splits};
use pretext_train::health::{overall, review, Level};
use pretext_train::metrics::read_metrics;
use pretext_train::{
    parallel, total_steps, write_atomic, Checkpoint, PretrainConfig, ProgressSink, RunDir,
    TrainError,
};
use tch::Device;

use super::cells::{cell_level, same_data};
use super::runner::Runner;
use super::{plot, report, MethodHealth, StudyConfig, StudyResults};

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
///
/// Several processes (torchrun, SLURM): every method pretrains data parallel over all of
/// them, each process measures its share of the cells (job `j` on rank `j mod world`) and
/// writes their files, then rank 0 gathers every cell from the folder and writes the
/// results; it alone returns them (the others return None).
pub fn run_study(
    plan: &StudyPlan,
    device: Device,
    progress: &mut dyn StudyProgress,
) -> Result<Option<StudyOutput>, TrainError> {
    let (rank, world) = parallel::placement();
    if world == 1 {
        return Ok(study_pass(plan, device, progress, None)?.0);
    }
    let (_, measured) = study_pass(plan, device, progress, Some((rank, world)))?;
    // Every cell file is written once this returns (however long the others' cells took).
    parallel::wait_for_all()?;
    let measured = parallel::sum_count(measured)?;
    if rank != 0 {
        return Ok(None);
    }
    progress.message(&format!(
        "the {world} processes measured {measured} cells; gathering every cell of the study"
    ));
    let output = parallel::alone(|| study_pass(plan, device, progress, None))?.0;
    Ok(output.map(|output| StudyOutput {
        reused: output.reused.saturating_sub(measured),
        measured,
        ..output
    }))
}

/// One pass over the study: with `spread`, this process's share of the pretraining and of
/// the cells, writing nothing else; without, every cell (measured or found) and the results.
fn study_pass(
    plan: &StudyPlan,
    device: Device,
    progress: &mut dyn StudyProgress,
    spread: Option<(usize, usize)>,
) -> Result<(Option<StudyOutput>, usize), TrainError> {
    let writer = parallel::is_writer();
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
    // One study at a time: the lock is held until the pass returns (by rank 0 alone when
    // several processes share the study).
    let _lock = if writer {
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
        Some(lock)
    } else {
        None
    };
    // The others write cells only once rank 0 has made the folder.
    parallel::wait_for_all()?;
    let mut runner = Runner {
        plan,
        device,
        progress,
        budgets: Vec::new(),
        cells: Vec::new(),
        measured: 0,
        reused: 0,
        spread,
        jobs_seen: 0,
    };
    runner.progress.planned(runner.job_count());
    let mut health = Vec::new();
    let mut dataset = None;
    let mut raw_features = None;
    // The baselines use the first method's config and data: kept, not read again.
    let mut first = None;
    for (index, method) in plan.methods.iter().enumerate() {
        let (config, checkpoint, data) = match runner.pretrain(method) {
            Ok(pretrained) => pretrained,
            // One method that cannot pretrain (it diverges, its settings do not fit the
            // data) leaves its cells n/a; the other methods and the baselines go on.
            Err(error) if cell_level(&error) => {
                runner.pretraining_failed(index, &error)?;
                continue;
            }
            Err(error) => return Err(error),
        };
        runner.resolve_budgets(&data)?;
        if spread.is_none() {
            health.push(method_health(method, &config, &checkpoint, &data)?);
        }
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
    if spread.is_some() {
        return Ok((None, runner.measured));
    }
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
    let mut results = StudyResults::new(
        title,
        name,
        (train_size, test_size),
        runner.series(),
        runner.budgets.clone(),
        plan.study.seeds.clone(),
        std::mem::take(&mut runner.cells),
    );
    results.findings.extend(plan.study.finetune_caveat());
    let files = write_outputs(&results, &health, &plan.out, &plan.study.to_toml())?;
    Ok((
        Some(StudyOutput {
            results,
            files,
            measured: runner.measured,
            reused: runner.reused,
        }),
        runner.measured,
    ))
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
}
