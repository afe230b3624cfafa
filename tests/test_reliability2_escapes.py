"""Reliability II, class 5: control characters, ANSI escapes and bidi overrides in user text
(descriptions, paths, quoted values) reach no terminal, SVG, DOT or Mermaid output raw: they are
shown as visible escapes, and SVG stays valid XML."""

from __future__ import annotations

import io
import xml.dom.minidom
from pathlib import Path

import pytest
from conftest import run_cli

import netspec
from netspec.errors import printable
from netspec.render import render

RAW = "\x1b[31mALERT\x1b[0m bell\x07 rtl\u202eevil\u202c nul\x01 del\x7f c1\x9b sep\u2028 x\ufffe"
FORBIDDEN = ["\x1b", "\x07", "\u202e", "\u202c", "\x01", "\x7f", "\x9b", "\u2028", "\ufffe"]


def hostile(tmp_path: Path) -> Path:
    p = tmp_path / "ctl.yaml"
    desc = RAW.encode("unicode_escape").decode().replace('"', '\\"')
    p.write_text(
        "netspec: 1\nname: ctl\n"
        f'description: "{desc}"\n'
        "inputs:\n  x: {shape: [3]}\nlayers:\n  - {op: dense, units: 2}\n",
        encoding="utf-8",
    )
    assert netspec.load(p).description == RAW
    return p


def clean(text: str) -> bool:
    return not any(c in text for c in FORBIDDEN)


def test_printable_escapes_and_keeps_other_scripts():
    assert printable("a\x1bb") == "a\\x1bb"
    assert printable("\u202e") == "\\u202e"
    assert printable("한국어 ✓ café") == "한국어 ✓ café"
    assert printable("a\nb") == "a b" and printable("a\nb", lines=True) == "a\nb"


def test_inspect_plain_and_rich(tmp_path):
    spec = hostile(tmp_path)
    rc, out, err = run_cli(["inspect", spec])
    assert rc == 0, err
    assert clean(out) and "\\x1b[31mALERT" in out
    pytest.importorskip("rich")
    from netspec.render import term

    class Tty(io.StringIO):
        def isatty(self):
            return True

    f = Tty()
    term.print_inspect(netspec.load(spec), f)
    assert clean(f.getvalue().replace("\x1b[", "")) and "\\x1b" in f.getvalue()


@pytest.mark.parametrize("fmt", ["svg", "dot", "mermaid", "markdown"])
def test_drawings(tmp_path, fmt):
    text = render(netspec.load(hostile(tmp_path)), fmt)
    assert clean(text), fmt
    if fmt == "svg":
        xml.dom.minidom.parseString(text.encode("utf-8"))  # valid XML


def test_errors_quote_user_text_escaped(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(
        "netspec: 1\nname: b\ninputs:\n  x: {shape: [3]}\nlayers:\n"
        '  - {op: "\\e[2Jdense\\u202e", units: 2}\n',
        encoding="utf-8",
    )
    rc, _, err = run_cli(["validate", p])
    assert rc == 2, err
    assert clean(err), err
    rc, _, err = run_cli(["validate", tmp_path / "\x1b[2Jmissing.yaml"])
    assert rc == 2 and clean(err), err
