"""Writes PyTorch's answers for the autograd crate's ops: the shared part of every
family script in this folder (`<family>.py` → `<family>.safetensors`).

A case feeds float32-rounded inputs to a PyTorch function in float64, then stores the
inputs, the output `y`, a random upstream gradient `gy` and the inputs' gradients
`gx<i>`, all as float32, under `<case>.<tensor>`. Integer arguments (indices, labels,
masks) go in `extra` and are stored as float32 too (exact below 2**24); the Rust side
(`mod.rs`) reads them back and calls the same op. Run every script with
`TORCH_PYTHON=/path/to/python crates/autograd/tests/golden/make.sh`.
"""

import json
import pathlib
import struct

import numpy as np
import torch


class Cases:
    """The cases of one family, written by `save`."""

    def __init__(self, family, seed=0):
        self.family = family
        self.tensors = {}
        self.gen = torch.Generator().manual_seed(seed)

    def rand(self, *shape, lo=-1.0, hi=1.0):
        """Uniform float32-representable values in [lo, hi), as float64."""
        x = torch.rand(shape, generator=self.gen, dtype=torch.float64) * (hi - lo) + lo
        return x.float().double()

    def add(self, name, fn, inputs, extra=None, grad=None):
        """Case `name`: `y = fn(*inputs, **extra)`; gradients for the inputs where `grad`
        (default: all) is true. `y` may be an integer tensor (argmax): then no gradient."""
        assert name not in {k.split(".")[0] for k in self.tensors}, f"case {name} twice"
        assert "." not in name, name
        extra = extra or {}
        grad = grad if grad is not None else [True] * len(inputs)
        xs = [
            x.detach().double().float().double().requires_grad_(g)
            for x, g in zip(inputs, grad)
        ]
        y = fn(*xs, **extra)
        for i, x in enumerate(xs):
            self._put(f"{name}.x{i}", x)
        for k, v in extra.items():
            self._put(f"{name}.{k}", torch.as_tensor(v))
        self._put(f"{name}.y", y)
        if y.is_floating_point() and any(grad):
            gy = self.rand(*y.shape)
            y.backward(gy)
            self._put(f"{name}.gy", gy)
            for i, x in enumerate(xs):
                if x.requires_grad:
                    g = x.grad if x.grad is not None else torch.zeros_like(x)
                    self._put(f"{name}.gx{i}", g)

    def _put(self, key, t):
        self.tensors[key] = t.detach().to(torch.float64).numpy().astype(np.float32)

    def save(self):
        """Writes `<family>.safetensors` beside this file (safetensors by hand: an
        8-byte little-endian header length, the JSON header, the raw data)."""
        header, blobs, offset = {}, [], 0
        for key in sorted(self.tensors):
            data = np.ascontiguousarray(self.tensors[key]).astype("<f4").tobytes()
            header[key] = {
                "dtype": "F32",
                "shape": list(self.tensors[key].shape),
                "data_offsets": [offset, offset + len(data)],
            }
            blobs.append(data)
            offset += len(data)
        header["__metadata__"] = {"family": self.family, "torch": torch.__version__}
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        path = pathlib.Path(__file__).with_name(f"{self.family}.safetensors")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
        cases = {k.split(".")[0] for k in self.tensors}
        print(f"{path.name}: {len(cases)} cases")
