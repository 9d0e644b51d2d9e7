//! Labeled text: one example per line, as TSV (`label<TAB>text`) or JSONL
//! (`{"text": "...", "label": "..."}`), with class codes shared by a train/test pair.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::DataError;
use crate::text::corpus::LineReader;

/// The header line a TSV file may start with; it is skipped.
pub const TSV_HEADER: &str = "label\ttext";

/// Labeled texts: `texts[i]` has class `labels[i]`, named `class_names[labels[i]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledText {
    /// One text per example, in file order.
    pub texts: Vec<String>,
    /// Class code of each example: an index into `class_names`.
    pub labels: Vec<u16>,
    /// Class names. For a file read alone: its distinct labels sorted alphabetically, or
    /// numerically when every label is a JSON integer; for a split: the training file's.
    pub class_names: Vec<String>,
}

impl LabeledText {
    /// The number of examples.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there are no examples (never true for a loaded file).
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }
}

/// A train/test pair of labeled texts with one class list (the training file's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledTextSplits {
    /// The training examples.
    pub train: LabeledText,
    /// The test examples, coded with the training classes.
    pub test: LabeledText,
}

/// Loads a labeled text file; the extension picks the format:
///
/// * `.tsv`: `label<TAB>text` per line; a first line equal to [`TSV_HEADER`] is skipped;
///   the text is everything after the first tab.
/// * `.jsonl`: one JSON object per line with a string field `"text"` and a field `"label"`
///   that is a string or an integer (used as its decimal name).
///
/// Blank lines are skipped. Labels are trimmed of surrounding whitespace; a missing tab or
/// field, an empty label or text ([`DataError::BadRecord`]) and a line that is not JSON
/// ([`DataError::BadJson`]) name the file and line. A file with no examples is
/// [`DataError::NoText`]; another extension is [`DataError::UnknownLayout`].
pub fn load_labeled_text(path: &Path) -> Result<LabeledText, DataError> {
    let records = read_records(path)?;
    let class_names = class_names_of(path, &records)?;
    code_records(records, class_names, path, path)
}

/// [`load_labeled_text`] on a file held in memory; `name` stands for the file in errors and
/// its extension (`.tsv` or `.jsonl`) picks the format.
pub fn load_labeled_text_bytes(bytes: &[u8], name: &str) -> Result<LabeledText, DataError> {
    let path = Path::new(name);
    let mut records = Vec::new();
    for_each_record_of(LineReader::from_bytes(bytes, path), |record| {
        records.push(record);
        Ok(())
    })?;
    let class_names = class_names_of(path, &records)?;
    code_records(records, class_names, path, path)
}

/// Loads a training and a test file ([`load_labeled_text`] formats, which may differ) so
/// that both use the training file's classes. A test label that the training file lacks is
/// [`DataError::UnknownLabel`] naming the test file and line.
pub fn load_labeled_text_splits(train: &Path, test: &Path) -> Result<LabeledTextSplits, DataError> {
    let train_records = read_records(train)?;
    let class_names = class_names_of(train, &train_records)?;
    let test_records = read_records(test)?;
    Ok(LabeledTextSplits {
        test: code_records(test_records, class_names.clone(), train, test)?,
        train: code_records(train_records, class_names, train, train)?,
    })
}

/// One example as read, before its label is coded.
struct Record {
    line: usize,
    label: String,
    /// Whether the label was a JSON integer (then classes sort numerically).
    label_is_integer: bool,
    text: String,
}

/// How one line of a labeled file is read, by the file's extension.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LineFormat {
    Tsv,
    Jsonl,
}

fn line_format(path: &Path) -> Result<LineFormat, DataError> {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("tsv") => Ok(LineFormat::Tsv),
        Some("jsonl") => Ok(LineFormat::Jsonl),
        other => Err(DataError::UnknownLayout {
            path: path.to_path_buf(),
            details: format!(
                "expected a .tsv file (label<TAB>text per line) or a .jsonl file \
                 ({{\"text\": ..., \"label\": ...}} per line), found {}",
                match other {
                    Some(extension) => format!("extension .{extension}"),
                    None => "no extension".into(),
                }
            ),
        }),
    }
}

fn read_records(path: &Path) -> Result<Vec<Record>, DataError> {
    let mut records = Vec::new();
    for_each_record(path, |record| {
        records.push(record);
        Ok(())
    })?;
    Ok(records)
}

/// Calls `visit` with each example of the labeled file `path` in file order, read a line at
/// a time (memory holds one line): the examples and errors of [`load_labeled_text`].
fn for_each_record(
    path: &Path,
    visit: impl FnMut(Record) -> Result<(), DataError>,
) -> Result<(), DataError> {
    line_format(path)?;
    for_each_record_of(LineReader::open(path)?, visit)
}

/// [`for_each_record`] on the lines of `reader`.
fn for_each_record_of<R: std::io::BufRead>(
    mut reader: LineReader<R>,
    mut visit: impl FnMut(Record) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let path = reader.path().to_path_buf();
    let path = path.as_path();
    let format = line_format(path)?;
    let (mut index, mut any) = (0, false);
    while let Some(line) = reader.next_line()? {
        // As `str::lines` ends lines: `\n`, or `\r\n`.
        let line = match line.strip_suffix('\n') {
            Some(line) => line.strip_suffix('\r').unwrap_or(line),
            None => line,
        };
        if let Some(record) = parse_line_at(path, format, index, line)? {
            any = true;
            visit(record)?;
        }
        index += 1;
    }
    if !any {
        return Err(no_examples(path));
    }
    Ok(())
}

/// The example on line `index` (0-based) of a file, or None for a blank line or a TSV
/// header.
fn parse_line_at(
    path: &Path,
    format: LineFormat,
    index: usize,
    line: &str,
) -> Result<Option<Record>, DataError> {
    let is_header = index == 0 && format == LineFormat::Tsv && line == TSV_HEADER;
    if line.trim().is_empty() || is_header {
        return Ok(None);
    }
    match format {
        LineFormat::Tsv => parse_tsv_line(path, index + 1, line),
        LineFormat::Jsonl => parse_jsonl_line(path, index + 1, line),
    }
    .map(Some)
}

fn no_examples(path: &Path) -> DataError {
    DataError::NoText {
        path: path.to_path_buf(),
        details: "expected at least one labeled example".into(),
    }
}

/// The class code of every example of the labeled file `path` (file order) and the class
/// names, read a line at a time without keeping the texts: the file's own classes, ordered as
/// [`load_labeled_text`] orders them, or — given `(class_names, train)` — those of the
/// training file `train`, a label it lacks being [`DataError::UnknownLabel`].
pub fn read_labels(
    path: &Path,
    classes: Option<(&[String], &Path)>,
) -> Result<(Vec<u16>, Vec<String>), DataError> {
    if let Some((class_names, train)) = classes {
        let sorted = sorted_codes(class_names);
        let mut codes = Vec::new();
        for_each_record(path, |record| {
            codes.push(code_of(&sorted, record, class_names, train, path)?);
            Ok(())
        })?;
        return Ok((codes, class_names.to_vec()));
    }
    // Labels in first-seen order, then in class order.
    let mut seen: std::collections::HashMap<String, u16> = std::collections::HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut all_integers = true;
    let mut ids = Vec::new();
    for_each_record(path, |record| {
        all_integers &= record.label_is_integer;
        let next = names.len();
        let id = match seen.get(&record.label) {
            Some(&id) => id,
            None if next == MAX_CLASSES => {
                return Err(DataError::ShapeMismatch {
                    path: path.to_path_buf(),
                    expected: format!("at most {MAX_CLASSES} classes"),
                    found: format!("more distinct labels (line {})", record.line),
                })
            }
            None => {
                seen.insert(record.label.clone(), next as u16);
                names.push(record.label);
                next as u16
            }
        };
        ids.push(id);
        Ok(())
    })?;
    let class_names = class_order(names.iter().map(String::as_str), all_integers);
    let sorted = sorted_codes(&class_names);
    let code_of_id: Vec<u16> = names
        .iter()
        .map(|name| {
            let position = sorted
                .binary_search_by(|(known, _)| (*known).cmp(name.as_str()))
                .expect("every label is a class");
            sorted[position].1
        })
        .collect();
    for id in &mut ids {
        *id = code_of_id[usize::from(*id)];
    }
    Ok((ids, class_names))
}

/// Calls `visit` with the text of each example of the labeled file `path`, in file order,
/// read a line at a time.
pub fn for_each_text(
    path: &Path,
    mut visit: impl FnMut(&str) -> Result<(), DataError>,
) -> Result<(), DataError> {
    for_each_record(path, |record| visit(&record.text))
}

/// The most classes a labeled file may have (class codes are 16-bit).
const MAX_CLASSES: usize = 1 << 16;

fn parse_tsv_line(path: &Path, line: usize, content: &str) -> Result<Record, DataError> {
    let bad = |expected: &str, found: String| DataError::BadRecord {
        path: path.to_path_buf(),
        line,
        expected: expected.into(),
        found,
    };
    let (label, text) = content
        .split_once('\t')
        .ok_or_else(|| bad("label<TAB>text", format!("no tab in {}", preview(content))))?;
    let label = label.trim();
    if label.is_empty() {
        return Err(bad("a label before the tab", "an empty label".into()));
    }
    if text.trim().is_empty() {
        return Err(bad("text after the tab", "no text".into()));
    }
    Ok(Record {
        line,
        label: label.to_owned(),
        label_is_integer: false,
        text: text.to_owned(),
    })
}

fn parse_jsonl_line(path: &Path, line: usize, content: &str) -> Result<Record, DataError> {
    let bad = |expected: &str, found: String| DataError::BadRecord {
        path: path.to_path_buf(),
        line,
        expected: expected.into(),
        found,
    };
    let value: Value = serde_json::from_str(content).map_err(|source| DataError::BadJson {
        path: path.to_path_buf(),
        line,
        source,
    })?;
    let Value::Object(object) = value else {
        return Err(bad(
            "a JSON object with fields \"text\" and \"label\"",
            describe(&value),
        ));
    };
    let text = match object.get("text") {
        Some(Value::String(text)) if !text.trim().is_empty() => text.clone(),
        Some(Value::String(_)) => return Err(bad("a non-empty \"text\"", "no text".into())),
        Some(other) => return Err(bad("a string \"text\"", describe(other))),
        None => return Err(bad("a string field \"text\"", "no \"text\" field".into())),
    };
    let (label, label_is_integer) = match object.get("label") {
        Some(Value::String(label)) if !label.trim().is_empty() => (label.trim().to_owned(), false),
        Some(Value::String(_)) => {
            return Err(bad("a non-empty \"label\"", "an empty label".into()))
        }
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => {
            (number.to_string(), true)
        }
        Some(other) => return Err(bad("a string or integer \"label\"", describe(other))),
        None => return Err(bad("a field \"label\"", "no \"label\" field".into())),
    };
    Ok(Record {
        line,
        label,
        label_is_integer,
        text,
    })
}

/// The distinct labels in class order: numeric if every label is an integer, else
/// alphabetical.
fn class_names_of(path: &Path, records: &[Record]) -> Result<Vec<String>, DataError> {
    let all_integers = records.iter().all(|record| record.label_is_integer);
    let class_names = class_order(
        records.iter().map(|record| record.label.as_str()),
        all_integers,
    );
    if class_names.len() > MAX_CLASSES {
        return Err(DataError::ShapeMismatch {
            path: path.to_path_buf(),
            expected: format!("at most {MAX_CLASSES} classes"),
            found: format!("{} distinct labels", class_names.len()),
        });
    }
    Ok(class_names)
}

/// The distinct `labels` in class order: numeric when `all_integers`, else alphabetical.
fn class_order<'a>(labels: impl Iterator<Item = &'a str>, all_integers: bool) -> Vec<String> {
    let distinct: BTreeSet<&str> = labels.collect();
    let mut class_names: Vec<String> = distinct.into_iter().map(str::to_owned).collect();
    if all_integers {
        class_names.sort_by_key(|name| name.parse::<i128>().unwrap_or_default());
    }
    class_names
}

/// `(name, code)` of every class, sorted by name for binary search.
fn sorted_codes(class_names: &[String]) -> Vec<(&str, u16)> {
    let mut sorted: Vec<(&str, u16)> = class_names
        .iter()
        .enumerate()
        .map(|(code, name)| (name.as_str(), code as u16))
        .collect();
    sorted.sort_unstable();
    sorted
}

/// The code of `record`'s label among `sorted` (from `class_names`, read from
/// `classes_path`); a label not among them is [`DataError::UnknownLabel`] naming `path`.
fn code_of(
    sorted: &[(&str, u16)],
    record: Record,
    class_names: &[String],
    classes_path: &Path,
    path: &Path,
) -> Result<u16, DataError> {
    match sorted.binary_search_by(|(name, _)| (*name).cmp(record.label.as_str())) {
        Ok(position) => Ok(sorted[position].1),
        Err(_) => Err(DataError::UnknownLabel {
            path: path.to_path_buf(),
            line: record.line,
            label: record.label,
            train: PathBuf::from(classes_path),
            known: class_names.join(", "),
        }),
    }
}

/// Codes each record's label as its index in `class_names` (read from `classes_path`).
fn code_records(
    records: Vec<Record>,
    class_names: Vec<String>,
    classes_path: &Path,
    path: &Path,
) -> Result<LabeledText, DataError> {
    let sorted = sorted_codes(&class_names);
    let mut texts = Vec::with_capacity(records.len());
    let mut labels = Vec::with_capacity(records.len());
    for mut record in records {
        texts.push(std::mem::take(&mut record.text));
        labels.push(code_of(&sorted, record, &class_names, classes_path, path)?);
    }
    Ok(LabeledText {
        texts,
        labels,
        class_names,
    })
}

/// A short quoted excerpt of a line for error messages.
fn preview(text: &str) -> String {
    format!("{:?}", excerpt(text))
}

/// The first 60 characters of `text`, with `…` when cut.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    let mut excerpt: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        excerpt.push('…');
    }
    excerpt
}

/// What a JSON value is, for error messages: its kind and a short excerpt.
fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("{kind} {}", excerpt(&value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    /// The streamed labels are the whole-file reader's, in its class order; given the
    /// training file's classes, an unknown label names the test file and line.
    #[test]
    fn streamed_labels_and_texts_are_the_whole_file_readers() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            (
                "a.tsv",
                "label\ttext\nzebra\tstripes\n\napple\tred\r\nzebra\tblack",
            ),
            (
                "b.jsonl",
                "{\"text\": \"x\\ny\", \"label\": 10}\n{\"text\": \"z\", \"label\": 9}\n",
            ),
        ] {
            let file = write(dir.path(), name, content);
            let whole = load_labeled_text(&file).unwrap();
            let (codes, class_names) = read_labels(&file, None).unwrap();
            assert_eq!((&codes, &class_names), (&whole.labels, &whole.class_names));
            let mut texts = Vec::new();
            for_each_text(&file, |text| {
                texts.push(text.to_owned());
                Ok(())
            })
            .unwrap();
            assert_eq!(texts, whole.texts);
        }
        let train = dir.path().join("a.tsv");
        let classes = ["apple".to_string(), "zebra".to_string()];
        let test = write(dir.path(), "t.tsv", "zebra\tz\nmango\tm\n");
        let error = read_labels(&test, Some((&classes, &train))).unwrap_err();
        assert!(
            matches!(&error, DataError::UnknownLabel { line: 2, label, .. } if label == "mango"),
            "{error:?}"
        );
    }

    #[test]
    fn tsv_with_header_gives_alphabetical_classes() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "a.tsv",
            "label\ttext\nzebra\tstripes\tand a tab\n\napple\tred\nzebra\tblack\n",
        );
        let data = load_labeled_text(&file).unwrap();
        assert_eq!(data.class_names, ["apple", "zebra"]);
        assert_eq!(data.labels, [1, 0, 1]);
        assert_eq!(data.texts, ["stripes\tand a tab", "red", "black"]);
    }

    #[test]
    fn tsv_without_header_keeps_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.tsv", "b\tone\r\na\ttwo\r\n");
        let data = load_labeled_text(&file).unwrap();
        assert_eq!(data.texts, ["one", "two"]);
        assert_eq!(data.labels, [1, 0]);
    }

    #[test]
    fn jsonl_integer_labels_sort_numerically() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "a.jsonl",
            "{\"text\": \"x\", \"label\": 10}\n{\"label\": 2, \"text\": \"y\", \"id\": 7}\n",
        );
        let data = load_labeled_text(&file).unwrap();
        assert_eq!(data.class_names, ["2", "10"]);
        assert_eq!(data.labels, [1, 0]);
    }

    #[test]
    fn jsonl_wrong_field_types_name_line_and_what_was_found() {
        let dir = tempfile::tempdir().unwrap();
        for (content, found) in [
            ("{\"text\": 3, \"label\": \"a\"}", "found a number 3"),
            ("{\"text\": \"t\", \"label\": 1.5}", "found a number 1.5"),
            ("{\"text\": \"t\"}", "no \"label\" field"),
            ("[1,2]", "found an array [1,2]"),
        ] {
            let file = write(
                dir.path(),
                "a.jsonl",
                &format!("{{\"text\": \"ok\", \"label\": \"a\"}}\n{content}\n"),
            );
            let error = load_labeled_text(&file).unwrap_err();
            match &error {
                DataError::BadRecord { line: 2, .. } => {}
                other => panic!("expected BadRecord on line 2, got {other:?}"),
            }
            assert!(error.to_string().contains(found), "{error}");
        }
    }

    #[test]
    fn other_extension_is_unknown_layout() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.csv", "label,text\n");
        let error = load_labeled_text(&file).unwrap_err();
        assert!(
            matches!(error, DataError::UnknownLayout { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(".tsv"), "{error}");
    }

    #[test]
    fn header_only_file_is_no_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.tsv", "label\ttext\n");
        let error = load_labeled_text(&file).unwrap_err();
        assert!(matches!(error, DataError::NoText { .. }), "{error:?}");
    }

    #[test]
    fn empty_label_or_text_is_bad_record() {
        let dir = tempfile::tempdir().unwrap();
        for content in ["a\tok\n\tno label\n", "a\tok\nb\t  \n"] {
            let file = write(dir.path(), "a.tsv", content);
            let error = load_labeled_text(&file).unwrap_err();
            assert!(
                matches!(error, DataError::BadRecord { line: 2, .. }),
                "{error:?}"
            );
        }
    }
}
