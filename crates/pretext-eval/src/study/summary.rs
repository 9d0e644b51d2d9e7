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
}

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

    /// Per budget: the best pretrained series against the best baseline; and how many labels
    /// the supervised baseline needs to match the best pretrained result at each budget.
    fn compare(&self) -> Vec<String> {
        let best = |pretrained: bool, budget: &Budget| {
            self.series
                .iter()
                .filter(|row| row.pretrained == pretrained)
                .filter_map(|row| self.stat(&row.name, &budget.budget).map(|s| (row, s)))
                .max_by(|a, b| a.1.mean.total_cmp(&b.1.mean))
        };
        let mut findings = Vec::new();
        for budget in &self.budgets {
            let (Some((ssl, ssl_stat)), Some((base, base_stat))) =
                (best(true, budget), best(false, budget))
            else {
                continue;
            };
            let gap = 100.0 * (ssl_stat.mean - base_stat.mean);
            let noise = 100.0 * (ssl_stat.std + base_stat.std);
            let verdict = if gap.abs() <= noise {
                "within the spread of the seeds"
            } else if gap > 0.0 {
                "pretraining wins"
            } else {
                "pretraining LOSES"
            };
            findings.push(format!(
                "{} ({} labels): best pretrained {} {:.1} ± {:.1}% vs best baseline {} {:.1} ± {:.1}% — {:+.1} points, {verdict}.",
                budget.budget,
                budget.labels,
                ssl.name,
                100.0 * ssl_stat.mean,
                100.0 * ssl_stat.std,
                base.name,
                100.0 * base_stat.mean,
                100.0 * base_stat.std,
                gap
            ));
        }
        // The seed's claim: a few labels after pretraining vs many labels from scratch.
        if self.series.iter().any(|row| row.name == "scratch") {
            for budget in &self.budgets {
                let Some((ssl, ssl_stat)) = best(true, budget) else {
                    continue;
                };
                let scratch = |other: &Budget| self.stat("scratch", &other.budget);
                let matched = self.budgets.iter().position(|other| {
                    scratch(other).is_some_and(|stat| stat.mean >= ssl_stat.mean)
                });
                let matched = matched.map(|index| (index, &self.budgets[index]));
                let mut finding = match matched {
                    Some((index, other)) if other.labels > budget.labels => {
                        // The largest budget below the match where scratch falls short: the
                        // labels pretraining saves lie between the two.
                        let short = self.budgets[..index]
                            .iter()
                            .rev()
                            .find(|b| scratch(b).is_some())
                            .map_or(budget.labels, |b| b.labels.max(budget.labels));
                        format!(
                            "{} with {} labels ({:.1}%) is first matched by training from scratch at {} labels ({:.1}%): pretraining is worth {} the labels.",
                            ssl.name,
                            budget.labels,
                            100.0 * ssl_stat.mean,
                            other.labels,
                            100.0 * scratch(other).expect("found").mean,
                            if short > budget.labels {
                                format!(
                                    "between {:.0}× and {:.0}×",
                                    short as f64 / budget.labels as f64,
                                    other.labels as f64 / budget.labels as f64
                                )
                            } else {
                                format!("up to {:.0}×", other.labels as f64 / budget.labels as f64)
                            }
                        )
                    }
                    Some((_, other)) => format!(
                        "{} with {} labels ({:.1}%): training from scratch reaches as much with {} labels.",
                        ssl.name,
                        budget.labels,
                        100.0 * ssl_stat.mean,
                        other.labels
                    ),
                    None => format!(
                        "{} with {} labels ({:.1}%): training from scratch does not reach it at any budget of the study.",
                        ssl.name,
                        budget.labels,
                        100.0 * ssl_stat.mean
                    ),
                };
                // Beating scratch is not beating everything: say so when another baseline
                // already does as well with the same labels.
                if let Some((base, base_stat)) = best(false, budget) {
                    if base_stat.mean >= ssl_stat.mean {
                        finding.pop();
                        finding.push_str(&format!(
                            " — but {} reaches {:.1}% with the same {} labels.",
                            base.name,
                            100.0 * base_stat.mean,
                            budget.labels
                        ));
                    }
                }
                findings.push(finding);
            }
        }
        findings
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
                    None => out.push_str(" — |"),
                }
            }
            out.push('\n');
        }
        if !self.findings.is_empty() {
            out.push('\n');
            for finding in &self.findings {
                out.push_str(&format!("- {finding}\n"));
            }
        }
        out
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

    /// Every cell as CSV: series, budget, labels, seed, accuracy (percent), seconds.
    pub fn cells_csv(&self) -> String {
        let mut out = String::from("series,budget,labels,seed,accuracy,seconds\n");
        for cell in &self.cells {
            out.push_str(&format!(
                "{},{},{},{},{:.4},{:.2}\n",
                csv_field(&cell.series),
                csv_field(&cell.budget),
                cell.labels,
                cell.seed,
                100.0 * cell.accuracy,
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
mod tests {
    use super::*;

    fn series(name: &str, pretrained: bool) -> Series {
        Series {
            name: name.into(),
            model: name.into(),
            evaluation: "e".into(),
            pretrained,
        }
    }

    fn cell(series: &str, budget: &str, labels: usize, seed: u64, accuracy: f64) -> Cell {
        Cell {
            series: series.into(),
            budget: budget.into(),
            labels,
            seed,
            accuracy,
            seconds: 1.0,
            fingerprint: String::new(),
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
    fn findings_say_who_wins_and_labels_to_match() {
        let findings = results().findings;
        // 60 ± 10 vs 40 ± 10: a gap of 20 points, no more than the summed spread.
        assert!(
            findings[0].contains("+20.0 points, within the spread"),
            "{findings:?}"
        );
        // Scratch is measured at 1% (below 60%) and first reaches 60% at 100%: one budget
        // apart, so the saving is anywhere up to 100×.
        assert!(
            findings[1].contains("first matched by training from scratch at 1000 labels"),
            "{findings:?}"
        );
        assert!(
            findings[1].contains("worth up to 100× the labels."),
            "{findings:?}"
        );
        // A baseline that beats the pretrained series at its own budget is named.
        let mut results = results();
        for cell in &mut results.cells {
            if cell.series == "scratch" && cell.budget == "1%" {
                cell.accuracy += 0.3;
            }
        }
        let rebuilt = StudyResults::new(
            results.title,
            results.dataset,
            (results.train_size, results.test_size),
            results.series,
            results.budgets,
            results.seeds,
            results.cells,
        );
        assert!(
            rebuilt.findings[1].ends_with("— but scratch reaches 70.0% with the same 10 labels."),
            "{:?}",
            rebuilt.findings
        );
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
