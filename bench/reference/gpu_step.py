#!/usr/bin/env python3
"""PyTorch reference benchmark: one training step of a large network (GPU-sized).

What it measures
----------------
Wall-clock time, and memory, of one complete optimisation step of ONE of three large
networks (``--model``), built layer for layer and with the same hyper-parameters as
pretext's Rust implementation, so that ``pretext bench --large ...`` can be compared with it
step for step (on an H100).  A step is what pretext's step benchmark does per batch:

  with autocast (bf16 only):   forward pass (train mode) -> the network's outputs
  with autocast disabled:      loss on outputs.float()   (pretext computes losses in fp32)
  the per-step metric pretext's method reads back (see "Metrics"; --no-metrics drops it)
  loss.item()
  optimizer.zero_grad(set_to_none=True)
  loss.backward()
  optimizer.step()   AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0),
                     weights and optimizer state in float32; --adamw picks PyTorch's
                     implementation (default: foreach on CUDA; pretext's own optimizer is a
                     per-parameter loop, --adamw for-loop, and zeroes grads with zero_())
  (none of the three methods has a post-step update: no EMA, queue or center)

The inputs are fixed random tensors made once from a seeded generator (no data loading, no
augmentation).  Reported are the median and the minimum over ``--iters`` timed steps, after
``--warmup`` untimed steps; each step is timed with ``time.perf_counter`` around the whole
step, with ``torch.cuda.synchronize()`` before reading the clock on CUDA.

--precision fp32   float32 throughout; on CUDA TF32 matmuls/convolutions unless --no-tf32
                   (torch.backends.cuda.matmul.allow_tf32 / torch.backends.cudnn.allow_tf32,
                   the flags pretext's `train.tf32` sets through libtorch).
--precision bf16   the forward pass inside torch.autocast(<device>, dtype=torch.bfloat16);
                   the loss outside it (autocast disabled) on the outputs cast to float32.
cuDNN's autotuner (torch.backends.cudnn.benchmark) is on by default on CUDA, as in pretext.

Memory (CUDA only; null elsewhere), measured from process start (peak stats never reset):
  peak_allocated_mb  torch.cuda.max_memory_allocated() / 2**20
  peak_reserved_mb   torch.cuda.max_memory_reserved() / 2**20
  gpu_used_mb        device-wide used memory right after the timed steps, from
                     `nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i I`
                     (I = the entry of CUDA_VISIBLE_DEVICES for the device when set, else
                     its index); null when nvidia-smi is absent or fails.

How to run (from the repository root)
-------------------------------------
    /root/.cache/pretext/venv/bin/python bench/reference/gpu_step.py --model simclr-resnet18
    /root/.cache/pretext/venv/bin/python bench/reference/gpu_step.py --model mae-vit-s16 \
        --precision bf16 --json
    /root/.cache/pretext/venv/bin/python bench/reference/gpu_step.py --model bert-base \
        --batch 2 --warmup 0 --iters 1 --device cpu --threads 1 --json     # smoke test

With ``--json`` exactly one line is printed, with the keys
    model, median_s, min_s, mean_s, iters, warmup, batch, input, device, gpu, threads, torch,
    precision, tf32, cudnn_benchmark, adamw, metrics, parameters, final_loss,
    peak_allocated_mb, peak_reserved_mb, gpu_used_mb
and per model: masked_tokens (bert-base), visible_patches (mae-vit-s16).

Initialisation (irrelevant to speed): PyTorch's defaults (BatchNorm weight 1 where tch draws
U(0, 1)); embeddings, [CLS], positions, mask token N(0, 0.02).  torch.manual_seed(0) before
building; inputs from a CPU torch.Generator seeded 0, then moved to --device.

Models -- exact layer hyper-parameters (for matching on the Rust side)
-----------------------------------------------------------------------
simclr-resnet18  (SimClr + Backbone resnet18 + ProjectorConfig::default(); 11,498,176
                 trainable parameters = ResNet-18 11,168,832 + projector 329,344)
  Input: two views v1, v2, each [B, 3, 32, 32] ~ N(0, 1), default B = 512.  Both views go
  through the network as ONE batch x = cat([v1, v2]) [2B, ...], so every BatchNorm sees the
  2B views together (simclr.rs SimClr::loss).  Train mode (batch statistics).
  ResNet-18, CIFAR stem (resnet.rs); BatchNorm2d eps 1e-5, momentum 0.1, affine; all convs
  bias=False; ReLU not in place:
    stem   Conv2d(3 -> 64, k3, s1, p1) BN(64) ReLU                 (no max-pool)
    layer1 2 x BasicBlock(64 -> 64, stride 1)                      32 x 32
    layer2 BasicBlock(64 -> 128, stride 2), BasicBlock(128 -> 128)  16 x 16
    layer3 BasicBlock(128 -> 256, stride 2), BasicBlock(256 -> 256)  8 x 8
    layer4 BasicBlock(256 -> 512, stride 2), BasicBlock(512 -> 512)  4 x 4
    BasicBlock(i -> o, s): y = BN(conv3x3(o -> o, s1)(ReLU(BN(conv3x3(i -> o, s)(x)))));
      skip = BN(Conv2d(i -> o, k1, stride s)(x)) when s != 1 or i != o, else x;
      out = ReLU(y + skip)
    h = mean over (H, W) with dtype float32 (tch mean_dim(.., images.kind())) -> [2B, 512]
  Projector: Linear(512 -> 512) BatchNorm1d(512, eps 1e-5) ReLU Linear(512 -> 128) -> z
  Loss NT-Xent (nt_xent.rs), tau = 0.5, in float32: z = cat(z[:B], z[B:]);
    z = z / ||z||_2.clamp_min(1e-12); logits = z @ z.T / tau; diagonal -> -inf;
    target(i) = (i + B) mod 2B; nll_loss(log_softmax(logits, -1)) (mean over 2B rows).
  Metrics: none.

mae-vit-s16  (Mae + MaeConfig::default() + Backbone vit with VitConfig::small(): 22,210,944
             trainable parameters = ViT-S/16 encoder 21,665,664 + decoder 545,280)
  Input: images [B, 3, 224, 224] ~ N(0, 1), default B = 128.  patch p = 16, grid 14 x 14,
  N = 196 patches; mask ratio 0.75: round(0.75 N) = 147 hidden, K = 49 visible per image.
  Masking per step, per sample (patches.rs random_masking): noise = rand(B, N) on the
  device; shuffle = argsort(noise); restore = argsort(shuffle); keep = shuffle[:, :K];
  mask = ones(B, N); mask[:, :K] = 0; mask = mask.gather(1, restore)  (1 = hidden).
  Encoder (vit.rs): patch_embed Conv2d(3 -> 384, k16, s16, bias=True) -> [B, 196, 384]
    (row-major) + learned positions [1, 197, 384][:, 1:]; gather the K kept tokens; [CLS]
    [1, 1, 384] + position 0 in front; dropout 0.0 -> 12 pre-LN blocks (see "Block"),
    width 384, 6 heads, MLP 1536, LayerNorm eps 1e-6, dropout 0.0; final LayerNorm.
  Decoder (mae.rs): Linear(384 -> 128) on [CLS] + K; mask token [1, 1, 128] expanded to
    the N - K hidden slots; cat(kept, masks) gathered with restore; [CLS] in front; + fixed
    2-D sin-cos positions [1, 197, 128] (zero row for [CLS]; first half column, second
    half row, omega_i = 10000^(-i/32)); 2 pre-LN blocks of width 128, 4 heads, MLP 512,
    eps 1e-6, dropout 0.0; final LayerNorm; Linear(128 -> 768) on the 196 patch tokens.
  Loss (norm_pix_loss, in float32): target = patchify(images) [B, 196, 768] (per patch:
    pixel rows, channels innermost); target = (t - mean) / sqrt(var_unbiased + 1e-6) per
    patch; loss = sum(mean((pred - target)^2, -1) * mask) / sum(mask).clamp_min(1).
  Metrics: reconstruction_gain = 1 - loss.item() / flat.item(), flat = the same loss of an
    all-zeros prediction computed under no_grad (mae.rs Mae::loss).

bert-base  (BertMlm + TransformerConfig as below, vocab 30 522: 109,514,298 trainable
           parameters -- Hugging Face BertForMaskedLM's count)
  Input: token ids [B, 128], default B = 128, drawn uniformly from [5, 30522) (ids 0..4 are
  the special [PAD] [UNK] [CLS] [SEP] [MASK]; [PAD] = 0, so no padding).  Exactly
  round(0.15 * 128) = 19 positions per sequence are chosen (masked_tokens = 19 B) and
  corrupted as BERT does (80% [MASK] = 4, 10% a random ordinary id, 10% kept); labels = the
  original id at chosen positions, -100 (pretext's IGNORED_LABEL) elsewhere.
  Encoder (transformer/model.rs, blocks.rs), post-LN (norm_first = false), bidirectional:
    word [30522, 768] + position [512, 768] (positions 0..T-1) + token type [2, 768] (all
    type 0) embeddings; LayerNorm(768, eps 1e-12); dropout 0.1.  The attention mask is
    always passed to SDPA: ids != pad -> bool [B, 1, 1, T] (TextEncoder::states), so SDPA
    cannot pick the flash kernel.  12 post-LN blocks, width 768, 12 heads, MLP 3072,
    dropout 0.1, eps 1e-12; no final LayerNorm.
  MLM head (bert_mlm.rs): states at the chosen positions (masked_select) [M, 768] ->
    Linear(768 -> 768) -> GELU (exact) -> LayerNorm(768, eps 1e-12) -> @ word_embeddings.T
    (tied, no separate decoder weight) + bias [30522] (zeros).  Under bf16 the matmul gives
    bf16 and the fp32 bias promotes the logits to fp32, as in pretext.
  Loss: nll_loss(log_softmax(logits.float(), -1), targets) (mean over the M chosen rows).
  Metrics: pretext_accuracy = mean(argmax(logits) == targets).item() under no_grad; the
    detached representation mean_pool(states, mask) is computed too (TextEncoder::pool).

Block (transformer/blocks.rs; q, k, v, out = Linear(H, H), separate):
  attend(x) = dropout(out(merge(SDPA(split(q(x)), split(k(x)), split(v(x)), mask,
              dropout_p = p if training))))
  mlp(x)    = dropout(Linear(M -> H)(GELU exact(Linear(H -> M)(x))))
  pre-LN:   x = x + attend(LN1(x)); x = x + mlp(LN2(x))
  post-LN:  x = LN1(x + attend(x)); x = LN2(x + mlp(x))
"""

import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS = ["simclr-resnet18", "mae-vit-s16", "bert-base"]
DEFAULT_BATCH = {"simclr-resnet18": 512, "mae-vit-s16": 128, "bert-base": 128}
IGNORED_LABEL = -100  # pretext-augment's IGNORED_LABEL


def round_half_up(x: float) -> int:
    """Rust's f64::round for x >= 0 (Python's round() rounds half to even)."""
    return int(math.floor(x + 0.5))


# --------------------------------------------------------------------------
# SimCLR on ResNet-18
# --------------------------------------------------------------------------
def bn2d(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)


def conv3x3(cin: int, cout: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), bn2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout, 1), bn2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), bn2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(y + skip)


class ResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem (3x3 stride-1 conv, no max-pool) -> 512-d."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.stem, self.stem_bn = conv3x3(in_channels, 64, 1), bn2d(64)
        blocks, channels = [], 64
        for stage, width in enumerate([64, 128, 256, 512]):
            for block in range(2):
                stride = 2 if stage > 0 and block == 0 else 1
                blocks.append(BasicBlock(channels, width, stride))
                channels = width
        self.blocks = nn.Sequential(*blocks)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu(self.stem_bn(self.stem(images))))
        # tch's mean_dim(.., images.kind()): the pooled features come out in float32 even
        # when the convolutions ran in bf16 under autocast.
        return x.mean(dim=(2, 3), dtype=images.dtype)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    n = z1.shape[0]
    z = torch.cat([z1, z2], 0)
    z = z / z.norm(2, dim=1, keepdim=True).clamp_min(1e-12)
    logits = z @ z.t() / temperature
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))
    targets = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
    return F.nll_loss(F.log_softmax(logits, -1), targets)


class SimClr(nn.Module):
    def __init__(self, temperature: float = 0.5):
        super().__init__()
        self.temperature = temperature
        self.encoder = ResNet18(3)
        self.projector = nn.Sequential(
            nn.Linear(512, 512), nn.BatchNorm1d(512, eps=1e-5, momentum=0.1), nn.ReLU(),
            nn.Linear(512, 128))

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> dict:
        h = self.encoder(torch.cat([v1, v2], 0))  # one batch: BN over all 2B views
        return {"z": self.projector(h)}

    def loss(self, out: dict) -> torch.Tensor:
        z = out["z"]
        n = z.shape[0] // 2
        return nt_xent(z[:n].float(), z[n:].float(), self.temperature)

    def metrics(self, out: dict, loss: torch.Tensor) -> None:
        pass


def simclr_inputs(batch: int, gen: torch.Generator) -> tuple:
    return tuple(torch.randn(batch, 3, 32, 32, generator=gen) for _ in range(2))


# --------------------------------------------------------------------------
# Transformer blocks (shared by the ViT, the MAE decoder and BERT)
# --------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self, h: int, heads: int, mlp: int, dropout: float, eps: float,
                 norm_first: bool):
        super().__init__()
        self.heads, self.dropout, self.norm_first = heads, dropout, norm_first
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attention_out = nn.Linear(h, h)
        self.attention_norm = nn.LayerNorm(h, eps=eps)
        self.mlp_in, self.mlp_out = nn.Linear(h, mlp), nn.Linear(mlp, h)
        self.mlp_norm = nn.LayerNorm(h, eps=eps)

    def attend(self, x: torch.Tensor, mask) -> torch.Tensor:
        b, t, h = x.shape
        split = lambda p: p(x).view(b, t, self.heads, h // self.heads).transpose(1, 2)  # noqa: E731
        context = F.scaled_dot_product_attention(
            split(self.query), split(self.key), split(self.value), attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0)
        merged = context.transpose(1, 2).contiguous().view(b, t, h)
        return F.dropout(self.attention_out(merged), self.dropout, self.training)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.mlp_out(F.gelu(self.mlp_in(x))), self.dropout, self.training)

    def forward(self, x: torch.Tensor, mask=None) -> torch.Tensor:
        if self.norm_first:
            x = x + self.attend(self.attention_norm(x), mask)
            return x + self.mlp(self.mlp_norm(x))
        x = self.attention_norm(x + self.attend(x, mask))
        return self.mlp_norm(x + self.mlp(x))


class Blocks(nn.Module):
    """pretext's TransformerBlocks: the blocks, then a final LayerNorm for pre-LN stacks."""

    def __init__(self, h: int, layers: int, heads: int, mlp: int, dropout: float, eps: float,
                 norm_first: bool):
        super().__init__()
        self.layers = nn.ModuleList(Block(h, heads, mlp, dropout, eps, norm_first)
                                    for _ in range(layers))
        self.final_norm = nn.LayerNorm(h, eps=eps) if norm_first else None

    def forward(self, x: torch.Tensor, mask=None) -> torch.Tensor:
        for block in self.layers:
            x = block(x, mask)
        return self.final_norm(x) if self.final_norm is not None else x


# --------------------------------------------------------------------------
# MAE on ViT-S/16
# --------------------------------------------------------------------------
def gather_tokens(tokens: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    return tokens.gather(1, indices.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def sincos_positions(dim: int, g: int) -> torch.Tensor:
    """[1, 1 + g^2, dim]: a zero row for [CLS], then MAE's 2-D sin-cos table (column, row)."""
    quarter = dim // 4
    omega = torch.exp(torch.arange(quarter, dtype=torch.float32) / quarter
                      * -math.log(10000.0))
    index = torch.arange(g * g, dtype=torch.float32)
    rows, columns = torch.div(index, g, rounding_mode="floor"), index.remainder(g)

    def axis(positions: torch.Tensor) -> torch.Tensor:
        angles = positions.unsqueeze(1) * omega.unsqueeze(0)
        return torch.cat([angles.sin(), angles.cos()], 1)

    table = torch.cat([axis(columns), axis(rows)], 1)
    return torch.cat([torch.zeros(1, dim), table], 0).unsqueeze(0)


def patchify(images: torch.Tensor, p: int) -> torch.Tensor:
    b, c, s, _ = images.shape
    g = s // p
    return images.reshape(b, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(b, g * g, p * p * c)


def masked_patch_loss(predicted, target, mask, normalize: bool = True) -> torch.Tensor:
    if normalize:
        mean = target.mean(-1, keepdim=True)
        variance = target.var(-1, unbiased=True, keepdim=True)
        target = (target - mean) / (variance + 1e-6).sqrt()
    per_patch = (predicted - target).square().mean(-1)  # [B, N]
    return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)


class Vit(nn.Module):
    """pretext's Vit with learned positions and [CLS] (VitConfig::default()'s choices)."""

    def __init__(self, channels: int, image_size: int, patch: int, h: int, layers: int,
                 heads: int, mlp: int, dropout: float):
        super().__init__()
        self.h, self.dropout = h, dropout
        self.patch_embed = nn.Conv2d(channels, h, patch, stride=patch, bias=True)
        grid = image_size // patch
        self.cls_token = nn.Parameter(torch.randn(1, 1, h) * 0.02)
        self.position_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, h) * 0.02)
        self.blocks = Blocks(h, layers, heads, mlp, dropout, 1e-6, norm_first=True)

    def visible_states(self, images: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embed(images)  # [B, H, g, g]
        b = patches.shape[0]
        x = patches.flatten(2).transpose(1, 2) + self.position_embed[:, 1:]
        x = gather_tokens(x, visible)
        cls = (self.cls_token + self.position_embed[:, :1]).expand(b, 1, self.h)
        x = F.dropout(torch.cat([cls, x], 1), self.dropout, self.training)
        return self.blocks(x)


class Mae(nn.Module):
    def __init__(self, channels: int = 3, image_size: int = 224, patch: int = 16,
                 mask_ratio: float = 0.75, decoder_dim: int = 128, decoder_layers: int = 2,
                 decoder_heads: int = 4):
        super().__init__()
        h = 384
        self.patch, self.mask_ratio, self.decoder_dim = patch, mask_ratio, decoder_dim
        self.grid = image_size // patch
        self.encoder = Vit(channels, image_size, patch, h, layers=12, heads=6, mlp=1536,
                           dropout=0.0)
        d = decoder_dim
        self.decoder_embed = nn.Linear(h, d)
        self.mask_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.decoder = Blocks(d, decoder_layers, decoder_heads, 4 * d, 0.0, 1e-6,
                              norm_first=True)
        self.decoder_pred = nn.Linear(d, patch * patch * channels)
        self.register_buffer("decoder_positions", sincos_positions(d, self.grid),
                             persistent=False)

    def visible_count(self) -> int:
        n = self.grid * self.grid
        return n - min(max(round_half_up(n * self.mask_ratio), 0), n - 1)

    def random_masking(self, b: int, device) -> tuple:
        n, keep_count = self.grid * self.grid, self.visible_count()
        shuffle = torch.rand(b, n, device=device).argsort(1)
        restore = shuffle.argsort(1)
        mask = torch.ones(b, n, device=device)
        mask[:, :keep_count] = 0
        return shuffle[:, :keep_count], restore, mask.gather(1, restore)

    def forward(self, images: torch.Tensor) -> dict:
        b, n, d = images.shape[0], self.grid * self.grid, self.decoder_dim
        keep, restore, mask = self.random_masking(b, images.device)
        latent = self.encoder.visible_states(images, keep)  # [B, 1 + K, 384]
        x = self.decoder_embed(latent)
        kept = x.shape[1] - 1
        masks = self.mask_token.expand(b, n - kept, d)
        ordered = gather_tokens(torch.cat([x[:, 1:], masks], 1), restore)
        sequence = torch.cat([x[:, :1], ordered], 1) + self.decoder_positions
        predicted = self.decoder_pred(self.decoder(sequence)[:, 1:])
        return {"predicted": predicted, "mask": mask, "images": images}

    def loss(self, out: dict) -> torch.Tensor:
        target = patchify(out["images"], self.patch)
        return masked_patch_loss(out["predicted"].float(), target, out["mask"])

    def metrics(self, out: dict, loss: torch.Tensor) -> None:
        with torch.no_grad():
            target = patchify(out["images"], self.patch)
            flat = masked_patch_loss(torch.zeros_like(target), target, out["mask"]).item()
        _gain = 1.0 - loss.item() / max(flat, 1e-12)  # reconstruction_gain


def mae_inputs(batch: int, gen: torch.Generator) -> tuple:
    return (torch.randn(batch, 3, 224, 224, generator=gen),)


# --------------------------------------------------------------------------
# BERT-base masked LM
# --------------------------------------------------------------------------
BERT_BASE = dict(vocab=30522, max_positions=512, type_vocab=2, hidden=768, layers=12,
                 heads=12, mlp=3072, dropout=0.1, eps=1e-12)
SEQ, PAD_ID, MASK_ID, SPECIAL, MASK_PROBABILITY = 128, 0, 4, 5, 0.15


class BertMlm(nn.Module):
    def __init__(self, c: dict = BERT_BASE):
        super().__init__()
        h, self.dropout = c["hidden"], c["dropout"]
        self.word_embeddings = nn.Embedding(c["vocab"], h)
        self.position_embeddings = nn.Embedding(c["max_positions"], h)
        self.token_type_embeddings = nn.Embedding(c["type_vocab"], h)
        for e in (self.word_embeddings, self.position_embeddings, self.token_type_embeddings):
            nn.init.normal_(e.weight, 0.0, 0.02)
        self.embedding_norm = nn.LayerNorm(h, eps=c["eps"])
        self.blocks = Blocks(h, c["layers"], c["heads"], c["mlp"], c["dropout"], c["eps"],
                             norm_first=False)  # post-LN: no final norm
        self.transform = nn.Linear(h, h)
        self.transform_norm = nn.LayerNorm(h, eps=c["eps"])
        self.decoder_bias = nn.Parameter(torch.zeros(c["vocab"]))

    def forward(self, ids: torch.Tensor, labels: torch.Tensor) -> dict:
        b, t = ids.shape
        padding = ids.ne(PAD_ID).long()  # [B, T], 1 = token
        positions = torch.arange(t, device=ids.device).unsqueeze(0)
        x = (self.word_embeddings(ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(torch.zeros(b, t, dtype=torch.long, device=ids.device)))
        x = F.dropout(self.embedding_norm(x), self.dropout, self.training)
        states = self.blocks(x, padding.bool()[:, None, None, :])  # [B, T, H]
        chosen = labels.ne(IGNORED_LABEL)
        chosen_states = states.masked_select(chosen.unsqueeze(-1)).view(-1, states.shape[-1])
        targets = labels.masked_select(chosen)
        transformed = self.transform_norm(F.gelu(self.transform(chosen_states)))
        logits = transformed.matmul(self.word_embeddings.weight.t()) + self.decoder_bias
        # The representation pretext's step hands back (mean over real tokens, detached).
        m = padding.to(states.dtype).unsqueeze(-1)
        _pooled = ((states * m).sum(1) / m.sum(1).clamp_min(1e-9)).detach()
        return {"logits": logits, "targets": targets}

    def loss(self, out: dict) -> torch.Tensor:
        # tch's cross_entropy_for_logits: log_softmax(-1, Float).nll_loss(targets).
        return F.nll_loss(F.log_softmax(out["logits"].float(), -1), out["targets"])

    def metrics(self, out: dict, loss: torch.Tensor) -> None:
        with torch.no_grad():
            _accuracy = out["logits"].argmax(1).eq(out["targets"]).float().mean().item()


def bert_inputs(batch: int, gen: torch.Generator) -> tuple:
    """Ids in [SPECIAL, vocab); exactly round(0.15 T) chosen positions per row, BERT-corrupted."""
    vocab = BERT_BASE["vocab"]
    ids = torch.randint(SPECIAL, vocab, (batch, SEQ), generator=gen)
    k = round_half_up(MASK_PROBABILITY * SEQ)
    picked = torch.rand(batch, SEQ, generator=gen).argsort(1)[:, :k]
    choose = torch.zeros(batch, SEQ, dtype=torch.bool).scatter_(1, picked, True)
    action = torch.rand(batch, SEQ, generator=gen)
    random_ids = torch.randint(SPECIAL, vocab, (batch, SEQ), generator=gen)
    inputs = ids.clone()
    inputs[choose & (action < 0.8)] = MASK_ID
    swap = choose & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_ids[swap]
    labels = torch.where(choose, ids, torch.full_like(ids, IGNORED_LABEL))
    return inputs, labels


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------
BUILDERS = {
    "simclr-resnet18": (SimClr, simclr_inputs),
    "mae-vit-s16": (Mae, mae_inputs),
    "bert-base": (BertMlm, bert_inputs),
}


def nvidia_smi_used_mb(device: torch.device):
    """Device-wide used memory (MiB) from nvidia-smi, or None."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    ident = str(index)
    visible = [e.strip() for e in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
               if e.strip()]
    if index < len(visible):
        ident = visible[index]  # nvidia-smi -i takes the same index or UUID
    try:
        out = subprocess.run([exe, "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                              "-i", ident], capture_output=True, text=True, timeout=60,
                             check=True).stdout
        return float(out.strip().splitlines()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=MODELS, required=True)
    p.add_argument("--batch", type=int, default=None,
                   help="images per view (simclr), images (mae) or sequences (bert); "
                        "default 512 / 128 / 128")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=True,
                   help="TF32 matmuls and convolutions on CUDA (default on)")
    p.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction, default=True,
                   help="cuDNN autotuner on CUDA (default on)")
    p.add_argument("--adamw", choices=["default", "for-loop", "foreach", "fused"],
                   default="default",
                   help="torch.optim.AdamW implementation: PyTorch's default choice (foreach "
                        "on CUDA), a per-parameter loop (as pretext's optimizer), foreach, "
                        "or fused")
    p.add_argument("--metrics", action=argparse.BooleanOptionalAction, default=True,
                   help="compute and read back the per-step metric pretext's method computes "
                        "(MAE reconstruction gain, BERT accuracy; default on)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--device", choices=["cpu", "cuda"],
                   default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: PyTorch's choice)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.iters < 1:
        p.error("--iters must be at least 1")
    batch = a.batch if a.batch is not None else DEFAULT_BATCH[a.model]

    if a.threads is not None:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
        torch.backends.cudnn.benchmark = a.cudnn_benchmark

    build, make_inputs = BUILDERS[a.model]
    torch.manual_seed(0)
    model = build().to(dev).train()
    parameters = sum(t.numel() for t in model.parameters() if t.requires_grad)
    inputs = tuple(t.to(dev) for t in make_inputs(batch, torch.Generator().manual_seed(0)))
    adamw_kwargs = {"default": {}, "for-loop": {"foreach": False},
                    "foreach": {"foreach": True}, "fused": {"fused": True}}[a.adamw]
    optimizer = torch.optim.AdamW([t for t in model.parameters() if t.requires_grad],
                                  lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                  **adamw_kwargs)

    def forward_context():
        if a.precision == "bf16":
            return torch.autocast(dev.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step() -> float:
        with forward_context():
            out = model(*inputs)
        with torch.autocast(dev.type, enabled=False):  # losses in float32, as pretext
            loss = model.loss(out)
            if a.metrics:
                model.metrics(out, loss)
        value = loss.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return value

    loss = float("nan")
    for _ in range(a.warmup):
        loss = step()
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(a.iters):
        start = time.perf_counter()
        loss = step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    used = nvidia_smi_used_mb(dev) if cuda else None

    input_shapes = {
        "simclr-resnet18": f"2 x [{batch}, 3, 32, 32]",
        "mae-vit-s16": f"[{batch}, 3, 224, 224]",
        "bert-base": f"[{batch}, {SEQ}] token ids",
    }[a.model]
    res = {
        "model": a.model,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "mean_s": statistics.fmean(times),
        "iters": a.iters,
        "warmup": a.warmup,
        "batch": batch,
        "input": input_shapes,
        "device": a.device,
        "gpu": torch.cuda.get_device_name(dev) if cuda else None,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "precision": a.precision,
        "tf32": a.tf32 if cuda else None,
        "cudnn_benchmark": a.cudnn_benchmark if cuda else None,
        "adamw": a.adamw,
        "metrics": a.metrics,
        "parameters": parameters,
        "final_loss": loss,
        "peak_allocated_mb": torch.cuda.max_memory_allocated(dev) / 2**20 if cuda else None,
        "peak_reserved_mb": torch.cuda.max_memory_reserved(dev) / 2**20 if cuda else None,
        "gpu_used_mb": used,
    }
    if a.model == "bert-base":
        res["masked_tokens"] = int(inputs[1].ne(IGNORED_LABEL).sum())
    elif a.model == "mae-vit-s16":
        res["visible_patches"] = model.visible_count()
    if a.json:
        print(json.dumps(res))
    else:
        memory = ""
        if cuda:
            memory = (f", peak allocated {res['peak_allocated_mb']:.0f} MiB, reserved "
                      f"{res['peak_reserved_mb']:.0f} MiB, nvidia-smi used {used} MiB")
        print(f"pytorch {a.model} step: median {res['median_s'] * 1e3:.1f} ms, "
              f"min {res['min_s'] * 1e3:.1f} ms over {a.iters} iters ({input_shapes}, "
              f"{a.precision}, {a.device}, {res['threads']} threads, torch {torch.__version__}, "
              f"{parameters:,} parameters, last loss {loss:.4f}{memory})")


if __name__ == "__main__":
    main()
