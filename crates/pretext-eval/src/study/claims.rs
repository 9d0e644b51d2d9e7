//! The findings of a study: sentences that hold up to a second look.
//!
//! - **Paired comparisons.** Two series at one budget are compared seed by seed (the same
//!   seed is the same labeled subset for every series), by the mean of the paired
//!   differences and its 95% Student-t interval, d̄ ± t₀.₉₇₅,ₙ₋₁ · s_d / √n. A series
//!   "wins" or "loses" only when that interval excludes 0; otherwise there is "no clear
//!   difference". One seed gives no interval: the sentence says so and how many seeds would.
//! - **Labels saved.** For each seed, the labels training from scratch needs to match the
//!   pretrained series are read off that seed's scratch curve, linearly interpolated in
//!   log(labels) between the two budgets that bracket the pretrained accuracy; the ratio to
//!   the pretrained series' labels is summarized by its geometric mean over seeds with a 95%
//!   t-interval on log(ratio). No saving is claimed unless the pretrained series beats scratch
//!   at its own budget clearly; a seed whose scratch curve never reaches the pretrained
//!   accuracy within the study's budgets only bounds the ratio from below.
//! - Every number quoted is a mean of the table, so a finding cannot contradict it.

use super::summary::{Budget, StudyResults};

/// Two-sided 95% quantiles of Student's t for 1 to 30 degrees of freedom.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// t₀.₉₇₅ with `df` degrees of freedom (1.96 beyond 30).
pub fn t_quantile(df: usize) -> f64 {
    match df {
        0 => f64::INFINITY,
        1..=30 => T_975[df - 1],
        _ => 1.96,
    }
}

/// The mean of `values` and the half-width of its 95% t-interval (infinite for one value).
pub fn mean_interval(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::INFINITY);
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, t_quantile(values.len() - 1) * (variance / n).sqrt())
}

/// The paired comparison of two series at one budget, in accuracy points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Paired {
    /// Mean of the paired differences (first − second).
    pub mean: f64,
    /// Half-width of its 95% t-interval (infinite with one pair).
    pub half_width: f64,
    /// Seeds measured for both.
    pub seeds: usize,
}

impl Paired {
    pub fn clearly_better(&self) -> bool {
        self.mean - self.half_width > 0.0
    }

    pub fn clearly_worse(&self) -> bool {
        self.mean + self.half_width < 0.0
    }

    /// "+4.0 points (95% interval −1.2 to +9.2 over 3 paired seeds)".
    fn describe(&self) -> String {
        if self.seeds < 2 {
            return format!(
                "{:+.1} points on 1 seed (no interval: 2 or more seeds give one, 3 or more a useful one)",
                self.mean
            );
        }
        format!(
            "{:+.1} points (95% interval {:+.1} to {:+.1} over {} paired seeds)",
            self.mean,
            self.mean - self.half_width,
            self.mean + self.half_width,
            self.seeds
        )
    }
}

impl StudyResults {
    /// The accuracy of every measured seed of `series` at `budget`, in points.
    fn seed_values(&self, series: &str, budget: &str) -> Vec<(u64, f64)> {
        self.cells
            .iter()
            .filter(|c| c.series == series && c.budget == budget && c.unmeasured.is_none())
            .map(|c| (c.seed, 100.0 * c.accuracy))
            .collect()
    }

    /// `a` against `b` at `budget`, seed by seed; None without a common seed.
    pub fn paired(&self, a: &str, b: &str, budget: &str) -> Option<Paired> {
        let others = self.seed_values(b, budget);
        let differences: Vec<f64> = self
            .seed_values(a, budget)
            .into_iter()
            .filter_map(|(seed, value)| {
                others
                    .iter()
                    .find(|(other, _)| *other == seed)
                    .map(|(_, other)| value - other)
            })
            .collect();
        if differences.is_empty() {
            return None;
        }
        let (mean, half_width) = mean_interval(&differences);
        Some(Paired {
            mean,
            half_width,
            seeds: differences.len(),
        })
    }

    /// The series of one kind (pretrained or not) with the best mean at `budget`.
    fn best_at(&self, pretrained: bool, budget: &Budget) -> Option<(&str, f64)> {
        self.series
            .iter()
            .filter(|row| row.pretrained == pretrained)
            .filter_map(|row| {
                self.stat(&row.name, &budget.budget)
                    .map(|stat| (row.name.as_str(), 100.0 * stat.mean))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The findings: per budget, the best pretrained series against the best baseline; then,
    /// when training from scratch was measured, the labels pretraining saves.
    pub(super) fn compare(&self) -> Vec<String> {
        let mut findings = Vec::new();
        for budget in &self.budgets {
            let (Some((ssl, ssl_mean)), Some((base, base_mean))) =
                (self.best_at(true, budget), self.best_at(false, budget))
            else {
                continue;
            };
            let Some(paired) = self.paired(ssl, base, &budget.budget) else {
                continue;
            };
            let verdict = if paired.clearly_better() {
                "pretraining wins"
            } else if paired.clearly_worse() {
                "pretraining loses"
            } else {
                "no clear difference"
            };
            findings.push(format!(
                "{} ({} labels): best pretrained {ssl} {ssl_mean:.1}% vs best baseline {base} {base_mean:.1}%: {} — {verdict}.",
                budget.budget,
                budget.labels,
                paired.describe()
            ));
        }
        if self.series.iter().any(|row| row.name == "scratch") {
            for budget in &self.budgets {
                if let Some(finding) = self.labels_saved(budget) {
                    findings.push(finding);
                }
            }
        }
        findings
    }

    /// How many more labels training from scratch needs to match the best pretrained series
    /// at `budget` — or why the study cannot say.
    fn labels_saved(&self, budget: &Budget) -> Option<String> {
        let (ssl, ssl_mean) = self.best_at(true, budget)?;
        let scratch_mean = 100.0 * self.stat("scratch", &budget.budget)?.mean;
        let head = format!("{ssl} with {} labels ({ssl_mean:.1}%)", budget.labels);
        let against_scratch = self.paired(ssl, "scratch", &budget.budget)?;
        if !against_scratch.clearly_better() {
            return Some(format!(
                "{head} is not clearly better than training from scratch with the same labels ({scratch_mean:.1}%): {}, so the study cannot claim it saves labels.",
                against_scratch.describe()
            ));
        }
        let mut sentence = self.ratio_sentence(&head, ssl, budget);
        // Beating scratch is not beating everything: name a baseline that is not clearly
        // worse with the same labels.
        let rival = self
            .series
            .iter()
            .filter(|row| !row.pretrained && row.name != "scratch")
            .filter_map(|row| {
                let paired = self.paired(ssl, &row.name, &budget.budget)?;
                let mean = 100.0 * self.stat(&row.name, &budget.budget)?.mean;
                (!paired.clearly_better()).then_some((row.name.as_str(), mean))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((rival, mean)) = rival {
            sentence.pop();
            sentence.push_str(&format!(
                " — but {rival} is not clearly worse with the same {} labels ({mean:.1}%).",
                budget.labels
            ));
        }
        Some(sentence)
    }

    /// The sentence on scratch's labels to match `ssl` at `budget` (already clearly better
    /// than scratch there).
    fn ratio_sentence(&self, head: &str, ssl: &str, budget: &Budget) -> String {
        let scratch_budgets: Vec<&Budget> = self
            .budgets
            .iter()
            .filter(|b| self.stat("scratch", &b.budget).is_some())
            .collect();
        if scratch_budgets.len() < 2 {
            return format!(
                "{head} beats training from scratch with the same labels, but scratch was measured at {} budget(s): add budgets (2 or more, spaced on a log scale) to say how many labels it saves.",
                scratch_budgets.len()
            );
        }
        let largest = scratch_budgets
            .iter()
            .map(|b| b.labels)
            .max()
            .expect("two budgets");
        // Per seed: the labels scratch needs (None: more than the largest budget).
        let mut needed: Vec<Option<f64>> = Vec::new();
        for (seed, value) in self.seed_values(ssl, &budget.budget) {
            let curve: Vec<(f64, f64)> = scratch_budgets
                .iter()
                .filter_map(|b| {
                    self.seed_values("scratch", &b.budget)
                        .into_iter()
                        .find(|(s, _)| *s == seed)
                        .map(|(_, accuracy)| ((b.labels as f64).ln(), accuracy))
                })
                .collect();
            if curve.len() >= 2 {
                needed.push(labels_to_reach(&curve, value));
            }
        }
        let reached: Vec<f64> = needed.iter().flatten().copied().collect();
        let censored = needed.len() - reached.len();
        if needed.is_empty() {
            return format!("{head}: no seed has scratch measured at 2 budgets or more; the study cannot say how many labels it saves.");
        }
        if largest <= budget.labels {
            return format!(
                "{head} beats training from scratch with the same labels ({}), and the study has no larger budget to say how many labels scratch would need.",
                self.paired(ssl, "scratch", &budget.budget)
                    .expect("compared above")
                    .describe()
            );
        }
        if censored == needed.len() {
            return format!(
                "{head}: training from scratch does not reach it at any budget of the study (up to {largest} labels) in any of {} seed(s): pretraining is worth more than {:.0}× the labels.",
                needed.len(),
                largest as f64 / budget.labels as f64
            );
        }
        let ratios: Vec<f64> = reached
            .iter()
            .map(|labels| (labels / budget.labels as f64).max(1.0).ln())
            .collect();
        let (log_mean, half_width) = mean_interval(&ratios);
        let interval = if ratios.len() < 2 {
            "one seed, no interval: 2 or more seeds give one, 3 or more a useful one".to_string()
        } else {
            format!(
                "95% interval {:.1}× to {:.1}× over {} seeds",
                (log_mean - half_width).exp().max(1.0),
                (log_mean + half_width).exp(),
                ratios.len()
            )
        };
        let mut sentence = format!(
            "{head}: training from scratch needs about {:.0} labels to match it — pretraining is worth about {:.1}× the labels ({interval})",
            budget.labels as f64 * log_mean.exp(),
            log_mean.exp()
        );
        if censored > 0 {
            sentence.push_str(&format!(
                "; in {censored} more seed(s) scratch does not reach it within {largest} labels"
            ));
        }
        sentence.push('.');
        sentence
    }
}

/// The labels at which the curve `(ln labels, accuracy)` (in budget order) first reaches
/// `target`, interpolated linearly in ln(labels); the first budget's labels when it already
/// does; None when no budget does.
fn labels_to_reach(curve: &[(f64, f64)], target: f64) -> Option<f64> {
    let first = curve.iter().position(|&(_, accuracy)| accuracy >= target)?;
    if first == 0 {
        return Some(curve[0].0.exp());
    }
    let ((x0, y0), (x1, y1)) = (curve[first - 1], curve[first]);
    let t = if y1 > y0 {
        (target - y0) / (y1 - y0)
    } else {
        1.0
    };
    Some((x0 + t * (x1 - x0)).exp())
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
