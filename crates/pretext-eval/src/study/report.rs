//! The study's HTML report: one self-contained file (inline CSS and SVG, nothing fetched)
//! with the findings, the accuracy plot, the table, and each method's pretraining health
//! (verdict, findings, curves).

use serde_json::{Map, Value};

use super::plot::curve_svg;
use super::summary::{StudyResults, FINETUNE_CHOICES_HEADING, KEPT_PROBES_HEADING, NOTES_HEADING};

/// What the report shows of one method's pretraining.
#[derive(Clone, Debug)]
pub struct MethodHealth {
    /// The method's label in the study.
    pub label: String,
    /// One line: method, backbone, steps, time.
    pub description: String,
    /// "HEALTHY", "WARNINGS" or "COLLAPSED".
    pub verdict: &'static str,
    /// (level, signal, message) of each health finding.
    pub findings: Vec<(String, String, String)>,
    /// The run's metrics.jsonl records.
    pub records: Vec<Map<String, Value>>,
}

/// Keys of a metrics record that are bookkeeping, not curves worth a plot.
const NOT_CURVES: [&str; 7] = [
    "step",
    "epoch",
    "lr",
    "images_per_second",
    "data_wait_seconds",
    "elapsed_seconds",
    "nonfinite_steps",
];

/// Each logged signal of `records` as (name, [(step, value)]), the loss first.
pub fn curves(records: &[Map<String, Value>]) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut names: Vec<String> = records
        .iter()
        .flat_map(|record| record.keys().cloned())
        .filter(|key| !NOT_CURVES.contains(&key.as_str()))
        .collect();
    names.sort_by_key(|name| (name != "loss", name.clone()));
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let points = records
                .iter()
                .filter_map(|record| {
                    let step = record.get("step")?.as_f64()?;
                    let value = record.get(&name)?.as_f64()?;
                    value.is_finite().then_some((step, value))
                })
                .collect();
            (name, points)
        })
        .filter(|(_, points): &(String, Vec<(f64, f64)>)| !points.is_empty())
        .collect()
}

/// The report as one HTML document.
pub fn html_report(
    results: &StudyResults,
    accuracy_svg: &str,
    health: &[MethodHealth],
    settings: &str,
) -> Result<String, String> {
    let mut out = String::new();
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&results.title)
    ));
    out.push_str(&format!(
        "<h1>{}</h1>\n<p>{} — {} training examples (their labels hidden from pretraining), accuracy on {} held-out examples; {} seed(s) per cell: {}.</p>\n",
        escape(&results.title),
        escape(&results.dataset),
        results.train_size,
        results.test_size,
        results.seeds.len(),
        results
            .seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str("<h2>Findings</h2>\n<ul>\n");
    for finding in &results.findings {
        out.push_str(&format!("<li>{}</li>\n", escape(finding)));
    }
    out.push_str("</ul>\n<h2>Accuracy against the number of labels</h2>\n");
    out.push_str("<p>Mean over the seeds; error bars are one standard deviation. Thick lines are pretrained encoders.</p>\n");
    out.push_str(&format!("<div class=\"plot\">{accuracy_svg}</div>\n"));
    out.push_str("<h2>Table</h2>\n<table>\n<tr><th>series</th>");
    for budget in &results.budgets {
        out.push_str(&format!(
            "<th>{} ({} labels)</th>",
            escape(&budget.budget),
            budget.labels
        ));
    }
    out.push_str("</tr>\n");
    // The best mean of each budget is bold.
    let best: Vec<f64> = results
        .budgets
        .iter()
        .map(|budget| {
            results
                .stats
                .iter()
                .filter(|stat| stat.budget == budget.budget)
                .map(|stat| stat.mean)
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .collect();
    for row in &results.series {
        let class = if row.pretrained {
            " class=\"pretrained\""
        } else {
            ""
        };
        out.push_str(&format!("<tr{class}><td>{}</td>", escape(&row.name)));
        for (budget, &best) in results.budgets.iter().zip(&best) {
            match results.stat(&row.name, &budget.budget) {
                Some(stat) if stat.mean == best => out.push_str(&format!(
                    "<td><b>{:.1} ± {:.1}</b></td>",
                    100.0 * stat.mean,
                    100.0 * stat.std
                )),
                Some(stat) => out.push_str(&format!(
                    "<td>{:.1} ± {:.1}</td>",
                    100.0 * stat.mean,
                    100.0 * stat.std
                )),
                None => match results.unmeasured(&row.name, &budget.budget) {
                    Some(reason) => {
                        out.push_str(&format!("<td title=\"{}\">n/a</td>", escape(reason)))
                    }
                    None => out.push_str("<td>—</td>"),
                },
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n<p>A dash: not measured (self-training needs unlabeled examples, which 100% of the labels leaves none of). Files beside this report: results.csv, cells.csv, results.json, accuracy.png, accuracy.svg.</p>\n");
    for (heading, items) in [
        ("Not measured", results.unmeasured_reasons()),
        (NOTES_HEADING, results.notes()),
        (FINETUNE_CHOICES_HEADING, results.finetune_choices()),
        (KEPT_PROBES_HEADING, results.kept_probes()),
    ] {
        if items.is_empty() {
            continue;
        }
        out.push_str(&format!("<h3>{heading}</h3>\n<ul>\n"));
        for item in items {
            out.push_str(&format!("<li>{}</li>\n", escape(&item)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h2>Pretraining health</h2>\n");
    if health.is_empty() {
        out.push_str("<p>No method was pretrained in this study.</p>\n");
    }
    for method in health {
        out.push_str(&format!(
            "<h3>{} — <span class=\"verdict {}\">{}</span></h3>\n<p>{}</p>\n<table>\n",
            escape(&method.label),
            method.verdict.to_lowercase(),
            method.verdict,
            escape(&method.description)
        ));
        for (level, signal, message) in &method.findings {
            out.push_str(&format!(
                "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>\n",
                level.to_lowercase(),
                escape(level),
                escape(signal),
                escape(message)
            ));
        }
        out.push_str("</table>\n<div class=\"curves\">\n");
        for (name, points) in curves(&method.records) {
            out.push_str(&curve_svg(&name, &points)?);
            out.push('\n');
        }
        out.push_str("</div>\n");
    }
    out.push_str(&format!(
        "<h2>Settings</h2>\n<pre>{}</pre>\n</body>\n</html>\n",
        escape(settings)
    ));
    Ok(out)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}tr.pretrained td:first-child{font-weight:bold}\
.verdict.healthy,.ok{color:#2a7d2a}.verdict.warnings,.warning{color:#b36b00}.verdict.collapsed{color:#c00}\
.curves svg{margin:4px}pre{background:#f6f6f6;padding:1em;overflow-x:auto}";

/// Text safe inside HTML elements and attributes.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_skip_bookkeeping_and_put_the_loss_first() {
        let records: Vec<Map<String, Value>> = [
            r#"{"step": 10, "loss": 2.0, "lr": 0.1, "grad_norm": 1.0}"#,
            r#"{"step": 20, "loss": 1.5, "lr": 0.1, "effective_rank": 12.0}"#,
        ]
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect();
        let curves = curves(&records);
        let names: Vec<&str> = curves.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["loss", "effective_rank", "grad_norm"]);
        assert_eq!(curves[0].1, [(10.0, 2.0), (20.0, 1.5)]);
        assert_eq!(curves[1].1, [(20.0, 12.0)]);
    }

    #[test]
    fn escape_html() {
        assert_eq!(escape("a < b & \"c\""), "a &lt; b &amp; &quot;c&quot;");
    }
}
