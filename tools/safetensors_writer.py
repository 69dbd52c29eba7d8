"""A minimal safetensors writer for torch tensors (F32, F64, I64), with no dependency but torch.

Debian ships no `safetensors` package; this writes the format as its specification says: an 8-byte
little-endian header length, a JSON header (names, dtypes, shapes, byte offsets, optional
`__metadata__` of strings) padded with spaces to a multiple of 8, then the tensors' bytes in order.
Used by tools/convert_emo_checkpoint.py and by the fixture scripts in tests/parity/.
"""
import json
import struct

import torch

_CODES = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.int64: ("I64", "<i8")}


def write_safetensors(path, tensors, metadata):
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype not in _CODES:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        code, fmt = _CODES[t.dtype]
        data = t.numpy().astype(fmt).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
