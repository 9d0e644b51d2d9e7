//! Data parallelism on PyTorch's c10d, checked as a user would launch it: two `pretext`
//! processes with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
//! MASTER_PORT), Gloo on the CPU, one libtorch thread each. With the same global batch, two
//! processes train what one does: the same loss at every step, the same weights after a
//! step (to float rounding; Adam then amplifies rounding in parameters whose gradient is
//! pure rounding noise, such as biases before batch norm), MoCo's queue and DINO's center
//! kept equal on both ranks and to the single process's. Only rank 0 writes and prints.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tch::{Kind, Tensor};

fn pretext() -> Command {
    outside_any_launch(Command::new(env!("CARGO_BIN_EXE_pretext")))
}

/// `command` with one libtorch thread and none of a launcher's variables (the test itself
/// may run under one).
fn outside_any_launch(mut command: Command) -> Command {
    command.env("OMP_NUM_THREADS", "1");
    for variable in [
        "RANK",
        "WORLD_SIZE",
        "LOCAL_RANK",
        "MASTER_ADDR",
        "MASTER_PORT",
    ] {
        command.env_remove(variable);
    }
    command
}

/// A TCP port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `pretext ARGS` as `world` processes of one launch; their outputs in rank order.
fn launch(world: usize, args: &[&str]) -> Vec<Output> {
    spawn(world, args)
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect()
}

/// The processes of one launch of `pretext ARGS`, started.
fn spawn(world: usize, args: &[&str]) -> Vec<std::process::Child> {
    spawn_each(world, args, |_, command| command)
}

/// [`spawn`], with each rank's command adjusted by `adjust(rank, command)` last (it may
/// replace the variables set here).
fn spawn_each(
    world: usize,
    args: &[&str],
    adjust: impl Fn(usize, &mut Command) -> &mut Command,
) -> Vec<std::process::Child> {
    let port = free_port().to_string();
    (0..world)
        .map(|rank| {
            let mut command = pretext();
            command
                .args(args)
                .env("RANK", rank.to_string())
                .env("WORLD_SIZE", world.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .env("PRETEXT_DIST_TIMEOUT_S", "120")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            adjust(rank, &mut command).spawn().unwrap()
        })
        .collect()
}

/// Every process of a launch exited 0; else how each ended (exit code or signal) and what
/// each printed on stderr.
fn assert_every_rank_succeeded(outputs: &[Output]) {
    if outputs.iter().all(|output| output.status.success()) {
        return;
    }
    let ended: Vec<String> = outputs
        .iter()
        .enumerate()
        .map(|(rank, output)| {
            format!(
                "rank {rank} ended with {}:\n{}",
                output.status,
                text(&output.stderr)
            )
        })
        .collect();
    panic!("{}", ended.join("\n"));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// 20 steps of `method` with global batch 64 on 512 embedded images, a checkpoint after
/// every step.
fn run_args(method: &str, data: &Path, out: &Path) -> Vec<String> {
    [
        "pretrain",
        "--method",
        method,
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--steps",
        "20",
        "--batch-size",
        "64",
        "--workers",
        "1",
        "--set",
        "train.log_every=1",
        "--set",
        "train.checkpoint_every=1",
        "--set",
        "train.keep_checkpoints=30",
        "--set",
        "health.knn_every=0",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect()
}

fn losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["loss"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

fn tensors(run: &Path, step: u64, file: &str) -> Vec<(String, Tensor)> {
    let path = run.join(format!("checkpoints/step-{step}/{file}.safetensors"));
    let mut named = Tensor::read_safetensors(&path).unwrap();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// Whether `name` is the bias of a layer that feeds a batch norm (`…conv2.bias` beside
/// `…bn2.weight`, `…fc0.bias` beside `…bn0.weight`): the norm subtracts it again, so its
/// gradient is zero up to rounding, and Adam's first step (±lr whatever the gradient's size)
/// turns that rounding into its sign.
fn feeds_batch_norm(name: &str, all: &[(String, Tensor)]) -> bool {
    let Some(layer) = name.strip_suffix(".bias") else {
        return false;
    };
    let (prefix, last) = layer.rsplit_once('.').unwrap_or(("", layer));
    let index = last.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let norm = format!("{prefix}.bn{index}.weight");
    (last.starts_with("conv") || last.starts_with("fc"))
        && all.iter().any(|(other, _)| *other == norm)
}

/// The largest difference between two checkpoints' float tensors, as the L2 norm of the
/// difference relative to the tensor's (at least 0.01), and the tensor it is in; biases that
/// feed a batch norm are left out (see [`feeds_batch_norm`]). A norm, not the largest
/// element: Adam's first step moves every element by ±lr, so an element whose gradient is
/// near zero can move either way.
fn largest_difference(one: &[(String, Tensor)], other: &[(String, Tensor)]) -> (f64, String) {
    assert_eq!(one.len(), other.len());
    one.iter()
        .zip(other)
        .filter(|((name, a), _)| a.is_floating_point() && !feeds_batch_norm(name, one))
        .map(|((name, a), (other_name, b))| {
            assert_eq!(name, other_name);
            let gap = (a - b).norm().double_value(&[]);
            let scale = a.norm().double_value(&[]).max(1e-2);
            (gap / scale, name.clone())
        })
        .fold((0.0, String::new()), |worst, next| {
            if next.0 > worst.0 {
                next
            } else {
                worst
            }
        })
}

/// Trains `method` (with `extra` arguments) alone and as two processes, checks that the
/// loss of every step and the weights after one step agree, and returns both runs.
fn compare(method: &str, dir: &Path, data: &Path, extra: &[&str]) -> (PathBuf, PathBuf) {
    let single = dir.join(format!("{method}-1"));
    let double = dir.join(format!("{method}-2"));
    let mut args = run_args(method, data, &single);
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let output = pretext().args(&args).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut args = run_args(method, data, &double);
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outputs = launch(2, &args);
    assert_every_rank_succeeded(&outputs);
    // Rank 0 prints; rank 1 says nothing.
    assert!(text(&outputs[0].stderr).contains("data parallel: 2 processes"));
    assert!(text(&outputs[0].stderr).contains("done: 20 steps"));
    assert_eq!(text(&outputs[1].stderr), "", "rank 1 printed");

    let (one, two) = (losses(&single), losses(&double));
    assert_eq!(one.len(), 20);
    for (step, (a, b)) in one.iter().zip(&two).enumerate() {
        let gap = (a - b).abs() / a.abs();
        eprintln!(
            "{method} step {}: loss {a:.6} vs {b:.6} ({gap:.1e})",
            step + 1
        );
        assert!(gap < 1e-4, "{method} step {}: {a} vs {b}", step + 1);
    }
    for file in ["weights", "method_state"] {
        let (gap, name) =
            largest_difference(&tensors(&single, 1, file), &tensors(&double, 1, file));
        eprintln!("{method} after 1 step, {file}: largest difference {gap:.1e} ({name})");
        assert!(gap < 1e-4, "{method} {file} after 1 step: {gap} in {name}");
    }
    (single, double)
}

#[test]
fn two_processes_train_simclr_moco_and_dino_as_one_does_with_the_same_global_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::embedded_slice(dir.path(), 512, 64);
    compare("simclr", dir.path(), &data, &[]);
    let (single, double) = compare("moco", dir.path(), &data, &[]);
    let queue = |run: &Path| {
        tensors(run, 20, "method_state")
            .into_iter()
            .find(|(name, _)| name.contains("queue") && name.ends_with("keys"))
            .unwrap()
            .1
    };
    let gap = (queue(&single) - queue(&double))
        .abs()
        .max()
        .double_value(&[]);
    eprintln!("moco queue after 20 steps: largest difference {gap:.1e}");
    assert!(gap < 1e-2, "{gap}");
    let (single, double) = compare("dino", dir.path(), &data, &[]);
    let center = |run: &Path| {
        tensors(run, 20, "method_state")
            .into_iter()
            .find(|(name, _)| name.contains("center"))
            .unwrap()
            .1
    };
    let gap = (center(&single) - center(&double))
        .abs()
        .max()
        .double_value(&[]);
    let scale = center(&single).abs().max().double_value(&[]);
    eprintln!("dino center after 20 steps: largest difference {gap:.1e} of {scale:.1e}");
    assert!(gap < 1e-2 * scale, "{gap} of {scale}");
}

/// The L2 norm of the difference between two checkpoints' float tensors taken together,
/// relative to the first's: every tensor counts, batch norms' inputs' biases included.
fn overall_difference(one: &[(String, Tensor)], other: &[(String, Tensor)]) -> f64 {
    let (mut gap, mut scale) = (0.0, 0.0);
    for ((name, a), (other_name, b)) in one.iter().zip(other) {
        assert_eq!(name, other_name);
        if a.is_floating_point() {
            gap += (a - b).square().sum(Kind::Double).double_value(&[]);
            scale += a.square().sum(Kind::Double).double_value(&[]);
        }
    }
    (gap / scale).sqrt()
}

/// Final weights within 1e-4 of one process's after 20 steps. With SGD: AdamW's early steps
/// move every weight by about ±lr whatever its gradient's size, so where a gradient is near
/// zero its rounding picks the direction, and two float32 runs that sum in different orders
/// drift apart (about 1.5e-3 after 20 steps at the default lr, against 2.7e-5 here). SGD
/// moves each weight in proportion to its gradient, so it also shows a gradient averaged
/// with the wrong scale, which Adam's normalization would hide.
#[test]
fn two_processes_reach_the_final_weights_of_one_with_sgd() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::embedded_slice(dir.path(), 512, 64);
    let sgd = [
        "--set",
        "optimizer.kind=\"sgd\"",
        "--set",
        "optimizer.lr=0.02",
    ];
    let (single, double) = compare("simclr", dir.path(), &data, &sgd);
    let gap = overall_difference(
        &tensors(&single, 20, "weights"),
        &tensors(&double, 20, "weights"),
    );
    eprintln!("simclr with SGD after 20 steps: weights differ by {gap:.1e} (relative L2)");
    assert!(gap < 1e-4, "{gap}");
}

/// The global batch must split evenly: both processes refuse with the same clear error
/// before any training, and no run folder is left.
#[test]
fn a_global_batch_that_does_not_split_evenly_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let outputs = launch(
        2,
        &[
            "pretrain",
            "--steps",
            "2",
            "--batch-size",
            "63",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    for (rank, output) in outputs.iter().enumerate() {
        assert!(!output.status.success(), "rank {rank} succeeded");
    }
    let message = text(&outputs[0].stderr);
    assert!(
        message.contains("train.batch_size") && message.contains("multiple of the 2 processes"),
        "{message}"
    );
}

/// Two processes in different folders, as on two machines, each reading `--data
/// fashion-slice` there, for 2 steps: `truncated`'s copy is cut in half, so it stops while
/// loading. `adjust` may change each rank's command. How each process ended.
fn one_rank_with_truncated_data(
    truncated: usize,
    adjust: impl Fn(usize, &mut Command) -> &mut Command,
) -> Vec<Output> {
    let dir = tempfile::tempdir().unwrap();
    let machines = [dir.path().join("machine0"), dir.path().join("machine1")];
    for machine in &machines {
        std::fs::create_dir(machine).unwrap();
        common::embedded_slice(machine, 128, 32);
    }
    let cut = machines[truncated].join("fashion-slice/train-images-idx3-ubyte");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.path().join("run");
    let args = [
        "pretrain",
        "--data",
        "fashion-slice",
        "--steps",
        "2",
        "--batch-size",
        "32",
        "--out",
        out.to_str().unwrap(),
    ];
    let outputs: Vec<Output> = spawn_each(2, &args, |rank, command| {
        adjust(rank, command.current_dir(&machines[rank]))
    })
    .into_iter()
    .map(|child| child.wait_with_output().unwrap())
    .collect();
    for (rank, output) in outputs.iter().enumerate() {
        assert!(!output.status.success(), "rank {rank} succeeded");
    }
    outputs
}

/// A failure on one rank stops the others with that rank's message: rank 1's data is
/// truncated. Rank 0, waiting for it in the first collective, stops too and names rank 1's
/// reason rather than only the broken connection; rank 1 also leaves its message in
/// torchelastic's error file, for torchrun's summary.
#[test]
fn a_failure_on_one_rank_stops_the_others_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let error_file = dir.path().join("rank1-error.json");
    let outputs = one_rank_with_truncated_data(1, |rank, command| match rank {
        1 => command.env("TORCHELASTIC_ERROR_FILE", &error_file),
        _ => command,
    });
    let (first, second) = (text(&outputs[0].stderr), text(&outputs[1].stderr));
    assert!(second.contains("train-images-idx3-ubyte"), "{second}");
    assert!(
        first.contains("rank 1 stopped: loading the data: ")
            && first.contains("train-images-idx3-ubyte: truncated")
            && first.contains("(here: rank 0: broadcast failed: "),
        "rank 0 does not name rank 1's reason:\n{first}"
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&error_file).unwrap()).unwrap();
    let message = record["message"].as_str().unwrap();
    assert!(
        message.starts_with("rank 1: ") && message.contains("train-images-idx3-ubyte"),
        "{message}"
    );
    assert!(record["timestamp"].as_u64().unwrap() > 1_700_000_000);
}

/// The same with rank 0's data truncated. Rank 0 hosts the rendezvous store here (plain
/// variables, as under SLURM), which would go with it when it exits: it closes its
/// connections first and keeps the store up until rank 1 has read its reason, so rank 1
/// names rank 0's problem, not only a broken connection or a store that is gone.
#[test]
fn a_failure_on_the_rank_that_hosts_the_store_is_named_by_the_others() {
    let started = std::time::Instant::now();
    let outputs = one_rank_with_truncated_data(0, |_, command| command);
    let (first, second) = (text(&outputs[0].stderr), text(&outputs[1].stderr));
    assert!(
        first.contains("train-images-idx3-ubyte: truncated"),
        "{first}"
    );
    assert!(
        second.contains("rank 0 stopped: ")
            && second.contains("train-images-idx3-ubyte: truncated")
            && second.contains("(here: rank 1: "),
        "rank 1 does not say why rank 0 stopped:\n{second}"
    );
    // Well within the 120 s collective timeout: nobody waited for it.
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

/// A two-process run killed (SIGKILL, both processes) after its step-10 checkpoint and
/// resumed by two processes ends byte for byte as the uninterrupted two-process run; resumed
/// by one process instead, it says the continuation is not bit-identical.
#[test]
fn a_killed_two_process_run_resumes_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::embedded_slice(dir.path(), 512, 64);
    let args = |out: &Path| {
        let mut args = run_args("simclr", &data, out);
        for (flag, value) in [("--steps", "40"), ("--set", "train.checkpoint_every=5")] {
            let at = args.iter().position(|arg| arg == flag).unwrap();
            args[at + 1] = value.to_string();
        }
        args
    };
    let whole = dir.path().join("whole");
    let whole_args = args(&whole);
    let outputs = launch(
        2,
        &whole_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_every_rank_succeeded(&outputs);

    let killed = dir.path().join("killed");
    let killed_args = args(&killed);
    let mut children = spawn(
        2,
        &killed_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let waited = std::time::Instant::now();
    while !killed.join("checkpoints/step-10/meta.json").exists() {
        assert!(waited.elapsed().as_secs() < 120, "no step-10 checkpoint");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for child in &mut children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(
        !killed.join("checkpoints/step-40").exists(),
        "the run ended before the kill"
    );
    let other_world = dir.path().join("other-world");
    copy_folder(&killed, &other_world);

    let resume = ["pretrain", "--resume", killed.to_str().unwrap()];
    let outputs = launch(2, &resume);
    assert_every_rank_succeeded(&outputs);
    for file in ["weights", "method_state", "optimizer"] {
        let path = |run: &Path| run.join(format!("checkpoints/step-40/{file}.safetensors"));
        assert!(
            std::fs::read(path(&whole)).unwrap() == std::fs::read(path(&killed)).unwrap(),
            "{file} differs after the resume"
        );
    }
    assert_eq!(losses(&whole), losses(&killed));

    let output = pretext()
        .args([
            "pretrain",
            "--resume",
            other_world.to_str().unwrap(),
            "--steps",
            "12",
        ])
        .output()
        .unwrap();
    let message = text(&output.stderr);
    assert!(output.status.success(), "{message}");
    assert!(
        message.contains("trained by 2 process(es) and this run has 1")
            && message.contains("not bit-identical"),
        "{message}"
    );
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// torchrun from the project's Python environment (`./x env` puts it on PATH), or None with
/// a note (a failure under `PRETEXT_REQUIRE_DATA=1`, as CI runs).
fn torchrun() -> Option<Command> {
    let found = Command::new("torchrun")
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("PRETEXT_REQUIRE_DATA").is_none(),
            "torchrun is not on PATH (run the tests through ./x test)"
        );
        eprintln!("note: torchrun is not on PATH; skipped");
        return None;
    }
    Some(outside_any_launch(Command::new("torchrun")))
}

/// Launched by torchrun, as users do: two processes on one machine, and two "machines"
/// (two torchrun agents, `--nnodes 2`, different `--node-rank`, one `--rdzv-endpoint`) of
/// one process each, end with the same weights byte for byte.
#[test]
fn torchrun_on_one_machine_and_on_two_simulated_machines_trains_the_same_model() {
    let Some(_) = torchrun() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = common::embedded_slice(dir.path(), 512, 64);
    let binary = env!("CARGO_BIN_EXE_pretext");
    let run = |out: &Path| -> Vec<String> {
        let mut args = vec!["--no-python".to_string(), binary.to_string()];
        args.extend(run_args("simclr", &data, out));
        let at = args.iter().position(|arg| arg == "--steps").unwrap();
        args[at + 1] = "10".into();
        args
    };
    let one = dir.path().join("one-machine");
    // A free port: torchrun's default (29500) may be taken by another launch on the machine.
    let output = torchrun()
        .unwrap()
        .args(["--nproc-per-node", "2", "--master-port"])
        .arg(free_port().to_string())
        .args(run(&one))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));

    let two = dir.path().join("two-machines");
    let endpoint = format!("127.0.0.1:{}", free_port());
    let agents: Vec<_> = (0..2)
        .map(|node| {
            torchrun()
                .unwrap()
                .args([
                    "--nnodes",
                    "2",
                    "--nproc-per-node",
                    "1",
                    "--rdzv-backend",
                    "c10d",
                ])
                .args([
                    "--node-rank",
                    &node.to_string(),
                    "--rdzv-endpoint",
                    &endpoint,
                ])
                .args(run(&two))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for agent in agents {
        let output = agent.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let weights =
        |run: &Path| std::fs::read(run.join("checkpoints/step-10/weights.safetensors")).unwrap();
    assert!(
        weights(&one) == weights(&two),
        "the two launches trained different weights"
    );
    assert_eq!(losses(&one), losses(&two));
}

/// The cell files of a study folder.
fn cell_files(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out.join("cells"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A study file over 1000 training and 300 held-out embedded images with the raw and
/// scratch baselines: `head` before its `[pretrain]` table, `pretrain` inside it.
fn study_file(dir: &Path, head: &str, pretrain: &str) -> PathBuf {
    let data = common::embedded_slice(dir, 1000, 300);
    let study = dir.join("study.toml");
    let text = format!(
        "{head}\nbaselines = [\"raw\", \"scratch\"]\n[pretrain]\ndata.path = {:?}\n\
         data.workers = 1\n{pretrain}\n",
        data.to_str().unwrap()
    );
    std::fs::write(&study, text).unwrap();
    study
}

/// A study launched as two processes pretrains data parallel, spreads its cells over both,
/// and writes one results folder holding the same cells as a one-process study; run again,
/// it reuses every cell.
#[test]
fn a_study_shared_by_two_processes_writes_one_results_folder() {
    let dir = tempfile::tempdir().unwrap();
    let study = study_file(
        dir.path(),
        "labels = [\"5%\", \"20%\"]\nseeds = [0, 1]",
        "train.steps = 12\ntrain.batch_size = 32\nhealth.knn_every = 0\n[finetune]\nepochs = 2",
    );
    let args = |out: &Path| {
        vec![
            "study".to_string(),
            "--config".into(),
            study.to_str().unwrap().into(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ]
    };
    let alone = dir.path().join("alone");
    let output = pretext().args(args(&alone)).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));

    let shared = dir.path().join("shared");
    let shared_args = args(&shared);
    let shared_args: Vec<&str> = shared_args.iter().map(String::as_str).collect();
    let outputs = launch(2, &shared_args);
    assert_every_rank_succeeded(&outputs);
    let said = text(&outputs[0].stderr);
    assert!(said.contains("the 2 processes measured"), "{said}");
    assert_eq!(text(&outputs[1].stderr), "", "rank 1 printed");
    assert_eq!(text(&outputs[1].stdout), "", "rank 1 printed");
    assert!(
        text(&outputs[0].stdout).contains("| scratch"),
        "{}",
        text(&outputs[0].stdout)
    );
    assert!(shared.join("report.html").exists() && shared.join("results.csv").exists());
    assert_eq!(cell_files(&alone), cell_files(&shared));

    let again = launch(2, &shared_args);
    let said = text(&again[0].stderr);
    assert_every_rank_succeeded(&again);
    assert!(said.contains("the 2 processes measured 0 cells"), "{said}");
}

/// Regression: the processes of a study waited for each other's cells in a collective, which
/// gives up after `PRETEXT_DIST_TIMEOUT_S`, so a study whose cells took one process longer
/// than that than the other's stopped at its end ("all_reduce failed: Operation timed
/// out!"). Here one process trains from scratch (cross-validated) while the other probes
/// the raw pixels, with a 2-second collective timeout.
#[test]
fn a_study_waits_for_cells_longer_than_the_collective_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let study = study_file(
        dir.path(),
        "labels = [\"20%\"]\nseeds = [0]\nmethods = []",
        "",
    );
    let out = dir.path().join("study");
    let args = [
        "study",
        "--config",
        study.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let started = std::time::Instant::now();
    let outputs: Vec<Output> = spawn_each(2, &args, |_, command| {
        command.env("PRETEXT_DIST_TIMEOUT_S", "2")
    })
    .into_iter()
    .map(|child| child.wait_with_output().unwrap())
    .collect();
    let took = started.elapsed();
    assert_every_rank_succeeded(&outputs);
    assert!(
        took.as_secs() > 6,
        "the cells took only {took:?}: no wait to test"
    );
    assert_eq!(
        cell_files(&out),
        ["raw-k-nn-20", "raw-lr", "scratch"].map(String::from)
    );
}

/// The JSON report of a fine-tuning: every epoch's mean loss, and the held-out accuracy.
fn finetune_report(path: &Path) -> (Vec<f64>, f64) {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let losses = report["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|epoch| epoch["loss"].as_f64().unwrap())
        .collect();
    (losses, report["test_accuracy"].as_f64().unwrap())
}

/// Fine-tuning launched as two processes trains what one process does with the same batch:
/// each takes its part of every batch (the last batch of an epoch, 11 examples, splits 5/6)
/// and of every accuracy measurement. Only rank 0 prints and writes the report.
#[test]
fn two_processes_fine_tune_as_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::embedded_slice(dir.path(), 512, 400);
    let run = dir.path().join("run");
    let mut args = run_args("simclr", &data, &run);
    args.extend(["--set".into(), "train.checkpoint_every=20".into()]);
    let output = pretext().args(&args).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let finetune = |json: &Path| -> Vec<String> {
        [
            "finetune",
            run.to_str().unwrap(),
            "--labels",
            "171",
            "--epochs",
            "4",
            // Every epoch trains, so that the two trainings are compared epoch by epoch
            // (the probe fallback would cross-validate how many; the study test runs it
            // under two processes).
            "--no-probe-fallback",
            "--json",
            json.to_str().unwrap(),
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect()
    };
    let (one, two) = (dir.path().join("one.json"), dir.path().join("two.json"));
    let output = pretext().args(finetune(&one)).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let args = finetune(&two);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outputs = launch(2, &args);
    assert_every_rank_succeeded(&outputs);
    assert!(text(&outputs[0].stdout).contains("fine-tuned from"));
    assert_eq!(text(&outputs[1].stdout), "", "rank 1 printed");
    assert_eq!(text(&outputs[1].stderr), "", "rank 1 printed");

    let ((one_losses, one_accuracy), (two_losses, two_accuracy)) =
        (finetune_report(&one), finetune_report(&two));
    assert_eq!(one_losses.len(), 4);
    assert_eq!(one_losses.len(), two_losses.len());
    for (epoch, (a, b)) in one_losses.iter().zip(&two_losses).enumerate() {
        let gap = (a - b).abs() / a.abs();
        eprintln!("epoch {}: loss {a:.6} vs {b:.6} ({gap:.1e})", epoch + 1);
        assert!(gap < 1e-3, "epoch {}: {a} vs {b}", epoch + 1);
    }
    eprintln!("held-out accuracy {one_accuracy:.4} vs {two_accuracy:.4}");
    assert!((one_accuracy - two_accuracy).abs() <= 0.01);
}

/// `pretext bench --allreduce 2` times the shim's all-reduce and torch.distributed's, both as
/// two processes under torchrun, side by side; one process is refused.
#[test]
fn the_allreduce_benchmark_runs_beside_torch_distributed() {
    let Some(_) = torchrun() else { return };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/reference");
    let bench = |processes: &str| {
        pretext()
            .args(["bench", "--skip-step", "--skip-epoch", "--warmup", "1"])
            .args(["--iters", "3", "--allreduce", processes])
            .args(["--reference-dir", reference, "--json"])
            .arg(&json)
            .output()
            .unwrap()
    };
    let output = bench("2");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let said = text(&output.stdout);
    assert!(
        said.contains("across 2 processes on one machine, Gloo"),
        "{said}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{report}");
    for row in rows {
        for field in ["pretext_median_s", "pytorch_median_s"] {
            let seconds = row[field].as_f64().unwrap();
            assert!(seconds > 0.0 && seconds < 10.0, "{row}");
        }
    }
    let refused = bench("1");
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("--allreduce 1: expected at least 2 processes"),
        "{}",
        text(&refused.stderr)
    );
}
