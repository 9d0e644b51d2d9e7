//! The committed files: seed corpus (`corpus/<target>/`) and crash inputs kept as regression
//! tests (`regressions/<target>/`).

use std::path::{Path, PathBuf};

/// `crates/pretext-fuzz/corpus`: one folder of seed files per target.
pub fn default_corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// `crates/pretext-fuzz/regressions`: one folder of former crash inputs per target.
pub fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions")
}

/// The files of `dir`, sorted by name, with their bytes; hidden files and `README.md` are
/// skipped, and a missing folder has none.
pub fn read_files(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(format!("{}: {error}", dir.display())),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|error| format!("{}: {error}", dir.display()))?
            .path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_file() && !name.starts_with('.') && name != "README.md" {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| match std::fs::read(&path) {
            Ok(bytes) => Ok((path, bytes)),
            Err(error) => Err(format!("{}: {error}", path.display())),
        })
        .collect()
}

/// The seed files of `target` in `corpus_dir`; at least one is required.
pub fn load_seeds(corpus_dir: &Path, target: &str) -> Result<Vec<Vec<u8>>, String> {
    let dir = corpus_dir.join(target);
    let seeds: Vec<Vec<u8>> = read_files(&dir)?
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect();
    if seeds.is_empty() {
        return Err(format!(
            "{}: no seed files for target {target}; make them with --make-corpus",
            dir.display()
        ));
    }
    Ok(seeds)
}
