#!/usr/bin/env bash
# Builds what bench/gpu/run.sh needs on the GPU machine, here (it has no Rust toolchain):
# the release binary with NCCL (stripped, gzipped) and the data the run reads, under
# target/gpu/. NCCL needs CUDA headers the torch wheel's packages lack: `./x cuda-include`
# fetches them once (crt/host_config.h from PyPI nvidia-cuda-crt, nv/target from
# nvidia-cuda-cccl).
# Then carry target/gpu with the checkout and run bench/gpu/run.sh there.
#
#   bench/gpu/prepare.sh [SHARED_DATA]      # default ../shared/data
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${1:-../shared/data}
source <(./x env)
PRETEXT_CUDA_INCLUDE="$(./x cuda-include)" \
  cargo build --release --locked -p pretext-cli --features nccl
rm -rf target/gpu && mkdir -p target/gpu/data
strip -o target/gpu/pretext target/release/pretext
gzip -9 -f target/gpu/pretext
cp -r "$shared/vision/fashion-mnist" target/gpu/data/
cp "$shared/text/austen/emma.txt" target/gpu/data/
cp "$shared/tabular/letter_recognition.csv" target/gpu/data/
du -sh target/gpu
