//! `pretext`: self-supervised pretraining, health checks and transfer from the command line.

mod allocator;
mod args;
mod attention;
mod bench;
mod cuda;
mod dist_bench;
mod embed;
mod embed_model;
mod embedding_output;
mod export;
mod finetune;
mod generate;
mod health;
mod large_bench;
mod layered_config;
mod method_bench;
mod picture;
mod pretrain;
mod probe;
mod progress;
mod quickstart;
mod reconstruct;
mod run_data;
mod study;
mod text_bench;
mod tokenizer_cmd;

use clap::Parser;

use crate::args::{Cli, Command, TokenizerCommand};

fn main() -> std::process::ExitCode {
    allocator::tune_for_training();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    if !matches!(cli.command, Command::Pretrain(_) | Command::Study(_)) {
        if let Err(error) = one_process_only(&cli.command) {
            return report(Err(error));
        }
    }
    let result = match cli.command {
        Command::Pretrain(args) => pretrain::run(&args),
        Command::Probe(args) => probe::run(&args),
        Command::Embed(args) => embed::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Finetune(args) => finetune::run(&args),
        Command::Health(args) => health::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Tokenizer(TokenizerCommand::Train(args)) => tokenizer_cmd::train(&args),
        Command::Quickstart(args) => quickstart::run(&args),
        Command::Study(args) => study::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Reconstruct(args) => reconstruct::run(&args),
        Command::Attention(args) => attention::run(&args),
    };
    report(result)
}

/// Every command but `pretrain`, `finetune` and `study` runs as one process: launched by
/// torchrun or SLURM with several, each would do all the work and write the same files, so it
/// is refused.
fn one_process_only(command: &Command) -> anyhow::Result<()> {
    if let Some(launch) = pretext_train::parallel::launch()? {
        let name = match command {
            // One of the processes `pretext bench --allreduce` starts.
            Command::Bench(args) if args.allreduce_worker => return Ok(()),
            Command::Probe(_) => "probe",
            Command::Embed(_) => "embed",
            Command::Export(_) => "export",
            Command::Health(_) => "health",
            Command::Generate(_) => "generate",
            Command::Tokenizer(_) => "tokenizer",
            Command::Quickstart(_) => "quickstart",
            Command::Bench(_) => "bench",
            Command::Reconstruct(_) => "reconstruct",
            Command::Attention(_) => "attention",
            Command::Pretrain(_) | Command::Finetune(_) | Command::Study(_) => return Ok(()),
        };
        anyhow::bail!(
            "`pretext {name}` runs as one process, and this one is rank {} of {} (WORLD_SIZE or SLURM_NTASKS is set); only `pretext pretrain`, `pretext finetune` and `pretext study` share their work among processes — run {name} without torchrun or srun",
            launch.rank,
            launch.world_size
        );
    }
    Ok(())
}

/// Help and version requests print as clap prints them; a wrong argument is an error like
/// any other: one line, `error: ...`, exit code 1.
fn usage_error(error: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if !error.use_stderr() || error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        error.exit();
    }
    // clap's first paragraph names the problem (and, indented below it, the missing
    // arguments); its tips and usage follow after a blank line.
    let text = error.to_string();
    let problem: Vec<&str> = text
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let problem = problem.join(" ");
    let problem = problem.trim_start_matches("error: ");
    report(Err(anyhow::anyhow!("{problem} (see --help)")))
}

fn report(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let message = one_line(&format!("{error:#}"));
            eprintln!("error: {message}");
            // Several processes: the others learn why this one stops. Its own failure, not
            // a collective's that another process broke (a TrainError::Distributed, which
            // wrapping errors may show only through its text).
            let own = !error.chain().any(|cause| {
                matches!(
                    cause.downcast_ref::<pretext_train::TrainError>(),
                    Some(pretext_train::TrainError::Distributed(_))
                )
            }) && !message.contains(pretext_train::parallel::DISTRIBUTED_PREFIX);
            pretext_train::parallel::report_failure(&message, own);
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error message on one line: a TOML parse error's source excerpt (`1 | labels = [`
/// and the caret line under it) is dropped, and its other lines are joined with ": ".
fn one_line(message: &str) -> String {
    let excerpt = |line: &str| {
        let line = line.trim_start();
        line.starts_with('|')
            || line
                .split_once(" |")
                .is_some_and(|(number, _)| number.chars().all(|c| c.is_ascii_digit()))
    };
    message
        .lines()
        .filter(|line| !line.trim().is_empty() && !excerpt(line))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(": ")
}
