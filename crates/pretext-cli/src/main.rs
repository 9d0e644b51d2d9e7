//! `pretext`: self-supervised pretraining, health checks and transfer from the command line.

mod allocator;
mod args;
mod attention;
mod bench;
mod cuda;
mod embed;
mod finetune;
mod generate;
mod health;
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
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pretrain(args) => pretrain::run(&args),
        Command::Probe(args) => probe::run(&args),
        Command::Embed(args) => embed::run(&args),
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
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
