#!/usr/bin/env bash
# Builds what bench/gpu/run.sh needs on the GPU machine, here (it has no Rust toolchain):
# the release binary with NCCL (stripped, gzipped) and the data the run reads, under
# target/gpu/. NCCL needs the CUDA runtime headers the torch wheel lacks (crt/host_config.h,
# PyPI nvidia-cuda-crt): fetched once into ~/.cache/pretext/cuda-headers.
# Then carry target/gpu with the checkout and run bench/gpu/run.sh there.
#
#   bench/gpu/prepare.sh [SHARED_DATA]      # default ../shared/data
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${1:-../shared/data}
source <(./x env)
headers=$HOME/.cache/pretext/cuda-headers
if [ ! -d "$headers/nvidia" ]; then
  cuda=$(python3 -c 'import torch; print(torch.version.cuda)')
  pip install --quiet --disable-pip-version-check --no-deps --target "$headers" "nvidia-cuda-crt==${cuda%%.*}.*"
fi
PRETEXT_CUDA_INCLUDE="$(ls -d "$headers"/nvidia/*/include | paste -sd:)" \
  cargo build --release --locked -p pretext-cli --features nccl
rm -rf target/gpu && mkdir -p target/gpu/data
strip -o target/gpu/pretext target/release/pretext
gzip -9 -f target/gpu/pretext
cp -r "$shared/vision/fashion-mnist" target/gpu/data/
cp "$shared/text/austen/emma.txt" target/gpu/data/
cp "$shared/tabular/letter_recognition.csv" target/gpu/data/
du -sh target/gpu
