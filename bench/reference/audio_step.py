#!/usr/bin/env python3
"""PyTorch reference benchmark: one wav2vec 2.0 pretraining step on raw waveforms.

What it measures
----------------
Wall-clock time of one complete optimisation step of wav2vec 2.0 (Baevski et al., 2020)
on pretext's default ``wav2vec`` backbone, built layer for layer like pretext's Rust
implementation (crates/pretext-nn/src/audio_encoder.rs, transformer.rs, wav2vec.rs and
crates/pretext-methods/src/wav2vec2.rs), so that ``pretext bench --audio`` can report a
time ratio.  A step is everything the Rust training loop does per batch:

  optimizer.zero_grad(set_to_none=True)
  feature encoder, feature-gradient scaling, feature penalty, projection (train mode:
  dropout on); the span mask sampled on the CPU; mask embedding; context network;
  Gumbel quantizer (fresh Gumbel noise); project_q / final_proj; the distractors sampled
  on the CPU; contrastive + diversity + penalty loss; the method's metrics read back
  (.item() of the contrastive loss, accuracy, perplexity, diversity loss and penalty, as
  the Rust loss does with double_value)
  loss.item()                             (read every step, like the Rust side)
  loss.backward()
  optimizer.step()                        AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, wd=0)

The inputs are fixed random waveforms ~ N(0, 1) of shape [--batch, --samples] (default
32 x 16000, i.e. 1 s at 16 kHz -> T = 49 frames), made once (no data loading, no
augmentation).  Reported are the median and the minimum over ``--iters`` timed steps,
after ``--warmup`` untimed steps.  Each step is timed with ``time.perf_counter`` around
the whole step (with ``torch.cuda.synchronize()`` before reading the clock on CUDA).

How to run (from the repository root)
-------------------------------------
    /root/.cache/pretext/venv/bin/python bench/reference/audio_step.py
    /root/.cache/pretext/venv/bin/python bench/reference/audio_step.py \
        --batch 32 --iters 10 --warmup 3 --threads 2 --json

With ``--json`` exactly one line is printed:
    {"method", "median_s", "min_s", "iters", "batch", "samples", "parameters", "device",
     "threads", "torch"}

Network (Wav2VecConfig::default) -- exact layer hyper-parameters
----------------------------------------------------------------
Input: waveforms [B, L].  The model is in train() mode.

Feature encoder ("stem"):
  each waveform standardized on its own: (x - mean) / sqrt(var + 1e-5), population
  variance (unbiased=False) over the L samples; unsqueeze -> [B, 1, L]
  conv0  Conv1d(1   -> 128, kernel 10, stride 5, bias=False)
         GroupNorm(128 groups, 128 channels, eps=1e-5, affine)   (first conv only)
         GELU (exact)
  conv1..conv4  Conv1d(128 -> 128, kernel 3, stride 2, bias=False), GELU (exact)
  conv5..conv6  Conv1d(128 -> 128, kernel 2, stride 2, bias=False), GELU (exact)
  -> [B, 128, T] -> transpose -> frame features [B, T, 128]; T = 49 for L = 16000
  (receptive field 400 samples, hop 320).
  Conv weights: kaiming_normal_(mode fan_in, nonlinearity relu) (tch's
  DEFAULT_KAIMING_NORMAL).
Feature projection ("embeddings"):
  normed = LayerNorm(128, eps=1e-5)(features)          (the quantizer's input)
  projected = Dropout(0.1)(Linear(128 -> 128)(normed))
Context network:
  positions = GELU(Conv1d(128 -> 128, kernel 31, padding 15, groups 16, bias=True)
              (frames^T))^T; weight ~ N(0, sqrt(4 / (31 * 128))), bias 0 (no weight norm)
  x = frames + positions
  4 pre-LN blocks (width 128, 4 heads, MLP 512, LayerNorm eps 1e-5):
    x = x + Dropout(0.1)(out(SDPA(q(LN(x)), k(LN(x)), v(LN(x)), dropout_p=0.1)))
    x = x + Dropout(0.1)(Linear(512 -> 128)(GELU(exact)(Linear(128 -> 512)(LN(x)))))
    (separate Linear q, k, v, out 128 -> 128; no attention mask; no dropout on the
    block input)
  final LayerNorm(128, eps=1e-5) -> context [B, T, 128]
Linear layers (as tch's nn::linear): weight kaiming_uniform_(nonlinearity relu), i.e.
U(-sqrt(6/fan_in), sqrt(6/fan_in)); bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

Method (Wav2Vec2Config::default)
--------------------------------
  features = feature_encoder(waveforms)                      [B, T, 128]
  features = 0.1 * features + 0.9 * features.detach()        (gradient scale 0.1)
  penalty  = mean(features ** 2)
  normed, projected = projection(features)
  span mask (on the CPU, per utterance): round(0.065 * T) = 3 distinct starts (at least
    2, at most T - 10 + 1) drawn uniformly without replacement from 0..T-10 (argsort of
    uniform noise, vectorized over the batch; pretext takes a randperm prefix per
    utterance), 10 frames masked from each start -> mask [B, T] bool, moved to the device
  inputs  = where(mask, mask_embedding [128] ~ U(0, 1), projected)
  context = context_network(inputs)
  quantizer (G = 2 codebooks of V = 320 entries, codes 128 wide):
    logits = Linear(128 -> 640)(normed).view(B*T, 2, 320)  (weight ~ N(0, 1), bias 0)
    noise  = -log(Exponential(1))  (Gumbel, on the device)
    soft   = softmax((logits + noise) / tau); hard = one_hot(argmax(soft))
    weights = hard + (soft - soft.detach())                   (straight-through)
    codes  = einsum("ngv,gvd->ngd", weights, codebook.view(2, 320, 64)) -> [B, T, 128]
             (codebook [640, 64] ~ U(0, 1))
    perplexity = sum_g exp(H(mean_n softmax(logits)_g)), 0 log 0 = 0 (clamp 1e-12)
    diversity  = (640 - perplexity) / 640
    tau is fixed at 2.0 here (pretext anneals it from 2.0 to 0.5; the value does not
    change the work done)
  targets     = project_q:  Linear(128 -> 128)(codes)
  predictions = final_proj: Linear(128 -> 128)(context)
  distractors (on the CPU): for each masked frame of utterance b (utterance order, then
    frame order), K = 100 frames drawn uniformly with replacement from the OTHER masked
    frames of b: d = floor(u * (n_b - 1)), shifted up by one at or past the frame's own
    position among b's n_b masked frames (fairseq's sample_negatives; vectorized)
  contrastive (kappa = 0.1): q = normalize(predictions[masked]); positives =
    targets[masked]; negatives = targets[distractors] [M, K, 128];
    logits = cat(cos(q, positive), cos(q, negatives)) / kappa, a negative exactly equal
    to its positive (same code) -> -inf; cross-entropy with class 0 (mean over the M
    masked frames); accuracy = mean(positive > max negative)
  loss = contrastive + 0.1 * diversity + 10 * penalty
  (also, as in the Rust loss: the code indices and the mean-pooled detached context, the
  representation pretext logs)

Parameters: 1 262 336 (feature encoder 263 680; feature layer norm 256; projection
16 512; positional conv 31 872; 4 blocks of 198 272; final norm 256; mask embedding 128;
quantizer 82 560 + codebook 40 960; project_q 16 512; final_proj 16 512).

Seeds: torch.manual_seed(0) before building the model, then the waveforms are drawn from
the same generator on the CPU and moved to --device; the masks, distractors and Gumbel
noise come from the global generators (CPU, resp. --device for the noise).
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Wav2VecConfig::default
CONV_CHANNELS = [128] * 7
CONV_KERNELS = [10, 3, 3, 3, 3, 2, 2]
CONV_STRIDES = [5, 2, 2, 2, 2, 2, 2]
HIDDEN, LAYERS, HEADS, MLP, DROPOUT = 128, 4, 4, 512, 0.1
POSITION_KERNEL, POSITION_GROUPS = 31, 16
LAYER_NORM_EPS = 1e-5
# Wav2Vec2Config::default
MASK_P, MASK_SPAN, MIN_SPANS = 0.065, 10, 2
GROUPS, ENTRIES, CODE_DIM = 2, 320, 128
FINAL_DIM, NEGATIVES, KAPPA = 128, 100, 0.1
DIVERSITY_WEIGHT, FEATURE_PENALTY, FEATURE_GRAD_SCALE = 0.1, 10.0, 0.1
GUMBEL_TEMPERATURE = 2.0  # fixed (pretext: annealed 2.0 -> 0.5)


def tch_linear(cin: int, cout: int) -> nn.Linear:
    """nn::linear's default initialisation."""
    layer = nn.Linear(cin, cout)
    nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
    bound = 1.0 / math.sqrt(cin)
    nn.init.uniform_(layer.bias, -bound, bound)
    return layer


class Block(nn.Module):
    """Pre-LN transformer block (TransformerBlocks::block_forward, norm_first)."""

    def __init__(self, h: int, heads: int, mlp: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = tch_linear(h, h), tch_linear(h, h), tch_linear(h, h)
        self.out = tch_linear(h, h)
        self.attention_norm = nn.LayerNorm(h, eps=LAYER_NORM_EPS)
        self.mlp_in, self.mlp_out = tch_linear(h, mlp), tch_linear(mlp, h)
        self.mlp_norm = nn.LayerNorm(h, eps=LAYER_NORM_EPS)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        split = lambda p: p(x).view(b, t, self.heads, h // self.heads).transpose(1, 2)  # noqa: E731
        p = DROPOUT if self.training else 0.0
        context = F.scaled_dot_product_attention(split(self.query), split(self.key),
                                                 split(self.value), dropout_p=p)
        merged = context.transpose(1, 2).contiguous().view(b, t, h)
        return F.dropout(self.out(merged), DROPOUT, self.training)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.mlp_out(F.gelu(self.mlp_in(x))), DROPOUT, self.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attend(self.attention_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class Wav2VecEncoder(nn.Module):
    """audio_encoder.rs's Wav2VecEncoder."""

    def __init__(self):
        super().__init__()
        convs, cin = [], 1
        for cout, k, s in zip(CONV_CHANNELS, CONV_KERNELS, CONV_STRIDES):
            conv = nn.Conv1d(cin, cout, k, stride=s, bias=False)
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
            convs.append(conv)
            cin = cout
        self.convs = nn.ModuleList(convs)
        self.group_norm = nn.GroupNorm(CONV_CHANNELS[0], CONV_CHANNELS[0], eps=1e-5)
        feature_dim = CONV_CHANNELS[-1]
        self.feature_norm = nn.LayerNorm(feature_dim, eps=1e-5)
        self.projection = tch_linear(feature_dim, HIDDEN)
        self.position_conv = nn.Conv1d(HIDDEN, HIDDEN, POSITION_KERNEL,
                                       padding=POSITION_KERNEL // 2, groups=POSITION_GROUPS)
        nn.init.normal_(self.position_conv.weight, 0.0,
                        math.sqrt(4.0 / (POSITION_KERNEL * HIDDEN)))
        nn.init.zeros_(self.position_conv.bias)
        self.blocks = nn.ModuleList(Block(HIDDEN, HEADS, MLP) for _ in range(LAYERS))
        self.final_norm = nn.LayerNorm(HIDDEN, eps=LAYER_NORM_EPS)

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        mean = waveforms.mean(-1, keepdim=True)
        variance = waveforms.var(-1, unbiased=False, keepdim=True)
        x = ((waveforms - mean) / (variance + 1e-5).sqrt()).unsqueeze(1)  # [B, 1, L]
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i == 0:
                x = self.group_norm(x)
            x = F.gelu(x)
        return x.transpose(1, 2)  # [B, T, C]

    def project(self, features: torch.Tensor):
        normed = self.feature_norm(features)
        return normed, F.dropout(self.projection(normed), DROPOUT, self.training)

    def context(self, frames: torch.Tensor) -> torch.Tensor:
        positions = F.gelu(self.position_conv(frames.transpose(1, 2))).transpose(1, 2)
        x = frames + positions
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x)


class Wav2Vec2(nn.Module):
    """wav2vec2.rs's Wav2Vec2 (encoder, mask embedding, quantizer, project_q, final_proj)."""

    def __init__(self):
        super().__init__()
        self.encoder = Wav2VecEncoder()
        self.mask_embedding = nn.Parameter(torch.empty(HIDDEN).uniform_(0.0, 1.0))
        self.weight_proj = nn.Linear(CONV_CHANNELS[-1], GROUPS * ENTRIES)
        nn.init.normal_(self.weight_proj.weight, 0.0, 1.0)
        nn.init.zeros_(self.weight_proj.bias)
        self.codebook = nn.Parameter(
            torch.empty(GROUPS * ENTRIES, CODE_DIM // GROUPS).uniform_(0.0, 1.0))
        self.project_q = tch_linear(CODE_DIM, FINAL_DIM)
        self.final_proj = tch_linear(HIDDEN, FINAL_DIM)

    def quantize(self, normed: torch.Tensor, temperature: float):
        lead = normed.shape[:-1]
        logits = self.weight_proj(normed.reshape(-1, normed.shape[-1]))
        logits = logits.view(-1, GROUPS, ENTRIES).float()  # [N, G, V]
        noise = -torch.empty_like(logits).exponential_(1.0).log()
        soft = ((logits + noise) / temperature).softmax(-1)
        hard = F.one_hot(soft.argmax(-1), ENTRIES).float()
        weights = hard + (soft - soft.detach())
        codebook = self.codebook.view(GROUPS, ENTRIES, -1)
        codes = torch.einsum("ngv,gvd->ngd", weights, codebook)
        average = logits.softmax(-1).mean(0)  # [G, V]
        entropy = -(average * average.clamp_min(1e-12).log()).sum(-1)
        perplexity = entropy.exp().sum()
        total = float(GROUPS * ENTRIES)
        diversity = (total - perplexity) / total
        indices = weights.detach().argmax(-1).reshape(*lead, GROUPS)
        return codes.reshape(*lead, -1), indices, perplexity, diversity


def span_mask(batch: int, frames: int) -> torch.Tensor:
    """[B, T] bool on the CPU: span_count distinct starts per utterance, MASK_SPAN frames each."""
    if MASK_SPAN == 0 or MASK_SPAN > frames:
        return torch.zeros(batch, frames, dtype=torch.bool)
    possible = frames - MASK_SPAN + 1
    drawn = math.floor(MASK_P * frames + 0.5)  # Rust's f64::round (half away from zero)
    count = min(max(drawn, MIN_SPANS), possible)
    starts = torch.rand(batch, possible).argsort(1)[:, :count]  # [B, count], distinct
    t = torch.arange(frames)
    offset = t.view(1, 1, frames) - starts.unsqueeze(-1)  # [B, count, T]
    return ((offset >= 0) & (offset < MASK_SPAN)).any(1)


def sample_negatives(mask: torch.Tensor, k: int):
    """Flat indices (into B*T) of the masked frames [M] and of their distractors [M, K]."""
    batch, frames = mask.shape
    counts = mask.sum(1)  # [B]
    usable = mask & (counts >= 2).unsqueeze(1)  # utterances with one masked frame: skipped
    # Masked frames of each utterance, in frame order, first: order[b, j] = j-th masked frame.
    order = (~usable).to(torch.uint8).argsort(dim=1, stable=True)  # [B, T]
    utterance, frame = usable.nonzero(as_tuple=True)  # utterance order, then frame order
    position = usable.long().cumsum(1)[utterance, frame] - 1  # rank among b's masked frames
    n = counts[utterance]  # [M]
    draws = (torch.rand(len(frame), k) * (n - 1).unsqueeze(1)).long()  # [M, K] in 0..n-2
    draws = draws + (draws >= position.unsqueeze(1)).long()
    distractors = order[utterance.unsqueeze(1), draws]  # [M, K] frame indices
    anchors = utterance * frames + frame
    return anchors, utterance.unsqueeze(1) * frames + distractors


def contrastive_loss(context, targets, anchors, distractors, kappa: float):
    width = context.shape[-1]
    m, k = distractors.shape
    context = context.reshape(-1, width).float()
    targets = targets.reshape(-1, width).float()
    queries = F.normalize(context.index_select(0, anchors), dim=1)  # [M, D]
    positives = targets.index_select(0, anchors)  # [M, D]
    negative_targets = targets.index_select(0, distractors.reshape(-1)).view(m, k, width)
    duplicate = (negative_targets == positives.unsqueeze(1)).all(-1)  # [M, K]
    positive_logits = (queries * F.normalize(positives, dim=1)).sum(1, keepdim=True)
    negative_logits = (queries.unsqueeze(1)
                       * F.normalize(negative_targets.view(-1, width), dim=1).view(m, k, width))
    negative_logits = negative_logits.sum(-1).masked_fill(duplicate, float("-inf"))
    logits = torch.cat([positive_logits, negative_logits], 1) / kappa  # [M, 1 + K]
    accuracy = (positive_logits.squeeze(1) > negative_logits.amax(1)).float().mean().item()
    classes = torch.zeros(m, dtype=torch.long, device=logits.device)
    return F.nll_loss(logits.log_softmax(-1), classes), accuracy


def wav2vec2_loss(model: Wav2Vec2, waveforms: torch.Tensor, temperature: float):
    enc = model.encoder
    features = enc.features(waveforms)  # [B, T, C]
    features = features * FEATURE_GRAD_SCALE + features.detach() * (1.0 - FEATURE_GRAD_SCALE)
    penalty = features.pow(2).mean()
    normed, projected = enc.project(features)
    batch, frames, _ = projected.shape
    mask = span_mask(batch, frames)  # CPU
    masked_share = mask.sum().item() / max(batch * frames, 1)
    where_masked = mask.to(projected.device).unsqueeze(-1)
    inputs = torch.where(where_masked, model.mask_embedding.expand_as(projected), projected)
    context = enc.context(inputs)  # [B, T, H]
    codes, _indices, perplexity, diversity = model.quantize(normed, temperature)
    targets = model.project_q(codes)
    predictions = model.final_proj(context)
    anchors, distractors = sample_negatives(mask, NEGATIVES)  # CPU
    dev = predictions.device
    contrastive, accuracy = contrastive_loss(predictions, targets, anchors.to(dev),
                                             distractors.to(dev), KAPPA)
    loss = contrastive + diversity * DIVERSITY_WEIGHT + penalty * FEATURE_PENALTY
    _pooled = context.detach().mean(1)
    metrics = {
        "contrastive_loss": contrastive.item(),
        "contrastive_accuracy": accuracy,
        "codebook_perplexity": perplexity.item(),
        "diversity_loss": diversity.item(),
        "feature_penalty": penalty.item(),
        "gumbel_temperature": temperature,
        "masked_share": masked_share,
    }
    return loss, metrics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=32, help="waveforms per step")
    p.add_argument("--samples", type=int, default=16000, help="samples per waveform")
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
    model = Wav2Vec2().to(dev).train()
    parameters = sum(t.numel() for t in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=0.0)
    waveforms = torch.randn(args.batch, args.samples).to(dev)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss, _metrics = wav2vec2_loss(model, waveforms, GUMBEL_TEMPERATURE)
        value = loss.item()
        loss.backward()
        optimizer.step()
        return value

    loss = float("nan")
    for _ in range(args.warmup):
        loss = step()
    if cuda:
        torch.cuda.synchronize()

    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        loss = step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)

    res = {
        "method": "wav2vec2",
        "median_s": statistics.median(times),
        "min_s": min(times),
        "iters": args.iters,
        "batch": args.batch,
        "samples": args.samples,
        "parameters": parameters,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if args.json:
        print(json.dumps(res))
    else:
        print(f"pytorch wav2vec2 step: median {res['median_s'] * 1e3:.1f} ms, "
              f"min {res['min_s'] * 1e3:.1f} ms over {args.iters} iters "
              f"(batch {args.batch} x {args.samples} samples, {parameters} parameters, "
              f"{args.device}, {res['threads']} threads, torch {torch.__version__}, "
              f"last loss {loss:.4f})")


if __name__ == "__main__":
    main()
