//! Tables read end to end: column kinds, missing cells, splits, errors, Parquet, the
//! memory limit and the shared datasets.

use std::path::{Path, PathBuf};

use super::survey::MAX_LABELS;
use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const MIXED: &str = "age,color,score,label\n\
        30,red,1.5,yes\n\
        40,blue,,no\n\
        50,red,2.5,yes\n\
        ,green,3.5,no\n";

/// `MIXED` as people.csv, and a one-row test file beside it.
fn people(dir: &Path) -> (PathBuf, PathBuf) {
    let train = write(dir, "people.csv", MIXED);
    let test = write(
        dir,
        "people-test.csv",
        "age,color,score,label\n35,blue,NA,no\n",
    );
    (train, test)
}

#[test]
fn kinds_are_detected_and_missing_cells_stay_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = people(dir.path());
    let splits = load_table(&train, Some(&test), &TableOptions::default()).unwrap();
    let columns = &splits.train.columns;
    assert_eq!(columns[0].kind, ColumnKind::Numeric);
    assert_eq!(
        columns[1].kind,
        ColumnKind::Categorical {
            categories: vec!["blue".into(), "green".into(), "red".into()]
        }
    );
    assert_eq!(columns[2].kind, ColumnKind::Numeric);
    let train = &splits.train;
    assert_eq!(train.len, 4);
    assert_eq!(train.class_names, vec!["no", "yes"]);
    assert_eq!(train.labels.as_deref(), Some(&[1u16, 0, 1, 0][..]));
    // Age standardized: (30 − 40) / √(200/3); color code 2 (red) as it is.
    let z = (-10.0 / (200.0f64 / 3.0).sqrt()) as f32;
    assert_eq!(&train.row(0)[..2], &[z, 2.0]);
    assert!(train.row(1)[2].is_nan() && train.row_missing(1)[2]);
    assert!(train.row(3)[0].is_nan() && train.row_missing(3) == [true, false, false]);
    assert_eq!(splits.test.row(0)[1], 0.0, "blue");
    assert!(splits.test.row_missing(0)[2], "NA is missing");
    // Statistics leave the missing cells out: age 30, 40, 50.
    let age = &splits.stats.columns[0];
    assert_eq!((age.present, age.missing), (3, 1));
    assert!((age.mean - 40.0).abs() < 1e-12);
    assert!((age.std - (200.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert_eq!((age.min, age.max), (30.0, 50.0));
    let json = splits.stats.to_json();
    assert_eq!(json[1]["kind"], "categorical");
    assert_eq!(json[1]["categories"][2], "red");
}

#[test]
fn declared_kinds_win_and_integer_labels_take_the_classes_file() {
    let dir = tempfile::tempdir().unwrap();
    let train = write(dir.path(), "t.csv", "zip,x,label\n10,1,0\n20,2,1\n10,3,1\n");
    write(dir.path(), "t.classes.txt", "cat\ndog\n");
    let options = TableOptions {
        categorical: vec!["zip".into()],
        holdout_fraction: 0.0,
        ..Default::default()
    };
    let splits = load_table(&train, None, &options).unwrap();
    assert_eq!(
        splits.train.columns[0].kind,
        ColumnKind::Categorical {
            categories: vec!["10".into(), "20".into()]
        }
    );
    assert_eq!(splits.train.class_names, vec!["cat", "dog"]);
    assert_eq!(splits.train.labels.as_deref(), Some(&[0u16, 1, 1][..]));
    assert_eq!(splits.test.len, 0);

    let options = TableOptions {
        numeric: vec!["color".into()],
        ..Default::default()
    };
    let train = write(dir.path(), "people.csv", MIXED);
    let error = load_table(&train, None, &options).unwrap_err().to_string();
    assert!(
        error.contains("people.csv") && error.contains("line 2") && error.contains("\"red\""),
        "{error}"
    );
}

#[test]
fn a_held_out_split_is_stratified_and_its_categories_come_from_training() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("f,label\n");
    for row in 0..100 {
        text.push_str(&format!("{},{}\n", row, row % 2));
    }
    let train = write(dir.path(), "big.csv", &text);
    let splits = load_table(&train, None, &TableOptions::default()).unwrap();
    assert_eq!((splits.train.len, splits.test.len), (80, 20));
    let ones = splits
        .test
        .labels
        .as_ref()
        .unwrap()
        .iter()
        .filter(|&&l| l == 1)
        .count();
    assert_eq!(ones, 10);
    // The statistics are the training rows' only: standardized, they have mean 0, std 1.
    let values = splits.train.values.as_slice();
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / 80.0;
    let variance = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / 80.0;
    assert!(
        mean.abs() < 1e-6 && (variance - 1.0).abs() < 1e-5,
        "{mean} {variance}"
    );
    let raw_mean = splits.stats.columns[0].mean;
    assert!((40.0..60.0).contains(&raw_mean), "{raw_mean}");
}

#[test]
fn malformed_files_are_named_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let short = write(dir.path(), "short.csv", "a,b,label\n1,2,0\n3,0\n");
    let error = load_table(&short, None, &TableOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("short.csv") && error.contains("line 3") && error.contains("3 fields"),
        "{error}"
    );

    let no_label = write(dir.path(), "nolabel.csv", "a,b\n1,2\n");
    let error = load_table(&no_label, None, &TableOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("nolabel.csv") && error.contains("\"label\""),
        "{error}"
    );

    let train = write(dir.path(), "train.csv", MIXED);
    let test = write(
        dir.path(),
        "test.csv",
        "age,color,score,label\n1,purple,2,no\n",
    );
    let error = load_table(&train, Some(&test), &TableOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("test.csv")
            && error.contains("line 2")
            && error.contains("\"color\"")
            && error.contains("purple"),
        "{error}"
    );

    let test = write(
        dir.path(),
        "test2.csv",
        "age,color,score,label\n1,red,2,maybe\n",
    );
    let error = load_table(&train, Some(&test), &TableOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("maybe") && error.contains("line 2"),
        "{error}"
    );

    let empty = write(dir.path(), "empty.csv", "a,label\n");
    let error = load_table(&empty, None, &TableOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("empty.csv") && error.contains("no rows"),
        "{error}"
    );

    let unlabeled = write(dir.path(), "gap.csv", "a,label\n1,0\n2,\n");
    let error = load_table(&unlabeled, None, &TableOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("line 3") && error.contains("empty label"),
        "{error}"
    );

    let infinite = write(dir.path(), "inf.csv", "a,label\n1,0\ninf,1\n");
    let error = load_table(&infinite, None, &TableOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("line 3") && error.contains("finite"),
        "{error}"
    );
}

/// Past `memory_limit_mb` both splits' values (and a subset's) live in mapped files and
/// read exactly as in memory.
#[test]
fn a_table_past_its_memory_limit_is_mapped_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = people(dir.path());
    let load = |memory_limit_mb| {
        let options = TableOptions {
            memory_limit_mb,
            ..Default::default()
        };
        load_table(&train, Some(&test), &options).unwrap()
    };
    let (memory, mapped) = (load(4096), load(0));
    let bits = |set: &TableSet| set.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for (a, b) in [(&memory.train, &mapped.train), (&memory.test, &mapped.test)] {
        assert!(!a.values.is_mapped() && b.values.is_mapped());
        assert_eq!(bits(a), bits(b));
        assert_eq!(a.labels, b.labels);
    }
    assert_eq!(memory.stats, mapped.stats);
    let subset = mapped.train.subset(&[3, 0]);
    assert!(subset.values.is_mapped());
    assert_eq!(bits(&subset), bits(&memory.train.subset(&[3, 0])));
}

/// Class codes are 16-bit: a label column with more distinct values (a feature named as
/// the label by mistake) is an error naming the line, not codes that wrap around.
#[test]
fn more_distinct_labels_than_codes_is_an_error() {
    let mut text = String::from("x,label\n");
    for row in 0..=MAX_LABELS {
        text.push_str(&format!("1,c{row}\n"));
    }
    let error = load_csv_bytes(text.as_bytes(), "wide.csv", &TableOptions::default())
        .unwrap_err()
        .to_string();
    let line = format!("line {}", MAX_LABELS + 2);
    assert!(
        error.contains("wide.csv") && error.contains(&line) && error.contains("65536"),
        "{error}"
    );
}

/// A Parquet file (snappy, with nulls) loads exactly as the same table in CSV; a file
/// that is not Parquet is named.
#[test]
fn parquet_reads_like_the_same_csv() {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;

    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "people.csv", MIXED);
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "age",
            std::sync::Arc::new(Int64Array::from(vec![Some(30), Some(40), Some(50), None])),
        ),
        (
            "color",
            std::sync::Arc::new(StringArray::from(vec!["red", "blue", "red", "green"])),
        ),
        (
            "score",
            std::sync::Arc::new(Float64Array::from(vec![
                Some(1.5),
                None,
                Some(2.5),
                Some(3.5),
            ])),
        ),
        (
            "label",
            std::sync::Arc::new(StringArray::from(vec!["yes", "no", "yes", "no"])),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let path = dir.path().join("people.parquet");
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        Some(properties),
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let options = TableOptions {
        holdout_fraction: 0.0,
        ..Default::default()
    };
    let from_csv = load_table(&csv, None, &options).unwrap();
    let from_parquet = load_table(&path, None, &options).unwrap();
    assert_eq!(from_parquet.train.columns, from_csv.train.columns);
    assert_eq!(from_parquet.stats, from_csv.stats);
    for (a, b) in [
        (&from_parquet.train, &from_csv.train),
        (&from_parquet.test, &from_csv.test),
    ] {
        assert_eq!(a.labels, b.labels);
        let (x, y) = (a.values.as_slice(), b.values.as_slice());
        let same = x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()));
        assert!(same, "{x:?} vs {y:?}");
    }

    let fake = write(dir.path(), "fake.parquet", "a,label\n1,0\n");
    let error = load_table(&fake, None, &options).unwrap_err().to_string();
    assert!(
        error.contains("fake.parquet") && error.contains("Parquet"),
        "{error}"
    );
}

/// The shared UCI tables load with their documented shapes and classes.
#[test]
fn shared_tables_load() {
    let Some(dir) = crate::test_data::shared_data("tabular") else {
        return;
    };
    for (file, rows, width, classes, missing) in [
        ("letter_recognition.csv", 20000, 16, 26, 0),
        ("satellite.csv", 6435, 36, 6, 0),
        ("breast_cancer.csv", 699, 9, 2, 16),
    ] {
        let splits = load_table(&dir.join(file), None, &TableOptions::default()).unwrap();
        assert_eq!(splits.train.len + splits.test.len, rows, "{file}");
        assert_eq!(splits.train.width(), width, "{file}");
        assert_eq!(splits.train.class_names.len(), classes, "{file}");
        let holes = splits.train.values.iter().chain(splits.test.values.iter());
        assert_eq!(holes.filter(|v| v.is_nan()).count(), missing, "{file}");
        assert!(splits
            .train
            .columns
            .iter()
            .all(|column| column.kind == ColumnKind::Numeric));
    }
}
