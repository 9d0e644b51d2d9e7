//! `pretext bench --allreduce N`: the all-reduce of the c10d shim (pretext-dist) beside
//! Python's `torch.distributed` on the same machine, the same tensor sizes and backend (Gloo
//! on the CPU, NCCL on CUDA). Both run as N processes under torchrun
//! (`python -m torch.distributed.run`): pretext as `pretext bench --allreduce-worker`, the
//! reference as bench/reference/allreduce.py; rank 0 of each writes its medians to a JSON
//! file that the parent reads and prints side by side, with nccl-tests' bus bandwidth.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tch::{Device, Kind, Tensor};

use crate::args::BenchArgs;
use crate::cuda;

/// Elements (float32) of the timed tensors: 1 MB, 10 MB, then the parameter counts of
/// ResNet-18 (CIFAR stem, 11.2 M) and ViT-S/16 (21.7 M): one step's gradients of each.
pub const SIZES: [(i64, &str); 4] = [
    (262_144, "1 MB"),
    (2_621_440, "10 MB"),
    (11_173_962, "ResNet-18 (11.2 M parameters)"),
    (21_665_664, "ViT-S/16 (21.7 M parameters)"),
];

/// The parent: runs the N pretext workers, then the N reference processes, and prints both.
pub fn run(args: &BenchArgs, processes: usize, device_name: &str) -> anyhow::Result<Vec<Value>> {
    if processes == 0 || (processes == 1 && device_name != "cuda") {
        bail!("--allreduce {processes}: expected at least 2 processes on the CPU (an all-reduce of one process moves nothing; on CUDA, 1 times NCCL's path with a group of one)");
    }
    if args.iters == 0 {
        bail!("--iters 0: expected at least 1 timed all-reduce");
    }
    let folder = std::env::temp_dir().join(format!("pretext-allreduce-{}", std::process::id()));
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let rows = run_in(args, processes, device_name, &folder);
    let _ = std::fs::remove_dir_all(&folder);
    rows
}

fn run_in(
    args: &BenchArgs,
    processes: usize,
    device_name: &str,
    folder: &Path,
) -> anyhow::Result<Vec<Value>> {
    let ours_path = folder.join("pretext.json");
    let exe = std::env::current_exe().context("finding the pretext executable")?;
    let common = [
        "--device".to_string(),
        device_name.to_string(),
        "--warmup".into(),
        args.warmup.to_string(),
        "--iters".into(),
        args.iters.to_string(),
    ];
    let mut worker: Vec<String> = vec![
        "--no-python".into(),
        exe.to_string_lossy().into_owned(),
        "bench".into(),
        "--allreduce-worker".into(),
        "--json".into(),
        ours_path.to_string_lossy().into_owned(),
    ];
    worker.extend(common.iter().cloned());
    eprintln!("all-reduce: {processes} pretext processes (torchrun)...");
    torchrun(args, processes, &worker)?;
    let reference_path = folder.join("pytorch.json");
    let script = Path::new(&args.reference_dir).join("allreduce.py");
    let mut reference: Vec<String> = vec![
        script.to_string_lossy().into_owned(),
        "--json".into(),
        reference_path.to_string_lossy().into_owned(),
        "--sizes".into(),
        SIZES
            .iter()
            .map(|(elements, _)| elements.to_string())
            .collect::<Vec<_>>()
            .join(","),
    ];
    reference.extend(common.iter().cloned());
    eprintln!("all-reduce: {processes} PyTorch processes (torchrun)...");
    torchrun(args, processes, &reference)?;
    let read = |path: &Path| -> anyhow::Result<Vec<f64>> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        value["median_s"]
            .as_array()
            .and_then(|all| all.iter().map(Value::as_f64).collect::<Option<Vec<_>>>())
            .filter(|all| all.len() == SIZES.len())
            .with_context(|| format!("{}: no median_s for every size", path.display()))
    };
    let (ours, theirs) = (read(&ours_path)?, read(&reference_path)?);
    let backend = if device_name == "cuda" {
        "NCCL"
    } else {
        "Gloo"
    };
    println!(
        "all-reduce (sum, float32) across {processes} processes on one machine, {backend}; median of {} (bandwidth = bytes / time; bus bandwidth = 2(n-1)/n × that, as nccl-tests):",
        args.iters
    );
    let mut rows = Vec::new();
    for ((&(elements, what), &ours), &theirs) in SIZES.iter().zip(&ours).zip(&theirs) {
        let bandwidth = |seconds: f64| (elements * 4) as f64 / seconds / 1e9;
        let bus =
            |seconds: f64| 2.0 * (processes as f64 - 1.0) / processes as f64 * bandwidth(seconds);
        println!(
            "  {what}: pretext {:.2} ms ({:.2} GB/s, bus {:.2} GB/s); torch.distributed {:.2} ms ({:.2} GB/s, bus {:.2} GB/s); ratio {:.2}x",
            ours * 1e3,
            bandwidth(ours),
            bus(ours),
            theirs * 1e3,
            bandwidth(theirs),
            bus(theirs),
            ours / theirs
        );
        rows.push(json!({"name": format!("all-reduce {what}"), "elements": elements,
            "processes": processes, "pretext_median_s": ours, "pytorch_median_s": theirs,
            "ratio": ours / theirs, "pretext_gb_s": bandwidth(ours), "pytorch_gb_s": bandwidth(theirs),
            "pretext_bus_gb_s": bus(ours), "pytorch_bus_gb_s": bus(theirs)}));
    }
    Ok(rows)
}

/// `python -m torch.distributed.run --nproc-per-node N --standalone ARGS`, one libtorch
/// thread per process (torchrun's own default).
fn torchrun(args: &BenchArgs, processes: usize, script_args: &[String]) -> anyhow::Result<()> {
    let output = Command::new(&args.python)
        .args(["-m", "torch.distributed.run", "--standalone"])
        .arg(format!("--nproc-per-node={processes}"))
        .args(script_args)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .with_context(|| format!("running {} -m torch.distributed.run", args.python))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = said.lines().rev().take(6).collect();
        bail!(
            "torchrun {} ended with {}: {}",
            script_args.first().map_or("", String::as_str),
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        );
    }
    Ok(())
}

/// One of the N pretext processes: times `all_reduce_sum` of one tensor of each size (after
/// a barrier, so that every process starts together), and rank 0 writes the medians.
pub fn worker(args: &BenchArgs) -> anyhow::Result<()> {
    let device = cuda::join_any_launch(cuda::device(&args.device)?)?;
    let Some(path) = &args.json else {
        bail!("--allreduce-worker needs --json FILE");
    };
    let mut medians = Vec::new();
    for (elements, _) in SIZES {
        let tensor = Tensor::ones([elements], (Kind::Float, device));
        let mut times = Vec::new();
        for iteration in 0..args.warmup + args.iters {
            pretext_train::parallel::barrier()?;
            let started = Instant::now();
            pretext_train::parallel::all_reduce_sum(&[&tensor])?;
            if let Device::Cuda(index) = device {
                tch::Cuda::synchronize(index as i64);
            }
            if iteration >= args.warmup {
                times.push(started.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let middle = times.len() / 2;
        medians.push(match times.len() % 2 {
            1 => times[middle],
            _ => (times[middle - 1] + times[middle]) / 2.0,
        });
    }
    if pretext_train::parallel::is_writer() {
        std::fs::write(path, json!({ "median_s": medians }).to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
