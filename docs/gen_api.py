"""Generate docs/api.md from the package's docstrings.

    python docs/gen_api.py            # rewrite docs/api.md
    python docs/gen_api.py --check    # exit 1 if docs/api.md is out of date (tests/test_docs.py runs this check)

For every public module below, every name in its ``__all__`` is listed with its signature, the first paragraph of
its docstring as text and the rest of the docstring verbatim; classes also list their public methods and
properties. The output depends only on the source code (memory addresses in default values are removed), so the
committed page can be compared with a fresh run.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "api.md"

MODULES = [
    ("Foundation", ["basinscope.objective", "basinscope.params", "basinscope.results"]),
    ("Sharpness", ["basinscope.sharpness"]),
    ("Hessian spectra", ["basinscope.hessian"]),
    ("Loss surfaces", ["basinscope.surface"]),
    ("Optimizers", ["basinscope.optim", "basinscope.optim.ddp"]),
    ("1-D toy demos", ["basinscope.toy"]),
    ("Models and data", ["basinscope.models", "basinscope.data"]),
    (
        "Checkpoints, reports, command line",
        [
            "basinscope.checkpoint",
            "basinscope.specs",
            "basinscope.report",
            "basinscope.demo",
            "basinscope.diagnose",
            "basinscope.workflows",
            "basinscope.cli",
        ],
    ),
]

_MD_SPECIAL = re.compile(r"([\\*_\[\]<>#|])")


def _escape(text: str) -> str:
    """Escape Markdown outside backtick code spans."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(
        p if p.startswith("`") and p.endswith("`") and len(p) > 1 else _MD_SPECIAL.sub(r"\\\1", p) for p in parts
    )


def _signature(obj: object) -> str:
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", sig)


def _doc(obj: object) -> list[str]:
    doc = inspect.getdoc(obj) or ""
    if not doc.strip():
        return ["*(no docstring)*", ""]
    paras = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)
    out = [_escape(" ".join(paras[0].split())), ""]
    if len(paras) > 1 and paras[1].strip():
        out += ["```text", paras[1].rstrip(), "```", ""]
    return out


def _members(cls: type) -> list[tuple[str, object]]:
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isfunction(value) or isinstance(value, property):
            out.append((name, value))
    return sorted(out)


def _render_object(modname: str, name: str, obj: object) -> list[str]:
    lines: list[str] = []
    if inspect.isclass(obj):
        lines += [f"### `{name}{_signature(obj)}`", "", f"*class in `{modname}`*", "", *_doc(obj)]
        for mname, member in _members(obj):
            if isinstance(member, property):
                lines += [f"#### `{name}.{mname}` *(property)*", "", *_doc(member)]
            else:
                lines += [f"#### `{name}.{mname}{_signature(member)}`", "", *_doc(member)]
    elif callable(obj):
        lines += [f"### `{name}{_signature(obj)}`", "", f"*function in `{modname}`*", "", *_doc(obj)]
    else:
        lines += [f"### `{name}`", "", f"*value in `{modname}`*: `{type(obj).__name__}`", ""]
    return lines


def generate() -> str:
    """The Markdown text of the API page."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/gen_api.py` (do not edit by hand; "
        "`tests/test_docs.py` checks that this page is up to date).",
        "",
    ]
    for title, modnames in MODULES:
        section: list[str] = []
        for modname in modnames:
            try:
                mod = importlib.import_module(modname)
            except ImportError:
                continue
            section += [f"## `{modname}`", "", *_doc(mod)]
            for name in sorted(getattr(mod, "__all__", [])):
                section += _render_object(modname, name, getattr(mod, name))
        if section:
            lines += [f"# {title}", "", *section]
    lines += _cli_reference()
    return "\n".join(lines).rstrip() + "\n"


def _cli_reference() -> list[str]:
    """Every subcommand's ``--help``, as the parser prints it at 100 columns."""
    import contextlib
    import io
    import os

    os.environ["COLUMNS"] = "100"
    from basinscope.cli import main as cli_main

    commands = [
        [],
        ["demo"],
        ["train"],
        ["diagnose"],
        ["surface"],
        ["surface", "plane"],
        ["surface", "line"],
        ["surface", "random"],
        ["toy"],
    ]
    lines = [
        "# Command-line reference",
        "",
        "The `--help` of every `basinscope` command (see also [Command line](cli.md)).",
        "",
    ]
    for argv in commands:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            cli_main([*argv, "--help"])
        lines += [
            "## `" + " ".join(["basinscope", *argv]) + "`",
            "",
            "```text",
            buf.getvalue().rstrip(),
            "```",
            "",
        ]
    return lines


def main(argv: list[str]) -> int:
    text = generate()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print("docs/api.md is out of date: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
