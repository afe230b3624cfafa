#!/usr/bin/env bash
# The whole test suite on a fresh machine (CI runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
