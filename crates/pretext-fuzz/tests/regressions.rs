//! Replays every committed crash input (`regressions/<target>/`): each must now be accepted
//! or refused with an error, never panic or hang.

use pretext_fuzz::{read_files, regressions_dir, run_guarded, target_by_name, Outcome};

/// Slower than this is a hang: looser than the campaign's 1 s, as CI machines are shared.
const HANG_SECONDS: f64 = 10.0;

#[test]
fn every_former_crash_input_is_accepted_or_refused_without_panicking() {
    let dir = regressions_dir();
    let mut folders: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    let mut replayed = 0;
    let mut failures = Vec::new();
    for folder in folders {
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        let target = target_by_name(&name)
            .unwrap_or_else(|| panic!("{}: no target named {name:?}", folder.display()));
        for (path, bytes) in read_files(&folder).unwrap() {
            let (outcome, elapsed) = run_guarded(target, &bytes);
            replayed += 1;
            if let Outcome::Panicked(message) = &outcome {
                failures.push(format!("{}: panicked: {message}", path.display()));
            } else if elapsed.as_secs_f64() > HANG_SECONDS {
                failures.push(format!("{}: took {elapsed:?}", path.display()));
            }
        }
    }
    assert!(replayed > 0, "no regression inputs under {}", dir.display());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
