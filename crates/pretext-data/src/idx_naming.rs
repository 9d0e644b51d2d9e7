//! How an IDX images file finds its neighbours by name: `<prefix>-images-idx3-ubyte[.gz]`
//! (or `.idx3-ubyte`) has its labels in `<prefix>-labels-idx1-ubyte[.gz]` beside it, and its
//! class names in `<prefix>.classes.txt` or `classes.txt` (one name per line, line i+1 names
//! class i, the `shared/data` convention).

use std::path::Path;

use crate::error::DataError;
use crate::idx::{read_idx_images, read_idx_pair};
use crate::image_set::ImageSet;

/// The suffixes an IDX images file name may end with, and the matching labels suffix.
const IDX_SUFFIXES: [(&str, &str); 2] = [
    ("-images-idx3-ubyte", "-labels-idx1-ubyte"),
    ("-images.idx3-ubyte", "-labels.idx1-ubyte"),
];

/// Splits an IDX images file name into its prefix and the labels file names to look for.
pub(crate) fn idx_images_prefix(file_name: &str) -> Option<(String, Vec<String>)> {
    let (stem, gz) = match file_name.strip_suffix(".gz") {
        Some(stem) => (stem, true),
        None => (file_name, false),
    };
    IDX_SUFFIXES
        .iter()
        .find_map(|(images_suffix, labels_suffix)| {
            let prefix = stem.strip_suffix(images_suffix)?;
            let labels = format!("{prefix}{labels_suffix}");
            // Prefer the labels file compressed like the images file.
            let candidates = if gz {
                vec![format!("{labels}.gz"), labels]
            } else {
                vec![labels.clone(), format!("{labels}.gz")]
            };
            Some((prefix.to_string(), candidates))
        })
}

/// Reads an IDX images file (into a store under `memory_limit_bytes`) with its labels file
/// (if found by the naming rule) and class names (if a classes file is found); validates
/// labels against class names.
pub(crate) fn read_idx_with_neighbours(
    images: &Path,
    memory_limit_bytes: u64,
) -> Result<ImageSet, DataError> {
    let folder = images.parent().unwrap_or(Path::new("."));
    let file_name = images
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some((prefix, label_candidates)) = idx_images_prefix(&file_name) else {
        return read_idx_images(images, memory_limit_bytes);
    };
    let Some(labels) = label_candidates
        .iter()
        .map(|name| folder.join(name))
        .find(|path| path.is_file())
    else {
        return read_idx_images(images, memory_limit_bytes);
    };
    let mut set = read_idx_pair(images, &labels, memory_limit_bytes)?;
    let classes_files = [
        folder.join(format!("{prefix}.classes.txt")),
        folder.join("classes.txt"),
    ];
    if let Some(classes) = classes_files.iter().find(|path| path.is_file()) {
        set.class_names = read_class_names(classes)?;
        set.validate(&labels)?;
    }
    Ok(set)
}

/// One class name per line; trailing blank lines are ignored.
fn read_class_names(path: &Path) -> Result<Vec<String>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut names: Vec<String> = text
        .lines()
        .map(|line| line.trim_end_matches('\r').to_string())
        .collect();
    while names.last().is_some_and(|name| name.trim().is_empty()) {
        names.pop();
    }
    if names.is_empty() {
        return Err(DataError::UnknownLayout {
            path: path.to_path_buf(),
            details: "expected one class name per line, found no names".to_string(),
        });
    }
    Ok(names)
}
