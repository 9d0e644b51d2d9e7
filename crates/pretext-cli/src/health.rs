//! `pretext health RUN`: every health signal in the run's metrics.jsonl judged OK or WARNING,
//! with the likely cause and what to try.

use anyhow::Context;
use pretext_train::health::{overall, review, Level};
use pretext_train::metrics::read_metrics;
use pretext_train::RunDir;
use serde_json::json;

use crate::args::HealthArgs;

pub fn run(args: &HealthArgs) -> anyhow::Result<()> {
    let run = RunDir::new(&args.run);
    let config = run.read_config()?;
    let metrics_path = run.metrics_path();
    let records = read_metrics(&metrics_path)
        .with_context(|| format!("reading {}", metrics_path.display()))?;
    let last_step = records
        .iter()
        .filter_map(|record| record.get("step").and_then(|step| step.as_u64()))
        .max()
        .unwrap_or(0);
    let planned = if config.train.epochs > 0.0 {
        last_step
    } else {
        config.train.steps
    };
    let context = config.health_context(config.backbone.output_dim(), planned);
    let findings = review(&records, &context);
    let collapses = findings.iter().filter(|f| f.collapse).count();
    let warnings = findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .count();
    let verdict = overall(&findings);
    if args.json {
        let items: Vec<_> = findings
            .iter()
            .map(|f| {
                json!({"signal": f.signal, "level": if f.level == Level::Ok { "ok" } else { "warning" },
                       "collapse": f.collapse, "message": f.message})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "run": run.root.display().to_string(), "method": config.method.name.as_str(),
                "steps_logged": last_step, "steps_planned": planned, "verdict": verdict,
                "findings": items,
            }))?
        );
        return Ok(());
    }
    println!(
        "{}: {} on {}, step {last_step} of {planned} ({} metrics records)\n",
        run.root.display(),
        config.method.name.as_str(),
        config.backbone.kind.as_str(),
        records.len()
    );
    for finding in &findings {
        let level = match finding.level {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
        };
        println!("  {level:<8} {:<24} {}", finding.signal, finding.message);
    }
    println!();
    match verdict {
        "HEALTHY" => println!("verdict: HEALTHY — every signal looks right"),
        "COLLAPSED" => println!(
            "verdict: COLLAPSED — {collapses} signal(s) say the representations collapsed; see the advice above"
        ),
        _ => println!("verdict: {warnings} warning(s) — see the advice above"),
    }
    Ok(())
}
