"""Atomic file writes: a temporary file beside the destination, flushed, renamed over it.

A reader sees the old file or the new one, never a part; a symbolic link at the destination is replaced, its
target never written. A write that fails (a full disk, a read-only file system, a path under a regular file) is
one line naming the argument, the file and the cause (:func:`write_error`), and leaves no temporary file. A
process killed mid-write cannot remove its temporary file; :func:`remove_stale_temporaries` removes those of
one destination when a resumable computation starts. Re-exported by :mod:`basinscope.results`.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import glob
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = [
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_files",
    "file_in_the_way",
    "remove_stale_temporaries",
    "write_error",
]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner alone; outputs get the permissions a plain open() would give
_FILE_MODE = 0o666 & ~_umask()


def _temp_file(path: Path, data: bytes) -> str:
    """Write ``data`` to a new temporary file beside ``path`` (flushed to disk); returns its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the rename must not reach the disk before the data
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def _unlink(tmp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def remove_stale_temporaries(path: str | os.PathLike, *, pattern: str | None = None) -> list[Path]:
    """Delete the temporary files that writes of ``path`` left behind when killed (``.<name>.*.tmp``).

    A process killed between creating its temporary file and renaming it (SIGKILL, power loss) cannot remove
    it; resumable computations call this when they start, before their first write of ``path``. Only names of
    the form :func:`atomic_write_bytes` gives the temporaries *of this file* are removed (another file's
    temporaries, perhaps being written by another process, are left alone); returns them. With ``pattern``
    (a glob of file names, e.g. ``"sample_[0-9]*.pt"``), ``path`` is the folder and the temporaries of every file
    whose name matches are removed.
    """
    p = Path(path)
    folder, name = (p, pattern) if pattern is not None else (p.parent, glob.escape(p.name))
    if not folder.is_dir():
        return []
    found = [
        q
        for q in folder.iterdir()
        if fnmatch.fnmatchcase(q.name, f".{name}.*") and q.name.endswith(".tmp") and q.is_file() and not q.is_symlink()
    ]
    for q in found:
        _unlink(str(q))
    return found


_REASONS = {
    errno.ENOSPC: "a full disk",
    errno.EDQUOT: "a full disk quota",
    errno.EROFS: "a read-only file system",
    errno.EACCES: "no permission to write there",
    errno.EPERM: "no permission to write there",
}


def file_in_the_way(p: Path) -> Path | None:
    """The first existing non-directory among ``p`` and its parents (``None`` when there is none)."""
    return next((a for a in (p, *p.parents) if a.exists() and not a.is_dir()), None)


def write_error(path: str | os.PathLike, e: OSError, *, name: str = "path") -> OSError:
    """A one-line error of the same class as ``e`` naming the argument ``name``, the file and the cause.

    ``errno`` is kept, so callers can still tell a full disk (``errno.ENOSPC``) apart.
    """
    p = Path(path)
    blocker = file_in_the_way(p.parent)
    reason = (
        f"'{blocker}' is a file, not a directory" if blocker is not None else _REASONS.get(e.errno or -1, "an error")
    )
    err = type(e)(f"{name}: expected a writable location for '{p}', got {reason} ({e.strerror or e})")
    err.errno = e.errno  # strerror/filename left unset: str(err) stays the message above
    return err


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``.

    A reader sees the old file or the new one, never a part. A symbolic link at ``path`` is replaced by the
    file (``os.replace`` renames over the link itself); the link's target is left untouched.
    """
    atomic_write_files({path: data})


def atomic_write_files(files: Mapping[str | os.PathLike, bytes]) -> None:
    """Write several files: all to temporary files first, then each renamed over its destination in order.

    An interruption while the data are written leaves every destination as it was; only one between the
    renames (microseconds) leaves some files new and the rest old, which callers detect by storing a digest
    of the later files in the earlier ones (as :meth:`Result.save` does).
    """
    temps: list[tuple[str, Path]] = []
    path = Path(".")
    try:
        for path, data in files.items():
            path = Path(path)
            temps.append((_temp_file(path, data), path))
        for tmp, path in temps:
            os.replace(tmp, path)
    except OSError as e:
        raise write_error(path, e) from e
    finally:
        for tmp, _ in temps:
            _unlink(tmp)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix) to write to; renamed over ``path`` when the block succeeds.

    For writers that take a file name (``fig.savefig``, ``fig.write_html``): the destination is replaced
    atomically, never written through a symbolic link, and left as it was when the writer fails.

    Example:
        >>> import tempfile, os
        >>> target = os.path.join(tempfile.mkdtemp(), "a.txt")
        >>> with atomic_output(target) as tmp:
        ...     _ = tmp.write_text("hello")
        >>> open(target).read()
        'hello'
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
        os.fchmod(fd, _FILE_MODE)
        os.close(fd)
    except OSError as e:
        raise write_error(path, e) from e
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise write_error(path, e) from e
    finally:
        _unlink(tmp)
