//! Kill anywhere, resume exactly. `pretext pretrain` (SimCLR, MoCo, DINO, BERT MLM, VIME) and
//! `pretext study` are killed with SIGKILL at seeded random moments, many times, and resumed
//! after each kill; the finished run must equal an uninterrupted one bit for bit (CPU).
//!
//! A kill moment is drawn one of two ways, half and half: (a) a delay uniform over the time
//! the rest of the run should take (measured on the uninterrupted run), or (b) the n-th
//! checkpoint write: the harness polls every 100 µs for a new `checkpoints/.partial-step-N`
//! folder and kills 0–2 ms after it appears, so that many kills land inside a write.
//! After every kill:
//!
//! - the newest `step-N` folder opens (its checksums hold), its weights and method state load
//!   into a model built the way `pretrain` builds it, its optimizer state reads; it is never a
//!   `.partial-*` folder, and never older than the newest one before the kill;
//! - the run goes on: `--resume` (the process must say it resumes from that checkpoint), or,
//!   killed before its first checkpoint, the same command with `--overwrite` after checking
//!   that `--resume` refuses such a run cleanly and leaves it as it was.
//!
//! When all kills are spent the last process runs to the end, and the run directory is
//! compared with the uninterrupted run's: every file of every checkpoint both keep (the
//! final one above all) byte for byte, config.toml and the data files byte for byte, and
//! metrics.jsonl record for record without its two timings. A killed study (rerun with the
//! same `--out`) must end with the same results (tables, plots, cell accuracies; only the
//! seconds a cell took may differ) and the same pretraining run. BERT MLM runs twice: with
//! the WordPiece tokenizer each run trains for itself, and with one tokenizer file given to
//! both runs (so that a difference can be told apart from tokenizer training).
//!
//! A second test kills new runs (and a study) while they are set up, before config.toml is
//! in place, and checks that starting again works.
//!
//! Environment: `PRETEXT_KILLS` kills per method (default 2; the study gets a quarter of
//! that, at least 1, or `PRETEXT_STUDY_KILLS`), `PRETEXT_KILL_SEED` (default 2024),
//! `PRETEXT_BIN` another build of the binary to test, `PRETEXT_KILL_KEEP=1` keeps the runs
//! of a failed campaign. The full campaign:
//!
//! ```text
//! PRETEXT_KILLS=20 cargo test --release -p pretext-cli --test kill_harness -- --nocapture --test-threads 1
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

mod common;
use common::{austen_slice, embedded_slice, shared_data, small_text_run};

// ---------------------------------------------------------------------------------------------
// Settings and the binary.

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")),
        Err(_) => default,
    }
}

fn binary() -> PathBuf {
    std::env::var_os("PRETEXT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pretext")))
}

fn arg(path: &Path) -> String {
    path.to_str()
        .expect("temporary paths are UTF-8")
        .to_string()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| arg.to_string()).collect()
}

/// Starts `pretext ARGS` with stdout discarded and stderr into `log`. OpenMP threads sleep
/// instead of spinning while they wait: on a busy machine (a CI runner, other tests) spinning
/// threads make a run up to 15 times slower, and the wait policy changes no result.
fn spawn(args: &[String], log: &Path) -> Child {
    let stderr = std::fs::File::create(log).expect("the log file is created");
    Command::new(binary())
        .args(args)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .env("COLUMNS", "100")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("the pretext binary starts")
}

fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Killing.

/// The `.partial-*` folders under `checkpoints` changed since `since`: those of a process
/// started then (one a killed process left earlier is untouched until a later write
/// replaces it).
fn fresh_partials(checkpoints: &Path, since: SystemTime) -> BTreeSet<OsString> {
    let Ok(entries) = std::fs::read_dir(checkpoints) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(".partial-"))
        // Gone between the listing and here: renamed to its final name.
        .filter(|entry| {
            entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| modified >= since)
        })
        .map(|entry| entry.file_name())
        .collect()
}

/// When to kill a started process.
enum Moment {
    /// This long after the start.
    After(Duration),
    /// This long after the `writes`-th checkpoint write of this process began.
    InWrite { writes: u64, delay: Duration },
}

/// What became of a process the harness meant to kill.
enum Fate {
    Killed,
    /// It ended by itself first (finished, or failed).
    Exited(ExitStatus),
}

fn reap(mut child: Child) -> Fate {
    let _ = child.kill();
    let status = child.wait().unwrap();
    if status.signal() == Some(libc::SIGKILL) {
        Fate::Killed
    } else {
        Fate::Exited(status)
    }
}

/// Waits for `moment` (watching `checkpoints` for the partial folders of a process started
/// at `since`), then sends SIGKILL. Also returns when the process's first checkpoint write
/// was seen, as a measure of its pace.
fn kill_at(
    mut child: Child,
    moment: &Moment,
    checkpoints: &Path,
    since: SystemTime,
) -> (Fate, Option<Duration>) {
    let mut first_write = None;
    match *moment {
        Moment::After(delay) => {
            let deadline = Instant::now() + delay;
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait().unwrap() {
                    return (Fate::Exited(status), None);
                }
                let left = deadline.saturating_duration_since(Instant::now());
                std::thread::sleep(left.min(Duration::from_millis(2)));
            }
        }
        Moment::InWrite { writes, delay } => {
            let mut seen = BTreeSet::new();
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    return (Fate::Exited(status), first_write);
                }
                seen.extend(fresh_partials(checkpoints, since));
                if !seen.is_empty() && first_write.is_none() {
                    first_write = since.elapsed().ok();
                }
                if seen.len() as u64 >= writes {
                    break;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            std::thread::sleep(delay);
        }
    }
    (reap(child), first_write)
}

/// Where a kill landed, judged right after it.
#[derive(Clone, Copy, Debug)]
enum Landed {
    /// A checkpoint folder of this process was still `.partial-*`.
    MidWrite,
    /// The run had no complete checkpoint yet.
    BeforeFirstCheckpoint,
    BetweenWrites,
}

/// Counts of one method's (or the study's) campaign.
#[derive(Default)]
struct Row {
    what: String,
    kills: u64,
    mid_write: u64,
    before_first: u64,
    between: u64,
    /// Kills of a study after its pretraining had finished.
    in_evaluation: u64,
    resumes: u64,
    restarts: u64,
    /// Killed runs carried to the end and compared (a run that ends before its kills are
    /// spent is followed by another, also after a difference: it still tests the kills).
    runs: u64,
    /// Killed runs whose end differs from the uninterrupted run's.
    unequal_runs: u64,
    seconds: f64,
    notes: Vec<String>,
    failure: Option<String>,
}

impl Row {
    /// Counts a kill `seconds` after its process started, and says where it landed.
    fn count(&mut self, mid_write: bool, newest: Option<u64>, seconds: f64) {
        let landed = match (mid_write, newest) {
            (true, _) => Landed::MidWrite,
            (false, None) => Landed::BeforeFirstCheckpoint,
            (false, Some(_)) => Landed::BetweenWrites,
        };
        self.kills += 1;
        match landed {
            Landed::MidWrite => self.mid_write += 1,
            Landed::BeforeFirstCheckpoint => self.before_first += 1,
            Landed::BetweenWrites => self.between += 1,
        }
        eprintln!(
            "{} kill {}: {seconds:.3} s after the start, {landed:?}; newest checkpoint: {}",
            self.what,
            self.kills,
            newest.map_or("none".into(), |step| format!("step-{step}"))
        );
    }

    /// Records a finished killed run: `problems` found comparing it with the uninterrupted
    /// `reference`, and any file it left that the reference does not have.
    fn finish_run(&mut self, problems: Vec<String>, reference: &Path, run: &Path) {
        self.runs += 1;
        if !problems.is_empty() {
            self.unequal_runs += 1;
            self.failure.get_or_insert(problems.join("\n"));
        }
        let extra = leftovers(reference, run);
        if !extra.is_empty() {
            self.notes
                .push(format!("left behind in {}: {extra:?}", run.display()));
        }
    }
}

/// Timings of the uninterrupted run that place the kills, and the pace of this campaign's
/// processes against it (the machine may be busier or quieter than when it was measured).
struct Timing {
    /// Seconds from the start to the first checkpoint.
    startup: f64,
    /// Seconds per step after it.
    per_step: f64,
    /// Seconds from the last checkpoint to the end (a study's evaluations).
    tail: f64,
    /// Seconds a process takes for one second of the uninterrupted run.
    pace: f64,
}

impl Timing {
    /// Seconds the uninterrupted run took for `steps` steps and `tail_left` of its tail,
    /// after starting.
    fn rest(&self, steps: u64, tail_left: f64) -> f64 {
        self.startup + self.per_step * steps as f64 + self.tail * tail_left
    }

    /// Learns the pace from a process that took `seconds` for what took `reference` seconds.
    fn observe(&mut self, seconds: f64, reference: f64) {
        let pace = (seconds / reference.max(1e-3)).clamp(0.1, 10.0);
        self.pace = (self.pace * pace).sqrt();
    }

    /// The kill moment for a process with `steps` steps and `tail_left` of the tail to go and
    /// `kills_left` kills to place, so that the kills spread over the run: half the time the
    /// n-th checkpoint write (n drawn over this kill's share of the steps) 0–2 ms in, else a
    /// delay uniform over its share of the time.
    fn draw(&self, rng: &mut ChaCha8Rng, steps: u64, tail_left: f64, kills_left: u64) -> Moment {
        if steps > 0 && rng.random_bool(0.5) {
            let share = (2 * steps / (kills_left + 1)).clamp(1, steps);
            Moment::InWrite {
                writes: rng.random_range(1..=share),
                delay: Duration::from_micros(rng.random_range(0..=2000)),
            }
        } else {
            let work = self.rest(steps, tail_left) - self.startup;
            let horizon = self.pace * (self.startup + 2.0 * work / (kills_left + 1) as f64);
            Moment::After(Duration::from_secs_f64(rng.random_range(0.0..horizon)))
        }
    }

    /// Kills `child` at a drawn moment, learning the pace from what it showed.
    fn kill(
        &mut self,
        rng: &mut ChaCha8Rng,
        child: Child,
        (steps, tail_left, kills_left): (u64, f64, u64),
        checkpoints: &Path,
        since: SystemTime,
    ) -> Fate {
        let moment = self.draw(rng, steps, tail_left, kills_left);
        let (fate, first_write) = kill_at(child, &moment, checkpoints, since);
        if let Some(seconds) = first_write {
            self.observe(seconds.as_secs_f64(), self.startup);
        }
        if let (Fate::Exited(_), Ok(seconds)) = (&fate, since.elapsed()) {
            self.observe(seconds.as_secs_f64(), self.rest(steps, tail_left));
        }
        fate
    }
}

// ---------------------------------------------------------------------------------------------
// Checks after a kill.

/// Checks the newest checkpoint of `run` after a kill: it is a complete `step-N` folder, not
/// older than `floor`, it opens and loads into the model `pretrain` would build. Returns its
/// step (None before the first checkpoint).
fn check_newest_checkpoint(run: &Path, floor: Option<u64>) -> Result<Option<u64>, String> {
    let checkpoints = run.join("checkpoints");
    let (latest, passed_over) = pretext_train::Checkpoint::latest(&checkpoints)
        .map_err(|error| format!("listing {}: {error}", checkpoints.display()))?;
    if !passed_over.is_empty() {
        return Err(format!(
            "the newest checkpoint of {} does not open: {passed_over:?}",
            run.display()
        ));
    }
    let Some(latest) = latest else {
        return match floor {
            Some(step) => Err(format!(
                "no complete checkpoint left in {}; step-{step} was there before the kill",
                run.display()
            )),
            None => Ok(None),
        };
    };
    let step = latest.state.step;
    let name = latest
        .dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    if name != format!("step-{step}") {
        return Err(format!(
            "{} was taken for the checkpoint of step {step}",
            latest.dir.display()
        ));
    }
    if let Some(floor) = floor.filter(|&floor| step < floor) {
        return Err(format!(
            "the newest checkpoint went back from step {floor} to step {step}"
        ));
    }
    let loading = |what: &str, error: &dyn std::fmt::Display| {
        format!("{}: {what}: {error}", latest.dir.display())
    };
    let config = pretext_train::PretrainConfig::from_file(&run.join("config.toml"))
        .map_err(|error| loading("config.toml", &error))?;
    let data = pretext_data::open(&config.data.path, &config.data_options(Some(run)))
        .map_err(|error| loading("the data", &error))?
        .splits;
    let config = config
        .resolved_for(&data.train)
        .map_err(|error| loading("resolving the config", &error))?;
    let train = config
        .data
        .pretraining_samples(&data.train)
        .map_err(|error| loading("the training samples", &error))?;
    let mut model = pretext_train::Model::new(&config, &train, tch::Device::Cpu);
    latest
        .load_weights(&config, &mut model.store)
        .map_err(|error| loading("weights", &error))?;
    latest
        .load_method_state(&config, &mut model.state)
        .map_err(|error| loading("method state", &error))?;
    latest
        .optimizer_state()
        .map_err(|error| loading("optimizer state", &error))?;
    Ok(Some(step))
}

/// A resumed process (when it got as far as saying so) must say it resumed from the
/// checkpoint the harness found newest: `pretrain` "resuming from …/step-N (step N)", a study
/// "simclr: resuming pretraining at step N of …".
fn check_resumed_from(log: &Path, step: u64) -> Result<(), String> {
    let text = log_text(log);
    let said = text
        .lines()
        .find(|line| line.starts_with("resuming from ") || line.contains(": resuming pretraining"));
    match said {
        Some(line)
            if !line.ends_with(&format!("step-{step} (step {step})"))
                && !line.contains(&format!("resuming pretraining at step {step} of")) =>
        {
            Err(format!(
                "expected to resume from step-{step}, the process says: {line}"
            ))
        }
        _ => Ok(()),
    }
}

/// `--resume` of a run killed before its first checkpoint is refused cleanly (exit code 1,
/// a message, no panic) and leaves the folder as it was; the run starts again with
/// `--overwrite`.
fn check_resume_refused(run: &Path, log: &Path) -> Result<(), String> {
    let contents = || -> BTreeMap<PathBuf, Vec<u8>> {
        files_under(run)
            .into_iter()
            .map(|(relative, path)| (relative, std::fs::read(path).unwrap_or_default()))
            .collect()
    };
    let before = contents();
    let args = strings(&["pretrain", "--resume", &arg(run), "--device", "cpu"]);
    let status = spawn(&args, log).wait().unwrap();
    let text = log_text(log);
    if status.code() != Some(1) || text.contains("panicked") || !text.contains("error: ") {
        return Err(format!(
            "`pretext {}` of a run without a checkpoint: {status}\n{text}",
            args.join(" ")
        ));
    }
    if contents() != before {
        return Err(format!("a refused --resume changed {}", run.display()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Comparing a finished run with the uninterrupted one.

/// Every file under `dir`, by path relative to it.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, PathBuf> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<PathBuf, PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, into);
            } else {
                into.insert(path.strip_prefix(root).unwrap().to_path_buf(), path);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

/// Why two files differ: the tensors that differ for safetensors, both texts for short text.
fn describe_difference(expected: &Path, found: &Path) -> String {
    if expected.extension().is_some_and(|e| e == "safetensors") {
        let (Ok(a), Ok(b)) = (
            tch::Tensor::read_safetensors(expected),
            tch::Tensor::read_safetensors(found),
        ) else {
            return "unreadable safetensors".into();
        };
        let b: BTreeMap<String, tch::Tensor> = b.into_iter().collect();
        let differing: Vec<&str> = a
            .iter()
            .filter(|(name, tensor)| b.get(name).is_none_or(|other| !tensor.equal(other)))
            .map(|(name, _)| name.as_str())
            .collect();
        return format!(
            "{} of {} tensors differ, e.g. {:?}",
            differing.len(),
            a.len(),
            &differing[..differing.len().min(4)]
        );
    }
    let (Ok(a), Ok(b)) = (
        std::fs::read_to_string(expected),
        std::fs::read_to_string(found),
    ) else {
        return "binary files differ".into();
    };
    match a.lines().zip(b.lines()).find(|(x, y)| x != y) {
        Some((x, y)) => format!("first differing line: {x:?} vs {y:?}"),
        None => format!("lengths {} vs {}", a.len(), b.len()),
    }
}

/// Byte-compares each file under `expected` with its namesake under `found`; `normalize`
/// rewrites a file's bytes before the comparison (to drop timings).
fn compare_files(
    expected: &Path,
    found: &Path,
    normalize: &dyn Fn(&Path, Vec<u8>) -> Vec<u8>,
    problems: &mut Vec<String>,
) {
    let (ours, theirs) = (files_under(expected), files_under(found));
    for (relative, path) in &ours {
        let Some(other) = theirs.get(relative) else {
            problems.push(format!("{} is missing", found.join(relative).display()));
            continue;
        };
        let read = |path: &Path| normalize(relative, std::fs::read(path).unwrap());
        if read(path) != read(other) {
            problems.push(format!(
                "{} differs from the uninterrupted run's: {}",
                found.join(relative).display(),
                describe_difference(path, other)
            ));
        }
    }
}

fn unchanged(_: &Path, bytes: Vec<u8>) -> Vec<u8> {
    bytes
}

/// metrics.jsonl without the timings (throughput, data wait, elapsed time).
fn metrics_records(run: &Path) -> Result<Vec<Map<String, Value>>, String> {
    let path = run.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(index, line)| {
            let mut record: Map<String, Value> = serde_json::from_str(line).map_err(|error| {
                format!("{} line {}: {error}: {line:?}", path.display(), index + 1)
            })?;
            record.remove("images_per_second");
            record.remove("data_wait_seconds");
            record.remove("elapsed_seconds");
            Ok(record)
        })
        .collect()
}

/// Compares a finished killed run with the uninterrupted one; returns what differs.
fn compare_runs(expected: &Path, found: &Path, total: u64) -> Vec<String> {
    let mut problems = Vec::new();
    let names = |run: &Path| -> BTreeSet<String> {
        std::fs::read_dir(run.join("checkpoints"))
            .map(|entries| {
                entries
                    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (ours, theirs) = (names(expected), names(found));
    let missing: Vec<&String> = ours.difference(&theirs).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{}/checkpoints lacks {missing:?}, which the uninterrupted run keeps",
            found.display()
        ));
    }
    let last = format!("step-{total}");
    if !theirs.contains(&last) {
        problems.push(format!("no {last} in {}", found.display()));
    }
    for name in ours.intersection(&theirs) {
        let folder = Path::new("checkpoints").join(name);
        compare_files(
            &expected.join(&folder),
            &found.join(&folder),
            &unchanged,
            &mut problems,
        );
    }
    // The run's own files: config.toml, tokenizer.json, table-stats.json (not the lock).
    for (relative, path) in files_under(expected) {
        let top = relative.components().count() == 1;
        let name = relative.to_string_lossy();
        if !top || name == ".lock" || name == "metrics.jsonl" {
            continue;
        }
        match std::fs::read(found.join(&relative)) {
            Ok(bytes) if bytes == std::fs::read(&path).unwrap() => {}
            Ok(_) => problems.push(format!(
                "{name} differs: {}",
                describe_difference(&path, &found.join(&relative))
            )),
            Err(_) => problems.push(format!("{name} is missing from {}", found.display())),
        }
    }
    match (metrics_records(expected), metrics_records(found)) {
        (Ok(a), Ok(b)) if a != b => {
            let first = a.iter().zip(&b).position(|(x, y)| x != y);
            problems.push(format!(
                "metrics.jsonl differs ({} vs {} records; first different record: {:?})",
                a.len(),
                b.len(),
                first.map(|index| (&a[index], &b[index]))
            ));
        }
        (Ok(_), Ok(_)) => {}
        (a, b) => problems.push(format!("metrics.jsonl: {:?} / {:?}", a.err(), b.err())),
    }
    problems
}

/// What a finished killed run (or study) holds that the uninterrupted one does not: the
/// temporary file of an interrupted write, an old checkpoint a kill kept from being pruned.
/// Noted, not failed: nothing reads them.
fn leftovers(expected: &Path, found: &Path) -> Vec<String> {
    let ours = files_under(expected);
    let shown: BTreeSet<String> = files_under(found)
        .into_keys()
        .filter(|relative| !ours.contains_key(relative) && !relative.ends_with(".lock"))
        .map(|relative| {
            // A whole checkpoint folder once, not each of its files.
            let parts: Vec<String> = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            match parts.as_slice() {
                [.., checkpoints, folder, _] if checkpoints == "checkpoints" => {
                    format!("{checkpoints}/{folder}/")
                }
                _ => relative.display().to_string(),
            }
        })
        .collect();
    shown.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Pretraining, killed.

/// One method: its name in the table, the arguments of a fresh `pretrain` (without
/// `--out`) and its length.
struct PretrainCase {
    label: String,
    args: Vec<String>,
    steps: u64,
}

impl PretrainCase {
    fn fresh(&self, run: &Path) -> Vec<String> {
        let mut args = self.args.clone();
        args.extend(["--out".to_string(), arg(run)]);
        args
    }
}

/// Settings every case shares: CPU, a checkpoint after every step (two kept), a metrics
/// record after every step, health signals every 4, no k-NN monitor.
fn case(method: &'static str, steps: u64, specific: &[impl AsRef<str>]) -> PretrainCase {
    let mut args = strings(&["pretrain", "--method", method]);
    args.extend(specific.iter().map(|arg| arg.as_ref().to_string()));
    args.extend(strings(&[
        "--steps",
        &steps.to_string(),
        "--seed",
        "5",
        "--device",
        "cpu",
        "--set",
        "health.knn_every=0",
        "--set",
        "health.every=4",
        "--set",
        "train.checkpoint_every=1",
        "--set",
        "train.log_every=1",
    ]));
    PretrainCase {
        label: method.to_string(),
        args,
        steps,
    }
}

/// The five methods, or a note saying why one is skipped (../shared/data absent).
fn cases(data: &Path) -> Vec<Result<PretrainCase, String>> {
    let embedded = ["--data", "embedded", "--batch-size", "16"];
    // BERT MLM twice: with the WordPiece tokenizer each run trains (what a user gets), and
    // with one tokenizer file trained once and given to both runs, which keeps tokenizer
    // training out of the comparison.
    let text = match (
        austen_slice("austen_train.tsv", 300, data),
        austen_slice("austen_test.tsv", 120, data),
    ) {
        (Some(train), Some(test)) => {
            let tokenizer = data.join("wordpiece.json");
            let trained = Command::new(binary())
                .args([
                    "tokenizer",
                    "train",
                    "--kind",
                    "wordpiece",
                    "--vocab-size",
                    "600",
                ])
                .args(["--corpus", &arg(&train), "--out", &arg(&tokenizer)])
                .output()
                .unwrap();
            assert!(trained.status.success(), "{trained:?}");
            let bert = |tokenizer: &str| {
                let mut specific = small_text_run(&train, &test, tokenizer);
                specific.extend(strings(&[
                    "--batch-size",
                    "8",
                    "--set",
                    "health.held_out_every=6",
                ]));
                case("bert-mlm", 24, &specific)
            };
            let given = PretrainCase {
                label: "bert-mlm, given tokenizer".into(),
                ..bert(&arg(&tokenizer))
            };
            vec![Ok(bert("wordpiece")), Ok(given)]
        }
        _ => vec![Err("skipped: ../shared/data/text/austen is absent".into())],
    };
    let table = match shared_data("tabular/letter_recognition.csv") {
        Some(letters) => {
            let text = std::fs::read_to_string(letters).unwrap();
            let path = data.join("letters.csv");
            let rows: Vec<&str> = text.lines().take(1001).collect();
            std::fs::write(&path, rows.join("\n") + "\n").unwrap();
            Ok(case(
                "vime",
                24,
                &[
                    "--backbone",
                    "mlp",
                    "--data",
                    &arg(&path),
                    "--batch-size",
                    "64",
                ],
            ))
        }
        None => Err("skipped: ../shared/data/tabular/letter_recognition.csv is absent".into()),
    };
    let mut cases = vec![
        Ok(case("simclr", 24, &embedded)),
        Ok(case("moco", 24, &embedded)),
        Ok(case("dino", 12, &embedded)),
    ];
    cases.extend(text);
    cases.push(table);
    cases
}

/// The uninterrupted run (pretraining into `run`, `steps` steps), timed.
fn reference_run(args: &[String], run: &Path, log: &Path, steps: u64) -> Result<Timing, String> {
    let started = Instant::now();
    let mut child = spawn(args, log);
    let (mut first, mut last) = (None, None);
    let last_checkpoint = run.join("checkpoints").join(format!("step-{steps}"));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if first.is_none() && has_checkpoint(run) {
            first = Some(started.elapsed().as_secs_f64());
        }
        if last.is_none() && last_checkpoint.exists() {
            last = Some(started.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let total = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!(
            "the uninterrupted run failed ({status}):\n{}",
            log_text(log)
        ));
    }
    let startup = first.unwrap_or(total);
    let last = last.unwrap_or(total).max(startup);
    Ok(Timing {
        startup,
        per_step: (last - startup).max(0.01) / steps.saturating_sub(1).max(1) as f64,
        tail: total - last,
        pace: 1.0,
    })
}

fn has_checkpoint(run: &Path) -> bool {
    std::fs::read_dir(run.join("checkpoints")).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|entry| entry.file_name().to_string_lossy().starts_with("step-"))
    })
}

/// One method's campaign: the uninterrupted run, then killed runs until `kills` kills landed.
fn kill_pretraining(
    case: &PretrainCase,
    kills: u64,
    rng: &mut ChaCha8Rng,
    dir: &Path,
    row: &mut Row,
) -> Result<(), String> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let reference = dir.join("uninterrupted");
    let mut timing = reference_run(
        &case.fresh(&reference),
        &reference,
        &logs.join("uninterrupted.log"),
        case.steps,
    )?;
    let mut launches = 0;
    while row.kills < kills || row.runs == 0 {
        let run = dir.join(format!("killed-{}", row.runs + 1));
        let checkpoints = run.join("checkpoints");
        let mut args = case.fresh(&run);
        let mut newest: Option<u64> = None;
        loop {
            launches += 1;
            let log = logs.join(format!("{launches}.log"));
            let since = SystemTime::now();
            let child = spawn(&args, &log);
            let fate = if row.kills == kills {
                Fate::Exited(child.wait_with_output().unwrap().status)
            } else {
                let remaining = case.steps - newest.unwrap_or(0);
                let left = (remaining, 1.0, kills - row.kills);
                timing.kill(rng, child, left, &checkpoints, since)
            };
            if let Some(step) = newest.filter(|_| args.contains(&"--resume".to_string())) {
                check_resumed_from(&log, step)?;
            }
            match fate {
                Fate::Exited(status) if status.success() => break,
                Fate::Exited(status) => {
                    return Err(format!(
                        "`pretext {}` failed ({status}):\n{}",
                        args.join(" "),
                        log_text(&log)
                    ))
                }
                Fate::Killed => {}
            }
            let seconds = since.elapsed().unwrap_or_default().as_secs_f64();
            let mid_write = !fresh_partials(&checkpoints, since).is_empty();
            newest = check_newest_checkpoint(&run, newest)
                .map_err(|error| format!("after kill {}: {error}", row.kills + 1))?;
            row.count(mid_write, newest, seconds);
            match newest {
                Some(step) if step >= case.steps => break,
                Some(_) => {
                    args = strings(&["pretrain", "--resume", &arg(&run), "--device", "cpu"]);
                    row.resumes += 1;
                }
                None => {
                    check_resume_refused(&run, &logs.join(format!("{launches}-resume.log")))?;
                    args = case.fresh(&run);
                    args.push("--overwrite".into());
                    row.restarts += 1;
                }
            }
        }
        row.finish_run(compare_runs(&reference, &run, case.steps), &reference, &run);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A study, killed.

const STUDY_STEPS: u64 = 16;

/// A small study: SimCLR checkpointing every step, every evaluation, three baselines, two
/// budgets, one seed.
fn study_file(dir: &Path) -> PathBuf {
    let data = embedded_slice(dir, 600, 200);
    let study = dir.join("study.toml");
    std::fs::write(
        &study,
        format!(
            "title = \"kill harness\"\nlabels = [\"10%\", \"30%\"]\nseeds = [0]\n\
             baselines = [\"raw\", \"pca\", \"scratch\"]\n\
             [pretrain]\ndata.path = {:?}\ntrain.steps = {STUDY_STEPS}\ntrain.batch_size = 32\n\
             train.checkpoint_every = 1\nhealth.knn_every = 0\n\
             [finetune]\nepochs = 1\n",
            arg(&data)
        ),
    )
    .unwrap();
    study
}

fn cell_files(out: &Path) -> Vec<PathBuf> {
    files_under(&out.join("cells"))
        .into_values()
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect()
}

/// `text` without the lines (JSON) or the last column (CSV) that hold seconds.
fn without_seconds(relative: &Path, bytes: Vec<u8>) -> Vec<u8> {
    let name = relative.to_string_lossy();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = if name.ends_with(".json") {
        text.lines()
            .filter(|line| !line.trim_start().starts_with("\"seconds\":"))
            .collect()
    } else if name == "cells.csv" {
        text.lines()
            .map(|line| line.rsplit_once(',').map_or(line, |(kept, _)| kept))
            .collect()
    } else {
        return bytes;
    };
    lines.join("\n").into_bytes()
}

/// Compares a finished killed study with the uninterrupted one.
fn compare_studies(expected: &Path, found: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for name in [
        "study.toml",
        "results.md",
        "results.csv",
        "cells.csv",
        "results.json",
        "accuracy.svg",
        "accuracy.png",
    ] {
        let (a, b) = (expected.join(name), found.join(name));
        match (std::fs::read(&a), std::fs::read(&b)) {
            (Ok(x), Ok(y)) => {
                let relative = Path::new(name);
                if without_seconds(relative, x) != without_seconds(relative, y) {
                    problems.push(format!("{name} differs: {}", describe_difference(&a, &b)));
                }
            }
            _ => problems.push(format!("{name} is missing")),
        }
    }
    let cells = Path::new("cells");
    compare_files(
        &expected.join(cells),
        &found.join(cells),
        &without_seconds,
        &mut problems,
    );
    let run = Path::new("runs").join("simclr");
    problems.extend(compare_runs(
        &expected.join(&run),
        &found.join(&run),
        STUDY_STEPS,
    ));
    problems
}

/// The study's campaign: an uninterrupted study, then killed ones until `kills` kills landed.
fn kill_study(kills: u64, rng: &mut ChaCha8Rng, dir: &Path, row: &mut Row) -> Result<(), String> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let study = study_file(dir);
    let command = |out: &Path| {
        strings(&[
            "study",
            "--config",
            &arg(&study),
            "--out",
            &arg(out),
            "--device",
            "cpu",
        ])
    };
    let reference = dir.join("uninterrupted");
    let reference_run_dir = reference.join("runs").join("simclr");
    let mut timing = reference_run(
        &command(&reference),
        &reference_run_dir,
        &logs.join("uninterrupted.log"),
        STUDY_STEPS,
    )?;
    let cells_total = cell_files(&reference).len().max(1) as f64;
    let mut launches = 0;
    while row.kills < kills || row.runs == 0 {
        let out = dir.join(format!("killed-{}", row.runs + 1));
        let run = out.join("runs").join("simclr");
        let checkpoints = run.join("checkpoints");
        let mut newest: Option<u64> = None;
        loop {
            launches += 1;
            let log = logs.join(format!("{launches}.log"));
            let since = SystemTime::now();
            let child = spawn(&command(&out), &log);
            let fate = if row.kills == kills {
                Fate::Exited(child.wait_with_output().unwrap().status)
            } else {
                let steps_left = STUDY_STEPS - newest.unwrap_or(0);
                let cells_left = 1.0 - cell_files(&out).len() as f64 / cells_total;
                let left = (steps_left, cells_left, kills - row.kills);
                timing.kill(rng, child, left, &checkpoints, since)
            };
            if let Some(step) = newest.filter(|&step| step < STUDY_STEPS) {
                check_resumed_from(&log, step)?;
            }
            match fate {
                Fate::Exited(status) if status.success() => break,
                Fate::Exited(status) => {
                    return Err(format!("the study failed ({status}):\n{}", log_text(&log)))
                }
                Fate::Killed => {}
            }
            let seconds = since.elapsed().unwrap_or_default().as_secs_f64();
            let mid_write = !fresh_partials(&checkpoints, since).is_empty();
            if run.join("config.toml").exists() {
                newest = check_newest_checkpoint(&run, newest)
                    .map_err(|error| format!("after study kill {}: {error}", row.kills + 1))?;
            }
            for cell in cell_files(&out) {
                let text = std::fs::read_to_string(&cell).unwrap();
                serde_json::from_str::<Value>(&text)
                    .map_err(|error| format!("{}: {error}", cell.display()))?;
            }
            if newest == Some(STUDY_STEPS) && !mid_write {
                row.in_evaluation += 1;
            }
            row.count(mid_write, newest, seconds);
            row.resumes += 1;
        }
        row.finish_run(compare_studies(&reference, &out), &reference, &out);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The campaign.

fn print_table(rows: &[Row], seed: u64, kills: u64, study_kills: u64) {
    eprintln!(
        "\nkill harness: seed {seed}, {kills} kills per method, {study_kills} of the study\n\
         | what | kills | mid-write | before 1st checkpoint | between writes | resumes | restarts | runs | final bytes equal | seconds |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    for row in rows {
        let equal = match (row.runs, row.unequal_runs) {
            (0, _) => "-".to_string(),
            (_, 0) => "yes".to_string(),
            (runs, unequal) => format!("NO ({unequal} of {runs} runs)"),
        };
        let between = if row.in_evaluation > 0 {
            format!("{} ({} in evaluation)", row.between, row.in_evaluation)
        } else {
            row.between.to_string()
        };
        eprintln!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            row.what,
            row.kills,
            row.mid_write,
            row.before_first,
            between,
            row.resumes,
            row.restarts,
            row.runs,
            equal,
            row.seconds
        );
    }
    for row in rows {
        for note in &row.notes {
            eprintln!("{}: {note}", row.what);
        }
        if let Some(failure) = &row.failure {
            eprintln!("{}: FAILED: {failure}", row.what);
        }
    }
}

/// Every method and a study, killed anywhere many times, resume to exactly the run that was
/// never interrupted; no kill leaves the newest checkpoint unloadable.
#[test]
fn runs_and_a_study_killed_anywhere_resume_bit_for_bit() {
    let kills = env_number("PRETEXT_KILLS", 2);
    let study_kills = env_number("PRETEXT_STUDY_KILLS", kills.div_ceil(4).max(1));
    let seed = env_number("PRETEXT_KILL_SEED", 2024);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut rows = Vec::new();
    // Each campaign: a row, with the first failure that stopped it (a difference of the
    // finished run does not stop it).
    let mut campaign =
        |what: &str,
         index: u64,
         work: &dyn Fn(&mut ChaCha8Rng, &Path, &mut Row) -> Result<(), String>| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(index));
            let mut row = Row {
                what: what.to_string(),
                ..Row::default()
            };
            let started = Instant::now();
            let folder = dir.path().join(format!("case-{index}"));
            std::fs::create_dir(&folder).unwrap();
            if let Err(failure) = work(&mut rng, &folder, &mut row) {
                row.failure = Some(match row.failure.take() {
                    Some(earlier) => format!("{earlier}\n{failure}"),
                    None => failure,
                });
            }
            row.seconds = started.elapsed().as_secs_f64();
            rows.push(row);
        };
    for (index, case) in cases(&data).into_iter().enumerate() {
        match case {
            Ok(case) => campaign(&case.label, index as u64, &|rng, folder, row| {
                kill_pretraining(&case, kills, rng, folder, row)
            }),
            Err(note) => eprintln!("{note}"),
        }
    }
    campaign("study", 99, &|rng, folder, row| {
        kill_study(study_kills, rng, folder, row)
    });

    print_table(&rows, seed, kills, study_kills);
    eprintln!("total {:.0} s", started.elapsed().as_secs_f64());
    let failed: Vec<&str> = rows
        .iter()
        .filter(|row| row.failure.is_some() || row.runs == 0)
        .map(|row| row.what.as_str())
        .collect();
    if !failed.is_empty() {
        let files = if std::env::var_os("PRETEXT_KILL_KEEP").is_some() {
            format!("files kept in {}", dir.keep().display())
        } else {
            "PRETEXT_KILL_KEEP=1 keeps the runs".into()
        };
        panic!("failed: {failed:?} ({files})");
    }
    for row in &rows {
        let wanted = if row.what == "study" {
            study_kills
        } else {
            kills
        };
        assert_eq!(row.kills, wanted, "{}", row.what);
    }
}

// ---------------------------------------------------------------------------------------------
// A kill while a new run is set up.

/// Starts `args` and kills it the moment `watched` exists; false when the process ended
/// before (the moment was missed).
fn kill_when_exists(args: &[String], watched: &Path, log: &Path) -> bool {
    let mut child = spawn(args, log);
    loop {
        if watched.exists() {
            return matches!(reap(child), Fate::Killed);
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// A kill while a new run is set up — after its data files (table-stats.json, tokenizer.json)
/// are written, while config.toml is written through `.config.toml.tmp` — leaves a folder
/// that starting again takes: `pretrain --overwrite`, and a study run again with its `--out`
/// (which pretrains into `runs/<method>` the same way).
#[test]
fn a_kill_while_a_new_run_is_set_up_leaves_a_folder_that_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = strings(&[
        "--steps",
        "2",
        "--device",
        "cpu",
        "--set",
        "health.knn_every=0",
    ]);
    let run = dir.path().join("run");
    let mut scenarios: Vec<(String, Vec<String>, PathBuf, Vec<String>)> = Vec::new();
    let mut simclr = strings(&["pretrain", "--data", "embedded", "--batch-size", "16"]);
    simclr.extend(tiny.clone());
    simclr.extend(["--out".into(), arg(&run)]);
    let mut again = simclr.clone();
    again.push("--overwrite".into());
    scenarios.push((
        "pretrain simclr, killed writing config.toml".into(),
        simclr,
        run.join(".config.toml.tmp"),
        again,
    ));
    if let Some(letters) = shared_data("tabular/letter_recognition.csv") {
        let text = std::fs::read_to_string(letters).unwrap();
        let table = dir.path().join("letters.csv");
        let rows: Vec<&str> = text.lines().take(1001).collect();
        std::fs::write(&table, rows.join("\n") + "\n").unwrap();
        let mut vime = strings(&["pretrain", "--method", "vime", "--backbone", "mlp"]);
        vime.extend([
            "--data".into(),
            arg(&table),
            "--batch-size".into(),
            "64".into(),
        ]);
        vime.extend(tiny);
        vime.extend(["--out".into(), arg(&run)]);
        let mut again = vime.clone();
        again.push("--overwrite".into());
        scenarios.push((
            "pretrain vime, killed after table-stats.json".into(),
            vime,
            run.join("table-stats.json"),
            again,
        ));
    } else {
        eprintln!("skipped the vime scenario: ../shared/data/tabular is absent");
    }
    let study = dir.path().join("study.toml");
    std::fs::write(
        &study,
        "labels = [\"10%\"]\nseeds = [0]\nevaluations = [\"linear\"]\nbaselines = [\"raw\"]\n\
         [pretrain]\ntrain.steps = 2\ntrain.batch_size = 16\nhealth.knn_every = 0\n",
    )
    .unwrap();
    let out = dir.path().join("study");
    let command = strings(&[
        "study",
        "--config",
        &arg(&study),
        "--out",
        &arg(&out),
        "--device",
        "cpu",
    ]);
    scenarios.push((
        "study, killed writing its run's config.toml".into(),
        command.clone(),
        out.join("runs").join("simclr").join(".config.toml.tmp"),
        command,
    ));

    let log = dir.path().join("log");
    let mut failures = Vec::new();
    for (what, args, watched, again) in scenarios {
        let caught = (0..10).any(|_| {
            let _ = std::fs::remove_dir_all(&run);
            let _ = std::fs::remove_dir_all(&out);
            kill_when_exists(&args, &watched, &log)
        });
        if !caught {
            eprintln!("{what}: the moment was missed 10 times; nothing checked");
            continue;
        }
        let status = spawn(&again, &log).wait().unwrap();
        if !status.success() {
            failures.push(format!(
                "{what}: `pretext {}` fails:\n{}",
                again.join(" "),
                log_text(&log)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
