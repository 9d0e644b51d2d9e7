#!/usr/bin/env bash
# Time per SimCLR step of one process vs two data-parallel processes (torchrun, Gloo) on this
# machine's CPU, for ResNet-18 (11.2 M parameters) and ViT-S/16 (21.7 M), and the part of
# the two-process step spent in the gradient all-reduce (pretrain's closing line). The same
# global batch everywhere (32 images, 2 views each, at 32 px), so the three runs do the same
# work: one process on one core, one process on every core, two processes on one core each.
#
#   bash bench/data-parallel-cpu.sh          # after ./x build and ./x env (for torchrun)
set -euo pipefail
cd "$(dirname "$0")/.."
pretext=${PRETEXT:-$PWD/target/release/pretext}
torchrun=${TORCHRUN:-$(command -v torchrun || echo "$HOME/.cache/pretext/venv/bin/torchrun")}
steps=${STEPS:-12}
[[ -x $pretext ]] || { echo "error: $pretext is missing: build it first (./x build)" >&2; exit 1; }
[[ -x $torchrun ]] || { echo "error: no torchrun (./x env sets up the venv that has it)" >&2; exit 1; }
out=$(mktemp -d /tmp/pretext-dp-bench.XXXXXX)
common=(pretrain --method simclr --data embedded --image-size 32 --batch-size 32 --steps "$steps"
        --workers 1 --set health.knn_every=0 --set "train.checkpoint_every=$steps"
        --set "train.log_every=$steps")
declare -A backbone=(
  [resnet18]="--backbone resnet18"
  [vit-s16]="--backbone vit --set backbone.vit.patch_size=16 --set backbone.vit.hidden_dim=384 --set backbone.vit.layers=12 --set backbone.vit.heads=6 --set backbone.vit.mlp_dim=1536"
)
cores=$(nproc)
# Seconds per step and in the all-reduce, from pretrain's closing line.
per_step() {
  python3 - "$1" "$steps" <<'EOF'
import re, sys
line = next(l for l in open(sys.argv[1]) if l.startswith("done:"))
total = float(re.search(r"steps in ([0-9.]+) s", line).group(1))
reduce = re.search(r"([0-9.]+) s in the gradient all-reduce", line)
steps = int(sys.argv[2])
print(f"{1000 * total / steps:.0f} ms/step" + (f", {1000 * float(reduce.group(1)) / steps:.0f} ms of it in the all-reduce" if reduce else ""))
EOF
}
echo "SimCLR, global batch 32 (2 views of 32 px), $steps steps; $cores cores"
for model in resnet18 vit-s16; do
  # shellcheck disable=SC2206
  extra=(${backbone[$model]})
  OMP_NUM_THREADS=1 "$pretext" "${common[@]}" "${extra[@]}" --out "$out/$model-1x1" 2> "$out/$model-1x1.log"
  OMP_NUM_THREADS=$cores "$pretext" "${common[@]}" "${extra[@]}" --out "$out/$model-1x$cores" 2> "$out/$model-1x$cores.log"
  OMP_NUM_THREADS=1 "$torchrun" --standalone --nproc-per-node 2 --no-python "$pretext" "${common[@]}" "${extra[@]}" \
    --out "$out/$model-2x1" 2> "$out/$model-2x1.log"
  echo "$model: 1 process, 1 thread: $(per_step "$out/$model-1x1.log")"
  echo "$model: 1 process, $cores threads: $(per_step "$out/$model-1x$cores.log")"
  echo "$model: 2 processes, 1 thread each: $(per_step "$out/$model-2x1.log")"
done
echo "logs in $out"
