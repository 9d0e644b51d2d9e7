//! Texts to embed, in file order, each with the id a vector database keys it by:
//!
//! * `.txt`: one text per line; the id is the 1-based line number. Blank lines are skipped
//!   (their numbers are simply absent), so ids still point into the file.
//! * `.tsv`: when the first line names a `text` column (and maybe an `id` column), those
//!   columns (a last `text` column runs to the end of the line); otherwise pretext's
//!   labeled layout `label<TAB>text` (the text is everything after the first tab) or, on a
//!   line without a tab, the whole line. Ids are the `id` column or the line number.
//! * `.jsonl`: one object per line with a string `"text"`; its `"id"` (string or integer)
//!   when present, else the line number.
//!
//! Lines are read one at a time (a leading byte-order mark is dropped, invalid UTF-8 names
//! the line); a line that lacks its text names the file and line.

use std::path::Path;

use serde_json::Value;

use crate::error::DataError;
use crate::text::corpus::LineReader;

/// One text and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextToEmbed {
    /// The `id` column or field, or the 1-based line number.
    pub id: String,
    pub text: String,
}

/// The texts of `path` in file order (see the module header for the formats).
pub fn read_texts_to_embed(path: &Path) -> Result<Vec<TextToEmbed>, DataError> {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    let format = match extension.as_deref() {
        Some("txt") => Format::Lines,
        Some("tsv") => Format::Tsv { columns: None },
        Some("jsonl") => Format::Jsonl,
        _ => {
            return Err(DataError::UnknownLayout {
                path: path.to_path_buf(),
                details: "expected texts in a .txt (one per line), .tsv or .jsonl file".into(),
            })
        }
    };
    let mut reader = LineReader::open(path)?;
    let mut state = format;
    let mut texts = Vec::new();
    let mut number = 0usize;
    while let Some(line) = reader.next_line()? {
        number += 1;
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(record) = state.record(path, number, line)? {
            texts.push(record);
        }
    }
    if texts.is_empty() {
        return Err(DataError::NoText {
            path: path.to_path_buf(),
            details: "no text to embed (the file is empty or blank)".into(),
        });
    }
    Ok(texts)
}

/// Where a TSV's text and id are.
#[derive(Debug, Clone, Copy)]
struct TsvColumns {
    text: usize,
    /// Whether the text is the header's last column (then it runs to the end of the line).
    last: bool,
    id: Option<usize>,
}

enum Format {
    Lines,
    /// `columns` is known once a header naming `text` has been read.
    Tsv {
        columns: Option<TsvColumns>,
    },
    Jsonl,
}

impl Format {
    fn record(
        &mut self,
        path: &Path,
        number: usize,
        line: &str,
    ) -> Result<Option<TextToEmbed>, DataError> {
        let bad = |expected: &str, found: String| DataError::BadRecord {
            path: path.to_path_buf(),
            line: number,
            expected: expected.into(),
            found,
        };
        if line.trim().is_empty() {
            return Ok(None);
        }
        let line_id = number.to_string();
        match self {
            Format::Lines => Ok(Some(TextToEmbed {
                id: line_id,
                text: line.to_owned(),
            })),
            Format::Tsv { columns } => {
                let fields: Vec<&str> = line.split('\t').collect();
                if number == 1 {
                    if let Some(text) = fields.iter().position(|field| field.trim() == "text") {
                        let id = fields.iter().position(|field| field.trim() == "id");
                        *columns = Some(TsvColumns {
                            text,
                            last: text + 1 == fields.len(),
                            id,
                        });
                        return Ok(None);
                    }
                }
                let (text, id) = match columns {
                    Some(columns) => {
                        if fields.len() <= columns.text {
                            return Err(bad(
                                &format!("a text in column {}", columns.text + 1),
                                format!("{} columns", fields.len()),
                            ));
                        }
                        // The last column's text may itself hold tabs.
                        let text = if columns.last {
                            fields[columns.text..].join("\t")
                        } else {
                            fields[columns.text].to_owned()
                        };
                        let id = match columns.id {
                            Some(column) => fields
                                .get(column)
                                .map(|id| id.trim().to_owned())
                                .ok_or_else(|| {
                                    bad(
                                        &format!("an id in column {}", column + 1),
                                        format!("{} columns", fields.len()),
                                    )
                                })?,
                            None => line_id,
                        };
                        (text, id)
                    }
                    None => (
                        line.split_once('\t')
                            .map_or(line, |(_, text)| text)
                            .to_owned(),
                        line_id,
                    ),
                };
                Ok(Some(TextToEmbed { id, text }))
            }
            Format::Jsonl => {
                let value: Value =
                    serde_json::from_str(line).map_err(|source| DataError::BadJson {
                        path: path.to_path_buf(),
                        line: number,
                        source,
                    })?;
                let text = value
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("a string field \"text\"", short(line)))?;
                let id = match value.get("id") {
                    None | Some(Value::Null) => line_id,
                    Some(Value::String(id)) => id.clone(),
                    Some(Value::Number(id)) => id.to_string(),
                    Some(other) => {
                        return Err(bad(
                            "an \"id\" that is a string or a number",
                            short(&other.to_string()),
                        ))
                    }
                };
                Ok(Some(TextToEmbed {
                    id,
                    text: text.to_owned(),
                }))
            }
        }
    }
}

/// The start of a long line, for an error message.
fn short(line: &str) -> String {
    let mut cut: String = line.chars().take(60).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    format!("`{cut}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, content: &str) -> Result<Vec<TextToEmbed>, DataError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        read_texts_to_embed(&path)
    }

    fn pairs(texts: &[TextToEmbed]) -> Vec<(&str, &str)> {
        texts
            .iter()
            .map(|t| (t.id.as_str(), t.text.as_str()))
            .collect()
    }

    #[test]
    fn a_txt_file_gives_one_text_per_line_keyed_by_line_number() {
        let texts = read("a.txt", "\u{feff}first\n\nthird line\r\nfourth").unwrap();
        assert_eq!(
            pairs(&texts),
            [("1", "first"), ("3", "third line"), ("4", "fourth")]
        );
    }

    #[test]
    fn a_tsv_with_a_header_uses_its_text_and_id_columns() {
        let texts = read(
            "a.tsv",
            "id\tlabel\ttext\nx7\temma\tHello\ny\tpersuasion\tBye\n",
        );
        assert_eq!(pairs(&texts.unwrap()), [("x7", "Hello"), ("y", "Bye")]);
        // pretext's own labeled layout: the text, the last column, runs to the line's end.
        let texts = read("b.tsv", "label\ttext\nemma\tHello\tworld\n").unwrap();
        assert_eq!(pairs(&texts), [("2", "Hello\tworld")]);
        let error = read("b.tsv", "label\ttext\nemma\tHello\nplain\n").unwrap_err();
        let error = error.to_string();
        assert!(
            error.contains("line 3") && error.contains("column 2"),
            "{error}"
        );
        // Without a header: the text follows the first tab, or is the whole line.
        let texts = read("c.tsv", "emma\tHello\nplain\n").unwrap();
        assert_eq!(pairs(&texts), [("1", "Hello"), ("2", "plain")]);
    }

    #[test]
    fn a_jsonl_file_reads_text_and_id_and_names_a_bad_line() {
        let texts = read(
            "a.jsonl",
            "{\"text\": \"a\", \"id\": 5}\n{\"text\": \"b\", \"id\": \"k\"}\n{\"text\": \"c\"}\n",
        )
        .unwrap();
        assert_eq!(pairs(&texts), [("5", "a"), ("k", "b"), ("3", "c")]);
        let error = read("b.jsonl", "{\"text\": \"a\"}\n{\"body\": \"b\"}\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("b.jsonl") && error.contains("line 2") && error.contains("\"text\""),
            "{error}"
        );
        let error = read("c.jsonl", "{\"text\": \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("c.jsonl") && error.contains("line 1"),
            "{error}"
        );
    }

    #[test]
    fn empty_files_and_other_extensions_are_refused_by_name() {
        let error = read("e.txt", "\n \n").unwrap_err().to_string();
        assert!(
            error.contains("e.txt") && error.contains("no text"),
            "{error}"
        );
        let error = read("e.csv", "a\n").unwrap_err().to_string();
        assert!(
            error.contains("e.csv") && error.contains(".jsonl"),
            "{error}"
        );
    }
}
