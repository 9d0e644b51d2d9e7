"""Loads a `pretext export --format torchscript` file with plain PyTorch and checks it.

    python3 check_torchscript.py ENCODER.pt EMBED.npy [IMAGES-idx3-ubyte]

* The example beside it (ENCODER.example.json: the first two held-out samples as raw inputs)
  goes through the module one at a time and together; the features must equal both the
  example's and rows 0-1 of EMBED.npy (`pretext embed RUN DATA --split test`).
* Given the held-out IDX images, every image is read here from the file (not from pretext)
  and fed as uint8 in batches of 7; the features must equal every row of EMBED.npy.

Prints the largest difference and exits 1 when it is above 1e-5.
"""

import json
import sys

import numpy as np
import torch

TOLERANCE = 1e-5


def nan_for_null(value):
    if isinstance(value, list):
        return [nan_for_null(item) for item in value]
    return float("nan") if value is None else value


def read_idx_images(path):
    data = open(path, "rb").read()
    magic, count, rows, cols = (int.from_bytes(data[i : i + 4], "big") for i in range(0, 16, 4))
    assert magic == 0x803, f"{path}: not an IDX image file"
    pixels = np.frombuffer(data[16 : 16 + count * rows * cols], dtype=np.uint8)
    return torch.from_numpy(pixels.reshape(count, 1, rows, cols).copy())


def main():
    encoder_path, embed_path = sys.argv[1], sys.argv[2]
    module = torch.jit.load(encoder_path)
    example = json.load(open(encoder_path[: -len(".pt")] + ".example.json"))
    inputs = torch.tensor(nan_for_null(example["inputs"]))
    expected = torch.tensor(example["features"])
    embedded = torch.from_numpy(np.load(embed_path))
    worst = 0.0
    with torch.no_grad():
        together = module(inputs)
        one_by_one = torch.cat([module(inputs[i : i + 1]) for i in range(len(inputs))])
        for got in (together, one_by_one):
            worst = max(worst, (got - expected).abs().max().item())
            worst = max(worst, (got - embedded[: len(got)]).abs().max().item())
        if len(sys.argv) > 3:
            images = read_idx_images(sys.argv[3])
            assert len(images) == len(embedded), (len(images), len(embedded))
            features = torch.cat([module(images[i : i + 7]) for i in range(0, len(images), 7)])
            worst = max(worst, (features - embedded).abs().max().item())
    print(f"{encoder_path}: largest difference {worst:.2e}")
    sys.exit(0 if worst <= TOLERANCE else 1)


main()
