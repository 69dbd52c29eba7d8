#!/usr/bin/python3
"""Writes the fixture of dev.isthmus.data.TransformsTest: bilinear resizing by PyTorch.

Run with Debian's interpreter (PyTorch 1.13 from python3-torch):

    /usr/bin/python3 tests/parity/make_data_fixtures.py

It writes tests/src/test/resources/data/resize.safetensors holding, for each case <name>,

    <name>.in    a float32 image, CHW
    <name>.out   torch.nn.functional.interpolate(in[None], size, mode='bilinear',
                 align_corners=False)[0], computed in float64 from the float32 input and
                 rounded to float32 once

and the metadata "cases", the names comma-separated. The cases enlarge, shrink (by more than 2
too, where torch skips pixels without antialiasing), mix the two, keep the size, and start from
a single row.
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_fixtures import write_safetensors  # noqa: E402  (the same writer as the op fixtures)

OUT = os.path.join(HERE, "..", "src", "test", "resources", "data", "resize.safetensors")

CASES = [
    ("up", (3, 4, 5), (7, 9)),
    ("down", (3, 10, 8), (4, 3)),
    ("down_by_3", (1, 13, 11), (4, 3)),
    ("mixed", (2, 6, 6), (9, 4)),
    ("same", (1, 5, 5), (5, 5)),
    ("one_row", (1, 1, 3), (4, 2)),
    ("mnist_to_32", (1, 28, 28), (32, 32)),
]


def main():
    torch.manual_seed(0)
    tensors = {}
    for name, shape, size in CASES:
        x = torch.rand(*shape, dtype=torch.float32)
        y = F.interpolate(x.double()[None], size=size, mode="bilinear", align_corners=False)[0]
        tensors[name + ".in"] = x
        tensors[name + ".out"] = y.float()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    write_safetensors(OUT, tensors, {"cases": ",".join(name for name, _, _ in CASES)})
    print(f"wrote {os.path.normpath(OUT)}: {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
