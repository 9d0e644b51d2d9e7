//! A campaign: many mutated inputs for one target, run by a seeded proptest
//! [`TestRunner`], with counts of what the reader accepted and refused.
//!
//! The property is that the target returns (accepting or refusing the input) without
//! panicking, within a time limit ([`HANG_SECONDS`] by default). A panic is caught with
//! `catch_unwind`, its message recorded (the panic hook is silenced on the campaign's thread
//! meanwhile); a slow input is timed again, and is a hang when it is slow twice. Either one
//! fails the property: proptest shrinks the input (fewer, smaller mutations, earlier
//! positions) and the minimal input is saved to the findings folder. With `keep_going` a
//! panic or hang is saved as it is and the campaign goes on instead.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant};

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::mutation::{apply, mutated_seed, MutatedSeed};
use crate::target::Target;

/// An input that takes longer than this, twice, is a hang (the default limit).
pub const HANG_SECONDS: f64 = 1.0;

/// What to run.
pub struct Campaign<'a> {
    pub target: &'a Target,
    /// The target's seed files.
    pub seeds: &'a [Vec<u8>],
    /// Inputs to run.
    pub inputs: u32,
    /// Seed of the random mutations: the same seed runs the same inputs.
    pub seed: u64,
    /// Where panicking and hanging inputs are saved (in a folder named after the target).
    pub findings_dir: PathBuf,
    /// Record a finding and go on, instead of stopping at it and shrinking it.
    pub keep_going: bool,
    /// An input taking longer than this, twice, is a hang.
    pub hang_seconds: f64,
    /// Each input is written here before it runs, so that the input of a crash that
    /// ends the process (an abort, a stack overflow) is left behind.
    pub last_input: Option<PathBuf>,
}

/// A panic or a hang.
#[derive(Clone, Debug)]
pub struct Finding {
    /// "panic" or "hang".
    pub kind: &'static str,
    /// The panic message with its location, or how long the input took.
    pub message: String,
    /// The saved input.
    pub input: PathBuf,
    /// The seed file and mutations that made it.
    pub recipe: String,
}

/// What a campaign ran and found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub target: String,
    /// Inputs run (shrinking steps not counted).
    pub inputs: u64,
    pub seconds: f64,
    /// Inputs the reader accepted and refused.
    pub accepted: u64,
    pub refused: u64,
    /// How often each error message occurred, with its numbers replaced by `#`.
    pub errors: HashMap<String, u64>,
    /// The slowest input's time.
    pub slowest_seconds: f64,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn inputs_per_second(&self) -> f64 {
        self.inputs as f64 / self.seconds.max(1e-9)
    }

    pub fn panics(&self) -> usize {
        self.count("panic")
    }

    pub fn hangs(&self) -> usize {
        self.count("hang")
    }

    fn count(&self, kind: &str) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.kind == kind)
            .count()
    }

    /// The `n` most frequent error messages (numbers as `#`), most frequent first.
    pub fn top_errors(&self, n: usize) -> Vec<(&str, u64)> {
        let mut errors: Vec<(&str, u64)> = self
            .errors
            .iter()
            .map(|(message, &count)| (message.as_str(), count))
            .collect();
        errors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        errors.truncate(n);
        errors
    }

    /// One line: inputs, time, rate, accepted/refused, distinct errors, panics, hangs.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} inputs in {:.1} s ({:.0}/s): {} accepted, {} refused, {} distinct errors, \
             {} panics, {} hangs (slowest input {:.3} s)",
            self.target,
            self.inputs,
            self.seconds,
            self.inputs_per_second(),
            self.accepted,
            self.refused,
            self.errors.len(),
            self.panics(),
            self.hangs(),
            self.slowest_seconds
        )
    }
}

/// How one input went.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Accepted,
    Refused(String),
    Panicked(String),
}

/// Runs `target` on `bytes`, catching a panic; returns the outcome and the time it took.
pub fn run_guarded(target: &Target, bytes: &[u8]) -> (Outcome, Duration) {
    install_panic_hook();
    SILENCED.with(|silenced| silenced.set(true));
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| (target.run)(bytes)));
    let elapsed = start.elapsed();
    SILENCED.with(|silenced| silenced.set(false));
    let outcome = match result {
        Ok(Ok(())) => Outcome::Accepted,
        Ok(Err(message)) => Outcome::Refused(message),
        Err(payload) => {
            let recorded = LAST_PANIC.with(|last| last.take());
            Outcome::Panicked(
                recorded.unwrap_or_else(|| pretext_data::panic_message(payload.as_ref())),
            )
        }
    };
    (outcome, elapsed)
}

thread_local! {
    /// Whether this thread's panics are being caught by [`run_guarded`].
    static SILENCED: Cell<bool> = const { Cell::new(false) };
    /// The message and location of this thread's last silenced panic.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic hook that records silenced panics instead of printing them, and leaves every
/// other panic to the hook it replaced.
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if SILENCED.with(Cell::get) {
                let message = info.to_string().replace('\n', " ");
                LAST_PANIC.with(|last| *last.borrow_mut() = Some(message));
            } else {
                previous(info);
            }
        }));
    });
}

/// `message` with every run of digits replaced by `#`, so that errors differing only in
/// a count or an offset are one kind.
pub fn error_kind(message: &str) -> String {
    let mut kind = String::with_capacity(message.len());
    for character in message.chars() {
        if character.is_ascii_digit() {
            if !kind.ends_with('#') {
                kind.push('#');
            }
        } else {
            kind.push(character);
        }
    }
    kind
}

/// The 32-byte ChaCha seed of a campaign: the user's seed and the target's name.
fn rng_seed(seed: u64, target: &str) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    for (index, byte) in target.bytes().enumerate() {
        bytes[8 + index % 24] ^= byte;
    }
    bytes
}

/// Runs the campaign, calling `progress` with the number of inputs run every 256 inputs.
pub fn run(campaign: &Campaign, progress: &dyn Fn(u64)) -> Result<Report, String> {
    let target = campaign.target;
    if campaign.seeds.is_empty() {
        return Err(format!("{}: no seed files", target.name));
    }
    let config = Config {
        cases: campaign.inputs,
        failure_persistence: None,
        max_shrink_iters: 20_000,
        max_shrink_time: 120_000,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &rng_seed(campaign.seed, target.name));
    let mut runner = TestRunner::new_with_rng(config, rng);
    let report = RefCell::new(Report {
        target: target.name.to_string(),
        ..Report::default()
    });
    // After the first failure proptest only shrinks: those runs are not counted.
    let shrinking = Cell::new(false);
    let start = Instant::now();
    let result = runner.run(&mutated_seed(), |input: MutatedSeed| {
        let bytes = apply(&input, campaign.seeds, target);
        if let Some(path) = &campaign.last_input {
            std::fs::write(path, &bytes)
                .map_err(|error| TestCaseError::fail(format!("{}: {error}", path.display())))?;
        }
        let (outcome, mut elapsed) = run_guarded(target, &bytes);
        let slow = elapsed.as_secs_f64() > campaign.hang_seconds;
        if slow {
            // Timed again: a busy machine can make one run slow.
            elapsed = elapsed.min(run_guarded(target, &bytes).1);
        }
        let hang = elapsed.as_secs_f64() > campaign.hang_seconds;
        if shrinking.get() {
            return match outcome {
                Outcome::Panicked(message) => Err(failed("panic", &message)),
                _ if hang => Err(failed("hang", &hang_message(elapsed, campaign))),
                _ => Ok(()),
            };
        }
        let mut report = report.borrow_mut();
        report.inputs += 1;
        report.slowest_seconds = report.slowest_seconds.max(elapsed.as_secs_f64());
        if report.inputs.is_multiple_of(256) {
            progress(report.inputs);
        }
        let failure = match outcome {
            Outcome::Accepted => {
                report.accepted += 1;
                None
            }
            Outcome::Refused(message) => {
                report.refused += 1;
                *report.errors.entry(error_kind(&message)).or_insert(0) += 1;
                None
            }
            Outcome::Panicked(message) => Some(("panic", message)),
        };
        let failure = failure.or_else(|| hang.then(|| ("hang", hang_message(elapsed, campaign))));
        let Some((kind, message)) = failure else {
            return Ok(());
        };
        if campaign.keep_going {
            let finding = save_finding(campaign, kind, message, &input, &bytes)
                .map_err(TestCaseError::fail)?;
            report.findings.push(finding);
            return Ok(());
        }
        shrinking.set(true);
        Err(failed(kind, &message))
    });
    let mut report = report.into_inner();
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, input)) => {
            let bytes = apply(&input, campaign.seeds, target);
            let reason = reason.message().to_string();
            let (kind, message) = reason
                .split_once(": ")
                .map_or(("panic", reason.as_str()), |(kind, message)| {
                    (if kind == "hang" { "hang" } else { "panic" }, message)
                });
            let finding = save_finding(campaign, kind, message.to_string(), &input, &bytes)?;
            report.findings.push(finding);
        }
        Err(TestError::Abort(reason)) => {
            return Err(format!("{}: the campaign stopped: {reason}", target.name))
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// A failed property: `kind` ("panic" or "hang"), then the message, after ": ".
fn failed(kind: &str, message: &str) -> TestCaseError {
    TestCaseError::fail(format!("{kind}: {message}"))
}

fn hang_message(elapsed: Duration, campaign: &Campaign) -> String {
    format!(
        "took {:.2} s (twice over {} s)",
        elapsed.as_secs_f64(),
        campaign.hang_seconds
    )
}

/// Saves `bytes` as `<findings>/<target>/<kind>-<hash>.bin`.
fn save_finding(
    campaign: &Campaign,
    kind: &'static str,
    message: String,
    input: &MutatedSeed,
    bytes: &[u8],
) -> Result<Finding, String> {
    let dir = campaign.findings_dir.join(campaign.target.name);
    std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let path = dir.join(format!("{kind}-{:016x}.bin", fnv1a(bytes)));
    std::fs::write(&path, bytes).map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(Finding {
        kind,
        message,
        input: path,
        recipe: format!("{input:?}"),
    })
}

/// The 64-bit FNV-1a hash: a stable name for a saved input.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panicking(bytes: &[u8]) -> Result<(), String> {
        match bytes.first() {
            Some(b'!') => panic!("bang at {}", bytes.len()),
            Some(_) => Err(format!("refused {} bytes", bytes.len())),
            None => Ok(()),
        }
    }

    const PANICKING: Target = Target {
        name: "panicking",
        reader: "a test reader that panics on inputs starting with '!'",
        run: panicking,
        dictionary: &[b"!"],
        repack: None,
    };

    fn sleepy(bytes: &[u8]) -> Result<(), String> {
        if bytes.first() == Some(&b'!') {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    const SLEEPY: Target = Target {
        name: "sleepy",
        reader: "a test reader that takes 10 ms on inputs starting with '!'",
        run: sleepy,
        dictionary: &[b"!"],
        repack: None,
    };

    #[test]
    fn an_input_slow_twice_is_a_hang_shrunk_and_saved() {
        let findings =
            std::env::temp_dir().join(format!("pretext-fuzz-hang-test-{}", std::process::id()));
        let seeds = vec![b"ab".to_vec()];
        let campaign = Campaign {
            target: &SLEEPY,
            seeds: &seeds,
            inputs: 5_000,
            seed: 3,
            findings_dir: findings.clone(),
            keep_going: false,
            hang_seconds: 0.005,
            last_input: None,
        };
        let report = run(&campaign, &|_| {}).unwrap();
        assert_eq!(
            (report.hangs(), report.panics()),
            (1, 0),
            "{}",
            report.summary()
        );
        let finding = &report.findings[0];
        assert!(
            finding.message.contains("twice over 0.005 s"),
            "{}",
            finding.message
        );
        assert_eq!(std::fs::read(&finding.input).unwrap()[0], b'!');
        std::fs::remove_dir_all(findings).unwrap();
    }

    #[test]
    fn error_kinds_ignore_numbers() {
        assert_eq!(
            error_kind("line 12: expected 3 fields, found 45"),
            "line #: expected # fields, found #"
        );
    }

    #[test]
    fn a_panic_is_caught_with_its_message_and_location() {
        let (outcome, _) = run_guarded(&PANICKING, b"!x");
        let Outcome::Panicked(message) = outcome else {
            panic!("expected a panic, got {outcome:?}");
        };
        assert!(message.contains("bang at 2"), "{message}");
        assert!(message.contains("campaign.rs"), "{message}");
        assert_eq!(run_guarded(&PANICKING, b"").0, Outcome::Accepted);
    }

    #[test]
    fn a_panicking_target_is_found_shrunk_and_saved() {
        let findings =
            std::env::temp_dir().join(format!("pretext-fuzz-test-{}", std::process::id()));
        let seeds = vec![b"abc".to_vec(), b"defgh".to_vec()];
        let campaign = Campaign {
            target: &PANICKING,
            seeds: &seeds,
            inputs: 5_000,
            seed: 7,
            findings_dir: findings.clone(),
            keep_going: false,
            hang_seconds: HANG_SECONDS,
            last_input: None,
        };
        let report = run(&campaign, &|_| {}).unwrap();
        assert_eq!(report.panics(), 1, "{}", report.summary());
        let finding = &report.findings[0];
        let saved = std::fs::read(&finding.input).unwrap();
        assert_eq!(saved[0], b'!');
        // Shrunk: a '!' in front of the shortest seed, or alone.
        assert!(saved.len() <= 4, "{saved:?}");
        assert!(finding.message.contains("bang"), "{}", finding.message);
        assert!(report.refused > 0 && report.errors.contains_key("refused # bytes"));
        std::fs::remove_dir_all(findings).unwrap();
    }

    #[test]
    fn the_same_seed_runs_the_same_inputs() {
        let seeds = vec![b"abc".to_vec()];
        let reports: Vec<Report> = [1, 1, 2]
            .into_iter()
            .map(|seed| {
                let campaign = Campaign {
                    target: crate::target::target_by_name("csv").unwrap(),
                    seeds: &seeds,
                    inputs: 300,
                    seed,
                    findings_dir: std::env::temp_dir(),
                    keep_going: false,
                    hang_seconds: HANG_SECONDS,
                    last_input: None,
                };
                run(&campaign, &|_| {}).unwrap()
            })
            .collect();
        assert_eq!(reports[0].errors, reports[1].errors);
        assert_ne!(reports[0].errors, reports[2].errors);
    }
}
