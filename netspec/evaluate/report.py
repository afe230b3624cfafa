"""An evaluation report for people (a rich table on a terminal, plain aligned text when piped)
and for scripts (JSON, `evaluation.json`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

REPORT_FILE = "evaluation.json"
MAX_MATRIX = 30  # classes up to which the terminal shows the confusion matrix


def to_json(report: dict) -> str:
    return json.dumps(report, indent=1) + "\n"


def write_json(report: dict, folder: Path) -> Path:
    path = folder / REPORT_FILE
    path.write_text(to_json(report), encoding="utf-8")
    return path


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def heading(report: dict) -> str:
    m, d = report["model"], report["data"]
    where = m["target"] + (f" ({m['provider']})" if m.get("provider") else "")
    return (
        f"{m['name']} on {d['source']} ({d['split']}: {d['examples']} examples), {where}, "
        f"{m['parameters']:,} parameters, {m['size_bytes']:,} bytes"
    )


def summary(name: str, r: dict) -> str:
    """One line per output: the headline numbers."""
    if r["task"] == "regression":
        return f"{name}: MAE {_f(r['mae'])}  MSE {_f(r['mse'])}  R^2 {_f(r['r2'])}"
    return f"{name}: accuracy {_f(r['accuracy'])} ({r['correct']}/{r['examples']})"


def class_rows(r: dict) -> list[list[str]]:
    """class, precision, recall, F1, support; then the macro and weighted means."""
    pc = r["per_class"]
    rows = [
        [str(c), _f(p), _f(rc), _f(f), str(s)]
        for c, p, rc, f, s in zip(
            r["classes"], pc["precision"], pc["recall"], pc["f1"], pc["support"], strict=True
        )
    ]
    for avg in ("macro", "weighted"):
        a = r[avg]
        rows.append([f"{avg} avg", _f(a["precision"]), _f(a["recall"]), _f(a["f1"]), ""])
    return rows


CLASS_HEADER = ["class", "precision", "recall", "F1", "support"]


def _columns(rows: list[list[str]], right_from: int = 1) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [
            c.rjust(w) if i >= right_from else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def too_many(r: dict) -> str:
    return (
        f"confusion matrix: {len(r['classes'])} classes, too many to show here "
        f"(it is in the JSON report and the picture of -o)"
    )


def plain(report: dict) -> str:
    """The report as plain text: stable, for pipes and logs."""
    parts = [heading(report)]
    for name, r in report["outputs"].items():
        parts += ["", summary(name, r)]
        if r["task"] != "classification":
            continue
        parts.append(_columns([CLASS_HEADER, *class_rows(r)]))
        if len(r["classes"]) > MAX_MATRIX:
            parts.append(too_many(r))
            continue
        parts.append("confusion matrix (rows: true class, columns: predicted class)")
        cm = r["confusion_matrix"]
        parts.append(
            _columns(
                [["", *map(str, r["classes"])]]
                + [[str(c), *map(str, row)] for c, row in zip(r["classes"], cm, strict=True)]
            )
        )
    return "\n".join(parts) + "\n"


def show(report: dict, file: TextIO | None = None) -> None:
    """Rich tables on a terminal (where rich is installed), else `plain`; on stdout by default."""
    from ..render.term import _rich_available

    file = sys.stdout if file is None else file
    if not (file.isatty() and _rich_available()):
        file.write(plain(report))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file, highlight=False)
    console.print(heading(report), style="bold")
    for name, r in report["outputs"].items():
        console.print()
        console.print(summary(name, r), style="bold green")
        if r["task"] != "classification":
            continue
        table = Table(header_style="bold")
        for i, h in enumerate(CLASS_HEADER):
            table.add_column(h, justify="left" if i == 0 else "right")
        rows = class_rows(r)
        for i, row in enumerate(rows):
            table.add_row(*row, end_section=i == len(rows) - 3)
        console.print(table)
        if len(r["classes"]) > MAX_MATRIX:
            console.print(too_many(r))
            continue
        cm = Table(title="confusion matrix (rows: true, columns: predicted)", header_style="bold")
        cm.add_column("", style="bold")
        for c in r["classes"]:
            cm.add_column(str(c), justify="right")
        for c, row in zip(r["classes"], r["confusion_matrix"], strict=True):
            cells = [
                f"[bold]{v}[/]" if i == c else (f"[red]{v}[/]" if v else "[dim]0[/]")
                for i, v in enumerate(row)
            ]
            cm.add_row(str(c), *cells)
        console.print(cm)
