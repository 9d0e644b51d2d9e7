//! Unlabeled text corpora: one plain-text file, or a folder of `.txt` files (one document
//! per file), read as UTF-8 with errors that name the file and line.

use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::source::files_with_extension;

/// File extension read as a text document (case-insensitive); other files are skipped.
pub const TEXT_EXTENSION: &str = "txt";

/// One document of a corpus: the whole text of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextDocument {
    /// The file it was read from.
    pub path: PathBuf,
    /// Its text, as in the file (line endings kept, a leading UTF-8 byte-order mark removed).
    pub text: String,
}

impl TextDocument {
    /// The document's lines, without their line endings (`\n` or `\r\n`).
    pub fn lines(&self) -> std::str::Lines<'_> {
        self.text.lines()
    }
}

/// An unlabeled corpus: documents in path order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextCorpus {
    /// The documents, one per file, sorted by path.
    pub documents: Vec<TextDocument>,
}

impl TextCorpus {
    /// The number of documents.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether the corpus has no documents (never true for a loaded corpus).
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// The total size of the texts in bytes.
    pub fn total_bytes(&self) -> usize {
        self.documents
            .iter()
            .map(|document| document.text.len())
            .sum()
    }

    /// Every line of every document in order, without line endings.
    pub fn lines(&self) -> impl Iterator<Item = &str> + '_ {
        self.documents.iter().flat_map(TextDocument::lines)
    }

    /// The paths of the documents, in order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.documents
            .iter()
            .map(|document| document.path.clone())
            .collect()
    }
}

/// Loads an unlabeled corpus from a plain-text file (any extension) or a folder of `.txt`
/// files, searched recursively and sorted by path so the order never depends on the file
/// system.
///
/// Every document must be UTF-8 ([`DataError::InvalidUtf8`] names the line) and hold some
/// non-whitespace text ([`DataError::NoText`] names the empty file); a folder without any
/// `.txt` file is [`DataError::NoText`] naming the folder.
pub fn load_text_corpus(path: &Path) -> Result<TextCorpus, DataError> {
    let documents = list_text_files(path)?
        .into_iter()
        .map(|file| {
            let text = read_text_file(&file)?;
            document(file, text)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TextCorpus { documents })
}

/// One document of a corpus held in memory, checked as [`load_text_corpus`] checks each
/// file; `name` stands for the file in errors and becomes the document's path.
pub fn read_text_document_bytes(bytes: &[u8], name: &str) -> Result<TextDocument, DataError> {
    let path = PathBuf::from(name);
    let text = text_from_bytes(bytes.to_vec(), &path)?;
    document(path, text)
}

/// A document of `text`, which must hold some non-whitespace text.
fn document(path: PathBuf, text: String) -> Result<TextDocument, DataError> {
    if text.trim().is_empty() {
        return Err(DataError::NoText {
            path,
            details: "the file is empty or only whitespace; expected a document".into(),
        });
    }
    Ok(TextDocument { path, text })
}

/// The files [`load_text_corpus`] reads: `path` itself if it is a file, else the `.txt`
/// files under the folder (recursively, hidden entries skipped), sorted by path.
pub fn list_text_files(path: &Path) -> Result<Vec<PathBuf>, DataError> {
    let metadata = std::fs::metadata(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let files = files_with_extension(path, TEXT_EXTENSION)?;
    if files.is_empty() {
        return Err(DataError::NoText {
            path: path.to_path_buf(),
            details: format!("expected .{TEXT_EXTENSION} files in the folder or its subfolders"),
        });
    }
    Ok(files)
}

/// Reads a whole file as UTF-8, removing a leading byte-order mark.
///
/// Invalid UTF-8 is [`DataError::InvalidUtf8`] with the 1-based line and the byte offset of
/// the first invalid byte.
pub fn read_text_file(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text_from_bytes(bytes, path)
}

/// [`read_text_file`] on bytes already read from `path`.
pub(crate) fn text_from_bytes(bytes: Vec<u8>, path: &Path) -> Result<String, DataError> {
    let text = String::from_utf8(bytes).map_err(|error| {
        let byte_offset = error.utf8_error().valid_up_to();
        let before = &error.as_bytes()[..byte_offset];
        DataError::InvalidUtf8 {
            path: path.to_path_buf(),
            line: before.iter().filter(|&&byte| byte == b'\n').count() + 1,
            byte_offset,
        }
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_is_read_recursively_in_path_order_skipping_other_and_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/nested")).unwrap();
        std::fs::write(dir.path().join("b/nested/z.txt"), "third\n").unwrap();
        std::fs::write(dir.path().join("b/a.TXT"), "second\nline two\n").unwrap();
        std::fs::write(dir.path().join("a.txt"), "first").unwrap();
        std::fs::write(dir.path().join("notes.md"), "skipped").unwrap();
        std::fs::write(dir.path().join(".hidden.txt"), "skipped").unwrap();

        let corpus = load_text_corpus(dir.path()).unwrap();
        let texts: Vec<&str> = corpus.documents.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(texts, ["first", "second\nline two\n", "third\n"]);
        assert_eq!(
            corpus.lines().collect::<Vec<_>>(),
            ["first", "second", "line two", "third"]
        );
        assert_eq!(corpus.total_bytes(), 5 + 16 + 6);
    }

    #[test]
    fn byte_order_mark_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bom.txt");
        std::fs::write(&file, "\u{feff}text").unwrap();
        assert_eq!(read_text_file(&file).unwrap(), "text");
    }

    #[test]
    fn invalid_utf8_names_line_and_byte() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.txt");
        std::fs::write(&file, b"ok\n\xffbad\n").unwrap();
        match read_text_file(&file) {
            Err(DataError::InvalidUtf8 {
                line, byte_offset, ..
            }) => assert_eq!((line, byte_offset), (2, 3)),
            other => panic!("expected InvalidUtf8, got {other:?}"),
        }
    }

    #[test]
    fn folder_without_text_files_is_no_text_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.csv"), "a,b").unwrap();
        let error = load_text_corpus(dir.path()).unwrap_err();
        assert!(matches!(error, DataError::NoText { .. }), "{error:?}");
        assert!(error
            .to_string()
            .contains(&dir.path().display().to_string()));
    }

    #[test]
    fn missing_path_is_io_error() {
        let error = load_text_corpus(Path::new("/nonexistent/corpus")).unwrap_err();
        assert!(matches!(error, DataError::Io { .. }), "{error:?}");
    }
}
