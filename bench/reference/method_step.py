#!/usr/bin/env python3
"""PyTorch reference benchmark: one training step of a self-supervised method.

What it measures
----------------
Wall-clock time of one complete optimisation step of ONE method (``--method``:
simclr, moco, byol, dino, rotation, jigsaw or mae), built layer for layer like
pretext's Rust implementation, so that the Rust side can report a time ratio.
A step is everything the Rust training loop does per batch:

  optimizer.zero_grad(set_to_none=True)
  forward pass(es) of the online network(s) and, under torch.no_grad(), of the
  target / teacher / key network
  loss
  loss.item()                             (read every step, like the Rust side)
  loss.backward()
  optimizer.step()
  the post-step update: EMA of the target parameters (moco, byol, dino), the
  queue enqueue (moco), the center update (dino)

The inputs are fixed random tensors ~ N(0, 1), made once (no data loading, no
augmentation).  Reported are the median and the minimum over ``--iters`` timed
steps, after ``--warmup`` untimed steps.  Each step is timed with
``time.perf_counter`` around the whole step (with ``torch.cuda.synchronize()``
before reading the clock on CUDA).

How to run (from the repository root)
-------------------------------------
    /root/.cache/pretext/venv/bin/python bench/reference/method_step.py --method simclr
    /root/.cache/pretext/venv/bin/python bench/reference/method_step.py \
        --method dino --batch 256 --iters 10 --warmup 3 --threads 2 --json

With ``--json`` exactly one line is printed:
    {"method", "median_s", "min_s", "iters", "batch", "device", "threads", "torch"}

Shared encoder ("small-cnn") -- exact layer hyper-parameters
------------------------------------------------------------
Input: grayscale images 1 x S x S (S = 28 for full views; 12 for DINO's local
crops; 7 for jigsaw tiles).  The model is in train() mode (batch statistics;
running statistics updated).

  conv0  Conv2d(1  -> 32,  kernel 3, stride 1, padding 1, bias=True)
  bn0    BatchNorm2d(32,  eps=1e-5, momentum=0.1, affine=True, track_running_stats=True)
  ReLU
  MaxPool2d(kernel 2, stride 2)                       -> 32  x 14 x 14
  conv1  Conv2d(32 -> 64,  kernel 3, stride 1, padding 1, bias=True)
  bn1    BatchNorm2d(64,  eps=1e-5, momentum=0.1, affine=True)
  ReLU
  MaxPool2d(kernel 2, stride 2)                       -> 64  x 7 x 7
  conv2  Conv2d(64 -> 128, kernel 3, stride 1, padding 1, bias=True)
  bn2    BatchNorm2d(128, eps=1e-5, momentum=0.1, affine=True)
  ReLU
  mean over H, W                                      -> 128-d representation h

(12x12 locals: 12 -> 6 -> 3 -> 3x3; 7x7 tiles: 7 -> 3 -> 1 -> 1x1.)

MLP(in, hidden, out, bn):
  Linear(in -> hidden, bias=True)
  [BatchNorm1d(hidden, eps=1e-5, momentum=0.1, affine=True) if bn]
  ReLU
  Linear(hidden -> out, bias=True)

All layers use PyTorch default initialisation:
  * Conv2d / Linear weight: kaiming_uniform_(a=sqrt(5)), i.e.
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  * BatchNorm: weight = 1, bias = 0, running_mean = 0, running_var = 1.

Optimiser (every method): torch.optim.AdamW(trainable parameters, lr=1e-3,
betas=(0.9, 0.999), eps=1e-8, weight_decay=0), zero_grad(set_to_none=True)
each step.  Target / teacher / key networks are deep copies of the online ones
made right after construction, requires_grad=False, kept in train() mode and
run under torch.no_grad().  EMA updates touch parameters only (not BatchNorm
buffers; the copies keep their own running statistics), one parameter at a
time: target.mul_(m).add_(online, alpha=1 - m).
L2 normalize = F.normalize(x, dim=1) (eps=1e-12).

Methods (N = --batch)
---------------------
simclr    views v1, v2 [N,1,28,28]; h = enc(cat(v1, v2)) [2N,128];
          z = MLP(128, 512, 128, bn=True)(h); NT-Xent, tau = 0.5, over the 2N
          rows: z = normalize(z); sim = z @ z.T / tau; sim[i,i] = -inf;
          target(i) = (i + N) mod 2N; cross_entropy (mean).
moco      MoCo v2.  q = MLP(128, 512, 128, bn=False)(enc(v1)); key encoder +
          key MLP (EMA copies) give k = key_mlp(key_enc(v2)) under no_grad
          (one forward per view: BatchNorm statistics per view).  Queue: buffer
          [K=8192, 128] of normalized N(0,1) vectors and an int pointer.
          q, k normalized; logits = cat([(q*k).sum(1, keepdim=True),
          q @ queue.T], 1) / 0.2; cross_entropy with target 0.
          After the optimizer step: EMA with momentum m = 0.999 over encoder +
          MLP parameters; then the normalized k is written to rows
          (pointer + i) mod K (only the last K rows when N > K) and
          pointer = (pointer + N) mod K.
byol      online enc, projector MLP(128, 512, 128, bn=True), predictor
          MLP(128, 512, 128, bn=True); target enc + projector (EMA copies).
          x = cat(v1, v2); p = predictor(projector(enc(x)));
          t = target_projector(target_enc(x)) under no_grad.
          loss = nmse(p[:N], t[N:]) + nmse(p[N:], t[:N]),
          nmse(a, b) = (2 - 2 * (normalize(a) * normalize(b)).sum(1)).mean().
          After the step: EMA with tau = 1 - (1 - 0.996) * (cos(pi*step/1000) + 1)/2
          (step = index of the step in this run, warmup steps included,
          starting at 0; total 1000 steps).
dino      views: 2 globals [N,1,28,28] and 6 locals [N,1,12,12].  DINO head:
          Linear(128 -> 512) GELU(exact) Linear(512 -> 512) GELU
          Linear(512 -> 128) -> normalize -> x @ normalize(V, dim=1).T, V a
          parameter [4096, 128] initialised U(-1/sqrt(128), 1/sqrt(128))
          (weight-normalised last layer, g fixed to 1, no bias).
          Student: s_g = head(enc(cat(globals))), s_l = head(enc(cat(locals)))
          (two forward passes, one per resolution); cat(s_g, s_l) is split
          into 8 crops of N rows (globals first).  Teacher (EMA copies of
          enc + head): t = head_t(enc_t(cat(globals))) split into 2 crops.
          center: buffer [1, 4096] of zeros.  Loss: for teacher crop i in 0..2,
          p_t = softmax((t_i - center) / 0.04); for every student crop j != i:
          term = (-(p_t * log_softmax(s_j / 0.1))).sum(1).mean() (log_softmax
          computed once per student crop); loss = mean over the 14 pairs.
          After the step: EMA with momentum 1 - (1 - 0.996) * (cos(pi*step/1000)
          + 1)/2 (step as for byol); then center = 0.9 * center
          + 0.1 * cat(t crops).mean(0, keepdim=True) (in place).
rotation  4 views [N,1,28,28] (stand-ins for the 0/90/180/270 rotations);
          h = enc(cat of the 4) [4N,128]; logits = MLP(128, 512, 4, bn=True)(h);
          targets = arange(4).repeat_interleave(N); cross_entropy.
jigsaw    9 tiles [N,1,7,7]; h = enc(cat of the 9 tiles) [9N,128];
          per_image = h.view(9, N, 128).permute(1, 0, 2).reshape(N, 1152);
          logits = MLP(1152, 512, 100, bn=True)(per_image); targets: fixed
          random ints in [0, 100) of shape [N]; cross_entropy.
mae       MAE on ViT-Tiny/4 (not the small CNN): one view [N,1,28,28].
          Encoder: patch embedding Conv2d(1 -> 192, kernel 4, stride 4) -> 49
          tokens (row-major), + learned positions [1, 50, 192] (N(0, 0.02));
          learned [CLS] [1, 1, 192] (N(0, 0.02)) + position 0.  Masking per
          sample: noise = rand(N, 49); shuffle = argsort(noise); restore =
          argsort(shuffle); keep = shuffle[:, :12] (round(0.25 * 49)); the
          encoder reads [CLS] + the 12 kept tokens (gather).  12 pre-LN blocks:
          x += out(SDPA(q(LN(x)), k(LN(x)), v(LN(x)))), 3 heads (separate
          Linear q, k, v, out 192 -> 192); x += Linear(768 -> 192)(GELU(exact)(
          Linear(192 -> 768)(LN(x)))); LayerNorm eps 1e-6; final LayerNorm.
          Decoder: Linear(192 -> 128); mask token [1, 1, 128] (N(0, 0.02))
          repeated for the 37 hidden patches; cat(kept, masks) gathered with
          restore; [CLS] in front; + fixed 2-D sin-cos positions [1, 50, 128]
          (zero row for [CLS]); 2 pre-LN blocks of width 128, 4 heads, MLP 512;
          final LayerNorm; Linear(128 -> 16) on the 49 patch tokens.
          Loss: target = patchify(images) [N, 49, 16], standardized per patch
          ((x - mean) / sqrt(var_unbiased + 1e-6)); per-patch MSE averaged
          over the hidden patches.

Seeds: torch.manual_seed(0) before building the models (and the MoCo queue),
then the inputs and targets are drawn from the same generator on the CPU and
moved to --device.
"""

import argparse
import copy
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

METHODS = ["simclr", "moco", "byol", "dino", "rotation", "jigsaw", "mae"]
EMA_TOTAL_STEPS = 1000


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------
def conv_bn_relu(cin: int, cout: int) -> list:
    return [
        nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1, bias=True),
        nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1),
        nn.ReLU(inplace=True),
    ]


class Encoder(nn.Module):
    """small-cnn: widths 32, 64, 128; 2x2 max-pool after the first two layers."""

    def __init__(self, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn_relu(in_channels, 32),
            nn.MaxPool2d(2),
            *conv_bn_relu(32, 64),
            nn.MaxPool2d(2),
            *conv_bn_relu(64, 128),
        )
        self.dim = 128

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))  # [B, 128]


def mlp(cin: int, hidden: int, cout: int, bn: bool) -> nn.Sequential:
    layers = [nn.Linear(cin, hidden, bias=True)]
    if bn:
        layers.append(nn.BatchNorm1d(hidden, eps=1e-5, momentum=0.1))
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden, cout, bias=True)]
    return nn.Sequential(*layers)


class DinoHead(nn.Module):
    def __init__(self, cin: int = 128, hidden: int = 512, bottleneck: int = 128,
                 out: int = 4096):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(cin, hidden), nn.GELU(),
            nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, bottleneck),
        )
        bound = 1.0 / math.sqrt(bottleneck)
        self.last_direction = nn.Parameter(
            torch.empty(out, bottleneck).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.mlp(x), dim=1)
        return z @ F.normalize(self.last_direction, dim=1).t()


def frozen_copy(module: nn.Module) -> nn.Module:
    target = copy.deepcopy(module).train()
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(pairs: list, momentum: float) -> None:
    """target <- m * target + (1 - m) * online, parameters only."""
    for target, online in pairs:
        target.mul_(momentum).add_(online, alpha=1.0 - momentum)


def param_pairs(targets: list, onlines: list) -> list:
    pairs = []
    for t, o in zip(targets, onlines):
        pairs += list(zip(t.parameters(), o.parameters()))
    return pairs


def cosine_momentum(base: float, step: int, total: int = EMA_TOTAL_STEPS) -> float:
    return 1.0 - (1.0 - base) * (math.cos(math.pi * step / total) + 1.0) / 2.0


def adamw(modules: list) -> torch.optim.Optimizer:
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                             weight_decay=0.0)


def randn(*shape, dev):
    return torch.randn(*shape).to(dev)


# --------------------------------------------------------------------------
# Methods: each builder returns step(step_index) -> float (the loss value)
# --------------------------------------------------------------------------
def build_simclr(n: int, dev: torch.device):
    enc = Encoder().to(dev).train()
    proj = mlp(128, 512, 128, bn=True).to(dev).train()
    opt = adamw([enc, proj])
    v1, v2 = randn(n, 1, 28, 28, dev=dev), randn(n, 1, 28, 28, dev=dev)
    tau = 0.5
    eye = torch.eye(2 * n, dtype=torch.bool, device=dev)
    target = (torch.arange(2 * n, device=dev) + n) % (2 * n)

    def step(_i: int) -> float:
        opt.zero_grad(set_to_none=True)
        z = F.normalize(proj(enc(torch.cat([v1, v2]))), dim=1)
        sim = (z @ z.t()) / tau
        sim = sim.masked_fill(eye, float("-inf"))
        loss = F.cross_entropy(sim, target)
        value = loss.item()
        loss.backward()
        opt.step()
        return value

    return step


def build_moco(n: int, dev: torch.device):
    enc = Encoder().to(dev).train()
    proj = mlp(128, 512, 128, bn=False).to(dev).train()
    key_enc, key_proj = frozen_copy(enc), frozen_copy(proj)
    pairs = param_pairs([key_enc, key_proj], [enc, proj])
    opt = adamw([enc, proj])
    queue_size, temperature, momentum = 8192, 0.2, 0.999
    queue = F.normalize(torch.randn(queue_size, 128), dim=1).to(dev)
    state = {"ptr": 0}
    v1, v2 = randn(n, 1, 28, 28, dev=dev), randn(n, 1, 28, 28, dev=dev)
    zero = torch.zeros(n, dtype=torch.long, device=dev)

    def step(_i: int) -> float:
        opt.zero_grad(set_to_none=True)
        q = F.normalize(proj(enc(v1)), dim=1)
        with torch.no_grad():
            k = F.normalize(key_proj(key_enc(v2)), dim=1)
        positive = (q * k).sum(1, keepdim=True)
        negative = q @ queue.t()
        logits = torch.cat([positive, negative], 1) / temperature
        loss = F.cross_entropy(logits, zero)
        value = loss.item()
        loss.backward()
        opt.step()
        ema_update(pairs, momentum)
        with torch.no_grad():
            skip = max(n - queue_size, 0)
            rows = (state["ptr"] + torch.arange(skip, n, device=dev)) % queue_size
            queue[rows] = k[skip:]
            state["ptr"] = (state["ptr"] + n) % queue_size
        return value

    return step


def build_byol(n: int, dev: torch.device):
    enc = Encoder().to(dev).train()
    projector = mlp(128, 512, 128, bn=True).to(dev).train()
    predictor = mlp(128, 512, 128, bn=True).to(dev).train()
    t_enc, t_proj = frozen_copy(enc), frozen_copy(projector)
    pairs = param_pairs([t_enc, t_proj], [enc, projector])
    opt = adamw([enc, projector, predictor])
    v1, v2 = randn(n, 1, 28, 28, dev=dev), randn(n, 1, 28, 28, dev=dev)

    def nmse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (2 - 2 * (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1)).mean()

    def step(i: int) -> float:
        opt.zero_grad(set_to_none=True)
        x = torch.cat([v1, v2])
        p = predictor(projector(enc(x)))
        with torch.no_grad():
            t = t_proj(t_enc(x))
        loss = nmse(p[:n], t[n:]) + nmse(p[n:], t[:n])
        value = loss.item()
        loss.backward()
        opt.step()
        ema_update(pairs, cosine_momentum(0.996, i))
        return value

    return step


def build_dino(n: int, dev: torch.device):
    enc = Encoder().to(dev).train()
    head = DinoHead().to(dev).train()
    t_enc, t_head = frozen_copy(enc), frozen_copy(head)
    pairs = param_pairs([t_enc, t_head], [enc, head])
    opt = adamw([enc, head])
    center = torch.zeros(1, 4096, device=dev)
    student_temp, teacher_temp, center_momentum = 0.1, 0.04, 0.9
    globals_ = [randn(n, 1, 28, 28, dev=dev) for _ in range(2)]
    locals_ = [randn(n, 1, 12, 12, dev=dev) for _ in range(6)]

    def step(i: int) -> float:
        opt.zero_grad(set_to_none=True)
        g = torch.cat(globals_)
        s_g = head(enc(g))
        s_l = head(enc(torch.cat(locals_)))
        student = torch.cat([s_g, s_l]).split(n, 0)  # 8 crops
        with torch.no_grad():
            teacher = t_head(t_enc(g)).split(n, 0)  # 2 crops
            targets = [F.softmax((t - center) / teacher_temp, dim=-1) for t in teacher]
        log_preds = [F.log_softmax(s / student_temp, dim=-1) for s in student]
        total, pairs_seen = None, 0
        for ti, p_t in enumerate(targets):
            for si, log_p in enumerate(log_preds):
                if si == ti:
                    continue
                term = (-(p_t * log_p)).sum(1).mean()
                total = term if total is None else total + term
                pairs_seen += 1
        loss = total / pairs_seen
        value = loss.item()
        loss.backward()
        opt.step()
        ema_update(pairs, cosine_momentum(0.996, i))
        with torch.no_grad():
            batch_center = torch.cat(teacher).mean(0, keepdim=True)
            center.mul_(center_momentum).add_(batch_center, alpha=1 - center_momentum)
        return value

    return step


def build_rotation(n: int, dev: torch.device):
    enc = Encoder().to(dev).train()
    clf = mlp(128, 512, 4, bn=True).to(dev).train()
    opt = adamw([enc, clf])
    views = [randn(n, 1, 28, 28, dev=dev) for _ in range(4)]
    targets = torch.arange(4, device=dev).repeat_interleave(n)

    def step(_i: int) -> float:
        opt.zero_grad(set_to_none=True)
        logits = clf(enc(torch.cat(views)))
        loss = F.cross_entropy(logits, targets)
        value = loss.item()
        loss.backward()
        opt.step()
        return value

    return step


def build_jigsaw(n: int, dev: torch.device):
    enc = Encoder().to(dev).train()
    clf = mlp(9 * 128, 512, 100, bn=True).to(dev).train()
    opt = adamw([enc, clf])
    tiles = [randn(n, 1, 7, 7, dev=dev) for _ in range(9)]
    targets = torch.randint(0, 100, (n,)).to(dev)

    def step(_i: int) -> float:
        opt.zero_grad(set_to_none=True)
        h = enc(torch.cat(tiles))  # [9N, 128]
        per_image = h.view(9, n, 128).permute(1, 0, 2).reshape(n, 9 * 128)
        loss = F.cross_entropy(clf(per_image), targets)
        value = loss.item()
        loss.backward()
        opt.step()
        return value

    return step


class Block(nn.Module):
    """Pre-LN transformer block with separate q, k, v projections (pretext's layout)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.norm1(x)
        split = lambda p: p(h).view(b, t, self.heads, d // self.heads).transpose(1, 2)
        context = F.scaled_dot_product_attention(split(self.q), split(self.k), split(self.v))
        x = x + self.out(context.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """[1, 1 + grid^2, dim]: a zero row for [CLS], then MAE's 2-D sin-cos table."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    def axis(positions):
        angles = positions.reshape(-1, 1).double() * omega
        return torch.cat([angles.sin(), angles.cos()], 1)
    table = torch.cat([axis(cols), axis(rows)], 1).float()
    return torch.cat([torch.zeros(1, dim), table]).unsqueeze(0)


def patchify(images: torch.Tensor, p: int) -> torch.Tensor:
    n, c, s, _ = images.shape
    g = s // p
    x = images.reshape(n, c, g, p, g, p)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(n, g * g, p * p * c)


def build_mae(n: int, dev: torch.device):
    dim, depth, heads, mlp_dim, patch = 192, 12, 3, 768, 4
    ddim, ddepth, dheads = 128, 2, 4
    grid, tokens = 7, 49
    keep = round(tokens * 0.25)
    enc = nn.ModuleDict({
        "patch": nn.Conv2d(1, dim, patch, stride=patch),
        "blocks": nn.Sequential(*[Block(dim, heads, mlp_dim) for _ in range(depth)]),
        "norm": nn.LayerNorm(dim, eps=1e-6),
    })
    cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
    pos = nn.Parameter(torch.randn(1, 1 + tokens, dim) * 0.02)
    dec = nn.ModuleDict({
        "embed": nn.Linear(dim, ddim),
        "blocks": nn.Sequential(*[Block(ddim, dheads, 4 * ddim) for _ in range(ddepth)]),
        "norm": nn.LayerNorm(ddim, eps=1e-6),
        "pred": nn.Linear(ddim, patch * patch),
    })
    mask_token = nn.Parameter(torch.randn(1, 1, ddim) * 0.02)
    for m in (enc, dec):
        m.to(dev).train()
    cls, pos, mask_token = (nn.Parameter(t.detach().to(dev)) for t in (cls, pos, mask_token))
    dec_pos = sincos_2d(ddim, grid).to(dev)
    params = list(enc.parameters()) + list(dec.parameters()) + [cls, pos, mask_token]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    images = randn(n, 1, 28, 28, dev=dev)

    def gather(x, index):
        return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))

    def step(_i: int) -> float:
        opt.zero_grad(set_to_none=True)
        x = enc["patch"](images).flatten(2).transpose(1, 2) + pos[:, 1:]
        shuffle = torch.rand(n, tokens, device=dev).argsort(1)
        restore = shuffle.argsort(1)
        x = gather(x, shuffle[:, :keep])
        x = torch.cat([(cls + pos[:, :1]).expand(n, -1, -1), x], 1)
        latent = enc["norm"](enc["blocks"](x))
        y = dec["embed"](latent)
        masks = mask_token.expand(n, tokens - keep, -1)
        ordered = gather(torch.cat([y[:, 1:], masks], 1), restore)
        y = torch.cat([y[:, :1], ordered], 1) + dec_pos
        pred = dec["pred"](dec["norm"](dec["blocks"](y)))[:, 1:]
        target = patchify(images, patch)
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
        hidden = torch.ones(n, tokens, device=dev)
        hidden[:, :keep] = 0
        hidden = hidden.gather(1, restore)
        loss = (((pred - target) ** 2).mean(-1) * hidden).sum() / hidden.sum()
        value = loss.item()
        loss.backward()
        opt.step()
        return value

    return step


BUILDERS = {
    "simclr": build_simclr,
    "moco": build_moco,
    "byol": build_byol,
    "dino": build_dino,
    "rotation": build_rotation,
    "jigsaw": build_jigsaw,
    "mae": build_mae,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--batch", type=int, default=256, help="N images per step")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: torch default)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"

    torch.manual_seed(0)
    step = BUILDERS[args.method](args.batch, dev)

    index = 0
    loss = float("nan")
    for _ in range(args.warmup):
        loss = step(index)
        index += 1
    if cuda:
        torch.cuda.synchronize()

    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        loss = step(index)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        index += 1

    res = {
        "method": args.method,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "iters": args.iters,
        "batch": args.batch,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if args.json:
        print(json.dumps(res))
    else:
        print(f"pytorch {args.method} step: median {res['median_s'] * 1e3:.1f} ms, "
              f"min {res['min_s'] * 1e3:.1f} ms over {args.iters} iters "
              f"(batch {args.batch}, {args.device}, {res['threads']} threads, "
              f"torch {torch.__version__}, last loss {loss:.4f})")


if __name__ == "__main__":
    main()
