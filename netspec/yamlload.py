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
MAX_NODES = 200_000  # values after alias expansion: refuses alias bombs before expanding
MAX_INT = 2**63 - 1
_LEADING_ZERO = re.compile(r"(0[0-9]+)(?![0-9.eExXoO])")
_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # libyaml's line breaks
_EXPLICIT_TAG = re.compile(r"(&\S+\s+)?!")
_SURROGATE = re.compile("[\ud800-\udfff]")

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
        # Python refuses to convert more than 4300 digits; such a number is out of range anyway
        return int(text) if len(text) <= 4000 else float(text)
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
    _lines: list[str] | None = field(default=None, repr=False)

    @property
    def lines(self) -> list[str]:
        """The text's lines, split where YAML (and libyaml's line count) breaks lines."""
        if self._lines is None:
            self._lines = split_lines(self.text)
        return self._lines

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
            lines = self.lines
            if 0 < err.line <= len(lines):
                err.source_line = lines[err.line - 1].rstrip()
                token = err.source_line[(err.col or 1) - 1 :]
                m = _LEADING_ZERO.match(token)
                if m and err.note is None:
                    err.note = (
                        f"YAML 1.2 reads {m.group(1)} as the decimal number "
                        f"{int(m.group(1))} (write 0o{m.group(1).lstrip('0')} for octal, "
                        "or quote it for a string)"
                    )
        return err


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _children(node: yaml.Node) -> list[tuple[yaml.Node, Any]]:
    """A node's children with their path parts (a mapping's keys count as values too)."""
    if isinstance(node, yaml.SequenceNode):
        return list(zip(node.value, range(len(node.value)), strict=True))
    if isinstance(node, yaml.MappingNode):
        out: list[tuple[yaml.Node, Any]] = []
        for k, v in node.value:
            part = k.value if isinstance(k, yaml.ScalarNode) else "?"
            out += [(k, part), (v, part)]
        return out
    return []


def _check_expansion(root: yaml.Node, doc: Document) -> None:
    """Refuse recursive aliases and documents that expand to too many values, before
    expanding anything: sizes are counted once per node, so an alias bomb costs nothing."""
    size: dict[int, int] = {}
    busy: set[int] = set()
    stack: list[tuple[yaml.Node, bool, Path]] = [(root, False, ())]
    while stack:
        node, done, path = stack.pop()
        i = id(node)
        if done:
            size[i] = 1 + sum(size[id(c)] for c, _ in _children(node))
            busy.discard(i)
            continue
        if i in size:
            continue
        if i in busy:
            line, col = _mark(node)
            raise doc.locate(
                SpecError(
                    "a recursive alias: this alias refers to the value anchored here, which "
                    "contains the alias itself, so the value would be infinitely deep",
                    path,
                    line=line,
                    col=col,
                    hint="an alias may only refer to an anchor whose value is complete",
                )
            )
        busy.add(i)
        stack.append((node, True, path))
        for child, part in reversed(_children(node)):
            stack.append((child, False, (*path, part)))
    total = size[id(root)]
    if total <= MAX_NODES:
        return
    if len(size) > MAX_NODES:  # no aliases needed: simply too big
        raise doc.locate(
            SpecError(
                f"the spec has {len(size):,} values; specs are limited to {MAX_NODES:,}",
                (),
                line=1,
                col=1,
            )
        )
    node, path = root, ()  # descend to the smallest value that alone exceeds the limit
    while True:
        big = [(c, p) for c, p in _children(node) if size[id(c)] > MAX_NODES]
        if not big:
            break
        node, part = big[0]
        path = (*path, part)
    line, col = _mark(node)
    raise doc.locate(
        SpecError(
            f"this value expands to {size[id(node)]:,} values through anchors and aliases, more "
            f"than the limit of {MAX_NODES:,} (an alias bomb?)",
            path,
            line=line,
            col=col,
            hint="every alias is expanded into a copy; use blocks and repeat for repeated layers",
        )
    )


class _Walker:
    def __init__(self, doc: Document):
        self.doc = doc

    def explicit_tag(self, node: yaml.Node) -> bool:
        """Whether the source gives a tag (`!!str 5`): nodes do not tell it from a plain `5`."""
        m = node.start_mark
        lines = self.doc.lines
        return m.line < len(lines) and bool(_EXPLICIT_TAG.match(lines[m.line], m.column))

    def fail(self, msg: str, node: yaml.Node, path: Path, hint: str | None = None) -> SpecError:
        line, col = _mark(node)
        return self.doc.locate(SpecError(msg, path, hint=hint, line=line, col=col))

    def walk(self, node: yaml.Node, path: Path, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(
                f"values nested deeper than {MAX_DEPTH} levels",
                node,
                path,
                hint="a spec needs only a few levels of nesting",
            )
        self.doc.values.setdefault(path, _mark(node))
        if node.tag not in _STD:
            raise self.fail(
                f"YAML tag {_tag(node.tag)!r} is not allowed",
                node,
                path,
                hint="specs are plain data: remove the tag (netspec never constructs objects)",
            )
        if isinstance(node, yaml.ScalarNode):
            if node.tag == STR and (node.style or self.explicit_tag(node)):
                return node.value  # quoted, block or tagged !!str: a string
            value = core_scalar(node.value)
            if node.tag != STR:
                want = node.tag.rsplit(":", 1)[1]
                kinds = {"int": int, "float": (int, float), "bool": bool, "null": type(None)}
                if not isinstance(value, kinds[want]) or (want == "int" and value is True):
                    raise self.fail(f"{_short(node.value)!r} is not a valid !!{want}", node, path)
            too_long = isinstance(value, float) and _INT.match(node.value)  # > 4000 digits
            if too_long or (
                isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT
            ):
                raise self.fail(
                    f"the integer {_short(node.value)} is out of range (netspec takes integers "
                    f"from -(2**63 - 1) to 2**63 - 1)",
                    node,
                    path,
                )
            return value
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(n, (*path, i), depth + 1) for i, n in enumerate(node.value)]
        out: dict[str, Any] = {}
        first: dict[str, yaml.Node] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode) or knode.tag != STR:
                raise self.fail(
                    "expected a plain name as a mapping key",
                    knode,
                    path,
                    hint="keys are names such as 'units'; not lists, mappings or tagged values",
                )
            key = knode.value
            if key == "<<" and not knode.style:
                raise self.fail(
                    "merge keys ('<<') are not supported",
                    knode,
                    path,
                    hint="write the keys out, or use a block for repeated layers",
                )
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


def _tag(tag: str) -> str:
    """`tag:yaml.org,2002:python/object` -> `!!python/object` (as it is written)."""
    prefix = "tag:yaml.org,2002:"
    return "!!" + tag[len(prefix) :] if tag.startswith(prefix) else tag


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def split_lines(text: str) -> list[str]:
    return _BREAK.split(text)


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character index."""
    lines = split_lines(text[:index])
    return len(lines), len(lines[-1]) + 1


def parse(text: str | bytes, file: str = "<spec>") -> Document:
    """Parse spec text into a Document, or raise SpecError with the position."""
    if len(text) > MAX_FILE_BYTES:
        unit = "bytes" if isinstance(text, bytes) else "characters"
        raise SpecError(
            f"the spec is {len(text):,} {unit} long; specs are limited to {MAX_FILE_BYTES:,}",
            file=file,
            hint="a spec describes layers, not data; keep weights in a safetensors file",
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raw = text
            before = raw[: e.start].decode("utf-8", "replace")
            line, col = _position(before, len(before))
            err = SpecError(
                f"the file is not valid UTF-8 (byte 0x{raw[e.start]:02x})",
                file=file,
                line=line,
                col=col,
                hint="save the spec as UTF-8",
            )
            lines = split_lines(raw.decode("utf-8", "replace"))
            if line <= len(lines):
                err.source_line = lines[line - 1].rstrip()
            raise err from None
    else:
        bad = _SURROGATE.search(text)
        if bad:
            line, col = _position(text, bad.start())
            raise SpecError(
                "the text holds a lone surrogate, which is not a character",
                file=file,
                line=line,
                col=col,
                hint="pass valid Unicode text",
            )
    if text.startswith("\ufeff"):
        text = text[1:]
    doc = Document(None, file, text)
    loader = _Base(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        raise _syntax_error(e, doc) from None
    except yaml.reader.ReaderError as e:
        index = e.position
        if _Base is not yaml.BaseLoader:  # libyaml counts bytes of the UTF-8 text
            index = len(text.encode("utf-8")[:index].decode("utf-8", "ignore"))
        line, col = _position(text, index)
        raise doc.locate(
            SpecError(
                f"{e.reason} in YAML: found {chr(e.character)!r} (U+{e.character:04X})",
                file=file,
                line=line,
                col=col,
                hint="remove it; write special characters in quoted strings as escapes",
            )
        ) from None
    except RecursionError:
        raise SpecError(
            f"values nested too deeply (more than {MAX_DEPTH} levels)", file=file
        ) from None
    except yaml.YAMLError as e:  # pragma: no cover - unmarked errors are rare
        raise SpecError(f"YAML error: {e}", file=file) from None
    finally:
        loader.dispose()
    if node is None:
        raise SpecError(
            "the file is empty; a spec needs at least netspec, name, inputs and layers",
            file=file,
            line=1,
            col=1,
            hint="start from an example in specs/, e.g. specs/mlp.yaml",
        )
    _check_expansion(node, doc)
    doc.data = _Walker(doc).walk(node, (), 0)
    return doc


def _syntax_error(e: yaml.MarkedYAMLError, doc: Document) -> SpecError:
    mark = e.problem_mark or e.context_mark
    problem = e.problem or "invalid YAML"
    hint = None
    lines = doc.lines
    at = ""
    if mark is not None and mark.line < len(lines):
        at = lines[mark.line][mark.column : mark.column + 1]
    if "expected a single document" in str(e):
        problem = "the file holds several YAML documents; a spec is exactly one"
        hint = "remove the '---' line and what follows, or split the specs into files"
    elif at == "\t" or "tab" in problem:
        problem = "a tab character where YAML needs spaces"
        hint = "indent with spaces; YAML does not allow tabs for indentation"
    elif e.context:
        problem = f"{problem} ({e.context}"
        if e.context_mark is not None and e.context_mark is not mark:
            problem += f" at line {e.context_mark.line + 1}"
        problem += ")"
        cm = e.context_mark
        if cm is not None and "flow" in e.context and cm.line < len(lines):
            opener = lines[cm.line][cm.column : cm.column + 1]
            closer = {"{": "}", "[": "]"}.get(opener)
            if closer:
                hint = (
                    f"close the '{opener}' at line {cm.line + 1}, column {cm.column + 1} "
                    f"with '{closer}', and separate its entries with ','"
                )
    err = SpecError(f"YAML syntax error: {problem}", file=doc.file, hint=hint)
    if mark is not None:
        err.line, err.col = mark.line + 1, mark.column + 1
        # `${...}` in a flow mapping is the known pitfall: say so rather than "close the '{'"
        if mark.line < len(lines) and "${" in lines[mark.line] and "tab" not in problem:
            err.hint = 'inside { } or [ ], quote expressions: units: "${hidden * 2}"'
    return doc.locate(err)


def locate_in_source(e: SpecError, source: str | None) -> SpecError:
    """`e` at its line in the spec file `source` when it names a spec path but no file (an
    error found after loading, e.g. in the `training:` section's data mapping); else `e`."""
    import os

    if e.file is not None or not e.path or not source or not os.path.isfile(source):
        return e
    from .outdir import read_bounded

    try:
        return parse(read_bounded(source, MAX_FILE_BYTES, "spec"), source).locate(e)
    except (SpecError, OSError):
        return e
