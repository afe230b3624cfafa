"""Terminal output with rich where stdout/stderr is a terminal; plain and stable when piped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from ..errors import printable, titled
from ..inspect_table import human_bytes, macs_note, rows, totals, training
from ..ir import Graph, shape_str

FAMILY_STYLE = {
    "convolution": "blue",
    "linear": "cyan",
    "pooling": "magenta",
    "normalization": "yellow",
    "regularization": "bright_black",
    "shape": "white",
    "merge": "dark_orange",
    "embedding": "bright_magenta",
    "recurrent": "medium_purple",
    "activation": "green",
}


def _rich_available() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def print_inspect(graph: Graph, file: TextIO = sys.stdout) -> None:
    """The per-layer table: a rich table on a terminal, else `plain_inspect`'s text."""
    if not (file.isatty() and _rich_available()):
        from ..inspect_table import plain_inspect

        file.write(plain_inspect(graph))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from ..ops import OPS

    console = Console(file=file, highlight=False)
    title = escape(titled(graph.name, graph.description))
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("name", no_wrap=True)
    table.add_column("op")
    table.add_column("output shape", no_wrap=True)
    table.add_column("params", justify="right")
    for name, op, shape, params in rows(graph):
        scope, _, local = name.rpartition(".")
        label = Text()
        label.append(scope + "." if scope else "", style="dim")
        label.append(local)
        fam = OPS[op].family if op in OPS else "input"
        op_text = Text(op, style=FAMILY_STYLE.get(fam, "bold"))
        table.add_row(label, op_text, shape, params if params != "0" else Text("0", "dim"))
    console.print(table)
    t = totals(graph)
    outs = ", ".join(f"{k} {shape_str(graph.value(v).shape)}" for k, v in graph.outputs.items())
    console.print(
        f"[bold]parameters[/] {t['parameters']:,}   [bold]buffers[/] {t['buffers']:,}"
        f"   [bold]MACs[/] {t['macs']:,} per example{escape(macs_note(graph))}"
    )
    console.print(
        f"[bold]weight bytes[/] {t['weight_bytes']:,} "
        f"({human_bytes(t['weight_bytes'])}, float32)   [bold]outputs[/] {outs}"
    )
    plan = training(graph)
    if plan:
        console.print("[bold]training[/]")
        for k, v in plan.items():
            console.print(f"  [bold]{k}[/] {escape(printable(v))}")


@contextmanager
def progress(steps: list[str], file: TextIO = sys.stderr) -> Iterator[Callable[[str], None]]:
    """`with progress(["torch", "onnx", "weights"]) as step: step("torch") ...`

    Each `step(name)` marks the start of a step (the one before it is done). On a terminal a
    rich progress bar shows the step under way, and is gone when the block ends; piped, or
    without rich, nothing is printed, so that output stays stable for scripts."""
    if not (file.isatty() and _rich_available()):
        yield lambda name: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(file=file), transient=True) as bar:
        task = bar.add_task("starting", total=len(steps))
        started = [False]

        def step(name: str) -> None:
            if started[0]:
                bar.advance(task)
            started[0] = True
            bar.update(task, description=f"building {name}")

        yield step
        bar.update(task, completed=len(steps))
