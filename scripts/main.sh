#!/usr/bin/env bash
# The main job on a fresh machine: install, build every example spec for every target, and run
# the ONNX models on ONNX Runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
ns=.venv/bin/netspec
$ns validate specs/*.yaml
for spec in specs/*.yaml; do
  name=$(basename "$spec" .yaml)
  $ns build "$spec" --target all -o "build/$name" -q
done
$ns inspect specs/mlp.yaml
.venv/bin/python scripts/make_inputs.py specs/mlp.yaml build/mlp/inputs
$ns run build/mlp/mlp.onnx --input x=build/mlp/inputs/x.npy --provider auto
.venv/bin/python scripts/make_inputs.py specs/resnet18.yaml build/resnet18/inputs
$ns run build/resnet18/resnet18.onnx --input image=build/resnet18/inputs/image.npy
echo "main job done: outputs under build/"
