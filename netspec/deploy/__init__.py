"""Deployment: the same ONNX model on other runtimes and serving engines.

- `triton`: a Triton Inference Server model repository (`netspec deploy --triton DIR`).
- `openvino`: OpenVINO on the CPU (`netspec run --runtime openvino`).
- `litert`: a LiteRT (TFLite) flatbuffer of the Keras target (`netspec deploy --litert DIR`).

`source.Source` is what every one of them starts from: an `.onnx` file, or a spec's graph with
its weights. Each runtime module imports its library lazily, inside its functions.
"""
