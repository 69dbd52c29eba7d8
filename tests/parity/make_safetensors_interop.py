#!/usr/bin/python3
"""Writes the interchange fixture of SafeTensorsInteropTest with the real safetensors package.

The other fixtures are written by this directory's own writer; this one checks that Isthmus reads
what Python's safetensors (safetensors.torch.save_file) and PyTorch produce, half precision
included, and that it rounds float32 to F16 and BF16 exactly as PyTorch does. It needs the
safetensors package next to Debian's PyTorch:

    /usr/bin/python3 -m venv --system-site-packages /tmp/stvenv
    /tmp/stvenv/bin/pip install safetensors
    /tmp/stvenv/bin/python tests/parity/make_safetensors_interop.py

It writes tests/src/test/resources/io/torch_interop.safetensors (under 20 KB), seeded, so the output
is the same on every run with the same versions. Tensors:

  f32, f64, i64     odd shapes; the first elements are fixed values the Java test spells out
                    (extremes, subnormals, infinities, -0), the rest random
  f16, bf16         the same for half precision: subnormals, the largest finite, infinities, NaN, -0
  scalar_f16        a 0-dim F16 tensor;  empty_bf16: a (0, 3) BF16 tensor
  expect.<name>     for f16, bf16 and scalar_f16: the values widened by torch to float32 (exact);
                    for f32: its values as float64
  round.src         float32 values: rounding ties, overflow, subnormal results, random bit patterns
  round.f16         round.src.half()       (torch's rounding, to compare with Isthmus writing F16)
  round.bf16        round.src.bfloat16()   (the same for BF16)

Metadata: format=pt, producer=<this script's path in the repository>.
"""
import os
import zlib

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "src", "test", "resources", "io", "torch_interop.safetensors")
SIZE_LIMIT = 20 * 1024
INF, NAN = float("inf"), float("nan")


def with_fixed(fixed, dtype, shape, random):
    """A tensor of `shape` whose first elements are `fixed` and the rest `random` values."""
    n = 1
    for s in shape:
        n *= s
    head = torch.tensor(fixed, dtype=torch.float64).to(dtype)
    return torch.cat([head, random(n - len(fixed)).to(dtype)]).reshape(shape)


def main():
    torch.manual_seed(zlib.crc32(b"torch_interop"))
    t = {}
    t["f32"] = with_fixed([1.5, -0.0, 2.0 ** -149, 3.4028234663852886e38, -INF], torch.float32, (3, 1, 5),
                          lambda n: torch.randn(n))
    t["f64"] = with_fixed([1e-300, -1e300, 2.0 ** -1074, INF], torch.float64, (2, 3, 5),
                          lambda n: torch.randn(n, dtype=torch.float64))
    t["i64"] = torch.tensor([-(2 ** 63), 2 ** 63 - 1, -1, 0, 2 ** 53 + 1, 7, -12345678901], dtype=torch.int64)
    t["f16"] = with_fixed([1.0, -2.5, 2.0 ** -24, 1023 * 2.0 ** -24, 2.0 ** -14, 65504.0, INF, -INF, NAN, -0.0],
                          torch.float16, (5, 7), lambda n: torch.randn(n) * 2.0 ** torch.randint(-20, 12, (n,)))
    t["bf16"] = with_fixed([1.0, -3.140625, 2.0 ** -133, 127 * 2.0 ** -133, 2.0 ** -126, 3.3895313892515355e38,
                            INF, -INF, NAN, -0.0],
                           torch.bfloat16, (4, 9), lambda n: torch.randn(n) * 2.0 ** torch.randint(-120, 120, (n,)))
    t["scalar_f16"] = torch.tensor(-0.333, dtype=torch.float16)
    t["empty_bf16"] = torch.zeros(0, 3, dtype=torch.bfloat16)
    for name in ("f16", "bf16", "scalar_f16"):
        t["expect." + name] = t[name].float()
    t["expect.f32"] = t["f32"].double()

    ties = [1 + k * 2.0 ** -11 for k in (1, 3, 5)] + [1 + k * 2.0 ** -8 for k in (1, 3, 5)]
    edges = [65519.0, 65520.0, -65520.0, 2.0 ** -25, 3 * 2.0 ** -25, 2.0 ** -26, 1e-10,
             3.4028234663852886e38, 3.3895313892515355e38, 3.39617752923046e38, 2.0 ** -149, 2.0 ** -126,
             -0.0, INF, NAN]
    scaled = torch.randn(48) * 2.0 ** torch.randint(-30, 20, (48,))
    bits = torch.randint(-(2 ** 31), 2 ** 31, (64,), dtype=torch.int64).to(torch.int32).view(torch.float32)
    src = torch.cat([torch.tensor(ties + edges, dtype=torch.float64).float(), scaled, bits])
    t["round.src"] = src
    t["round.f16"] = src.half()
    t["round.bf16"] = src.bfloat16()

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(t, OUT, metadata={"format": "pt", "producer": "tests/parity/make_safetensors_interop.py"})
    back = load_file(OUT)
    for name, x in t.items():
        assert back[name].dtype == x.dtype and torch.equal(back[name].view(-1).view(torch.uint8),
                                                           x.contiguous().view(-1).view(torch.uint8)), name
    size = os.path.getsize(OUT)
    print(f"{os.path.relpath(OUT)}: {size} bytes, {len(t)} tensors")
    if size > SIZE_LIMIT:
        raise SystemExit(f"the fixture is {size} bytes, over the limit of {SIZE_LIMIT}")


if __name__ == "__main__":
    main()
