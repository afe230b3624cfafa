#!/usr/bin/env bash
# Create .venv and install netspec with the given extras, pinned by constraints.txt.
# usage: scripts/setup.sh EXTRAS   (e.g. all, test)
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-all}
py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, by itself: with the pin, pip takes the CPU wheel rather than a CUDA build.
.venv/bin/python -m pip install -q -c constraints.txt torch
.venv/bin/python -m pip install -q -c constraints.txt -e ".[$extras]"
