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

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed TOML seeds are what `--make-corpus` writes today: a changed default or
    /// a new example config must be regenerated into the corpus, or the fuzzer mutates
    /// configs the code no longer writes.
    #[test]
    fn the_committed_toml_seeds_are_current() {
        let out = std::env::temp_dir().join(format!("pretext-fuzz-toml-{}", std::process::id()));
        let mut written = Vec::new();
        let mut corpus = Corpus {
            out: &out,
            written: &mut written,
        };
        toml_seeds(&mut corpus).unwrap();
        let committed = crate::corpus::default_corpus_dir().join("toml");
        let mut stale = Vec::new();
        for path in &written {
            let name = path.file_name().expect("a file");
            if read(&committed.join(name)).ok() != Some(read(path).unwrap()) {
                stale.push(name.to_string_lossy().into_owned());
            }
        }
        std::fs::remove_dir_all(&out).unwrap();
        assert!(
            stale.is_empty(),
            "corpus/toml is stale for {stale:?}: run \
             `cargo run --release -p pretext-fuzz -- --make-corpus ../shared/data`"
        );
    }
}
