#!/usr/bin/python3
"""Converts an official EMO checkpoint (a PyTorch `.pth` from the EMO release) to safetensors, the
format Isthmus loads (`Emo.fromStateDict`, `./isthmus predict --weights`).

    /usr/bin/python3 tools/convert_emo_checkpoint.py EMO_1M.pth emo_1m.safetensors

Needs only Debian's python3-torch. The checkpoint may be a bare state dict or one wrapped under
`state_dict`, `model` or `state_dict_ema` (`--key` picks which, the EMA weights being what the
paper reports); a `module.` prefix from DataParallel training is removed. Floating tensors are
stored as float32, integer ones (`num_batches_tracked`) as int64. The names are left as they are:
Isthmus's EMO uses the official names, so loading reports any key that does not match.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_writer import write_safetensors  # noqa: E402

WRAPPERS = ("state_dict_ema", "state_dict", "model")


def state_dict_of(checkpoint, key):
    if key is not None:
        if key not in checkpoint:
            sys.exit(f"no '{key}' in the checkpoint; it has: {', '.join(map(str, checkpoint.keys()))}")
        return checkpoint[key]
    for k in WRAPPERS:
        if isinstance(checkpoint.get(k), dict):
            return checkpoint[k]
    return checkpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="the .pth file")
    parser.add_argument("output", help="the .safetensors file to write")
    parser.add_argument("--key", help=f"the entry holding the weights (default: the first of {', '.join(WRAPPERS)} "
                                      "present, else the whole file)")
    args = parser.parse_args()
    checkpoint = torch.load(args.checkpoint, map_location="cpu")
    if not isinstance(checkpoint, dict):
        sys.exit(f"{args.checkpoint} holds a {type(checkpoint).__name__}, not a state dict")
    tensors = {}
    for name, value in state_dict_of(checkpoint, args.key).items():
        if not torch.is_tensor(value):
            continue
        name = name[len("module."):] if name.startswith("module.") else name
        tensors[name] = value.float() if value.is_floating_point() else value.long()
    write_safetensors(args.output, tensors, {"source": os.path.basename(args.checkpoint), "format": "pt"})
    print(f"wrote {len(tensors)} tensors to {args.output}")


if __name__ == "__main__":
    main()
