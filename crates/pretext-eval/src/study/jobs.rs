//! The jobs of a study: each method's probes and fine-tunings, then the baselines', each
//! with the fingerprint of what it measures.

use pretext_data::Splits;
use pretext_train::{Checkpoint, PretrainConfig, TrainError};

use super::cells::{fingerprint, keep_missing, training_print, Wanted};
use super::runner::{Runner, PROBE_BASELINES};
use crate::classic::ClassicConfig;
use crate::finetune::{finetune, FinetuneConfig};
use crate::probe::{probe_baselines, probe_budgets, ProbeConfig};

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
