//! A signal's values read out of metrics records: one record's, or a whole log's in order.

use pretext_methods::signal::{Signal, STEP};
use serde_json::{Map, Value};

/// One line of metrics.jsonl.
pub(super) type Record = Map<String, Value>;

/// The finite value of `signal` in `record`.
pub(super) fn number(record: &Record, signal: &Signal) -> Option<f64> {
    record
        .get(signal.key)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
}

/// The step `record` was written at, as the live check reads it.
pub(super) fn step_of(record: &Record) -> u64 {
    number(record, &STEP).unwrap_or(0.0) as u64
}

/// `(step, value)` for every record with a finite `signal`.
pub(super) fn series(records: &[Record], signal: &Signal) -> Vec<(u64, f64)> {
    records
        .iter()
        .filter_map(|record| {
            Some((
                record.get(STEP.key).and_then(Value::as_u64).unwrap_or(0),
                number(record, signal)?,
            ))
        })
        .collect()
}

/// The last finite value of `signal` in `records`.
pub(super) fn last(records: &[Record], signal: &Signal) -> Option<f64> {
    series(records, signal).last().map(|&(_, value)| value)
}

pub(super) fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    sum / count.max(1) as f64
}

/// The `(step, value)` with the largest value (the first of equals; `(0, f64::MIN)` if none).
pub(super) fn highest(points: &[(u64, f64)]) -> (u64, f64) {
    points
        .iter()
        .copied()
        .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a })
}
