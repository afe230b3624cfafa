#!/usr/bin/env bash
# The main job on a fresh machine: install, build every example spec for every target, run the
# ONNX models on ONNX Runtime, and train two examples (PyTorch and Keras) from shipped data.
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
$ns train specs/exam_score.yaml -o build/trained/exam_score -q
$ns train specs/iris.yaml --target keras -o build/trained/iris
.venv/bin/python -c "
import json
from safetensors.numpy import load_file
w = load_file('build/trained/exam_score/exam_score.safetensors')
print('exam_score learned score = %.4f x hours + %.4f' % (w['score.weight'][0, 0], w['score.bias'][0]))
print('iris test accuracy (keras):', json.load(open('build/trained/iris/metrics.json'))['test']['accuracy'])
"
echo "main job done: outputs under build/"
