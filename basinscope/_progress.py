"""One progress bar for every long-running step: what it is doing, how far, and the time left.

Every bar of the toolkit comes from :func:`progress`: a tqdm bar on standard error (resolved when the bar is
made, so captured streams see it) with a description, ``n/total``, the elapsed time and an estimate of the time
left, or a no-op bar with the same methods when disabled. :func:`quiet` disables every bar made inside its
block, whatever the callee was asked for; the command line's ``--quiet`` (alias ``--no-progress``) is this
block around the command, so a new subcommand gets ``--quiet`` for free by calling code that uses
:func:`progress`.

Example:
    >>> with quiet():
    ...     for _ in progress(range(3), desc="nothing shown"):
    ...         pass
    >>> bar = progress(total=10, desc="surface", enabled=False)
    >>> bar.update(4); bar.close()
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["BAR_FORMAT", "progress", "quiet", "showing"]

#: description, percentage, bar, ``n/total``, ``[elapsed<left, rate]``: the estimate of the time left is always shown.
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"

_QUIET = [0]  # nesting depth of quiet() blocks


@contextlib.contextmanager
def quiet(on: bool = True) -> Iterator[None]:
    """Within the block (when ``on``), every :func:`progress` bar is disabled."""
    _QUIET[0] += int(on)
    try:
        yield
    finally:
        _QUIET[0] -= int(on)


def showing(requested: bool = True) -> bool:
    """Whether a bar asked for with ``requested`` is shown (``False`` inside :func:`quiet`)."""
    return bool(requested) and _QUIET[0] == 0


class _NoBar:
    """The disabled bar: the methods of a tqdm bar used here, doing nothing."""

    def __init__(self, iterable: Iterable[Any] | None = None) -> None:
        self._iterable = iterable
        self.n = 0
        self.leave = False

    def __iter__(self) -> Iterator[Any]:
        return iter(self._iterable if self._iterable is not None else ())

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    total: float | None = None,
    desc: str,
    enabled: bool = True,
    unit: str = "it",
    leave: bool = False,
    initial: float = 0,
) -> Any:
    """A progress bar over ``iterable`` (or ``total`` steps updated by hand) on standard error.

    Args:
        iterable: what to iterate over (its ``len`` is the total when it has one), or ``None``.
        total: the number of steps when updating by hand (``bar.update(n)``).
        desc: what is being done (``"surface plane"``, ``"lanczos"``): the bar's first word.
        enabled: ``False`` returns a no-op bar; inside :func:`quiet` it is always a no-op bar.
        unit: what one step is (``"it"``, ``"grad"``, ``"point"``).
        leave: keep the finished bar on the terminal (default: cleared, so that a command's summary line is the
            only thing left and nothing is printed twice).
        initial: steps already done (a resumed run).

    Returns:
        a ``tqdm`` bar, or an object with the same ``update``/``set_postfix``/``close``/iteration.
    """
    if not showing(enabled):
        return _NoBar(iterable)
    from tqdm import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=leave,
        initial=initial,
        file=sys.stderr,
        bar_format=BAR_FORMAT,
        dynamic_ncols=True,
        mininterval=0.25,
    )
