//! Two real processes over Gloo on this machine: the tests below start this test binary twice
//! as ranks 0 and 1 (torchrun's variables, MASTER_ADDR=127.0.0.1 and a free port), each
//! running one `#[ignore]`d worker, and fail with both ranks' output when either fails, or
//! when they are not done within the deadline (no hang).

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pretext_dist::{Backend, Launch, ProcessGroup};
use tch::{Device, Kind, Tensor};

const WORLD_SIZE: usize = 2;
/// How long the ranks together may take before they are killed and the test fails.
const DEADLINE: Duration = Duration::from_secs(50);
/// The group's timeout for the rendezvous and each collective.
const COLLECTIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// A rank started by `launch_ranks`, with threads collecting what it prints.
struct Rank {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

/// Runs `worker` (a test name of this binary) as ranks 0..WORLD_SIZE; returns each rank's exit
/// success and output, or panics with the output when the deadline passes.
fn launch_ranks(worker: &str) -> Vec<(bool, String)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut ranks: Vec<Rank> = (0..WORLD_SIZE)
        .map(|rank| {
            let mut child = Command::new(&exe)
                .args([
                    "--exact",
                    worker,
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("RANK", rank.to_string())
                .env("WORLD_SIZE", WORLD_SIZE.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", port.to_string())
                .env("OMP_NUM_THREADS", "1")
                .env_remove("TORCHELASTIC_USE_AGENT_STORE")
                .env_remove("SLURM_NTASKS")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting a rank");
            let collect = |mut pipe: Box<dyn Read + Send>| {
                std::thread::spawn(move || {
                    let mut text = String::new();
                    let _ = pipe.read_to_string(&mut text);
                    text
                })
            };
            let stdout = collect(Box::new(child.stdout.take().unwrap()));
            let stderr = collect(Box::new(child.stderr.take().unwrap()));
            Rank {
                child,
                stdout,
                stderr,
            }
        })
        .collect();

    let started = Instant::now();
    let mut statuses = vec![None; WORLD_SIZE];
    while statuses.iter().any(Option::is_none) && started.elapsed() < DEADLINE {
        for (rank, status) in ranks.iter_mut().zip(statuses.iter_mut()) {
            if status.is_none() {
                *status = rank.child.try_wait().expect("polling a rank");
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let timed_out = statuses.iter().any(Option::is_none);
    if timed_out {
        for rank in &mut ranks {
            let _ = rank.child.kill();
            let _ = rank.child.wait();
        }
    }
    let results: Vec<(bool, String)> = ranks
        .into_iter()
        .zip(statuses)
        .enumerate()
        .map(|(index, (rank, status))| {
            let output = format!(
                "--- rank {index} ({status:?}) stdout:\n{}\n--- rank {index} stderr:\n{}",
                rank.stdout.join().unwrap_or_default(),
                rank.stderr.join().unwrap_or_default()
            );
            (status.is_some_and(|status| status.success()), output)
        })
        .collect();
    assert!(
        !timed_out,
        "the ranks were not done after {DEADLINE:?}:\n{}",
        outputs(&results)
    );
    results
}

fn outputs(results: &[(bool, String)]) -> String {
    results
        .iter()
        .map(|(_, output)| output.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The launch and group of a worker, or `None` when the test runs outside `launch_ranks`.
fn join() -> Option<ProcessGroup> {
    let launch = Launch::from_env().expect("the launch variables parse")?;
    Some(ProcessGroup::init(&launch, Backend::Gloo, COLLECTIVE_TIMEOUT).expect("init"))
}

fn values<T: tch::kind::Element>(tensor: &Tensor) -> Vec<T>
where
    Vec<T>: for<'a> TryFrom<&'a Tensor, Error = tch::TchError>,
{
    Vec::<T>::try_from(&tensor.contiguous().view([-1])).unwrap()
}

#[test]
fn two_ranks_agree_on_every_collective() {
    let results = launch_ranks("collectives_worker");
    assert!(
        results.iter().all(|(ok, _)| *ok),
        "a rank failed:\n{}",
        outputs(&results)
    );
    for (rank, (_, output)) in results.iter().enumerate() {
        assert!(
            output.contains(&format!("rank {rank}: every collective agreed")),
            "rank {rank} did not get through its checks:\n{output}"
        );
    }
}

#[test]
fn a_rank_that_leaves_makes_the_other_fail_rather_than_hang() {
    let results = launch_ranks("peer_leaves_worker");
    assert!(
        results.iter().all(|(ok, _)| *ok),
        "a rank failed:\n{}",
        outputs(&results)
    );
    assert!(
        results[0]
            .1
            .contains("rank 0 saw: rank 0: all_reduce failed:"),
        "{}",
        results[0].1
    );
}

#[test]
fn a_failing_rank_fails_the_launch_with_its_message() {
    let results = launch_ranks("rank_one_fails_worker");
    assert!(results[0].0, "rank 0 should pass:\n{}", outputs(&results));
    assert!(!results[1].0, "rank 1 should fail:\n{}", outputs(&results));
    assert!(
        results[1].1.contains("rank 1 disagrees on purpose"),
        "{}",
        results[1].1
    );
}

/// Rank r's part of every collective, checked against the sums, orders and gradients worked
/// out by hand for two ranks.
#[test]
#[ignore = "one rank of two_ranks_agree_on_every_collective"]
fn collectives_worker() {
    let Some(group) = join() else { return };
    let rank = group.rank() as i64;
    let world = group.world_size() as i64;
    assert_eq!(world, 2);
    let float = (Kind::Float, Device::Cpu);

    // all_reduce_sum: several shapes and dtypes, one non-contiguous, in one call.
    let filled = Tensor::full([2, 3], (rank + 1) as f64, float); // sum: 1 + 2 = 3
    let ramp = Tensor::arange(5, float) * rank as f64; // sum: arange * (0 + 1)
    let counts = Tensor::arange(4, (Kind::Int64, Device::Cpu)) + rank * 10; // 2 arange + 10
    let doubles = Tensor::from_slice(&[0.5f64 * (rank + 1) as f64]); // 0.5 + 1.0
    let transposed = Tensor::arange(6, float).view([2, 3]).tr() * (rank + 1) as f64; // x 3
    assert!(!transposed.is_contiguous());
    group
        .all_reduce_sum(&[&filled, &ramp, &counts, &doubles, &transposed])
        .unwrap();
    assert_eq!(values::<f32>(&filled), vec![3.0; 6]);
    assert_eq!(values::<f32>(&ramp), [0.0, 1.0, 2.0, 3.0, 4.0]);
    assert_eq!(values::<i64>(&counts), [10, 12, 14, 16]);
    assert_eq!(values::<f64>(&doubles), [1.5]);
    let expected = Tensor::arange(6, float).view([2, 3]).tr() * 3.0;
    assert!(transposed.equal(&expected), "{transposed}");

    // broadcast from each root, parameters that require grad included.
    for root in 0..world {
        let weight = Tensor::full([3], rank as f64, float).set_requires_grad(true);
        let ids = Tensor::full([2, 2], rank, (Kind::Int64, Device::Cpu));
        group.broadcast(&[&weight, &ids], root as usize).unwrap();
        assert_eq!(values::<f32>(&weight), vec![root as f32; 3]);
        assert_eq!(values::<i64>(&ids), vec![root; 4]);
        assert!(weight.requires_grad());
    }

    // all_gather: rank order along dim 0.
    let mine = Tensor::full([2, 1], rank as f64, float);
    let gathered = group.all_gather(&mine).unwrap();
    assert_eq!(gathered.size(), [4, 1]);
    assert_eq!(values::<f32>(&gathered), [0.0, 0.0, 1.0, 1.0]);

    // all_gather_with_grad: loss = sum(gathered * w_rank) with w_rank = (rank + 1) * base, so
    // the gradient of this rank's slice, summed over ranks, is (1 + 2) * base[slice].
    let x = (Tensor::arange(6, float).view([2, 3]) + 10.0 * rank as f64).set_requires_grad(true);
    let gathered = group.all_gather_with_grad(&x).unwrap(); // [4, 3]
    assert_eq!(gathered.size(), [4, 3]);
    let base = Tensor::arange(12, float).view([4, 3]);
    let mut expected_rows = Vec::new();
    for other in 0..world {
        expected_rows.extend(values::<f32>(
            &(Tensor::arange(6, float).view([2, 3]) + 10.0 * other as f64),
        ));
    }
    assert_eq!(values::<f32>(&gathered), expected_rows);
    (&gathered * (&base * (rank + 1) as f64))
        .sum(Kind::Float)
        .backward();
    let expected_grad = base.narrow(0, 2 * rank, 2) * 3.0;
    assert!(x.grad().equal(&expected_grad), "{}", x.grad());

    // Regression: `sum()` hands the gather an expanded (stride 0) gradient, which the
    // reduce-scatter of libtorch's backward rejected as non-contiguous. Each rank's slice
    // gets 1 from every rank.
    let y = Tensor::ones([2, 3], float).set_requires_grad(true);
    group
        .all_gather_with_grad(&y)
        .unwrap()
        .sum(Kind::Float)
        .backward();
    assert_eq!(values::<f32>(&y.grad()), vec![world as f32; 6]);

    group.barrier().unwrap();
    println!("rank {rank}: every collective agreed");
}

/// Rank 1 leaves right after the rendezvous; rank 0's next collective must fail (Gloo sees
/// the closed connection, or the timeout passes), not hang.
#[test]
#[ignore = "one rank of a_rank_that_leaves_makes_the_other_fail_rather_than_hang"]
fn peer_leaves_worker() {
    let Some(group) = join() else { return };
    group.barrier().unwrap();
    if group.rank() == 1 {
        return;
    }
    let tensor = Tensor::ones([1 << 16], (Kind::Float, Device::Cpu));
    let error = group
        .all_reduce_sum(&[&tensor])
        .expect_err("rank 1 has left");
    let message = error.to_string();
    assert!(
        message.starts_with("rank 0: all_reduce failed:"),
        "{message}"
    );
    println!("rank 0 saw: {message}");
}

/// Rank 1 finds a wrong value and panics with its message, after the collectives are done.
#[test]
#[ignore = "one rank of a_failing_rank_fails_the_launch_with_its_message"]
fn rank_one_fails_worker() {
    let Some(group) = join() else { return };
    let tensor = Tensor::from_slice(&[group.rank() as f32]);
    group.all_reduce_sum(&[&tensor]).unwrap();
    group.barrier().unwrap();
    let expected = if group.rank() == 1 { 2.0 } else { 1.0 };
    assert_eq!(
        values::<f32>(&tensor),
        [expected],
        "rank {} disagrees on purpose",
        group.rank()
    );
}
