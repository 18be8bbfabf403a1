#!/usr/bin/env bash
# Regenerates every golden file of this folder with PyTorch:
#   TORCH_PYTHON=/path/to/python-with-torch crates/autograd/tests/golden/make.sh
# (`python3 -m venv v && v/bin/pip install torch numpy` is enough.)
set -euo pipefail
cd "$(dirname "$0")"
PY="${TORCH_PYTHON:?set TORCH_PYTHON to a python with torch and numpy}"
for script in *.py; do
    [[ "$script" == golden.py ]] && continue
    "$PY" "$script"
done
