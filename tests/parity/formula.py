"""Weights and inputs made by formula, and gradient summaries, shared by the model fixture scripts.

A model's parity fixture does not store its weights (megabytes) but makes them on both sides: every
value of a state-dict entry comes from Isthmus's counter-based Generator (dev.isthmus.tensor.Generator,
reimplemented here) seeded with the CRC-32 of the entry's name, so a name that differs between the
two sides gives other weights and the comparison fails. dev.isthmus.models.ParityFixtures is the Java
side of every function here.
"""
import math
import zlib

import numpy as np
import torch

MASK = (1 << 64) - 1


def _mix(z):
    """SplitMix64's finaliser on uint64 arrays (wrapping), as Generator.mix."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def generator_doubles(seed, n):
    """The first n values of Generator(seed).nextDouble(): uniform in [0, 1) with 53 bits, float64."""
    base = np.uint64((seed * 0x9E3779B97F4A7C15) & MASK)
    with np.errstate(over="ignore"):
        bits = _mix(base + _mix(np.arange(n, dtype=np.uint64)))
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def _seeded(name, n):
    return generator_doubles(zlib.crc32(name.encode("utf-8")), n)


def formula_value(key, shape, u):
    """A state-dict entry's values from uniform u in [0, 1), by its name and shape (ParityFixtures.formulaValue)."""
    if len(shape) >= 2:
        return (2 * u - 1) / math.sqrt(math.prod(shape[1:]))
    if key.endswith("running_var"):
        return 0.5 + u
    if key.endswith(".weight"):
        return 1 + 0.1 * (2 * u - 1)
    return 0.1 * (2 * u - 1)  # biases and running means


def formula_state_dict(state, seed_prefix=""):
    """Values for every entry of `state` (name -> tensor, only names, shapes and dtypes are read), float32
    (int64 entries zero); entry `key` is seeded by seed_prefix + key, so a prefix gives other weights."""
    out = {}
    for key, t in state.items():
        if t.dtype == torch.int64:
            out[key] = torch.zeros_like(t)
            continue
        shape = tuple(t.shape)
        values = formula_value(key, shape, _seeded(seed_prefix + key, t.numel()))
        out[key] = torch.from_numpy(values).float().reshape(shape)
    return out


def formula_input(name, shape):
    """An input uniform in [-1, 1), float32, seeded by `name` (ParityFixtures.formulaInput)."""
    return torch.from_numpy(2 * _seeded(name, math.prod(shape)) - 1).float().reshape(shape)


def direction(n):
    return torch.cos(0.37 * torch.arange(n, dtype=torch.float64))


def grad_summary(grad):
    """[norm, dot with cos(0.37 i)] of a flattened gradient, float64: what a fixture keeps of the gradients it does not store."""
    g = grad.detach().double().flatten()
    return torch.stack([g.norm(), g @ direction(g.numel())])
