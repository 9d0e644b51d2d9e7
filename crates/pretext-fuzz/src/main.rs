//! `pretext-fuzz`: runs fuzz campaigns against pretext's data readers.
//!
//!     cargo run --release -p pretext-fuzz -- --target wav --inputs 1000000 --seed 1
//!     cargo run --release -p pretext-fuzz -- --make-corpus ../shared/data
//!
//! Prints one summary line per target; exits with status 1 when an input panicked or hung
//! (the minimal input is saved under the findings folder and its path printed).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use pretext_fuzz::target::scratch_dir;
use pretext_fuzz::{default_corpus_dir, load_seeds, target_by_name, Campaign, Report, TARGETS};

#[derive(Parser)]
#[command(about = "Fuzz pretext's data readers with seeded byte mutations of real files")]
struct Args {
    /// The reader to fuzz (see --list), or "all" for every one in turn.
    #[arg(long, default_value = "all")]
    target: String,
    /// Inputs per target.
    #[arg(long, default_value_t = 10_000)]
    inputs: u32,
    /// Seed of the mutations: the same seed runs the same inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder of seed files, one subfolder per target [default: the crate's corpus/].
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Where panicking and hanging inputs are saved, one subfolder per target.
    #[arg(long, default_value = "target/pretext-fuzz/findings")]
    findings: PathBuf,
    /// Save each panic or hang as found and go on, instead of stopping to shrink the first.
    #[arg(long)]
    keep_going: bool,
    /// An input taking longer than this many seconds, twice, is a hang.
    #[arg(long, default_value_t = pretext_fuzz::campaign::HANG_SECONDS)]
    hang_seconds: f64,
    /// Print the N most frequent error messages of each target.
    #[arg(long, default_value_t = 0, value_name = "N")]
    show_errors: usize,
    /// List the targets and exit.
    #[arg(long)]
    list: bool,
    /// Run --target once on each of these files, print what happened and exit.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    replay: Vec<PathBuf>,
    /// Write the seed corpus from this copy of the shared data folder (../shared/data)
    /// into --corpus, and exit.
    #[arg(long, value_name = "SHARED_DATA")]
    make_corpus: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let corpus = args.corpus.clone().unwrap_or_else(default_corpus_dir);
    if args.list {
        for target in TARGETS {
            println!("{:<12} {}", target.name, target.reader);
        }
        return Ok(());
    }
    if let Some(shared) = &args.make_corpus {
        let written = pretext_fuzz::make_corpus(shared, &corpus)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("making the corpus from {}", shared.display()))?;
        let bytes: u64 = written
            .iter()
            .filter_map(|path| std::fs::metadata(path).ok())
            .map(|metadata| metadata.len())
            .sum();
        println!(
            "wrote {} files ({bytes} bytes) under {}",
            written.len(),
            corpus.display()
        );
        return Ok(());
    }
    let targets: Vec<_> = if args.target == "all" {
        TARGETS.iter().collect()
    } else {
        match target_by_name(&args.target) {
            Some(target) => vec![target],
            None => bail!(
                "unknown target {:?}; expected \"all\" or one of: {}",
                args.target,
                TARGETS
                    .iter()
                    .map(|target| target.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    if !args.replay.is_empty() {
        let [target] = targets[..] else {
            bail!("--replay needs one --target");
        };
        for file in &args.replay {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let (outcome, elapsed) = pretext_fuzz::run_guarded(target, &bytes);
            println!(
                "{}: {:.3} s: {outcome:?}",
                file.display(),
                elapsed.as_secs_f64()
            );
        }
        return Ok(());
    }
    let mut failed = false;
    for target in targets {
        let seeds = load_seeds(&corpus, target.name).map_err(anyhow::Error::msg)?;
        // A crash that ends the process (abort, stack overflow) leaves its input here.
        let last_input = scratch_dir().join(format!(
            "{}-last-input-{}.bin",
            target.name,
            std::process::id()
        ));
        eprintln!(
            "{}: {} inputs from {} seeds, seed {}; if the process dies, its input is {}",
            target.name,
            args.inputs,
            seeds.len(),
            args.seed,
            last_input.display()
        );
        let campaign = Campaign {
            target,
            seeds: &seeds,
            inputs: args.inputs,
            seed: args.seed,
            findings_dir: args.findings.clone(),
            keep_going: args.keep_going,
            hang_seconds: args.hang_seconds,
            last_input: Some(last_input.clone()),
        };
        let progress = Progress::new(target.name, u64::from(args.inputs));
        let report = pretext_fuzz::run(&campaign, &|done| progress.update(done))
            .map_err(anyhow::Error::msg)?;
        progress.finish();
        let _ = std::fs::remove_file(&last_input);
        print_report(&report, args.show_errors);
        failed |= !report.findings.is_empty();
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

fn print_report(report: &Report, show_errors: usize) {
    println!("{}", report.summary());
    for (message, count) in report.top_errors(show_errors) {
        println!("  {count:>9}  {message}");
    }
    for finding in &report.findings {
        println!(
            "  {} saved to {}\n    {}\n    from {}",
            finding.kind,
            finding.input.display(),
            finding.message,
            finding.recipe
        );
    }
}

/// A bar on a terminal; a line every 10% otherwise (logs).
struct Progress {
    bar: Option<ProgressBar>,
    name: &'static str,
    total: u64,
    started: Instant,
}

impl Progress {
    fn new(name: &'static str, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta}",
                )
                .expect("the template is valid"),
            );
            bar.set_prefix(name);
            bar
        });
        Progress {
            bar,
            name,
            total,
            started: Instant::now(),
        }
    }

    fn update(&self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let tenth = (self.total / 10).max(256);
                if done % tenth < 256 {
                    let seconds = self.started.elapsed().as_secs_f64();
                    eprintln!(
                        "{}: {done}/{} inputs ({seconds:.0} s, {:.0}/s)",
                        self.name,
                        self.total,
                        done as f64 / seconds.max(1e-9)
                    );
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
