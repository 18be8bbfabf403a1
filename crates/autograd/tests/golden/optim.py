"""Golden values of the optimizers and learning-rate schedules, from PyTorch.

Run from anywhere with a Python that has torch 2.x and numpy:

    $TORCH_PYTHON crates/autograd/tests/golden/optim.py

It writes optim.safetensors next to itself (float32, the format written by hand so no
package beyond torch and numpy is needed), read by crates/autograd/tests/golden_optim.rs:

- `init.w` [2, 3], `init.b` [3]: the starting parameters;
- `grad.w` [5, 2, 3], `grad.b` [5, 3]: the gradient fed at each of 5 steps;
- `<case>.w`, `<case>.b`: the parameters after each step, for each case of CASES;
- `lr.<schedule>` [30, groups]: every group's learning rate at steps 0..30, for each
  schedule of SCHEDULES (the value after construction, then after each step()).

The header's `__metadata__` holds each case's and schedule's PyTorch call.
"""

import json
import os
import struct

import numpy as np
import torch

STEPS = 5
LR_STEPS = 30

# name -> (constructor, its param groups as (group-0 options, group-1 options),
# the optimizer's keyword arguments). Group 0 holds `w`, group 1 holds `b`.
CASES = {
    "sgd": (
        torch.optim.SGD,
        ({}, {"lr": 0.05, "weight_decay": 0.0}),
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
    ),
    "sgd_nesterov": (
        torch.optim.SGD,
        ({}, {"lr": 0.02, "weight_decay": 0.1}),
        {"lr": 0.1, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05},
    ),
    "sgd_plain": (
        torch.optim.SGD,
        ({"weight_decay": 0.1}, {}),
        {"lr": 0.2},
    ),
    "adam": (
        torch.optim.Adam,
        ({}, {"lr": 0.01, "weight_decay": 0.0, "betas": (0.8, 0.99)}),
        {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.1},
    ),
    "adamw": (
        torch.optim.AdamW,
        ({}, {"weight_decay": 0.0}),
        {"lr": 0.05},
    ),
    "adamw_strong": (
        torch.optim.AdamW,
        ({}, {"lr": 0.2, "betas": (0.5, 0.9)}),
        {"lr": 0.1, "betas": (0.85, 0.95), "weight_decay": 0.5},
    ),
}

S = torch.optim.lr_scheduler

# name -> (initial learning rate of each group, the scheduler built on an optimizer).
SCHEDULES = {
    "step": ([0.1, 0.02], lambda o: S.StepLR(o, step_size=7, gamma=0.5)),
    "cosine": ([0.1, 0.02], lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.0)),
    "cosine_floor": ([0.1], lambda o: S.CosineAnnealingLR(o, T_max=12, eta_min=0.002)),
    "warmup": ([0.1, 0.02], lambda o: S.LinearLR(o, start_factor=0.1, total_iters=8)),
    "warmup_cosine": (
        [0.1, 0.02],
        lambda o: S.SequentialLR(
            o,
            [
                S.LinearLR(o, start_factor=0.01, total_iters=5),
                S.CosineAnnealingLR(o, T_max=20, eta_min=0.0),
            ],
            milestones=[5],
        ),
    ),
}
SCHEDULE_CALLS = {
    "step": "StepLR(step_size=7, gamma=0.5)",
    "cosine": "CosineAnnealingLR(T_max=10, eta_min=0.0)",
    "cosine_floor": "CosineAnnealingLR(T_max=12, eta_min=0.002)",
    "warmup": "LinearLR(start_factor=0.1, total_iters=8)",
    "warmup_cosine": "SequentialLR([LinearLR(start_factor=0.01, total_iters=5), "
    "CosineAnnealingLR(T_max=20, eta_min=0.0)], milestones=[5])",
}


def trajectory(case, init, grads):
    """The parameters after each step of `case` fed the gradients `grads`."""
    make, (opts_w, opts_b), kwargs = CASES[case]
    w = torch.nn.Parameter(init["w"].clone())
    b = torch.nn.Parameter(init["b"].clone())
    opt = make([{"params": [w], **opts_w}, {"params": [b], **opts_b}], **kwargs)
    out = {"w": [], "b": []}
    for step in range(STEPS):
        w.grad = grads["w"][step].clone()
        b.grad = grads["b"][step].clone()
        opt.step()
        out["w"].append(w.detach().clone())
        out["b"].append(b.detach().clone())
    return {k: torch.stack(v) for k, v in out.items()}


def lr_sequence(name):
    """Every group's learning rate at steps 0..LR_STEPS of schedule `name`."""
    lrs, make = SCHEDULES[name]
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    opt = torch.optim.SGD(groups, lr=lrs[0])
    sched = make(opt)
    out = [[g["lr"] for g in opt.param_groups]]
    for _ in range(LR_STEPS - 1):
        opt.step()
        sched.step()
        out.append([g["lr"] for g in opt.param_groups])
    return torch.tensor(out, dtype=torch.float64)


def describe(case):
    """The PyTorch call of `case`, as a string."""
    make, (opts_w, opts_b), kwargs = CASES[case]

    def group(name, opts):
        items = [f"'params': [{name}]"] + [f"'{k}': {v!r}" for k, v in opts.items()]
        return "{" + ", ".join(items) + "}"

    args = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    return f"{make.__name__}([{group('w', opts_w)}, {group('b', opts_b)}]{args})"


def write_safetensors(path, tensors, metadata):
    """Writes float32 tensors and string metadata in the safetensors format."""
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name].numpy(), dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main():
    gen = torch.Generator().manual_seed(0)
    init = {"w": torch.randn(2, 3, generator=gen), "b": torch.randn(3, generator=gen)}
    grads = {
        "w": torch.randn(STEPS, 2, 3, generator=gen),
        "b": torch.randn(STEPS, 3, generator=gen),
    }
    tensors = {f"init.{k}": v for k, v in init.items()}
    tensors.update({f"grad.{k}": v for k, v in grads.items()})
    metadata = {"torch": torch.__version__}
    for case in CASES:
        for k, v in trajectory(case, init, grads).items():
            tensors[f"{case}.{k}"] = v
        metadata[case] = describe(case)
    for name in SCHEDULES:
        tensors[f"lr.{name}"] = lr_sequence(name).float()
        metadata[f"lr.{name}"] = f"{SCHEDULE_CALLS[name]} on groups with lr {SCHEDULES[name][0]}"
    here = os.path.dirname(os.path.abspath(__file__))
    write_safetensors(os.path.join(here, "optim.safetensors"), tensors, metadata)


if __name__ == "__main__":
    main()
