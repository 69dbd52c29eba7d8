#!/usr/bin/python3
"""Writes the EMO fixtures of dev.isthmus.models.EmoTest and EmoParityTest.

Run with Debian's interpreter (PyTorch 1.13 from python3-torch):

    /usr/bin/python3 tests/parity/make_emo_fixtures.py

The PyTorch model is the reference port of the official EMO in ../shared/reference/emo_torch.py
(next to this repository; set EMO_REFERENCE to its folder to use another copy). It has the official
state-dict names and reproduces the official parameter counts and fvcore FLOPs. Two files are
written into tests/src/test/resources/emo/:

  reference.json          for EMO-1M, 2M, 5M and 6M with 1000 classes: the parameter count, the
                          fvcore-convention FLOPs at 224 x 224 (emo_torch.fvcore_flops: conv, linear
                          and matmul multiply-adds, 2 numel per eval batch norm, 5 per layer norm)
                          in total and per part (stage0..stage4, and "head": the final norm, the
                          average and the classifier), the parameters per part, and the state dict
                          in order, one "name shape dtype" string per entry (shape as 24x3x3x3).
  emo_1m_parity.safetensors
                          EMO-1M with 10 classes, its weights not stored (4.8 MB) but made by
                          formula_state_dict of formula.py, which ParityFixtures repeats bit for bit in Java:
                          every value of every state-dict entry comes from Isthmus's counter-based
                          Generator seeded with the CRC-32 of the entry's name (weights uniform in
                          +-1/sqrt(fan_in), norm weights near 1, biases and running means near 0,
                          running variances in [0.5, 1.5), so that the norms matter); input (2, 3, 128, 128), at which stage 3 forms 2 x 2 strided groups
                          of a map padded from 8 to 14 and stage 4 pads 4 to 7; labels (2);
                          eval.logits (eval mode); then one training step (train mode, no drop
                          path, cross-entropy on the labels): train.logits, train.loss, grad.<param>
                          for a handful of parameters, gradstat.<param> = [norm, dot with
                          cos(0.37 i)] of every parameter's flattened gradient, and after.<buffer>,
                          every buffer after the step. References are computed in float64 from the
                          float32 weights and input and stored as float32 (the loss and the
                          statistics as float64).
"""
import copy
import json
import os
import sys
import zlib

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_fixtures import write_safetensors  # noqa: E402  (the same writer as the op fixtures)
from formula import formula_state_dict, grad_summary  # noqa: E402  (shared with make_vit_fixtures.py)

REFERENCE = os.environ.get("EMO_REFERENCE", os.path.join(HERE, "..", "..", "..", "shared", "reference"))
sys.path.insert(0, REFERENCE)
import emo_torch  # noqa: E402

OUT_DIR = os.path.join(HERE, "..", "src", "test", "resources", "emo")
SIZE_LIMIT = 2 * 2 ** 20  # tracked files stay small: the weights are made by formula, not stored

# The parameters whose whole gradient is stored: one of each kind of layer, in every kind of block.
FULL_GRADS = [
    "stage0.0.convs.0.0.weight", "stage0.0.convs.0.1.weight", "stage0.1.conv_local.conv.weight",
    "stage0.1.se.conv_reduce.weight", "stage0.1.se.conv_expand.bias", "stage0.1.proj.conv.weight",
    "stage1.0.v.conv.weight", "stage1.1.norm.bias", "stage2.1.conv_local.norm.weight",
    "stage3.0.norm.norm.weight", "stage3.1.norm.norm.weight", "stage3.1.qk.conv.weight", "stage3.1.qk.conv.bias",
    "stage3.1.v.conv.weight", "stage3.7.proj.conv.weight", "stage4.2.qk.conv.bias",
    "stage4.2.conv_local.conv.weight", "norm.norm.weight", "norm.norm.bias", "head.weight", "head.bias",
]


class Run(torch.nn.Module):
    """Modules applied in order, so that fvcore_flops can count one part of the network."""

    def __init__(self, *parts):
        super().__init__()
        self.parts = torch.nn.ModuleList(parts)

    def forward(self, x):
        for p in self.parts:
            x = p(x)
        return x


class MeanHW(torch.nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


def parts(model):
    stages = [(f"stage{i}", Run(*getattr(model, f"stage{i}"))) for i in range(5)]
    return stages + [("head", Run(model.norm, MeanHW(), model.head))]


def structure(name):
    model = emo_torch.EMO(name).eval()
    x = torch.randn(1, 3, 224, 224)
    total = emo_torch.fvcore_flops(model, x)
    per_part = {}
    for part, run in parts(model):
        flops = emo_torch.fvcore_flops(run, x)
        with torch.no_grad():
            x = run(x)
        per_part[part] = {"params": sum(p.numel() for p in run.parameters()), "flops": flops}
    assert sum(p["flops"] for p in per_part.values()) == total
    sd = model.state_dict()
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "flops_224": total,
        "parts": per_part,
        "state_dict": [f"{k} {'x'.join(map(str, v.shape))} {str(v.dtype).replace('torch.', '')}" for k, v in sd.items()],
    }


def parity():
    torch.manual_seed(zlib.crc32(b"emo_1m_parity"))
    model = emo_torch.EMO("emo_1m", num_classes=10)
    for m in model.modules():
        if isinstance(m, emo_torch.DropPath):
            m.p = 0.0
    model.load_state_dict(formula_state_dict(model.state_dict()))
    x = torch.randn(2, 3, 128, 128)
    labels = torch.tensor([3, 7])
    tensors = {"input": x}
    tensors["labels"] = labels

    ref = copy.deepcopy(model).double()
    ref.eval()
    with torch.no_grad():
        tensors["eval.logits"] = ref(x.double()).float()

    ref.train()
    logits = ref(x.double())
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    tensors["train.logits"] = logits.detach().float()
    tensors["train.loss"] = loss.detach().reshape(1)
    for k, p in ref.named_parameters():
        tensors["gradstat." + k] = grad_summary(p.grad)
        if k in FULL_GRADS:
            tensors["grad." + k] = p.grad.float()
    for k, b in ref.named_buffers():
        tensors["after." + k] = b.clone() if b.dtype == torch.int64 else b.double()
    missing = [k for k in FULL_GRADS if "grad." + k not in tensors]
    assert not missing, missing
    return tensors


def main():
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.manual_seed(0)  # only the FLOP counts' inputs, which do not change them
    doc = {"source": "tests/parity/make_emo_fixtures.py from emo_torch.py (official EMO structure)",
           "models": {name: structure(name) for name in emo_torch.CONFIGS}}
    with open(os.path.join(OUT_DIR, "reference.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    for name, m in doc["models"].items():
        print(f"{name}: params {m['params']:,}  flops {m['flops_224'] / 1e6:.2f}M")
    path = os.path.join(OUT_DIR, "emo_1m_parity.safetensors")
    write_safetensors(path, parity(), {"model": "emo_1m", "classes": 10, "direction": "cos(0.37 i)"})
    size = os.path.getsize(path)
    print(f"wrote {os.path.relpath(path)}: {size} bytes ({size / 2 ** 20:.2f} MiB, limit {SIZE_LIMIT / 2 ** 20:.0f} MiB)")
    if size > SIZE_LIMIT:
        sys.exit(f"{path} is {size} bytes, over the {SIZE_LIMIT}-byte limit")


if __name__ == "__main__":
    main()
