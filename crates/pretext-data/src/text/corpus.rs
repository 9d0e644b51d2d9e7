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
        return Err(no_text(&path));
    }
    Ok(TextDocument { path, text })
}

/// The error of a document that is empty or only whitespace.
pub(crate) fn no_text(path: &Path) -> DataError {
    DataError::NoText {
        path: path.to_path_buf(),
        details: "the file is empty or only whitespace; expected a document".into(),
    }
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

/// Reads a text file a line at a time, as [`read_text_file`] would give its text: a leading
/// byte-order mark removed, invalid UTF-8 a [`DataError::InvalidUtf8`] naming the line and
/// the byte offset in the file. Memory holds one line, not the file.
pub struct LineReader<R = std::io::BufReader<std::fs::File>> {
    path: PathBuf,
    reader: R,
    buffer: Vec<u8>,
    /// 1-based number of the next line, and the file offset it starts at.
    line: usize,
    offset: usize,
}

impl LineReader {
    pub fn open(path: &Path) -> Result<LineReader, DataError> {
        let file = std::fs::File::open(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(LineReader::new(
            std::io::BufReader::with_capacity(1 << 16, file),
            path,
        ))
    }
}

impl<'a> LineReader<&'a [u8]> {
    /// The lines of a file's bytes held in memory; `path` names it in errors.
    pub fn from_bytes(bytes: &'a [u8], path: &Path) -> LineReader<&'a [u8]> {
        LineReader::new(bytes, path)
    }
}

impl<R: std::io::BufRead> LineReader<R> {
    fn new(reader: R, path: &Path) -> LineReader<R> {
        LineReader {
            path: path.to_path_buf(),
            reader,
            buffer: Vec::new(),
            line: 1,
            offset: 0,
        }
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next line with its `\n` (the last line may lack one), or None at the end.
    pub fn next_line(&mut self) -> Result<Option<&str>, DataError> {
        self.buffer.clear();
        let read = self
            .reader
            .read_until(b'\n', &mut self.buffer)
            .map_err(|source| DataError::Io {
                path: self.path.clone(),
                source,
            })?;
        if read == 0 {
            return Ok(None);
        }
        let skip = if self.offset == 0 && self.buffer.starts_with(BYTE_ORDER_MARK) {
            BYTE_ORDER_MARK.len()
        } else {
            0
        };
        let (line, offset) = (self.line, self.offset);
        self.line += 1;
        self.offset += read;
        match std::str::from_utf8(&self.buffer[skip..]) {
            Ok(text) => Ok(Some(text)),
            Err(error) => Err(DataError::InvalidUtf8 {
                path: self.path.clone(),
                line,
                byte_offset: offset + skip + error.valid_up_to(),
            }),
        }
    }
}

/// UTF-8's byte-order mark.
const BYTE_ORDER_MARK: &[u8] = "\u{feff}".as_bytes();

/// Size past which [`for_each_piece`] ends a piece at the next line break it may cut at.
pub const PIECE_BYTES: usize = 1 << 18;

/// Calls `visit` with the text of the document `path` in pieces of about `piece_bytes` or
/// more, so that memory holds one piece rather than the document.
///
/// A piece ends only at a line break right after a character that is not whitespace, and
/// only when the next line starts with a character that is not whitespace; after `\r\n` the
/// cut falls between the `\r` and the `\n`. Tokenizers that split words at whitespace (this
/// crate's WordPiece, byte-level BPE and character tokenizers) then encode the pieces one
/// after another into exactly the ids of the whole document (byte-level BPE's GPT-2 pattern
/// reads `\r\n` before a word as two tokens, so a piece must not end with both). A document
/// that is empty or only whitespace is [`DataError::NoText`].
pub fn for_each_piece(
    path: &Path,
    piece_bytes: usize,
    mut visit: impl FnMut(&str) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let mut reader = LineReader::open(path)?;
    let mut piece = String::new();
    let mut any_text = false;
    while let Some(line) = reader.next_line()? {
        let starts_a_word = line.chars().next().is_some_and(|c| !c.is_whitespace());
        if piece.len() >= piece_bytes && starts_a_word && ends_a_word_and_line(&piece) {
            match piece.strip_suffix("\r\n") {
                Some(head) => {
                    visit(&format!("{head}\r"))?;
                    piece.clear();
                    piece.push('\n');
                }
                None => {
                    visit(&piece)?;
                    piece.clear();
                }
            }
        }
        any_text |= starts_a_word || !line.trim().is_empty();
        piece.push_str(line);
    }
    if !any_text {
        return Err(no_text(path));
    }
    visit(&piece)
}

/// Whether `text` ends with a line break (`\n` or `\r\n`) right after a character that is not
/// whitespace.
fn ends_a_word_and_line(text: &str) -> bool {
    let Some(rest) = text.strip_suffix('\n') else {
        return false;
    };
    let rest = rest.strip_suffix('\r').unwrap_or(rest);
    rest.chars().next_back().is_some_and(|c| !c.is_whitespace())
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

    /// Pieces are whole lines cut only between a word's line end and a word's line start;
    /// together they are the document, BOM removed; bad UTF-8 names its line and byte.
    #[test]
    fn pieces_cut_at_line_ends_between_words_and_rejoin_to_the_document() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("doc.txt");
        let text = "one two\n  indented\nthree\n\nfour\r\nfive\nsix";
        std::fs::write(&file, format!("\u{feff}{text}")).unwrap();
        let mut pieces = Vec::new();
        for_each_piece(&file, 1, |piece| {
            pieces.push(piece.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            pieces,
            [
                "one two\n  indented\n",
                "three\n\nfour\r",
                "\nfive\n",
                "six"
            ]
        );
        assert_eq!(pieces.concat(), text);
        let mut whole = Vec::new();
        for_each_piece(&file, PIECE_BYTES, |piece| {
            whole.push(piece.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(whole, [text]);

        std::fs::write(&file, b"ok\nfine\n\xffbad\n").unwrap();
        match for_each_piece(&file, 1, |_| Ok(())) {
            Err(DataError::InvalidUtf8 {
                line, byte_offset, ..
            }) => assert_eq!((line, byte_offset), (3, 8)),
            other => panic!("expected InvalidUtf8, got {other:?}"),
        }
        std::fs::write(&file, " \n\t\n").unwrap();
        let error = for_each_piece(&file, 1, |_| Ok(())).unwrap_err();
        assert!(matches!(error, DataError::NoText { .. }), "{error:?}");
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
