#!/usr/bin/env python3
"""PyTorch reference benchmark: a full SimCLR epoch on Fashion-MNIST ("the real job").

What it measures
----------------
End-to-end training throughput in unique images per second
(``batch * steps / seconds``), including everything a real run pays for:
reading batches from a DataLoader (``--workers`` worker processes) that decode
images and apply the SimCLR augmentation pipeline twice per image, moving the
batch to the device, forward + NT-Xent + backward + AdamW step.

``seconds`` runs from creating the DataLoader iterator (so worker start-up is
included) to the end of the last step (CUDA synchronised).  ``data_wait_s`` is
the total time the training loop spent blocked in ``next(iterator)``, i.e. how
much of ``seconds`` the data pipeline failed to hide.  Loading/parsing the IDX
file happens once before the clock starts and is reported as ``load_s``.

How to run (from the repository root)
-------------------------------------
    /root/.cache/pretext/venv/bin/python bench/reference/simclr_epoch.py
    /root/.cache/pretext/venv/bin/python bench/reference/simclr_epoch.py \
        --max-steps 10 --workers 2 --json

Default data directory: ``../shared/data/vision/fashion-mnist`` relative to the
repository root (this file lives in ``<repo>/bench/reference/``), containing
``train-images-idx3-ubyte.gz``.  Parsed with gzip + numpy (no torchvision).

Augmentation (per view, pure torch; mirrors torchvision semantics)
------------------------------------------------------------------
 1. RandomResizedCrop(28, scale=(0.2, 1.0), ratio=(3/4, 4/3)): torchvision's
    sampling (10 attempts: area ~ U(scale) * H*W, log-ratio ~ U(log ratio),
    w = round(sqrt(area*r)), h = round(sqrt(area/r)), accept if it fits,
    offset uniform; fallback: centre crop clamped to ratio), then bilinear
    resize to 28x28 (align_corners=False; crops are <= 28 px so this is
    always up-sampling and antialiasing is irrelevant).
 2. Horizontal flip, p = 0.5.
 3. ColorJitter(brightness=0.4, contrast=0.4) applied with p = 0.8, the two
    ops in random order: brightness: x * b, b ~ U(0.6, 1.4), clamp [0, 1];
    contrast: c * x + (1 - c) * mean(x), c ~ U(0.6, 1.4), clamp [0, 1]
    (grayscale image, so mean over all pixels = torchvision's grayscale mean).
 4. RandomGrayscale(p = 0.2): a no-op for 1-channel input (random draw skipped).
 5. Values in [0, 1], then normalised (x - 0.5) / 0.5.
All randomness comes from the torch RNG; DataLoader workers are seeded from a
torch.Generator seeded with ``--seed`` so runs are reproducible for a fixed
worker count.

Model (all PyTorch default init: Conv/Linear kaiming_uniform_(a=sqrt(5)) weights
and U(+-1/sqrt(fan_in)) biases; BN weight 1, bias 0, eps 1e-5, momentum 0.1)
--------------------------------------------------------------------------------
  Conv2d(1->32,   3x3, pad 1, bias) BN2d ReLU MaxPool2d(2)      -> 32 x 14 x 14
  Conv2d(32->64,  3x3, pad 1, bias) BN2d ReLU MaxPool2d(2)      -> 64 x 7 x 7
  Conv2d(64->128, 3x3, pad 1, bias) BN2d ReLU
  global average pool                                           -> 128 (representation)
  projector: Linear(128->512, bias) BN1d(512) ReLU Linear(512->128, bias)
Loss: NT-Xent, tau = 0.5, over the 2N projected views (row i and i+N positive;
same definition as simclr_step.py).  Optimiser: AdamW(lr=1e-3, weight_decay=1e-4,
betas=(0.9, 0.999), eps=1e-8).  Views are concatenated: x = cat([v1, v2]).
"""

import argparse
import gzip
import json
import math
import os
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_DATA = os.path.join(REPO_ROOT, "..", "shared", "data", "vision", "fashion-mnist")


# ----------------------------------------------------------------------------- data

def read_idx_images(path: str) -> np.ndarray:
    """Parse a (gzipped) IDX3 ubyte file into a uint8 array [N, H, W]."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        buf = f.read()
    magic = int.from_bytes(buf[0:4], "big")
    if magic != 0x00000803:
        raise ValueError(f"{path}: bad IDX3 magic {magic:#x}")
    n, h, w = (int.from_bytes(buf[4 + 4 * i: 8 + 4 * i], "big") for i in range(3))
    data = np.frombuffer(buf, dtype=np.uint8, offset=16)
    if data.size != n * h * w:
        raise ValueError(f"{path}: expected {n * h * w} pixels, got {data.size}")
    return data.reshape(n, h, w)


def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand(()).item()


def random_resized_crop_params(h: int, w: int, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision.transforms.RandomResizedCrop.get_params, torch RNG."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * _uniform(*scale)
        aspect = math.exp(_uniform(*log_ratio))
        cw = int(round(math.sqrt(target_area * aspect)))
        ch = int(round(math.sqrt(target_area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            i = int(torch.randint(0, h - ch + 1, ()).item())
            j = int(torch.randint(0, w - cw + 1, ()).item())
            return i, j, ch, cw
    in_ratio = w / h
    if in_ratio < min(ratio):
        cw, ch = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        ch, cw = h, int(round(h * max(ratio)))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def simclr_view(img: torch.Tensor, out_size: int = 28) -> torch.Tensor:
    """One augmented view. img: float [C, H, W] in [0, 1]. Returns normalised [C, S, S]."""
    c, h, w = img.shape
    i, j, ch, cw = random_resized_crop_params(h, w)
    x = img[:, i:i + ch, j:j + cw].unsqueeze(0)
    x = F.interpolate(x, size=(out_size, out_size), mode="bilinear", align_corners=False)
    x = x.squeeze(0)
    if torch.rand(()).item() < 0.5:
        x = x.flip(-1)
    if torch.rand(()).item() < 0.8:
        b = _uniform(0.6, 1.4)
        k = _uniform(0.6, 1.4)
        for op in torch.randperm(2).tolist():
            if op == 0:  # brightness
                x = (x * b).clamp_(0.0, 1.0)
            else:  # contrast: blend with the (grayscale) mean
                x = (k * x + (1.0 - k) * x.mean()).clamp_(0.0, 1.0)
    # RandomGrayscale(p=0.2): no-op for 1-channel images.
    return (x - 0.5) / 0.5


class TwoViewDataset(Dataset):
    def __init__(self, images: np.ndarray, out_size: int = 28):
        self.images = torch.from_numpy(images.copy())  # uint8 [N, H, W]
        self.out_size = out_size

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, idx: int):
        img = self.images[idx].unsqueeze(0).float().div_(255.0)  # [1, H, W] in [0, 1]
        return simclr_view(img, self.out_size), simclr_view(img, self.out_size)


# ----------------------------------------------------------------------------- model

def conv_block(cin: int, cout: int, pool: bool) -> list:
    layers = [
        nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1, bias=True),
        nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return layers


class SimCLRNet(nn.Module):
    def __init__(self, in_channels: int = 1, rep_dim: int = 128,
                 hidden: int = 512, proj_dim: int = 128):
        super().__init__()
        self.encoder = nn.Sequential(
            *conv_block(in_channels, 32, pool=True),
            *conv_block(32, 64, pool=True),
            *conv_block(64, rep_dim, pool=False),
        )
        self.projector = nn.Sequential(
            nn.Linear(rep_dim, hidden, bias=True),
            nn.BatchNorm1d(hidden, eps=1e-5, momentum=0.1),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, proj_dim, bias=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x).mean(dim=(2, 3))  # global average pool -> representation
        return self.projector(h)


def nt_xent(emb: torch.Tensor, tau: float = 0.5) -> torch.Tensor:
    n2 = emb.shape[0]
    n = n2 // 2
    z = F.normalize(emb, dim=1)
    sim = (z @ z.t()) / tau
    eye = torch.eye(n2, dtype=torch.bool, device=emb.device)
    sim = sim.masked_fill(eye, float("-inf"))
    target = (torch.arange(n2, device=emb.device) + n) % n2
    return F.cross_entropy(sim, target)


# ----------------------------------------------------------------------------- main

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="directory with train-images-idx3-ubyte.gz")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=256, help="N images per step (views: 2N)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after N steps (default: whole epoch)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads in the main process (default: torch default)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--tau", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"

    t_load = time.perf_counter()
    images = read_idx_images(os.path.join(args.data, "train-images-idx3-ubyte.gz"))
    load_s = time.perf_counter() - t_load

    torch.manual_seed(args.seed)
    dataset = TwoViewDataset(images)
    loader = DataLoader(
        dataset,
        batch_size=args.batch,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        pin_memory=cuda,
        generator=torch.Generator().manual_seed(args.seed),
    )
    epoch_steps = len(loader)
    steps_target = epoch_steps if args.max_steps is None else min(args.max_steps, epoch_steps)

    model = SimCLRNet().to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)

    step_times = []
    losses = []
    data_wait = 0.0
    first_batch_s = None
    steps = 0

    t0 = time.perf_counter()
    it = iter(loader)
    while steps < steps_target:
        tw = time.perf_counter()
        v1, v2 = next(it)
        waited = time.perf_counter() - tw
        data_wait += waited
        if first_batch_s is None:
            first_batch_s = waited
        ts = time.perf_counter()
        x = torch.cat([v1, v2]).to(dev, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        loss = nt_xent(model(x), args.tau)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        if cuda:
            torch.cuda.synchronize()
        step_times.append(time.perf_counter() - ts)
        steps += 1
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    del it  # shut down workers outside the timed region

    res = {
        "name": "pytorch simclr epoch",
        "images_per_s": args.batch * steps / seconds,
        "steps": steps,
        "epoch_steps": epoch_steps,
        "batch": args.batch,
        "seconds": seconds,
        "data_wait_s": data_wait,
        "first_batch_s": first_batch_s,
        "compute_median_s": statistics.median(step_times),
        "load_s": load_s,
        "workers": args.workers,
        "threads": torch.get_num_threads(),
        "device": args.device,
        "torch": torch.__version__,
        "first_loss": float(losses[0]),
        "final_loss": float(losses[-1]),
    }
    if args.json:
        print(json.dumps(res))
    else:
        print(f"pytorch simclr epoch: {res['images_per_s']:.1f} images/s "
              f"({steps}/{epoch_steps} steps x {args.batch} images in {seconds:.2f} s; "
              f"data wait {data_wait:.2f} s, first batch {first_batch_s:.2f} s, "
              f"median compute/step {res['compute_median_s'] * 1e3:.0f} ms; "
              f"{args.workers} workers, {res['threads']} threads, {args.device}, "
              f"torch {torch.__version__}; loss {res['first_loss']:.4f} -> "
              f"{res['final_loss']:.4f}; IDX load {load_s:.2f} s)")


if __name__ == "__main__":
    main()
