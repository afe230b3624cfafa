"""Search spaces of `netspec tune --search NAME=SPACE`, parsed into Optuna suggestions.

    hidden=8,16,32          a list of choices (each read as a YAML core scalar: ints stay ints)
    lr=1e-4..1e-1:log       a float range, sampled on a log scale
    rate=0..0.5             a float range
    units=8..64:int         an integer range (bounds included)
    rate=0..0.5:step=0.1    a stepped range (grid search can enumerate it)

A malformed argument raises `SpaceError`, which says which argument and points at the column.
Importing this module loads no Optuna; `Space.suggest(trial)` is the only place that calls it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError, did_you_mean
from ..yamlload import core_scalar

OPTIONS = ("log", "int", "step=S")
MAX_GRID = 100_000  # a grid larger than this is refused (every point is a training run)


class TuneError(SpecError):
    """A mistake on the `netspec tune` command line (exit 2): one message, then the hint."""

    def __str__(self) -> str:
        text = f"netspec tune: error: {self.message}"
        return text + (f"\n  hint: {self.hint}" if self.hint else "")


class SpaceError(TuneError):
    """A `--search` argument that does not parse, located at a column of the argument."""

    def __init__(self, arg: str, col: int, message: str, hint: str | None = None):
        caret = " " * (len("--search ") + col) + "^"
        text = f"--search {arg}: {message} (column {col + 1})\n    --search {arg}\n    {caret}"
        super().__init__(text, hint=hint)
        self.arg, self.col = arg, col


@dataclass(frozen=True)
class Space:
    """One param's space: `choices` (a list), or a range `low..high` (`log`, `integer`, `step`)."""

    name: str
    choices: tuple[Any, ...] | None = None
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    integer: bool = False
    step: float | int | None = None

    def suggest(self, trial) -> Any:
        """The trial's value of this param (Optuna's `trial.suggest_*`)."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(
                self.name, self.low, self.high, step=self.step or 1, log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list[Any] | None:
        """Every value of the space, for grid search; None for a continuous range."""
        if self.choices is not None:
            return list(self.choices)
        if self.integer:
            return list(range(self.low, self.high + 1, self.step or 1))
        if self.step is None:
            return None
        n = math.floor((self.high - self.low) / self.step + 1e-9)
        return [_tidy(self.low + i * self.step) for i in range(n + 1)]

    def corners(self) -> list[Any]:
        """The values that test whether the spec accepts the space: each choice, or the bounds."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]

    def describe(self) -> str:
        """The space as `--search` writes it (stored in the study, compared when joining one)."""
        if self.choices is not None:
            return ",".join(_text(c) for c in self.choices)
        opts = (["log"] if self.log else []) + (["int"] if self.integer else [])
        if self.step is not None:
            opts.append(f"step={_text(self.step)}")
        return f"{_text(self.low)}..{_text(self.high)}" + "".join(":" + o for o in opts)


def _tidy(x: float) -> float:
    """A stepped grid value without the float noise of `low + i * step` (0.30000000000000004)."""
    return float(f"{x:.12g}")


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def _number(arg: str, text: str, col: int, what: str) -> float | int:
    v = core_scalar(text.strip())
    if isinstance(v, bool) or not isinstance(v, int | float):
        shown = text.strip() or "nothing"
        raise SpaceError(arg, col, f"the {what} {shown!r} is not a number", _FORMS)
    if not math.isfinite(v):
        raise SpaceError(arg, col, f"the {what} must be finite, not {text.strip()}")
    return v


_FORMS = "write a list (8,16,32) or a range (1e-4..1e-1:log, 0..0.5, 8..64:int, 0..1:step=0.1)"


def parse_space(arg: str) -> Space:
    """One `NAME=SPACE` argument as a `Space` (the name is checked against a spec elsewhere)."""
    if "=" not in arg:
        hint = f"for example hidden=8,16,32; {_FORMS}"
        raise SpaceError(arg, len(arg), "expected NAME=SPACE", hint)
    name, body = arg.split("=", 1)
    start = len(name) + 1
    if not name.strip():
        raise SpaceError(arg, 0, "the param name is missing before '='")
    name = name.strip()
    if ".." not in body:
        return Space(name, choices=_choices(arg, body, start))
    head, _, rest = body.partition(":")
    lo_text, _, hi_text = head.partition("..")
    if ".." in hi_text:
        at = start + len(lo_text) + 2 + hi_text.index("..")
        raise SpaceError(arg, at, "a range has one '..'", _FORMS)
    low = _number(arg, lo_text, start, "lower bound")
    high = _number(arg, hi_text, start + len(lo_text) + 2, "upper bound")
    log = integer = False
    step = None
    col = start + len(head) + 1
    for opt in rest.split(":") if rest else []:
        word = opt.strip()
        if word == "log":
            log = True
        elif word == "int":
            integer = True
        elif word.startswith("step="):
            step = _number(arg, word[5:], col + opt.index("=") + 1, "step")
            if step <= 0:
                raise SpaceError(arg, col + opt.index("=") + 1, "the step must be above 0")
        else:
            guess = did_you_mean(word.split("=")[0], ["log", "int", "step"])
            hint = f"did you mean '{guess}'?" if guess else "the options are " + ", ".join(OPTIONS)
            raise SpaceError(arg, col, f"unknown option {word!r}", hint)
        col += len(opt) + 1
    return _range(arg, name, start, low, high, log, integer, step)


def _range(arg, name, start, low, high, log, integer, step) -> Space:
    if integer:
        for v, what in ((low, "lower bound"), (high, "upper bound"), (step, "step")):
            if v is not None and v != int(v):
                message = f"an :int range needs whole numbers; the {what} is {v}"
                raise SpaceError(arg, start, message)
        low, high = int(low), int(high)
        step = None if step is None else int(step)
    if not low < high:
        raise SpaceError(arg, start, f"the lower bound {low} must be below the upper bound {high}")
    if log and low <= 0:
        raise SpaceError(arg, start, f"a :log range needs a lower bound above 0, not {low}")
    if log and step is not None:
        raise SpaceError(arg, start, "a range is either :log or :step=, not both")
    if not integer:
        low, high = float(low), float(high)
        step = None if step is None else float(step)
    return Space(name, low=low, high=high, log=log, integer=integer, step=step)


def _choices(arg: str, body: str, start: int) -> tuple[Any, ...]:
    out: list[Any] = []
    col = start
    for item in body.split(","):
        text = item.strip()
        if not text:
            raise SpaceError(arg, col, "an empty choice", "write the choices as a,b,c")
        v = core_scalar(text)
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            raise SpaceError(arg, col, f"{text!r} is not a usable value")
        if any(type(v) is type(o) and v == o for o in out):
            raise SpaceError(arg, col, f"the choice {text} is listed twice")
        out.append(v)
        col += len(item) + 1
    return tuple(out)


def parse_spaces(args: Sequence[str], params: Iterable[str]) -> dict[str, Space]:
    """The `--search` arguments by param name, each name one of the spec's `params`."""
    params = list(params)
    spaces: dict[str, Space] = {}
    for arg in args:
        space = parse_space(arg)
        if space.name not in params:
            guess = did_you_mean(space.name, params)
            if guess:
                hint = f"did you mean '{guess}'?"
            elif params:
                hint = "the spec's params: " + ", ".join(params)
            else:
                hint = "the spec declares no params; add one under params: and use it as $NAME"
            raise SpaceError(arg, 0, f"the spec has no param {space.name!r}", hint)
        if space.name in spaces:
            raise SpaceError(arg, 0, f"{space.name} is searched twice")
        spaces[space.name] = space
    return spaces


def grid_space(spaces: dict[str, Space]) -> dict[str, list[Any]]:
    """The grid of `--sampler grid`: every value of every space (each must be enumerable)."""
    grid: dict[str, list[Any]] = {}
    size = 1
    for name, space in spaces.items():
        values = space.grid()
        if values is None:
            raise TuneError(
                f"grid search cannot enumerate --search {name}={space.describe()}",
                hint="give a list, an :int range or a :step= range, or use --sampler tpe",
            )
        grid[name] = values
        size *= len(values)
    if size > MAX_GRID:
        raise TuneError(
            f"the grid has {size:,} points (over {MAX_GRID:,})",
            hint="use fewer values, or --sampler tpe / random with --trials",
        )
    return grid
