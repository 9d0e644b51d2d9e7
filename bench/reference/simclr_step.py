#!/usr/bin/env python3
"""PyTorch reference benchmark: one SimCLR training step.

What it measures
----------------
Wall-clock time of one complete SimCLR optimisation step -- forward pass of
both views through the encoder, NT-Xent loss, backward pass and an Adam update
-- on a fixed batch of random inputs (no data loading, no augmentation).
Reported are the median and the minimum over ``--iters`` timed steps, after
``--warmup`` untimed steps.  Each step is timed with ``time.perf_counter``
(with ``torch.cuda.synchronize()`` before reading the clock on CUDA).

How to run (from the repository root)
-------------------------------------
    /root/.cache/pretext/venv/bin/python bench/reference/simclr_step.py
    /root/.cache/pretext/venv/bin/python bench/reference/simclr_step.py \
        --iters 3 --warmup 1 --threads 2 --json

Model -- exact layer hyper-parameters (for matching on the Rust/tch side)
-------------------------------------------------------------------------
Input: 2N images of shape C x S x S (default N=128, C=3, S=32), i.e. the two
views are concatenated along the batch dimension: x = cat([v1, v2]) (2N rows;
row i and row i+N are a positive pair).

  conv1  Conv2d(3   -> 32,  kernel 3, stride 1, padding 1, bias=True)
  bn1    BatchNorm2d(32,  eps=1e-5, momentum=0.1, affine=True, track_running_stats=True)
  ReLU
  conv2  Conv2d(32  -> 64,  kernel 3, stride 1, padding 1, bias=True)
  bn2    BatchNorm2d(64,  eps=1e-5, momentum=0.1, affine=True)
  ReLU
  MaxPool2d(kernel 2, stride 2)                       -> 64  x S/2 x S/2
  conv3  Conv2d(64  -> 128, kernel 3, stride 1, padding 1, bias=True)
  bn3    BatchNorm2d(128, eps=1e-5, momentum=0.1, affine=True)
  ReLU
  MaxPool2d(kernel 2, stride 2)                       -> 128 x S/4 x S/4
  conv4  Conv2d(128 -> 256, kernel 3, stride 1, padding 1, bias=True)
  bn4    BatchNorm2d(256, eps=1e-5, momentum=0.1, affine=True)
  ReLU
  global average pool (mean over H, W)                -> 256
  fc     Linear(256 -> 128, bias=True)                -> 128-d embedding

All layers use PyTorch default initialisation:
  * Conv2d / Linear weight: kaiming_uniform_(a=sqrt(5)), i.e.
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    (fan_in = in_channels * 3 * 3 for convs, in_features for Linear).
  * BatchNorm: weight = 1, bias = 0, running_mean = 0, running_var = 1.
The model is in train() mode (batch statistics; running stats updated).

Loss: NT-Xent (SimCLR), temperature tau = 0.5:
  z = F.normalize(emb, dim=1)            (L2, eps=1e-12)
  sim = z @ z.T / tau                    (2N x 2N cosine similarities / tau)
  sim[i, i] = -inf                       (self-similarity masked out)
  target(i) = (i + N) mod 2N             (the other view of the same image)
  loss = cross_entropy(sim, target)      (mean over the 2N rows)

Optimiser: torch.optim.Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
weight_decay=0), zero_grad(set_to_none=True) each step.

Seeds: torch.manual_seed(0) before model construction and input generation
(inputs ~ N(0, 1)).
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn_relu(cin: int, cout: int) -> list:
    return [
        nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1, bias=True),
        nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1),
        nn.ReLU(inplace=True),
    ]


class Encoder(nn.Module):
    def __init__(self, in_channels: int = 3, out_dim: int = 128):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn_relu(in_channels, 32),
            *conv_bn_relu(32, 64),
            nn.MaxPool2d(2),
            *conv_bn_relu(64, 128),
            nn.MaxPool2d(2),
            *conv_bn_relu(128, 256),
        )
        self.fc = nn.Linear(256, out_dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        h = h.mean(dim=(2, 3))  # global average pool
        return self.fc(h)


def nt_xent(emb: torch.Tensor, tau: float = 0.5) -> torch.Tensor:
    """Standard SimCLR NT-Xent over 2N views; rows i and i+N are positives."""
    n2 = emb.shape[0]
    n = n2 // 2
    z = F.normalize(emb, dim=1)
    sim = (z @ z.t()) / tau
    eye = torch.eye(n2, dtype=torch.bool, device=emb.device)
    sim = sim.masked_fill(eye, float("-inf"))
    target = (torch.arange(n2, device=emb.device) + n) % n2
    return F.cross_entropy(sim, target)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: torch default)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--batch", type=int, default=128, help="N (views: 2N)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--tau", type=float, default=0.5)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"

    torch.manual_seed(0)
    model = Encoder(args.channels).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(2 * args.batch, args.channels, args.size, args.size,
                    generator=torch.Generator().manual_seed(0)).to(dev)

    def step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = nt_xent(model(x), args.tau)
        loss.backward()
        opt.step()
        return loss.detach()

    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()

    times = []
    loss = None
    for _ in range(args.iters):
        t0 = time.perf_counter()
        loss = step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)

    res = {
        "name": "pytorch simclr step",
        "median_s": statistics.median(times),
        "min_s": min(times),
        "iters": args.iters,
        "threads": torch.get_num_threads(),
        "device": args.device,
        "torch": torch.__version__,
        "batch": args.batch,
        "size": args.size,
        "channels": args.channels,
        "final_loss": float(loss) if loss is not None else None,
    }
    if args.json:
        print(json.dumps(res))
    else:
        print(f"pytorch simclr step: median {res['median_s'] * 1e3:.1f} ms, "
              f"min {res['min_s'] * 1e3:.1f} ms over {args.iters} iters "
              f"(2x{args.batch} x {args.channels}x{args.size}x{args.size}, "
              f"{args.device}, {res['threads']} threads, torch {torch.__version__}, "
              f"loss {res['final_loss']:.4f})")


if __name__ == "__main__":
    main()
