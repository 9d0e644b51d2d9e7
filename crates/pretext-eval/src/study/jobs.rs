//! The jobs of a study: each method's probes and fine-tunings, then the baselines', each
//! with the fingerprint of what it measures.

use pretext_data::Splits;
use pretext_train::{Checkpoint, PretrainConfig, TrainError};

use super::cells::{fingerprint, keep_missing, training_print, Measured, Wanted};
use super::runner::{Runner, PROBE_BASELINES};
use super::summary::{Cell, CHOSE, KEPT_PROBE};
use crate::classic::ClassicConfig;
use crate::finetune::{finetune, FinetuneConfig, FinetuneReport};
use crate::probe::{probe_baselines, probe_budgets, ProbeConfig};

/// What a fine-tune cell's fingerprint says of the recipe beyond its settings: a new value
/// when the recipe changes under the same settings, so that its cells are measured again.
const FINETUNE_RECIPE: &str =
    "finetune: the probe is epoch 0 (validation) or 0 epochs (CV); patience from the best trained epoch";

/// Why a study's probe rows have a linear accuracy: its probes never run k-NN alone.
const LINEAR_RAN: &str = "a study's probes run the linear probe";

impl Runner<'_> {
    pub(super) fn evaluate_method(
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
                            out.push(Measured::new(&knn, budget, seed, row.knn[0].1));
                            out.push(
                                Measured::new(&linear, budget, seed, row.linear.expect(LINEAR_RAN))
                                    .noted(l2_note(row.linear_l2)),
                            );
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
                        FINETUNE_RECIPE,
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
                            let note = report
                                .probe_accuracy
                                .map(|probe| {
                                    if report.kept_probe() {
                                        format!(
                                            "its linear probe at {:.1}%, {KEPT_PROBE} on held-out labeled examples",
                                            100.0 * probe
                                        )
                                    } else {
                                        format!("from its linear probe at {:.1}%", 100.0 * probe)
                                    }
                                })
                                .unwrap_or_default();
                            // Cross-validated (`[finetune] cross_validate`): what it chose.
                            let note = match report.search.as_ref().filter(|_| settings.cross_validate) {
                                Some(search) => format!("{note}{CHOSE}{}", search.summary()),
                                None => note,
                            };
                            Ok(vec![Measured::new(
                                &series,
                                budget,
                                seed,
                                report.test_accuracy,
                            )
                            .noted(note)])
                        },
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Marks every cell of method `index` n/a with the reason its pretraining failed (kept
    /// in the results, not saved as cell files: a rerun tries the pretraining again).
    pub(super) fn pretraining_failed(
        &mut self,
        index: usize,
        error: &TrainError,
    ) -> Result<(), TrainError> {
        let method = &self.plan.methods[index];
        let label = method.label.clone();
        self.progress.message(&format!(
            "could not pretrain {label}: {error}; its cells are marked n/a and the study goes on"
        ));
        if self.budgets.is_empty() {
            let data =
                pretext_data::open(&method.config.data.path, &method.config.data_options(None))?
                    .splits;
            self.resolve_budgets(&data)?;
        }
        // The method's rows of the tables.
        let series: Vec<String> = self
            .series()
            .into_iter()
            .filter(|series| series.pretrained && series.model == label)
            .map(|series| series.name)
            .collect();
        let reason = format!("pretraining failed: {error}");
        for &seed in &self.plan.study.seeds {
            for budget in &self.budgets {
                for name in &series {
                    self.cells.push(Cell {
                        series: name.clone(),
                        budget: budget.budget.clone(),
                        labels: budget.labels,
                        seed,
                        accuracy: 0.0,
                        seconds: 0.0,
                        fingerprint: String::new(),
                        note: String::new(),
                        unmeasured: Some(reason.clone()),
                    });
                }
            }
        }
        Ok(())
    }

    pub(super) fn evaluate_baselines(
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
                                out.push(if *knn {
                                    Measured::new(series, budget, seed, row.knn[0].1)
                                } else {
                                    Measured::new(
                                        series,
                                        budget,
                                        seed,
                                        row.linear.expect(LINEAR_RAN),
                                    )
                                    .noted(l2_note(row.linear_l2))
                                });
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
                    // learning rate, none frozen. Whether it trains on the pretraining's
                    // views is the search's choice (`search.augment`), like its rates;
                    // `augment`, unused then, stays as it was in the cells' fingerprints.
                    let settings = FinetuneConfig {
                        from_scratch: true,
                        cross_validate: true,
                        augment: true,
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
                        let chosen = report
                            .search
                            .as_ref()
                            .map(|search| search.summary())
                            .unwrap_or_default();
                        let mut out =
                            vec![Measured::new("scratch", budget, seed, first).noted(chosen)];
                        if settings.self_training_rounds > 0 {
                            out.push(
                                Measured::new("self-training", budget, seed, report.test_accuracy)
                                    .noted(self_training_note(
                                        &report,
                                        settings.pseudo_label_threshold,
                                    )),
                            );
                        }
                        Ok(keep_missing(out, missing))
                    })?;
                }
            }
        }
        Ok(())
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

/// "L2 1e-3 (cross-validated)", or nothing when the probe could not cross-validate.
fn l2_note(l2: Option<f64>) -> String {
    l2.map(|l2| format!("L2 {l2:.0e} (cross-validated)"))
        .unwrap_or_default()
}

/// Each self-training round's pseudo-labels: how many passed the threshold and how many
/// were right, or that the round added none.
fn self_training_note(report: &FinetuneReport, threshold: f64) -> String {
    let rounds: Vec<String> = report
        .self_training
        .iter()
        .map(|round| match round.pseudo_label_accuracy {
            Some(right) if round.pseudo_labeled > 0 => format!(
                "round {}: {} pseudo-labels (p ≥ {threshold}), {:.1}% right",
                round.round,
                round.pseudo_labeled,
                100.0 * right
            ),
            _ => format!(
                "round {}: no prediction reached p ≥ {threshold}, so it added no pseudo-label (the same model as scratch)",
                round.round
            ),
        })
        .collect();
    rounds.join("; ")
}
