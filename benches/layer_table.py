"""Per layer, where a step's time goes and how much work it does: a Markdown table from
the JSON that `sae bench` prints (spiking model).

    sae bench --preset paper --steps 100 --batch 32 --iters 3 --warmup 1 > b.json
    python3 benches/layer_table.py b.json [train|infer]

Columns: forward and backward milliseconds of the layer's ops per step
(`*_profile_ms`), the density of the layer's input in the first batch, the work per step
(synaptic operations: nonzero inputs times their fan-out, what the event kernels do,
forward and — weight and input gradient at the spikes — backward; and the dense MACs of
the same connections, what a GEMM does), the rates achieved, the rate at which the
layer's tensors stream (spikes as bits, currents and gradients as f32), and what bounds it: synaptic work at the event kernels' rate
or streaming its tensors at the machine's bandwidth, whichever would take longer, or,
when neither accounts for half of the time, the per-element passes.
"""

import json
import os
import sys

# The event kernels' rate on synaptic operations and the machine's streaming bandwidth,
# both on the 2 threads of the bench (BENCHMARKS.md has where they come from); override
# with EVENT_RATE and STREAM (G op/s, GB/s).
EVENT_RATE = float(os.environ.get("EVENT_RATE", "9"))
STREAM = float(os.environ.get("STREAM", "40"))


def main():
    path = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else "train"
    with open(path) as f:
        r = json.load(f)
    batch = r["batch"]
    profile = {p["scope"]: p for p in r[f"{mode}_profile_ms"]}
    density = {l["layer"]: l["density"] for l in r["spike_stats_at_init_first_batch"]}
    inputs = ["input"] + [w["layer"] for w in r["work_at_init_first_batch"]]
    print(f"`{path}` ({mode}, T = {r['T']}, batch {batch}, {r['threads']} threads, "
          f"median step {r[f'{mode}_step_ms']:.0f} ms"
          + (f", parameters of `{r['init']}`" if r.get("init") else ", at initialization")
          + ")\n")
    stats = {l["layer"]: l for l in r["spike_stats_at_init_first_batch"]}
    frames = batch * r["T"]
    print("| layer | input density | fwd ms | bwd ms | fwd synaptic ops | bwd synaptic ops "
          "| dense MACs (fwd) | fwd / bwd G op/s | traffic fwd / bwd GB/s | bound |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    totals = [0.0, 0.0, 0.0, 0.0, 0.0]
    for i, w in enumerate(r["work_at_init_first_batch"]):
        p = profile.get(w["layer"], {"forward": 0.0, "backward": 0.0})
        ops, dense = w["synaptic_ops_per_image"] * batch, w["dense_macs_per_image"] * batch
        # Backward under the membrane surrogate: the weight gradient and the input
        # gradient each take one pass over the input events.
        bwd_ops = 2 * ops if mode == "train" else 0
        fwd, bwd = p["forward"], p["backward"]
        rate = lambda n, ms: n / (ms * 1e-3) / 1e9 if ms > 0 else 0.0  # noqa: E731
        # The bytes a layer streams per frame. Forward: its input spikes read (bits, 1/8 B
        # per input neuron), its f32 currents written and read back by the LIF op, its
        # spikes written as bits. Backward (training): the spikes' gradient read and the
        # currents' gradient written by the LIF op and read by the synaptic op (f32, 12 B
        # per output neuron), the input spikes read again and their f32 gradient written.
        n_in, n_out = stats[inputs[i]]["neurons"], stats[w["layer"]]["neurons"]
        traffic_f = frames * (n_in / 8 + 8 * n_out + n_out / 8)
        traffic_b = frames * (12 * n_out + n_in / 8 + 4 * n_in) if mode == "train" else 0
        bw_f, bw_b = rate(traffic_f, fwd), rate(traffic_b, bwd)
        # Which cost explains the time: the synaptic work at the event kernels' rate
        # (`EVENT_RATE` G op/s), or streaming the tensors at `STREAM` GB/s.
        synaptic_ms = (ops + bwd_ops) / EVENT_RATE / 1e6
        stream_ms = (traffic_f + traffic_b) / STREAM / 1e6
        # Neither explains half of the time: the per-element passes (the LIF
        # arithmetic, transposes to and from channels-last scratch, allocating and
        # zeroing) do.
        if max(synaptic_ms, stream_ms) < 0.5 * (fwd + bwd):
            bound = "per-element passes"
        else:
            bound = "synaptic work" if synaptic_ms >= stream_ms else "bandwidth"
        print(f"| {w['layer']} | {density[inputs[i]]:.3f} | {fwd:.0f} | {bwd:.0f} | {ops:.3g} "
              f"| {bwd_ops:.3g} | {dense:.3g} | {rate(ops, fwd):.1f} / {rate(bwd_ops, bwd):.1f} "
              f"| {bw_f:.1f} / {bw_b:.1f} | {bound} ({synaptic_ms:.0f} vs {stream_ms:.0f} ms) |")
        for k, v in enumerate((fwd, bwd, ops, bwd_ops, dense)):
            totals[k] += v
    rest = {k: v for k, v in profile.items() if k not in {w["layer"] for w in r["work_at_init_first_batch"]}}
    other_f = sum(p["forward"] for p in rest.values())
    other_b = sum(p["backward"] for p in rest.values())
    print(f"| other ({', '.join(k or 'glue' for k in rest)}) | | {other_f:.0f} | {other_b:.0f} "
          "| | | | | | |")
    print(f"| **total** | | {totals[0] + other_f:.0f} | {totals[1] + other_b:.0f} | {totals[2]:.3g} "
          f"| {totals[3]:.3g} | {totals[4]:.3g} | | | |")


if __name__ == "__main__":
    main()
