#!/usr/bin/env bash
# Times the PyTorch reference (shared/reference/torch_sae.py) and `sae bench` on the same
# work: the paper network (Poisson input at scale 0.2, the authors' floor, membrane
# surrogate, no regularizers), batch 32, the first MNIST training images, one warm-up
# iteration, training steps and inference steps in separate processes (so an inference
# run's peak RSS holds no training memory). Within a round the two run one after the
# other, alternating which goes first from round to round.
#
#   TORCH_PYTHON=/path/to/python-with-torch benches/compare_torch.sh
#
# Environment (all optional but TORCH_PYTHON):
#   TORCH_PYTHON  a python with torch and numpy (nothing is installed here)
#   REFERENCE     the reference script (default: ../shared/reference/torch_sae.py from
#                 the repository root)
#   MNIST_DIR     raw MNIST IDX files, passed to both (default: the reference's own
#                 default, ../mnist next to its folder, when that exists)
#   TS            time steps to compare (default "25 100")
#   ROUNDS        rounds (default 3)
#   STEPS         timed iterations per run (default 5 for T <= 50, 3 above)
#   THREADS       threads of both (default 2; keep it at or below the idle cores)
#   BATCH         images per batch (default 32)
#   OUT_DIR       where <timestamp>.jsonl goes (default results/compare_torch)
#   INIT          a checkpoint of a trained network: `sae bench --init INIT` is timed too
#                 (the reference's time does not depend on its weights: it does all the
#                 dense work), reported as "trained" beside the initialization's figures
#   INIT_FLAGS    flags that make the paper preset the trained network (default
#                 "--floor none", as results/trained-t100 was trained)
#
# Prints a table (medians over the rounds, then every round, then the spike densities at
# init) and writes every run and the summary as JSON lines.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ -z "${TORCH_PYTHON:-}" ]]; then
    cat >&2 <<'EOF'
compare_torch.sh needs a Python with torch: set TORCH_PYTHON=/path/to/python.
This script installs nothing. To get one (as the reference's header says; a CPU is
enough, the PyPI wheel pulls a few GB of CUDA libraries it never uses):
    python3 -m venv .venv && .venv/bin/pip install torch numpy
    .venv/bin/python ../shared/reference/torch_sae.py selftest
then: TORCH_PYTHON=$PWD/.venv/bin/python benches/compare_torch.sh
EOF
    exit 2
fi

REFERENCE=${REFERENCE:-$ROOT/../shared/reference/torch_sae.py}
if [[ ! -f "$REFERENCE" ]]; then
    echo "compare_torch.sh: no reference script at $REFERENCE (set REFERENCE)" >&2
    exit 2
fi
if [[ -z "${MNIST_DIR:-}" && -d "$(dirname "$REFERENCE")/../mnist" ]]; then
    MNIST_DIR=$(cd "$(dirname "$REFERENCE")/../mnist" && pwd)
fi
if [[ -n "${MNIST_DIR:-}" ]]; then
    export MNIST_DIR
fi

TS=${TS:-25 100}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
BATCH=${BATCH:-32}
OUT_DIR=${OUT_DIR:-$ROOT/results/compare_torch}
mkdir -p "$OUT_DIR"
OUT="$OUT_DIR/$(date -u +%Y%m%d-%H%M%S).jsonl"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "building sae (cargo build --release -p sae)" >&2
cargo build --release -p sae >&2
SAE=$ROOT/target/release/sae

steps_for() {
    if [[ -n "${STEPS:-}" ]]; then
        echo "$STEPS"
    elif (($1 <= 50)); then
        echo 5
    else
        echo 3
    fi
}

# record IMPL ROUND T MODE LOADAVG WALL_S FILE: appends one JSON line to $OUT.
record() {
    python3 - "$@" >>"$OUT" <<'EOF'
import json, sys
impl, rnd, T, mode, load, wall, path = sys.argv[1:]
with open(path) as f:
    result = json.load(f)
print(json.dumps(dict(impl=impl, round=int(rnd), T=int(T), mode=mode,
                      loadavg_before=[float(x) for x in load.split()[:3]],
                      wall_s=float(wall), result=result)))
EOF
}

run_reference() { # ROUND T MODE N
    local load t0 t1
    load=$(cat /proc/loadavg)
    t0=$(date +%s.%N)
    "$TORCH_PYTHON" "$REFERENCE" bench --T "$2" --mode "$3" --batch "$BATCH" \
        --threads "$THREADS" --warmup 1 --steps "$4" --out "$TMP/ref.json" >/dev/null
    t1=$(date +%s.%N)
    record reference "$1" "$2" "$3" "$load" "$(python3 -c "print($t1 - $t0)")" "$TMP/ref.json"
}

run_ours() { # ROUND T MODE N [IMPL EXTRA_FLAGS...]
    local load t0 t1 round=$1 T=$2 mode=$3 n=$4 impl=${5:-sae}
    shift 5 || shift $#
    load=$(cat /proc/loadavg)
    t0=$(date +%s.%N)
    "$SAE" bench --preset paper --steps "$T" --batch "$BATCH" --mode "$mode" --iters "$n" \
        --warmup 1 --threads "$THREADS" "$@" >"$TMP/ours.json"
    t1=$(date +%s.%N)
    record "$impl" "$round" "$T" "$mode" "$load" "$(python3 -c "print($t1 - $t0)")" "$TMP/ours.json"
}

run_trained() { # ROUND T MODE N: ours with the parameters of $INIT
    if [[ -n "${INIT:-}" ]]; then
        # shellcheck disable=SC2086
        run_ours "$1" "$2" "$3" "$4" sae-trained --init "$INIT" ${INIT_FLAGS---floor none}
    fi
}

# Full-size parity at T = 25: the paper network at the reference's seed-0 init, one
# forward/backward and one Adam step on 8 test images, each encoder, checked by
# tests/parity.rs (loss, every weight gradient, spike counts, c, weights after Adam).
if [[ "${PARITY:-1}" != 0 ]]; then
    echo "parity: paper network, T=25, batch 8 (PARITY=0 skips)" >&2
    mkdir -p "$TMP/parity"
    "$TORCH_PYTHON" "$REFERENCE" export-init --seed 0 --out "$TMP/parity/init.safetensors" >/dev/null
    for encoder in current poisson; do
        "$TORCH_PYTHON" "$REFERENCE" step-dump --weights "$TMP/parity/init.safetensors" \
            --T 25 --batch 8 --encoder "$encoder" --floor authors --adam-steps 1 \
            --include-weights --out "$TMP/parity/paper_${encoder}_T25.safetensors" >/dev/null
    done
    PARITY_DIR="$TMP/parity" cargo test --release --test parity -- --nocapture 2>&1 |
        grep -E "^paper_|test result" >&2
fi

echo "reference: $REFERENCE; MNIST_DIR=${MNIST_DIR:-unset}; T: $TS; rounds: $ROUNDS;" \
    "threads: $THREADS; batch: $BATCH; results: $OUT" >&2
for ((round = 1; round <= ROUNDS; round++)); do
    for T in $TS; do
        n=$(steps_for "$T")
        for mode in train infer; do
            echo "round $round/$ROUNDS: T=$T $mode, $n timed steps" >&2
            if ((round % 2 == 1)); then
                run_reference "$round" "$T" "$mode" "$n"
                run_ours "$round" "$T" "$mode" "$n"
                run_trained "$round" "$T" "$mode" "$n"
            else
                run_trained "$round" "$T" "$mode" "$n"
                run_ours "$round" "$T" "$mode" "$n"
                run_reference "$round" "$T" "$mode" "$n"
            fi
        done
    done
done

python3 - "$OUT" <<'EOF'
import json, statistics, sys

path = sys.argv[1]
with open(path) as f:
    runs = [json.loads(line) for line in f if line.strip()]

def seconds(r):
    """(median time in s, peak RSS in MiB) of one run."""
    res = r["result"]
    if r["impl"] == "reference":
        return res["median_s"], res["peak_rss_mib"]
    return res[f"{r['mode']}_step_ms"] / 1e3, res["peak_rss_mib"]

keys = []
for r in runs:
    if (r["T"], r["mode"]) not in keys:
        keys.append((r["T"], r["mode"]))
pick = lambda T, mode, impl: [r for r in runs if (r["T"], r["mode"], r["impl"]) == (T, mode, impl)]

synthetic = {r["result"].get("input") for r in runs if r["impl"] == "sae"} - {"mnist-train"}
if synthetic:
    print("WARNING: sae bench did not find MNIST (input: synthetic); set MNIST_DIR")

head = (f"{'T':>4} {'mode':<5} {'ref s':>8} {'ours s':>8} {'ref/ours':>8} "
        f"{'ref MiB':>8} {'ours MiB':>8} {'ours/ref':>8} {'ref cpu':>7}")

def cpu(r):
    """The reference's median CPU s / wall s per step: about THREADS when uncontended."""
    return statistics.median(r["result"]["cpu_util_per_step"])
print("\nmedians over rounds (time: median step of each run; ref/ours > 1: ours faster;")
print("ref cpu: the reference's CPU s per wall s, about the thread count when uncontended)")
print(head)
summaries = []
for T, mode in keys:
    ref = [seconds(r) for r in pick(T, mode, "reference")]
    ours = [seconds(r) for r in pick(T, mode, "sae")]
    rt, rm = statistics.median(t for t, _ in ref), statistics.median(m for _, m in ref)
    ot, om = statistics.median(t for t, _ in ours), statistics.median(m for _, m in ours)
    rc = statistics.median(cpu(r) for r in pick(T, mode, "reference"))
    print(f"{T:>4} {mode:<5} {rt:>8.3f} {ot:>8.3f} {rt / ot:>8.2f} "
          f"{rm:>8.1f} {om:>8.1f} {om / rm:>8.2f} {rc:>7.2f}")
    summary = dict(summary=True, T=T, mode=mode, rounds=len(ours),
                   ref_median_s=rt, ours_median_s=ot, time_ratio_ref_over_ours=rt / ot,
                   ref_peak_rss_mib=rm, ours_peak_rss_mib=om,
                   memory_ratio_ours_over_ref=om / rm, ref_cpu_util=rc)
    trained = [seconds(r) for r in pick(T, mode, "sae-trained")]
    if trained:
        tt, tm = statistics.median(t for t, _ in trained), statistics.median(m for _, m in trained)
        summary.update(trained_median_s=tt, time_ratio_ref_over_trained=rt / tt,
                       trained_peak_rss_mib=tm, memory_ratio_trained_over_ref=tm / rm)
        print(f"{'':>4} {'':<5} {'trained':>8} {tt:>8.3f} {rt / tt:>8.2f} "
              f"{'':>8} {tm:>8.1f} {tm / rm:>8.2f}   (sae bench --init)")
    summaries.append(summary)

print("\nevery round (loadavg: 1-minute load before the reference's / our run)")
print(f"{'round':>5} " + head + f" {'loadavg':>11}")
for T, mode in keys:
    for a, b in zip(pick(T, mode, "reference"), pick(T, mode, "sae")):
        (rt, rm), (ot, om) = seconds(a), seconds(b)
        load = f"{a['loadavg_before'][0]:.1f}/{b['loadavg_before'][0]:.1f}"
        print(f"{a['round']:>5} {T:>4} {mode:<5} {rt:>8.3f} {ot:>8.3f} {rt / ot:>8.2f} "
              f"{rm:>8.1f} {om:>8.1f} {om / rm:>8.2f} {cpu(a):>7.2f} {load:>11}")

print("\nspike density at init, first batch (spikes / (neurons·T·batch); round 1, train runs)")
for T in dict.fromkeys(T for T, _ in keys):
    ref = pick(T, "train", "reference") or pick(T, "infer", "reference")
    ours = pick(T, "train", "sae") or pick(T, "infer", "sae")
    if not ref or not ours:
        continue
    rl = ref[0]["result"]["spike_stats_at_init_first_batch"]
    ol = [l for l in ours[0]["result"].get("spike_stats_at_init_first_batch", [])
          if l["layer"] != "input"]
    print(f"T={T}: {'ref layer':<16} {'ours layer':<11} {'ref dens':>9} {'ours dens':>9} "
          f"{'ref %dead':>9} {'ours %dead':>10}")
    for a, b in zip(rl, ol):
        print(f"{'':>{len(str(T)) + 3}} {a['layer']:<16} {b['layer']:<11} "
              f"{a['spikes_per_neuron_per_step']:>9.4f} {b['density']:>9.4f} "
              f"{a['pct_never_fired']:>9.2f} {b['pct_never_fired']:>10.2f}")

with open(path, "a") as f:
    for s in summaries:
        f.write(json.dumps(s) + "\n")
print(f"\nwritten: {path}")
EOF
