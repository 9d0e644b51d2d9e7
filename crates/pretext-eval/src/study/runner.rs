//! The state of a running study ([`Runner`]): its plan, the budgets resolved on the data,
//! the cells gathered so far, what it must measure, and each method's pretraining run.

use pretext_data::{open, parse_label_budget, OpenedData, Splits};
use pretext_train::{
    parallel, pretrain, total_steps, Checkpoint, PretrainConfig, RunDir, RunMode, TrainError,
};
use tch::Device;

use super::cells::{same_training, slug};
use super::run::{PlannedMethod, StudyPlan, StudyProgress};
use super::{Budget, Cell, Series, StudyConfig};
use crate::finetune::FinetuneConfig;
use crate::linear_probe::LinearProbeConfig;
use crate::probe::ProbeConfig;

/// The baselines read from the frozen-feature probe: the study's name for each, its series,
/// its evaluation and the probe row it reads. Listed in table order.
pub(super) const PROBE_BASELINES: [(&str, &str, &str, &str); 4] = [
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

pub(super) struct Runner<'a> {
    pub(super) plan: &'a StudyPlan,
    pub(super) device: Device,
    pub(super) progress: &'a mut dyn StudyProgress,
    pub(super) budgets: Vec<Budget>,
    pub(super) cells: Vec<Cell>,
    pub(super) measured: usize,
    pub(super) reused: usize,
    /// Several processes measuring the cells: `(rank, world)`; each measures the jobs whose
    /// number modulo `world` is its rank, and writes their cell files.
    pub(super) spread: Option<(usize, usize)>,
    /// Jobs met so far (the numbering `spread` uses: the same order on every process).
    pub(super) jobs_seen: usize,
}

impl Runner<'_> {
    pub(super) fn study(&self) -> &StudyConfig {
        &self.plan.study
    }

    pub(super) fn knn_series(&self, model: &str) -> String {
        format!("{model} · k-NN {}", self.study().knn_k)
    }

    pub(super) fn probes(&self) -> bool {
        self.study().evaluates("knn") || self.study().evaluates("linear")
    }

    pub(super) fn probe_baselines_wanted(&self) -> bool {
        PROBE_BASELINES
            .iter()
            .any(|(baseline, ..)| self.study().has_baseline(baseline))
    }

    pub(super) fn supervised_wanted(&self) -> bool {
        self.study().has_baseline("scratch") || self.study().has_baseline("self-training")
    }

    pub(super) fn job_count(&self) -> usize {
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
    pub(super) fn series(&self) -> Vec<Series> {
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
    pub(super) fn resolve_budgets(&mut self, data: &Splits) -> Result<(), TrainError> {
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

    /// Pretrains one method, or resumes its interrupted run, or finds it finished; returns
    /// its resolved config, final checkpoint and data.
    pub(super) fn pretrain(
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
        let method = &self.fit_batch(method, data.train.len());
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
        // Several processes: every one has decided the above from the same files; rank 0
        // alone prepares the run folder, and all pretrain together once it has.
        parallel::wait_for_all()?;
        let writer = parallel::is_writer();
        let (config, data) = if resume_from.is_some() {
            (config, data)
        } else {
            if writer {
                run.check_new(RunMode::Overwrite)?;
                run.prepare_new(RunMode::Overwrite)?;
            }
            // Start from fresh data when an old run's tokenizer was read.
            let (data, tokenizer) = if existing {
                let fresh = open(&method.config.data.path, &method.config.data_options(None))?;
                (fresh.splits, fresh.tokenizer)
            } else {
                (data, tokenizer)
            };
            let config = method.config.resolved_for(&data.train)?;
            // config.toml first, so a kill during the set-up leaves a run to overwrite.
            if writer {
                run.write_config(&config)?;
                run.write_data_files(tokenizer.as_ref(), &data.train)?;
            }
            (config, data)
        };
        parallel::wait_for_all()?;
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

    /// `method` with a batch no larger than the `train_len` training examples (said once):
    /// a small dataset should not stop the study.
    fn fit_batch(&mut self, method: &PlannedMethod, train_len: usize) -> PlannedMethod {
        let mut method = method.clone();
        let batch = method.config.train.batch_size;
        if train_len > 0 && batch > train_len {
            self.progress.message(&format!(
                "{}: train.batch_size {batch} is larger than the {train_len} training examples; using batches of {train_len}",
                method.label
            ));
            method.config.train.batch_size = train_len;
        }
        method
    }

    pub(super) fn probe_config(&self, seed: u64) -> ProbeConfig {
        ProbeConfig {
            labels: String::new(),
            seed,
            knn_k: vec![self.study().knn_k],
            linear: LinearProbeConfig::default(),
            ..Default::default()
        }
    }

    pub(super) fn finetune_config(&self, budget: usize, seed: u64) -> FinetuneConfig {
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
