"""Per layer, where a step's time goes and how much work it does: a Markdown table from
the JSON that `sae bench` prints (spiking model).

    sae bench --preset paper --steps 100 --batch 32 --iters 3 --warmup 1 > b.json
    python3 benches/layer_table.py b.json [train|infer]

Columns: forward and backward milliseconds of the layer's ops per step
(`*_profile_ms`), the density of the layer's input in the first batch, the forward's
work per step (synaptic operations: nonzero inputs times their fan-out, what the event
kernels do; and the dense MACs of the same connections, what a GEMM does), and the
forward's rate on each basis (G operations per second).
"""

import json
import sys


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
    print("| layer | input density | fwd ms | bwd ms | synaptic ops / step | dense MACs / step "
          "| fwd G op/s (synaptic) | fwd G MAC/s (dense-equivalent) |")
    print("|---|---|---|---|---|---|---|---|")
    totals = [0.0, 0.0, 0.0, 0.0]
    for i, w in enumerate(r["work_at_init_first_batch"]):
        p = profile.get(w["layer"], {"forward": 0.0, "backward": 0.0})
        ops, dense = w["synaptic_ops_per_image"] * batch, w["dense_macs_per_image"] * batch
        fwd, bwd = p["forward"], p["backward"]
        rate = lambda n: n / (fwd * 1e-3) / 1e9 if fwd > 0 else float("nan")  # noqa: E731
        print(f"| {w['layer']} | {density[inputs[i]]:.3f} | {fwd:.0f} | {bwd:.0f} | {ops:.3g} "
              f"| {dense:.3g} | {rate(ops):.1f} | {rate(dense):.1f} |")
        for k, v in enumerate((fwd, bwd, ops, dense)):
            totals[k] += v
    rest = {k: v for k, v in profile.items() if k not in {w["layer"] for w in r["work_at_init_first_batch"]}}
    other_f = sum(p["forward"] for p in rest.values())
    other_b = sum(p["backward"] for p in rest.values())
    print(f"| other ({', '.join(k or 'glue' for k in rest)}) | | {other_f:.0f} | {other_b:.0f} | | | | |")
    print(f"| **total** | | {totals[0] + other_f:.0f} | {totals[1] + other_b:.0f} | {totals[2]:.3g} "
          f"| {totals[3]:.3g} | | |")


if __name__ == "__main__":
    main()
