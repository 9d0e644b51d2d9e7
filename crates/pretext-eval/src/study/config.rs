//! `study.toml`: what a study compares, at which label budgets, over which seeds.

use serde::{Deserialize, Serialize};

use crate::finetune::FinetuneConfig;

/// Evaluations of a pretrained encoder.
pub const EVALUATIONS: [&str; 3] = ["knn", "linear", "finetune"];

/// Baselines, each evaluated on the same label subsets as the pretrained encoders.
pub const BASELINES: [&str; 6] = [
    "raw",
    "pca",
    "kmeans",
    "random-init",
    "scratch",
    "self-training",
];

/// The study file. Every key is optional; an empty file is the default study (SimCLR on the
/// embedded Fashion-MNIST subset, 1%/5%/10%/100% labels, seeds 0, 1, 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StudyConfig {
    /// Title of the report.
    pub title: String,
    /// Label budgets: counts of labeled training examples ("600") or shares of the
    /// training split ("1%").
    pub labels: Vec<String>,
    /// Seeds: each draws its own labeled subset and initializes every evaluation.
    pub seeds: Vec<u64>,
    /// How each pretrained encoder is evaluated: "knn" (weighted k-NN on frozen features),
    /// "linear" (linear probe on frozen features), "finetune" (end to end).
    pub evaluations: Vec<String>,
    /// Baselines: "raw" (logistic regression on the raw features, and their k-NN when "knn"
    /// is evaluated), "pca" and "kmeans" (logistic regression on PCA components / k-means
    /// distances fitted on the unlabeled training split), "random-init" (linear probe of the
    /// untrained encoder), "scratch" (the same encoder trained on the labels alone),
    /// "self-training" (scratch, then confident pseudo-labels on the unlabeled split).
    pub baselines: Vec<String>,
    /// Neighbours of the k-NN evaluation.
    pub knn_k: i64,
    /// Fine-tuning settings, shared by "finetune", "scratch" and "self-training" (the study
    /// sets the labels and the seed; training from scratch uses no layer-wise decay and no
    /// frozen epochs: a random encoder has nothing to protect).
    pub finetune: FinetuneConfig,
    /// Self-training rounds of the "self-training" baseline.
    pub self_training_rounds: usize,
    /// Softmax probability a prediction needs to become a pseudo-label.
    pub pseudo_label_threshold: f64,
    /// Settings every method's pretraining shares: any keys of the pretrain config
    /// (`pretext pretrain --print-config` lists them), e.g. `data.path`, `backbone.kind`,
    /// `train.steps`.
    pub pretrain: toml::Table,
    /// The self-supervised methods, each pretrained once; the first one's architecture is
    /// also the baselines' encoder.
    pub methods: Vec<StudyMethod>,
    /// "cpu", "cuda", "cuda:N" or "auto".
    pub device: String,
}

/// One pretrained method of a study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StudyMethod {
    /// The method (simclr, moco, byol, dino, rotation, jigsaw, mae, bert-mlm, vime, scarf,
    /// corruption).
    pub name: String,
    /// Its name in tables and plots (default: the method's own name); one run directory
    /// each, so labels must differ.
    pub label: String,
    /// A pretrain config file for this method, relative to the study file.
    pub config: String,
    /// More settings, `KEY=VALUE` as in `pretext pretrain --set`.
    pub set: Vec<String>,
}

impl Default for StudyMethod {
    fn default() -> Self {
        StudyMethod {
            name: "simclr".into(),
            label: String::new(),
            config: String::new(),
            set: Vec::new(),
        }
    }
}

impl StudyMethod {
    /// The label, or the method's name when none was given.
    pub fn display_label(&self) -> &str {
        if self.label.is_empty() {
            &self.name
        } else {
            &self.label
        }
    }
}

impl Default for StudyConfig {
    fn default() -> Self {
        StudyConfig {
            title: String::new(),
            labels: ["1%", "5%", "10%", "100%"].map(String::from).to_vec(),
            seeds: vec![0, 1, 2],
            evaluations: EVALUATIONS.map(String::from).to_vec(),
            baselines: BASELINES.map(String::from).to_vec(),
            knn_k: 20,
            finetune: FinetuneConfig::default(),
            self_training_rounds: 1,
            pseudo_label_threshold: 0.95,
            pretrain: toml::Table::new(),
            methods: vec![StudyMethod::default()],
            device: "cpu".into(),
        }
    }
}

impl StudyConfig {
    /// Parses a study file's text; unknown keys are errors naming the key.
    pub fn from_toml(text: &str) -> Result<StudyConfig, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    /// The config as TOML, every default written out.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a study config serializes")
    }

    /// Checks what can be checked without the data; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.labels.is_empty() {
            return Err("labels: list at least one label budget, e.g. [\"1%\", \"10%\"]".into());
        }
        if self.seeds.is_empty() {
            return Err("seeds: list at least one seed (3 or more give a spread)".into());
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(seed) = self.seeds.iter().find(|seed| !seen.insert(**seed)) {
            return Err(format!("seeds: {seed} is listed twice"));
        }
        for evaluation in &self.evaluations {
            if !EVALUATIONS.contains(&evaluation.as_str()) {
                return Err(format!(
                    "evaluations: unknown {evaluation:?}; expected some of {}",
                    EVALUATIONS.join(", ")
                ));
            }
        }
        for baseline in &self.baselines {
            if !BASELINES.contains(&baseline.as_str()) {
                return Err(format!(
                    "baselines: unknown {baseline:?}; expected some of {}",
                    BASELINES.join(", ")
                ));
            }
        }
        if self.knn_k < 1 {
            return Err(format!(
                "knn_k: expected at least 1 neighbour, found {}",
                self.knn_k
            ));
        }
        if !(self.pseudo_label_threshold > 0.0 && self.pseudo_label_threshold <= 1.0) {
            return Err(format!(
                "pseudo_label_threshold: expected a probability in (0, 1], found {}",
                self.pseudo_label_threshold
            ));
        }
        if self.baselines.iter().any(|b| b == "self-training") && self.self_training_rounds == 0 {
            return Err("self_training_rounds: the self-training baseline needs at least 1 round (or leave \"self-training\" out of baselines)".into());
        }
        if self.methods.is_empty() && self.baselines.is_empty() {
            return Err("methods and baselines are both empty: nothing to compare".into());
        }
        let mut labels = std::collections::HashSet::new();
        for method in &self.methods {
            let label = method.display_label();
            if !labels.insert(label.to_string()) {
                return Err(format!(
                    "methods: two methods are labeled {label:?}; give each a distinct `label`"
                ));
            }
            if label.is_empty()
                || !label
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_. +".contains(c))
            {
                return Err(format!(
                    "methods: label {label:?} must be letters, digits, spaces or -_.+ (it names a run directory)"
                ));
            }
        }
        // The fine-tune settings as the cells that use them run them, before any pretraining:
        // fine-tuning as written, training from scratch cross-validated.
        if self.evaluates("finetune") {
            self.finetune.validate()?;
        }
        if self
            .baselines
            .iter()
            .any(|b| b == "scratch" || b == "self-training")
        {
            FinetuneConfig {
                from_scratch: true,
                cross_validate: true,
                ..self.finetune.clone()
            }
            .validate()?;
        }
        Ok(())
    }

    /// The findings' caveat when fine-tuning runs at its fixed recipe while training from
    /// scratch chooses its rates by cross-validation: the fine-tuned rows then may
    /// understate the encoder (letter_recognition at 10% labels: 83.4% at the fixed lr
    /// 3e-4, 87.7% cross-validated, BENCHMARKS.md §8).
    pub fn finetune_caveat(&self) -> Option<String> {
        let scratch = self
            .baselines
            .iter()
            .any(|b| b == "scratch" || b == "self-training");
        let fixed = &self.finetune;
        (self.evaluates("finetune") && scratch && !fixed.cross_validate).then(|| {
            format!(
                "Fine-tuning ran at its fixed recipe (lr {:.0e}, weight decay {}, layer decay {}) while training from scratch chose its rates by cross-validation, so the fine-tuned rows may understate the encoder: `[finetune] cross_validate = true` gives fine-tuning the same search.",
                fixed.lr, fixed.weight_decay, fixed.layer_decay
            )
        })
    }

    pub fn evaluates(&self, evaluation: &str) -> bool {
        self.evaluations.iter().any(|e| e == evaluation)
    }

    pub fn has_baseline(&self, baseline: &str) -> bool {
        self.baselines.iter().any(|b| b == baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default_study() {
        let config = StudyConfig::from_toml("").unwrap();
        assert_eq!(config, StudyConfig::default());
        assert_eq!(config.labels, ["1%", "5%", "10%", "100%"]);
        assert_eq!(config.seeds, [0, 1, 2]);
        assert_eq!(config.methods[0].name, "simclr");
        config.validate().unwrap();
        // The written-out config reads back as itself.
        assert_eq!(StudyConfig::from_toml(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn unknown_keys_and_bad_lists_are_named() {
        let error = StudyConfig::from_toml("seed = [1]").unwrap_err();
        assert!(error.contains("unknown field `seed`"), "{error}");
        let error = StudyConfig::from_toml("[[methods]]\nnmae = \"vime\"").unwrap_err();
        assert!(error.contains("unknown field `nmae`"), "{error}");
        let invalid = |text: &str| {
            StudyConfig::from_toml(text)
                .unwrap()
                .validate()
                .unwrap_err()
        };
        assert!(invalid("seeds = []").starts_with("seeds:"));
        assert!(invalid("seeds = [1, 1]").contains("listed twice"));
        assert!(invalid("baselines = [\"svm\"]").contains("unknown \"svm\""));
        assert!(invalid("evaluations = [\"knn\", \"mlp\"]").contains("unknown \"mlp\""));
        assert!(
            invalid("[[methods]]\nname = \"simclr\"\n[[methods]]\nname = \"simclr\"")
                .contains("two methods are labeled \"simclr\"")
        );
        assert!(invalid("methods = []\nbaselines = []").contains("nothing to compare"));
        // Regression: an empty grid stopped the study at its first scratch cell, after
        // pretraining, instead of before it.
        assert!(invalid("[finetune]\nsearch.augment = []").starts_with("finetune.search.augment"));
        assert!(invalid("[finetune]\nsearch.lr = []").starts_with("finetune.search.lr"));
        assert!(invalid("[finetune]\nlr = 0.0").starts_with("finetune.lr"));
    }

    #[test]
    fn the_caveat_names_a_fixed_fine_tune_against_a_searched_scratch() {
        let caveat = StudyConfig::default().finetune_caveat().unwrap();
        assert!(
            caveat.starts_with("Fine-tuning ran at its fixed recipe (lr 3e-4, weight decay 0.05, layer decay 0.75)"),
            "{caveat}"
        );
        let none = |text: &str| StudyConfig::from_toml(text).unwrap().finetune_caveat();
        assert_eq!(none("[finetune]\ncross_validate = true"), None);
        assert_eq!(none("evaluations = [\"knn\", \"linear\"]"), None);
        assert_eq!(none("baselines = [\"raw\", \"pca\"]"), None);
    }
}
