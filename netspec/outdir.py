"""Writing into the folder a user named: everything is written into a temporary folder inside it
first, then each file is moved into place (`commit`), so a failed command leaves nothing
half-written, and a symlink at a destination is replaced, never written through."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SpecError


def commit(tmp: Path, root: Path) -> list[Path]:
    """Move every file written under `tmp` to the same place under `root`, each checked first
    to be a plain file inside `tmp` (`os.replace` replaces a symlink at the destination instead
    of writing through it); the files, in order."""
    files = sorted(p for p in tmp.rglob("*") if not p.is_dir())
    rels = []
    for p in files:
        rel = p.relative_to(tmp)  # raises if outside
        if ".." in rel.parts or p.is_symlink() or not p.is_file():
            raise SpecError(f"refusing to write {rel}: not a plain file inside the output folder")
        rels.append(rel)
    written = []
    for p, rel in zip(files, rels, strict=True):
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, dest)
        written.append(dest)
    return written
