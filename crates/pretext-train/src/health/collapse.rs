//! The judges of the representations themselves: collapse (embedding std, effective rank,
//! projection spread, DINO's teacher entropy), alignment/uniformity and view agreement.

use pretext_methods::signal::{
    Problem, Signal, ALIGNMENT, EFFECTIVE_RANK, EMBEDDING_COLLAPSED, EMBEDDING_STD,
    PROJECTION_COLLAPSED, PROJECTION_SPREAD, RANK_COLLAPSED, TEACHER_ENTROPY,
    TEACHER_MARGINAL_ENTROPY, TEACHER_SHARPENED, TEACHER_UNIFORM, UNIFORMITY, VIEWS_TOO_DIFFERENT,
    VIEWS_TOO_SIMILAR, VIEW_AGREEMENT,
};

use super::judge::Judge;
use super::series::{last, number, series, step_of, Record};
use super::verdict::{near_chance, Finding, HealthContext};

/// How the signals of this file are judged, in the table's order.
pub(super) static JUDGES: &[Judge] = &[
    Judge::each_record(&EMBEDDING_STD, embedding_std_live, embedding_std),
    Judge::each_record(&EFFECTIVE_RANK, effective_rank_live, effective_rank),
    Judge::each_record(
        &PROJECTION_SPREAD,
        projection_spread_live,
        projection_spread,
    ),
    Judge::whole_log(&ALIGNMENT, alignment_uniformity),
    Judge::whole_log(&VIEW_AGREEMENT, view_agreement),
    Judge::each_record(&TEACHER_ENTROPY, teacher_entropy_live, teacher_entropy),
];

fn embedding_std_live(record: &Record, context: &HealthContext) -> Option<Finding> {
    collapse_live(record, context, &EMBEDDING_STD, embedding_std_problem)
}

fn embedding_std(records: &[Record], context: &HealthContext) -> Option<Finding> {
    let std = last(records, &EMBEDDING_STD)?;
    Some(
        collapse_check(embedding_std_problem(std, context), context).unwrap_or_else(|| {
            let healthy = healthy_std(context);
            Finding::ok(
                EMBEDDING_STD.label,
                format!("{std:.4} at the end (healthy ≈ {healthy:.4})"),
            )
        }),
    )
}

fn effective_rank_live(record: &Record, context: &HealthContext) -> Option<Finding> {
    collapse_live(record, context, &EFFECTIVE_RANK, |rank, _| {
        effective_rank_problem(rank)
    })
}

fn effective_rank(records: &[Record], context: &HealthContext) -> Option<Finding> {
    let rank = last(records, &EFFECTIVE_RANK)?;
    Some(
        collapse_check(effective_rank_problem(rank), context).unwrap_or_else(|| {
            Finding::ok(
                EFFECTIVE_RANK.label,
                format!(
                    "{rank:.1} of {} dimensions used",
                    context.representation_dim
                ),
            )
        }),
    )
}

fn projection_spread_live(record: &Record, context: &HealthContext) -> Option<Finding> {
    collapse_live(record, context, &PROJECTION_SPREAD, |spread, _| {
        projection_spread_problem(spread)
    })
}

fn projection_spread(records: &[Record], context: &HealthContext) -> Option<Finding> {
    let spread = last(records, &PROJECTION_SPREAD)?;
    Some(
        collapse_check(projection_spread_problem(spread), context).unwrap_or_else(|| {
            Finding::ok(
                PROJECTION_SPREAD.label,
                format!(
                    "{spread:.3} at the end (1 ≈ spread like random directions, 0 = collapsed)"
                ),
            )
        }),
    )
}

/// Shown together, never a warning.
fn alignment_uniformity(records: &[Record], _: &HealthContext) -> Option<Finding> {
    let (alignment, uniformity) = (last(records, &ALIGNMENT)?, last(records, &UNIFORMITY)?);
    Some(Finding::ok(
        "alignment/uniformity",
        format!("{alignment:.3} / {uniformity:.3} at the end (lower is better for both)"),
    ))
}

fn view_agreement(records: &[Record], context: &HealthContext) -> Option<Finding> {
    let agreement = series(records, &VIEW_AGREEMENT);
    let (&(first_step, first), &(_, last)) = (agreement.first()?, agreement.last()?);
    let chance = 1.0 / context.batch_size.max(1) as f64;
    let similar = VIEWS_TOO_SIMILAR.limit;
    Some(if first >= similar && last >= similar {
        Finding::problem(
            &VIEW_AGREEMENT,
            &VIEWS_TOO_SIMILAR,
            format!("{:.0}% already at step {first_step}", 100.0 * first),
        )
    } else if last < VIEWS_TOO_DIFFERENT.limit * chance {
        Finding::problem(
            &VIEW_AGREEMENT,
            &VIEWS_TOO_DIFFERENT,
            near_chance(last, chance),
        )
    } else {
        Finding::ok(
            VIEW_AGREEMENT.label,
            format!(
                "{:.0}% → {:.0}% of images matched to their other view (chance {:.1}%)",
                100.0 * first,
                100.0 * last,
                100.0 * chance
            ),
        )
    })
}

/// DINO, once the teacher's temperature has warmed up (a flat teacher is expected before).
fn teacher_entropy_live(record: &Record, context: &HealthContext) -> Option<Finding> {
    let per_image = number(record, &TEACHER_ENTROPY)?;
    let marginal = number(record, &TEACHER_MARGINAL_ENTROPY)?;
    let k = context.dino_output_dim?;
    (step_of(record) >= context.dino_warmup_steps)
        .then(|| teacher_entropy_problem(per_image, marginal, k))
        .flatten()
}

fn teacher_entropy(records: &[Record], context: &HealthContext) -> Option<Finding> {
    let per_image = last(records, &TEACHER_ENTROPY)?;
    let marginal = last(records, &TEACHER_MARGINAL_ENTROPY)?;
    let k = context.dino_output_dim?;
    Some(
        teacher_entropy_problem(per_image, marginal, k).unwrap_or_else(|| {
            Finding::ok(
                TEACHER_ENTROPY.label,
                format!(
                    "{per_image:.2} nats per image, {marginal:.2} over the batch (ln K = {:.2})",
                    (k as f64).ln()
                ),
            )
        }),
    )
}

fn healthy_std(context: &HealthContext) -> f64 {
    1.0 / (context.representation_dim as f64).sqrt()
}

/// A collapse judge on one record, for methods that can collapse.
fn collapse_live(
    record: &Record,
    context: &HealthContext,
    signal: &Signal,
    problem: fn(f64, &HealthContext) -> Option<Finding>,
) -> Option<Finding> {
    if !context.collapse_possible {
        return None;
    }
    problem(number(record, signal)?, context)
}

/// A collapse finding only where the method can collapse.
fn collapse_check(finding: Option<Finding>, context: &HealthContext) -> Option<Finding> {
    finding.filter(|_| context.collapse_possible)
}

fn embedding_std_problem(std: f64, context: &HealthContext) -> Option<Finding> {
    let healthy = healthy_std(context);
    let problem = &EMBEDDING_COLLAPSED;
    (std < problem.limit * healthy).then(|| {
        Finding::problem(
            &EMBEDDING_STD,
            problem,
            format!(
                "COLLAPSE: {std:.4} is under {:.0}% of the healthy {healthy:.4}",
                100.0 * problem.limit
            ),
        )
    })
}

fn projection_spread_problem(spread: f64) -> Option<Finding> {
    let problem = &PROJECTION_COLLAPSED;
    (spread < problem.limit).then(|| {
        Finding::flagged(
            &PROJECTION_SPREAD,
            problem,
            format!(
                "COLLAPSE: {spread:.3}: {} ({})",
                problem.cause, problem.advice
            ),
        )
    })
}

fn effective_rank_problem(rank: f64) -> Option<Finding> {
    (rank < RANK_COLLAPSED.limit).then(|| {
        Finding::problem(
            &EFFECTIVE_RANK,
            &RANK_COLLAPSED,
            format!("COLLAPSE: {rank:.2}"),
        )
    })
}

/// Collapse by sharpening (one output dimension for every image) or by centering (a uniform
/// output), each against ln K.
fn teacher_entropy_problem(per_image: f64, marginal: f64, k: i64) -> Option<Finding> {
    let max = (k as f64).ln();
    let flagged = |problem: &Problem, measured: String| {
        Finding::flagged(
            &TEACHER_ENTROPY,
            problem,
            format!(
                "COLLAPSE: {} ({measured}); {}",
                problem.cause, problem.advice
            ),
        )
    };
    if marginal < TEACHER_SHARPENED.limit * max {
        Some(flagged(
            &TEACHER_SHARPENED,
            format!("batch entropy {marginal:.2} of ln K = {max:.2}"),
        ))
    } else if per_image > TEACHER_UNIFORM.limit * max {
        Some(flagged(
            &TEACHER_UNIFORM,
            format!("{per_image:.2} of ln K = {max:.2}"),
        ))
    } else {
        None
    }
}
