#!/usr/bin/env python3
"""Regenerate the embedded Fashion-MNIST subset from the shared data folder.

Takes the FIRST N_TRAIN training images/labels and the FIRST N_TEST t10k
images/labels, rewrites the IDX headers with the new counts and writes them
gzipped (level 9, mtime 0, no file name in the header), so the output is
byte-reproducible.

Usage (from the repository root):
    python3 crates/pretext-data/embedded/make_embedded.py [SHARED_DATA_DIR]

SHARED_DATA_DIR defaults to ../shared/data relative to the repository root.
Standard library only.
"""
import gzip
import io
import struct
import sys
from collections import Counter
from pathlib import Path

N_TRAIN = 8000
N_TEST = 2000
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]


def write_gz(path: Path, data: bytes) -> None:
    buf = io.BytesIO()
    # filename="" keeps the source name out of the header; mtime=0 for reproducibility.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    path.write_bytes(buf.getvalue())


def subset(src_dir: Path, src_prefix: str, dst_prefix: str, count: int) -> Counter:
    images = gzip.open(src_dir / f"{src_prefix}-images-idx3-ubyte.gz").read()
    labels = gzip.open(src_dir / f"{src_prefix}-labels-idx1-ubyte.gz").read()
    magic, n, rows, cols = struct.unpack(">IIII", images[:16])
    assert magic == 0x803 and n >= count, (magic, n)
    lmagic, ln = struct.unpack(">II", labels[:8])
    assert lmagic == 0x801 and ln == n, (lmagic, ln)
    image_bytes = count * rows * cols
    write_gz(HERE / f"fashion-mnist-{dst_prefix}-images-idx3-ubyte.gz",
             struct.pack(">IIII", 0x803, count, rows, cols) + images[16:16 + image_bytes])
    write_gz(HERE / f"fashion-mnist-{dst_prefix}-labels-idx1-ubyte.gz",
             struct.pack(">II", 0x801, count) + labels[8:8 + count])
    return Counter(labels[8:8 + count])


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT.parent / "shared" / "data"
    src = shared / "vision" / "fashion-mnist"
    for split, prefix, count in (("train", "train", N_TRAIN), ("test", "t10k", N_TEST)):
        counts = subset(src, prefix, split, count)
        print(f"{split}: {count} images, class counts {dict(sorted(counts.items()))}")
    total = sum(p.stat().st_size for p in HERE.glob("fashion-mnist-*.gz"))
    print(f"total size: {total} bytes")
    assert total <= 5_000_000, "embedded data exceeds 5 MB; reduce N_TRAIN"


if __name__ == "__main__":
    main()
