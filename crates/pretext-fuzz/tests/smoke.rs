//! The CI smoke run: a few thousand mutated inputs per target, from the committed corpus
//! only, with a fixed seed. A panic or hang fails the test and names the saved input.
//! The full campaign (a million inputs per reader) is `pretext-fuzz --inputs 1000000`.

use pretext_fuzz::{default_corpus_dir, load_seeds, run, target_by_name, Campaign};

/// Inputs per target: enough to reach past the readers' first checks, quick on 2 cores.
const SMOKE_INPUTS: u32 = 10_000;

/// A hang here is an input slower than this, twice: looser than the campaign's 1 s, as CI
/// machines are shared (the slowest smoke input takes about 0.5 s on an idle core).
const SMOKE_HANG_SECONDS: f64 = 10.0;

fn smoke(name: &str) {
    let target = target_by_name(name).expect("a target");
    let seeds = load_seeds(&default_corpus_dir(), name).unwrap();
    let findings_dir = std::env::temp_dir().join("pretext-fuzz-smoke-findings");
    let campaign = Campaign {
        target,
        seeds: &seeds,
        inputs: SMOKE_INPUTS,
        seed: 0,
        findings_dir,
        keep_going: false,
        hang_seconds: SMOKE_HANG_SECONDS,
        last_input: None,
    };
    let report = run(&campaign, &|_| {}).unwrap();
    let findings: Vec<String> = report
        .findings
        .iter()
        .map(|finding| {
            format!(
                "{} ({}), input saved to {}",
                finding.kind,
                finding.message,
                finding.input.display()
            )
        })
        .collect();
    assert!(
        findings.is_empty(),
        "{}\n{}",
        report.summary(),
        findings.join("\n")
    );
    assert_eq!(report.inputs, u64::from(SMOKE_INPUTS));
    // The mutations keep some inputs readable: the readers' later code is reached too.
    assert!(report.accepted > 0, "{}", report.summary());
    assert!(report.refused > 0, "{}", report.summary());
}

#[test]
fn idx() {
    smoke("idx");
}

#[test]
fn image() {
    smoke("image");
}

#[test]
fn wav() {
    smoke("wav");
}

#[test]
fn csv() {
    smoke("csv");
}

#[test]
fn parquet() {
    smoke("parquet");
}

#[test]
fn tsv() {
    smoke("tsv");
}

#[test]
fn jsonl() {
    smoke("jsonl");
}

#[test]
fn text() {
    smoke("text");
}

#[test]
fn tokenizer() {
    smoke("tokenizer");
}

#[test]
fn safetensors() {
    smoke("safetensors");
}

#[test]
fn toml() {
    smoke("toml");
}

#[test]
fn every_target_has_a_smoke_test() {
    let source = include_str!("smoke.rs");
    for target in pretext_fuzz::TARGETS {
        assert!(
            source.contains(&format!("fn {}()", target.name)),
            "no smoke test for {}",
            target.name
        );
    }
}
