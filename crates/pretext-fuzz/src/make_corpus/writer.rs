//! [`make_corpus`]: every family of seeds written into one folder per target, and the
//! licenses of the data they are cut from.

use std::path::{Path, PathBuf};

use super::audio::wav_seeds;
use super::configs::toml_seeds;
use super::tables::table_seeds;
use super::text::text_seeds;
use super::vision::idx_and_image_seeds;
use super::weights::safetensors_seeds;

/// Writes every seed under `out/<target>/` and the data's license files under
/// `out/licenses/`; returns the files written.
pub fn make_corpus(shared: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    let mut corpus = Corpus {
        out,
        written: &mut written,
    };
    idx_and_image_seeds(shared, &mut corpus)?;
    wav_seeds(shared, &mut corpus)?;
    table_seeds(shared, &mut corpus)?;
    text_seeds(shared, &mut corpus)?;
    safetensors_seeds(&mut corpus)?;
    toml_seeds(&mut corpus)?;
    for (from, to) in [
        ("vision/fashion-mnist/LICENSE", "fashion-mnist-LICENSE"),
        ("text/austen/LICENSE", "austen-LICENSE"),
        ("tabular/LICENSE-mlbench.txt", "LICENSE-mlbench.txt"),
        (
            "tabular/LICENSE-mlxtend-BSD3.txt",
            "LICENSE-mlxtend-BSD3.txt",
        ),
    ] {
        let bytes = read(&shared.join(from))?;
        corpus.write("licenses", to, &bytes)?;
    }
    Ok(written)
}

pub(super) struct Corpus<'a> {
    pub(super) out: &'a Path,
    pub(super) written: &'a mut Vec<PathBuf>,
}

impl Corpus<'_> {
    pub(super) fn path(&self, target: &str, name: &str) -> Result<PathBuf, String> {
        let dir = self.out.join(target);
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        Ok(dir.join(name))
    }

    pub(super) fn write(&mut self, target: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
        let path = self.path(target, name)?;
        std::fs::write(&path, bytes).map_err(|error| format!("{}: {error}", path.display()))?;
        self.written.push(path);
        Ok(())
    }
}

pub(super) fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))
}

pub(super) fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))
}
