"""Every ``Example:`` in the package's docstrings runs and prints what it shows (``doctest`` over each module)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import basinscope

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(basinscope.__path__, prefix="basinscope.") if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    res = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples in {name} failed (run: python -m doctest -v)"


def test_interval_format_switches_to_scientific_for_huge_values():
    from basinscope.experiments.stats import Interval

    assert Interval(1.234, 0.4567, 2.0, 5).format() == "+1.23 [+0.46, +2.00]"
    assert Interval(8.07e15, -1.43e16, 3.05e16, 5).format() == "+8.07e+15 [-1.43e+16, +3.05e+16]"
    assert Interval(0.5, -2e6, 3.0, 5).format(digits=1) == "+0.5 [-2e+06, +3]"
