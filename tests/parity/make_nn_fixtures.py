#!/usr/bin/python3
"""Writes the PyTorch fixtures of the nn and optim tests (dev.isthmus.nn.*, dev.isthmus.optim.*).

Run with Debian's interpreter (PyTorch 1.13 from python3-torch):

    /usr/bin/python3 tests/parity/make_nn_fixtures.py

It writes tests/src/test/resources/nn/<name>.safetensors with the safetensors writer of
make_fixtures.py (no safetensors package needed). Every fixture seeds torch from a CRC of its name,
so changing one leaves the others byte-identical. References are computed in float64 from float32
values (the exact answer), and stored as float64 unless said otherwise.

  optim_<case>     optimizer updates. param.<i> (initial values), grad.<s>.<i> (the gradient of
                   parameter i at step s; absent: the parameter has no gradient at that step),
                   after.<s>.<i> (the parameter after step s), state.<i>.<name> (torch's optimizer
                   state after the last step, flattened: momentum_buffer, exp_avg, exp_avg_sq,
                   step). Metadata: optimizer, steps, the hyperparameters, group (per parameter:
                   its group index) and, per group g, lr.g / weight_decay.g. The state is numbered
                   as in torch's state_dict: parameters in group order.
  schedules        learning rates over 40 steps, two groups (base lr 0.1 and 0.02): lr.<name>.<g>.
                   cosine_lambda: LambdaLR with CosineLr's formula; cosine_sequential:
                   SequentialLR([LinearLR, CosineAnnealingLR]); step: StepLR; warmup_constant:
                   LinearLR alone (a warm-up, then the base rate).
  clip_grad_norm   clip_grad_norm_ on three gradients (<case>.grad.<i>, <case>.norm,
                   <case>.clipped.<i>) for cases l2 (max 1), l2_noop (max 100), inf (max 0.5).
  module_net       a small CNN + attention model (see Net): its state dict sd.<key> (float32, as torch
                   initialised it; num_batches_tracked int64), the input, the train-mode output,
                   a random output gradient gout, grad.<param> (of sum(out * gout)), after.<buffer>
                   (running statistics after that forward) and out_eval (eval mode, afterwards).
  mha_cross        MultiheadAttention(6, 3), sequence-first, cross-attention with a boolean
                   attn_mask and key_padding_mask (stored as int64), its state dict, inputs,
                   output, gradients of the parameters (grad.<param>) and of the inputs (grad.in.<i>).
  mha_self_float   MultiheadAttention(8, 2, batch_first=True), self-attention with a float
                   (N * heads, L, S) attn_mask, no biases.
  keys_vit         only state-dict names, shapes and dtypes of a small ViT-like model using every
                   layer (metadata "keys", "shapes", "dtypes"); the tensor "dummy" is a placeholder.
"""
import math
import os
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_fixtures import write_safetensors  # noqa: E402  (the same writer as the op fixtures)

OUT_DIR = os.path.join(HERE, "..", "src", "test", "resources", "nn")
SIZE_LIMIT = 200 * 1024

FIXTURES = []


def fixture(fn):
    FIXTURES.append(fn)
    return fn


def seed(name):
    torch.manual_seed(zlib.crc32(name.encode()))


def f64(t):
    return t.detach().to(torch.float64).contiguous().clone()  # a copy: never the live tensor


def fmt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(fmt(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


# ---- (a) optimizers -----------------------------------------------------------------------------

SHAPES = [(3, 4), (4,), (2, 1, 3)]

OPTIM_CASES = {
    # name: (torch class, hyperparameters, group of each parameter, per-group overrides, steps)
    "sgd": ("SGD", dict(lr=0.1, weight_decay=0.01), None, None, 4),
    "sgd_momentum": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1), None, None, 4),
    "sgd_nesterov": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), None, None, 4),
    "adam": ("Adam", dict(lr=0.01), None, None, 4),
    "adam_wd": ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), None, None, 4),
    "adamw": ("AdamW", dict(lr=0.01, weight_decay=0.1), None, None, 4),
    "adamw_nowd": ("AdamW", dict(lr=0.01, weight_decay=0.0), None, None, 4),
    "adamw_groups": ("AdamW", dict(lr=0.01, weight_decay=0.1), [0, 1, 0], {1: dict(lr=0.005, weight_decay=0.0)}, 4),
}

# In "adam", parameter 1 has no gradient at step 1: torch skips it, so its step count lags.
MISSING_GRAD = {"adam": {(1, 1)}}


def optim_fixture(name):
    cls_name, hyper, groups, overrides, steps = OPTIM_CASES[name]
    seed("optim_" + name)
    init = [torch.randn(*s, dtype=torch.float32) for s in SHAPES]
    grads = [[torch.randn(*s, dtype=torch.float32) for s in SHAPES] for _ in range(steps)]
    params = [nn.Parameter(p.double().clone()) for p in init]
    if groups is None:
        groups = [0] * len(params)
    group_list = []
    for g in sorted(set(groups)):
        d = {"params": [p for p, gi in zip(params, groups) if gi == g]}
        d.update((overrides or {}).get(g, {}))
        group_list.append(d)
    opt = getattr(torch.optim, cls_name)(group_list, **hyper)
    tensors = {f"param.{i}": f64(p) for i, p in enumerate(init)}
    missing = MISSING_GRAD.get(name, set())
    for s in range(steps):
        for i, p in enumerate(params):
            if (s, i) in missing:
                p.grad = None
            else:
                p.grad = grads[s][i].double().clone()
                tensors[f"grad.{s}.{i}"] = f64(grads[s][i])
        opt.step()
        for i, p in enumerate(params):
            tensors[f"after.{s}.{i}"] = f64(p)
    # The state is numbered as torch's state_dict numbers parameters: across the groups, in order.
    ordered = [p for g in opt.param_groups for p in g["params"]]
    for j, p in enumerate(ordered):
        for k, v in opt.state[p].items():
            if v is None:  # SGD without momentum keeps momentum_buffer = None
                continue
            if k == "step":
                tensors[f"state.{j}.step"] = torch.tensor(int(v), dtype=torch.int64)
            else:
                tensors[f"state.{j}.{k}"] = f64(v)
    meta = {"optimizer": cls_name, "steps": steps, "group": fmt(groups)}
    for k, v in hyper.items():
        meta[k] = fmt(v)
    for g, pg in enumerate(opt.param_groups):
        meta[f"lr.{g}"] = fmt(float(pg["lr"]))
        meta[f"weight_decay.{g}"] = fmt(float(pg["weight_decay"]))
    return tensors, meta


for _name in OPTIM_CASES:
    fixture(lambda n=_name: ("optim_" + n, *optim_fixture(n)))


# ---- (b) schedules ------------------------------------------------------------------------------

@fixture
def schedules():
    steps, warmup, total, min_lr, start = 40, 5, 30, 1e-3, 0.1
    step_size, gamma = 7, 0.5
    bases = [0.1, 0.02]

    def lrs(make):
        ps = [nn.Parameter(torch.zeros(1)) for _ in bases]
        opt = torch.optim.SGD([{"params": [p], "lr": b} for p, b in zip(ps, bases)], lr=bases[0])
        sched = make(opt)
        out = [[] for _ in bases]
        for _ in range(steps):
            for g, pg in enumerate(opt.param_groups):
                out[g].append(pg["lr"])
            opt.step()
            sched.step()
        return [torch.tensor(o, dtype=torch.float64) for o in out]

    def cosine_lambda(base):
        def factor(t):
            if t < warmup:
                return start + (1 - start) * t / warmup
            if t >= total:
                return min_lr / base
            return (min_lr + (base - min_lr) * (1 + math.cos(math.pi * (t - warmup) / (total - warmup))) / 2) / base
        return factor

    sched = torch.optim.lr_scheduler
    cases = {
        "cosine_lambda": lambda o: sched.LambdaLR(o, [cosine_lambda(b) for b in bases]),
        # Within [0, total): past total, CosineAnnealingLR rises again where CosineLr stays at min_lr.
        "cosine_sequential": lambda o: sched.SequentialLR(o, [
            sched.LinearLR(o, start_factor=start, total_iters=warmup),
            sched.CosineAnnealingLR(o, T_max=total - warmup, eta_min=min_lr)], milestones=[warmup]),
        "step": lambda o: sched.StepLR(o, step_size=step_size, gamma=gamma),
        "warmup_constant": lambda o: sched.LinearLR(o, start_factor=start, total_iters=warmup),
    }
    tensors = {}
    for name, make in cases.items():
        for g, t in enumerate(lrs(make)):
            tensors[f"lr.{name}.{g}"] = t
    meta = dict(steps=steps, warmup=warmup, total=total, min_lr=fmt(min_lr), start_factor=fmt(start),
                step_size=step_size, gamma=fmt(gamma), base_lr=fmt(bases))
    return "schedules", tensors, meta


# ---- (e) gradient clipping ----------------------------------------------------------------------

@fixture
def clip_grad_norm():
    seed("clip_grad_norm")
    tensors = {}
    for case, max_norm, norm_type in [("l2", 1.0, 2.0), ("l2_noop", 100.0, 2.0), ("inf", 0.5, math.inf)]:
        grads = [torch.randn(*s, dtype=torch.float32) for s in SHAPES]
        ps = [nn.Parameter(torch.zeros(*s, dtype=torch.float64)) for s in SHAPES]
        for p, g in zip(ps, grads):
            p.grad = g.double().clone()
        norm = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
        tensors[f"{case}.norm"] = f64(norm)
        for i, (p, g) in enumerate(zip(ps, grads)):
            tensors[f"{case}.grad.{i}"] = f64(g)
            tensors[f"{case}.clipped.{i}"] = f64(p.grad)
    meta = {"l2.max_norm": "1.0", "l2_noop.max_norm": "100.0", "inf.max_norm": "0.5"}
    return "clip_grad_norm", tensors, meta


# ---- (c) module forward and backward ------------------------------------------------------------

class Block(nn.Module):
    def __init__(self, c, momentum):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=2, dilation=2, groups=2)
        self.norm = nn.BatchNorm2d(c, momentum=momentum)
        self.act = nn.SiLU()

    def forward(self, x):
        return x + self.act(self.norm(self.conv(x)))


class Net(nn.Module):
    """stem (conv stride 2, no bias; batch norm; relu), two residual blocks (dilated grouped conv,
    batch norm, the second with momentum=None), group norm, self-attention over the 16 positions,
    layer norm, mean over positions, linear head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.stage1 = nn.Sequential(Block(8, 0.1), Block(8, None))
        self.gn = nn.GroupNorm(2, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.ln = nn.LayerNorm(8)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.gn(self.stage1(self.stem(x)))
        t = x.flatten(2).transpose(1, 2)
        t = t + self.attn(t, t, t, need_weights=False)[0]
        return self.head(self.ln(t).mean(1))


def randomize_affine(model):
    """Norm layers start at weight 1, bias 0: move them off those values so the test sees them."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            if isinstance(m, nn.MultiheadAttention):
                m.in_proj_bias.uniform_(-0.2, 0.2)
                m.out_proj.bias.uniform_(-0.2, 0.2)


@fixture
def module_net():
    seed("module_net")
    model = Net()
    randomize_affine(model)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 8, 8, dtype=torch.float32)
    ref = Net().double()
    ref.load_state_dict({k: (v.double() if v.is_floating_point() else v) for k, v in sd.items()})
    ref.train()
    out = ref(x.double())
    gout = torch.randn(out.shape, dtype=torch.float32)
    names = [n for n, _ in ref.named_parameters()]
    grads = torch.autograd.grad((out * gout.double()).sum(), [p for _, p in ref.named_parameters()])
    tensors = {f"sd.{k}": v for k, v in sd.items()}
    tensors.update({"input": x, "out": f64(out), "gout": gout})
    tensors.update({f"grad.{n}": f64(g) for n, g in zip(names, grads)})
    for n, b in ref.named_buffers():
        tensors[f"after.{n}"] = f64(b) if b.is_floating_point() else b.clone()
    ref.eval()
    with torch.no_grad():
        tensors["out_eval"] = f64(ref(x.double()))
    return "module_net", tensors, {"keys": ",".join(sd.keys())}


def mha_fixture(name, mha, inputs, n_diff, call):
    """inputs: float32 tensors (the first n_diff differentiated), then masks; call(module, *inputs) -> output."""
    sd = {k: v.detach().clone() for k, v in mha.state_dict().items()}
    ref = type(mha)(mha.embed_dim, mha.num_heads, bias=mha.in_proj_bias is not None,
                    batch_first=mha.batch_first).double()
    ref.load_state_dict({k: v.double() for k, v in sd.items()})
    xs = [x.double().requires_grad_(i < n_diff) for i, x in enumerate(inputs)]
    out = call(ref, *xs)
    gout = torch.randn(out.shape, dtype=torch.float32)
    params = list(ref.named_parameters())
    diff = [p for _, p in params] + [x for x in xs if x.requires_grad]
    grads = torch.autograd.grad((out * gout.double()).sum(), diff)
    tensors = {f"sd.{k}": v for k, v in sd.items()}
    for i, x in enumerate(inputs):
        tensors[f"in.{i}"] = x if x.dtype != torch.bool else x.to(torch.int64)
    tensors.update({"out": f64(out), "gout": gout})
    for (n, _), g in zip(params, grads):
        tensors[f"grad.{n}"] = f64(g)
    for i, g in enumerate(grads[len(params):]):
        tensors[f"grad.in.{i}"] = f64(g)
    return name, tensors, {"keys": ",".join(sd.keys())}


@fixture
def mha_cross():
    seed("mha_cross")
    mha = nn.MultiheadAttention(6, 3)
    randomize_affine(mha)
    L, S, N, E = 3, 4, 2, 6
    q, k, v = torch.randn(L, N, E), torch.randn(S, N, E), torch.randn(S, N, E)
    attn_mask = torch.tensor([[False, False, True, False],
                              [False, True, False, False],
                              [True, False, False, False]])
    key_padding = torch.tensor([[False, False, False, True],
                                [False, False, False, False]])
    return mha_fixture("mha_cross", mha, [q, k, v, attn_mask, key_padding], 3,
                       lambda m, q, k, v, am, kp: m(q, k, v, key_padding_mask=kp.bool(), attn_mask=am.bool(),
                                                    need_weights=False)[0])


@fixture
def mha_self_float():
    seed("mha_self_float")
    mha = nn.MultiheadAttention(8, 2, bias=False, batch_first=True)
    N, L, E = 2, 5, 8
    x = torch.randn(N, L, E)
    mask = torch.randn(N * 2, L, L) * 0.5
    return mha_fixture("mha_self_float", mha, [x, mask], 1,
                       lambda m, x, am: m(x, x, x, attn_mask=am, need_weights=False)[0])


# ---- (d) state-dict names -----------------------------------------------------------------------

class VitBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.drop_path = nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(0.1), nn.Linear(2 * dim, dim))


class TinyVit(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Sequential(nn.Conv2d(3, 16, 4, stride=4), nn.BatchNorm2d(16, track_running_stats=False))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 16))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, 16))
        self.tok = nn.Embedding(10, 16)
        self.blocks = nn.ModuleList([VitBlock(16, 2) for _ in range(2)])
        self.norm = nn.LayerNorm(16)
        self.pool_norm = nn.GroupNorm(4, 16, affine=False)
        self.stats = nn.BatchNorm2d(16, affine=False)
        self.head = nn.Sequential(nn.Conv2d(16, 16, 1, groups=4, bias=False), nn.Flatten(), nn.Linear(16, 10, bias=False))


@fixture
def keys_vit():
    sd = TinyVit().state_dict()
    meta = {"keys": ",".join(sd.keys()),
            "shapes": ";".join("x".join(str(s) for s in v.shape) for v in sd.values()),
            "dtypes": ",".join(str(v.dtype).replace("torch.", "") for v in sd.values())}
    return "keys_vit", {"dummy": torch.zeros(1)}, meta


# ---- main ---------------------------------------------------------------------------------------

def main():
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    for stale in os.listdir(OUT_DIR):
        if stale.endswith(".safetensors"):
            os.remove(os.path.join(OUT_DIR, stale))
    total = 0
    for fn in FIXTURES:
        name, tensors, meta = fn()
        path = os.path.join(OUT_DIR, name + ".safetensors")
        write_safetensors(path, tensors, meta)
        total += os.path.getsize(path)
    print(f"wrote {len(FIXTURES)} fixtures to {os.path.relpath(OUT_DIR)}: {total} bytes "
          f"({total / 1024:.1f} KiB, limit {SIZE_LIMIT // 1024} KiB)")
    if total > SIZE_LIMIT:
        sys.exit(f"fixtures total {total} bytes, over the {SIZE_LIMIT}-byte limit")


if __name__ == "__main__":
    main()
