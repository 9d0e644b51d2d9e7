//! Where the test suite finds the data it does not carry: the real datasets of
//! `../shared/data` (beside the checkout) and the all-MiniLM-L6-v2 checkpoint that `./x test`
//! fetches into `${XDG_CACHE_HOME:-~/.cache}/pretext/models`.
//!
//! A test that needs one of them asks here. Where it is absent the test prints a note and
//! passes, so the suite runs on a machine without the data; under `PRETEXT_REQUIRE_DATA=1`
//! (what CI's `.ci/run` sets, since CI has the data) an absent one fails the test instead,
//! so that a test cannot claim to have run where it did not.

use std::path::{Path, PathBuf};

/// The variable under which missing test data fails a test instead of skipping it.
pub const REQUIRE_DATA_VARIABLE: &str = "PRETEXT_REQUIRE_DATA";

/// The shared data folder (`../shared/data` beside the checkout), whether or not it exists.
pub fn shared_data_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// `relative` under `../shared/data` when it exists; else `None` after a note on stderr, or a
/// panic naming the path under `PRETEXT_REQUIRE_DATA=1`.
pub fn shared_data(relative: &str) -> Option<PathBuf> {
    present_or_skip(shared_data_root().join(relative))
}

/// The all-MiniLM-L6-v2 folder (`PRETEXT_MINILM_DIR`, else the cache `./x test` fills) when
/// it holds `model.safetensors`; else `None` after a note, or a panic under
/// `PRETEXT_REQUIRE_DATA=1`.
pub fn minilm_checkpoint() -> Option<PathBuf> {
    let dir = std::env::var_os("PRETEXT_MINILM_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
            Some(cache.join("pretext/models/all-MiniLM-L6-v2"))
        })
        .unwrap_or_else(|| PathBuf::from("~/.cache/pretext/models/all-MiniLM-L6-v2"));
    present_or_skip(dir.join("model.safetensors")).map(|_| dir)
}

/// Whether missing test data must fail the test (`PRETEXT_REQUIRE_DATA` set, and not to 0).
pub fn data_required() -> bool {
    std::env::var(REQUIRE_DATA_VARIABLE).is_ok_and(|value| !value.is_empty() && value != "0")
}

fn present_or_skip(path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert!(
        !data_required(),
        "{} is absent, and {REQUIRE_DATA_VARIABLE}=1 says this machine has the test data \
         (./x test fetches the MiniLM checkpoint; ../shared/data sits beside the checkout)",
        path.display()
    );
    eprintln!("skipped: {} is absent", path.display());
    None
}
