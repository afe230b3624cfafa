"""What `netspec train` writes besides the model files: the history (CSV and JSON), the final
metrics (JSON) and a picture of the loss and metric curves (PNG and SVG, matplotlib's Agg
renderer, imported only here and without pyplot's global state).

Every writer takes the folder to write into (the run's temporary folder: the runner moves its
files into the output folder only when all of them are written).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

FILES = ("history.csv", "history.json", "metrics.json", "curves.png", "curves.svg")


def _number(v: float):
    """A JSON number, or None for NaN / Inf (JSON has no such numbers)."""
    return v if math.isfinite(v) else None


def write_history(history: dict[str, list[float]], folder: Path) -> list[Path]:
    """history.csv (a row per epoch: epoch, then each key) and history.json."""
    keys = list(history)
    epochs = len(history[keys[0]]) if keys else 0
    csv_path = folder / "history.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["epoch", *keys])
        for e in range(epochs):
            w.writerow([e + 1, *(repr(float(history[k][e])) for k in keys)])
    json_path = folder / "history.json"
    data = {"epochs": epochs, "history": {k: [_number(v) for v in vs] for k, vs in history.items()}}
    json_path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return [csv_path, json_path]


def write_metrics(metrics: dict, folder: Path) -> Path:
    """metrics.json: the final model's loss and metrics on each part of the data."""
    clean = {
        k: {m: _number(v) for m, v in part.items()} if isinstance(part, dict) else part
        for k, part in metrics.items()
    }
    path = folder / "metrics.json"
    path.write_text(json.dumps(clean, indent=1) + "\n", encoding="utf-8")
    return path


def curve_groups(history: dict[str, list[float]]) -> list[tuple[str, list[str]]]:
    """(title, keys) per panel: the losses first, then each metric with its val_ twin."""
    groups: dict[str, list[str]] = {}
    for k in history:
        base = k.removeprefix("val_")
        title = "loss" if base.endswith("loss") else base
        groups.setdefault(title, []).append(k)
    return sorted(groups.items(), key=lambda kv: kv[0] != "loss")


def write_curves(history: dict[str, list[float]], title: str, folder: Path) -> list[Path]:
    """curves.png and curves.svg: one panel for the losses, one per metric, over the epochs."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = curve_groups(history)
    fig = Figure(figsize=(5 * max(1, len(groups)), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(1, len(groups)), squeeze=False)[0]
    for ax, (name, keys) in zip(axes, groups, strict=False):
        for k in keys:
            ys = history[k]
            ax.plot(
                range(1, len(ys) + 1), ys, label=k, linestyle="--" if k.startswith("val_") else "-"
            )
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
        if name == "loss" and all(v > 0 for k in keys for v in history[k]):
            ax.set_yscale("log")
    fig.suptitle(title)
    png, svg = folder / "curves.png", folder / "curves.svg"
    with rc_context({"svg.hashsalt": "netspec"}):  # the same run gives the same bytes
        fig.savefig(png, dpi=100, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    return [png, svg]


def check_plotting() -> None:
    """A SpecError (before anything is written) when matplotlib is missing."""
    import importlib.util

    from ..errors import SpecError

    if importlib.util.find_spec("matplotlib") is None:
        raise SpecError(
            "netspec train draws its loss curves with matplotlib, which is not installed",
            hint="pip install 'netspec[train]'",
        )
