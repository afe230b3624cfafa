"""Where a deployment starts: an `.onnx` file, or a spec's graph with its weights."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError

__all__ = [
    "DeployError",
    "Source",
    "check_name",
    "from_graph",
    "from_onnx",
    "is_onnx_file",
    "read_onnx",
]

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class DeployError(SpecError):
    """A user error of `netspec deploy` (exit code 2)."""


def check_name(name: str, where: str | None = None) -> str:
    """`name` if it can name a model's folder or file (letters, digits, _ . -; no path)."""
    if not NAME.match(name):
        raise DeployError(
            f"{name!r} cannot name a deployed model (a file or folder name: letters, digits, "
            "_ . -)",
            file=where,
            hint="give another with --name",
        )
    return name


def is_onnx_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == ".onnx"


@dataclass
class Source:
    """What a deployment starts from: an `.onnx` file, or a spec's graph with its weights."""

    name: str
    path: Path | None = None  # the .onnx file, when given one
    graph: Any = None  # netspec.ir.Graph, for a spec
    weights: Any = None  # the spec's canonical weights

    def write_onnx(self, dest: Path) -> list[Path]:
        """The model as the file `dest` (an `.onnx` file's external data files beside it, under
        their own names): the .onnx file copied, or the spec's model written (streamed)."""
        if self.graph is None:
            return _copy_onnx(self.path, dest)
        from ..targets import onnx as onnx_target

        files = onnx_target.write(self.graph, self.weights, dest.parent)
        os.replace(files[0], dest)
        return [dest, *files[1:]]


def from_onnx(path: str | os.PathLike, weights: str | os.PathLike | None = None) -> Source:
    """An `.onnx` file (checked to be one; its weights stay on disk)."""
    p = Path(path)
    if weights is not None:
        raise DeployError(
            "--weights goes with a spec; an .onnx file already holds its weights",
            file=str(p),
            hint="give the spec (SPEC.yaml --weights FILE) or the .onnx file alone",
        )
    model = read_onnx(p)
    meta = {m.key: m.value for m in model.metadata_props}
    return Source(name=meta.get("spec_name") or model.graph.name or p.stem, path=p)


def from_graph(graph, weights: Any = None) -> Source:
    """A spec's graph with `weights` (a file or canonical arrays; default init_weights(seed=0))."""
    from ..weights import load_weights

    return Source(name=graph.name, graph=graph, weights=load_weights(weights, graph))


def read_onnx(path: Path):
    """The ModelProto of an `.onnx` file, external data not loaded; a located error otherwise."""
    import onnx

    if not path.is_file():
        raise DeployError("the model file does not exist", file=str(path))
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as e:  # a protobuf decode error: not an ONNX model
        raise DeployError(
            f"not a readable ONNX model ({type(e).__name__}: {str(e)[:200]})", file=str(path)
        ) from None


def _copy_onnx(src: Path, dest: Path) -> list[Path]:
    """Copy an .onnx file and the external data files it names (each a plain file in its own
    folder, never a path that leaves it)."""
    import shutil

    model = read_onnx(src)
    shutil.copyfile(src, dest)
    out = [dest]
    locations = set()
    for t in model.graph.initializer:
        for kv in t.external_data:
            if kv.key == "location":
                locations.add(kv.value)
    for loc in sorted(locations):
        rel = Path(loc)
        data = src.parent / rel
        if rel.is_absolute() or ".." in rel.parts or not data.is_file() or data.is_symlink():
            raise DeployError(
                f"the model's external data file {loc!r} is not a plain file beside it",
                file=str(src),
            )
        (dest.parent / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data, dest.parent / rel)
        out.append(dest.parent / rel)
    return out
