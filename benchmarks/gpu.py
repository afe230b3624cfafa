"""GPU: ONNX Runtime's CUDA execution provider on netspec's ONNX vs PyTorch eager on the GPU,
for ResNet-50 and the char LSTM, batch 1 and 32, fp32 and fp16.

Runs only where CUDA works (torch.cuda.is_available() and ORT lists CUDAExecutionProvider and a
session can be created on it); otherwise the table says "skipped: no CUDA".
- ORT: CUDA EP (TF32 off: `use_tf32=0`), IO binding: the input is copied to the GPU once, the
  output is bound to a GPU buffer, so the timed call is the graph alone; synchronized.
- fp16 where allowed: the ONNX graph converted with onnxruntime.transformers.float16
  (`keep_io_types=True`: fp32 in and out, casts at the edges); PyTorch: `module.half()` with a
  half input. Parity is not asserted for fp16 (it is a different precision); the output's
  largest deviation from fp32 is printed.
- torch: `torch.inference_mode()`, TF32 off, `torch.cuda.synchronize()` after each call.
Set NETSPEC_BENCH_GPU_DRYRUN=1 to run the same code on the CPU (CPU EP, CPU tensors): it checks
the harness on a machine without a GPU; its figures mean nothing.
"""

from __future__ import annotations

import os
import time

from common import THREADS, Context, Table, calls_for, fmt_ratio, fmt_s, time_calls

NETS = ["resnet50", "char_lstm"]
BATCHES = [1, 32]


def cuda_status() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch not installed"
    if not torch.cuda.is_available():
        return False, f"torch {torch.__version__} sees no CUDA device"
    try:
        import onnxruntime as ort
    except ImportError:
        return False, "onnxruntime not installed"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False, "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
    return True, torch.cuda.get_device_name(0)


def run(ctx: Context) -> list[Table]:
    dry = os.environ.get("NETSPEC_BENCH_GPU_DRYRUN") == "1"
    ok, why = (True, "CPU dry run") if dry else cuda_status()
    table = Table(
        "GPU: ORT CUDA EP (IO binding) on netspec's ONNX vs PyTorch eager on the GPU, "
        "median per call",
        [
            "network",
            "batch",
            "precision",
            "ORT netspec",
            "torch eager",
            "ORT / torch",
            "max |fp16 - fp32|",
        ],
    )
    if not ok:
        table.add("-", "-", "-", "-", "-", "-", f"skipped: no CUDA ({why})")
        ctx.log(f"  gpu: skipped: no CUDA ({why})")
        ctx.findings.append(f"gpu: skipped: no CUDA ({why})")
        return [table]

    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    import netspec
    from tools.testing import max_violation, random_weights

    import models

    dev = "cpu" if dry else "cuda"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(THREADS)
    table.notes.append(f"device: {why}")

    def session(model: onnx.ModelProto):
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.intra_op_num_threads = THREADS
        if dry:
            providers = ["CPUExecutionProvider"]
        else:
            providers = [
                ("CUDAExecutionProvider", {"device_id": 0, "use_tf32": 0}),
                "CPUExecutionProvider",
            ]
        s = ort.InferenceSession(model.SerializeToString(), so, providers=providers)
        if not dry and s.get_providers()[0] != "CUDAExecutionProvider":
            raise RuntimeError(f"session fell back to {s.get_providers()}")
        return s

    def bound_call(s, x: np.ndarray):
        """IO binding: input on the device once; output bound to a device buffer."""
        xv = ort.OrtValue.ortvalue_from_numpy(x, dev, 0)
        b = s.io_binding()
        b.bind_ortvalue_input(s.get_inputs()[0].name, xv)
        b.bind_output(s.get_outputs()[0].name, dev)

        def call():
            s.run_with_iobinding(b)
            b.synchronize_outputs()
            return b

        def result():
            return b.copy_outputs_to_cpu()[0]

        return call, result

    for name in NETS if not ctx.quick else ["resnet50"]:
        net = models.NETS[name]
        graph = netspec.load(net.spec)
        w = random_weights(graph, seed=0)
        proto = netspec.compile(graph, target="onnx", weights=w)
        module = models.load_canonical(net.build(), w).to(dev)
        precisions = {"fp32": proto}
        try:
            from onnxruntime.transformers.float16 import convert_float_to_float16

            precisions["fp16"] = convert_float_to_float16(proto, keep_io_types=True)
        except Exception as e:  # noqa: BLE001
            table.notes.append(f"{name}: fp16 conversion failed: {type(e).__name__}: {e}")
        for batch in BATCHES if not ctx.quick else [32]:
            xt = net.example(batch)
            x = xt.numpy()
            with torch.inference_mode():
                ref32 = module(xt.to(dev)).float().cpu().numpy()
            for prec, model in precisions.items():
                ctx.log(f"  gpu {name} batch {batch} {prec}")
                try:
                    s = session(model)
                    call, result = bound_call(s, x)
                    call()
                    got = result()
                    if prec == "fp32":
                        v = max_violation(got, ref32)
                        if v > 0:
                            table.notes.append(
                                f"{name} b{batch}: ORT fp32 outside parity by {v:.2g}"
                            )
                    dev16 = float(np.max(np.abs(got - ref32))) if prec == "fp16" else None
                except Exception as e:  # noqa: BLE001
                    table.add(
                        name,
                        batch,
                        prec,
                        f"failed: {type(e).__name__}: {str(e)[:100]}",
                        "-",
                        "-",
                        "-",
                    )
                    continue
                m = (
                    module
                    if prec == "fp32"
                    else models.load_canonical(net.build(), w).to(dev).half()
                )
                xin = xt.to(dev)
                if prec == "fp16" and xin.is_floating_point():
                    xin = xin.half()

                def eager(m=m, xin=xin):
                    with torch.inference_mode():
                        y = m(xin)
                    if dev == "cuda":
                        torch.cuda.synchronize()
                    return y

                call()
                t0 = time.perf_counter()
                call()
                number = calls_for(time.perf_counter() - t0)
                res = time_calls(
                    {"ort": call, "torch": eager}, max(ctx.repeat, 10), number=number, warmup=3
                )
                r = (
                    res["ort"].median / res["torch"].median
                    if res["ort"].ok and res["torch"].ok
                    else float("nan")
                )
                table.add(
                    name,
                    batch,
                    prec,
                    fmt_s(res["ort"].median),
                    fmt_s(res["torch"].median) if res["torch"].ok else "failed",
                    fmt_ratio(r),
                    "-" if dev16 is None else f"{dev16:.2g}",
                )
                ctx.findings.append(
                    f"gpu: {name} b{batch} {prec}: ORT / torch eager = {fmt_ratio(r)}"
                )
    if dry:
        table.notes.append("DRY RUN on the CPU: these figures check the harness only")
    return [table]
