"""Export: `netspec build SPEC --target onnx` vs `torch.onnx.export`, each a whole process.

Contenders, per network, interleaved round by round, each a fresh process with the same thread
pinning:
- netspec:  `netspec build SPEC --target onnx -o DIR -q` (reads and validates the spec, lowers it,
  draws the weights, writes `<name>.onnx` and `<name>.safetensors`),
- dynamo:   `python benchmarks/torch_export.py NET OUT --exporter dynamo` (imports torch, builds the
  hand-written twin, `torch.onnx.export(..., dynamo=True)`, batch (and time) axes dynamic),
- legacy:   the same with `dynamo=False` (TorchScript-based exporter), opset 17.
Goal: netspec at least 20x faster than the dynamo exporter on ResNet-50.
"""

from __future__ import annotations

import shutil

from common import (
    BENCH,
    PY,
    SPECS,
    Context,
    Table,
    fmt_ratio,
    fmt_sample,
    goal,
    netspec_cmd,
    ratio,
    time_processes,
)

NETS = ["mlp", "resnet18", "resnet50", "char_lstm", "deep_mlp"]
QUICK_NETS = ["resnet50"]
GOAL = 20.0


def run(ctx: Context) -> list[Table]:
    nets = QUICK_NETS if ctx.quick else NETS
    out = ctx.tmp / "export"
    table = Table(
        f"Export: whole process, spec/module -> .onnx file (median, min over {ctx.repeat} runs)",
        [
            "network",
            "netspec build",
            "torch dynamo",
            "torch legacy",
            "dynamo / netspec",
            "legacy / netspec",
            "peak RSS netspec / dynamo / legacy",
            "goal",
        ],
    )

    def clean() -> None:
        shutil.rmtree(out, ignore_errors=True)

    for name in nets:
        ctx.log(f"  export {name}")
        contenders = {
            "netspec": lambda r, n=name: [
                *netspec_cmd(),
                "build",
                str(SPECS[n]),
                "--target",
                "onnx",
                "-o",
                str(out / f"netspec{r}"),
                "-q",
            ],
            "dynamo": lambda r, n=name: [
                PY,
                str(BENCH / "torch_export.py"),
                n,
                str(out / f"dynamo{r}.onnx"),
                "--exporter",
                "dynamo",
            ],
            "legacy": lambda r, n=name: [
                PY,
                str(BENCH / "torch_export.py"),
                n,
                str(out / f"legacy{r}.onnx"),
                "--exporter",
                "legacy",
            ],
        }
        out.mkdir(parents=True, exist_ok=True)
        s = time_processes(
            contenders,
            ctx.repeat,
            warmup=1,
            log=ctx.log,
            cleanup=lambda: (clean(), out.mkdir(parents=True, exist_ok=True)),
        )
        rd = ratio(s["dynamo"], s["netspec"])
        rl = ratio(s["legacy"], s["netspec"])
        ok = (rd >= GOAL) if name == "resnet50" and rd == rd else None
        mem = (
            " / ".join(
                f"{v.peak_kb / 1024:.0f}" if v.ok else "-"
                for v in (s["netspec"], s["dynamo"], s["legacy"])
            )
            + " MiB"
        )
        table.add(
            name,
            fmt_sample(s["netspec"]),
            fmt_sample(s["dynamo"]),
            fmt_sample(s["legacy"]),
            fmt_ratio(rd, 1),
            fmt_ratio(rl, 1),
            mem,
            goal(ok),
        )
        for k, v in s.items():
            if v.error:
                table.notes.append(f"{name}, {k}: {v.error}")
        if name == "resnet50":
            ctx.findings.append(
                f"export: ResNet-50 dynamo / netspec = {fmt_ratio(rd, 1)} "
                f"(goal >= {GOAL:.0f}x): {goal(ok)}"
            )
    clean()
    table.notes.append(
        "ratios are medians over medians; > 1 means netspec is faster. netspec "
        "also writes the weights file (.safetensors); the exporters write only "
        ".onnx (dynamo: .onnx + .onnx.data). Dynamo writes its own default opset "
        "(20 in torch 2.13); legacy and netspec write opset 17."
    )
    tables = [table]
    if "resnet50" in nets:
        from diagnose import run_table

        ctx.log("  diagnosis: netspec build resnet50, step by step")
        tables.append(run_table(SPECS["resnet50"]))
    return tables
