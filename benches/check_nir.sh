#!/usr/bin/env bash
# Checks `sae export --format nir` with an independent reader: exports a run's encoder and
# decoder (NIR files and the activity of the first test images under the current encoder),
# then `benches/check_nir.py` reads each file with the `nir` Python package, simulates it
# with its own numpy simulator written from the NIR specification and compares the spike
# counts of every exported layer (and the output potential's maximum over time).
#
#   NIR_PYTHON=/path/to/python-with-nir benches/check_nir.sh RUN_DIR
#
# Environment (all optional but NIR_PYTHON):
#   NIR_PYTHON  a python with nir, numpy and h5py (nothing is installed here)
#   MNIST_DIR   raw MNIST IDX files (default: data/mnist)
#   IMAGES      test images to compare on (default 64)
#   DTYPE       the simulator's float type: float32, as sae computes (default), or float64
#   OUT_DIR     where the files go (default: a temporary folder, removed at the end)
#   PARTS       the parts to check (default "encoder decoder")
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ -z "${NIR_PYTHON:-}" ]]; then
    cat >&2 <<'EOF'
check_nir.sh needs a Python with the nir package: set NIR_PYTHON=/path/to/python.
This script installs nothing. To get one:
    python3 -m venv .venv-nir && .venv-nir/bin/pip install nir numpy h5py
then: NIR_PYTHON=$PWD/.venv-nir/bin/python benches/check_nir.sh runs/<run>
EOF
    exit 2
fi
if [[ $# -ne 1 || ! -d "$1" ]]; then
    echo "usage: NIR_PYTHON=… benches/check_nir.sh RUN_DIR" >&2
    exit 2
fi
RUN=$1
MNIST_DIR=${MNIST_DIR:-$ROOT/data/mnist}
IMAGES=${IMAGES:-64}
DTYPE=${DTYPE:-float32}
PARTS=${PARTS:-encoder decoder}
if [[ -z "${OUT_DIR:-}" ]]; then
    OUT_DIR=$(mktemp -d)
    trap 'rm -rf "$OUT_DIR"' EXIT
fi
mkdir -p "$OUT_DIR"

cargo build --release --quiet -p sae --features nir
SAE=$ROOT/target/release/sae
status=0
for part in $PARTS; do
    "$SAE" export "$RUN" "$OUT_DIR/$part.nir" --part "$part" \
        --activity "$OUT_DIR/$part.activity.safetensors" --images "$IMAGES" \
        --data-dir "$MNIST_DIR" >/dev/null
    "$NIR_PYTHON" "$ROOT/benches/check_nir.py" "$OUT_DIR/$part.nir" \
        "$OUT_DIR/$part.activity.safetensors" --mnist "$MNIST_DIR" --dtype "$DTYPE" || status=1
done
exit $status
