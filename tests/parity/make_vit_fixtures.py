#!/usr/bin/python3
"""Writes the ViT fixture of dev.isthmus.models.VitParityTest.

Run with Debian's interpreter (PyTorch 1.13 from python3-torch):

    /usr/bin/python3 tests/parity/make_vit_fixtures.py

The PyTorch model is the team's reference ViT in ../shared/reference/vit_torch.py (next to this
repository; set VIT_REFERENCE to its folder to use another copy). Its state-dict names differ from
timm's, which Isthmus's Vit has (patch_embed.weight and mlp.0 / mlp.2 there, patch_embed.proj.weight
and mlp.fc1 / mlp.fc2 here): timm_name maps them, and the weights are made under the timm names.
Nothing big is stored: the weights and the inputs are made on both sides by formula.py (every value
from Isthmus's counter-based Generator seeded with the CRC-32 of the entry's timm name, or of the
input's name; the inputs uniform in [-1, 1)). One file is written,
tests/src/test/resources/vit/vit_t_parity.safetensors:

  labels                  (2) int64, the classes of the training step
  logits                  ViT-T as vit_torch.py (224 x 224, patch 16, learned position embedding,
                          CLS pooling) with 10 classes, on formula_input("input", (2, 3, 224, 224)).
                          The model has no dropout or drop path, so evaluation and training compute
                          the same logits.
  loss                    the cross-entropy of the logits on the labels, float64
  grad.<param>            its whole gradient, for the parameters of FULL_GRADS (timm names)
  gradstat.<param>        [norm, dot with cos(0.37 i)] of every parameter's gradient, float64
  relation.qk, relation.vv
                          the relation maps R_QK and R_VV (2, 12, 17, 17) of block 12 of a ViT-T
                          built with last_heads 12 at 64 x 64 (17 tokens: the maps at 224 would be
                          3.7 MB each), on formula_input("relation.input", (2, 3, 64, 64))
  relation.loss           tinymim_loss(teacher's relations, those maps), float64, the teacher a
                          second such ViT-T whose weights are seeded by "teacher." + name
  relation.gradstat.<param>
                          the summary of that loss's gradient for each student parameter that gets
                          one; the others (everything after block 12's qkv) get none

References are computed in float64 from the float32 weights and inputs and stored as float32 (losses
and summaries as float64).
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from formula import formula_input, formula_state_dict, grad_summary  # noqa: E402
from make_fixtures import write_safetensors  # noqa: E402  (the same writer as the op fixtures)

REFERENCE = os.environ.get("VIT_REFERENCE", os.path.join(HERE, "..", "..", "..", "shared", "reference"))
sys.path.insert(0, REFERENCE)
import vit_torch  # noqa: E402

OUT_DIR = os.path.join(HERE, "..", "src", "test", "resources", "vit")
SIZE_LIMIT = 2 ** 20  # tracked files stay small: weights and inputs are made by formula, not stored
CLASSES = 10
RELATION_IMAGE = 64
RELATION_BLOCK = 12
RELATION_HEADS = 12

# The parameters whose whole gradient is stored: each kind, first and last blocks, under 320 KB in all.
FULL_GRADS = [
    "cls_token", "pos_embed", "patch_embed.proj.bias", "blocks.0.norm1.weight", "blocks.0.attn.qkv.bias",
    "blocks.5.attn.proj.weight", "blocks.5.mlp.fc1.bias", "blocks.11.norm2.bias", "blocks.11.mlp.fc2.bias",
    "norm.weight", "norm.bias", "head.weight", "head.bias",
]


def timm_name(key):
    """vit_torch's state-dict name to timm's, which Isthmus's Vit has."""
    key = key.replace("patch_embed.", "patch_embed.proj.")
    return key.replace(".mlp.0.", ".mlp.fc1.").replace(".mlp.2.", ".mlp.fc2.")


def with_formula_weights(model, seed_prefix=""):
    """The model in float64 with the formula's weights, made under the timm names (and rounded to float32 first)."""
    sd = model.state_dict()
    values = formula_state_dict({timm_name(k): v for k, v in sd.items()}, seed_prefix)
    model.load_state_dict({k: values[timm_name(k)] for k in sd})
    return model.double()


def classification():
    model = with_formula_weights(vit_torch.ViT("vit_t", num_classes=CLASSES))
    model.eval()
    x = formula_input("input", (2, 3, 224, 224)).double()
    labels = torch.tensor([3, 7])
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    tensors = {"labels": labels, "logits": logits.detach().float(), "loss": loss.detach().reshape(1)}
    for k, p in model.named_parameters():
        name = timm_name(k)
        tensors["gradstat." + name] = grad_summary(p.grad)
        if name in FULL_GRADS:
            tensors["grad." + name] = p.grad.float()
    missing = [k for k in FULL_GRADS if "grad." + k not in tensors]
    assert not missing, missing
    return tensors


def relation():
    def build(seed_prefix):
        vit = vit_torch.ViT("vit_t", img=RELATION_IMAGE, num_classes=CLASSES, last_heads=RELATION_HEADS)
        return with_formula_weights(vit, seed_prefix)

    student, teacher = build(""), build("teacher.")
    x = formula_input("relation.input", (2, 3, RELATION_IMAGE, RELATION_IMAGE)).double()
    with torch.no_grad():
        teacher_rel = teacher.relations(x, RELATION_BLOCK)
    student_rel = student.relations(x, RELATION_BLOCK)
    loss = vit_torch.tinymim_loss(teacher_rel, student_rel)
    loss.backward()
    tensors = {"relation.qk": student_rel[0].detach().float(), "relation.vv": student_rel[1].detach().float(),
               "relation.loss": loss.detach().reshape(1)}
    for k, p in student.named_parameters():
        if p.grad is not None:
            tensors["relation.gradstat." + timm_name(k)] = grad_summary(p.grad)
    return tensors


def main():
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "vit_t_parity.safetensors")
    meta = {"model": "vit_t", "classes": CLASSES, "relation_image": RELATION_IMAGE, "relation_block": RELATION_BLOCK,
            "relation_heads": RELATION_HEADS, "direction": "cos(0.37 i)"}
    write_safetensors(path, {**classification(), **relation()}, meta)
    size = os.path.getsize(path)
    print(f"wrote {os.path.relpath(path)}: {size} bytes ({size / 2 ** 20:.2f} MiB, limit {SIZE_LIMIT / 2 ** 20:.0f} MiB)")
    if size > SIZE_LIMIT:
        sys.exit(f"{path} is {size} bytes, over the {SIZE_LIMIT}-byte limit")


if __name__ == "__main__":
    main()
