//! TOML seeds: the repository's example configs and the default configs written out.

use std::path::{Path, PathBuf};

use super::writer::{read, Corpus};

/// The repository's example configs, and the default pretrain and study configs written
/// out in full.
pub(super) fn toml_seeds(corpus: &mut Corpus) -> Result<(), String> {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&configs)
        .map_err(|error| format!("{}: {error}", configs.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "toml")
        })
        .collect();
    files.sort();
    for file in files {
        let name = file
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        corpus.write("toml", &name, &read(&file)?)?;
    }
    corpus.write(
        "toml",
        "default-pretrain.toml",
        pretext_train::PretrainConfig::default()
            .to_toml()
            .as_bytes(),
    )?;
    corpus.write(
        "toml",
        "default-study.toml",
        pretext_eval::study::StudyConfig::default()
            .to_toml()
            .as_bytes(),
    )?;
    Ok(())
}
