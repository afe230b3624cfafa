"""Writing into the folder a user named, and reading what a user gives, the one way every command
does it.

Writing: everything is written into a staging folder inside the destination folder first
(`staging`), then moved into place (`commit`). The staging folder's name carries the writer's
process id, so a later command sweeps the staging folders of processes that died (SIGKILL, a
power cut) without touching a live one's. `commit` is all or nothing: every destination that
already exists is first moved aside into the staging folder, then the new files are renamed
into place in a fixed order (sorted by path); if a rename fails, the files already moved are
taken back out and the old ones put back, so the folder holds either every old file or every
new one. (A crash of the machine in the middle of `commit` can still leave a mix: renames are
atomic one by one, not together.) `os.replace` replaces a symlink at a destination instead of
writing through it, and nothing is written outside the folder. A single file (`graph -o FILE`,
`run -o DIR`) is written the same way: a temporary file beside it, fsync, rename.

Errors of the file system (a file where the folder should be, a dangling link, read-only, full)
become `OutputError`s: exit 2 with a hint, not an internal error.

Reading: `read_bounded` reads at most `limit + 1` bytes of a regular file (a device, a FIFO or a
folder is refused before reading).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import SpecError

STAGING = re.compile(r"^\.netspec-(?:build|train|run|write)-(\d+)-")


class OutputError(SpecError):
    """The output folder or file cannot be written (exit 2)."""


def _hint(e: OSError) -> str | None:
    if e.errno == errno.ENOSPC or e.errno == errno.EDQUOT:
        return "the disk is full: free some space or choose another folder with -o"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "the folder is not writable: choose another one with -o"
    if e.errno in (errno.EEXIST, errno.ENOTDIR):
        return "-o names a file (or a link to nothing): give a folder, or remove the file"
    return None


def output_error(e: OSError, where: str | os.PathLike) -> OutputError:
    """An OSError met while writing into `where`, as a located user error."""
    return OutputError(
        f"cannot write to {where}: {e.strerror or e}", hint=_hint(e), file=str(where)
    )


def prepare(folder: str | os.PathLike) -> tuple[Path, bool]:
    """The output folder, created if needed: (its resolved path, whether this call created it).
    A file, a dangling link or an unwritable place is an `OutputError`."""
    out = Path(folder)
    if out.is_symlink() and not out.exists():
        raise OutputError(
            f"cannot write to {out}: it is a link to {os.readlink(out)}, which does not exist",
            hint="remove the link or give another folder with -o",
            file=str(out),
        )
    if out.exists() and not out.is_dir():
        raise OutputError(
            f"cannot write to {out}: it is a file, not a folder",
            hint="give a folder with -o, or remove the file",
            file=str(out),
        )
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(e, out) from None
    return out.resolve(), created


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def sweep(root: Path) -> list[Path]:
    """Remove the staging folders in `root` left by processes that no longer run; the ones
    removed."""
    gone = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return gone
    for entry in entries:
        m = STAGING.match(entry.name)
        if not m or not entry.is_dir(follow_symlinks=False):
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(entry.path, ignore_errors=True)
            gone.append(Path(entry.path))
    return gone


@contextlib.contextmanager
def staging(root: Path, kind: str = "build") -> Iterator[Path]:
    """A fresh staging folder inside `root` (after sweeping dead writers' ones), removed on the
    way out whatever happens (SIGINT and SIGTERM included: the CLI turns SIGTERM into an
    exception)."""
    sweep(root)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".netspec-{kind}-{os.getpid()}-", dir=root))
    except OSError as e:
        raise output_error(e, root) from None
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_if_empty(root: Path) -> None:
    """Remove a folder this command created, only if nothing else is in it now (another
    command may have written there meanwhile)."""
    with contextlib.suppress(OSError):
        root.rmdir()


def commit(tmp: Path, root: Path) -> list[Path]:
    """Move every file written under `tmp` to the same place under `root`, all or nothing (see
    the module's text); the files, in order."""
    files = sorted(p for p in tmp.rglob("*") if not p.is_dir())
    rels = []
    for p in files:
        rel = p.relative_to(tmp)  # raises if outside
        if ".." in rel.parts or p.is_symlink() or not p.is_file():
            raise SpecError(f"refusing to write {rel}: not a plain file inside the output folder")
        rels.append(rel)
    old = Path(tempfile.mkdtemp(prefix=".old-", dir=tmp))
    moved: list[tuple[Path, Path | None]] = []  # (destination, its previous file set aside)
    try:
        for p, rel in zip(files, rels, strict=True):
            dest = root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            aside = None
            if dest.is_symlink() or dest.exists():
                if dest.is_dir() and not dest.is_symlink():
                    raise OutputError(
                        f"cannot write {dest}: a folder is in the way", file=str(dest)
                    )
                aside = old / f"{len(moved)}"
                os.replace(dest, aside)
            moved.append((dest, aside))
            os.replace(p, dest)
    except BaseException as e:
        for dest, aside in reversed(moved):
            with contextlib.suppress(OSError):
                if aside is not None:
                    os.replace(aside, dest)
                elif dest.exists() or dest.is_symlink():
                    dest.unlink()
        if isinstance(e, OSError):
            raise output_error(e, root) from None
        raise
    return [root / rel for rel in rels]


def write_file(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write one file atomically: a temporary file in the same folder, fsync, rename over the
    destination (a symlink there is replaced, not followed)."""
    dest = Path(path)
    folder = dest.parent
    if dest.is_dir() and not dest.is_symlink():
        raise OutputError(f"cannot write {dest}: it is a folder", file=str(dest))
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".netspec-write-{os.getpid()}-", dir=folder)
    except OSError as e:
        raise output_error(e, folder) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, dest)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise output_error(e, dest) from None
        raise
    return dest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once, at import: os.umask is process-wide


def read_bounded(path: str | os.PathLike, limit: int, what: str = "file") -> bytes:
    """At most `limit + 1` bytes of a regular file (the caller sees it is too long); a device,
    FIFO, socket or folder is refused before anything is read."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise SpecError(f"cannot read the {what}: {e.strerror or e}", file=str(p)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise SpecError(
                f"cannot read the {what}: {kind}",
                file=str(p),
                hint=f"give the path of a {what} saved on disk",
            )
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        return f.read(limit + 1)
