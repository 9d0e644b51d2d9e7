//! The first pass over a table: each row's label, which columns hold only numbers, and the
//! labels' class codes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::source::{is_missing, TableSource};
use crate::error::DataError;

/// What the first pass over the files finds: each row's label (an id into `labels`, in
/// first-seen order) and each column's first cell that is not a number.
pub(super) struct Survey {
    /// Per file, the label id of each row.
    pub(super) label_ids: Vec<Vec<u16>>,
    /// The distinct labels.
    pub(super) labels: Vec<SeenLabel>,
    /// Per column of the header, the first non-missing cell (over the files in order) that
    /// does not parse as a number: (file, line, cell).
    pub(super) first_text: Vec<Option<(usize, u64, String)>>,
}

/// A distinct label and the first line it is on in each file.
pub(super) struct SeenLabel {
    name: String,
    first_line: [Option<u64>; 2],
}

/// The most distinct labels a table may have (class codes are 16-bit).
pub(super) const MAX_LABELS: usize = 1 << 16;

/// The first pass: labels (none missing, at most [`MAX_LABELS`] distinct) and which
/// columns are numbers.
pub(super) fn survey(
    sources: &[TableSource],
    label_column: usize,
    width: usize,
    label_name: &str,
) -> Result<Survey, DataError> {
    let mut survey = Survey {
        label_ids: Vec::new(),
        labels: Vec::new(),
        first_text: vec![None; width],
    };
    let mut ids: std::collections::HashMap<String, u16> = std::collections::HashMap::new();
    for (file, source) in sources.iter().enumerate() {
        let mut file_ids = Vec::new();
        source.rows(|line, cells| {
            let label = cells[label_column];
            if is_missing(label) {
                return Err(DataError::BadRecord {
                    path: source.path().to_path_buf(),
                    line: line as usize,
                    expected: "a label in every row".to_string(),
                    found: "an empty label".to_string(),
                });
            }
            let id = match ids.get(label) {
                Some(&id) => id,
                None if survey.labels.len() == MAX_LABELS => {
                    return Err(DataError::BadRecord {
                        path: source.path().to_path_buf(),
                        line: line as usize,
                        expected: format!(
                            "at most {MAX_LABELS} distinct labels in the label column {label_name:?} (data.table.label)"
                        ),
                        found: format!("one more: {label:?}"),
                    })
                }
                None => {
                    let id = survey.labels.len() as u16;
                    ids.insert(label.to_string(), id);
                    survey.labels.push(SeenLabel {
                        name: label.to_string(),
                        first_line: [None, None],
                    });
                    id
                }
            };
            survey.labels[usize::from(id)].first_line[file].get_or_insert(line);
            file_ids.push(id);
            for (column, cell) in cells.iter().enumerate() {
                if column != label_column
                    && survey.first_text[column].is_none()
                    && !is_missing(cell)
                    && cell.parse::<f64>().is_err()
                {
                    survey.first_text[column] = Some((file, line, cell.to_string()));
                }
            }
            Ok(())
        })?;
        survey.label_ids.push(file_ids);
    }
    Ok(survey)
}

/// The class names of a `<stem>.classes.txt` file, one per line; none when it cannot be read.
fn read_class_names(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(|line| line.trim().to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Class codes of every row of each file, and the class names: integer labels are codes
/// (named by `classes_file` when it exists), any other labels are coded in sorted order of
/// the training file's labels.
///
/// `label_ids` (the survey's, taken from it) become the codes in place.
pub(super) fn label_codes(
    sources: &[TableSource],
    survey: &Survey,
    mut label_ids: Vec<Vec<u16>>,
    classes_file: Option<&Path>,
) -> Result<(Vec<Vec<u16>>, Vec<String>), DataError> {
    let mut codes_of = |code_of_id: &[u16]| -> Vec<Vec<u16>> {
        for id in label_ids.iter_mut().flatten() {
            *id = code_of_id[usize::from(*id)];
        }
        std::mem::take(&mut label_ids)
    };
    // The first line of `file` whose label satisfies `bad`, and that label.
    let first_bad = |file: usize, bad: &dyn Fn(&SeenLabel) -> bool| {
        survey
            .labels
            .iter()
            .filter(|label| bad(label))
            .filter_map(|label| label.first_line[file].map(|line| (line, label)))
            .min_by_key(|(line, _)| *line)
    };
    let integers: Option<Vec<u16>> = survey
        .labels
        .iter()
        .map(|label| label.name.parse::<u16>().ok())
        .collect();
    if let Some(code_of_id) = integers {
        let class_names = classes_file.map_or_else(Vec::new, read_class_names);
        if let Some(names_path) = classes_file.filter(|_| !class_names.is_empty()) {
            for (file, source) in sources.iter().enumerate() {
                let beyond = |label: &SeenLabel| {
                    usize::from(label.name.parse::<u16>().expect("checked")) >= class_names.len()
                };
                if let Some((line, label)) = first_bad(file, &beyond) {
                    return Err(DataError::BadRecord {
                        path: source.path().to_path_buf(),
                        line: line as usize,
                        expected: format!(
                            "a class code below {} (the classes named in {})",
                            class_names.len(),
                            names_path.display()
                        ),
                        found: label.name.parse::<u16>().expect("checked").to_string(),
                    });
                }
            }
        }
        return Ok((codes_of(&code_of_id), class_names));
    }
    let names: BTreeMap<&str, u16> = survey
        .labels
        .iter()
        .filter(|label| label.first_line[0].is_some())
        .map(|label| label.name.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(code, name)| (name, code as u16))
        .collect();
    if let Some(test) = sources.get(1) {
        let unknown = |label: &SeenLabel| !names.contains_key(label.name.as_str());
        if let Some((line, label)) = first_bad(1, &unknown) {
            return Err(DataError::UnknownLabel {
                path: test.path().to_path_buf(),
                line: line as usize,
                label: label.name.clone(),
                train: sources[0].path().to_path_buf(),
                known: names.keys().copied().collect::<Vec<_>>().join(", "),
            });
        }
    }
    let code_of_id: Vec<u16> = survey
        .labels
        .iter()
        .map(|label| names[label.name.as_str()])
        .collect();
    Ok((
        codes_of(&code_of_id),
        names.keys().map(|name| name.to_string()).collect(),
    ))
}
