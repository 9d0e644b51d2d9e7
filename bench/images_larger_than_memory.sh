#!/usr/bin/env bash
# Images larger than memory (BENCHMARKS.md §11): writes 480,000 28x28 PNGs made from the full
# Fashion-MNIST training set (each image as it is, mirrored, and shifted by 1 or 2 pixels:
# 8 variants) into one folder per class under $WORK (default /tmp/pretext-bigimages; never
# under the repository), then pretrains SimCLR on them twice: with the default
# data.memory_limit_mb (4096: every pixel in the process's memory) and with 256 (the
# pixels in mapped temporary files). 480,000 images are 376 MB of pixels, so that the
# training split (301 MB) is past the 256 MB limit; 240,000 (188 MB) would fit under it.
#
# For each run: the load time (from the start to the "data:" line: list, decode, split),
# the training throughput from the "done:" line, the final loss, /usr/bin/time -v's
# maximum resident set size, and the peak anonymous and file-backed memory sampled every
# 0.1 s from /proc/PID/status (file-backed pages are the kernel's page cache of the mapped
# files: it can drop them when memory runs short; anonymous memory it cannot).
#
#   bench/images_larger_than_memory.sh            # from the repository root, after
#                                                 # cargo build --release -p pretext-cli
# Variables: PRETEXT (the binary), FASHION (the IDX folder), WORK, STEPS (300), LIMITS
# ("4096 256"), VARIANTS (8, at most 8), KEEP=1 keeps the images for another run.
set -euo pipefail

PRETEXT=${PRETEXT:-target/release/pretext}
FASHION=${FASHION:-../shared/data/vision/fashion-mnist}
WORK=${WORK:-/tmp/pretext-bigimages}
STEPS=${STEPS:-300}
LIMITS=${LIMITS:-4096 256}
VARIANTS=${VARIANTS:-8}
DATA="$WORK/data"

mkdir -p "$WORK"
if [[ ! -f "$DATA/.complete-$VARIANTS" ]]; then
    rm -rf "$DATA"
    started=$(date +%s.%N)
    python3 - "$FASHION" "$DATA" "$VARIANTS" <<'PY'
"""Fashion-MNIST's 60,000 training images x VARIANTS as 8-bit grayscale PNGs, written with the
standard library alone (zlib + struct), two processes."""
import gzip, multiprocessing, os, struct, sys, zlib

fashion, out, variants = sys.argv[1], sys.argv[2], int(sys.argv[3])
CLASSES = ["tshirt-top", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
with gzip.open(os.path.join(fashion, "train-images-idx3-ubyte.gz")) as f:
    images = f.read()[16:]
with gzip.open(os.path.join(fashion, "train-labels-idx1-ubyte.gz")) as f:
    labels = f.read()[8:]
SIDE = 28
# (mirror, dx, dy) of each variant.
TRANSFORMS = [(False, 0, 0), (True, 0, 0), (False, 1, 0), (False, -1, 0),
              (False, 0, 1), (False, 0, -1), (True, 2, 2), (True, -2, -2)][:variants]

def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

def png(rows):
    header = struct.pack(">IIBBBBB", SIDE, SIDE, 8, 0, 0, 0, 0)  # 8-bit gray
    raw = b"".join(b"\x00" + row for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))

def variant(pixels, mirror, dx, dy):
    rows = [pixels[r * SIDE:(r + 1) * SIDE] for r in range(SIDE)]
    if mirror:
        rows = [row[::-1] for row in rows]
    blank = bytes(SIDE)
    if dx > 0:
        rows = [bytes(dx) + row[:-dx] for row in rows]
    elif dx < 0:
        rows = [row[-dx:] + bytes(-dx) for row in rows]
    if dy > 0:
        rows = [blank] * dy + rows[:-dy]
    elif dy < 0:
        rows = rows[-dy:] + [blank] * -dy
    return rows

def write(start):
    for index in range(start, min(start + 1000, 60000)):
        pixels = images[index * SIDE * SIDE:(index + 1) * SIDE * SIDE]
        folder = os.path.join(out, CLASSES[labels[index]])
        for number, transform in enumerate(TRANSFORMS):
            with open(os.path.join(folder, f"{index:05}-{number}.png"), "wb") as f:
                f.write(png(variant(pixels, *transform)))

for name in CLASSES:
    os.makedirs(os.path.join(out, name), exist_ok=True)
with multiprocessing.Pool(2) as pool:
    pool.map(write, range(0, 60000, 1000))
PY
    touch "$DATA/.complete-$VARIANTS"
    echo "wrote $((60000 * VARIANTS)) PNGs ($(du -sh "$DATA" | cut -f1) on disk) in" \
        "$(echo "$(date +%s.%N) - $started" | bc) s"
fi

# Peak RssAnon / RssFile / RssShmem (kB) of the process PID, sampled every 0.1 s until it ends.
sample_memory() {
    local pid=$1 anon=0 file=0 shmem=0
    while [[ -r /proc/$pid/status ]]; do
        read -r a f s < <(awk '/^RssAnon/{a=$2} /^RssFile/{f=$2} /^RssShmem/{s=$2}
                               END{print a+0, f+0, s+0}' "/proc/$pid/status" 2>/dev/null || echo "0 0 0")
        ((a > anon)) && anon=$a
        ((f > file)) && file=$f
        ((s > shmem)) && shmem=$s
        sleep 0.1
    done
    echo "$anon $file $shmem"
}

for limit in $LIMITS; do
    out="$WORK/run-$limit"
    rm -rf "$out"
    log="$WORK/stderr-$limit.txt"
    started=$(date +%s.%N)
    /usr/bin/time -v -o "$WORK/time-$limit.txt" "$PRETEXT" pretrain --method simclr \
        --backbone small-cnn --data "$DATA" --out "$out" --steps "$STEPS" --batch-size 256 \
        --device cpu --set health.knn_every=0 --set health.every=0 \
        --set "data.memory_limit_mb=$limit" \
        2> >(while IFS= read -r line; do echo "$(date +%s.%N) $line"; done > "$log") &
    timer=$!
    child=""
    while [[ -z "$child" ]] && kill -0 "$timer" 2>/dev/null; do
        child=$(pgrep -P "$timer" -x pretext || true)
        sleep 0.02
    done
    peaks=$(sample_memory "$child")
    wait "$timer"
    sleep 0.5  # the stderr stamper finishing
    read -r anon file shmem <<<"$peaks"
    load=$(awk -v t0="$started" '/ data: /{printf "%.1f", $1 - t0; exit}' "$log")
    done_line=$(grep -o 'done: .*' "$log")
    train_seconds=$(sed -E 's/done: [0-9]+ steps in ([0-9.]+) s.*/\1/' <<<"$done_line")
    maxrss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$WORK/time-$limit.txt")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$WORK/time-$limit.txt")
    echo "data.memory_limit_mb=$limit: load ${load} s; $done_line"
    echo "  $(echo "$STEPS * 256 / $train_seconds" | bc) images/s in training;" \
        "wall $wall; /usr/bin/time max RSS $((maxrss / 1024)) MB;" \
        "peak anonymous $((anon / 1024)) MB, file-backed $((file / 1024)) MB, shmem $((shmem / 1024)) MB"
    grep -o 'data: .*' "$log" | sed 's/^/  /'
done

if [[ "${KEEP:-0}" != 1 ]]; then
    rm -rf "$WORK"
fi
