"""What a training record is: one optimizer, loss, schedule or metric, defined once.

A record holds its name, its attributes (the op table's `Attr`, so the `training:` JSON Schema
and docs can be generated the same way as the ops'), a doc line, the PyTorch object whose
arithmetic is netspec's meaning, and a float64 numpy reference of that arithmetic. Nothing here
imports numpy: the references import it when they run, so `validate` and `schema` stay light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..ops.base import PARAM_REF, REQUIRED, Attr, Invalid, _show


@dataclass
class Choice(Attr):
    """An attribute whose value is one of a few names (kind "choice")."""

    choices: tuple[str, ...] = ()

    def expected(self) -> str:
        return "one of " + ", ".join(self.choices)

    def json_schema(self) -> dict:
        s: dict = {"enum": list(self.choices)}
        if self.doc:
            s["description"] = self.doc
        if self.default is not REQUIRED and self.default is not None:
            s["default"] = self.default
        return {"anyOf": [s, PARAM_REF]}

    def check(self, v: Any) -> Any:
        if v not in self.choices:
            from ..errors import did_you_mean

            g = did_you_mean(str(v), self.choices)
            raise Invalid(
                f"expected {self.expected()}, got {_show(v)}",
                f"did you mean '{g}'?" if g else None,
            )
        return v


@dataclass
class Record:
    """One optimizer, loss, learning-rate schedule or metric."""

    name: str
    kind: str  # optimizer | loss | schedule | metric
    attrs: dict[str, Attr]
    reference: Callable[..., Any]
    doc: str = ""
    torch: str = ""  # the PyTorch object (and arguments) whose arithmetic this is
    notes: list[str] = field(default_factory=list)

    def json_schema(self) -> dict:
        """The schema of this record's attribute mapping (for the `training:` section's)."""
        s: dict = {
            "type": "object",
            "properties": {n: a.json_schema() for n, a in self.attrs.items()},
            "additionalProperties": False,
        }
        required = [n for n, a in self.attrs.items() if a.required]
        if required:
            s["required"] = required
        if self.doc:
            s["description"] = self.doc
        return s

    def resolve(self, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """Every attribute's value: the given ones checked, the rest their defaults.

        Raises `Invalid` (without a location: the caller adds it) for an unknown name, a
        missing required value or a value of the wrong kind. `None` means "not set".
        """
        given = dict(given or {})
        unknown = [k for k in given if k not in self.attrs]
        if unknown:
            from ..errors import did_you_mean

            g = did_you_mean(unknown[0], list(self.attrs))
            raise Invalid(
                f"{self.kind} '{self.name}' has no attribute '{unknown[0]}'",
                f"did you mean '{g}'?" if g else "it takes " + ", ".join(self.attrs),
            )
        out: dict[str, Any] = {}
        for name, a in self.attrs.items():
            if name in given and given[name] is not None:
                out[name] = a.check(given[name])
            elif a.required:
                raise Invalid(f"{self.kind} '{self.name}' needs '{name}' ({a.doc})")
            else:
                out[name] = a.default
        return out


def table(kind: str) -> tuple[dict[str, Record], Callable]:
    """A record table and its decorator: `@deco("adam", [Attr(...)], doc=..., torch=...)`."""
    records: dict[str, Record] = {}

    def deco(name: str, attrs: list[Attr], *, doc: str, torch: str, notes=()):
        def wrap(fn: Callable) -> Callable:
            assert name not in records, name
            records[name] = Record(
                name, kind, {a.name: a for a in attrs}, fn, doc, torch, list(notes)
            )
            return fn

        return wrap

    return records, deco


def _default(a: Attr) -> str:
    v = a.default
    if a.required:
        return "required"
    if v is None:
        return "unset"
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def markdown(records: list[Record]) -> str:
    """A Markdown table of records: name, attributes with defaults, the PyTorch object."""
    rows = ["| kind | name | attributes (default) | PyTorch |", "| --- | --- | --- | --- |"]
    for r in records:
        attrs = ", ".join(f"{n} ({_default(a)})" for n, a in r.attrs.items()) or "-"
        rows.append(f"| {r.kind} | `{r.name}` | {attrs} | `{r.torch}` |")
    return "\n".join(rows) + "\n"
