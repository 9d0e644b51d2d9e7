//! Deterministic held-out splits, balanced label subsets and label budgets.

use rand::seq::SliceRandom;

use crate::error::DataError;
use crate::rng_stream::rng_stream;

/// First part of the stream path of every split: `rng_stream(seed, &[SPLIT_TAG, class])`.
pub const SPLIT_TAG: u64 = u64::from_be_bytes(*b"split\0\0\0");
/// First part of the stream path of every label subset.
pub const SUBSET_TAG: u64 = u64::from_be_bytes(*b"subset\0\0");
/// First part of the stream path of every cross-validation fold assignment.
pub const FOLD_TAG: u64 = u64::from_be_bytes(*b"folds\0\0\0");
/// Class slot used for the stream of an unlabeled [`random_split`].
const UNLABELED_CLASS: u64 = u64::MAX;

/// Indices of each class present in `labels`, ascending, as `index` makes them; the outer
/// index is the class code.
fn indices_by_class<T: Clone>(labels: &[u16], index: impl Fn(usize) -> T) -> Vec<Vec<T>> {
    let num_classes = labels.iter().max().map_or(0, |&max| usize::from(max) + 1);
    let mut by_class = vec![Vec::new(); num_classes];
    for (position, &label) in labels.iter().enumerate() {
        by_class[usize::from(label)].push(index(position));
    }
    by_class
}

/// Number of held-out items out of `count`: `round(count * fraction)`, with `fraction`
/// clamped to `[0, 1]` (NaN counts as 0).
fn holdout_count(count: usize, holdout_fraction: f64) -> usize {
    let fraction = if holdout_fraction.is_nan() {
        0.0
    } else {
        holdout_fraction.clamp(0.0, 1.0)
    };
    ((count as f64 * fraction).round() as usize).min(count)
}

/// Splits sample indices into `(train, test)` per class: each class's indices are shuffled
/// with `rng_stream(seed, &[SPLIT_TAG, class])` and the first `round(n_class * holdout_fraction)`
/// go to test. Both lists are sorted ascending. `holdout_fraction` is clamped to `[0, 1]`.
pub fn stratified_split(
    labels: &[u16],
    holdout_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let in_training = stratified_in_training(labels, holdout_fraction, seed);
    let mut train = Vec::with_capacity(labels.len());
    let mut test = Vec::new();
    for (index, in_training) in in_training.into_iter().enumerate() {
        if in_training {
            train.push(index);
        } else {
            test.push(index);
        }
    }
    (train, test)
}

/// [`stratified_split`] as one flag per sample, true where it is in the training split: the
/// same split in a byte a sample instead of lists of indices (for tables of many millions of
/// rows).
pub fn stratified_in_training(labels: &[u16], holdout_fraction: f64, seed: u64) -> Vec<bool> {
    /// Shuffles each class (32-bit indices shuffle exactly as `usize` ones: the draws
    /// depend on the lengths alone) and clears the flags of its first share.
    fn hold_out<T: Copy>(
        by_class: Vec<Vec<T>>,
        in_training: &mut [bool],
        holdout_fraction: f64,
        seed: u64,
        position: impl Fn(T) -> usize,
    ) {
        for (class, mut indices) in by_class.into_iter().enumerate() {
            indices.shuffle(&mut rng_stream(seed, &[SPLIT_TAG, class as u64]));
            let count = holdout_count(indices.len(), holdout_fraction);
            for &index in &indices[..count] {
                in_training[position(index)] = false;
            }
        }
    }
    let mut in_training = vec![true; labels.len()];
    if u32::try_from(labels.len()).is_ok() {
        let by_class = indices_by_class(labels, |index| index as u32);
        hold_out(
            by_class,
            &mut in_training,
            holdout_fraction,
            seed,
            |index| index as usize,
        );
    } else {
        let by_class = indices_by_class(labels, |index| index);
        hold_out(
            by_class,
            &mut in_training,
            holdout_fraction,
            seed,
            |index| index,
        );
    }
    in_training
}

/// Splits `0..len` into `(train, test)` for unlabeled data: a shuffle with
/// `rng_stream(seed, &[SPLIT_TAG, u64::MAX])`, the first `round(len * holdout_fraction)` to
/// test. Both lists are sorted ascending.
pub fn random_split(len: usize, holdout_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut indices: Vec<usize> = (0..len).collect();
    indices.shuffle(&mut rng_stream(seed, &[SPLIT_TAG, UNLABELED_CLASS]));
    let held_out = holdout_count(len, holdout_fraction);
    let mut test = indices[..held_out].to_vec();
    let mut train = indices[held_out..].to_vec();
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// Number of classes of a labeled set: `class_names.len()` when known, else max label + 1;
/// 0 if unlabeled.
pub(crate) fn class_count(labels: Option<&[u16]>, class_names: &[String]) -> usize {
    match labels {
        None => 0,
        Some(labels) => {
            let from_labels = labels.iter().max().map_or(0, |&max| usize::from(max) + 1);
            class_names.len().max(from_labels)
        }
    }
}

/// A labeled subset for probing: `count` indices, as balanced across the classes present
/// as possible, returned sorted ascending.
///
/// Each class gets `count / classes`; the remainder goes one each to the first classes in
/// a seeded order (`rng_stream(seed, &[SUBSET_TAG])`). A class with too few samples gives
/// all of them and the shortfall is spread over the others the same way. Within a class the
/// samples are the first of a shuffle by `rng_stream(seed, &[SUBSET_TAG, class])`, so a
/// smaller budget with the same seed picks a subset of a larger one's per-class picks.
/// `count >= labels.len()` returns every index. Deterministic for `(labels, count, seed)`.
pub fn stratified_subset(labels: &[u16], count: usize, seed: u64) -> Vec<usize> {
    if count >= labels.len() {
        return (0..labels.len()).collect();
    }
    let by_class = indices_by_class(labels, |index| index);
    let mut class_order: Vec<usize> = (0..by_class.len())
        .filter(|&class| !by_class[class].is_empty())
        .collect();
    class_order.shuffle(&mut rng_stream(seed, &[SUBSET_TAG]));

    // Water-filling: classes too small for an equal share give everything; repeat.
    let mut quota = vec![0usize; by_class.len()];
    let mut active = class_order;
    let mut remaining = count;
    while !active.is_empty() && remaining > 0 {
        let share = remaining / active.len();
        let (small, large): (Vec<usize>, Vec<usize>) = active
            .iter()
            .partition(|&&class| by_class[class].len() <= share);
        if small.is_empty() {
            let extra = remaining % active.len();
            for (position, &class) in active.iter().enumerate() {
                quota[class] = share + usize::from(position < extra);
            }
            break;
        }
        for class in small {
            quota[class] = by_class[class].len();
            remaining -= quota[class];
        }
        active = large;
    }

    let mut chosen = Vec::with_capacity(count);
    for (class, mut indices) in by_class.into_iter().enumerate() {
        if quota[class] == 0 {
            continue;
        }
        indices.shuffle(&mut rng_stream(seed, &[SUBSET_TAG, class as u64]));
        chosen.extend_from_slice(&indices[..quota[class]]);
    }
    chosen.sort_unstable();
    chosen
}

/// The fold (`0..folds`) of each of `labels` for stratified k-fold cross-validation: each
/// class's positions are shuffled by `rng_stream(seed, &[FOLD_TAG, class])` and dealt to the
/// folds in turn, each class starting where the previous one stopped, so every fold gets
/// its share of every class and the fold sizes differ by at most one. `folds` is clamped to
/// `1..=labels.len()` (at least 1).
pub fn stratified_folds(labels: &[u16], folds: usize, seed: u64) -> Vec<usize> {
    let folds = folds.clamp(1, labels.len().max(1));
    let mut fold_of = vec![0; labels.len()];
    let mut next = 0;
    for (class, mut positions) in indices_by_class(labels, |index| index)
        .into_iter()
        .enumerate()
    {
        positions.shuffle(&mut rng_stream(seed, &[FOLD_TAG, class as u64]));
        for position in positions {
            fold_of[position] = next;
            next = (next + 1) % folds;
        }
    }
    fold_of
}

/// Parses a label budget: `"600"` → 600, `"1%"` → `round(0.01 * total)`, `"100%"` → `total`.
/// Errors on 0 (or a percentage that rounds to 0), more than `total`, and anything else.
pub fn parse_label_budget(text: &str, total: usize) -> Result<usize, DataError> {
    let reject = |reason: String| DataError::BadLabelBudget {
        text: text.to_string(),
        reason,
    };
    let trimmed = text.trim();
    let count = if let Some(percent_text) = trimmed.strip_suffix('%') {
        let percent: f64 = percent_text.trim().parse().map_err(|_| {
            reject(format!(
                "expected a percentage like \"1%\", found {percent_text:?} before '%'"
            ))
        })?;
        if !percent.is_finite() || percent <= 0.0 || percent > 100.0 {
            return Err(reject(format!(
                "expected a percentage in (0, 100], found {percent}"
            )));
        }
        let count = (percent / 100.0 * total as f64).round() as usize;
        if count == 0 {
            return Err(reject(format!(
                "{percent}% of {total} labeled samples rounds to 0"
            )));
        }
        count
    } else {
        let count: usize = trimmed.parse().map_err(|_| {
            reject("expected a count like \"600\" or a percentage like \"1%\"".to_string())
        })?;
        if count == 0 {
            return Err(reject(
                "expected at least 1 labeled sample, found 0".to_string(),
            ));
        }
        count
    };
    if count > total {
        return Err(reject(format!(
            "expected at most {total} (the labeled samples available), found {count}"
        )));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balanced_labels(classes: u16, per_class: usize) -> Vec<u16> {
        // Interleaved so that class membership is not a contiguous block.
        (0..classes as usize * per_class)
            .map(|index| (index % classes as usize) as u16)
            .collect()
    }

    fn class_counts(labels: &[u16], indices: &[usize]) -> Vec<usize> {
        let mut counts = vec![0; labels.iter().max().map_or(0, |&m| m as usize + 1)];
        for &index in indices {
            counts[labels[index] as usize] += 1;
        }
        counts
    }

    #[test]
    fn stratified_split_holds_out_the_fraction_of_every_class() {
        let mut labels = Vec::new();
        for class in 0..10u16 {
            labels.extend(std::iter::repeat_n(class, 500)); // sorted by label, like MNIST-5k
        }
        let (train, test) = stratified_split(&labels, 0.2, 0);
        assert_eq!((train.len(), test.len()), (4000, 1000));
        assert_eq!(class_counts(&labels, &test), vec![100; 10]);
        assert!(train.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(test.windows(2).all(|pair| pair[0] < pair[1]));
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..5000).collect::<Vec<_>>());
        // Shuffled: the held-out zeros are not simply the first or last 100 rows.
        let zeros: Vec<usize> = test.iter().copied().filter(|&i| i < 500).collect();
        assert_ne!(zeros, (0..100).collect::<Vec<_>>());
        assert_ne!(zeros, (400..500).collect::<Vec<_>>());
        assert_eq!(
            stratified_split(&labels, 0.2, 0),
            (train.clone(), test.clone())
        );
        assert_ne!(stratified_split(&labels, 0.2, 1).1, test);
    }

    /// The split is the one made before it was computed as flags over 32-bit indices: each
    /// class's `usize` indices shuffled, the first share held out (the splits of every run
    /// made so far depend on it).
    #[test]
    fn the_split_is_the_shuffle_of_each_class_of_usize_indices() {
        let labels: Vec<u16> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u16 % 7)
            .collect();
        for (fraction, seed) in [(0.2, 0), (0.35, 11), (1.0, 3)] {
            let mut test = Vec::new();
            for class in 0..7u16 {
                let mut indices: Vec<usize> = (0..labels.len())
                    .filter(|&index| labels[index] == class)
                    .collect();
                indices.shuffle(&mut rng_stream(seed, &[SPLIT_TAG, u64::from(class)]));
                let count = holdout_count(indices.len(), fraction);
                test.extend_from_slice(&indices[..count]);
            }
            test.sort_unstable();
            assert_eq!(stratified_split(&labels, fraction, seed).1, test);
            let flags = stratified_in_training(&labels, fraction, seed);
            let flagged: Vec<usize> = (0..labels.len()).filter(|&i| !flags[i]).collect();
            assert_eq!(flagged, test);
        }
    }

    #[test]
    fn random_split_is_deterministic_and_sized() {
        let (train, test) = random_split(101, 0.2, 5);
        assert_eq!((train.len(), test.len()), (81, 20));
        assert_eq!(random_split(101, 0.2, 5), (train, test.clone()));
        assert_ne!(random_split(101, 0.2, 6).1, test);
    }

    #[test]
    fn stratified_subset_of_600_from_10_balanced_classes_takes_60_each() {
        let labels = balanced_labels(10, 100);
        let subset = stratified_subset(&labels, 600, 0);
        assert_eq!(subset.len(), 600);
        assert_eq!(class_counts(&labels, &subset), vec![60; 10]);
        assert!(subset.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn stratified_subset_is_deterministic_and_seed_dependent() {
        let labels = balanced_labels(10, 100);
        assert_eq!(
            stratified_subset(&labels, 123, 4),
            stratified_subset(&labels, 123, 4)
        );
        assert_ne!(
            stratified_subset(&labels, 123, 4),
            stratified_subset(&labels, 123, 5)
        );
    }

    #[test]
    fn stratified_subset_remainder_goes_one_per_class() {
        let labels = balanced_labels(10, 100);
        let counts = class_counts(&labels, &stratified_subset(&labels, 605, 0));
        assert_eq!(counts.iter().sum::<usize>(), 605);
        assert_eq!(counts.iter().filter(|&&count| count == 61).count(), 5);
        assert_eq!(counts.iter().filter(|&&count| count == 60).count(), 5);
    }

    #[test]
    fn stratified_subset_gives_a_small_class_all_and_the_rest_to_others() {
        // Class 0 has 5 samples, classes 1 and 2 have 100 each.
        let mut labels = vec![0u16; 5];
        labels.extend(std::iter::repeat_n(1u16, 100));
        labels.extend(std::iter::repeat_n(2u16, 100));
        let counts = class_counts(&labels, &stratified_subset(&labels, 60, 3));
        assert_eq!(counts[0], 5);
        assert_eq!(counts[1] + counts[2], 55);
        assert!(counts[1].abs_diff(counts[2]) <= 1, "{counts:?}");
        assert_eq!(stratified_subset(&labels, 1000, 3).len(), 205);
    }

    #[test]
    fn parse_label_budget_accepts_counts_and_percentages() {
        assert_eq!(parse_label_budget("600", 60000).unwrap(), 600);
        assert_eq!(parse_label_budget(" 600 ", 60000).unwrap(), 600);
        assert_eq!(parse_label_budget("1%", 60000).unwrap(), 600);
        assert_eq!(parse_label_budget("0.5%", 4000).unwrap(), 20);
        assert_eq!(parse_label_budget("100%", 4000).unwrap(), 4000);
        assert_eq!(parse_label_budget("4000", 4000).unwrap(), 4000);
    }

    #[test]
    fn parse_label_budget_rejects_zero_too_many_and_garbage() {
        for text in [
            "0", "0%", "4001", "101%", "-5", "abc", "", "%", "1.5", "nan%", "0.001%",
        ] {
            let error = parse_label_budget(text, 4000).unwrap_err();
            match &error {
                DataError::BadLabelBudget { text: found, .. } => assert_eq!(found, text),
                other => panic!("{text:?}: expected BadLabelBudget, got {other:?}"),
            }
        }
    }

    #[test]
    fn folds_are_stratified_balanced_and_seeded() {
        // 3 classes of 7, 5 and 3: 15 labels in 5 folds of exactly 3.
        let labels: Vec<u16> = [0u16; 7].into_iter().chain([1; 5]).chain([2; 3]).collect();
        let folds = stratified_folds(&labels, 5, 4);
        let mut sizes = [0; 5];
        for &fold in &folds {
            sizes[fold] += 1;
        }
        assert_eq!(sizes, [3; 5]);
        // Each class is spread as evenly as it can be: 7 over 5 folds is 2,2,1,1,1.
        for class in 0..3u16 {
            let mut per_fold = [0; 5];
            for (position, &fold) in folds.iter().enumerate() {
                if labels[position] == class {
                    per_fold[fold] += 1;
                }
            }
            let (min, max) = (
                per_fold.iter().min().unwrap(),
                per_fold.iter().max().unwrap(),
            );
            assert!(max - min <= 1, "class {class}: {per_fold:?}");
        }
        assert_eq!(folds, stratified_folds(&labels, 5, 4));
        assert_ne!(folds, stratified_folds(&labels, 5, 5));
        // More folds than labels: one label a fold.
        assert_eq!(stratified_folds(&[0, 1], 5, 0).len(), 2);
        assert!(stratified_folds(&[], 5, 0).is_empty());
    }
}
