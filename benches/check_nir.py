"""An independent check of `sae export --format nir`: reads the file with the `nir`
package (neuroir.org), simulates the graph with a small simulator written from the NIR
specification (numpy only, nothing of `sae`), and compares every LIF node's spike counts,
and the LI node's maximum over time, with the activity `sae export --activity` wrote.

    python benches/check_nir.py GRAPH.nir ACTIVITY.safetensors --mnist DIR

The encoder's input frames are rebuilt here from the MNIST test images (the first N, as
`sae` took them) and the input scale the activity file shows; the decoder's input is the
spike trains in the activity file (what `decoder_fc` fired), as NIR has no un-flatten.

Simulation: one explicit Euler step of `dt` (the graph's metadata) per time step, for
every neuron node `tau·dv/dt = (v_leak - v) + r·I`; an LIF spikes where `v > v_threshold`
and is then set to `v_reset`. Prints a table and one JSON line; exits 1 if a count
differs, or the potential differs beyond rounding, in an image where no potential came
within --tie of a threshold: there, two float implementations summing in different orders
can put a spike one step apart, and everything downstream follows.
"""

import argparse
import gzip
import json
import os
import struct
import sys

import nir
import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8}


def read_safetensors(path):
    """The tensors and metadata of a safetensors file (the format is a length, JSON, bytes)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, h in header.items():
        start, end = h["data_offsets"]
        a = np.frombuffer(data[start:end], dtype=DTYPES[h["dtype"]])
        tensors[name] = a.reshape(h["shape"])
    return tensors, meta


def read_idx_images(mnist_dir, count):
    """The first `count` MNIST test images as floats in [0, 1], [N, 1, 28, 28]."""
    for name in ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"):
        for suffix, opener in (("", open), (".gz", gzip.open)):
            path = os.path.join(mnist_dir, name + suffix)
            if os.path.exists(path):
                with opener(path, "rb") as f:
                    magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
                    assert magic == 2051, f"{path}: not an IDX image file"
                    pixels = np.frombuffer(f.read(count * rows * cols), dtype=np.uint8)
                return pixels.reshape(count, 1, rows, cols).astype(np.float32) / np.float32(255)
    sys.exit(f"check_nir.py: no MNIST test images in {mnist_dir}")


def pair(v):
    v = np.atleast_1d(np.asarray(v)).astype(int)
    return (int(v[0]), int(v[-1]))


def conv2d(x, node):
    """NIR Conv2d on frames x [N, C, H, W] (cross-correlation, as PyTorch's)."""
    assert int(node.groups) == 1, "groups > 1 not simulated"
    w = node.weight.astype(x.dtype)
    (sh, sw), (dh, dw) = pair(node.stride), pair(node.dilation)
    ph, pw = pair(node.padding)
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    k_h, k_w = w.shape[2], w.shape[3]
    span_h, span_w = dh * (k_h - 1) + 1, dw * (k_w - 1) + 1
    win = np.lib.stride_tricks.sliding_window_view(x, (span_h, span_w), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]
    out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))  # [N, Ho, Wo, C_out]
    out = out.transpose(0, 3, 1, 2)
    return out + node.bias.astype(x.dtype)[None, :, None, None]


def flatten(x, node):
    """NIR Flatten: merges frame dimensions start_dim..end_dim (frames have no batch axis)."""
    frame = list(x.shape[1:])
    start, end = int(node.start_dim), int(node.end_dim)
    start, end = start % len(frame), end % len(frame)
    shape = frame[:start] + [int(np.prod(frame[start : end + 1]))] + frame[end + 1 :]
    return x.reshape([x.shape[0]] + shape)


def order(graph):
    """The nodes in an order where every node comes after its sources (the graph is a DAG)."""
    sources = {k: [a for a, b in graph.edges if b == k] for k in graph.nodes}
    done, out = set(), []
    while len(out) < len(graph.nodes):
        ready = [k for k in graph.nodes if k not in done and all(s in done for s in sources[k])]
        if not ready:
            sys.exit("check_nir.py: the graph has a cycle; this simulator runs feed-forward graphs")
        for k in sorted(ready):
            done.add(k)
            out.append(k)
    return out, sources


def simulate(graph, frames, steps, dt, dtype):
    """Runs `graph` for `steps` steps; `frames(t)` is the Input node's [N, …] frame at t.
    Returns the spike counts of every LIF node, the maximum over time of every LI node, and
    per image the smallest |v - v_threshold| any LIF neuron came to (a rounding tie there
    can flip a spike between two float implementations)."""
    nodes, sources = order(graph)
    state, counts, maxima, margin = {}, {}, {}, None
    for t in range(steps):
        value = {}
        for k in nodes:
            node = graph.nodes[k]
            kind = type(node).__name__
            if kind == "Input":
                value[k] = frames(t).astype(dtype)
                continue
            x = sum(value[s] for s in sources[k])
            if kind == "Output":
                value[k] = x
            elif kind == "Conv2d":
                value[k] = conv2d(x, node)
            elif kind == "Flatten":
                value[k] = flatten(x, node)
            elif kind == "Linear":
                value[k] = x @ node.weight.astype(dtype).T
            elif kind == "Affine":
                value[k] = x @ node.weight.astype(dtype).T + node.bias.astype(dtype)
            elif kind in ("LIF", "LI"):
                tau, r, v_leak = (np.asarray(p, dtype) for p in (node.tau, node.r, node.v_leak))
                v = state.get(k, np.zeros_like(x))
                v = v + (dt / tau) * (v_leak - v + r * x)
                if kind == "LIF":
                    gap = np.abs(v - np.asarray(node.v_threshold, dtype)).reshape(len(v), -1).min(1)
                    margin = gap if margin is None else np.minimum(margin, gap)
                    z = v > np.asarray(node.v_threshold, dtype)
                    v = np.where(z, np.asarray(node.v_reset, dtype), v)
                    counts[k] = counts.get(k, 0) + z.astype(np.int64)
                    value[k] = z.astype(dtype)
                else:
                    maxima[k] = np.maximum(maxima[k], v) if k in maxima else v.copy()
                    value[k] = v
                state[k] = v
            else:
                sys.exit(f"check_nir.py: node {k}: type {kind} is not simulated here")
    return counts, maxima, margin


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("graph")
    p.add_argument("activity")
    p.add_argument("--mnist", default=os.environ.get("MNIST_DIR", "data/mnist"))
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--tie", type=float, default=1e-6,
                   help="an image where a potential came this close to a threshold (about 8 "
                   "float32 ulps at 1) is a tie")
    a = p.parse_args()
    dtype = np.dtype(a.dtype).type

    graph = nir.read(a.graph)
    dt = float(graph.metadata["dt"])
    steps = int(graph.metadata["steps"])
    ours, meta = read_safetensors(a.activity)
    given = ours.pop("input")
    if given.ndim == 4:  # the encoder: the same analog frame every step
        n = given.shape[0]
        x = read_idx_images(a.mnist, n)
        scale = float(given.max() / x.max())
        if not np.allclose(given, x * np.float32(scale), rtol=1e-6, atol=1e-7):
            sys.exit("check_nir.py: the activity's input is not the MNIST test images times a scale")
        frame = (x * np.float32(scale)).astype(dtype)
        frames = lambda t: frame  # noqa: E731
    else:  # the decoder: the given spike frames [T, N, …]
        n, scale = given.shape[1], None
        frames = lambda t: given[t]  # noqa: E731
    counts, maxima, margin = simulate(graph, frames, steps, dt, dtype)
    tied = margin < a.tie

    rows, failed = [], False
    for name in sorted(ours):
        if name.endswith(".lif"):
            if name not in counts:
                sys.exit(f"check_nir.py: {name} is in the activity but not an LIF node of the graph")
            mine, theirs = counts[name], ours[name].astype(np.int64).reshape(counts[name].shape)
            diff = np.abs(mine - theirs)
            per_image = (diff > 0).reshape(n, -1).sum(1)
            mismatched = int(per_image.sum())
            untied = int(per_image[~tied].sum())
            failed |= untied > 0
            rows.append(dict(node=name, values=int(diff.size), identical=int(diff.size) - mismatched,
                             max_abs_diff=int(diff.max()), images_differing=int((per_image > 0).sum()),
                             differing_outside_ties=untied, spikes_nir=int(mine.sum()),
                             spikes_sae=int(theirs.sum())))
        elif name.endswith(".max"):
            li = name[: -len(".max")]
            mine, theirs = maxima[li], ours[name].reshape(maxima[li].shape)
            rel = lambda d: float(d.max() / max(1e-12, float(np.abs(theirs).max()))) if d.size else 0.0  # noqa: E731
            diff = np.abs(mine - theirs).reshape(n, -1)
            err, untied = rel(diff), rel(diff[~tied])
            rows.append(dict(node=li, values=int(mine.size), max_rel_diff=err,
                             max_rel_diff_outside_ties=untied))
            failed |= untied > (1e-5 if a.dtype == "float32" else 1e-3)
    print(f"{a.graph}: {len(graph.nodes)} nodes, T = {steps}, dt = {dt} s, {n} images, "
          f"simulated in {a.dtype}" + (f", input scale {scale:g}" if scale else "")
          + f"; {int(tied.sum())} images with a rounding tie (a potential within {a.tie:g} of a threshold)")
    for r in rows:
        if "identical" in r:
            print(f"  {r['node']:<20} spike counts identical for {r['identical']} of {r['values']} "
                  f"neuron·images (max |diff| {r['max_abs_diff']}, in {r['images_differing']} images, "
                  f"{r['differing_outside_ties']} outside ties; spikes {r['spikes_nir']} NIR, "
                  f"{r['spikes_sae']} sae)")
        else:
            print(f"  {r['node']:<20} max over time: relative difference {r['max_rel_diff']:.2e} "
                  f"({r['max_rel_diff_outside_ties']:.2e} outside ties) over {r['values']} values")
    print(json.dumps(dict(graph=a.graph, steps=steps, images=n, dtype=a.dtype, layers=rows)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
