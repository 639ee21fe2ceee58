"""Output directories checked before any work starts, and not left behind empty when the work fails.

:func:`output_dir` is what every ``basinscope`` command that writes files wraps its work in:

* ``--out`` naming an existing file, or a path under one, is refused at once;
* the directory is created and a probe file is written, flushed and removed: a read-only file system, a
  directory without write permission or a full disk is reported before minutes of computation are spent;
* when the work then fails, the directories the command created and left empty are removed again (files it
  wrote, such as a checkpoint to ``--resume`` from, keep their directory).

Every failure is one line naming the option (``--out``), the path and the cause.

Example:
    >>> import tempfile, os
    >>> root = tempfile.mkdtemp()
    >>> with output_dir(os.path.join(root, "run")) as out:
    ...     _ = (out / "metrics.json").write_text("{}")
    >>> sorted(os.listdir(os.path.join(root, "run")))
    ['metrics.json']
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ._atomic import file_in_the_way, write_error
from ._checks import fail

__all__ = ["MIN_FREE_BYTES", "check_out_dir", "output_dir", "remove_created"]

MIN_FREE_BYTES = 1 << 20  # below 1 MiB free, not even a report page fits


def check_out_dir(path: str | os.PathLike, *, name: str = "--out") -> list[Path]:
    """Create ``path`` if needed and check that files can be written there; returns the directories created.

    Raises:
        ValueError: ``path`` is an existing file or lies under one.
        OSError: a read-only or full file system, or no permission to write (one line naming ``name``).
    """
    p = Path(path)
    blocker = file_in_the_way(p)
    if blocker == p:
        fail(name, "a directory to write into", f"the existing file '{p}'", raw=True)
    if blocker is not None:
        fail(name, "a directory to write into", f"'{p}', under the file '{blocker}'", raw=True)
    created = [a for a in (*reversed(p.parents), p) if not a.exists()]
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=p, prefix=".basinscope-probe.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        finally:
            os.unlink(probe)
        free = shutil.disk_usage(p).free
        if free < MIN_FREE_BYTES:
            raise OSError(errno.ENOSPC, f"{free} bytes free")
    except OSError as e:
        remove_created(created)
        raise write_error(p, e, name=name) from e
    return created


def remove_created(created: list[Path]) -> None:
    """Remove the directories in ``created`` (and empty directories made inside them) that hold no file."""
    if not created:
        return
    top = created[0]
    if top.is_dir():
        for root, dirs, _files in os.walk(top, topdown=False):
            for d in dirs:
                with contextlib.suppress(OSError):
                    (Path(root) / d).rmdir()  # only succeeds when empty
    for d in reversed(created):
        with contextlib.suppress(OSError):
            d.rmdir()


@contextlib.contextmanager
def output_dir(path: str | os.PathLike, *, name: str = "--out") -> Iterator[Path]:
    """:func:`check_out_dir`, then the block; if it fails, the directories created here are removed when empty."""
    created = check_out_dir(path, name=name)
    try:
        yield Path(path)
    except BaseException:
        remove_created(created)
        raise
