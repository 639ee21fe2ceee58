"""The documentation: the API page is in sync with the docstrings, and the site builds without warnings."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _gen_api():
    spec = importlib.util.spec_from_file_location("gen_api", ROOT / "docs" / "gen_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_page_matches_docstrings():
    gen = _gen_api()
    committed = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert committed == gen.generate(), "docs/api.md is out of date: run python docs/gen_api.py"


def test_api_page_covers_public_modules():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for name in ("basinscope.objective", "basinscope.checkpoint", "basinscope.cli", "run_demo", "load_state_dict"):
        assert name in text


def test_nav_lists_every_page():
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with mkdocs (pip install -e '.[docs]')")
    cfg = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav):
        for item in nav:
            for value in item.values():
                if isinstance(value, list):
                    yield from pages(value)
                else:
                    yield value

    listed = set(pages(cfg["nav"]))
    on_disk = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert on_disk <= listed, f"pages missing from the nav: {sorted(on_disk - listed)}"


def _mkdocs() -> list[str] | None:
    if importlib.util.find_spec("mkdocs") is not None:
        return [sys.executable, "-m", "mkdocs"]
    exe = shutil.which("mkdocs")
    return [exe] if exe else None


def test_mkdocs_build_strict(tmp_path):
    cmd = _mkdocs()
    if cmd is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    proc = subprocess.run(
        [*cmd, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "WARNING" not in proc.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def _python_blocks(page: str) -> list[str]:
    import re

    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_objective_page_examples_run(tmp_path, monkeypatch):
    """The foundation page's examples are self-contained: each runs as written."""
    monkeypatch.chdir(tmp_path)  # the checkpoint example writes net.pt
    blocks = _python_blocks("objective.md")
    assert len(blocks) >= 4
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "objective.md", "exec"), namespace)
    assert (tmp_path / "net.pt").is_file()
