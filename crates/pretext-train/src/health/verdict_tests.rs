//! The verdicts pinned on hand-made metrics records, as `pretext health` and the live check
//! give them.

use serde_json::{json, Map, Value};

use super::judge::{live_findings, review};
use super::learning::held_out_finding;
use super::verdict::{Codebook, Finding, HealthContext, Level};

fn context() -> HealthContext {
    HealthContext {
        representation_dim: 100,
        batch_size: 100,
        total_steps: 1000,
        pretext_classes: Some(4),
        dino_output_dim: Some(1000),
        dino_warmup_steps: 0,
        loss_should_fall: true,
        collapse_possible: true,
        codebook: None,
    }
}

fn record(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn collapsed_record_warns_live_and_healthy_one_does_not() {
    let collapsed = record(json!({"step": 500, "embedding_std": 0.001, "effective_rank": 1.2}));
    let findings = live_findings(&collapsed, &context());
    assert_eq!(findings.len(), 2);
    assert!(findings.iter().all(|f| f.collapse));
    let healthy = record(json!({"step": 500, "embedding_std": 0.09, "effective_rank": 30.0}));
    assert!(live_findings(&healthy, &context()).is_empty());
}

#[test]
fn wav2vec_codebook_collapse_too_easy_masking_and_gradient_scale_are_judged() {
    let wav2vec = HealthContext {
        codebook: Some(Codebook {
            entries: 640,
            negatives: 100,
        }),
        ..context()
    };
    // Live: a collapsed codebook and an early perfect masked-frame accuracy.
    let collapsed =
        record(json!({"step": 50, "codebook_perplexity": 12.0, "contrastive_accuracy": 0.99}));
    let signals: Vec<_> = live_findings(&collapsed, &wav2vec)
        .iter()
        .map(|f| f.signal)
        .collect();
    assert_eq!(signals, ["codebook perplexity", "masked-frame accuracy"]);
    let healthy =
        record(json!({"step": 50, "codebook_perplexity": 300.0, "contrastive_accuracy": 0.2}));
    assert!(live_findings(&healthy, &wav2vec).is_empty());
    // Without a codebook (another method) the same numbers mean nothing here.
    assert!(live_findings(&collapsed, &context()).is_empty());

    let log = |perplexity: f64, accuracy: f64, ratio: f64| {
        vec![
            record(
                json!({"step": 500, "loss": 5.0, "codebook_perplexity": perplexity, "contrastive_accuracy": 0.1}),
            ),
            record(
                json!({"step": 1000, "loss": 4.0, "codebook_perplexity": perplexity, "contrastive_accuracy": accuracy, "feature_grad_ratio": ratio}),
            ),
        ]
    };
    let level = |records: &[Map<String, Value>], signal: &str| {
        review(records, &wav2vec)
            .into_iter()
            .find(|f| f.signal == signal)
            .map(|f| f.level)
    };
    let good = log(350.0, 0.3, 1.5);
    assert_eq!(level(&good, "codebook perplexity"), Some(Level::Ok));
    assert_eq!(level(&good, "masked-frame accuracy"), Some(Level::Ok));
    assert_eq!(level(&good, "feature-encoder gradient"), Some(Level::Ok));
    assert_eq!(level(&good, "contrastive accuracy"), None);
    let bad = log(20.0, 0.015, 40.0);
    assert_eq!(level(&bad, "codebook perplexity"), Some(Level::Warning));
    // Chance is 1/101 ≈ 1%: 1.5% is under twice that.
    assert_eq!(level(&bad, "masked-frame accuracy"), Some(Level::Warning));
    assert_eq!(
        level(&bad, "feature-encoder gradient"),
        Some(Level::Warning)
    );
    let frozen = log(350.0, 0.3, 1e-4);
    assert_eq!(
        level(&frozen, "feature-encoder gradient"),
        Some(Level::Warning)
    );
}

#[test]
fn dino_dominant_dimension_and_uniform_output_are_both_collapse() {
    let k = 1000f64.ln();
    let dominant =
        record(json!({"step": 10, "teacher_entropy": 0.01, "teacher_marginal_entropy": 0.05}));
    assert!(live_findings(&dominant, &context())[0]
        .message
        .contains("same output"));
    let uniform =
        record(json!({"step": 10, "teacher_entropy": 0.99 * k, "teacher_marginal_entropy": k}));
    assert!(live_findings(&uniform, &context())[0]
        .message
        .contains("uniform"));
    // Regression: a flat teacher is expected while its temperature warms up.
    let warming = HealthContext {
        dino_warmup_steps: 100,
        ..context()
    };
    assert!(live_findings(&uniform, &warming).is_empty());
    let after_warmup =
        record(json!({"step": 100, "teacher_entropy": 0.99 * k, "teacher_marginal_entropy": k}));
    assert_eq!(live_findings(&after_warmup, &warming).len(), 1);
    let healthy =
        record(json!({"step": 10, "teacher_entropy": 2.0, "teacher_marginal_entropy": 6.0}));
    assert!(live_findings(&healthy, &context()).is_empty());
}

#[test]
fn pretext_task_solved_early_is_too_easy_but_late_is_fine() {
    let early = record(json!({"step": 100, "pretext_accuracy": 0.99}));
    assert!(live_findings(&early, &context())[0]
        .message
        .starts_with("TOO EASY"));
    let late = record(json!({"step": 900, "pretext_accuracy": 0.99}));
    assert!(live_findings(&late, &context()).is_empty());
}

#[test]
fn review_judges_every_signal_present() {
    let records: Vec<_> = (1..=10)
        .map(|i| {
            record(json!({
                "step": i * 100, "loss": 5.0 - 0.3 * i as f64, "grad_norm": 1.0,
                "nonfinite_steps": 0, "embedding_std": 0.09, "effective_rank": 40.0,
                "alignment": 0.5, "uniformity": -3.0, "view_agreement": 0.5,
                "knn_accuracy": 0.5 + 0.02 * i as f64, "knn_chance": 0.1,
            }))
        })
        .collect();
    let findings = review(&records, &context());
    let signals: Vec<&str> = findings.iter().map(|f| f.signal).collect();
    assert_eq!(
        signals,
        [
            "loss",
            "non-finite steps",
            "gradient norm",
            "embedding std",
            "effective rank",
            "alignment/uniformity",
            "view agreement",
            "k-NN accuracy"
        ]
    );
    assert!(
        findings.iter().all(|f| f.level == Level::Ok),
        "{findings:#?}"
    );
}

#[test]
fn held_out_loss_rising_above_its_best_is_overfitting() {
    let falling = [(250, 2.5), (500, 2.0), (750, 1.9)];
    assert_eq!(held_out_finding(&falling).unwrap().level, Level::Ok);
    // Within 5% of the best is noise, not overfitting.
    let flat = [(250, 2.0), (500, 1.8), (750, 1.88)];
    assert_eq!(held_out_finding(&flat).unwrap().level, Level::Ok);
    let rising = [(250, 2.0), (500, 1.8), (750, 1.9), (1000, 2.1)];
    let finding = held_out_finding(&rising).unwrap();
    assert_eq!(finding.level, Level::Warning);
    assert!(finding.message.contains("step 500"), "{}", finding.message);
    assert!(held_out_finding(&[]).is_none());
}

/// The plateau MAE with per-patch normalized targets hit on Fashion-MNIST's 4-px patches:
/// a loss within 2% of the flat guess is a warning naming the setting to change.
#[test]
fn mae_no_better_than_flat_patches_is_flagged() {
    let records = |gains: &[f64]| -> Vec<Map<String, Value>> {
        gains
            .iter()
            .enumerate()
            .map(|(i, gain)| {
                record(json!({"step": 10 * (i + 1), "loss": 0.7, "reconstruction_gain": gain}))
            })
            .collect()
    };
    let find = |findings: Vec<Finding>| {
        findings
            .into_iter()
            .find(|finding| finding.signal == "reconstruction gain")
            .unwrap()
    };
    let stuck = find(review(
        &records(&[0.3, 0.02, 0.01, 0.03, 0.02, 0.02]),
        &context(),
    ));
    assert_eq!(stuck.level, Level::Warning);
    assert!(
        stuck.message.contains("normalize_targets"),
        "{}",
        stuck.message
    );
    let learning = find(review(
        &records(&[0.01, 0.2, 0.5, 0.6, 0.6, 0.62]),
        &context(),
    ));
    assert_eq!(learning.level, Level::Ok, "{}", learning.message);
}

#[test]
fn review_flags_a_flat_loss_weak_views_and_degrading_knn() {
    let records: Vec<_> = (1..=10)
        .map(|i| {
            record(json!({
                "step": i * 100, "loss": 2.0, "view_agreement": 1.0,
                "knn_accuracy": if i < 5 { 0.8 } else { 0.6 }, "knn_chance": 0.1,
            }))
        })
        .collect();
    let warnings: Vec<&str> = review(&records, &context())
        .into_iter()
        .filter(|f| f.level == Level::Warning)
        .map(|f| f.signal)
        .collect();
    assert_eq!(warnings, ["loss", "view agreement", "k-NN accuracy"]);
}
