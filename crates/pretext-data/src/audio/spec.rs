//! An audio `--data` spec told from other data, and loaded as a training and a held-out
//! split.

use std::path::Path;

use super::folder::{load_audio_folder, WAV_EXTENSION};
use super::labels::{is_audio_labels_file, load_audio_labels, AUDIO_LABELS_FILE};
use super::options::AudioOptions;
use super::set::AudioSplits;
use crate::error::DataError;
use crate::source::files_with_extension;

/// Whether `spec` names audio: a `.csv` file whose header has the columns `file` and `label`
/// and whose first row's file is a `.wav`, a folder holding [`AUDIO_LABELS_FILE`] such as
/// that, or a folder with `.wav` files under it (and no labels file of another kind).
pub fn is_audio_path(spec: &str) -> bool {
    let path = Path::new(spec);
    if path.is_file() {
        return is_audio_labels_file(path);
    }
    if !path.is_dir() {
        return false;
    }
    let labels = path.join(AUDIO_LABELS_FILE);
    if labels.is_file() {
        return is_audio_labels_file(&labels);
    }
    files_with_extension(path, WAV_EXTENSION).is_ok_and(|files| !files.is_empty())
}

/// Loads the audio dataset `spec` (see [`is_audio_path`]): a labels file (or a folder's
/// `labels.csv`) with its `split` column, or a folder of unlabeled clips. When the data
/// brings no test split, `holdout_fraction` of it is held out with `split_seed`
/// (stratified when labeled).
pub fn load_audio(
    spec: &str,
    options: &AudioOptions,
    holdout_fraction: f64,
    split_seed: u64,
) -> Result<AudioSplits, DataError> {
    let path = Path::new(spec);
    let labels = if path.is_dir() {
        path.join(AUDIO_LABELS_FILE)
    } else {
        path.to_path_buf()
    };
    let splits = if labels.is_file() && is_audio_labels_file(&labels) {
        load_audio_labels(&labels, options)?
    } else if path.is_dir() {
        let set = load_audio_folder(path, options)?;
        let name = path
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        AudioSplits {
            name,
            test: set.subset(&[]),
            train: set,
        }
    } else {
        return Err(DataError::NoAudio {
            path: path.to_path_buf(),
            details: "expected a folder of .wav files or a CSV of file,label[,split] rows".into(),
        });
    };
    if !splits.test.is_empty() || holdout_fraction == 0.0 {
        return Ok(splits);
    }
    let (train, test) = match &splits.train.labels {
        Some(labels) => crate::split::stratified_split(labels, holdout_fraction, split_seed),
        None => crate::split::random_split(splits.train.len, holdout_fraction, split_seed),
    };
    Ok(AudioSplits {
        name: splits.name,
        test: splits.train.subset(&test),
        train: splits.train.subset(&train),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::fixtures::*;

    #[test]
    fn audio_specs_are_told_from_tables_and_images() {
        let dir = tiny_folder();
        assert!(is_audio_path(&dir.path().to_string_lossy()));
        let labels = dir.path().join("labels.csv");
        write_bytes(&labels, b"file,label\nb.wav,yes\na/c.wav,no\nd.WAV,yes\n");
        assert!(is_audio_path(&labels.to_string_lossy()));
        assert!(is_audio_path(&dir.path().to_string_lossy()));
        let table = dir.path().join("table.csv");
        write_bytes(&table, b"height,label\n1.5,yes\n");
        assert!(!is_audio_path(&table.to_string_lossy()));
        let files = dir.path().join("files.csv");
        write_bytes(&files, b"file,label\nreport.pdf,yes\n");
        assert!(!is_audio_path(&files.to_string_lossy()));
        let images = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(images.path().join("cat")).unwrap();
        write_bytes(&images.path().join("cat/1.png"), b"png");
        assert!(!is_audio_path(&images.path().to_string_lossy()));
        assert!(!is_audio_path("no/such/folder"));

        // Without a split column, a stratified share is held out; the folder reads its
        // labels.csv.
        let splits = load_audio(&dir.path().to_string_lossy(), &tiny_options(), 0.34, 0).unwrap();
        assert_eq!((splits.train.len, splits.test.len), (2, 1));
        assert_eq!(splits.train.class_names, ["no", "yes"]);
        // A folder without labels: unlabeled, with a random share held out.
        std::fs::remove_file(&labels).unwrap();
        let splits = load_audio(&dir.path().to_string_lossy(), &tiny_options(), 0.34, 0).unwrap();
        assert_eq!((splits.train.len, splits.test.len), (2, 1));
        assert_eq!(splits.train.labels, None);
        let splits = load_audio(&dir.path().to_string_lossy(), &tiny_options(), 0.0, 0).unwrap();
        assert_eq!((splits.train.len, splits.test.len), (3, 0));
    }
}
