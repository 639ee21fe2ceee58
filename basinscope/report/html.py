"""A self-contained HTML report: title, text, tables of numbers, PNG figures and interactive plotly figures.

The report is one ``.html`` file in an output directory. PNG figures are files in that directory referenced by
relative paths (so the directory can be moved or zipped as a whole); interactive plotly figures are embedded
as ``<div>``s with plotly.js embedded once in the page head — no CDN, it opens offline. Plotting libraries are
imported only inside the methods that need them.

Example:
    >>> import tempfile
    >>> rep = Report("demo", tempfile.mkdtemp())
    >>> rep.heading("Numbers")
    >>> rep.table([{"method": "SWA", "accuracy": 0.91}], caption="test accuracy")
    >>> path = rep.write()
    >>> path.name
    'report.html'
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..results import atomic_output, atomic_write_bytes

__all__ = ["Report", "format_number", "referenced_paths"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; overflow-wrap: anywhere; }
h1 { border-bottom: 2px solid #4a6fa5; padding-bottom: .2em; }
h2 { margin-top: 1.8em; color: #2c4a75; }
.table { overflow-x: auto; max-width: 100%; margin: .8em 0 1.4em; }
table { border-collapse: collapse; font-size: .92em; }
th, td { border: 1px solid #ccd; padding: .3em .7em; text-align: right; overflow-wrap: normal; }
th { background: #eef2f8; }
td:first-child, th:first-child, td.text { text-align: left; }
td.reproduces { background: #dff0d8; } td.contradicts { background: #f8d7da; } td.inconclusive { background: #fff3cd; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3em; }
figure { margin: 1em 0 1.6em; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid #dde; }
figcaption { font-size: .9em; color: #555; }
details { margin: .6em 0 1em; border-left: 3px solid #ccd; padding-left: .8em; }
summary { cursor: pointer; color: #2c4a75; font-weight: 600; }
.meta { color: #666; font-size: .9em; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; }
@media (max-width: 600px) { body { margin: 1em auto; padding: 0 .6em; } table { font-size: .8em; } }
"""


_NUMERIC = re.compile(r"^[−+-]?[0-9.,]+(e[−+-]?[0-9]+)?( ± [0-9.,]+)?%?$|^—$|^yes$|^no$")


def format_number(value: Any, digits: int = 4) -> str:
    """Format a table cell: floats with ``digits`` significant digits, ``—`` for missing or non-finite."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        return f"{value:.{digits}g}"
    return str(value)


class Report:
    """Builds the HTML page block by block; :meth:`write` renders it.

    Args:
        title: page title and top heading.
        out_dir: the directory the report (and its figures) live in; created if needed.
        subtitle: a line under the title (e.g. machine, date, settings).
    """

    def __init__(self, title: str, out_dir: str | os.PathLike, *, subtitle: str | None = None) -> None:
        self.title = title
        # absolute, so that paths built as ``out_dir / ...`` are not taken as relative to it a second time
        self.out_dir = Path(os.path.abspath(out_dir))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._blocks: list[str] = []
        if subtitle:
            self._blocks.append(f'<p class="meta">{html.escape(subtitle)}</p>')
        self._plotly = False
        self._n_plotly = 0
        self._open = 0  # <details> blocks not yet closed
        self.files: list[str] = []

    # ------------------------------------------------------------------ blocks
    def heading(self, text: str, level: int = 2) -> None:
        """A section heading (``<h2>`` by default)."""
        level = min(max(int(level), 2), 4)
        anchor = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
        self._blocks.append(f'<h{level} id="{anchor}">{html.escape(text)}</h{level}>')

    def text(self, text: str) -> None:
        """A paragraph (escaped; blank lines start new paragraphs)."""
        for para in re.split(r"\n\s*\n", text.strip()):
            self._blocks.append(f"<p>{html.escape(para)}</p>")

    def code(self, text: str) -> None:
        """A preformatted block (commands, settings)."""
        self._blocks.append(f"<pre>{html.escape(text)}</pre>")

    def table(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        columns: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        caption: str | None = None,
        digits: int = 4,
        classes: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """A table with one row per mapping; ``columns`` picks and orders keys, ``headers`` renames them.

        ``classes`` maps a column to {cell text: CSS class} (e.g. the verdict column's colours). The table scrolls
        sideways inside its own box when it is wider than the page, so the page itself never does.
        """
        if columns is None:
            columns = []
            for r in rows:
                columns.extend(k for k in r if k not in columns)
        headers = dict(headers or {})
        classes = dict(classes or {})
        out = ['<div class="table"><table>']
        if caption:
            out.append(f"<caption>{html.escape(caption)}</caption>")
        out.append("<tr>" + "".join(f"<th>{html.escape(headers.get(c, c))}</th>" for c in columns) + "</tr>")
        for r in rows:
            cells = []
            for c in columns:
                text = format_number(r.get(c), digits)
                css = [classes.get(c, {}).get(text, "")]
                if not _NUMERIC.match(text):
                    css.append("text")  # words read from the left; numbers stay right-aligned
                attr = f' class="{html.escape(" ".join(x for x in css if x))}"' if any(css) else ""
                cells.append(f"<td{attr}>{html.escape(text)}</td>")
            out.append(f"<tr>{''.join(cells)}</tr>")
        out.append("</table></div>")
        self._blocks.append("\n".join(out))

    def open_details(self, summary: str) -> None:
        """Start a folded block (``<details>``): what follows, until :meth:`close_details`, opens on a click."""
        self._blocks.append(f"<details><summary>{html.escape(summary)}</summary>")
        self._open += 1

    def close_details(self) -> None:
        """End the block opened by :meth:`open_details`."""
        if self._open == 0:
            raise RuntimeError("close_details() without open_details()")
        self._blocks.append("</details>")
        self._open -= 1

    def _relative(self, path: str | os.PathLike, *, must_exist: bool = True) -> str:
        p = Path(path)
        if not p.is_absolute():
            # relative to the report directory; a path that already names it (``out/figures/x.png`` given with
            # ``out_dir="out"``) is taken relative to the working directory instead
            inside = self.out_dir / p
            p = inside if inside.exists() or not Path(os.path.abspath(p)).exists() else Path(os.path.abspath(p))
        try:
            rel = p.resolve().relative_to(self.out_dir.resolve())
        except ValueError:
            raise ValueError(f"path: expected a file inside the report directory {self.out_dir}, got {p}") from None
        if must_exist and not p.is_file():
            raise ValueError(f"path: expected an existing file, got missing {p}")
        return rel.as_posix()

    def figure(self, path: str | os.PathLike, *, caption: str | None = None) -> None:
        """An image file (inside ``out_dir``) referenced relatively."""
        rel = self._relative(path)
        self.files.append(rel)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(f'<figure><img src="{html.escape(rel)}" alt="{html.escape(caption or rel)}">{cap}</figure>')

    def matplotlib(self, fig: Any, name: str, *, caption: str | None = None, dpi: int = 110) -> Path:
        """Save a matplotlib figure as ``figures/<name>.png``, close it and add it; returns the PNG path."""
        import matplotlib.pyplot as plt

        path = self.out_dir / "figures" / f"{name}.png"
        with atomic_output(path) as tmp:  # renamed over path: never written through a link planted there
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        self.figure(path, caption=caption)
        return path

    def plotly(self, fig: Any, *, caption: str | None = None, height: int | None = None) -> None:
        """Embed an interactive plotly figure (plotly.js is included once for the whole page)."""
        if height is not None:
            fig.update_layout(height=height)
        # the page's width, whatever width the figure was made with: a fixed width would scroll a phone's page
        fig.update_layout(width=None, autosize=True)
        self._n_plotly += 1
        div = fig.to_html(
            full_html=False, include_plotlyjs=False, div_id=f"plotly-{self._n_plotly}", config={"responsive": True}
        )
        self._plotly = True
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(f"<figure>{div}{cap}</figure>")

    def link(self, path: str | os.PathLike, text: str, *, must_exist: bool = True) -> None:
        """A link to another file inside ``out_dir`` (e.g. a JSON file or a standalone interactive page).

        ``must_exist=False`` links a file written after the report (one whose presence marks a finished run).
        """
        rel = self._relative(path, must_exist=must_exist)
        self.files.append(rel)
        self._blocks.append(f'<p><a href="{html.escape(rel)}">{html.escape(text)}</a></p>')

    # ------------------------------------------------------------------ output
    def render(self) -> str:
        """The full HTML page as a string."""
        head = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(self.title)}</title>",
            f"<style>{_CSS}</style>",
        ]
        if self._plotly:
            from plotly.offline import get_plotlyjs

            head.append(f'<script type="text/javascript">{get_plotlyjs()}</script>')
        head.append("</head><body>")
        closing = ["</details>"] * self._open  # a block left open ends with the page
        body = [f"<h1>{html.escape(self.title)}</h1>", *self._blocks, *closing, "</body></html>"]
        return "\n".join(head + body)

    def write(self, name: str = "report.html") -> Path:
        """Write the page to ``out_dir/name`` atomically; returns its path."""
        path = self.out_dir / name
        atomic_write_bytes(path, self.render().encode("utf-8"))
        os.chmod(path, 0o644)  # a page to be read, not a private temporary file
        return path


def referenced_paths(html_path: str | os.PathLike) -> list[str]:
    """Relative ``src``/``href`` targets in a report (external URLs, anchors and ``data:`` URIs excluded)."""
    text = Path(html_path).read_text(encoding="utf-8")
    text = re.sub(r"<script\b[^>]*>.*?</script>", "", text, flags=re.DOTALL | re.IGNORECASE)  # plotly.js, figures
    refs = re.findall(r'<(?:img|a|link|iframe)\b[^>]*?\b(?:src|href)="([^"]+)"', text)
    return [html.unescape(r) for r in refs if not re.match(r"^(?:[a-z]+:|#|//)", r, flags=re.IGNORECASE)]
