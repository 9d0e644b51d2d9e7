//! A study's results: one cell per (series, label budget, seed), summarized as mean ± std
//! per (series, budget) and written as Markdown, CSV and JSON.

use serde::{Deserialize, Serialize};

/// One measured accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The row of the tables ("simclr · fine-tuned", "scratch", "PCA + LR").
    pub series: String,
    /// The label budget as written in the study ("1%", "600").
    pub budget: String,
    /// Labeled training examples it stands for.
    pub labels: usize,
    pub seed: u64,
    /// Accuracy on the whole held-out split, in [0, 1].
    pub accuracy: f64,
    /// Seconds the evaluation took (shared work, like encoding the held-out split for
    /// several budgets, is split evenly between its cells).
    pub seconds: f64,
    /// Hash of every setting the result depends on: a cell whose settings changed is
    /// measured again.
    pub fingerprint: String,
    /// What the measurement chose or saw: the cross-validated L2 strength of a probe, the
    /// learning rate, weight decay and epochs of training from scratch, each self-training
    /// round's pseudo-labels.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Why the cell could not be measured (its accuracy is then meaningless and left out of
    /// every statistic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmeasured: Option<String>,
}

/// The heading of the baselines' notes in the results.
pub(super) const NOTES_HEADING: &str =
    "What the baselines chose (cross-validation on the labeled examples) and what self-training added";

/// The heading of the fine-tune cells that kept their linear probe.
pub(super) const KEPT_PROBES_HEADING: &str =
    "Where fine-tuning kept the linear probe it started from (held-out labeled examples did not favour the fine-tune, so the cell is its probe)";

/// What a fine-tune cell's note says when it kept its linear probe.
pub(super) const KEPT_PROBE: &str = "kept: fine-tuning did not beat it";

/// The heading of what cross-validated fine-tuning (`[finetune] cross_validate`) chose.
pub(super) const FINETUNE_CHOICES_HEADING: &str =
    "What fine-tuning chose (cross-validation on the labeled examples; 0 epochs keeps the linear probe)";

/// Separates a cross-validated fine-tune cell's note from what its search chose.
pub(super) const CHOSE: &str = "; chose ";

/// A row of the tables: a pretrained encoder under one evaluation, or a baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    /// The method's label for pretrained series; the baseline's name otherwise.
    pub model: String,
    /// "k-NN 20", "linear", "fine-tuned", "logistic regression", "supervised",
    /// "self-training".
    pub evaluation: String,
    /// Whether the encoder was pretrained (self-supervised) before this evaluation.
    pub pretrained: bool,
}

/// A label budget and the number of labeled examples it stands for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub budget: String,
    pub labels: usize,
}

/// Mean and spread of one (series, budget) over its seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub series: String,
    pub budget: String,
    pub labels: usize,
    /// Mean accuracy over the seeds, in [0, 1].
    pub mean: f64,
    /// Sample standard deviation over the seeds (0 with one seed).
    pub std: f64,
    pub seeds: usize,
}

/// Everything a study measured, in plan order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyResults {
    pub title: String,
    pub dataset: String,
    pub train_size: usize,
    pub test_size: usize,
    pub series: Vec<Series>,
    pub budgets: Vec<Budget>,
    pub seeds: Vec<u64>,
    pub stats: Vec<Stat>,
    pub cells: Vec<Cell>,
    /// Plain sentences: where pretraining wins, where it does not.
    pub findings: Vec<String>,
}

impl StudyResults {
    /// Summarizes `cells` (any order) for the given rows and columns.
    pub fn new(
        title: String,
        dataset: String,
        (train_size, test_size): (usize, usize),
        series: Vec<Series>,
        budgets: Vec<Budget>,
        seeds: Vec<u64>,
        cells: Vec<Cell>,
    ) -> StudyResults {
        let mut stats = Vec::new();
        for row in &series {
            for budget in &budgets {
                let values: Vec<f64> = cells
                    .iter()
                    .filter(|cell| cell.series == row.name && cell.budget == budget.budget)
                    .filter(|cell| cell.unmeasured.is_none())
                    .map(|cell| cell.accuracy)
                    .collect();
                if let Some((mean, std)) = mean_std(&values) {
                    stats.push(Stat {
                        series: row.name.clone(),
                        budget: budget.budget.clone(),
                        labels: budget.labels,
                        mean,
                        std,
                        seeds: values.len(),
                    });
                }
            }
        }
        let mut results = StudyResults {
            title,
            dataset,
            train_size,
            test_size,
            series,
            budgets,
            seeds,
            stats,
            cells,
            findings: Vec::new(),
        };
        results.findings = results.compare();
        results
    }

    /// The statistic of a series at a budget, when measured.
    pub fn stat(&self, series: &str, budget: &str) -> Option<&Stat> {
        self.stats
            .iter()
            .find(|stat| stat.series == series && stat.budget == budget)
    }

    /// The summary table in Markdown: one row per series, one column per budget,
    /// "mean ± std" in percent; a blank cell was not measured (e.g. self-training with every
    /// label, which leaves nothing unlabeled).
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "{}\n\n{} — {} training examples, accuracy (%) on {} held-out examples, mean ± std over {} seed(s)\n\n",
            self.title,
            self.dataset,
            self.train_size,
            self.test_size,
            self.seeds.len()
        );
        out.push_str("| series |");
        for budget in &self.budgets {
            out.push_str(&format!(" {} ({}) |", budget.budget, budget.labels));
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(self.budgets.len()));
        out.push('\n');
        for row in &self.series {
            let name = if row.pretrained {
                format!("**{}**", row.name)
            } else {
                row.name.clone()
            };
            out.push_str(&format!("| {name} |"));
            for budget in &self.budgets {
                match self.stat(&row.name, &budget.budget) {
                    Some(stat) => out.push_str(&format!(
                        " {:.1} ± {:.1} |",
                        100.0 * stat.mean,
                        100.0 * stat.std
                    )),
                    None if self.unmeasured(&row.name, &budget.budget).is_some() => {
                        out.push_str(" n/a |")
                    }
                    None => out.push_str(" — |"),
                }
            }
            out.push('\n');
        }
        let unmeasured = self.unmeasured_reasons();
        if !unmeasured.is_empty() {
            out.push_str("\nn/a: not measured —\n");
            for reason in unmeasured {
                out.push_str(&format!("- {reason}\n"));
            }
        }
        if !self.findings.is_empty() {
            out.push('\n');
            for finding in &self.findings {
                out.push_str(&format!("- {finding}\n"));
            }
        }
        for (heading, items) in [
            (NOTES_HEADING, self.notes()),
            (FINETUNE_CHOICES_HEADING, self.finetune_choices()),
            (KEPT_PROBES_HEADING, self.kept_probes()),
        ] {
            if !items.is_empty() {
                out.push_str(&format!("\n{heading}:\n\n"));
                for item in items {
                    out.push_str(&format!("- {item}\n"));
                }
            }
        }
        out
    }

    /// "vime · fine-tuned, 1600 labels: seed 0 lr 3e-3, weight decay 5e-4, 15 epochs (3-fold
    /// CV 83.4%); seed 1 …" for the fine-tune cells that cross-validated their settings (their
    /// note holds the choice after [`CHOSE`]).
    pub fn finetune_choices(&self) -> Vec<String> {
        self.notes_per_seed(
            |row| row.pretrained,
            |cell| Some(cell.note.split_once(CHOSE)?.1),
        )
    }

    /// "series, N labels: seed 0 NOTE; seed 1 NOTE" per series `row_wanted` takes and budget,
    /// with each cell's part of its note that `note` reads (cells without one left out).
    fn notes_per_seed<'a>(
        &'a self,
        row_wanted: impl Fn(&Series) -> bool,
        note: impl Fn(&'a Cell) -> Option<&'a str>,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        for row in self.series.iter().filter(|row| row_wanted(row)) {
            for budget in &self.budgets {
                let mut cells: Vec<(u64, &str)> = self
                    .cells
                    .iter()
                    .filter(|c| c.series == row.name && c.budget == budget.budget)
                    .filter_map(|c| Some((c.seed, note(c)?)))
                    .collect();
                if cells.is_empty() {
                    continue;
                }
                cells.sort_by_key(|&(seed, _)| seed);
                let per_seed: Vec<String> = cells
                    .iter()
                    .map(|(seed, note)| format!("seed {seed} {note}"))
                    .collect();
                lines.push(format!(
                    "{}, {} labels: {}",
                    row.name,
                    budget.labels,
                    per_seed.join("; ")
                ));
            }
        }
        lines
    }

    /// "jigsaw · fine-tuned, 80 labels: seeds 0, 2" for every fine-tune cell that kept the
    /// linear probe it started from (its note says so).
    pub fn kept_probes(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for row in self.series.iter().filter(|row| row.pretrained) {
            for budget in &self.budgets {
                let mut seeds: Vec<u64> = self
                    .cells
                    .iter()
                    .filter(|c| c.series == row.name && c.budget == budget.budget)
                    .filter(|c| c.note.contains(KEPT_PROBE))
                    .map(|c| c.seed)
                    .collect();
                if seeds.is_empty() {
                    continue;
                }
                seeds.sort_unstable();
                let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
                lines.push(format!(
                    "{}, {} labels: seed{} {}",
                    row.name,
                    budget.labels,
                    if seeds.len() > 1 { "s" } else { "" },
                    seeds.join(", ")
                ));
            }
        }
        lines
    }

    /// Why a series was not measured at a budget (the first seed's reason).
    pub fn unmeasured(&self, series: &str, budget: &str) -> Option<&str> {
        self.cells
            .iter()
            .find(|c| c.series == series && c.budget == budget && c.unmeasured.is_some())
            .and_then(|c| c.unmeasured.as_deref())
    }

    /// "series at budget (seeds …): reason", one line per distinct reason of a series.
    pub fn unmeasured_reasons(&self) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for cell in &self.cells {
            let Some(reason) = &cell.unmeasured else {
                continue;
            };
            let line = format!("{} at {} labels: {reason}", cell.series, cell.labels);
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        lines
    }

    /// The notes of the baselines that tune themselves and of self-training, per series and
    /// budget: "scratch, 80 labels: seed 0 lr 1e-3, …; seed 1 …".
    pub fn notes(&self) -> Vec<String> {
        self.notes_per_seed(
            |row| !row.pretrained && matches!(row.name.as_str(), "scratch" | "self-training"),
            |cell| Some(cell.note.as_str()).filter(|note| !note.is_empty()),
        )
    }

    /// The summary as CSV: series, model, evaluation, pretrained, budget, labels, mean,
    /// std, seeds (accuracies in percent).
    pub fn summary_csv(&self) -> String {
        let mut out =
            String::from("series,model,evaluation,pretrained,budget,labels,mean,std,seeds\n");
        for row in &self.series {
            for budget in &self.budgets {
                if let Some(stat) = self.stat(&row.name, &budget.budget) {
                    out.push_str(&format!(
                        "{},{},{},{},{},{},{:.4},{:.4},{}\n",
                        csv_field(&row.name),
                        csv_field(&row.model),
                        csv_field(&row.evaluation),
                        row.pretrained,
                        csv_field(&budget.budget),
                        budget.labels,
                        100.0 * stat.mean,
                        100.0 * stat.std,
                        stat.seeds
                    ));
                }
            }
        }
        out
    }

    /// Every cell as CSV: series, budget, labels, seed, accuracy (percent; empty when not
    /// measured), note (or why it was not measured), seconds (last, so that comparisons of
    /// two runs can drop it).
    pub fn cells_csv(&self) -> String {
        let mut out = String::from("series,budget,labels,seed,accuracy,note,seconds\n");
        for cell in &self.cells {
            let accuracy = match &cell.unmeasured {
                Some(_) => String::new(),
                None => format!("{:.4}", 100.0 * cell.accuracy),
            };
            let note = cell
                .unmeasured
                .as_ref()
                .map_or(cell.note.clone(), |reason| {
                    format!("not measured: {reason}")
                });
            out.push_str(&format!(
                "{},{},{},{},{accuracy},{},{:.2}\n",
                csv_field(&cell.series),
                csv_field(&cell.budget),
                cell.labels,
                cell.seed,
                csv_field(&note),
                cell.seconds
            ));
        }
        out
    }
}

/// Mean and sample standard deviation (0 for a single value); None for no values.
pub fn mean_std(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Some((mean, std))
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn series(name: &str, pretrained: bool) -> Series {
        Series {
            name: name.into(),
            model: name.into(),
            evaluation: "e".into(),
            pretrained,
        }
    }

    pub(crate) fn cell(
        series: &str,
        budget: &str,
        labels: usize,
        seed: u64,
        accuracy: f64,
    ) -> Cell {
        Cell {
            series: series.into(),
            budget: budget.into(),
            labels,
            seed,
            accuracy,
            seconds: 1.0,
            fingerprint: String::new(),
            note: String::new(),
            unmeasured: None,
        }
    }

    fn results() -> StudyResults {
        let budgets = vec![
            Budget {
                budget: "1%".into(),
                labels: 10,
            },
            Budget {
                budget: "100%".into(),
                labels: 1000,
            },
        ];
        let mut cells = Vec::new();
        for (seed, (a, b, c)) in [(0.50, 0.30, 0.90), (0.60, 0.40, 0.92), (0.70, 0.50, 0.94)]
            .into_iter()
            .enumerate()
        {
            cells.push(cell("ssl", "1%", 10, seed as u64, a));
            cells.push(cell("scratch", "1%", 10, seed as u64, b));
            cells.push(cell("scratch", "100%", 1000, seed as u64, c));
        }
        StudyResults::new(
            "t".into(),
            "d".into(),
            (1000, 100),
            vec![series("ssl", true), series("scratch", false)],
            budgets,
            vec![0, 1, 2],
            cells,
        )
    }

    #[test]
    fn mean_and_sample_std_by_hand() {
        assert_eq!(mean_std(&[]), None);
        assert_eq!(mean_std(&[0.5]), Some((0.5, 0.0)));
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sum of squares 32, sample std sqrt(32 / 7).
        let (mean, std) = mean_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(mean, 5.0);
        assert!((std - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn tables_show_mean_std_and_blanks() {
        let results = results();
        let stat = results.stat("ssl", "1%").unwrap();
        assert!((stat.mean - 0.6).abs() < 1e-12 && (stat.std - 0.1).abs() < 1e-12);
        let markdown = results.markdown();
        assert!(
            markdown.contains("| **ssl** | 60.0 ± 10.0 | — |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("| scratch | 40.0 ± 10.0 | 92.0 ± 2.0 |"),
            "{markdown}"
        );
        let csv = results.summary_csv();
        assert!(
            csv.contains("ssl,ssl,e,true,1%,10,60.0000,10.0000,3\n"),
            "{csv}"
        );
        assert_eq!(results.cells_csv().lines().count(), 1 + 9);
    }

    #[test]
    fn fine_tunes_that_kept_their_probe_are_listed_with_their_seeds() {
        let mut results = results();
        assert!(results.kept_probes().is_empty());
        for cell in results.cells.iter_mut().filter(|c| c.series == "ssl") {
            cell.note = if cell.seed == 1 {
                "from its linear probe at 61.0%".into()
            } else {
                format!("its linear probe at 60.0%, {KEPT_PROBE} on held-out labeled examples")
            };
        }
        assert_eq!(results.kept_probes(), ["ssl, 10 labels: seeds 0, 2"]);
        let markdown = results.markdown();
        assert!(
            markdown.contains(&format!(
                "{KEPT_PROBES_HEADING}:\n\n- ssl, 10 labels: seeds 0, 2"
            )),
            "{markdown}"
        );
    }

    #[test]
    fn what_cross_validated_fine_tunes_chose_is_listed_per_seed() {
        let mut results = results();
        assert!(results.finetune_choices().is_empty());
        for cell in results.cells.iter_mut().filter(|c| c.series == "ssl") {
            cell.note = format!(
                "from its linear probe at 61.0%{CHOSE}lr 1e-3, weight decay 5e-4, {} epochs (3-fold CV 70.0%)",
                10 + cell.seed
            );
        }
        let line =
            "ssl, 10 labels: seed 0 lr 1e-3, weight decay 5e-4, 10 epochs (3-fold CV 70.0%); \
                    seed 1 lr 1e-3, weight decay 5e-4, 11 epochs (3-fold CV 70.0%); \
                    seed 2 lr 1e-3, weight decay 5e-4, 12 epochs (3-fold CV 70.0%)";
        assert_eq!(results.finetune_choices(), [line]);
        let markdown = results.markdown();
        assert!(
            markdown.contains(&format!("{FINETUNE_CHOICES_HEADING}:\n\n- {line}")),
            "{markdown}"
        );
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
