#!/usr/bin/env bash
# The baselines of issue 19 before and after: the raw-feature linear probe (fixed weight
# decay vs cross-validated L2) beside `--classic` raw + LR, training from scratch (early
# stopping on 20% vs cross-validated lr / weight decay / epochs with augmentations) and
# fine-tuning (random head, lr 1e-3 vs linear probe then fine-tune, lr 3e-4), on the shared
# image, text, audio and table sets.
#
#   bench/baselines-before-after.sh BEFORE_BINARY AFTER_BINARY OUT_DIR
#
# BEFORE_BINARY is pretext built at commit 71ce938 (before the change), AFTER_BINARY the
# current one. Each modality pretrains one run with BEFORE (so that both binaries read its
# config.toml: settings added since are unknown to BEFORE), then both binaries probe and
# fine-tune it (the raw rows and scratch do not depend on the pretraining; the fine-tuned
# rows do). MODALITIES="audio text" measures only those (default: all four); SEEDS="0"
# only those seeds (default: 0 1 2).
# Writes OUT_DIR/<modality>/*.txt (every command's output) and prints a summary.
set -euo pipefail
before="$1" after="$2" out="$3"
modalities="${MODALITIES:-images tables audio text}"
seeds="${SEEDS:-0 1 2}"
want() { [[ " $modalities " == *" $1 "* ]]; }
shared="$(cd "$(dirname "$0")/../.." && pwd)/shared/data"
mkdir -p "$out"

pretrain() { # name, args...
  local name="$1"; shift
  [ -f "$out/$name/run/config.toml" ] && return
  mkdir -p "$out/$name"
  "$before" pretrain "$@" --out "$out/$name/run" --overwrite --device cpu > "$out/$name/pretrain.txt" 2>&1
}

compare() { # name, labels, seeds...
  local name="$1" labels="$2"; shift 2
  local run="$out/$name/run"
  for seed in "$@"; do
    for which in before after; do
      local bin="$before"; [ "$which" = after ] && bin="$after"
      "$bin" probe "$run" --labels "$labels" --seed "$seed" --classic --device cpu \
        --json "$out/$name/probe-$which-$seed.json" > "$out/$name/probe-$which-$seed.txt" 2>&1
      if [ "${finetune:-1}" = 1 ]; then
        "$bin" finetune "$run" --labels "$labels" --seed "$seed" --device cpu \
          --json "$out/$name/finetune-$which-$seed.json" > "$out/$name/finetune-$which-$seed.txt" 2>&1
      fi
      local cv=""; [ "$which" = after ] && cv="--cross-validate"
      "$bin" finetune "$run" --labels "$labels" --seed "$seed" --from-scratch $cv --device cpu \
        --json "$out/$name/scratch-$which-$seed.json" > "$out/$name/scratch-$which-$seed.txt" 2>&1
    done
  done
}

# Every modality gets a real pretraining, so the fine-tuned rows mean something: SimCLR
# 300 steps, VIME 2000 steps, the wav2vec 2.0 config's 2000 steps, BERT MLM 2000 steps
# (TEXT_STEPS=N for fewer: 0.7 s a step on 2 cores).
if want images; then
  pretrain images --method simclr --data embedded --steps 300
  compare images 80 $seeds
fi
if want tables; then
  pretrain tables --method vime --backbone mlp --data "$shared/tabular/letter_recognition.csv" --steps 2000
  compare tables 1% $seeds
fi
if want audio; then
  pretrain audio --config "$(dirname "$0")/../configs/wav2vec2-spoken-words.toml" \
    --set data.path="\"$shared/audio/spoken-words\"" \
    --set data.unlabeled="[\"$shared/audio/spoken-sentences\"]"
  compare audio 120 $seeds
fi
if want text; then
  pretrain text --method bert-mlm --backbone transformer --data "$shared/text/austen/austen_train.tsv" \
    --set data.test_path="\"$shared/text/austen/austen_test.tsv\"" --steps "${TEXT_STEPS:-2000}"
  compare text 120 $seeds
fi

python3 - "$out" <<'PY'
import json, pathlib, statistics, sys
out = pathlib.Path(sys.argv[1])
def mean(values):
    if not values:
        return "—"
    return f"{100 * statistics.mean(values):.1f}" + (f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else "")
print("| data | labels | seeds | raw · linear before | raw · linear after (CV) | raw + LR (classic) | scratch before | scratch after (CV) | fine-tuned before | fine-tuned after (LP-FT) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in ["images", "tables", "audio", "text"]:
    folder = out / name
    seeds = sorted(int(p.stem.split("-")[-1]) for p in folder.glob("probe-after-*.json"))
    if not seeds:
        continue
    def probe(which, row_prefix, field):
        values = []
        for seed in seeds:
            rows = json.loads((folder / f"probe-{which}-{seed}.json").read_text())["rows"]
            row = next(r for r in rows if r["name"].startswith(row_prefix))
            values.append(row[field])
        return values
    raw = json.loads((folder / f"probe-after-{seeds[0]}.json").read_text())["rows"]
    raw_name = next(r["name"] for r in raw if r["name"] in ("raw pixels", "raw columns", "TF-IDF", "log-mel"))
    labels = json.loads((folder / f"probe-after-{seeds[0]}.json").read_text())["labels"]
    def acc(kind, which):
        files = [folder / f"{kind}-{which}-{s}.json" for s in seeds]
        return [json.loads(f.read_text())["test_accuracy"] for f in files if f.exists()]
    print(f"| {name} ({raw_name}) | {labels} | {len(seeds)} | {mean(probe('before', raw_name, 'linear'))} | {mean(probe('after', raw_name, 'linear'))} | "
          f"{mean(probe('after', 'raw + logistic', 'linear'))} | {mean(acc('scratch', 'before'))} | {mean(acc('scratch', 'after'))} | "
          f"{mean(acc('finetune', 'before'))} | {mean(acc('finetune', 'after'))} |")
PY
