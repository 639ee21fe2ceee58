"""HTML report and JSON writing."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from basinscope.objective import Cost
from basinscope.report import Report, dumps, format_number, jsonable, referenced_paths, write_json


def test_jsonable_handles_non_finite_and_containers():
    value = {
        "nan": math.nan,
        "inf": float("inf"),
        "neg": -math.inf,
        "t0": torch.tensor(2.5),
        "t": torch.tensor([1.0, math.nan]),
        "np": np.float32(0.5),
        "arr": np.array([[1, 2], [3, 4]]),
        "tuple": (1, 2.0),
        "cost": Cost(gradients=3, seconds=0.25),
        1: "int key",
    }
    out = jsonable(value)
    assert out["nan"] is None and out["inf"] is None and out["neg"] is None
    assert out["t0"] == 2.5
    assert out["t"] == [1.0, None]
    assert out["np"] == 0.5
    assert out["arr"] == [[1, 2], [3, 4]]
    assert out["tuple"] == [1, 2.0]
    assert out["cost"]["gradients"] == 3 and out["cost"]["seconds"] == 0.25
    assert out["1"] == "int key"
    text = dumps(value)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["nan"] is None


def test_jsonable_summarizes_large_arrays():
    out = jsonable({"big": torch.zeros(3, 5000)}, max_elements=100)
    assert out["big"] == {"shape": [3, 5000], "dtype": "float32"}


def test_write_json_is_valid_and_documents_conventions(tmp_path):
    path = write_json(tmp_path / "a" / "m.json", {"x": math.nan, "y": 1})
    doc = json.loads(path.read_text())
    assert doc["x"] is None and doc["y"] == 1
    assert "null" in doc["_conventions"]


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (math.nan, "—"), (math.inf, "—"), (3, "3"), (0.123456, "0.1235"), (True, "yes"), ("SWA", "SWA")],
)
def test_format_number(value, text):
    assert format_number(value) == text


def test_report_tables_figures_and_escaping(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rep = Report("A <title>", tmp_path, subtitle="machine & date")
    rep.heading("Numbers")
    rep.text("first paragraph\n\nsecond <b>not bold</b>")
    rep.table(
        [{"method": "SGD", "acc": 0.5, "phi": math.nan}, {"method": "SWA", "acc": 0.75}],
        columns=["method", "acc", "phi"],
        headers={"acc": "test accuracy"},
        caption="results",
    )
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = rep.matplotlib(fig, "curve", caption="a line")
    (tmp_path / "extra.json").write_text("{}")
    rep.link(tmp_path / "extra.json", "numbers")
    path = rep.write()
    text = path.read_text()
    assert "<title>A &lt;title&gt;</title>" in text
    assert "second &lt;b&gt;not bold&lt;/b&gt;" in text
    assert "<th>test accuracy</th>" in text
    assert re.search(r'<td class="text">SWA</td><td>0.75</td><td>—</td>', text)  # words left, numbers right
    assert png.is_file() and png.stat().st_size > 1000
    refs = referenced_paths(path)
    assert refs == ["figures/curve.png", "extra.json"]
    assert all((tmp_path / r).is_file() for r in refs)
    assert "plotly" not in text.lower()  # no plotly.js when no interactive figure


def test_report_embeds_plotly_once_without_cdn(tmp_path):
    import plotly.graph_objects as go

    rep = Report("interactive", tmp_path)
    for i in range(2):
        rep.plotly(go.Figure(go.Scatter(x=[0, 1], y=[i, 1 - i])), caption=f"fig {i}")
    text = rep.write().read_text()
    assert text.count("<script") >= 3
    # plotly.js is embedded once: its version banner appears once
    assert len(re.findall(r"plotly\.js v\d", text)) == 1
    assert not re.search(r"<script[^>]*\bsrc=", text)  # nothing loaded from a CDN
    assert 'id="plotly-1"' in text and 'id="plotly-2"' in text


def test_report_rejects_files_outside_its_directory(tmp_path):
    rep = Report("r", tmp_path / "out")
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"^path: expected a file inside the report directory"):
        rep.figure(outside)
    with pytest.raises(ValueError, match=r"^path: expected an existing file, got missing"):
        rep.figure("figures/none.png")


def test_referenced_paths_skips_urls_and_anchors(tmp_path):
    page = tmp_path / "p.html"
    page.write_text(
        '<a href="#x">a</a><a href="https://e.org/">b</a><img src="data:image/png;base64,AA"><img src="f.png">'
    )
    assert referenced_paths(page) == ["f.png"]


def test_relative_out_dir_from_another_working_directory(tmp_path, monkeypatch):
    """A relative out_dir and figure paths built from it (``out/figures/x.png``) are not prefixed twice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from basinscope.report import Report

    monkeypatch.chdir(tmp_path)
    rep = Report("t", "out")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    rep.matplotlib(fig, "line")
    (tmp_path / "out" / "n.json").write_text("{}")
    rep.link("out/n.json", "numbers")  # relative to the working directory
    rep.link("n.json", "numbers again")  # relative to the report directory
    page = rep.write()
    assert page.is_file()
    assert rep.files == ["figures/line.png", "n.json", "n.json"]


def test_report_verdict_classes_details_and_phone_layout(tmp_path):
    """Cell classes from ``classes``, folded blocks (an unclosed one closed at the end), the viewport meta tag,
    and tables wrapped in a box that scrolls on its own (the page body never does)."""
    rep = Report("r", tmp_path)
    rep.table(
        [{"claim": "a", "verdict": "reproduces"}, {"claim": "b", "verdict": "other"}],
        classes={"verdict": {"reproduces": "ok"}},
    )
    rep.open_details("more <here>")
    rep.text("folded")
    rep.close_details()
    with pytest.raises(RuntimeError, match="close_details"):
        rep.close_details()
    rep.open_details("left open")
    text = rep.write().read_text()
    assert '<td class="ok text">reproduces</td>' in text and '<td class="text">other</td>' in text
    assert "<details><summary>more &lt;here&gt;</summary>" in text
    assert text.count("<details>") == text.count("</details>") == 2
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert text.count('<div class="table"><table>') == 1 and ".table { overflow-x: auto" in text
