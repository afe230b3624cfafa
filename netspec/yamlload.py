"""Reading a spec file: YAML 1.2 core scalars, positions for every node, nothing constructed.

PyYAML composes the node tree (no Python object is ever built from a tag); this module turns the
nodes into plain dicts, lists and scalars itself, refusing tags, duplicate keys, deep nesting and
alias bombs, and records the line and column of every value and key by its path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import Path, SpecError

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000  # after alias expansion: refuses alias bombs early

_Base = getattr(yaml, "CBaseLoader", yaml.BaseLoader)

STR = "tag:yaml.org,2002:str"
_STD = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}
_INT = re.compile(r"[-+]?[0-9]+$")
_OCT = re.compile(r"0o[0-7]+$")
_HEX = re.compile(r"0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"\.(nan|NaN|NAN)$")


def core_scalar(text: str) -> Any:
    """Resolve a plain scalar by the YAML 1.2 core schema (`yes` stays a string, `1e-5` is a
    number, `0755` is decimal)."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.match(text):
        return int(text)
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return text


@dataclass
class Document:
    """A parsed spec: plain data plus where each piece came from."""

    data: Any
    file: str
    text: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path, key: bool = False) -> tuple[int, int] | None:
        """Line and column (1-based) of the node at `path`, or of its nearest ancestor."""
        p = tuple(path)
        if key and p in self.keys:
            return self.keys[p]
        while True:
            if p in self.values:
                return self.values[p]
            if not p:
                return None
            p = p[:-1]

    def locate(self, err: SpecError) -> SpecError:
        """Fill in the file, line, column and source line of an error raised by path."""
        err.file = err.file or self.file
        if err.line is None:
            pos = self.where(err.path, err.key)
            if pos:
                err.line, err.col = pos
        if err.line is not None and err.source_line is None:
            lines = self.text.splitlines()
            if 0 < err.line <= len(lines):
                err.source_line = lines[err.line - 1].rstrip()
        return err


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Walker:
    def __init__(self, doc: Document):
        self.doc = doc
        self.count = 0

    def fail(self, msg: str, node: yaml.Node, path: Path, hint: str | None = None) -> SpecError:
        line, col = _mark(node)
        return self.doc.locate(SpecError(msg, path, hint=hint, line=line, col=col))

    def walk(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(
                f"the document expands to more than {MAX_NODES:,} nodes (an alias bomb?)",
                node,
                path,
                hint="anchors and aliases are expanded; do not nest them repeatedly",
            )
        if depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels (a recursive alias?)", node,
                            path)
        self.doc.values.setdefault(path, _mark(node))
        if node.tag not in _STD:
            raise self.fail(
                f"YAML tag {node.tag!r} is not allowed",
                node,
                path,
                hint="specs are plain data: remove the tag (netspec never constructs objects)",
            )
        if isinstance(node, yaml.ScalarNode):
            if node.tag == STR and node.style:  # quoted or block: a string (plain is None or "")
                return node.value
            value = core_scalar(node.value)
            if node.tag != STR:
                want = node.tag.rsplit(":", 1)[1]
                kinds = {"int": int, "float": (int, float), "bool": bool, "null": type(None)}
                if not isinstance(value, kinds[want]) or (want == "int" and value is True):
                    raise self.fail(f"{node.value!r} is not a valid !!{want}", node, path)
            return value
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(n, (*path, i), depth + 1) for i, n in enumerate(node.value)]
        out: dict[str, Any] = {}
        first: dict[str, yaml.Node] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode) or knode.tag != STR:
                raise self.fail("mapping keys must be plain names", knode, path)
            key = knode.value
            if key == "<<":
                raise self.fail("merge keys ('<<') are not supported", knode, path,
                                hint="write the keys out, or use a block for repeated layers")
            if key in first:
                line, col = _mark(first[key])
                raise self.fail(
                    f"duplicate key {key!r} (first at line {line}, column {col})",
                    knode,
                    (*path, key),
                    hint="a key may appear once in a mapping; remove one of them",
                )
            first[key] = knode
            self.doc.keys[(*path, key)] = _mark(knode)
            out[key] = self.walk(vnode, (*path, key), depth + 1)
        return out


def parse(text: str | bytes, file: str = "<spec>") -> Document:
    """Parse spec text into a Document, or raise SpecError with the position."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise SpecError(f"the file is {len(text):,} bytes; specs are limited to "
                            f"{MAX_FILE_BYTES:,}", file=file)
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            before = text[: e.start]
            line = before.count(b"\n") + 1
            col = e.start - (before.rfind(b"\n") + 1) + 1
            raise SpecError(
                f"the file is not valid UTF-8 (byte 0x{text[e.start]:02x})",
                file=file, line=line, col=col,
                hint="save the spec as UTF-8",
            ) from None
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(f"the spec is {len(text):,} characters; specs are limited to "
                        f"{MAX_FILE_BYTES:,}", file=file)
    doc = Document(None, file, text)
    loader = _Base(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        raise _syntax_error(e, doc) from None
    except yaml.YAMLError as e:  # pragma: no cover - unmarked errors are rare
        raise SpecError(f"YAML error: {e}", file=file) from None
    finally:
        loader.dispose()
    if node is None:
        raise SpecError("the file is empty; a spec needs at least netspec, name, inputs and "
                        "layers", file=file, line=1, col=1)
    doc.data = _Walker(doc).walk(node, (), 0)
    return doc


def _syntax_error(e: yaml.MarkedYAMLError, doc: Document) -> SpecError:
    mark = e.problem_mark or e.context_mark
    problem = e.problem or "invalid YAML"
    hint = None
    if "expected a single document" in str(e):
        problem = "the file holds several YAML documents; a spec is exactly one"
        hint = "remove the '---' line and what follows, or split the specs into files"
    elif "'\\t'" in problem or "\t" in problem:
        problem = "a tab character where YAML needs spaces"
        hint = "indent with spaces; YAML does not allow tabs for indentation"
    elif e.context:
        problem = f"{problem} ({e.context}"
        if e.context_mark is not None and e.context_mark is not mark:
            problem += f" at line {e.context_mark.line + 1}"
        problem += ")"
    err = SpecError(f"YAML syntax error: {problem}", file=doc.file, hint=hint)
    if mark is not None:
        err.line, err.col = mark.line + 1, mark.column + 1
        lines = doc.text.splitlines()
        if hint is None and mark.line < len(lines) and "${" in lines[mark.line]:
            err.hint = 'inside { } or [ ], quote expressions: units: "${hidden * 2}"'

    return doc.locate(err)
