//! The cross-validated choice of the learning rate, weight decay, number of epochs and, for
//! images, whether to train on the run's views: every (lr, weight decay, augment) of the
//! grid trains on k − 1 stratified folds of the labeled examples for the full schedule and
//! is measured on the remaining fold after every epoch; the (lr, weight decay, augment,
//! epoch) with the most held-out examples right over all folds wins (ties: the first in grid order, then the fewest epochs). A fine-tune that starts from its
//! linear probe (`probe_fallback`) is also measured before its first epoch, so 0 epochs —
//! the probe kept — is a candidate, and wins ties. Only the labeled examples are used —
//! never the held-out split.

use pretext_data::{stratified_folds, stratified_subset, Samples};
use pretext_train::TrainError;

use super::fit::{FitPlan, Fitter};
use super::report::{SearchPoint, SearchReport};

/// Searches the grid of `fitter.settings.search` on `labeled` (the labeled training
/// examples). With some class holding fewer examples than folds, nothing is searched: the
/// grid's first point trains for all epochs, and the report says so (`folds` 0).
pub(super) fn search(
    fitter: &Fitter<'_>,
    labeled: &Samples,
    log: &mut dyn FnMut(&str),
) -> Result<SearchReport, TrainError> {
    let settings = fitter.settings;
    let search = &settings.search;
    let labels = labeled.labels().expect("labeled");
    let rows: Vec<usize> = if labeled.len() > search.max_examples {
        stratified_subset(labels, search.max_examples, settings.seed)
    } else {
        (0..labeled.len()).collect()
    };
    let row_labels: Vec<u16> = rows.iter().map(|&row| labels[row]).collect();
    // Only images have views to train on or not.
    let augment: Vec<Option<bool>> = if matches!(labeled, Samples::Images(_)) {
        search
            .augment
            .iter()
            .map(|&augment| Some(augment))
            .collect()
    } else {
        vec![None]
    };
    let grid: Vec<(f64, f64, Option<bool>)> = search
        .lr
        .iter()
        .flat_map(|&lr| search.weight_decay.iter().map(move |&wd| (lr, wd)))
        .flat_map(|(lr, wd)| augment.iter().map(move |&augment| (lr, wd, augment)))
        .collect();
    let smallest_class = smallest_class(&row_labels);
    if smallest_class < search.folds {
        let (lr, weight_decay, augment) = grid[0];
        log(&format!(
            "search: a class has {smallest_class} labeled example(s), fewer than the {} folds; training with lr {lr:.0e} and weight decay {weight_decay:.0e} for all {} epochs instead",
            search.folds, settings.epochs
        ));
        return Ok(SearchReport {
            folds: 0,
            examples: rows.len(),
            tried: Vec::new(),
            chosen: SearchPoint {
                lr,
                weight_decay,
                augment,
                epochs: settings.epochs,
                accuracy: None,
            },
        });
    }
    let fold_of = stratified_folds(&row_labels, search.folds, settings.seed);
    let mut tried = Vec::new();
    for (point, &(lr, weight_decay, augment)) in grid.iter().enumerate() {
        // Held-out examples right after each epoch (index 0: before the first, when the
        // start is measured), summed over the folds.
        let mut right = vec![0.0; settings.epochs + 1];
        let mut start_measured = true;
        for fold in 0..search.folds {
            let views = match augment {
                Some(true) => ", augmented",
                Some(false) => ", as they are",
                None => "",
            };
            log(&format!(
                "search {}/{}: lr {lr:.0e}, weight decay {weight_decay:.0e}{views}, fold {}/{}",
                point + 1,
                grid.len(),
                fold + 1,
                search.folds
            ));
            let part = |held_out: bool| {
                let chosen: Vec<usize> = rows
                    .iter()
                    .zip(&fold_of)
                    .filter(|(_, &f)| (f == fold) == held_out)
                    .map(|(&row, _)| row)
                    .collect();
                labeled.subset(&chosen)
            };
            let (train, validation) = (part(false), part(true));
            let fitted = fitter.fit(
                &FitPlan {
                    train: &train,
                    validation: Some(&validation),
                    lr,
                    weight_decay,
                    augment: augment.unwrap_or(false),
                    epochs: settings.epochs,
                    early_stopping: false,
                    measure_test: false,
                },
                &mut |_| {},
            )?;
            let held_out = validation.len() as f64;
            match fitted.start_validation_accuracy {
                Some(accuracy) => right[0] += accuracy * held_out,
                None => start_measured = false,
            }
            for (sum, record) in right[1..].iter_mut().zip(&fitted.records) {
                *sum += record.validation_accuracy.unwrap_or(0.0) * held_out;
            }
        }
        let first = usize::from(!start_measured);
        let (epoch, best) = first_max(&right[first..]);
        tried.push(SearchPoint {
            lr,
            weight_decay,
            augment,
            epochs: epoch + first,
            accuracy: Some(best / rows.len() as f64),
        });
    }
    let accuracies: Vec<f64> = tried
        .iter()
        .map(|point| point.accuracy.unwrap_or(0.0))
        .collect();
    let chosen = tried[first_max(&accuracies).0].clone();
    Ok(SearchReport {
        folds: search.folds,
        examples: rows.len(),
        tried,
        chosen,
    })
}

/// The examples of the rarest class present.
fn smallest_class(labels: &[u16]) -> usize {
    let mut counts = std::collections::HashMap::new();
    for &label in labels {
        *counts.entry(label).or_insert(0usize) += 1;
    }
    counts.values().copied().min().unwrap_or(0)
}

/// The position and value of the first maximum of `values` (which is not empty).
fn first_max(values: &[f64]) -> (usize, f64) {
    values
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (index, &value)| {
            if value > best.1 {
                (index, value)
            } else {
                best
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_first_and_classes_are_counted() {
        assert_eq!(first_max(&[0.5, 0.7, 0.7, 0.1]), (1, 0.7));
        assert_eq!(smallest_class(&[0, 0, 1, 2, 2, 2]), 1);
        assert_eq!(smallest_class(&[]), 0);
    }
}
