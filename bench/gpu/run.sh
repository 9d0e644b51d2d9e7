#!/usr/bin/env bash
# One call on a GPU machine (≤ 8 minutes on an H100): pretext on CUDA beside PyTorch 2.11.
# Prepare here first (bench/gpu/prepare.sh), carry target/gpu, then on the GPU machine:
#
#   bench/gpu/run.sh [OUT]        # OUT defaults to $OUT, else target/gpu/out
#
# 1. every method pretrains 20 steps on CUDA in fp32 and bf16 (the loss must stay finite);
# 2. `pretext bench --large all`: SimCLR ResNet-18 (2x512), MAE ViT-S/16 and BERT-base
#    steps in fp32 and bf16 beside bench/reference/gpu_step.py, with GPU memory;
# 3. the SimCLR step and epoch benchmarks of `pretext bench` on CUDA, NCCL's all-reduce with
#    one process beside torch.distributed's, and 100 SimCLR steps with the views made by
#    the CPU workers and by the GPU (data.augment), and with the host reading every step
#    (train.host_reads);
# 4. configs/simclr-fmnist-gpu.toml for as long as the time left allows, then its k-NN on
#    Fashion-MNIST's 10,000 test images with the 60,000 training images as the bank.
# Every part has its own time limit; a failing part is reported and the next one runs.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-${OUT:-target/gpu/out}}
mkdir -p "$out"
started=$(date +%s)
python=${PYTHON:-python3}
torch_lib=$($python -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=target/gpu/pretext
[ -x "$bin" ] || { gunzip -kf target/gpu/pretext.gz && chmod +x "$bin"; }
data=target/gpu/data
budget=${GPU_BUDGET_S:-470}
left() { echo $((budget - ($(date +%s) - started))); }
part() { # part NAME LIMIT_S COMMAND...: runs COMMAND with a time limit, logs to $out/NAME.log
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s)
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "== $name: rc $rc in $(( $(date +%s) - t0 )) s"
    [ $rc -eq 0 ] || tail -5 "$out/$name.log"
    return $rc
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
$python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'

# 1. Every method on CUDA, fp32 and bf16.
smoke() { # smoke METHOD PRECISION ARGS...
    local method=$1 precision=$2; shift 2
    part "smoke-$method-$precision" 60 "$bin" pretrain --method "$method" --device cuda \
        --precision "$precision" --steps 20 --out "$out/runs/$method-$precision" --overwrite \
        --set health.every=10 --set health.knn_every=20 --set train.log_every=10 "$@" &&
        tail -1 "$out/runs/$method-$precision/metrics.jsonl" | cut -c1-300
}
for precision in fp32 bf16; do
    smoke simclr $precision --backbone resnet18 --batch-size 256 --image-size 32
    for method in moco byol dino rotation jigsaw; do smoke $method $precision --batch-size 256; done
    smoke mae $precision --backbone vit --batch-size 256
    smoke bert-mlm $precision --data $data/emma.txt --batch-size 64
    smoke gpt $precision --data $data/emma.txt --batch-size 64
    smoke vime $precision --data $data/letter_recognition.csv --batch-size 256
    smoke scarf $precision --data $data/letter_recognition.csv --batch-size 256
done

# 2. GPU-sized networks beside PyTorch.
part bench-large 200 "$bin" bench --device cuda --skip-step --skip-epoch --large all \
    --precision fp32,bf16 --python "$python" --json "$out/bench-large.json" &&
    grep -E "step|note" "$out/bench-large.log"

# 3. The small SimCLR step and the Fashion-MNIST epoch (loading + augmentation) on CUDA.
part bench-small 150 "$bin" bench --device cuda --data $data/fashion-mnist --workers 12 --epoch-steps 100 \
    --audio --python "$python" --json "$out/bench-small.json" &&
    grep -E "step|epoch" "$out/bench-small.log"

# 3b. The same 100 SimCLR steps (ResNet-18, batch 512) with the views made by the data
#     workers (data.augment=host) and by the GPU (device, the default on CUDA).
for place in host device; do
    part "augment-$place" 90 "$bin" pretrain --device cuda --data $data/fashion-mnist \
        --backbone resnet18 --image-size 32 --batch-size 512 --steps 100 --precision bf16 \
        --out "$out/runs/augment-$place" --overwrite --set data.augment=$place \
        --set data.workers=12 --set health.knn_every=0 &&
        tail -1 "$out/runs/augment-$place/metrics.jsonl" |
        grep -oE '"(images_per_second|data_wait_seconds)":[0-9.e+-]+'
done

# 3b'. The device-view run again with the host reading every step (train.host_reads =
#      every-step) instead of only on log steps (auto on CUDA): what the per-step read costs.
part "augment-device-every-step" 90 "$bin" pretrain --device cuda --data $data/fashion-mnist \
    --backbone resnet18 --image-size 32 --batch-size 512 --steps 100 --precision bf16 \
    --out "$out/runs/augment-device-every-step" --overwrite --set data.augment=device \
    --set train.host_reads=every-step --set data.workers=12 --set health.knn_every=0 &&
    tail -1 "$out/runs/augment-device-every-step/metrics.jsonl" |
    grep -oE '"(images_per_second|data_wait_seconds)":[0-9.e+-]+'

# 3c. NCCL's path with one process (a group of one on this GPU): the all-reduce of 1 MB to
#     ViT-S/16's gradients beside torch.distributed's NCCL (both under torchrun).
part allreduce-nccl 60 "$bin" bench --device cuda --skip-step --skip-epoch --allreduce 1 \
    --python "$python" --json "$out/allreduce-nccl.json" &&
    grep -E "all-reduce|MB|parameters" "$out/allreduce-nccl.log"

# 4. The GPU recipe, for the time left, then its k-NN with the whole training set as bank.
limit=$(( $(left) - 60 ))
if [ "$limit" -gt 60 ]; then
    part recipe "$limit" "$bin" pretrain --config configs/simclr-fmnist-gpu.toml \
        --data $data/fashion-mnist --out "$out/runs/recipe" --overwrite
    tail -2 "$out/runs/recipe/metrics.jsonl" | cut -c1-400
    part recipe-knn 55 "$bin" probe "$out/runs/recipe" --labels 60000 --device cuda \
        --no-baselines && tail -15 "$out/recipe-knn.log"
fi
echo "total $(( $(date +%s) - started )) s"
