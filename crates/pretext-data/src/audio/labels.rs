//! A labels CSV of `file,label[,split]` rows read as two splits of labeled clips.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::folder::{load_clips, WAV_EXTENSION};
use super::options::AudioOptions;
use super::set::AudioSplits;
use crate::error::DataError;
use crate::source::has_extension;
use crate::table::csv_error;

/// The labels file of an audio dataset folder: `labels.csv` inside it.
pub const AUDIO_LABELS_FILE: &str = "labels.csv";

/// Reads a CSV labels file with a header naming the columns `file` and `label`, and
/// optionally `split` (`train` or `test`), as labeled clips.
///
/// Files are relative to the CSV's folder. Labels are coded in sorted order of the distinct
/// label strings of the whole file (train and test), which become the class names. Without
/// a `split` column every row is training data and the test split is empty.
pub fn load_audio_labels(
    csv_path: &Path,
    options: &AudioOptions,
) -> Result<AudioSplits, DataError> {
    options.clip_samples()?;
    let base = csv_path.parent().unwrap_or(Path::new(""));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_path(csv_path)
        .map_err(|error| csv_error(csv_path, error))?;
    let header = reader
        .headers()
        .map_err(|error| csv_error(csv_path, error))?
        .clone();
    let column = |name: &str| header.iter().position(|field| field == name);
    let (Some(file_column), Some(label_column)) = (column("file"), column("label")) else {
        return Err(DataError::BadRecord {
            path: csv_path.to_path_buf(),
            line: 1,
            expected: "a header with the columns file and label (and optionally split)".to_string(),
            found: format!("the columns {:?}", header.iter().collect::<Vec<_>>()),
        });
    };
    let split_column = column("split");

    struct Row {
        file: PathBuf,
        label: String,
        is_test: bool,
        line: usize,
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| csv_error(csv_path, error))?;
        let line = record
            .position()
            .map_or(0, |position| position.line() as usize);
        let bad = |expected: String, found: String| DataError::BadRecord {
            path: csv_path.to_path_buf(),
            line,
            expected,
            found,
        };
        let cell = |column: usize| record.get(column).unwrap_or("");
        let (file, label) = (cell(file_column), cell(label_column));
        if file.is_empty() {
            return Err(bad(
                "a path in the column file".into(),
                "an empty field".into(),
            ));
        }
        if label.is_empty() {
            return Err(bad(
                "a label in the column label".into(),
                "an empty field".into(),
            ));
        }
        let is_test = match split_column.map(cell) {
            None | Some("train") => false,
            Some("test") => true,
            Some(other) => return Err(bad("split train or test".into(), format!("{other:?}"))),
        };
        let file = base.join(file);
        if !file.is_file() {
            return Err(bad(
                format!(
                    "an existing WAV file (paths are relative to the CSV's folder {:?})",
                    base
                ),
                format!("{} does not exist", file.display()),
            ));
        }
        rows.push(Row {
            file,
            label: label.to_string(),
            is_test,
            line,
        });
    }
    if rows.is_empty() {
        return Err(DataError::NoAudio {
            path: csv_path.to_path_buf(),
            details: "a header but no rows; expected one row per clip".to_string(),
        });
    }

    let mut codes: BTreeMap<&str, u16> = rows.iter().map(|row| (row.label.as_str(), 0)).collect();
    for (index, (label, code)) in codes.iter_mut().enumerate() {
        *code = u16::try_from(index).map_err(|_| DataError::BadRecord {
            path: csv_path.to_path_buf(),
            line: rows
                .iter()
                .find(|row| row.label == *label)
                .map_or(0, |row| row.line),
            expected: format!("at most {} distinct labels", usize::from(u16::MAX) + 1),
            found: format!("label {label:?} as class number {}", index + 1),
        })?;
    }
    let class_names: Vec<String> = codes.keys().map(|label| label.to_string()).collect();
    let mut splits = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for row in &rows {
        let (files, labels) = &mut splits[usize::from(row.is_test)];
        files.push(row.file.clone());
        labels.push(codes[row.label.as_str()]);
    }
    let [(train_files, train_labels), (test_files, test_labels)] = splits;
    let name = base
        .file_name()
        .or_else(|| csv_path.file_stem())
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    Ok(AudioSplits {
        name,
        train: load_clips(
            train_files,
            Some(train_labels),
            class_names.clone(),
            options,
        )?,
        test: load_clips(test_files, Some(test_labels), class_names, options)?,
    })
}

/// Whether `path` is a CSV whose header names `file` and `label` and whose first row's file
/// ends in `.wav`.
pub(super) fn is_audio_labels_file(path: &Path) -> bool {
    if !has_extension(path, "csv") {
        return false;
    }
    let Ok(mut reader) = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
    else {
        return false;
    };
    let Ok(header) = reader.headers().cloned() else {
        return false;
    };
    let Some(file_column) = header.iter().position(|field| field == "file") else {
        return false;
    };
    if !header.iter().any(|field| field == "label") {
        return false;
    }
    reader.records().next().is_some_and(|record| {
        record.ok().is_some_and(|record| {
            record
                .get(file_column)
                .is_some_and(|file| has_extension(Path::new(file), WAV_EXTENSION))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::fixtures::*;

    /// `clips/{yes,no}_{0,1}.wav` at 8 Hz, 4 samples each, each a distinct constant.
    fn labeled_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in [
            ("yes_0", 1024),
            ("yes_1", 2048),
            ("no_0", 3072),
            ("no_1", 4096),
        ] {
            write_mono16(
                &dir.path().join(format!("clips/{name}.wav")),
                8,
                &[value; 4],
            );
        }
        dir
    }

    #[test]
    fn a_labels_csv_codes_sorted_labels_and_splits_rows_in_file_order() {
        let dir = labeled_folder();
        let csv = write_bytes(
            &dir.path().join("labels.csv"),
            b"file,label,split\n\
              clips/yes_0.wav,yes,train\n\
              clips/no_0.wav,no,test\n\
              clips/yes_1.wav,yes,test\n\
              clips/no_1.wav, no ,train\n",
        );
        let splits = load_audio_labels(&csv, &tiny_options()).unwrap();
        assert_eq!(
            splits.name,
            dir.path().file_name().unwrap().to_string_lossy()
        );
        for set in [&splits.train, &splits.test] {
            assert_eq!(set.class_names, ["no", "yes"]);
            assert_eq!(set.num_classes(), 2);
            assert_eq!(set.clip_samples, 4);
        }
        assert_eq!(splits.train.labels, Some(vec![1, 0]));
        assert_eq!(
            splits.train.files,
            [
                dir.path().join("clips/yes_0.wav"),
                dir.path().join("clips/no_1.wav")
            ]
        );
        assert_eq!(splits.train.clip(0), [1.0 / 32.0; 4]);
        assert_eq!(splits.train.clip(1), [1.0 / 8.0; 4]);
        assert_eq!(splits.test.labels, Some(vec![0, 1]));
        assert_eq!(splits.test.clip(0), [3.0 / 32.0; 4]);
        assert_eq!(splits.test.clip(1), [1.0 / 16.0; 4]);
    }

    #[test]
    fn a_labels_csv_without_a_split_column_is_all_training_data() {
        let dir = labeled_folder();
        let csv = write_bytes(
            &dir.path().join("all.csv"),
            b"label,file\nyes,clips/yes_1.wav\nno,clips/no_0.wav\n",
        );
        let splits = load_audio_labels(&csv, &tiny_options()).unwrap();
        assert_eq!(splits.train.len, 2);
        assert_eq!(splits.train.labels, Some(vec![1, 0]));
        assert_eq!(splits.test.len, 0);
        assert_eq!(splits.test.labels, Some(vec![]));
        assert_eq!(splits.test.class_names, ["no", "yes"]);
    }

    #[test]
    fn labels_csv_errors_name_the_file_and_line() {
        let dir = labeled_folder();
        let cases: [(&str, &[u8], &[&str]); 6] = [
            (
                "no_label.csv",
                b"file,class\nclips/yes_0.wav,yes\n",
                &["no_label.csv: line 1", "file and label", "\"class\""],
            ),
            (
                "missing.csv",
                b"file,label\nclips/yes_0.wav,yes\nclips/maybe.wav,yes\n",
                &["missing.csv: line 3", "maybe.wav does not exist"],
            ),
            (
                "split.csv",
                b"file,label,split\nclips/yes_0.wav,yes,valid\n",
                &["split.csv: line 2", "split train or test", "\"valid\""],
            ),
            (
                "empty_label.csv",
                b"file,label\nclips/yes_0.wav,\n",
                &["empty_label.csv: line 2", "a label"],
            ),
            (
                "ragged.csv",
                b"file,label\nclips/yes_0.wav,yes,extra\n",
                &["ragged.csv: line 2", "2 fields"],
            ),
            (
                "header_only.csv",
                b"file,label\n",
                &["header_only.csv: no audio found"],
            ),
        ];
        for (name, text, expected) in cases {
            let csv = write_bytes(&dir.path().join(name), text);
            let message = error_text(load_audio_labels(&csv, &tiny_options()));
            for part in expected {
                assert!(message.contains(part), "{name}: {message:?} lacks {part:?}");
            }
        }
        // A listed file that is not a WAV is named itself.
        write_bytes(&dir.path().join("clips/text.wav"), b"plain text");
        let csv = write_bytes(
            &dir.path().join("text.csv"),
            b"file,label\nclips/yes_0.wav,yes\nclips/text.wav,no\n",
        );
        let message = error_text(load_audio_labels(&csv, &tiny_options()));
        assert!(message.contains("text.wav: not a WAV file"), "{message}");
    }

    /// The shared spoken digits and yes/no words load with their documented split sizes.
    #[test]
    fn shared_spoken_words_load() {
        let Some(dir) = shared_audio() else { return };
        let splits = load_audio_labels(
            &dir.join("spoken-words/labels.csv"),
            &AudioOptions::default(),
        )
        .unwrap();
        assert_eq!(splits.name, "spoken-words");
        assert_eq!((splits.train.len, splits.test.len), (1494, 306));
        assert_eq!(splits.train.clip_samples, 16000);
        assert_eq!(splits.train.sample_rate, 16000);
        let mut expected = [
            "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "yes",
            "no",
        ];
        expected.sort_unstable();
        assert_eq!(splits.train.class_names, expected);
        assert_eq!(splits.train.num_classes(), 12);
        for set in [&splits.train, &splits.test] {
            assert!(set
                .samples
                .as_slice()
                .iter()
                .all(|sample| (-1.0..=1.0).contains(sample)));
            assert!((0..set.len).all(|index| set.clip(index).iter().any(|&s| s != 0.0)));
        }
    }
}
