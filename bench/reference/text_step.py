#!/usr/bin/env python3
"""PyTorch reference benchmark: one training step of BERT masked LM or GPT causal LM, and
GPT generation speed.

What it measures
----------------
``--model bert-mini``: one complete optimisation step of BERT masked language modeling on a
BERT-mini encoder (4 layers, hidden 256, 4 heads, MLP 1024, post-LN, vocabulary 30 522,
dropout 0.1), batch 32 x 128 tokens.  ``--model char-gpt``: one step of GPT causal language
modeling on pretext's character-level GPT preset (4 pre-LN layers, hidden 128, 4 heads,
MLP 512, dropout 0.1, vocabulary 96, batch 32 x 128 characters).  Both are built layer for
layer like pretext's Rust transformer (crates/pretext-nn/src/transformer.rs), so that the
Rust side (``pretext bench --text``) can report a time ratio.  A step is:

  optimizer.zero_grad(set_to_none=True)
  forward (train mode: dropout on), loss, loss.item()
  loss.backward()
  optimizer.step()                 AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, wd=0)

``--generate N`` instead times greedy generation of N tokens with a KV cache from a
one-token prompt on the char-GPT (eval mode, batch 1) and reports tokens per second.

The inputs are fixed random token ids, made once.  For BERT the masking is BERT's (15% of
positions chosen; 80% [MASK], 10% random, 10% kept), done once before timing; the loss is
the cross-entropy over the chosen positions only: their hidden states are gathered
(masked_select) before the MLM head, as in pretext.  Reported are the median and minimum
over ``--iters`` timed steps after ``--warmup`` untimed ones (time.perf_counter around the
step, torch.cuda.synchronize() before reading the clock on CUDA).

How to run (from the repository root)
-------------------------------------
    /root/.cache/pretext/venv/bin/python bench/reference/text_step.py --model bert-mini
    /root/.cache/pretext/venv/bin/python bench/reference/text_step.py --model char-gpt \
        --iters 10 --warmup 3 --threads 2 --json
    /root/.cache/pretext/venv/bin/python bench/reference/text_step.py --model char-gpt \
        --generate 500 --json

With ``--json`` exactly one line is printed:
    {"model", "median_s", "min_s", "iters", "batch", "seq", "device", "threads", "torch"}
and for --generate: {"model", "tokens", "tokens_per_s", "seconds", "device", "threads", "torch"}

Network (both models)
---------------------
Embeddings: word [V, H] and position [max_positions=256, H] ~ N(0, 0.02), plus a token-type
embedding [2, H] (BERT only, always type 0); post-LN models normalize the sum (LayerNorm,
eps 1e-12); dropout.
Block: q, k, v, out = Linear(H, H); attention = F.scaled_dot_product_attention with a
boolean mask (padding for BERT, causal for GPT: a [T, T] lower-triangular boolean mask, as
pretext passes it) and attention dropout in training; the output projection is followed by
dropout.  MLP = Linear(H, 4H) -> GELU (exact) -> Linear(4H, H) -> dropout.
Post-LN (BERT): x = LN(x + attn(x)); x = LN(x + mlp(x)).
Pre-LN (GPT):  x = x + attn(LN(x)); x = x + mlp(LN(x)); a final LayerNorm.
BERT MLM head: Linear(H, H) -> GELU -> LayerNorm -> (tied word embeddings)^T + bias.
GPT head: (tied word embeddings)^T, no bias; loss over positions 0..T-2 against 1..T-1.
Linear layers use PyTorch's default initialisation (as tch's nn::linear).
"""

import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BERT_MINI = dict(vocab=30522, hidden=256, layers=4, heads=4, mlp=1024, norm_first=False,
                 causal=False, type_vocab=2, batch=32, seq=128)
CHAR_GPT = dict(vocab=96, hidden=128, layers=4, heads=4, mlp=512, norm_first=True,
                causal=True, type_vocab=0, batch=32, seq=128)
MAX_POSITIONS = 256
DROPOUT = 0.1
IGNORED = -100


class Block(nn.Module):
    def __init__(self, h: int, heads: int, mlp: int, norm_first: bool):
        super().__init__()
        self.heads, self.norm_first = heads, norm_first
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.out = nn.Linear(h, h)
        self.attention_norm = nn.LayerNorm(h, eps=1e-12)
        self.mlp_in, self.mlp_out = nn.Linear(h, mlp), nn.Linear(mlp, h)
        self.mlp_norm = nn.LayerNorm(h, eps=1e-12)

    def split(self, x, projection):
        b, t, h = x.shape
        return projection(x).view(b, t, self.heads, h // self.heads).transpose(1, 2)

    def attend(self, x, mask, cache=None):
        b, t, h = x.shape
        keys, values = self.split(x, self.key), self.split(x, self.value)
        if cache is not None:
            if cache.get("k") is not None:
                keys = torch.cat([cache["k"], keys], 2)
                values = torch.cat([cache["v"], values], 2)
            cache["k"], cache["v"] = keys, values
        p = DROPOUT if self.training else 0.0
        context = F.scaled_dot_product_attention(self.split(x, self.query), keys, values,
                                                 attn_mask=mask, dropout_p=p)
        merged = context.transpose(1, 2).contiguous().view(b, t, h)
        return F.dropout(self.out(merged), DROPOUT, self.training)

    def mlp(self, x):
        return F.dropout(self.mlp_out(F.gelu(self.mlp_in(x))), DROPOUT, self.training)

    def forward(self, x, mask, cache=None):
        if self.norm_first:
            x = x + self.attend(self.attention_norm(x), mask, cache)
            return x + self.mlp(self.mlp_norm(x))
        x = self.attention_norm(x + self.attend(x, mask, cache))
        return self.mlp_norm(x + self.mlp(x))


class Transformer(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.c = c
        h = c["hidden"]
        self.words = nn.Embedding(c["vocab"], h)
        self.positions = nn.Embedding(MAX_POSITIONS, h)
        for e in (self.words, self.positions):
            nn.init.normal_(e.weight, 0.0, 0.02)
        self.types = None
        if c["type_vocab"]:
            self.types = nn.Embedding(c["type_vocab"], h)
            nn.init.normal_(self.types.weight, 0.0, 0.02)
        self.embedding_norm = None if c["norm_first"] else nn.LayerNorm(h, eps=1e-12)
        self.blocks = nn.ModuleList(Block(h, c["heads"], c["mlp"], c["norm_first"])
                                    for _ in range(c["layers"]))
        self.final_norm = nn.LayerNorm(h, eps=1e-12) if c["norm_first"] else None

    def forward(self, ids, padding=None, caches=None, first_position=0):
        b, t = ids.shape
        positions = torch.arange(first_position, first_position + t, device=ids.device)
        x = self.words(ids) + self.positions(positions).unsqueeze(0)
        if self.types is not None:
            x = x + self.types(torch.zeros_like(ids))
        if self.embedding_norm is not None:
            x = self.embedding_norm(x)
        x = F.dropout(x, DROPOUT, self.training)
        mask = None
        if padding is not None:
            mask = padding.bool()[:, None, None, :]
        if self.c["causal"]:
            total = first_position + t
            mask = torch.ones(t, total, dtype=torch.bool, device=ids.device).tril(first_position)
            mask = mask[None, None]
        for i, block in enumerate(self.blocks):
            x = block(x, mask, None if caches is None else caches[i])
        return self.final_norm(x) if self.final_norm is not None else x


class BertMlm(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.encoder = Transformer(c)
        h = c["hidden"]
        self.transform = nn.Linear(h, h)
        self.transform_norm = nn.LayerNorm(h, eps=1e-12)
        self.bias = nn.Parameter(torch.zeros(c["vocab"]))

    def loss(self, inputs, padding, labels):
        states = self.encoder(inputs, padding)
        chosen = labels.ne(IGNORED)
        selected = states.masked_select(chosen.unsqueeze(-1)).view(-1, states.shape[-1])
        targets = labels.masked_select(chosen)
        t = self.transform_norm(F.gelu(self.transform(selected)))
        logits = t @ self.encoder.words.weight.t() + self.bias
        return F.cross_entropy(logits, targets)


class Gpt(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.encoder = Transformer(c)

    def logits(self, ids, caches=None, first_position=0):
        return self.encoder(ids, caches=caches, first_position=first_position) \
            @ self.encoder.words.weight.t()

    def loss(self, ids):
        logits = self.logits(ids)[:, :-1]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def bert_masking(ids: torch.Tensor, vocab: int, special: int = 5, mask_id: int = 4,
                 generator=None):
    """BERT's corruption of ordinary ids (ids < `special` are special and never chosen)."""
    choose = torch.rand(ids.shape, generator=generator) < 0.15
    choose &= ids >= special
    action = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(special, vocab, ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[choose & (action < 0.8)] = mask_id
    swap = choose & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_ids[swap]
    labels = torch.where(choose, ids, torch.full_like(ids, IGNORED))
    return inputs, labels


def time_steps(step, warmup: int, iters: int, dev: torch.device):
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2], times[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["bert-mini", "char-gpt"], required=True)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--generate", type=int, default=0,
                   help="time greedy generation of this many tokens instead of a step")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: PyTorch's choice)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.manual_seed(0)
    c = BERT_MINI if a.model == "bert-mini" else CHAR_GPT
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, c["vocab"], (c["batch"], c["seq"]), generator=g)

    if a.generate:
        model = Gpt(CHAR_GPT).to(dev).eval()
        with torch.no_grad():
            def generate():
                caches = [dict() for _ in model.encoder.blocks]
                token = torch.tensor([[7]], device=dev)
                for position in range(a.generate):
                    logits = model.logits(token, caches, position)
                    token = logits[:, -1].argmax(-1, keepdim=True)
                return token.item()
            generate()  # warm-up
            start = time.perf_counter()
            generate()
            seconds = time.perf_counter() - start
        result = {"model": a.model, "tokens": a.generate, "tokens_per_s": a.generate / seconds,
                  "seconds": seconds, "device": a.device, "threads": torch.get_num_threads(),
                  "torch": torch.__version__}
    else:
        if a.model == "bert-mini":
            model = BertMlm(c).to(dev).train()
            inputs, labels = bert_masking(ids, c["vocab"], generator=g)
            inputs, labels = inputs.to(dev), labels.to(dev)
            padding = torch.ones_like(inputs)
            compute = lambda: model.loss(inputs, padding, labels)  # noqa: E731
        else:
            model = Gpt(c).to(dev).train()
            ids = ids.to(dev)
            compute = lambda: model.loss(ids)  # noqa: E731
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999),
                                      eps=1e-8, weight_decay=0.0)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = compute()
            loss.item()
            loss.backward()
            optimizer.step()

        median, minimum = time_steps(step, a.warmup, a.iters, dev)
        result = {"model": a.model, "median_s": median, "min_s": minimum, "iters": a.iters,
                  "batch": c["batch"], "seq": c["seq"], "device": a.device,
                  "threads": torch.get_num_threads(), "torch": torch.__version__}
    if a.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
