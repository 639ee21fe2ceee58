"""argparse value types of the ``basinscope`` command: each rejects bad input with a one-line message."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["int_at_least_2", "nonneg_float", "options", "positive_float", "positive_int", "range_pair"]


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def int_at_least_2(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {text!r}") from None
    if v < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {text!r}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text!r}")
    return v


def nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (0 <= v < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return v


def range_pair(text: str) -> tuple[float, float]:
    """``LO:HI`` with LO < HI (finite)."""
    lo, sep, hi = text.partition(":")
    try:
        a, b = float(lo), float(hi)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO:HI with numbers LO < HI, got {text!r}") from None
    if not sep or not (a < b) or abs(a) == float("inf") or abs(b) == float("inf"):
        raise argparse.ArgumentTypeError(f"expected LO:HI with finite numbers LO < HI, got {text!r}")
    return a, b


def options(text: str) -> dict[str, Any]:
    from .specs import parse_kwargs

    try:
        return parse_kwargs(text, option="--opt")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).partition(": ")[2]) from None
