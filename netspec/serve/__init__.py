"""`netspec serve`: ONNX models behind an Open Inference Protocol (KServe v2) HTTP server.

`protocol` parses and encodes OIP tensors (JSON and binary), `model` holds a model's ONNX
Runtime session and checks requests against it, `batching` gathers concurrent requests into one
run, and `app` is the Starlette application (`create_app`). The command is `cli.serve`.
"""
