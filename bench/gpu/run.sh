#!/usr/bin/env bash
# One call on a GPU machine (≤ 8 minutes on an H100): pretext on CUDA beside PyTorch 2.11.
# Prepare here first (bench/gpu/prepare.sh), carry target/gpu, then on the GPU machine:
#
#   bench/gpu/run.sh [OUT]        # OUT defaults to $OUT, else target/gpu/out
#
# Parts, in this order (PARTS="smoke parity large recipe small augment nccl" by default: a
# second call can run the ones the first had no time for):
#   smoke    every method pretrains 20 steps on CUDA in fp32 and bf16, six at a time (the
#            loss must stay finite);
#   parity   SimCLR (ResNet-18), MoCo, BYOL, DINO, BERT MLM and VIME: 5 fp32 steps on the
#            CPU and on the GPU give the same losses (1e-3), bench/gpu/compare_losses.py;
#   large    `pretext bench --large all`: SimCLR ResNet-18 (2x512), MAE ViT-S/16 and
#            BERT-base steps in fp32 and bf16 beside bench/reference/gpu_step.py, with GPU
#            memory;
#   recipe   time to accuracy: configs/simclr-fmnist-gpu.toml trained by pretext, its kept
#            checkpoints (every 500 steps) probed by k-NN with Fashion-MNIST's 60,000
#            training images as the bank and its 10,000 test images as queries, then the
#            same recipe in PyTorch (bench/reference/simclr_recipe.py, evaluated at the same
#            steps) for at least as long as pretext trained; bench/gpu/time_to_accuracy.py
#            sets the curves side by side; then the 600-label probe beside raw pixels + LR;
#   small    the SimCLR step and epoch benchmarks of `pretext bench` on CUDA;
#   augment  100 SimCLR steps with the views made by the CPU workers and by the GPU
#            (data.augment), and with the host reading every step (train.host_reads);
#   nccl     NCCL's all-reduce with one process beside torch.distributed's.
# Every part has its own time limit within GPU_BUDGET_S (default 470); a part with too
# little time left is skipped and says so; a failing part is reported and the next one runs.
# One call does all of it only if the benchmarks are quick; with a warm machine, two calls
# fit a 15-minute device budget: PARTS="smoke parity large small augment nccl" GPU_BUDGET_S=360,
# then PARTS=recipe GPU_BUDGET_S=400 (RECIPE_S caps each side's training, default 300 s).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=${1:-${OUT:-target/gpu/out}}
mkdir -p "$out"
started=$(date +%s)
python=${PYTHON:-python3}
torch_lib=$($python -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=${PRETEXT_BIN:-target/gpu/pretext}
[ -x "$bin" ] || { gunzip -kf target/gpu/pretext.gz && chmod +x "$bin"; }
data=${GPU_DATA:-target/gpu/data}
# A dry run of the script's plumbing on a CPU (not a measurement): DEVICE=cpu, PRETEXT_BIN,
# GPU_DATA, and small runs through RECIPE_ARGS (added to pretext's recipe run),
# REFERENCE_ARGS (to simclr_recipe.py's), RECIPE_DATA, EVAL_STEPS and PROBE_LABELS.
device=${DEVICE:-cuda}
budget=${GPU_BUDGET_S:-470}
left() { echo $((budget - ($(date +%s) - started))); }
part() { # part NAME LIMIT_S COMMAND...: runs COMMAND with a time limit (never past the
    # budget), logs to $out/NAME.log
    local name=$1 limit=$2; shift 2
    local t0 cap
    t0=$(date +%s)
    cap=$(left)
    [ "$limit" -gt "$cap" ] && limit=$cap
    [ "$limit" -lt 5 ] && limit=5
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "== $name: rc $rc in $(( $(date +%s) - t0 )) s"
    [ $rc -eq 0 ] || tail -5 "$out/$name.log"
    return $rc
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
$python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'

wanted() { [[ " ${PARTS:-smoke parity large recipe small augment nccl} " == *" $1 "* ]]; }
# fits NAME NEEDED_S: whether NAME is wanted and NEEDED_S seconds are left (else says why).
fits() {
    wanted "$1" || return 1
    [ "$(left)" -ge "$2" ] && return 0
    echo "== $1: skipped, $(left) s left of GPU_BUDGET_S=$budget (needs $2)"
    return 1
}

# Every method on CUDA, fp32 and bf16: six runs at a time.
smoke() { # smoke METHOD PRECISION ARGS...
    local method=$1 precision=$2; shift 2
    part "smoke-$method-$precision" 60 "$bin" pretrain --method "$method" --device "$device" \
        --precision "$precision" --steps 20 --out "$out/runs/$method-$precision" --overwrite \
        --set health.every=10 --set health.knn_every=20 --set train.log_every=10 "$@" \
        >"$out/smoke-$method-$precision.summary" &&
        tail -1 "$out/runs/$method-$precision/metrics.jsonl" | cut -c1-300 \
            >>"$out/smoke-$method-$precision.summary"
}
if fits smoke 90; then
    for precision in fp32 bf16; do
        for spec in "simclr --backbone resnet18 --batch-size 256 --image-size 32" \
            "moco --batch-size 256" "byol --batch-size 256" "dino --batch-size 256" \
            "rotation --batch-size 256" "jigsaw --batch-size 256" \
            "mae --backbone vit --batch-size 256" \
            "bert-mlm --backbone transformer --data $data/emma.txt --batch-size 64" \
            "gpt --backbone transformer --data $data/emma.txt --batch-size 64" \
            "vime --backbone mlp --data $data/letter_recognition.csv --batch-size 256" \
            "scarf --backbone mlp --data $data/letter_recognition.csv --batch-size 256"; do
            read -r -a words <<<"$spec"
            [ "$(jobs -rp | wc -l)" -ge 6 ] && wait -n
            smoke "${words[0]}" "$precision" "${words[@]:1}" &
        done
    done
    wait
    cat "$out"/smoke-*.summary
fi

# The same 5 fp32 steps (TF32 off) on the CPU and on the GPU: the losses must agree to
# 1e-3, which checks the CUDA paths (views made on the GPU, steps decided on the device,
# the fused AdamW and clipping, pinned copies) against the CPU's for methods whose step
# draws no random numbers on the device (dropout off for the transformer).
parity() { # parity NAME ARGS...
    local name=$1; shift
    local common=(pretrain --steps 5 --precision fp32 --set train.tf32=false
        --set train.log_every=1 --set health.knn_every=0 --overwrite "$@")
    part "parity-$name-cpu" 90 "$bin" "${common[@]}" --device cpu \
        --out "$out/runs/parity-$name-cpu" &&
        part "parity-$name-gpu" 60 "$bin" "${common[@]}" --device "$device" \
            --out "$out/runs/parity-$name-gpu" &&
        $python bench/gpu/compare_losses.py "$out/runs/parity-$name-cpu" \
            "$out/runs/parity-$name-gpu" --name "$name"
}
if fits parity 60; then
    parity simclr --method simclr --backbone resnet18 --image-size 32 --batch-size 64
    for method in moco byol dino; do parity "$method" --method "$method" --batch-size 64; done
    parity bert-mlm --method bert-mlm --backbone transformer --data "$data/emma.txt" \
        --batch-size 32 --set backbone.transformer.dropout=0.0
    parity vime --method vime --backbone mlp --data "$data/letter_recognition.csv" \
        --batch-size 256
fi

# GPU-sized networks beside PyTorch.
if fits large 100; then
    part bench-large 200 "$bin" bench --device "$device" --skip-step --skip-epoch --large all \
        --precision fp32,bf16 --python "$python" --json "$out/bench-large.json" &&
        grep -E "step|note" "$out/bench-large.log"
fi

# Time to accuracy: the GPU recipe in pretext, then in PyTorch for at least as long.
if fits recipe 150; then
    # Each side trains for about half of what is left after the probes (60 s) and the
    # reference's evaluations and start (40 s); pretext's limit includes its start-up.
    each=$(( ($(left) - 100) / 2 ))
    [ "$each" -gt "${RECIPE_S:-300}" ] && each=${RECIPE_S:-300}
    recipe=$out/runs/recipe
    # shellcheck disable=SC2086 # RECIPE_ARGS and REFERENCE_ARGS are word lists
    part recipe $((each + 20)) "$bin" pretrain --config configs/simclr-fmnist-gpu.toml \
        --data "${RECIPE_DATA:-$data/fashion-mnist}" --out "$recipe" --overwrite \
        --device "$device" ${RECIPE_ARGS:-}
    tail -1 "$recipe/metrics.jsonl" | cut -c1-400
    steps=$(ls "$recipe/checkpoints" 2>/dev/null | sed -n 's/^step-//p' | sort -n | paste -sd,)
    if [ -n "$steps" ]; then
        part recipe-knn 60 "$bin" probe "$recipe" --step "$steps" --knn-only --no-baselines \
            --labels "${PROBE_LABELS:-60000}" --device "$device" &&
            grep "(step" "$out/recipe-knn.log"
    fi
    # The reference trains as long as pretext did (its last elapsed_seconds), or `each`.
    trained=$($python -c 'import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
print(int(max(r.get("elapsed_seconds", 0) for r in records) + 1))' \
        "$recipe/metrics.jsonl" 2>/dev/null || echo 0)
    limit=$(( trained > each ? trained : each ))
    # shellcheck disable=SC2086
    part recipe-pytorch $((limit + 60)) $python bench/reference/simclr_recipe.py \
        --data "$data/fashion-mnist" --device "$device" --eval-steps "${EVAL_STEPS:-500}" \
        --time-limit "$limit" --json ${REFERENCE_ARGS:-}
    $python bench/gpu/time_to_accuracy.py --run "$recipe" --reference "$out/recipe-pytorch.log" \
        --labels "${PROBE_LABELS:-60000}" --json "$out/time-to-accuracy.json" |
        tee "$out/time-to-accuracy.txt"
    # Item 5's second goal: the linear probe with 600 labels beside raw pixels + LR.
    [ "$(left)" -ge 40 ] && part recipe-probe600 40 "$bin" probe "$recipe" --labels 600 \
        --device "$device" && grep -E "step|raw" "$out/recipe-probe600.log"
fi

# The small SimCLR step and the Fashion-MNIST epoch (loading + augmentation) on CUDA.
if fits small 60; then
    part bench-small 150 "$bin" bench --device "$device" --data "$data/fashion-mnist" --workers 12 \
        --epoch-steps 100 --audio --python "$python" --json "$out/bench-small.json" &&
        grep -E "step|epoch" "$out/bench-small.log"
fi

# The same 100 SimCLR steps (ResNet-18, batch 512) with the views made by the data workers
# (data.augment=host) and by the GPU (device, the default on CUDA); then the device-view
# run with the host reading every step (train.host_reads = every-step) instead of only on
# log steps (auto on CUDA): what the per-step read costs.
augment() { # augment NAME SETTINGS...
    local name=$1; shift
    part "$name" 90 "$bin" pretrain --device "$device" --data "$data/fashion-mnist" \
        --backbone resnet18 --image-size 32 --batch-size 512 --steps 100 --precision bf16 \
        --out "$out/runs/$name" --overwrite --set data.workers=12 --set health.knn_every=0 "$@" &&
        tail -1 "$out/runs/$name/metrics.jsonl" |
        grep -oE '"(images_per_second|data_wait_seconds)":[0-9.e+-]+'
}
for place in host device; do
    fits augment 45 && augment "augment-$place" --set data.augment=$place
done
fits augment 45 && augment augment-device-every-step --set data.augment=device \
    --set train.host_reads=every-step

# NCCL's path with one process (a group of one on this GPU): the all-reduce of 1 MB to
# ViT-S/16's gradients beside torch.distributed's NCCL (both under torchrun).
if fits nccl 30; then
    part allreduce-nccl 60 "$bin" bench --device "$device" --skip-step --skip-epoch --allreduce 1 \
        --python "$python" --json "$out/allreduce-nccl.json" &&
        grep -E "all-reduce|MB|parameters" "$out/allreduce-nccl.log"
fi
echo "total $(( $(date +%s) - started )) s"
