#!/usr/bin/env python3
"""PyTorch reference: the recipe of configs/simclr-fmnist-gpu.toml, timed to a k-NN accuracy.

What it measures
----------------
SimCLR pretraining on the whole Fashion-MNIST training set with exactly the hyper-parameters
of ``pretext pretrain --config configs/simclr-fmnist-gpu.toml`` (network, views, loss,
optimizer, schedule, precision, batch, epochs; listed below with where each number comes
from), evaluated every ``--eval-every`` epochs (or ``--eval-steps`` steps) and at the end
with the k-NN rows of ``pretext probe RUN --labels 60000``: the 60,000 training images are
the bank, the 10,000 test images the queries.  Reported is the training time until the k=20
k-NN accuracy first reaches ``--target`` (0.90), so that it can be set beside the time
pretext takes to train the same recipe (bench/gpu/run.sh runs both on one H100).

Clocks (``time.perf_counter``; ``torch.cuda.synchronize()`` before every read that counts):
  train_seconds   from right before the first step (data loaded, resized and, with
                  --augment device, on the device; with --augment loader the DataLoader's
                  workers already started) to the end of the last step, WITHOUT the k-NN
                  evaluations (the clock is paused while they run).  time_to_target_s is
                  train_seconds at the first evaluation that reaches the target, so it is
                  only as fine as --eval-every (--eval-steps).
  load_seconds    reading the IDX files, the 28 -> 32 px resize and the copy to the device.
  eval_seconds    all evaluations together; wall_seconds: the process since it started.
The loop never reads a number from the GPU between evaluations (pretext's CUDA default,
train.host_reads = "auto" -> "log-steps", reads one every 50 steps), and --time-limit is
checked against the host's clock each step, so the run may overshoot it by the one or two
steps the host is ahead of the GPU.

Not in train_seconds but in pretext's wall time: pretext's own health signals
(health.every = 250, health.knn_every = 1000 on a 2,000-image slice) and its checkpoints
(train.checkpoint_every = 500) run inside its step loop; this script has neither.

How to run (from the repository root)
-------------------------------------
    /root/.cache/pretext/venv/bin/python bench/reference/simclr_recipe.py --json
    /root/.cache/pretext/venv/bin/python bench/reference/simclr_recipe.py \
        --data target/gpu/data/fashion-mnist --time-limit 240 --eval-steps 500 --json
    # smoke test on a CPU (under a minute on 2 cores; evaluates after steps 4 and 5):
    /root/.cache/pretext/venv/bin/python bench/reference/simclr_recipe.py --device cpu \
        --precision fp32 --batch 32 --max-steps 5 --train-subset 128 --test-subset 64 \
        --eval-every 1 --threads 2 --json

--data is a folder with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] (default
../shared/data/vision/fashion-mnist relative to the repository root).  Needs torch and numpy
only (no torchvision).

--augment device (default)  the views of each step are made by batched tensor ops on the
                            training device (pretext's data.augment = "auto" on CUDA: the
                            device): per-view crop boxes, flips, jitter factors and orders
                            drawn on the device, then gathers and elementwise ops.
--augment loader            a DataLoader with --workers processes (default 12 = the config's
                            data.workers), each building a whole step's views on the CPU with
                            the same function (pretext's data.augment = "host": each worker
                            thread builds whole batches), one torch thread per worker; the
                            main process copies them to the device (pinned memory).

Output: without --json, readable lines.  With --json, one JSON object per line, flushed at
once (a run killed by a timeout keeps what it printed):
  {"kind": "start", ...}    the plan: steps, steps_per_epoch, parameters, load_seconds, ...
  {"kind": "eval", "epoch", "step", "train_seconds", "knn20_accuracy", "knn200_accuracy",
   "loss", "eval_seconds", "wall_seconds"}                   one per evaluation
  {"kind": "summary", "time_to_target_s" (null if never reached), "time_to_target_step",
   "target", "target_k", "final_knn20_accuracy", "final_knn200_accuracy", "steps",
   "planned_steps", "epochs", "stopped" ("done", "max-steps", "time-limit", "target"),
   "train_seconds", "images_per_s", "data_wait_seconds" (loader only, else null),
   "load_seconds", "eval_seconds", "wall_seconds", "peak_allocated_mb" (CUDA, else null),
   "torch", "device", "gpu", "precision", "augment", "workers", "threads", "batch",
   "parameters", "final_loss"}
images_per_s = batch * steps / train_seconds (unique images, as pretext's images_per_second).

The recipe, and where each number comes from in pretext
-------------------------------------------------------
(`pretext pretrain --config configs/simclr-fmnist-gpu.toml --print-config` prints every
resolved value; "config" below is configs/simclr-fmnist-gpu.toml, the rest are defaults.)

Data (crates/pretext-data: source.rs, image_set.rs, batch_plan.rs)
  * train = train-* (60,000), test = t10k-* (10,000): a folder with both uses the given
    test split (data.holdout_fraction only applies without one).  1 channel.
  * data.image_size = 32 (config): every image is resized ONCE at load, 28 -> 32, by the
    image crate's resize with FilterType::Triangle on the u8 pixels, rounded back to u8.
    For up-sampling that is bilinear interpolation at pixel centres with edge clamping,
    i.e. F.interpolate(bilinear, align_corners=False), rounded half up (done here).
  * Batches (BatchPlan): epoch e visits a fresh permutation of the 60,000 images in
    consecutive batches of train.batch_size = 512 (config), the last partial batch dropped:
    60000 // 512 = 117 steps per epoch; train.epochs = 40.0 (config) gives
    ceil(40.0 * 117) = 4,680 steps (trainer.rs planned_steps).
Views (crates/pretext-augment: pipeline.rs, crop.rs, jitter.rs, color.rs; device path:
crates/pretext-methods/src/device_views.rs), two independent views per image, each:
  1. Random resized crop of the 32 x 32 image back to 32 x 32: views.crop_scale = [0.2, 1.0]
     (config), views.crop_ratio = [0.75, 1.3333334] (default, f32 values, used here as
     the same f32 values): torchvision's get_params -- up to 10 attempts of area ~
     U(scale) * H * W and aspect = exp(U(ln ratio)), w = round(sqrt(area * aspect)),
     h = round(sqrt(area / aspect)) (half to even), the first box that fits placed
     uniformly; else the central crop (the whole image here).  Resampled bilinearly with
     align_corners = False INSIDE the box (source coordinate (d + 0.5) * len / 32 - 0.5,
     clamped at 0, far tap clamped to the box's last pixel), no antialiasing: done with
     the same taps and gathers as device_views.rs (grid_sample would blend in pixels
     outside the box at its edges), then clamped to [0, 1].
  2. Horizontal flip with views.flip_probability = 0.5 (config).
  3. Colour jitter with views.jitter_probability = 0.8 (config), strengths
     views.jitter = {brightness 0.8, contrast 0.8, saturation 0.8, hue 0.2} (config,
     SimCLR's s = 1), the four in a uniformly random order.  On 1-channel images
     saturation and hue are identities (color.rs), so what remains is: brightness
     x * b, b ~ U[0.2, 1.8), clamp [0, 1]; contrast c * x + (1 - c) * mean(x),
     c ~ U[0.2, 1.8), mean over the view's pixels (in float64, as pretext), clamp [0, 1];
     brightness before contrast with probability 1/2.
  4. Grayscale: views.grayscale_probability = 0.0 (config); an identity on 1 channel anyway.
  5. Gaussian blur with views.blur_probability = 0.5 (config), sigma ~ U[0.1, 2.0)
     (views.blur_sigma default), kernel half width ceil(3 sigma) (blur.rs), reflect
     padding (gaussian_blur below).  Solarize: views.solarize_probability = 0.0
     (default): off.
  6. Clamp to [0, 1], then (x - 0.5) / 0.5 (input_normalization.rs INPUT_MEAN, INPUT_STD).
Network (crates/pretext-nn: resnet.rs, projector.rs, batch_norm.rs; tch 0.24 defaults)
  * backbone.kind = "resnet18" (config), backbone.resnet.stem = "cifar" (default), 1 input
    channel (backbone.input empty: the data's channels, no adapter):
      stem Conv2d(1 -> 64, 3x3, s1, p1, no bias) BN ReLU (no max-pool); 4 stages of 2
      BasicBlocks (64, 128, 256, 512; first block of stages 2-4 stride 2; 1x1 conv + BN
      shortcut where the shape changes); mean over H, W in float32 -> h [2B, 512].
  * method.simclr.projector (ProjectorConfig default): Linear(512 -> 512) BN1d ReLU
    Linear(512 -> 128).
  * BatchNorm eps 1e-5, momentum 0.1 (tch BatchNormConfig default).
  * 11,497,024 trainable parameters = ResNet-18 (1 channel) 11,167,680 + projector
    329,344 (checked against the weights.safetensors of a 1-step pretext run).
  * Initialization as tch draws it (not PyTorch's defaults): conv and linear weights
    kaiming_uniform (fan_in, gain sqrt(2): U(+-sqrt(6 / fan_in))), linear biases
    U(+-1 / sqrt(fan_in)), BatchNorm weight U(0, 1) and bias 0.
Loss (crates/pretext-methods/src/simclr.rs, crates/pretext-nn/src/loss/nt_xent.rs)
  * Both views go through the network as ONE batch x = cat(v1, v2) [2B, ...] (BatchNorm
    statistics over all 2B views); NT-Xent on z = cat(z1, z2) in float32:
    z / ||z||.clamp_min(1e-12), logits z z^T / tau with method.simclr.temperature = 0.2
    (config), diagonal -inf, target of row i is (i + B) mod 2B, mean cross-entropy.
Optimizer and schedule (crates/pretext-train: optimizer.rs, schedule.rs, step.rs)
  * optimizer.kind = "adamw", lr = 0.002, weight_decay = 0.0001 (config); betas
    (0.9, 0.999), eps 1e-8 (defaults).  Weight decay only on tensors with >= 2 dims (conv
    and linear weights); biases and BatchNorm parameters get none.  On CUDA pretext uses
    libtorch's fused AdamW kernel: here torch.optim.AdamW(fused=True) on CUDA.
  * Learning rate of 0-based step s of T = 4,680: linear warmup lr * (s + 1) / 500 for
    s < optimizer.warmup_steps = 500 (config), then cosine to optimizer.final_lr_ratio =
    0.01 (default): lr * (0.01 + 0.99 * 0.5 * (1 + cos(pi * (s - 500) / (T - 500)))).
  * optimizer.grad_clip = 5.0 (default): every gradient scaled by
    min(1, 5 / (global L2 norm + 1e-6)) -- torch.nn.utils.clip_grad_norm_, which is what
    pretext's on-device step (train_step_on_device) computes.
  * zero grads -> backward -> clip -> AdamW step, every step.
Precision (train.precision = "bf16" (config), train.tf32 = true (default);
crates/pretext-nn/src/precision.rs, crates/pretext-train/src/trainer.rs set_up_device)
  * The forward pass (encoder and projector) under torch.autocast(bfloat16); the pooled
    h comes out in float32 (tch mean_dim(.., images.kind())); the loss outside autocast on
    z.float().  Weights, gradients and AdamW state in float32.
  * TF32 on for float32 matmuls and convolutions; cudnn.benchmark on.
k-NN evaluation (crates/pretext-eval/src/probe.rs, features.rs; crates/pretext-nn/src/knn.rs)
  * Features: the encoder's h (before the projector), eval mode (BatchNorm running
    statistics), no autocast (float32), of the un-augmented images: u8 / 255, then
    (x - 0.5) / 0.5 (input.rs images_to_tensor).  `--labels 60000` makes the bank the whole
    training split (a stratified subset of all 60,000 is all of them).
  * ProbeConfig defaults: k in {20, 200}, temperature 0.07.  Bank and queries
    L2-normalised (clamp_min 1e-12); cosine similarity; the top k (sorted) vote with weight
    exp(sim / 0.07), scatter-added per class over 10 classes; argmax; queries in chunks of
    1024.  pretext computes the similarities in plain float32: on the CPU beside the linear
    probe, or where the features are with a k-NN-only probe (the `pretext probe` process
    leaves cuBLAS TF32 off, libtorch's default).  Here: on the device, float32, TF32 off
    for the matmul (TF32 for convolutions stays on, libtorch's default in the probe too).

What is NOT mirrored exactly
----------------------------
  * Random streams.  pretext draws every view from a ChaCha stream keyed by (seed, epoch,
    image, view), the epoch permutations from another, and initializes through libtorch's
    generator; here the permutations come from torch.Generator(seed, epoch) on the CPU and
    the views from one torch generator on the augmentation device (one per step in the
    loader's workers).  So the draws are different numbers from the same distributions,
    and the crop sampler draws all 10 attempts at once (only the first that fits is used,
    as in pretext) rather than stopping at the first.
  * Non-finite steps: pretext skips a step whose loss or gradient norm is not finite (on
    the device) and stops after train.max_nonfinite_steps = 20; this script takes every
    step (none are expected in bf16 without loss scaling; a NaN shows in final_loss).
  * pretext's health signals and checkpoints (see "Clocks") and its per-50-step read.
  * Evaluation batch: pretext encodes 256 images at a time; here --eval-batch (default
    1024).  In eval mode the features do not depend on it beyond float rounding.
  * --train-subset / --test-subset / --max-steps / --time-limit are test and budget knobs:
    a subset shrinks both the training set and the k-NN bank (and steps per epoch);
    stopping early keeps the 4,680-step schedule (as a pretext run cut off by a timeout).
"""

import argparse
import gzip
import hashlib
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

# ResNet-18 with the CIFAR stem and NT-Xent as gpu_step.py builds them for `pretext bench --large
# simclr-resnet18` (checked layer for layer there), here with the images' one channel. This
# script's folder is on sys.path when it runs.
from gpu_step import ResNet18, nt_xent

PROCESS_START = time.perf_counter()
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_DATA = os.path.join(REPO_ROOT, "..", "shared", "data", "vision", "fashion-mnist")


def f32(x: float) -> float:
    """A config value as pretext holds it (f32), widened to double as pretext widens it."""
    return float(np.float32(x))


# The recipe (see the module docstring for where each value comes from).
IMAGE_SIZE = 32
EPOCHS = 40.0
BATCH = 512
WORKERS = 12
TEMPERATURE = 0.2
CROP_SCALE = (f32(0.2), f32(1.0))
CROP_RATIO = (f32(3 / 4), f32(4 / 3))
CROP_ATTEMPTS = 10
FLIP_PROBABILITY = f32(0.5)
JITTER_PROBABILITY = f32(0.8)
BRIGHTNESS = f32(0.8)
CONTRAST = f32(0.8)
BLUR_PROBABILITY = f32(0.5)
BLUR_SIGMA = (f32(0.1), f32(2.0))
INPUT_MEAN, INPUT_STD = 0.5, 0.5
LR = 0.002
WEIGHT_DECAY = 1e-4
BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
WARMUP_STEPS = 500
FINAL_LR_RATIO = 0.01
GRAD_CLIP = 5.0
KNN_KS = (20, 200)
KNN_TEMPERATURE = 0.07
KNN_CHUNK = 1024
NUM_CLASSES = 10
EXPECTED_PARAMETERS = 11_497_024  # pretext's count for this config (1-channel images)


# ----------------------------------------------------------------------------- data

def read_idx(path: str, magic: int) -> np.ndarray:
    """A (gzipped) IDX file: magic 0x803 -> uint8 [N, H, W], 0x801 -> uint8 [N]."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        buf = f.read()
    found = int.from_bytes(buf[0:4], "big")
    if found != magic:
        raise ValueError(f"{path}: IDX magic {found:#x}, expected {magic:#x}")
    dims = buf[3]
    shape = [int.from_bytes(buf[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    data = np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != math.prod(shape):
        raise ValueError(f"{path}: expected {math.prod(shape)} values, found {data.size}")
    return data.reshape(shape)


def idx_path(folder: str, name: str) -> str:
    for candidate in (name + ".gz", name):
        path = os.path.join(folder, candidate)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{folder}: no {name}[.gz]")


def resize_like_pretext(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 [N, H, W] -> uint8 [N, 1, size, size] as pretext resizes at load (the image
    crate's Triangle filter: for up-sampling, bilinear at pixel centres with clamped edges,
    the f32 result rounded half up)."""
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = []
    for chunk in x.split(8192):
        y = F.interpolate(chunk.float(), size=(size, size), mode="bilinear",
                          align_corners=False)
        out.append(torch.floor(y + 0.5).clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def load_split(folder: str, prefix: str, limit) -> tuple:
    images = read_idx(idx_path(folder, f"{prefix}-images-idx3-ubyte"), 0x803)
    labels = read_idx(idx_path(folder, f"{prefix}-labels-idx1-ubyte"), 0x801)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return resize_like_pretext(images, IMAGE_SIZE), torch.from_numpy(labels.astype(np.int64))


def stream_seed(*tags: int) -> int:
    """A 63-bit seed from a tuple of integers (run seed, epoch, step, ...)."""
    digest = hashlib.blake2b(repr(tags).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class BatchPlan:
    """pretext's BatchPlan: epoch e visits a seeded permutation in consecutive batches,
    the last partial batch dropped; step s is batch s % steps_per_epoch of epoch
    s // steps_per_epoch."""

    def __init__(self, size: int, batch: int, seed: int, device: torch.device):
        if not 1 <= batch <= size:
            raise ValueError(f"batch {batch} must be in 1..={size} (the training images)")
        self.size, self.batch, self.seed, self.device = size, batch, seed, device
        self.steps_per_epoch = size // batch
        self._epoch, self._permutation = None, None

    def permutation(self, epoch: int) -> torch.Tensor:
        """Drawn on the CPU (the same order whatever the device), kept on `device`."""
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(stream_seed(self.seed, epoch))
            self._epoch = epoch
            self._permutation = torch.randperm(self.size, generator=generator).to(self.device)
        return self._permutation

    def indices(self, step: int) -> torch.Tensor:
        epoch, within = divmod(step, self.steps_per_epoch)
        return self.permutation(epoch)[within * self.batch:(within + 1) * self.batch]


# ----------------------------------------------------------------------------- views

def central_crop(height: int, width: int) -> tuple:
    """crop.rs central_crop_box: the fallback (top, left, height, width)."""
    in_ratio = width / height
    low, high = min(CROP_RATIO), max(CROP_RATIO)
    ch, cw = height, width
    if in_ratio < low:
        ch = min(max(round(width / low), 1), height)
    elif in_ratio > high:
        cw = min(max(round(height * high), 1), width)
    return (height - ch) // 2, (width - cw) // 2, ch, cw


def crop_boxes(batch: int, height: int, width: int, generator: torch.Generator,
               device: torch.device) -> tuple:
    """One RandomResizedCrop box per image (torchvision's get_params, all 10 attempts drawn
    at once; the first that fits wins, else the central crop): int64 (top, left, h, w)."""
    u = torch.rand(batch, CROP_ATTEMPTS, 2, dtype=torch.float64, generator=generator,
                   device=device)
    area = height * width * (CROP_SCALE[0] + (CROP_SCALE[1] - CROP_SCALE[0]) * u[..., 0])
    log_low, log_high = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    aspect = torch.exp(log_low + (log_high - log_low) * u[..., 1])
    cw = torch.round(torch.sqrt(area * aspect))  # half to even, as Python's round
    ch = torch.round(torch.sqrt(area / aspect))
    fits = (cw >= 1) & (cw <= width) & (ch >= 1) & (ch <= height)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)  # first attempt that fits
    any_fits = fits.any(1)
    top0, left0, ch0, cw0 = central_crop(height, width)
    ch = torch.where(any_fits, ch.gather(1, first).squeeze(1), float(ch0)).long()
    cw = torch.where(any_fits, cw.gather(1, first).squeeze(1), float(cw0)).long()
    offsets = torch.rand(batch, 2, dtype=torch.float64, generator=generator, device=device)
    top = torch.floor(offsets[:, 0] * (height - ch + 1)).long()
    left = torch.floor(offsets[:, 1] * (width - cw + 1)).long()
    top = torch.where(any_fits, top, top0)
    left = torch.where(any_fits, left, left0)
    return top, left, ch, cw


def bilinear_taps(offset: torch.Tensor, length: torch.Tensor, out: int) -> tuple:
    """crop.rs bilinear_taps for every box at once: absolute near / far source indices
    [B, out] and the far tap's weight, in float32 as pretext computes them."""
    d = torch.arange(out, device=offset.device, dtype=torch.float32)
    step = length.to(torch.float32).unsqueeze(1) / out
    source = ((d + 0.5) * step - 0.5).clamp_min(0.0)
    last = (length - 1).unsqueeze(1)
    near = torch.minimum(source.long(), last)  # truncation = floor for source >= 0
    far = torch.minimum(near + 1, last)
    far_weight = source - near.to(torch.float32)
    start = offset.unsqueeze(1)
    return near + start, far + start, far_weight


def resized_crops(images: torch.Tensor, boxes: tuple, out: int) -> torch.Tensor:
    """Each image's box resampled to out x out (device_views.rs resized_crops): columns
    blended within the two source rows, then the rows; clamped to [0, 1]."""
    b, c, _, width = images.shape
    top, left, ch, cw = boxes
    row_near, row_far, row_w = bilinear_taps(top, ch, out)
    col_near, col_far, col_w = bilinear_taps(left, cw, out)

    def rows(index: torch.Tensor) -> torch.Tensor:  # [B, C, out, W]
        return images.gather(2, index.view(b, 1, out, 1).expand(b, c, out, width))

    col_near = col_near.view(b, 1, 1, out).expand(b, c, out, out)
    col_far = col_far.view(b, 1, 1, out).expand(b, c, out, out)
    col_w = col_w.view(b, 1, 1, out)

    def blend_columns(source: torch.Tensor) -> torch.Tensor:
        return source.gather(3, col_near) * (1.0 - col_w) + source.gather(3, col_far) * col_w

    near, far = blend_columns(rows(row_near)), blend_columns(rows(row_far))
    row_w = row_w.view(b, 1, out, 1)
    return (near * (1.0 - row_w) + far * row_w).clamp(0.0, 1.0)


def make_view(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One SimCLR view of every image: float [B, 1, H, W] in [0, 1] -> normalized
    [B, 1, IMAGE_SIZE, IMAGE_SIZE], on images' device (the generator's too)."""
    b, _, height, width = images.shape
    device = images.device

    def coins(probability: float) -> torch.Tensor:  # [B, 1, 1, 1] booleans
        return (torch.rand(b, generator=generator, device=device) < probability).view(b, 1, 1, 1)

    def factors(strength: float) -> torch.Tensor:  # U[1 - s, 1 + s), [B, 1, 1, 1]
        u = torch.rand(b, generator=generator, device=device).view(b, 1, 1, 1)
        return (1.0 - strength) + 2.0 * strength * u

    x = resized_crops(images, crop_boxes(b, height, width, generator, device), IMAGE_SIZE)
    x = torch.where(coins(FLIP_PROBABILITY), x.flip(3), x)
    # Colour jitter: on one channel only brightness and contrast act; of the four drawn in a
    # random order, brightness comes before contrast with probability 1/2.
    jitter, brightness_first = coins(JITTER_PROBABILITY), coins(0.5)
    b_factor, c_factor = factors(BRIGHTNESS), factors(CONTRAST)

    def brightness(v: torch.Tensor) -> torch.Tensor:
        return (v * b_factor).clamp(0.0, 1.0)

    def contrast(v: torch.Tensor) -> torch.Tensor:
        mean = v.double().mean(dim=(1, 2, 3), keepdim=True).float()  # pretext sums in f64
        return (c_factor * v + (1.0 - c_factor) * mean).clamp(0.0, 1.0)

    x = torch.where(jitter & brightness_first, brightness(x), x)
    x = torch.where(jitter, contrast(x), x)
    x = torch.where(jitter & ~brightness_first, brightness(x), x)
    # Grayscale: an identity on one channel. Solarize: p = 0.
    x = torch.where(coins(BLUR_PROBABILITY), gaussian_blur(x, generator), x)
    return (x.clamp(0.0, 1.0) - INPUT_MEAN) / INPUT_STD


def gaussian_blur(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Every image blurred with its own sigma ~ U(BLUR_SIGMA) (blur.rs gaussian_kernel: half
    width ceil(3 sigma), capped at half the largest odd size <= the side; weights in float64,
    normalized, then float32), reflect padding, as two grouped convolutions
    (device_views.rs blur). The sigma is drawn for every image; the caller keeps those whose
    coin came up."""
    b, c, height, width = x.shape
    sigma = BLUR_SIGMA[0] + (BLUR_SIGMA[1] - BLUR_SIGMA[0]) * torch.rand(
        b, generator=generator, device=x.device)
    sigma = sigma.double().unsqueeze(1)  # [B, 1]
    largest_odd = min(height, width) - (1 - min(height, width) % 2)
    cap = largest_odd // 2
    widest = min(math.ceil(3 * BLUR_SIGMA[1]), cap)
    if widest == 0:
        return x
    offsets = torch.arange(-widest, widest + 1, device=x.device, dtype=torch.float64)
    half = torch.clamp(torch.ceil(3 * sigma), max=cap)  # each image's own half width
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2) * (offsets.abs() <= half)
    kernels = (weights / weights.sum(1, keepdim=True)).float()  # [B, 2 * widest + 1]
    kernels = kernels.repeat_interleave(c, 0).unsqueeze(1)  # [B * C, 1, K]
    y = x.reshape(1, b * c, height, width)
    y = F.conv2d(F.pad(y, (widest, widest, 0, 0), mode="reflect"), kernels.unsqueeze(2),
                 groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, widest, widest), mode="reflect"), kernels.unsqueeze(3),
                 groups=b * c)
    return y.reshape(b, c, height, width).clamp(0.0, 1.0)


def two_views(images_u8: torch.Tensor, generator: torch.Generator) -> tuple:
    x = images_u8.float() / 255.0
    return make_view(x, generator), make_view(x, generator)


class StepViews(Dataset):
    """--augment loader: item `step` is that step's two views, built on a worker from the
    plan's images with a generator seeded by (seed, step)."""

    def __init__(self, images: torch.Tensor, plan: BatchPlan, seed: int):
        self.images, self.plan, self.seed = images, plan, seed

    def __getitem__(self, step: int) -> tuple:
        generator = torch.Generator().manual_seed(stream_seed(self.seed, step, 1))
        return two_views(self.images[self.plan.indices(step)], generator)


def one_thread_per_worker(_worker: int) -> None:
    torch.set_num_threads(1)


# ----------------------------------------------------------------------------- model

class SimClr(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.encoder = ResNet18(in_channels)
        self.projector = nn.Sequential(
            nn.Linear(512, 512), nn.BatchNorm1d(512, eps=1e-5, momentum=0.1), nn.ReLU(),
            nn.Linear(512, 128))

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder(views))


def init_like_tch(model: nn.Module) -> None:
    """tch 0.24's initialization: conv / linear weights kaiming_uniform (fan_in, ReLU gain),
    linear biases U(+-1/sqrt(fan_in)) (= PyTorch's), BatchNorm weight U(0, 1), bias 0."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                bound = 1.0 / math.sqrt(module.weight.shape[1])
                nn.init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.uniform_(module.weight, 0.0, 1.0)
            nn.init.zeros_(module.bias)


def learning_rate(step: int, total: int) -> float:
    """schedule.rs learning_rate: linear warmup from 0, then cosine to FINAL_LR_RATIO."""
    if step < WARMUP_STEPS:
        return LR * (step + 1) / WARMUP_STEPS
    progress = min((step - WARMUP_STEPS) / max(total - WARMUP_STEPS, 1), 1.0)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return LR * (FINAL_LR_RATIO + (1.0 - FINAL_LR_RATIO) * cosine)


# ----------------------------------------------------------------------------- k-NN

@torch.inference_mode()
def encode(encoder: nn.Module, images_u8: torch.Tensor, device: torch.device,
           batch: int) -> torch.Tensor:
    """Eval-mode float32 features of un-augmented images (u8 / 255, normalized)."""
    features = []
    for chunk in images_u8.split(batch):
        x = (chunk.to(device, non_blocking=True).float() / 255.0 - INPUT_MEAN) / INPUT_STD
        features.append(encoder(x))
    return torch.cat(features)


@torch.inference_mode()
def knn_accuracy(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor,
                 query_labels: torch.Tensor, k: int) -> float:
    """knn.rs knn_classify (cosine, top k, weights exp(sim / 0.07), class votes)."""
    normalize = lambda t: t / t.norm(2, dim=1, keepdim=True).clamp_min(1e-12)  # noqa: E731
    bank, queries = normalize(bank.float()), normalize(queries.float())
    k = min(k, bank.shape[0])
    correct = torch.zeros((), dtype=torch.int64, device=bank.device)
    for chunk, truth in zip(queries.split(KNN_CHUNK), query_labels.split(KNN_CHUNK)):
        similarity, index = (chunk @ bank.t()).topk(k, dim=1, largest=True, sorted=True)
        weights = torch.exp(similarity / KNN_TEMPERATURE)
        scores = torch.zeros(chunk.shape[0], NUM_CLASSES, device=bank.device)
        scores.scatter_add_(1, bank_labels[index], weights)
        correct += (scores.argmax(1) == truth).sum()
    return correct.item() / queries.shape[0]


def evaluate(model: SimClr, data: dict, device: torch.device, batch: int) -> dict:
    """The k-NN rows of `pretext probe --labels 60000`: accuracy for every k."""
    cuda = device.type == "cuda"
    model.eval()
    bank = encode(model.encoder, data["train_images"], device, batch)
    queries = encode(model.encoder, data["test_images"], device, batch)
    if cuda:  # pretext's k-NN matmul is plain float32 (libtorch leaves TF32 off for it)
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    accuracies = {f"knn{k}_accuracy": knn_accuracy(
        bank, data["train_labels"], queries, data["test_labels"], k) for k in KNN_KS}
    if cuda:
        torch.backends.cuda.matmul.fp32_precision = "tf32"
    model.train()
    return accuracies


# ----------------------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="folder with Fashion-MNIST's four IDX files")
    p.add_argument("--device", choices=["cuda", "cpu"],
                   default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--epochs", type=float, default=EPOCHS,
                   help="passes over the training set; steps = ceil(epochs * steps/epoch)")
    p.add_argument("--batch", type=int, default=BATCH, help="images per step (views: 2x)")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--eval-every", type=float, default=2.0,
                   help="evaluate every this many epochs (0: only at the end)")
    p.add_argument("--eval-steps", type=int, default=None,
                   help="evaluate every this many steps instead (bench/gpu/run.sh: the steps "
                        "of pretext's kept checkpoints, train.checkpoint_every)")
    p.add_argument("--eval-batch", type=int, default=1024)
    p.add_argument("--target", type=float, default=0.90)
    p.add_argument("--target-k", type=int, choices=list(KNN_KS), default=20,
                   help="the k-NN whose accuracy is compared with --target")
    p.add_argument("--stop-at-target", action="store_true",
                   help="stop training at the first evaluation that reaches the target")
    p.add_argument("--time-limit", type=float, default=None,
                   help="stop when train_seconds passes this (a final evaluation follows)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", choices=["device", "loader"], default="device")
    p.add_argument("--workers", type=int, default=WORKERS, help="--augment loader processes")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N steps (tests)")
    p.add_argument("--train-subset", type=int, default=None,
                   help="the first N training images only (also the k-NN bank; tests)")
    p.add_argument("--test-subset", type=int, default=None,
                   help="the first N test images only (tests)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--json", action="store_true")
    return p.parse_args()


def emit(record: dict, as_json: bool, text: str) -> None:
    print(json.dumps(record) if as_json else text, flush=True)


def main() -> None:
    a = parse_args()
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.fp32_precision = "tf32"  # train.tf32 = true
        torch.backends.cudnn.conv.fp32_precision = "tf32"
        torch.backends.cudnn.benchmark = True

    # Data: read, resize 28 -> 32 once, and (device augmentation) move to the device.
    load_start = time.perf_counter()
    train_images, train_labels = load_split(a.data, "train", a.train_subset)
    test_images, test_labels = load_split(a.data, "t10k", a.test_subset)
    on_device = a.augment == "device"
    data = {
        "train_images": train_images.to(device) if on_device else train_images,
        "train_labels": train_labels.to(device),
        "test_images": test_images.to(device),
        "test_labels": test_labels.to(device),
    }
    if cuda:
        torch.cuda.synchronize(device)
    load_seconds = time.perf_counter() - load_start

    plan = BatchPlan(train_images.shape[0], a.batch, a.seed, device if on_device else "cpu")
    planned_steps = math.ceil(a.epochs * plan.steps_per_epoch)
    last_step = planned_steps if a.max_steps is None else min(a.max_steps, planned_steps)
    if a.eval_steps is not None:
        eval_interval = max(a.eval_steps, 0)
    elif a.eval_every > 0:
        eval_interval = max(round(a.eval_every * plan.steps_per_epoch), 1)
    else:
        eval_interval = 0

    torch.manual_seed(a.seed)
    model = SimClr(in_channels=train_images.shape[1])
    init_like_tch(model)
    model = model.to(device).train()
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=LR, betas=BETAS, eps=ADAM_EPS, fused=cuda)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")

    if on_device:
        generator = torch.Generator(device=device).manual_seed(stream_seed(a.seed, 0))

        def next_views(step: int) -> tuple:
            return two_views(data["train_images"][plan.indices(step)], generator)
    else:
        loader = DataLoader(
            StepViews(train_images, plan, a.seed), batch_size=None,
            sampler=range(last_step), num_workers=a.workers, pin_memory=cuda,
            worker_init_fn=one_thread_per_worker)
        batches = iter(loader)  # the workers start (and prefetch) before the clock

        def next_views(_step: int) -> tuple:
            return tuple(v.to(device, non_blocking=True) for v in next(batches))

    gpu = torch.cuda.get_device_name(device) if cuda else None
    emit({"kind": "start", "planned_steps": planned_steps, "last_step": last_step,
          "steps_per_epoch": plan.steps_per_epoch, "train_images": train_images.shape[0],
          "test_images": test_images.shape[0], "batch": a.batch, "eval_interval": eval_interval,
          "parameters": parameters, "expected_parameters": EXPECTED_PARAMETERS,
          "load_seconds": load_seconds, "device": a.device, "gpu": gpu,
          "precision": a.precision, "augment": a.augment, "torch": torch.__version__},
         a.json,
         f"pytorch simclr recipe: {planned_steps} steps planned ({plan.steps_per_epoch}/epoch, "
         f"{train_images.shape[0]} images, batch {a.batch}), running {last_step}; "
         f"{parameters:,} parameters (pretext: {EXPECTED_PARAMETERS:,}); {a.precision}, "
         f"{a.augment} views, {a.device}{f' ({gpu})' if gpu else ''}, torch {torch.__version__}; "
         f"data loaded in {load_seconds:.2f} s")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    # Training clock: `train_seconds` plus, while running, the time since `clock`.
    train_seconds = eval_seconds = data_wait = 0.0
    time_to_target = target_step = latest = loss = evaluated_at = None
    step, stopped = 0, "done"

    def run_eval() -> bool:
        """Evaluates with the clock paused (the caller stopped it); True at the target."""
        nonlocal eval_seconds, time_to_target, target_step, latest, evaluated_at
        eval_start, evaluated_at = time.perf_counter(), step
        latest = evaluate(model, data, device, a.eval_batch)
        seconds = time.perf_counter() - eval_start
        eval_seconds += seconds
        reached = latest[f"knn{a.target_k}_accuracy"] >= a.target
        if reached and time_to_target is None:
            time_to_target, target_step = train_seconds, step
        loss_value = loss.item() if loss is not None else None
        epoch = step / plan.steps_per_epoch
        emit({"kind": "eval", "epoch": epoch, "step": step, "train_seconds": train_seconds,
              **latest, "loss": loss_value, "eval_seconds": seconds,
              "wall_seconds": time.perf_counter() - PROCESS_START},
             a.json,
             f"eval epoch {epoch:.2f} step {step}: train {train_seconds:.1f} s, "
             + ", ".join(f"k-NN {k} {latest[f'knn{k}_accuracy']:.4f}" for k in KNN_KS)
             + f", loss {loss_value if loss_value is not None else float('nan'):.4f} "
             f"(eval {seconds:.1f} s)")
        return reached

    sync()
    clock = time.perf_counter()
    while step < last_step:
        if a.time_limit is not None and train_seconds + time.perf_counter() - clock >= a.time_limit:
            stopped = "time-limit"
            break
        waited = time.perf_counter()
        v1, v2 = next_views(step)
        data_wait += time.perf_counter() - waited
        lr = learning_rate(step, planned_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast:
            z = model(torch.cat([v1, v2]))
        n = v1.shape[0]
        loss = nt_xent(z[:n].float(), z[n:].float(), TEMPERATURE)  # float32, no autocast
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        step += 1
        # Evaluations inside the run (the one after the last step follows the loop).
        if eval_interval and step % eval_interval == 0 and step < last_step:
            sync()
            train_seconds += time.perf_counter() - clock
            if run_eval() and a.stop_at_target:
                stopped = "target"
                break
            sync()
            clock = time.perf_counter()
    else:
        if step < planned_steps:
            stopped = "max-steps"
    if stopped != "target":
        sync()
        train_seconds += time.perf_counter() - clock
    if evaluated_at != step:
        run_eval()
    if not on_device:
        del batches  # shut the workers down

    summary = {
        "kind": "summary",
        "time_to_target_s": time_to_target,
        "time_to_target_step": target_step,
        "target": a.target,
        "target_k": a.target_k,
        **{f"final_{key}": value for key, value in latest.items()},
        "steps": step,
        "planned_steps": planned_steps,
        "epochs": step / plan.steps_per_epoch,
        "stopped": stopped,
        "train_seconds": train_seconds,
        "images_per_s": a.batch * step / train_seconds if train_seconds > 0 else None,
        "data_wait_seconds": None if on_device else data_wait,
        "load_seconds": load_seconds,
        "eval_seconds": eval_seconds,
        "wall_seconds": time.perf_counter() - PROCESS_START,
        "peak_allocated_mb": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
        "torch": torch.__version__,
        "device": a.device,
        "gpu": gpu,
        "precision": a.precision,
        "augment": a.augment,
        "workers": None if on_device else a.workers,
        "threads": torch.get_num_threads(),
        "batch": a.batch,
        "parameters": parameters,
        "final_loss": loss.item() if loss is not None else None,
    }
    reached = (f"k-NN {a.target_k} >= {a.target} after {time_to_target:.1f} s (step "
               f"{target_step})" if time_to_target is not None
               else f"k-NN {a.target_k} never reached {a.target}")
    emit(summary, a.json,
         f"pytorch simclr recipe: {step}/{planned_steps} steps ({stopped}) in "
         f"{train_seconds:.1f} s of training ({summary['images_per_s'] or 0:.0f} images/s), "
         f"{reached}; final "
         + ", ".join(f"k-NN {k} {latest[f'knn{k}_accuracy']:.4f}" for k in KNN_KS)
         + f"; eval {eval_seconds:.1f} s, load {load_seconds:.1f} s, wall "
         f"{summary['wall_seconds']:.1f} s")


if __name__ == "__main__":
    main()
