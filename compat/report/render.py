"""The report as one self-contained HTML file: inline CSS and script, nothing fetched.

Every value from the data goes through Jinja's autoescaping: package names, error
lines and logs are untrusted text. A Content-Security-Policy that allows only the
page's own inline style and script (by hash) backs that up and keeps the page from
loading anything, online or from file://.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from compat.errors import ReportWriteError
from compat.report.data import ReportData, RunKind
from compat.report.view import (
    CellState,
    build,
    fold,
    format_bytes,
    format_duration,
    format_when,
    log_excerpt,
)


def _asset(name: str) -> str:
    return (resources.files("compat.report") / "templates" / name).read_text(encoding="utf-8")


def _inline(text: str, tag: str) -> Markup:
    """Our own CSS or script, trusted, but never able to close its element early."""
    if f"</{tag}" in text.lower():
        raise ValueError(f"report asset must not contain </{tag}")
    return Markup(text)


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("compat.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["bytes"] = format_bytes
    env.filters["duration"] = format_duration
    env.filters["when"] = format_when
    env.filters["fold"] = fold
    env.filters["log_excerpt"] = log_excerpt
    return env


def render_report(data: ReportData) -> str:
    """The report page for ``data``; the same data gives the same bytes."""
    css, js = _asset("report.css"), _asset("report.js")
    csp = "; ".join(
        [
            "default-src 'none'",
            f"style-src {_hash(css)}",
            f"script-src {_hash(js)}",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=build(data),
        states=list(CellState),
        kinds=list(RunKind),
        css=_inline(css, "style"),
        js=_inline(js, "script"),
        csp=csp,
    )


def write_report(data: ReportData, path: Path) -> Path:
    """Render ``data`` to ``path`` (parent directories created) and return the path.
    Written to a temporary file and renamed, so an open report is never half written."""
    html = render_report(data)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
                out.write(html)
            Path(tmp).chmod(0o644)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ReportWriteError(path, exc.strerror or str(exc)) from exc
    return path
