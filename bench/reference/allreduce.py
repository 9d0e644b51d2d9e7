"""All-reduce reference for `pretext bench --allreduce N`: torch.distributed's all_reduce
(sum, float32) of one tensor of each size, after a barrier so that every process starts
together; rank 0 writes the medians as JSON. Run under torchrun:

    python -m torch.distributed.run --standalone --nproc-per-node 2 bench/reference/allreduce.py \
        --sizes 262144,2621440 --warmup 3 --iters 10 --device cpu --json out.json
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.distributed as dist


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", required=True, help="comma-separated element counts")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    cuda = args.device == "cuda"
    dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    medians = []
    for elements in (int(size) for size in args.sizes.split(",")):
        tensor = torch.ones(elements, dtype=torch.float32, device=device)
        times = []
        for iteration in range(args.warmup + args.iters):
            dist.barrier()
            started = time.perf_counter()
            dist.all_reduce(tensor)
            if cuda:
                torch.cuda.synchronize(device)
            if iteration >= args.warmup:
                times.append(time.perf_counter() - started)
        medians.append(statistics.median(times))
    if dist.get_rank() == 0:
        with open(args.json, "w") as out:
            json.dump({"median_s": medians, "torch": torch.__version__}, out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
