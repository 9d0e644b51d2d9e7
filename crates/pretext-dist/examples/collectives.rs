//! A smoke test of a real launch: every rank sums `rank + 1`, gathers its rank with and
//! without gradient, and meets the others at a barrier, printing what it got.
//!
//! ```text
//! cargo build --release -p pretext-dist --example collectives
//! torchrun --nproc-per-node 2 --no-python target/release/examples/collectives
//! srun --ntasks 2 target/release/examples/collectives
//! ```

use std::time::Duration;

use pretext_dist::{Backend, Launch, ProcessGroup};
use tch::{Device, Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(launch) = Launch::from_env()? else {
        println!("a single process (WORLD_SIZE unset, not a multi-task SLURM step): nothing to do");
        return Ok(());
    };
    let group = ProcessGroup::init(&launch, Backend::Gloo, Duration::from_secs(60))?;
    let (rank, world) = (group.rank(), group.world_size());

    let sum = Tensor::from_slice(&[rank as f32 + 1.0]);
    group.all_reduce_sum(&[&sum])?;

    let mine = Tensor::from_slice(&[rank as f32]).set_requires_grad(true);
    let gathered = group.all_gather(&mine)?;
    let with_grad = group.all_gather_with_grad(&mine)?;
    with_grad.sum(Kind::Float).backward();

    group.barrier()?;
    println!(
        "rank {rank}/{world} (local {}, store {}:{}{}): sum of rank+1 = {}, gathered = {:?}, \
         gradient of own slice = {} (world size expected)",
        launch.local_rank,
        launch.master_addr,
        launch.master_port,
        if launch.agent_store {
            ", torchrun's agent store"
        } else {
            ""
        },
        sum.double_value(&[0]),
        Vec::<f32>::try_from(&gathered)?,
        mine.grad().to_device(Device::Cpu).double_value(&[0]),
    );
    Ok(())
}
