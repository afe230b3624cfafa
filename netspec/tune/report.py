"""What `netspec tune` writes at the end: the trials (CSV and a terminal table), the best params
(JSON), and pictures of the search (Optuna's matplotlib plots: history and importance, PNG).

Every writer takes the folder to write into (a temporary folder inside the output folder: the
caller moves its files into place only when all of them are written).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

FILES = ("trials.csv", "best.json", "history.png", "importance.png")


def _seconds(t) -> float | None:
    if t.datetime_start is None or t.datetime_complete is None:
        return None
    return (t.datetime_complete - t.datetime_start).total_seconds()


def rows(study, names: list[str]) -> list[dict[str, Any]]:
    """One row per trial of the study, in trial order."""
    out = []
    for t in study.get_trials(deepcopy=False):
        row = {"trial": t.number, "state": t.state.name, "value": t.value}
        row.update({n: t.params.get(n) for n in names})
        row["epochs"] = t.user_attrs.get("epochs")
        row["seconds"] = _seconds(t)
        row["worker"] = t.user_attrs.get("worker")
        row["error"] = t.user_attrs.get("error")
        out.append(row)
    return out


def write_csv(table: list[dict[str, Any]], folder: Path) -> Path:
    path = folder / "trials.csv"
    keys = list(table[0]) if table else ["trial", "state", "value"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(keys)
        for row in table:
            w.writerow(["" if row[k] is None else row[k] for k in keys])
    return path


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


def format_table(table: list[dict[str, Any]], names: list[str], direction: str, limit=20) -> str:
    """The trials as an aligned text table, best first (finished before pruned before failed)."""
    rank = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "WAITING": 2, "FAIL": 3}
    sign = -1 if direction == "maximize" else 1

    def order(row):
        v = row["value"]
        return (rank.get(row["state"], 4), sign * v if v is not None else 0.0, row["trial"])

    keys = ["trial", "state", "value", *names, "epochs", "seconds"]
    shown = sorted(table, key=order)[:limit]
    cells = [keys] + [[_cell(r[k]) for k in keys] for r in shown]
    widths = [max(len(c[i]) for c in cells) for i in range(len(keys))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    if len(table) > limit:
        lines.append(f"... {len(table) - limit} more in trials.csv")
    return "\n".join(lines)


def write_best(best: dict[str, Any], folder: Path) -> Path:
    path = folder / "best.json"
    path.write_text(json.dumps(best, indent=1) + "\n", encoding="utf-8")
    return path


def write_plots(study, folder: Path) -> tuple[list[Path], list[str]]:
    """history.png and importance.png (Optuna's matplotlib plots); the files, and a note for
    each plot that could not be drawn (too few finished trials, a single value, ...)."""
    import matplotlib

    matplotlib.use("Agg")  # a command-line run: never a window
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    files, notes = [], []
    for name, plot in (
        ("history.png", ovm.plot_optimization_history),
        ("importance.png", ovm.plot_param_importances),
    ):
        try:
            ax = plot(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            notes.append(f"{name} not drawn: {e}")
            continue
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        if not fig.axes or not any(a.has_data() for a in fig.axes):
            notes.append(f"{name} not drawn: nothing to show yet")
            plt.close(fig)
            continue
        fig.set_size_inches(7, 4.5)
        fig.tight_layout()
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        files.append(folder / name)
    return files, notes
